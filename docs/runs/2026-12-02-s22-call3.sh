#!/bin/bash
# session 22, call 3: variants of the warp-specialised backward (configuration 19) against the
# default (configuration 16) on issue 9's 2-D backward; call 2's build had the dK/dV consumers at 216
# registers, where ptxas serialised their wgmma (C7512); now 224 (producer 48).  lib1 = this tree
# (dkv_ws, dQ as 16), lib2 = -DTC_DKV_WS_OVL=1, lib3 = -DTC_DQ_WS_BN=64 (dq_ws_kernel, 64-key tiles),
# lib4 = lib3 + both OVL, lib5 = -DTC_DQ_WS_BN=32 -DTC_DQ_WS_NS=4.  Each verified against naive on
# two small backward problems first.  Logs in $OUT/s22c.tgz.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s22c; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s22c.tgz s22c); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
git log --oneline -1 > $L/commit.txt 2>&1; git status --short >> $L/commit.txt
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j16 natten-bench > $L/build.log 2>&1; st "build 1 rc=$? warnings=$(grep -ci warning $L/build.log) C7512=$(grep -c C7512 $L/build.log)"
rm -rf /tmp/lib?; cp -a .libs /tmp/lib1
n=2; for f in "-DTC_DKV_WS_OVL=1" "-DTC_DQ_WS_BN=64" "-DTC_DQ_WS_BN=64 -DTC_DQ_WS_OVL=1 -DTC_DKV_WS_OVL=1" "-DTC_DQ_WS_BN=32 -DTC_DQ_WS_NS=4"; do
  touch backends/cuda_tc/tc-bwd128-sm90a.cu; make -j16 NVCCFLAGS="$f -Xptxas -v" libnatten.la > $L/build$n.log 2>&1
  st "build $n [$f] rc=$? C7512=$(grep -c C7512 $L/build$n.log) spills=$(grep -E 'ws_kernel' -A2 $L/build$n.log | grep -oE '[0-9]+ bytes spill stores' | sort | uniq -c | tr '\n' ' ')"; cp -a .libs /tmp/lib$n; n=$((n+1)); done
rm -rf .libs && cp -a /tmp/lib1 .libs; pack
B=/tmp/lib1/natten-bench
for lib in 1 2 3 4 5; do for a in "-i 40 37 -w 13 9 -n 2" "-i 9 10 14 -w 3 5 4 --dilation 2 1 3 --causal 0 0 1 -n 2 --heads-kv 1"; do
  NATTEN_CUDA_TC_CONFIG=19 LD_LIBRARY_PATH=/tmp/lib$lib timeout 60 $B $a -d 128 --dtype float16 --op fna --backward --backend cuda-tc --repeat 2 > $L/v.txt 2>&1
  st "verify lib$lib [$a] rc=$?: $(grep -E 'fna +bwd' $L/v.txt | tr -s " ")"; cat $L/v.txt >> $L/verify.log; done; done; pack
P2="-i 256 256 -w 80 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --backward --repeat 10 --no-verify"
P3="-i 30 48 80 -w 18 24 24 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --backward --repeat 5 --no-verify"
b(){ n=$1; lib=$2; cfg=$3; shift 3; echo "== $n lib$lib config=$cfg $*" >> $L/bench.log
  NATTEN_CUDA_TC_CONFIG=$cfg LD_LIBRARY_PATH=/tmp/lib$lib timeout -s KILL 90 $B "$@" > $L/b.txt 2>&1; echo "rc=$?" >> $L/b.txt; cat $L/b.txt >> $L/bench.log
  st "$n lib$lib cfg=$cfg: $(grep -E 'fna +(bwd|fwd\+bwd)' $L/b.txt | awk '{print $3, $4, $5}' | tr '\n' ' ')"; }
for r in 1 2; do b 2d 1 0 $P2; for lib in 1 2 3 4 5; do b 2d $lib 19 $P2; done; pack; done
b 3d 1 0 $P3; b 3d 1 19 $P3; b 3d 4 19 $P3; b 3d 3 19 $P3
st done; pack
