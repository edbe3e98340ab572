#!/bin/bash
# session 16, call 5: the committed tree (22cab47): make check, compute-sanitizer on qkb, A/B bench vs config 6, host-cost
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s16e; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s16e.tgz s16e); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
if [ ! -f Makefile ]; then (./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"; fi
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
B="./natten-bench -i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20"
timeout 60 $B --dtype float16 --op qk --peak > $L/bench-verify.txt 2>&1; st "verify: $(grep -E 'cuda-tiled' $L/bench-verify.txt | tail -1 | tr -s ' ')"
for r in 1 2 3; do for c in 0 6; do NATTEN_CUDA_TILED_CONFIG=$c timeout 30 $B --dtype float16 --op qk --no-verify --peak > $L/bench-qk-c$c-r$r.txt 2>&1
  st "r$r qk c$c: $(grep -E 'cuda-tiled' $L/bench-qk-c$c-r$r.txt | tail -1 | tr -s ' ')"; done; done; pack
nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I . tools/host-cost.cu -L .libs -lnatten -o /tmp/host-cost > $L/hc-build.log 2>&1
for c in 0 6 0 6; do NATTEN_CUDA_TILED_CONFIG=$c LD_LIBRARY_PATH=.libs timeout 30 /tmp/host-cost qk 100 > $L/hc.txt 2>&1; st "hc qk c$c: $(grep 'back-to-back' $L/hc.txt | tr -s ' ')"; done; pack
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck; do for a in "-i 20 22 -w 7 -b 2 -n 4" "-i 21 19 -w 5 3 --dilation 2 1 --rpb -b 2 -n 4" "-i 33 29 -w 7 9 --dilation 3 1 --stride 2 3 -b 2 -n 2"; do
  NATTEN_CUDA_TILED_BLOCKS=3 timeout 60 ./libtool --mode=execute $CS --tool $tool ./natten-bench $a -d 32 --dtype float16 --op qk --backend cuda-tiled --warmup 0 --repeat 1 > $L/san.txt 2>&1
  st "$tool [$a]: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|cuda-tiled@' $L/san.txt | tr -s ' ' | tr '\n' ' ')"; cat $L/san.txt >> $L/san-all.txt; done; done; pack
timeout 250 make -j8 check > $L/make-check.log 2>&1; st "make check rc=$? $(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' $L/make-check.log | tr '\n' ' ')"; cp tests/check_cuda.log $L/ 2>/dev/null; pack
