/*
 * tc_kernels.cuh - fused neighborhood attention on tensor cores (mma.sync
 * m16n8k16, fp16/bf16 operands, fp32 accumulation), forward and backward.
 *
 * Shared by the backend (cuda_tc.cu) and the standalone harness; it knows
 * nothing of natten_problem, only of tc::Params.
 *
 * Structure (see NOTES.md):
 *  - Dilation folds into the grid: a block works inside one dilation group
 *    (g0, g1, g2), in that group's coordinates u (global index u*d + g), on
 *    the group's own extent n = ceil((L - g) / d).  Rows are gathered by
 *    address, so no token permutation pass exists.
 *  - A block owns a box of 64 rows (queries for forward and dQ, keys for
 *    dK/dV) and iterates over boxes of the other side that cover the union of
 *    the neighbourhoods (or inverse neighbourhoods) of its rows: window starts
 *    and ends never decrease, so that union is a box, and so is the
 *    intersection; only iterated tiles that leave the intersection are masked.
 *  - 4 warps, each 16 rows; operands staged by cp.async (2 stages) into
 *    shared memory with padded rows (D + 8: ldmatrix is conflict-free), read
 *    by ldmatrix; online softmax in registers (base 2); O and lse written once.
 *  - Backward: delta = rowsum(dO * O) first; a key-parallel kernel gives dK
 *    and dV (GQA: it loops over the query heads of its KV head); a
 *    query-parallel kernel gives dQ.  Deterministic, no atomics.
 */
#ifndef NATTEN_TC_KERNELS_CUH
#define NATTEN_TC_KERNELS_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "natten-window.h"

namespace tc {

/* A token tensor: base pointer and element strides of (b, x0, x1, x2, h);
 * the head dim is contiguous (stride 1). */
struct Tensor {
    char *data;
    int64_t s[5];
};

struct Params {
    Tensor q, k, v, o, lse, dout, dq, dk, dv;
    float *delta;                   /* scratch, compact [B][H][L0][L1][L2] */
    int B, H, Hkv;
    int L[3], K[3], dil[3], st[3], causal[3];
    float scale;
    /* Set per launch: the owned box (product 64), the iterated box, and the
     * number of owned boxes per axis over the largest dilation group. */
    int own[3], it[3], nown[3];
    int itprod; /* it[0]*it[1]*it[2] <= rows of an iterated tile; the rest is padding */
};

/* ---- PTX wrappers ------------------------------------------------------ */

__device__ __forceinline__ uint32_t smem_u32(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* 16 bytes global -> shared; zero-filled when !valid (src is not read). */
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool valid)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
                 "r"(valid ? 16 : 0));
}

__device__ __forceinline__ void cp_async4(void *dst, const void *src, bool valid)
{
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
                 "r"(valid ? 4 : 0));
}

__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N> __device__ __forceinline__ void cp_wait()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm4(uint32_t r[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}

__device__ __forceinline__ void ldsm4t(uint32_t r[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}

template <typename T> struct Mma;

template <> struct Mma<__half> {
    static __device__ __forceinline__ void run(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
    {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                     "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ uint32_t pack(float x, float y)
    {
        __half2 h = __floats2half2_rn(x, y);
        return *reinterpret_cast<uint32_t *>(&h);
    }
    static __device__ __forceinline__ float2 unpack(uint32_t u)
    {
        return __half22float2(*reinterpret_cast<__half2 *>(&u));
    }
};

template <> struct Mma<__nv_bfloat16> {
    static __device__ __forceinline__ void run(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
    {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                     "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ uint32_t pack(float x, float y)
    {
        __nv_bfloat162 h = __floats2bfloat162_rn(x, y);
        return *reinterpret_cast<uint32_t *>(&h);
    }
    static __device__ __forceinline__ float2 unpack(uint32_t u)
    {
        return __bfloat1622float2(*reinterpret_cast<__nv_bfloat162 *>(&u));
    }
};

/* Fragments from a row-major shared tile with row stride LDS (elements).
 * ldA: the 16x16 A operand at (r0, c0).
 * ldB_nk: B for two n-tiles (n0, n0+8) x one k-step (k0), tile stored [n][k]:
 *         b[0], b[1] for n-tile n0; b[2], b[3] for n0 + 8.
 * ldB_kn: the same, tile stored [k][n] (transposed by ldmatrix). */
template <int LDS, typename T>
__device__ __forceinline__ void ldA(uint32_t a[4], const T *s, int r0, int c0, int lane)
{
    ldsm4(a, s + (r0 + (lane & 7) + ((lane >> 3) & 1) * 8) * LDS + c0 + (lane >> 4) * 8);
}

template <int LDS, typename T>
__device__ __forceinline__ void ldB_nk(uint32_t b[4], const T *s, int n0, int k0, int lane)
{
    ldsm4(b, s + (n0 + (lane & 7) + (lane >> 4) * 8) * LDS + k0 + ((lane >> 3) & 1) * 8);
}

template <int LDS, typename T>
__device__ __forceinline__ void ldB_kn(uint32_t b[4], const T *s, int k0, int n0, int lane)
{
    ldsm4t(b, s + (k0 + (lane & 7) + ((lane >> 3) & 1) * 8) * LDS + n0 + (lane >> 4) * 8);
}

/* ---- geometry ---------------------------------------------------------- */

/* What one block works on. */
struct Work {
    int b, h;      /* batch, head (query head, or KV head for the dK/dV kernel) */
    int g[3];      /* dilation group */
    int n[3];      /* the group's extent per axis */
    int o[3];      /* owned box origin, group coordinates */
};

__device__ __forceinline__ void decode_work(const Params &p, int heads, Work &w)
{
    int64_t idx = blockIdx.x;
    int nt = p.nown[0] * p.nown[1] * p.nown[2];
    int tile = (int)(idx % nt);
    idx /= nt;
    int G = p.dil[0] * p.dil[1] * p.dil[2];
    int grp = (int)(idx % G);
    idx /= G;
    w.h = (int)(idx % heads);
    w.b = (int)(idx / heads);
    w.g[2] = grp % p.dil[2];
    w.g[1] = (grp / p.dil[2]) % p.dil[1];
    w.g[0] = grp / (p.dil[1] * p.dil[2]);
    int t2 = tile % p.nown[2], t1 = (tile / p.nown[2]) % p.nown[1], t0 = tile / (p.nown[1] * p.nown[2]);
    w.o[0] = t0 * p.own[0];
    w.o[1] = t1 * p.own[1];
    w.o[2] = t2 * p.own[2];
    for (int i = 0; i < 3; i++) w.n[i] = (int)natten_group_len(p.L[i], p.dil[i], w.g[i]);
}

/* Row r of a box -> box-relative coordinates. */
__device__ __forceinline__ void box_coords(int r, const int box[3], int c[3])
{
    c[2] = r % box[2];
    c[1] = (r / box[2]) % box[1];
    c[0] = r / (box[1] * box[2]);
}

__device__ __forceinline__ void window_of(const Params &p, const int n[3], const int u[3], int a[3], int b[3])
{
    for (int i = 0; i < 3; i++) {
        int64_t aa, bb;
        natten_window_g(n[i], p.K[i], p.st[i], p.causal[i], u[i], &aa, &bb);
        a[i] = (int)aa;
        b[i] = (int)bb;
    }
}

/* Element offset of the token at group coordinates u (group g), in tensor t. */
__device__ __forceinline__ int64_t token_off(const Params &p, const Tensor &t, const int g[3], const int u[3])
{
    return (int64_t)(u[0] * p.dil[0] + g[0]) * t.s[1] + (int64_t)(u[1] * p.dil[1] + g[1]) * t.s[2] +
           (int64_t)(u[2] * p.dil[2] + g[2]) * t.s[3];
}

__device__ __forceinline__ int64_t delta_index(const Params &p, int b, int h, const int g[3], const int u[3])
{
    int64_t x0 = u[0] * p.dil[0] + g[0], x1 = u[1] * p.dil[1] + g[1], x2 = u[2] * p.dil[2] + g[2];
    return (((int64_t)b * p.H + h) * p.L[0] + x0) * p.L[1] * p.L[2] + x1 * p.L[2] + x2;
}

/*
 * Stage ROWS rows of a box (origin org, shape box) of tensor base (already at
 * batch and head) into shared memory s (row stride LDS), NT threads, NT/ROWS
 * threads per row, zero-filling rows outside the group.  If coords != NULL,
 * the group coordinates of each row go there (3 ints per row).
 */
template <typename T, int D, int LDS, int ROWS, int NT>
__device__ __forceinline__ void load_rows(const Params &p, T *s, const T *base, const Tensor &t,
                                          const Work &w, const int box[3], int prod, const int org[3],
                                          int *coords)
{
    constexpr int TPR = NT / ROWS, CH = D / 8, CPT = CH / TPR;
    static_assert(CPT >= 1, "too many threads per row");
    int r = threadIdx.x / TPR, sub = threadIdx.x % TPR;
    int c[3], u[3];
    box_coords(r, box, c);
    bool valid = r < prod;
    for (int i = 0; i < 3; i++) {
        u[i] = valid ? org[i] + c[i] : -1; /* padding rows: in no window */
        valid = valid && u[i] < w.n[i];
    }
    const T *src = valid ? base + token_off(p, t, w.g, u) : base;
    T *dst = s + r * LDS;
#pragma unroll
    for (int j = 0; j < CPT; j++) {
        int ch = sub * CPT + j;
        cp_async16(dst + ch * 8, src + ch * 8, valid);
    }
    if (coords != nullptr && sub == 0) {
        coords[r * 3 + 0] = u[0];
        coords[r * 3 + 1] = u[1];
        coords[r * 3 + 2] = u[2];
    }
}

/* Per block: the union [lo, hi) and the intersection [ia, ib) of the windows
 * of the owned query box (valid part), per axis. */
__device__ __forceinline__ void query_box_windows(const Params &p, const Work &w, int lo[3], int hi[3],
                                                  int ia[3], int ib[3])
{
    for (int i = 0; i < 3; i++) {
        int first = w.o[i], last = min(w.o[i] + p.own[i], w.n[i]) - 1;
        int64_t a0, b0, a1, b1;
        natten_window_g(w.n[i], p.K[i], p.st[i], p.causal[i], first, &a0, &b0);
        natten_window_g(w.n[i], p.K[i], p.st[i], p.causal[i], last, &a1, &b1);
        lo[i] = (int)a0;
        hi[i] = (int)b1;
        ia[i] = (int)a1;
        ib[i] = (int)b0;
    }
}

__device__ __forceinline__ bool inside(const int c[3], const int a[3], const int b[3])
{
    return c[0] >= a[0] && c[0] < b[0] && c[1] >= a[1] && c[1] < b[1] && c[2] >= a[2] && c[2] < b[2];
}

__device__ __forceinline__ float shfl_max4(float x)
{
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

__device__ __forceinline__ float shfl_sum4(float x)
{
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

constexpr int NT = 128; /* threads per block: 4 warps x 16 rows */
constexpr int BR = 64;  /* rows per owned box */
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;

/* The warp's two rows of the owned box for this lane: r and r + 8. */
__device__ __forceinline__ void lane_rows(const Params &p, const Work &w, int warp, int lane, int u[2][3],
                                          bool valid[2])
{
    for (int rr = 0; rr < 2; rr++) {
        int c[3];
        box_coords(warp * 16 + (lane >> 2) + rr * 8, p.own, c);
        valid[rr] = true;
        for (int i = 0; i < 3; i++) {
            u[rr][i] = w.o[i] + c[i];
            valid[rr] = valid[rr] && u[rr][i] < w.n[i];
        }
    }
}

/* ---- forward ------------------------------------------------------------ */

template <int D> constexpr size_t fwd_smem(size_t esz)
{
    return (size_t)(BR + 4 * BR) * (D + 8) * esz + 2 * BR * 3 * sizeof(int);
}

template <typename T, int D>
__global__ void __launch_bounds__(NT, 2) fna_fwd_kernel(const Params p)
{
    constexpr int LDS = D + 8, KD = D / 16;
    extern __shared__ __align__(16) char smem[];
    T *sQ = reinterpret_cast<T *>(smem);
    T *sK = sQ + BR * LDS;
    T *sV = sK + 2 * BR * LDS;
    int *sKc = reinterpret_cast<int *>(sV + 2 * BR * LDS);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

    Work w;
    decode_work(p, p.H, w);
    for (int i = 0; i < 3; i++)
        if (w.o[i] >= w.n[i]) return;
    int lo[3], hi[3], ia[3], ib[3], ntk[3];
    query_box_windows(p, w, lo, hi, ia, ib);
    for (int i = 0; i < 3; i++) ntk[i] = (hi[i] - lo[i] + p.it[i] - 1) / p.it[i];
    const int ntiles = ntk[0] * ntk[1] * ntk[2];
    const int hk = w.h / (p.H / p.Hkv);
    const T *qb = reinterpret_cast<const T *>(p.q.data) + w.b * p.q.s[0] + w.h * p.q.s[4];
    const T *kb = reinterpret_cast<const T *>(p.k.data) + w.b * p.k.s[0] + hk * p.k.s[4];
    const T *vb = reinterpret_cast<const T *>(p.v.data) + w.b * p.v.s[0] + hk * p.v.s[4];

    /* this lane's rows: windows for masking */
    int u[2][3], wa[2][3], wb[2][3];
    bool rvalid[2];
    lane_rows(p, w, warp, lane, u, rvalid);
    for (int rr = 0; rr < 2; rr++) {
        int uc[3];
        for (int i = 0; i < 3; i++) uc[i] = min(u[rr][i], w.n[i] - 1);
        window_of(p, w.n, uc, wa[rr], wb[rr]);
    }

    auto load_kv = [&](int t, int stage) {
        int j[3], org[3];
        j[2] = t % ntk[2];
        j[1] = (t / ntk[2]) % ntk[1];
        j[0] = t / (ntk[1] * ntk[2]);
        for (int i = 0; i < 3; i++) org[i] = lo[i] + j[i] * p.it[i];
        load_rows<T, D, LDS, BR, NT>(p, sK + stage * BR * LDS, kb, p.k, w, p.it, p.itprod, org, sKc + stage * BR * 3);
        load_rows<T, D, LDS, BR, NT>(p, sV + stage * BR * LDS, vb, p.v, w, p.it, p.itprod, org, nullptr);
    };
    auto tile_full = [&](int t) {
        int j[3];
        j[2] = t % ntk[2];
        j[1] = (t / ntk[2]) % ntk[1];
        j[0] = t / (ntk[1] * ntk[2]);
        bool full = true;
        for (int i = 0; i < 3; i++) {
            int o = lo[i] + j[i] * p.it[i];
            full = full && o >= ia[i] && o + p.it[i] <= ib[i];
        }
        return full;
    };

    load_rows<T, D, LDS, BR, NT>(p, sQ, qb, p.q, w, p.own, BR, w.o, nullptr);
    load_kv(0, 0);
    cp_commit();

    uint32_t qf[KD][4];
    float acc[D / 8][4];
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
    for (int j = 0; j < D / 8; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
    const float sl2 = p.scale * LOG2E;

    for (int t = 0; t < ntiles; t++) {
        const int stage = t & 1;
        if (t + 1 < ntiles) {
            load_kv(t + 1, stage ^ 1);
            cp_commit();
            cp_wait<1>();
        } else {
            cp_wait<0>();
        }
        __syncthreads();
        if (t == 0) {
#pragma unroll
            for (int kk = 0; kk < KD; kk++) ldA<LDS>(qf[kk], sQ, warp * 16, kk * 16, lane);
        }
        const T *sKs = sK + stage * BR * LDS, *sVs = sV + stage * BR * LDS;
        float s[8][4];
#pragma unroll
        for (int j = 0; j < 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
#pragma unroll
            for (int j = 0; j < 4; j++) {
                uint32_t b[4];
                ldB_nk<LDS>(b, sKs, j * 16, kk * 16, lane);
                Mma<T>::run(s[2 * j], qf[kk], b[0], b[1]);
                Mma<T>::run(s[2 * j + 1], qf[kk], b[2], b[3]);
            }
        }
        if (!tile_full(t)) {
            const int *kc = sKc + stage * BR * 3;
#pragma unroll
            for (int j = 0; j < 8; j++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    int col = j * 8 + 2 * (lane & 3) + e;
                    int c[3] = {kc[col * 3], kc[col * 3 + 1], kc[col * 3 + 2]};
#pragma unroll
                    for (int rr = 0; rr < 2; rr++)
                        if (!inside(c, wa[rr], wb[rr])) s[j][rr * 2 + e] = -INFINITY;
                }
        } else if (p.itprod < BR) { /* full tile of a box smaller than 64: only padding */
#pragma unroll
            for (int j = 0; j < 8; j++)
#pragma unroll
                for (int e = 0; e < 2; e++)
                    if (j * 8 + 2 * (lane & 3) + e >= p.itprod) s[j][e] = s[j][2 + e] = -INFINITY;
        }
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < 8; j++) mx = fmaxf(mx, fmaxf(s[j][rr * 2], s[j][rr * 2 + 1]));
            mx = shfl_max4(mx) * sl2;
            float mnew = fmaxf(m[rr], mx);
            float muse = mnew == -INFINITY ? 0.f : mnew;
            float alpha = exp2f(m[rr] - muse);
            m[rr] = mnew;
            l[rr] *= alpha;
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
                acc[j][rr * 2] *= alpha;
                acc[j][rr * 2 + 1] *= alpha;
            }
#pragma unroll
            for (int j = 0; j < 8; j++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    float pv = exp2f(fmaf(s[j][rr * 2 + e], sl2, -muse));
                    s[j][rr * 2 + e] = pv;
                    l[rr] += pv;
                }
        }
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            uint32_t a[4];
            a[0] = Mma<T>::pack(s[2 * kk][0], s[2 * kk][1]);
            a[1] = Mma<T>::pack(s[2 * kk][2], s[2 * kk][3]);
            a[2] = Mma<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            a[3] = Mma<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int jd = 0; jd < D / 16; jd++) {
                uint32_t b[4];
                ldB_kn<LDS>(b, sVs, kk * 16, jd * 16, lane);
                Mma<T>::run(acc[2 * jd], a, b[0], b[1]);
                Mma<T>::run(acc[2 * jd + 1], a, b[2], b[3]);
            }
        }
        __syncthreads();
    }
    cp_wait<0>(); /* nothing may stay in flight (no tiles at all: dK/dV of unused keys) */

    T *ob = reinterpret_cast<T *>(p.o.data) + w.b * p.o.s[0] + w.h * p.o.s[4];
    float *lb = p.lse.data ? reinterpret_cast<float *>(p.lse.data) + w.b * p.lse.s[0] + w.h * p.lse.s[4]
                           : nullptr;
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        float lsum = shfl_sum4(l[rr]);
        if (!rvalid[rr]) continue;
        float inv = 1.f / lsum;
        T *orow = ob + token_off(p, p.o, w.g, u[rr]);
#pragma unroll
        for (int j = 0; j < D / 8; j++) {
            int col = j * 8 + 2 * (lane & 3);
            *reinterpret_cast<uint32_t *>(orow + col) =
                Mma<T>::pack(acc[j][rr * 2] * inv, acc[j][rr * 2 + 1] * inv);
        }
        if (lb != nullptr && (lane & 3) == 0) lb[token_off(p, p.lse, w.g, u[rr])] = (m[rr] + log2f(lsum)) * LN2;
    }
}

/* ---- backward: delta = rowsum(dO * O) ----------------------------------- */

template <typename T, int D> __global__ void fna_delta_kernel(const Params p, int64_t rows)
{
    int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows) return;
    int64_t r = idx;
    int64_t x2 = r % p.L[2];
    r /= p.L[2];
    int64_t x1 = r % p.L[1];
    r /= p.L[1];
    int64_t x0 = r % p.L[0];
    r /= p.L[0];
    int64_t h = r % p.H, b = r / p.H;
    const T *o = reinterpret_cast<const T *>(p.o.data) + b * p.o.s[0] + x0 * p.o.s[1] + x1 * p.o.s[2] +
                 x2 * p.o.s[3] + h * p.o.s[4];
    const T *g = reinterpret_cast<const T *>(p.dout.data) + b * p.dout.s[0] + x0 * p.dout.s[1] +
                 x1 * p.dout.s[2] + x2 * p.dout.s[3] + h * p.dout.s[4];
    float sum = 0.f;
#pragma unroll
    for (int c = 0; c < D; c += 8) {
        uint4 a = *reinterpret_cast<const uint4 *>(o + c), d = *reinterpret_cast<const uint4 *>(g + c);
        const uint32_t *pa = reinterpret_cast<const uint32_t *>(&a), *pd = reinterpret_cast<const uint32_t *>(&d);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 fa = Mma<T>::unpack(pa[k]), fd = Mma<T>::unpack(pd[k]);
            sum = fmaf(fa.x, fd.x, sum);
            sum = fmaf(fa.y, fd.y, sum);
        }
    }
    p.delta[idx] = sum;
}

/* ---- backward: dQ, query-parallel --------------------------------------- */

template <int D> constexpr size_t dq_smem(size_t esz)
{
    return (size_t)(2 * BR + 4 * BR) * (D + 8) * esz + 2 * BR * 3 * sizeof(int);
}

template <typename T, int D>
__global__ void __launch_bounds__(NT, 2) fna_dq_kernel(const Params p)
{
    constexpr int LDS = D + 8, KD = D / 16;
    extern __shared__ __align__(16) char smem[];
    T *sQ = reinterpret_cast<T *>(smem);
    T *sG = sQ + BR * LDS; /* dO */
    T *sK = sG + BR * LDS;
    T *sV = sK + 2 * BR * LDS;
    int *sKc = reinterpret_cast<int *>(sV + 2 * BR * LDS);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

    Work w;
    decode_work(p, p.H, w);
    for (int i = 0; i < 3; i++)
        if (w.o[i] >= w.n[i]) return;
    int lo[3], hi[3], ia[3], ib[3], ntk[3];
    query_box_windows(p, w, lo, hi, ia, ib);
    for (int i = 0; i < 3; i++) ntk[i] = (hi[i] - lo[i] + p.it[i] - 1) / p.it[i];
    const int ntiles = ntk[0] * ntk[1] * ntk[2];
    const int hk = w.h / (p.H / p.Hkv);
    const T *qb = reinterpret_cast<const T *>(p.q.data) + w.b * p.q.s[0] + w.h * p.q.s[4];
    const T *gb = reinterpret_cast<const T *>(p.dout.data) + w.b * p.dout.s[0] + w.h * p.dout.s[4];
    const T *kb = reinterpret_cast<const T *>(p.k.data) + w.b * p.k.s[0] + hk * p.k.s[4];
    const T *vb = reinterpret_cast<const T *>(p.v.data) + w.b * p.v.s[0] + hk * p.v.s[4];
    const float *lb = reinterpret_cast<const float *>(p.lse.data) + w.b * p.lse.s[0] + w.h * p.lse.s[4];

    int u[2][3], wa[2][3], wb[2][3];
    bool rvalid[2];
    float lse2[2], dlt[2];
    lane_rows(p, w, warp, lane, u, rvalid);
    for (int rr = 0; rr < 2; rr++) {
        int uc[3];
        for (int i = 0; i < 3; i++) uc[i] = min(u[rr][i], w.n[i] - 1);
        window_of(p, w.n, uc, wa[rr], wb[rr]);
        lse2[rr] = rvalid[rr] ? lb[token_off(p, p.lse, w.g, u[rr])] * LOG2E : 0.f;
        dlt[rr] = rvalid[rr] ? p.delta[delta_index(p, w.b, w.h, w.g, u[rr])] : 0.f;
    }

    auto tile_org = [&](int t, int org[3]) {
        int j[3];
        j[2] = t % ntk[2];
        j[1] = (t / ntk[2]) % ntk[1];
        j[0] = t / (ntk[1] * ntk[2]);
        for (int i = 0; i < 3; i++) org[i] = lo[i] + j[i] * p.it[i];
    };
    auto load_kv = [&](int t, int stage) {
        int org[3];
        tile_org(t, org);
        load_rows<T, D, LDS, BR, NT>(p, sK + stage * BR * LDS, kb, p.k, w, p.it, p.itprod, org, sKc + stage * BR * 3);
        load_rows<T, D, LDS, BR, NT>(p, sV + stage * BR * LDS, vb, p.v, w, p.it, p.itprod, org, nullptr);
    };

    load_rows<T, D, LDS, BR, NT>(p, sQ, qb, p.q, w, p.own, BR, w.o, nullptr);
    load_rows<T, D, LDS, BR, NT>(p, sG, gb, p.dout, w, p.own, BR, w.o, nullptr);
    load_kv(0, 0);
    cp_commit();

    float acc[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
    const float sl2 = p.scale * LOG2E;

    for (int t = 0; t < ntiles; t++) {
        const int stage = t & 1;
        if (t + 1 < ntiles) {
            load_kv(t + 1, stage ^ 1);
            cp_commit();
            cp_wait<1>();
        } else {
            cp_wait<0>();
        }
        __syncthreads();
        const T *sKs = sK + stage * BR * LDS, *sVs = sV + stage * BR * LDS;
        float s[8][4], dp[8][4];
#pragma unroll
        for (int j = 0; j < 8; j++)
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = dp[j][0] = dp[j][1] = dp[j][2] = dp[j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
            uint32_t a[4], g[4];
            ldA<LDS>(a, sQ, warp * 16, kk * 16, lane);
            ldA<LDS>(g, sG, warp * 16, kk * 16, lane);
#pragma unroll
            for (int j = 0; j < 4; j++) {
                uint32_t b[4];
                ldB_nk<LDS>(b, sKs, j * 16, kk * 16, lane);
                Mma<T>::run(s[2 * j], a, b[0], b[1]);
                Mma<T>::run(s[2 * j + 1], a, b[2], b[3]);
                ldB_nk<LDS>(b, sVs, j * 16, kk * 16, lane);
                Mma<T>::run(dp[2 * j], g, b[0], b[1]);
                Mma<T>::run(dp[2 * j + 1], g, b[2], b[3]);
            }
        }
        int org[3];
        tile_org(t, org);
        bool full = true;
        for (int i = 0; i < 3; i++) full = full && org[i] >= ia[i] && org[i] + p.it[i] <= ib[i];
        const int *kc = sKc + stage * BR * 3;
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int col = j * 8 + 2 * (lane & 3) + e;
                int c[3] = {kc[col * 3], kc[col * 3 + 1], kc[col * 3 + 2]};
#pragma unroll
                for (int rr = 0; rr < 2; rr++) {
                    float pv = exp2f(fmaf(s[j][rr * 2 + e], sl2, -lse2[rr]));
                    if ((!full && !inside(c, wa[rr], wb[rr])) || col >= p.itprod) pv = 0.f;
                    s[j][rr * 2 + e] = pv * (dp[j][rr * 2 + e] - dlt[rr]); /* dS */
                }
            }
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            uint32_t a[4];
            a[0] = Mma<T>::pack(s[2 * kk][0], s[2 * kk][1]);
            a[1] = Mma<T>::pack(s[2 * kk][2], s[2 * kk][3]);
            a[2] = Mma<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            a[3] = Mma<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int jd = 0; jd < D / 16; jd++) {
                uint32_t b[4];
                ldB_kn<LDS>(b, sKs, kk * 16, jd * 16, lane);
                Mma<T>::run(acc[2 * jd], a, b[0], b[1]);
                Mma<T>::run(acc[2 * jd + 1], a, b[2], b[3]);
            }
        }
        __syncthreads();
    }
    cp_wait<0>(); /* nothing may stay in flight (no tiles at all: dK/dV of unused keys) */

    T *db = reinterpret_cast<T *>(p.dq.data) + w.b * p.dq.s[0] + w.h * p.dq.s[4];
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        if (!rvalid[rr]) continue;
        T *row = db + token_off(p, p.dq, w.g, u[rr]);
#pragma unroll
        for (int j = 0; j < D / 8; j++) {
            int col = j * 8 + 2 * (lane & 3);
            *reinterpret_cast<uint32_t *>(row + col) =
                Mma<T>::pack(acc[j][rr * 2] * p.scale, acc[j][rr * 2 + 1] * p.scale);
        }
    }
}

/* ---- backward: dK, dV, key-parallel ------------------------------------- */

/* Query rows per iterated box in the dK/dV kernel (register budget). */
template <int D> __host__ __device__ constexpr int dkv_bq() { return D >= 128 ? 32 : 64; }

template <int D> constexpr size_t dkv_smem(size_t esz)
{
    return (size_t)(2 * BR + 4 * dkv_bq<D>()) * (D + 8) * esz + 2 * dkv_bq<D>() * (2 + 6) * sizeof(int);
}

template <typename T, int D>
__global__ void __launch_bounds__(NT, 2) fna_dkv_kernel(const Params p)
{
    constexpr int LDS = D + 8, KD = D / 16, BQ = dkv_bq<D>(), NQ = BQ / 8;
    extern __shared__ __align__(16) char smem[];
    T *sK = reinterpret_cast<T *>(smem);
    T *sV = sK + BR * LDS;
    T *sQ = sV + BR * LDS;   /* 2 stages */
    T *sG = sQ + 2 * BQ * LDS; /* dO, 2 stages */
    float *sL = reinterpret_cast<float *>(sG + 2 * BQ * LDS); /* lse, 2 stages */
    float *sD = sL + 2 * BQ;                                   /* delta, 2 stages */
    int *sW = reinterpret_cast<int *>(sD + 2 * BQ);            /* windows [2][BQ][6] */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

    Work w;
    decode_work(p, p.Hkv, w); /* w.h is the KV head */
    for (int i = 0; i < 3; i++)
        if (w.o[i] >= w.n[i]) return;
    const int hk = w.h, gh = p.H / p.Hkv;
    /* queries whose windows meet the owned key box: [lo, hi); those whose
     * windows hold all of it: an iterated box inside [ia, ib) needs no mask */
    int lo[3], hi[3], klast[3], ntq[3];
    for (int i = 0; i < 3; i++) {
        klast[i] = min(w.o[i] + p.own[i], w.n[i]) - 1;
        int64_t a0, b0, a1, b1;
        natten_inverse_window_g(w.n[i], p.K[i], p.st[i], p.causal[i], w.o[i], &a0, &b0);
        natten_inverse_window_g(w.n[i], p.K[i], p.st[i], p.causal[i], klast[i], &a1, &b1);
        lo[i] = (int)a0;
        hi[i] = (int)b1;
        ntq[i] = (hi[i] - lo[i] + p.it[i] - 1) / p.it[i];
    }
    const int ntq_all = ntq[0] * ntq[1] * ntq[2];
    const int ntiles = ntq_all * gh;
    const T *kb = reinterpret_cast<const T *>(p.k.data) + w.b * p.k.s[0] + hk * p.k.s[4];
    const T *vb = reinterpret_cast<const T *>(p.v.data) + w.b * p.v.s[0] + hk * p.v.s[4];

    int u[2][3];
    bool rvalid[2];
    lane_rows(p, w, warp, lane, u, rvalid);

    auto tile_org = [&](int t, int org[3]) {
        int q = t % ntq_all, j[3];
        j[2] = q % ntq[2];
        j[1] = (q / ntq[2]) % ntq[1];
        j[0] = q / (ntq[1] * ntq[2]);
        for (int i = 0; i < 3; i++) org[i] = lo[i] + j[i] * p.it[i];
    };
    auto load_q = [&](int t, int stage) {
        int org[3], h = hk * gh + t / ntq_all;
        tile_org(t, org);
        const T *qb = reinterpret_cast<const T *>(p.q.data) + w.b * p.q.s[0] + h * p.q.s[4];
        const T *gb = reinterpret_cast<const T *>(p.dout.data) + w.b * p.dout.s[0] + h * p.dout.s[4];
        load_rows<T, D, LDS, BQ, NT>(p, sQ + stage * BQ * LDS, qb, p.q, w, p.it, p.itprod, org, nullptr);
        load_rows<T, D, LDS, BQ, NT>(p, sG + stage * BQ * LDS, gb, p.dout, w, p.it, p.itprod, org, nullptr);
        if (tid < BQ) {
            int c[3], uq[3], a[3], b[3];
            box_coords(tid, p.it, c);
            bool valid = tid < p.itprod;
            for (int i = 0; i < 3; i++) {
                uq[i] = org[i] + c[i];
                valid = valid && uq[i] < w.n[i];
            }
            const float *lb = reinterpret_cast<const float *>(p.lse.data) + w.b * p.lse.s[0] + h * p.lse.s[4];
            cp_async4(sL + stage * BQ + tid, valid ? lb + token_off(p, p.lse, w.g, uq) : lb, valid);
            cp_async4(sD + stage * BQ + tid, valid ? p.delta + delta_index(p, w.b, h, w.g, uq) : p.delta, valid);
            if (valid) {
                window_of(p, w.n, uq, a, b);
            } else {
                for (int i = 0; i < 3; i++) a[i] = 1, b[i] = 0; /* no key */
            }
            int *ws = sW + (stage * BQ + tid) * 6;
            for (int i = 0; i < 3; i++) ws[i] = a[i], ws[3 + i] = b[i];
        }
    };
    /* An iterated box needs no mask when all its queries exist and every
     * one's window holds the whole valid owned key box. */
    auto tile_full = [&](int t) {
        int org[3];
        tile_org(t, org);
        bool full = p.itprod == BQ;
        for (int i = 0; i < 3; i++) {
            int last = org[i] + p.it[i] - 1;
            if (last >= w.n[i]) return false;
            int64_t a0, b0, a1, b1;
            natten_window_g(w.n[i], p.K[i], p.st[i], p.causal[i], org[i], &a0, &b0);
            natten_window_g(w.n[i], p.K[i], p.st[i], p.causal[i], last, &a1, &b1);
            full = full && a1 <= w.o[i] && b0 > klast[i];
        }
        return full;
    };

    load_rows<T, D, LDS, BR, NT>(p, sK, kb, p.k, w, p.own, BR, w.o, nullptr);
    load_rows<T, D, LDS, BR, NT>(p, sV, vb, p.v, w, p.own, BR, w.o, nullptr);
    load_q(0, 0);
    cp_commit();

    float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; j++)
        dk[j][0] = dk[j][1] = dk[j][2] = dk[j][3] = dv[j][0] = dv[j][1] = dv[j][2] = dv[j][3] = 0.f;
    const float sl2 = p.scale * LOG2E;

    for (int t = 0; t < ntiles; t++) {
        const int stage = t & 1;
        if (t + 1 < ntiles) {
            load_q(t + 1, stage ^ 1);
            cp_commit();
            cp_wait<1>();
        } else {
            cp_wait<0>();
        }
        __syncthreads();
        const T *sQs = sQ + stage * BQ * LDS, *sGs = sG + stage * BQ * LDS;
        const float *sLs = sL + stage * BQ, *sDs = sD + stage * BQ;
        const int *sWs = sW + stage * BQ * 6;
        const bool full = tile_full(t);
        /* S^T = K Q^T, rows keys, columns queries */
        float s[NQ][4], dp[NQ][4];
#pragma unroll
        for (int j = 0; j < NQ; j++)
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = dp[j][0] = dp[j][1] = dp[j][2] = dp[j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
            uint32_t a[4], av[4];
            ldA<LDS>(a, sK, warp * 16, kk * 16, lane);
            ldA<LDS>(av, sV, warp * 16, kk * 16, lane);
#pragma unroll
            for (int j = 0; j < NQ / 2; j++) {
                uint32_t b[4];
                ldB_nk<LDS>(b, sQs, j * 16, kk * 16, lane);
                Mma<T>::run(s[2 * j], a, b[0], b[1]);
                Mma<T>::run(s[2 * j + 1], a, b[2], b[3]);
                ldB_nk<LDS>(b, sGs, j * 16, kk * 16, lane);
                Mma<T>::run(dp[2 * j], av, b[0], b[1]);
                Mma<T>::run(dp[2 * j + 1], av, b[2], b[3]);
            }
        }
        /* P^T and dS^T */
#pragma unroll
        for (int j = 0; j < NQ; j++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int col = j * 8 + 2 * (lane & 3) + e;
                float l2 = sLs[col] * LOG2E, dl = sDs[col];
#pragma unroll
                for (int rr = 0; rr < 2; rr++) {
                    float pv = exp2f(fmaf(s[j][rr * 2 + e], sl2, -l2));
                    if (!full) {
                        const int *ws = sWs + col * 6;
                        int a[3] = {ws[0], ws[1], ws[2]}, b[3] = {ws[3], ws[4], ws[5]};
                        if (!inside(u[rr], a, b)) pv = 0.f;
                    }
                    s[j][rr * 2 + e] = pv;
                    dp[j][rr * 2 + e] = pv * (dp[j][rr * 2 + e] - dl);
                }
            }
        /* dV += P^T dO, dK += dS^T Q */
#pragma unroll
        for (int kk = 0; kk < BQ / 16; kk++) {
            uint32_t a[4], ad[4];
            a[0] = Mma<T>::pack(s[2 * kk][0], s[2 * kk][1]);
            a[1] = Mma<T>::pack(s[2 * kk][2], s[2 * kk][3]);
            a[2] = Mma<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            a[3] = Mma<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
            ad[0] = Mma<T>::pack(dp[2 * kk][0], dp[2 * kk][1]);
            ad[1] = Mma<T>::pack(dp[2 * kk][2], dp[2 * kk][3]);
            ad[2] = Mma<T>::pack(dp[2 * kk + 1][0], dp[2 * kk + 1][1]);
            ad[3] = Mma<T>::pack(dp[2 * kk + 1][2], dp[2 * kk + 1][3]);
#pragma unroll
            for (int jd = 0; jd < D / 16; jd++) {
                uint32_t b[4];
                ldB_kn<LDS>(b, sGs, kk * 16, jd * 16, lane);
                Mma<T>::run(dv[2 * jd], a, b[0], b[1]);
                Mma<T>::run(dv[2 * jd + 1], a, b[2], b[3]);
                ldB_kn<LDS>(b, sQs, kk * 16, jd * 16, lane);
                Mma<T>::run(dk[2 * jd], ad, b[0], b[1]);
                Mma<T>::run(dk[2 * jd + 1], ad, b[2], b[3]);
            }
        }
        __syncthreads();
    }
    cp_wait<0>(); /* nothing may stay in flight (no tiles at all: dK/dV of unused keys) */

    T *dkb = reinterpret_cast<T *>(p.dk.data) + w.b * p.dk.s[0] + hk * p.dk.s[4];
    T *dvb = reinterpret_cast<T *>(p.dv.data) + w.b * p.dv.s[0] + hk * p.dv.s[4];
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        if (!rvalid[rr]) continue;
        T *rk = dkb + token_off(p, p.dk, w.g, u[rr]);
        T *rv = dvb + token_off(p, p.dv, w.g, u[rr]);
#pragma unroll
        for (int j = 0; j < D / 8; j++) {
            int col = j * 8 + 2 * (lane & 3);
            *reinterpret_cast<uint32_t *>(rk + col) =
                Mma<T>::pack(dk[j][rr * 2] * p.scale, dk[j][rr * 2 + 1] * p.scale);
            *reinterpret_cast<uint32_t *>(rv + col) = Mma<T>::pack(dv[j][rr * 2], dv[j][rr * 2 + 1]);
        }
    }
}

/* ---- host side ---------------------------------------------------------- */

/* A box of `prod` rows (a power of two) over extents ext: double the smallest
 * side that is still below the next power of two of its extent, fastest axis
 * first on ties; leftovers go to the last axis. */
static inline void choose_box(int prod, const int ext[3], int box[3])
{
    box[0] = box[1] = box[2] = 1;
    int left = prod;
    while (left > 1) {
        int best = -1;
        for (int i = 2; i >= 0; i--) {
            if (box[i] >= ext[i]) continue;
            if (best < 0 || box[i] < box[best]) best = i;
        }
        if (best < 0) best = 2;
        box[best] *= 2;
        left /= 2;
    }
}

static inline int cdiv(int a, int b) { return (a + b - 1) / b; }

/* The iterated box (at most maxprod rows, any shape) that covers a union box
 * of extents U in the fewest tiles; ties: more rows used. */
static inline void best_box(int maxprod, const int U[3], int box[3])
{
    int64_t best = -1;
    int bprod = 0;
    for (int k0 = 1; k0 <= maxprod && k0 <= U[0]; k0++)
        for (int k1 = 1; k0 * k1 <= maxprod && k1 <= U[1]; k1++) {
            int k2 = maxprod / (k0 * k1);
            if (k2 > U[2]) k2 = U[2];
            int64_t tiles = (int64_t)cdiv(U[0], k0) * cdiv(U[1], k1) * cdiv(U[2], k2);
            int prod = k0 * k1 * k2;
            if (best < 0 || tiles < best || (tiles == best && prod > bprod)) {
                best = tiles;
                bprod = prod;
                box[0] = k0;
                box[1] = k1;
                box[2] = k2;
            }
        }
}

/* Typical extent of the union of the windows of `own` consecutive rows. */
static inline void union_ext(const Params &p, const int ext[3], const int own[3], int U[3])
{
    for (int i = 0; i < 3; i++) {
        U[i] = p.K[i] + own[i] - 1 + p.st[i] - 1;
        if (U[i] > ext[i]) U[i] = ext[i];
    }
}

static inline void plan_iter(Params &p, int maxprod, const int ext[3])
{
    int U[3];
    union_ext(p, ext, p.own, U);
    best_box(maxprod, U, p.it);
    p.itprod = p.it[0] * p.it[1] * p.it[2];
}

/* Owned boxes per axis over the largest dilation group; the grid size. */
static inline int64_t plan_grid(Params &p, int heads)
{
    int64_t n = 1;
    for (int i = 0; i < 3; i++) {
        p.nown[i] = cdiv(cdiv(p.L[i], p.dil[i]), p.own[i]);
        n *= p.nown[i];
    }
    return n * p.dil[0] * p.dil[1] * p.dil[2] * heads * p.B;
}

static inline void group_ext(const Params &p, int ext[3])
{
    for (int i = 0; i < 3; i++) ext[i] = cdiv(p.L[i], p.dil[i]);
}

/* Launch with `smem` bytes of dynamic shared memory; the attribute that
 * allows more than 48 KB is set once per device (bit in *done; setting it
 * twice from two threads is harmless). */
template <typename K>
static cudaError_t launch(K kernel, unsigned long long *done, int64_t grid, size_t smem, cudaStream_t st,
                          const Params &p)
{
    if (grid <= 0) return cudaSuccess;
    if (grid > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    unsigned long long bit = 1ull << (dev & 63);
    if (!(__atomic_load_n(done, __ATOMIC_ACQUIRE) & bit)) {
        e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return e;
        __atomic_fetch_or(done, bit, __ATOMIC_RELEASE);
    }
    kernel<<<(unsigned)grid, NT, smem, st>>>(p);
    return cudaGetLastError();
}

template <typename T, int D> cudaError_t forward(Params p, cudaStream_t st)
{
    int ext[3];
    group_ext(p, ext);
    choose_box(BR, ext, p.own);
    plan_iter(p, BR, ext);
    static unsigned long long done;
    return launch(fna_fwd_kernel<T, D>, &done, plan_grid(p, p.H), fwd_smem<D>(sizeof(T)), st, p);
}

/* p.delta must hold B*H*L0*L1*L2 floats. */
template <typename T, int D> cudaError_t backward(Params p, cudaStream_t st)
{
    int ext[3];
    group_ext(p, ext);
    int64_t rows = (int64_t)p.B * p.H * p.L[0] * p.L[1] * p.L[2];
    if (rows == 0) return cudaSuccess;
    fna_delta_kernel<T, D><<<(unsigned)((rows + 255) / 256), 256, 0, st>>>(p, rows);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    Params q = p;
    choose_box(BR, ext, q.own);
    plan_iter(q, BR, ext);
    static unsigned long long done_dq, done_dkv;
    e = launch(fna_dq_kernel<T, D>, &done_dq, plan_grid(q, q.H), dq_smem<D>(sizeof(T)), st, q);
    if (e != cudaSuccess) return e;
    Params k = p;
    choose_box(BR, ext, k.own);
    plan_iter(k, dkv_bq<D>(), ext);
    return launch(fna_dkv_kernel<T, D>, &done_dkv, plan_grid(k, k.Hkv), dkv_smem<D>(sizeof(T)), st, k);
}

} /* namespace tc */

#endif /* NATTEN_TC_KERNELS_CUH */
