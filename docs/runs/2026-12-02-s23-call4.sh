#!/bin/bash
# session 23, call 4: the final tree (configuration 21, the producers' arrivals made by cp.async,
# the default for ranks 2-3 from 2^17 rows; the ping-pong configuration removed) built on the H200:
# the full make check; issue 9's 2-D forward + backward, default against 20, alternating.
# Logs in $OUT/s23d.tgz.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s23d; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s23d.tgz s23d); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
git log --oneline -1 > $L/commit.txt 2>&1; git status --short >> $L/commit.txt; git diff > $L/diff.patch
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
timeout 230 make -j16 check > $L/make-check.log 2>&1; st "make check rc=$? $(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' $L/make-check.log | tr '\n' ' ') cuda_tc: $(grep -E '^[0-9]+%: Checks' tests/check_cuda_tc.log | tr '\n' ' ')"; cp tests/*.log $L/ 2>/dev/null; pack
B=./natten-bench
P2="-i 256 256 -w 80 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --backward --repeat 10 --no-verify"
b(){ n=$1; cfg=$2; shift 2; echo "== $n config=$cfg $*" >> $L/bench.log
  NATTEN_CUDA_TC_CONFIG=$cfg timeout -s KILL 90 ./libtool --mode=execute $B "$@" > $L/b.txt 2>&1; echo "rc=$?" >> $L/b.txt; cat $L/b.txt >> $L/bench.log
  st "$n cfg=$cfg: $(grep -E 'fna +(fwd|bwd|fwd\+bwd) ' $L/b.txt | awk '{print $3, $4, $5}' | tr '\n' ' ')"; }
for r in 1 2; do b 2d 0 $P2; b 2d 20 $P2; pack; done
st done; pack
