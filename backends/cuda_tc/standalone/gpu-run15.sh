#!/bin/sh
# gpu-run15.sh - v10's second device call (helper tc8), the binaries of
# gpu-run14.sh (same build, $BIN): compute-sanitizer synccheck, racecheck and
# memcheck of configuration 15 (natten-bench --backend cuda-tc/15, verified
# against naive) on a small 2-D and a small dilated 3-D problem, then Nsight
# Compute (the sections of tools/gpu-profile.sh plus ComputeWorkloadAnalysis)
# of configuration 15's second launch on the 2-D target, then natten-bench of
# the 2-D target (default, 15, 14) once more.  Every step under `timeout`, the
# whole within DEADLINE seconds (default 170).  Logs: run.log, san.log,
# ncu15.txt, bench.log.
# As run (device call 15), P3 was not a valid problem (window 7 x dilation 2
# exceeds the extent 12 on axis 1): natten-bench refused it, so the three 3-D
# sanitizer runs checked nothing (rc 255); the 2-D ones ran and were clean.
start=$(date +%s)
el() { echo $(($(date +%s) - start)); }
log() { echo "[$(el) s] $*" >>"$OUT/run.log"; }
left() { echo $((${DEADLINE:-170} - $(el))); }
log "start $(nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null)"
export LD_LIBRARY_PATH="$BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
san() { # tool seconds bench-args...
    tool=$1
    t=$2
    shift 2
    echo "== $tool: $*" >>"$OUT/san.log"
    timeout $t "$CS" --tool "$tool" --error-exitcode 9 "$BIN/natten-bench" --backend cuda-tc/15 --op fna \
        --dtype float16 -d 128 --warmup 0 --repeat 1 "$@" >>"$OUT/san.log" 2>&1
    log "$tool $* rc=$?"
}
P2="-i 40 44 -w 13 9 -n 2"
P3="-i 10 12 14 -w 5 7 3 -n 2 --dilation 1 2 1"
san synccheck 20 $P2
san synccheck 20 $P3
san racecheck 30 $P2
san racecheck 30 $P3
san memcheck 20 $P2
san memcheck 20 $P3
l=$(($(left) - 25))
if [ "$l" -gt 20 ]; then
    timeout $l "$NCU" --clock-control none --section SpeedOfLight --section Occupancy --section WarpStateStats \
        --section MemoryWorkloadAnalysis --section LaunchStats --section ComputeWorkloadAnalysis \
        -k regex:fwd_ws_kernel --launch-skip 1 --launch-count 1 "$BIN/natten-bench" --backend cuda-tc/15 \
        --op fna --dtype float16 -i 256 256 -w 80 -n 24 -d 128 --no-verify --warmup 1 --repeat 2 \
        >"$OUT/ncu15.txt" 2>&1
    log "ncu rc=$?"
fi
l=$(left)
[ "$l" -gt 8 ] && timeout $((l - 2)) "$BIN/natten-bench" -i 256 256 -w 80 -n 24 -d 128 --dtype float16 --op fna \
    --backend cuda-tc,cuda-tc/15,cuda-tc/14 --repeat 20 --no-verify >>"$OUT/bench.log" 2>&1
log "bench rc=$?; end"
