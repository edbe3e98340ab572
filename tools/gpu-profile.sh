#!/usr/bin/env bash
# gpu-profile.sh - Nsight Compute reports of one kernel launch of natten-bench
# per named problem, for the kernel work of issues #8 (cuda-tiled) and #9
# (cuda-tc).  On a GPU host, from a build directory:
#
#   OUT=/some/dir tools/gpu-profile.sh [BUILD_DIR]
#
# For each profile: ncu --clock-control none with a few sections (NCU_SECTIONS,
# default SpeedOfLight Occupancy WarpStateStats LaunchStats
# MemoryWorkloadAnalysis) on natten-bench --no-verify --warmup 1 --repeat 2
# with one backend and one op, profiling one launch: the second launch of a
# kernel whose name matches the profile's filter (-k regex:..., --launch-skip 1
# --launch-count 1: the first, cold one is skipped).  Its text report goes to
# $OUT/profile-NAME.txt.  Environment:
#   PROFILES   names to run (default: all of them, in the order below)
#   NCU        the ncu binary (default: ncu on PATH, else $CUDA_HOME/bin/ncu,
#              else /usr/local/cuda/bin/ncu)
#   T_ONE      seconds per profile (default 120; ncu replays the kernel once
#              per section pass)
#   NCU_EXTRA  more ncu options (e.g. "--set full", "--print-details all"; with
#              NCU_SECTIONS=SourceCounters and "--page source --print-source sass
#              --csv", a per-SASS-line report: tools/ncu-source-digest.py reads it)
# Profiles (name: natten-bench arguments; kernel filter):
#   tiled-qk-f16:   cuda-tiled qk fp16, 2-D 56x56 K 7, B 64 H 4 D 32 (forward);
#                   the bulk-copy qkb_kernel (the default on sm_90+ where it
#                   applies), the tensor-core qkh_kernel (the default on sm_80+ with a
#                   query's heads adjacent), qkl_kernel (tc-lean-per-head) or
#                   qkm_kernel (tc-wide), the fast 2-D kernel qk2_kernel or the
#                   generic pn_kernel
#   tiled-av-f16:   cuda-tiled av fp16, the same problem; avb_kernel (sm_90+), avh_kernel, avl_kernel,
#                   avm_kernel, av2_kernel or nn_kernel
#   tiled-fna-f32:  cuda-tiled fna fp32, 2-D 56x56 K 7, B 16 H 2 D 32 (forward);
#                   fna2_kernel or fwd_kernel
#   tiled-dq-f32:   cuda-tiled fna fp32 backward, the tiled-fna-f32 problem;
#                   its dQ kernel dq2_kernel (or the generic dq_kernel)
#   tiled-dkv-f32:  the same backward's dK/dV kernel dkv2_kernel (or dkv_kernel)
#   tc-fna-f16-256: cuda-tc fna fp16, 2-D 256x256 K 80, B 1 H 24 D 128 (forward);
#                   its forward kernel: fna_fwd_kernel (mma.sync) or the
#                   Hopper fwd_kernel or fwd_ws_kernel (wgmma, sm_90a)
#   tc-dq-f16-256:  cuda-tc fna fp16 backward, the tc-fna-f16-256 problem;
#                   its dQ kernel: the Hopper dq_kernel (wgmma, sm_90a) or
#                   fna_dq_kernel (mma.sync)
#   tc-dkv-f16-256: the same backward's dK/dV kernel: dkv_kernel or
#                   fna_dkv_kernel
#
# NOT RUN by the session that wrote it (no GPU time was left): written to be
# simple and robust rather than clever, so check the first reports by eye.  A
# profile that fails (no ncu, no permission for the GPU's performance counters
# - ERR_NVGPUCTRPERM - or no launch matched the filter) is reported and the
# others still run.  Exit status: 0 if every profile produced a report.
set -uo pipefail
build=$(cd "${1:-.}" && pwd) || exit 2
OUT=${OUT:-$PWD/gpu-profile-out}
mkdir -p "$OUT" || exit 2
: "${T_ONE:=120}" "${NCU_EXTRA:=}"
: "${NCU_SECTIONS:=SpeedOfLight Occupancy WarpStateStats LaunchStats MemoryWorkloadAnalysis}"
ncu=${NCU:-}
if [ -z "$ncu" ]; then
    for c in ncu "${CUDA_HOME:-/nonexistent}/bin/ncu" /usr/local/cuda/bin/ncu; do
        if command -v "$c" >/dev/null 2>&1; then ncu=$c; break; fi
    done
fi
if [ -z "$ncu" ]; then
    echo "gpu-profile: ncu (Nsight Compute) not found (set NCU)" >&2
    exit 2
fi
[ -x "$build/natten-bench" ] || { echo "gpu-profile: no natten-bench in $build (build first)" >&2; exit 2; }

declare -A args=(
    [tiled-qk-f16]="--backend cuda-tiled --op qk --dtype float16 -i 56 56 -w 7 -b 64 -n 4 -d 32"
    [tiled-av-f16]="--backend cuda-tiled --op av --dtype float16 -i 56 56 -w 7 -b 64 -n 4 -d 32"
    [tiled-fna-f32]="--backend cuda-tiled --op fna --dtype float32 -i 56 56 -w 7 -b 16 -n 2 -d 32"
    [tiled-dq-f32]="--backend cuda-tiled --op fna --backward --dtype float32 -i 56 56 -w 7 -b 16 -n 2 -d 32"
    [tiled-dkv-f32]="--backend cuda-tiled --op fna --backward --dtype float32 -i 56 56 -w 7 -b 16 -n 2 -d 32"
    [tc-fna-f16-256]="--backend cuda-tc --op fna --dtype float16 -i 256 256 -w 80 -b 1 -n 24 -d 128"
    [tc-dq-f16-256]="--backend cuda-tc --op fna --backward --dtype float16 -i 256 256 -w 80 -b 1 -n 24 -d 128"
    [tc-dkv-f16-256]="--backend cuda-tc --op fna --backward --dtype float16 -i 256 256 -w 80 -b 1 -n 24 -d 128"
)
declare -A kernel=(
    [tiled-qk-f16]="regex:qkb_kernel|qkh_kernel|qkl_kernel|qkm_kernel|qk2_kernel|pn_kernel"
    [tiled-av-f16]="regex:avb_kernel|avh_kernel|avl_kernel|avm_kernel|av2_kernel|nn_kernel"
    [tiled-fna-f32]="regex:fna2_kernel|fwd_kernel"
    [tiled-dq-f32]="regex:dq2_kernel|dq_kernel"
    [tiled-dkv-f32]="regex:dkv2_kernel|dkv_kernel"
    [tc-fna-f16-256]="regex:fna_fwd_kernel|fwd_kernel|fwd_ws_kernel"
    [tc-dq-f16-256]="regex:dq_kernel"
    [tc-dkv-f16-256]="regex:dkv_kernel"
)
sections=()
for s in $NCU_SECTIONS; do sections+=(--section "$s"); done

ok=0 bad=0
for name in ${PROFILES:-tiled-qk-f16 tiled-av-f16 tiled-fna-f32 tiled-dq-f32 tiled-dkv-f32 tc-fna-f16-256 tc-dq-f16-256 tc-dkv-f16-256}; do
    if [ -z "${args[$name]:-}" ]; then
        echo "gpu-profile: $name: unknown profile (known: ${!args[*]})"
        bad=$((bad + 1))
        continue
    fi
    report=$OUT/profile-$name.txt
    t0=$(date +%s)
    {
        echo "# gpu-profile $name: natten-bench ${args[$name]}; kernel ${kernel[$name]}, 2nd launch"
        # shellcheck disable=SC2086
        timeout -k 10 "$T_ONE" "$build/libtool" --mode=execute "$ncu" --clock-control none --target-processes all \
            "${sections[@]}" -k "${kernel[$name]}" --launch-skip 1 --launch-count 1 $NCU_EXTRA \
            "$build/natten-bench" ${args[$name]} --no-verify --naive-limit 0 --warmup 1 --repeat 2
    } >"$report" 2>&1
    rc=$?
    t1=$(date +%s)
    if [ $rc -eq 0 ] && grep -qE 'Section: |^"Address"' "$report"; then
        ok=$((ok + 1))
        echo "gpu-profile: $name: ok ($((t1 - t0)) s), $report"
        # the headline numbers into the caller's log
        grep -E "^ +(Duration|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per Thread|Block Size|Grid Size|Dynamic Shared Memory Per Block) " \
            "$report" | head -12 | sed 's/^ */   /'
    else
        bad=$((bad + 1))
        case $rc in
        124|137) why="STOPPED at T_ONE=$T_ONE s" ;;
        0) why="no section in the report (no launch matched ${kernel[$name]}?)" ;;
        *) why="FAILED, exit $rc" ;;
        esac
        grep -q ERR_NVGPUCTRPERM "$report" && why="$why; no permission for the performance counters (ERR_NVGPUCTRPERM)"
        echo "gpu-profile: $name: $why, see $report"
        grep -E "^==(ERROR|WARNING|PROF)==" "$report" | head -5
    fi
done
echo "gpu-profile: $ok profiles, $bad failed"
[ "$bad" -eq 0 ]
