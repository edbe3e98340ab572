#!/usr/bin/env python3
"""tools/tc-emu/gen.py SRCDIR OUT.h: copy cuda-tiled's tensor-core kernels
(mma2d.cuh, bulk2d.cuh), the structs they use (fast2d.cuh) and their host
plans (kernels.cuh) into one header that tc-emu's emu.cpp compiles on the
host; the asm primitives are left out (emu.cpp supplies them)."""
import re, sys
root = sys.argv[1]
f2 = open(root + '/backends/cuda_tiled/fast2d.cuh').read()
mm = open(root + '/backends/cuda_tiled/mma2d.cuh').read()
kc = open(root + '/backends/cuda_tiled/kernels.cuh').read()
out = []
def block(src, start_pat):
    i = src.index(start_pat)
    # back up over a template line
    j = src.rfind('\n', 0, i)
    prev = src.rfind('\n', 0, j)
    if src[prev+1:j].startswith('template'):
        i = prev + 1
    else:
        i = j + 1
    k = src.index('\n}', i)
    end = src.index('\n', k + 1) + 1 if src[k+2:k+3] != ';' else src.index('\n', k+1) + 1
    return src[i:end]
for s in ['struct f2axis {', 'struct f2geo {', 'struct f2view {', 'T *f2at(const f2view', 'void f2win(int n', 'struct f2tile {', 'bool f2_get_tile_at(', 'bool f2_get_tile(']:
    out.append(block(f2, s))
# mma2d.cuh body between '#if !defined(__HIP__)' and its '#endif'
a = mm.index('#if !defined(__HIP__)') + len('#if !defined(__HIP__)')
b = mm.rindex('#endif /* !__HIP__ */')
body = mm[a:b]
# drop the FM_ON definition block
body = re.sub(r'#if defined\(__CUDA_ARCH__\) && __CUDA_ARCH__ >= 800\n#  define FM_ON 1\n#else\n#  define FM_ON 0\n#endif\n', '', body)
for name in ['void fm_mma(', 'void fm_mma0(', 'void fm_ldsm_t4(', 'void fm_ldsm4(', 'void fm_ldsm2(', 'void fm_cp16(', 'void fm_cp8(', 'void fm_cp_wait(', 'void fl_sts16(']:
    blk = block(body, name)
    body = body.replace(blk, '')
body = body.replace('extern __shared__ __align__(16) unsigned char ct_smem[];', 'unsigned char *ct_smem = emu_smem();')
out.append(body)
# bulk2d.cuh (qkb) the same way: its asm primitives come from emu.cpp
bk = open(root + '/backends/cuda_tiled/bulk2d.cuh').read()
a = bk.index('#if !defined(__HIP__)') + len('#if !defined(__HIP__)')
b = bk.rindex('#endif /* !__HIP__ */')
body = bk[a:b]
body = re.sub(r'#if defined\(__CUDA_ARCH__\) && __CUDA_ARCH__ >= 900\n#  define QB_ON 1\n#else\n#  define QB_ON 0\n#endif\n', '', body)
for name in ['unsigned qb_sa(', 'void qb_init(', 'void qb_init_fence(', 'void qb_arrive(', 'void qb_wait(', 'void qb_cp16(',
             'void qb_arrive_copies(', 'void qb_arrive_tx(', 'void qb_load(', 'void qb_store(', 'void qb_store_wait(', 'void qb_fence(', 'void qb_sync(']:
    blk = block(body, name)
    body = body.replace(blk, '')
body = body.replace('extern __shared__ __align__(16) unsigned char ct_smem[];', 'unsigned char *ct_smem = emu_smem();')
out.append(body)
out.append(block(kc, 'static inline void f2_axes('))
out.append(block(kc, 'struct f2plan {'))
for s in ['static inline bool fm_plan(', 'static inline fldiv fl_div_make(', 'static inline void fl_tab_make(', 'static inline bool fl_plan(', 'static inline int fh_pad_pick(', 'static inline i64 fh_runs_make(', 'static inline bool fh_al4(', 'static inline bool fh_plan(', 'static inline void qb_warps(', 'static inline bool qb_common(', 'static inline bool qb_plan(', 'static inline bool ab_plan(']:
    out.append(block(kc, s))
open(sys.argv[2], 'w').write('\n'.join(out))
