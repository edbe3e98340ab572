#!/bin/sh
# v4 (wgmma), the second device call as prepared (NOT run: the session's
# device budget was below the lead's reserve when it was ready), from the root
# of a copy of the tree
# (generated configure included; tc-harness built on the host with
# -gencode arch=compute_90a,code=sm_90a, beside this script): the library and
# its tests build in the background while the harness checks the new Hopper
# variants (n32 tiles, the overlapped pipeline: 14, 15, 17), runs memcheck on the variant
# the library ships (12) and times the big problems with the box search's mask
# weight 0.5 and 2.0; then check_cuda_tc (configuration 10 = the Hopper
# forward, on every case), natten-bench on the three target problems (the
# default, v3's configuration 6, and configuration 10), check_equivalence with
# what time is left.  Logs under $OUT.  About 170 s.
OUT=${OUT:-/tmp}
top=$PWD
H=$top/backends/cuda_tc/standalone
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
for f in ${DEBS:-../.gpu}/*.deb; do dpkg -x "$f" /; done
mkdir -p /tmp/b && cd /tmp/b && ($top/configure --with-cuda-arch=90 && make -j14 && make -j14 check TESTS=) \
    > $OUT/build.log 2>&1 &
bpid=$!
cd $H
./tc-harness probe > $OUT/harness.log 2>&1
for v in 14 15 17; do
    timeout 15 ./tc-harness checkv $v >> $OUT/harness.log 2>&1
    el "checkv $v rc=$?" >> $OUT/harness.log
done
timeout 20 compute-sanitizer --tool memcheck ./tc-harness checkv 12 > $OUT/san.log 2>&1
el "memcheck checkv 12 rc=$?" >> $OUT/san.log
for v in d f i; do
    timeout 25 ./tc-harness bench 20 2.0 $v 012 0 >> $OUT/bench.log 2>&1
    el "bench $v rc=$?" >> $OUT/bench.log
done
wait $bpid; el "build rc=$?" >> $OUT/build.log
cd /tmp/b
timeout 60 make check TESTS="tests/check_cuda_tc" > $OUT/check.log 2>&1
el "check_cuda_tc rc=$?" >> $OUT/check.log
cat tests/check_cuda_tc.log >> $OUT/check.log 2>/dev/null
B="./natten-bench --op fna --warmup 2 --repeat 20 --no-verify --dtype float16 --backend cuda-tc,cuda-tc/10"
timeout 13 $B -i 256 256 -w 80 -d 128 -n 24 > $OUT/nb.log 2>&1; el "nb 2-D rc=$?" >> $OUT/nb.log
timeout 16 $B -i 30 48 80 -w 18 24 24 -d 128 -n 24 >> $OUT/nb.log 2>&1; el "nb 3-D rc=$?" >> $OUT/nb.log
timeout 6 $B -i 32768 -w 2048 -d 128 -n 1 >> $OUT/nb.log 2>&1; el "nb 1-D rc=$?" >> $OUT/nb.log
rem=$(( 172 - $(date +%s) + T0 ))
if [ $rem -gt 3 ]; then
    timeout $rem make check TESTS="tests/check_equivalence" > $OUT/equiv.log 2>&1
    el "check_equivalence rc=$? (limit $rem s)" >> $OUT/equiv.log
    cat tests/check_equivalence.log >> $OUT/equiv.log 2>/dev/null
else
    el "check_equivalence not run: no time left" > $OUT/equiv.log
fi
grep -E "FAIL|check:|rc=" $OUT/harness.log | head -30
grep -E "ERROR SUMMARY|rc=" $OUT/san.log
grep -E "^v|FAIL|rc=" $OUT/bench.log
grep -E "rc=|error" $OUT/build.log | tail -5
grep -E "^(PASS|FAIL|SKIP|ERROR)|rc=|tuned:|refused|Checks|%" $OUT/check.log | tail -20
grep -vE "^\s*$" $OUT/nb.log | tail -30
grep -E "^(PASS|FAIL|SKIP|ERROR)|rc=|Checks" $OUT/equiv.log | tail -5
