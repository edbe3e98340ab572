#!/bin/bash
# session 15, call 6: tools/red-bench.cu, the L2 reduction traffic of a fused dQ on the 2-D backward
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
L=/tmp/s15f; rm -rf $L; mkdir -p $L
nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 tools/red-bench.cu -o /tmp/red-bench > $L/build.log 2>&1; echo "build rc=$?" >> $L/build.log
for r in 1 2; do timeout 120 /tmp/red-bench 5 > $L/red-bench-$r.txt 2>&1; done
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw --format=csv > $L/smi.txt 2>&1
(cd /tmp && tar czf $OUT/s15f.tgz s15f)
