#!/usr/bin/env python3
"""tools/tc-emu/gen-wg.py SRCDIR OUT.h: copy cuda-tc's kernels (tc_kernels.cuh:
the mma.sync kernels, geometry and plans; tc_wgmma.cuh and tc_wgmma_bwd.cuh:
the Hopper forward and backward on wgmma) into one header that wg.cpp compiles
on the host.  The PTX wrappers and the launcher are left out (wg.cpp supplies
them); the kernels' sm_90a guard is switched on; the dynamic shared memory
declarations point at the emulated block's memory."""
import re
import sys

root = sys.argv[1] + '/backends/cuda_tc/'


def block(src, pat):
    """The definition whose first line holds pat (with a template line above
    it, if any), through its matching closing brace and the rest of that line."""
    i = src.index(pat)
    i = src.rfind('\n', 0, i) + 1
    prev = src.rfind('\n', 0, i - 1) + 1
    if src[prev:i].startswith('template'):
        i = prev
    k = src.index('{', src.index(pat))
    depth = 0
    while True:
        if src[k] == '{':
            depth += 1
        elif src[k] == '}':
            depth -= 1
            if depth == 0:
                break
        k += 1
    end = src.index('\n', k) + 1
    return src[i:end]


def drop(src, pats):
    for p in pats:
        src = src.replace(block(src, p), '')
    return src


def drop_macros(src, names):
    """#define NAME(...) continued by backslashes."""
    for n in names:
        i = src.index('#define ' + n)
        j = i
        while True:
            e = src.index('\n', j)
            if src[e - 1] != '\\':
                break
            j = e + 1
        src = src[:i] + src[e + 1:]
    return src


kc = open(root + 'tc_kernels.cuh').read()
kc = re.sub(r'#include <cuda[a-z_0-9]*\.h>\n', '', kc)
kc = drop(kc, ['uint32_t smem_u32(', 'void cp_async16(', 'void cp_async4(', 'void cp_commit(', 'void cp_wait()',
               'void ldsm4(', 'void ldsm4t(', 'static cudaError_t launch('])
# the two Mma specialisations (struct bodies end with "};")
for t in ['__half', '__nv_bfloat16']:
    i = kc.index('template <> struct Mma<%s> {' % t)
    j = kc.index('\n};\n', i) + 4
    kc = kc[:i] + kc[j:]

wg = open(root + 'tc_wgmma.cuh').read()
wg = wg.replace('#include "tc_kernels.cuh"\n', '')
wg = re.sub(r'#if defined\(__CUDA_ARCH__\) && defined\(__CUDA_ARCH_FEAT_SM90_ALL\)\n#define TC_WGMMA_DEVICE 1\n'
            r'#else\n#define TC_WGMMA_DEVICE 0\n#endif\n', '#define TC_WGMMA_DEVICE 1\n', wg)
wg = drop_macros(wg, ['TC_WGMMA_SS_N64', 'TC_WGMMA_RS_N128', 'TC_WGMMA_RS_N64(', 'TC_WGMMA_RS_N64_KM',
                      'TC_WGMMA_SS_N32'])
wg = drop(wg, ['void wg_fence(', 'void wg_commit(', 'void wg_wait()', 'void fence_async_smem(', 'void pin(',
               'void mma_ss(', 'void mma_rs_n128(', 'void mma_rs_n64(', 'void mma_rs_s64(', 'void mbar_init(',
               'void mbar_arrive(', 'void mbar_arrive_cp_async(', 'void mbar_wait(', 'void named_sync(',
               'bool named_sync_or(', 'void named_arrive(', 'float ex2_approx('])
wg = re.sub(r'template <int N> __device__ __forceinline__ void reg_(de)?alloc\(\) \{ asm[^\n]*\n', '', wg)

bw = open(root + 'tc_wgmma_bwd.cuh').read()
bw = bw.replace('#include "tc_wgmma.cuh"\n', '')

out = '\n'.join([kc, wg, bw])
# kernel<<<grid, threads, smem, stream>>>(args); -> emu_launch([&] { kernel(args); }, grid, threads, smem, stream);
out = re.sub(r'([A-Za-z_]\w*(?:<[^<>;]*>)?)<<<(.*?)>>>\((.*?)\);', r'emu_launch([&] { \1(\3); }, \2);', out)
out = re.sub(r'extern __shared__ __align__\((\d+)\) char (\w+)\[\];', r'char *\2 = emu_smem();', out)
if 'asm' in re.sub(r'//[^\n]*|/\*.*?\*/', '', out, flags=re.S).replace('asm volatile("" :', ''):
    for n, line in enumerate(out.split('\n')):
        if re.search(r'\basm\b', line):
            sys.stderr.write('gen-wg.py: asm left at line %d: %s\n' % (n + 1, line.strip()))
open(sys.argv[2], 'w').write(out)
