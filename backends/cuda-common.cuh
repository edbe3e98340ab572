/*
 * cuda-common.cuh - the host-side pieces every CUDA backend needs in the same
 * form: a CUDA error as a status and message, running an op on the tensors'
 * device, stream-ordered scratch from a pool of the backend's own, scratch
 * memory and the event timer for the tuner, and the device's name for wisdom
 * files.  Header-only (static functions), included by each
 * backend's host file after its own headers, with CC_NAME defined to the
 * backend's name for messages ("cuda-tc", "cuda-tiled", "hip-tiled"); HIP
 * builds see the same CUDA names through backends/hip/vendor-hip.h.
 */
#ifndef NATTEN_CUDA_COMMON_CUH
#define NATTEN_CUDA_COMMON_CUH

#ifndef CC_NAME
#error "define CC_NAME (the backend's name) before including cuda-common.cuh"
#endif

/* A CUDA error as NATTEN_ERROR_OUT_OF_MEMORY or NATTEN_ERROR_DEVICE, with the
 * CUDA text in the message; clears a non-sticky error so the context stays
 * usable. */
static natten_status cc_error(cudaError_t e, const char *what)
{
    natten_status st = e == cudaErrorMemoryAllocation ? NATTEN_ERROR_OUT_OF_MEMORY : NATTEN_ERROR_DEVICE;
    (void)cudaGetLastError();
    return natten_error(st, CC_NAME ": %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

/* Make the tensors' device current; *prev gets the caller's, for cc_leave. */
static natten_status cc_enter(const natten_problem *p, int *prev)
{
    cudaError_t e;
    *prev = 0;
    if ((e = cudaGetDevice(prev)) != cudaSuccess) return cc_error(e, "cudaGetDevice");
    if (*prev != p->device.device_id && (e = cudaSetDevice(p->device.device_id)) != cudaSuccess)
        return cc_error(e, "cudaSetDevice");
    return NATTEN_SUCCESS;
}

/* Give the caller's thread its device back. */
static void cc_leave(const natten_problem *p, int prev)
{
    if (prev != p->device.device_id) (void)cudaSetDevice(prev);
}

/* fn on the tensors' device, then the caller's device again. */
static natten_status cc_on_device(natten_op_fn fn, const natten_problem *p, const natten_exec *x)
{
    int prev;
    natten_status st = cc_enter(p, &prev);
    if (st) return st;
    st = fn(p, x);
    cc_leave(p, prev);
    return st;
}

/* ---- stream-ordered scratch --------------------------------------------------
 * The backward passes take row scratch (the row sums of dO * O; in cuda-tiled
 * also the RPB gradient's per-pair values) on the caller's stream and give it
 * back on that stream after their kernels.  Taken from the device's default
 * memory pool, that memory returns to the driver at the next synchronisation
 * (the default pool keeps nothing: its release threshold is 0), and the next
 * call has the driver map it again: host time while the GPU may sit idle.  So
 * each backend keeps a pool of its own on each device, made by its probe (under
 * the registry's lock), that keeps up to CC_POOL_KEEP bytes mapped between
 * calls; what a call takes beyond that is released as before.  The pools live
 * as long as the process.  Devices without memory pools, and HIP builds
 * (CC_NO_POOLS, vendor-hip.h), take scratch with cudaMallocAsync. */
#define CC_POOL_KEEP ((unsigned long long)64 << 20)

#ifdef CC_NO_POOLS
typedef void *cc_pool;
static cc_pool cc_pool_create(int dev)
{
    (void)dev;
    return NULL;
}
#else
typedef cudaMemPool_t cc_pool;
/* A pool on device dev, or NULL (then the default pool serves). */
static cc_pool cc_pool_create(int dev)
{
    int yes = 0;
    cudaMemPool_t pool = NULL;
    cudaMemPoolProps pr;
    unsigned long long keep = CC_POOL_KEEP;
    if (cudaDeviceGetAttribute(&yes, cudaDevAttrMemoryPoolsSupported, dev) != cudaSuccess || !yes) {
        (void)cudaGetLastError();
        return NULL;
    }
    memset(&pr, 0, sizeof pr);
    pr.allocType = cudaMemAllocationTypePinned;
    pr.handleTypes = cudaMemHandleTypeNone;
    pr.location.type = cudaMemLocationTypeDevice;
    pr.location.id = dev;
    if (cudaMemPoolCreate(&pool, &pr) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    if (cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) != cudaSuccess) {
        (void)cudaGetLastError();
        (void)cudaMemPoolDestroy(pool);
        return NULL;
    }
    return pool;
}
#endif

/* bytes of scratch on stream s, from pool (NULL: the current device's default
 * pool); freed with cudaFreeAsync on a stream, like any stream-ordered memory. */
static cudaError_t cc_malloc_async(void **ptr, size_t bytes, cc_pool pool, cudaStream_t s)
{
#ifndef CC_NO_POOLS
    if (pool) return cudaMallocFromPoolAsync(ptr, bytes, pool, s);
#endif
    (void)pool;
    return cudaMallocAsync(ptr, bytes, s);
}

/* The tuner's scratch outputs (natten-impl.h): device memory, NULL if none. */
static void *cc_scratch_alloc(size_t bytes, const natten_exec *x)
{
    void *ptr = NULL;
    (void)x;
    if (cudaMalloc(&ptr, bytes ? bytes : 1) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    return ptr;
}

static void cc_scratch_free(void *ptr, const natten_exec *x)
{
    (void)x;
    if (ptr) (void)cudaFree(ptr);
}

static int cc_cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The tuner's timer: warm up once, then time reps runs of fn with events on
 * the exec's stream, on the tensors' device; median.  reps 0: one timed run,
 * no warm-up (the tuner's first look, natten-impl.h). */
static natten_status cc_time_op(natten_op_fn fn, const natten_problem *p, const natten_exec *x, int reps,
                                double *median_ms)
{
    cudaStream_t s = (cudaStream_t)x->stream;
    cudaEvent_t e0 = NULL, e1 = NULL;
    float *ms;
    natten_status st;
    cudaError_t e;
    int prev, warm = reps > 0;
    if (reps < 1) reps = 1;
    if ((st = cc_enter(p, &prev))) return st;
    if ((ms = (float *)natten_malloc(sizeof(float) * (size_t)reps)) == NULL) {
        cc_leave(p, prev);
        return natten_error(NATTEN_ERROR_OUT_OF_MEMORY, CC_NAME ": timer buffer");
    }
    if ((e = cudaEventCreate(&e0)) != cudaSuccess || (e = cudaEventCreate(&e1)) != cudaSuccess) {
        st = cc_error(e, "cudaEventCreate");
        goto out;
    }
    if (warm && (st = fn(p, x))) goto out;
    for (int i = 0; i < reps; i++) {
        if ((e = cudaEventRecord(e0, s)) != cudaSuccess) {
            st = cc_error(e, "cudaEventRecord");
            goto out;
        }
        if ((st = fn(p, x))) goto out;
        if ((e = cudaEventRecord(e1, s)) != cudaSuccess || (e = cudaEventSynchronize(e1)) != cudaSuccess ||
            (e = cudaEventElapsedTime(&ms[i], e0, e1)) != cudaSuccess) {
            st = cc_error(e, "timing events");
            goto out;
        }
    }
    qsort(ms, (size_t)reps, sizeof *ms, cc_cmp_float);
    *median_ms = reps % 2 ? ms[reps / 2] : 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]);
out:
    if (e0) (void)cudaEventDestroy(e0);
    if (e1) (void)cudaEventDestroy(e1);
    natten_free(ms);
    cc_leave(p, prev);
    return st;
}

/* For wisdom files: "NVIDIA H200" etc. */
static int cc_device_name(int device_id, char *buf, size_t len)
{
    cudaDeviceProp pr;
    if (cudaGetDeviceProperties(&pr, device_id) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    snprintf(buf, len, "%s", pr.name);
    return 1;
}

#endif
