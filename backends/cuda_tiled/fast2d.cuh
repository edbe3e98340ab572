/*
 * fast2d.cuh - cuda-tiled's fast kernels for rank 1 and 2, head dims up to 32,
 * float accumulation (fp32, fp16, bf16); included by kernels.cuh inside
 * namespace ct.  The generic kernels there serve everything else.
 *
 * Why the generic kernels are slow: every partner visit recomputes 64-bit
 * slot and address arithmetic, each dot product ends in a shuffle reduction,
 * and the attention matrix (QK's output, AV's input: the dominant traffic) is
 * written or read two bytes at a time by threads that are H*K^n elements
 * apart, so that every element costs its own memory transaction.
 *
 * Here, with 32-bit index math done once per tile and per query:
 *  - a block owns a box of queries (T0 rows x T1 columns of one dilation
 *    group) of one batch and head; the union of their windows is staged once
 *    in shared memory as float, with 16-byte loads where the layout allows;
 *  - unfused ops (pairs kernels): a pair of lanes serves four consecutive
 *    queries of a row, each lane two of them (columns +lane, +lane+2) with
 *    their head-dim rows in registers; both lanes walk the same key columns,
 *    so that a staged key row is read once (a broadcast) for four queries;
 *    each dot product is one thread's work, no shuffles;
 *  - the attention matrix moves one window row (slot t on axis 0) at a time
 *    through a small shared buffer, in which lanes that are consecutive in the
 *    warp touch consecutive slots of one query: coalesced global accesses;
 *  - the fused kernels (forward, dQ; dK and dV per key): four lanes per
 *    query (key), each holding eight of its head-dim values in registers, a
 *    dot product ending in two shuffles among the four (a thread per query
 *    held 128 registers and, with the staged box, ran 2 warps per scheduler);
 *    online softmax in base 2, keys and values from the staged box.
 * Every sum is in a fixed order: results are deterministic.
 */

#define F2_MAXD 32    /* head dim the fast kernels keep in registers */
#define F2_THREADS 256
#define F2_LPQ 4                   /* fused kernels: lanes per query (key) */
#define F2_SUB (F2_MAXD / F2_LPQ) /* ... and head-dim values per lane */
#define F2_PAIR_THREADS 128 /* the unfused kernels: three blocks of 128 per SM (registers) */

struct f2axis {
    int L, K, d, s, c; /* extent, window, dilation, stride, causal */
    int T, nt;         /* tile extent (group positions), tiles per dilation group */
};

struct f2geo {
    f2axis ax[2]; /* 0: rows (axis 0 of a 2-D problem, a unit axis in 1-D); 1: columns */
    int H;        /* heads walked by blockIdx.x with the batch */
    int group;    /* query heads per kv head (fused) */
    int ps, rstr; /* staged floats per position, per box row */
    int spr, spc; /* staged box bounds (rows, columns) */
    int nq;       /* queries per tile */
};

/* A tensor as the fast kernels see it: element strides; b and h in 64 bits,
 * the position within one (b, h) in 32 (the host checks that it fits). */
struct f2view {
    char *p;
    i64 sb, sh;
    int sr, sc;
};

template <typename T>
__device__ __forceinline__ T *f2at(const f2view &v, int b, int h)
{
    return (T *)v.p + (i64)b * v.sb + (i64)h * v.sh;
}

/* natten_window_g in 32 bits */
__device__ __forceinline__ void f2win(int n, int K, int s, int causal, int u, int &a, int &b)
{
    if (causal) {
        int lead = (u / s) * s + s - 1;
        if (lead > n - 1) lead = n - 1;
        a = lead - K + 1 < 0 ? 0 : lead - K + 1;
        b = u + 1;
    } else {
        int lead = (u / s) * s + s / 2, st;
        if (lead > n - 1) lead = n - 1;
        st = lead - K / 2;
        if (st > n - K) st = n - K;
        if (st < 0) st = 0;
        a = st;
        b = st + K;
    }
}

/* 16 bytes of T as floats.  raw is a value: bound by reference to global
 * memory, the memcpy below read it as 16 one-byte loads (LDG.E.U8 and PRMT in
 * the SASS of dq2's, dkv2's and fna2's row loads; 28 % of dq2's stall samples
 * on the H200; docs/benchmarks.md, "Where the time goes"). */
template <typename T>
__device__ __forceinline__ void f2cvt(const uint4 raw, float *out)
{
    T e[16 / sizeof(T)];
    memcpy(e, &raw, 16);
#pragma unroll
    for (int i = 0; i < (int)(16 / sizeof(T)); i++) out[i] = to_acc(e[i]);
}

/* Load a row of D <= N elements as N floats (zeros past D; none loaded when
 * D <= 0).  vec: 16-byte loads (p 16-byte aligned, D a multiple of them). */
template <typename T, int N = F2_MAXD>
__device__ __forceinline__ void f2load(const T *p, float *r, int D, bool vec)
{
    const int VE = 16 / sizeof(T);
    if (vec) {
#pragma unroll
        for (int k = 0; k < N / VE; k++) {
            if (k * VE < D) {
                const uint4 raw = ((const uint4 *)p)[k]; /* one 16-byte load */
                f2cvt<T>(raw, r + k * VE);
            } else {
#pragma unroll
                for (int i = 0; i < VE; i++) r[k * VE + i] = 0.f;
            }
        }
    } else {
#pragma unroll
        for (int k = 0; k < N; k++) r[k] = k < D ? to_acc(p[k]) : 0.f;
    }
}

/* Store the first D of N floats as T. */
template <typename T, int N = F2_MAXD>
__device__ __forceinline__ void f2store(T *p, const float *r, int D, bool vec)
{
    const int VE = 16 / sizeof(T);
    if (vec) {
#pragma unroll
        for (int k = 0; k < N / VE; k++)
            if (k * VE < D) {
                T e[VE];
                uint4 raw;
#pragma unroll
                for (int i = 0; i < VE; i++) put(&e[i], r[k * VE + i]);
                memcpy(&raw, e, 16);
                ((uint4 *)p)[k] = raw;
            }
    } else {
#pragma unroll
        for (int k = 0; k < N; k++)
            if (k < D) put(p + k, r[k]);
    }
}

/* The tile of this block (block-uniform); false if it lies past its group. */
struct f2tile {
    int g[2], n[2], u0[2], u1[2]; /* group, group length, first and last position */
    int ba[2], bb[2];             /* staged box [ba, bb) per axis */
};

__device__ __forceinline__ bool f2_get_tile_at(const f2geo &G, int r, f2tile &t)
{
    int t1 = r % G.ax[1].nt;
    r /= G.ax[1].nt;
    t.g[1] = r % G.ax[1].d;
    r /= G.ax[1].d;
    int t0 = r % G.ax[0].nt;
    t.g[0] = r / G.ax[0].nt;
    if (t.g[0] >= G.ax[0].d) return false;
    int tt[2] = {t0, t1};
    for (int a = 0; a < 2; a++) {
        const f2axis &x = G.ax[a];
        int q0, q1;
        t.n[a] = (x.L - t.g[a] + x.d - 1) / x.d;
        t.u0[a] = tt[a] * x.T;
        if (t.u0[a] >= t.n[a]) return false;
        t.u1[a] = min(t.u0[a] + x.T, t.n[a]) - 1;
        f2win(t.n[a], x.K, x.s, x.c, t.u0[a], t.ba[a], q1);
        f2win(t.n[a], x.K, x.s, x.c, t.u1[a], q0, t.bb[a]);
        t.bb[a] = min(t.bb[a], t.ba[a] + (a ? G.spc : G.spr)); /* the host's bound (never exceeded) */
    }
    return true;
}

/* ... of a block whose tile index comes from blockIdx.y and .z */
__device__ __forceinline__ bool f2_get_tile(const f2geo &G, f2tile &t)
{
    return f2_get_tile_at(G, (int)(blockIdx.y + blockIdx.z * gridDim.y), t);
}

/* Division by the staged box's column count as a multiply-high, exact for
 * pos * nc <= 2^32 (a box position and its column count are each below 2^16:
 * the box fits in shared memory): with m = ceil(2^32 / nc) (nc >= 2; nc = 1
 * divides nothing), pos m / 2^32 = pos / nc + pos (m nc - 2^32) / (nc 2^32),
 * where 0 <= m nc - 2^32 < nc puts the second term below 1 / nc: added to
 * pos / nc, whose fraction is at most 1 - 1 / nc, it never reaches the next
 * integer.  A 32-bit signed division is ~20 instructions; staging did one
 * per 16-byte chunk. */
struct f2divc {
    unsigned d, m;
};

__device__ __forceinline__ f2divc f2_divc(int d)
{
    f2divc v;
    v.d = (unsigned)d;
    v.m = v.d > 1 ? 0xffffffffu / v.d + 1u : 0u;
    return v;
}

__device__ __forceinline__ unsigned f2_div(unsigned x, const f2divc &v)
{
    return v.d > 1 ? __umulhi(x, v.m) : x;
}

/* Stage the box's rows of v (D elements each, zeros up to F2_MAXD) at float
 * offset off of each position.  Each thread issues F2_BATCH loads before it
 * stores any: a staging loop that waits for every load in turn is latency
 * bound (the first version of these kernels spent most of their time so). */
template <typename T, int F2_BATCH>
__device__ __forceinline__ void f2_stage(const f2geo &G, const f2tile &t, float *box, const T *base,
                                         const f2view &v, int D, int off, bool vec)
{
    const int nr = t.bb[0] - t.ba[0], nc = t.bb[1] - t.ba[1], np = nr * nc, nt = (int)blockDim.x;
    const f2divc dc = f2_divc(nc);
    /* box position (pr, pc) at element offset pr * rs + pc * cs of base0 */
    const int rs = G.ax[0].d * v.sr, cs = G.ax[1].d * v.sc;
    const T *base0 = base + (t.ba[0] * G.ax[0].d + t.g[0]) * v.sr + (t.ba[1] * G.ax[1].d + t.g[1]) * v.sc;
    if (vec) {
        const int VE = 16 / sizeof(T), NCH = F2_MAXD / VE, total = np * NCH;
        for (int i0 = (int)threadIdx.x; i0 < total; i0 += F2_BATCH * nt) {
            uint4 raw[F2_BATCH];
            int dst[F2_BATCH];
#pragma unroll
            for (int u = 0; u < F2_BATCH; u++) {
                const unsigned i = (unsigned)(i0 + u * nt), pos = i / NCH, k = i % NCH, pr = f2_div(pos, dc),
                               pc = pos - pr * (unsigned)nc;
                const bool in = i < (unsigned)total;
                dst[u] = in ? (int)(pr * (unsigned)G.rstr + pc * (unsigned)G.ps + k * VE) + off : -1;
                raw[u] = make_uint4(0, 0, 0, 0);
                if (in && (int)(k * VE) < D)
                    raw[u] = *(const uint4 *)(base0 + ((int)pr * rs + (int)pc * cs + (int)(k * VE)));
            }
#pragma unroll
            for (int u = 0; u < F2_BATCH; u++) {
                float f[16 / sizeof(T)];
                if (dst[u] < 0) continue;
                f2cvt<T>(raw[u], f);
#pragma unroll
                for (int e = 0; e < VE; e += 4)
                    *(float4 *)(box + dst[u] + e) = make_float4(f[e], f[e + 1], f[e + 2], f[e + 3]);
            }
        }
    } else {
        const int total = np * F2_MAXD;
        for (int i0 = (int)threadIdx.x; i0 < total; i0 += F2_BATCH * nt) {
            float x[F2_BATCH];
            int dst[F2_BATCH];
#pragma unroll
            for (int u = 0; u < F2_BATCH; u++) {
                const unsigned i = (unsigned)(i0 + u * nt), pos = i / F2_MAXD, e = i % F2_MAXD,
                               pr = f2_div(pos, dc), pc = pos - pr * (unsigned)nc;
                const bool in = i < (unsigned)total;
                dst[u] = in ? (int)(pr * (unsigned)G.rstr + pc * (unsigned)G.ps + e) + off : -1;
                x[u] = 0.f;
                if (in && (int)e < D) x[u] = to_acc(base0[(int)pr * rs + (int)pc * cs + (int)e]);
            }
#pragma unroll
            for (int u = 0; u < F2_BATCH; u++)
                if (dst[u] >= 0) box[dst[u]] = x[u];
        }
    }
}

/* dot of a register row with a staged row, four chains */
__device__ __forceinline__ float f2dot(const float *q, const float *k)
{
    float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
#pragma unroll
    for (int i = 0; i < F2_MAXD; i += 4) {
        float4 x = *(const float4 *)(k + i);
        s0 = fmaf(q[i], x.x, s0);
        s1 = fmaf(q[i + 1], x.y, s1);
        s2 = fmaf(q[i + 2], x.z, s2);
        s3 = fmaf(q[i + 3], x.w, s3);
    }
    return (s0 + s1) + (s2 + s3);
}

/* The fused kernels' four lanes of a row (query or key): the lane's part of
 * the head dim starts at e0 = F2_SUB * sub; rm, a shuffle mask of the four
 * (which always take the same path: they serve one row), x1 the lane distance
 * of sub and sub ^ 1.  Either way a warp serves rows 8w .. 8w + 7.  rot = 0:
 * a row's lanes adjacent (lane 4 r + sub); rot != 0 (with the rotated column
 * order, f2_first): lane 8 sub + r, so that the lane pairs (n, n ^ 1) serve
 * neighbouring rows of a tile row, which read the same staged position at the
 * steps where their rotated windows agree: a 16-byte shared-memory load whose
 * lane pairs share addresses returns in 2 passes instead of 4 (documented for
 * sm_70-75 as packing of uniform addresses).  On the H200 the backward was
 * slower so (+5-10 us of ~260; NOTES.md): rot is 0 unless
 * NATTEN_CUDA_TILED_ROT asks for it. */
struct f2lane {
    int row, sub, e0, x1;
    unsigned rm;
};

__device__ __forceinline__ f2lane f2_lane(int rot)
{
    f2lane L;
    const int t = (int)threadIdx.x;
    if (rot) {
        const int lane = t & 31;
        L.row = (t >> 5) * (32 / F2_LPQ) + (lane & 7);
        L.sub = lane >> 3;
        L.x1 = 8;
        L.rm = 0x01010101u << (lane & 7);
    } else {
        L.row = t / F2_LPQ;
        L.sub = t - L.row * F2_LPQ;
        L.x1 = 1;
        L.rm = 0xfu << (t & 28);
    }
    L.e0 = F2_SUB * L.sub;
    return L;
}

/* x summed over the row's four lanes; every lane gets the same bits
 * ((a + b) + (c + d), floating-point addition being commutative), in either
 * lane layout */
__device__ __forceinline__ float f2_rowsum(float x, const f2lane &ln)
{
    x += __shfl_xor_sync(ln.rm, x, ln.x1);
    return x + __shfl_xor_sync(ln.rm, x, 2 * ln.x1);
}

/* the lane's part of a dot product: F2_SUB register values with the staged
 * row's values from k (the lane's part of it), two chains */
__device__ __forceinline__ float f2dot_sub(const float *q, const float *k)
{
    float4 x = *(const float4 *)k, y = *(const float4 *)(k + 4);
    float s0 = fmaf(q[0], x.x, fmaf(q[2], x.z, fmaf(q[4], y.x, q[6] * y.z)));
    float s1 = fmaf(q[1], x.y, fmaf(q[3], x.w, fmaf(q[5], y.y, q[7] * y.w)));
    return s0 + s1;
}

/* r += a * (the staged row's part at k), F2_SUB values */
__device__ __forceinline__ void f2axpy_sub(float *r, float a, const float *k)
{
    float4 x = *(const float4 *)k, y = *(const float4 *)(k + 4);
    r[0] = fmaf(a, x.x, r[0]);
    r[1] = fmaf(a, x.y, r[1]);
    r[2] = fmaf(a, x.z, r[2]);
    r[3] = fmaf(a, x.w, r[3]);
    r[4] = fmaf(a, y.x, r[4]);
    r[5] = fmaf(a, y.y, r[5]);
    r[6] = fmaf(a, y.z, r[6]);
    r[7] = fmaf(a, y.w, r[7]);
}

/* ---- pairs kernels: per-lane setup shared by QK and AV ----------------------------- */

struct f2pair {
    bool rowon, on[2];
    int u0, ra, rb;      /* query row, its window rows */
    int col[2], a[2], b[2];
    int ua, ub;          /* the pair's union of key columns */
    int ql[2];           /* local query indices (row-major in the tile) */
};

__device__ __forceinline__ void f2_get_pair(const f2geo &G, const f2tile &t, f2pair &P)
{
    const int T0 = G.ax[0].T, T1 = G.ax[1].T, ng = T1 / 4;
    int g = (int)threadIdx.x >> 1, lane = (int)threadIdx.x & 1, gi = g % T0, gj = g / T0;
    const f2axis &X = G.ax[1];
    P.u0 = t.u0[0] + gi;
    P.rowon = gj < ng && P.u0 <= t.u1[0];
    f2win(t.n[0], G.ax[0].K, G.ax[0].s, G.ax[0].c, P.rowon ? P.u0 : t.u0[0], P.ra, P.rb);
    int first = t.u0[1] + 4 * gj, last = min(first + 3, t.u1[1]);
    P.ua = P.ub = 0;
    if (P.rowon && first <= t.u1[1]) {
        int q0, q1;
        f2win(t.n[1], X.K, X.s, X.c, first, P.ua, q1);
        f2win(t.n[1], X.K, X.s, X.c, last, q0, P.ub);
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        P.col[r] = first + lane + 2 * r;
        P.on[r] = P.rowon && P.col[r] <= t.u1[1];
        P.ql[r] = gi * T1 + 4 * gj + lane + 2 * r;
        if (P.on[r]) {
            f2win(t.n[1], X.K, X.s, X.c, P.col[r], P.a[r], P.b[r]);
        } else {
            P.a[r] = P.b[r] = 0;
        }
    }
}

/* Per-query table for the slot movers: element offset of the query's row in
 * the attention tensor (-1: no query) and its window's row and column counts. */
__device__ __forceinline__ void f2_qtable(const f2geo &G, const f2tile &t, const f2view &W, int *qoff, int2 *qwin)
{
    const int T1 = G.ax[1].T;
    for (int q = (int)threadIdx.x; q < G.nq; q += (int)blockDim.x) {
        int i = q / T1, j = q - i * T1, u0 = t.u0[0] + i, u1 = t.u0[1] + j, a0, b0, a1, b1;
        if (u0 > t.u1[0] || u1 > t.u1[1]) {
            qoff[q] = -1;
            continue;
        }
        f2win(t.n[0], G.ax[0].K, G.ax[0].s, G.ax[0].c, u0, a0, b0);
        f2win(t.n[1], G.ax[1].K, G.ax[1].s, G.ax[1].c, u1, a1, b1);
        qoff[q] = (u0 * G.ax[0].d + t.g[0]) * W.sr + (u1 * G.ax[1].d + t.g[1]) * W.sc;
        qwin[q] = make_int2(b0 - a0, b1 - a1);
    }
}

/* Slot movers: window row t of every query of the tile, between the attention
 * tensor and stage[q * K1 + tj] (stage holds T).  Lanes of a warp take
 * consecutive slots of one query (P >= K1 lanes per query, a power of two), so
 * that a warp reads or writes runs of K1 consecutive elements.  Each thread
 * has at most F2_MV elements per window row (the plan sees to it), all of
 * them unrolled: loads are issued together, and AV issues the next row's
 * loads (f2_fetch) before its compute and stores them (f2_put) after. */
#define F2_MV 16
struct f2lanes {
    int q0, qs, tj; /* first query, query step, slot of this lane */
};

__device__ __forceinline__ f2lanes f2_lanes(const f2geo &G)
{
    const int K1 = G.ax[1].K;
    int P = 1;
    while (P < K1) P *= 2;
    const int qpw = 32 / P, lane = (int)threadIdx.x & 31, warp = (int)threadIdx.x >> 5;
    f2lanes m;
    m.q0 = warp * qpw + lane / P;
    m.qs = (((int)blockDim.x + 31) >> 5) * qpw;
    m.tj = lane % P;
    return m;
}

template <typename T>
__device__ __forceinline__ void f2_flush(const f2geo &G, const f2lanes &m, T *wbase, const T *stage,
                                         const int *qoff, const int2 *qwin, int t, T mval)
{
    const int K1 = G.ax[1].K;
    if (m.tj >= K1) return;
    T v[F2_MV];
    int off[F2_MV];
#pragma unroll
    for (int u = 0; u < F2_MV; u++) {
        int q = m.q0 + u * m.qs;
        off[u] = q < G.nq ? qoff[q] : -1;
        if (off[u] >= 0) {
            int2 wn = qwin[q];
            v[u] = t < wn.x && m.tj < wn.y ? stage[q * K1 + m.tj] : mval;
        }
    }
#pragma unroll
    for (int u = 0; u < F2_MV; u++)
        if (off[u] >= 0) wbase[off[u] + t * K1 + m.tj] = v[u];
}

template <typename T>
__device__ __forceinline__ void f2_fetch(const f2geo &G, const f2lanes &m, const T *wbase, const int *qoff,
                                         const int2 *qwin, int t, T (&v)[F2_MV])
{
    const int K1 = G.ax[1].K;
#pragma unroll
    for (int u = 0; u < F2_MV; u++) {
        int q = m.q0 + u * m.qs, off = q < G.nq && m.tj < K1 ? qoff[q] : -1;
        v[u] = T();
        if (off >= 0) {
            int2 wn = qwin[q];
            if (t < wn.x && m.tj < wn.y) v[u] = wbase[off + t * K1 + m.tj];
        }
    }
}

template <typename T>
__device__ __forceinline__ void f2_put(const f2geo &G, const f2lanes &m, T *stage, const T (&v)[F2_MV])
{
    const int K1 = G.ax[1].K;
    if (m.tj >= K1) return;
#pragma unroll
    for (int u = 0; u < F2_MV; u++) {
        int q = m.q0 + u * m.qs;
        if (q < G.nq) stage[q * K1 + m.tj] = v[u]; /* slots outside the window: never read */
    }
}

/* Shared memory of the pairs kernels: box, two stages of nq * K1 T, qoff, qwin. */
template <typename T>
__device__ __forceinline__ void f2_pair_smem(const f2geo &G, unsigned char *sm, float *&box, T *&stage,
                                             int *&qoff, int2 *&qwin)
{
    size_t o = (size_t)G.spr * G.rstr * sizeof(float);
    box = (float *)sm;
    qwin = (int2 *)(sm + o);
    o += (size_t)G.nq * sizeof(int2);
    qoff = (int *)(sm + o);
    o += (size_t)G.nq * sizeof(int);
    stage = (T *)(sm + o);
}

/* attn[q, slot] = q . k[slot] (+ rpb); slots outside a causal window = mval */
template <typename T>
__global__ void __launch_bounds__(F2_PAIR_THREADS, 3) qk2_kernel(f2geo G, f2view Q, f2view Kt, f2view R, f2view O,
                                                          int D, int rpb, float mval, int vec)
{
    extern __shared__ __align__(16) unsigned char ct_smem[];
    f2tile t;
    if (!f2_get_tile(G, t)) return;
    float *box;
    T *stage;
    int *qoff;
    int2 *qwin;
    f2_pair_smem<T>(G, ct_smem, box, stage, qoff, qwin);
    const int b = (int)blockIdx.x / G.H, h = (int)blockIdx.x - b * G.H, K1 = G.ax[1].K;
    f2pair P;
    f2_get_pair(G, t, P);
    f2_stage<T, 16>(G, t, box, f2at<T>(Kt, b, h), Kt, D, 0, vec != 0);
    f2_qtable(G, t, O, qoff, qwin);
    float q[2][F2_MAXD];
    const T *qb = f2at<T>(Q, b, h);
#pragma unroll
    for (int r = 0; r < 2; r++) {
        if (P.on[r]) {
            f2load<T>(qb + (P.u0 * G.ax[0].d + t.g[0]) * Q.sr + (P.col[r] * G.ax[1].d + t.g[1]) * Q.sc, q[r], D,
                      vec != 0);
        } else {
#pragma unroll
            for (int k = 0; k < F2_MAXD; k++) q[r][k] = 0.f;
        }
    }
    const T *rb = rpb ? f2at<T>(R, 0, h) : (const T *)0;
    T *ob = f2at<T>(O, b, h);
    const f2lanes ml = f2_lanes(G);
    __syncthreads();
    for (int tr = 0; tr < G.ax[0].K; tr++) {
        T *st = stage + (tr & 1) * G.nq * K1;
        int kr = P.ra + tr;
        if (P.rowon && kr < P.rb) {
            const float *row = box + (kr - t.ba[0]) * G.rstr - t.ba[1] * G.ps;
            int er = kr - P.u0 + G.ax[0].K - 1;
            for (int c = P.ua; c < P.ub; c++) {
                bool w0 = c >= P.a[0] && c < P.b[0], w1 = c >= P.a[1] && c < P.b[1];
                if (!(w0 || w1)) continue;
                float k[F2_MAXD]; /* the key row once in registers, for both queries */
#pragma unroll
                for (int e = 0; e < F2_MAXD; e += 4) *(float4 *)(k + e) = *(const float4 *)(row + c * G.ps + e);
#pragma unroll
                for (int r = 0; r < 2; r++) {
                    if (r == 0 ? w0 : w1) {
                        float s = f2dot(q[r], k);
                        if (rpb) s += to_acc(rb[er * R.sr + (c - P.col[r] + K1 - 1) * R.sc]);
                        put(&st[P.ql[r] * K1 + c - P.a[r]], s);
                    }
                }
            }
        }
        __syncthreads();
        T mv;
        put(&mv, mval);
        f2_flush<T>(G, ml, ob, st, qoff, qwin, tr, mv);
    }
}

/* out[q] = sum over slots of attn[q, slot] * v[slot] */
template <typename T>
__global__ void __launch_bounds__(F2_PAIR_THREADS, 3) av2_kernel(f2geo G, f2view Wt, f2view V, f2view O, int D, int vec)
{
    extern __shared__ __align__(16) unsigned char ct_smem[];
    f2tile t;
    if (!f2_get_tile(G, t)) return;
    float *box;
    T *stage;
    int *qoff;
    int2 *qwin;
    f2_pair_smem<T>(G, ct_smem, box, stage, qoff, qwin);
    const int b = (int)blockIdx.x / G.H, h = (int)blockIdx.x - b * G.H, K1 = G.ax[1].K;
    f2pair P;
    f2_get_pair(G, t, P);
    f2_stage<T, 16>(G, t, box, f2at<T>(V, b, h), V, D, 0, vec != 0);
    f2_qtable(G, t, Wt, qoff, qwin);
    float acc[2][F2_MAXD];
#pragma unroll
    for (int r = 0; r < 2; r++)
#pragma unroll
        for (int k = 0; k < F2_MAXD; k++) acc[r][k] = 0.f;
    T *wb = f2at<T>(Wt, b, h);
    const f2lanes ml = f2_lanes(G);
    T pre[F2_MV];
    __syncthreads(); /* qoff, qwin */
    f2_fetch<T>(G, ml, wb, qoff, qwin, 0, pre);
    f2_put<T>(G, ml, stage, pre);
    __syncthreads();
    for (int tr = 0; tr < G.ax[0].K; tr++) {
        const T *st = stage + (tr & 1) * G.nq * K1;
        if (tr + 1 < G.ax[0].K) f2_fetch<T>(G, ml, wb, qoff, qwin, tr + 1, pre); /* in flight during the compute */
        int kr = P.ra + tr;
        if (P.rowon && kr < P.rb) {
            const float *row = box + (kr - t.ba[0]) * G.rstr - t.ba[1] * G.ps;
            for (int c = P.ua; c < P.ub; c++) {
                const float *vp = row + c * G.ps;
                bool w0 = c >= P.a[0] && c < P.b[0], w1 = c >= P.a[1] && c < P.b[1];
                if (!(w0 || w1)) continue;
                float v[F2_MAXD]; /* the value row once in registers, for both queries */
#pragma unroll
                for (int e = 0; e < F2_MAXD; e += 4) *(float4 *)(v + e) = *(const float4 *)(vp + e);
#pragma unroll
                for (int r = 0; r < 2; r++) {
                    if (r == 0 ? w0 : w1) {
                        float x = to_acc(st[P.ql[r] * K1 + c - P.a[r]]);
#pragma unroll
                        for (int e = 0; e < F2_MAXD; e++) acc[r][e] = fmaf(x, v[e], acc[r][e]);
                    }
                }
            }
        }
        if (tr + 1 < G.ax[0].K) f2_put<T>(G, ml, stage + ((tr + 1) & 1) * G.nq * K1, pre);
        __syncthreads();
    }
    T *obase = f2at<T>(O, b, h);
#pragma unroll
    for (int r = 0; r < 2; r++)
        if (P.on[r])
            f2store<T>(obase + (P.u0 * G.ax[0].d + t.g[0]) * O.sr + (P.col[r] * G.ax[1].d + t.g[1]) * O.sc, acc[r], D,
                       vec != 0);
}

/* ---- fused forward: four lanes per query ---------------------------------------- */

static_assert(F2_SUB == 8, "f2dot_sub and f2axpy_sub take eight values per lane");

/* The order in which a row (query or key) of the fused kernels walks the
 * columns [ca, cb) of its window: from the column x0 congruent to 0 modulo
 * the window's length (rot != 0), wrapping from cb - 1 to ca; from ca when
 * rot is 0.  The eight rows of a warp are one tile row: with windows of K
 * columns, ca growing by at most one per row, the warp then reads two staged
 * positions a step (congruent modulo K) instead of eight neighbours, and with
 * the interleaved lanes (f2_lane) lane pairs share addresses at 3 of 7 steps
 * of an interior row.  A fixed order per row: results stay deterministic.
 * Off by default (NATTEN_CUDA_TILED_ROT). */
__device__ __forceinline__ int f2_first(int ca, int cb, int rot)
{
    const int len = cb - ca;
    if (!rot || len <= 1) return ca;
    int r = (-ca) % len;
    return ca + (r < 0 ? r + len : r);
}

__device__ __forceinline__ int f2_next(int x, int ca, int cb)
{
    return x + 1 == cb ? ca : x + 1;
}

/* Staged position: k at [0, 32), v at [32, 64). */
template <typename T>
__global__ void __launch_bounds__(F2_THREADS) fna2_kernel(f2geo G, f2view Q, f2view Kt, f2view V, f2view R,
                                                           f2view O, f2view L, int D, int Dv, int rpb, int lse,
                                                           float scale, int vec, int rot)
{
    extern __shared__ __align__(16) unsigned char ct_smem[];
    f2tile t;
    if (!f2_get_tile(G, t)) return;
    float *box = (float *)ct_smem;
    const int b = (int)blockIdx.x / G.H, h = (int)blockIdx.x - b * G.H, hk = h / G.group;
    const f2lane ln = f2_lane(rot);
    const int T1 = G.ax[1].T, i = ln.row / T1, j = ln.row - i * T1, e0 = ln.e0;
    const int u0 = t.u0[0] + i, u1 = t.u0[1] + j;
    const bool on = ln.row < G.nq && u0 <= t.u1[0] && u1 <= t.u1[1];
    const float L2E = 1.4426950408889634f;
    f2_stage<T, 4>(G, t, box, f2at<T>(Kt, b, hk), Kt, D, 0, vec != 0);
    f2_stage<T, 4>(G, t, box, f2at<T>(V, b, hk), V, Dv, F2_MAXD, vec != 0);
    float q[F2_SUB], o[F2_SUB], m = -INFINITY, l = 0.f;
    int ra = 0, rb = 0, ca = 0, cb = 0, qo = 0;
    if (on) {
        f2win(t.n[0], G.ax[0].K, G.ax[0].s, G.ax[0].c, u0, ra, rb);
        f2win(t.n[1], G.ax[1].K, G.ax[1].s, G.ax[1].c, u1, ca, cb);
        qo = (u0 * G.ax[0].d + t.g[0]) * Q.sr + (u1 * G.ax[1].d + t.g[1]) * Q.sc;
        f2load<T, F2_SUB>(f2at<T>(Q, b, h) + qo + e0, q, D - e0, vec != 0);
    } else {
#pragma unroll
        for (int k = 0; k < F2_SUB; k++) q[k] = 0.f;
    }
#pragma unroll
    for (int k = 0; k < F2_SUB; k++) {
        q[k] *= scale * L2E;
        o[k] = 0.f;
    }
    const T *rp = rpb ? f2at<T>(R, 0, h) : (const T *)0;
    __syncthreads();
    /* the row's four lanes walk the same keys and compute the same s, m and
     * l; two keys a step, so that the running maximum, on which the next
     * step's exponentials wait, is updated once per two keys */
    const int x0 = f2_first(ca, cb, rot);
    for (int kr = ra; kr < rb; kr++) {
        const float *row = box + (kr - t.ba[0]) * G.rstr - t.ba[1] * G.ps + e0;
        const T *rr = rpb ? rp + (kr - u0 + G.ax[0].K - 1) * R.sr + (G.ax[1].K - 1 - u1) * R.sc : (const T *)0;
        int x = x0;
        for (int c = ca; c < cb; c += 2) {
            const bool two = c + 1 < cb;
            const int xa = x, xb = f2_next(xa, ca, cb);
            x = f2_next(xb, ca, cb);
            const float *k0 = row + xa * G.ps, *k1 = two ? row + xb * G.ps : k0;
            float s0 = f2dot_sub(q, k0), s1 = f2dot_sub(q, k1);
            s0 = f2_rowsum(s0, ln);
            s1 = f2_rowsum(s1, ln);
            if (rpb) {
                s0 = fmaf(to_acc(rr[xa * R.sc]), L2E, s0);
                s1 = two ? fmaf(to_acc(rr[xb * R.sc]), L2E, s1) : s0;
            }
            const float mx = fmaxf(s0, s1);
            if (mx > m) { /* new maximum: rescale what was summed so far */
                float al = exp2f(m - mx);
                l *= al;
#pragma unroll
                for (int k = 0; k < F2_SUB; k++) o[k] *= al;
                m = mx;
            }
            const float p0 = exp2f(s0 - m), p1 = two ? exp2f(s1 - m) : 0.f;
            l += p0 + p1;
            f2axpy_sub(o, p0, k0 + F2_MAXD);
            if (two) f2axpy_sub(o, p1, k1 + F2_MAXD);
        }
    }
    if (!on) return;
    float inv = 1.f / l;
#pragma unroll
    for (int k = 0; k < F2_SUB; k++) o[k] *= inv;
    f2store<T, F2_SUB>(f2at<T>(O, b, h) + (u0 * G.ax[0].d + t.g[0]) * O.sr + (u1 * G.ax[1].d + t.g[1]) * O.sc + e0,
                       o, Dv - e0, vec != 0);
    if (lse && ln.sub == 0)
        *(f2at<float>(L, b, h) + (u0 * G.ax[0].d + t.g[0]) * L.sr + (u1 * G.ax[1].d + t.g[1]) * L.sc) =
            m * 0.6931471805599453f + logf(l);
}

/* ---- fused backward: dQ per query, dK and dV per key ---------------------------- */

/* 2^x for the backward's probabilities: one MUFU.EX2, results below 2^-126
 * flushed to zero (exp2f scales such arguments around it: three more
 * instructions per (query, key) pair).  Equal to exp2f for x >= -126. */
__device__ __forceinline__ float f2ex2(float x)
{
#if defined(__HIP__)
    return exp2f(x);
#else
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#endif
}

/* Inverse window (natten_inverse_window_g) in 32 bits: the queries [qa, qb)
 * of a group of n whose windows hold position v. */
__device__ __forceinline__ void f2inv(int n, int K, int s, int causal, int v, int &qa, int &qb)
{
    int lo = 0, hi = n, a, b;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        f2win(n, K, s, causal, mid, a, b);
        if (b > v) hi = mid; else lo = mid + 1;
    }
    qa = lo;
    hi = n;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        f2win(n, K, s, causal, mid, a, b);
        if (a > v) hi = mid; else lo = mid + 1;
    }
    qb = lo;
}

/* dq2 and dkv2 ask for three blocks of 256 per SM: ptxas then keeps them at
 * 80 registers (with a few dozen bytes of spills) instead of 98 / 127 (two
 * blocks per SM); on the H200, fp32 56x56 K 7 B 16 H 2, forward + backward
 * medians of two runs each: 506.8 / 425.7 us before, 396.1 / 391.8 after. */

/* dQ = scale * sum dS k, with P = exp(s - lse), dS = P (dO.v - delta), and
 * delta = dO.O (f2_delta) stored per query for the key side ([b, h, row, col]
 * floats) when delta is not NULL, dS per slot for d_rpb when ds is not NULL
 * ([b, token, h, slot]).  Staged position as in the forward: k at [0, 32), v
 * at [32, 64).  The work of batch-head bh and tile r (dq2_kernel: blockIdx). */

/* delta = dO . O of one row from its four lanes' parts (o, g: the lane's
 * F2_SUB values), in one fixed order: dq2 and dkv2's own computation in the
 * joint kernel (bwd2_kernel) get the same bits */
__device__ __forceinline__ float f2_delta(const float *g, const float *o, const f2lane &ln)
{
    float dl = 0.f;
#pragma unroll
    for (int k = 0; k < F2_SUB; k++) dl = fmaf(g[k], o[k], dl);
    return f2_rowsum(dl, ln);
}

template <typename T>
__device__ __forceinline__ void dq2_body(const f2geo &G, int bh, int r, const f2view &Q, const f2view &Kt,
                                         const f2view &V, const f2view &R, const f2view &O, const f2view &L,
                                         const f2view &dO, const f2view &dQ, float *delta, float *ds, int D, int Dv,
                                         int rpb, float scale, int vec, int rot)
{
    extern __shared__ __align__(16) unsigned char ct_smem[];
    f2tile t;
    if (!f2_get_tile_at(G, r, t)) return;
    float *box = (float *)ct_smem;
    const int b = bh / G.H, h = bh - b * G.H, hk = h / G.group;
    const f2lane ln = f2_lane(rot);
    const int T1 = G.ax[1].T, i = ln.row / T1, j = ln.row - i * T1, e0 = ln.e0;
    const int u0 = t.u0[0] + i, u1 = t.u0[1] + j, K1 = G.ax[1].K;
    const bool on = ln.row < G.nq && u0 <= t.u1[0] && u1 <= t.u1[1];
    const float L2E = 1.4426950408889634f;
    f2_stage<T, 8>(G, t, box, f2at<T>(Kt, b, hk), Kt, D, 0, vec != 0);
    f2_stage<T, 8>(G, t, box, f2at<T>(V, b, hk), V, Dv, F2_MAXD, vec != 0);
    float q[F2_SUB], g[F2_SUB], acc[F2_SUB], lse2 = 0.f, dl = 0.f;
    int ra = 0, rb = 0, ca = 0, cb = 0, x0 = 0, x1 = 0;
    float *dsq = 0;
    if (on) {
        f2win(t.n[0], G.ax[0].K, G.ax[0].s, G.ax[0].c, u0, ra, rb);
        f2win(t.n[1], G.ax[1].K, G.ax[1].s, G.ax[1].c, u1, ca, cb);
        x0 = u0 * G.ax[0].d + t.g[0];
        x1 = u1 * G.ax[1].d + t.g[1];
        f2load<T, F2_SUB>(f2at<T>(Q, b, h) + x0 * Q.sr + x1 * Q.sc + e0, q, D - e0, vec != 0);
        f2load<T, F2_SUB>(f2at<T>(O, b, h) + x0 * O.sr + x1 * O.sc + e0, acc, Dv - e0, vec != 0);
        f2load<T, F2_SUB>(f2at<T>(dO, b, h) + x0 * dO.sr + x1 * dO.sc + e0, g, Dv - e0, vec != 0);
        dl = f2_delta(g, acc, ln);
        lse2 = *(f2at<float>(L, b, h) + x0 * L.sr + x1 * L.sc) * L2E;
        if (delta && ln.sub == 0) delta[((i64)b * G.H + h) * G.ax[0].L * G.ax[1].L + (i64)x0 * G.ax[1].L + x1] = dl;
        if (ds && ln.sub == 0)
            dsq = ds + (((i64)b * G.ax[0].L * G.ax[1].L + (i64)x0 * G.ax[1].L + x1) * G.H + h) * (i64)(G.ax[0].K * K1);
    } else {
#pragma unroll
        for (int k = 0; k < F2_SUB; k++) q[k] = g[k] = 0.f;
    }
#pragma unroll
    for (int k = 0; k < F2_SUB; k++) {
        q[k] *= scale * L2E;
        acc[k] = 0.f;
    }
    const T *rp = rpb ? f2at<T>(R, 0, h) : (const T *)0;
    __syncthreads();
    const int xs = f2_first(ca, cb, rot);
    for (int kr = ra; kr < rb; kr++) {
        const float *row = box + (kr - t.ba[0]) * G.rstr - t.ba[1] * G.ps + e0;
        const int er = kr - u0 + G.ax[0].K - 1;
        int x = xs;
        for (int c = ca; c < cb; c++) {
            const float *kp = row + x * G.ps;
            float s = f2_rowsum(f2dot_sub(q, kp), ln), dp = f2_rowsum(f2dot_sub(g, kp + F2_MAXD), ln);
            if (rpb) s = fmaf(to_acc(rp[er * R.sr + (x - u1 + K1 - 1) * R.sc]), L2E, s);
            float dS = f2ex2(s - lse2) * (dp - dl);
            f2axpy_sub(acc, dS, kp);
            if (dsq) dsq[(kr - ra) * K1 + x - ca] = dS;
            x = f2_next(x, ca, cb);
        }
    }
    if (!on) return;
#pragma unroll
    for (int k = 0; k < F2_SUB; k++) acc[k] *= scale;
    f2store<T, F2_SUB>(f2at<T>(dQ, b, h) + x0 * dQ.sr + x1 * dQ.sc + e0, acc, D - e0, vec != 0);
}

template <typename T>
__global__ void __launch_bounds__(F2_THREADS, 3) dq2_kernel(f2geo G, f2view Q, f2view Kt, f2view V, f2view R,
                                                          f2view O, f2view L, f2view dO, f2view dQ, float *delta,
                                                          float *ds, int D, int Dv, int rpb, float scale, int vec,
                                                          int rot)
{
    dq2_body<T>(G, (int)blockIdx.x, (int)(blockIdx.y + blockIdx.z * gridDim.y), Q, Kt, V, R, O, L, dO, dQ, delta,
                ds, D, Dv, rpb, scale, vec, rot);
}

/* dK = scale * sum dS q, dV = sum P dO over the queries whose windows hold the
 * key (the inverse neighbourhood), for each query head of the kv head's group
 * in turn.  Staged query position: q [0, 32), dO [32, 64), lse * log2 e (64),
 * delta (65): delta read from the query side's array, or, where that is NULL,
 * computed here from O and dO (f2_delta, four lanes a position). */
template <typename T>
__device__ __forceinline__ void dkv2_body(const f2geo &G, int bh, int r, const f2view &Q, const f2view &Kt,
                                          const f2view &V, const f2view &R, const f2view &O, const f2view &L,
                                          const f2view &dO, const f2view &dK, const f2view &dV, const float *delta,
                                          int D, int Dv, int rpb, int Hq, float scale, int vec, int rot)
{
    extern __shared__ __align__(16) unsigned char ct_smem[];
    f2tile t;
    float *box = (float *)ct_smem;
    const int b = bh / G.H, hk = bh - b * G.H;
    const f2lane ln = f2_lane(rot);
    const int T1 = G.ax[1].T, i = ln.row / T1, j = ln.row - i * T1, e0 = ln.e0;
    const float L2E = 1.4426950408889634f;
    /* the tile of keys */
    {
        int t1 = r % G.ax[1].nt;
        r /= G.ax[1].nt;
        t.g[1] = r % G.ax[1].d;
        r /= G.ax[1].d;
        int t0 = r % G.ax[0].nt, tt[2];
        t.g[0] = r / G.ax[0].nt;
        if (t.g[0] >= G.ax[0].d) return;
        tt[0] = t0;
        tt[1] = t1;
        for (int a = 0; a < 2; a++) {
            const f2axis &x = G.ax[a];
            t.n[a] = (x.L - t.g[a] + x.d - 1) / x.d;
            t.u0[a] = tt[a] * x.T;
            if (t.u0[a] >= t.n[a]) return;
            t.u1[a] = min(t.u0[a] + x.T, t.n[a]) - 1;
        }
    }
    /* The inverse windows of the tile's rows and columns, one binary search
     * each by the first T0 + T1 threads (every thread searching its own and the
     * box's four cost more instructions than a key's whole inner loop), kept
     * after the box: inv[r] for row u0 + r, inv[T0 + c] for column u0 + c. */
    const int T0 = G.ax[0].T;
    int2 *inv = (int2 *)(box + G.spr * G.rstr);
    if ((int)threadIdx.x < T0 + T1) {
        const int a = (int)threadIdx.x < T0 ? 0 : 1, o = (int)threadIdx.x - (a ? T0 : 0);
        const f2axis &x = G.ax[a];
        int qa, qb;
        f2inv(t.n[a], x.K, x.s, x.c, min(t.u0[a] + o, t.u1[a]), qa, qb);
        inv[threadIdx.x] = make_int2(qa, qb);
    }
    __syncthreads();
    /* the union of the tile's inverse windows (each end is monotone in the
     * key), and the host's bound on it (never exceeded; a wrong result, not a
     * write past the box, if it ever were) */
    for (int a = 0; a < 2; a++) {
        const int o = a ? T0 : 0;
        t.ba[a] = inv[o].x;
        t.bb[a] = min(inv[o + t.u1[a] - t.u0[a]].y, t.ba[a] + (a ? G.spc : G.spr));
    }
    const int u0 = t.u0[0] + i, u1 = t.u0[1] + j;
    const bool on = ln.row < G.nq && u0 <= t.u1[0] && u1 <= t.u1[1];
    const int x0 = u0 * G.ax[0].d + t.g[0], x1 = u1 * G.ax[1].d + t.g[1];
    float k[F2_SUB], v[F2_SUB], dk[F2_SUB], dv[F2_SUB];
    int ra = 0, rb = 0, ca = 0, cb = 0;
    if (on) {
        const int2 wr = inv[i], wc = inv[T0 + j];
        ra = wr.x;
        rb = wr.y;
        ca = wc.x;
        cb = wc.y;
        f2load<T, F2_SUB>(f2at<T>(Kt, b, hk) + x0 * Kt.sr + x1 * Kt.sc + e0, k, D - e0, vec != 0);
        f2load<T, F2_SUB>(f2at<T>(V, b, hk) + x0 * V.sr + x1 * V.sc + e0, v, Dv - e0, vec != 0);
    } else {
#pragma unroll
        for (int e = 0; e < F2_SUB; e++) k[e] = v[e] = 0.f;
    }
#pragma unroll
    for (int e = 0; e < F2_SUB; e++) {
        k[e] *= scale * L2E;
        dk[e] = dv[e] = 0.f;
    }
    const int nr = t.bb[0] - t.ba[0], nc = t.bb[1] - t.ba[1];
    const f2divc dc = f2_divc(nc);
    for (int h = hk * G.group; h < (hk + 1) * G.group; h++) {
        const T *rp = rpb ? f2at<T>(R, 0, h) : (const T *)0;
        if (h > hk * G.group) __syncthreads(); /* the previous head's box is consumed */
        f2_stage<T, 4>(G, t, box, f2at<T>(Q, b, h), Q, D, 0, vec != 0);
        f2_stage<T, 4>(G, t, box, f2at<T>(dO, b, h), dO, Dv, F2_MAXD, vec != 0);
        const float *lb = f2at<float>(L, b, h);
        if (delta) {
            const float *db = delta + ((i64)b * Hq + h) * G.ax[0].L * G.ax[1].L;
            for (int i0 = (int)threadIdx.x; i0 < nr * nc; i0 += 4 * (int)blockDim.x) {
                float2 x[4];
                int dst[4];
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    int idx = i0 + u * (int)blockDim.x, pr = (int)f2_div((unsigned)idx, dc), pc = idx - pr * nc;
                    int y0 = (pr + t.ba[0]) * G.ax[0].d + t.g[0], y1 = (pc + t.ba[1]) * G.ax[1].d + t.g[1];
                    dst[u] = idx < nr * nc ? pr * G.rstr + pc * G.ps + 2 * F2_MAXD : -1;
                    x[u] = make_float2(0.f, 0.f); /* not carried from the previous pass (it was, in spilled registers) */
                    if (dst[u] >= 0) x[u] = make_float2(lb[y0 * L.sr + y1 * L.sc] * L2E, db[(i64)y0 * G.ax[1].L + y1]);
                }
#pragma unroll
                for (int u = 0; u < 4; u++)
                    if (dst[u] >= 0) *(float2 *)(box + dst[u]) = x[u];
            }
        } else {
            /* delta of each staged position by its four lanes (the same path:
             * pos is theirs alike), O and dO read from global memory (dO's
             * lines were just staged, so mostly from L1) */
            const T *ob = f2at<T>(O, b, h), *gb = f2at<T>(dO, b, h);
            for (int pos = ln.row; pos < nr * nc; pos += (int)blockDim.x / F2_LPQ) {
                const int pr = (int)f2_div((unsigned)pos, dc), pc = pos - pr * nc;
                const int y0 = (pr + t.ba[0]) * G.ax[0].d + t.g[0], y1 = (pc + t.ba[1]) * G.ax[1].d + t.g[1];
                float o[F2_SUB], g[F2_SUB];
                f2load<T, F2_SUB>(gb + y0 * dO.sr + y1 * dO.sc + e0, g, Dv - e0, vec != 0);
                f2load<T, F2_SUB>(ob + y0 * O.sr + y1 * O.sc + e0, o, Dv - e0, vec != 0);
                const float ls = lb[y0 * L.sr + y1 * L.sc] * L2E, dl = f2_delta(g, o, ln);
                if (ln.sub == 0) *(float2 *)(box + pr * G.rstr + pc * G.ps + 2 * F2_MAXD) = make_float2(ls, dl);
            }
        }
        __syncthreads();
        const int xs = f2_first(ca, cb, rot);
        for (int qr = ra; qr < rb; qr++) {
            const float *row = box + (qr - t.ba[0]) * G.rstr - t.ba[1] * G.ps;
            const int er = u0 - qr + G.ax[0].K - 1;
            int qc = xs;
            for (int c = ca; c < cb; c++, qc = f2_next(qc, ca, cb)) {
                const float *qp = row + qc * G.ps;
                float s = f2_rowsum(f2dot_sub(k, qp + e0), ln);
                float dp = f2_rowsum(f2dot_sub(v, qp + F2_MAXD + e0), ln);
                float2 ld = *(const float2 *)(qp + 2 * F2_MAXD);
                if (rpb) s = fmaf(to_acc(rp[er * R.sr + (u1 - qc + G.ax[1].K - 1) * R.sc]), L2E, s);
                float P = f2ex2(s - ld.x), dS = P * (dp - ld.y);
                f2axpy_sub(dk, dS, qp + e0);
                f2axpy_sub(dv, P, qp + F2_MAXD + e0);
            }
        }
    }
    if (!on) return;
#pragma unroll
    for (int e = 0; e < F2_SUB; e++) dk[e] *= scale;
    f2store<T, F2_SUB>(f2at<T>(dK, b, hk) + x0 * dK.sr + x1 * dK.sc + e0, dk, D - e0, vec != 0);
    f2store<T, F2_SUB>(f2at<T>(dV, b, hk) + x0 * dV.sr + x1 * dV.sc + e0, dv, Dv - e0, vec != 0);
}

template <typename T>
__global__ void __launch_bounds__(F2_THREADS, 3) dkv2_kernel(f2geo G, f2view Q, f2view Kt, f2view V, f2view R,
                                                           f2view L, f2view dO, f2view dK, f2view dV,
                                                           const float *delta, int D, int Dv, int rpb, int Hq,
                                                           float scale, int vec, int rot)
{
    /* delta is given: the O view is not read (dO stands in for it) */
    dkv2_body<T>(G, (int)blockIdx.x, (int)(blockIdx.y + blockIdx.z * gridDim.y), Q, Kt, V, R, dO, L, dO, dK, dV,
                 delta, D, Dv, rpb, Hq, scale, vec, rot);
}

/* dq2 and dkv2 as one launch (one grid; they are independent once each has its
 * own delta): blocks [0, nk) take dkv2's work (batch-head l % bhk, tile
 * l / bhk), the longer blocks first, then dq2's (bhq per tile).  Saves the
 * second launch, the drain of the first kernel's last wave before the second
 * starts, and the delta array between them; costs dkv2 the reading of O for
 * its staged positions.  Both parts have the same block size (the host checks). */
template <typename T>
__global__ void __launch_bounds__(F2_THREADS, 3) bwd2_kernel(f2geo Gq, f2geo Gk, unsigned nk, int bhq, int bhk,
                                                           f2view Q, f2view Kt, f2view V, f2view R, f2view O,
                                                           f2view L, f2view dO, f2view dQ, f2view dK, f2view dV,
                                                           float *ds, int D, int Dv, int rpb, int Hq, float scale,
                                                           int vec, int rot)
{
    const unsigned l = blockIdx.x;
    if (l < nk) {
        const int r = (int)(l / (unsigned)bhk);
        dkv2_body<T>(Gk, (int)l - r * bhk, r, Q, Kt, V, R, O, L, dO, dK, dV, (const float *)0, D, Dv, rpb, Hq, scale,
                     vec, rot);
    } else {
        const unsigned m = l - nk;
        const int r = (int)(m / (unsigned)bhq);
        dq2_body<T>(Gq, (int)m - r * bhq, r, Q, Kt, V, R, O, L, dO, dQ, (float *)0, ds, D, Dv, rpb, scale, vec, rot);
    }
}
