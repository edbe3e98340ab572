#!/bin/sh
# gpu-tools.sh - the GPU-host scripts' own logic, on any machine: stand-ins for
# compute-sanitizer and ncu (shell scripts that record how they were called)
# drive tests/gpu-sanitize.sh and tools/gpu-profile.sh.  What the real tools
# report is only seen on a GPU host.  Run by `make check` (needs bash).
command -v bash >/dev/null 2>&1 || { echo "SKIP: no bash"; exit 77; }
src=$(cd "${srcdir:-.}" && pwd)
tmp=${TMPDIR:-/tmp}/gpu-tools-test.$$
mkdir -p "$tmp/b/tests" || exit 99
trap 'rm -rf "$tmp"' EXIT
# the scripts' settings come from this test only
unset SLOW_CASE_S TOOLS SAN_CASES NO_API_ERRORS SAN_JOBS SANITIZE_BUDGET PROFILES NCU_EXTRA NCU_SECTIONS T_ONE OUT
fails=0
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }

# a build directory: libtool --mode=execute runs its command; two test programs
# that say which Check case they ran, one slow case, one that fails
b=$tmp/b
printf '#!/bin/sh\nshift\nexec "$@"\n' >"$b/libtool"
cat >"$b/tests/check_cuda" <<'T'
#!/bin/sh
echo "ran ${CK_RUN_CASE:-all}"
[ "${CK_RUN_CASE:-}" = configs ] && sleep "${SLOW_CASE_S:-3}"
exit 0
T
cp "$b/tests/check_cuda" "$b/tests/check_cuda_tc"
# the stand-in sanitizer: one line per call into calls.log (tool, options, case)
cat >"$tmp/cs" <<'T'
#!/bin/sh
[ "$1" = --version ] && { echo "stand-in 1.0"; exit 0; }
echo "$* | case=${CK_RUN_CASE:-all}" >>"${CALLS:?}"
for last; do :; done
case "$*" in *racecheck*check_cuda_tc*) echo "========= Race reported"; exit 86 ;; esac
exec "$last"
T
chmod +x "$b/libtool" "$b/tests/check_cuda" "$b/tests/check_cuda_tc" "$tmp/cs"
export COMPUTE_SANITIZER="$tmp/cs" CALLS="$tmp/calls.log"

# 1. one run per (tool, test, case), in parallel (the four `configs` runs take 3 s
#    each: 12 s one after another); memcheck on oom without API errors
t0=$(date +%s)
SAN_JOBS=8 bash "$src/tests/gpu-sanitize.sh" "$b" tests/check_cuda tests/check_cuda_tc >"$tmp/san.out" 2>&1
rc=$?
t1=$(date +%s)
runs=$(wc -l <"$tmp/calls.log")
oom_noapi=$(grep -c -- "--tool memcheck .*--report-api-errors no.*case=oom" "$tmp/calls.log")
noapi=$(grep -c -- "--report-api-errors no" "$tmp/calls.log")
if [ $rc -ne 0 ] && [ "$runs" -eq 24 ] && [ "$oom_noapi" -eq 1 ] && [ "$noapi" -eq 1 ] &&
   ! grep -q "case=bigger" "$tmp/calls.log" && ! grep -q "case=all" "$tmp/calls.log" &&
   [ "$(grep -c "check_cuda_tc | case=edges" "$tmp/calls.log")" -eq 4 ] &&
   grep -q "racecheck tests/check_cuda_tc (case edges): FAILED (exit 86)" "$tmp/san.out" &&
   grep -q "memcheck tests/check_cuda (case oom) \[--report-api-errors no\]: clean" "$tmp/san.out" &&
   grep -q "24 runs, 8 at a time.*: 23 clean, 0 skipped, 1 failed" "$tmp/san.out" &&
   [ -f "$b/gpu-sanitize/memcheck-check_cuda-oom.log" ] && [ $((t1 - t0)) -lt 10 ]; then
    pass "gpu-sanitize: a run per (tool, test, case), side by side, oom without API errors"
else
    fail "gpu-sanitize (exit $rc, $runs runs, $((t1 - t0)) s)"; cat "$tmp/san.out" "$tmp/calls.log"
fi

# 2. SAN_CASES="" runs each test whole; a budget stops runs that would start too late
rm -f "$tmp/calls.log"
SAN_CASES= TOOLS=memcheck bash "$src/tests/gpu-sanitize.sh" "$b" tests/check_cuda >"$tmp/san2.out" 2>&1
if [ $? -eq 0 ] && [ "$(cat "$tmp/calls.log")" = "--tool memcheck --leak-check full --error-exitcode 86 $b/tests/check_cuda | case=all" ]; then
    pass "gpu-sanitize: SAN_CASES= runs a test whole"
else
    fail "gpu-sanitize: SAN_CASES="; cat "$tmp/san2.out" "$tmp/calls.log"
fi
rm -f "$tmp/calls.log"
# (the budget in whole seconds: 4 s leaves a loaded machine 3 s to reach the first run;
# the slow case then sleeps past it)
SAN_CASES="check_cuda:configs,stream,device" SANITIZE_BUDGET=4 SLOW_CASE_S=8 TOOLS=memcheck \
    bash "$src/tests/gpu-sanitize.sh" "$b" tests/check_cuda >"$tmp/san3.out" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "memcheck tests/check_cuda (case configs): STOPPED at the SANITIZE_BUDGET limit" "$tmp/san3.out" &&
   grep -q "memcheck tests/check_cuda (case device): not run (SANITIZE_BUDGET=4 s spent)" "$tmp/san3.out"; then
    pass "gpu-sanitize: SANITIZE_BUDGET"
else
    fail "gpu-sanitize: SANITIZE_BUDGET (exit $rc)"; cat "$tmp/san3.out"
fi

# 3. gpu-profile.sh: one ncu call per profile, one launch each, a report per profile
cat >"$tmp/ncu" <<'T'
#!/bin/sh
echo "$*" >>"${CALLS:?}"
echo "  Section: GPU Speed Of Light Throughput"
echo "    Duration                     usecond         12.34"
T
printf '#!/bin/sh\nexit 0\n' >"$b/natten-bench"
chmod +x "$tmp/ncu" "$b/natten-bench"
rm -f "$tmp/calls.log"
NCU=$tmp/ncu OUT=$tmp/prof bash "$src/tools/gpu-profile.sh" "$b" >"$tmp/prof.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ "$(wc -l <"$tmp/calls.log")" -eq 8 ] &&
   [ "$(grep -c -- "--clock-control none .*--section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats --section MemoryWorkloadAnalysis -k regex:[^ ]* --launch-skip 1 --launch-count 1 .*natten-bench --backend cuda-[a-z]* --op [a-z]* .*--no-verify" "$tmp/calls.log")" -eq 8 ] &&
   [ "$(ls "$tmp/prof" | wc -l)" -eq 8 ] && grep -q "tc-fna-f16-256: ok" "$tmp/prof.out" &&
   grep -q "tc-dkv-f16-256: ok" "$tmp/prof.out" &&
   grep -q "Duration" "$tmp/prof.out"; then
    pass "gpu-profile: eight profiles, one launch each"
else
    fail "gpu-profile (exit $rc)"; cat "$tmp/prof.out" "$tmp/calls.log"
fi
printf '#!/bin/sh\necho "==ERROR== ERR_NVGPUCTRPERM - no permission"\nexit 1\n' >"$tmp/ncu"
PROFILES=tiled-qk-f16 NCU=$tmp/ncu OUT=$tmp/prof2 bash "$src/tools/gpu-profile.sh" "$b" >"$tmp/prof2.out" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "tiled-qk-f16: FAILED, exit 1; no permission for the performance counters" "$tmp/prof2.out"; then
    pass "gpu-profile: a failing ncu is reported"
else
    fail "gpu-profile: a failing ncu (exit $rc)"; cat "$tmp/prof2.out"
fi

echo "gpu-tools: $fails failed"
[ $fails -eq 0 ]
