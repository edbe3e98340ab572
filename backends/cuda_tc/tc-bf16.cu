/* tc-bf16.cu - the tensor-core kernels instantiated for __nv_bfloat16 (head dims 32, 64, 128). */
#include "cuda-tc.h"

cudaError_t tc_run_bf16(const tc::Params &p, cudaStream_t st, int D, int backward)
{
    switch (D) {
    case 32: return backward ? tc::backward<__nv_bfloat16, 32>(p, st) : tc::forward<__nv_bfloat16, 32>(p, st);
    case 64: return backward ? tc::backward<__nv_bfloat16, 64>(p, st) : tc::forward<__nv_bfloat16, 64>(p, st);
    case 128: return backward ? tc::backward<__nv_bfloat16, 128>(p, st) : tc::forward<__nv_bfloat16, 128>(p, st);
    default: return cudaErrorInvalidValue;
    }
}
