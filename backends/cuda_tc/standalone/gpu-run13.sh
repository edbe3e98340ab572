#!/bin/sh
# gpu-run13.sh - v8's second device call (helper tc7): the tile-skipping
# forward (SK) in the harness and in the library.  The library is built on
# the host (configure --with-cuda-arch=90 --enable-werror; make libnatten.la
# natten-bench tests/check_cuda_tc) and its three real binaries copied to
# $BIN: libnatten.so.0 (from .libs/), natten-bench (.libs/), check_cuda_tc
# (tests/.libs/); they run here with LD_LIBRARY_PATH=$BIN (no libtool
# wrappers, so no build paths).  The harness (built on the host, beside this
# script) times t (the library's configuration 13) against E (SK 1: t's
# boxes) and F (SK 2: boxes planned for skipping; the library's configuration
# 14 and, on this branch, the default) on the three big problems (64 sampled
# rows of each checked), then checks F on the 22 edge cases.  Then
# check_cuda_tc's hopper and edges cases, natten-bench of the three D-128
# forward targets under configurations 13 and 14 (fp16, median of 20,
# --no-verify: check_cuda_tc verifies), check_cuda_tc's configs and api
# cases, E's edge cases and compute-sanitizer synccheck of F, while time is
# left.  Every step under `timeout`, the whole within DEADLINE seconds
# (default 185).  Run from the tree's root with OUT and BIN set; logs:
# run.log (timeline), hbench.log, harness.log, check_cuda_tc.log, bench.log,
# san.log.
start=$(date +%s)
el() { echo $(($(date +%s) - start)); }
log() { echo "[$(el) s] $*" >>"$OUT/run.log"; }
left() { echo $((${DEADLINE:-185} - $(el))); }
log "start $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)"
H=backends/cuda_tc/standalone/tc-harness
timeout 50 $H bench 20 0.5 tEF 012 0 >"$OUT/hbench.log" 2>&1
log "harness bench tEF rc=$?"
timeout 13 $H checkv 40 >>"$OUT/harness.log" 2>&1
log "harness checkv 40 (F) rc=$?"
export LD_LIBRARY_PATH="$BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
check() { # case, seconds kept for what follows
    l=$(($(left) - $2))
    [ "$l" -gt 5 ] || { log "check_cuda_tc $1 not run"; return; }
    echo "== CK_RUN_CASE=$1" >>"$OUT/check_cuda_tc.log"
    CK_RUN_CASE=$1 CK_VERBOSITY=verbose CK_TIMEOUT_MULTIPLIER=4 NATTEN_TEST_SEED=1 timeout $l \
        "$BIN/check_cuda_tc" >>"$OUT/check_cuda_tc.log" 2>&1
    log "check_cuda_tc $1 rc=$?"
}
bench() { # label args...
    label=$1
    shift
    l=$(left)
    [ "$l" -gt 8 ] || { log "bench $label not run: $l s left"; return; }
    echo "== $label" >>"$OUT/bench.log"
    timeout $((l - 3)) "$BIN/natten-bench" "$@" --dtype float16 --op fna --backend cuda-tc/13,cuda-tc/14 \
        --repeat 20 --no-verify >>"$OUT/bench.log" 2>&1
    log "bench $label rc=$?"
}
check hopper 45
check edges 40
bench 2-D -i 256 256 -w 80 -n 24 -d 128
bench 1-D -i 32768 -w 2048 -n 1 -d 128
bench 3-D -i 30 48 80 -w 18 24 24 -n 24 -d 128
check configs 0
check api 0
l=$(left)
if [ "$l" -gt 14 ]; then
    timeout 13 $H checkv 39 >>"$OUT/harness.log" 2>&1
    log "harness checkv 39 (E) rc=$?"
fi
l=$(left)
if [ "$l" -gt 10 ]; then
    timeout $((l - 2)) compute-sanitizer --tool synccheck $H checkv 40 >"$OUT/san.log" 2>&1
    log "synccheck checkv 40 rc=$?"
fi
log done
