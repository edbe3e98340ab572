#!/bin/sh
# The shared library exports exactly the NATTEN_API functions of natten.h, and
# check_symbols.c takes the address of each of them.
set -u
srcdir=${srcdir:-.}
lib=.libs/libnatten.so
[ -f "$lib" ] || { echo "exports: $lib not built (static-only build?)"; exit 77; }
command -v nm >/dev/null || { echo "exports: nm not found"; exit 77; }
tmp=${TMPDIR:-/tmp}/natten-exports.$$
trap 'rm -f "$tmp".*' EXIT
sed -n 's/^NATTEN_API[^(]*[ *]\(natten_[a-z0-9_]*\)(.*/\1/p' "$srcdir/lib/natten.h" | sort >"$tmp.api"
# natten_fault_*: the test-only hook of a --enable-fault-injection build (lib/natten-fault.h)
nm -D --defined-only "$lib" | awk '$2 == "T" && $3 !~ /^natten_fault_/ {print $3}' | sort >"$tmp.lib"
sed -n 's/.*(void \*)\(natten_[a-z0-9_]*\),.*/\1/p' "$srcdir/tests/check_symbols.c" | sort >"$tmp.test"
status=0
if ! cmp -s "$tmp.api" "$tmp.lib"; then
    echo "exports: natten.h API (<) and exported functions (>) differ:"; diff "$tmp.api" "$tmp.lib"; status=1
fi
if ! cmp -s "$tmp.api" "$tmp.test"; then
    echo "exports: natten.h API (<) and tests/check_symbols.c (>) differ:"; diff "$tmp.api" "$tmp.test"; status=1
fi
[ $status -eq 0 ] && echo "exports: $(wc -l <"$tmp.api") public functions, all exported, nothing else"
exit $status
