/* tiled-f64.cu - the cuda-tiled kernels for double (see kernels.cuh). */
#include "kernels.cuh"

const ct_ops ct_ops_f64 = CT_OPS_TABLE(double);
