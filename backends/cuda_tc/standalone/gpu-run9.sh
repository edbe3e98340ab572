#!/bin/sh
# v7 (warp-specialised Hopper forward), first device call: the harness (built
# on the host with -gencode arch=compute_90a,code=sm_90a, beside this script)
# checks each new variant (24..29, letters p..u) on the 22 edge cases at head
# dim 128, one process each with a time limit (a deadlock in one variant's
# barriers cannot hide the others), then times the three big problems for
# the shipped variant d and each new one (sampled rows checked too).
# Logs under $OUT.
OUT=${OUT:-/tmp}
cd "$(dirname "$0")"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
./tc-harness probe > $OUT/harness.log 2>&1
for v in 24 25 26 27 28 29; do
    timeout 13 ./tc-harness checkv $v >> $OUT/harness.log 2>&1
    el "checkv $v rc=$?" >> $OUT/harness.log
done
for v in d p q r s t u; do
    timeout 20 ./tc-harness bench 20 0.5 $v 012 0 >> $OUT/bench.log 2>&1
    el "bench $v rc=$?" >> $OUT/bench.log
done
timeout 30 compute-sanitizer --tool synccheck ./tc-harness checkv 27 > $OUT/san.log 2>&1
el "synccheck 27 rc=$?" >> $OUT/san.log
grep -E "FAIL|check:|rc=" $OUT/harness.log | head -60
grep -E "^v|FAIL|rc=" $OUT/bench.log
tail -5 $OUT/san.log
