#!/bin/bash
# session 17, call 1: avb (the bulk-copy AV) - build, natten-bench verify + A/B against avh (config 6),
# host-cost, memcheck/racecheck of avb, check_cuda configs (now with heads-last tensors), make check
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s17a; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s17a.tgz s17a); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
if [ ! -f Makefile ]; then (./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"; fi
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
B="./natten-bench -i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20 --dtype float16"
for op in av qk; do timeout 60 $B --op $op --peak > $L/bench-verify-$op.txt 2>&1; st "verify $op: $(grep -E 'cuda-tiled@' $L/bench-verify-$op.txt | tail -1 | tr -s ' ')"; done
timeout 60 $B --op av --dtype bfloat16 > $L/bench-verify-av-bf16.txt 2>&1; st "verify av bf16: $(grep -E 'cuda-tiled@' $L/bench-verify-av-bf16.txt | tail -1 | tr -s ' ')"
for r in 1 2 3; do for c in 0 6; do NATTEN_CUDA_TILED_CONFIG=$c timeout 30 $B --op av --no-verify --peak > $L/b.txt 2>&1
  st "r$r av c$c: $(grep -E 'cuda-tiled@' $L/b.txt | tail -1 | tr -s ' ')"; done; done; pack
for p in 4 8; do NATTEN_CUDA_TILED_PRODUCERS=$p timeout 30 $B --op av --no-verify --peak > $L/b.txt 2>&1; st "av producers $p: $(grep -E 'cuda-tiled@' $L/b.txt | tail -1 | tr -s ' ')"; done
nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I . tools/host-cost.cu -L .libs -lnatten -o /tmp/host-cost > $L/hc-build.log 2>&1
for c in 0 6 0 6; do NATTEN_CUDA_TILED_CONFIG=$c LD_LIBRARY_PATH=.libs timeout 30 /tmp/host-cost av 100 > $L/hc.txt 2>&1; st "hc av c$c: $(grep 'back-to-back' $L/hc.txt | tr -s ' ')"; done; pack
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck; do for a in "-i 20 22 -w 7 -b 2 -n 4" "-i 18 20 -w 5 --dilation 2 1 -b 2 -n 2" "-i 16 24 -w 4 6 --stride 1 2 -b 1 -n 1"; do
  for e in NATTEN_CUDA_TILED_PLAIN_SYNC=0 NATTEN_CUDA_TILED_PLAIN_SYNC=1; do
  [ $tool = memcheck ] && [ $e = NATTEN_CUDA_TILED_PLAIN_SYNC=1 ] && continue
  env $e NATTEN_CUDA_TILED_BLOCKS=3 timeout 60 ./libtool --mode=execute $CS --tool $tool ./natten-bench $a -d 32 --dtype float16 --op av --backend cuda-tiled --warmup 0 --repeat 1 > $L/san.txt 2>&1
  st "$tool $e [$a]: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|cuda-tiled@' $L/san.txt | tr -s ' ' | tr '\n' ' ')"; cat $L/san.txt >> $L/san-all.txt; done; done; done; pack
( CK_RUN_CASE=configs timeout 200 tests/check_cuda > $L/check_cuda_configs.log 2>&1; echo "rc $?" >> $L/check_cuda_configs.log ); st "check_cuda configs: $(tail -3 $L/check_cuda_configs.log | tr '\n' ' ')"; pack
timeout 250 make -j8 check > $L/make-check.log 2>&1; st "make check rc=$? $(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' $L/make-check.log | tr '\n' ' ')"; cp tests/check_cuda.log $L/ 2>/dev/null; pack
