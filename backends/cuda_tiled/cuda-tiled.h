/*
 * cuda-tiled.h - private to backends/cuda_tiled: what the host part
 * (cuda-tiled.cu: probe, supports, device/stream handling, timing) and the
 * per-dtype kernel files (tiled-*.cu, instantiating kernels.cuh) share.
 */
#ifndef NATTEN_CUDA_TILED_H
#define NATTEN_CUDA_TILED_H

/* The GPU runtime: CUDA's headers, or under hipcc (HIP) the same names mapped
 * to HIP's by backends/hip/vendor-hip.h, which also gives the HIP build its
 * own backend name and device type (STYLE.md section 8).  Before natten-impl.h
 * so that natten-window.h finds __host__ __device__ __forceinline__ with
 * either compiler. */
#if defined(__HIP__)
#  include "../hip/vendor-hip.h"
#else
#  include <cuda_runtime.h>
#  include <cuda_bf16.h>
#  include <cuda_fp16.h>
#  define CT_BACKEND natten_backend_cuda_tiled
#  define CT_NAME "cuda-tiled"
#  define CT_DEVICE kDLCUDA
#  define CT_API "CUDA"
#  define CT_NO_DEVICE "no CUDA device"
/* 1 in the compiler pass that builds host code: the tables of host function
 * pointers are defined only there (vendor-hip.h says why). */
#  define CT_HOST_PASS 1
#endif

#include "natten-impl.h"

/* What the probe learnt about one device (filled once, read-only afterwards). */
typedef struct ct_device {
    int usable;              /* has a kernel image for it */
    int mma;                 /* sm_80+ with an image built for sm_80+: the tensor-core kernels */
    int cc;                  /* compute capability, 10*major + minor */
    int sms;
    size_t smem_block;       /* default dynamic shared memory per block */
    size_t smem_optin;       /* most a kernel may opt in to (0: none beyond the default) */
    char name[256];
    char why[160];           /* when !usable */
} ct_device;

/* Probe results; only valid once the registry has probed the backend. */
const ct_device *ct_device_at(int id);

/* Largest head dim the register-blocked kernels hold per query (32 lanes x 32). */
#define CT_MAX_DIM 1024
/* Shared memory a block asks for (the default limit: no opt-in needed). */
#define CT_SMEM_BUDGET (48 * 1024)
/* Threads of one block (centres per block x lanes per centre). */
#define CT_THREADS 128

/* Map a CUDA error to a natten status and message ("cuda-tiled: what: text"). */
natten_status ct_error(cudaError_t e, const char *what);

/* Device-memory scratch on the op's stream (from the backend's pool on the
 * current device, cuda-common.cuh); NULL on failure with the status in *st. */
void *ct_scratch(size_t bytes, cudaStream_t s, natten_status *st);
natten_status ct_scratch_release(void *ptr, cudaStream_t s); /* NULL: nothing */

/* The backend's configurations: the fast kernels' tile plans (default,
 * big-tiles, big-tiles-110k), the default plan without the tensor-core
 * kernels (no-tensor-cores), with the first, wider tensor-core kernels
 * for the unfused ops (tc-wide), and with the lean ones per head only
 * (tc-lean-per-head: no head-group qkh/avh), and without the bulk-copy QK
 * of sm_90+ (tc-head-groups: qkh where qkb would run); f2_config in
 * kernels.cuh. */
#define CT_N_CONFIGS 7

/* One entry point per op, per dtype. */
typedef struct ct_ops {
    natten_op_fn op[NATTEN_OP_COUNT];
} ct_ops;

extern const ct_ops ct_ops_f32, ct_ops_f64, ct_ops_f16, ct_ops_bf16;

#endif
