#!/bin/sh
# v4 (wgmma), first device call: the harness (built on the host with
# -gencode arch=compute_90a,code=sm_90a, beside this script) checks each Hopper
# variant on the 22 edge cases at head dim 128 (one process each: a fault in
# one variant cannot hide the others), then times the big problems against
# configurations 5 and 7.  Logs under $OUT.
OUT=${OUT:-/tmp}
cd "$(dirname "$0")"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
./tc-harness probe > $OUT/harness.log 2>&1
for v in 9 10 11 12 13; do
    timeout 20 ./tc-harness checkv $v >> $OUT/harness.log 2>&1
    el "checkv $v rc=$?" >> $OUT/harness.log
done
for v in a b c d e 5 7; do
    timeout 30 ./tc-harness bench 20 0.5 $v 012 0 >> $OUT/bench.log 2>&1
    el "bench $v rc=$?" >> $OUT/bench.log
done
grep -E "FAIL|check:|rc=" $OUT/harness.log | head -60
grep -E "^v|FAIL|rc=" $OUT/bench.log
