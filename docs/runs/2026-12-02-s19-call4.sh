#!/bin/bash
# session 19, call 4: the producers' L2 prefetch of the next tile (qb_pf_rows) - A/B with
# NATTEN_CUDA_TILED_PREFETCH=0 and against configuration 6, verify, host-cost, memcheck of the
# prefetching kernels, racecheck (default and plain), check_cuda configs, make check.  Logs: $OUT/s19d.tgz
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s19d; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s19d.tgz s19d); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $L/gpu.txt 2>&1
if [ ! -f Makefile ]; then (./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"; fi
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
B="./natten-bench -i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20 --dtype float16"
for op in av qk; do timeout 60 $B --op $op --peak > $L/bench-verify-$op.txt 2>&1; st "verify $op: $(grep -E 'cuda-tiled@' $L/bench-verify-$op.txt | tail -1 | tr -s ' ')"; done
for op in av qk; do timeout 60 $B --op $op --dtype bfloat16 > $L/bench-verify-$op-bf16.txt 2>&1; st "verify $op bf16: $(grep -E 'cuda-tiled@' $L/bench-verify-$op-bf16.txt | tail -1 | tr -s ' ')"; done
for r in 1 2 3 4; do for v in "av 0 1" "av 0 0" "av 6 1" "qk 0 1" "qk 0 0" "qk 6 1"; do set -- $v
  NATTEN_CUDA_TILED_CONFIG=$2 NATTEN_CUDA_TILED_PREFETCH=$3 timeout 30 $B --op $1 --no-verify --peak > $L/b.txt 2>&1
  st "r$r $1 c$2 pf$3: $(grep -E 'cuda-tiled@' $L/b.txt | tail -1 | tr -s ' ')"; done; done; pack
nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I . tools/host-cost.cu -L .libs -lnatten -o /tmp/host-cost > $L/hc-build.log 2>&1
for v in "av 0 1" "av 0 0" "qk 0 1" "qk 0 0" "av 0 1" "av 0 0" "qk 0 1" "qk 0 0"; do set -- $v
  NATTEN_CUDA_TILED_CONFIG=$2 NATTEN_CUDA_TILED_PREFETCH=$3 LD_LIBRARY_PATH=.libs timeout 30 /tmp/host-cost $1 100 > $L/hc.txt 2>&1
  st "hc $1 c$2 pf$3: $(grep 'back-to-back' $L/hc.txt | tr -s ' ')"; done; pack
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for op in av qk; do for a in "-i 20 22 -w 7 -b 2 -n 4" "-i 18 20 -w 5 --dilation 2 1 -b 2 -n 2" "-i 16 24 -w 4 6 --stride 1 2 -b 1 -n 1" "-i 56 56 -w 7 -b 2 -n 4"; do
  NATTEN_CUDA_TILED_BLOCKS=3 timeout 60 ./libtool --mode=execute $CS --tool memcheck ./natten-bench $a -d 32 --dtype float16 --op $op --backend cuda-tiled --warmup 0 --repeat 1 > $L/san.txt 2>&1
  st "$op memcheck [$a]: rc=$? $(grep -E 'ERROR SUMMARY|cuda-tiled@' $L/san.txt | tr -s ' ' | tr '\n' ' ')"; cat $L/san.txt >> $L/san-all.txt; done
  for e in 0 1; do NATTEN_CUDA_TILED_PLAIN_SYNC=$e NATTEN_CUDA_TILED_BLOCKS=3 timeout 60 ./libtool --mode=execute $CS --tool racecheck ./natten-bench -i 20 22 -w 7 -b 2 -n 4 -d 32 --dtype float16 --op $op --backend cuda-tiled --warmup 0 --repeat 1 > $L/san.txt 2>&1
  st "$op racecheck plain=$e: rc=$? $(grep -E 'RACECHECK SUMMARY|cuda-tiled@' $L/san.txt | tr -s ' ' | tr '\n' ' ')"; cat $L/san.txt >> $L/san-all.txt; done; done; pack
( CK_RUN_CASE=configs timeout 200 tests/check_cuda > $L/check_cuda_configs.log 2>&1; echo "rc $?" >> $L/check_cuda_configs.log ); st "check_cuda configs: $(tail -3 $L/check_cuda_configs.log | tr '\n' ' ')"; pack
timeout 250 make -j16 check > $L/make-check.log 2>&1; st "make check rc=$? $(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' $L/make-check.log | tr '\n' ' ')"; cp tests/check_cuda*.log $L/ 2>/dev/null; pack
st done; pack
