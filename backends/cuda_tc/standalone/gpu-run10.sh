#!/bin/sh
# gpu-run10.sh - v7's library call: build with sm_90a, check_cuda_tc (every
# case: edges, configs 1..13, hopper incl. hopper_forward over the default and
# configurations 10 and 13, api), then natten-bench on the three D-128 forward
# targets for configurations 10 (variant d) and 13 (the warp-specialised
# forward), fp16, median of 20, no verification (check_cuda_tc verified).
# Every step under `timeout`, the whole within DEADLINE seconds (default 285).
# Run from the tree's root with OUT set; logs: run.log (timeline), build.log,
# check_cuda_tc.log, bench.log.
start=$(date +%s)
el() { echo $(($(date +%s) - start)); }
log() { echo "[$(el) s] $*" >>"$OUT/run.log"; }
left() { echo $((${DEADLINE:-285} - $(el))); }
log "start $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)"
{ ./bootstrap && ./configure --with-cuda-arch=90; } >"$OUT/build.log" 2>&1 || { log "configure failed"; exit 1; }
timeout 180 make -j16 >>"$OUT/build.log" 2>&1
rc=$?
log "build rc=$rc"
[ $rc -eq 0 ] || exit 1
grep -c "C7512\|C7514" "$OUT/build.log" >>"$OUT/run.log"
./natten-info >>"$OUT/run.log" 2>&1
bench() { # label args...
    label=$1
    shift
    l=$(left)
    [ "$l" -gt 15 ] || { log "bench $label not run: $l s left"; return; }
    echo "== $label" >>"$OUT/bench.log"
    timeout $((l - 5)) ./natten-bench "$@" --dtype float16 --op fna --backend cuda-tc/10,cuda-tc/13 \
        --repeat 20 --no-verify >>"$OUT/bench.log" 2>&1
    log "bench $label rc=$?"
}
# check_cuda_tc alone (what `make check TESTS=tests/check_cuda_tc` runs,
# without building the other test programs)
make -j16 tests/check_cuda_tc >>"$OUT/build.log" 2>&1
log "test build rc=$?"
# one Check case at a time, the new kernel's first (each line of the log says
# which test passed: CK_VERBOSITY=verbose), leaving the benches 60 s
for c in hopper edges configs api; do
    l=$(($(left) - 60))
    [ "$l" -gt 5 ] || { log "check_cuda_tc $c not run"; continue; }
    echo "== CK_RUN_CASE=$c" >>"$OUT/check_cuda_tc.log"
    CK_RUN_CASE=$c CK_VERBOSITY=verbose CK_TIMEOUT_MULTIPLIER=4 NATTEN_TEST_SEED=1 timeout $l \
        ./tests/check_cuda_tc >>"$OUT/check_cuda_tc.log" 2>&1
    log "check_cuda_tc $c rc=$?"
done
bench 1-D -i 32768 -w 2048 -n 1 -d 128
bench 2-D -i 256 256 -w 80 -n 24 -d 128
bench 3-D -i 30 48 80 -w 18 24 24 -n 24 -d 128
log done
