#!/bin/sh
# gpu-run17.sh - v12's device call (helper tc9), also v11's (gpu-run16.sh,
# never run): configuration 18 (the split forward: configuration 15's kernel
# with the last round's query boxes split over the idle SMs, merged by a
# second kernel) and configurations 16/17 (the SK Hopper backward).
# Run from the tree's root on the GPU host with OUT set (the .gpu packages
# unpacked first, ./bootstrap run on the host that copied the tree):
#   for f in .gpu/*.deb; do dpkg -x $f /; done; cd .wt-tc9 && \
#     OUT=$OUT DEADLINE=380 sh backends/cuda_tc/standalone/gpu-run17.sh
# Steps, each under `timeout`, the whole within DEADLINE seconds:
#  1. build (configure --with-cuda-arch=90 --enable-werror; make -j16; the
#     test programs): build.log;
#  2. check_cuda_tc's hopper case (split_forward: configuration 18 with 2, 3,
#     5, 7 forced parts and natural tail splits; hopper_backward: the default,
#     11, 12, 16, 17; hopper_forward: the default, 10, 13, 14, 15, 18):
#     check_cuda_tc.log;
#  3. natten-bench of the 1-D forward target (fp16, median of 20, verified
#     against naive on a smaller problem): the default, 18, 13, 15, twice:
#     bench.log;
#  4. natten-bench --backward (--no-verify, median of 5) of the 2-D and 3-D
#     targets: configurations 12 (the default's), 16, 17; the 1-D backward:
#     the default (11's), 16, 17: bench.log;
#  5. check_cuda_tc's configs (each configuration 1..18 on the 13 problems,
#     the tuner over 19 candidates) and api (deterministic, 16/17 included);
#     check_selection, check_tuner: check_cuda_tc.log, tests.log;
#  6. natten-bench --tune-check of the 1-D target: tune.log;
#  7. check_cuda_tc's edges.
# run.log is the timeline.
start=$(date +%s)
el() { echo $(($(date +%s) - start)); }
log() { echo "[$(el) s] $*" >>"$OUT/run.log"; }
left() { echo $((${DEADLINE:-380} - $(el))); }
log "start $(nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null)"
export NATTEN_TEST_SEED=1
timeout 100 ./configure --with-cuda-arch=90 --enable-werror >"$OUT/build.log" 2>&1
log "configure rc=$?"
timeout $(($(left) - 150)) make -j16 >>"$OUT/build.log" 2>&1
log "make rc=$?"
timeout $(($(left) - 140)) make -j16 check TESTS= >>"$OUT/build.log" 2>&1
log "make check TESTS= rc=$?"
grep -E "warning|error" "$OUT/build.log" | head -20 >>"$OUT/run.log"
check() { # case, seconds kept for what follows
    l=$(($(left) - $2))
    [ "$l" -gt 5 ] || { log "check_cuda_tc $1 not run"; return; }
    echo "== CK_RUN_CASE=$1" >>"$OUT/check_cuda_tc.log"
    CK_RUN_CASE=$1 CK_VERBOSITY=verbose CK_TIMEOUT_MULTIPLIER=4 timeout $l \
        ./libtool --mode=execute tests/check_cuda_tc >>"$OUT/check_cuda_tc.log" 2>&1
    log "check_cuda_tc $1 rc=$?"
}
test1() { # program, seconds kept
    l=$(($(left) - $2))
    [ "$l" -gt 5 ] || { log "$1 not run"; return; }
    echo "== $1" >>"$OUT/tests.log"
    timeout $l ./libtool --mode=execute tests/$1 >>"$OUT/tests.log" 2>&1
    log "$1 rc=$?"
}
bench() { # label, seconds kept, args...
    label=$1
    l=$(($(left) - $2))
    shift 2
    [ "$l" -gt 10 ] || { log "bench $label not run"; return; }
    echo "== $label: $*" >>"$OUT/bench.log"
    timeout $l ./natten-bench "$@" --dtype float16 --op fna >>"$OUT/bench.log" 2>&1
    log "bench $label rc=$?"
}
T1="-i 32768 -w 2048 -n 1 -d 128"
check hopper 150
bench 1d-fwd-a 130 $T1 --backend cuda-tc,cuda-tc/18,cuda-tc/13,cuda-tc/15 --repeat 20
bench 1d-fwd-b 125 $T1 --backend cuda-tc/15,cuda-tc/13,cuda-tc/18,cuda-tc --repeat 20 --no-verify
bench 2d-bwd 105 -i 256 256 -w 80 -n 24 -d 128 --backward --backend cuda-tc/12,cuda-tc/16,cuda-tc/17 --repeat 5 --no-verify
bench 3d-bwd 80 -i 30 48 80 -w 18 24 24 -n 24 -d 128 --backward --backend cuda-tc/12,cuda-tc/16,cuda-tc/17 --repeat 5 --no-verify
bench 1d-bwd 75 $T1 --backward --backend cuda-tc,cuda-tc/16,cuda-tc/17 --repeat 20 --no-verify
check configs 45
check api 35
l=$(($(left) - 25))
if [ "$l" -gt 10 ]; then
    timeout $l ./natten-bench --tune-check --device cuda $T1 --dtype float16 --op fna --repeat 3 >"$OUT/tune.log" 2>&1
    log "tune-check 1-D rc=$?"
fi
test1 check_selection 15
test1 check_tuner 10
check edges 0
log "end"
