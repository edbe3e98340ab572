/* tc-f16.cu - the tensor-core kernels instantiated for __half (head dims 32, 64, 128). */
#include "cuda-tc.h"

cudaError_t tc_run_f16(const tc::Params &p, cudaStream_t st, int D, int backward, int variant)
{
    switch (D) {
    case 32:
        return backward ? tc::backward<__half, 32>(p, st, variant) : tc::forward<__half, 32>(p, st, variant);
    case 64:
        return backward ? tc::backward<__half, 64>(p, st, variant) : tc::forward<__half, 64>(p, st, variant);
    case 128:
        return backward ? tc::backward<__half, 128>(p, st, variant) : tc::forward<__half, 128>(p, st, variant);
    default: return cudaErrorInvalidValue;
    }
}
