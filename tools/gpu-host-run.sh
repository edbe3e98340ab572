#!/usr/bin/env bash
# gpu-host-run.sh - the whole GPU-host run in one command: build, test, sanitize,
# benchmark, compare with PyTorch, check measured selection, test the Python
# bindings; every step under its own time limit, each continuing on failure,
# all logs and CSVs packed into at most 7 files under $OUT.
#
# From the source root on the GPU host, after the missing packages are unpacked
# (for f in .gpu/*.deb; do dpkg -x $f /; done):
#
#   OUT=/some/dir tools/gpu-host-run.sh
#
# Steps (name: what; its time limit in seconds, environment variable = default):
#   build:  ./bootstrap && ./configure --with-cuda-arch=$CUDA_ARCH && make -j$JOBS   T_BUILD=300
#   check:  make -j$JOBS check; prints each test's result and the summary            T_CHECK=240
#   san:    tests/gpu-sanitize.sh . $SAN_TESTS with TOOLS=$SAN_TOOLS                  T_SAN=180
#           (SANITIZE_BUDGET = the step's limit less 10 s; SAN_TESTS="tests/check_cuda
#           tests/check_cuda_tc", SAN_TOOLS="memcheck racecheck initcheck synccheck";
#           each (tool, test, Check case) is its own run, SAN_JOBS of them at a
#           time (default 1; PARALLEL=1: 12); SAN_CASES picks the cases per test
#           and NO_API_ERRORS the memcheck runs without API-error reports (see
#           tests/gpu-sanitize.sh: by default check_cuda's cases but `bigger`,
#           check_cuda_tc's `edges`, and the deliberate out-of-memory of
#           check_cuda's `oom` without API errors); SAN_CASE=NAME instead runs
#           each test whole with CK_RUN_CASE=NAME)
#   bench:  natten-bench --suite gpu $BENCH_ARGS --csv-out bench-gpu.csv              T_BENCH=240
#           (BENCH_ARGS="--max-call 2": a call over 2 s is timed once)
#   peers:  bench/peers.py --suite gpu (libnatten rows + PyTorch)                     T_PEERS=300
#           --natten-args="$PEERS_NATTEN_ARGS" (default "--backend cuda-tc
#           --no-verify": the bench step already times and verifies every backend),
#           and $PEERS_ARGS (e.g. "--method torch-sdpa,torch-flex --repeat 10")
#   anchors: bench/peers.py --suite anchors --dtype float16 (libnatten's GPU        T_ANCHORS=180
#           backends and PyTorch on the 7^2..224^2 sweep, fna; the charts' CSV)
#   tune:   natten-bench --suite gpu --device cuda --tune-check $TUNE_ARGS            T_TUNE=240
#           (TUNE_ARGS="--max-call 2")
#   python: python/run-tests.sh --build-dir .                                         T_PY=180
#   profile: tools/gpu-profile.sh . (Nsight Compute, one kernel launch for each   T_PROFILE=240
#           of its named problems; reports in gpu-run.tar.gz under profile/);
#           runs only with PROFILE=1, $PROFILE_ARGS as its environment (e.g.
#           PROFILE_ARGS="PROFILES=tc-fna-f16-256 T_ONE=60")
# Also: TOTAL_BUDGET (seconds, default 0 = none) caps the sum: a step gets at
# most what is left of it (less 15 s to pack); a step with < 5 s left is
# skipped.  SKIP="san py" skips steps by name; QUICK=1 uses the --quick suites
# (a fast rehearsal); CUDA_ARCH=90, JOBS=16.
#
# PARALLEL=1: one build (also `make check TESTS=`, which builds the check
# programs), then check, san and python side by side (correctness only: they
# share the GPU and the CPUs), then the timed steps (bench, peers, anchors,
# tune, profile) one at a time, alone on the GPU.  Its defaults make one run
# of about 8 minutes: T_BUILD=120 T_CHECK=170 T_SAN=170 T_PY=150 T_BENCH=60
# T_PEERS=50 T_TUNE=70 TOTAL_BUDGET=480 SKIP=anchors SAN_JOBS=12
# CK_TIMEOUT_MULTIPLIER=4 (measured 2026-11-29: build 55 s, python 83 s, a
# sanitizer run on one Check case seconds to about two minutes); any of them
# can be set.  The side-by-side steps run with OMP_WAIT_POLICY=passive
# (unless set): OpenMP threads spinning at barriers starve the other steps.
#
# $OUT gets: summary.txt (each step's status and time, and the key lines of
# its log), gpu-run.tar.gz (every log and CSV), and bench-gpu.csv,
# peers-gpu.csv, anchors-gpu.csv, tune-check.csv (for bench/plot and
# docs/benchmarks.md; the GPU host has no matplotlib: plot them elsewhere,
#   bench/plot anchors-gpu.csv -o docs --stem gpu-anchors --baseline torch-flex
#   bench/plot bench-gpu.csv peers-gpu.csv -o docs --stem gpu-suite --baseline torch-flex).
#
# Measured on the H200 host (2026-11-29): build 51 s; sanitizers ~2 s a run
# on one test case; the --quick suites take seconds, but the full suite gpu
# does not: cuda-tiled needs ~4 s per 2-D 256^2 forward call (~12 s 3-D,
# backward 2-3x), and FlexAttention compiles ~10-20 s per variant and
# direction.  For a ~7-minute run: SKIP="anchors" T_BUILD=90 T_CHECK=120
# T_SAN=45 SAN_CASE=... T_BENCH=90 BENCH_ARGS="--backend cuda-tc" T_PEERS=60
# T_TUNE=90 T_PY=60 TOTAL_BUDGET=420 (cuda-tiled's own numbers then come from
# the tune step's pruned first looks).
# Exit status: 0 when every step that ran passed.
set -uo pipefail
: "${PARALLEL:=0}"
if [ "$PARALLEL" = 1 ]; then
    : "${T_BUILD:=120}" "${T_CHECK:=170}" "${T_SAN:=170}" "${T_PY:=150}" "${T_BENCH:=60}" "${T_PEERS:=50}"
    : "${T_TUNE:=70}" "${TOTAL_BUDGET:=480}" "${SKIP=anchors}" "${SAN_JOBS:=12}" "${CK_TIMEOUT_MULTIPLIER:=4}"
    export CK_TIMEOUT_MULTIPLIER
fi
OUT=${OUT:-$PWD/gpu-run-out}
mkdir -p "$OUT" || exit 2
logs=$(mktemp -d "${TMPDIR:-/tmp}/gpu-run.XXXXXX") || exit 2
summary=$logs/summary.txt
: "${T_BUILD:=300}" "${T_CHECK:=240}" "${T_SAN:=180}" "${T_BENCH:=240}" "${T_PEERS:=300}"
: "${T_ANCHORS:=180}" "${T_TUNE:=240}" "${T_PY:=180}" "${TOTAL_BUDGET:=0}" "${SKIP:=}" "${QUICK:=0}"
: "${CUDA_ARCH:=90}" "${JOBS:=16}" "${SAN_JOBS:=1}" "${T_PROFILE:=240}" "${PROFILE:=0}" "${PROFILE_ARGS:=}"
: "${SAN_TESTS:=tests/check_cuda tests/check_cuda_tc}" "${SAN_TOOLS:=memcheck racecheck initcheck synccheck}"
: "${BENCH_ARGS:=--max-call 2}" "${PEERS_NATTEN_ARGS:=--backend cuda-tc --no-verify}" "${TUNE_ARGS:=--max-call 2}"
: "${PEERS_ARGS:=}"
quick=
[ "$QUICK" = 1 ] && quick=--quick
# the step functions below run in a child bash (under timeout): they see these
export quick logs CUDA_ARCH JOBS SAN_TESTS SAN_TOOLS SAN_JOBS PEERS_NATTEN_ARGS PEERS_ARGS PARALLEL
start=$(date +%s)
failed=0

say() { echo "$*" | tee -a "$summary"; }

# step NAME LIMIT COMMAND...: runs COMMAND under timeout, its output in NAME.log
step() {
    local name=$1 limit=$2 rc t0 t1
    shift 2
    case " $SKIP " in *" $name "*) say "== $name: skipped (SKIP)"; return 0 ;; esac
    if [ "$TOTAL_BUDGET" -gt 0 ]; then
        local left=$((TOTAL_BUDGET - ($(date +%s) - start) - 15))
        [ "$left" -lt "$limit" ] && limit=$left
        if [ "$limit" -lt 5 ]; then
            say "== $name: not run (TOTAL_BUDGET=$TOTAL_BUDGET s spent)"
            failed=1
            touch "$logs/.failed" # seen also when this runs in a subshell (PARALLEL=1)
            return 0
        fi
    fi
    t0=$(date +%s)
    timeout -k 10 "$limit" bash -c '"$@"' step "$@" >"$logs/$name.log" 2>&1
    rc=$?
    t1=$(date +%s)
    case $rc in
    0) say "== $name: ok ($((t1 - t0)) s of $limit)" ;;
    124|137) say "== $name: STOPPED at its limit of $limit s (exit $rc)"; failed=1 ;;
    *) say "== $name: FAILED, exit $rc ($((t1 - t0)) s of $limit)"; failed=1 ;;
    esac
    [ $rc = 0 ] || touch "$logs/.failed"
    return $rc
}

# The key lines of a log into the summary.
keep() { # keep NAME EXTENDED-REGEX [MAX]
    [ -f "$logs/$1.log" ] || return 0
    grep -E "$2" "$logs/$1.log" | head -"${3:-40}" | sed 's/^/   /' | tee -a "$summary"
}

if [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$PWD" ]; then
    rev="commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD 2>/dev/null || echo '+changes')"
else
    rev="not a git checkout"
fi
say "gpu-host-run: $(date -u '+%Y-%m-%d %H:%M UTC') | $rev | $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1) | $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*')"
say "   limits: build $T_BUILD, check $T_CHECK, san $T_SAN, bench $T_BENCH, peers $T_PEERS, anchors $T_ANCHORS, tune $T_TUNE, py $T_PY, profile $T_PROFILE (PROFILE=$PROFILE); total ${TOTAL_BUDGET:-0}; skip '$SKIP'; quick $QUICK; parallel $PARALLEL"

build() {
    ./bootstrap && ./configure --with-cuda-arch="$CUDA_ARCH" && make -j"$JOBS" || return
    # PARALLEL=1: the check programs too, before check and san run side by side
    if [ "$PARALLEL" = 1 ]; then make -j"$JOBS" check TESTS=; fi
}
export -f build
step build "$T_BUILD" build
keep build '(error|warning):' 20
keep build '^libnatten|backends:' 5
[ -x ./natten-bench ] && ./natten-bench --list 2>&1 | sed 's/^/   /' | tee -a "$summary"

do_check() {
    step check "$T_CHECK" make -j"$JOBS" check
    keep check '^(PASS|FAIL|XFAIL|XPASS|ERROR|SKIP): |^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' 80
    for f in tests/*.log; do
        case $f in tests/test-suite.log) continue ;; esac
        grep -q -E '^:test-result: (FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null && { echo "--- $f"; tail -30 "$f"; } >>"$logs/check-failures.log"
    done
    cp tests/test-suite.log "$logs/check-test-suite.log" 2>/dev/null
}

san() {
    # shellcheck disable=SC2086
    make -j"$JOBS" $SAN_TESTS || return 1 # the check step may have been skipped
    if [ -n "${SAN_CASE:-}" ]; then export CK_RUN_CASE=$SAN_CASE SAN_CASES=; fi
    # shellcheck disable=SC2086
    SANITIZE_BUDGET=$1 TOOLS=$SAN_TOOLS tests/gpu-sanitize.sh . $SAN_TESTS
}
export -f san
do_san() {
    step san "$T_SAN" san "$((T_SAN - 10))"
    keep san '^gpu-sanitize: ' 60
    [ -d gpu-sanitize ] && cp -r gpu-sanitize "$logs/"
}

do_py() {
    step py "$T_PY" python/run-tests.sh --build-dir .
    keep py 'passed|failed|error|skipped|run-tests.sh:' 20
}

if [ "$PARALLEL" = 1 ]; then
    # side by side, each with its own part of the summary, joined in order
    say "== check, san, py side by side (PARALLEL=1)"
    main_summary=$summary
    for part in check san py; do
        # OpenMP threads wait passively here: spinning ones starve the others
        ( summary=$logs/summary-$part.txt; : >"$summary"; export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
          "do_$part" ) >/dev/null 2>&1 &
    done
    wait
    summary=$main_summary
    for part in check san py; do
        cat "$logs/summary-$part.txt" >>"$summary" && cat "$logs/summary-$part.txt"
        rm -f "$logs/summary-$part.txt"
    done
    say "== side by side: $(($(date +%s) - start)) s since the start"
else
    do_check
    do_san
fi

# shellcheck disable=SC2086
step bench "$T_BENCH" ./natten-bench --suite gpu $quick $BENCH_ARGS --csv-out "$logs/bench-gpu.csv"
keep bench '^== |^backend|^cuda|^natten-bench: |FAIL|WRONG' 80

peers() {
    # shellcheck disable=SC2086
    python3 bench/peers.py --suite gpu $quick --natten-bench ./natten-bench --natten-args="$PEERS_NATTEN_ARGS" \
        --peak --csv-out "$logs/peers-gpu.csv" $PEERS_ARGS
}
export -f peers
step peers "$T_PEERS" peers
keep peers '^== |^backend|^cuda|^torch|^dense|^peers.py|\(no libnatten|Error' 100

anchors() {
    # shellcheck disable=SC2086
    python3 bench/peers.py --suite anchors $quick --dtype float16 --natten-bench ./natten-bench \
        --natten-args=--no-verify --csv-out "$logs/anchors-gpu.csv" $PEERS_ARGS
}
export -f anchors
step anchors "$T_ANCHORS" anchors
keep anchors '^== |^cuda|^torch|^peers.py|\(no libnatten|Error' 60

# shellcheck disable=SC2086
step tune "$T_TUNE" ./natten-bench --suite gpu $quick --device cuda --tune-check $TUNE_ARGS --csv-out "$logs/tune-check.csv"
keep tune '^== | pick |picks |^natten-bench' 60

[ "$PARALLEL" = 1 ] || do_py

if [ "$PROFILE" = 1 ]; then
    # shellcheck disable=SC2086
    profile() { env $PROFILE_ARGS OUT="$logs/profile" tools/gpu-profile.sh .; }
    export -f profile
    export PROFILE_ARGS
    step profile "$T_PROFILE" profile
    keep profile '^gpu-profile: |^   ' 60
else
    say "== profile: skipped (PROFILE=1 runs it)"
fi

[ -e "$logs/.failed" ] && failed=1
rm -f "$logs/.failed"
say "gpu-host-run: done in $(($(date +%s) - start)) s; $([ $failed = 0 ] && echo 'every step that ran passed' || echo 'SOME STEPS FAILED')"
cp "$summary" "$OUT/summary.txt"
for c in bench-gpu.csv peers-gpu.csv anchors-gpu.csv tune-check.csv; do [ -f "$logs/$c" ] && cp "$logs/$c" "$OUT/"; done
tar -C "$logs" -czf "$OUT/gpu-run.tar.gz" . 2>/dev/null
rm -rf "$logs"
exit $failed
