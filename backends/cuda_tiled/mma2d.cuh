/*
 * mma2d.cuh - cuda-tiled's tensor-core kernels for the unfused ops in fp16
 * and bf16 (rank 1 and 2, head dim 16 or 32, 16-byte aligned rows), on
 * devices and images of compute capability 8.0 or more; included by
 * kernels.cuh inside namespace ct after fast2d.cuh, whose tiles, windows and
 * views they share.  Products are exact and sums are in fp32 (mma.sync
 * m16n8k16 with fp32 accumulators), in a fixed order: deterministic.
 *
 * A block owns a box of queries, T0 rows x 16 * wc columns of one dilation
 * group, of one batch and head; warp w takes the 16 consecutive queries of
 * one row segment.  The keys (or values) of the union of the box's windows
 * are staged once in shared memory with cp.async, as T, 80 bytes a position
 * (32 elements and a pad that keeps fragment loads free of bank conflicts),
 * with one zero position that stands for every column past the staged ones.
 * For window row tr of the segment (its 16 queries share the window rows):
 *  - QK: S = Q (16 x D, fragments kept in registers) x K^T of every staged
 *    column of key row ra + tr; each lane keeps the products that lie inside
 *    its two queries' windows and writes them (plus rpb) to its warp's part
 *    of a shared output buffer [16 queries][window slots], which the warp
 *    then writes out with consecutive lanes on consecutive slots;
 *  - AV: the warp first reads its queries' attention rows the same way into
 *    that buffer; per 16 staged columns, the A fragment is gathered from it
 *    (zero outside a query's window), the value rows come with ldmatrix.trans,
 *    and out (16 x D) accumulates in fp32 fragments.
 * The box costs a few redundant products per query (16 + K - 1 columns for K
 * needed); tensor cores have that to spare.
 */

#if !defined(__HIP__)

/* The kernels' bodies exist only in images for sm_80+; the host launches
 * them only where the probe saw such an image (ct_device.mma). */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#  define FM_ON 1
#else
#  define FM_ON 0
#endif

#define FM_ROW 40      /* T elements per staged position (32 + 8 pad: 80 bytes) */
#define FM_THREADS 256 /* eight warps: at most 8 row segments per block */
#define FM_BATCH 13    /* attention loads a lane has in flight (AV) */

template <typename T> struct fm_is_half { static const bool v = false; };
template <> struct fm_is_half<__half> { static const bool v = true; };

/* c += a (16x16, row) * b (16x8, col), fp32 accumulators */
template <typename T>
__device__ __forceinline__ void fm_mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
#if FM_ON
    if (fm_is_half<T>::v)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

/* Four 8x8 matrices of 16-bit elements, transposed (lanes 8i..8i+7 give the
 * row addresses of matrix i). */
__device__ __forceinline__ void fm_ldsm_t4(const void *p, unsigned &r0, unsigned &r1, unsigned &r2, unsigned &r3)
{
#if FM_ON
    unsigned s = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(s));
#else
    (void)p;
    r0 = r1 = r2 = r3 = 0;
#endif
}

__device__ __forceinline__ void fm_cp16(void *dst, const void *src)
{
#if FM_ON
    unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(src) : "memory");
#else
    (void)dst;
    (void)src;
#endif
}

/* an 8-byte cp.async (.ca: .cg takes only 16 bytes): the padded runs'
 * chunks that straddle two queries (fh_copy) */
__device__ __forceinline__ void fm_cp8(void *dst, const void *src)
{
#if FM_ON
    unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(s), "l"(src) : "memory");
#else
    (void)dst;
    (void)src;
#endif
}

__device__ __forceinline__ void fm_cp_wait()
{
#if FM_ON
    asm volatile("cp.async.commit_group;\ncp.async.wait_all;\n" ::: "memory");
#endif
}

template <typename T>
__device__ __forceinline__ unsigned fm_pack(T lo, T hi)
{
    unsigned short a, b;
    memcpy(&a, &lo, 2);
    memcpy(&b, &hi, 2);
    return (unsigned)a | (unsigned)b << 16;
}

/* Stage the box's rows of v (D elements, a multiple of 8) at box[(row * spc
 * + col) * FM_ROW]; the zero position after the box. */
template <typename T>
__device__ __forceinline__ void fm_stage(const f2geo &G, const f2tile &t, T *box, const T *base, const f2view &v,
                                         int D)
{
    const int nr = t.bb[0] - t.ba[0], nc = t.bb[1] - t.ba[1], nch = D >> 3, total = nr * nc * nch;
    const int d0 = G.ax[0].d, d1 = G.ax[1].d;
    for (int i = (int)threadIdx.x; i < total; i += (int)blockDim.x) {
        int pos = i / nch, k = i - pos * nch, pr = pos / nc, pc = pos - pr * nc;
        fm_cp16(box + (pr * G.spc + pc) * FM_ROW + k * 8,
                base + ((pr + t.ba[0]) * d0 + t.g[0]) * v.sr + ((pc + t.ba[1]) * d1 + t.g[1]) * v.sc + k * 8);
    }
    T *zrow = box + G.spr * G.spc * FM_ROW;
    for (int i = (int)threadIdx.x; i < FM_ROW / 2; i += (int)blockDim.x) ((unsigned *)zrow)[i] = 0u;
    fm_cp_wait();
}

/* The warp's segment: row u0, first column c0; a lane's two queries (rows
 * gq and gq + 8 of the fragments): column, window start and length. */
struct fmseg {
    int u0, c0, ra, rb;
    bool on;
    int col[2], ca[2], cn[2];
    bool qon[2];
};

__device__ __forceinline__ void fm_get_seg(const f2geo &G, const f2tile &t, fmseg &S)
{
    const int warp = (int)threadIdx.x >> 5, gq = ((int)threadIdx.x & 31) >> 2, wc = G.ax[1].T >> 4;
    const int wr = warp / wc;
    S.u0 = t.u0[0] + wr;
    S.c0 = t.u0[1] + 16 * (warp - wr * wc);
    S.on = S.u0 <= t.u1[0] && S.c0 <= t.u1[1];
    S.ra = S.rb = 0;
    if (S.on) f2win(t.n[0], G.ax[0].K, G.ax[0].s, G.ax[0].c, S.u0, S.ra, S.rb);
#pragma unroll
    for (int r = 0; r < 2; r++) {
        S.col[r] = S.c0 + gq + 8 * r;
        S.qon[r] = S.on && S.col[r] <= t.u1[1];
        int a = 0, b = 0;
        if (S.qon[r]) f2win(t.n[1], G.ax[1].K, G.ax[1].s, G.ax[1].c, S.col[r], a, b);
        S.ca[r] = a - t.ba[1]; /* in staged columns */
        S.cn[r] = b - a;
    }
}

/* Shared memory: box (spr * spc positions), the zero position, then the
 * output buffer, 16 * W elements per warp. */
template <typename T>
__global__ void __launch_bounds__(FM_THREADS, 4) qkm_kernel(f2geo G, f2view Q, f2view Kt, f2view R, f2view O, int D,
                                                            int rpb, float mval, int fill)
{
#if FM_ON
    extern __shared__ __align__(16) unsigned char ct_smem[];
    f2tile t;
    if (!f2_get_tile(G, t)) return;
    T *box = (T *)ct_smem, *zrow = box + G.spr * G.spc * FM_ROW;
    const int b = (int)blockIdx.x / G.H, h = (int)blockIdx.x - b * G.H, K0 = G.ax[0].K, K1 = G.ax[1].K;
    const int W = K0 * K1, warp = (int)threadIdx.x >> 5, lane = (int)threadIdx.x & 31, gq = lane >> 2, tq = lane & 3;
    const int d0 = G.ax[0].d, d1 = G.ax[1].d, nc = t.bb[1] - t.ba[1], KS = D >> 4;
    T *ob = zrow + FM_ROW + warp * 16 * W;
    fm_stage<T>(G, t, box, f2at<T>(Kt, b, h), Kt, D);
    fmseg S;
    fm_get_seg(G, t, S);
    if (fill) {
        T mv;
        put(&mv, mval);
        for (int i = lane; i < 16 * W; i += 32) ob[i] = mv;
    }
    unsigned qa[2][4];
    {
        const T *qb = f2at<T>(Q, b, h) + (S.u0 * d0 + t.g[0]) * Q.sr;
#pragma unroll
        for (int r = 0; r < 2; r++) {
            const T *qp = qb + (S.col[r] * d1 + t.g[1]) * Q.sc + 2 * tq;
#pragma unroll
            for (int ks = 0; ks < 2; ks++) {
                bool ld = S.qon[r] && ks < KS;
                qa[ks][r] = ld ? *(const unsigned *)(qp + 16 * ks) : 0u;
                qa[ks][r + 2] = ld ? *(const unsigned *)(qp + 16 * ks + 8) : 0u;
            }
        }
    }
    __syncthreads(); /* the box; the last barrier */
    if (!S.on) return;
    const T *rp = rpb ? f2at<T>(R, 0, h) : (const T *)0;
    /* element e of a C fragment: query r = e / 2, staged column n0 + 2 tq + e % 2,
     * slot n0 + jo[e] of the window row (valid below cn[r]) */
    int jo[4];
    unsigned cn[2];
#pragma unroll
    for (int e = 0; e < 4; e++) jo[e] = 2 * tq + (e & 1) - S.ca[e >> 1];
    cn[0] = S.qon[0] ? (unsigned)S.cn[0] : 0u;
    cn[1] = S.qon[1] ? (unsigned)S.cn[1] : 0u;
    for (int kr = S.ra; kr < S.rb; kr++) {
        const T *row = box + (kr - t.ba[0]) * G.spc * FM_ROW;
        const int er = kr - S.u0 + K0 - 1;
        T *o0 = ob + gq * W + (kr - S.ra) * K1, *o1 = o0 + 8 * W;
        for (int n0 = 0; n0 < nc; n0 += 8) {
            const T *kp = n0 + gq < nc ? row + (n0 + gq) * FM_ROW + 2 * tq : zrow + 2 * tq;
            float c[4] = {0.f, 0.f, 0.f, 0.f};
            fm_mma<T>(c, qa[0], *(const unsigned *)kp, *(const unsigned *)(kp + 8));
            if (KS > 1) fm_mma<T>(c, qa[1], *(const unsigned *)(kp + 16), *(const unsigned *)(kp + 24));
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int r = e >> 1, j = n0 + jo[e];
                if ((unsigned)j < cn[r]) {
                    float s = c[e];
                    if (rpb) s += to_acc(rp[er * R.sr + (j + K1 - 1 - (S.col[r] - S.ca[r] - t.ba[1])) * R.sc]);
                    put(&(r ? o1 : o0)[j], s);
                }
            }
        }
    }
    __syncwarp();
    /* the warp's 16 rows of W slots, lanes on consecutive slots */
    T *obase = f2at<T>(O, b, h) + (S.u0 * d0 + t.g[0]) * O.sr;
    const int total = min(16, t.u1[1] - S.c0 + 1) * W, qstep = d1 * O.sc;
    int q = 0, s = lane;
    while (s >= W) s -= W, q++;
    T *gp = obase + (S.c0 * d1 + t.g[1]) * O.sc + q * qstep;
    for (int i = lane; i < total; i += 32) {
        gp[s] = ob[i];
        s += 32;
        while (s >= W) s -= W, gp += qstep;
    }
#endif
}

/* out[q] = sum over slots of attn[q, slot] * v[slot] */
template <typename T>
__global__ void __launch_bounds__(FM_THREADS, 4) avm_kernel(f2geo G, f2view Wt, f2view V, f2view O, int D)
{
#if FM_ON
    extern __shared__ __align__(16) unsigned char ct_smem[];
    f2tile t;
    if (!f2_get_tile(G, t)) return;
    T *box = (T *)ct_smem, *zrow = box + G.spr * G.spc * FM_ROW;
    const int b = (int)blockIdx.x / G.H, h = (int)blockIdx.x - b * G.H, K1 = G.ax[1].K, W = G.ax[0].K * K1;
    const int warp = (int)threadIdx.x >> 5, lane = (int)threadIdx.x & 31, gq = lane >> 2, tq = lane & 3;
    const int d0 = G.ax[0].d, d1 = G.ax[1].d, nc = t.bb[1] - t.ba[1];
    T *ob = zrow + FM_ROW + warp * 16 * W;
    fmseg S;
    fm_get_seg(G, t, S);
    /* this warp's attention rows, many loads in flight before the staging */
    if (S.on) {
        const T *wb = f2at<T>(Wt, b, h) + (S.u0 * d0 + t.g[0]) * Wt.sr;
        const int nq = min(16, t.u1[1] - S.c0 + 1), total = nq * W;
        int q = 0, s = lane;
        while (s >= W) s -= W, q++;
        /* element i0 + 32 u of the warp's rows is ob[i0 + 32 u] (slot s of query q) */
        for (int i0 = lane; i0 < total; i0 += FM_BATCH * 32) {
            T x[FM_BATCH];
#pragma unroll
            for (int u = 0; u < FM_BATCH; u++) {
                if (q < nq) x[u] = wb[((S.c0 + q) * d1 + t.g[1]) * Wt.sc + s];
                s += 32;
                while (s >= W) s -= W, q++;
            }
#pragma unroll
            for (int u = 0; u < FM_BATCH; u++)
                if (i0 + 32 * u < total) ob[i0 + 32 * u] = x[u];
        }
    }
    fm_stage<T>(G, t, box, f2at<T>(V, b, h), V, D);
    __syncthreads(); /* the box and the warps' rows; the last barrier */
    if (!S.on) return;
    float acc[4][4];
#pragma unroll
    for (int n = 0; n < 4; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[n][e] = 0.f;
    const unsigned short *obs = (const unsigned short *)ob;
    /* A fragment register i: query r = i % 2, staged columns k0 + 2 tq + 8 (i / 2)
     * and the next, slots k0 + jo[i] and the next (valid below cn[r]) */
    int jo[4];
    unsigned cn[2];
#pragma unroll
    for (int i = 0; i < 4; i++) jo[i] = 2 * tq + (i >> 1) * 8 - S.ca[i & 1];
    cn[0] = S.qon[0] ? (unsigned)S.cn[0] : 0u;
    cn[1] = S.qon[1] ? (unsigned)S.cn[1] : 0u;
    for (int kr = S.ra; kr < S.rb; kr++) {
        const T *row = box + (kr - t.ba[0]) * G.spc * FM_ROW;
        const unsigned short *wr0 = obs + gq * W + (kr - S.ra) * K1, *wr1 = wr0 + 8 * W;
        for (int k0 = 0; k0 < nc; k0 += 16) {
            unsigned a[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int r = i & 1, j = k0 + jo[i];
                const unsigned short *wr = r ? wr1 : wr0;
                unsigned lo = (unsigned)j < cn[r] ? wr[j] : 0u, hi = (unsigned)(j + 1) < cn[r] ? wr[j + 1] : 0u;
                a[i] = lo | hi << 16;
            }
            const int key = k0 + (lane & 15);
            const T *vp = key < nc ? row + key * FM_ROW : zrow;
#pragma unroll
            for (int np = 0; np < 2; np++) {
                if (np * 16 < D) {
                    unsigned b0, b1, b2, b3;
                    fm_ldsm_t4(vp + np * 16 + (lane >> 4) * 8, b0, b1, b2, b3);
                    fm_mma<T>(acc[2 * np], a, b0, b1);
                    fm_mma<T>(acc[2 * np + 1], a, b2, b3);
                }
            }
        }
    }
    T *obase = f2at<T>(O, b, h) + (S.u0 * d0 + t.g[0]) * O.sr;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        if (!S.qon[r]) continue;
        T *op = obase + (S.col[r] * d1 + t.g[1]) * O.sc + 2 * tq;
#pragma unroll
        for (int n = 0; n < 4; n++) {
            if (n * 8 < D) {
                T e[2];
                put(&e[0], acc[n][2 * r]);
                put(&e[1], acc[n][2 * r + 1]);
                *(unsigned *)(op + 8 * n) = fm_pack<T>(e[0], e[1]);
            }
        }
    }
#endif
}

/*
 * The lean kernels (the default; configuration 4 tc-wide keeps the ones
 * above): the same products with fewer instructions per
 * query (docs/benchmarks.md: the kernels above are issue-bound, about three
 * times their core loop in set-up, scatter and write-out).
 *
 * A warp takes 16 queries as 2 rows x 8 columns (rank 1: 1 x 8): fragment
 * row gq is query (u0, c0 + gq), row gq + 8 is (u0 + 1, c0 + gq), so that a
 * lane's two queries share their column window and the two rows share all
 * but a few of their key rows.  Per key row of the union of the two rows'
 * windows, the warp multiplies its 16 queries with the 16 staged columns
 * from its first query's window start (fl_plan takes only windows whose 8
 * consecutive columns span at most FL_KC = 16), and each lane keeps what
 * lies in its queries' windows.  The key rows run in three loops (first row
 * only, both, second row only), so no loop tests rows.  Then:
 *  - QK: B fragments with one ldmatrix per 8 keys; keys past the box's
 *    columns read other rows' keys or 16 spare positions after the box,
 *    products that lie in no window; a product goes to the warp's shared
 *    buffer, one query per WP (even, >= W + 1) elements, slot 0 at the
 *    parity of its global address, so that the warp writes each query's
 *    slots with 4-byte stores (8 lanes per query) and at most two 2-byte ones;
 *    has_rpb is a template parameter (no branch in the scatter);
 *  - AV: the attention rows go first into a zero-filled buffer indexed by
 *    (key row - first key row, staged column - first staged column), QS
 *    elements a query, so that an A fragment register is one 4-byte shared
 *    load, with no window test in the loop.
 * Set-up divides by block-uniform values with multiplications (fldiv,
 * prepared on the host), and staging steps its indices without divisions.
 * Sums are fp32 over the same products as above (the tests compare both with
 * naive).
 */

/* n / d for 0 <= n < 2^31 and a block-uniform d >= 1:
 * (umulhi(n, m) + n) >> l with l = ceil(log2 d), m = floor(2^32 (2^l - d) / d) + 1
 * (round-up reciprocal; the sum stays below 2^32 as n < 2^31). */
struct fldiv {
    unsigned m;
    int l;
};

__device__ __forceinline__ int fl_quo(const fldiv &v, int n)
{
    return (int)((__umulhi((unsigned)n, v.m) + (unsigned)n) >> v.l);
}

/* The runs of a tensor of E elements per (query, head) that a head-group
 * tile covers (fh_plan). */
struct fhruns {
    int E;      /* elements per query and head: W (attention), Dv (AV's output) */
    int merged; /* a tile row's queries' hc heads are one run in memory */
    int nrun;   /* runs per tile: tile rows (merged) or queries */
    int rlen;   /* elements per run: T1 * hc * E (merged) or hc * E */
    int rstr;   /* shared elements per run: rlen (+ the pads) + 7 rounded up to 8 (room for the shift) */
    int nchk;   /* 16-byte chunks per run in global memory (any shift) */
    fldiv cr;   /* division by nchk */
    /* merged runs only: in shared memory a query's hc * E elements are
     * followed by pad more (a multiple of 8, fh_pad_pick; 0: none), so that
     * the 8 queries of a warp's 2-byte accesses (QK's products, AV's A
     * fragments) fall into different banks; only where every run starts at
     * a multiple of 4 elements and hc * E is one (a 16-byte chunk then
     * straddles two queries at most at its middle: two 8-byte halves) */
    int pad;
    int qp;   /* shared elements per query: hc * E + pad */
    fldiv cq; /* division by hc * E */
};

#define FL_TT 32 /* (dilation group, tile) pairs per axis in flgeo's tile table */

struct flgeo {
    f2geo g;
    fldiv H, nt0, nt1, d0, d1, s0, s1;
    int lwc;      /* log2 of the warps per tile row (column segments of 8) */
    int rpw;      /* query rows per warp: 2, or 1 when the rows axis is a unit */
    int WP;       /* QK: buffer elements per query */
    int KR;       /* AV: key rows a warp's windows span at most */
    int QS;       /* AV: buffer elements per query (KR * FL_KC + 8: conflict-free A loads) */
    int dtr, dtc; /* AV: 8 slots as (window rows, columns): 8 / K1, 8 % K1 */
    /* the head-group kernels (qkh/avh, fh_plan) */
    int hc;     /* heads per block (g.H: head groups) */
    int lnw;    /* log2 of the warps per head */
    fhruns ra;  /* the attention rows' runs */
    fhruns ro;  /* AV: the output's runs, where staged (ostage) */
    int ostage; /* AV: the output goes out through shared memory as runs too */
    int lt1;    /* log2 of the tile's columns */
    int BX;     /* elements per head's box (its positions and the spare or zero ones) */
    int roff;   /* bytes before the segment records (fh_seg_put), after the runs */
    /* the tiles' geometry, made on the host where each axis has at most
     * FL_TT (dilation group, tile) pairs: fl_get_tile reads the block's two
     * entries instead of ~200 instructions of divisions and windows in every
     * warp */
    int tt;                 /* tb holds the tiles */
    fldiv dn1;              /* division by d1 * nt1 */
    int tb[2][FL_TT][6];    /* axis a, entry g * nt + tile: g, n, u0, u1, ba, bb (u0 >= n: past its group) */
};

/* f2win with the division by s done by fl_quo */
__device__ __forceinline__ void fl_win(int n, int K, int s, const fldiv &sd, int causal, int u, int &a, int &b)
{
    const int g = fl_quo(sd, u) * s;
    if (causal) {
        const int lead = min(g + s - 1, n - 1);
        a = max(lead - K + 1, 0);
        b = u + 1;
    } else {
        const int lead = min(g + s / 2, n - 1);
        a = max(min(lead - K / 2, n - K), 0);
        b = a + K;
    }
}

/* f2_get_tile without divisions for tile r (0 <= r < the tiles of all
 * dilation groups): from the host's table (tt), else computed */
__device__ __forceinline__ bool fl_tile_at(const flgeo &F, int r, f2tile &t)
{
    const f2geo &G = F.g;
    int q;
    if (F.tt) {
        const int n1 = G.ax[1].d * G.ax[1].nt, i0 = fl_quo(F.dn1, r), i1 = r - i0 * n1;
        if (i0 >= G.ax[0].d * G.ax[0].nt) return false;
#pragma unroll
        for (int a = 0; a < 2; a++) {
            const int *e = F.tb[a][a ? i1 : i0];
            t.g[a] = e[0];
            t.n[a] = e[1];
            t.u0[a] = e[2];
            t.u1[a] = e[3];
            t.ba[a] = e[4];
            t.bb[a] = e[5];
            if (t.u0[a] >= t.n[a]) return false;
        }
        return true;
    }
    q = fl_quo(F.nt1, r);
    const int t1 = r - q * G.ax[1].nt;
    r = q;
    q = fl_quo(F.d1, r);
    t.g[1] = r - q * G.ax[1].d;
    r = q;
    q = fl_quo(F.nt0, r);
    const int t0 = r - q * G.ax[0].nt;
    t.g[0] = q;
    if (t.g[0] >= G.ax[0].d) return false;
#pragma unroll
    for (int a = 0; a < 2; a++) {
        const f2axis &x = G.ax[a];
        const fldiv &dd = a ? F.d1 : F.d0, &sd = a ? F.s1 : F.s0;
        int q0, q1;
        t.n[a] = fl_quo(dd, x.L - t.g[a] + x.d - 1);
        t.u0[a] = (a ? t1 : t0) * x.T;
        if (t.u0[a] >= t.n[a]) return false;
        t.u1[a] = min(t.u0[a] + x.T, t.n[a]) - 1;
        fl_win(t.n[a], x.K, x.s, sd, x.c, t.u0[a], t.ba[a], q1);
        fl_win(t.n[a], x.K, x.s, sd, x.c, t.u1[a], q0, t.bb[a]);
        t.bb[a] = min(t.bb[a], t.ba[a] + (a ? G.spc : G.spr));
    }
    return true;
}

/* the tile of this block (grid y and z walk the tiles) */
__device__ __forceinline__ bool fl_get_tile(const flgeo &F, f2tile &t)
{
    return fl_tile_at(F, (int)(blockIdx.y + blockIdx.z * gridDim.y), t);
}

/* Issue the cp.async copies of the box's rows of v (D = 16 or 32 elements)
 * to box[(row * spc + col) * FM_ROW], zeros in elements 16..31 when D is 16
 * (QK's B fragments always cover 32), by threads tid of nthr; no integer
 * division.  The caller waits (fm_cp_wait). */
template <typename T>
__device__ __forceinline__ void fl_stage(const f2geo &G, const f2tile &t, T *box, const T *base, const f2view &v,
                                         int D, int tid, int nthr)
{
    const int nr = t.bb[0] - t.ba[0], nc = t.bb[1] - t.ba[1], lg = D > 16 ? 2 : 1;
    const int step = nthr >> lg, k = tid & ((1 << lg) - 1), pos = tid >> lg;
    /* pos / nc and step / nc by a reciprocal: exact, as the numerators are
     * below 2^16 and the reciprocal's relative error (2^-22) stays below 0.5 / nc */
    const float rnc = __fdividef(1.0f, (float)nc);
    int pr = (int)(((float)pos + 0.5f) * rnc), pc = pos - pr * nc;
    const int dr = (int)(((float)step + 0.5f) * rnc), dc = step - dr * nc;
    const int rs = G.ax[0].d * v.sr, cs = G.ax[1].d * v.sc;
    const T *src = base + ((pr + t.ba[0]) * G.ax[0].d + t.g[0]) * v.sr + ((pc + t.ba[1]) * G.ax[1].d + t.g[1]) * v.sc +
                   8 * k;
    T *dst = box + (pr * G.spc + pc) * FM_ROW + 8 * k;
    const int sstep = dr * rs + dc * cs, swrap = rs - nc * cs;
    const int dstep = (dr * G.spc + dc) * FM_ROW, dwrap = (G.spc - nc) * FM_ROW;
    while (pr < nr) {
        fm_cp16(dst, src);
        if (lg == 1) *(uint4 *)(dst + 16) = make_uint4(0u, 0u, 0u, 0u);
        pc += dc;
        pr += dr;
        src += sstep;
        dst += dstep;
        if (pc >= nc) {
            pc -= nc;
            pr++;
            src += swrap;
            dst += dwrap;
        }
    }
}

/* Two (or one) 8x8 matrices of 16-bit elements, lanes 8i..8i+7 give the row
 * addresses of matrix i: the B fragments of 8 keys (rows) x 16 or 32 d. */
__device__ __forceinline__ void fm_ldsm4(const void *p, unsigned &r0, unsigned &r1, unsigned &r2, unsigned &r3)
{
#if FM_ON
    unsigned s = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(s));
#else
    (void)p;
    r0 = r1 = r2 = r3 = 0;
#endif
}

__device__ __forceinline__ void fm_ldsm2(const void *p, unsigned &r0, unsigned &r1)
{
#if FM_ON
    unsigned s = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(s));
#else
    (void)p;
    r0 = r1 = 0;
#endif
}

/* c = a (16x16, row) * b (16x8, col), fp32, from zero */
template <typename T>
__device__ __forceinline__ void fm_mma0(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
#if FM_ON
    const float z = 0.f;
    if (fm_is_half<T>::v)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%10,%10,%10,%10};\n"
                     : "=f"(c[0]), "=f"(c[1]), "=f"(c[2]), "=f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(z));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%10,%10,%10,%10};\n"
                     : "=f"(c[0]), "=f"(c[1]), "=f"(c[2]), "=f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(z));
#else
    (void)a;
    (void)b0;
    (void)b1;
    c[0] = c[1] = c[2] = c[3] = 0.f;
#endif
}

/* The warp's queries: rows u0 (and u0 + 1 when nrow is 2), columns c0..c0+7;
 * the lane's column col and its window [ca, ca + cn) in staged columns; the
 * rows' windows; the staged columns [ns, ns + nx) that the warp's windows
 * span. */
struct flseg {
    int u0, c0, nrow, ra0, rb0, ra1, rb1, col, ca, cn, ns, nx;
    bool qon;
};

/* fl_get_seg's first part: the warp's rows and columns, without windows */
__device__ __forceinline__ void fl_get_seg0(const flgeo &F, const f2tile &t, flseg &S, int warp)
{
    const int gq = ((int)threadIdx.x & 31) >> 2;
    const int wr = warp >> F.lwc, wcl = warp - (wr << F.lwc);
    S.u0 = t.u0[0] + F.rpw * wr;
    S.c0 = t.u0[1] + 8 * wcl;
    const bool on = S.u0 <= t.u1[0] && S.c0 <= t.u1[1];
    S.nrow = on ? min(F.rpw, t.u1[0] - S.u0 + 1) : 0;
    S.col = S.c0 + gq;
    S.qon = on && S.col <= t.u1[1];
}

/* ... and its second: the windows (the whole warp, for the shuffles) */
__device__ __forceinline__ void fl_get_seg1(const flgeo &F, const f2tile &t, flseg &S)
{
    const f2geo &G = F.g;
    S.ra0 = S.rb0 = S.ra1 = S.rb1 = 0;
    if (S.nrow > 0) fl_win(t.n[0], G.ax[0].K, G.ax[0].s, F.s0, G.ax[0].c, S.u0, S.ra0, S.rb0);
    if (S.nrow > 1) fl_win(t.n[0], G.ax[0].K, G.ax[0].s, F.s0, G.ax[0].c, S.u0 + 1, S.ra1, S.rb1);
    int a = 0, b = 0;
    if (S.qon) fl_win(t.n[1], G.ax[1].K, G.ax[1].s, F.s1, G.ax[1].c, S.col, a, b);
    S.ca = a - t.ba[1];
    S.cn = b - a;
    const int last = S.nrow > 0 ? min(7, t.u1[1] - S.c0) : 0;
    S.ns = __shfl_sync(0xffffffffu, S.ca, 0);
    S.nx = __shfl_sync(0xffffffffu, S.ca + S.cn, 4 * last) - S.ns;
}

__device__ __forceinline__ void fl_get_seg(const flgeo &F, const f2tile &t, flseg &S, int warp)
{
    fl_get_seg0(F, t, S, warp);
    fl_get_seg1(F, t, S);
}

#define FL_NI 8  /* at most 8 elements (QK: words) per lane and query: W <= 64 */
#define FL_KC 16 /* staged columns a warp's windows span at most (fl_plan) */

/* a 16-bit store to a shared address */
__device__ __forceinline__ void fl_sts16(unsigned a, unsigned short v)
{
#if FM_ON
    asm volatile("st.shared.u16 [%0], %1;\n" ::"r"(a), "h"(v) : "memory");
#else
    (void)a;
    (void)v;
#endif
}

template <bool B> struct flb {
    static constexpr bool v = B;
};

/* A warp's segment's key rows in three runs, run(k0, k1, V0, V1) with flb
 * flags for "query row 0 sees these key rows" and "row 1 does": those only
 * row 0 sees, those both see, those only row 1 sees (one run of row 0's when
 * the segment has one row); each run's flags are compile-time constants. */
template <typename R>
__device__ __forceinline__ void fl_row_runs(const flseg &S, R &&run)
{
    if (S.nrow > 1) {
        run(S.ra0, min(S.ra1, S.rb0), flb<true>(), flb<false>());
        run(S.ra1, S.rb0, flb<true>(), flb<true>());
        run(max(S.ra1, S.rb0), S.rb1, flb<false>(), flb<true>());
    } else {
        run(S.ra0, S.rb0, flb<true>(), flb<false>());
    }
}

/* The QK products of a warp's segment (fl_get_seg), the bias added with RPB,
 * into the kernel's output buffer (qkl_kernel's per-warp rows, qkh_kernel's
 * and qkb_kernel's staged runs): p0 and p1 point at window slot 0 of the
 * lane's query in the segment's rows 0 and 1; staged position i of the box
 * starts at box[i * ps] (qkl and qkh pass the constant FM_ROW); the key rows' loop
 * unrolled UNROLL times.  The segment has at least one row. */
template <typename T, bool RPB, int UNROLL = 1>
__device__ __forceinline__ void fl_qk_products(const f2geo &G, const f2tile &t, const flseg &S, const T *box, int ps,
                                               const unsigned (&qa)[2][4], const f2view &R, int h, int lane, T *p0,
                                               T *p1)
{
    const int tq = lane & 3, K0 = G.ax[0].K, K1 = G.ax[1].K;
    /* element (n, e) of the C fragments: staged column ns + 8 n + 2 tq + (e & 1),
     * window column j + 8 n + (e & 1) of the lane's queries */
    const int j = S.ns + 2 * tq - S.ca;
    const unsigned cn = S.qon ? (unsigned)S.cn : 0u;
    const bool w00 = (unsigned)j < cn, w01 = (unsigned)(j + 1) < cn, w10 = (unsigned)(j + 8) < cn,
               w11 = (unsigned)(j + 9) < cn;
    const T *rp = RPB ? f2at<T>(R, 0, h) + (S.ns + 2 * tq + t.ba[1] - S.col + K1 - 1) * R.sc : (const T *)0;
    (void)rp;
    /* B fragments: lane l gives key ns + (l & 7) (+ 8 for the second n-tile), d 8 (l >> 3) */
    const T *kb = box + (S.ra0 - t.ba[0]) * G.spc * ps + (S.ns + (lane & 7)) * ps + 8 * (lane >> 3);
    const int kstep = G.spc * ps;
    p0 += j;
    p1 += j + (S.ra0 - S.ra1) * K1;
    /* key rows [ra0, rb1) in three runs: row 0's only, both rows', row 1's
     * only (a row outside its window is known per run: no test per key row) */
    auto run = [&](int k0, int k1, auto V0, auto V1) {
        const bool v0 = decltype(V0)::v, v1 = decltype(V1)::v;
        const T *kp = kb + (k0 - S.ra0) * kstep;
        T *q0 = p0 + (k0 - S.ra0) * K1, *q1 = p1 + (k0 - S.ra0) * K1;
#pragma unroll UNROLL
        for (int kr = k0; kr < k1; kr++, kp += kstep, q0 += K1, q1 += K1) {
            unsigned bb[8];
            float c[2][4];
            fm_ldsm4(kp, bb[0], bb[1], bb[2], bb[3]);
            fm_ldsm4(kp + 8 * ps, bb[4], bb[5], bb[6], bb[7]);
            fm_mma0<T>(c[0], qa[0], bb[0], bb[1]);
            fm_mma0<T>(c[1], qa[0], bb[4], bb[5]);
            fm_mma<T>(c[0], qa[1], bb[2], bb[3]);
            fm_mma<T>(c[1], qa[1], bb[6], bb[7]);
            if (RPB) {
                const T *r0 = rp + (kr - S.u0 + K0 - 1) * R.sr, *r1 = r0 - R.sr;
                if (v0 && w00) c[0][0] += to_acc(r0[0]);
                if (v0 && w01) c[0][1] += to_acc(r0[R.sc]);
                if (v0 && w10) c[1][0] += to_acc(r0[8 * R.sc]);
                if (v0 && w11) c[1][1] += to_acc(r0[9 * R.sc]);
                if (v1 && w00) c[0][2] += to_acc(r1[0]);
                if (v1 && w01) c[0][3] += to_acc(r1[R.sc]);
                if (v1 && w10) c[1][2] += to_acc(r1[8 * R.sc]);
                if (v1 && w11) c[1][3] += to_acc(r1[9 * R.sc]);
            }
            if (v0) {
                if (w00) put(q0, c[0][0]);
                if (w01) put(q0 + 1, c[0][1]);
                if (w10) put(q0 + 8, c[1][0]);
                if (w11) put(q0 + 9, c[1][1]);
            }
            if (v1) {
                if (w00) put(q1, c[0][2]);
                if (w01) put(q1 + 1, c[0][3]);
                if (w10) put(q1 + 8, c[1][2]);
                if (w11) put(q1 + 9, c[1][3]);
            }
        }
    };
    fl_row_runs(S, run);
}

/* Shared memory: box (spr * spc positions, then 16 more that no one writes:
 * the last row's B fragments may read past its columns), then WP * 16
 * elements per warp.  The warp's staged columns span at most 16 (fl_plan):
 * two n-tiles of 8 keys. */
template <typename T, bool RPB>
__global__ void __launch_bounds__(FM_THREADS, 4) qkl_kernel(flgeo F, f2view Q, f2view Kt, f2view R, f2view O, int D,
                                                            float mval, int fill)
{
#if FM_ON
    extern __shared__ __align__(16) unsigned char ct_smem[];
    const f2geo &G = F.g;
    f2tile t;
    if (!fl_get_tile(F, t)) return;
    T *box = (T *)ct_smem;
    const int b = fl_quo(F.H, (int)blockIdx.x), h = (int)blockIdx.x - b * G.H, K0 = G.ax[0].K, K1 = G.ax[1].K;
    const int W = K0 * K1, WP = F.WP, warp = (int)threadIdx.x >> 5, lane = (int)threadIdx.x & 31;
    const int gq = lane >> 2, tq = lane & 3, d0 = G.ax[0].d, d1 = G.ax[1].d;
    T *ob = box + (G.spr * G.spc + 16) * FM_ROW + warp * 16 * WP;
    fl_stage<T>(G, t, box, f2at<T>(Kt, b, h), Kt, D, (int)threadIdx.x, (int)blockDim.x);
    flseg S;
    fl_get_seg(F, t, S, (int)threadIdx.x >> 5);
    unsigned qa[2][4];
    {
        const T *qp0 = f2at<T>(Q, b, h) + (S.u0 * d0 + t.g[0]) * Q.sr + (S.col * d1 + t.g[1]) * Q.sc + 2 * tq;
        const T *qp1 = qp0 + d0 * Q.sr;
        const bool l0 = S.qon, l1 = S.qon && S.nrow > 1;
#pragma unroll
        for (int ks = 0; ks < 2; ks++) {
            const bool k2 = 16 * ks < D;
            qa[ks][0] = l0 && k2 ? *(const unsigned *)(qp0 + 16 * ks) : 0u;
            qa[ks][1] = l1 && k2 ? *(const unsigned *)(qp1 + 16 * ks) : 0u;
            qa[ks][2] = l0 && k2 ? *(const unsigned *)(qp0 + 16 * ks + 8) : 0u;
            qa[ks][3] = l1 && k2 ? *(const unsigned *)(qp1 + 16 * ks + 8) : 0u;
        }
    }
    if (fill) {
        T mv[2];
        put(&mv[0], mval);
        put(&mv[1], mval);
        unsigned m2;
        memcpy(&m2, mv, 4);
        for (int i = lane; i < 8 * WP; i += 32) ((unsigned *)ob)[i] = m2;
    }
    fm_cp_wait();
    __syncthreads(); /* the box; the last barrier */
    if (S.nrow == 0) return;
    T *obase = f2at<T>(O, b, h) + (S.u0 * d0 + t.g[0]) * O.sr;
    const int ocol = (S.c0 * d1 + t.g[1]) * O.sc, orow = d0 * O.sr;
    /* the lane's queries: slot (window row tr, column j) at p[r][tr * K1 + j]
     * (slot 0 at the parity of its global address) */
    T *p0, *p1;
    {
        const T *g0 = obase + ocol + gq * d1 * O.sc;
        p0 = ob + gq * WP + (int)(((size_t)g0 >> 1) & 1);
        p1 = ob + (8 + gq) * WP + (int)(((size_t)(g0 + orow) >> 1) & 1);
    }
    fl_qk_products<T, RPB>(G, t, S, box, FM_ROW, qa, R, h, lane, p0, p1);
    __syncwarp();
    /* write-out: 8 lanes per query, 4 queries at a time (group g: row g / 2,
     * columns 4 (g % 2) + lane / 8); a query's full 4-byte words, then at
     * most two single slots (slot 0 when its address is odd, the last one or
     * two) */
    const int nw = (W - 1) >> 1, hh = lane & 7, cl = lane >> 3; /* nw < 8 FL_NI (fl_plan) */
    const int last = t.u1[1] - S.c0; /* the segment's last column in the tile */
    T *gl = obase + ocol + cl * d1 * O.sc;
    const T *bl = ob + cl * WP;
#pragma unroll
    for (int g = 0; g < 4; g++) {
        const int r = g >> 1, cq = 4 * (g & 1) + cl;
        if (r >= S.nrow || cq > last) continue;
        T *gp = gl + r * orow + (g & 1) * 4 * d1 * O.sc;
        const int p = (int)(((size_t)gp >> 1) & 1);
        const T *bp = bl + (4 * g) * WP + p;
        const unsigned *src = (const unsigned *)(bp + p) + hh;
        unsigned *dst = (unsigned *)(gp + p) + hh;
#pragma unroll
        for (int i = 0; i < FL_NI; i++) {
            if (hh + 8 * i >= nw) break;
            dst[8 * i] = src[8 * i];
        }
        const int s = hh == 6 ? (p ? 0 : 2 * nw) : 2 * nw + 1;
        if (hh >= 6 && s < W) gp[s] = bp[s];
    }
#endif
}

/* One key row of a warp's AV products: acc[n] += a (16 queries x the 16
 * staged columns of the row) x the values' B fragments by ldmatrix.trans
 * from vp (lane l: key l & 15, d 8 (l >> 4) on), d columns 8 n.., n < 2, or
 * n < 4 where D > 16 */
template <typename T>
__device__ __forceinline__ void fl_av_mma(const T *vp, const unsigned (&a)[4], int D, float (&acc)[4][4])
{
    unsigned b0, b1, b2, b3;
    fm_ldsm_t4(vp, b0, b1, b2, b3);
    fm_mma<T>(acc[0], a, b0, b1);
    fm_mma<T>(acc[1], a, b2, b3);
    if (D > 16) {
        fm_ldsm_t4(vp + 16, b0, b1, b2, b3);
        fm_mma<T>(acc[2], a, b0, b1);
        fm_mma<T>(acc[3], a, b2, b3);
    }
}

/* Shared memory: box, the zero position, then QS * 16 elements per warp.
 * The warp's staged columns span at most 16 (one k-tile) and W <= 64
 * (fl_plan). */
template <typename T>
__global__ void __launch_bounds__(FM_THREADS, 4) avl_kernel(flgeo F, f2view Wt, f2view V, f2view O, int D)
{
#if FM_ON
    extern __shared__ __align__(16) unsigned char ct_smem[];
    const f2geo &G = F.g;
    f2tile t;
    if (!fl_get_tile(F, t)) return;
    T *box = (T *)ct_smem, *zrow = box + G.spr * G.spc * FM_ROW;
    const int b = fl_quo(F.H, (int)blockIdx.x), h = (int)blockIdx.x - b * G.H, K1 = G.ax[1].K, W = G.ax[0].K * K1;
    const int warp = (int)threadIdx.x >> 5, lane = (int)threadIdx.x & 31, gq = lane >> 2, tq = lane & 3;
    const int d0 = G.ax[0].d, d1 = G.ax[1].d, nc = t.bb[1] - t.ba[1], QS = F.QS;
    T *bz = zrow + FM_ROW + warp * 16 * QS;
    fl_stage<T>(G, t, box, f2at<T>(V, b, h), V, D, (int)threadIdx.x, (int)blockDim.x);
    for (int i = (int)threadIdx.x; i < FM_ROW / 2; i += (int)blockDim.x) ((unsigned *)zrow)[i] = 0u;
    flseg S;
    fl_get_seg(F, t, S, (int)threadIdx.x >> 5);
    for (int i = lane; i < 2 * QS; i += 32) ((uint4 *)bz)[i] = make_uint4(0u, 0u, 0u, 0u);
    __syncwarp();
    /* the warp's attention rows into bz: 8 lanes per query, 4 queries at a
     * time (group g: row g / 2, columns 4 (g % 2) + lane / 8); the lane's
     * slot hh + 8 u goes to off[u] = tr * FL_KC + tc of its query (-1: past
     * W); with a causal axis, only where tr and tc lie in the query's window */
    if (S.nrow > 0) {
        const int hh = lane & 7, cl = lane >> 3, last = t.u1[1] - S.c0;
        const bool causal = G.ax[0].c | G.ax[1].c;
        int off[FL_NI]; /* in bytes */
        {
            int r = 0, c = hh;
            while (c >= K1) c -= K1, r++;
#pragma unroll
            for (int u = 0; u < FL_NI; u++) {
                off[u] = hh + 8 * u < W ? (int)sizeof(T) * (r * FL_KC + c) : -1;
                c += F.dtc;
                r += F.dtr;
                if (c >= K1) c -= K1, r++;
            }
        }
        const T *wl = f2at<T>(Wt, b, h) + (S.u0 * d0 + t.g[0]) * Wt.sr + ((S.c0 + cl) * d1 + t.g[1]) * Wt.sc + hh;
        /* shared addresses: one base, no generic-to-shared conversion per store */
        const unsigned bl = (unsigned)__cvta_generic_to_shared(bz) + (unsigned)sizeof(T) * (cl * QS - S.ns);
#pragma unroll
        for (int g = 0; g < 4; g++) {
            const int r = g >> 1, cq = 4 * (g & 1) + cl;
            const int caq = __shfl_sync(0xffffffffu, S.ca, 4 * cq), cnq = __shfl_sync(0xffffffffu, S.cn, 4 * cq);
            if (r >= S.nrow || cq > last) continue;
            const T *src = wl + r * d0 * Wt.sr + (g & 1) * 4 * d1 * Wt.sc;
            const unsigned dst = bl + (unsigned)sizeof(T) * ((4 * g) * QS + (r ? S.ra1 - S.ra0 : 0) * FL_KC + caq);
            unsigned short x[FL_NI];
            if (!causal) {
#pragma unroll
                for (int u = 0; u < FL_NI; u++)
                    if (off[u] >= 0) x[u] = ((const unsigned short *)src)[8 * u];
#pragma unroll
                for (int u = 0; u < FL_NI; u++)
                    if (off[u] >= 0) fl_sts16(dst + off[u], x[u]);
            } else {
                const int rn = r ? S.rb1 - S.ra1 : S.rb0 - S.ra0;
                bool ok[FL_NI];
#pragma unroll
                for (int u = 0; u < FL_NI; u++) {
                    const int e = off[u] / (int)sizeof(T);
                    ok[u] = off[u] >= 0 && e / FL_KC < rn && e % FL_KC < cnq;
                    if (ok[u]) x[u] = ((const unsigned short *)src)[8 * u];
                }
#pragma unroll
                for (int u = 0; u < FL_NI; u++)
                    if (ok[u]) fl_sts16(dst + off[u], x[u]);
            }
        }
    }
    fm_cp_wait();
    __syncthreads(); /* the box, the zero position and the warps' rows; the last barrier */
    if (S.nrow == 0) return;
    float acc[4][4];
#pragma unroll
    for (int n = 0; n < 4; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[n][e] = 0.f;
    /* A fragment registers: rows gq (query row 0) and gq + 8 (row 1), staged
     * columns ns + 2 tq (+ 8); B: lane l gives key ns + (l & 15), d 8 (l >> 4) */
    const T *w0 = bz + gq * QS + 2 * tq, *w1 = w0 + 8 * QS;
    const int key = S.ns + (lane & 15), rend = S.nrow > 1 ? S.rb1 : S.rb0, kstep = G.spc * FM_ROW;
    const T *vp = key < nc ? box + (S.ra0 - t.ba[0]) * kstep + key * FM_ROW + (lane >> 4) * 8 : zrow + (lane >> 4) * 8;
    const int vstep = key < nc ? kstep : 0;
    for (int kr = S.ra0; kr < rend; kr++, w0 += FL_KC, w1 += FL_KC, vp += vstep) {
        if (kr >= S.rb0 && (S.nrow < 2 || kr < S.ra1)) continue; /* in neither row's window (uniform) */
        unsigned a[4];
        a[0] = *(const unsigned *)w0;
        a[1] = *(const unsigned *)w1;
        a[2] = *(const unsigned *)(w0 + 8);
        a[3] = *(const unsigned *)(w1 + 8);
        fl_av_mma<T>(vp, a, D, acc);
    }
    if (!S.qon) return;
    T *op = f2at<T>(O, b, h) + (S.u0 * d0 + t.g[0]) * O.sr + (S.col * d1 + t.g[1]) * O.sc + 2 * tq;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        if (r >= S.nrow) break;
#pragma unroll
        for (int n = 0; n < 4; n++) {
            if (n * 8 < D) {
                T e[2];
                put(&e[0], acc[n][2 * r]);
                put(&e[1], acc[n][2 * r + 1]);
                *(unsigned *)(op + 8 * n) = fm_pack<T>(e[0], e[1]);
            }
        }
        op += d0 * O.sr;
    }
#endif
}

/*
 * The head-group kernels (the default where the attention tensor's heads
 * are adjacent, fh_plan; configuration 5 tc-lean-per-head keeps qkl/avl):
 * the lean kernels' products, but a block takes the tile of hc heads (hc
 * groups of warps, one per head, each with its own staged box).  Why: with
 * heads last, one (batch, head)'s 49-slot attention rows are 98 bytes, only
 * 2-byte aligned, H * 98 bytes apart; a block of one head writes (QK) or
 * reads (AV) parts of sectors whose rest other blocks touch (ncu on the
 * 56x56 QK: 14.8 of 32 bytes a store sector used, L2 bound at a third of
 * DRAM bandwidth).  With hc heads, a query's hc rows are one run of
 * hc * W elements, and a tile row's queries one run when the whole query
 * stride is covered (merged: all heads, no dilation); a run is staged in
 * shared memory shifted to its global address mod 16 bytes, so that it
 * moves as whole 16-byte chunks (partial ones at its two ends element by
 * element):
 *  - QK: the products go to the staged runs, then the block writes them;
 *    Q comes in 16-byte cp.async copies to shared memory (the region the
 *    runs use later) and its A fragments with ldmatrix;
 *  - AV: the block first copies the runs in (cp.async), and each lane reads
 *    its A fragment elements from them (a 2-byte load per element inside
 *    its queries' windows, zero outside); where the output has its heads
 *    adjacent as well (ostage), its rows go out the same way.
 */
#define FH_THREADS 512 /* at most 16 warps: hc heads x warps per head (fh_plan) */

/* Run rho of the tile (a tile row when merged, else a query of the tile):
 * its first element in global memory (heads h0..) and n, its length (0 when
 * outside the problem). */
template <typename T>
__device__ __forceinline__ T *fh_run(const flgeo &F, const fhruns &R, const f2tile &t, const f2view &O, int b, int h0,
                                     int rho, int &n)
{
    const f2geo &G = F.g;
    const int r = R.merged ? rho : rho >> F.lt1, c = R.merged ? 0 : rho - (r << F.lt1);
    const int row = t.u0[0] + r, col = t.u0[1] + c;
    n = row > t.u1[0] || col > t.u1[1] ? 0 : R.merged ? (t.u1[1] - t.u0[1] + 1) * F.hc * R.E : R.rlen;
    return f2at<T>(O, b, h0) + (row * G.ax[0].d + t.g[0]) * O.sr + (col * G.ax[1].d + t.g[1]) * O.sc;
}

/* Shared position of element 0 of query (r, c) of the tile, head h0 + hl. */
template <typename T>
__device__ __forceinline__ int fh_pos(const flgeo &F, const fhruns &R, const f2tile &t, const f2view &O, int b, int h0,
                                      int r, int c, int hl)
{
    const int rho = R.merged ? r : (r << F.lt1) + c;
    int n;
    const T *g = fh_run<T>(F, R, t, O, b, h0, rho, n);
    return rho * R.rstr + (int)(((size_t)g >> 1) & 7) + (R.merged ? c * R.qp : 0) + hl * R.E;
}

/* The tile's runs between shared (st) and global memory, by the whole block:
 * STORE writes them out, else they come in (cp.async for whole chunks: the
 * caller waits).  Thread i takes chunks i, i + nthr, ... of the nrun x nchk
 * chunks in global memory, chunk k of run rho at st + rho rstr + 8 k in
 * shared memory (so), plus R.pad for each query before it in the run when
 * padded; its run and chunk within the run step by nthr's quotient and
 * remainder (one division, none per chunk), and a run's first element lies
 * at a 32-bit offset from the tile's (fh_run's address without its 64-bit
 * multiplications), its shift mod 8 from that offset. */
template <typename T, bool STORE>
__device__ __forceinline__ void fh_copy(const flgeo &F, const fhruns &R, const f2tile &t, const f2view &O, int b,
                                        int h0, T *st)
{
    const f2geo &G = F.g;
    const int total = R.nrun * R.nchk, nthr = (int)blockDim.x, i0 = (int)threadIdx.x;
    if (i0 >= total) return;
    const int drho = fl_quo(R.cr, nthr), dk = nthr - drho * R.nchk, cm = (1 << F.lt1) - 1;
    const int dso = drho * R.rstr + 8 * dk, wso = R.rstr - 8 * R.nchk;
    const int nr = t.u1[0] - t.u0[0] + 1, ncl = t.u1[1] - t.u0[1] + 1, rs = G.ax[0].d * O.sr,
              cs = G.ax[1].d * O.sc, n = R.merged ? ncl * F.hc * R.E : R.rlen;
    T *const gt = f2at<T>(O, b, h0) + (t.u0[0] * G.ax[0].d + t.g[0]) * O.sr + (t.u0[1] * G.ax[1].d + t.g[1]) * O.sc;
    const int sh0 = (int)(((size_t)gt >> 1) & 7);
    auto loop = [&](auto M, auto PD) {
        const bool merged = decltype(M)::v, padded = decltype(PD)::v;
        int rho = fl_quo(R.cr, i0), k = i0 - rho * R.nchk, so = rho * R.rstr + 8 * k;
        for (int i = i0; i < total; i += nthr) {
            const int r = merged ? rho : rho >> F.lt1, c = merged ? 0 : rho & cm;
            const int off = merged ? r * rs : r * rs + c * cs, e0 = 8 * k - ((sh0 + off) & 7);
            if (r < nr && (merged || c < ncl) && e0 < n) {
                T *g = gt + (off + e0), *s = st + so;
                if (!padded) {
                    if (e0 >= 0 && e0 + 8 <= n) {
                        if (STORE) *(uint4 *)g = *(const uint4 *)s;
                        else fm_cp16(s, g);
                    } else {
#pragma unroll
                        for (int u = 0; u < 8; u++) {
                            if (e0 + u < 0 || e0 + u >= n) continue;
                            if (STORE) g[u] = s[u];
                            else s[u] = g[u];
                        }
                    }
                } else {
                    /* elements e0 .. e0 + 3 belong to query q0 of the run,
                     * e0 + 4 .. e0 + 7 to q1 (the shift is 0 or 4: e0 >= -4) */
                    const int q0 = e0 >= 0 ? fl_quo(R.cq, e0) : 0, q1 = fl_quo(R.cq, e0 + 4);
                    T *s0 = s + R.pad * q0, *s1 = s + 4 + R.pad * q1;
                    if (e0 >= 0 && e0 + 8 <= n) {
                        if (q0 == q1) {
                            if (STORE) *(uint4 *)g = *(const uint4 *)s0;
                            else fm_cp16(s0, g);
                        } else if (STORE) {
                            const uint2 lo = *(const uint2 *)s0, hi = *(const uint2 *)s1;
                            *(uint4 *)g = make_uint4(lo.x, lo.y, hi.x, hi.y);
                        } else {
                            fm_cp8(s0, g);
                            fm_cp8(s1, g + 4);
                        }
                    } else {
#pragma unroll
                        for (int u = 0; u < 8; u++) {
                            if (e0 + u < 0 || e0 + u >= n) continue;
                            T *su = u < 4 ? s0 + u : s1 + (u - 4);
                            if (STORE) g[u] = *su;
                            else *su = g[u];
                        }
                    }
                }
            }
            k += dk;
            rho += drho;
            so += dso;
            if (k >= R.nchk) {
                k -= R.nchk;
                rho++;
                so += wso;
            }
        }
    };
    if (!R.merged) loop(flb<false>(), flb<false>());
    else if (R.pad) loop(flb<true>(), flb<true>());
    else loop(flb<true>(), flb<false>());
}

#define FH_REC 264 /* ints per warp of a head in the segment records: 8, then 8 a lane */

/* A block's heads have the same segments (fl_get_seg) and, relative to the
 * head, the same run positions: the first head's warps compute them and
 * write them to shared memory (rec: this warp-of-a-head's record), where the
 * other heads' warps read them after the next barrier (fh_seg_get) instead
 * of computing them again.  pos: the lane's attention run positions (rows 0
 * and 1) and AV's output run positions, of head 0. */
__device__ __forceinline__ void fh_seg_put(int *rec, const flseg &S, int lane, const int (&pos)[4])
{
    if (lane == 0) {
        *(uint4 *)rec = make_uint4((unsigned)S.ra0, (unsigned)S.rb0, (unsigned)S.ra1, (unsigned)S.rb1);
        *(uint4 *)(rec + 4) = make_uint4((unsigned)S.ns, (unsigned)S.nx, 0u, 0u);
    }
    int *rl = rec + 8 + 8 * lane;
    *(uint4 *)rl = make_uint4((unsigned)S.ca, (unsigned)S.cn, (unsigned)pos[0], (unsigned)pos[1]);
    *(uint4 *)(rl + 4) = make_uint4((unsigned)pos[2], (unsigned)pos[3], 0u, 0u);
}

template <bool OUT>
__device__ __forceinline__ void fh_seg_get(const int *rec, flseg &S, int lane, int (&pos)[4])
{
    const uint4 w0 = *(const uint4 *)rec, w1 = *(const uint4 *)(rec + 4), l0 = *(const uint4 *)(rec + 8 + 8 * lane);
    S.ra0 = (int)w0.x;
    S.rb0 = (int)w0.y;
    S.ra1 = (int)w0.z;
    S.rb1 = (int)w0.w;
    S.ns = (int)w1.x;
    S.nx = (int)w1.y;
    S.ca = (int)l0.x;
    S.cn = (int)l0.y;
    pos[0] = (int)l0.z;
    pos[1] = (int)l0.w;
    if (OUT) {
        const uint4 l1 = *(const uint4 *)(rec + 12 + 8 * lane);
        pos[2] = (int)l1.x;
        pos[3] = (int)l1.y;
    }
}

/* Shared memory: hc boxes of BX elements (positions, then 16 that no one
 * writes), then the region: first the warps' Q rows (16 x FM_ROW each),
 * then the staged runs. */
template <typename T, bool RPB>
__global__ void __launch_bounds__(FH_THREADS, 2) qkh_kernel(flgeo F, f2view Q, f2view Kt, f2view R, f2view O, int D,
                                                            float mval, int fill)
{
#if FM_ON
    extern __shared__ __align__(16) unsigned char ct_smem[];
    const f2geo &G = F.g;
    f2tile t;
    if (!fl_get_tile(F, t)) return;
    const int warp = (int)threadIdx.x >> 5, lane = (int)threadIdx.x & 31, hl = warp >> F.lnw, nth = 32 << F.lnw;
    const int b = fl_quo(F.H, (int)blockIdx.x), h0 = ((int)blockIdx.x - b * G.H) * F.hc, h = h0 + hl;
    const int d0 = G.ax[0].d, d1 = G.ax[1].d;
    T *box = (T *)ct_smem + hl * F.BX, *st = (T *)ct_smem + F.hc * F.BX;
    fl_stage<T>(G, t, box, f2at<T>(Kt, b, h), Kt, D, (int)threadIdx.x - hl * nth, nth);
    flseg S;
    const int wh = warp - (hl << F.lnw);
    fl_get_seg0(F, t, S, wh);
    const int lr = S.u0 - t.u0[0], lc = S.col - t.u0[1];
    int *rec = (int *)(ct_smem + F.roff) + wh * FH_REC, pos[4] = {0, 0, 0, 0};
    /* the warp's Q rows: row i is query (u0 + i / 8, c0 + i % 8); zeros
     * outside the problem (issued before the first head's segment work
     * below, which the block's barrier waits for anyway) */
    T *qs = st + warp * 16 * FM_ROW;
    {
        const int ri = lane >> 1, qr = ri >> 3, qc = ri & 7;
        const bool ok = qr < S.nrow && S.c0 + qc <= t.u1[1];
        const T *src =
            f2at<T>(Q, b, h) + ((S.u0 + qr) * d0 + t.g[0]) * Q.sr + ((S.c0 + qc) * d1 + t.g[1]) * Q.sc;
        for (int ch = lane & 1; ch < (D >> 3); ch += 2) {
            T *dst = qs + ri * FM_ROW + 8 * ch;
            if (ok) fm_cp16(dst, src + 8 * ch);
            else *(uint4 *)dst = make_uint4(0u, 0u, 0u, 0u);
        }
    }
    if (hl == 0) {
        fl_get_seg1(F, t, S);
        pos[0] = fh_pos<T>(F, F.ra, t, O, b, h0, lr, lc, 0);
        pos[1] = fh_pos<T>(F, F.ra, t, O, b, h0, lr + 1, lc, 0);
        if (F.hc > 1) fh_seg_put(rec, S, lane, pos);
    }
    fm_cp_wait();
    __syncthreads(); /* the boxes, the Q rows and the first head's segments */
    if (hl != 0) fh_seg_get<false>(rec, S, lane, pos);
    unsigned qa[2][4];
    fm_ldsm4(qs + (lane & 15) * FM_ROW + 8 * (lane >> 4), qa[0][0], qa[0][1], qa[0][2], qa[0][3]);
    if (D > 16) fm_ldsm4(qs + (lane & 15) * FM_ROW + 16 + 8 * (lane >> 4), qa[1][0], qa[1][1], qa[1][2], qa[1][3]);
    else qa[1][0] = qa[1][1] = qa[1][2] = qa[1][3] = 0u;
    __syncthreads(); /* the Q rows read: the runs may overwrite them */
    if (fill) {
        T mv;
        put(&mv, mval);
        for (int i = (int)threadIdx.x; i < F.ra.nrun * F.ra.rstr; i += (int)blockDim.x) st[i] = mv;
        __syncthreads();
    }
    if (S.nrow > 0) {
        T *p0 = st + pos[0] + hl * F.ra.E, *p1 = st + pos[1] + hl * F.ra.E;
        fl_qk_products<T, RPB>(G, t, S, box, FM_ROW, qa, R, h, lane, p0, p1);
    }
    __syncthreads(); /* the runs */
    fh_copy<T, true>(F, F.ra, t, O, b, h0, st);
#endif
}

/* A warp's AV products over its segment's key rows (avh, avb): acc[n] (d
 * columns 8 n .. 8 n + 7, n < 4, those under D) += the attention weights of
 * the segment's queries (A fragments: 16-bit loads from the staged runs at
 * x0b, x1b, its two query rows, one key row K1 elements on; w00..w11: the
 * lane's four columns inside its query's window) times the staged values
 * (B fragments by ldmatrix.trans from vb, vstep elements a key row); the
 * key rows both query rows see in one loop, those of one row in another. */
template <typename T>
__device__ __forceinline__ void fh_av_products(const flseg &S, const T *vb, int vstep, const unsigned short *x0b,
                                               const unsigned short *x1b, int K1, bool w00, bool w01, bool w10,
                                               bool w11, int D, float (&acc)[4][4])
{
    auto run = [&](int k0, int k1, auto V0, auto V1) {
        const bool v0 = decltype(V0)::v, v1 = decltype(V1)::v;
        const T *vp = vb + (k0 - S.ra0) * vstep;
        const unsigned short *x0 = x0b + (k0 - S.ra0) * K1, *x1 = x1b + (k0 - S.ra1) * K1;
#pragma unroll 1
        for (int kr = k0; kr < k1; kr++, vp += vstep, x0 += K1, x1 += K1) {
            unsigned a[4];
            const unsigned l00 = v0 && w00 ? x0[0] : 0u, l01 = v0 && w01 ? x0[1] : 0u;
            const unsigned l10 = v0 && w10 ? x0[8] : 0u, l11 = v0 && w11 ? x0[9] : 0u;
            const unsigned m00 = v1 && w00 ? x1[0] : 0u, m01 = v1 && w01 ? x1[1] : 0u;
            const unsigned m10 = v1 && w10 ? x1[8] : 0u, m11 = v1 && w11 ? x1[9] : 0u;
            a[0] = l00 | l01 << 16;
            a[1] = m00 | m01 << 16;
            a[2] = l10 | l11 << 16;
            a[3] = m10 | m11 << 16;
            fl_av_mma<T>(vp, a, D, acc);
        }
    };
    fl_row_runs(S, run);
}

/* Shared memory: hc boxes of BX elements (positions, then the zero one),
 * then the staged runs of attention rows, in whose place those of the
 * output go (ostage: the output's heads adjacent too). */
template <typename T>
__global__ void __launch_bounds__(FH_THREADS, 2) avh_kernel(flgeo F, f2view Wt, f2view V, f2view O, int D)
{
#if FM_ON
    extern __shared__ __align__(16) unsigned char ct_smem[];
    const f2geo &G = F.g;
    f2tile t;
    if (!fl_get_tile(F, t)) return;
    const int warp = (int)threadIdx.x >> 5, lane = (int)threadIdx.x & 31, hl = warp >> F.lnw, nth = 32 << F.lnw;
    const int b = fl_quo(F.H, (int)blockIdx.x), h0 = ((int)blockIdx.x - b * G.H) * F.hc, h = h0 + hl;
    const int K1 = G.ax[1].K, tq = lane & 3, d0 = G.ax[0].d, d1 = G.ax[1].d;
    const int nc = t.bb[1] - t.ba[1], tid = (int)threadIdx.x - hl * nth;
    T *box = (T *)ct_smem + hl * F.BX, *zrow = box + G.spr * G.spc * FM_ROW, *st = (T *)ct_smem + F.hc * F.BX;
    fl_stage<T>(G, t, box, f2at<T>(V, b, h), V, D, tid, nth);
    for (int i = tid; i < FM_ROW / 2; i += nth) ((unsigned *)zrow)[i] = 0u;
    fh_copy<T, false>(F, F.ra, t, Wt, b, h0, st);
    flseg S;
    const int wh = warp - (hl << F.lnw);
    fl_get_seg0(F, t, S, wh);
    const int lr = S.u0 - t.u0[0], lc = S.col - t.u0[1];
    int *rec = (int *)(ct_smem + F.roff) + wh * FH_REC, pos[4] = {0, 0, 0, 0};
    if (hl == 0) {
        fl_get_seg1(F, t, S);
        pos[0] = fh_pos<T>(F, F.ra, t, Wt, b, h0, lr, lc, 0);
        pos[1] = fh_pos<T>(F, F.ra, t, Wt, b, h0, lr + 1, lc, 0);
        if (F.ostage) {
            pos[2] = fh_pos<T>(F, F.ro, t, O, b, h0, lr, lc, 0);
            pos[3] = fh_pos<T>(F, F.ro, t, O, b, h0, lr + 1, lc, 0);
        }
        if (F.hc > 1) fh_seg_put(rec, S, lane, pos);
    }
    fm_cp_wait();
    __syncthreads(); /* the boxes, the zero positions, the runs and the first head's segments */
    if (hl != 0) fh_seg_get<true>(rec, S, lane, pos);
    float acc[4][4];
#pragma unroll
    for (int n = 0; n < 4; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[n][e] = 0.f;
    if (S.nrow > 0) {
        /* A fragment registers: rows gq (query row 0) and gq + 8 (row 1), staged
         * columns ns + 2 tq (+ 1, + 8, + 9): window columns j (+ 1, + 8, + 9) of
         * the lane's queries, read where inside the window; B: lane l gives key
         * ns + (l & 15), d 8 (l >> 4) */
        const int j = S.ns + 2 * tq - S.ca;
        const unsigned short *x0b = (const unsigned short *)st + pos[0] + hl * F.ra.E + j;
        const unsigned short *x1b = (const unsigned short *)st + pos[1] + hl * F.ra.E + j;
        const unsigned cn = S.qon ? (unsigned)S.cn : 0u;
        const bool w00 = (unsigned)j < cn, w01 = (unsigned)(j + 1) < cn, w10 = (unsigned)(j + 8) < cn,
                   w11 = (unsigned)(j + 9) < cn;
        const int key = S.ns + (lane & 15), kstep = G.spc * FM_ROW;
        const T *vb = key < nc ? box + (S.ra0 - t.ba[0]) * kstep + key * FM_ROW + (lane >> 4) * 8
                               : zrow + (lane >> 4) * 8;
        const int vstep = key < nc ? kstep : 0;
        fh_av_products<T>(S, vb, vstep, x0b, x1b, K1, w00, w01, w10, w11, D, acc);
    }
    if (F.ostage) {
        __syncthreads(); /* every warp done with the attention runs: the output's take their place */
        if (S.qon) {
#pragma unroll
            for (int r = 0; r < 2; r++) {
                if (r >= S.nrow) break;
                T *o = st + pos[2 + r] + hl * F.ro.E + 2 * tq;
#pragma unroll
                for (int n = 0; n < 4; n++) {
                    if (n * 8 < D) {
                        T e[2];
                        put(&e[0], acc[n][2 * r]);
                        put(&e[1], acc[n][2 * r + 1]);
                        *(unsigned *)(o + 8 * n) = fm_pack<T>(e[0], e[1]);
                    }
                }
            }
        }
        __syncthreads(); /* the output's runs */
        fh_copy<T, true>(F, F.ro, t, O, b, h0, st);
        return;
    }
    if (!S.qon) return;
    T *op = f2at<T>(O, b, h) + (S.u0 * d0 + t.g[0]) * O.sr + (S.col * d1 + t.g[1]) * O.sc + 2 * tq;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        if (r >= S.nrow) break;
#pragma unroll
        for (int n = 0; n < 4; n++) {
            if (n * 8 < D) {
                T e[2];
                put(&e[0], acc[n][2 * r]);
                put(&e[1], acc[n][2 * r + 1]);
                *(unsigned *)(op + 8 * n) = fm_pack<T>(e[0], e[1]);
            }
        }
        op += d0 * O.sr;
    }
#endif
}

#endif /* !__HIP__ */
