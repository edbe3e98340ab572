#!/usr/bin/env bash
# v17 (branch tcb3), device call 1 (BIN mode: binaries built on the 2-core host, --enable-werror).
# Run from the repository root of the device copy:
#   bash .wt-tcb3/gpu-run-tcb3a.sh   (carry .wt-tcb3 .gpu)
# .wt-tcb3/bins.tgz: bin/ (this branch's exploration build: configurations 19, 20, 21 = PIPE
# variants), bin-m/ (main 2920464's library and natten-bench), bitcmp (built against tests/).
# The exploration build (not committed) had three temporary configurations after 18, mapped to
# tc_backward_d128_sm90a's which 4..6: 19 = backward_v<T, 1, 32, 2, 2, 32, 2, false, KPIPE 1,
# QPIPE 1>, 20 = the same with KPIPE 2 (the committed variant 1), 21 = backward_sk<T, 64, 0,
# QPIPE 1> (configuration 16 with dq_kernel's PIPE); its PIPE kernels' SASS is identical to the
# committed build's (docs/runs/2026-11-30-s10-tcb3-sass-identity.log).  ncu's kernel durations
# were cut by the deadline (ncu prints at exit): no per-kernel split from this call.
# bitcmp main vs tcb3 (hashes of dQ/dK/dV), natten-bench 3-D and 2-D (main once, then tcb3's
# configurations alternating in one process each), ncu kernel durations per configuration.
set -u
T0=$(date +%s); R=/tmp/r1; rm -rf $R; mkdir -p $R
W=$PWD/.wt-tcb3; B=$W/bin; M=$W/bin-m
left() { echo $(( ${DEADLINE:-200} - ($(date +%s) - T0) )); }
el() { echo "$1 at $(( $(date +%s) - T0 )) s" >>$R/times.txt; cp $R/times.txt $OUT/times.txt; }
pack() { tar -C $R -czf $OUT/all.tgz . 2>/dev/null; }
for f in .gpu/*.deb; do dpkg -x $f / >/dev/null 2>&1; done
tar -C $W -xzf $W/bins.tgz
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader >$R/times.txt 2>&1
md5sum $B/lib/libnatten.so.0 $M/lib/libnatten.so.0 >>$R/times.txt
( LD_LIBRARY_PATH=$M/lib timeout 45 $B/bitcmp 12 16 >$R/bitcmp-main.txt 2>&1; el "bitcmp main rc=$?" ) &
( LD_LIBRARY_PATH=$B/lib timeout 75 $B/bitcmp 12 16 19 20 21 >$R/bitcmp-tcb3.txt 2>&1; el "bitcmp tcb3 rc=$?" ) &
wait
bn() { local n=$1 lib=$2 nb=$3 t=$4; shift 4; local l=$(left); [ $l -gt 8 ] || { el "bench $n not run"; return; }; [ $t -lt $l ] || t=$l
  LD_LIBRARY_PATH=$lib timeout $t $nb "$@" --csv-out $R/bench-$n.csv >$R/bench-$n.log 2>&1; el "bench $n rc=$?"; pack; }
P3="-i 30 48 80 -w 18 24 24 -n 24 -d 128 --dtype float16 --op fna --backward --no-verify"
P2="-i 256 256 -w 80 -n 24 -d 128 --dtype float16 --op fna --backward --no-verify"
PV="-i 20 24 40 -w 9 12 12 -n 2 -d 128 --dtype float16 --op fna --backward"
bn 3d-main $M/lib $M/natten-bench 30 $P3 --backend cuda-tc --repeat 3 --warmup 1
bn 3d-tcb3 $B/lib $B/natten-bench 70 $P3 --backend cuda-tc/12,cuda-tc/19,cuda-tc/20,cuda-tc/12,cuda-tc/19,cuda-tc/20 --repeat 3 --warmup 1
bn 2d-tcb3 $B/lib $B/natten-bench 30 $P2 --backend cuda-tc/16,cuda-tc/21,cuda-tc/16,cuda-tc/21 --repeat 5 --warmup 1
bn verify $B/lib $B/natten-bench 30 $PV --backend cuda-tc/12,cuda-tc/19,cuda-tc/20,cuda-tc/21 --repeat 2 --warmup 1
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
l=$(left); if [ $l -gt 25 ]; then
  LD_LIBRARY_PATH=$B/lib timeout $(( l - 5 )) $NCU --clock-control none --metrics gpu__time_duration.sum -k regex:"dq_kernel|dkv_kernel|delta" \
    $B/natten-bench $P3 --backend cuda-tc/12,cuda-tc/19,cuda-tc/20 --repeat 1 --warmup 0 >$R/ncu-3d.log 2>&1; el "ncu 3d rc=$?"; fi
{ cat $R/times.txt; echo "== bitcmp"; wc -l $R/bitcmp-*.txt
  for f in $R/bench-*.log; do echo "== ${f##*/}"; grep -h -E "^cuda|error|max" $f | head -30; done
  echo "== ncu"; grep -E "dq_kernel|dkv_kernel|delta_kernel|gpu__time_duration" $R/ncu-3d.log | head -60; } >$OUT/summary.txt 2>&1
pack
