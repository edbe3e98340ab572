#!/bin/bash
# session 16, call 6: racecheck of qkb with its asynchronous arrivals (default) and with NATTEN_CUDA_TILED_PLAIN_SYNC=1; qkh for comparison
set -u
top=$(cd "$(dirname "$0")/.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s16f; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s16f.tgz s16f); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
if [ ! -f Makefile ]; then (./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"; fi
make -j16 > $L/build.log 2>&1 && make -j16 tests/check_cuda >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for e in NATTEN_CUDA_TILED_PLAIN_SYNC=0 NATTEN_CUDA_TILED_PLAIN_SYNC=1 NATTEN_CUDA_TILED_CONFIG=6; do
  env $e NATTEN_CUDA_TILED_BLOCKS=3 timeout 40 ./libtool --mode=execute $CS --tool racecheck ./natten-bench -i 20 22 -w 7 -b 2 -n 4 -d 32 --dtype float16 --op qk --backend cuda-tiled --warmup 0 --repeat 1 > $L/race.txt 2>&1
  st "racecheck $e: rc=$? $(grep -E 'RACECHECK SUMMARY|cuda-tiled@' $L/race.txt | tr -s ' ' | tr '\n' ' ')"; cat $L/race.txt >> $L/race-all.txt; done; pack
B="./natten-bench -i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20 --dtype float16 --op qk"
for e in NATTEN_CUDA_TILED_PLAIN_SYNC=0 NATTEN_CUDA_TILED_PLAIN_SYNC=1; do env $e timeout 30 $B > $L/b.txt 2>&1; st "bench $e: $(grep -E 'cuda-tiled@' $L/b.txt | tr -s ' ')"; done; pack
( CK_RUN_CASE=configs timeout 90 tests/check_cuda > $L/check_cuda_configs.log 2>&1; echo "rc $?" >> $L/check_cuda_configs.log ); st "check_cuda configs: $(tail -3 $L/check_cuda_configs.log | tr '\n' ' ')"; pack
