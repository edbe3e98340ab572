#!/bin/sh
# v3, second device call, from the root of a copy of the tree (generated
# configure included; tc-harness built on the host beside this script): the
# library and its tests build in the background while the harness checks the
# new configuration and times the small problems; then `make check`,
# natten-bench --suite gpu --backend cuda-tc, and the sanitizers (harness on
# the new configurations, tests/gpu-sanitize.sh on check_cuda_tc), each under
# a timeout.  Logs under $OUT.
OUT=${OUT:-/tmp}
top=$PWD
H=$top/backends/cuda_tc/standalone
for f in ${DEBS:-../.gpu}/*.deb; do dpkg -x "$f" /; done
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
mkdir -p /tmp/b && cd /tmp/b && ($top/configure --with-cuda-arch=90 && make -j15 && make -j15 check TESTS=) \
    > $OUT/build.log 2>&1 &
bpid=$!
cd $H
{ ./tc-harness checkv 9; ./tc-harness checkv 5; } > $OUT/harness.log 2>&1
el "harness checks rc=$?" >> $OUT/harness.log
timeout 30 ./tc-harness bench 20 1.0 12589 23 1 >> $OUT/harness.log 2>&1
el "bench small rc=$?" >> $OUT/harness.log
timeout 30 ./tc-harness bench 20 1.0 59 0 1 >> $OUT/harness.log 2>&1
el "bench 2-D rc=$?" >> $OUT/harness.log
timeout 25 ./tc-harness bench 20 1.0 59 1 0 >> $OUT/harness.log 2>&1
el "bench 3-D rc=$?" >> $OUT/harness.log
timeout 20 compute-sanitizer --tool memcheck ./tc-harness checkv 5 > $OUT/san.log 2>&1
timeout 20 compute-sanitizer --tool racecheck ./tc-harness checkv 9 >> $OUT/san.log 2>&1
el "harness sanitizers" >> $OUT/san.log
wait $bpid; el "build rc=$?" >> $OUT/build.log
cd /tmp/b && timeout 60 make -j8 check > $OUT/check.log 2>&1
el "make check rc=$?" >> $OUT/check.log
timeout 50 ./natten-bench --suite gpu --backend cuda-tc --warmup 2 --repeat 20 --verify-limit 1 > $OUT/natten-bench.log 2>&1
el "natten-bench rc=$?" >> $OUT/natten-bench.log
rem=$(( 225 - $(date +%s) + T0 ))
if [ $rem -gt 5 ]; then
    TOOLS="memcheck racecheck" timeout $rem $top/tests/gpu-sanitize.sh /tmp/b tests/check_cuda_tc >> $OUT/san.log 2>&1
    el "gpu-sanitize rc=$? (limit $rem s)" >> $OUT/san.log
else
    el "gpu-sanitize not run: no time left" >> $OUT/san.log
fi
grep -E "^# |^(FAIL|ERROR)|rc=" $OUT/check.log | head -20
grep -E "SUMMARY|check:|gpu-sanitize|\] " $OUT/san.log
grep -E "FAIL|check:|\] |^v[0-9]|^default|^bwd" $OUT/harness.log
tail -25 $OUT/natten-bench.log
