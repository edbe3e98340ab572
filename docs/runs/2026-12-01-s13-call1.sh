#!/bin/bash
# session 13, call 1: main built; the 1-D forward's time split into a block's
# fixed cost and its per-tile cost: back-to-back GPU times (host-cost) of grids
# of whole rounds (132 boxes of 192 rows: N 25344) with windows 512..4096 under
# configuration 15 (no split) and 18 (split), two and three rounds, the target.
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s13a; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s13a.tgz s13a); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.sm --format=csv,noheader >> $L/steps.log 2>&1
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j16 > $L/build.log 2>&1; st "build rc=$? warning lines=$(grep -ci warning $L/build.log)"; pack
nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I . tools/host-cost.cu -L .libs -lnatten -o /tmp/host-cost > $L/hc-build.log 2>&1
st "host-cost build rc=$?"
hc(){ echo "== $*" >> $L/hc.log; env "$@" >> $L/hc.log 2>&1; }
for r in 1 2; do
  for cfg in 15 18 13; do
    for k in 512 1024 2048 4096 8192; do hc NATTEN_CUDA_TC_CONFIG=$cfg LD_LIBRARY_PATH=.libs timeout 60 /tmp/host-cost 1d:25344:$k 100; done
    for n in 50688 76032; do hc NATTEN_CUDA_TC_CONFIG=$cfg LD_LIBRARY_PATH=.libs timeout 60 /tmp/host-cost 1d:$n:2048 100; done
    hc NATTEN_CUDA_TC_CONFIG=$cfg LD_LIBRARY_PATH=.libs timeout 60 /tmp/host-cost 1d:192:65 100
  done
  hc LD_LIBRARY_PATH=.libs timeout 60 /tmp/host-cost 1d 100
  st "round $r"; pack
done
grep -E '^==|back-to-back|events around' $L/hc.log > $L/hc-summary.log
st "all done"; pack
