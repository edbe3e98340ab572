#!/bin/sh
# gpu-run16.sh - v11's device call (helper tcb; written without a GPU, NOT RUN
# yet): configurations 16 and 17 (the Hopper backward whose 128-key dK/dV
# warpgroups skip the query tiles outside their keys' inverse windows, 64- and
# 32-query tiles; dQ as configuration 12) against the default backward.
# Run from the tree's root on the GPU host with OUT set (the .gpu packages
# unpacked first, autotools run on the host that copied the tree):
#   for f in .gpu/*.deb; do dpkg -x $f /; done; cd .wt-tcb && \
#     OUT=$OUT DEADLINE=560 sh backends/cuda_tc/standalone/gpu-run16.sh
# Steps, in order of importance, each under `timeout`, the whole within
# DEADLINE seconds (default 560):
#  1. build (configure --with-cuda-arch=90 --enable-werror; make -j16; the
#     test programs): build.log;
#  2. check_cuda_tc's hopper case (hopper_backward: the default, 11, 12, 16
#     and 17 on six head-dim-128 backward problems), api (deterministic
#     over the same configurations) and configs (each configuration 1..17 on
#     the 13 problems, the tuner over 18 candidates), then edges:
#     check_cuda_tc.log;
#  3. natten-bench --backward (fp16, median of 20, --no-verify: step 2
#     verifies) of the 2-D and 3-D targets: the default (configuration 12's
#     backward) against 16 and 17: bench.log;
#  4. Nsight Compute (tools/gpu-profile.sh) of the default backward's two
#     kernels on the 2-D target (profiles tc-dq-f16-256, tc-dkv-f16-256) and
#     of configuration 16's and 17's dK/dV kernel: profiles.txt.
# run.log is the timeline.  Five files under $OUT.
start=$(date +%s)
el() { echo $(($(date +%s) - start)); }
log() { echo "[$(el) s] $*" >>"$OUT/run.log"; }
left() { echo $((${DEADLINE:-560} - $(el))); }
log "start $(nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null)"
export NATTEN_TEST_SEED=1
# always configured here (a Makefile copied from another host would point at
# its paths); ./bootstrap must have run on the host that copied the tree
timeout 120 ./configure --with-cuda-arch=90 --enable-werror >"$OUT/build.log" 2>&1
log "configure rc=$?"
timeout $(($(left) - 200)) make -j16 >>"$OUT/build.log" 2>&1
log "make rc=$?"
timeout $(($(left) - 180)) make -j16 check TESTS= >>"$OUT/build.log" 2>&1
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
bench() { # label configurations args...
    label=$1
    cfgs=$2
    shift 2
    l=$(left)
    [ "$l" -gt 20 ] || { log "bench $label not run: $l s left"; return; }
    echo "== $label ($cfgs)" >>"$OUT/bench.log"
    timeout $((l - 10)) ./natten-bench "$@" --dtype float16 --op fna --backward --backend "$cfgs" \
        --repeat 20 --no-verify >>"$OUT/bench.log" 2>&1
    log "bench $label rc=$?"
}
profile() { # label config profiles
    l=$(left)
    [ "$l" -gt 40 ] || { log "profile $1 not run: $l s left"; return; }
    mkdir -p /tmp/prof-$1
    echo "==== $1 (NATTEN_CUDA_TC_CONFIG=$2)" >>"$OUT/profiles.txt"
    NATTEN_CUDA_TC_CONFIG=$2 PROFILES=$3 T_ONE=$((l > 130 ? 60 : l / 2 - 5)) OUT=/tmp/prof-$1 \
        bash tools/gpu-profile.sh . >>"$OUT/profiles.txt" 2>&1
    log "profile $1 rc=$?"
    cat /tmp/prof-$1/*.txt >>"$OUT/profiles.txt" 2>/dev/null
}
check hopper 220
check api 200
check configs 150
bench 2-D cuda-tc,cuda-tc/16,cuda-tc/17 -i 256 256 -w 80 -n 24 -d 128
bench 3-D cuda-tc,cuda-tc/16,cuda-tc/17 -i 30 48 80 -w 18 24 24 -n 24 -d 128
profile default "" "tc-dq-f16-256 tc-dkv-f16-256"
profile cfg16 16 tc-dkv-f16-256
profile cfg17 17 tc-dkv-f16-256
check edges 0
log "end"
