#!/bin/bash
# session 22, call 2: the warp-specialised dK/dV kernel (dkv_ws_kernel, configuration 19) against
# the default (configuration 16's SK dK/dV) on issue 9's backward problems.  lib1 = this tree (a
# 3-stage ring), lib2 = the same with -DTC_DKV_WS_NS=4; check_cuda_tc on lib1 (every configuration,
# 19 included); sanitizers on a small backward through configuration 19.  Logs in $OUT/s22b.tgz.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s22b; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s22b.tgz s22b); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
git log --oneline -1 > $L/commit.txt 2>&1; git status --short >> $L/commit.txt
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build 1 rc=$? warnings=$(grep -ci warning $L/build.log)"
rm -rf /tmp/lib?; cp -a .libs /tmp/lib1
touch backends/cuda_tc/tc-bwd128-sm90a.cu; make -j16 NVCCFLAGS=-DTC_DKV_WS_NS=4 libnatten.la > $L/build2.log 2>&1; st "build 2 rc=$?"; cp -a .libs /tmp/lib2
rm -rf .libs && cp -a /tmp/lib1 .libs; pack
timeout 200 make check TESTS=tests/check_cuda_tc > $L/check-tc.log 2>&1; st "check_cuda_tc rc=$? $(grep -E '^[0-9]+%: Checks' tests/check_cuda_tc.log)"; cp tests/check_cuda_tc.log $L/; pack
B=/tmp/lib1/natten-bench
P2="-i 256 256 -w 80 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --backward --repeat 10 --no-verify"
P3="-i 30 48 80 -w 18 24 24 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --backward --repeat 5 --no-verify"
b(){ n=$1; lib=$2; cfg=$3; shift 3; echo "== $n lib$lib config=$cfg $*" >> $L/bench.log
  NATTEN_CUDA_TC_CONFIG=$cfg LD_LIBRARY_PATH=/tmp/lib$lib timeout -s KILL 90 $B "$@" > $L/b.txt 2>&1; echo "rc=$?" >> $L/b.txt; cat $L/b.txt >> $L/bench.log
  st "$n lib$lib cfg=$cfg: $(grep -E 'fna +(bwd|fwd\+bwd)' $L/b.txt | awk '{print $3, $4, $5}' | tr '\n' ' ')"; }
for r in 1 2 3; do b 2d 1 0 $P2; b 2d 1 19 $P2; b 2d 2 19 $P2; pack; done
b 3d 1 0 $P3; b 3d 1 19 $P3; b 3d 2 19 $P3; pack
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck; do for a in "-i 20 22 -w 7 -n 2" "-i 18 21 -w 5 7 --dilation 2 1 -n 2 --causal 0 1"; do
  NATTEN_CUDA_TC_CONFIG=19 timeout 120 ./libtool --mode=execute $CS --tool $tool ./natten-bench $a -d 128 --dtype float16 --op fna --backward --backend cuda-tc --warmup 0 --repeat 1 > $L/san.txt 2>&1
  st "$tool [$a]: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|fna +bwd' $L/san.txt | tr -s ' ' | tr '\n' ' ')"; cat $L/san.txt >> $L/san-all.txt; done; done
st done; pack
