/*
 * host-cost.cu - what one natten_fna_forward call costs on the host and
 * between two CUDA events, next to an empty kernel's launch: for the 1-D
 * issue-9 problem (32768, window 2048, H 1, D 128) and the 2-D 56x56 K 7
 * B 16 H 2 D 32 one, fp16, under each backend named on the command line
 * ("cuda-tc", "cuda-tc/18", "auto", ...).  Not built by make; on the GPU host,
 * from a build directory:
 *
 *   nvcc -O2 -I SRC/lib -o host-cost SRC/tools/host-cost.cu -L .libs -lnatten
 *   LD_LIBRARY_PATH=.libs ./host-cost cuda-tc cuda-tc/18 auto
 *
 * "back to back": 300 calls without a sync (host time a call, and host + GPU
 * until the sync a call); "single call": 50 calls each between two events on
 * the stream, as natten-bench times them (medians).
 */
#include <natten.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <algorithm>
#include <vector>

__global__ void empty_kernel(int *p) { if (p) *p = 0; }

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

struct prob {
    const char *name;
    int rank, B, H, D;
    int64_t S[3];
    int K[3];
};

static void mk(DLTensor *t, void *data, int ndim, int64_t *shape, DLDataType dt)
{
    memset(t, 0, sizeof *t);
    t->data = data;
    t->device.device_type = kDLCUDA;
    t->device.device_id = 0;
    t->ndim = ndim;
    t->dtype = dt;
    t->shape = shape;
}

static double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int main(int argc, char **argv)
{
    prob P[] = {{"1-D 32768 K 2048 H 1 D 128", 1, 1, 1, 128, {32768, 1, 1}, {2048, 1, 1}},
                {"2-D 56x56 K 7 B 16 H 2 D 32", 2, 16, 2, 32, {56, 56, 1}, {7, 7, 1}}};
    cudaStream_t s;
    cudaStreamCreate(&s);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    /* the empty kernel */
    {
        for (int i = 0; i < 100; i++) empty_kernel<<<1, 32, 0, s>>>(NULL);
        cudaStreamSynchronize(s);
        const int N = 2000;
        double t0 = now();
        for (int i = 0; i < N; i++) empty_kernel<<<1, 32, 0, s>>>(NULL);
        double t1 = now();
        cudaStreamSynchronize(s);
        std::vector<double> ev;
        for (int i = 0; i < 50; i++) {
            float ms;
            cudaEventRecord(e0, s);
            empty_kernel<<<1, 32, 0, s>>>(NULL);
            cudaEventRecord(e1, s);
            cudaEventSynchronize(e1);
            cudaEventElapsedTime(&ms, e0, e1);
            ev.push_back(1e3 * ms);
        }
        printf("empty kernel: host %.2f us/launch; one launch between events: median %.2f us\n", 1e6 * (t1 - t0) / N,
               median(ev));
    }
    for (int pi = 0; pi < 2; pi++) {
        prob &p = P[pi];
        int64_t sh[6], lsh[5];
        int nd = 0;
        sh[nd++] = p.B;
        for (int a = 0; a < p.rank; a++) sh[nd++] = p.S[a];
        sh[nd++] = p.H;
        sh[nd++] = p.D;
        for (int a = 0; a < nd - 1; a++) lsh[a] = sh[a];
        size_t n = 1;
        for (int a = 0; a < nd; a++) n *= (size_t)sh[a];
        void *q, *k, *v, *o, *l;
        cudaMalloc(&q, 2 * n);
        cudaMalloc(&k, 2 * n);
        cudaMalloc(&v, 2 * n);
        cudaMalloc(&o, 2 * n);
        cudaMalloc(&l, 4 * n / p.D);
        cudaMemset(q, 0, 2 * n);
        cudaMemset(k, 0, 2 * n);
        cudaMemset(v, 0, 2 * n);
        DLDataType h = {kDLFloat, 16, 1}, f = {kDLFloat, 32, 1};
        DLTensor tq, tk, tv, to, tl;
        mk(&tq, q, nd, sh, h);
        mk(&tk, k, nd, sh, h);
        mk(&tv, v, nd, sh, h);
        mk(&to, o, nd, sh, h);
        mk(&tl, l, nd - 1, lsh, f);
        natten_params pr;
        natten_params_init(&pr, p.rank, p.K);
        for (int bi = 1; bi < argc; bi++) {
            natten_context *ctx;
            natten_context_create(&ctx);
            natten_context_set_stream(ctx, s);
            if (natten_context_set_backend(ctx, argv[bi]) != NATTEN_SUCCESS) {
                printf("%s: %s\n", argv[bi], natten_last_error());
                continue;
            }
            natten_status st = NATTEN_SUCCESS;
            for (int i = 0; i < 20 && !st; i++) st = natten_fna_forward(ctx, &pr, &tq, &tk, &tv, NULL, &to, &tl);
            cudaStreamSynchronize(s);
            if (st) {
                printf("%s %s: %s\n", p.name, argv[bi], natten_last_error());
                continue;
            }
            const int N = 300;
            double t0 = now();
            for (int i = 0; i < N; i++) natten_fna_forward(ctx, &pr, &tq, &tk, &tv, NULL, &to, &tl);
            double t1 = now();
            cudaStreamSynchronize(s);
            double t2 = now();
            std::vector<double> ev, hs;
            for (int i = 0; i < 50; i++) {
                float ms;
                cudaEventRecord(e0, s);
                double a = now();
                natten_fna_forward(ctx, &pr, &tq, &tk, &tv, NULL, &to, &tl);
                double b = now();
                cudaEventRecord(e1, s);
                cudaEventSynchronize(e1);
                cudaEventElapsedTime(&ms, e0, e1);
                ev.push_back(1e3 * ms);
                hs.push_back(1e6 * (b - a));
            }
            printf("%s, %s (ran on %s): host %.2f us/call back to back, GPU %.2f us/call back to back; "
                   "single call: host median %.2f us, events median %.2f us\n",
                   p.name, argv[bi], natten_context_last_backend(ctx), 1e6 * (t1 - t0) / N, 1e6 * (t2 - t0) / N,
                   median(hs), median(ev));
            natten_context_destroy(ctx);
        }
        cudaFree(q);
        cudaFree(k);
        cudaFree(v);
        cudaFree(o);
        cudaFree(l);
    }
    return 0;
}
