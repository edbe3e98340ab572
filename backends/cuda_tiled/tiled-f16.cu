/* tiled-f16.cu - the cuda-tiled kernels for __half (see kernels.cuh). */
#include "kernels.cuh"

const ct_ops ct_ops_f16 = CT_OPS_TABLE(__half);
