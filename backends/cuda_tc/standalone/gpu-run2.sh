#!/bin/sh
# Second device call, from the root of a copy of the tree (generated
# configure included): library build + test suites, the standalone harness
# (all kernel configurations: check and bench), sanitizers.  Logs under $OUT.
OUT=${OUT:-/tmp}
top=$PWD
H=$top/backends/cuda_tc/standalone
for f in ${DEBS:-../.gpu}/*.deb; do dpkg -x "$f" /; done
mkdir -p /tmp/b && cd /tmp/b && ((cd $top && ./bootstrap) && $top/configure --with-cuda-arch=90 && make -j12) > $OUT/build.log 2>&1 &
bpid=$!
cd $H && ./tc-harness all 20 > $OUT/harness.log 2>&1
wait $bpid; echo "build rc=$?" >> $OUT/build.log
cd /tmp/b && timeout 120 make check TESTS="tests/check_cuda_tc tests/check_equivalence" > $OUT/check.log 2>&1
echo "make check rc=$?" >> $OUT/check.log
cat tests/check_cuda_tc.log tests/check_equivalence.log >> $OUT/check.log 2>/dev/null
cd $H && timeout 50 compute-sanitizer --tool memcheck ./tc-harness check1 > $OUT/san.log 2>&1
timeout 50 compute-sanitizer --tool racecheck ./tc-harness check1 >> $OUT/san.log 2>&1
grep -E "^(PASS|FAIL|SKIP|ERROR)|^# |rc=" $OUT/check.log $OUT/build.log
grep -E "SUMMARY|check:" $OUT/san.log
grep -E "FAIL|check:|^v[0-9]|selftest" $OUT/harness.log
