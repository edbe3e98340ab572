#!/bin/bash
# session 16, call 2: qkb with 1/2/4 producer warps: A/B vs config 6 (qkh), check_cuda configs, ncu source-level stalls
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s16b; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s16b.tgz s16b); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
if [ ! -f Makefile ]; then (./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"; fi
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
B="./natten-bench -i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20"
NATTEN_CUDA_TILED_PRODUCERS=4 timeout 60 $B --dtype float16 --op qk > $L/bench-verify.txt 2>&1; st "verify p4: $(grep -E 'cuda-tiled' $L/bench-verify.txt | tail -1 | tr -s ' ')"
for r in 1 2; do for p in 1 2 4 6; do
  if [ $p = 6 ]; then e="NATTEN_CUDA_TILED_CONFIG=6"; else e="NATTEN_CUDA_TILED_PRODUCERS=$p"; fi
  env $e timeout 30 $B --dtype float16 --op qk --no-verify > $L/bench-qk-p$p-r$r.txt 2>&1
  st "r$r qk $e: $(grep -E 'cuda-tiled' $L/bench-qk-p$p-r$r.txt | tail -1 | tr -s ' ')"; done; done; pack
( CK_RUN_CASE=configs timeout 200 tests/check_cuda > $L/check_cuda_configs.log 2>&1; echo "rc $?" >> $L/check_cuda_configs.log ); st "check_cuda configs: $(tail -3 $L/check_cuda_configs.log | tr '\n' ' ')"; pack
for p in 1 4; do
OUT=$L/prof-p$p NATTEN_CUDA_TILED_PRODUCERS=$p NCU_SECTIONS="SpeedOfLight WarpStateStats InstructionStats" PROFILES="tiled-qk-f16" T_ONE=100 timeout 110 tools/gpu-profile.sh . > $L/prof-p$p.log 2>&1; st "prof p$p rc=$?"; pack
done
OUT=$L/src NATTEN_CUDA_TILED_PRODUCERS=4 NCU_SECTIONS="SourceCounters" NCU_EXTRA="--page source --print-source sass --csv" PROFILES="tiled-qk-f16" T_ONE=120 timeout 130 tools/gpu-profile.sh . > $L/src.log 2>&1; st "src rc=$?"; pack
