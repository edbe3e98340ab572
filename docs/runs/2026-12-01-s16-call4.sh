#!/bin/bash
# session 16, call 4: qkb with unrolled products and per-row-pair barriers, 4 vs 8 producers vs config 6 (qkh); make check
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s16d; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s16d.tgz s16d); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
if [ ! -f Makefile ]; then (./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"; fi
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
B="./natten-bench -i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20"
for p in 4 8; do NATTEN_CUDA_TILED_PRODUCERS=$p timeout 60 $B --dtype float16 --op qk --peak > $L/bench-verify-p$p.txt 2>&1; st "verify p$p: $(grep -E 'cuda-tiled' $L/bench-verify-p$p.txt | tail -1 | tr -s ' ')"; done
for r in 1 2 3; do for p in 4 8 6; do
  if [ $p = 6 ]; then e="NATTEN_CUDA_TILED_CONFIG=6"; else e="NATTEN_CUDA_TILED_PRODUCERS=$p"; fi
  env $e timeout 30 $B --dtype float16 --op qk --no-verify > $L/bench-qk-p$p-r$r.txt 2>&1
  st "r$r qk $e: $(grep -E 'cuda-tiled' $L/bench-qk-p$p-r$r.txt | tail -1 | tr -s ' ')"; done; done; pack
for p in 4 8; do NATTEN_CUDA_TILED_PRODUCERS=$p timeout 30 $B --dtype bfloat16 --op qk --no-verify > $L/bench-bf-p$p.txt 2>&1; st "bf16 p$p: $(grep -E 'cuda-tiled' $L/bench-bf-p$p.txt | tail -1 | tr -s ' ')"; done
nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I . tools/host-cost.cu -L .libs -lnatten -o /tmp/host-cost > $L/hc-build.log 2>&1
for e in NATTEN_CUDA_TILED_PRODUCERS=4 NATTEN_CUDA_TILED_PRODUCERS=8 NATTEN_CUDA_TILED_CONFIG=6; do env $e LD_LIBRARY_PATH=.libs timeout 30 /tmp/host-cost qk 100 > $L/hc.txt 2>&1; st "hc qk $e: $(grep 'back-to-back' $L/hc.txt | tr -s ' ')"; done; pack
( NATTEN_CUDA_TILED_PRODUCERS=8 CK_RUN_CASE=configs timeout 200 tests/check_cuda > $L/check_cuda_configs-p8.log 2>&1; echo "rc $?" >> $L/check_cuda_configs-p8.log ); st "check_cuda configs p8: $(tail -3 $L/check_cuda_configs-p8.log | tr '\n' ' ')"; pack
timeout 250 make -j8 check > $L/make-check.log 2>&1; st "make check rc=$? $(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' $L/make-check.log | tr '\n' ' ')"; cp tests/*.log $L/ 2>/dev/null; pack
