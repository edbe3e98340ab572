#!/bin/bash
# (Configurations 21 and 22 of this call were ping-pong forms of dkv_ws_kernel later removed: its tree was
# main 860b86c plus uncommitted changes; NOTES.md v27 describes them.)
# session 23, call 2: the dK/dV ping-pong (dkv_ws_kernel PP; configurations 21 = 3-stage ring,
# 22 = 4 stages) against the default (20) on issue 9's 2-D and 3-D forward + backward,
# alternating; check_cuda_tc (every configuration incl. 21 and 22); memcheck and racecheck on a
# small backward through 21 and 22; Nsight Compute of 22's dK/dV kernel.  Logs in $OUT/s23b.tgz.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s23b; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s23b.tgz s23b); }
for f in .gpu/*.deb; do dpkg -x $f / ; done
git log --oneline -1 > $L/commit.txt 2>&1; git status --short >> $L/commit.txt; git diff > $L/diff.patch
(./bootstrap && ./configure --with-cuda-arch=90 --enable-werror) > $L/configure.log 2>&1; st "configure rc=$?"
make -j16 > $L/build.log 2>&1 && make -j16 check TESTS= >> $L/build.log 2>&1; st "build rc=$? warnings=$(grep -ci warning $L/build.log)"; pack
B=./natten-bench
P2="-i 256 256 -w 80 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --backward --repeat 10 --no-verify"
P3="-i 30 48 80 -w 18 24 24 -n 24 -d 128 --dtype float16 --op fna --backend cuda-tc --backward --repeat 5 --no-verify"
b(){ n=$1; cfg=$2; shift 2; echo "== $n config=$cfg $*" >> $L/bench.log
  NATTEN_CUDA_TC_CONFIG=$cfg timeout -s KILL 90 ./libtool --mode=execute $B "$@" > $L/b.txt 2>&1; echo "rc=$?" >> $L/b.txt; cat $L/b.txt >> $L/bench.log
  st "$n cfg=$cfg: $(grep -E 'fna +(fwd|bwd|fwd\+bwd) ' $L/b.txt | awk '{print $3, $4, $5}' | tr '\n' ' ')"; }
for r in 1 2 3; do b 2d 0 $P2; b 2d 21 $P2; b 2d 22 $P2; pack; done
b 3d 0 $P3; b 3d 21 $P3; b 3d 22 $P3; pack
timeout 200 make check TESTS=tests/check_cuda_tc > $L/check.log 2>&1; st "check_cuda_tc rc=$? $(grep -E '^[0-9]+%: Checks' tests/check_cuda_tc.log | tr '\n' ' ')"; cp tests/check_cuda_tc.log $L/; pack
CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for c in 21 22; do for tool in memcheck racecheck; do a="-i 20 22 -w 7 -n 2"
  NATTEN_CUDA_TC_CONFIG=$c timeout 60 ./libtool --mode=execute $CS --tool $tool $B $a -d 128 --dtype float16 --op fna --backward --backend cuda-tc --warmup 0 --repeat 1 > $L/san.txt 2>&1
  st "cfg $c $tool [$a]: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|fna +bwd' $L/san.txt | tr -s ' ' | tr '\n' ' ')"; cat $L/san.txt >> $L/san-all.txt; done; done
pack
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
k=dkv_ws_kernel
NATTEN_CUDA_TC_CONFIG=22 timeout 150 ./libtool --mode=execute $NCU --set full -k regex:$k --launch-count 1 -o /tmp/rep-$k $B $P2 --warmup 0 --repeat 1 > $L/ncu-$k.run.txt 2>&1
$NCU -i /tmp/rep-$k.ncu-rep --page details > $L/ncu-$k.txt 2>&1
$NCU -i /tmp/rep-$k.ncu-rep --page source --csv --print-source sass > $L/ncu-$k-sass.csv 2>&1
st "ncu $k (22): $(grep -E 'Duration|Compute \(SM\) Throughput|Issue Slots Busy|L2 Cache Throughput' $L/ncu-$k.txt | tr -s ' ' | tr '\n' ' ')"
st done; pack
