#!/bin/bash
# Written in session 20 (NOT RUN): avb's value box by per-position bulk copies, as qkb's positions
# since df4b7a5 (docs/runs/2026-12-02-s20-avb-positions.patch; tc-emu 0 failures on problems 0, 9,
# 14, 18, 22; not measured).  Builds main's natten-bench, then the patched one, alternates AV
# rounds (NATTEN_CUDA_TILED_PBULK=0 gives the 16-byte copies in the patched binary), verifies and
# runs check_cuda's configs and memcheck on the patched build, and reverts the patch.  If it is
# faster, apply the patch, and run call a's make check with it.  Logs in $OUT/next-b.tgz.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/next-b; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/next-b.tgz next-b); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
if [ ! -f Makefile ]; then (./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"; fi
make -j16 natten-bench > $L/build.log 2>&1; st "build main rc=$?"
mkdir -p /tmp/main && cp -a .libs/natten-bench .libs/libnatten.so* /tmp/main/   # main's binary and library, kept apart
git apply docs/runs/2026-12-02-s20-avb-positions.patch; st "patch rc=$?"
make -j16 natten-bench tests/check_cuda >> $L/build.log 2>&1; st "build patched rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
B="-i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --repeat 20 --dtype float16 --op av"
timeout 60 ./natten-bench $B --peak > $L/verify-av.txt 2>&1; st "verify av patched: $(grep -E 'cuda-tiled@' $L/verify-av.txt | tail -1 | tr -s ' ')"
for r in 1 2 3 4 5; do
  LD_LIBRARY_PATH=/tmp/main timeout 30 /tmp/main/natten-bench $B --no-verify --peak > $L/b.txt 2>&1; st "r$r main av: $(grep -E 'cuda-tiled@' $L/b.txt | tail -1 | tr -s ' ')"
  for p in 1 0; do NATTEN_CUDA_TILED_PBULK=$p timeout 30 ./natten-bench $B --no-verify --peak > $L/b.txt 2>&1; st "r$r patched av pbulk=$p: $(grep -E 'cuda-tiled@' $L/b.txt | tail -1 | tr -s ' ')"; done; done; pack
( CK_RUN_CASE=configs timeout 200 tests/check_cuda > $L/check_cuda_configs.log 2>&1; echo "rc $?" >> $L/check_cuda_configs.log ); st "check_cuda configs: $(tail -3 $L/check_cuda_configs.log | tr '\n' ' ')"
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for a in "-i 20 22 -w 7 -b 2 -n 4" "-i 18 20 -w 5 --dilation 2 1 -b 2 -n 2"; do
  NATTEN_CUDA_TILED_BLOCKS=3 timeout 90 ./libtool --mode=execute $CS --tool memcheck ./natten-bench $a -d 32 --dtype float16 --op av --backend cuda-tiled --warmup 0 --repeat 1 > $L/san.txt 2>&1
  st "av memcheck [$a]: rc=$? $(grep -E 'ERROR SUMMARY|cuda-tiled@' $L/san.txt | tr -s ' ' | tr '\n' ' ')"; done
git apply -R docs/runs/2026-12-02-s20-avb-positions.patch; st "patch reverted rc=$?"
st done; pack
