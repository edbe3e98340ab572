/* tiled-bf16.cu - the cuda-tiled kernels for __nv_bfloat16 (see kernels.cuh). */
#include "kernels.cuh"

#if CT_HOST_PASS
const ct_ops ct_ops_bf16 = CT_OPS_TABLE(__nv_bfloat16);
#endif
