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
    /* For bit masks over an iterated box (window_bits): sum of 1 << (c1 * it[2])
     * over c1 < it[1], and of 1 << (c0 * it[1] * it[2]) over c0 < it[0]. */
    uint64_t rep[2];
    /* v12, the forward's key-range split (tc_wgmma.cuh, fwd_ws_kernel's
     * SPLIT): blocks below sfull own a whole query box; the rest are units
     * (box sfull + u / sparts, part u % sparts: that share of the box's
     * tiles) writing partial O, m, l to part; the last part of a box to
     * finish (v14: counted by sticket, one counter per split box, zero at
     * the launch and put back to zero by that part) merges them.  nsm: the
     * device's SMs; force_split: a split count for every box (tests). */
    float *part;
    unsigned int *sticket;
    int sfull, sparts, nsm, force_split;
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

/*
 * natten_window_g (lib/natten-window.h) in 32-bit arithmetic, with the
 * division skipped for stride 1: the kernels call it per row and per tile, and
 * 64-bit division is a long subroutine on the GPU.  Same formulas, same
 * results; `tc-harness selftest` compares the two exhaustively on small ranges.
 */
__host__ __device__ __forceinline__ void win32(int n, int K, int s, int causal, int u, int &a, int &b)
{
    int q = s == 1 ? u : (u / s) * s;
    if (causal) {
        int lead = min(q + s - 1, n - 1);
        a = max(lead - K + 1, 0);
        b = u + 1;
    } else {
        int lead = min(q + s / 2, n - 1);
        a = max(min(lead - K / 2, n - K), 0);
        b = a + K;
    }
}

/* natten_inverse_window_g in 32-bit arithmetic (same binary searches). */
__host__ __device__ __forceinline__ void inv_win32(int n, int K, int s, int causal, int v, int &qa, int &qb)
{
    int lo = 0, hi = n, a, b;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        win32(n, K, s, causal, mid, a, b);
        if (b > v) hi = mid; else lo = mid + 1;
    }
    qa = lo;
    hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        win32(n, K, s, causal, mid, a, b);
        if (a > v) hi = mid; else lo = mid + 1;
    }
    qb = lo;
}

/* What one block works on. */
struct Work {
    int b, h;      /* batch, head (query head, or KV head for the dK/dV kernel) */
    int g[3];      /* dilation group */
    int n[3];      /* the group's extent per axis */
    int o[3];      /* owned box origin, group coordinates */
};

__device__ __forceinline__ void decode_work(const Params &p, int heads, Work &w, int64_t idx)
{
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
#pragma unroll
    for (int i = 0; i < 3; i++) w.n[i] = (p.L[i] - w.g[i] + p.dil[i] - 1) / p.dil[i];
}

__device__ __forceinline__ void decode_work(const Params &p, int heads, Work &w)
{
    decode_work(p, heads, w, (int64_t)blockIdx.x);
}

/* Row r of a box -> box-relative coordinates. */
__device__ __forceinline__ void box_coords(int r, const int box[3], int c[3])
{
    c[2] = r % box[2];
    c[1] = (r / box[2]) % box[1];
    c[0] = r / (box[1] * box[2]);
}

/* Iterated tile t of a grid of nt[0] x nt[1] x nt[2] boxes starting at lo. */
__device__ __forceinline__ void tile_origin(int t, const int nt[3], const int lo[3], const int box[3], int org[3])
{
    int j2 = t % nt[2], j1 = (t / nt[2]) % nt[1], j0 = t / (nt[1] * nt[2]);
    org[0] = lo[0] + j0 * box[0];
    org[1] = lo[1] + j1 * box[1];
    org[2] = lo[2] + j2 * box[2];
}

__device__ __forceinline__ void window_of(const Params &p, const int n[3], const int u[3], int a[3], int b[3])
{
#pragma unroll
    for (int i = 0; i < 3; i++) win32(n[i], p.K[i], p.st[i], p.causal[i], u[i], a[i], b[i]);
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

/* The row of a ROWS-row box this thread stages (NTH threads, NTH/ROWS per
 * row) and its box-relative coordinates: fixed for the whole kernel. */
struct RowSlot {
    int r, sub, c[3];
};

template <int ROWS, int NTH> __device__ __forceinline__ RowSlot row_slot(const int box[3])
{
    RowSlot rs;
    rs.r = threadIdx.x / (NTH / ROWS);
    rs.sub = threadIdx.x % (NTH / ROWS);
    box_coords(rs.r, box, rs.c);
    return rs;
}

/*
 * Stage a box of ROWS rows (origin org, the first prod rows real) of tensor
 * base (already at batch and head) into shared memory s (row stride LDS),
 * zero-filling padding rows and rows outside the group.  If coords != NULL,
 * the group coordinates of each row go there (3 ints; -1 for padding).
 */
template <typename T, int D, int LDS, int ROWS, int NTH>
__device__ __forceinline__ void load_rows(const Params &p, T *s, const T *base, const Tensor &t, const Work &w,
                                          const RowSlot &rs, int prod, const int org[3], int *coords)
{
    constexpr int TPR = NTH / ROWS, CH = D / 8, CPT = CH / TPR;
    static_assert(CPT >= 1, "too many threads per row");
    int u[3];
    bool valid = rs.r < prod;
#pragma unroll
    for (int i = 0; i < 3; i++) {
        u[i] = valid ? org[i] + rs.c[i] : -1; /* padding rows: in no window */
        valid = valid && u[i] < w.n[i];
    }
    const T *src = valid ? base + token_off(p, t, w.g, u) : base;
    T *dst = s + rs.r * LDS;
#pragma unroll
    for (int j = 0; j < CPT; j++) {
        /* v22: adjacent threads of a row on adjacent chunks in each copy
         * (whole sectors, as gather_sw in tc_wgmma.cuh; -0.5 % on the 56x56
         * problem's forward and backward, back to back) */
        const int ch = j * TPR + rs.sub;
        cp_async16(dst + ch * 8, src + ch * 8, valid);
    }
    if (coords != nullptr && rs.sub == 0) {
        coords[rs.r * 3 + 0] = u[0];
        coords[rs.r * 3 + 1] = u[1];
        coords[rs.r * 3 + 2] = u[2];
    }
}

/* Per block: the union [lo, hi) and the intersection [ia, ib) of the windows
 * of the owned query box (valid part), per axis (window starts and ends
 * never decrease, so the first and last query bound both). */
__device__ __forceinline__ void query_box_windows(const Params &p, const Work &w, int lo[3], int hi[3],
                                                  int ia[3], int ib[3])
{
#pragma unroll
    for (int i = 0; i < 3; i++) {
        int first = w.o[i], last = min(w.o[i] + p.own[i], w.n[i]) - 1;
        win32(w.n[i], p.K[i], p.st[i], p.causal[i], first, lo[i], ib[i]);
        win32(w.n[i], p.K[i], p.st[i], p.causal[i], last, ia[i], hi[i]);
    }
}

/* What a query-parallel block (the forward, dQ) works on: its Work, the union
 * [lo, hi) and intersection [ia, ib) of its owned rows' windows, the
 * iterated tiles (of p.it) covering the union, per axis (nt) and in all, and
 * its KV head. */
struct QueryBlock {
    Work w;
    int lo[3], hi[3], ia[3], ib[3], nt[3];
    int ntiles, hk;
};

/* The set-up every query-parallel kernel shares.  False: the block has
 * nothing to do (its owned box starts past its dilation group's extent: the
 * grid is sized for the largest group); the kernel returns, the whole block
 * alike. */
__device__ __forceinline__ bool query_block(const Params &p, QueryBlock &qb, int64_t idx)
{
    decode_work(p, p.H, qb.w, idx);
#pragma unroll
    for (int i = 0; i < 3; i++)
        if (qb.w.o[i] >= qb.w.n[i]) return false;
    query_box_windows(p, qb.w, qb.lo, qb.hi, qb.ia, qb.ib);
#pragma unroll
    for (int i = 0; i < 3; i++) qb.nt[i] = (qb.hi[i] - qb.lo[i] + p.it[i] - 1) / p.it[i];
    qb.ntiles = qb.nt[0] * qb.nt[1] * qb.nt[2];
    qb.hk = qb.w.h / (p.H / p.Hkv);
    return true;
}

__device__ __forceinline__ bool query_block(const Params &p, QueryBlock &qb)
{
    return query_block(p, qb, (int64_t)blockIdx.x);
}

/* What a key-parallel block (dK/dV) works on: its Work (w.h is the KV
 * head), the query heads per KV head (gh), the queries whose windows meet
 * its owned keys, [lo, hi) per axis (inverse windows are contiguous and
 * monotonic too), the last owned key per axis (klast), and the iterated query
 * tiles (of p.it) covering [lo, hi), per axis (nt) and in all (ntq: per query
 * head). */
struct KeyBlock {
    Work w;
    int gh;
    int lo[3], hi[3], klast[3], nt[3];
    int ntq;
};

/* The set-up every key-parallel kernel shares; false as query_block's. */
__device__ __forceinline__ bool key_block(const Params &p, KeyBlock &kb)
{
    decode_work(p, p.Hkv, kb.w);
#pragma unroll
    for (int i = 0; i < 3; i++)
        if (kb.w.o[i] >= kb.w.n[i]) return false;
    kb.gh = p.H / p.Hkv;
#pragma unroll
    for (int i = 0; i < 3; i++) {
        const Work &w = kb.w;
        int a0, b0, a1, b1;
        kb.klast[i] = min(w.o[i] + p.own[i], w.n[i]) - 1;
        inv_win32(w.n[i], p.K[i], p.st[i], p.causal[i], w.o[i], a0, b0);
        inv_win32(w.n[i], p.K[i], p.st[i], p.causal[i], kb.klast[i], a1, b1);
        kb.lo[i] = a0;
        kb.hi[i] = b1;
        kb.nt[i] = (kb.hi[i] - kb.lo[i] + p.it[i] - 1) / p.it[i];
    }
    kb.ntq = kb.nt[0] * kb.nt[1] * kb.nt[2];
    return true;
}

/* Row 0 of batch b, head h of tensor t (an input). */
template <typename T> __device__ __forceinline__ const T *head_base(const Tensor &t, int b, int h)
{
    return reinterpret_cast<const T *>(t.data) + b * t.s[0] + h * t.s[4];
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

constexpr int BR = 64; /* rows of the smallest owned box (bounds the grid size) */
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;

/* Row mt*16 + rr*8 + lane/4 of this warp's MT*16 rows of the owned box. */
template <int MT>
__device__ __forceinline__ void lane_rows(const Params &p, const Work &w, int warp, int lane, int u[MT][2][3],
                                          bool valid[MT][2])
{
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            int c[3];
            box_coords(warp * 16 * MT + mt * 16 + (lane >> 2) + rr * 8, p.own, c);
            valid[mt][rr] = true;
#pragma unroll
            for (int i = 0; i < 3; i++) {
                u[mt][rr][i] = w.o[i] + c[i];
                valid[mt][rr] = valid[mt][rr] && u[mt][rr][i] < w.n[i];
            }
        }
}

/* A operand from the S/P accumulators of k-step kk (columns 16kk..16kk+15). */
template <typename T> __device__ __forceinline__ void acc_to_a(uint32_t a[4], const float s0[4], const float s1[4])
{
    a[0] = Mma<T>::pack(s0[0], s0[1]);
    a[1] = Mma<T>::pack(s0[2], s0[3]);
    a[2] = Mma<T>::pack(s1[0], s1[1]);
    a[3] = Mma<T>::pack(s1[2], s1[3]);
}

/*
 * Kernel configurations of the query-parallel kernels: W warps of MT m16
 * tiles each (W * 16 * MT owned queries), BN keys per iterated tile, NS
 * cp.async stages, BITS: the window mask from per-row bit masks (below)
 * instead of per-element coordinate compares.  The table is fwd_cfg below.
 */
template <int W> constexpr int fwd_minb() { return W == 4 ? 2 : 4; }
/* dQ: at head dim 32 with four warps, four blocks per SM (128 registers a
 * thread, as the dK/dV kernel); two elsewhere with four warps, three with two. */
template <int D, int W> constexpr int dq_minb() { return W == 4 ? (D == 32 ? 4 : 2) : 3; }

/* ---- forward ------------------------------------------------------------ */

/* Rows' windows live in shared memory (8 ints per row: a[3], -, b[3], -)
 * rather than registers when a warp owns two m-tiles (register budget). */
template <int MT> __host__ __device__ constexpr bool fwd_wsmem() { return MT > 1; }

template <int D, int BRQ, int BN, int NS, bool BITS, bool WSMEM> constexpr size_t fwd_smem(size_t esz)
{
    return (size_t)(BRQ + 2 * NS * BN) * (D + 8) * esz + (BITS ? 0 : NS * BN * 3 * sizeof(int)) +
           (WSMEM ? BRQ * 8 * sizeof(int) : 0);
}

/* Bits [a, b) of a 64-bit word, 0 <= a, b <= 64 (empty when b <= a). */
__host__ __device__ __forceinline__ uint64_t bit_range(int a, int b)
{
    uint64_t hi = b >= 64 ? ~0ull : (1ull << b) - 1, lo = a >= 64 ? ~0ull : (1ull << a) - 1;
    return hi & ~lo;
}

/*
 * The keys of an iterated box (origin org, shape p.it, row c0*k1*k2 + c1*k2 +
 * c2) inside the window [a, b) of one query, as a bit mask over the box's
 * rows: per axis the window cuts an interval [lo, hi) of box coordinates; the
 * axis-2 interval is replicated over the k1 values of c1 by one multiply
 * (p.rep[0] = sum of 1 << (c1 * k2)), cut to the axis-1 interval, replicated
 * over c0 (p.rep[1] = sum of 1 << (c0 * k1 * k2)) and cut to the axis-0
 * interval.  The pieces never overlap (each is narrower than its stride), so
 * the products carry nothing.  Padding rows (>= itprod) are never set, and
 * the windows lie inside the group, so keys past its extent are never set.
 */
__host__ __device__ __forceinline__ uint64_t window_bits(const Params &p, const int org[3], const int a[3],
                                                         const int b[3])
{
    int lo[3], hi[3];
    for (int i = 0; i < 3; i++) {
        lo[i] = min(max(a[i] - org[i], 0), p.it[i]);
        hi[i] = min(max(b[i] - org[i], 0), p.it[i]);
    }
    const int k2 = p.it[2], k12 = p.it[1] * p.it[2];
    uint64_t m = bit_range(lo[2], hi[2]);
    m = (m * p.rep[0]) & bit_range(lo[1] * k2, hi[1] * k2);
    return (m * p.rep[1]) & bit_range(lo[0] * k12, hi[0] * k12);
}

template <typename T, int D, int W, int MT, int BN, int NS, bool BITS>
__global__ void __launch_bounds__(W * 32, fwd_minb<W>()) fna_fwd_kernel(const Params p)
{
    constexpr int NTH = W * 32, BRQ = W * 16 * MT, LDS = D + 8, KD = D / 16, NN = BN / 8;
    constexpr bool QREG = MT == 1, WSMEM = fwd_wsmem<MT>();
    static_assert(BN <= 64, "bit masks are 64 bits wide");
    extern __shared__ __align__(16) char smem[];
    T *sQ = reinterpret_cast<T *>(smem);
    T *sK = sQ + BRQ * LDS;
    T *sV = sK + NS * BN * LDS;
    int *sKc = reinterpret_cast<int *>(sV + NS * BN * LDS); /* !BITS only */
    int *sWin = sKc + (BITS ? 0 : NS * BN * 3);             /* WSMEM only */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

    QueryBlock blk;
    if (!query_block(p, blk)) return;
    const Work &w = blk.w;
    const int *lo = blk.lo, *ia = blk.ia, *ib = blk.ib, *ntk = blk.nt;
    const int ntiles = blk.ntiles, hk = blk.hk;
    const T *qb = head_base<T>(p.q, w.b, w.h);
    const T *kb = head_base<T>(p.k, w.b, hk);
    const T *vb = head_base<T>(p.v, w.b, hk);

    /* this lane's rows' windows (rows past the group: clamped), in registers
     * or (WSMEM) in shared memory, row r at sWin[8r] */
    int wa[WSMEM ? 1 : MT][2][3], wb[WSMEM ? 1 : MT][2][3];
    if (WSMEM) {
        for (int r = tid; r < BRQ; r += NTH) {
            int c[3], uc[3], a[3], b[3];
            box_coords(r, p.own, c);
#pragma unroll
            for (int i = 0; i < 3; i++) uc[i] = min(w.o[i] + c[i], w.n[i] - 1);
            window_of(p, w.n, uc, a, b);
            *reinterpret_cast<int4 *>(sWin + 8 * r) = make_int4(a[0], a[1], a[2], 0);
            *reinterpret_cast<int4 *>(sWin + 8 * r + 4) = make_int4(b[0], b[1], b[2], 0);
        }
    } else {
        int u[MT][2][3];
        bool rvalid[MT][2];
        lane_rows<MT>(p, w, warp, lane, u, rvalid);
#pragma unroll
        for (int mt = 0; mt < (WSMEM ? 1 : MT); mt++)
#pragma unroll
            for (int rr = 0; rr < 2; rr++) {
                int uc[3];
#pragma unroll
                for (int i = 0; i < 3; i++) uc[i] = min(u[mt][rr][i], w.n[i] - 1);
                window_of(p, w.n, uc, wa[mt][rr], wb[mt][rr]);
            }
    }
    /* the window of row rr of m-tile mt of this lane */
    auto row_window = [&](int mt, int rr, int a[3], int b[3]) {
        if (WSMEM) {
            const int r = warp * 16 * MT + mt * 16 + rr * 8 + (lane >> 2);
            const int4 x = *reinterpret_cast<const int4 *>(sWin + 8 * r);
            const int4 y = *reinterpret_cast<const int4 *>(sWin + 8 * r + 4);
            a[0] = x.x, a[1] = x.y, a[2] = x.z, b[0] = y.x, b[1] = y.y, b[2] = y.z;
        } else {
#pragma unroll
            for (int i = 0; i < 3; i++) a[i] = wa[WSMEM ? 0 : mt][rr][i], b[i] = wb[WSMEM ? 0 : mt][rr][i];
        }
    };

    const RowSlot qs = row_slot<BRQ, NTH>(p.own), ks = row_slot<BN, NTH>(p.it);
    auto load_kv = [&](int t, int stage) {
        int org[3];
        tile_origin(t, ntk, lo, p.it, org);
        load_rows<T, D, LDS, BN, NTH>(p, sK + stage * BN * LDS, kb, p.k, w, ks, p.itprod, org,
                                      BITS ? nullptr : sKc + stage * BN * 3);
        load_rows<T, D, LDS, BN, NTH>(p, sV + stage * BN * LDS, vb, p.v, w, ks, p.itprod, org, nullptr);
    };

    /* NS-stage pipeline: one commit group per tile (empty past the end), Q
     * in the first; tile t is in stage t % NS. */
    load_rows<T, D, LDS, BRQ, NTH>(p, sQ, qb, p.q, w, qs, BRQ, w.o, nullptr);
#pragma unroll
    for (int s0 = 0; s0 < NS - 1; s0++) {
        if (s0 < ntiles) load_kv(s0, s0);
        cp_commit();
    }

    uint32_t qf[QREG ? KD : 1][4];
    float acc[MT][D / 8][4];
    float m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        m[mt][0] = m[mt][1] = -INFINITY;
        l[mt][0] = l[mt][1] = 0.f;
#pragma unroll
        for (int j = 0; j < D / 8; j++) acc[mt][j][0] = acc[mt][j][1] = acc[mt][j][2] = acc[mt][j][3] = 0.f;
    }
    const float sl2 = p.scale * LOG2E;
    const int r0 = warp * 16 * MT;

    for (int t = 0; t < ntiles; t++) {
        const int stage = t % NS;
        if (t + NS - 1 < ntiles) load_kv(t + NS - 1, (t + NS - 1) % NS);
        cp_commit();
        cp_wait<NS - 1>();
        __syncthreads();
        if (QREG && t == 0) {
#pragma unroll
            for (int kk = 0; kk < (QREG ? KD : 1); kk++) ldA<LDS>(qf[kk], sQ, r0, kk * 16, lane);
        }
        const T *sKs = sK + stage * BN * LDS, *sVs = sV + stage * BN * LDS;
        float s[MT][NN][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int j = 0; j < NN; j++) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                if (QREG) {
                    a[mt][0] = qf[QREG ? kk : 0][0];
                    a[mt][1] = qf[QREG ? kk : 0][1];
                    a[mt][2] = qf[QREG ? kk : 0][2];
                    a[mt][3] = qf[QREG ? kk : 0][3];
                } else {
                    ldA<LDS>(a[mt], sQ, r0 + mt * 16, kk * 16, lane);
                }
            }
#pragma unroll
            for (int j = 0; j < NN / 2; j++) {
                uint32_t b[4];
                ldB_nk<LDS>(b, sKs, j * 16, kk * 16, lane);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    Mma<T>::run(s[mt][2 * j], a[mt], b[0], b[1]);
                    Mma<T>::run(s[mt][2 * j + 1], a[mt], b[2], b[3]);
                }
            }
        }
        int org[3];
        tile_origin(t, ntk, lo, p.it, org);
        bool full = true;
#pragma unroll
        for (int i = 0; i < 3; i++) full = full && org[i] >= ia[i] && org[i] + p.it[i] <= ib[i];
        if (!full && BITS) {
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int rr = 0; rr < 2; rr++) {
                    /* this lane's columns are j * 8 + 2 * (lane & 3) + e */
                    int a[3], b[3];
                    row_window(mt, rr, a, b);
                    const uint64_t bits = window_bits(p, org, a, b) >> (2 * (lane & 3));
#pragma unroll
                    for (int j = 0; j < NN; j++)
#pragma unroll
                        for (int e = 0; e < 2; e++)
                            if (!((bits >> (j * 8 + e)) & 1u)) s[mt][j][rr * 2 + e] = -INFINITY;
                }
        } else if (!full) {
            const int *kc = sKc + stage * BN * 3;
#pragma unroll
            for (int j = 0; j < NN; j++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    int col = j * 8 + 2 * (lane & 3) + e;
                    int c[3] = {kc[col * 3], kc[col * 3 + 1], kc[col * 3 + 2]};
#pragma unroll
                    for (int mt = 0; mt < MT; mt++)
#pragma unroll
                        for (int rr = 0; rr < 2; rr++) {
                            int a[3], b[3];
                            row_window(mt, rr, a, b);
                            if (!inside(c, a, b)) s[mt][j][rr * 2 + e] = -INFINITY;
                        }
                }
        } else if (p.itprod < BN) { /* full tile of a box smaller than BN: only padding */
#pragma unroll
            for (int j = 0; j < NN; j++)
#pragma unroll
                for (int e = 0; e < 2; e++)
                    if (j * 8 + 2 * (lane & 3) + e >= p.itprod)
#pragma unroll
                        for (int mt = 0; mt < MT; mt++) s[mt][j][e] = s[mt][j][2 + e] = -INFINITY;
        }
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int rr = 0; rr < 2; rr++) {
                float mx = -INFINITY;
#pragma unroll
                for (int j = 0; j < NN; j++) mx = fmaxf(mx, fmaxf(s[mt][j][rr * 2], s[mt][j][rr * 2 + 1]));
                mx = shfl_max4(mx) * sl2;
                float mnew = fmaxf(m[mt][rr], mx);
                float muse = mnew == -INFINITY ? 0.f : mnew;
                float alpha = exp2f(m[mt][rr] - muse);
                m[mt][rr] = mnew;
                l[mt][rr] *= alpha;
#pragma unroll
                for (int j = 0; j < D / 8; j++) {
                    acc[mt][j][rr * 2] *= alpha;
                    acc[mt][j][rr * 2 + 1] *= alpha;
                }
#pragma unroll
                for (int j = 0; j < NN; j++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        float pv = exp2f(fmaf(s[mt][j][rr * 2 + e], sl2, -muse));
                        s[mt][j][rr * 2 + e] = pv;
                        l[mt][rr] += pv;
                    }
            }
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) acc_to_a<T>(a[mt], s[mt][2 * kk], s[mt][2 * kk + 1]);
#pragma unroll
            for (int jd = 0; jd < D / 16; jd++) {
                uint32_t b[4];
                ldB_kn<LDS>(b, sVs, kk * 16, jd * 16, lane);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    Mma<T>::run(acc[mt][2 * jd], a[mt], b[0], b[1]);
                    Mma<T>::run(acc[mt][2 * jd + 1], a[mt], b[2], b[3]);
                }
            }
        }
        __syncthreads();
    }
    cp_wait<0>();

    int u[MT][2][3];
    bool rvalid[MT][2];
    lane_rows<MT>(p, w, warp, lane, u, rvalid);
    T *ob = reinterpret_cast<T *>(p.o.data) + w.b * p.o.s[0] + w.h * p.o.s[4];
    float *lb = p.lse.data ? reinterpret_cast<float *>(p.lse.data) + w.b * p.lse.s[0] + w.h * p.lse.s[4]
                           : nullptr;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            float lsum = shfl_sum4(l[mt][rr]);
            if (!rvalid[mt][rr]) continue;
            float inv = 1.f / lsum;
            T *orow = ob + token_off(p, p.o, w.g, u[mt][rr]);
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
                int col = j * 8 + 2 * (lane & 3);
                *reinterpret_cast<uint32_t *>(orow + col) =
                    Mma<T>::pack(acc[mt][j][rr * 2] * inv, acc[mt][j][rr * 2 + 1] * inv);
            }
            if (lb != nullptr && (lane & 3) == 0)
                lb[token_off(p, p.lse, w.g, u[mt][rr])] = (m[mt][rr] + log2f(lsum)) * LN2;
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

template <int D, int BN> constexpr size_t dq_smem(size_t esz)
{
    return (size_t)(2 * BR + 4 * BN) * (D + 8) * esz + 2 * BN * 3 * sizeof(int);
}

template <typename T, int D, int W, int BN>
__global__ void __launch_bounds__(W * 32, dq_minb<D, W>()) fna_dq_kernel(const Params p)
{
    constexpr int NTH = W * 32, MT = 4 / W, LDS = D + 8, KD = D / 16, NN = BN / 8;
    extern __shared__ __align__(16) char smem[];
    T *sQ = reinterpret_cast<T *>(smem);
    T *sG = sQ + BR * LDS; /* dO */
    T *sK = sG + BR * LDS;
    T *sV = sK + 2 * BN * LDS;
    int *sKc = reinterpret_cast<int *>(sV + 2 * BN * LDS);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

    QueryBlock blk;
    if (!query_block(p, blk)) return;
    const Work &w = blk.w;
    const int *lo = blk.lo, *ia = blk.ia, *ib = blk.ib, *ntk = blk.nt;
    const int ntiles = blk.ntiles, hk = blk.hk;
    const T *qb = head_base<T>(p.q, w.b, w.h);
    const T *gb = head_base<T>(p.dout, w.b, w.h);
    const T *kb = head_base<T>(p.k, w.b, hk);
    const T *vb = head_base<T>(p.v, w.b, hk);
    const float *lb = head_base<float>(p.lse, w.b, w.h);

    int u[MT][2][3], wa[MT][2][3], wb[MT][2][3];
    bool rvalid[MT][2];
    float lse2[MT][2], dlt[MT][2];
    lane_rows<MT>(p, w, warp, lane, u, rvalid);
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            int uc[3];
#pragma unroll
            for (int i = 0; i < 3; i++) uc[i] = min(u[mt][rr][i], w.n[i] - 1);
            window_of(p, w.n, uc, wa[mt][rr], wb[mt][rr]);
            lse2[mt][rr] = rvalid[mt][rr] ? lb[token_off(p, p.lse, w.g, u[mt][rr])] * LOG2E : 0.f;
            dlt[mt][rr] = rvalid[mt][rr] ? p.delta[delta_index(p, w.b, w.h, w.g, u[mt][rr])] : 0.f;
        }

    const RowSlot qs = row_slot<BR, NTH>(p.own), ks = row_slot<BN, NTH>(p.it);
    auto load_kv = [&](int t, int stage) {
        int org[3];
        tile_origin(t, ntk, lo, p.it, org);
        load_rows<T, D, LDS, BN, NTH>(p, sK + stage * BN * LDS, kb, p.k, w, ks, p.itprod, org, sKc + stage * BN * 3);
        load_rows<T, D, LDS, BN, NTH>(p, sV + stage * BN * LDS, vb, p.v, w, ks, p.itprod, org, nullptr);
    };

    load_rows<T, D, LDS, BR, NTH>(p, sQ, qb, p.q, w, qs, BR, w.o, nullptr);
    load_rows<T, D, LDS, BR, NTH>(p, sG, gb, p.dout, w, qs, BR, w.o, nullptr);
    load_kv(0, 0);
    cp_commit();

    float acc[MT][D / 8][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int j = 0; j < D / 8; j++) acc[mt][j][0] = acc[mt][j][1] = acc[mt][j][2] = acc[mt][j][3] = 0.f;
    const float sl2 = p.scale * LOG2E;
    const int r0 = warp * 16 * MT;

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
        const T *sKs = sK + stage * BN * LDS, *sVs = sV + stage * BN * LDS;
        float s[MT][NN][4], dp[MT][NN][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int j = 0; j < NN; j++)
                s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = dp[mt][j][0] = dp[mt][j][1] =
                    dp[mt][j][2] = dp[mt][j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) {
            uint32_t a[MT][4], g[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                ldA<LDS>(a[mt], sQ, r0 + mt * 16, kk * 16, lane);
                ldA<LDS>(g[mt], sG, r0 + mt * 16, kk * 16, lane);
            }
#pragma unroll
            for (int j = 0; j < NN / 2; j++) {
                uint32_t b[4];
                ldB_nk<LDS>(b, sKs, j * 16, kk * 16, lane);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    Mma<T>::run(s[mt][2 * j], a[mt], b[0], b[1]);
                    Mma<T>::run(s[mt][2 * j + 1], a[mt], b[2], b[3]);
                }
                ldB_nk<LDS>(b, sVs, j * 16, kk * 16, lane);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    Mma<T>::run(dp[mt][2 * j], g[mt], b[0], b[1]);
                    Mma<T>::run(dp[mt][2 * j + 1], g[mt], b[2], b[3]);
                }
            }
        }
        int org[3];
        tile_origin(t, ntk, lo, p.it, org);
        bool full = true;
#pragma unroll
        for (int i = 0; i < 3; i++) full = full && org[i] >= ia[i] && org[i] + p.it[i] <= ib[i];
        const int *kc = sKc + stage * BN * 3;
#pragma unroll
        for (int j = 0; j < NN; j++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int col = j * 8 + 2 * (lane & 3) + e;
                int c[3] = {0, 0, 0};
                if (!full) c[0] = kc[col * 3], c[1] = kc[col * 3 + 1], c[2] = kc[col * 3 + 2];
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
#pragma unroll
                    for (int rr = 0; rr < 2; rr++) {
                        float pv = exp2f(fmaf(s[mt][j][rr * 2 + e], sl2, -lse2[mt][rr]));
                        if (full ? col >= p.itprod : !inside(c, wa[mt][rr], wb[mt][rr])) pv = 0.f;
                        s[mt][j][rr * 2 + e] = pv * (dp[mt][j][rr * 2 + e] - dlt[mt][rr]); /* dS */
                    }
            }
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) acc_to_a<T>(a[mt], s[mt][2 * kk], s[mt][2 * kk + 1]);
#pragma unroll
            for (int jd = 0; jd < D / 16; jd++) {
                uint32_t b[4];
                ldB_kn<LDS>(b, sKs, kk * 16, jd * 16, lane);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    Mma<T>::run(acc[mt][2 * jd], a[mt], b[0], b[1]);
                    Mma<T>::run(acc[mt][2 * jd + 1], a[mt], b[2], b[3]);
                }
            }
        }
        __syncthreads();
    }
    cp_wait<0>();

    T *db = reinterpret_cast<T *>(p.dq.data) + w.b * p.dq.s[0] + w.h * p.dq.s[4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            if (!rvalid[mt][rr]) continue;
            T *row = db + token_off(p, p.dq, w.g, u[mt][rr]);
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
                int col = j * 8 + 2 * (lane & 3);
                *reinterpret_cast<uint32_t *>(row + col) =
                    Mma<T>::pack(acc[mt][j][rr * 2] * p.scale, acc[mt][j][rr * 2 + 1] * p.scale);
            }
        }
}

/* ---- backward: dK, dV, key-parallel ------------------------------------- */

/* Query rows per iterated box in the dK/dV kernel (register budget). */
template <int D> __host__ __device__ constexpr int dkv_bq() { return D == 32 || D >= 128 ? 32 : 64; }
/* Blocks per SM the dK/dV kernel is built for: at head dim 32, six (80
 * registers a thread, 224 bytes of spills: on the H200 the 56x56 K 7 B 16
 * H 2 backward ran 184-190 us against 192-193 us at four blocks (128
 * registers), 5, 7 and 8 were slower; docs/runs/2026-11-30-s10-dkv32-minb.log);
 * two elsewhere. */
template <int D> constexpr int dkv_minb() { return D == 32 ? 6 : 2; }

template <int D> constexpr size_t dkv_smem(size_t esz)
{
    return (size_t)(2 * BR + 4 * dkv_bq<D>()) * (D + 8) * esz + 2 * dkv_bq<D>() * (2 + 6) * sizeof(int);
}

template <typename T, int D>
__global__ void __launch_bounds__(128, dkv_minb<D>()) fna_dkv_kernel(const Params p)
{
    constexpr int NTH = 128, LDS = D + 8, KD = D / 16, BQ = dkv_bq<D>(), NQ = BQ / 8;
    extern __shared__ __align__(16) char smem[];
    T *sK = reinterpret_cast<T *>(smem);
    T *sV = sK + BR * LDS;
    T *sQ = sV + BR * LDS;   /* 2 stages */
    T *sG = sQ + 2 * BQ * LDS; /* dO, 2 stages */
    float *sL = reinterpret_cast<float *>(sG + 2 * BQ * LDS); /* lse, 2 stages */
    float *sD = sL + 2 * BQ;                                   /* delta, 2 stages */
    int *sW = reinterpret_cast<int *>(sD + 2 * BQ);            /* windows [2][BQ][6] */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

    KeyBlock blk;
    if (!key_block(p, blk)) return;
    const Work &w = blk.w; /* w.h is the KV head */
    const int hk = w.h, gh = blk.gh;
    const int *lo = blk.lo, *klast = blk.klast, *ntq = blk.nt;
    const int ntq_all = blk.ntq;
    const int ntiles = ntq_all * gh;
    const T *kb = head_base<T>(p.k, w.b, hk);
    const T *vb = head_base<T>(p.v, w.b, hk);

    int u[1][2][3];
    bool rvalid[1][2];
    lane_rows<1>(p, w, warp, lane, u, rvalid);

    const RowSlot ks = row_slot<BR, NTH>(p.own), qs = row_slot<BQ, NTH>(p.it);
    int qc[3] = {0, 0, 0}; /* box coordinates of query row tid (< BQ) */
    if (tid < BQ) box_coords(tid, p.it, qc);
    auto load_q = [&](int t, int stage) {
        int org[3], h = hk * gh + t / ntq_all;
        tile_origin(t % ntq_all, ntq, lo, p.it, org);
        const T *qb = head_base<T>(p.q, w.b, h);
        const T *gb = head_base<T>(p.dout, w.b, h);
        load_rows<T, D, LDS, BQ, NTH>(p, sQ + stage * BQ * LDS, qb, p.q, w, qs, p.itprod, org, nullptr);
        load_rows<T, D, LDS, BQ, NTH>(p, sG + stage * BQ * LDS, gb, p.dout, w, qs, p.itprod, org, nullptr);
        if (tid < BQ) {
            int uq[3], a[3], b[3];
            bool valid = tid < p.itprod;
#pragma unroll
            for (int i = 0; i < 3; i++) {
                uq[i] = org[i] + qc[i];
                valid = valid && uq[i] < w.n[i];
            }
            const float *lb = head_base<float>(p.lse, w.b, h);
            cp_async4(sL + stage * BQ + tid, valid ? lb + token_off(p, p.lse, w.g, uq) : lb, valid);
            cp_async4(sD + stage * BQ + tid, valid ? p.delta + delta_index(p, w.b, h, w.g, uq) : p.delta, valid);
            if (valid) {
                window_of(p, w.n, uq, a, b);
            } else {
#pragma unroll
                for (int i = 0; i < 3; i++) a[i] = 1, b[i] = 0; /* no key */
            }
            int *ws = sW + (stage * BQ + tid) * 6;
#pragma unroll
            for (int i = 0; i < 3; i++) ws[i] = a[i], ws[3 + i] = b[i];
        }
    };
    /* An iterated box needs no mask when all its queries exist and every
     * one's window holds the whole valid owned key box. */
    auto tile_full = [&](int t) {
        int org[3];
        tile_origin(t % ntq_all, ntq, lo, p.it, org);
        bool full = p.itprod == BQ;
#pragma unroll
        for (int i = 0; i < 3; i++) {
            int last = org[i] + p.it[i] - 1, a0, b0, a1, b1;
            if (last >= w.n[i]) return false;
            win32(w.n[i], p.K[i], p.st[i], p.causal[i], org[i], a0, b0);
            win32(w.n[i], p.K[i], p.st[i], p.causal[i], last, a1, b1);
            full = full && a1 <= w.o[i] && b0 > klast[i];
        }
        return full;
    };

    load_rows<T, D, LDS, BR, NTH>(p, sK, kb, p.k, w, ks, BR, w.o, nullptr);
    load_rows<T, D, LDS, BR, NTH>(p, sV, vb, p.v, w, ks, BR, w.o, nullptr);
    if (ntiles > 0) load_q(0, 0);
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
        /* S^T = K Q^T and dP^T = V dO^T: rows keys, columns queries */
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
                        if (!inside(u[0][rr], a, b)) pv = 0.f;
                    }
                    s[j][rr * 2 + e] = pv;
                    dp[j][rr * 2 + e] = pv * (dp[j][rr * 2 + e] - dl);
                }
            }
        /* dV += P^T dO, dK += dS^T Q */
#pragma unroll
        for (int kk = 0; kk < BQ / 16; kk++) {
            uint32_t a[4], ad[4];
            acc_to_a<T>(a, s[2 * kk], s[2 * kk + 1]);
            acc_to_a<T>(ad, dp[2 * kk], dp[2 * kk + 1]);
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
    cp_wait<0>(); /* nothing may stay in flight (no tiles at all: keys in no window) */

    T *dkb = reinterpret_cast<T *>(p.dk.data) + w.b * p.dk.s[0] + hk * p.dk.s[4];
    T *dvb = reinterpret_cast<T *>(p.dv.data) + w.b * p.dv.s[0] + hk * p.dv.s[4];
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        if (!rvalid[0][rr]) continue;
        T *rk = dkb + token_off(p, p.dk, w.g, u[0][rr]);
        T *rv = dvb + token_off(p, p.dv, w.g, u[0][rr]);
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
 * side that is still below its extent, fastest axis first on ties; leftovers
 * go to the last axis. */
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

/* Tiles of width k along an axis of union length U that lie wholly inside
 * [ia, ib) (union-relative): the tiles that need no mask on that axis. */
static inline int full_tiles(int U, int ia, int ib, int k)
{
    int first = cdiv(ia, k), last = ib / k; /* tiles [first, last) */
    (void)U;
    return last > first ? last - first : 0;
}

/* The iterated box (at most maxprod rows, any shape) that covers a union box
 * of extents U in the least cost: tiles + weight * masked tiles, where a tile
 * is masked unless it lies inside the windows' intersection [ia, ib) on every
 * axis (union-relative); ties: more rows used.  weight 0: fewest tiles. */
static inline void best_box(int maxprod, const int U[3], const int ia[3], const int ib[3], double weight,
                            int box[3])
{
    double best = -1;
    int bprod = 0;
    for (int k0 = 1; k0 <= maxprod && k0 <= U[0]; k0++)
        for (int k1 = 1; k0 * k1 <= maxprod && k1 <= U[1]; k1++) {
            int k2 = maxprod / (k0 * k1);
            if (k2 > U[2]) k2 = U[2];
            int64_t tiles = (int64_t)cdiv(U[0], k0) * cdiv(U[1], k1) * cdiv(U[2], k2);
            int64_t full = (int64_t)full_tiles(U[0], ia[0], ib[0], k0) * full_tiles(U[1], ia[1], ib[1], k1) *
                           full_tiles(U[2], ia[2], ib[2], k2);
            double cost = (double)tiles + weight * (double)(tiles - full);
            int prod = k0 * k1 * k2;
            if (best < 0 || cost < best || (cost == best && prod > bprod)) {
                best = cost;
                bprod = prod;
                box[0] = k0;
                box[1] = k1;
                box[2] = k2;
            }
        }
}

/* Typical extent of the union of the windows of `own` consecutive rows, and
 * where their intersection lies in it (union-relative [ia, ib)). */
static inline void union_ext(const Params &p, const int ext[3], const int own[3], int U[3], int ia[3], int ib[3])
{
    for (int i = 0; i < 3; i++) {
        U[i] = p.K[i] + own[i] - 1 + p.st[i] - 1;
        if (U[i] > ext[i]) U[i] = ext[i];
        int K = p.K[i] < U[i] ? p.K[i] : U[i];
        ia[i] = U[i] - K;
        ib[i] = K;
    }
}

/* The cost of a masked tile relative to a full one, for the box search of
 * the forward kernels (bit-mask configurations); the harness sets it. */
inline double &fwd_mask_weight()
{
    static double w = 0.5; /* NOTES.md v3: 0.5 beat 0 on both big problems */
    return w;
}

/* What the kernels derive from the iterated box p.it: its row count and the
 * replication masks of window_bits. */
static inline void finish_iter(Params &p)
{
    p.itprod = p.it[0] * p.it[1] * p.it[2];
    p.rep[0] = p.rep[1] = 0;
    for (int c = 0; c < p.it[1]; c++) p.rep[0] |= 1ull << (c * p.it[2]);
    for (int c = 0; c < p.it[0]; c++) p.rep[1] |= 1ull << (c * p.it[1] * p.it[2]);
}

static inline void plan_iter(Params &p, int maxprod, const int ext[3], double weight = 0.0)
{
    int U[3], ia[3], ib[3];
    union_ext(p, ext, p.own, U, ia, ib);
    best_box(maxprod, U, ia, ib, weight, p.it);
    finish_iter(p);
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
static cudaError_t launch(K kernel, unsigned long long *done, int64_t grid, int threads, size_t smem,
                          cudaStream_t st, const Params &p)
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
    kernel<<<(unsigned)grid, threads, smem, st>>>(p);
    return cudaGetLastError();
}

template <typename T, int D, int W, int MT, int BN, int NS, bool BITS>
cudaError_t forward_v(Params p, cudaStream_t st)
{
    int ext[3];
    group_ext(p, ext);
    choose_box(W * 16 * MT, ext, p.own);
    plan_iter(p, BN, ext, BITS ? fwd_mask_weight() : 0.0);
    static unsigned long long done;
    return launch(fna_fwd_kernel<T, D, W, MT, BN, NS, BITS>, &done, plan_grid(p, p.H), W * 32,
                  fwd_smem<D, W * 16 * MT, BN, NS, BITS, fwd_wsmem<MT>()>(sizeof(T)), st, p);
}

template <typename T, int D, int W, int BN> cudaError_t dq_v(Params p, cudaStream_t st)
{
    int ext[3];
    group_ext(p, ext);
    choose_box(BR, ext, p.own);
    plan_iter(p, BN, ext);
    static unsigned long long done;
    return launch(fna_dq_kernel<T, D, W, BN>, &done, plan_grid(p, p.H), W * 32, dq_smem<D, BN>(sizeof(T)), st, p);
}

/*
 * Kernel configurations (the backend's tunable configurations 1..N_CFG are
 * these, 0 is the per-head-dim default below).  Forward: warps x rows per
 * warp (owned query box), keys per iterated tile, cp.async stages, mask.
 * The backward's dQ kernel has configurations 0-2 only (64-row boxes, the
 * coordinate mask); configurations 3 and up use dq_default.
 */
constexpr int N_CFG = 9;
inline constexpr const char *cfg_names[N_CFG] = {
    "w4x16-n64",      /* 0: 64 queries, Q in registers; v1 */
    "w2x32-n32",      /* 1: 64 queries, two m-tiles per warp */
    "w4x16-n32",      /* 2 */
    "w4x16-n64-bits", /* 3: 0 with bit-mask windows */
    "w4x16-n32-bits", /* 4: 2 with bit-mask windows */
    "w4x32-n32-bits", /* 5: 128 queries, Q re-read from shared memory */
    "w4x32-n32-s3-bits", /* 6: 5 with three cp.async stages */
    "w4x32-n64-bits", /* 7: 128 queries, 64-key tiles */
    "w2x32-n32-bits", /* 8: 1 with bit-mask windows */
};
/* Owned query rows, keys per tile and mask kind of each (for reports). */
inline constexpr int cfg_rows[N_CFG] = {64, 64, 64, 64, 64, 128, 128, 128, 64};
inline constexpr int cfg_bn[N_CFG] = {64, 32, 32, 64, 32, 32, 32, 64, 32};
inline constexpr bool cfg_bits[N_CFG] = {false, false, false, true, true, true, true, true, true};

/* The configuration the library runs by default, per head dim (measured on
 * the H200, NOTES.md v3: 128-row query boxes with 32-key tiles are fastest on
 * the D 128 problems; D 64 follows them unmeasured; D 32 keeps v2's pick,
 * again the fastest in v3).  The backward keeps v2's 64-row dQ and dK/dV
 * blocks: 128-row blocks of 8 warps were measured slower (NOTES.md v3). */
template <int D> constexpr int fwd_default() { return D == 32 ? 1 : 5; }
template <int D> constexpr int dq_default() { return 2; }

template <typename T, int D, int V> cudaError_t forward_cfg(const Params &p, cudaStream_t st)
{
    if constexpr (V == 0) return forward_v<T, D, 4, 1, 64, 2, false>(p, st);
    else if constexpr (V == 1) return forward_v<T, D, 2, 2, 32, 2, false>(p, st);
    else if constexpr (V == 2) return forward_v<T, D, 4, 1, 32, 2, false>(p, st);
    else if constexpr (V == 3) return forward_v<T, D, 4, 1, 64, 2, true>(p, st);
    else if constexpr (V == 4) return forward_v<T, D, 4, 1, 32, 2, true>(p, st);
    else if constexpr (V == 5) return forward_v<T, D, 4, 2, 32, 2, true>(p, st);
    else if constexpr (V == 6) return forward_v<T, D, 4, 2, 32, 3, true>(p, st);
    else if constexpr (V == 7) return forward_v<T, D, 4, 2, 64, 2, true>(p, st);
    else return forward_v<T, D, 2, 2, 32, 2, true>(p, st);
}

template <typename T, int D, int V> cudaError_t dq_cfg(const Params &p, cudaStream_t st)
{
    if constexpr (V == 1) return dq_v<T, D, 2, 32>(p, st);
    else if constexpr (V == 2) return dq_v<T, D, 4, 32>(p, st);
    else return dq_v<T, D, 4, 64>(p, st);
}

/* variant: -1 (or out of range) the default, else 0..N_CFG-1. */
template <typename T, int D> cudaError_t forward(const Params &p, cudaStream_t st, int variant = -1)
{
    switch (variant) {
    case 0: return forward_cfg<T, D, 0>(p, st);
    case 1: return forward_cfg<T, D, 1>(p, st);
    case 2: return forward_cfg<T, D, 2>(p, st);
    case 3: return forward_cfg<T, D, 3>(p, st);
    case 4: return forward_cfg<T, D, 4>(p, st);
    case 5: return forward_cfg<T, D, 5>(p, st);
    case 6: return forward_cfg<T, D, 6>(p, st);
    case 7: return forward_cfg<T, D, 7>(p, st);
    case 8: return forward_cfg<T, D, 8>(p, st);
    default: return forward_cfg<T, D, fwd_default<D>()>(p, st);
    }
}

/* p.delta must hold B*H*L0*L1*L2 floats. */
template <typename T, int D> cudaError_t backward(const Params &p, cudaStream_t st, int variant = -1)
{
    int ext[3];
    group_ext(p, ext);
    int64_t rows = (int64_t)p.B * p.H * p.L[0] * p.L[1] * p.L[2];
    if (rows == 0) return cudaSuccess;
    fna_delta_kernel<T, D><<<(unsigned)((rows + 255) / 256), 256, 0, st>>>(p, rows);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    if (variant == 0) e = dq_cfg<T, D, 0>(p, st);
    else if (variant == 1) e = dq_cfg<T, D, 1>(p, st);
    else if (variant == 2) e = dq_cfg<T, D, 2>(p, st);
    else e = dq_cfg<T, D, dq_default<D>()>(p, st);
    if (e != cudaSuccess) return e;
    Params k = p;
    choose_box(BR, ext, k.own);
    plan_iter(k, dkv_bq<D>(), ext);
    static unsigned long long done_dkv;
    return launch(fna_dkv_kernel<T, D>, &done_dkv, plan_grid(k, k.Hkv), 128, dkv_smem<D>(sizeof(T)), st, k);
}

} /* namespace tc */

#endif /* NATTEN_TC_KERNELS_CUH */
