#!/bin/bash
# session 14 (NOTES v23): the split forward's tile-loop instruction mix, from SASS.
#   docs/runs/2026-12-01-s14-sass-uniform.sh OBJECT_OR_CUBIN [CUOBJDUMP]
# OBJECT_OR_CUBIN: e.g. backends/cuda_tc/.libs/tc-fwd128-sm90a.o of a build, or a cubin from
#   nvcc -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -I lib -I . -cubin \
#        backends/cuda_tc/tc-fwd128-sm90a.cu -o fwd.cubin
# Prints, for the fp16 split kernel (configuration 18), the uniform-datapath instructions (U*) and
# a few vector ones in the window from 300 instructions before its first HGMMA to 50 after its
# last (the consumers' tile loop and the set-up before it), and the local-memory accesses there.
set -eu
obj=${1:?usage: $0 OBJECT_OR_CUBIN [CUOBJDUMP]}
cuobjdump=${2:-cuobjdump}
fn='_ZN2tc2wg13fwd_ws_kernelI6__halfLi4ELb1ELb1ELb0ELb0ELb0ELi2ELi3ELb1EEEvNS_6ParamsE'
"$cuobjdump" -sass -fun "$fn" "$obj" | python3 -c '
import re, sys, collections
lines = [l for l in sys.stdin if re.match(r"\s*/\*[0-9a-f]+\*/\s+\S", l)] # instructions only
idx = [i for i, l in enumerate(lines) if "HGMMA" in l]
if not idx: sys.exit("no HGMMA in the function")
c = collections.Counter()
for l in lines[max(idx[0] - 300, 0):idx[-1] + 50]:
    m = re.match(r"\s*/\*[0-9a-f]+\*/\s+(@!?U?P\w+\s+)?([A-Z0-9_.]+)", l)
    if m: c[m.group(2).split(".")[0]] += 1
u = sum(v for k, v in c.items() if k.startswith("U"))
print("uniform", u, "IMAD", c["IMAD"], "ISETP", c["ISETP"], "R2UR", c["R2UR"], "LDL", c["LDL"], "STL", c["STL"])
'
