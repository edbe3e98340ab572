#!/bin/bash
# Run from the repository root on the GPU host (device tool: carry .gpu with the debs of
# ../shared/gpu-host/fetch-debs), e.g. run(command="OUT=$OUT bash backends/cuda_tc/standalone/gpu-run-s13epi.sh", carry=[".gpu"]).
# About 250 s: build, the A/B (4 rounds), issue 9's problems, make check (check_cuda_tc among them).
# branch s13-epi: lib1 = this tree (O written out through shared memory),
# lib2 = -DTC_EPI_DIRECT (the direct stores), alternating; issue #9's problems on lib1; make check on lib1
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s14a; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s14a.tgz s14a); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader >> $L/steps.log 2>&1
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build 1 rc=$? warnings=$(grep -ci warning $L/build.log)"
rm -rf /tmp/lib?; cp -a .libs /tmp/lib1
nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I . tools/host-cost.cu -L .libs -lnatten -o /tmp/host-cost > $L/hc-build.log 2>&1
touch backends/cuda_tc/tc-fwd128-sm90a.cu; make -j16 NVCCFLAGS=-DTC_EPI_DIRECT libnatten.la > $L/build2.log 2>&1; st "build 2 rc=$?"; cp -a .libs /tmp/lib2
rm -rf .libs && cp -a /tmp/lib1 .libs; pack
B=/tmp/lib1/natten-bench
P1="-i 32768 -w 2048 -n 1 -d 128 --dtype float16 --op fna --backend cuda-tc --repeat 20"
P2="-i 256 256 -w 80 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --repeat 20"
P3="-i 30 48 80 -w 18 24 24 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --repeat 20"
P56="-i 56 56 -w 7 -b 16 -n 2 -d 32 --dtype float16 --op fna --backend cuda-tc --repeat 20 --backward"
b(){ n=$1; lib=$2; shift 2; echo "== $n $*" >> $L/bench.log; LD_LIBRARY_PATH=/tmp/lib$lib timeout -s KILL 60 $B "$@" >> $L/bench.log 2>&1; echo "rc=$?" >> $L/bench.log; }
h(){ n=$1; lib=$2; shift 2; echo "== $n $*" >> $L/hc.log; env LD_LIBRARY_PATH=/tmp/lib$lib "$@" >> $L/hc.log 2>&1; }
for r in 1 2 3; do
  V=$([ $r = 1 ] && echo "" || echo "--no-verify")
  for x in 1 2; do
    h lib$x-1d $x timeout 60 /tmp/host-cost 1d 100
    b lib$x-1d $x $P1 $V
    b lib$x-2d $x $P2 $V
    [ $r -le 2 ] && b lib$x-3d $x $P3 $V
  done
  st "round $r"; pack
done
b final-56 1 $P56
b final-2d-bwd 1 $P2 --backward --repeat 10 --no-verify
b final-3d-bwd 1 $P3 --backward --repeat 5 --no-verify
b final-bf16-1d 1 -i 32768 -w 2048 -n 1 -d 128 --dtype bfloat16 --op fna --backend cuda-tc --repeat 20
st "final benches"; pack
grep -E '^==|back-to-back|events around' $L/hc.log > $L/hc-summary.log
grep -h 'cuda-tc\|^==' $L/bench.log > $L/bench-summary.log
( timeout 200 make -j16 check > $L/check.log 2>&1; echo "make check rc $?" >> $L/check.log; cp tests/*.log $L/ 2>/dev/null )
st "make check: $(grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)' $L/check.log | tr '\n' ' ')"; pack
( SANITIZE_BUDGET=170 SAN_CASES="check_cuda_tc:hopper,split" TOOLS="memcheck racecheck" SAN_JOBS=4 timeout 185 tests/gpu-sanitize.sh . tests/check_cuda_tc > $L/sanitize.log 2>&1; cp gpu-sanitize/*.log $L/ 2>/dev/null )
st "sanitize: $(grep -c clean $L/sanitize.log) clean; $(tail -1 $L/sanitize.log)"; pack
