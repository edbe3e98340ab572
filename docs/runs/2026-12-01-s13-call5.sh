#!/bin/bash
# session 13, call 5: lib1 = this tree (32-bit decode_work, load_rows whole sectors);
# lib2 = lib1 with -DTC_DECODE64 (sm90a forward); lib3 = lib1 with -DTC_GATHER_RP=2;
# lib0 = lib1's sm80 d32 kernels with the old load_rows and 64-bit decode; alternating; make check on lib1
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s13e; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s13e.tgz s13e); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build 1 rc=$? warnings=$(grep -ci warning $L/build.log)"
rm -rf /tmp/lib?; cp -a .libs /tmp/lib1
nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I . tools/host-cost.cu -L .libs -lnatten -o /tmp/host-cost > $L/hc-build.log 2>&1
v(){ n=$1; fl=$2; shift 2; touch "$@"; make -j16 NVCCFLAGS="$fl" libnatten.la > $L/build$n.log 2>&1; st "build $n rc=$?"; cp -a .libs /tmp/lib$n; }
v 2 -DTC_DECODE64 backends/cuda_tc/tc-fwd128-sm90a.cu
v 3 -DTC_GATHER_RP=2 backends/cuda_tc/tc-fwd128-sm90a.cu
v 0 "-DTC_LOADROWS_OLD -DTC_DECODE64" backends/cuda_tc/tc-fwd32.cu backends/cuda_tc/tc-f16.cu
pack
B=/tmp/lib1/natten-bench
P1="-i 32768 -w 2048 -n 1 -d 128 --dtype float16 --op fna --backend cuda-tc --repeat 20"
P2="-i 256 256 -w 80 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --repeat 20"
P56="-i 56 56 -w 7 -b 16 -n 2 -d 32 --dtype float16 --op fna --backend cuda-tc --repeat 20 --backward"
b(){ n=$1; lib=$2; shift 2; echo "== $n $*" >> $L/bench.log; LD_LIBRARY_PATH=/tmp/lib$lib timeout -s KILL 60 $B "$@" >> $L/bench.log 2>&1; echo "rc=$?" >> $L/bench.log; }
h(){ n=$1; lib=$2; shift 2; echo "== $n $*" >> $L/hc.log; env LD_LIBRARY_PATH=/tmp/lib$lib "$@" >> $L/hc.log 2>&1; }
for r in 1 2 3; do
  V=$([ $r = 1 ] && echo "" || echo "--no-verify")
  for x in 1 2 3; do
    h lib$x-1d $x timeout 60 /tmp/host-cost 1d 100
    b lib$x-1d $x $P1 $V
    b lib$x-2d $x $P2 $V
  done
  for x in 1 0; do
    h lib$x-56 $x timeout 60 /tmp/host-cost 56 100
    h lib$x-56b $x timeout 60 /tmp/host-cost 56b 100
    b lib$x-56 $x $P56 $V
  done
  st "round $r"; pack
done
grep -E '^==|back-to-back' $L/hc.log > $L/hc-summary.log
grep -h 'cuda-tc\|^==' $L/bench.log > $L/bench-summary.log
rm -rf .libs && cp -a /tmp/lib1 .libs
( timeout 280 make -j16 check > $L/check.log 2>&1; echo "make check rc $?" >> $L/check.log; cp tests/*.log $L/ 2>/dev/null )
st "make check: $(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' $L/check.log | tr '\n' ' ')"; pack
