#!/bin/sh
# v3, first device call, from the root of a copy of the tree (generated
# configure included; a tc-harness built on the host beside this script, else
# built here): library build in the background; harness check (all kernel
# configurations) and bench; then check_cuda_tc.  Logs under $OUT.
OUT=${OUT:-/tmp}
top=$PWD
H=$top/backends/cuda_tc/standalone
for f in ${DEBS:-../.gpu}/*.deb; do dpkg -x "$f" /; done
mkdir -p /tmp/b && cd /tmp/b && ($top/configure --with-cuda-arch=90 && make -j14 && make -j14 check TESTS=) \
    > $OUT/build.log 2>&1 &
bpid=$!
cd $H
if ! ./tc-harness probe > $OUT/harness.log 2>&1; then
    nvcc -O3 -std=c++17 -arch=sm_90 -I $top/backends/cuda_tc -I $top/lib harness.cu -o tc-harness >> $OUT/harness.log 2>&1
    ./tc-harness probe >> $OUT/harness.log 2>&1
fi
./tc-harness selftest >> $OUT/harness.log 2>&1
timeout 45 ./tc-harness check >> $OUT/harness.log 2>&1; echo "check rc=$?" >> $OUT/harness.log
timeout 120 ./tc-harness bench 20 0.5 > $OUT/bench.log 2>&1; echo "bench rc=$?" >> $OUT/bench.log
wait $bpid; echo "build rc=$?" >> $OUT/build.log
cd /tmp/b && timeout 50 make check TESTS="tests/check_cuda_tc" > $OUT/check.log 2>&1
echo "make check rc=$?" >> $OUT/check.log
cat tests/check_cuda_tc.log >> $OUT/check.log 2>/dev/null
grep -E "^(PASS|FAIL|SKIP|ERROR)|rc=|tuned:|Checks" $OUT/check.log $OUT/build.log | tail -20
grep -E "FAIL|check:|selftest|rc=" $OUT/harness.log
grep -E "^v[0-9]|^default|rc=|FAIL" $OUT/bench.log
