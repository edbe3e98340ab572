#!/bin/bash
# session 14, call 5: main's exact tree: build, make check, memcheck + racecheck of check_cuda_tc hopper and split
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s14e; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s14e.tgz s14e); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
git log --oneline -1 > $L/head.txt 2>&1; git status --short >> $L/head.txt 2>&1
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
( SANITIZE_BUDGET=150 SAN_CASES="check_cuda_tc:hopper,split" TOOLS="memcheck racecheck" SAN_JOBS=4 timeout 160 tests/gpu-sanitize.sh . tests/check_cuda_tc > $L/sanitize.log 2>&1; cp gpu-sanitize/*.log $L/ 2>/dev/null )
st "sanitize: $(grep 'gpu-sanitize:' $L/sanitize.log | tail -1)"; pack
( timeout 150 make -j16 check > $L/check.log 2>&1; echo "make check rc $?" >> $L/check.log; cp tests/*.log $L/ 2>/dev/null )
st "check: $(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' $L/check.log | tr '\n' ' ')"; pack
