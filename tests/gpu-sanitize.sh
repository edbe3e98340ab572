#!/usr/bin/env bash
# gpu-sanitize.sh - NVIDIA compute-sanitizer's four tools (memcheck, racecheck,
# initcheck, synccheck) over the test programs, on a GPU host.
#
#   tests/gpu-sanitize.sh BUILD_DIR [TEST...]
#
# TEST defaults to every tests/check_* program built in BUILD_DIR (a build
# configured with the CUDA backend); a program with nothing to run on the GPU
# exits 77 and counts as skipped.  Check runs without fork (CK_FORK=no) so the
# sanitizer sees every test of a run in one process.  Each (tool, test, case)
# is one run, a process of its own: a test listed in SAN_CASES runs once per
# case named there (CK_RUN_CASE), any other test once as a whole.  Environment:
#   COMPUTE_SANITIZER  the sanitizer binary (default: compute-sanitizer on PATH,
#                      else $CUDA_HOME/bin or /usr/local/cuda/bin)
#   TOOLS              tools to run (default: "memcheck racecheck initcheck synccheck")
#   SAN_CASES          per test, the Check cases to run, each its own run:
#                      "TEST:CASE,CASE TEST:CASE" (default: check_cuda's cases
#                      but its long `bigger` one, and check_cuda_tc's `edges`:
#                      "check_cuda:stream,oom,device,empty,configs check_cuda_tc:edges");
#                      "" runs every test whole
#                      (a case that runs no check, e.g. a test's name given
#                      instead of its case's, counts as failed)
#   NO_API_ERRORS      TEST:CASE pairs whose memcheck run reports no CUDA API
#                      errors (--report-api-errors no; accesses and leaks are
#                      still checked): cases that fail an API call on purpose
#                      (default "check_cuda:oom", a deliberate out-of-memory)
#   SAN_JOBS           runs at a time (default 1: one after another)
#   NATTEN_TEST_SEED   fixed at 1 unless set, so that a finding can be replayed
#   SANITIZE_BUDGET    seconds for all runs (default: no limit); each run gets
#                      what is left when it starts (timeout), and a run that
#                      would start past it is reported "not run (budget)";
#                      both count as failed
# Logs: BUILD_DIR/gpu-sanitize/<tool>-<test>[-<case>].log.  Exit status 0 iff
# no run failed.
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
declare -A cases=()
for spec in ${SAN_CASES-check_cuda:stream,oom,device,empty,configs check_cuda_tc:edges}; do
    cases[${spec%%:*}]=${spec#*:}
done
no_api=" ${NO_API_ERRORS-check_cuda:oom} "
export CK_FORK=no NATTEN_TEST_SEED=${NATTEN_TEST_SEED:-1}
dir=$build/gpu-sanitize
mkdir -p "$dir"
budget=${SANITIZE_BUDGET:-0}
jobs=${SAN_JOBS:-1}
start=$(date +%s)

# the runs: "tool test case" (case "-": the whole test)
runs=()
declare -A seen=() # a run named twice runs once (its log and status are per run)
for tool in "${tools[@]}"; do
    for t in "${tests[@]}"; do
        b=$(basename "$t")
        for c in $([ -n "${cases[$b]:-}" ] && echo "${cases[$b]//,/ }" || echo -); do
            [ -n "${seen[$tool $t $c]:-}" ] && continue
            seen[$tool $t $c]=1
            runs+=("$tool $t $c")
        done
    done
done

# one_run TOOL TEST CASE LIMIT: its log, and its exit status in LOG.rc
one_run() {
    local tool=$1 t=$2 c=$3 left=$4 log opts rc
    local -a limit=() env=()
    log=$dir/$tool-$(basename "$t")$([ "$c" = - ] || echo "-$c").log
    opts=${extra[$tool]}
    [ "$c" = - ] || env=(CK_RUN_CASE="$c")
    if [ "$tool" = memcheck ] && [ "$c" != - ] && [[ $no_api == *" $(basename "$t"):$c "* ]]; then
        opts="$opts --report-api-errors no"
    fi
    [ "$left" -gt 0 ] && limit=(timeout -k 5 "$left")
    # shellcheck disable=SC2086
    env "${env[@]}" "${limit[@]}" "$build/libtool" --mode=execute "$cs" --tool "$tool" $opts --error-exitcode 86 \
        "$build/$t" >"$log" 2>&1
    rc=$?
    echo "$rc" >"$log.rc"
}

running=0
for r in "${runs[@]}"; do
    read -r tool t c <<<"$r"
    left=0
    if [ "$budget" -gt 0 ]; then
        left=$((budget - ($(date +%s) - start)))
        if [ "$left" -le 0 ]; then
            log=$dir/$tool-$(basename "$t")$([ "$c" = - ] || echo "-$c").log
            echo 999 >"$log.rc" # not run
            continue
        fi
    fi
    if [ "$jobs" -le 1 ]; then
        one_run "$tool" "$t" "$c" "$left"
    else
        [ "$running" -ge "$jobs" ] && { wait -n; running=$((running - 1)); }
        one_run "$tool" "$t" "$c" "$left" &
        running=$((running + 1))
    fi
done
wait

n=0 clean=0 skipped=0 failed=0
for r in "${runs[@]}"; do
    read -r tool t c <<<"$r"
    log=$dir/$tool-$(basename "$t")$([ "$c" = - ] || echo "-$c").log
    what="$tool $t$([ "$c" = - ] || echo " (case $c)")"
    [[ $tool == memcheck && $c != - && $no_api == *" $(basename "$t"):$c "* ]] && what="$what [--report-api-errors no]"
    rc=$(cat "$log.rc" 2>/dev/null || echo 998)
    rm -f "$log.rc"
    n=$((n + 1))
    case $rc in
    999) failed=$((failed + 1)); echo "gpu-sanitize: $what: not run (SANITIZE_BUDGET=$budget s spent)" ;;
    124|137) failed=$((failed + 1))
       echo "gpu-sanitize: $what: STOPPED at the SANITIZE_BUDGET limit (exit $rc), see $log" ;;
    0) if [ "$c" != - ] && grep -qE '[0-9]+%: Checks: 0,' "$log"; then
           # CK_RUN_CASE named no case of the program: nothing was checked
           failed=$((failed + 1)); echo "gpu-sanitize: $what: FAILED: no check ran (no case '$c'?), see $log"
       else clean=$((clean + 1)); echo "gpu-sanitize: $what: clean"; fi ;;
    77) skipped=$((skipped + 1)); echo "gpu-sanitize: $what: skipped (nothing to run here)" ;;
    *) failed=$((failed + 1))
       echo "gpu-sanitize: $what: FAILED (exit $rc), see $log"
       grep -E '^========= (Invalid|Race|Uninitialized|Barrier|Program hit|ERROR SUMMARY)|Checks:' "$log" | head -20 ;;
    esac
done
echo "gpu-sanitize: $n runs, $jobs at a time, $(($(date +%s) - start)) s ($("$cs" --version 2>/dev/null | tail -1)): $clean clean, $skipped skipped, $failed failed"
[ "$failed" -eq 0 ]
