#!/usr/bin/env bash
# v14, device calls 19 and 20 (BIN mode): tc10's library against main
# 554ab86's (.wt-lead/bin), all built on the CPU machine with
# --with-cuda-arch=90 --enable-werror, on the 1-D target.  Benches first (main
# and tc10 alternating, ROUNDS rounds; ALT: a third library alternated with
# them), then the host-cost tool, ncu of the kernels' durations (NCU_LIBS),
# then check_cuda_tc whole beside memcheck and racecheck of its `split` case.
#   call 19 (in-kernel merge, kept split scratch, remembered plan; lib5: the
#            same with WS_SPLIT_STAGES=5):
#     RUN=19 ROUNDS=3 ALT=lib5 NCU_LIBS="lib lib5"
#   call 20 (in-kernel merge with the rows of a warp read together, counters
#            in module data, partials per call, remembered plan): RUN=20
# (library names relative to .wt-tc10/bin; main's is "main").  Run from the
# repository root of the device copy:
#   for f in .gpu/*.deb; do dpkg -x $f /; done; OUT=$OUT RUN=20 bash .wt-tc10/gpu-run-split.sh
set -u
R=/tmp/r${RUN:-20}; rm -rf $R; mkdir -p $R
T0=$(date +%s)
A=$PWD/.wt-lead/bin B=$PWD/.wt-tc10/bin
lib() { [ "$1" = main ] && echo $A/lib || echo $B/$1; }
el() { echo "$1 at $(( $(date +%s) - T0 )) s" >>$R/times; }
pack() { tar -C $R -czf $OUT/all.tar.gz . 2>/dev/null; cp $R/times $OUT/times.txt 2>/dev/null; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader >$R/gpu.txt 2>&1
export OMP_WAIT_POLICY=passive srcdir=. NATTEN_TEST_SEED=1 CK_TIMEOUT_MULTIPLIER=4
T1="-i 32768 -w 2048 -n 1 -d 128 --op fna --backend cuda-tc --dtype float16 --repeat 20"
nb() { local lib=$1 log=$2; shift 2; LD_LIBRARY_PATH=$lib timeout 25 $B/natten-bench $T1 "$@" >>$R/$log 2>&1; el "$log $lib rc=$?"; }
nb $B/lib verify.log
nb $A/lib verify.log
for i in $(seq ${ROUNDS:-4}); do
  nb $A/lib ab-main.log --no-verify
  nb $B/lib ab-tc10.log --no-verify
  [ -z "${ALT:-}" ] || nb $B/$ALT ab-tc10-$ALT.log --no-verify
done
nb $B/lib bf16.log --no-verify --dtype bfloat16
for l in $A/lib $B/lib; do LD_LIBRARY_PATH=$l timeout 30 $B/host-cost 200 >>$R/host-cost.log 2>&1; el "host-cost $l rc=$?"; done
pack
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
for n in ${NCU_LIBS:-main lib}; do
  l=$(lib $n); LD_LIBRARY_PATH=$l timeout 30 $NCU --clock-control none --metrics gpu__time_duration.sum $B/natten-bench $T1 --no-verify \
    --warmup 1 --repeat 3 >>$R/ncu.log 2>&1; el "ncu $l rc=$?"; done
pack
export LD_LIBRARY_PATH=$B/lib
L=$(( 225 - ($(date +%s) - T0) ))
( timeout $L $B/tests/check_cuda_tc >$R/check_cuda_tc.log 2>&1; el "check_cuda_tc rc=$?" ) &
( TOOLS="memcheck racecheck" SAN_CASES="check_cuda_tc:split" SAN_JOBS=2 SANITIZE_BUDGET=$(( L - 8 )) \
    timeout $L tests/gpu-sanitize.sh $B tests/check_cuda_tc >$R/san.log 2>&1; el "san rc=$?" ) &
wait
cp $B/gpu-sanitize/*.log $R/ 2>/dev/null
{ cat $R/gpu.txt $R/times; grep -h -E "^cuda" $R/verify.log; for f in $R/ab-*.log $R/bf16.log; do echo "== ${f##*/}"; grep -h -E "^cuda" $f; done
  cat $R/host-cost.log; grep -E "fwd_ws|split_merge|gpu__time" $R/ncu.log
  grep -h -E "^[0-9]+%: Checks|^[A-Za-z/_.-]+:[0-9]+:[EF]:" $R/check_cuda_tc.log | head -12; grep -h "gpu-sanitize:" $R/san.log; } >$OUT/summary.txt
pack
