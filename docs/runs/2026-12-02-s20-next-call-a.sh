#!/bin/bash
# Written in session 20 for the next session's first H200 call (NOT RUN: session 20's device time
# was spent).  What issue #8 still lacks after session 20: the full `make check` built on the GPU
# host with qkb's per-position bulk copies (df4b7a5), and a racecheck of that path in its plain
# form; plus QK/AV rounds to confirm the margins (QK 83.0-84.5 us in session 20 call 5, bar 85.6).
# Run from the repository root with .gpu carried; logs in $OUT/next-a.tgz.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/next-a; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/next-a.tgz next-a); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
git log --oneline -1 > $L/commit.txt 2>&1
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
timeout 280 make -j16 check > $L/make-check.log 2>&1; st "make check rc=$? $(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' $L/make-check.log | tr '\n' ' ')"; cp tests/*.log $L/ 2>/dev/null; pack
B="./natten-bench -i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20 --dtype float16"
for op in qk av; do timeout 60 $B --op $op --peak > $L/verify-$op.txt 2>&1; st "verify $op: $(grep -E 'cuda-tiled@' $L/verify-$op.txt | tail -1 | tr -s ' ')"; done
for r in 1 2 3 4; do for v in "qk 1" "qk 0" "av 1"; do set -- $v
  NATTEN_CUDA_TILED_PBULK=$2 timeout 30 $B --op $1 --no-verify --peak > $L/b.txt 2>&1
  st "r$r $1 pbulk=$2: $(grep -E 'cuda-tiled@' $L/b.txt | tail -1 | tr -s ' ')"; done; done; pack
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck; do for a in "-i 20 22 -w 7 -b 2 -n 4" "-i 18 20 -w 5 --dilation 2 1 -b 2 -n 2 --rpb"; do for e in 0 1; do
  [ $tool = memcheck ] && [ $e = 1 ] && continue
  NATTEN_CUDA_TILED_PLAIN_SYNC=$e NATTEN_CUDA_TILED_BLOCKS=3 timeout 90 ./libtool --mode=execute $CS --tool $tool ./natten-bench $a -d 32 --dtype float16 --op qk --backend cuda-tiled --warmup 0 --repeat 1 > $L/san.txt 2>&1
  st "qk $tool plain=$e [$a]: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|cuda-tiled@' $L/san.txt | tr -s ' ' | tr '\n' ' ')"; cat $L/san.txt >> $L/san-all.txt; done; done; done
st done; pack
