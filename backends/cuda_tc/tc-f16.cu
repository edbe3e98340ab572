/* tc-f16.cu - the tensor-core kernels instantiated for __half (head dims 32, 64, 128). */
#include "cuda-tc.h"

cudaError_t tc_run_f16(const tc::Params &p, cudaStream_t st, int D, int backward)
{
    switch (D) {
    case 32: return backward ? tc::backward<__half, 32>(p, st) : tc::forward<__half, 32>(p, st);
    case 64: return backward ? tc::backward<__half, 64>(p, st) : tc::forward<__half, 64>(p, st);
    case 128: return backward ? tc::backward<__half, 128>(p, st) : tc::forward<__half, 128>(p, st);
    default: return cudaErrorInvalidValue;
    }
}
