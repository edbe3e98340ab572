#!/bin/sh
# gpu-run14.sh - v10's device call (helper tc8): configuration 15 (three
# consumer warpgroups, 192-row query boxes) in the library, built on the host
# (configure --with-cuda-arch=90 --enable-werror; make libnatten.la
# natten-bench tests/check_cuda_tc) and its three real binaries copied to
# $BIN (libnatten.so.0, natten-bench, check_cuda_tc; run with
# LD_LIBRARY_PATH=$BIN).  check_cuda_tc's hopper case (hopper_forward runs
# the default, 10, 13, 14 and 15), natten-bench of the three D-128 forward
# targets (fp16, median of 20, --no-verify: check_cuda_tc verifies) under
# configurations 14 and 15 and the default (15 from 2^17 query rows on this
# branch), then check_cuda_tc's edges, configs and api cases while time is
# left.  Every step under `timeout`, the whole within DEADLINE seconds
# (default 200).  Run from the tree's root with OUT and BIN set; logs:
# run.log (timeline), check_cuda_tc.log, bench.log.
start=$(date +%s)
el() { echo $(($(date +%s) - start)); }
log() { echo "[$(el) s] $*" >>"$OUT/run.log"; }
left() { echo $((${DEADLINE:-200} - $(el))); }
log "start $(nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null)"
export LD_LIBRARY_PATH="$BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
check() { # case, seconds kept for what follows
    l=$(($(left) - $2))
    [ "$l" -gt 5 ] || { log "check_cuda_tc $1 not run"; return; }
    echo "== CK_RUN_CASE=$1" >>"$OUT/check_cuda_tc.log"
    CK_RUN_CASE=$1 CK_VERBOSITY=verbose CK_TIMEOUT_MULTIPLIER=4 NATTEN_TEST_SEED=1 timeout $l \
        "$BIN/check_cuda_tc" >>"$OUT/check_cuda_tc.log" 2>&1
    log "check_cuda_tc $1 rc=$?"
}
bench() { # label configurations args...
    label=$1
    cfgs=$2
    shift 2
    l=$(left)
    [ "$l" -gt 8 ] || { log "bench $label not run: $l s left"; return; }
    echo "== $label ($cfgs)" >>"$OUT/bench.log"
    timeout $((l - 3)) "$BIN/natten-bench" "$@" --dtype float16 --op fna --backend "$cfgs" \
        --repeat 20 --no-verify >>"$OUT/bench.log" 2>&1
    log "bench $label rc=$?"
}
check hopper 80
bench 2-D cuda-tc/14,cuda-tc/15,cuda-tc -i 256 256 -w 80 -n 24 -d 128
bench 3-D cuda-tc/14,cuda-tc/15,cuda-tc -i 30 48 80 -w 18 24 24 -n 24 -d 128
bench 1-D cuda-tc/13,cuda-tc/14,cuda-tc/15,cuda-tc -i 32768 -w 2048 -n 1 -d 128
bench 2-D-again cuda-tc/15,cuda-tc/14 -i 256 256 -w 80 -n 24 -d 128
check edges 25
check configs 0
check api 0
log "end"
