#!/bin/bash
# session 20, call 3: where qkb's time goes on the 56x56 QK (main's kernel, 8bac5fb): natten-bench of
# diagnostic builds (static, sm_90, built here from 8bac5fb + docs/runs/2026-12-02-s20-diag.patch,
# `make natten-bench NVCCFLAGS=-DQB_DIAG=N` in a `configure --with-cuda-arch=90 --disable-shared`
# build; the patch is not applied to main): QB_DIAG=1 producers copy nothing
# (arrive at once: the consumers' time alone), 2 consumers skip the products (the producers' time
# and the pipeline's), 3 both (barriers, set-up, stores); alternating with main.  Outputs are
# garbage in the diagnostic builds (--no-verify).  Also: main's median of 100 runs against 20.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd); cd "$top"
S=$(date +%s); L=/tmp/s20c; rm -rf $L; mkdir -p $L
st(){ echo "[$(( $(date +%s) - S )) s $(date -u +%T)] $*" | tee -a $L/steps.log; }
pack(){ (cd /tmp && tar czf $OUT/s20c.tgz s20c); }
mkdir -p /tmp/bin && tar xJf .wt-carry/bins.tar.xz -C /tmp/bin
A="-i 56 56 -w 7 -b 64 -n 4 -d 32 --backend cuda-tiled --dtype float16 --op qk"
for r in 1 2 3 4 5; do for v in main diag1 diag2 diag3; do
  timeout 30 /tmp/bin/nb-$v $A --repeat 20 --no-verify --peak > $L/b.txt 2>&1
  st "r$r $v: $(grep -E 'cuda-tiled@' $L/b.txt | tail -1 | tr -s ' ')"; done; done; pack
for r in 1 2 3; do for n in 20 100; do timeout 30 /tmp/bin/nb-main $A --repeat $n --no-verify --peak > $L/b.txt 2>&1
  st "main repeat $n: $(grep -E 'cuda-tiled@' $L/b.txt | tail -1 | tr -s ' ')"; done; done; pack
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
for v in diag1 diag2 diag3; do timeout 60 $NCU --clock-control none -k regex:qkb --launch-skip 1 --launch-count 1 --section SpeedOfLight --section WarpStateStats /tmp/bin/nb-$v $A --no-verify --naive-limit 0 --warmup 1 --repeat 2 > $L/ncu-$v.txt 2>&1
  st "ncu $v: $(grep -E 'Duration|DRAM Throughput|Compute \(SM\)' $L/ncu-$v.txt | tr -s ' ' | tr '\n' ' ')"; done
st done; pack
