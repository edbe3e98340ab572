/* tiled-f32.cu - the cuda-tiled kernels for float (see kernels.cuh). */
#include "kernels.cuh"

const ct_ops ct_ops_f32 = CT_OPS_TABLE(float);
