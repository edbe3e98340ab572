#!/bin/bash
# session 13, call 4: gather_sw's copies as whole sectors (A, this tree) against
# the old order (B: -DTC_GATHER_OLD), alternating; the trace of A (C); check_cuda_tc on A
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s13d; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s13d.tgz s13d); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build A rc=$? warnings=$(grep -ci warning $L/build.log)"
rm -rf /tmp/libA /tmp/libB /tmp/libC; cp -a .libs /tmp/libA
nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I . tools/host-cost.cu -L .libs -lnatten -o /tmp/host-cost > $L/hc-build.log 2>&1
touch backends/cuda_tc/tc-fwd128-sm90a.cu backends/cuda_tc/tc-bwd128-sm90a.cu
make -j16 NVCCFLAGS=-DTC_GATHER_OLD libnatten.la > $L/buildB.log 2>&1; st "build B rc=$?"; cp -a .libs /tmp/libB
touch backends/cuda_tc/tc-fwd128-sm90a.cu
make -j16 NVCCFLAGS=-DWS_TRACE libnatten.la > $L/buildC.log 2>&1; st "build C rc=$?"; cp -a .libs /tmp/libC
pack
B=/tmp/libA/natten-bench
P1="-i 32768 -w 2048 -n 1 -d 128 --dtype float16 --op fna --backend cuda-tc --repeat 20"
P2="-i 256 256 -w 80 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --repeat 20"
P3="-i 30 48 80 -w 18 24 24 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --repeat 20"
b(){ n=$1; lib=$2; shift 2; echo "== $n $*" >> $L/bench.log; LD_LIBRARY_PATH=/tmp/lib$lib timeout -s KILL 60 $B "$@" >> $L/bench.log 2>&1; echo "rc=$?" >> $L/bench.log; }
h(){ n=$1; lib=$2; shift 2; echo "== $n $*" >> $L/hc.log; env LD_LIBRARY_PATH=/tmp/lib$lib "$@" >> $L/hc.log 2>&1; }
for r in 1 2 3; do
  for x in A B; do
    V=$([ $r = 1 ] && echo "" || echo "--no-verify")
    h $x-1d $x timeout 60 /tmp/host-cost 1d 100
    h $x-c15 $x NATTEN_CUDA_TC_CONFIG=15 timeout 60 /tmp/host-cost 1d:25344:2048 100
    b $x-1d $x $P1 $V
    b $x-2d $x $P2 $V
    b $x-3d $x $P3 $V
    [ $r = 1 ] && b $x-2d-bwd $x $P2 --backward --repeat 5 $V
    [ $r = 1 ] && b $x-3d-bwd $x $P3 --backward --repeat 5 --no-verify
  done
  st "round $r"; pack
done
grep -E '^==|back-to-back' $L/hc.log > $L/hc-summary.log
grep -h 'cuda-tc\|^==' $L/bench.log > $L/bench-summary.log
tr(){ n=$1; shift; env LD_LIBRARY_PATH=/tmp/libC "$@" > $L/$n.out 2> $L/$n.trace; }
tr c18-1d timeout 60 /tmp/host-cost 1d 100
tr c15-25344-2048 NATTEN_CUDA_TC_CONFIG=15 timeout 60 /tmp/host-cost 1d:25344:2048 100
st "traces"; pack
rm -rf .libs && cp -a /tmp/libA .libs
( timeout 240 make check TESTS=tests/check_cuda_tc > $L/check.log 2>&1; echo "rc $?" >> $L/check.log; cp tests/check_cuda_tc.log $L/ 2>/dev/null )
st "check_cuda_tc: $(grep -E '^# (TOTAL|PASS|FAIL)|Checks' $L/check.log $L/check_cuda_tc.log | tr '\n' ' ')"; pack
