/* tc-bwd128-sm90a.cu - cuda-tc's Hopper backward (wgmma, tc_wgmma_bwd.cuh)
 * for head dim 128, both dtypes, four variants; compiled for sm_90a alone
 * (local.mk), so the backend runs it only on devices of compute capability
 * 9.0 (cuda-tc.cu).  A translation unit of its own so that a parallel make
 * compiles it beside the forward's (tc-fwd128-sm90a.cu). */
#include "cuda-tc.h"
#include "tc_wgmma_bwd.cuh"

/*
 * The variants (harness configurations 21 and 23, NOTES.md v5; measured on
 * the H200 then, fp16, backward alone: 2-D 256^2 K 80 81.3 / 79.1 ms, 3-D
 * 340.0 / 279.0 ms, 1-D 32768 K 2048 0.574 / 0.593 ms; v16 has since cut
 * every variant's instructions per tile, the library's defaults now 59.4 ms
 * on 2-D and 235.0 ms on 3-D, NOTES.md v16):
 *  0 (v21): dK/dV over 128-key boxes (two warpgroups, one block per SM),
 *           64-query tiles; dQ over 64-query boxes, 64-key tiles, two blocks
 *           per SM;
 *  1 (v23): dK/dV over 64-key boxes, 32-query tiles, two blocks per SM; dQ
 *           over 128-query boxes, 32-key tiles, two blocks per SM.  Since
 *           v17 both with PIPE (dkv_kernel's 2, dq_kernel's): one barrier per
 *           tile, the next tile staged while S and dP run, and in dK/dV the
 *           dV, dK products of a tile issued with the next tile's S^T, dP^T;
 *           the same bits (NOTES.md v17: 3-D backward 213.0 / 214.1 against
 *           232.7 / 233.0 ms in one process);
 * Neither overlaps the softmax with the products (OVL): the overlapped twins
 * were no faster.
 *  2, 3 (v11, NOTES.md; configurations 16 and 17, 16 the default for rank
 *           2 from 2^17 rows since session 8): dK/dV over 128-key boxes
 *           planned for SK (plan_dkv_sk), each warpgroup skipping the query
 *           tiles outside its keys' inverse windows, 64- (2) or 32-query (3)
 *           tiles, one block per SM; dQ as variant 1 without PIPE (v17: with
 *           it, the 2-D backward measured the same, 58.4 / 59.3 against 58.7 /
 *           58.9 ms; PIPE in SK's dK/dV makes ptxas serialise its wgmma);
 *  4:       variant 1 as v16 left it (no PIPE), for measurements only
 *           (cuda-tc.cu: NATTEN_CUDA_TC_BWD_PIPE=0);
 *  5, 6 (v26, configurations 19 and 20): warp-specialised kernels, a
 *           producer warpgroup filling a 3-stage ring for consumer warpgroups
 *           that never meet at a block-wide barrier: dK/dV over variant 2's
 *           boxes (dkv_ws_kernel, 64-query tiles, two consumers skipping as
 *           SK's), dQ over 128- (5) or 192-query (6) boxes with 64-key tiles
 *           (dq_ws_kernel, two or three consumers).  Measured variants (build
 *           flags in session 22, NOTES.md v26): a 4-stage ring (within
 *           0.2 ms on the 2-D target), the OVL overlaps (no faster), 32-key
 *           dQ tiles (slower).
 *  7 (v27, configuration 21): 6 with both producers arriving on a
 *           stage's "full" barrier through cp.async.mbarrier.arrive (AF: no
 *           wait for their own copies; the consumers fence), 0.3 ms faster
 *           on the 2-D target's backward.  Measured and not kept (NOTES.md
 *           v27): the dK/dV consumers taking turns at the tensor cores
 *           (ping-pong), with a 3-stage ring (5 ms slower), a 4-stage one
 *           (no faster), and with AF and 4 stages (no faster than AF).
 */
template <typename T> static cudaError_t run_v(const tc::Params &p, cudaStream_t st, int which)
{
    return which == 0   ? tc::wg::backward_v<T, 2, 64, 1, 1, 64, 2, false>(p, st)
           : which == 1 ? tc::wg::backward_v<T, 1, 32, 2, 2, 32, 2, false, 2, true>(p, st)
           : which == 2 ? tc::wg::backward_sk<T, 64>(p, st)
           : which == 3 ? tc::wg::backward_sk<T, 32>(p, st)
           : which == 4 ? tc::wg::backward_v<T, 1, 32, 2, 2, 32, 2, false>(p, st)
           : which == 5 ? tc::wg::backward_ws<T, 2>(p, st)
           : which == 6 ? tc::wg::backward_ws<T, 3>(p, st)
                        : tc::wg::backward_ws<T, 3, true>(p, st);
}

cudaError_t tc_backward_d128_sm90a(const tc::Params &p, cudaStream_t st, int bf16, int which)
{
    if (which < 0 || which > 7 || p.delta == nullptr) return cudaErrorInvalidValue;
    return bf16 ? run_v<__nv_bfloat16>(p, st, which) : run_v<__half>(p, st, which);
}

template <typename K> static cudaError_t loads(K kernel)
{
    cudaFuncAttributes fa;
    return cudaFuncGetAttributes(&fa, (const void *)kernel);
}

template <typename T> static cudaError_t probe_t(void)
{
    cudaError_t e = loads(tc::wg::dkv_kernel<T, 2, 64, 1, false>);
    if (e == cudaSuccess) e = loads(tc::wg::dq_kernel<T, 1, 64, 2, false>);
    if (e == cudaSuccess) e = loads(tc::wg::dkv_kernel<T, 1, 32, 2, false>);
    if (e == cudaSuccess) e = loads(tc::wg::dq_kernel<T, 2, 32, 2, false>);
    if (e == cudaSuccess) e = loads(tc::wg::dkv_kernel<T, 1, 32, 2, false, false, 2>);
    if (e == cudaSuccess) e = loads(tc::wg::dq_kernel<T, 2, 32, 2, false, true>);
    if (e == cudaSuccess) e = loads(tc::wg::dkv_kernel<T, 2, 64, 1, false, true>);
    if (e == cudaSuccess) e = loads(tc::wg::dkv_kernel<T, 2, 32, 1, false, true>);
    if (e == cudaSuccess) e = loads(tc::wg::dkv_ws_kernel<T, 64, 3>);
    if (e == cudaSuccess) e = loads(tc::wg::dkv_ws_kernel<T, 64, 3, true>);
    if (e == cudaSuccess) e = loads(tc::wg::dq_ws_kernel<T, 64, 3, 3, true>);
    if (e == cudaSuccess) e = loads(tc::wg::dq_ws_kernel<T, 64, 3, 2>);
    if (e == cudaSuccess) e = loads(tc::wg::dq_ws_kernel<T, 64, 3, 3>);
    if (e == cudaSuccess) e = loads(tc::fna_delta_kernel<T, tc::wg::D>);
    return e;
}

cudaError_t tc_probe_sm90a_bwd(void)
{
    cudaError_t e = probe_t<__half>();
    return e == cudaSuccess ? probe_t<__nv_bfloat16>() : e;
}
