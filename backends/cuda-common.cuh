/*
 * cuda-common.cuh - the host-side pieces every CUDA backend needs in the same
 * form: a CUDA error as a status and message, running an op on the tensors'
 * device, scratch memory and the event timer for the tuner, and the device's
 * name for wisdom files.  Header-only (static functions), included by each
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
