/*
 * host-cost.cu (v14) - where the host time of one natten_fna_forward call goes
 * on the 1-D target (32768 tokens, window 2048, H 1, D 128, fp16, cuda-tc):
 * the host time of the whole call (clock_gettime around it, no sync inside),
 * the CUDA events around it as natten-bench takes them, and the host time of
 * the runtime calls a call makes or could make, each alone.  Medians of N
 * (default 200) after 20 warm-up calls.  Built by hand against a build
 * directory BUILD (libnatten in BUILD/.libs):
 *   nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib -I BUILD \
 *       backends/cuda_tc/standalone/host-cost.cu -L BUILD/.libs -lnatten -o host-cost
 * Run: LD_LIBRARY_PATH=<lib dir> ./host-cost [N]
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

static DLTensor tensor(void *data, int ndim, const int64_t *shape, DLDataType dt)
{
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.device.device_type = kDLCUDA;
    t.device.device_id = 0;
    t.ndim = ndim;
    t.dtype = dt;
    t.shape = const_cast<int64_t *>(shape);
    return t;
}

int main(int argc, char **argv)
{
    const int N = argc > 1 ? atoi(argv[1]) : 200;
    const int64_t L = 32768, H = 1, D = 128;
    static const int64_t shp[4] = {1, L, H, D}, lshp[3] = {1, L, H};
    void *q, *k, *v, *o, *lse;
    CK(cudaMalloc(&q, L * H * D * 2));
    CK(cudaMalloc(&k, L * H * D * 2));
    CK(cudaMalloc(&v, L * H * D * 2));
    CK(cudaMalloc(&o, L * H * D * 2));
    CK(cudaMalloc(&lse, L * H * 4));
    CK(cudaMemset(q, 0, L * H * D * 2));
    CK(cudaMemset(k, 0, L * H * D * 2));
    CK(cudaMemset(v, 0, L * H * D * 2));
    const DLDataType f16 = {kDLFloat, 16, 1}, f32 = {kDLFloat, 32, 1};
    DLTensor tq = tensor(q, 4, shp, f16), tk = tensor(k, 4, shp, f16), tv = tensor(v, 4, shp, f16),
             to = tensor(o, 4, shp, f16), tl = tensor(lse, 3, lshp, f32);
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    natten_context *ctx;
    natten_params p;
    const int ks[1] = {2048};
    if (natten_context_create(&ctx) || natten_params_init(&p, 1, ks) || natten_context_set_backend(ctx, "cuda-tc") ||
        natten_context_set_stream(ctx, s)) {
        printf("natten setup: %s\n", natten_last_error());
        return 1;
    }
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    std::vector<double> host, host_sync, ev;
    for (int i = 0; i < 20 + N; i++) {
        CK(cudaStreamSynchronize(s));
        CK(cudaEventRecord(e0, s));
        const double t0 = now_us();
        if (natten_fna_forward(ctx, &p, &tq, &tk, &tv, NULL, &to, &tl) != NATTEN_SUCCESS) {
            printf("natten_fna_forward: %s\n", natten_last_error());
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
    printf("natten_fna_forward, 1-D 32768 K 2048 H 1 D 128 fp16, cuda-tc (%d calls, medians):\n", N);
    printf("  host time of the call           %8.2f us\n", median(host));
    printf("  host time to the end of the GPU %8.2f us\n", median(host_sync));
    printf("  CUDA events around the call     %8.2f us\n", median(ev));
    /* back-to-back calls, as a loop of a user would issue them */
    {
        CK(cudaStreamSynchronize(s));
        CK(cudaEventRecord(e0, s));
        const double t0 = now_us();
        for (int i = 0; i < N; i++) natten_fna_forward(ctx, &p, &tq, &tk, &tv, NULL, &to, &tl);
        const double t1 = now_us();
        CK(cudaEventRecord(e1, s));
        CK(cudaEventSynchronize(e1));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        printf("  %d back-to-back calls: host %.2f us a call, GPU (events) %.2f us a call\n", N, (t1 - t0) / N,
               ms * 1e3 / N);
    }
    /* the runtime calls, each alone (host time, medians) */
    {
        std::vector<double> a[9];
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
            double t[10];
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
            (void)getenv("NATTEN_CUDA_TC_CONFIG");
            t[9] = now_us();
            if (i >= 20)
                for (int j = 0; j < 9; j++) a[j].push_back(t[j + 1] - t[j]);
        }
        static const char *name[9] = {"cudaGetDevice", "cudaMallocFromPoolAsync (11 MB)", "cudaFreeAsync",
                                      "kernel launch (249 x 512, empty)", "cudaGetLastError", "cudaStreamIsCapturing",
                                      "cudaStreamGetId", "cudaEventRecord", "getenv"};
        for (int j = 0; j < 9; j++) printf("  %-34s %8.3f us\n", name[j], median(a[j]));
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
    natten_context_destroy(ctx);
    return 0;
}
