#!/bin/bash
# session 13, call 2: fwd_ws_kernel's phases traced per block (WS_TRACE build)
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s13b; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s13b.tgz s13b); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
[ -f Makefile ] || { (./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"; }
touch backends/cuda_tc/tc-fwd128-sm90a.cu
make -j16 NVCCFLAGS=-DWS_TRACE libnatten.la > $L/build.log 2>&1; st "trace build rc=$?"
[ -x /tmp/host-cost ] || nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I . tools/host-cost.cu -L .libs -lnatten -o /tmp/host-cost > $L/hc-build.log 2>&1
st "host-cost rc=$?"
tr(){ n=$1; shift; env "$@" > $L/$n.out 2> $L/$n.trace; }
tr c15-25344-2048 NATTEN_CUDA_TC_CONFIG=15 LD_LIBRARY_PATH=.libs timeout 60 /tmp/host-cost 1d:25344:2048 100
tr c15-25344-512 NATTEN_CUDA_TC_CONFIG=15 LD_LIBRARY_PATH=.libs timeout 60 /tmp/host-cost 1d:25344:512 100
tr c15-25344-8192 NATTEN_CUDA_TC_CONFIG=15 LD_LIBRARY_PATH=.libs timeout 60 /tmp/host-cost 1d:25344:8192 100
tr c18-1d NATTEN_CUDA_TC_CONFIG=18 LD_LIBRARY_PATH=.libs timeout 60 /tmp/host-cost 1d 100
tr c18-1d-iso WS_TRACE_CALL=60 NATTEN_CUDA_TC_CONFIG=18 LD_LIBRARY_PATH=.libs timeout 60 /tmp/host-cost 1d 100
tr c15-192 NATTEN_CUDA_TC_CONFIG=15 LD_LIBRARY_PATH=.libs timeout 60 /tmp/host-cost 1d:192:65 100
tr c15-50688 NATTEN_CUDA_TC_CONFIG=15 LD_LIBRARY_PATH=.libs timeout 60 /tmp/host-cost 1d:50688:2048 100
st "traces done"; pack
