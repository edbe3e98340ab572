#!/usr/bin/env bash
# v17 (branch tcb3), device call 2 (BIN mode: binaries built on the 2-core host, --enable-werror).
# Run from the repository root of the device copy:
#   bash .wt-tcb3/gpu-run-tcb3b.sh   (carry .wt-tcb3 .gpu)
# .wt-tcb3/bins2.tgz: bin2/ (this branch's final build: lib, natten-bench, tests/check_cuda_tc,
# tests/check_grad, bitcmp), and bins.tgz's bin-m/ (main 2920464's library and natten-bench).
# Phase A (GPU shared): check_cuda_tc, every case in its own process (edges, configs, hopper,
# split, api: the whole program) || check_grad || memcheck and racecheck of check_cuda_tc:hopper
# || bitcmp (hashes of dQ/dK/dV, compared here with call 1's main hashes).
# Phase B (GPU idle): natten-bench 3-D and 2-D alternating main / tcb3, then tcb3 with
# NATTEN_CUDA_TC_BWD_PIPE=0 (v16's loops in the same build).
set -u
T0=$(date +%s); R=/tmp/r2; rm -rf $R; mkdir -p $R
W=$PWD/.wt-tcb3; B=$W/bin2; M=$W/bin-m
left() { echo $(( ${DEADLINE:-215} - ($(date +%s) - T0) )); }
el() { echo "$1 at $(( $(date +%s) - T0 )) s" >>$R/times.txt; cp $R/times.txt $OUT/times.txt; }
pack() { tar -C $R -czf $OUT/all.tgz . 2>/dev/null; }
for f in .gpu/*.deb; do dpkg -x $f / >/dev/null 2>&1; done
tar -C $W -xzf $W/bins.tgz bin-m; tar -C $W -xzf $W/bins2.tgz
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader >$R/times.txt 2>&1
md5sum $B/lib/libnatten.so.0 $M/lib/libnatten.so.0 >>$R/times.txt
export NATTEN_TEST_SEED=1 CK_TIMEOUT_MULTIPLIER=4 OMP_WAIT_POLICY=passive srcdir=.
TA=${T_A:-95}
for c in edges configs hopper split api; do
  ( LD_LIBRARY_PATH=$B/lib CK_RUN_CASE=$c timeout $TA $B/tests/check_cuda_tc >$R/check_cuda_tc-$c.log 2>&1; el "check_cuda_tc $c rc=$?" ) &
done
( LD_LIBRARY_PATH=$B/lib timeout $TA $B/tests/check_grad >$R/check_grad.log 2>&1; el "check_grad rc=$?" ) &
for t in memcheck racecheck; do
  ( export LD_LIBRARY_PATH=$B/lib; TOOLS=$t SAN_CASES="check_cuda_tc:hopper" SAN_JOBS=1 SANITIZE_BUDGET=$(( TA - 5 )) \
      timeout $TA tests/gpu-sanitize.sh $B tests/check_cuda_tc >$R/san-$t.log 2>&1; el "$t rc=$?" ) &
done
( LD_LIBRARY_PATH=$B/lib timeout $TA $B/bitcmp 0 12 16 >$R/bitcmp-tcb3.txt 2>&1; el "bitcmp rc=$?" ) &
wait
mkdir -p $R/san; cp $B/gpu-sanitize/*.log $R/san/ 2>/dev/null; pack
bn() { local n=$1 lib=$2 nb=$3 t=$4; shift 4; local l=$(left); [ $l -gt 8 ] || { el "bench $n not run"; return; }; [ $t -lt $l ] || t=$l
  LD_LIBRARY_PATH=$lib timeout $t $nb "$@" --csv-out $R/bench-$n.csv >$R/bench-$n.log 2>&1; el "bench $n rc=$?"; pack; }
P3="-i 30 48 80 -w 18 24 24 -n 24 -d 128 --dtype float16 --op fna --backward --backend cuda-tc --no-verify --repeat 3 --warmup 1"
P2="-i 256 256 -w 80 -n 24 -d 128 --dtype float16 --op fna --backward --backend cuda-tc --no-verify --repeat 5 --warmup 1"
bn 3d-main-1 $M/lib $M/natten-bench 25 $P3
bn 3d-tcb3-1 $B/lib $B/natten-bench 25 $P3
bn 2d-main-1 $M/lib $M/natten-bench 15 $P2
bn 2d-tcb3-1 $B/lib $B/natten-bench 15 $P2
bn 3d-main-2 $M/lib $M/natten-bench 25 $P3
bn 3d-tcb3-2 $B/lib $B/natten-bench 25 $P3
bn 2d-main-2 $M/lib $M/natten-bench 15 $P2
bn 2d-tcb3-2 $B/lib $B/natten-bench 15 $P2
NATTEN_CUDA_TC_BWD_PIPE=0 bn 3d-tcb3-pipe0 $B/lib $B/natten-bench 25 $P3
{ cat $R/times.txt; for t in $R/check_*.log; do echo "== ${t##*/}"; grep -h -E "^[0-9]+%: Checks|:[EF]:|grad " $t | head -12; done
  grep -h "gpu-sanitize:" $R/san-*.log | head; echo "== bitcmp"; wc -l $R/bitcmp-tcb3.txt
  for f in $R/bench-*.log; do echo "== ${f##*/}"; grep -h -E "^cuda|error" $f | head -6; done; } >$OUT/summary.txt 2>&1
pack
