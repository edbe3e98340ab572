#!/bin/bash
# session 16, call 1: qkb (bulk-copy QK, sm_90): build, verify, check_cuda configs, A/B vs config 6 (qkh), host-cost
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s16a; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s16a.tgz s16a); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
if [ ! -f Makefile ]; then (./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"; fi
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
B="./natten-bench -i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20"
for c in 0 6; do NATTEN_CUDA_TILED_CONFIG=$c timeout 60 $B --dtype float16 --op qk --peak > $L/bench-qk-c$c-r1.txt 2>&1; st "r1 qk c$c rc=$?: $(grep -E 'cuda-tiled' $L/bench-qk-c$c-r1.txt | tail -2 | tr -s ' ' | tr '\n' '|')"; done; pack
( CK_RUN_CASE=configs timeout 200 tests/check_cuda > $L/check_cuda_configs.log 2>&1; echo "rc $?" >> $L/check_cuda_configs.log ); st "check_cuda configs: $(tail -3 $L/check_cuda_configs.log | tr '\n' ' ')"; pack
for r in 2 3 4; do for c in 0 6; do
  NATTEN_CUDA_TILED_CONFIG=$c timeout 30 $B --dtype float16 --op qk --no-verify > $L/bench-qk-c$c-r$r.txt 2>&1
  st "r$r qk c$c: $(grep -E 'cuda-tiled' $L/bench-qk-c$c-r$r.txt | tail -1 | tr -s ' ')"; done; done; pack
for c in 0 6; do NATTEN_CUDA_TILED_CONFIG=$c timeout 30 $B --dtype bfloat16 --op qk --no-verify > $L/bench-qkbf-c$c.txt 2>&1; st "bf16 qk c$c: $(grep -E 'cuda-tiled' $L/bench-qkbf-c$c.txt | tail -1 | tr -s ' ')"; done
nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I . tools/host-cost.cu -L .libs -lnatten -o /tmp/host-cost > $L/hc-build.log 2>&1
for c in 0 6 0 6; do NATTEN_CUDA_TILED_CONFIG=$c LD_LIBRARY_PATH=.libs timeout 30 /tmp/host-cost qk 100 > $L/hc-qk-c$c.txt 2>&1; st "hc qk c$c: $(grep 'back-to-back' $L/hc-qk-c$c.txt | tr -s ' ')"; done; pack
SEC="SpeedOfLight Occupancy WarpStateStats SchedulerStats InstructionStats MemoryWorkloadAnalysis LaunchStats"
OUT=$L/prof NCU_SECTIONS="$SEC" PROFILES="tiled-qk-f16" T_ONE=100 timeout 150 tools/gpu-profile.sh . > $L/prof.log 2>&1; st "prof rc=$?"; pack
