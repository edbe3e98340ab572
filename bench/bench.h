/*
 * bench.h - natten-bench internals: problems, host/device tensors, timing,
 * the optional CUDA runtime (loaded with dlopen), the FMA peak probe, suites.
 * The bench uses only the public API <natten.h>.
 */
#ifndef NATTEN_BENCH_H
#define NATTEN_BENCH_H

#include <natten.h>
#include <stddef.h>
#include <stdint.h>

/* ---- element types ---- */
typedef struct bench_dtype {
    const char *name;
    DLDataType dl;
    size_t size;
    double tol_forward, tol_backward; /* max |x - ref| / max(1, max |ref|), as tests/ */
} bench_dtype;

const bench_dtype *bench_dtype_find(const char *name); /* "float32", "fp32", "f32", ... */
const bench_dtype *bench_dtype_f64(void);
const bench_dtype *bench_dtype_f32(void);
void bench_store(const bench_dtype *t, void *base, int64_t i, double v);
double bench_load(const bench_dtype *t, const void *base, int64_t i);

/* ---- problems ---- */
typedef enum { OP_QK, OP_AV, OP_FNA, OP_COUNT } bench_op;
typedef enum { DIR_FWD, DIR_BWD, DIR_FWDBWD, DIR_COUNT } bench_dir;

typedef struct bench_problem {
    char label[48];           /* suite label, "" on the command line */
    int rank;
    int64_t S[3];
    int K[3], dil[3], str[3], causal[3];
    int64_t B, H, Hkv, D, Dv;
    const bench_dtype *dtype;
    int rpb;
    int threads;              /* 0: the library's default */
    unsigned ops;             /* bit (1 << bench_op) */
    int backward;             /* also time the backward and forward+backward */
} bench_problem;

int64_t bench_tokens(const bench_problem *p);  /* prod S */
int64_t bench_window(const bench_problem *p);  /* prod K */
void bench_problem_describe(const bench_problem *p, char *buf, size_t len);
void bench_axes(const int64_t *v64, const int *v, int rank, char *buf, size_t len); /* "56x56" */

/* nominal FLOPs (2 per multiply-add, windows counted as prod K as NATTEN does) */
double bench_flops(const bench_problem *p, bench_op op, bench_dir dir);

/* ---- device memory ---- */
typedef struct bench_device {
    DLDeviceType type;
    int id;
} bench_device;

/* CUDA runtime, loaded on first use (libcudart.so*, or $NATTEN_BENCH_CUDART). */
int gpu_load(char *why, size_t len);        /* 1 = usable */
int gpu_device_count(void);
const char *gpu_device_name(int dev);
int gpu_malloc(int dev, void **p, size_t bytes);
void gpu_free(int dev, void *p);
int gpu_upload(int dev, void *dst, const void *src, size_t bytes);
int gpu_download(int dev, void *dst, const void *src, size_t bytes);
void *gpu_stream(int dev);                  /* a stream the bench created (for the library) */
int gpu_sync(int dev);
/* time one call of fn(arg) on the bench's stream with CUDA events, in seconds */
int gpu_time(int dev, int (*fn)(void *), void *arg, double *seconds);
long long gpu_mem_used(int dev);            /* bytes in use on the device, -1 if unknown */
const char *gpu_error(void);
const char *gpu_runtime(void);              /* "libcudart.so.13 (CUDA runtime 13.0)" or NULL */
double gpu_copy_bandwidth(int dev);         /* device-to-device copy, bytes/s (read + write) */

/* ---- tensors (compact, heads-last) ---- */
typedef struct bench_tensor {
    DLTensor t;
    int64_t shape[6];
    int64_t numel;
    size_t bytes;
    const bench_dtype *dtype;
    void *host;              /* host image: base + the --misalign offset */
    void *base;              /* its allocation (256-byte aligned) */
    void *dev;               /* == host on CPU */
    bench_device where;
} bench_tensor;

extern size_t bench_misalign;              /* --misalign: host tensors this many bytes past 256 */
bench_tensor *bt_new(int ndim, const int64_t *shape, const bench_dtype *dt, bench_device where);
void bt_free(bench_tensor *x);
int bt_upload(bench_tensor *x);
int bt_download(bench_tensor *x);
void bt_poison(bench_tensor *x);                    /* host image: NaN bytes (0xff) */
void bt_fill(bench_tensor *x, uint64_t *rng, double lo, double hi);
void bt_copy_values(bench_tensor *dst, const bench_tensor *src); /* host images, any dtypes */

typedef struct bench_err {
    double max_abs, norm;
    int64_t bad;             /* NaN where the reference is finite, or inf mismatch */
} bench_err;
void bt_compare(const bench_tensor *x, const bench_tensor *ref, bench_err *e); /* accumulates */

/* ---- timing ---- */
double bench_now(void);     /* CLOCK_MONOTONIC seconds */

/* ---- the CPU's FMA peak ---- */
double bench_peak_gflops(int threads, double seconds); /* fp32, all threads together */
const char *bench_peak_isa(void);
int bench_cpu_count(void);
void bench_cpu_model(char *buf, size_t len);

/* ---- peak resident memory (CPU scratch) ---- */
int bench_rss_reset(void);                 /* 1 if the high-water mark could be reset */
long long bench_rss_kib(const char *field); /* "VmRSS:", "VmHWM:" from /proc/self/status */

/* ---- suites ---- */
/* Fill out[] (up to max) with a suite's problems; returns the count or -1 if unknown. */
int bench_suite(const char *name, int quick, bench_problem *out, int max);
const char *bench_suite_names(void);

/* ---- rng ---- */
double bench_uniform(uint64_t *rng); /* [0, 1) */

#endif
