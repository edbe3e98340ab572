#!/bin/bash
# session 20, call 5: qkb's producers stage each position (a query's or key's four head vectors,
# 256 contiguous bytes) by one bulk copy (cp.async.bulk, the "full" barrier counting the tile's
# bytes) instead of 16-byte cp.async copies: ~20x fewer producer instructions, to cut the
# producers' interference with the consumers (call 3).  Static sm_90 binaries built here, carried in
# .wt-carry/bins.tar.xz: nb-main (8bac5fb), nb-new (this change; NATTEN_CUDA_TILED_PBULK=0 gives
# the cp.async path), check_cuda, check_equivalence, check_grad.  Logs in $OUT/s20e.tgz.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s20e; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s20e.tgz s20e); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
mkdir -p /tmp/bin && tar xJf .wt-carry/bins.tar.xz -C /tmp/bin
A="-i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20 --dtype float16"
timeout 60 /tmp/bin/nb-new $A --op qk --peak > $L/verify-qk.txt 2>&1; st "verify new qk rc=$?: $(grep -E 'cuda-tiled@' $L/verify-qk.txt | tail -1 | tr -s ' ')"
timeout 60 /tmp/bin/nb-new $A --op qk --dtype bfloat16 > $L/verify-qk-bf16.txt 2>&1; st "verify new qk bf16: $(grep -E 'cuda-tiled@' $L/verify-qk-bf16.txt | tail -1 | tr -s ' ')"
timeout 60 /tmp/bin/nb-new $A --op qk --rpb > $L/verify-qk-rpb.txt 2>&1; st "verify new qk rpb: $(grep -E 'cuda-tiled@' $L/verify-qk-rpb.txt | tail -1 | tr -s ' ')"
for a in "-i 19 22 -w 7 -b 3 -n 4 --rpb" "-i 20 21 -w 7 -b 2 -n 1" "-i 23 26 -w 5 3 --stride 3 2 -b 1 -n 2" "-i 18 20 -w 5 --dilation 2 1 -b 2 -n 2"; do
  timeout 60 /tmp/bin/nb-new $a -d 32 --backend cuda-tiled --dtype float16 --op qk > $L/v.txt 2>&1; st "verify new qk [$a]: $(grep -E 'cuda-tiled@' $L/v.txt | tail -1 | tr -s ' ')"; done
pack
for r in 1 2 3 4 5 6; do for v in "main qk 1" "new qk 1" "new qk 0" "main av 1" "new av 1"; do set -- $v
  NATTEN_CUDA_TILED_PBULK=$3 timeout 30 /tmp/bin/nb-$1 $A --op $2 --no-verify --peak > $L/b.txt 2>&1
  st "r$r $1 $2 pbulk=$3: $(grep -E 'cuda-tiled@' $L/b.txt | tail -1 | tr -s ' ')"; done; done; pack
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
timeout 60 $NCU --clock-control none -k regex:qkb --launch-skip 1 --launch-count 1 --section SpeedOfLight --section WarpStateStats --section InstructionStats /tmp/bin/nb-new $A --op qk --no-verify --naive-limit 0 --warmup 1 --repeat 2 > $L/ncu-new.txt 2>&1
st "ncu new: $(grep -E 'Duration|DRAM Throughput|Compute \(SM\)|Executed Instructions  ' $L/ncu-new.txt | tr -s ' ' | tr '\n' ' ')"; pack
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck; do for a in "-i 20 22 -w 7 -b 2 -n 4" "-i 18 20 -w 5 --dilation 2 1 -b 2 -n 2 --rpb" "-i 56 56 -w 7 -b 2 -n 4"; do
  [ $tool = racecheck ] && [ "$a" = "-i 56 56 -w 7 -b 2 -n 4" ] && continue
  NATTEN_CUDA_TILED_BLOCKS=3 timeout 90 $CS --tool $tool /tmp/bin/nb-new $a -d 32 --dtype float16 --op qk --backend cuda-tiled --warmup 0 --repeat 1 > $L/san.txt 2>&1
  st "qk $tool [$a]: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|cuda-tiled@' $L/san.txt | tr -s ' ' | tr '\n' ' ')"; cat $L/san.txt >> $L/san-all.txt; done; done; pack
for t in check_cuda check_equivalence check_grad; do ( cd tests && timeout 200 /tmp/bin/$t > $L/$t.log 2>&1; echo "rc $?" >> $L/$t.log ); st "$t: $(grep -E 'Checks|^rc' $L/$t.log | tr '\n' ' ')"; pack; done
st done; pack
