/* tiled-bf16.cu - the cuda-tiled kernels for __nv_bfloat16 (see kernels.cuh). */
#include "kernels.cuh"

const ct_ops ct_ops_bf16 = CT_OPS_TABLE(__nv_bfloat16);
