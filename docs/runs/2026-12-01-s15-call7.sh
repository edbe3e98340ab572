#!/bin/bash
# session 15, call 7: tools/red-bench.cu with larger key tiles (the fused dQ's traffic against the tile size)
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
L=/tmp/s15g; rm -rf $L; mkdir -p $L
nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 tools/red-bench.cu -o /tmp/red-bench > $L/build.log 2>&1; echo "build rc=$?" >> $L/build.log
for t in "8 16" "16 16" "16 32" "32 32"; do timeout 120 /tmp/red-bench 5 $t >> $L/red-bench.txt 2>&1; done
(cd /tmp && tar czf $OUT/s15g.tgz s15g)
