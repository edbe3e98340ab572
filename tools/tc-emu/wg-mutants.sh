#!/bin/sh
# tools/tc-emu/wg-mutants.sh: does wg-emu catch what it should?  Plants one bug
# at a time in a copy of gen-wg.py's header, builds wg-emu on it and runs the
# kernel the bug is in; each mutant must fail (a wrong result, or a deadlock
# reported).  Run from the repository root; about a minute a mutant.
set -u
tmp=${TMPDIR:-/tmp}/wg-mutants.$$
mkdir -p "$tmp" || exit 2
trap 'rm -rf "$tmp"' EXIT
python3 tools/tc-emu/gen-wg.py . "$tmp/gen.h" || exit 2
caught=0 missed=0
# mutant NAME PROBLEM KERNEL SED-EXPRESSION: the expression must change the header
mutant() {
    sed "$4" "$tmp/gen.h" >"$tmp/mut.h"
    if cmp -s "$tmp/gen.h" "$tmp/mut.h"; then echo "$1: the expression changed nothing"; missed=$((missed + 1)); return; fi
    g++ -std=c++20 -O1 -pthread -w -I lib -DWG_EMU_GEN=\"$tmp/mut.h\" tools/tc-emu/wg.cpp -o "$tmp/emu" || exit 2
    if timeout 300 "$tmp/emu" "$2" "$3" >"$tmp/out" 2>&1; then
        echo "$1: MISSED"; missed=$((missed + 1))
    else
        echo "$1: caught ($(grep -E 'FAIL|deadlock|wg-emu:' "$tmp/out" | head -2 | tr -s ' ' | tr '\n' ';'))"
        caught=$((caught + 1))
    fi
}
# the forward's V descriptor with LBO and SBO swapped (fwd_kernel's VMODE 1)
mutant "V descriptor LBO/SBO swapped" 2d wg0 's/if (VMODE == 0) {/if (VMODE == 9) {/;s/} else if (VMODE == 1) {/} else if (VMODE == 0) {/'
# dK/dV (PIPE 2): the previous tile's dV, dK products left in flight while
# their stage is refilled
mutant "dK/dV stage refilled under its products" 2d wgb1 's/if (meet) wg_wait<1>();/if (meet) wg_wait<2>();/'
# the warp-specialised forward's "full" barrier expecting one arrival too many
mutant "ring barrier count off by one" 2d ws1 's/mbar_init(bar0 + 8 \* s, WS_NTH - WS_NCT);/mbar_init(bar0 + 8 * s, WS_NTH - WS_NCT + 1);/'
# dQ += dS K with the K tile's descriptor 8 keys on (one 8-row group)
mutant "dQ's B operand 8 keys off" 2d wgb0 's/sdesc_add(dKn, stage \* KT + kk \* 2048)/sdesc_add(dKn, stage * KT + kk * 2048 + 1024)/'
# the warp-specialised backward (v26): its producers arrive on "full" before
# the previous tile's copies have landed
mutant "ws backward: a stage full before its copies land" 2d wgb5 's/^\( *\)cp_wait<1>();$/\1cp_wait<2>();/'
# ... its "empty" barriers released by half the consumer threads
mutant "ws backward: a stage refilled under half its consumers" 2d wgb5 's/mbar_init(bar0 + 8 \* (NS + s), NCT);/mbar_init(bar0 + 8 * (NS + s), NCT \/ 2);/'
# ... the dK/dV producer's window masks given to the other warpgroup
mutant "ws backward: masks of the other warpgroup" 2d-causal wgb6 's/sM\[(st \* 2 + g) \* BQ + pt\]/sM[(st * 2 + (1 - g)) * BQ + pt]/'
echo "wg-mutants: $caught caught, $missed missed"
[ "$missed" -eq 0 ]
