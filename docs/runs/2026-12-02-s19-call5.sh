#!/bin/bash
# session 19, call 5: main (no prefetch; the test upload fix) against alt/ (a copy of the tree with
# call 4's prefetch code, run with NATTEN_CUDA_TILED_PREFETCH=0: call 4's QK ran faster with that
# code disabled than call 3's without it - same kernel or not?), both built here, alternating in one
# call; check_cuda's stream case repeated; make check.  Logs: $OUT/s19e.tgz
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s19e; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s19e.tgz s19e); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
( cd alt && ./bootstrap && ./configure --with-cuda-arch=90 && make -j8 natten-bench ) > $L/alt-build.log 2>&1 &
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j10 > $L/build.log 2>&1 && make -j10 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"
wait; st "alt build: $(tail -1 $L/alt-build.log)"; pack
B="-i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20 --dtype float16"
for op in av qk; do timeout 60 ./natten-bench $B --op $op --peak > $L/bench-verify-$op.txt 2>&1; st "verify $op: $(grep -E 'cuda-tiled@' $L/bench-verify-$op.txt | tail -1 | tr -s ' ')"; done
for r in 1 2 3 4 5; do for v in "main av" "alt av" "main qk" "alt qk"; do set -- $v
  d=.; [ $1 = alt ] && d=alt
  NATTEN_CUDA_TILED_PREFETCH=0 timeout 30 $d/natten-bench $B --op $2 --no-verify --peak > $L/b.txt 2>&1
  st "r$r $1 $2: $(grep -E 'cuda-tiled@' $L/b.txt | tail -1 | tr -s ' ')"; done; done; pack
for d in . alt; do nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I $d/lib -I $d $d/tools/host-cost.cu -L $d/.libs -lnatten -o /tmp/host-cost-$(basename $(cd $d && pwd)) > $L/hc-build.log 2>&1; done
for r in 1 2; do for v in "main av" "alt av" "main qk" "alt qk"; do set -- $v
  d=.; [ $1 = alt ] && d=alt
  NATTEN_CUDA_TILED_PREFETCH=0 LD_LIBRARY_PATH=$d/.libs timeout 30 /tmp/host-cost-$(basename $(cd $d && pwd)) $2 100 > $L/hc.txt 2>&1
  st "hc $1 $2: $(grep 'back-to-back' $L/hc.txt | tr -s ' ')"; done; done; pack
for i in 1 2 3 4 5 6; do CK_RUN_CASE=stream timeout 60 tests/check_cuda > $L/stream.log 2>&1; st "check_cuda stream #$i rc=$? $(grep -E 'Checks|F:' $L/stream.log | tr '\n' ' ')"; done; pack
timeout 250 make -j16 check > $L/make-check.log 2>&1; st "make check rc=$? $(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' $L/make-check.log | tr '\n' ' ')"; cp tests/check_cuda*.log $L/ 2>/dev/null; pack
st done; pack
