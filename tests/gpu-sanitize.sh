#!/usr/bin/env bash
# gpu-sanitize.sh - NVIDIA compute-sanitizer's four tools (memcheck, racecheck,
# initcheck, synccheck) over the test programs, on a GPU host.
#
#   tests/gpu-sanitize.sh BUILD_DIR [TEST...]
#
# TEST defaults to every tests/check_* program built in BUILD_DIR (a build
# configured with the CUDA backend); a program with nothing to run on the GPU
# exits 77 and counts as skipped.  Check runs without fork (CK_FORK=no) so the
# sanitizer sees every test in one process.  Environment:
#   COMPUTE_SANITIZER  the sanitizer binary (default: compute-sanitizer on PATH,
#                      else $CUDA_HOME/bin or /usr/local/cuda/bin)
#   TOOLS              tools to run (default: "memcheck racecheck initcheck synccheck")
#   NATTEN_TEST_SEED   fixed at 1 unless set, so that a finding can be replayed
#   SANITIZE_BUDGET    total seconds for all runs (default: no limit); each run
#                      gets what is left (timeout), and runs past it are reported
#                      "not run (budget)" and counted as failed
# Logs: BUILD_DIR/gpu-sanitize/<tool>-<test>.log.  Exit status 0 iff no run failed.
set -uo pipefail
build=${1:?usage: $0 BUILD_DIR [TEST...]}
shift
build=$(cd "$build" && pwd) || exit 2
cs=${COMPUTE_SANITIZER:-}
if [ -z "$cs" ]; then
    for c in compute-sanitizer "${CUDA_HOME:-/nonexistent}/bin/compute-sanitizer" \
             /usr/local/cuda/bin/compute-sanitizer; do
        if command -v "$c" >/dev/null 2>&1; then cs=$c; break; fi
    done
fi
if [ -z "$cs" ]; then
    echo "gpu-sanitize: compute-sanitizer not found (set COMPUTE_SANITIZER)" >&2
    exit 2
fi
tools=(${TOOLS:-memcheck racecheck initcheck synccheck})
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
    for f in "$build"/tests/check_*; do
        case $f in *.c|*.o|*.log|*.trs) continue ;; esac
        [ -x "$f" ] && tests+=("tests/$(basename "$f")")
    done
fi
[ ${#tests[@]} -gt 0 ] || { echo "gpu-sanitize: no test programs in $build/tests" >&2; exit 2; }

declare -A extra=(
    [memcheck]="--leak-check full"
    [racecheck]="--racecheck-report all"
    [initcheck]="--track-unused-memory"
    [synccheck]=""
)
export CK_FORK=no NATTEN_TEST_SEED=${NATTEN_TEST_SEED:-1}
mkdir -p "$build/gpu-sanitize"
runs=0 clean=0 skipped=0 failed=0
budget=${SANITIZE_BUDGET:-0}
start=$(date +%s)
for tool in "${tools[@]}"; do
    for t in "${tests[@]}"; do
        log=$build/gpu-sanitize/$tool-$(basename "$t").log
        runs=$((runs + 1))
        limit=()
        if [ "$budget" -gt 0 ]; then
            left=$((budget - ($(date +%s) - start)))
            if [ "$left" -le 0 ]; then
                failed=$((failed + 1))
                echo "gpu-sanitize: $tool $t: not run (SANITIZE_BUDGET=$budget s spent)"
                continue
            fi
            limit=(timeout -k 5 "$left")
        fi
        # shellcheck disable=SC2086
        "${limit[@]}" "$build/libtool" --mode=execute "$cs" --tool "$tool" ${extra[$tool]} --error-exitcode 86 \
            "$build/$t" >"$log" 2>&1
        rc=$?
        case $rc in
        124|137) failed=$((failed + 1))
           echo "gpu-sanitize: $tool $t: STOPPED at the SANITIZE_BUDGET limit (exit $rc), see $log" ;;
        0) clean=$((clean + 1)); echo "gpu-sanitize: $tool $t: clean" ;;
        77) skipped=$((skipped + 1)); echo "gpu-sanitize: $tool $t: skipped (nothing to run here)" ;;
        *) failed=$((failed + 1))
           echo "gpu-sanitize: $tool $t: FAILED (exit $rc), see $log"
           grep -E '^========= (Invalid|Race|Uninitialized|Barrier|Program hit|ERROR SUMMARY)|Checks:' "$log" | head -20 ;;
        esac
    done
done
echo "gpu-sanitize: $runs runs ($("$cs" --version 2>/dev/null | tail -1)): $clean clean, $skipped skipped, $failed failed"
[ "$failed" -eq 0 ]
