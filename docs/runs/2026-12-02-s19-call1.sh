#!/bin/bash
# session 19, call 1: avb/qkb with 8 vs 12 producer warps (QB_MAXP 12), A/B against avh (config 6),
# natten-bench verify (fp16, bf16), host-cost, ncu of avb (speed of light, warp states, memory)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=$OUT/s19a; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
for f in .gpu/*.deb; do dpkg -x $f / ; done
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $L/gpu.txt 2>&1
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"
B="./natten-bench -i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20 --dtype float16"
for op in av qk; do timeout 60 $B --op $op --peak > $L/bench-verify-$op.txt 2>&1; st "verify $op: $(grep -E 'cuda-tiled@' $L/bench-verify-$op.txt | tail -1 | tr -s ' ')"; done
timeout 60 $B --op av --dtype bfloat16 > $L/bench-verify-av-bf16.txt 2>&1; st "verify av bf16: $(grep -E 'cuda-tiled@' $L/bench-verify-av-bf16.txt | tail -1 | tr -s ' ')"
for p in 12; do for op in av qk; do NATTEN_CUDA_TILED_PRODUCERS=$p timeout 60 $B --op $op > $L/bench-verify-$op-p$p.txt 2>&1; st "verify $op p$p: $(grep -E 'cuda-tiled@' $L/bench-verify-$op-p$p.txt | tail -1 | tr -s ' ')"; done; done
for r in 1 2 3; do
  for v in "av 0 8" "av 0 12" "av 6 8" "qk 0 8" "qk 0 12" "qk 0 10" "av 0 10"; do set -- $v
    NATTEN_CUDA_TILED_CONFIG=$2 NATTEN_CUDA_TILED_PRODUCERS=$3 timeout 30 $B --op $1 --no-verify --peak > $L/b.txt 2>&1
    st "r$r $1 c$2 p$3: $(grep -E 'cuda-tiled@' $L/b.txt | tail -1 | tr -s ' ')"; done; done
nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I . tools/host-cost.cu -L .libs -lnatten -o /tmp/host-cost > $L/hc-build.log 2>&1
for v in "av 0 8" "av 0 12" "av 6 8" "qk 0 8" "qk 0 12"; do set -- $v
  NATTEN_CUDA_TILED_CONFIG=$2 NATTEN_CUDA_TILED_PRODUCERS=$3 LD_LIBRARY_PATH=.libs timeout 30 /tmp/host-cost $1 100 > $L/hc.txt 2>&1
  st "hc $1 c$2 p$3: $(grep 'back-to-back' $L/hc.txt | tr -s ' ')"; done
for p in 8 12; do OUT=$L/prof-av-p$p NATTEN_CUDA_TILED_PRODUCERS=$p NCU_SECTIONS="SpeedOfLight WarpStateStats MemoryWorkloadAnalysis" PROFILES="tiled-av-f16" T_ONE=100 timeout 110 tools/gpu-profile.sh . > $L/prof-av-p$p.log 2>&1; st "prof av p$p rc=$?"; done
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv >> $L/gpu.txt 2>&1
st done
