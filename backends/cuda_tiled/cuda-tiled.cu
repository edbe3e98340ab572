/*
 * cuda-tiled.cu - the cuda-tiled backend's host side: the probe (devices,
 * compute capabilities, kernel images), supports(), running each op on the
 * tensors' device and the context's stream, scratch memory and the timer.
 * The kernels are in kernels.cuh, instantiated per dtype in tiled-*.cu.
 */
#include "cuda-tiled.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CC_NAME CT_NAME
#include "../cuda-common.cuh"

#define CT_MAX_DEVICES 64

/* Written once by ct_probe under the registry's lock; read-only afterwards. */
static ct_device devices[CT_MAX_DEVICES];
static cc_pool pools[CT_MAX_DEVICES]; /* the backward's scratch (cuda-common.cuh) */
static int n_devices;

/* A kernel built like all the others: if it has no image for a device, none has. */
__global__ void ct_probe_kernel(int *x)
{
    if (x) *x = 0;
}

const ct_device *ct_device_at(int id)
{
    return id >= 0 && id < n_devices ? &devices[id] : NULL;
}

natten_status ct_error(cudaError_t e, const char *what)
{
    return cc_error(e, what);
}

static int ct_probe(char *why, size_t len)
{
    int n = 0, prev = 0, usable = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorNoDevice || (e == cudaSuccess && n == 0)) {
        snprintf(why, len, "%s", CT_NO_DEVICE);
        return 0;
    }
    if (e == cudaErrorInsufficientDriver) {
        snprintf(why, len, "no %s driver, or one older than this build's %s runtime %d.%d (%s)", CT_API, CT_API,
                 CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10, cudaGetErrorString(e));
        return 0;
    }
    if (e != cudaSuccess) {
        snprintf(why, len, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
        (void)cudaGetLastError();
        return 0;
    }
    (void)cudaGetDevice(&prev);
    n_devices = n < CT_MAX_DEVICES ? n : CT_MAX_DEVICES;
    for (int i = 0; i < n_devices; i++) {
        ct_device *d = &devices[i];
        cudaDeviceProp pr;
        cudaFuncAttributes fa;
        if ((e = cudaGetDeviceProperties(&pr, i)) != cudaSuccess) {
            snprintf(d->why, sizeof d->why, "cudaGetDeviceProperties: %s", cudaGetErrorString(e));
            (void)cudaGetLastError();
            continue;
        }
        d->cc = pr.major * 10 + pr.minor;
        d->sms = pr.multiProcessorCount;
        d->smem_block = pr.sharedMemPerBlock;
        {
            int optin = 0;
            if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, i) != cudaSuccess) {
                (void)cudaGetLastError();
                optin = 0;
            }
            d->smem_optin = optin > 0 ? (size_t)optin : 0;
        }
        snprintf(d->name, sizeof d->name, "%s", pr.name);
        if ((e = cudaSetDevice(i)) == cudaSuccess) e = cudaFuncGetAttributes(&fa, (const void *)ct_probe_kernel);
        if (e != cudaSuccess) {
            snprintf(d->why, sizeof d->why, "device %d (%s, sm_%d): %s", i, d->name, d->cc,
                     e == cudaErrorInvalidDeviceFunction || e == cudaErrorNoKernelImageForDevice
                         ? "this build has no kernels for its architecture (configure --with-cuda-arch)"
                         : cudaGetErrorString(e));
            (void)cudaGetLastError();
            continue;
        }
        d->usable = 1;
        pools[i] = cc_pool_create(i);
#if defined(__HIP__)
        d->mma = 0;
#else
        /* the PTX the running image came from: sm_80+ code, not a JIT of older PTX */
        d->mma = d->cc >= 80 && fa.ptxVersion >= 80;
#endif
        usable++;
    }
    (void)cudaSetDevice(prev);
    (void)cudaGetLastError();
    if (!usable) snprintf(why, len, "%s", devices[0].why);
    return usable > 0;
}

static int ct_supports(const natten_problem *p, char *why, size_t len)
{
    int id = p->device.device_id;
    const ct_device *d = ct_device_at(id);
    int64_t dim = p->dim > p->dim_v ? p->dim : p->dim_v;
    if (d == NULL) {
        snprintf(why, len, "tensors are on " CT_API " device %d but %d devices are visible", id, n_devices);
        return 0;
    }
    if (!d->usable) {
        snprintf(why, len, "%s", d->why);
        return 0;
    }
    if (p->dtype == NATTEN_BF16 && d->cc < 80) {
        snprintf(why, len, "bfloat16 needs compute capability 8.0; device %d (%s) is %d.%d", id, d->name,
                 d->cc / 10, d->cc % 10);
        return 0;
    }
    if (dim > CT_MAX_DIM) {
        snprintf(why, len, "head dim %lld exceeds %d, the most this backend keeps in registers",
                 (long long)dim, CT_MAX_DIM);
        return 0;
    }
    return natten_inner_contiguous(p, why, len);
}

static const ct_ops *ops_for(natten_dtype t)
{
    switch (t) {
    case NATTEN_F32: return &ct_ops_f32;
    case NATTEN_F64: return &ct_ops_f64;
    case NATTEN_F16: return &ct_ops_f16;
    default: return &ct_ops_bf16;
    }
}

/* Run op on the tensors' device, then give the caller's thread its device back. */
static natten_status run_on_device(const natten_problem *p, const natten_exec *x)
{
    return cc_on_device(ops_for(p->dtype)->op[p->op], p, x);
}

void *ct_scratch(size_t bytes, cudaStream_t s, natten_status *st)
{
    void *ptr = NULL;
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess)
        e = cc_malloc_async(&ptr, bytes ? bytes : 1, dev >= 0 && dev < n_devices ? pools[dev] : NULL, s);
    if (e != cudaSuccess) {
        *st = ct_error(e, "stream-ordered allocation of scratch memory");
        return NULL;
    }
    *st = NATTEN_SUCCESS;
    return ptr;
}

natten_status ct_scratch_release(void *ptr, cudaStream_t s)
{
    cudaError_t e = ptr ? cudaFreeAsync(ptr, s) : cudaSuccess;
    return e == cudaSuccess ? NATTEN_SUCCESS : ct_error(e, "cudaFreeAsync of scratch memory");
}

extern "C" const natten_backend CT_BACKEND;

#if CT_HOST_PASS
static const char *const ct_config_names[CT_N_CONFIGS] = {"default", "big-tiles", "big-tiles-110k",
                                                            "no-tensor-cores", "tc-wide",
                                                            "tc-lean-per-head", "tc-head-groups"};
#endif

#if CT_HOST_PASS
const natten_backend CT_BACKEND = {
    CT_NAME,
    CT_API ", shared-memory tiles: every op, any window/dilation/stride/causal, fp32/fp64/fp16/bf16",
    CT_DEVICE,
    ct_probe,
    ct_supports,
    {run_on_device, run_on_device, run_on_device, run_on_device, run_on_device, run_on_device},
    CT_N_CONFIGS,
    ct_config_names,
    cc_scratch_alloc,
    cc_scratch_free,
    cc_time_op,
    cc_device_name,
};
#endif
