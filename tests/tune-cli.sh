#!/bin/sh
# tune-cli.sh - wisdom end to end: natten-bench --tune measures a tiny problem
# list and writes a wisdom file; a second run merges it (the problems are
# remembered, not measured again); natten-info --explain in a process with
# NATTEN_WISDOM set picks the remembered winner; a damaged file is replaced.
# Run by `make check` from the build directory.
tmp=${TMPDIR:-/tmp}/natten-tune-test.$$
mkdir -p "$tmp" || exit 99
trap 'rm -rf "$tmp"' EXIT
[ -x ./natten-bench ] || { echo "SKIP: natten-bench not built"; exit 77; }
fails=0
fail() { echo "FAIL: $1"; sed 's/^/    /' "$tmp/out" | head -20; fails=$((fails + 1)); }
w=$tmp/wisdom
problem="-i 12 12 -w 3 -n 2 -d 8 --op fna --backward"
if ./natten-bench --tune "$w" $problem >"$tmp/out" 2>&1 && grep -q "2 problems measured" "$tmp/out" &&
   head -1 "$w" | grep -q "^natten-wisdom 1$" && [ "$(grep -c '^entry ' "$w")" -eq 2 ]; then
    echo "PASS: --tune measures and writes wisdom"
else fail "--tune measures and writes wisdom"; fi
if ./natten-bench --tune "$w" $problem >"$tmp/out" 2>&1 && grep -q "merging" "$tmp/out" &&
   grep -q "0 problems measured" "$tmp/out" && [ "$(grep -c '^entry ' "$w")" -eq 2 ]; then
    echo "PASS: a second --tune merges and remembers"
else fail "a second --tune merges and remembers"; fi
if NATTEN_WISDOM=$w ./natten-info --explain -i 12 12 -w 3 -n 2 -d 8 --op fna --lse >"$tmp/out" 2>&1 &&
   grep -q "remembered" "$tmp/out"; then
    echo "PASS: NATTEN_WISDOM makes natten-info --explain use the winner"
else fail "NATTEN_WISDOM makes natten-info --explain use the winner"; fi
printf 'natten-wisdom 1\nlibrary' >"$w"
if ./natten-bench --tune "$w" $problem >"$tmp/out" 2>&1 && grep -q "will be replaced" "$tmp/out" &&
   grep -q "^end 2 " "$w"; then
    echo "PASS: a damaged wisdom file is replaced"
else fail "a damaged wisdom file is replaced"; fi
# --tune-check: tunes, times each candidate on its own, PASS/FAIL per problem
# (the pick's own time within 5 % of the fastest candidate's), a CSV that
# names the pick; on this build's CPU backends.
if ./natten-bench --tune-check $problem --repeat 3 --csv-out "$tmp/check.csv" >"$tmp/out" 2>&1; rc=$?; [ $rc -le 1 ] &&
   grep -q "^natten-bench --tune-check: [0-9]* PASS, [0-9]* FAIL, 0 not checked" "$tmp/out" &&
   [ "$(grep -c ' ratio [0-9.]* \(PASS\|FAIL\)$' "$tmp/out")" -eq 3 ] &&
   head -1 "$tmp/check.csv" | grep -q "^label,problem,op,dir,backend,config,tuner_ms" &&
   [ "$(grep -c ',1,[01],[0-9.e+-]*,\(PASS\|FAIL\),' "$tmp/check.csv")" -eq 2 ]; then
    echo "PASS: --tune-check reports pick/fastest per direction and fwd+bwd (exit $rc)"
else fail "--tune-check reports pick/fastest per direction and fwd+bwd"; fi
# rows as soon as they are known: while the backward is still being checked, the
# forward's rows are in the CSV (flushed with their verdict) and its candidates'
# rows in stdout (a file here), so a run cut by a timeout keeps what it finished
./natten-bench --tune-check -i 32 32 -w 7 -n 2 -d 16 --op fna --backward --repeat 100 --warmup 0 \
    --csv-out "$tmp/stream.csv" >"$tmp/stream" 2>&1 &
pid=$!
n=0
while kill -0 $pid 2>/dev/null && ! grep -q ',fna,fwd,.*,\(PASS\|FAIL\),' "$tmp/stream.csv" 2>/dev/null && [ $n -lt 1200 ]; do
    sleep 0.05; n=$((n + 1))
done
if kill -0 $pid 2>/dev/null; then
    alive=1
    grep -q '^ \* ' "$tmp/stream" && grep -q ' fwd: ratio\|pick .* ratio' "$tmp/stream" && table=1 || table=0
    kill $pid
else
    alive=0 table=0
fi
wait $pid 2>/dev/null
if [ $alive = 1 ] && [ $table = 1 ] && ! grep -q ',fna,bwd,' "$tmp/stream.csv"; then
    echo "PASS: --tune-check writes rows as soon as they are known"
else fail "--tune-check writes rows as soon as they are known (running: $alive)"; cat "$tmp/stream" "$tmp/stream.csv"; fi
# pruning (tested deterministically in check_tuner): off prunes nothing; a bad factor is refused
NATTEN_TUNING_PRUNE=off ./natten-bench --tune "$tmp/w2" -i 24 24 -w 5 -n 2 -d 16 --op fna >"$tmp/out" 2>&1
if grep -q "2-D 24x24" "$tmp/out" && ! grep -q "pruned" "$tmp/out"; then
    echo "PASS: NATTEN_TUNING_PRUNE=off prunes nothing"
else fail "NATTEN_TUNING_PRUNE=off prunes nothing"; fi
if NATTEN_TUNING_PRUNE=soon ./natten-bench --tune "$tmp/w3" $problem >"$tmp/out" 2>&1; then
    fail "a bad NATTEN_TUNING_PRUNE is refused"
else
    grep -q "NATTEN_TUNING_PRUNE" "$tmp/out" && echo "PASS: a bad NATTEN_TUNING_PRUNE is refused" ||
        fail "a bad NATTEN_TUNING_PRUNE is refused"
fi
[ $fails -eq 0 ]
