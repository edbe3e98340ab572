#!/usr/bin/env bash
# v15 (branch tc11): one device call, BIN mode.  Run from the repository root of
# the device copy: bash .wt-tc11/backends/cuda_tc/standalone/gpu-run-tc11.sh
# (carry .wt-tc11 .wt-lead/bin/lib .wt-lead/bin/natten-bench .gpu).
#   .wt-lead/bin   main's binaries (8ce0b89: the same kernels as e9ded06)
#   .wt-tc11/bin   this branch (lazy rescale, slack 8, + descriptors moved by adds)
#   .wt-tc11/bin0  this branch's library built with -DWS_RESCALE_SLACK=0.f (descriptors only)
# check_cuda_tc whole ‖ memcheck ‖ racecheck of check_cuda_tc:split,hopper, then,
# with nothing else on the GPU, the 1-D forward alternating main / tc11 / slack0
# (round 1 verified), the 2-D forward once each, bf16 1-D once, ncu kernel times.
set -u
R=/tmp/s11; rm -rf $R; mkdir -p $R
T0=$(date +%s)
A=$PWD/.wt-lead/bin; B=$PWD/.wt-tc11/bin; B0=$PWD/.wt-tc11/bin0
left() { echo $(( ${DEADLINE:-225} - ($(date +%s) - T0) )); }
el() { echo "$1 at $(( $(date +%s) - T0 )) s" >>$R/times; cp $R/times $OUT/times.txt; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader >$R/gpu.txt 2>&1
export NATTEN_TEST_SEED=1 CK_TIMEOUT_MULTIPLIER=4 OMP_WAIT_POLICY=passive srcdir=.
( LD_LIBRARY_PATH=$B/lib timeout ${T_CHECK:-150} $B/tests/check_cuda_tc >$R/check_cuda_tc.log 2>&1; el "check_cuda_tc rc=$?" ) &
( export LD_LIBRARY_PATH=$B/lib; TOOLS=memcheck SAN_CASES="check_cuda_tc:split,hopper" SAN_JOBS=2 SANITIZE_BUDGET=${T_SAN:-130} \
    timeout $(( ${T_SAN:-130} + 10 )) .wt-tc11/tests/gpu-sanitize.sh $B tests/check_cuda_tc >$R/san-mem.log 2>&1; el "memcheck rc=$?" ) &
( export LD_LIBRARY_PATH=$B/lib; TOOLS=racecheck SAN_CASES="check_cuda_tc:split,hopper" SAN_JOBS=2 SANITIZE_BUDGET=${T_SAN:-130} \
    timeout $(( ${T_SAN:-130} + 10 )) .wt-tc11/tests/gpu-sanitize.sh $B tests/check_cuda_tc >$R/san-race.log 2>&1; el "racecheck rc=$?" ) &
wait
T1="-i 32768 -w 2048 -n 1 -d 128 --op fna --backend cuda-tc --repeat 20"
T2="-i 256 256 -w 80 -n 24 -d 128 --op fna --backend cuda-tc --dtype float16 --repeat 5 --no-verify"
bn() { local n=$1 lib=$2 nb=$3; shift 3; [ $(left) -gt 6 ] || { el "bench $n not run"; return; }
  LD_LIBRARY_PATH=$lib timeout 20 $nb "$@" >$R/bench-$n.log 2>&1; el "bench $n rc=$?"; }
bn 1d-main-1 $A/lib $A/natten-bench $T1 --dtype float16
bn 1d-tc11-1 $B/lib $B/natten-bench $T1 --dtype float16
bn 1d-s0-1 $B0/lib $B/natten-bench $T1 --dtype float16
for r in 2 3 4 5; do
  bn 1d-main-$r $A/lib $A/natten-bench $T1 --dtype float16 --no-verify
  bn 1d-tc11-$r $B/lib $B/natten-bench $T1 --dtype float16 --no-verify
  bn 1d-s0-$r $B0/lib $B/natten-bench $T1 --dtype float16 --no-verify
done
bn 1d-tc11-bf16 $B/lib $B/natten-bench $T1 --dtype bfloat16
bn 2d-main $A/lib $A/natten-bench $T2
bn 2d-tc11 $B/lib $B/natten-bench $T2
bn 2d-s0 $B0/lib $B/natten-bench $T2
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
for v in main:$A tc11:$B s0:$B0; do n=${v%%:*}; d=${v#*:}; [ $(left) -gt 12 ] || break
  LD_LIBRARY_PATH=$d/lib timeout 10 $NCU --clock-control none --metrics gpu__time_duration.sum $B/natten-bench $T1 --dtype float16 --no-verify --warmup 1 --repeat 3 >$R/ncu-$n.log 2>&1; el "ncu $n rc=$?"; done
mkdir -p $R/san; cp $B/gpu-sanitize/*.log $R/san/ 2>/dev/null
{ cat $R/gpu.txt $R/times; echo "== check_cuda_tc"; grep -h -E "^[0-9]+%: Checks|:[EF]:" $R/check_cuda_tc.log | head -12
  grep -h -E "gpu-sanitize:" $R/san-*.log | head -20
  for f in $R/bench-*.log; do echo "== ${f##*/}"; grep -h -E "^cuda|max err|error" $f | head -4; done
  for f in $R/ncu-*.log; do echo "== ${f##*/}"; grep -h -E "fwd_ws_kernel|gpu__time_duration" $f | head -12; done; } >$OUT/summary.txt
tar -C $R -czf $OUT/all.tar.gz . 2>/dev/null
