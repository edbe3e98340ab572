/* tiled-f32.cu - the cuda-tiled kernels for float (see kernels.cuh). */
#include "kernels.cuh"

#if CT_HOST_PASS
const ct_ops ct_ops_f32 = CT_OPS_TABLE(float);
#endif
