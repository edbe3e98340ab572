/*
 * cuda-tiled-bench - times the cuda-tiled backend on the problems with
 * CUDA events (median of N runs after warm-up) through the public API, and a
 * device-to-device copy for the bandwidth roofline.  Tensors are compact
 * [B, X0, X1, H, D] (heads last), filled with uniform random values.
 *
 *   bench/cuda-tiled-bench [reps [unfused]]   (default 50 reps; "unfused": those only)
 *
 * Build: make bench/cuda-tiled-bench (only in CUDA builds).
 */
#include <natten.h>

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(x)                                                                                 \
    do {                                                                                      \
        cudaError_t e_ = (x);                                                                 \
        if (e_ != cudaSuccess) {                                                              \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

#define NK(x)                                                                                 \
    do {                                                                                      \
        natten_status s_ = (x);                                                               \
        if (s_ != NATTEN_SUCCESS) {                                                           \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, natten_status_string(s_),    \
                    natten_last_error());                                                     \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

static int reps = 50;

typedef struct {
    DLTensor t;
    int64_t shape[6];
    size_t bytes;
} tensor;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static uint16_t f2h(float f) /* round-to-nearest float -> half, normal range only */
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xff, m = x & 0x7fffffu;
    if (e < 103) return (uint16_t)sign;
    if (e < 113) return (uint16_t)(sign | ((m | 0x800000u) >> (126 - e)));
    return (uint16_t)(sign | ((e - 112) << 10) | ((m + 0x1000u) >> 13));
}

/* a compact device tensor, filled in place (t.shape points into *x) */
static void make(tensor *x, int ndim, const int64_t *shape, int bits, int fill)
{
    size_t n = 1;
    memset(x, 0, sizeof *x);
    for (int i = 0; i < ndim; i++) { x->shape[i] = shape[i]; n *= (size_t)shape[i]; }
    x->bytes = n * (size_t)bits / 8;
    x->t.ndim = ndim;
    x->t.shape = x->shape;
    x->t.dtype.code = kDLFloat;
    x->t.dtype.bits = (uint8_t)bits;
    x->t.dtype.lanes = 1;
    x->t.device.device_type = kDLCUDA;
    CK(cudaMalloc(&x->t.data, x->bytes ? x->bytes : 1));
    if (fill) {
        char *h = malloc(x->bytes);
        for (size_t i = 0; i < n; i++) {
            float v = urand();
            if (bits == 16) ((uint16_t *)h)[i] = f2h(v);
            else ((float *)h)[i] = v;
        }
        CK(cudaMemcpy(x->t.data, h, x->bytes, cudaMemcpyHostToDevice));
        free(h);
    } else {
        CK(cudaMemset(x->t.data, 0, x->bytes));
    }
}

static void drop(tensor *x) { CK(cudaFree(x->t.data)); }

static int cmpf(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

typedef void (*op_fn)(void *arg);

/* median ms of reps runs of fn, after 3 warm-ups */
static double timeit(op_fn fn, void *arg)
{
    cudaEvent_t a, b;
    float *ms = malloc(sizeof(float) * (size_t)reps), med;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) fn(arg);
    CK(cudaDeviceSynchronize());
    for (int i = 0; i < reps; i++) {
        CK(cudaEventRecord(a, 0));
        fn(arg);
        CK(cudaEventRecord(b, 0));
        CK(cudaEventSynchronize(b));
        CK(cudaEventElapsedTime(&ms[i], a, b));
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmpf);
    med = ms[reps / 2];
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
    free(ms);
    return med;
}

/* ---- the problems ---- */

typedef struct {
    natten_context *ctx;
    natten_params p;
    tensor q, k, v, attn, rpb, out, lse, dout, dq, dk, dv;
    int use_rpb;
    void *src, *dst;
    size_t copy_bytes;
} prob;

static void run_copy(void *arg)
{
    prob *P = arg;
    CK(cudaMemcpyAsync(P->dst, P->src, P->copy_bytes, cudaMemcpyDeviceToDevice, 0));
}
static void run_qk(void *arg)
{
    prob *P = arg;
    NK(natten_qk_forward(P->ctx, &P->p, &P->q.t, &P->k.t, P->use_rpb ? &P->rpb.t : NULL, &P->attn.t));
}
static void run_av(void *arg)
{
    prob *P = arg;
    NK(natten_av_forward(P->ctx, &P->p, &P->attn.t, &P->v.t, &P->out.t));
}
static void run_fwd(void *arg)
{
    prob *P = arg;
    NK(natten_fna_forward(P->ctx, &P->p, &P->q.t, &P->k.t, &P->v.t, NULL, &P->out.t, &P->lse.t));
}
static void run_bwd(void *arg)
{
    prob *P = arg;
    NK(natten_fna_backward(P->ctx, &P->p, &P->q.t, &P->k.t, &P->v.t, NULL, &P->out.t, &P->lse.t, &P->dout.t,
                           &P->dq.t, &P->dk.t, &P->dv.t, NULL));
}
static void run_fwd_bwd(void *arg)
{
    run_fwd(arg);
    run_bwd(arg);
}

static double copy_gbs(void)
{
    prob P;
    double ms;
    memset(&P, 0, sizeof P);
    P.copy_bytes = (size_t)1 << 30;
    CK(cudaMalloc(&P.src, P.copy_bytes));
    CK(cudaMalloc(&P.dst, P.copy_bytes));
    CK(cudaMemset(P.src, 1, P.copy_bytes));
    ms = timeit(run_copy, &P);
    CK(cudaFree(P.src));
    CK(cudaFree(P.dst));
    return 2.0 * (double)P.copy_bytes / (ms * 1e-3) / 1e9;
}

static void unfused(natten_context *ctx, double copy)
{
    int64_t B = 64, X = 56, H = 4, D = 32, Kk = 7, W = Kk * Kk;
    int64_t ts[5] = {B, X, X, H, D}, as[5] = {B, X, X, H, W}, rs[3] = {H, 2 * Kk - 1, 2 * Kk - 1};
    int K2[2] = {7, 7};
    prob P;
    double ms, bytes;
    memset(&P, 0, sizeof P);
    P.ctx = ctx;
    NK(natten_params_init(&P.p, 2, K2));
    make(&P.q, 5, ts, 16, 1);
    make(&P.k, 5, ts, 16, 1);
    make(&P.v, 5, ts, 16, 1);
    make(&P.out, 5, ts, 16, 0);
    make(&P.attn, 5, as, 16, 0);
    make(&P.rpb, 3, rs, 16, 1);
    bytes = (double)(P.q.bytes + P.k.bytes + P.attn.bytes);
    ms = timeit(run_qk, &P);
    printf("qk_forward fp16 2-D 56x56 K7 H4 D32 B64         %8.4f ms  %7.1f GB/s  %5.1f%% of copy\n", ms,
           bytes / (ms * 1e-3) / 1e9, 100.0 * bytes / (ms * 1e-3) / 1e9 / copy);
    P.use_rpb = 1;
    bytes += (double)P.rpb.bytes;
    ms = timeit(run_qk, &P);
    printf("qk_forward+rpb fp16 2-D 56x56 K7 H4 D32 B64     %8.4f ms  %7.1f GB/s  %5.1f%% of copy\n", ms,
           bytes / (ms * 1e-3) / 1e9, 100.0 * bytes / (ms * 1e-3) / 1e9 / copy);
    bytes = (double)(P.attn.bytes + P.v.bytes + P.out.bytes);
    ms = timeit(run_av, &P);
    printf("av_forward fp16 2-D 56x56 K7 H4 D32 B64         %8.4f ms  %7.1f GB/s  %5.1f%% of copy\n", ms,
           bytes / (ms * 1e-3) / 1e9, 100.0 * bytes / (ms * 1e-3) / 1e9 / copy);
    drop(&P.q); drop(&P.k); drop(&P.v); drop(&P.out); drop(&P.attn); drop(&P.rpb);
}

static void fused(natten_context *ctx, int64_t B, int64_t X, int64_t H, int64_t D, int Kk, int bwd,
                  const char *label, int nreps)
{
    int saved = reps;
    reps = nreps;
    int64_t ts[5] = {B, X, X, H, D}, ls[4] = {B, X, X, H};
    int K2[2] = {Kk, Kk};
    prob P;
    double ms;
    memset(&P, 0, sizeof P);
    P.ctx = ctx;
    NK(natten_params_init(&P.p, 2, K2));
    make(&P.q, 5, ts, 32, 1);
    make(&P.k, 5, ts, 32, 1);
    make(&P.v, 5, ts, 32, 1);
    make(&P.out, 5, ts, 32, 0);
    make(&P.lse, 4, ls, 32, 0);
    ms = timeit(run_fwd, &P);
    printf("fna_forward fp32 %-32s %8.4f ms\n", label, ms);
    if (bwd) {
        make(&P.dout, 5, ts, 32, 1);
        make(&P.dq, 5, ts, 32, 0);
        make(&P.dk, 5, ts, 32, 0);
        make(&P.dv, 5, ts, 32, 0);
        ms = timeit(run_bwd, &P);
        printf("fna_backward fp32 %-31s %8.4f ms\n", label, ms);
        ms = timeit(run_fwd_bwd, &P);
        printf("fna_forward+backward fp32 %-23s %8.4f ms\n", label, ms);
        drop(&P.dout); drop(&P.dq); drop(&P.dk); drop(&P.dv);
    }
    drop(&P.q); drop(&P.k); drop(&P.v); drop(&P.out); drop(&P.lse);
    reps = saved;
}

int main(int argc, char **argv)
{
    natten_context *ctx;
    struct cudaDeviceProp pr;
    double copy;
    if (argc > 1) reps = atoi(argv[1]) > 0 ? atoi(argv[1]) : reps;
    CK(cudaGetDeviceProperties(&pr, 0));
    NK(natten_context_create(&ctx));
    NK(natten_context_set_backend(ctx, "cuda-tiled"));
    printf("%s; device 0: %s (sm_%d%d); median of %d runs (CUDA events)\n", natten_version_string(), pr.name,
           pr.major, pr.minor, reps);
    copy = copy_gbs();
    printf("device-to-device copy, 1 GiB                     %7.1f GB/s (read + write)\n", copy);
    unfused(ctx, copy);
    fflush(stdout);
    if (argc > 2 && strcmp(argv[2], "unfused") == 0) {
        natten_context_destroy(ctx);
        return 0;
    }
    fused(ctx, 16, 56, 2, 32, 7, 1, "2-D 56x56 K7 H2 D32 B16", reps);
    fflush(stdout);
    fused(ctx, 1, 256, 24, 128, 80, 0, "2-D 256x256 K80 H24 D128 B1", 20);
    natten_context_destroy(ctx);
    return 0;
}
