#!/bin/bash
# session 20, call 4: qkb with three stages of the key box, the query positions staged in the run
# buffers (the products overwrite them once every consumer warp has its A fragments).  No build
# on the GPU host: static sm_90 binaries built here (configure --with-cuda-arch=90 --disable-shared, nvcc 13.0 as on the host), carried in
# .wt-carry/bins.tar.xz: nb-main (natten-bench of 8bac5fb), nb-new (this change), check_cuda and
# check_equivalence (this change).  Verify, A/B main vs new (3 and 2 stages), ncu, sanitizers,
# check_cuda.  Logs in $OUT/s20d.tgz.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s20d; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s20d.tgz s20d); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
mkdir -p /tmp/bin && tar xJf .wt-carry/bins.tar.xz -C /tmp/bin; ls -la /tmp/bin > $L/bins.txt
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $L/gpu.txt 2>&1
A="-i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20 --dtype float16"
for op in qk av; do timeout 60 /tmp/bin/nb-new $A --op $op --peak > $L/verify-$op.txt 2>&1; st "verify new $op rc=$?: $(grep -E 'cuda-tiled@' $L/verify-$op.txt | tail -1 | tr -s ' ')"; done
timeout 60 /tmp/bin/nb-new $A --op qk --dtype bfloat16 > $L/verify-qk-bf16.txt 2>&1; st "verify new qk bf16: $(grep -E 'cuda-tiled@' $L/verify-qk-bf16.txt | tail -1 | tr -s ' ')"
timeout 60 /tmp/bin/nb-new $A --op qk --rpb > $L/verify-qk-rpb.txt 2>&1; st "verify new qk rpb: $(grep -E 'cuda-tiled@' $L/verify-qk-rpb.txt | tail -1 | tr -s ' ')"
timeout 60 /tmp/bin/nb-new -i 19 22 -w 7 -b 3 -n 4 -d 32 --backend cuda-tiled --dtype float16 --op qk --rpb > $L/verify-qk-small.txt 2>&1; st "verify new qk 19x22 rpb: $(grep -E 'cuda-tiled@' $L/verify-qk-small.txt | tail -1 | tr -s ' ')"
pack
for r in 1 2 3 4 5 6; do for v in "main qk 0" "new qk 0" "new qk 2" "main av 0" "new av 0"; do set -- $v
  NATTEN_CUDA_TILED_STAGES=$3 timeout 30 /tmp/bin/nb-$1 $A --op $2 --no-verify --peak > $L/b.txt 2>&1
  st "r$r $1 $2 stages=$3: $(grep -E 'cuda-tiled@' $L/b.txt | tail -1 | tr -s ' ')"; done; done; pack
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
for v in "new 0" "new 2"; do set -- $v
  NATTEN_CUDA_TILED_STAGES=$2 timeout 100 $NCU --clock-control none -k regex:qkb --launch-skip 1 --launch-count 1 --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats /tmp/bin/nb-$1 $A --op qk --no-verify --naive-limit 0 --warmup 1 --repeat 2 > $L/ncu-$1-$2.txt 2>&1
  st "ncu $1 stages=$2: $(grep -E 'Duration|DRAM Throughput|Compute \(SM\)|Registers Per|Executed Ipc A' $L/ncu-$1-$2.txt | tr -s ' ' | tr '\n' ' ')"; done; pack
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck; do for a in "-i 20 22 -w 7 -b 2 -n 4" "-i 18 20 -w 5 --dilation 2 1 -b 2 -n 2 --rpb" "-i 56 56 -w 7 -b 2 -n 4"; do
  for e in 0 1; do [ $tool = memcheck ] && [ $e = 1 ] && continue
  NATTEN_CUDA_TILED_PLAIN_SYNC=$e NATTEN_CUDA_TILED_BLOCKS=3 timeout 90 $CS --tool $tool /tmp/bin/nb-new $a -d 32 --dtype float16 --op qk --backend cuda-tiled --warmup 0 --repeat 1 > $L/san.txt 2>&1
  st "qk $tool plain=$e [$a]: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|cuda-tiled@' $L/san.txt | tr -s ' ' | tr '\n' ' ')"; cat $L/san.txt >> $L/san-all.txt; done; done; done; pack
( cd tests && timeout 200 /tmp/bin/check_cuda > $L/check_cuda.log 2>&1; echo "rc $?" >> $L/check_cuda.log ); st "check_cuda: $(grep -E 'Checks|^rc' $L/check_cuda.log | tr '\n' ' ')"; pack
( cd tests && timeout 150 /tmp/bin/check_equivalence > $L/check_equivalence.log 2>&1; echo "rc $?" >> $L/check_equivalence.log ); st "check_equivalence: $(grep -E 'Checks|^rc' $L/check_equivalence.log | tr '\n' ' ')"; pack
st done; pack
