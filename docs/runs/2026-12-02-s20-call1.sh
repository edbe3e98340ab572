#!/bin/bash
# session 20, call 1: the landed main (8bac5fb) on the GPU host - build, full make check (first
# run with the cu_upload fix), check_cuda configs, natten-bench verify + A/B vs configuration 6,
# host-cost, memcheck/racecheck of avb/qkb.  Logs in $OUT/s20a.tgz.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s20a; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s20a.tgz s20a); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $L/gpu.txt 2>&1
git log --oneline -1 > $L/commit.txt 2>&1
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
timeout 280 make -j16 check > $L/make-check.log 2>&1; st "make check rc=$? $(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' $L/make-check.log | tr '\n' ' ')"; cp tests/*.log $L/ 2>/dev/null; pack
B="./natten-bench -i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20 --dtype float16"
for op in av qk; do timeout 60 $B --op $op --peak > $L/bench-verify-$op.txt 2>&1; st "verify $op: $(grep -E 'cuda-tiled@' $L/bench-verify-$op.txt | tail -1 | tr -s ' ')"; done
for op in av qk; do timeout 60 $B --op $op --dtype bfloat16 > $L/bench-verify-$op-bf16.txt 2>&1; st "verify $op bf16: $(grep -E 'cuda-tiled@' $L/bench-verify-$op-bf16.txt | tail -1 | tr -s ' ')"; done
for r in 1 2 3 4; do for v in "av 0" "av 6" "qk 0" "qk 6"; do set -- $v
  NATTEN_CUDA_TILED_CONFIG=$2 timeout 30 $B --op $1 --no-verify --peak > $L/b.txt 2>&1
  st "r$r $1 c$2: $(grep -E 'cuda-tiled@' $L/b.txt | tail -1 | tr -s ' ')"; done; done; pack
nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I . tools/host-cost.cu -L .libs -lnatten -o /tmp/host-cost > $L/hc-build.log 2>&1
for v in "av 0" "qk 0" "runtime 0"; do set -- $v
  NATTEN_CUDA_TILED_CONFIG=$2 LD_LIBRARY_PATH=.libs timeout 30 /tmp/host-cost $1 200 > $L/hc-$1.txt 2>&1
  st "hc $1: $(grep -E 'back-to-back|events around' $L/hc-$1.txt | tr -s ' ' | tr '\n' ' ')"; done; pack
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for op in av qk; do for tool in memcheck racecheck; do for a in "-i 20 22 -w 7 -b 2 -n 4" "-i 18 20 -w 5 --dilation 2 1 -b 2 -n 2"; do
  for e in NATTEN_CUDA_TILED_PLAIN_SYNC=0 NATTEN_CUDA_TILED_PLAIN_SYNC=1; do
  [ $tool = memcheck ] && [ $e = NATTEN_CUDA_TILED_PLAIN_SYNC=1 ] && continue
  env $e NATTEN_CUDA_TILED_BLOCKS=3 timeout 60 ./libtool --mode=execute $CS --tool $tool ./natten-bench $a -d 32 --dtype float16 --op $op --backend cuda-tiled --warmup 0 --repeat 1 > $L/san.txt 2>&1
  st "$op $tool $e [$a]: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|cuda-tiled@' $L/san.txt | tr -s ' ' | tr '\n' ' ')"; cat $L/san.txt >> $L/san-all.txt; done; done; done; done; pack
st done; pack
