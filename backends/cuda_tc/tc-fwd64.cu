/* tc-fwd64.cu - the tensor-core forward kernels for head dim 64, every
 * configuration, both dtypes (one file per head dim so that a parallel build
 * compiles them side by side). */
#include "cuda-tc.h"

cudaError_t tc_forward_d64(const tc::Params &p, cudaStream_t st, int bf16, int variant)
{
    return bf16 ? tc::forward<__nv_bfloat16, 64>(p, st, variant) : tc::forward<__half, 64>(p, st, variant);
}
