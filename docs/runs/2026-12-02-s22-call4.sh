#!/bin/bash
# session 22, call 4: this tree (configurations 19 and 20: the warp-specialised backward; 20 the
# default for ranks 2-3 from 2^17 rows) built on the H200: the full make check, issue 9's 2-D and 3-D
# forward + backward with the default against configurations 19 and 16, sanitizers on small
# backwards through 19 and 20.  Logs in $OUT/s22d.tgz.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s22d; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s22d.tgz s22d); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
git log --oneline -1 > $L/commit.txt 2>&1; git status --short >> $L/commit.txt
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
timeout 230 make -j16 check > $L/make-check.log 2>&1; st "make check rc=$? $(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' $L/make-check.log | tr '\n' ' ')"; cp tests/*.log $L/ 2>/dev/null; pack
B=./natten-bench
P2="-i 256 256 -w 80 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --backward --repeat 10 --no-verify"
P3="-i 30 48 80 -w 18 24 24 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --backward --repeat 5 --no-verify"
b(){ n=$1; cfg=$2; shift 2; echo "== $n config=$cfg $*" >> $L/bench.log
  NATTEN_CUDA_TC_CONFIG=$cfg timeout -s KILL 90 ./libtool --mode=execute $B "$@" > $L/b.txt 2>&1; echo "rc=$?" >> $L/b.txt; cat $L/b.txt >> $L/bench.log
  st "$n cfg=$cfg: $(grep -E 'fna +(fwd|bwd|fwd\+bwd) ' $L/b.txt | awk '{print $3, $4, $5}' | tr '\n' ' ')"; }
for r in 1 2; do b 2d 0 $P2; b 2d 19 $P2; b 2d 16 $P2; pack; done
b 2d-bf16 0 $P2 --dtype bfloat16
b 3d 0 $P3; b 3d 19 $P3; pack
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for c in 19 20; do for tool in memcheck racecheck; do a="-i 20 22 -w 7 -n 2"
  NATTEN_CUDA_TC_CONFIG=$c timeout 60 ./libtool --mode=execute $CS --tool $tool $B $a -d 128 --dtype float16 --op fna --backward --backend cuda-tc --warmup 0 --repeat 1 > $L/san.txt 2>&1
  st "cfg $c $tool [$a]: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|fna +bwd' $L/san.txt | tr -s ' ' | tr '\n' ' ')"; cat $L/san.txt >> $L/san-all.txt; done; done
st done; pack
