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

#endif /* !__HIP__ */
