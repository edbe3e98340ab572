#!/bin/sh
# bench-cli.sh - natten-bench's command line: bad flags are rejected with a
# usage message and exit status 2; --csv and --json are well formed; the tiny
# suites run and verify (exit status 0).  Run by `make check` from the build
# directory; set NATTEN_BENCH to test another binary.
bench=${NATTEN_BENCH:-./natten-bench}
tmp=${TMPDIR:-/tmp}/natten-bench-test.$$
mkdir -p "$tmp" || exit 99
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }
fast="--repeat 2 --warmup 0"

# 1. bad usage: exit 2, a message naming the problem, and the usage text
bad() { # bad EXPECTED-WORDS ARGS...
    want=$1; shift
    "$bench" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 2 ]; then fail "natten-bench $* exited $rc, expected 2"; return; fi
    if ! grep -q "usage: natten-bench" "$tmp/err"; then fail "natten-bench $*: no usage message"; return; fi
    if ! grep -q -- "$want" "$tmp/err"; then fail "natten-bench $*: message lacks '$want'"; cat "$tmp/err" | head -2; return; fi
    if [ -s "$tmp/out" ]; then fail "natten-bench $*: wrote to stdout"; return; fi
    pass "rejects $*"
}
bad "unknown option" --bogus
bad "unknown option" -x
bad "needs a value" --dtype
bad "unknown type" --dtype float8
bad "not an integer" -b two
bad "outside" -n 0
bad "outside" -w 1
bad "at most 3" -i 8 8 8 8
bad "needs at least one value" -i
bad "exceeds the extent" -i 8 8 -w 9
bad "exceeds the window" -i 16 -w 3 --stride 4
bad "give 1 or 2" -i 16 16 -w 3 3 3
bad "does not divide" -n 4 --heads-kv 3
bad "not fna, qk, av" --op softmax
bad "unknown suite" --suite nope
bad "needs --suite" --quick
bad "no backend" --backend nope
bad "no backend" --backend nope/1
bad "no configuration" --backend naive/nope
bad "not cpu, cuda" --device tpu
bad "outside" --causal 2
bad "not a number" --max-call soon
bad "do not go together" --tune w.txt --tune-check
bad "needs --tune-check" --check-all
bad "outside" --misalign 256
bad "not a multiple of the float32 element size" --misalign 2

# 2. help goes to stdout with status 0
if "$bench" --help >"$tmp/out" 2>&1 && grep -q -- "--suite" "$tmp/out"; then pass "--help"; else fail "--help"; fi
if "$bench" --list >"$tmp/out" 2>&1 && grep -q "naive" "$tmp/out"; then pass "--list"; else fail "--list"; fi

# 2b. --backend NAME/CONFIG: a row per listed configuration, labelled with it
if "$bench" -i 12 12 -w 5 -n 2 -d 8 --op fna $fast --backend naive/0,naive >"$tmp/cfg" 2>"$tmp/err" &&
   grep -E "^naive/0 +fna +fwd .* ok$" "$tmp/cfg" >/dev/null && grep -E "^naive +fna +fwd .* ok$" "$tmp/cfg" >/dev/null; then
    pass "--backend naive/0,naive"
else
    fail "--backend naive/0,naive"; cat "$tmp/cfg" "$tmp/err"
fi

# 2c. --misalign N: host tensors N bytes past a 256-byte boundary (the header
#     measures one), every CPU result still verified (exit 0); half problems take N = 2
if "$bench" -i 12 12 -w 5 -n 2 -d 8 $fast --device cpu --misalign 16 >"$tmp/mis" 2>"$tmp/err" &&
   grep -q "^host tensors: 16 bytes past a 256-byte boundary" "$tmp/mis" &&
   [ "$(grep -cE "^naive +(fna|qk|av) +fwd .* ok$" "$tmp/mis")" = 3 ] &&
   "$bench" -i 12 12 -w 5 -n 2 -d 8 $fast --device cpu --misalign 2 --dtype f16 --op fna >"$tmp/mis2" 2>"$tmp/err" &&
   grep -q "^host tensors: 2 bytes past" "$tmp/mis2"; then
    pass "--misalign"
else
    fail "--misalign"; cat "$tmp/mis" "$tmp/mis2" "$tmp/err"
fi

# 3. the default table: a header and one row per backend and op, all ok
if "$bench" -i 12 12 -w 5 -n 2 -d 8 $fast >"$tmp/table" 2>"$tmp/err" &&
   grep -q "^backend *op *dir *median" "$tmp/table" &&
   grep -E "^naive +fna +fwd .* ok$" "$tmp/table" >/dev/null; then
    pass "table output"
else
    fail "table output"; cat "$tmp/table" "$tmp/err"
fi

# 4. CSV: a header and rows with the same number of fields
if "$bench" -i 12 12 -w 5 -n 2 -d 8 --op fna --backward --causal 1 0 $fast --device cpu --csv >"$tmp/csv" 2>"$tmp/err"; then
    if python3 -c 'import sys' 2>/dev/null; then
        if python3 - "$tmp/csv" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head, body = rows[0], rows[1:]
assert head[0] == "label" and "median_ms" in head and "max_err" in head, head
assert len(body) >= 3, "expected fwd, bwd and fwd+bwd rows"
for r in body:
    assert len(r) == len(head), (len(r), len(head))
    d = dict(zip(head, r))
    assert d["status"] == "ok", d["status"]
    assert float(d["median_ms"]) > 0 and float(d["max_err"]) <= float(d["tol"])
    assert d["causal"] == "1x0" and d["window"] == "5x5"
EOF
        then pass "--csv well formed"; else fail "--csv well formed"; cat "$tmp/csv"; fi
        # bench/csv-table: the docs' markdown table, a row per result with the causal axis named
        if python3 "${srcdir:-.}/bench/csv-table" "$tmp/csv" >"$tmp/md" 2>"$tmp/err" &&
           [ "$(grep -c '^| 2-D 12x12, window 5x5, causal 1x0, B 1, H 2, D 8, float32 | [a-z-]* | fna |' "$tmp/md")" = \
             "$(($(wc -l <"$tmp/csv") - 1))" ] && head -1 "$tmp/md" | grep -q '^| problem | backend |'
        then pass "bench/csv-table"; else fail "bench/csv-table"; cat "$tmp/md" "$tmp/err"; fi
    else
        n=$(awk -F, 'NR==1{n=NF} NR>1 && NF!=n{bad=1} END{print bad+0}' "$tmp/csv")
        if [ "$n" = 0 ]; then pass "--csv field counts (no python3)"; else fail "--csv field counts"; fi
    fi
else
    fail "--csv run"; cat "$tmp/err"
fi

# 5. JSON: parses, and carries the results
if "$bench" -i 10 -w 3 -n 2 -d 8 --op all --rpb $fast --device cpu --json >"$tmp/json" 2>"$tmp/err"; then
    if python3 -c 'import sys' 2>/dev/null; then
        if python3 - "$tmp/json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["tool"] == "natten-bench" and d["failed"] is False
ops = {r["op"] for r in d["results"]}
assert ops == {"qk", "av", "fna"}, ops
for r in d["results"]:
    assert r["status"] == "ok" and r["median_ms"] > 0 and r["rpb"] == 1, r
EOF
        then pass "--json well formed"; else fail "--json well formed"; cat "$tmp/json"; fi
    else
        echo "SKIP: --json parse (no python3)"
    fi
else
    fail "--json run"; cat "$tmp/err"
fi

# 6. the tiny suites run and verify
for s in cpu anchors; do
    if "$bench" --suite $s --quick $fast >"$tmp/suite" 2>"$tmp/err"; then
        pass "--suite $s --quick"
    else
        fail "--suite $s --quick"; cat "$tmp/suite" "$tmp/err"
    fi
done

# 7. a problem too big for naive is verified on a smaller one of the same shape
if "$bench" -i 4096 -w 1024 -n 2 -d 16 --op fna --verify-limit 0.05 --naive-limit 0 $fast \
        >"$tmp/big" 2>"$tmp/err" && grep -q "verified on a smaller problem" "$tmp/big"; then
    pass "shrunk verification"
else
    fail "shrunk verification"; cat "$tmp/big" "$tmp/err"
fi

# 8. the checks bite: a wrong number and a silent fallback fail the run (exit 1)
for kind in wrong:WRONG fallback:FALLBACK; do
    NATTEN_BENCH_SELFTEST=${kind%%:*} "$bench" -i 10 -w 3 --op fna $fast >"$tmp/self" 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 1 ] && grep -q "${kind#*:}" "$tmp/self" && grep -q "FAILED" "$tmp/self"; then
        pass "detects ${kind%%:*} results"
    else
        fail "detects ${kind%%:*} results (exit $rc)"; cat "$tmp/self" "$tmp/err"
    fi
done

# 9. --max-call: a result whose first call is over the limit is timed by that call alone
if "$bench" -i 12 12 -w 5 -n 2 -d 8 --op fna --backend naive --max-call 0.000001 >"$tmp/mc" 2>"$tmp/err" &&
   grep -E "^naive +fna +fwd .* ok \(1 call: the first took over --max-call" "$tmp/mc" >/dev/null; then
    pass "--max-call"
else
    fail "--max-call"; cat "$tmp/mc" "$tmp/err"
fi

# 10. the CUDA runtime is loaded with dlopen: a stand-in runtime (host memory, a
#    clock for events) shows the loading, device naming, copies and event timing
cat >"$tmp/fakecudart.c" <<'EOF'
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int cudaGetDeviceCount(int *n) { *n = 1; return 0; }
int cudaSetDevice(int d) { return d == 0 ? 0 : 101; }
int cudaMalloc(void **p, size_t b) { *p = malloc(b); return *p ? 0 : 2; }
int cudaFree(void *p) { free(p); return 0; }
int cudaMemcpy(void *d, const void *s, size_t b, int k) { (void)k; memcpy(d, s, b); return 0; }
int cudaMemcpyAsync(void *d, const void *s, size_t b, int k, void *st) { (void)k; (void)st; memcpy(d, s, b); return 0; }
int cudaRuntimeGetVersion(int *v) { *v = 13000; return 0; }
int cudaDeviceSynchronize(void) { return 0; }
int cudaStreamCreate(void **s) { *s = malloc(1); return 0; }
int cudaStreamSynchronize(void *s) { (void)s; return 0; }
int cudaEventCreate(void **e) { *e = calloc(1, sizeof(double)); return 0; }
int cudaEventRecord(void *e, void *s) { (void)s; *(double *)e = now(); return 0; }
int cudaEventSynchronize(void *e) { (void)e; return 0; }
int cudaEventElapsedTime(float *ms, void *a, void *b) { *ms = (float)(1e3 * (*(double *)b - *(double *)a)); return 0; }
int cudaMemGetInfo(size_t *f, size_t *t) { *f = 256u << 20; *t = 512u << 20; return 0; }
int cudaGetDeviceProperties(void *p, int d) { (void)d; strcpy(p, "Stand-in GPU"); return 0; }
const char *cudaGetErrorString(int e) { (void)e; return "stand-in error"; }
EOF
if ${CC:-cc} -shared -fPIC -o "$tmp/libfakecudart.so" "$tmp/fakecudart.c" 2>"$tmp/err"; then
    if NATTEN_BENCH_CUDART="$tmp/libfakecudart.so" "$bench" --list >"$tmp/list" 2>&1 &&
       grep -q "cuda:0  Stand-in GPU, device-to-device copy [0-9]* GB/s" "$tmp/list"; then
        pass "CUDA runtime through dlopen (stand-in)"
    else
        fail "CUDA runtime through dlopen (stand-in)"; cat "$tmp/list"
    fi
else
    echo "SKIP: no C compiler for the stand-in CUDA runtime"
fi

# 11. the reference has a FLOP budget (--verify-flops) whatever the time estimate says,
#     and the table says so
if "$bench" -i 64 -w 33 -n 2 -d 16 --op fna --verify-flops 1e5 --verify-limit 1000 --naive-limit 0 $fast \
        >"$tmp/vf" 2>"$tmp/err" && grep -q "verified on a smaller problem .*capped at .*1e+05 FLOP" "$tmp/vf"; then
    pass "--verify-flops shrinks the reference"
else
    fail "--verify-flops shrinks the reference"; cat "$tmp/vf" "$tmp/err"
fi

# 12. rows go out as they are known: while the backward is still being timed, the
#     forward's row is already in --csv-out and in stdout (a file here), so a run
#     cut by a timeout keeps what it finished
"$bench" -i 32 32 -w 7 -d 16 --op fna --backward --backend naive --repeat 40 --warmup 0 --naive-limit 0 \
    --csv-out "$tmp/stream.csv" >"$tmp/stream" 2>"$tmp/err" &
pid=$!
n=0
while kill -0 $pid 2>/dev/null && [ "$(grep -c ',fwd,' "$tmp/stream.csv" 2>/dev/null)" != 1 ] && [ $n -lt 1200 ]; do
    sleep 0.05; n=$((n + 1))
done
if kill -0 $pid 2>/dev/null; then
    alive=1
    grep -q '^naive .* fwd ' "$tmp/stream" && table=1 || table=0
    kill $pid
else
    alive=0
fi
wait $pid 2>/dev/null
if [ $alive = 1 ] && [ $table = 1 ] && [ "$(head -1 "$tmp/stream.csv" | cut -d, -f1)" = label ]; then
    pass "rows are written as soon as they are known"
else
    fail "rows are written as soon as they are known (running: $alive)"; cat "$tmp/stream" "$tmp/stream.csv" "$tmp/err"
fi

echo "bench-cli: $fails failed"
[ $fails -eq 0 ]
