/*
 * red-bench.cu - what a fused dQ would cost in L2 reductions on issue #9's
 * 2-D backward (256x256, window 80x80, H 24, D 128): the traffic alone, no
 * arithmetic.  A dK/dV kernel that also accumulates dQ adds, for every
 * (key tile, query tile) pair it computes, a 64 x 128 fp32 tile of dQ
 * partial sums into global memory.  Here one block per (key tile of 8 x 16
 * keys, head) walks the query tiles (8 x 8) of its keys' inverse
 * neighbourhood, as that kernel would, and for each adds 32 KB to dQ
 * (heads-last: 64 rows of 512 bytes, 12 KB apart), by:
 *   red   red.global.add.f32, one float a thread and instruction;
 *   red4  red.global.add.v4.f32 (sm_90), 16 bytes a thread and instruction;
 *   st4   plain 16-byte stores of the same addresses (no reduction: the
 *         traffic's floor, wrong as a sum);
 * and, for scale, a device-to-device copy of the dQ tensor.  Medians of N
 * (default 5) timed runs with CUDA events; the key tile KT0 x KT1 (default
 * 8 x 16, each dividing 256) from the command line.  Not built by make:
 *   nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -I lib tools/red-bench.cu -o red-bench
 *   ./red-bench [N [KT0 KT1]]
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <algorithm>
#include <vector>
#include "natten-window.h"

#define CK(x)                                                                                   \
    do {                                                                                        \
        cudaError_t e_ = (x);                                                                   \
        if (e_ != cudaSuccess) {                                                                \
            fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_));                            \
            return 1;                                                                           \
        }                                                                                       \
    } while (0)

enum { L = 256, KW = 80, H = 24, D = 128, QT0 = 8, QT1 = 8 };

/* query tiles (in tile units, inclusive) whose windows hold any key of [k0, k0 + n):
 * windows move monotonically, so from the inverse windows of the first and last key */
static void qtiles(int k0, int n, int qt, int &a, int &b)
{
    int64_t qa, qb, ra, rb;
    natten_inverse_window_g(L, KW, 1, 0, k0, &qa, &qb);
    natten_inverse_window_g(L, KW, 1, 0, k0 + n - 1, &ra, &rb);
    a = (int)(qa / qt);
    b = (int)((rb - 1) / qt);
}

template <int MODE>
__global__ void __launch_bounds__(256) add_kernel(float *dq, const int *tr, const int *tc, int nkc)
{
    const int kt = blockIdx.x, h = blockIdx.y;
    const int ky = kt / nkc, kx = kt - ky * nkc;
    const int ra = tr[2 * ky], rb = tr[2 * ky + 1], ca = tc[2 * kx], cb = tc[2 * kx + 1];
    const int t = (int)threadIdx.x, row = t >> 2, part = t & 3; /* 64 rows, 4 threads a row */
    const float v = 1.0f / 1024;
    for (int qy = ra; qy <= rb; qy++)
        for (int qx = ca; qx <= cb; qx++) {
            const int y = qy * QT0 + (row >> 3), x = qx * QT1 + (row & 7);
            float *p = dq + (((size_t)y * L + x) * H + h) * D + part * 32;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                float *q = p + 4 * i;
                if (MODE == 0) {
#pragma unroll
                    for (int j = 0; j < 4; j++) asm volatile("red.global.add.f32 [%0], %1;" ::"l"(q + j), "f"(v) : "memory");
                } else if (MODE == 1) {
                    asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(q), "f"(v), "f"(v), "f"(v), "f"(v)
                                 : "memory");
                } else {
                    *(float4 *)q = make_float4(v, v, v, v);
                }
            }
        }
}

int main(int argc, char **argv)
{
    const int N = argc > 1 ? atoi(argv[1]) : 5;
    const int KT0 = argc > 3 ? atoi(argv[2]) : 8, KT1 = argc > 3 ? atoi(argv[3]) : 16;
    if (N < 1 || KT0 < 1 || KT1 < 1 || L % KT0 || L % KT1) {
        fprintf(stderr, "red-bench: N >= 1, and KT0, KT1 dividing %d\n", L);
        return 2;
    }
    std::vector<int> tr(2 * (L / KT0)), tc(2 * (L / KT1));
    long pairs = 0;
    for (int i = 0; i < L / KT0; i++) qtiles(i * KT0, KT0, QT0, tr[2 * i], tr[2 * i + 1]);
    for (int i = 0; i < L / KT1; i++) qtiles(i * KT1, KT1, QT1, tc[2 * i], tc[2 * i + 1]);
    for (int i = 0; i < L / KT0; i++)
        for (int j = 0; j < L / KT1; j++) pairs += (long)(tr[2 * i + 1] - tr[2 * i] + 1) * (tc[2 * j + 1] - tc[2 * j] + 1);
    pairs *= H;
    const double bytes = (double)pairs * 64 * D * sizeof(float);
    printf("red-bench: 2-D %dx%d, window %d, H %d, D %d; key tiles %dx%d, query tiles %dx%d: %ld (key tile, query tile) "
           "pairs, %.1f GB of dQ partial sums\n",
           L, L, KW, H, D, KT0, KT1, QT0, QT1, pairs, bytes * 1e-9);
    fflush(stdout); /* the plan above needs no GPU */
    const size_t n = (size_t)L * L * H * D;
    float *dq, *dq2;
    CK(cudaMalloc(&dq, n * sizeof(float)));
    CK(cudaMalloc(&dq2, n * sizeof(float)));
    CK(cudaMemset(dq, 0, n * sizeof(float)));
    int *dtr, *dtc;
    CK(cudaMalloc(&dtr, tr.size() * sizeof(int)));
    CK(cudaMalloc(&dtc, tc.size() * sizeof(int)));
    CK(cudaMemcpy(dtr, tr.data(), tr.size() * sizeof(int), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dtc, tc.data(), tc.size() * sizeof(int), cudaMemcpyHostToDevice));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    dim3 grid((L / KT0) * (L / KT1), H);
    const char *names[] = {"red (f32)", "red4 (v4.f32)", "st4 (stores)", "copy of dQ"};
    for (int m = 0; m < 4; m++) {
        std::vector<float> ms;
        for (int r = 0; r < N + 1; r++) {
            CK(cudaEventRecord(e0));
            if (m == 0) add_kernel<0><<<grid, 256>>>(dq, dtr, dtc, L / KT1);
            else if (m == 1) add_kernel<1><<<grid, 256>>>(dq, dtr, dtc, L / KT1);
            else if (m == 2) add_kernel<2><<<grid, 256>>>(dq, dtr, dtc, L / KT1);
            else CK(cudaMemcpyAsync(dq2, dq, n * sizeof(float), cudaMemcpyDeviceToDevice));
            CK(cudaEventRecord(e1));
            CK(cudaEventSynchronize(e1));
            CK(cudaGetLastError());
            float t;
            CK(cudaEventElapsedTime(&t, e0, e1));
            if (r) ms.push_back(t); /* the first run warms up */
        }
        std::sort(ms.begin(), ms.end());
        const double med = ms[ms.size() / 2];
        const double b = m == 3 ? 2.0 * n * sizeof(float) : bytes;
        printf("  %-14s median %8.3f ms (min %.3f, max %.3f), %.0f GB/s\n", names[m], med, ms.front(), ms.back(),
               b / (med * 1e-3) * 1e-9);
    }
    return 0;
}
