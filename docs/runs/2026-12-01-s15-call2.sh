#!/bin/bash
# session 15, call 2: ncu of qkr/avr (and qkh/avh under config 6) on the 56x56 B 64 problem
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s15b; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s15b.tgz s15b); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
if [ ! -x natten-bench ] || [ ! -f .libs/libnatten.so ]; then (./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; fi
make -j16 > $L/build.log 2>&1; st "build rc=$?"
SEC="SpeedOfLight Occupancy WarpStateStats SchedulerStats InstructionStats ComputeWorkloadAnalysis MemoryWorkloadAnalysis LaunchStats"
OUT=$L/prof NCU_SECTIONS="$SEC" PROFILES="tiled-qk-f16 tiled-av-f16" T_ONE=100 tools/gpu-profile.sh . > $L/prof.log 2>&1; st "prof rc=$?"; pack
