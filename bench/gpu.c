/*
 * gpu.c - the CUDA runtime, loaded with dlopen so that natten-bench builds and
 * runs without the CUDA toolkit.  The library links its own (static) runtime;
 * both share the driver's primary context, so device pointers and streams
 * created here are valid there.  Timing uses CUDA events on a stream created
 * here and handed to the library with natten_context_set_stream().
 */
#include "bench.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int cuda_err; /* cudaError_t: 0 = success */

static struct {
    int tried, ok;
    char why[256];
    const char *name;
    void *lib;
    cuda_err (*GetDeviceCount)(int *);
    cuda_err (*SetDevice)(int);
    cuda_err (*Malloc)(void **, size_t);
    cuda_err (*Free)(void *);
    cuda_err (*Memcpy)(void *, const void *, size_t, int);
    cuda_err (*MemcpyAsync)(void *, const void *, size_t, int, void *);
    cuda_err (*RuntimeGetVersion)(int *);
    cuda_err (*DeviceSynchronize)(void);
    cuda_err (*StreamCreate)(void **);
    cuda_err (*StreamSynchronize)(void *);
    cuda_err (*EventCreate)(void **);
    cuda_err (*EventRecord)(void *, void *);
    cuda_err (*EventSynchronize)(void *);
    cuda_err (*EventElapsedTime)(float *, void *, void *);
    cuda_err (*MemGetInfo)(size_t *, size_t *);
    cuda_err (*GetDeviceProperties)(void *, int);
    const char *(*GetErrorString)(cuda_err);
} rt;

#define MAXDEV 16
static struct {
    void *stream, *ev0, *ev1;
    char name[257];
} devs[MAXDEV];

static char last_error[256];

const char *gpu_error(void) { return last_error; }

static int check(cuda_err e, const char *what)
{
    if (e == 0) return 1;
    snprintf(last_error, sizeof last_error, "%s: %s", what,
             rt.GetErrorString ? rt.GetErrorString(e) : "CUDA error");
    return 0;
}

static void *sym(const char *name)
{
    void *p = dlsym(rt.lib, name);
    if (p == NULL && rt.ok) {
        snprintf(rt.why, sizeof rt.why, "%s lacks %s", "libcudart", name);
        rt.ok = 0;
    }
    return p;
}

/* Object pointer to function pointer without type punning. */
#define LOAD(field, name)                                   \
    do {                                                    \
        void *p_ = sym(name);                               \
        memcpy(&rt.field, &p_, sizeof p_);                  \
    } while (0)
/* Optional symbols: the first name found, else NULL (no failure). */
#define LOAD_OPT(field, name1, name2)                       \
    do {                                                    \
        void *p_ = dlsym(rt.lib, name1);                    \
        if (p_ == NULL) p_ = dlsym(rt.lib, name2);          \
        memcpy(&rt.field, &p_, sizeof p_);                  \
    } while (0)

int gpu_load(char *why, size_t len)
{
    if (!rt.tried) {
        static const char *names[] = {
            NULL, /* $NATTEN_BENCH_CUDART */
            "libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0",
            "/usr/local/cuda/lib64/libcudart.so", "/usr/local/cuda/lib/libcudart.so",
        };
        char home[512];
        const char *env = getenv("CUDA_HOME");
        rt.tried = 1;
        names[0] = getenv("NATTEN_BENCH_CUDART");
        for (size_t i = 0; i < sizeof names / sizeof names[0] && rt.lib == NULL; i++)
            if (names[i] != NULL && (rt.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL)) != NULL)
                rt.name = names[i];
        if (rt.lib == NULL && env != NULL) {
            snprintf(home, sizeof home, "%s/lib64/libcudart.so", env);
            rt.lib = dlopen(home, RTLD_NOW | RTLD_LOCAL);
        }
        if (rt.lib == NULL) {
            snprintf(rt.why, sizeof rt.why,
                     "cannot load the CUDA runtime (libcudart.so; set NATTEN_BENCH_CUDART=path)");
        } else {
            rt.ok = 1;
            LOAD(GetDeviceCount, "cudaGetDeviceCount");
            LOAD(SetDevice, "cudaSetDevice");
            LOAD(Malloc, "cudaMalloc");
            LOAD(Free, "cudaFree");
            LOAD(Memcpy, "cudaMemcpy");
            LOAD(MemcpyAsync, "cudaMemcpyAsync");
            LOAD_OPT(RuntimeGetVersion, "cudaRuntimeGetVersion", "cudaRuntimeGetVersion");
            LOAD(DeviceSynchronize, "cudaDeviceSynchronize");
            LOAD(StreamCreate, "cudaStreamCreate");
            LOAD(StreamSynchronize, "cudaStreamSynchronize");
            LOAD(EventCreate, "cudaEventCreate");
            LOAD(EventRecord, "cudaEventRecord");
            LOAD(EventSynchronize, "cudaEventSynchronize");
            LOAD(EventElapsedTime, "cudaEventElapsedTime");
            LOAD(MemGetInfo, "cudaMemGetInfo");
            /* CUDA 12 headers map the name to _v2; either starts with char name[256] */
            LOAD_OPT(GetDeviceProperties, "cudaGetDeviceProperties_v2", "cudaGetDeviceProperties");
            LOAD(GetErrorString, "cudaGetErrorString");
            if (rt.ok) {
                int n = 0;
                if (rt.GetDeviceCount(&n) != 0 || n < 1) {
                    snprintf(rt.why, sizeof rt.why, "the CUDA runtime sees no device");
                    rt.ok = 0;
                }
            }
        }
    }
    if (!rt.ok && why != NULL) snprintf(why, len, "%s", rt.why);
    return rt.ok;
}

int gpu_device_count(void)
{
    int n = 0;
    if (!gpu_load(NULL, 0) || rt.GetDeviceCount(&n) != 0) return 0;
    return n;
}

static int use(int dev)
{
    if (!gpu_load(last_error, sizeof last_error)) return 0;
    if (dev < 0 || dev >= MAXDEV) {
        snprintf(last_error, sizeof last_error, "device %d out of range", dev);
        return 0;
    }
    if (!check(rt.SetDevice(dev), "cudaSetDevice")) return 0;
    if (devs[dev].stream == NULL) {
        if (!check(rt.StreamCreate(&devs[dev].stream), "cudaStreamCreate") ||
            !check(rt.EventCreate(&devs[dev].ev0), "cudaEventCreate") ||
            !check(rt.EventCreate(&devs[dev].ev1), "cudaEventCreate"))
            return 0;
    }
    return 1;
}

const char *gpu_device_name(int dev)
{
    /* cudaDeviceProp starts with char name[256] in every CUDA version; the rest
     * of the struct is version-dependent, hence the generous buffer. */
    static char prop[16384];
    if (!use(dev)) return "?";
    if (devs[dev].name[0] == '\0') {
        if (rt.GetDeviceProperties != NULL && rt.GetDeviceProperties(prop, dev) == 0) {
            memcpy(devs[dev].name, prop, 256);
            devs[dev].name[256] = '\0';
        } else {
            snprintf(devs[dev].name, sizeof devs[dev].name, "cuda:%d", dev);
        }
    }
    return devs[dev].name;
}

int gpu_malloc(int dev, void **p, size_t bytes)
{
    return use(dev) && check(rt.Malloc(p, bytes), "cudaMalloc");
}

void gpu_free(int dev, void *p)
{
    if (p != NULL && use(dev)) rt.Free(p);
}

int gpu_upload(int dev, void *dst, const void *src, size_t bytes)
{
    return use(dev) && check(rt.Memcpy(dst, src, bytes, 1 /* HostToDevice */), "cudaMemcpy");
}

int gpu_download(int dev, void *dst, const void *src, size_t bytes)
{
    return use(dev) && check(rt.DeviceSynchronize(), "cudaDeviceSynchronize") &&
           check(rt.Memcpy(dst, src, bytes, 2 /* DeviceToHost */), "cudaMemcpy");
}

void *gpu_stream(int dev)
{
    return use(dev) ? devs[dev].stream : NULL;
}

int gpu_sync(int dev)
{
    return use(dev) && check(rt.DeviceSynchronize(), "cudaDeviceSynchronize");
}

int gpu_time(int dev, int (*fn)(void *), void *arg, double *seconds)
{
    float ms = 0;
    int ok;
    if (!use(dev)) return 0;
    if (!check(rt.EventRecord(devs[dev].ev0, devs[dev].stream), "cudaEventRecord")) return 0;
    ok = fn(arg);
    if (!check(rt.EventRecord(devs[dev].ev1, devs[dev].stream), "cudaEventRecord") ||
        !check(rt.EventSynchronize(devs[dev].ev1), "cudaEventSynchronize") ||
        !check(rt.EventElapsedTime(&ms, devs[dev].ev0, devs[dev].ev1), "cudaEventElapsedTime"))
        return 0;
    *seconds = 1e-3 * ms;
    return ok ? 1 : -1;
}

long long gpu_mem_used(int dev)
{
    size_t free_b = 0, total = 0;
    if (!use(dev) || rt.MemGetInfo(&free_b, &total) != 0) return -1;
    return (long long)(total - free_b);
}

const char *gpu_runtime(void)
{
    static char buf[128];
    int v = 0;
    if (!gpu_load(NULL, 0)) return NULL;
    if (rt.RuntimeGetVersion != NULL) rt.RuntimeGetVersion(&v);
    snprintf(buf, sizeof buf, "%s (CUDA runtime %d.%d)", rt.name ? rt.name : "libcudart", v / 1000,
             (v % 1000) / 10);
    return buf;
}

/* Device-to-device copy bandwidth (bytes read + written per second), the
 * roofline that memory-bound ops are compared with. */
double gpu_copy_bandwidth(int dev)
{
    size_t bytes = (size_t)1 << 30, free_b = 0, total = 0;
    void *a = NULL, *b = NULL;
    double best = 0;
    /* 1 GiB each way, or a quarter of the free memory if that is less */
    if (use(dev) && rt.MemGetInfo(&free_b, &total) == 0 && free_b / 4 < bytes) bytes = free_b / 4;
    if (bytes < ((size_t)1 << 20)) bytes = (size_t)1 << 20;
    if (!gpu_malloc(dev, &a, bytes) || !gpu_malloc(dev, &b, bytes)) {
        bytes >>= 3;
        gpu_free(dev, a);
        a = b = NULL;
        if (!gpu_malloc(dev, &a, bytes) || !gpu_malloc(dev, &b, bytes)) goto out;
    }
    for (int i = 0; i < 12; i++) {
        float ms = 0;
        if (!check(rt.EventRecord(devs[dev].ev0, devs[dev].stream), "cudaEventRecord") ||
            !check(rt.MemcpyAsync(b, a, bytes, 3 /* DeviceToDevice */, devs[dev].stream), "cudaMemcpyAsync") ||
            !check(rt.EventRecord(devs[dev].ev1, devs[dev].stream), "cudaEventRecord") ||
            !check(rt.EventSynchronize(devs[dev].ev1), "cudaEventSynchronize") ||
            !check(rt.EventElapsedTime(&ms, devs[dev].ev0, devs[dev].ev1), "cudaEventElapsedTime"))
            break;
        if (i >= 2 && ms > 0 && 2.0 * (double)bytes / (1e-3 * ms) > best) best = 2.0 * (double)bytes / (1e-3 * ms);
    }
out:
    gpu_free(dev, a);
    gpu_free(dev, b);
    return best;
}
