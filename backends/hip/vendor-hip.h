/*
 * vendor-hip.h - the CUDA names backends/cuda_tiled uses, mapped to HIP's, so
 * that hipcc builds those very .cu files for AMD GPUs (the way ggml's
 * src/ggml-cuda/vendors/hip.h does; STYLE.md section 8).  cuda-tiled.h
 * includes it instead of the CUDA headers when the compiler is HIP; nothing
 * here changes what a kernel computes.
 *
 * Written against HIP 5.2 (Debian bookworm: hipcc 5.2.3 on clang 15,
 * libamdhip64-dev).  Where HIP 5.2 has no counterpart of a CUDA name, a
 * portable fallback is defined below; docs/hip.md lists them:
 *   - the *_sync warp shuffles (HIP 6.2 added them): the mask is dropped and
 *     the width defaults to 32, CUDA's warp, so offsets and source lanes mean
 *     the same on a 64-lane (CDNA) or 32-lane (RDNA) wavefront;
 *   - __syncwarp: a wavefront-scope fence and barrier;
 *   - __nv_bfloat16 and its conversions (HIP 5.2 has only hip_bfloat16, whose
 *     float constructor rounds to nearest even like __float2bfloat16_rn);
 *   - cudaMallocAsync/cudaFreeAsync: hipMallocAsync where the device has
 *     memory pools (beta in HIP 5.2), else hipMalloc/hipFree; and no pool of
 *     the backend's own for its scratch (CC_NO_POOLS, cuda-common.cuh);
 *   - cudaErrorNoKernelImageForDevice: hipErrorNoBinaryForGpu.
 * A CUDA name not mapped here fails to compile under hipcc, which CI runs:
 * it is never silently wrong.
 */
#ifndef NATTEN_VENDOR_HIP_H
#define NATTEN_VENDOR_HIP_H

#include <hip/hip_runtime.h>
#include <hip/hip_fp16.h>
#include <hip/hip_bfloat16.h>

/* ---- the backend these sources build (cuda-tiled.h has CUDA's) ------------ */
#define CT_BACKEND natten_backend_hip_tiled
#define CT_NAME "hip-tiled"
#define CT_DEVICE kDLROCM
#define CT_API "HIP"
#define CT_NO_DEVICE \
    "no AMD GPU visible to the HIP runtime (none installed, or no ROCm kernel driver: /dev/kfd)"
/* clang's HIP device pass (clang 15) emits every externally visible const
 * object for the GPU as well, and the backend's tables hold host functions
 * that do not exist there (lld: undefined symbol).  cuda-tiled defines those
 * tables only when CT_HOST_PASS is 1. */
#if defined(__HIP_DEVICE_COMPILE__)
#  define CT_HOST_PASS 0
#else
#  define CT_HOST_PASS 1
#endif

/* ---- errors ----------------------------------------------------------------- */
#define cudaError_t hipError_t
#define cudaSuccess hipSuccess
#define cudaErrorMemoryAllocation hipErrorOutOfMemory
#define cudaErrorNoDevice hipErrorNoDevice
#define cudaErrorInsufficientDriver hipErrorInsufficientDriver
#define cudaErrorInvalidDeviceFunction hipErrorInvalidDeviceFunction
#define cudaErrorNoKernelImageForDevice hipErrorNoBinaryForGpu
#define cudaGetErrorString hipGetErrorString
#define cudaGetErrorName hipGetErrorName
#define cudaGetLastError hipGetLastError
#define cudaPeekAtLastError hipPeekAtLastError

/* The runtime's version as CUDART_VERSION spells it (1000 * major + 10 * minor). */
#define CUDART_VERSION (HIP_VERSION_MAJOR * 1000 + HIP_VERSION_MINOR * 10)

/* ---- devices ---------------------------------------------------------------- */
#define cudaDeviceProp hipDeviceProp_t
#define cudaGetDeviceCount hipGetDeviceCount
#define cudaGetDevice hipGetDevice
#define cudaSetDevice hipSetDevice
#define cudaGetDeviceProperties hipGetDeviceProperties
#define cudaDeviceGetAttribute hipDeviceGetAttribute
#define cudaDevAttrComputeCapabilityMajor hipDeviceAttributeComputeCapabilityMajor
#define cudaDevAttrComputeCapabilityMinor hipDeviceAttributeComputeCapabilityMinor
#define cudaDevAttrMultiProcessorCount hipDeviceAttributeMultiprocessorCount
#define cudaDevAttrMaxSharedMemoryPerBlock hipDeviceAttributeMaxSharedMemoryPerBlock
#define cudaDevAttrMaxSharedMemoryPerBlockOptin hipDeviceAttributeSharedMemPerBlockOptin
#define cudaDeviceSynchronize hipDeviceSynchronize

/* ---- kernels ---------------------------------------------------------------- */
#define cudaFuncAttributes hipFuncAttributes
#define cudaFuncGetAttributes hipFuncGetAttributes
#define cudaFuncSetAttribute hipFuncSetAttribute
#define cudaFuncAttributeMaxDynamicSharedMemorySize hipFuncAttributeMaxDynamicSharedMemorySize

/* ---- streams and events ----------------------------------------------------- */
#define cudaStream_t hipStream_t
#define cudaStreamCreate hipStreamCreate
#define cudaStreamDestroy hipStreamDestroy
#define cudaStreamSynchronize hipStreamSynchronize
#define cudaEvent_t hipEvent_t
#define cudaEventCreate hipEventCreate
#define cudaEventDestroy hipEventDestroy
#define cudaEventRecord hipEventRecord
#define cudaEventSynchronize hipEventSynchronize
#define cudaEventElapsedTime hipEventElapsedTime

/* ---- memory ----------------------------------------------------------------- */
#define cudaMalloc hipMalloc
#define cudaFree hipFree
#define cudaMemcpy hipMemcpy
#define cudaMemcpyAsync hipMemcpyAsync
#define cudaMemset hipMemset
#define cudaMemsetAsync hipMemsetAsync
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaMemcpyDeviceToDevice hipMemcpyDeviceToDevice

/* Stream-ordered allocation needs memory pools, a beta feature of HIP 5.2 that
 * not every device has.  Without them: hipMalloc, and hipFree, which waits for
 * the device, so the memory outlives the kernels queued before the free, as
 * cudaFreeAsync's stream order promises. */
static inline int natten_hip_has_pools(void)
{
    int dev = 0, yes = 0;
    if (hipGetDevice(&dev) != hipSuccess ||
        hipDeviceGetAttribute(&yes, hipDeviceAttributeMemoryPoolsSupported, dev) != hipSuccess) {
        (void)hipGetLastError();
        return 0;
    }
    return yes;
}
static inline hipError_t natten_hip_malloc_async(void **ptr, size_t bytes, hipStream_t s)
{
    return natten_hip_has_pools() ? hipMallocAsync(ptr, bytes, s) : hipMalloc(ptr, bytes);
}
static inline hipError_t natten_hip_free_async(void *ptr, hipStream_t s)
{
    return natten_hip_has_pools() ? hipFreeAsync(ptr, s) : hipFree(ptr);
}
#define cudaMallocAsync natten_hip_malloc_async
#define cudaFreeAsync natten_hip_free_async
/* cuda-common.cuh's own scratch pools need HIP's pool API in full: not used. */
#define CC_NO_POOLS 1

/* ---- bfloat16: HIP 5.2 has hip_bfloat16 only -------------------------------- */
typedef hip_bfloat16 __nv_bfloat16;
static __host__ __device__ __forceinline__ float __bfloat162float(hip_bfloat16 x)
{
    return (float)x;
}
static __host__ __device__ __forceinline__ hip_bfloat16 __float2bfloat16_rn(float x)
{
    return hip_bfloat16(x); /* round to nearest even; a NaN stays a NaN */
}
static __host__ __device__ __forceinline__ hip_bfloat16 __float2bfloat16(float x)
{
    return hip_bfloat16(x);
}

/* ---- warp shuffles: HIP 5.2 has no *_sync forms ------------------------------
 * A CUDA warp is 32 lanes; an AMD wavefront is 64 (CDNA) or 32 (RDNA).  With
 * the width defaulting to 32, a 64-lane wavefront shuffles as two CUDA warps.
 * The mask is dropped: a wavefront runs its active lanes in lockstep, and the
 * lanes a width-limited shuffle reads are those of the caller's own group,
 * which CUDA's mask names as active too. */
template <typename T>
static __device__ __forceinline__ T natten_shfl_xor_sync(unsigned, T v, int lane_mask, int width = 32)
{
    return __shfl_xor(v, lane_mask, width);
}
template <typename T>
static __device__ __forceinline__ T natten_shfl_sync(unsigned, T v, int src_lane, int width = 32)
{
    return __shfl(v, src_lane, width);
}
template <typename T>
static __device__ __forceinline__ T natten_shfl_down_sync(unsigned, T v, unsigned delta, int width = 32)
{
    return __shfl_down(v, delta, width);
}
template <typename T>
static __device__ __forceinline__ T natten_shfl_up_sync(unsigned, T v, unsigned delta, int width = 32)
{
    return __shfl_up(v, delta, width);
}
#define __shfl_xor_sync natten_shfl_xor_sync
#define __shfl_sync natten_shfl_sync
#define __shfl_down_sync natten_shfl_down_sync
#define __shfl_up_sync natten_shfl_up_sync

/* __syncwarp: lanes of a wavefront are in lockstep; what is left is ordering
 * their shared-memory accesses, which a wavefront-scope fence and barrier do. */
static __device__ __forceinline__ void natten_syncwarp(unsigned = 0xffffffffu)
{
    __builtin_amdgcn_fence(__ATOMIC_RELEASE, "wavefront");
    __builtin_amdgcn_wave_barrier();
    __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "wavefront");
}
#define __syncwarp natten_syncwarp

#endif /* NATTEN_VENDOR_HIP_H */
