/* tc-fwd128-sm90a.cu - cuda-tc's Hopper forward (wgmma, tc_wgmma.cuh) for head
 * dim 128, both dtypes; compiled for sm_90a alone (local.mk), so the backend
 * runs it only on devices of compute capability 9.0 (cuda-tc.cu). */
#include "cuda-tc.h"
#include "tc_wgmma.cuh"

/* The variant measured best and checked in the harness (NOTES.md v4): V's
 * descriptor with LBO = the offset of the two 64-column halves, two blocks
 * per SM. */
template <typename T> static auto kernel_of() { return tc::wg::fwd_kernel<T, 0, 2, 64, false>; }

cudaError_t tc_forward_d128_sm90a(const tc::Params &p, cudaStream_t st, int bf16)
{
    return bf16 ? tc::wg::forward_v<__nv_bfloat16, 0, 2, 64, false>(p, st)
                : tc::wg::forward_v<__half, 0, 2, 64, false>(p, st);
}

cudaError_t tc_probe_sm90a(void)
{
    cudaFuncAttributes fa;
    cudaError_t e = cudaFuncGetAttributes(&fa, (const void *)kernel_of<__half>());
    if (e == cudaSuccess) e = cudaFuncGetAttributes(&fa, (const void *)kernel_of<__nv_bfloat16>());
    return e;
}
