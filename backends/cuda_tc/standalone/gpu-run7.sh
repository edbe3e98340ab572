#!/bin/sh
# v5 (the Hopper backward, tc_wgmma_bwd.cuh), prepared for one device call of
# about 180 s; not yet run.  From anywhere in a copy of the tree: the harness
# (best built on the host with -gencode arch=compute_90a,code=sm_90a and
# carried beside this script as tc-harness; built here otherwise, which costs
# about a minute) checks each Hopper backward variant (configurations 18..23,
# letters j..o; the forward before them is the library default) on the 22 edge
# cases at head dim 128 against the double-precision CPU reference, one
# process each; memcheck on variant j; then times the three big problems:
# the default (mma.sync) forward and backward, the Hopper forward d, and each
# Hopper backward alone, whose gradients are compared with the default
# backward's on the same inputs and checked bit-identical on a second run.
# Logs under $OUT.
OUT=${OUT:-/tmp}
PATH=$PATH:/usr/local/cuda/bin
cd "$(dirname "$0")"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
if [ ! -x ./tc-harness ]; then
    timeout 150 nvcc -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -I .. -I ../../../lib harness.cu \
        -o tc-harness > $OUT/build.log 2>&1
    el "harness build rc=$?" >> $OUT/build.log
fi
./tc-harness probe > $OUT/harness.log 2>&1
for v in 18 19 20 21 22 23; do
    timeout 20 ./tc-harness checkv $v >> $OUT/harness.log 2>&1
    el "checkv $v rc=$?" >> $OUT/harness.log
done
timeout 25 compute-sanitizer --tool memcheck ./tc-harness checkv 18 > $OUT/san.log 2>&1
el "memcheck checkv 18 rc=$?" >> $OUT/san.log
# 2-D 256^2, 1-D 32768, then 3-D (the longest: about 70 s if the predictions hold)
timeout 30 ./tc-harness bench 20 0.5 jklmno 0 2 > $OUT/bench.log 2>&1
el "bench 2-D rc=$?" >> $OUT/bench.log
timeout 8 ./tc-harness bench 20 0.5 jklmno 2 2 >> $OUT/bench.log 2>&1
el "bench 1-D rc=$?" >> $OUT/bench.log
rem=$(( 178 - $(date +%s) + T0 ))
[ $rem -gt 90 ] && rem=90
if [ $rem -gt 20 ]; then
    timeout $rem ./tc-harness bench 20 0.5 jklmno 1 2 >> $OUT/bench.log 2>&1
    el "bench 3-D rc=$? (limit $rem s)" >> $OUT/bench.log
else
    el "bench 3-D not run: no time left" >> $OUT/bench.log
fi
grep -E "rc=" $OUT/build.log 2>/dev/null
grep -E "FAIL|check:|rc=" $OUT/harness.log | head -40
grep -E "ERROR SUMMARY|rc=" $OUT/san.log
grep -E "^(fwd|default|bwd)|FAIL|rc=" $OUT/bench.log
