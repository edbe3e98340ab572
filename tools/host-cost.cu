/*
 * host-cost.cu - where the time of one natten call goes on the problems that
 * are timed in microseconds: the host time of the whole call (clock_gettime
 * around it, no sync inside), the CUDA events around it as natten-bench takes
 * them (the stream idle before the call, so the host time before the first
 * launch counts), the GPU time a call takes when calls run back to back (host
 * time hidden behind the previous call), and the host time of the runtime
 * calls a call makes or could make, each alone.  Medians of N after 20
 * warm-up calls.  (Session 10 wrote it for the 1-D and 56x56 forwards, cuda-tc
 * had its own copy since v14; session 12 merged them here, with the problem on
 * the command line.)  Not built by make; from a build directory BUILD:
 *   nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I SRC/lib -I BUILD \
 *       SRC/tools/host-cost.cu -L BUILD/.libs -lnatten -o host-cost
 * Run: LD_LIBRARY_PATH=BUILD/.libs ./host-cost PROBLEM [N] [BACKEND]
 *   PROBLEM: 1d   natten_fna_forward, 1-D 32768, K 2048, H 1, D 128, fp16 (cuda-tc);
 *                 1d:N:K the same with extent N and window K (session 13: a
 *                 block's fixed cost against its per-tile cost, from the
 *                 back-to-back times of grids of whole rounds)
 *            56   natten_fna_forward, 2-D 56x56, K 7, B 16, H 2, D 32, fp16 (cuda-tc)
 *            56b  natten_fna_backward on the same problem (cuda-tc)
 *            qk   natten_qk_forward, 2-D 56x56, K 7, B 64, H 4, D 32, fp16 (cuda-tiled)
 *            av   natten_av_forward on the same problem (cuda-tiled)
 *            runtime  only the runtime calls and an empty launch
 *            tiny natten_qk_forward on a 1-D problem of 2 tokens, K 2, on the
 *                 CPU (naive): the library's own host time a call, no GPU
 *                 needed (N calls, mean; default 300000)
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <algorithm>
#include <vector>
#include "natten.h"

static double now_us()
{
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}
static double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}
__global__ void empty_kernel(int *x)
{
    if (x) *x = 0;
}
#define CK(x)                                                                                                          \
    do {                                                                                                               \
        cudaError_t e_ = (x);                                                                                          \
        if (e_ != cudaSuccess) {                                                                                       \
            printf("%s: %s\n", #x, cudaGetErrorString(e_));                                                            \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

/* A device tensor of the given shape, contiguous, zero-filled. */
struct dt {
    DLTensor t;
    int64_t shape[6];
};
static void make(dt *x, int ndim, const int64_t *shape, int bits)
{
    size_t n = 1;
    void *p;
    memset(x, 0, sizeof *x);
    for (int i = 0; i < ndim; i++) x->shape[i] = shape[i], n *= (size_t)shape[i];
    CK(cudaMalloc(&p, n * bits / 8));
    CK(cudaMemset(p, 0, n * bits / 8));
    x->t.data = p;
    x->t.device.device_type = kDLCUDA;
    x->t.device.device_id = 0;
    x->t.ndim = ndim;
    x->t.dtype.code = kDLFloat;
    x->t.dtype.bits = (uint8_t)bits;
    x->t.dtype.lanes = 1;
    x->t.shape = x->shape;
}

struct problem {
    natten_context *ctx;
    natten_params p;
    int kind; /* 0 fna fwd, 1 fna bwd, 2 qk, 3 av */
    dt q, k, v, o, lse, a, dq, dk, dv, dout;
};

static natten_status call(problem *P)
{
    switch (P->kind) {
    case 0: return natten_fna_forward(P->ctx, &P->p, &P->q.t, &P->k.t, &P->v.t, NULL, &P->o.t, &P->lse.t);
    case 1:
        return natten_fna_backward(P->ctx, &P->p, &P->q.t, &P->k.t, &P->v.t, NULL, &P->o.t, &P->lse.t, &P->dout.t,
                                   &P->dq.t, &P->dk.t, &P->dv.t, NULL);
    case 2: return natten_qk_forward(P->ctx, &P->p, &P->q.t, &P->k.t, NULL, &P->a.t);
    default: return natten_av_forward(P->ctx, &P->p, &P->a.t, &P->v.t, &P->o.t);
    }
}

static const char *volatile sink; /* keeps the timed getenv */

/* The library's host time a call with nothing to launch: a tiny naive QK. */
static int tiny(int n)
{
    static float q[2], k[2], a[4];
    int64_t sq[4] = {1, 2, 1, 1}, sa[4] = {1, 2, 1, 2};
    const int ks[1] = {2};
    DLTensor tq, tk, ta;
    natten_context *ctx;
    natten_params p;
    memset(&tq, 0, sizeof tq);
    tq.device.device_type = kDLCPU;
    tq.ndim = 4;
    tq.dtype.code = kDLFloat;
    tq.dtype.bits = 32;
    tq.dtype.lanes = 1;
    tk = ta = tq;
    tq.data = q, tq.shape = sq;
    tk.data = k, tk.shape = sq;
    ta.data = a, ta.shape = sa;
    if (natten_context_create(&ctx) || natten_params_init(&p, 1, ks) || natten_context_set_backend(ctx, "naive") ||
        natten_qk_forward(ctx, &p, &tq, &tk, NULL, &ta)) {
        printf("tiny: %s\n", natten_last_error());
        return 1;
    }
    const double t0 = now_us();
    for (int i = 0; i < n; i++) natten_qk_forward(ctx, &p, &tq, &tk, NULL, &ta);
    printf("tiny naive natten_qk_forward: %.3f us a call (mean of %d)\n", (now_us() - t0) / n, n);
    natten_context_destroy(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "tiny") == 0) return tiny(argc > 2 ? atoi(argv[2]) : 300000);
    const char *which = argc > 1 ? argv[1] : "1d";
    const int N = argc > 2 ? atoi(argv[2]) : 200;
    const char *backend = argc > 3 ? argv[3] : NULL;
    problem P;
    memset(&P, 0, sizeof P);
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    if (strcmp(which, "runtime") != 0) {
        int rank, ks[3];
        int64_t sh[6], lsh[5], ash[6];
        int nd;
        if (strncmp(which, "1d", 2) == 0 && (which[2] == 0 || which[2] == ':')) {
            long n1 = 32768, k1 = 2048;
            if (which[2] == ':' && (sscanf(which + 3, "%ld:%ld", &n1, &k1) != 2 || n1 < 1 || k1 < 1 || k1 > n1)) {
                printf("1d:N:K wants an extent N and a window K <= N\n");
                return 2;
            }
            rank = 1, ks[0] = (int)k1, P.kind = 0;
            const int64_t a[] = {1, n1, 1, 128};
            memcpy(sh, a, sizeof a);
            nd = 4;
        } else if (strcmp(which, "56") == 0 || strcmp(which, "56b") == 0) {
            rank = 2, ks[0] = ks[1] = 7, P.kind = which[2] == 'b';
            const int64_t a[] = {16, 56, 56, 2, 32};
            memcpy(sh, a, sizeof a);
            nd = 5;
        } else if (strcmp(which, "qk") == 0 || strcmp(which, "av") == 0) {
            rank = 2, ks[0] = ks[1] = 7, P.kind = which[0] == 'q' ? 2 : 3;
            const int64_t a[] = {64, 56, 56, 4, 32};
            memcpy(sh, a, sizeof a);
            nd = 5;
        } else {
            printf("unknown problem '%s' (1d[:N:K], 56, 56b, qk, av, runtime, tiny)\n", which);
            return 2;
        }
        memcpy(lsh, sh, sizeof(int64_t) * (nd - 1));
        memcpy(ash, sh, sizeof(int64_t) * (nd - 1));
        ash[nd - 1] = rank == 1 ? ks[0] : (int64_t)ks[0] * ks[1];
        make(&P.q, nd, sh, 16), make(&P.k, nd, sh, 16), make(&P.v, nd, sh, 16), make(&P.o, nd, sh, 16);
        if (P.kind <= 1) make(&P.lse, nd - 1, lsh, 32);
        if (P.kind >= 2) make(&P.a, nd, ash, 16);
        if (P.kind == 1) make(&P.dq, nd, sh, 16), make(&P.dk, nd, sh, 16), make(&P.dv, nd, sh, 16),
                         make(&P.dout, nd, sh, 16);
        if (!backend) backend = P.kind >= 2 ? "cuda-tiled" : "cuda-tc";
        if (natten_context_create(&P.ctx) || natten_params_init(&P.p, rank, ks) ||
            natten_context_set_backend(P.ctx, backend) || natten_context_set_stream(P.ctx, s)) {
            printf("natten setup: %s\n", natten_last_error());
            return 1;
        }
        if (P.kind == 1 && natten_fna_forward(P.ctx, &P.p, &P.q.t, &P.k.t, &P.v.t, NULL, &P.o.t, &P.lse.t)) {
            printf("natten_fna_forward: %s\n", natten_last_error());
            return 1;
        }
        std::vector<double> host, host_sync, ev;
        for (int i = 0; i < 20 + N; i++) {
            CK(cudaStreamSynchronize(s));
            CK(cudaEventRecord(e0, s));
            const double t0 = now_us();
            if (call(&P) != NATTEN_SUCCESS) {
                printf("%s: %s\n", which, natten_last_error());
                return 1;
            }
            const double t1 = now_us();
            CK(cudaEventRecord(e1, s));
            CK(cudaEventSynchronize(e1));
            const double t2 = now_us();
            float ms = 0;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            if (i >= 20) host.push_back(t1 - t0), host_sync.push_back(t2 - t0), ev.push_back(ms * 1e3);
        }
        printf("%s on %s (%d calls, medians):\n", which, natten_context_last_backend(P.ctx), N);
        printf("  host time of the call           %8.2f us\n", median(host));
        printf("  host time to the end of the GPU %8.2f us\n", median(host_sync));
        printf("  CUDA events around the call     %8.2f us\n", median(ev));
        /* back-to-back calls, as a loop of a user would issue them (at most
         * 500: more would fill the launch queue and make the host wait) */
        const int nb = N < 500 ? N : 500;
        CK(cudaStreamSynchronize(s));
        CK(cudaEventRecord(e0, s));
        const double t0 = now_us();
        for (int i = 0; i < nb; i++) call(&P);
        const double t1 = now_us();
        CK(cudaEventRecord(e1, s));
        CK(cudaEventSynchronize(e1));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        printf("  %d back-to-back calls: host %.2f us a call, GPU (events) %.2f us a call\n", nb, (t1 - t0) / nb,
               ms * 1e3 / nb);
        natten_context_destroy(P.ctx);
        return 0;
    }
    /* the runtime calls, each alone (host time, medians) */
    {
        std::vector<double> a[10];
        cudaMemPool_t pool;
        cudaMemPoolProps pr;
        memset(&pr, 0, sizeof pr);
        pr.allocType = cudaMemAllocationTypePinned;
        pr.location.type = cudaMemLocationTypeDevice;
        pr.location.id = 0;
        CK(cudaMemPoolCreate(&pool, &pr));
        unsigned long long keep = 64ull << 20;
        CK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
        cudaEvent_t ev2;
        CK(cudaEventCreateWithFlags(&ev2, cudaEventDisableTiming));
        for (int i = 0; i < 20 + N; i++) {
            CK(cudaStreamSynchronize(s));
            double t[11];
            int dev;
            void *b;
            unsigned long long id;
            cudaStreamCaptureStatus cs;
            t[0] = now_us();
            CK(cudaGetDevice(&dev));
            t[1] = now_us();
            CK(cudaMallocFromPoolAsync(&b, 11u << 20, pool, s));
            t[2] = now_us();
            CK(cudaFreeAsync(b, s));
            t[3] = now_us();
            empty_kernel<<<249, 512, 0, s>>>(NULL);
            t[4] = now_us();
            CK(cudaGetLastError());
            t[5] = now_us();
            CK(cudaStreamIsCapturing(s, &cs));
            t[6] = now_us();
            CK(cudaStreamGetId(s, &id));
            t[7] = now_us();
            CK(cudaEventRecord(ev2, s));
            t[8] = now_us();
            sink = getenv("NATTEN_CUDA_TC_CONFIG");
            t[9] = now_us();
            CK(cudaFuncSetAttribute((const void *)empty_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    100 * 1024));
            t[10] = now_us();
            if (i >= 20)
                for (int j = 0; j < 10; j++) a[j].push_back(t[j + 1] - t[j]);
        }
        static const char *name[10] = {"cudaGetDevice", "cudaMallocFromPoolAsync (11 MB)", "cudaFreeAsync",
                                       "kernel launch (249 x 512, empty)", "cudaGetLastError",
                                       "cudaStreamIsCapturing", "cudaStreamGetId", "cudaEventRecord", "getenv",
                                       "cudaFuncSetAttribute (smem)"};
        for (int j = 0; j < 10; j++) printf("  %-34s %8.3f us\n", name[j], median(a[j]));
    }
    /* the GPU time of an empty launch after a host gap, as events see it */
    {
        std::vector<double> g;
        for (int i = 0; i < 20 + N; i++) {
            CK(cudaStreamSynchronize(s));
            CK(cudaEventRecord(e0, s));
            empty_kernel<<<249, 512, 0, s>>>(NULL);
            CK(cudaEventRecord(e1, s));
            CK(cudaEventSynchronize(e1));
            float ms = 0;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            if (i >= 20) g.push_back(ms * 1e3);
        }
        printf("  events around one empty launch    %8.2f us\n", median(g));
    }
    return 0;
}
