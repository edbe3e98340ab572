#!/bin/sh
# gpu-run11.sh - NEVER RUN (superseded by gpu-run12.sh, v8) (written after v7's two device calls): the next
# steps of the warp-specialised forward in the harness, against the shipped
# variant t (the library's configuration 13): v (5 stages), w (t with tree
# reductions of the row maxima and sums), x (both).  Build the harness on the
# host first (NOTES.md), then from the tree's root with OUT set; ~110 s.
OUT=${OUT:-/tmp}
cd "$(dirname "$0")"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
./tc-harness probe > $OUT/harness.log 2>&1
for v in 30 31 32; do
    timeout 13 ./tc-harness checkv $v >> $OUT/harness.log 2>&1
    el "checkv $v rc=$?" >> $OUT/harness.log
done
for v in t v w x; do
    timeout 20 ./tc-harness bench 20 0.5 $v 012 0 >> $OUT/bench.log 2>&1
    el "bench $v rc=$?" >> $OUT/bench.log
done
grep -E "FAIL|check:|rc=" $OUT/harness.log | head -40
grep -E "^v|FAIL|rc=" $OUT/bench.log
