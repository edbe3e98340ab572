#!/bin/bash
# session 16, call 3: qkb, cheaper producer loop, 4 vs 8 producer warps vs config 6 (qkh); tests; host-cost
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s16c; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s16c.tgz s16c); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
if [ ! -f Makefile ]; then (./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"; fi
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
B="./natten-bench -i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20"
for p in 4 8; do NATTEN_CUDA_TILED_PRODUCERS=$p timeout 60 $B --dtype float16 --op qk > $L/bench-verify-p$p.txt 2>&1; st "verify p$p: $(grep -E 'cuda-tiled' $L/bench-verify-p$p.txt | tail -1 | tr -s ' ')"; done
for r in 1 2 3; do for p in 4 8 6; do
  if [ $p = 6 ]; then e="NATTEN_CUDA_TILED_CONFIG=6"; else e="NATTEN_CUDA_TILED_PRODUCERS=$p"; fi
  env $e timeout 30 $B --dtype float16 --op qk --no-verify > $L/bench-qk-p$p-r$r.txt 2>&1
  st "r$r qk $e: $(grep -E 'cuda-tiled' $L/bench-qk-p$p-r$r.txt | tail -1 | tr -s ' ')"; done; done; pack
timeout 30 $B --dtype float16 --op av --no-verify > $L/bench-av.txt 2>&1; st "av: $(grep -E 'cuda-tiled' $L/bench-av.txt | tail -1 | tr -s ' ')"
nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I . tools/host-cost.cu -L .libs -lnatten -o /tmp/host-cost > $L/hc-build.log 2>&1
for e in NATTEN_CUDA_TILED_PRODUCERS=4 NATTEN_CUDA_TILED_PRODUCERS=8 NATTEN_CUDA_TILED_CONFIG=6; do env $e LD_LIBRARY_PATH=.libs timeout 30 /tmp/host-cost qk 100 > $L/hc.txt 2>&1; st "hc qk $e: $(grep 'back-to-back' $L/hc.txt | tr -s ' ')"; done; pack
for p in 4 8; do ( NATTEN_CUDA_TILED_PRODUCERS=$p CK_RUN_CASE=configs timeout 200 tests/check_cuda > $L/check_cuda_configs-p$p.log 2>&1; echo "rc $?" >> $L/check_cuda_configs-p$p.log ); st "check_cuda configs p$p: $(tail -3 $L/check_cuda_configs-p$p.log | tr '\n' ' ')"; pack; done
OUT=$L/src NATTEN_CUDA_TILED_PRODUCERS=8 NCU_SECTIONS="SourceCounters" NCU_EXTRA="--page source --print-source sass --csv" PROFILES="tiled-qk-f16" T_ONE=100 timeout 110 tools/gpu-profile.sh . > $L/src.log 2>&1; st "src rc=$?"; pack
OUT=$L/prof NATTEN_CUDA_TILED_PRODUCERS=8 NCU_SECTIONS="SpeedOfLight WarpStateStats InstructionStats" PROFILES="tiled-qk-f16" T_ONE=60 timeout 70 tools/gpu-profile.sh . > $L/prof.log 2>&1; st "prof rc=$?"; pack
