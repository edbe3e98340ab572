#!/bin/sh
# gpu-run18.sh - v12's second device call (helper tc9): the split forward
# planned once per call and configuration 16 as the default backward of big
# rank-2 problems, checked and measured; Nsight Compute kernel durations of
# the 1-D target's forward (configurations 18, 15, 13), so that the event
# times can be split into kernels and the rest.
#   for f in .gpu/*.deb; do dpkg -x $f /; done; cd .wt-tc9 && \
#     OUT=$OUT DEADLINE=360 [BIN=$PWD/bin] sh backends/cuda_tc/standalone/gpu-run18.sh
# (BIN: binaries built on the host, no build here; see below)
# Steps in order of importance, each under `timeout`, the whole within
# DEADLINE seconds (what does not fit is skipped): build; check_cuda_tc
# hopper; natten-bench of the 1-D forward (the default, 18, 13, 15), the 2-D
# backward (the default = 16 now, 12, 16), the 1-D forward again (reversed),
# a one-box 1-D problem (the fixed cost of a call), 18 with every box split
# in 3 (NATTEN_CUDA_TC_SPLIT); ncu gpu__time_duration of 18's kernels;
# check_cuda_tc api; --tune-check of the 1-D target; ncu of 15 and 13;
# check_cuda_tc configs; check_selection, check_tuner; check_cuda_tc edges.
# run.log: the timeline.
start=$(date +%s)
el() { echo $(($(date +%s) - start)); }
log() { echo "[$(el) s] $*" >>"$OUT/run.log"; }
left() { echo $((${DEADLINE:-360} - $(el))); }
log "start $(nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null)"
export NATTEN_TEST_SEED=2
if [ -n "${BIN:-}" ]; then
    # binaries built on the host that copied the tree (configure --enable-werror,
    # --with-cuda-arch "80 90"): libnatten.so.0, natten-bench, check_cuda_tc,
    # check_selection, check_tuner in $BIN; no build here
    export LD_LIBRARY_PATH="$BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    NB="$BIN/natten-bench"
    EXEC=""
    TD="$BIN"
    log "binaries from $BIN"
else
    timeout 100 ./configure --with-cuda-arch=90 --enable-werror >"$OUT/build.log" 2>&1
    log "configure rc=$?"
    timeout $(($(left) - 40)) make -j16 >>"$OUT/build.log" 2>&1
    log "make rc=$?"
    timeout $(($(left) - 40)) make -j16 check TESTS= >>"$OUT/build.log" 2>&1
    log "make check TESTS= rc=$?"
    grep -E "warning|error" "$OUT/build.log" | head -20 >>"$OUT/run.log"
    NB=./natten-bench
    EXEC="./libtool --mode=execute"
    TD=tests
fi
check() { # case, seconds kept for what follows
    l=$(($(left) - $2))
    [ "$l" -gt 5 ] || { log "check_cuda_tc $1 not run"; return; }
    echo "== CK_RUN_CASE=$1" >>"$OUT/check_cuda_tc.log"
    CK_RUN_CASE=$1 CK_VERBOSITY=verbose CK_TIMEOUT_MULTIPLIER=4 timeout $l \
        $EXEC $TD/check_cuda_tc >>"$OUT/check_cuda_tc.log" 2>&1
    log "check_cuda_tc $1 rc=$?"
}
test1() { # program, seconds kept
    l=$(($(left) - $2))
    [ "$l" -gt 5 ] || { log "$1 not run"; return; }
    echo "== $1" >>"$OUT/tests.log"
    srcdir=. OMP_WAIT_POLICY=passive timeout $l $EXEC $TD/$1 >>"$OUT/tests.log" 2>&1
    log "$1 rc=$?"
}
bench() { # label, seconds kept, args...
    label=$1
    l=$(($(left) - $2))
    shift 2
    [ "$l" -gt 10 ] || { log "bench $label not run"; return; }
    echo "== $label: $*" >>"$OUT/bench.log"
    timeout $l $NB "$@" --dtype float16 --op fna >>"$OUT/bench.log" 2>&1
    log "bench $label rc=$?"
}
ncu=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
prof() { # label, config, seconds kept
    l=$(($(left) - $3))
    [ "$l" -gt 10 ] || { log "ncu $1 not run"; return; }
    echo "== ncu $1 (cuda-tc/$2)" >>"$OUT/ncu.log"
    timeout $l $EXEC $ncu --clock-control none --metrics gpu__time_duration.sum \
        -k 'regex:fwd_ws_kernel|split_merge_kernel' $NB $T1 --dtype float16 --op fna \
        --backend cuda-tc/$2 --warmup 1 --repeat 3 --no-verify >>"$OUT/ncu.log" 2>&1
    log "ncu $1 rc=$?"
}
T1="-i 32768 -w 2048 -n 1 -d 128"
# in order of importance: each step runs while time is left (short reserves)
check hopper 40
bench 1d-fwd-a 30 $T1 --backend cuda-tc,cuda-tc/18,cuda-tc/13,cuda-tc/15 --repeat 20
bench 2d-bwd 12 -i 256 256 -w 80 -n 24 -d 128 --backward --backend cuda-tc,cuda-tc/12,cuda-tc/16 --repeat 5 --no-verify
bench 1d-fwd-b 8 $T1 --backend cuda-tc/15,cuda-tc/13,cuda-tc/18,cuda-tc --repeat 20 --no-verify
bench 1d-onebox 6 -i 192 -w 65 -n 1 -d 128 --backend cuda-tc/13,cuda-tc/15,cuda-tc/18 --repeat 20 --no-verify
NATTEN_CUDA_TC_SPLIT=3 bench 1d-all3 5 $T1 --backend cuda-tc/18 --repeat 20 --no-verify
prof cfg18 18 5
check api 5
l=$(($(left) - 5))
if [ "$l" -gt 10 ]; then
    timeout $l $NB --tune-check --device cuda $T1 --dtype float16 --op fna --repeat 3 >"$OUT/tune.log" 2>&1
    log "tune-check 1-D rc=$?"
fi
prof cfg15 15 5
prof cfg13 13 5
check configs 5
test1 check_selection 3
test1 check_tuner 0
check edges 0
log "end"
