#!/bin/sh
# gpu-run12.sh - v8's harness call (helper tc7), replacing gpu-run11.sh
# (never run): times the shipped variant t (the library's configuration 13)
# against v (5 stages), w (t + tree reductions, RED), x (both) and v8's y
# (6 stages), z (t + Q in registers, QR), A (5 stages + QR), B (x + QR),
# C (6 stages + QR), D (C + RED) on the three big problems, in one bench
# process (inputs set up once per problem; 64 sampled rows of each problem
# checked per variant against the CPU reference), then the 22 edge cases at
# head dim 128 (fp16 and bf16) for the three new variants fastest on the 2-D
# problem (one process each, with a time limit).  Build the harness on the
# host first (NOTES.md; ~90 s), run from the tree's root with OUT set.  The
# edge-case checks stop by DEADLINE seconds (default 120) after the start.
OUT=${OUT:-/tmp}
DEADLINE=${DEADLINE:-120}
cd "$(dirname "$0")"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
left() { echo $(( DEADLINE - ($(date +%s) - T0) )); }
./tc-harness probe > $OUT/harness.log 2>&1
timeout 80 ./tc-harness bench 20 0.5 tvwxyzABCD 012 0 > $OUT/bench.log 2>&1
el "bench tvwxyzABCD rc=$?" >> $OUT/bench.log
# the new variants by 2-D time (fields: v<N> 2d 256x256 K80 H24 D128 name box ms ...)
top=$(awk '$1 ~ /^v/ && $2 == "2d" && $3 == "256x256" && $1 != "v28" {print $9, substr($1, 2)}' $OUT/bench.log |
      sort -n | head -3 | awk '{print $2}')
el "fastest new variants on 2-D: $top" >> $OUT/harness.log
for v in $top; do
    l=$(left); [ "$l" -gt 14 ] || { el "checkv $v skipped (deadline)" >> $OUT/harness.log; continue; }
    timeout 13 ./tc-harness checkv $v >> $OUT/harness.log 2>&1
    el "checkv $v rc=$?" >> $OUT/harness.log
done
grep -E "FAIL|check:|rc=|skipped|fastest" $OUT/harness.log | head -40
grep -E "^v|FAIL|rc=" $OUT/bench.log
