/* tc-fwd128-sm90a.cu - cuda-tc's Hopper forward (wgmma, tc_wgmma.cuh) for head
 * dim 128, both dtypes; compiled for sm_90a alone (local.mk), so the backend
 * runs it only on devices of compute capability 9.0 (cuda-tc.cu). */
#include "cuda-tc.h"
#include "tc_wgmma.cuh"

/* which 0: the variant measured best in v4 and checked in the harness
 * (NOTES.md v4, harness variant d): V's descriptor with LBO = the offset of
 * the two 64-column halves, two blocks per SM.  which 1: the warp-specialised
 * forward of v7 (fwd_ws_kernel: a producer warpgroup, WS_STAGES-stage ring,
 * FA3's intra-warpgroup overlap, WS_PP: its ping-pong).  which 2 (v8): the
 * same with SK 2: each consumer warpgroup skips the tiles outside its own
 * rows' windows, and the boxes are planned for that (plan_ws_sk; harness
 * variant F).  which 3 (v10): SK 2 with three consumer warpgroups, a
 * 192-row query box (NC 3), for less L2 traffic per FLOP. */
#define WS_STAGES 4 /* harness variant t, the fastest of p..u (NOTES.md v7) */
/* the split forward's ring (which 4); a build may set it (-DWS_SPLIT_STAGES=5:
 * 214 KB of shared memory, NOTES.md v14) */
#ifndef WS_SPLIT_STAGES
#define WS_SPLIT_STAGES WS_STAGES
#endif
#define WS_PP true
template <typename T> static auto kernel_of() { return tc::wg::fwd_kernel<T, 0, 2, 64, false>; }
template <typename T> static auto ws_kernel_of() { return tc::wg::fwd_ws_kernel<T, WS_STAGES, true, WS_PP>; }
template <typename T> static auto wsk_kernel_of()
{
    return tc::wg::fwd_ws_kernel<T, WS_STAGES, true, WS_PP, false, false, false, 2>;
}
template <typename T> static auto wsk3_kernel_of()
{
    return tc::wg::fwd_ws_kernel<T, WS_STAGES, true, WS_PP, false, false, false, 2, 3>;
}

template <typename T> static auto wsks_kernel_of()
{
    return tc::wg::fwd_ws_kernel<T, WS_SPLIT_STAGES, true, WS_PP, false, false, false, 2, 3, true>;
}

/* which 4 (v12): which 3's kernel with the tail round's boxes split over
 * the idle SMs (tc::wg::plan_split), each split box merged by its last part
 * (v14; v12 ran a second kernel for that). */
cudaError_t tc_forward_d128_sm90a(const tc::Params &p, cudaStream_t st, int bf16, int which)
{
    if (which == 4)
        return bf16 ? tc::wg::forward_ws_split<__nv_bfloat16, WS_SPLIT_STAGES>(p, st)
                    : tc::wg::forward_ws_split<__half, WS_SPLIT_STAGES>(p, st);
    if (which == 3)
        return bf16 ? tc::wg::forward_ws<__nv_bfloat16, WS_STAGES, true, WS_PP, false, false, false, 2, 3>(p, st)
                    : tc::wg::forward_ws<__half, WS_STAGES, true, WS_PP, false, false, false, 2, 3>(p, st);
    if (which == 2)
        return bf16 ? tc::wg::forward_ws<__nv_bfloat16, WS_STAGES, true, WS_PP, false, false, false, 2>(p, st)
                    : tc::wg::forward_ws<__half, WS_STAGES, true, WS_PP, false, false, false, 2>(p, st);
    if (which == 1)
        return bf16 ? tc::wg::forward_ws<__nv_bfloat16, WS_STAGES, true, WS_PP>(p, st)
                    : tc::wg::forward_ws<__half, WS_STAGES, true, WS_PP>(p, st);
    return bf16 ? tc::wg::forward_v<__nv_bfloat16, 0, 2, 64, false>(p, st)
                : tc::wg::forward_v<__half, 0, 2, 64, false>(p, st);
}

/* v14: the split forward's arrival counters, one per split box, kept
 * between launches: zero when the module loads, and every launch leaves
 * them zero (the part that merges a box resets its counter).  Per device
 * (module data); cuda-tc.cu orders the launches that use them. */
#define TC_SPLIT_COUNTERS 4096
static __device__ unsigned int split_counters[TC_SPLIT_COUNTERS] = {0u};

unsigned int *tc_split_counters(size_t *n)
{
    void *a = nullptr;
    *n = 0;
    if (cudaGetSymbolAddress(&a, split_counters) != cudaSuccess) return nullptr;
    *n = TC_SPLIT_COUNTERS;
    return static_cast<unsigned int *>(a);
}

size_t tc_forward_split_plan(tc::Params &p, int64_t *grid)
{
    size_t bytes = 0;
    tc::wg::plan_split(p, &bytes);
    *grid = tc::plan_grid(p, p.H);
    return bytes;
}

cudaError_t tc_probe_sm90a(void)
{
    cudaFuncAttributes fa;
    const void *k[10] = {(const void *)kernel_of<__half>(),
                         (const void *)kernel_of<__nv_bfloat16>(),
                         (const void *)ws_kernel_of<__half>(),
                         (const void *)ws_kernel_of<__nv_bfloat16>(),
                         (const void *)wsk_kernel_of<__half>(),
                         (const void *)wsk_kernel_of<__nv_bfloat16>(),
                         (const void *)wsk3_kernel_of<__half>(),
                         (const void *)wsk3_kernel_of<__nv_bfloat16>(),
                         (const void *)wsks_kernel_of<__half>(),
                         (const void *)wsks_kernel_of<__nv_bfloat16>()};
    cudaError_t e = cudaSuccess;
    for (int i = 0; i < 10 && e == cudaSuccess; i++) e = cudaFuncGetAttributes(&fa, k[i]);
    return e;
}
