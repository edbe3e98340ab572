/*
 * kernels.cuh - the cuda-tiled kernels, templated on the element type only
 * (tiled-<dtype>.cu instantiate one each: few instantiations, short builds).
 *
 * One mechanism serves every op.  A block owns a tile of "centres": a box of
 * T0 x T1 x T2 positions of one dilation group per axis (the box is in group
 * coordinates, so a tile's neighbourhoods touch one compact box of partners).
 * Direct kernels take queries as centres and their window keys as partners;
 * inverse kernels take keys as centres and the queries whose windows hold them
 * (the inverse neighbourhood, one contiguous run per axis) as partners, which
 * gives dK/dV without atomics.  The partner box is staged in shared memory in
 * chunks (any K: a chunk is as big as the budget allows, usually the whole
 * box), each partner row loaded once per tile and converted to the
 * accumulation type (float; double for fp64).  Each centre is served by G
 * lanes (a power of two): lane l holds components l, l+G, l+2G, ... of the
 * centre's rows in registers (up to 32 each, so head dims up to 32*G <= 1024)
 * and dot products are summed across the G lanes with shuffles.  Every sum has
 * a fixed order: results are deterministic.
 *
 * Rank 1 and 2 with head dims up to 32 in fp32/fp16/bf16 go to the fast
 * kernels of fast2d.cuh instead (the op functions at the end of this file
 * choose); these generic kernels serve everything else.
 */
#ifndef NATTEN_CUDA_TILED_KERNELS_CUH
#define NATTEN_CUDA_TILED_KERNELS_CUH

#include "cuda-tiled.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <pthread.h>

namespace ct {

typedef int64_t i64;

/* registers per lane for one row */
#define NR 32

template <typename T> struct acc_of { typedef float type; };
template <> struct acc_of<double> { typedef double type; };

__device__ __forceinline__ float to_acc(float x) { return x; }
__device__ __forceinline__ double to_acc(double x) { return x; }
__device__ __forceinline__ float to_acc(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 x) { return __bfloat162float(x); }

__device__ __forceinline__ void put(float *p, float x) { *p = x; }
__device__ __forceinline__ void put(double *p, double x) { *p = x; }
__device__ __forceinline__ void put(__half *p, float x) { *p = __float2half_rn(x); }
__device__ __forceinline__ void put(__nv_bfloat16 *p, float x) { *p = __float2bfloat16_rn(x); }

__device__ __forceinline__ float ex(float x) { return expf(x); }
__device__ __forceinline__ double ex(double x) { return exp(x); }
__device__ __forceinline__ float lg(float x) { return logf(x); }
__device__ __forceinline__ double lg(double x) { return log(x); }

/* A tensor view as the kernels see it: element strides of [B, X0, X1, X2, H, C]
 * (C is unit-stride: supports() insists). */
struct dview {
    char *p;
    i64 s[5];
};

template <typename T>
__device__ __forceinline__ T *at(const dview &v, i64 b, const i64 x[3], i64 h)
{
    return (T *)v.p + b * v.s[0] + x[0] * v.s[1] + x[1] * v.s[2] + x[2] * v.s[3] + h * v.s[4];
}

/* rpb / d_rpb: [H, E0, E1, E2] as the canonical view [1, E0, E1, E2, H, 1] */
template <typename T>
__device__ __forceinline__ T *rpb_at(const dview &v, i64 h, const i64 e[3])
{
    return (T *)v.p + e[0] * v.s[1] + e[1] * v.s[2] + e[2] * v.s[3] + h * v.s[4];
}

struct axis {
    i64 L;          /* extent */
    int K, d, s, c; /* window, dilation, stride, causal */
    int T;          /* positions per tile on this axis (centres x R on axis 0) */
    i64 tpg;        /* tiles per dilation group */
    i64 C;          /* partner chunk extent */
};

struct geo {
    axis ax[3];
    int T;          /* centres per tile */
    int G;          /* lanes per centre */
    int R;          /* queries per centre along axis 0 (register blocking; 1 = off) */
    int rs;         /* staged row stride (elements) */
    i64 BH;         /* batch x heads walked by blockIdx.y */
    int H;          /* heads walked (query heads, or kv heads for dK/dV) */
    i64 crows;      /* rows of a full chunk (C0*C1*C2): the window table follows them */
};

/* The tile of this block; false if it lies past its (shorter) group. */
struct tile {
    i64 g[3], u0[3], ul[3], n[3];
};

__device__ __forceinline__ bool get_tile(const geo &G, tile &t)
{
    i64 r = blockIdx.x;
    for (int a = 2; a >= 0; a--) {
        const axis &x = G.ax[a];
        i64 nt = (i64)x.d * x.tpg, ta = r % nt;
        r /= nt;
        t.g[a] = ta / x.tpg;
        t.u0[a] = (ta % x.tpg) * x.T;
        t.n[a] = natten_group_len(x.L, x.d, t.g[a]);
        if (t.u0[a] >= t.n[a]) return false;
        t.ul[a] = t.u0[a] + x.T - 1 < t.n[a] ? t.u0[a] + x.T - 1 : t.n[a] - 1;
    }
    return true;
}

/* One centre (served by G lanes): its position and partner run per axis. */
struct centre {
    bool on;
    int lane;
    unsigned mask;  /* the G lanes of this centre within the warp */
    i64 u[3], x[3]; /* group position, global index */
    i64 lo[3], hi[3];
};

template <bool INV>
__device__ __forceinline__ void get_centre(const geo &G, const tile &t, centre &c)
{
    int l = (int)threadIdx.x / G.G, c0 = G.ax[0].T / G.R;
    i64 li[3];
    c.lane = (int)threadIdx.x % G.G;
    c.mask = G.G == 32 ? 0xffffffffu : (((1u << G.G) - 1u) << ((threadIdx.x % 32) / G.G * G.G));
    li[2] = l % G.ax[2].T;
    li[1] = (l / G.ax[2].T) % G.ax[1].T;
    li[0] = (i64)(l / (G.ax[2].T * G.ax[1].T)) * G.R;
    c.on = l < G.T && li[0] / G.R < c0;
    for (int a = 0; a < 3; a++) {
        const axis &x = G.ax[a];
        i64 q0, q1, last;
        c.u[a] = t.u0[a] + li[a];
        if (c.u[a] > t.ul[a]) {
            c.on = false;
            c.u[a] = t.ul[a];
        }
        c.x[a] = c.u[a] * x.d + t.g[a];
        if (INV) natten_inverse_window_g(t.n[a], x.K, x.s, x.c, c.u[a], &c.lo[a], &c.hi[a]);
        else natten_window_g(t.n[a], x.K, x.s, x.c, c.u[a], &c.lo[a], &c.hi[a]);
        if (!INV && a == 0 && G.R > 1) { /* partners of the R queries: a union of windows */
            last = c.u[0] + G.R - 1 < t.ul[0] ? c.u[0] + G.R - 1 : t.ul[0];
            natten_window_g(t.n[0], x.K, x.s, x.c, last, &q0, &q1);
            c.hi[0] = q1;
        }
    }
}

template <typename A>
__device__ __forceinline__ A gsum(A v, int G, unsigned mask)
{
    for (int o = G >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(mask, v, o, G);
    return v;
}

/* components of a dim-long row held by this lane */
__device__ __forceinline__ int lane_count(int dim, int lane, int G)
{
    return dim > lane ? (dim - lane + G - 1) / G : 0;
}

/*
 * The tile driver: stage the partner box chunk by chunk; every centre visits
 * its partners in the chunk.  Body provides width (staged row length),
 * stage(b, h, x[3], k) -> A, and visit(row, p[3], w[3]) (p: partner group
 * position; w: for inverse kernels, the partner query's window start).
 */
template <bool INV, typename A, typename Body>
__device__ __forceinline__ void drive(const geo &G, const tile &t, const centre &c, Body &body,
                                      i64 b, i64 h, A *sm, i64 *ws)
{
    i64 lo[3], hi[3];
    for (int a = 0; a < 3; a++) {
        const axis &x = G.ax[a];
        i64 q0, q1;
        if (INV) {
            natten_inverse_window_g(t.n[a], x.K, x.s, x.c, t.u0[a], &lo[a], &q1);
            natten_inverse_window_g(t.n[a], x.K, x.s, x.c, t.ul[a], &q0, &hi[a]);
        } else {
            natten_window_g(t.n[a], x.K, x.s, x.c, t.u0[a], &lo[a], &q1);
            natten_window_g(t.n[a], x.K, x.s, x.c, t.ul[a], &q0, &hi[a]);
        }
    }
    const int W = body.width, RS = G.rs;
    for (i64 c0 = lo[0]; c0 < hi[0]; c0 += G.ax[0].C) {
        i64 e0 = min(c0 + G.ax[0].C, hi[0]);
        for (i64 c1 = lo[1]; c1 < hi[1]; c1 += G.ax[1].C) {
            i64 e1 = min(c1 + G.ax[1].C, hi[1]);
            for (i64 c2 = lo[2]; c2 < hi[2]; c2 += G.ax[2].C) {
                i64 e2 = min(c2 + G.ax[2].C, hi[2]);
                /* a chunk fits in shared memory: its sizes fit in int */
                int n0 = (int)(e0 - c0), n1 = (int)(e1 - c1), n2 = (int)(e2 - c2), rows = n0 * n1 * n2;
                /* row by row, L threads per row (blockDim.x is a power of two), so
                 * that the row's coordinates are worked out once per row */
                const int L = blockDim.x < 32 ? (int)blockDim.x : 32, lane = (int)threadIdx.x % L;
                __syncthreads(); /* the previous chunk is consumed */
                for (int r = (int)threadIdx.x / L; r < rows; r += (int)blockDim.x / L) {
                    i64 x[3];
                    x[2] = (c2 + r % n2) * G.ax[2].d + t.g[2];
                    x[1] = (c1 + (r / n2) % n1) * G.ax[1].d + t.g[1];
                    x[0] = (c0 + r / (n2 * n1)) * G.ax[0].d + t.g[0];
                    A *dst = sm + (size_t)r * RS;
                    for (int k = lane; k < W; k += L) dst[k] = body.stage(b, h, x, k);
                }
                if (INV && Body::need_ws) {
                    for (int idx = (int)threadIdx.x; idx < n0 + n1 + n2; idx += (int)blockDim.x) {
                        int a = idx < n0 ? 0 : idx < n0 + n1 ? 1 : 2;
                        int off = a == 0 ? 0 : a == 1 ? n0 : n0 + n1;
                        i64 base = a == 0 ? 0 : a == 1 ? G.ax[0].C : G.ax[0].C + G.ax[1].C;
                        i64 start = a == 0 ? c0 : a == 1 ? c1 : c2, wa, wb;
                        const axis &x = G.ax[a];
                        natten_window_g(t.n[a], x.K, x.s, x.c, start + idx - off, &wa, &wb);
                        ws[base + idx - off] = wa;
                    }
                }
                __syncthreads();
                if (!c.on) continue;
                i64 p[3], w[3] = {0, 0, 0};
                i64 l0 = max(c.lo[0], c0), h0 = min(c.hi[0], e0);
                i64 l1 = max(c.lo[1], c1), h1 = min(c.hi[1], e1);
                i64 l2 = max(c.lo[2], c2), h2 = min(c.hi[2], e2);
                for (p[0] = l0; p[0] < h0; p[0]++) {
                    if (INV && Body::need_ws) w[0] = ws[p[0] - c0];
                    for (p[1] = l1; p[1] < h1; p[1]++) {
                        if (INV && Body::need_ws) w[1] = ws[G.ax[0].C + p[1] - c1];
                        const A *rowbase = sm + (size_t)(((p[0] - c0) * n1 + (p[1] - c1)) * n2) * RS;
                        for (p[2] = l2; p[2] < h2; p[2]++) {
                            if (INV && Body::need_ws) w[2] = ws[G.ax[0].C + G.ax[1].C + p[2] - c2];
                            body.visit(rowbase + (p[2] - c2) * RS, p, w);
                        }
                    }
                }
            }
        }
    }
}

/* Slot of group position p in a window starting at a (row-major over axes). */
__device__ __forceinline__ i64 slot_of(const geo &G, const i64 p[3], const i64 a[3])
{
    return ((p[0] - a[0]) * G.ax[1].K + (p[1] - a[1])) * G.ax[2].K + (p[2] - a[2]);
}

/* global index of group position p on each axis */
__device__ __forceinline__ void to_global(const geo &G, const tile &t, const i64 p[3], i64 x[3])
{
    for (int a = 0; a < 3; a++) x[a] = p[a] * G.ax[a].d + t.g[a];
}

#define CT_KERNEL_PROLOGUE(INV)                                                        \
    extern __shared__ __align__(16) unsigned char ct_smem[];                           \
    tile t;                                                                            \
    if (!get_tile(G, t)) return;                                                       \
    centre c;                                                                          \
    get_centre<INV>(G, t, c);                                                          \
    A *sm = (A *)ct_smem;                                                              \
    (void)sm;

/* ---- unfused: PN (attn = X . Y per slot, + rpb) ---------------------------------- */

template <typename T, typename A>
struct pn_body {
    static const bool need_ws = false;
    const geo &G;
    const tile &t;
    const centre &c;
    dview X, Y, R, O;
    bool rpb;
    int D, width, njl;
    i64 b, h;
    A xr[NR];
    __device__ pn_body(const geo &G_, const tile &t_, const centre &c_) : G(G_), t(t_), c(c_) {}
    __device__ __forceinline__ A stage(i64 bb, i64 hh, const i64 x[3], int k)
    {
        return to_acc(at<T>(Y, bb, x, hh)[k]);
    }
    __device__ __forceinline__ void visit(const A *row, const i64 p[3], const i64 *)
    {
        A s = 0;
#pragma unroll
        for (int j = 0; j < NR; j++)
            if (j < njl) s += xr[j] * row[c.lane + j * G.G];
        s = gsum(s, G.G, c.mask);
        if (c.lane == 0) {
            if (rpb) {
                i64 e[3];
                for (int a = 0; a < 3; a++) e[a] = p[a] - c.u[a] + G.ax[a].K - 1;
                s += to_acc(*rpb_at<T>(R, h, e));
            }
            put(at<T>(O, b, c.x, h) + slot_of(G, p, c.lo), s);
        }
    }
};

template <typename T, typename A>
__global__ void __launch_bounds__(CT_THREADS) pn_kernel(geo G, dview X, dview Y, dview R, dview O,
                                                        int rpb, int D, A mval, int any_causal)
{
    CT_KERNEL_PROLOGUE(false)
    pn_body<T, A> body(G, t, c);
    body.X = X; body.Y = Y; body.R = R; body.O = O; body.rpb = rpb != 0; body.D = D;
    body.width = D;
    body.njl = lane_count(D, c.lane, G.G);
    for (i64 bh = blockIdx.y; bh < G.BH; bh += gridDim.y) {
        body.b = bh / G.H;
        body.h = bh % G.H;
        if (c.on) {
            const T *xp = at<T>(X, body.b, c.x, body.h);
#pragma unroll
            for (int j = 0; j < NR; j++)
                if (j < body.njl) body.xr[j] = to_acc(xp[c.lane + j * G.G]);
            if (any_causal) { /* slots past a causal window's end (lanes take turns) */
                T *op = at<T>(O, body.b, c.x, body.h);
                i64 s = 0;
                for (int t0 = 0; t0 < G.ax[0].K; t0++)
                    for (int t1 = 0; t1 < G.ax[1].K; t1++)
                        for (int t2 = 0; t2 < G.ax[2].K; t2++, s++)
                            if ((int)(s & (G.G - 1)) == c.lane &&
                                (c.lo[0] + t0 >= c.hi[0] || c.lo[1] + t1 >= c.hi[1] || c.lo[2] + t2 >= c.hi[2]))
                                put(op + s, mval);
            }
        }
        drive<false, A>(G, t, c, body, body.b, body.h, sm, (i64 *)0);
    }
}

/* ---- unfused: NN (out = sum over slots of W[slot] * Y) --------------------------- */

template <typename T, typename A>
struct nn_body {
    static const bool need_ws = false;
    const geo &G;
    const tile &t;
    const centre &c;
    dview Wt, Y;
    int width, njl;
    i64 b, h;
    const T *wrow;
    A acc[NR];
    __device__ nn_body(const geo &G_, const tile &t_, const centre &c_) : G(G_), t(t_), c(c_) {}
    __device__ __forceinline__ A stage(i64 bb, i64 hh, const i64 x[3], int k)
    {
        return to_acc(at<T>(Y, bb, x, hh)[k]);
    }
    __device__ __forceinline__ void visit(const A *row, const i64 p[3], const i64 *)
    {
        A w = to_acc(wrow[slot_of(G, p, c.lo)]);
#pragma unroll
        for (int j = 0; j < NR; j++)
            if (j < njl) acc[j] += w * row[c.lane + j * G.G];
    }
};

template <typename T, typename A>
__global__ void __launch_bounds__(CT_THREADS) nn_kernel(geo G, dview Wt, dview Y, dview O, int Dv)
{
    CT_KERNEL_PROLOGUE(false)
    nn_body<T, A> body(G, t, c);
    body.Wt = Wt; body.Y = Y; body.width = Dv;
    body.njl = lane_count(Dv, c.lane, G.G);
    for (i64 bh = blockIdx.y; bh < G.BH; bh += gridDim.y) {
        body.b = bh / G.H;
        body.h = bh % G.H;
        body.wrow = at<T>(Wt, body.b, c.x, body.h);
#pragma unroll
        for (int j = 0; j < NR; j++) body.acc[j] = 0;
        drive<false, A>(G, t, c, body, body.b, body.h, sm, (i64 *)0);
        if (c.on) {
            T *op = at<T>(O, body.b, c.x, body.h);
#pragma unroll
            for (int j = 0; j < NR; j++)
                if (j < body.njl) put(op + c.lane + j * G.G, body.acc[j]);
        }
    }
}

/* ---- unfused: IN (out[key] = sum over queries seeing it of W[q, slot] * X[q]) ----- */

template <typename T, typename A>
struct in_body {
    static const bool need_ws = true;
    const geo &G;
    const tile &t;
    const centre &c;
    dview Wt, X;
    int width, njl;
    i64 b, h;
    A acc[NR];
    __device__ in_body(const geo &G_, const tile &t_, const centre &c_) : G(G_), t(t_), c(c_) {}
    __device__ __forceinline__ A stage(i64 bb, i64 hh, const i64 x[3], int k)
    {
        return to_acc(at<T>(X, bb, x, hh)[k]);
    }
    __device__ __forceinline__ void visit(const A *row, const i64 p[3], const i64 *w)
    {
        i64 x[3];
        to_global(G, t, p, x);
        A wt = to_acc(at<T>(Wt, b, x, h)[slot_of(G, c.u, w)]);
#pragma unroll
        for (int j = 0; j < NR; j++)
            if (j < njl) acc[j] += wt * row[c.lane + j * G.G];
    }
};

template <typename T, typename A>
__global__ void __launch_bounds__(CT_THREADS) in_kernel(geo G, dview Wt, dview X, dview O, int Dx)
{
    CT_KERNEL_PROLOGUE(true)
    in_body<T, A> body(G, t, c);
    body.Wt = Wt; body.X = X; body.width = Dx;
    body.njl = lane_count(Dx, c.lane, G.G);
    i64 *ws = (i64 *)(ct_smem + (((size_t)G.crows * G.rs * sizeof(A) + 15) / 16) * 16);
    for (i64 bh = blockIdx.y; bh < G.BH; bh += gridDim.y) {
        body.b = bh / G.H;
        body.h = bh % G.H;
#pragma unroll
        for (int j = 0; j < NR; j++) body.acc[j] = 0;
        drive<true, A>(G, t, c, body, body.b, body.h, sm, ws);
        if (c.on) {
            T *op = at<T>(O, body.b, c.x, body.h);
#pragma unroll
            for (int j = 0; j < NR; j++)
                if (j < body.njl) put(op + c.lane + j * G.G, body.acc[j]);
        }
    }
}

/* ---- fused forward: online softmax over the window ------------------------------- */

template <typename T, typename A>
struct fwd_body {
    static const bool need_ws = false;
    const geo &G;
    const tile &t;
    const centre &c;
    dview K, V, R;
    bool rpb;
    int D, Dv, width, njq, njv;
    i64 b, h;
    A scale, m, l;
    A qr[NR], o[NR];
    __device__ fwd_body(const geo &G_, const tile &t_, const centre &c_) : G(G_), t(t_), c(c_) {}
    __device__ __forceinline__ A stage(i64 bb, i64 hk, const i64 x[3], int k)
    {
        return k < D ? to_acc(at<T>(K, bb, x, hk)[k]) : to_acc(at<T>(V, bb, x, hk)[k - D]);
    }
    __device__ __forceinline__ void visit(const A *row, const i64 p[3], const i64 *)
    {
        A s = 0;
#pragma unroll
        for (int j = 0; j < NR; j++)
            if (j < njq) s += qr[j] * row[c.lane + j * G.G];
        s = gsum(s, G.G, c.mask) * scale;
        if (rpb) {
            i64 e[3];
            for (int a = 0; a < 3; a++) e[a] = p[a] - c.u[a] + G.ax[a].K - 1;
            s += to_acc(*rpb_at<T>(R, h, e));
        }
        if (s > m) { /* new maximum: rescale what was summed so far */
            A alpha = ex(m - s);
            l *= alpha;
#pragma unroll
            for (int j = 0; j < NR; j++)
                if (j < njv) o[j] *= alpha;
            m = s;
        }
        A pr = ex(s - m);
        l += pr;
        const A *vr = row + D;
#pragma unroll
        for (int j = 0; j < NR; j++)
            if (j < njv) o[j] += pr * vr[c.lane + j * G.G];
    }
};

template <typename T, typename A>
__global__ void __launch_bounds__(CT_THREADS) fwd_kernel(geo G, dview Q, dview K, dview V, dview R,
                                                         dview O, dview L, int rpb, int lse, int D,
                                                         int Dv, int group, A scale)
{
    CT_KERNEL_PROLOGUE(false)
    fwd_body<T, A> body(G, t, c);
    body.K = K; body.V = V; body.R = R; body.rpb = rpb != 0; body.D = D; body.Dv = Dv;
    body.width = D + Dv;
    body.scale = scale;
    body.njq = lane_count(D, c.lane, G.G);
    body.njv = lane_count(Dv, c.lane, G.G);
    for (i64 bh = blockIdx.y; bh < G.BH; bh += gridDim.y) {
        body.b = bh / G.H;
        body.h = bh % G.H;
        body.m = -INFINITY;
        body.l = 0;
        if (c.on) {
            const T *qp = at<T>(Q, body.b, c.x, body.h);
#pragma unroll
            for (int j = 0; j < NR; j++) {
                body.o[j] = 0;
                if (j < body.njq) body.qr[j] = to_acc(qp[c.lane + j * G.G]);
            }
        }
        drive<false, A>(G, t, c, body, body.b, body.h / group, sm, (i64 *)0);
        if (c.on) {
            T *op = at<T>(O, body.b, c.x, body.h);
            A inv = (A)1 / body.l;
#pragma unroll
            for (int j = 0; j < NR; j++)
                if (j < body.njv) put(op + c.lane + j * G.G, body.o[j] * inv);
            if (lse && c.lane == 0) *at<float>(L, body.b, c.x, body.h) = (float)(body.m + lg(body.l));
        }
    }
}

/* ---- fused backward, query side: dQ, and delta = dO . O for the key side ---------- */

template <typename T, typename A>
struct dq_body {
    static const bool need_ws = false;
    const geo &G;
    const tile &t;
    const centre &c;
    dview K, V, R;
    bool rpb;
    int D, Dv, width, njq, njv;
    i64 b, h;
    A scale, lse, delta;
    A *ds; /* dS per slot for d_rpb, or NULL */
    A qr[NR], dor[NR], dq[NR];
    __device__ dq_body(const geo &G_, const tile &t_, const centre &c_) : G(G_), t(t_), c(c_) {}
    __device__ __forceinline__ A stage(i64 bb, i64 hk, const i64 x[3], int k)
    {
        return k < D ? to_acc(at<T>(K, bb, x, hk)[k]) : to_acc(at<T>(V, bb, x, hk)[k - D]);
    }
    __device__ __forceinline__ void visit(const A *row, const i64 p[3], const i64 *)
    {
        A s = 0, dp = 0;
        const A *vr = row + D;
#pragma unroll
        for (int j = 0; j < NR; j++) {
            if (j < njq) s += qr[j] * row[c.lane + j * G.G];
            if (j < njv) dp += dor[j] * vr[c.lane + j * G.G];
        }
        s = gsum(s, G.G, c.mask) * scale;
        dp = gsum(dp, G.G, c.mask);
        if (rpb) {
            i64 e[3];
            for (int a = 0; a < 3; a++) e[a] = p[a] - c.u[a] + G.ax[a].K - 1;
            s += to_acc(*rpb_at<T>(R, h, e));
        }
        A P = ex(s - lse), dS = P * (dp - delta), f = scale * dS;
#pragma unroll
        for (int j = 0; j < NR; j++)
            if (j < njq) dq[j] += f * row[c.lane + j * G.G];
        if (ds && c.lane == 0) ds[slot_of(G, p, c.lo)] = dS;
    }
};

template <typename T, typename A>
__global__ void __launch_bounds__(CT_THREADS)
    dq_kernel(geo G, dview Q, dview K, dview V, dview R, dview O, dview L, dview dO, dview dQ,
              A *delta, A *ds, int rpb, int D, int Dv, int group, A scale)
{
    CT_KERNEL_PROLOGUE(false)
    dq_body<T, A> body(G, t, c);
    body.K = K; body.V = V; body.R = R; body.rpb = rpb != 0; body.D = D; body.Dv = Dv;
    body.width = D + Dv;
    body.scale = scale;
    body.njq = lane_count(D, c.lane, G.G);
    body.njv = lane_count(Dv, c.lane, G.G);
    i64 W = (i64)G.ax[0].K * G.ax[1].K * G.ax[2].K;
    i64 tok = (c.x[0] * G.ax[1].L + c.x[1]) * G.ax[2].L + c.x[2];
    i64 N = G.ax[0].L * G.ax[1].L * G.ax[2].L;
    for (i64 bh = blockIdx.y; bh < G.BH; bh += gridDim.y) {
        body.b = bh / G.H;
        body.h = bh % G.H;
        body.ds = ds ? ds + ((body.b * N + tok) * G.H + body.h) * W : (A *)0;
        if (c.on) {
            const T *qp = at<T>(Q, body.b, c.x, body.h), *dop = at<T>(dO, body.b, c.x, body.h),
                    *op = at<T>(O, body.b, c.x, body.h);
            A dl = 0;
#pragma unroll
            for (int j = 0; j < NR; j++) {
                body.dq[j] = 0;
                if (j < body.njq) body.qr[j] = to_acc(qp[c.lane + j * G.G]);
                if (j < body.njv) {
                    body.dor[j] = to_acc(dop[c.lane + j * G.G]);
                    dl += body.dor[j] * to_acc(op[c.lane + j * G.G]);
                }
            }
            body.delta = gsum(dl, G.G, c.mask);
            body.lse = (A)*at<float>(L, body.b, c.x, body.h);
            if (c.lane == 0) delta[(body.b * N + tok) * G.H + body.h] = body.delta;
        }
        drive<false, A>(G, t, c, body, body.b, body.h / group, sm, (i64 *)0);
        if (c.on) {
            T *op = at<T>(dQ, body.b, c.x, body.h);
#pragma unroll
            for (int j = 0; j < NR; j++)
                if (j < body.njq) put(op + c.lane + j * G.G, body.dq[j]);
        }
    }
}

/* ---- fused backward, key side: dK, dV over the inverse neighbourhood -------------- */

template <typename T, typename A>
struct dkv_body {
    static const bool need_ws = false;
    const geo &G;
    const tile &t;
    const centre &c;
    dview Q, dO, L, R;
    const A *delta;
    bool rpb;
    int D, Dv, width, njq, njv, Hq;
    i64 b, h, N;
    A scale;
    A kr[NR], vr[NR], dk[NR], dv[NR];
    __device__ dkv_body(const geo &G_, const tile &t_, const centre &c_) : G(G_), t(t_), c(c_) {}
    /* staged query row: q (D), dO (Dv), lse, delta */
    __device__ __forceinline__ A stage(i64 bb, i64 hh, const i64 x[3], int k)
    {
        if (k < D) return to_acc(at<T>(Q, bb, x, hh)[k]);
        if (k < D + Dv) return to_acc(at<T>(dO, bb, x, hh)[k - D]);
        if (k == D + Dv) return (A)*at<float>(L, bb, x, hh);
        i64 tok = (x[0] * G.ax[1].L + x[1]) * G.ax[2].L + x[2];
        return delta[(bb * N + tok) * Hq + hh];
    }
    __device__ __forceinline__ void visit(const A *row, const i64 p[3], const i64 *)
    {
        A s = 0, dp = 0;
        const A *dor = row + D;
#pragma unroll
        for (int j = 0; j < NR; j++) {
            if (j < njq) s += kr[j] * row[c.lane + j * G.G];
            if (j < njv) dp += vr[j] * dor[c.lane + j * G.G];
        }
        s = gsum(s, G.G, c.mask) * scale;
        dp = gsum(dp, G.G, c.mask);
        if (rpb) {
            i64 e[3];
            for (int a = 0; a < 3; a++) e[a] = c.u[a] - p[a] + G.ax[a].K - 1;
            s += to_acc(*rpb_at<T>(R, h, e));
        }
        A P = ex(s - row[D + Dv]), dS = P * (dp - row[D + Dv + 1]), f = scale * dS;
#pragma unroll
        for (int j = 0; j < NR; j++) {
            if (j < njq) dk[j] += f * row[c.lane + j * G.G];
            if (j < njv) dv[j] += P * dor[c.lane + j * G.G];
        }
    }
};

template <typename T, typename A>
__global__ void __launch_bounds__(CT_THREADS)
    dkv_kernel(geo G, dview Q, dview K, dview V, dview R, dview L, dview dO, dview dK, dview dV,
               const A *delta, int rpb, int D, int Dv, int group, int Hq, A scale)
{
    CT_KERNEL_PROLOGUE(true)
    dkv_body<T, A> body(G, t, c);
    body.Q = Q; body.dO = dO; body.L = L; body.R = R; body.delta = delta; body.rpb = rpb != 0;
    body.D = D; body.Dv = Dv; body.width = D + Dv + 2; body.Hq = Hq; body.scale = scale;
    body.N = G.ax[0].L * G.ax[1].L * G.ax[2].L;
    body.njq = lane_count(D, c.lane, G.G);
    body.njv = lane_count(Dv, c.lane, G.G);
    for (i64 bh = blockIdx.y; bh < G.BH; bh += gridDim.y) {
        i64 b = bh / G.H, hk = bh % G.H;
        body.b = b;
        if (c.on) {
            const T *kp = at<T>(K, b, c.x, hk), *vp = at<T>(V, b, c.x, hk);
#pragma unroll
            for (int j = 0; j < NR; j++) {
                body.dk[j] = 0;
                body.dv[j] = 0;
                if (j < body.njq) body.kr[j] = to_acc(kp[c.lane + j * G.G]);
                if (j < body.njv) body.vr[j] = to_acc(vp[c.lane + j * G.G]);
            }
        }
        for (int g = 0; g < group; g++) {
            body.h = hk * group + g;
            drive<true, A>(G, t, c, body, b, body.h, sm, (i64 *)0);
        }
        if (c.on) {
            T *kp = at<T>(dK, b, c.x, hk), *vp = at<T>(dV, b, c.x, hk);
#pragma unroll
            for (int j = 0; j < NR; j++) {
                if (j < body.njq) put(kp + c.lane + j * G.G, body.dk[j]);
                if (j < body.njv) put(vp + c.lane + j * G.G, body.dv[j]);
            }
        }
    }
}

/* ---- d_rpb: a second, deterministic pass over the per-slot gradients -------------- */

/* One block per (h, bias entry e): sum of Gr[b, x, h, slot] over every query x
 * whose window holds offset e, in a fixed order. */
template <typename GT, typename T>
__global__ void __launch_bounds__(256) rpb_reduce_kernel(geo G, dview Gr, dview dR, i64 B)
{
    __shared__ double part[256];
    i64 E1 = 2 * G.ax[1].K - 1, E2 = 2 * G.ax[2].K - 1, e[3];
    i64 N = G.ax[0].L * G.ax[1].L * G.ax[2].L;
    e[2] = blockIdx.x % E2;
    e[1] = (blockIdx.x / E2) % E1;
    e[0] = blockIdx.x / (E2 * E1);
    for (i64 h = blockIdx.y; h < G.H; h += gridDim.y) {
        double sum = 0;
        for (i64 i = threadIdx.x; i < B * N; i += blockDim.x) {
            i64 tok = i % N, x[3], slot = 0;
            bool ok = true;
            x[2] = tok % G.ax[2].L;
            x[1] = (tok / G.ax[2].L) % G.ax[1].L;
            x[0] = tok / (G.ax[2].L * G.ax[1].L);
            for (int a = 0; a < 3 && ok; a++) {
                const axis &ax = G.ax[a];
                i64 u = x[a] / ax.d, wa, wb, v = u + e[a] - ax.K + 1;
                natten_window(ax.L, ax.K, ax.d, ax.s, ax.c, x[a], &wa, &wb);
                ok = v >= wa && v < wb;
                slot = slot * ax.K + (v - wa);
            }
            if (ok) sum += (double)to_acc(at<GT>(Gr, i / N, x, h)[slot]);
        }
        part[threadIdx.x] = sum;
        __syncthreads();
        for (int o = 128; o > 0; o >>= 1) {
            if ((int)threadIdx.x < o) part[threadIdx.x] += part[threadIdx.x + o];
            __syncthreads();
        }
        if (threadIdx.x == 0) put(rpb_at<T>(dR, h, e), (typename acc_of<T>::type)part[0]);
        __syncthreads();
    }
}

#include "fast2d.cuh"
#include "mma2d.cuh"
#include "bulk2d.cuh"

/* ==== host side: tile planning and launches =========================================== */

static inline dview mkview(const natten_problem *p, natten_arg a)
{
    dview d;
    d.p = p->arg[a].data;
    for (int i = 0; i < 5; i++) d.s[i] = p->arg[a].stride[i];
    return d;
}

static inline dview noview()
{
    dview d;
    d.p = 0;
    for (int i = 0; i < 5; i++) d.s[i] = 0;
    return d;
}

struct plan {
    geo g;
    dim3 grid, block;
    size_t smem;
    bool empty;
};

/*
 * Tile shape, lanes per centre and chunking for one launch.  regdim: the
 * longest row a lane group holds in registers; width: staged row length;
 * walk: batch x heads the grid's y dimension walks (heads: the H of G.H).
 */
static inline natten_status make_plan(const natten_problem *p, int regdim, bool inv, int width,
                                      size_t asz, i64 heads, plan &P, int R = 1)
{
    geo &g = P.g;
    int G = 1, T, Ta[3] = {1, 1, 1};
    i64 nmax[3], room[3], span[3], ntiles = 1;
    memset(&g, 0, sizeof g);
    P.smem = 0;
    P.empty = true;
    while (G * NR < regdim) G *= 2;
    T = CT_THREADS / G;
    for (int a = 0; a < 3; a++) {
        nmax[a] = (p->extent[a] + p->dilation[a] - 1) / p->dilation[a];
        room[a] = a == 0 ? (nmax[a] + R - 1) / R : nmax[a]; /* centres an axis can use */
    }
    for (;;) { /* grow the box evenly: double the smallest axis that still has room */
        int best = -1;
        if (Ta[0] * Ta[1] * Ta[2] * 2 > T) break;
        for (int a = 2; a >= 0; a--)
            if (Ta[a] < room[a] && (best < 0 || Ta[a] * (a == 0 ? R : 1) < Ta[best] * (best == 0 ? R : 1)))
                best = a;
        if (best < 0) break;
        Ta[best] *= 2;
    }
    g.G = G;
    g.R = R;
    g.T = Ta[0] * Ta[1] * Ta[2];
    Ta[0] *= R; /* positions */
    for (int a = 0; a < 3; a++) {
        axis &x = g.ax[a];
        x.L = p->extent[a];
        x.K = p->kernel[a];
        x.d = p->dilation[a];
        x.s = p->stride[a];
        x.c = p->causal[a];
        x.T = Ta[a];
        x.tpg = (nmax[a] + Ta[a] - 1) / Ta[a];
        /* partners one tile can touch (an upper bound; chunks never assume it) */
        span[a] = inv ? Ta[a] + 2 * (i64)x.K + 2 * x.s : Ta[a] + (i64)x.K + x.s;
        if (span[a] > nmax[a]) span[a] = nmax[a];
        x.C = span[a];
        ntiles *= x.d * x.tpg;
    }
    g.rs = width | 1; /* odd row stride: consecutive rows hit distinct banks */
    for (;;) {
        size_t rows = (size_t)(g.ax[0].C * g.ax[1].C * g.ax[2].C);
        size_t bytes = (rows * g.rs * asz + 15) / 16 * 16;
        if (inv) bytes += (size_t)(g.ax[0].C + g.ax[1].C + g.ax[2].C) * sizeof(i64);
        if (bytes <= CT_SMEM_BUDGET) {
            P.smem = bytes;
            g.crows = (i64)rows;
            break;
        }
        int a = g.ax[0].C > 1 ? 0 : g.ax[1].C > 1 ? 1 : 2;
        if (g.ax[a].C == 1)
            return natten_error(NATTEN_ERROR_UNSUPPORTED,
                                CT_NAME ": a staged row of %d elements does not fit in %d bytes of "
                                "shared memory", width, CT_SMEM_BUDGET);
        g.ax[a].C = (g.ax[a].C + 1) / 2;
    }
    if (ntiles > 0x7fffffffLL)
        return natten_error(NATTEN_ERROR_UNSUPPORTED, CT_NAME ": %lld tiles exceed the grid limit",
                            (long long)ntiles);
    g.H = (int)heads;
    g.BH = p->batch * heads;
    P.empty = ntiles == 0 || g.BH == 0;
    P.grid = dim3((unsigned)ntiles, (unsigned)(g.BH < 65535 ? (g.BH > 0 ? g.BH : 1) : 65535), 1);
    P.block = dim3((unsigned)(g.T * G), 1, 1);
    return NATTEN_SUCCESS;
}

static inline natten_status launched(const char *what)
{
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? NATTEN_SUCCESS : ct_error(e, what);
}


/* ---- fast 2-D kernels: eligibility and tile planning -------------------------------- */

/* Problem axes the fast kernels call rows and columns: (0, 1) in 2-D; in 1-D
 * the columns are axis 0 and the rows the unit axis 1. */
static inline void f2_axes(const natten_problem *p, int &ar, int &ac)
{
    ar = p->rank == 2 ? 0 : 1;
    ac = p->rank == 2 ? 1 : 0;
}

/* Positions within one (batch, head) of role a, plus inner elements, in int. */
static inline bool f2_fits(const natten_problem *p, natten_arg a, i64 inner)
{
    const natten_view &v = p->arg[a];
    i64 span = inner;
    for (int i = 1; i <= 3; i++) span += llabs(v.stride[i]) * (v.shape[i] > 0 ? v.shape[i] - 1 : 0);
    return span < 0x7fffffffLL;
}

static inline f2view f2mk(const natten_problem *p, natten_arg a)
{
    f2view v;
    int ar, ac;
    f2_axes(p, ar, ac);
    v.p = p->arg[a].data;
    v.sb = p->arg[a].stride[0];
    v.sh = p->arg[a].stride[4];
    v.sr = (int)p->arg[a].stride[ar + 1];
    v.sc = (int)p->arg[a].stride[ac + 1];
    return v;
}

/* 16-byte loads and stores of rows of role a: aligned base, strides and length. */
static inline bool f2_vec(const natten_problem *p, natten_arg a, size_t esz, int D)
{
    const natten_view &v = p->arg[a];
    i64 ve = (i64)(16 / esz);
    if ((uintptr_t)v.data % 16 != 0 || D % ve != 0) return false;
    for (int i = 0; i < 5; i++)
        if (v.stride[i] % ve != 0) return false;
    return true;
}

struct f2plan {
    f2geo g;
    dim3 grid, block;
    size_t smem;
    bool empty;
};

/*
 * Tile shape for the fast kernels under a shared-memory budget: the shape
 * that minimises the threads launched (tiles x threads per tile, in whole
 * warps), then the staged positions.  Kinds: F2_PAIRS, the unfused kernels
 * (two lanes per four queries of a row, ps 32, two window-row stages of
 * esz-byte slots per query); F2_FUSED, F2_LPQ threads per query with two
 * staged rows per partner (forward, dQ); F2_INVERSE, the same per key, the box
 * being the union of inverse windows (dK, dV).
 */
enum { F2_PAIRS, F2_FUSED, F2_INVERSE };

/*
 * The most query positions whose windows hold
 * one of T consecutive keys (the union of their inverse windows), over every
 * tile of extent T of every dilation group: the staged box of the dK/dV
 * kernel.  Exact (natten_inverse_window_g per tile) when the axis has at most
 * 4096 tiles, else a bound: non-causal windows start at a(u) with
 * u - (K + s - 2) <= a(u) <= u + max(0, (s - K) / 2), so the keys
 * [v0, v0 + T) are seen by queries in (v0 - K - max(0, (s - K) / 2),
 * v0 + T - 1 + K + s - 2]; causal ones by at most T + K - 1.
 */
static inline i64 f2_inv_span(const f2axis &x, int T, i64 *memo)
{
    i64 best = 0, work = 0, nmax = (x.L + x.d - 1) / x.d;
    if (memo[T]) return memo[T];
    for (int g = 0; g < x.d && g < x.L && work <= 4096; g++) {
        i64 n = natten_group_len(x.L, x.d, g);
        for (i64 u0 = 0; u0 < n && ++work <= 4096; u0 += T) {
            i64 u1 = (u0 + T < n ? u0 + T : n) - 1, qa, qb, e0, e1;
            natten_inverse_window_g(n, x.K, x.s, x.c, u0, &qa, &e0);
            natten_inverse_window_g(n, x.K, x.s, x.c, u1, &e1, &qb);
            if (qb - qa > best) best = qb - qa;
        }
    }
    if (work > 4096)
        best = x.c ? T + (i64)x.K - 1 : T + 2 * (i64)x.K + x.s - 3 + (x.s > x.K ? (x.s - x.K) / 2 : 0);
    if (best > nmax) best = nmax;
    return memo[T] = best > 0 ? best : 1;
}

/* A configuration of the fast kernels: shared memory a tile may use, a cost
 * per block (in thread-slots) that makes the plan prefer bigger blocks, and
 * whether the unfused ops may use the tensor-core kernels (mma2d.cuh). */
struct f2cfg {
    size_t budget;
    double per_block;
    bool mma;
    bool lean; /* the unfused ops' tensor-core kernels with fewer instructions (qkl/avl, mma2d.cuh) */
    bool hg;   /* and their head-group variants (qkh/avh) where the layout allows */
    bool bulk; /* and on sm_90+ the bulk-copy QK (qkb, bulk2d.cuh) where it applies */
    size_t hbudget; /* shared memory a head-group block may use */
    size_t optin;   /* shared memory a block may opt in to */
};

static inline bool f2_plan(const natten_problem *p, int kind, size_t esz, i64 heads, f2cfg cfg, f2plan &P)
{
    const size_t budget = cfg.budget;
    const bool pairs = kind == F2_PAIRS;
    int ar, ac, ax[2];
    i64 nmax[2];
    f2_axes(p, ar, ac);
    ax[0] = ar;
    ax[1] = ac;
    memset(&P.g, 0, sizeof P.g);
    P.smem = 0;
    P.empty = true;
    for (int a = 0; a < 2; a++) {
        f2axis &x = P.g.ax[a];
        x.L = (int)p->extent[ax[a]];
        x.K = p->kernel[ax[a]];
        x.d = p->dilation[ax[a]];
        x.s = p->stride[ax[a]];
        x.c = p->causal[ax[a]];
        nmax[a] = (x.L + x.d - 1) / x.d;
    }
    /* lanes per query of the slot movers: the window's columns, a power of two */
    int lanes_q = 1;
    while (lanes_q < P.g.ax[1].K) lanes_q *= 2;
    if (pairs && P.g.ax[1].K > 32) return false;
    i64 inv0[65] = {0}, inv1[65] = {0}; /* inverse spans by tile extent, filled on demand */
    double best = -1;
    for (int T0 = 1; T0 <= 64 && (T0 == 1 || T0 / 2 < nmax[0]); T0 *= 2) {
        for (int w = 1; w <= (pairs ? 16 : 64); w++) {
            int T1 = pairs ? 4 * w : w, thr = pairs ? 2 * T0 * w : F2_LPQ * T0 * T1, nq = T0 * T1;
            if (thr > (pairs ? F2_PAIR_THREADS : F2_THREADS) || (T1 > nmax[1] && w > 1 && (pairs ? 4 * (w - 1) : w - 1) >= nmax[1])) continue;
            /* windows of T consecutive positions span at most T + K + s - 2
             * (window starts grow by at most one per position plus s - 1 at a
             * stride boundary); inverse windows: measured per tile extent */
            i64 spr = kind == F2_INVERSE ? f2_inv_span(P.g.ax[0], T0, inv0)
                                         : T0 + P.g.ax[0].K + P.g.ax[0].s - 2;
            i64 spc = kind == F2_INVERSE ? f2_inv_span(P.g.ax[1], T1, inv1)
                                         : T1 + P.g.ax[1].K + P.g.ax[1].s - 2;
            if (spr > nmax[0]) spr = nmax[0];
            if (spc > nmax[1]) spc = nmax[1];
            int ps = pairs ? F2_MAXD : 2 * F2_MAXD + 4;
            i64 rstr = spc * ps + (pairs ? 8 : 0);
            size_t smem = (size_t)(spr * rstr) * sizeof(float) +
                          (pairs ? (size_t)nq * (sizeof(int2) + sizeof(int) + 2 * (size_t)P.g.ax[1].K * esz) : 0) +
                          (kind == F2_INVERSE ? (size_t)(T0 + T1) * sizeof(int2) : 0); /* dkv2's inverse windows */
            if (smem > budget) continue;
            /* the slot movers: at most F2_MV queries per lane (f2_lanes) */
            if (pairs && nq > F2_MV * ((thr + 31) / 32) * (32 / lanes_q)) continue;
            i64 nt0 = (nmax[0] + T0 - 1) / T0, nt1 = (nmax[1] + T1 - 1) / T1;
            double tiles = (double)P.g.ax[0].d * nt0 * P.g.ax[1].d * nt1;
            double cost = tiles * ((thr + 31) / 32 * 32 * (pairs ? 2 : 1) + 0.1 * (double)(spr * spc) + cfg.per_block);
            if (best >= 0 && cost >= best) continue;
            best = cost;
            P.g.ax[0].T = T0;
            P.g.ax[1].T = T1;
            P.g.ax[0].nt = (int)nt0;
            P.g.ax[1].nt = (int)nt1;
            P.g.ps = ps;
            P.g.rstr = (int)rstr;
            P.g.spr = (int)spr;
            P.g.spc = (int)spc;
            P.g.nq = nq;
            P.smem = smem;
            P.block = dim3((unsigned)((thr + 31) / 32 * 32), 1, 1);
        }
    }
    if (best < 0) return false;
    i64 tiles = (i64)P.g.ax[0].d * P.g.ax[0].nt * P.g.ax[1].d * P.g.ax[1].nt, bh = p->batch * heads;
    if (bh > 0x7fffffffLL || tiles > 65535LL * 65535LL) return false;
    P.g.H = (int)heads;
    P.g.group = (int)(p->heads / (p->heads_kv > 0 ? p->heads_kv : 1));
    P.empty = bh == 0 || tiles == 0;
    unsigned ty = (unsigned)(tiles < 65535 ? tiles : 65535);
    P.grid = dim3((unsigned)(bh > 0 ? bh : 1), ty > 0 ? ty : 1, (unsigned)((tiles + ty - 1) / (ty > 0 ? ty : 1)));
    return true;
}

#if !defined(__HIP__)
/*
 * Tile of the tensor-core kernels (mma2d.cuh): eight warps when the problem
 * has the rows and columns for them, T0 rows (a power of two) x wc segments
 * of 16 columns; halved (rows first) until the box, the zero position and the
 * warps' output buffers fit the budget.
 */
static inline bool fm_plan(const natten_problem *p, size_t esz, i64 heads, size_t budget, f2plan &P)
{
    int ar, ac, ax[2];
    i64 nmax[2];
    f2_axes(p, ar, ac);
    ax[0] = ar;
    ax[1] = ac;
    memset(&P.g, 0, sizeof P.g);
    P.smem = 0;
    P.empty = true;
    for (int a = 0; a < 2; a++) {
        f2axis &x = P.g.ax[a];
        x.L = (int)p->extent[ax[a]];
        x.K = p->kernel[ax[a]];
        x.d = p->dilation[ax[a]];
        x.s = p->stride[ax[a]];
        x.c = p->causal[ax[a]];
        nmax[a] = (x.L + x.d - 1) / x.d;
    }
    const i64 W = (i64)P.g.ax[0].K * P.g.ax[1].K;
    int T0 = 1, wc;
    while (T0 < 8 && T0 < nmax[0]) T0 *= 2;
    wc = 8 / T0;
    while (wc > 1 && 16 * (wc / 2) >= nmax[1]) wc /= 2;
    for (;;) {
        i64 spr = T0 + P.g.ax[0].K + P.g.ax[0].s - 2, spc = 16 * wc + P.g.ax[1].K + P.g.ax[1].s - 2;
        if (spr > nmax[0]) spr = nmax[0];
        if (spc > nmax[1]) spc = nmax[1];
        size_t smem = (size_t)(spr * spc + 1) * FM_ROW * esz + (size_t)(T0 * wc * 16) * (size_t)W * esz;
        if (smem <= budget) {
            P.g.spr = (int)spr;
            P.g.spc = (int)spc;
            P.smem = smem;
            break;
        }
        if (T0 > 1) T0 /= 2;
        else if (wc > 1) wc /= 2;
        else return false;
    }
    P.g.ax[0].T = T0;
    P.g.ax[1].T = 16 * wc;
    P.g.ax[0].nt = (int)((nmax[0] + T0 - 1) / T0);
    P.g.ax[1].nt = (int)((nmax[1] + 16 * wc - 1) / (16 * wc));
    P.g.ps = FM_ROW;
    P.g.rstr = P.g.spc * FM_ROW;
    P.g.nq = T0 * wc * 16;
    P.block = dim3((unsigned)(T0 * wc * 32), 1, 1);
    i64 tiles = (i64)P.g.ax[0].d * P.g.ax[0].nt * P.g.ax[1].d * P.g.ax[1].nt, bh = p->batch * heads;
    if (bh > 0x7fffffffLL || tiles > 65535LL * 65535LL) return false;
    P.g.H = (int)heads;
    P.g.group = 1;
    P.empty = bh == 0 || tiles == 0;
    unsigned ty = (unsigned)(tiles < 65535 ? tiles : 65535);
    P.grid = dim3((unsigned)(bh > 0 ? bh : 1), ty > 0 ? ty : 1, (unsigned)((tiles + ty - 1) / (ty > 0 ? ty : 1)));
    return true;
}

/*
 * Tile of the lean kernels (mma2d.cuh): wr x wc warps, each 2 rows (1 when the rows
 * axis is a unit) x 8 columns of queries; of the shapes that fit the budget,
 * the one with the fewest launched warps plus staged positions (a warp costs
 * about 700 issued instructions, a staged position about one).  av: the
 * warps' buffers are AV's zero-padded ones.  The kernels take windows whose
 * 8 consecutive columns span at most FL_KC = 16 staged columns (K1 + s1 <= 10)
 * and W <= 8 FL_NI = 64; false otherwise (the caller falls back to fm_plan).
 */
static inline fldiv fl_div_make(i64 d)
{
    fldiv v;
    int l = 0;
    while ((1LL << l) < d) l++;
    v.l = l;
    v.m = (unsigned)((((unsigned long long)1 << 32) * (((unsigned long long)1 << l) - (unsigned long long)d)) /
                         (unsigned long long)d +
                     1);
    return v;
}

/* flgeo's tile table (fl_get_tile's values per axis, f2_get_tile's
 * arithmetic on the host), where each axis has at most FL_TT (group, tile)
 * pairs; else tt = 0 and the kernels compute them. */
static inline void fl_tab_make(flgeo &F)
{
    const f2geo &G = F.g;
    F.tt = 0;
    for (int a = 0; a < 2; a++)
        if ((i64)G.ax[a].d * G.ax[a].nt > FL_TT) return;
    for (int a = 0; a < 2; a++) {
        const f2axis &x = G.ax[a];
        for (int g = 0; g < x.d; g++)
            for (int ti = 0; ti < x.nt; ti++) {
                int *e = F.tb[a][g * x.nt + ti], w[2][2];
                const int n = (x.L - g + x.d - 1) / x.d, u0 = ti * x.T, u1 = (u0 + x.T < n ? u0 + x.T : n) - 1;
                for (int i = 0; i < 2; i++) {
                    const int u = i ? u1 : u0;
                    if (x.c) {
                        int lead = (u / x.s) * x.s + x.s - 1;
                        if (lead > n - 1) lead = n - 1;
                        w[i][0] = lead - x.K + 1 < 0 ? 0 : lead - x.K + 1;
                        w[i][1] = u + 1;
                    } else {
                        int lead = (u / x.s) * x.s + x.s / 2;
                        if (lead > n - 1) lead = n - 1;
                        int st = lead - x.K / 2;
                        if (st > n - x.K) st = n - x.K;
                        if (st < 0) st = 0;
                        w[i][0] = st;
                        w[i][1] = st + x.K;
                    }
                }
                const int lim = w[0][0] + (a ? G.spc : G.spr);
                e[0] = g;
                e[1] = n;
                e[2] = u0;
                e[3] = u1;
                e[4] = w[0][0];
                e[5] = w[1][1] < lim ? w[1][1] : lim;
            }
    }
    F.dn1 = fl_div_make((i64)G.ax[1].d * G.ax[1].nt);
    F.tt = 1;
}

static inline bool fl_plan(const natten_problem *p, size_t esz, i64 heads, size_t budget, bool av, f2plan &P,
                           flgeo &F)
{
    int ar, ac, ax[2];
    i64 nmax[2];
    f2_axes(p, ar, ac);
    ax[0] = ar;
    ax[1] = ac;
    memset(&P.g, 0, sizeof P.g);
    memset(&F, 0, sizeof F);
    P.smem = 0;
    P.empty = true;
    for (int a = 0; a < 2; a++) {
        f2axis &x = P.g.ax[a];
        x.L = (int)p->extent[ax[a]];
        x.K = p->kernel[ax[a]];
        x.d = p->dilation[ax[a]];
        x.s = p->stride[ax[a]];
        x.c = p->causal[ax[a]];
        nmax[a] = (x.L + x.d - 1) / x.d;
    }
    const f2axis &X0 = P.g.ax[0], &X1 = P.g.ax[1];
    const i64 W = (i64)X0.K * X1.K;
    const int rpw = nmax[0] > 1 ? 2 : 1;
    /* a warp's two rows span at most K0 + s0 key rows (K0 + 1 if causal), its
     * 8 columns K1 + s1 + 6 staged columns (f2_plan's bound T + K + s - 2 for
     * T consecutive positions) */
    i64 KR = rpw > 1 ? X0.K + (X0.s > 1 ? X0.s : 1) : X0.K, span = X1.K + X1.s + 6;
    if (KR > nmax[0]) KR = nmax[0];
    if (span > nmax[1]) span = nmax[1];
    if (span > FL_KC || W > 8 * FL_NI) return false;
    const i64 KC = FL_KC, QS = KR * KC + 8, WP = (W + 2) / 2 * 2;
    const i64 wbuf = 16 * (av ? QS : WP);
    double best = -1;
    int bwr = 0, bwc = 0;
    for (int wr = 1; wr <= 8; wr *= 2)
        for (int wc = 1; wr * wc <= 8; wc *= 2) {
            if ((wr > 1 && rpw * (wr / 2) >= nmax[0]) || (wc > 1 && 8 * (wc / 2) >= nmax[1])) continue;
            i64 spr = rpw * wr + X0.K + X0.s - 2, spc = 8 * wc + X1.K + X1.s - 2;
            if (spr > nmax[0]) spr = nmax[0];
            if (spc > nmax[1]) spc = nmax[1];
            size_t smem = (size_t)(spr * spc + (av ? 1 : 16)) * FM_ROW * esz + (size_t)(wr * wc * wbuf) * esz;
            if (smem > budget) continue;
            i64 nt0 = (nmax[0] + rpw * wr - 1) / (rpw * wr), nt1 = (nmax[1] + 8 * wc - 1) / (8 * wc);
            double cost = (double)X0.d * nt0 * X1.d * nt1 * (700.0 * wr * wc + (double)(spr * spc));
            if (best >= 0 && cost >= best) continue;
            best = cost;
            bwr = wr;
            bwc = wc;
            P.g.spr = (int)spr;
            P.g.spc = (int)spc;
            P.smem = smem;
        }
    if (best < 0) return false;
    P.g.ax[0].T = rpw * bwr;
    P.g.ax[1].T = 8 * bwc;
    P.g.ax[0].nt = (int)((nmax[0] + P.g.ax[0].T - 1) / P.g.ax[0].T);
    P.g.ax[1].nt = (int)((nmax[1] + P.g.ax[1].T - 1) / P.g.ax[1].T);
    P.g.ps = FM_ROW;
    P.g.rstr = P.g.spc * FM_ROW;
    P.g.nq = P.g.ax[0].T * P.g.ax[1].T;
    P.block = dim3((unsigned)(bwr * bwc * 32), 1, 1);
    i64 tiles = (i64)P.g.ax[0].d * P.g.ax[0].nt * P.g.ax[1].d * P.g.ax[1].nt, bh = p->batch * heads;
    if (bh > 0x7fffffffLL || tiles > 65535LL * 65535LL) return false;
    P.g.H = (int)heads;
    P.g.group = 1;
    P.empty = bh == 0 || tiles == 0;
    unsigned ty = (unsigned)(tiles < 65535 ? tiles : 65535);
    P.grid = dim3((unsigned)(bh > 0 ? bh : 1), ty > 0 ? ty : 1, (unsigned)((tiles + ty - 1) / (ty > 0 ? ty : 1)));
    F.g = P.g;
    F.H = fl_div_make(heads > 0 ? heads : 1);
    F.nt0 = fl_div_make(P.g.ax[0].nt);
    F.nt1 = fl_div_make(P.g.ax[1].nt);
    F.d0 = fl_div_make(X0.d);
    F.d1 = fl_div_make(X1.d);
    F.s0 = fl_div_make(X0.s);
    F.s1 = fl_div_make(X1.s);
    F.lwc = bwc == 1 ? 0 : bwc == 2 ? 1 : bwc == 4 ? 2 : 3;
    F.rpw = rpw;
    F.WP = (int)WP;
    F.KR = (int)KR;
    F.QS = (int)QS;
    F.dtr = 8 / X1.K;
    F.dtc = 8 % X1.K;
    fl_tab_make(F);
    return true;
}

/* The pad after each query's hc * E elements in a merged run staged in
 * shared memory (fhruns.pad, mma2d.cuh): of 0, 8, ..., 56, the one for which
 * a warp's accesses (lanes 4 gq + tq, query gq of the tile row) meet the
 * fewest distinct words in one bank, summed over the run's start at an even
 * and an odd element and three patterns of window starts (inside the
 * image: query gq's window one column right of gq - 1's; the left and right
 * borders, where the windows stay).  win: QK's product stores and AV's A
 * loads, 2-byte accesses of window slots 2 tq + 8 n + e - w(gq) inside a
 * window of K1 columns; else AV's output, 4-byte stores at 2 tq + 8 n.  On
 * the 56x56 K 7 problem (hc * E = 196) the merged layout meets 1.9 words a
 * bank in the products' stores (Nsight Compute: 2.0), pad 32 one.  The count
 * depends on qe mod 64 only (a bank is a word of 2-byte elements mod 32) and
 * takes ~50 us, about a kernel's time (measured on the H200: +13 us a QK call
 * in natten-bench while it ran on every call), so each (win, K1, qe mod 64)
 * is counted once and remembered. */
static inline int fh_pad_pick(i64 qe, int K1, bool win)
{
    static std::atomic<signed char> memo[2][FL_KC + 1][64]; /* pad + 1; 0: not counted yet */
    std::atomic<signed char> *mp = K1 >= 1 && K1 <= FL_KC ? &memo[win ? 1 : 0][K1][qe & 63] : nullptr;
    const int known = mp ? mp->load(std::memory_order_relaxed) : 0;
    if (known) return known - 1;
    int best = 0, bc = -1;
    for (int pad = 0; pad < 64; pad += 8) {
        const i64 P = qe + pad;
        int c = 0;
        for (int b = 0; b < (win ? 2 : 1); b++)
            for (int pat = 0; pat < (win ? 3 : 1); pat++)
                for (int n = 0; n < 2; n++)
                    for (int e = 0; e < (win ? 2 : 1); e++) {
                        int cnt[32] = {0}, m = 0;
                        for (int gq = 0; gq < 8; gq++) {
                            const int h = K1 / 2,
                                      w = !win ? 0 : pat == 0 ? gq : pat == 1 ? (gq > h ? gq - h : 0) : (gq < 7 - h ? gq : 7 - h);
                            for (int tq = 0; tq < 4; tq++) {
                                const int sl = 2 * tq + 8 * n + e - w;
                                if (win && (sl < 0 || sl >= K1)) continue;
                                /* a lane's word (distinct ones: the lanes of a query 2
                                 * elements apart, the queries P >= 16 apart) */
                                const int bk = (int)(((b + gq * P + sl) >> 1) & 31);
                                if (++cnt[bk] > m) m = cnt[bk];
                            }
                        }
                        c += m;
                    }
        if (bc < 0 || c < bc) {
            bc = c;
            best = pad;
        }
    }
    if (mp) mp->store((signed char)(best + 1), std::memory_order_relaxed);
    return best;
}

/* The runs of a tensor with E elements per (query, head) and query column
 * stride sc (fhruns); returns the shared elements they take.  al4: every run
 * starts at a multiple of 4 elements (fh_al4), so merged runs may be padded
 * (fh_pad_pick with K1 and win). */
static inline i64 fh_runs_make(fhruns &R, i64 E, int hc, i64 T0, i64 T1, i64 d1, i64 sc, bool al4, int K1, bool win)
{
    R.E = (int)E;
    R.merged = d1 * sc == hc * E;
    const i64 nrun = R.merged ? T0 : T0 * T1, rlen = R.merged ? T1 * hc * E : hc * E;
    R.pad = R.merged && al4 && (hc * E) % 4 == 0 && T1 > 1 ? fh_pad_pick(hc * E, K1, win) : 0;
    R.qp = (int)(hc * E + R.pad);
    R.cq = fl_div_make(hc * E);
    const i64 rstr = ((R.merged ? T1 * R.qp : rlen) + 14) / 8 * 8;
    R.nrun = (int)nrun;
    R.rlen = (int)rlen;
    R.rstr = (int)rstr;
    R.nchk = (int)((rlen + 14) / 8);
    R.cr = fl_div_make(R.nchk);
    return nrun * rstr;
}

/* A tensor of 2-byte elements whose (batch, row, column) strides and start
 * are multiples of 4 elements (fh_runs_make's al4, with hc * E one too) */
static inline bool fh_al4(const f2view &v)
{
    return ((size_t)v.p & 7) == 0 && v.sb % 4 == 0 && v.sr % 4 == 0 && v.sc % 4 == 0;
}

/*
 * Tile of the head-group kernels (qkh/avh, mma2d.cuh): fl_plan's tile and
 * warps per head, hc heads a block: the largest power of two up to hmax (4;
 * tc-emu also tries 2: on the H200 two heads a block were slower) that
 * divides the heads, with at most 16 warps a block and the shared memory
 * (hc boxes, the staged runs; QK: at least the warps' Q rows) within the
 * budget.  Only where the attention tensor (head stride ash, query column
 * stride asc, in elements) has its heads adjacent (ash == W), so that a
 * query's hc rows are one run; and not for hc 1 unless a tile row's queries
 * are one run (else nothing to gain over qkl/avl).  false: the caller takes
 * qkl/avl (per head), which serve every layout.  AV: where the output (Dv
 * elements a head, strides osh, osc) has its heads adjacent too, it goes out
 * as runs in the attention runs' place (ostage).
 */
static inline bool fh_plan(const natten_problem *p, size_t esz, i64 heads, size_t budget, size_t hbudget, int hmax,
                           bool av, i64 ash, i64 asc, i64 Dv, i64 osh, i64 osc, unsigned al4, f2plan &P, flgeo &F)
{
    if (heads < 1 || !fl_plan(p, esz, heads, budget, av, P, F)) return false;
    const i64 W = (i64)P.g.ax[0].K * P.g.ax[1].K, T0 = P.g.ax[0].T, T1 = P.g.ax[1].T, d1 = P.g.ax[1].d;
    if (ash != W) return false;
    const int nw = (int)P.block.x / 32;
    const i64 pos = (i64)P.g.spr * P.g.spc + (av ? 1 : 16);
    const int K1 = P.g.ax[1].K;
    for (int it = 0; it < 6; it++) {
        /* hc 4, 2, 1, each first with the padded runs where al4 allows them
         * (bit 0: the attention's, bit 1: AV's output's), then without */
        const int hc = 4 >> (it >> 1), pads = !(it & 1);
        if (hc > hmax || heads % hc || hc * nw > 16 || (pads && !al4)) continue;
        const unsigned al = pads ? al4 : 0u;
        fhruns ra, ro;
        memset(&ro, 0, sizeof ro);
        i64 region = fh_runs_make(ra, W, hc, T0, T1, d1, asc, al & 1u, K1, true);
        if (hc == 1 && !ra.merged) return false;
        if (!av && region < (i64)hc * nw * 16 * FM_ROW) region = (i64)hc * nw * 16 * FM_ROW;
        /* AV's output through shared memory too where its heads are adjacent */
        bool ostage = false;
        if (av && osh == Dv) {
            const i64 ro_size = fh_runs_make(ro, Dv, hc, T0, T1, d1, osc, (al & 2u) != 0, K1, false);
            ostage = hc > 1 || ro.merged;
            if (ostage && ro_size > region) region = ro_size;
        }
        /* then the first head's segment records (fh_seg_put), 16-byte aligned */
        const size_t roff = ((size_t)(hc * pos * FM_ROW + region) * esz + 15) / 16 * 16,
                     smem = roff + (size_t)nw * FH_REC * sizeof(int);
        if (smem > hbudget || region > 0x7fffffffLL) continue;
        const i64 groups = heads / hc, bh = p->batch * groups;
        P.g.H = (int)groups;
        P.grid.x = (unsigned)(bh > 0 ? bh : 1);
        P.block = dim3((unsigned)(hc * nw * 32), 1, 1);
        P.smem = smem;
        F.g = P.g;
        F.H = fl_div_make(groups);
        F.hc = hc;
        F.lnw = nw == 1 ? 0 : nw == 2 ? 1 : nw == 4 ? 2 : nw == 8 ? 3 : 4;
        F.ra = ra;
        F.ro = ro;
        F.ostage = ostage;
        F.lt1 = T1 == 8 ? 3 : T1 == 16 ? 4 : T1 == 32 ? 5 : 6;
        F.BX = (int)(pos * FM_ROW);
        F.roff = (int)roff;
        return true;
    }
    return false;
}

/* The bulk-copy kernels' warps (qkb, avb: nc consumers already set):
 * producer warps, one for every two consumer warps (8 for four heads: on the
 * H200's 56x56 QK with 16-byte copies, 1, 2, 4 and 8 took 166, 115, 89 and
 * 82 us a call back to back; cuda-tiled NOTES "bulk2d"; not measured again
 * since qkb's positions became one bulk copy each), or
 * NATTEN_CUDA_TILED_PRODUCERS (1 to QB_MAXP); and
 * NATTEN_CUDA_TILED_PLAIN_SYNC=1: each producer thread of cp.async copies
 * waits for its own copies (cp.async.wait_all) and arrives on the stage's
 * barrier with an ordinary arrival, and every consumer lane arrives on "empty" itself,
 * instead of the copies' asynchronous arrivals and one arrival a warp after
 * __syncwarp: the same results, slower; the form whose ordering
 * compute-sanitizer's racecheck follows (cuda-tiled NOTES "bulk2d"). */
static inline void qb_warps(qbgeo &B)
{
    const char *np = getenv("NATTEN_CUDA_TILED_PRODUCERS");
    const int npe = np ? atoi(np) : 0;
    B.np = npe >= 1 && npe <= QB_MAXP ? npe : B.nc >= 2 ? B.nc / 2 : 1;
    const char *ps = getenv("NATTEN_CUDA_TILED_PLAIN_SYNC");
    B.plain = ps && *ps == '1';
}

/* What qb_plan and ab_plan share once fl_plan has taken the problem (P, B.F)
 * with nw warps a head: the attention tensor's merged runs (column stride
 * asc), all H heads a block, the warps (nc consumers, qb_warps' producers,
 * P.block), a position's bytes for head dim D, the items; false where the
 * runs are not merged or the items exceed an int. */
static inline bool qb_common(const natten_problem *p, int D, i64 asc, int nw, f2plan &P, qbgeo &B)
{
    flgeo &F = B.F;
    const i64 H = p->heads, W = (i64)P.g.ax[0].K * P.g.ax[1].K, T1 = P.g.ax[1].T;
    fh_runs_make(F.ra, W, (int)H, P.g.ax[0].T, T1, P.g.ax[1].d, asc, false, P.g.ax[1].K, true);
    if (!F.ra.merged) return false;
    F.hc = (int)H;
    F.lnw = nw == 1 ? 0 : nw == 2 ? 1 : nw == 4 ? 2 : nw == 8 ? 3 : 4;
    F.lt1 = T1 == 8 ? 3 : T1 == 16 ? 4 : T1 == 32 ? 5 : 6;
    const i64 ntiles = (i64)P.g.ax[0].d * P.g.ax[0].nt * P.g.ax[1].d * P.g.ax[1].nt, items = p->batch * ntiles;
    if (items > 0x7fffffffLL) return false;
    B.nc = (int)H * nw;
    qb_warps(B);
    B.pb = (int)(H * D * 2);
    B.psb = B.pb + 16;
    B.ntiles = (int)ntiles;
    B.items = (int)items;
    B.nt = fl_div_make(ntiles > 0 ? ntiles : 1);
    P.block = dim3((unsigned)(32 * (B.nc + B.np)), 1, 1);
    P.empty = items == 0;
    return true;
}

/*
 * Plan of the bulk-copy QK (qkb_kernel, bulk2d.cuh): fl_plan's tile, one
 * block of all H <= 4 heads (a query's heads one run, a tile row's queries
 * one run: the attention tensor's heads adjacent, ash == W, and its columns
 * too, asc == H W, no column dilation), head dim 32, no causal axis, rank 2
 * with two query rows a warp; q and k (views vq, vk) with their heads
 * adjacent and every position 16-byte aligned (a position is one bulk copy,
 * B.pbulk, or 16-byte copies).  Shared
 * memory within optin (two stages of qkh's tile; where they do not fit, qkh
 * runs: a smaller tile for qkb was not measured against qkh's larger one).
 * false: the caller takes qkh and the others.
 */
static inline bool qb_plan(const natten_problem *p, size_t optin, int D, const f2view &vq, const f2view &vk, i64 ash,
                           i64 asc, f2plan &P, qbgeo &B)
{
    const i64 H = p->heads;
    if (p->rank != 2 || D != 32 || (H != 1 && H != 2 && H != 4) || p->causal[0] || p->causal[1] || p->causal[2])
        return false;
    for (int i = 0; i < 2; i++) {
        const f2view &v = i ? vk : vq;
        if (((size_t)v.p & 15) || v.sh != D || v.sb % 8 || v.sr % 8 || v.sc != H * D) return false;
    }
    memset(&B, 0, sizeof B);
    flgeo &F = B.F;
    /* fl_plan's budget is only its own tile choice's (qkh takes the same tile) */
    if (!fl_plan(p, 2, H, 72 * 1024, false, P, F) || F.rpw != 2) return false;
    const i64 W = (i64)P.g.ax[0].K * P.g.ax[1].K, T0 = P.g.ax[0].T, T1 = P.g.ax[1].T, d1 = P.g.ax[1].d;
    const int nw = (int)P.block.x / 32;
    if (ash != W || asc != H * W || d1 != 1 || H * nw > QB_MAXC) return false;
    if (!qb_common(p, D, asc, nw, P, B)) return false;
    /* each position by one bulk copy (NATTEN_CUDA_TILED_PBULK=0: the 16-byte
     * cp.async copies of session 19) */
    const char *pbulk = getenv("NATTEN_CUDA_TILED_PBULK");
    B.pbulk = !(pbulk && strcmp(pbulk, "0") == 0);
    B.sq = (P.g.spr * P.g.spc + 16) * B.psb;
    B.sst = B.sq + (int)(T0 * T1) * B.psb;
    B.sruns = QB_BARS + 2 * B.sst;
    B.srun = (int)(((i64)F.ra.nrun * F.ra.rstr * 2 + 127) / 128 * 128);
    P.smem = (size_t)B.sruns + 2 * (size_t)B.srun;
    return P.smem <= optin;
}

/*
 * Plan of the bulk-copy AV (avb_kernel, bulk2d.cuh): fl_plan's AV tile (as
 * avh's), one block of all H <= 4 heads, Dv 32, no causal axis, rank 2; the
 * attention tensor (view va) with its heads and columns adjacent (a tile
 * row's queries and heads one run, no column dilation) and every run
 * 16-byte aligned and a multiple of 8 elements long (the tensor's start and
 * its batch and row strides, and the last tile's columns x H W); v (view vv)
 * with its heads adjacent and 16-byte aligned positions; the output (vo)
 * with every head's vector 16-byte aligned.  Shared memory within optin.
 * false: the caller takes avh and the others.
 */
static inline bool ab_plan(const natten_problem *p, size_t optin, int Dv, const f2view &va, const f2view &vv,
                           const f2view &vo, f2plan &P, qbgeo &B)
{
    const i64 H = p->heads;
    if (p->rank != 2 || Dv != 32 || (H != 1 && H != 2 && H != 4) || p->causal[0] || p->causal[1] || p->causal[2])
        return false;
    if (((size_t)vv.p & 15) || vv.sh != Dv || vv.sb % 8 || vv.sr % 8 || vv.sc != H * Dv) return false;
    if (((size_t)vo.p & 15) || vo.sb % 8 || vo.sh % 8 || vo.sr % 8 || vo.sc % 8) return false;
    memset(&B, 0, sizeof B);
    flgeo &F = B.F;
    if (!fl_plan(p, 2, H, 72 * 1024, true, P, F)) return false;
    const i64 W = (i64)P.g.ax[0].K * P.g.ax[1].K, T0 = P.g.ax[0].T, T1 = P.g.ax[1].T, d1 = P.g.ax[1].d;
    const i64 n1 = P.g.ax[1].L, last = n1 - (n1 - 1) / T1 * T1;
    const int nw = (int)P.block.x / 32;
    if (va.sh != W || va.sc != H * W || d1 != 1 || H * nw > QB_MAXC) return false;
    if (((size_t)va.p & 15) || va.sb % 8 || va.sr % 8 || (T1 * H * W) % 8 || (last * H * W) % 8) return false;
    if (!qb_common(p, Dv, va.sc, nw, P, B)) return false;
    B.srun = (int)(T1 * H * W * 2);
    B.sq = P.g.spr * P.g.spc * B.psb;
    B.sst = B.sq + (int)T0 * B.srun;
    B.sruns = QB_BARS + 2 * B.sst;
    P.smem = (size_t)B.sruns + (size_t)B.psb;
    return P.smem <= optin;
}
#endif

/* Dynamic shared memory beyond the default needs the kernel's opt-in, once
 * per kernel, device and size: the largest size set so far is remembered per
 * (kernel, device) (a table of F2_ATTR_SLOTS; when it is full, every call sets
 * the attribute as before).  The attribute is a limit, not a reservation, so
 * a smaller launch after a larger one needs nothing.  (cudaFuncSetAttribute
 * took ~0.35 us of host time a call on the H200's host, inside the time of
 * each small call.) */
#define F2_ATTR_SLOTS 128
static inline natten_status f2_smem_attr(const void *fn, size_t smem)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static struct {
        const void *fn;
        int dev;
        size_t smem;
    } set[F2_ATTR_SLOTS];
    static int n_set;
    int dev = -1, i = 0;
    cudaError_t e;
    if (smem <= 48 * 1024) return NATTEN_SUCCESS;
    if (cudaGetDevice(&dev) != cudaSuccess) {
        (void)cudaGetLastError();
        dev = -1;
    }
    /* under the lock throughout, so that the attribute and the table agree */
    pthread_mutex_lock(&lock);
    for (; i < n_set && !(set[i].fn == fn && set[i].dev == dev); i++) {}
    if (i < n_set && set[i].smem >= smem) {
        pthread_mutex_unlock(&lock);
        return NATTEN_SUCCESS;
    }
    e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e == cudaSuccess && dev >= 0 && i == n_set && n_set < F2_ATTR_SLOTS) set[n_set++] = {fn, dev, smem};
    else if (e == cudaSuccess && i < n_set) set[i].smem = smem;
    pthread_mutex_unlock(&lock);
    return e == cudaSuccess ? NATTEN_SUCCESS : ct_error(e, "cudaFuncSetAttribute");
}

#if !defined(__HIP__)
/* Whether the image the current device runs for fn (a bulk2d.cuh kernel) is
 * one for sm_90+, where its body exists, and how many blocks of it (threads,
 * smem) fit on an SM (blocks: 0 where the image is older): asked of the
 * runtime once per (kernel, device, threads, smem) and remembered (a table
 * of F2_ATTR_SLOTS; when it is full, asked on every call). */
static inline natten_status qb_fit(const void *fn, int threads, size_t smem, int &blocks)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static struct {
        const void *fn;
        int dev, threads;
        size_t smem;
        int blocks;
    } memo[F2_ATTR_SLOTS];
    static int n_memo;
    int dev = -1;
    cudaError_t e = cudaGetDevice(&dev);
    blocks = 0;
    if (e != cudaSuccess) return ct_error(e, "cudaGetDevice");
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n_memo; i++)
        if (memo[i].fn == fn && memo[i].dev == dev && memo[i].threads == threads && memo[i].smem == smem) {
            blocks = memo[i].blocks;
            pthread_mutex_unlock(&lock);
            return NATTEN_SUCCESS;
        }
    pthread_mutex_unlock(&lock);
    cudaFuncAttributes a;
    if ((e = cudaFuncGetAttributes(&a, fn)) != cudaSuccess) return ct_error(e, "cudaFuncGetAttributes");
    if (a.binaryVersion >= 90) {
        natten_status st = f2_smem_attr(fn, smem);
        if (st) return st;
        if ((e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, fn, threads, smem)) != cudaSuccess)
            return ct_error(e, "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    }
    pthread_mutex_lock(&lock);
    if (n_memo < F2_ATTR_SLOTS) memo[n_memo++] = {fn, dev, threads, smem, blocks};
    pthread_mutex_unlock(&lock);
    return NATTEN_SUCCESS;
}

/* The bulk-copy kernels' grid: nb blocks an SM (qb_fit) on every SM, at
 * most one a tile; NATTEN_CUDA_TILED_BLOCKS caps it (tests: many tiles a
 * block, the rings wrap). */
static inline dim3 qb_grid(const qbgeo &B, int nb, const ct_device *dv)
{
    const char *cap = getenv("NATTEN_CUDA_TILED_BLOCKS");
    const i64 most = cap && atoi(cap) > 0 ? (i64)atoi(cap) : (i64)nb * dv->sms;
    return dim3((unsigned)(B.items < most ? B.items : most), 1, 1);
}
#endif

/*
 * The backend's configurations (config 0: the default).  The default plan
 * minimises launched thread-slots and staged positions; on the 56x56 K 7
 * problems it picks 8x8-query tiles (one warp per block for the unfused
 * kernels, two for the fused ones: docs/benchmarks.md).  big-tiles adds a
 * cost of 1024 thread-slots per block, so that the plan takes the largest
 * tile the budget allows (fewer staged positions per query, more warps per
 * SM); big-tiles-110k also raises the budget from 72 to 110 KiB.
 * no-tensor-cores is the default plan as it was before the tensor-core
 * kernels: the unfused fp16/bf16 ops on the pairs kernels of fast2d.cuh
 * instead of those of mma2d.cuh, which every other configuration uses where
 * the device and image allow (3.3x faster on the 56x56 QK: docs/benchmarks.md).
 * The unfused fp16/bf16 ops go to mma2d.cuh's lean qkl/avl kernels (fl_plan)
 * where they fit, else to its qkm/avm kernels; tc-wide is the default plan
 * with qkm/avm only (the first tensor-core kernels: 1.6x slower on the 56x56
 * QK and 1.4x on AV, docs/benchmarks.md), kept tested and timed.  Where the
 * attention tensor's heads are adjacent, the lean kernels' head-group
 * variants qkh/avh (fh_plan) come first; tc-lean-per-head is the default plan
 * without them (qkl/avl for every layout).
 * NATTEN_CUDA_TILED_CONFIG=N overrides the configuration (for benchmarks).
 */
/* The fused kernels' column order (f2_first in fast2d.cuh): each window from
 * its first column, or, with NATTEN_CUDA_TILED_ROT set and not "0", rotated
 * with interleaved lanes (measured slower in the backward on the H200:
 * NOTES.md, branch tiledf; kept for the A/B and tested). */
static inline int f2_rot(void)
{
    const char *e = getenv("NATTEN_CUDA_TILED_ROT");
    return e && *e && strcmp(e, "0") != 0;
}

/* The head-group kernels' padded runs (fh_pad_pick): AV's by default; QK's
 * only with NATTEN_CUDA_TILED_PAD=1 (on the H200 it measured no faster than
 * the unpadded layout: medians +0.2 to +2.8 us in three rounds, NOTES.md
 * "qkc"); NATTEN_CUDA_TILED_PAD=0: neither (the layout before them). */
static inline bool fh_pads(bool qk)
{
    const char *e = getenv("NATTEN_CUDA_TILED_PAD");
    if (e && strcmp(e, "0") == 0) return false;
    return !qk || (e && strcmp(e, "1") == 0);
}

static inline f2cfg f2_config(const natten_problem *p, const natten_exec *x)
{
    const ct_device *d = ct_device_at(p->device.device_id);
    size_t optin = d && d->smem_optin > d->smem_block ? d->smem_optin : d ? d->smem_block : 48 * 1024;
    int cfg = x ? x->config : 0;
    const char *env = getenv("NATTEN_CUDA_TILED_CONFIG");
    f2cfg c;
    if (env && *env) cfg = atoi(env);
    c.budget = cfg == 2 ? 110 * 1024 : 72 * 1024;
    if (c.budget > optin) c.budget = optin;
    c.per_block = cfg == 1 || cfg == 2 ? 1024.0 : 0.0;
    c.mma = cfg != 3;
    c.lean = cfg != 3 && cfg != 4;
    c.hg = c.lean && cfg != 5;
    c.bulk = c.hg && cfg != 6;
    c.optin = optin;
    /* two head-group blocks per SM where the device allows (H200: 227 KiB
     * opt-in, 228 KiB per SM, 1 KiB reserved per block) */
    c.hbudget = optin < 112 * 1024 ? optin : 112 * 1024;
    if (c.hbudget < c.budget) c.hbudget = c.budget;
    return c;
}

template <typename T>
struct ops {
    typedef typename acc_of<T>::type A;

    static cudaStream_t stream(const natten_exec *x) { return (cudaStream_t)x->stream; }
    static int dim_of(const natten_problem *p, natten_arg a) { return (int)p->arg[a].shape[NV_C]; }

    /* The fast 2-D kernels: float accumulation, rank 1 or 2, head dim <= 32,
     * positions of one (batch, head) addressable in int, not switched off. */
    static bool f2_usable(const natten_problem *p, int dim)
    {
        const char *off = getenv("NATTEN_CUDA_TILED_NO_FAST");
        return sizeof(A) == 4 && p->rank <= 2 && dim <= F2_MAXD && !(off && *off && *off != '0');
    }

    /* The tensor-core kernels (mma2d.cuh): fp16/bf16, a device and image of
     * sm_80+, head dim 16 or 32, not switched off by the configuration. */
    static bool fm_usable(const natten_problem *p, const f2cfg &cf, int dim)
    {
        const ct_device *d = ct_device_at(p->device.device_id);
        return sizeof(T) == 2 && d && d->mma && (dim == 16 || dim == 32) && cf.mma && f2_usable(p, dim);
    }

    /* O[q, slot] = X[q] . Y[key of slot] (+ rpb); masked slots = mval */
    static natten_status pn(const natten_problem *p, const natten_exec *x, natten_arg X, natten_arg Y,
                            natten_arg R, natten_arg O, A mval, const char *what)
    {
        cudaStream_t s = stream(x);
        plan P;
        int D = dim_of(p, X), rpb = R != NATTEN_ARG_COUNT && natten_has(p, R);
        natten_status st;
#if !defined(__HIP__)
        if constexpr (sizeof(T) == 2) {
            f2plan F;
            flgeo L;
            const f2cfg cf = f2_config(p, x);
            const bool fits = fm_usable(p, cf, D) && f2_fits(p, X, D) && f2_fits(p, Y, D) &&
                              f2_fits(p, O, p->window) && (!rpb || f2_fits(p, R, 1)) && f2_vec(p, X, sizeof(T), D) &&
                              f2_vec(p, Y, sizeof(T), D);
            /* sm_90+: the bulk-copy kernel where it applies (qb_plan) */
            const ct_device *dv = ct_device_at(p->device.device_id);
            qbgeo B;
            f2plan PB;
            if (fits && cf.bulk && dv && dv->cc >= 90 &&
                qb_plan(p, cf.optin, D, f2mk(p, X), f2mk(p, Y), f2mk(p, O).sh, f2mk(p, O).sc, PB, B)) {
                if (PB.empty) return NATTEN_SUCCESS;
                const void *fn = rpb ? (const void *)qkb_kernel<T, true> : (const void *)qkb_kernel<T, false>;
                int nb = 0;
                if ((st = qb_fit(fn, (int)PB.block.x, PB.smem, nb))) return st;
                if (nb > 0) {
                    const dim3 grid = qb_grid(B, nb, dv);
                    const f2view vx = f2mk(p, X), vy = f2mk(p, Y), vr = rpb ? f2mk(p, R) : vx, vo = f2mk(p, O);
                    if (rpb) qkb_kernel<T, true><<<grid, PB.block, PB.smem, s>>>(B, vx, vy, vr, vo, D);
                    else qkb_kernel<T, false><<<grid, PB.block, PB.smem, s>>>(B, vx, vy, vr, vo, D);
                    return launched(what);
                }
            }
            /* a query's heads adjacent in the attention tensor: head groups (fh_plan) */
            if (fits && cf.hg &&
                fh_plan(p, sizeof(T), p->heads, cf.budget, cf.hbudget, 4, false, f2mk(p, O).sh, f2mk(p, O).sc, 0, 0, 0,
                        fh_pads(true) && fh_al4(f2mk(p, O)) ? 1u : 0u, F, L)) {
                if (F.empty) return NATTEN_SUCCESS;
                const void *fn = rpb ? (const void *)qkh_kernel<T, true> : (const void *)qkh_kernel<T, false>;
                if ((st = f2_smem_attr(fn, F.smem))) return st;
                const f2view vx = f2mk(p, X), vy = f2mk(p, Y), vr = rpb ? f2mk(p, R) : vx, vo = f2mk(p, O);
                const int causal = p->causal[0] | p->causal[1] | p->causal[2];
                if (rpb) qkh_kernel<T, true><<<F.grid, F.block, F.smem, s>>>(L, vx, vy, vr, vo, D, (float)mval, causal);
                else qkh_kernel<T, false><<<F.grid, F.block, F.smem, s>>>(L, vx, vy, vr, vo, D, (float)mval, causal);
                return launched(what);
            }
            if (fits && cf.lean && fl_plan(p, sizeof(T), p->heads, cf.budget, false, F, L)) {
                if (F.empty) return NATTEN_SUCCESS;
                const void *fn = rpb ? (const void *)qkl_kernel<T, true> : (const void *)qkl_kernel<T, false>;
                if ((st = f2_smem_attr(fn, F.smem))) return st;
                const f2view vx = f2mk(p, X), vy = f2mk(p, Y), vr = rpb ? f2mk(p, R) : vx, vo = f2mk(p, O);
                const int causal = p->causal[0] | p->causal[1] | p->causal[2];
                if (rpb) qkl_kernel<T, true><<<F.grid, F.block, F.smem, s>>>(L, vx, vy, vr, vo, D, (float)mval, causal);
                else qkl_kernel<T, false><<<F.grid, F.block, F.smem, s>>>(L, vx, vy, vr, vo, D, (float)mval, causal);
                return launched(what);
            }
            if (fits && fm_plan(p, sizeof(T), p->heads, cf.budget, F)) {
                if (F.empty) return NATTEN_SUCCESS;
                if ((st = f2_smem_attr((const void *)qkm_kernel<T>, F.smem))) return st;
                qkm_kernel<T><<<F.grid, F.block, F.smem, s>>>(F.g, f2mk(p, X), f2mk(p, Y),
                                                              rpb ? f2mk(p, R) : f2mk(p, X), f2mk(p, O), D, rpb,
                                                              (float)mval,
                                                              p->causal[0] | p->causal[1] | p->causal[2]);
                return launched(what);
            }
        }
#endif
        if constexpr (sizeof(A) == 4) {
            f2plan F;
            if (f2_usable(p, D) && f2_fits(p, X, D) && f2_fits(p, Y, D) && f2_fits(p, O, p->window) &&
                (!rpb || f2_fits(p, R, 1)) && f2_plan(p, F2_PAIRS, sizeof(T), p->heads, f2_config(p, x), F)) {
                int vec = f2_vec(p, X, sizeof(T), D) && f2_vec(p, Y, sizeof(T), D);
                if (F.empty) return NATTEN_SUCCESS;
                if ((st = f2_smem_attr((const void *)qk2_kernel<T>, F.smem))) return st;
                qk2_kernel<T><<<F.grid, F.block, F.smem, s>>>(F.g, f2mk(p, X), f2mk(p, Y),
                                                              rpb ? f2mk(p, R) : f2mk(p, X), f2mk(p, O), D, rpb,
                                                              (float)mval, vec);
                return launched(what);
            }
        }
        if ((st = make_plan(p, D, false, D, sizeof(A), p->heads, P)) || P.empty) return st;
        pn_kernel<T, A><<<P.grid, P.block, P.smem, s>>>(P.g, mkview(p, X), mkview(p, Y),
                                                        rpb ? mkview(p, R) : noview(), mkview(p, O), rpb,
                                                        D, mval, p->causal[0] | p->causal[1] | p->causal[2]);
        return launched(what);
    }

    /* O[q] = sum over slots of Wt[q, slot] * Y[key of slot] */
    static natten_status nn(const natten_problem *p, const natten_exec *x, natten_arg Wt, natten_arg Y,
                            natten_arg O, const char *what)
    {
        cudaStream_t s = stream(x);
        plan P;
        int Dv = dim_of(p, Y);
        natten_status st;
#if !defined(__HIP__)
        if constexpr (sizeof(T) == 2) {
            f2plan F;
            flgeo L;
            const f2cfg cf = f2_config(p, x);
            const bool fits = fm_usable(p, cf, Dv) && f2_fits(p, Wt, p->window) && f2_fits(p, Y, Dv) &&
                              f2_fits(p, O, Dv) && f2_vec(p, Y, sizeof(T), Dv) && f2_vec(p, O, sizeof(T), Dv);
            /* sm_90+: the bulk-copy kernel where it applies (ab_plan) */
            const ct_device *dv = ct_device_at(p->device.device_id);
            qbgeo B;
            f2plan PB;
            if (fits && cf.bulk && dv && dv->cc >= 90 &&
                ab_plan(p, cf.optin, Dv, f2mk(p, Wt), f2mk(p, Y), f2mk(p, O), PB, B)) {
                if (PB.empty) return NATTEN_SUCCESS;
                int nb = 0;
                if ((st = qb_fit((const void *)avb_kernel<T>, (int)PB.block.x, PB.smem, nb))) return st;
                if (nb > 0) {
                    avb_kernel<T><<<qb_grid(B, nb, dv), PB.block, PB.smem, s>>>(B, f2mk(p, Wt), f2mk(p, Y),
                                                                                f2mk(p, O), Dv);
                    return launched(what);
                }
            }
            /* a query's heads adjacent in the attention tensor: head groups (fh_plan) */
            if (fits && cf.hg &&
                fh_plan(p, sizeof(T), p->heads, cf.budget, cf.hbudget, 4, true, f2mk(p, Wt).sh, f2mk(p, Wt).sc, Dv,
                        f2mk(p, O).sh, f2mk(p, O).sc,
                        fh_pads(false) ? (fh_al4(f2mk(p, Wt)) ? 1u : 0u) | (fh_al4(f2mk(p, O)) ? 2u : 0u) : 0u, F, L)) {
                if (F.empty) return NATTEN_SUCCESS;
                if ((st = f2_smem_attr((const void *)avh_kernel<T>, F.smem))) return st;
                avh_kernel<T><<<F.grid, F.block, F.smem, s>>>(L, f2mk(p, Wt), f2mk(p, Y), f2mk(p, O), Dv);
                return launched(what);
            }
            if (fits && cf.lean && fl_plan(p, sizeof(T), p->heads, cf.budget, true, F, L)) {
                if (F.empty) return NATTEN_SUCCESS;
                if ((st = f2_smem_attr((const void *)avl_kernel<T>, F.smem))) return st;
                avl_kernel<T><<<F.grid, F.block, F.smem, s>>>(L, f2mk(p, Wt), f2mk(p, Y), f2mk(p, O), Dv);
                return launched(what);
            }
            if (fits && fm_plan(p, sizeof(T), p->heads, cf.budget, F)) {
                if (F.empty) return NATTEN_SUCCESS;
                if ((st = f2_smem_attr((const void *)avm_kernel<T>, F.smem))) return st;
                avm_kernel<T><<<F.grid, F.block, F.smem, s>>>(F.g, f2mk(p, Wt), f2mk(p, Y), f2mk(p, O), Dv);
                return launched(what);
            }
        }
#endif
        if constexpr (sizeof(A) == 4) {
            f2plan F;
            if (f2_usable(p, Dv) && f2_fits(p, Wt, p->window) && f2_fits(p, Y, Dv) && f2_fits(p, O, Dv) &&
                f2_plan(p, F2_PAIRS, sizeof(T), p->heads, f2_config(p, x), F)) {
                int vec = f2_vec(p, Y, sizeof(T), Dv) && f2_vec(p, O, sizeof(T), Dv);
                if (F.empty) return NATTEN_SUCCESS;
                if ((st = f2_smem_attr((const void *)av2_kernel<T>, F.smem))) return st;
                av2_kernel<T><<<F.grid, F.block, F.smem, s>>>(F.g, f2mk(p, Wt), f2mk(p, Y), f2mk(p, O), Dv, vec);
                return launched(what);
            }
        }
        if ((st = make_plan(p, Dv, false, Dv, sizeof(A), p->heads, P)) || P.empty) return st;
        nn_kernel<T, A><<<P.grid, P.block, P.smem, s>>>(P.g, mkview(p, Wt), mkview(p, Y), mkview(p, O), Dv);
        return launched(what);
    }

    /* O[key] = sum over queries q seeing it of Wt[q, slot] * X[q] */
    static natten_status in(const natten_problem *p, cudaStream_t s, natten_arg Wt, natten_arg X,
                            natten_arg O, const char *what)
    {
        plan P;
        int Dx = dim_of(p, X);
        natten_status st = make_plan(p, Dx, true, Dx, sizeof(A), p->heads, P);
        if (st || P.empty) return st;
        in_kernel<T, A><<<P.grid, P.block, P.smem, s>>>(P.g, mkview(p, Wt), mkview(p, X), mkview(p, O), Dx);
        return launched(what);
    }

    /* d_rpb from per-slot gradients Gr (a view of dtype GT) */
    template <typename GT>
    static natten_status rpb_reduce(const natten_problem *p, cudaStream_t s, dview Gr, const char *what)
    {
        plan P;
        i64 E = 1;
        natten_status st = make_plan(p, 1, false, 1, sizeof(A), p->heads, P);
        if (st) return st;
        for (int a = 0; a < 3; a++) E *= 2 * (i64)p->kernel[a] - 1;
        if (E > 0x7fffffffLL)
            return natten_error(NATTEN_ERROR_UNSUPPORTED, CT_NAME ": %lld bias entries exceed the grid limit",
                                (long long)E);
        if (p->heads == 0) return NATTEN_SUCCESS;
        dim3 grid((unsigned)E, (unsigned)(p->heads < 65535 ? p->heads : 65535), 1);
        rpb_reduce_kernel<GT, T><<<grid, 256, 0, s>>>(P.g, Gr, mkview(p, NATTEN_ARG_D_RPB), p->batch);
        return launched(what);
    }

    static natten_status qk_forward(const natten_problem *p, const natten_exec *x)
    {
        return pn(p, x, NATTEN_ARG_Q, NATTEN_ARG_K, NATTEN_ARG_RPB, NATTEN_ARG_ATTN, -INFINITY,
                  "qk_forward");
    }

    static natten_status qk_backward(const natten_problem *p, const natten_exec *x)
    {
        natten_status st;
        if ((st = nn(p, x, NATTEN_ARG_D_ATTN, NATTEN_ARG_K, NATTEN_ARG_D_Q, "qk_backward (dq)")))
            return st;
        if ((st = in(p, stream(x), NATTEN_ARG_D_ATTN, NATTEN_ARG_Q, NATTEN_ARG_D_K, "qk_backward (dk)")))
            return st;
        if (natten_has(p, NATTEN_ARG_D_RPB))
            st = rpb_reduce<T>(p, stream(x), mkview(p, NATTEN_ARG_D_ATTN), "qk_backward (d_rpb)");
        return st;
    }

    static natten_status av_forward(const natten_problem *p, const natten_exec *x)
    {
        return nn(p, x, NATTEN_ARG_ATTN, NATTEN_ARG_V, NATTEN_ARG_OUT, "av_forward");
    }

    static natten_status av_backward(const natten_problem *p, const natten_exec *x)
    {
        natten_status st;
        if ((st = pn(p, x, NATTEN_ARG_D_OUT, NATTEN_ARG_V, NATTEN_ARG_COUNT, NATTEN_ARG_D_ATTN, 0,
                     "av_backward (d_attn)")))
            return st;
        return in(p, stream(x), NATTEN_ARG_ATTN, NATTEN_ARG_D_OUT, NATTEN_ARG_D_V, "av_backward (dv)");
    }

    static natten_status fna_forward(const natten_problem *p, const natten_exec *x)
    {
        plan P;
        int D = (int)p->dim, Dv = (int)p->dim_v, rpb = natten_has(p, NATTEN_ARG_RPB);
        int lse = natten_has(p, NATTEN_ARG_LSE);
        natten_status st;
        if constexpr (sizeof(A) == 4) {
            f2plan F;
            if (f2_usable(p, D > Dv ? D : Dv) && f2_fits(p, NATTEN_ARG_Q, D) && f2_fits(p, NATTEN_ARG_K, D) &&
                f2_fits(p, NATTEN_ARG_V, Dv) && f2_fits(p, NATTEN_ARG_OUT, Dv) &&
                (!lse || f2_fits(p, NATTEN_ARG_LSE, 1)) && (!rpb || f2_fits(p, NATTEN_ARG_RPB, 1)) &&
                f2_plan(p, F2_FUSED, sizeof(T), p->heads, f2_config(p, x), F)) {
                int vec = f2_vec(p, NATTEN_ARG_Q, sizeof(T), D) && f2_vec(p, NATTEN_ARG_K, sizeof(T), D) &&
                          f2_vec(p, NATTEN_ARG_V, sizeof(T), Dv) && f2_vec(p, NATTEN_ARG_OUT, sizeof(T), Dv);
                if (F.empty) return NATTEN_SUCCESS;
                if ((st = f2_smem_attr((const void *)fna2_kernel<T>, F.smem))) return st;
                fna2_kernel<T><<<F.grid, F.block, F.smem, stream(x)>>>(
                    F.g, f2mk(p, NATTEN_ARG_Q), f2mk(p, NATTEN_ARG_K), f2mk(p, NATTEN_ARG_V),
                    rpb ? f2mk(p, NATTEN_ARG_RPB) : f2mk(p, NATTEN_ARG_Q), f2mk(p, NATTEN_ARG_OUT),
                    lse ? f2mk(p, NATTEN_ARG_LSE) : f2mk(p, NATTEN_ARG_Q), D, Dv, rpb, lse, (float)p->scale, vec,
                    f2_rot());
                return launched("fna_forward");
            }
        }
        if ((st = make_plan(p, D > Dv ? D : Dv, false, D + Dv, sizeof(A), p->heads, P)) || P.empty) return st;
        fwd_kernel<T, A><<<P.grid, P.block, P.smem, stream(x)>>>(
            P.g, mkview(p, NATTEN_ARG_Q), mkview(p, NATTEN_ARG_K), mkview(p, NATTEN_ARG_V),
            rpb ? mkview(p, NATTEN_ARG_RPB) : noview(), mkview(p, NATTEN_ARG_OUT),
            lse ? mkview(p, NATTEN_ARG_LSE) : noview(), rpb, lse, D, Dv, (int)(p->heads / p->heads_kv),
            (A)p->scale);
        return launched("fna_forward");
    }

    /* The fast fused backward: one launch of bwd2 (dkv2's and dq2's blocks in
     * one grid, each computing the delta it needs; dS for d_rpb), or, where
     * the two plans' blocks differ in size, the grid would be too long, or
     * NATTEN_CUDA_TILED_BWD_SPLIT is set (tests, A/B), dq2 (dQ, delta, dS),
     * then dkv2 reading delta. */
    static natten_status f2_backward(const natten_problem *p, const natten_exec *x, const f2plan &Fq,
                                     const f2plan &Fk, int vec, int want_drpb)
    {
        cudaStream_t s = stream(x);
        int D = (int)p->dim, Dv = (int)p->dim_v, rpb = natten_has(p, NATTEN_ARG_RPB);
        i64 n = p->batch * p->tokens * p->heads;
        natten_status st;
        float *delta, *ds = 0;
        if (Fq.empty) return NATTEN_SUCCESS;
        const char *split = getenv("NATTEN_CUDA_TILED_BWD_SPLIT");
        const int rot = f2_rot();
        const i64 bhq = p->batch * p->heads, bhk = p->batch * p->heads_kv;
        const i64 nk = bhk * Fk.g.ax[0].d * Fk.g.ax[0].nt * Fk.g.ax[1].d * Fk.g.ax[1].nt,
                  nq = bhq * Fq.g.ax[0].d * Fq.g.ax[0].nt * Fq.g.ax[1].d * Fq.g.ax[1].nt;
        if (!(split && *split && strcmp(split, "0") != 0) && !Fk.empty && Fq.block.x == Fk.block.x &&
            nk + nq <= 0x7fffffffLL) {
            const size_t smem = Fq.smem > Fk.smem ? Fq.smem : Fk.smem;
            if ((st = f2_smem_attr((const void *)bwd2_kernel<T>, smem))) return st;
            if (want_drpb && (ds = (float *)ct_scratch((size_t)(n * p->window) * sizeof(float), s, &st)) == 0)
                return st;
            bwd2_kernel<T><<<(unsigned)(nk + nq), Fq.block, smem, s>>>(
                Fq.g, Fk.g, (unsigned)nk, (int)bhq, (int)bhk, f2mk(p, NATTEN_ARG_Q), f2mk(p, NATTEN_ARG_K),
                f2mk(p, NATTEN_ARG_V), rpb ? f2mk(p, NATTEN_ARG_RPB) : f2mk(p, NATTEN_ARG_Q), f2mk(p, NATTEN_ARG_OUT),
                f2mk(p, NATTEN_ARG_LSE), f2mk(p, NATTEN_ARG_D_OUT), f2mk(p, NATTEN_ARG_D_Q), f2mk(p, NATTEN_ARG_D_K),
                f2mk(p, NATTEN_ARG_D_V), ds, D, Dv, rpb, (int)p->heads, (float)p->scale, vec, rot);
            st = launched("fna_backward (dq, dk, dv)");
            if (!st && want_drpb) st = rpb_reduce<float>(p, s, ds_view(p, ds), "fna_backward (d_rpb)");
            natten_status s1 = ct_scratch_release(ds, s);
            return st ? st : s1;
        }
        if ((st = f2_smem_attr((const void *)dq2_kernel<T>, Fq.smem)) ||
            (st = f2_smem_attr((const void *)dkv2_kernel<T>, Fk.smem)))
            return st;
        if ((delta = (float *)ct_scratch((size_t)n * sizeof(float), s, &st)) == 0) return st;
        if (want_drpb && (ds = (float *)ct_scratch((size_t)(n * p->window) * sizeof(float), s, &st)) == 0) {
            (void)ct_scratch_release(delta, s); /* already failing: keep the first error */
            return st;
        }
        f2view R = rpb ? f2mk(p, NATTEN_ARG_RPB) : f2mk(p, NATTEN_ARG_Q);
        dq2_kernel<T><<<Fq.grid, Fq.block, Fq.smem, s>>>(
            Fq.g, f2mk(p, NATTEN_ARG_Q), f2mk(p, NATTEN_ARG_K), f2mk(p, NATTEN_ARG_V), R, f2mk(p, NATTEN_ARG_OUT),
            f2mk(p, NATTEN_ARG_LSE), f2mk(p, NATTEN_ARG_D_OUT), f2mk(p, NATTEN_ARG_D_Q), delta, ds, D, Dv, rpb,
            (float)p->scale, vec, rot);
        st = launched("fna_backward (dq)");
        if (!st && !Fk.empty) {
            dkv2_kernel<T><<<Fk.grid, Fk.block, Fk.smem, s>>>(
                Fk.g, f2mk(p, NATTEN_ARG_Q), f2mk(p, NATTEN_ARG_K), f2mk(p, NATTEN_ARG_V), R,
                f2mk(p, NATTEN_ARG_LSE), f2mk(p, NATTEN_ARG_D_OUT), f2mk(p, NATTEN_ARG_D_K),
                f2mk(p, NATTEN_ARG_D_V), delta, D, Dv, rpb, (int)p->heads, (float)p->scale, vec, rot);
            st = launched("fna_backward (dk, dv)");
        }
        if (!st && want_drpb) st = rpb_reduce<float>(p, s, ds_view(p, ds), "fna_backward (d_rpb)");
        natten_status s1 = ct_scratch_release(ds, s), s2 = ct_scratch_release(delta, s);
        return st ? st : s1 ? s1 : s2;
    }

    /* The backward's dS scratch (d_rpb's input) as a compact [B, X0, X1, X2, H, W] view */
    static dview ds_view(const natten_problem *p, void *ds)
    {
        dview g;
        g.p = (char *)ds;
        g.s[4] = p->window;
        g.s[3] = p->heads * g.s[4];
        g.s[2] = p->extent[2] * g.s[3];
        g.s[1] = p->extent[1] * g.s[2];
        g.s[0] = p->extent[0] * g.s[1];
        return g;
    }

    static natten_status fna_backward(const natten_problem *p, const natten_exec *x)
    {
        plan Pq, Pk;
        cudaStream_t s = stream(x);
        int D = (int)p->dim, Dv = (int)p->dim_v, rpb = natten_has(p, NATTEN_ARG_RPB);
        int want_drpb = natten_has(p, NATTEN_ARG_D_RPB), group = (int)(p->heads / p->heads_kv);
        i64 n = p->batch * p->tokens * p->heads;
        natten_status st;
        A *delta, *ds = 0;
        if constexpr (sizeof(A) == 4) {
            f2plan Fq, Fk;
            bool ok = f2_usable(p, D > Dv ? D : Dv) && (!rpb || f2_fits(p, NATTEN_ARG_RPB, 1)) &&
                      f2_fits(p, NATTEN_ARG_LSE, 1);
            for (int a = NATTEN_ARG_Q; ok && a <= NATTEN_ARG_D_V; a++)
                if (a != NATTEN_ARG_RPB && a != NATTEN_ARG_LSE && a != NATTEN_ARG_ATTN && a != NATTEN_ARG_D_ATTN &&
                    a != NATTEN_ARG_D_RPB && natten_has(p, (natten_arg)a))
                    ok = f2_fits(p, (natten_arg)a, p->arg[a].shape[NV_C]);
            if (ok && f2_plan(p, F2_FUSED, sizeof(T), p->heads, f2_config(p, x), Fq) &&
                f2_plan(p, F2_INVERSE, sizeof(T), p->heads_kv, f2_config(p, x), Fk)) {
                static const natten_arg io[] = {NATTEN_ARG_Q, NATTEN_ARG_K, NATTEN_ARG_V, NATTEN_ARG_OUT,
                                                NATTEN_ARG_D_OUT, NATTEN_ARG_D_Q, NATTEN_ARG_D_K, NATTEN_ARG_D_V};
                int vec = 1;
                for (int a = 0; a < 8; a++) vec &= f2_vec(p, io[a], sizeof(T), (int)p->arg[io[a]].shape[NV_C]);
                return f2_backward(p, x, Fq, Fk, vec, want_drpb);
            }
        }
        if ((st = make_plan(p, D > Dv ? D : Dv, false, D + Dv, sizeof(A), p->heads, Pq))) return st;
        if ((st = make_plan(p, D > Dv ? D : Dv, true, D + Dv + 2, sizeof(A), p->heads_kv, Pk))) return st;
        Pk.smem -= (size_t)(Pk.g.ax[0].C + Pk.g.ax[1].C + Pk.g.ax[2].C) * sizeof(i64); /* no window table */
        if ((delta = (A *)ct_scratch((size_t)(n > 0 ? n : 1) * sizeof(A), s, &st)) == 0) return st;
        if (want_drpb && (ds = (A *)ct_scratch((size_t)(n > 0 ? n * p->window : 1) * sizeof(A), s, &st)) == 0) {
            (void)ct_scratch_release(delta, s); /* already failing: keep the first error */
            return st;
        }
        if (!Pq.empty) {
            dq_kernel<T, A><<<Pq.grid, Pq.block, Pq.smem, s>>>(
                Pq.g, mkview(p, NATTEN_ARG_Q), mkview(p, NATTEN_ARG_K), mkview(p, NATTEN_ARG_V),
                rpb ? mkview(p, NATTEN_ARG_RPB) : noview(), mkview(p, NATTEN_ARG_OUT), mkview(p, NATTEN_ARG_LSE),
                mkview(p, NATTEN_ARG_D_OUT), mkview(p, NATTEN_ARG_D_Q), delta, ds, rpb, D, Dv, group,
                (A)p->scale);
            st = launched("fna_backward (dq)");
        }
        if (!st && !Pk.empty) {
            dkv_kernel<T, A><<<Pk.grid, Pk.block, Pk.smem, s>>>(
                Pk.g, mkview(p, NATTEN_ARG_Q), mkview(p, NATTEN_ARG_K), mkview(p, NATTEN_ARG_V),
                rpb ? mkview(p, NATTEN_ARG_RPB) : noview(), mkview(p, NATTEN_ARG_LSE), mkview(p, NATTEN_ARG_D_OUT),
                mkview(p, NATTEN_ARG_D_K), mkview(p, NATTEN_ARG_D_V), delta, rpb, D, Dv, group, (int)p->heads,
                (A)p->scale);
            st = launched("fna_backward (dk, dv)");
        }
        if (!st && want_drpb) st = rpb_reduce<A>(p, s, ds_view(p, ds), "fna_backward (d_rpb)");
        {
            natten_status s1 = ct_scratch_release(ds, s), s2 = ct_scratch_release(delta, s);
            return st ? st : s1 ? s1 : s2;
        }
    }
};

#define CT_OPS_TABLE(T)                                                                        \
    {                                                                                          \
        {                                                                                      \
            ct::ops<T>::qk_forward, ct::ops<T>::qk_backward, ct::ops<T>::av_forward,           \
                ct::ops<T>::av_backward, ct::ops<T>::fna_forward, ct::ops<T>::fna_backward     \
        }                                                                                      \
    }

} /* namespace ct */

#endif
