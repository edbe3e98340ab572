#!/bin/sh
# One device call: build (if the carried binary does not run there), check,
# time, disassemble, sanitize; logs under $OUT.  Run from this folder.
OUT=${OUT:-/tmp}
log=$OUT/harness.log
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv 2>&1 | tee $log
if ! ./tc-harness probe >/dev/null 2>&1; then
    echo "carried binary does not run here: rebuilding" | tee -a $log
    nvcc -O3 -std=c++17 -arch=sm_90 -I.. -I../../../lib harness.cu -o tc-harness 2>&1 | tee -a $log
fi
./tc-harness ${1:-all} ${2:-20} 2>&1 | tee -a $log
cuobjdump --dump-sass tc-harness > sass.txt 2>&1
for k in fwd_kernel dq_kernel dkv_kernel; do
    awk -v k=$k '/Function :/ {on = index($0, k) > 0} on' sass.txt > one.txt
    echo "SASS $k: HMMA $(grep -c HMMA one.txt) LDGSTS $(grep -c LDGSTS one.txt) LDSM $(grep -c LDSM one.txt) LDL/STL $(grep -cE 'LDL|STL' one.txt)" | tee -a $log
done
gzip -c sass.txt > $OUT/sass.txt.gz
timeout ${SAN_T:-150} compute-sanitizer --tool memcheck ./tc-harness check 2>&1 | tail -4 | tee -a $log
timeout ${SAN_T:-150} compute-sanitizer --tool racecheck ./tc-harness check 2>&1 | tail -4 | tee -a $log
python3 - <<'PY' 2>&1 | tee -a $log
import torch
for dt in (torch.bfloat16, torch.float16):
    a = torch.randn(8192, 8192, device='cuda', dtype=dt); b = torch.randn_like(a)
    for _ in range(3): a @ b
    e0 = torch.cuda.Event(enable_timing=True); e1 = torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(); e0.record()
    for _ in range(10): a @ b
    e1.record(); torch.cuda.synchronize()
    print('dense matmul', dt, '%.0f TFLOP/s' % (2 * 8192**3 / (e0.elapsed_time(e1) / 10) / 1e9))
PY
