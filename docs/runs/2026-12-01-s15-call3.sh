#!/bin/bash
# session 15, call 3: qkr/avr v2 (scratch tiles, per-thread chunk maps): build, check_cuda configs, A/B vs config 6, ncu
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s15c; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s15c.tgz s15c); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
if [ ! -f Makefile ]; then (./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"; fi
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
B="./natten-bench -i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20"
for op in qk av; do for c in 0 6; do NATTEN_CUDA_TILED_CONFIG=$c timeout 60 $B --dtype float16 --op $op --peak > $L/bench-$op-c$c-r1.txt 2>&1; st "r1 $op c$c: $(grep -E 'cuda-tiled@' $L/bench-$op-c$c-r1.txt | tail -1 | tr -s ' ')"; done; done; pack
( CK_RUN_CASE=configs timeout 150 tests/check_cuda > $L/check_cuda_configs.log 2>&1; echo "rc $?" >> $L/check_cuda_configs.log ); st "check_cuda configs: $(tail -3 $L/check_cuda_configs.log | tr '\n' ' ')"; pack
for r in 2 3; do for op in qk av; do for c in 0 6; do
  NATTEN_CUDA_TILED_CONFIG=$c timeout 30 $B --dtype float16 --op $op --no-verify > $L/bench-$op-c$c-r$r.txt 2>&1
  st "r$r $op c$c: $(grep -E 'cuda-tiled@' $L/bench-$op-c$c-r$r.txt | tail -1 | tr -s ' ')"; done; done; done; pack
nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I . tools/host-cost.cu -L .libs -lnatten -o /tmp/host-cost > $L/hc-build.log 2>&1
for c in 0 6; do for op in qk av; do NATTEN_CUDA_TILED_CONFIG=$c LD_LIBRARY_PATH=.libs timeout 30 /tmp/host-cost $op 100 > $L/hc-$op-c$c.txt 2>&1; st "hc $op c$c: $(grep 'back-to-back' $L/hc-$op-c$c.txt | tr -s ' ')"; done; done; pack
SEC="SpeedOfLight Occupancy WarpStateStats SchedulerStats InstructionStats ComputeWorkloadAnalysis MemoryWorkloadAnalysis LaunchStats"
OUT=$L/prof NCU_SECTIONS="$SEC" PROFILES="tiled-qk-f16 tiled-av-f16" T_ONE=100 tools/gpu-profile.sh . > $L/prof.log 2>&1; st "prof rc=$?"; pack
