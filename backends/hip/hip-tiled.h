/*
 * hip-tiled.h - what each .hip file of backends/hip includes before its
 * backends/cuda_tiled source, which it then includes inside namespace
 * natten_hip.  The namespace keeps the HIP build's C++ symbols (ct_error,
 * ct_ops_f32, the kernel templates, ...) apart from the CUDA build's, so one
 * library may hold both backends; only natten_backend_hip_tiled, declared
 * extern "C", has a global name.  Every header those sources include is
 * included here first, outside the namespace, so that inside it the include
 * guards make them no-ops: a source that starts to include another system
 * header must have it added here (hipcc says so loudly).
 */
#ifndef NATTEN_HIP_TILED_H
#define NATTEN_HIP_TILED_H

#include "vendor-hip.h"

#include "natten-impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic> /* kernels.cuh: fh_pad_pick's remembered pads */
#include <pthread.h> /* kernels.cuh: f2_smem_attr's table */

#endif
