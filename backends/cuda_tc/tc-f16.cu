/* tc-f16.cu - the tensor-core backward kernels instantiated for __half (head dims 32, 64, 128);
 * the forward kernels are in tc-fwd32.cu, tc-fwd64.cu, tc-fwd128.cu. */
#include "cuda-tc.h"

cudaError_t tc_run_f16(const tc::Params &p, cudaStream_t st, int D, int backward, int variant)
{
    switch (D) {
    case 32:
        return backward ? tc::backward<__half, 32>(p, st, variant) : tc_forward_d32(p, st, 0, variant);
    case 64:
        return backward ? tc::backward<__half, 64>(p, st, variant) : tc_forward_d64(p, st, 0, variant);
    case 128:
        return backward ? tc::backward<__half, 128>(p, st, variant) : tc_forward_d128(p, st, 0, variant);
    default: return cudaErrorInvalidValue;
    }
}
