/* tc-fwd32.cu - the tensor-core forward kernels for head dim 32, every
 * configuration, both dtypes (one file per head dim so that a parallel build
 * compiles them side by side). */
#include "cuda-tc.h"

cudaError_t tc_forward_d32(const tc::Params &p, cudaStream_t st, int bf16, int variant)
{
    return bf16 ? tc::forward<__nv_bfloat16, 32>(p, st, variant) : tc::forward<__half, 32>(p, st, variant);
}
