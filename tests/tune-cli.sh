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
[ $fails -eq 0 ]
