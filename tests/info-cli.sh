#!/bin/sh
# info-cli.sh - natten-info: the backend table lists every backend; --explain
# names the pick (exit 0), explains an invalid request or a problem no backend
# takes (exit 1), and rejects bad flags with the usage text (exit 2).  Run by
# `make check` from the build directory.
info=${NATTEN_INFO:-./natten-info}
tmp=${TMPDIR:-/tmp}/natten-info-test.$$
mkdir -p "$tmp" || exit 99
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # check WANT-RC WANT-TEXT ARGS...
    rc_want=$1 text=$2; shift 2
    "$info" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne "$rc_want" ]; then echo "FAIL: natten-info $* exited $rc, expected $rc_want"; fails=$((fails + 1)); return; fi
    if ! grep -q -- "$text" "$tmp/out" "$tmp/err"; then
        echo "FAIL: natten-info $*: output lacks '$text'"; cat "$tmp/out" "$tmp/err" | head -5; fails=$((fails + 1)); return
    fi
    echo "PASS: natten-info $*"
}
check 0 "naive" 
check 0 "RUNS" --explain
check 0 "pick      " --explain -i 16 16 -w 3 --op qk --backward --rpb --causal
check 0 "x16,16,8" --explain -i 16x16x8 -w 3 --dilation 2 1 1
check 0 "/iii" --explain -i 8 -w 3 --heads-first --op fna_backward --heads-kv 2 -n 4
check 0 "not measured yet" --explain -i 16 -w 3 --measure
check 0 "forced" --explain -i 16 -w 3 --backend naive
check 1 "exceeds it" --explain -i 8 -w 9
# CUDA tensors: with a usable CUDA backend a cuda-* backend is picked; without
# one (this host has no GPU, or no CUDA backend is built) every backend refuses.
if "$info" | grep -q '^cuda-[a-z]* *cuda *yes'; then
    check 0 "cuda-" --explain -i 16 -w 3 --device cuda:0
else
    check 1 "these are on CUDA" --explain -i 16 -w 3 --device cuda:0
fi
check 2 "usage:" --explain --bogus
check 2 "needs a value" --explain --dtype
check 2 "one value or one per axis" --explain -i 16 16 -w 3 3 3
check 2 "unknown op" --explain --op softmax
check 2 "usage:" --bogus
[ $fails -eq 0 ]
