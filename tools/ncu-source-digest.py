#!/usr/bin/env python3
# ncu-source-digest.py - a short digest of an Nsight Compute source-level report (GPU host):
#
#   OUT=DIR NCU_SECTIONS=SourceCounters NCU_EXTRA="--page source --print-source sass --csv" \
#       PROFILES=tiled-qk-f16 tools/gpu-profile.sh .
#   tools/ncu-source-digest.py DIR/profile-tiled-qk-f16.txt
#
# prints the kernel's executed warp instructions, its stall reasons summed over all SASS lines
# and the 30 lines with the most stall samples (their SASS, samples, executions, top two reasons).
import csv,io,sys
txt=open(sys.argv[1]).read()
i=txt.index('"Address"')
rows=list(csv.reader(io.StringIO(txt[i:])))
hdr=rows[0]; rows=[r for r in rows[1:] if len(r)==len(hdr)]
H={h:k for k,h in enumerate(hdr)}
stalls=[h for h in hdr if h.startswith('stall_') and 'Not Issued' not in h]
S=lambda r:int(r[H['Warp Stall Sampling (All Samples)']]); E=lambda r:int(r[H['Instructions Executed']])
print('SASS lines',len(rows),'stall samples',sum(S(r) for r in rows),'warp instructions executed',sum(E(r) for r in rows))
agg={s:sum(int(r[H[s]]) for r in rows) for s in stalls}
print('stall reasons:',', '.join('%s %d'%(k[6:],v) for k,v in sorted(agg.items(),key=lambda x:-x[1])[:10]))
print('line | SASS | samples | executed | top two stall reasons')
for k in sorted(sorted(range(len(rows)),key=lambda k:-S(rows[k]))[:30]):
    r=rows[k]; st=sorted(((int(r[H[s]]),s[6:]) for s in stalls),reverse=True)[:2]
    print(k,'|',r[H['Source']].strip()[:60],'|',S(r),'|',E(r),'|',', '.join('%s %d'%(b,a) for a,b in st))
