#!/bin/bash
# session 23, call 1: main (860b86c) built on the H200; issue 9's 2-D forward + backward with the
# default (configuration 20) twice; Nsight Compute (--set full, one launch each) of the backward's
# three kernels (delta, dq_ws, dkv_ws) and the forward on the 2-D problem.  Logs in $OUT/s23a.tgz.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s23a; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s23a.tgz s23a); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
git log --oneline -1 > $L/commit.txt 2>&1; git status --short >> $L/commit.txt
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j16 > $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
B=./natten-bench
P2="-i 256 256 -w 80 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --backward --no-verify"
b(){ n=$1; shift; echo "== $n $*" >> $L/bench.log
  timeout -s KILL 90 ./libtool --mode=execute $B "$@" > $L/b.txt 2>&1; echo "rc=$?" >> $L/b.txt; cat $L/b.txt >> $L/bench.log
  st "$n: $(grep -E 'fna +(fwd|bwd|fwd\+bwd) ' $L/b.txt | awk '{print $3, $4, $5}' | tr '\n' ' ')"; }
b 2d $P2 --repeat 10; b 2d $P2 --repeat 10; pack
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
for k in dkv_ws_kernel dq_ws_kernel fna_delta_kernel fwd_ws_kernel; do
  timeout 150 ./libtool --mode=execute $NCU --set full -k regex:$k --launch-count 1 -o /tmp/rep-$k $B $P2 --warmup 0 --repeat 1 > $L/ncu-$k.run.txt 2>&1
  $NCU -i /tmp/rep-$k.ncu-rep --page details > $L/ncu-$k.txt 2>&1
  $NCU -i /tmp/rep-$k.ncu-rep --page source --csv --print-source sass > $L/ncu-$k-sass.csv 2>&1
  st "ncu $k: $(grep -E 'Duration|Compute \(SM\) Throughput|Issue Slots Busy|L2 Cache Throughput' $L/ncu-$k.txt | tr -s ' ' | tr '\n' ' ')"; pack
done
st done; pack
