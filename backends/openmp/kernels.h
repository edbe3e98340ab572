/*
 * kernels.h - the OpenMP backend's compute kernels, written once over a real
 * type and included by openmp.c twice: REAL = float (float32, and float16 /
 * bfloat16 after conversion) and REAL = double.  SFX names the instance.
 *
 * Every kernel works on one "row" of the problem: fixed batch, head and the
 * two outer spatial indices, every index of the last spatial axis.  Rows are
 * independent, so the callers in openmp.c hand them out with a static
 * schedule; nothing here writes memory another row writes (key-side
 * gradients use the inverse neighbourhood, spec 1.8), so results do not
 * depend on the thread count except for the d_rpb partial sums, which are
 * per thread and reduced in thread order.
 *
 * The hot functions are cloned for AVX-512 and AVX2+FMA (NATTEN_OMP_CLONES,
 * runtime ifunc selection) so that the `omp simd` loops over the head dim use
 * the widest FMA this machine has, while the library still runs on any
 * x86-64.
 */

#define KFN__(n, s) n##_##s
#define KFN_(n, s) KFN__(n, s)
#define KFN(n) KFN_(n, SFX)

/* ---- vector-friendly helpers ------------------------------------------- */

/*
 * <a, b> over n elements.  Lane-wise partial sums in a fixed-size array (one
 * 512-bit vector of floats) and a tree reduction: an `omp simd reduction`
 * here makes GCC add the lanes one by one, which costs more than the FMAs.
 */
#define VL_ (64 / (int)sizeof(REAL))
static inline REAL KFN(dot)(const REAL *restrict a, const REAL *restrict b, int64_t n)
{
    REAL acc[VL_], s = 0;
    int64_t c = 0;
    for (int l = 0; l < VL_; l++) acc[l] = 0;
    for (; c + VL_ <= n; c += VL_) {
#pragma omp simd
        for (int l = 0; l < VL_; l++) acc[l] += a[c + l] * b[c + l];
    }
    for (; c < n; c++) s += a[c] * b[c];
    for (int w = VL_ / 2; w >= 1; w /= 2) {
#pragma omp simd
        for (int l = 0; l < w; l++) acc[l] += acc[l + w];
    }
    return acc[0] + s;
}

static inline void KFN(axpy)(REAL *restrict y, REAL w, const REAL *restrict x, int64_t n)
{
#pragma omp simd
    for (int64_t c = 0; c < n; c++) y[c] += w * x[c];
}

/*
 * exp(x) without a libm call, so that loops over it vectorise: round
 * x/ln2 to n (the 1.5*2^mantissa trick), a Taylor polynomial on
 * |r| <= ln2/2, and 2^n built in the exponent bits.  Relative error about
 * 1e-7 (float, degree 7) or 1e-15 (double, degree 12).  Inputs are clamped
 * into the normal range: callers only pass x <= ~0 (logit minus its max or
 * its logsumexp), where anything below the clamp is a negligible weight.
 * A NaN (the clamp lets it through) comes out as NaN.
 */
static inline REAL KFN(vexp)(REAL x)
{
#if REAL_IS_DOUBLE
    const double lo = -708.0, hi = 709.0, shifter = 6755399441055744.0; /* 1.5 * 2^52 */
    double t, n, r, y;
    int64_t e;
    uint64_t bits;
    x = x < lo ? lo : x > hi ? hi : x;
    t = x * 1.4426950408889634;
    n = (t + shifter) - shifter;
    r = x - n * 6.93147180369123816490e-01;
    r = r - n * 1.90821492927058770002e-10;
    y = 1.0 / 479001600.0;
    y = y * r + 1.0 / 39916800.0;
    y = y * r + 1.0 / 3628800.0;
    y = y * r + 1.0 / 362880.0;
    y = y * r + 1.0 / 40320.0;
    y = y * r + 1.0 / 5040.0;
    y = y * r + 1.0 / 720.0;
    y = y * r + 1.0 / 120.0;
    y = y * r + 1.0 / 24.0;
    y = y * r + 1.0 / 6.0;
    y = y * r + 0.5;
    y = y * r + 1.0;
    y = y * r + 1.0;
    e = (int64_t)(n == n ? n : 0.0) + 1023; /* NaN in: no UB converting it; y is NaN, so is the result */
    bits = (uint64_t)e << 52;
    {
        double s;
        memcpy(&s, &bits, sizeof s);
        return y * s;
    }
#else
    const float lo = -87.0f, hi = 88.0f, shifter = 12582912.0f; /* 1.5 * 2^23 */
    float t, n, r, y;
    int32_t e;
    uint32_t bits;
    x = x < lo ? lo : x > hi ? hi : x;
    t = x * 1.44269504f;
    n = (t + shifter) - shifter;
    r = x - n * 0.693145752f;
    r = r - n * 1.42860677e-06f;
    y = 1.0f / 5040.0f;
    y = y * r + 1.0f / 720.0f;
    y = y * r + 1.0f / 120.0f;
    y = y * r + 1.0f / 24.0f;
    y = y * r + 1.0f / 6.0f;
    y = y * r + 0.5f;
    y = y * r + 1.0f;
    y = y * r + 1.0f;
    e = (int32_t)(n == n ? n : 0.0f) + 127; /* NaN in: no UB converting it; y is NaN, so is the result */
    bits = (uint32_t)e << 23;
    {
        float s;
        memcpy(&s, &bits, sizeof s);
        return y * s;
    }
#endif
}

#define SW (64 / (int)sizeof(REAL)) /* lanes of one 512-bit vector */

/*
 * Transpose of one SW x SW block: dst[c][j] = src[j][c].  GCC/clang vector
 * extensions (any x86-64; AVX-512 turns each step into one shuffle): for
 * double a butterfly of log2(SW) stages swapping off-diagonal sub-blocks,
 * for float the unpack-based form below.  Packing and
 * the strips' loads and stores of tokens go through it, since a scalar
 * transpose costs more than the FMAs it feeds.
 */
typedef REAL KFN(vec) __attribute__((vector_size(64)));

#define TR_STEP(h)                                                                       \
    _Pragma("GCC unroll 16") for (int i = 0; i < SW; i++)                                \
        if (!(i & (h))) {                                                                \
            KFN(vec) x_ = A[i], y_ = A[i + (h)];                                         \
            A[i] = __builtin_shufflevector(x_, y_, TR_LO_##h);                           \
            A[i + (h)] = __builtin_shufflevector(x_, y_, TR_HI_##h);                     \
        }
#if REAL_IS_DOUBLE
#  define TR_LO_4 0, 1, 2, 3, 8, 9, 10, 11
#  define TR_HI_4 4, 5, 6, 7, 12, 13, 14, 15
#  define TR_LO_2 0, 1, 8, 9, 4, 5, 12, 13
#  define TR_HI_2 2, 3, 10, 11, 6, 7, 14, 15
#  define TR_LO_1 0, 8, 2, 10, 4, 12, 6, 14
#  define TR_HI_1 1, 9, 3, 11, 5, 13, 7, 15
#endif

#if REAL_IS_DOUBLE
static inline __attribute__((always_inline)) void KFN(tr_reg)(KFN(vec) *A)
{
    TR_STEP(4)
    TR_STEP(2)
    TR_STEP(1)
}
#else
/*
 * float: two in-lane stages first (32- and 64-bit interleaves within each
 * 128-bit lane: vunpck{l,h}ps / vunpck{l,h}pd on AVX-512), then two stages
 * of 128-bit blocks (vshuff32x4), instead of a butterfly whose last stage
 * needs a two-source permute per pair.  After the in-lane stages, U[4i + m]
 * holds in its 128-bit lane k column 4k + m of rows 4i .. 4i + 3.
 */
static inline __attribute__((always_inline)) void KFN(tr_reg)(KFN(vec) *A)
{
    KFN(vec) U[SW], V[SW];
    _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {
        KFN(vec) x_ = A[2 * i], y_ = A[2 * i + 1];
        U[2 * i] = __builtin_shufflevector(x_, y_, 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29);
        U[2 * i + 1] = __builtin_shufflevector(x_, y_, 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31);
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)
        _Pragma("GCC unroll 2") for (int m = 0; m < 2; m++) {
            KFN(vec) x_ = U[4 * i + m], y_ = U[4 * i + m + 2];
            A[4 * i + 2 * m] = __builtin_shufflevector(x_, y_, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
            A[4 * i + 2 * m + 1] =
                __builtin_shufflevector(x_, y_, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
        }
    /* V[j], j < 4: lanes (rows 0-3 col j, rows 0-3 col 8 + j, rows 4-7 col j, rows 4-7 col 8 + j); V[j + 4]: cols 4 + j, 12 + j */
    _Pragma("GCC unroll 2") for (int h = 0; h < 16; h += 8)
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
            KFN(vec) x_ = A[h + j], y_ = A[h + j + 4];
            V[h + j] = __builtin_shufflevector(x_, y_, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
            V[h + j + 4] = __builtin_shufflevector(x_, y_, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
        }
    _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) {
        /* rows 0-7 and 8-15 of columns j (blocks 0 and 2 of each) and j + 8 (blocks 1 and 3) */
        KFN(vec) x_ = V[j], y_ = V[j + 8];
        A[j] = __builtin_shufflevector(x_, y_, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
        A[j + 8] = __builtin_shufflevector(x_, y_, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    }
}
#endif

/*
 * the SW x SW block by row pointers.  Callers pass each pointer they put
 * in a table through NATTEN_OMP_SCALAR (a general register): otherwise GCC
 * computes the table in vector registers (vpmullq) and extracts the
 * pointers one by one (vmovq, vpextrq) on the shuffle pipes the transpose
 * needs.
 */
static inline __attribute__((always_inline)) void KFN(tr)(const REAL *const *src, REAL *const *dst)
{
    KFN(vec) A[SW];
    _Pragma("GCC unroll 16") for (int j = 0; j < SW; j++) memcpy(&A[j], src[j], sizeof A[j]);
    KFN(tr_reg)(A);
    _Pragma("GCC unroll 16") for (int c = 0; c < SW; c++) memcpy(dst[c], &A[c], sizeof A[c]);
}

/*
 * the same by strides (dst[c * ds + j] = src[j * ss + c]): plain addressing,
 * where the pointer tables make GCC compute the addresses in vector
 * registers and extract them one by one on the shuffle pipes
 */
static inline __attribute__((always_inline)) void KFN(trs)(const REAL *src, int64_t ss, REAL *dst, int64_t ds)
{
    KFN(vec) A[SW];
    _Pragma("GCC unroll 16") for (int j = 0; j < SW; j++) memcpy(&A[j], src + j * ss, sizeof A[j]);
    KFN(tr_reg)(A);
    _Pragma("GCC unroll 16") for (int c = 0; c < SW; c++) memcpy(dst + c * ds, &A[c], sizeof A[c]);
}
#undef TR_STEP
#undef TR_LO_4
#undef TR_HI_4
#undef TR_LO_2
#undef TR_HI_2
#undef TR_LO_1
#undef TR_HI_1

/*
 * dst[c][col0 + j] = src_j[c] for the n tokens src_j = src + j * ts (c < C):
 * one packed row segment.  Blocks of SW tokens x SW channels by transposes;
 * the last, partial block of tokens too, with zeros for the missing tokens,
 * which writes zeros to the SW - 1 columns after the segment: callers pack
 * a row's segments in column order (a later segment overwrites them) and
 * leave at least SW columns after the last one.  Channels past the last
 * full block go one by one.
 */
NATTEN_OMP_CLONES
static void KFN(pack_seg)(const REAL *src, int64_t ts, int64_t n, int64_t C, REAL *dst, int64_t ncol)
{
    static const REAL zero[SW];
    for (int64_t j = 0; j < n; j += SW) {
        const REAL *sp[SW];
        REAL *dp[SW];
        int64_t c = 0, m = n - j < SW ? n - j : SW;
        if (m == SW)
            for (; c + SW <= C; c += SW) KFN(trs)(src + j * ts + c, ts, dst + c * ncol + j, ncol);
        for (; c + SW <= C; c += SW) {
            for (int l = 0; l < SW; l++) {
                const REAL *s_ = l < m ? src + (j + l) * ts + c : zero;
                REAL *d_ = dst + (c + l) * ncol + j;
                NATTEN_OMP_SCALAR(s_);
                NATTEN_OMP_SCALAR(d_);
                sp[l] = s_, dp[l] = d_;
            }
            KFN(tr)(sp, dp);
        }
        for (; c < C; c++)
            for (int l = 0; l < m; l++) dst[c * ncol + j + l] = src[(j + l) * ts + c];
    }
}

#define VIEW(P, a) (&(P)->p.arg[a])
#define DATA(P, a) ((REAL *)(P)->p.arg[a].data)

/* ---- query strips ----------------------------------------------------------
 *
 * The forward ops and the query side of the backward ops run on strips: SW
 * consecutive queries of one dilation group along the last axis (one
 * 512-bit vector of REAL), same batch, head and outer indices.  Vector lanes
 * are queries, so no dot product needs a horizontal sum.  Keys and values
 * come from a transposed copy (omp_pack: [C][column] per outer key index,
 * columns ordered group by group) where lane l's keys start at column
 * col0 + lidx[l]: lidx[l] = l inside the extent (one unaligned vector load per
 * slot, neighbouring queries sharing keys), a gather at the borders, with
 * stride, or in causal bands.  Register blocks of two window rows times four
 * slots keep 8 independent FMA chains per head-dim step.
 */

typedef struct {
    int64_t w;                 /* live lanes */
    int64_t col0;              /* packed column of lane 0's first key on axis 2 */
    int64_t col1;              /* mode 3: packed column of the second half's first key */
    int mode;                  /* lane l's first key: 0 col0 + l, 2 col0 (all alike), 1 col0 + lidx[l],
                                  3 (fused forward, fast.h): col0 in the low half of the kernel's
                                  vector, col1 in the high half (two border strips paired) */
    int full;                  /* every live lane has K2 keys on axis 2 */
    int lidx[SW], len[SW];     /* per lane: first key column - col0, keys on axis 2 */
    int eb[SW];                /* per lane: rpb index on axis 2 of its first key */
    int64_t x2[SW];            /* per lane l < w: its index on axis 2, -1: dead lane (mode 3) */
    int64_t a[2], n[2], g[2], u[2]; /* axes 0, 1 (shared): window start, keys, group, position */
} KFN(strip);

/*
 * Length of the strip of group g2 starting at group position u (at most SW
 * and what is left of the group): the longest run whose window starts step
 * by one (vector loads) or stay put (broadcast loads, at the borders), or a
 * whole vector of arbitrary starts (gathers: strides, odd cases).
 */
static inline int64_t KFN(strip_len)(const omp_plan *P, int64_t g2, int64_t u, int64_t ng, int *mode)
{
    const natten_problem *p = &P->p;
    int64_t d = p->dilation[2], max = ng - u < SW ? ng - u : SW, a0 = P->wa[2][u * d + g2], run = 1;
    int64_t step = max > 1 ? P->wa[2][(u + 1) * d + g2] - a0 : 1;
    if (step != 0 && step != 1) step = -1;
    while (step >= 0 && run < max && P->wa[2][(u + run) * d + g2] - a0 == step * run) run++;
    if (step >= 0 && (run == max || run >= 4)) {
        *mode = step == 1 ? 0 : 2;
        return run;
    }
    *mode = 1;
    return max;
}

/* Fill the lane tables of the strip of group g2 at group position u, w lanes. */
static inline void KFN(strip_init)(const omp_plan *P, KFN(strip) *S, int64_t x0, int64_t x1, int64_t g2,
                                   int64_t u, int64_t w, int mode)
{
    const natten_problem *p = &P->p;
    int64_t x[2] = {x0, x1}, a00 = 0;
    S->w = w;
    S->mode = mode;
    S->full = 1;
    for (int i = 0; i < 2; i++) {
        S->a[i] = P->wa[i][x[i]];
        S->n[i] = P->wb[i][x[i]] - S->a[i];
        S->g[i] = x[i] % p->dilation[i];
        S->u[i] = x[i] / p->dilation[i];
    }
    for (int l = 0; l < SW; l++) {
        int64_t lv = l < S->w ? l : S->w - 1;
        int64_t x2 = (u + lv) * p->dilation[2] + g2;
        int64_t a = P->wa[2][x2];
        if (l == 0) a00 = a;
        /* dead lanes: mode 0 reads past the group into the zero padding */
        S->lidx[l] = mode == 0 ? l : (int)(a - a00);
        S->len[l] = (int)(P->wb[2][x2] - a);
        S->eb[l] = (int)(a - (u + lv) + p->kernel[2] - 1);
        if (l < S->w) {
            S->x2[l] = x2;
            if (S->len[l] != p->kernel[2]) S->full = 0;
        }
    }
    S->col0 = S->col1 = P->goff[g2] + a00;
}

/* z_r[j][l] = sum_c qt[c][l] * k_r[c][li + j], NR (<= 3) window rows x NT slots. */
static inline __attribute__((always_inline)) void KFN(qk_blk)(const REAL *restrict qt, const REAL *const *k,
                                                              int64_t ncol, int64_t C, REAL *const *z,
                                                              const int *restrict lidx, const int NR,
                                                              const int NT, const int gat)
{
    REAL a[12][SW];
    const REAL *k0 = k[0], *k1 = k[NR > 1 ? 1 : 0], *k2 = k[NR > 2 ? 2 : 0];
    for (int j = 0; j < NR * NT; j++)
        for (int l = 0; l < SW; l++) a[j][l] = 0;
    for (int64_t c = 0; c < C; c++) {
        const REAL *restrict q = qt + c * SW;
        const REAL *restrict kr0 = k0 + c * ncol, *restrict kr1 = k1 + c * ncol, *restrict kr2 = k2 + c * ncol;
#pragma omp simd
        for (int l = 0; l < SW; l++) {
            REAL qv = q[l];
            int li = gat == 0 ? l : gat == 1 ? lidx[l] : 0;
#pragma GCC unroll 8
            for (int j = 0; j < NT; j++) {
                a[j][l] += qv * kr0[li + j];
                if (NR > 1) a[NT + j][l] += qv * kr1[li + j];
                if (NR > 2) a[2 * NT + j][l] += qv * kr2[li + j];
            }
        }
    }
    for (int r = 0; r < NR; r++)
        for (int j = 0; j < NT; j++)
#pragma omp simd
            for (int l = 0; l < SW; l++) z[r][j * SW + l] = a[r * NT + j][l];
}

static inline __attribute__((always_inline)) void KFN(qk_rows)(const REAL *qt, const REAL *const *k, int64_t ncol,
                                                               int64_t C, REAL *const *z, const int *lidx,
                                                               int64_t K2, const int NR, const int gat)
{
    int64_t t = 0;
    for (; t + 4 <= K2; t += 4) {
        const REAL *kt[3] = {k[0] + t, k[1] + t, k[2] + t};
        REAL *zt[3] = {z[0] + t * SW, z[1] + t * SW, z[2] + t * SW};
        KFN(qk_blk)(qt, kt, ncol, C, zt, lidx, NR, 4, gat);
    }
    if (t < K2) {
        const REAL *kt[3] = {k[0] + t, k[1] + t, k[2] + t};
        REAL *zt[3] = {z[0] + t * SW, z[1] + t * SW, z[2] + t * SW};
        switch (K2 - t) {
        case 3: KFN(qk_blk)(qt, kt, ncol, C, zt, lidx, NR, 3, gat); break;
        case 2: KFN(qk_blk)(qt, kt, ncol, C, zt, lidx, NR, 2, gat); break;
        default: KFN(qk_blk)(qt, kt, ncol, C, zt, lidx, NR, 1, gat); break;
        }
    }
}

/* NR window rows starting at t1 of row t0 (mode picks the load pattern). */
static inline __attribute__((always_inline)) void KFN(qk_nrows)(const KFN(strip) *S, const REAL *qt,
                                                                const REAL *const *k, int64_t ncol, int64_t C,
                                                                REAL *const *z, int64_t K2, const int NR)
{
    switch (S->mode) {
    case 0: KFN(qk_rows)(qt, k, ncol, C, z, S->lidx, K2, NR, 0); break;
    case 1: KFN(qk_rows)(qt, k, ncol, C, z, S->lidx, K2, NR, 1); break;
    default: KFN(qk_rows)(qt, k, ncol, C, z, S->lidx, K2, NR, 2); break;
    }
}

/*
 * z[t][l] = <qt[.][l], key of slot t of lane l> (+ rpb), -inf on masked
 * slots, for every slot t of the window.  kb: packed rows of this (b, head).
 */
NATTEN_OMP_CLONES
static void KFN(qk_phase)(const omp_plan *P, const KFN(strip) *S, const REAL *qt, const omp_pack *pk,
                          const REAL *kb, const REAL *rpb, REAL *z)
{
    const natten_problem *p = &P->p;
    int64_t K1 = p->kernel[1], K2 = p->kernel[2], C = pk->C, ncol = pk->ncol;
    for (int64_t t0 = 0; t0 < p->kernel[0]; t0++) {
        int64_t k0 = (S->a[0] + t0) * p->dilation[0] + S->g[0];
        REAL *zt0 = z + t0 * K1 * K2 * SW;
        int64_t t1 = 0, n1 = t0 < S->n[0] ? S->n[1] : 0;
        /* window rows in blocks of 2, and of 3 for an odd count: 8 to 12 FMA chains */
        while (t1 < n1) {
            int64_t k1 = (S->a[1] + t1) * p->dilation[1] + S->g[1], left = n1 - t1;
            int nr = left == 3 ? 3 : left >= 2 ? 2 : 1;
            const REAL *k[3];
            REAL *zz[3];
            for (int r = 0; r < 3; r++) {
                int rr = r < nr ? r : 0;
                k[r] = kb + (k0 * p->extent[1] + k1 + rr * p->dilation[1]) * pk->row + S->col0;
                zz[r] = zt0 + (t1 + rr) * K2 * SW;
            }
            if (nr == 3) KFN(qk_nrows)(S, qt, k, ncol, C, zz, K2, 3);
            else if (nr == 2) KFN(qk_nrows)(S, qt, k, ncol, C, zz, K2, 2);
            else KFN(qk_nrows)(S, qt, k, ncol, C, zz, K2, 1);
            t1 += nr;
        }
        for (; t1 < K1; t1++)
            for (int64_t j = 0; j < K2 * SW; j++) zt0[t1 * K2 * SW + j] = -INFINITY;
        if (t0 >= S->n[0] || (S->full && !rpb)) continue;
        /* causal / partial windows on axis 2, and the bias */
        for (t1 = 0; t1 < S->n[1]; t1++) {
            const REAL *rr = rpb ? rpb + natten_rpb_index(p->kernel[0], S->u[0], S->a[0] + t0) * P->rs[0] +
                                           natten_rpb_index(K1, S->u[1], S->a[1] + t1) * P->rs[1]
                                 : NULL;
            REAL *zr = zt0 + t1 * K2 * SW;
            for (int64_t t2 = 0; t2 < K2; t2++)
#pragma omp simd
                for (int l = 0; l < SW; l++) {
                    REAL v = zr[t2 * SW + l];
                    if (rr) v += rr[(S->eb[l] + t2) * P->rs[2]];
                    zr[t2 * SW + l] = t2 < S->len[l] ? v : -INFINITY;
                }
        }
    }
}

/* o[c][l] = sum_t w[t][l] * value of slot t of lane l; w is 0 on masked slots. */
static inline __attribute__((always_inline)) void KFN(av_blk)(const KFN(strip) *S, const omp_plan *P,
                                                              const REAL *restrict w, const REAL *vb,
                                                              int64_t ncol, int64_t row, REAL *restrict o,
                                                              const int NC, const int gat)
{
    const natten_problem *p = &P->p;
    int64_t K1 = p->kernel[1], K2 = p->kernel[2];
    REAL a[8][SW];
    for (int j = 0; j < NC; j++)
        for (int l = 0; l < SW; l++) a[j][l] = 0;
    for (int64_t t0 = 0; t0 < S->n[0]; t0++) {
        int64_t k0 = (S->a[0] + t0) * p->dilation[0] + S->g[0];
        for (int64_t t1 = 0; t1 < S->n[1]; t1++) {
            int64_t k1 = (S->a[1] + t1) * p->dilation[1] + S->g[1];
            const REAL *restrict vr = vb + (k0 * p->extent[1] + k1) * row + S->col0;
            const REAL *restrict wr = w + (t0 * K1 + t1) * K2 * SW;
            for (int64_t t2 = 0; t2 < K2; t2++) {
#pragma omp simd
                for (int l = 0; l < SW; l++) {
                    REAL pv = wr[t2 * SW + l];
                    int li = (gat == 0 ? l : gat == 1 ? S->lidx[l] : 0) + (int)t2;
#pragma GCC unroll 8
                    for (int j = 0; j < NC; j++) a[j][l] += pv * vr[j * ncol + li];
                }
            }
        }
    }
    for (int j = 0; j < NC; j++)
#pragma omp simd
        for (int l = 0; l < SW; l++) o[j * SW + l] = a[j][l];
}

NATTEN_OMP_CLONES
static void KFN(av_phase)(const omp_plan *P, const KFN(strip) *S, const REAL *w, const omp_pack *pk,
                          const REAL *vb, REAL *o)
{
    int64_t c = 0, C = pk->C;
    for (; c + 8 <= C; c += 8) {
        switch (S->mode) {
        case 0: KFN(av_blk)(S, P, w, vb + c * pk->ncol, pk->ncol, pk->row, o + c * SW, 8, 0); break;
        case 1: KFN(av_blk)(S, P, w, vb + c * pk->ncol, pk->ncol, pk->row, o + c * SW, 8, 1); break;
        default: KFN(av_blk)(S, P, w, vb + c * pk->ncol, pk->ncol, pk->row, o + c * SW, 8, 2); break;
        }
    }
    for (; c + 4 <= C; c += 4) {
        switch (S->mode) {
        case 0: KFN(av_blk)(S, P, w, vb + c * pk->ncol, pk->ncol, pk->row, o + c * SW, 4, 0); break;
        case 1: KFN(av_blk)(S, P, w, vb + c * pk->ncol, pk->ncol, pk->row, o + c * SW, 4, 1); break;
        default: KFN(av_blk)(S, P, w, vb + c * pk->ncol, pk->ncol, pk->row, o + c * SW, 4, 2); break;
        }
    }
    for (; c < C; c++) {
        switch (S->mode) {
        case 0: KFN(av_blk)(S, P, w, vb + c * pk->ncol, pk->ncol, pk->row, o + c * SW, 1, 0); break;
        case 1: KFN(av_blk)(S, P, w, vb + c * pk->ncol, pk->ncol, pk->row, o + c * SW, 1, 1); break;
        default: KFN(av_blk)(S, P, w, vb + c * pk->ncol, pk->ncol, pk->row, o + c * SW, 1, 2); break;
        }
    }
}

/* 1 if lane l holds a query (lane 0 always does). */
static inline int KFN(live)(const KFN(strip) *S, int l)
{
    return l < S->w && S->x2[l] >= 0;
}

/* qt[c][l] = factor * src[token of lane l][c] (dead lanes: copies of lane 0). */
static inline __attribute__((always_inline)) void KFN(load_t)(const KFN(strip) *S, const REAL *src, int64_t tstride, int64_t C, REAL factor,
                               REAL *restrict qt)
{
    const REAL *sp[SW];
    REAL *dp[SW];
    int64_t c = 0;
    if (S->w == SW && S->mode != 3) /* every lane live, tokens a fixed step apart */
        for (; c + SW <= C; c += SW)
            KFN(trs)(src + S->x2[0] * tstride + c, (S->x2[1] - S->x2[0]) * tstride, qt + c * SW, SW);
    for (; c + SW <= C; c += SW) {
        for (int l = 0; l < SW; l++) {
            const REAL *s_ = src + S->x2[KFN(live)(S, l) ? l : 0] * tstride + c;
            REAL *d_ = qt + (c + l) * SW;
            NATTEN_OMP_SCALAR(s_);
            NATTEN_OMP_SCALAR(d_);
            sp[l] = s_, dp[l] = d_;
        }
        KFN(tr)(sp, dp);
    }
    for (; c < C; c++)
        for (int l = 0; l < SW; l++) qt[c * SW + l] = src[S->x2[KFN(live)(S, l) ? l : 0] * tstride + c];
    if (factor != 1)
#pragma omp simd
        for (int64_t i = 0; i < C * SW; i++) qt[i] *= factor;
}

/* base[token of lane l][c] = o[c][l] for the live lanes (dead lanes go to trash). */
static inline __attribute__((always_inline)) void KFN(store_t)(const KFN(strip) *S, const REAL *o, int64_t C, REAL *base, int64_t tstride,
                                REAL *trash)
{
    const REAL *sp[SW];
    REAL *dp[SW];
    int64_t c = 0;
    if (S->w == SW && S->mode != 3) /* every lane live, tokens a fixed step apart */
        for (; c + SW <= C; c += SW)
            KFN(trs)(o + c * SW, SW, base + S->x2[0] * tstride + c, (S->x2[1] - S->x2[0]) * tstride);
    for (; c + SW <= C; c += SW) {
        for (int l = 0; l < SW; l++) {
            const REAL *s_ = o + (c + l) * SW;
            REAL *d_ = KFN(live)(S, l) ? base + S->x2[l] * tstride + c : trash;
            NATTEN_OMP_SCALAR(s_);
            NATTEN_OMP_SCALAR(d_);
            sp[l] = s_, dp[l] = d_;
        }
        KFN(tr)(sp, dp);
    }
    for (; c < C; c++)
        for (int l = 0; l < S->w; l++)
            if (KFN(live)(S, l)) base[S->x2[l] * tstride + c] = o[c * SW + l];
}

/* 1 if slot (t0, t1, t2) of lane l is a neighbour. */
static inline int KFN(valid)(const KFN(strip) *S, int64_t t0, int64_t t1, int64_t t2, int l)
{
    return t0 < S->n[0] && t1 < S->n[1] && t2 < S->len[l];
}

/* w[t][l] = weight row of lane l's query in view WV at slot t, 0 where masked. */
static inline __attribute__((always_inline)) void KFN(load_w)(const omp_plan *P, const KFN(strip) *S, const natten_view *WV, int64_t b,
                               int64_t x0, int64_t x1, int64_t h, REAL *w)
{
    const natten_problem *p = &P->p;
    int64_t K1 = p->kernel[1], K2 = p->kernel[2];
    KFN(load_t)(S, (const REAL *)WV->data + natten_off(WV, b, x0, x1, 0, h, 0), WV->stride[3], p->window, 1, w);
    for (int64_t t0 = 0; t0 < p->kernel[0]; t0++)
        for (int64_t t1 = 0; t1 < K1; t1++)
            for (int64_t t2 = 0; t2 < K2; t2++) {
                REAL *wr = w + ((t0 * K1 + t1) * K2 + t2) * SW;
                int row = t0 < S->n[0] && t1 < S->n[1];
#pragma omp simd
                for (int l = 0; l < SW; l++) wr[l] = row && t2 < S->len[l] ? wr[l] : 0;
            }
}

/* d_rpb[h] partial += w over the valid slots of the live lanes (fixed order). */
static inline void KFN(rpb_acc)(const omp_plan *P, const KFN(strip) *S, const REAL *w, double *drpb)
{
    const natten_problem *p = &P->p;
    int64_t K1 = p->kernel[1], K2 = p->kernel[2];
    for (int64_t t0 = 0; t0 < S->n[0]; t0++) {
        int64_t e0 = natten_rpb_index(p->kernel[0], S->u[0], S->a[0] + t0);
        for (int64_t t1 = 0; t1 < S->n[1]; t1++) {
            double *dr = drpb + e0 * P->rs[0] + natten_rpb_index(K1, S->u[1], S->a[1] + t1) * P->rs[1];
            const REAL *wr = w + (t0 * K1 + t1) * K2 * SW;
            for (int l = 0; l < S->w; l++)
                for (int64_t t2 = 0; t2 < S->len[l]; t2++) dr[(S->eb[l] + t2) * P->rs[2]] += wr[t2 * SW + l];
        }
    }
}

/* Per-thread strip scratch, in REAL units. */
static inline int64_t KFN(strip_scratch)(const natten_problem *p)
{
    int64_t c = p->dim > p->dim_v ? p->dim : p->dim_v;
    return (4 * c + 3 * p->window) * SW + 4 * SW + 64;
}

/*
 * The fused forward of one strip of row (b, h, x0, x1): logits of the whole
 * window, softmax per lane, weighted sum of the packed values, out and lse.
 * scr: strip_scratch().
 */
NATTEN_OMP_CLONES
static void KFN(fna_strip)(const omp_plan *P, const KFN(strip) *S, int64_t b, int64_t h, int64_t x0, int64_t x1,
                           REAL *scr)
{
    const natten_problem *p = &P->p;
    const natten_view *Q = VIEW(P, NATTEN_ARG_Q), *O = VIEW(P, NATTEN_ARG_OUT), *L = VIEW(P, NATTEN_ARG_LSE);
    int64_t hk = h / (p->heads / p->heads_kv), W = p->window;
    int64_t C = p->dim > p->dim_v ? p->dim : p->dim_v;
    const REAL *rpb = natten_has(p, NATTEN_ARG_RPB) ? DATA(P, NATTEN_ARG_RPB) + h * P->rh : NULL;
    const REAL scale = (REAL)p->scale;
    const omp_pack *pa = &P->pack[0], *pb = &P->pack[1];
    const REAL *ab = (const REAL *)pa->data + (b * pa->heads + hk) * pa->head;
    const REAL *bb = (const REAL *)pb->data + (b * pb->heads + hk) * pb->head;
    REAL *qt = scr, *o = qt + C * SW, *z = o + C * SW, *zp = z + W * SW, *zs = zp + W * SW;
    REAL *lane = zs + W * SW, *lane2 = lane + SW, *trash = lane2 + SW;
    const REAL *q = DATA(P, NATTEN_ARG_Q) + natten_off(Q, b, x0, x1, 0, h, 0);
    (void)zs;
    KFN(load_t)(S, q, Q->stride[3], p->dim, scale, qt);
    KFN(qk_phase)(P, S, qt, pa, ab, rpb, z);
    for (int l = 0; l < SW; l++) lane[l] = -INFINITY, lane2[l] = 0;
    for (int64_t t = 0; t < W; t++)
#pragma omp simd
        for (int l = 0; l < SW; l++) lane[l] = z[t * SW + l] > lane[l] ? z[t * SW + l] : lane[l];
    for (int64_t t = 0; t < W; t++)
#pragma omp simd
        for (int l = 0; l < SW; l++) {
            REAL v = z[t * SW + l];
            REAL e = v == -INFINITY ? 0 : KFN(vexp)(v - lane[l]);
            z[t * SW + l] = e;
            lane2[l] += e;
        }
    KFN(av_phase)(P, S, z, pb, bb, o);
#pragma omp simd
    for (int l = 0; l < SW; l++) zp[l] = 1 / lane2[l];
    for (int64_t c = 0; c < p->dim_v; c++)
#pragma omp simd
        for (int l = 0; l < SW; l++) o[c * SW + l] *= zp[l];
    KFN(store_t)(S, o, p->dim_v, DATA(P, NATTEN_ARG_OUT) + natten_off(O, b, x0, x1, 0, h, 0), O->stride[3], trash);
    for (int64_t l = 0; l < S->w; l++) {
        if (L->data)
            ((float *)L->data)[natten_off(L, b, x0, x1, S->x2[l], h, 0)] = (float)(lane[l] + log(lane2[l]));
    }
}

/*
 * One row (b, h, x0, x1) of query strips for op k.  Packed operands: ka (keys
 * for logits, or values for d_attn) and kv (values for the weighted sum, or
 * keys for d_q).
 */
NATTEN_OMP_CLONES
static void KFN(strip_row)(const omp_plan *P, int k, int64_t b, int64_t h, int64_t x0, int64_t x1, REAL *scr,
                           double *drpb)
{
    const natten_problem *p = &P->p;
    const natten_view *Q = VIEW(P, NATTEN_ARG_Q), *O = VIEW(P, NATTEN_ARG_OUT), *L = VIEW(P, NATTEN_ARG_LSE);
    const natten_view *A = VIEW(P, NATTEN_ARG_ATTN), *DO = VIEW(P, NATTEN_ARG_D_OUT);
    const natten_view *DA = VIEW(P, NATTEN_ARG_D_ATTN), *DQ = VIEW(P, NATTEN_ARG_D_Q);
    int64_t hk = h / (p->heads / p->heads_kv), W = p->window;
    int64_t C = p->dim > p->dim_v ? p->dim : p->dim_v;
    const REAL *rpb = natten_has(p, NATTEN_ARG_RPB) ? DATA(P, NATTEN_ARG_RPB) + h * P->rh : NULL;
    const REAL scale = (REAL)p->scale;
    const omp_pack *pa = &P->pack[0], *pb = &P->pack[1];
    const REAL *ab = pa->data ? (const REAL *)pa->data + (b * pa->heads + hk) * pa->head : NULL;
    const REAL *bb = pb->data ? (const REAL *)pb->data + (b * pb->heads + hk) * pb->head : NULL;
    REAL *qt = scr, *o = qt + C * SW, *z = o + C * SW, *zp = z + W * SW, *zs = zp + W * SW;
    REAL *lane = zs + W * SW, *lane2 = lane + SW, *trash = lane2 + SW;
    KFN(strip) S;
    for (int64_t g2 = 0; g2 < p->dilation[2]; g2++) {
        int64_t ng = natten_group_len(p->extent[2], p->dilation[2], g2);
        for (int64_t u = 0, w; u < ng; u += w) {
            int mode;
            w = KFN(strip_len)(P, g2, u, ng, &mode);
            KFN(strip_init)(P, &S, x0, x1, g2, u, w, mode);
            switch (k) {
            case Q_QK_FWD: {
                const REAL *q = DATA(P, NATTEN_ARG_Q) + natten_off(Q, b, x0, x1, 0, h, 0);
                KFN(load_t)(&S, q, Q->stride[3], p->dim, 1, qt);
                KFN(qk_phase)(P, &S, qt, pa, ab, rpb, z);
                KFN(store_t)(&S, z, W, DATA(P, NATTEN_ARG_ATTN) + natten_off(A, b, x0, x1, 0, h, 0), A->stride[3],
                             trash);
                break;
            }
            case Q_AV_FWD:
            case Q_QK_BWD: {
                /* weighted sum of packed rows with the given weights (attn / d_attn) */
                const natten_view *WV = k == Q_AV_FWD ? A : DA;
                const natten_view *OV = k == Q_AV_FWD ? O : DQ;
                KFN(load_w)(P, &S, WV, b, x0, x1, h, z);
                KFN(av_phase)(P, &S, z, pb, bb, o);
                KFN(store_t)(&S, o, pb->C, (REAL *)OV->data + natten_off(OV, b, x0, x1, 0, h, 0), OV->stride[3],
                             trash);
                if (drpb && k == Q_QK_BWD) KFN(rpb_acc)(P, &S, z, drpb);
                break;
            }
            case Q_AV_BWD: {
                const REAL *d = DATA(P, NATTEN_ARG_D_OUT) + natten_off(DO, b, x0, x1, 0, h, 0);
                KFN(load_t)(&S, d, DO->stride[3], p->dim_v, 1, qt);
                KFN(qk_phase)(P, &S, qt, pa, ab, NULL, z);
#pragma omp simd
                for (int64_t i = 0; i < W * SW; i++) z[i] = z[i] == -INFINITY ? 0 : z[i];
                KFN(store_t)(&S, z, W, DATA(P, NATTEN_ARG_D_ATTN) + natten_off(DA, b, x0, x1, 0, h, 0), DA->stride[3],
                             trash);
                break;
            }
            case Q_FNA_FWD: KFN(fna_strip)(P, &S, b, h, x0, x1, scr); break;
            default: { /* Q_FNA_BWD: pack a = keys, pack b = values */
                const REAL *q = DATA(P, NATTEN_ARG_Q) + natten_off(Q, b, x0, x1, 0, h, 0);
                const REAL *d = DATA(P, NATTEN_ARG_D_OUT) + natten_off(DO, b, x0, x1, 0, h, 0);
                const natten_view *SP = &P->wp, *SS = &P->ws;
                KFN(load_t)(&S, q, Q->stride[3], p->dim, scale, qt);
                KFN(qk_phase)(P, &S, qt, pa, ab, rpb, z);
                KFN(load_t)(&S, d, DO->stride[3], p->dim_v, 1, qt);
                KFN(qk_phase)(P, &S, qt, pb, bb, NULL, zp);
                for (int l = 0; l < SW; l++) {
                    lane[l] = 0; lane2[l] = 0;
                    if (l < S.w) {
                        const REAL *orow = DATA(P, NATTEN_ARG_OUT) + natten_off(O, b, x0, x1, S.x2[l], h, 0);
                        const REAL *drow = d + S.x2[l] * DO->stride[3];
                        lane[l] = KFN(dot)(orow, drow, p->dim_v);
                        lane2[l] = (REAL)((const float *)L->data)[natten_off(L, b, x0, x1, S.x2[l], h, 0)];
                    }
                }
                for (int64_t t = 0; t < W; t++)
#pragma omp simd
                    for (int l = 0; l < SW; l++) {
                        REAL v = z[t * SW + l];
                        int live = v != -INFINITY;
                        REAL P_ = live ? KFN(vexp)(v - lane2[l]) : 0;
                        z[t * SW + l] = P_;
                        zs[t * SW + l] = live ? P_ * (zp[t * SW + l] - lane[l]) : 0;
                    }
                for (int64_t l = S.w; l < SW; l++)
                    for (int64_t t = 0; t < W; t++) zs[t * SW + l] = 0;
                KFN(av_phase)(P, &S, zs, pa, ab, o);
#pragma omp simd
                for (int64_t i = 0; i < p->dim * SW; i++) o[i] *= scale;
                KFN(store_t)(&S, o, p->dim, DATA(P, NATTEN_ARG_D_Q) + natten_off(DQ, b, x0, x1, 0, h, 0), DQ->stride[3],
                             trash);
                KFN(store_t)(&S, z, W, (REAL *)SP->data + natten_off(SP, b, x0, x1, 0, h, 0), SP->stride[3], trash);
                KFN(store_t)(&S, zs, W, (REAL *)SS->data + natten_off(SS, b, x0, x1, 0, h, 0), SS->stride[3], trash);
                if (drpb) KFN(rpb_acc)(P, &S, zs, drpb);
                break;
            }
            }
        }
    }
}

/* ---- key-side kernel: one row of keys (b, hk, y0, y1), every y2 --------
 *
 * out[key] = factor * sum over the queries whose window holds key (and over
 * the query heads that read this key head) of w[query][slot] * src[query],
 * where w is an attention-shaped view and src a token view.  The inverse
 * neighbourhood is one box of queries per key (spec 1.8), walked in a fixed
 * order: no atomics, the same sums every run.
 */
/*
 * Channels [c0, c0 + NV * SW) of one key's sum (see key_row), accumulated in
 * NV vector registers: an accumulator in memory makes every query wait for
 * the previous one's store.
 */
static inline __attribute__((always_inline)) void KFN(key_chunk)(const omp_plan *P, const natten_view *W,
                                                                 const natten_view *S, REAL *out, REAL factor,
                                                                 int64_t b, int64_t hk, const int64_t *g,
                                                                 const int64_t *v, const int64_t *qa,
                                                                 const int64_t *qb, int64_t c0, const int NV)
{
    const natten_problem *p = &P->p;
    int64_t group = p->heads / p->heads_kv;
    KFN(vec) a[2];
    for (int i = 0; i < NV; i++) a[i] = (KFN(vec)){0};
    for (int64_t h = hk * group; h < (hk + 1) * group; h++)
        for (int64_t u0 = qa[0]; u0 < qb[0]; u0++) {
            int64_t x0 = u0 * p->dilation[0] + g[0];
            int64_t t0 = v[0] - P->wa[0][x0];
            for (int64_t u1 = qa[1]; u1 < qb[1]; u1++) {
                int64_t x1 = u1 * p->dilation[1] + g[1];
                int64_t t01 = (t0 * p->kernel[1] + v[1] - P->wa[1][x1]) * p->kernel[2];
                const REAL *wr = (const REAL *)W->data + natten_off(W, b, x0, x1, 0, h, t01);
                const REAL *sr = (const REAL *)S->data + natten_off(S, b, x0, x1, 0, h, c0);
                for (int64_t u2 = qa[2]; u2 < qb[2]; u2++) {
                    int64_t x2 = u2 * p->dilation[2] + g[2];
                    REAL w = wr[x2 * W->stride[3] + v[2] - P->wa[2][x2]];
                    for (int i = 0; i < NV; i++) {
                        KFN(vec) x;
                        memcpy(&x, sr + x2 * S->stride[3] + i * SW, sizeof x);
                        a[i] += w * x;
                    }
                }
            }
        }
    for (int i = 0; i < NV; i++) {
        KFN(vec) y = factor * a[i];
        memcpy(out + c0 + i * SW, &y, sizeof y);
    }
}

/* ---- key-side kernel: one row of keys (b, hk, y0, y1), every y2 --------
 *
 * out[key] = factor * sum over the queries whose window holds key (and over
 * the query heads that read this key head) of w[query][slot] * src[query],
 * where w is an attention-shaped view and src a token view.  The inverse
 * neighbourhood is one box of queries per key (spec 1.8), walked in a fixed
 * order: no atomics, the same sums every run.  Head dims in chunks of 2 and
 * 1 vectors in registers, the rest (fewer than SW channels) through scr.
 */
NATTEN_OMP_CLONES
static void KFN(key_row)(const omp_plan *P, const natten_view *W, const natten_view *S, int64_t C,
                         natten_view *OUT, REAL factor, int64_t b, int64_t hk, int64_t y0, int64_t y1,
                         REAL *scr)
{
    const natten_problem *p = &P->p;
    int64_t group = p->heads / p->heads_kv;
    REAL *acc = scr;
    int64_t g[3], v[3], qa[3], qb[3];
    int64_t y[3] = {y0, y1, 0};
    for (int i = 0; i < 2; i++) {
        g[i] = y[i] % p->dilation[i];
        v[i] = y[i] / p->dilation[i];
        qa[i] = P->ia[i][y[i]];
        qb[i] = P->ib[i][y[i]];
    }
    for (int64_t y2 = 0; y2 < p->extent[2]; y2++) {
        REAL *out = (REAL *)OUT->data + natten_off(OUT, b, y0, y1, y2, hk, 0);
        int64_t c0 = 0;
        g[2] = y2 % p->dilation[2];
        v[2] = y2 / p->dilation[2];
        qa[2] = P->ia[2][y2];
        qb[2] = P->ib[2][y2];
        for (; c0 + 2 * SW <= C; c0 += 2 * SW) KFN(key_chunk)(P, W, S, out, factor, b, hk, g, v, qa, qb, c0, 2);
        for (; c0 + SW <= C; c0 += SW) KFN(key_chunk)(P, W, S, out, factor, b, hk, g, v, qa, qb, c0, 1);
        if (c0 == C) continue;
        for (int64_t c = c0; c < C; c++) acc[c] = 0;
        for (int64_t h = hk * group; h < (hk + 1) * group; h++)
            for (int64_t u0 = qa[0]; u0 < qb[0]; u0++) {
                int64_t x0 = u0 * p->dilation[0] + g[0];
                int64_t t0 = v[0] - P->wa[0][x0];
                for (int64_t u1 = qa[1]; u1 < qb[1]; u1++) {
                    int64_t x1 = u1 * p->dilation[1] + g[1];
                    int64_t t01 = (t0 * p->kernel[1] + v[1] - P->wa[1][x1]) * p->kernel[2];
                    const REAL *wr = (const REAL *)W->data + natten_off(W, b, x0, x1, 0, h, t01);
                    const REAL *sr = (const REAL *)S->data + natten_off(S, b, x0, x1, 0, h, 0);
                    for (int64_t u2 = qa[2]; u2 < qb[2]; u2++) {
                        int64_t x2 = u2 * p->dilation[2] + g[2];
                        REAL w = wr[x2 * W->stride[3] + v[2] - P->wa[2][x2]];
                        KFN(axpy)(acc + c0, w, sr + x2 * S->stride[3] + c0, C - c0);
                    }
                }
            }
#pragma omp simd
        for (int64_t c = c0; c < C; c++) out[c] = factor * acc[c];
    }
}

#if NATTEN_OMP_FAST && !REAL_IS_DOUBLE
/* ---- fused forward, register-blocked rows (fast.h) ------------------------ */

/*
 * A thread's packed key and value rows ([C][ncol], as omp_pack's rows):
 * m0 * m1 slots, direct-mapped by the key row's group positions on axes 0
 * and 1, each tagged with the row it holds.  A block's key rows are at most
 * m0 consecutive positions on axis 0 and m1 on axis 1, so they never evict
 * one another, and consecutive blocks of a thread find most of their rows
 * packed already.
 */
typedef struct {
    REAL *k, *v;                     /* slot i: k + i * kslot, v + i * vslot */
    int64_t kslot, vslot;
    int64_t *tag;                    /* 1 + the row's id, 0: empty */
    int64_t m0, m1;
} KFN(fcache);

/*
 * One run of a block's rows RLO .. RLO + N - 1 (kind RLO * 4 + N) whose
 * windows hold one key row: k, v its packed key and value rows, w[r] row
 * r's logits (then weights) of that key row.  Built once per block
 * (fna_rows), read by the logits per strip and by the weighted sums per
 * strip and channel chunk.
 */
typedef struct {
    const REAL *k, *v;
    const REAL *vt;                  /* the value tensor's row (no transpose): (b, y0, y1, axis 2 = 0, hk) */
    REAL *w[3];
    int kind;
} KFN(frun);

/* A block of up to 3 query rows of one axis-1 dilation group: see fast.h. */
typedef struct {
    int nr;                          /* rows */
    int64_t x1[3], u1[3];            /* per row: axis-1 index and group position */
    int64_t a1[3], n1[3];            /* per row: window start (group coordinates) and keys on axis 1 */
    int64_t jlo, jhi;                /* union of the rows' windows on axis 1 */
    int64_t m1;                      /* row stride of kp / vp */
    const REAL **kp, **vp;           /* packed key / value row of (t0, j): [t0 * m1 + j - jlo] */
    REAL *qt[3], *z[3], *o[3], *m[3], *s[3]; /* m: lse per lane (block() writes it) */
    const KFN(frun) *run;            /* the weighted sums' runs, in (t0, j) order */
    int64_t nrun;
} KFN(fblk);

/* FMAX(a, b): vmaxps (b where either is NaN); FSCALEF(y, n): y * 2^floor(n) (vscalefps) */
#define FL SW
#define FTAG w
#define FWIDE 1
#define FPAIR 0
#define FMAX(a, b) ((FFN(v))_mm512_max_ps((__m512)(a), (__m512)(b)))
#define FSCALEF(y, n) ((FFN(v))_mm512_scalef_ps((__m512)(y), (__m512)(n)))
#include "fast.h"
#undef FL
#undef FTAG
#undef FWIDE
#undef FPAIR
#undef FMAX
#undef FSCALEF
#define FWIDE 0
#define FPAIR 1
#define FL (SW / 2)
#define FTAG h
#define FMAX(a, b) ((FFN(v))_mm256_max_ps((__m256)(a), (__m256)(b)))
#define FSCALEF(y, n) ((FFN(v))_mm256_scalef_ps((__m256)(y), (__m256)(n)))
#include "fast.h"
#undef FL
#undef FTAG
#undef FPAIR
#undef FMAX
#undef FSCALEF
#define FPAIR 0
#define FL (SW / 4)
#define FTAG q
#define FMAX(a, b) ((FFN(v))_mm_max_ps((__m128)(a), (__m128)(b)))
#define FSCALEF(y, n) ((FFN(v))_mm_scalef_ps((__m128)(y), (__m128)(n)))
#include "fast.h"
#undef FL
#undef FTAG
#undef FWIDE
#undef FPAIR
#undef FMAX
#undef FSCALEF

/*
 * Weighted sums of a paired border strip (mode 3) from the value tensor
 * itself, channels in lanes: every query of a border half reads the same
 * K2 keys per key row, so a key's channels (one or two vectors at c0) are
 * loaded once and multiplied by each query's weight, a broadcast (an
 * embedded-broadcast FMA operand).  Against the transposed rows of fast.h
 * (one vector per channel and slot, formed from two broadcasts and a
 * blend, half a vector of lanes) half the FMAs, no blends, and the outputs
 * need no transpose.  Same products (weight of lane l times the value) in
 * the same order (runs, then slots) as av_step, so the same sums.
 *
 * The full-width strips (mode 0) take the same path when every strip of
 * the problem can (P->vdirect, QO): query q's window then starts q keys
 * after the first query's, so key t of the chunk (voff[t]) is slot t - q of
 * query q and is loaded once for every query whose window holds it; the
 * value rows need no packing and the outputs no transpose.
 *
 * bav_step: run R's rows RLO .. RLO + NR - 1, NQ queries from lane l0, nt
 * slots (keys at voff[t2] from the run's value row; QO: keys voff[t],
 * t < nt + NQ - 1, slot t - q of query q).
 */
static inline __attribute__((always_inline)) NATTEN_OMP_FAST_TARGET void
KFN(bav_step)(v_f32_w (*a)[4][2], const KFN(frun) *R, const REAL *vr, const int64_t *voff, int64_t nt, int l0,
              const int RLO, const int NR, const int NQ, const int CV, const int QO)
{
    const REAL *w0 = R->w[RLO] + l0, *w1 = R->w[NR > 1 ? RLO + 1 : RLO] + l0, *w2 = R->w[NR > 2 ? RLO + 2 : RLO] + l0;
    /* QO: key t (voff[t]) is slot t - q of query q; each key is loaded once for the NQ queries */
    for (int64_t t = 0; t < nt + (QO ? NQ - 1 : 0); t++) {
        const REAL *vp = vr + voff[t];
        v_f32_w v0 = *(const vu_f32_w *)vp, v1 = CV > 1 ? *(const vu_f32_w *)(vp + SW) : v0;
        if (QO) { /* kept in registers (else GCC folds the load into each row's FMA: a load per FMA) */
            NATTEN_OMP_REG(v0);
            if (CV > 1) NATTEN_OMP_REG(v1);
        }
#pragma GCC unroll 4
        for (int q = 0; q < NQ; q++) {
            int64_t t2 = QO ? t - q : t;
            if (QO && (t2 < 0 || t2 >= nt)) continue;
            v_f32_w p0 = w0[t2 * SW + q] - (v_f32_w){0}; /* x - 0 is x, also for -0 */
            a[RLO][q][0] += p0 * v0;
            if (CV > 1) a[RLO][q][1] += p0 * v1;
            if (NR > 1) {
                v_f32_w p1 = w1[t2 * SW + q] - (v_f32_w){0};
                a[RLO + 1][q][0] += p1 * v0;
                if (CV > 1) a[RLO + 1][q][1] += p1 * v1;
            }
            if (NR > 2) {
                v_f32_w p2 = w2[t2 * SW + q] - (v_f32_w){0};
                a[RLO + 2][q][0] += p2 * v0;
                if (CV > 1) a[RLO + 2][q][1] += p2 * v1;
            }
        }
    }
}

/* Channels c0 .. c0 + CV * SW - 1 of NQ queries (lanes l0 ..) of every row: out[r * 4 + q] their output rows. */
static inline __attribute__((always_inline)) NATTEN_OMP_FAST_TARGET void
KFN(bav_chunk)(const KFN(fblk) *B, const int64_t *voff, int64_t nt, int l0, REAL *const *out,
               int64_t c0, const int NQ, const int CV, const int QO)
{
    v_f32_w a[3][4][2];
#pragma GCC unroll 3
    for (int r = 0; r < 3; r++)
#pragma GCC unroll 4
        for (int q = 0; q < NQ; q++)
#pragma GCC unroll 2
            for (int i = 0; i < CV; i++) a[r][q][i] = (v_f32_w){0};
    for (int64_t n = 0; n < B->nrun; n++) {
        const KFN(frun) *R = &B->run[n];
        const REAL *vr = R->vt + c0;
        switch (R->kind) {
        case 1: KFN(bav_step)(a, R, vr, voff, nt, l0, 0, 1, NQ, CV, QO); break;
        case 2: KFN(bav_step)(a, R, vr, voff, nt, l0, 0, 2, NQ, CV, QO); break;
        case 3: KFN(bav_step)(a, R, vr, voff, nt, l0, 0, 3, NQ, CV, QO); break;
        case 5: KFN(bav_step)(a, R, vr, voff, nt, l0, 1, 1, NQ, CV, QO); break;
        case 6: KFN(bav_step)(a, R, vr, voff, nt, l0, 1, 2, NQ, CV, QO); break;
        default: KFN(bav_step)(a, R, vr, voff, nt, l0, 2, 1, NQ, CV, QO); break;
        }
    }
#pragma GCC unroll 3
    for (int r = 0; r < 3; r++) {
        if (r >= B->nr) break;
#pragma GCC unroll 4
        for (int q = 0; q < NQ; q++) {
            REAL inv = 1 / B->s[r][l0 + q]; /* as av_chunk's 1 / s, lane by lane */
#pragma GCC unroll 2
            for (int i = 0; i < CV; i++) *(vu_f32_w *)(out[r * 4 + q] + c0 + i * SW) = a[r][q][i] * inv;
        }
    }
}

static inline __attribute__((always_inline)) NATTEN_OMP_FAST_TARGET void
KFN(bav_qo)(const KFN(fblk) *B, const int64_t *voff, int64_t nt, int l0, REAL *const *out,
            int64_t Dv, int nq, const int QO)
{
    int64_t c0 = 0;
    for (; c0 + 2 * SW <= Dv; c0 += 2 * SW) {
        if (nq == 4) KFN(bav_chunk)(B, voff, nt, l0, out, c0, 4, 2, QO);
        else if (nq == 3) KFN(bav_chunk)(B, voff, nt, l0, out, c0, 3, 2, QO);
        else if (nq == 2) KFN(bav_chunk)(B, voff, nt, l0, out, c0, 2, 2, QO);
        else KFN(bav_chunk)(B, voff, nt, l0, out, c0, 1, 2, QO);
    }
    for (; c0 < Dv; c0 += SW) {
        if (nq == 4) KFN(bav_chunk)(B, voff, nt, l0, out, c0, 4, 1, QO);
        else if (nq == 3) KFN(bav_chunk)(B, voff, nt, l0, out, c0, 3, 1, QO);
        else if (nq == 2) KFN(bav_chunk)(B, voff, nt, l0, out, c0, 2, 1, QO);
        else KFN(bav_chunk)(B, voff, nt, l0, out, c0, 1, 1, QO);
    }
}

/* bav_qo: every query reads the same keys (QO 0) or its window starts q keys on (QO 1) */
static NATTEN_OMP_FAST_TARGET void KFN(bav_q)(const KFN(fblk) *B, const int64_t *voff, int64_t nt,
                                               int l0, REAL *const *out, int64_t Dv, int nq, int qo)
{
    if (qo) KFN(bav_qo)(B, voff, nt, l0, out, Dv, nq, 1);
    else KFN(bav_qo)(B, voff, nt, l0, out, Dv, nq, 0);
}

/* 1 if border_av takes strip S (mode 3, head dim of V a multiple of SW). */
static inline int KFN(border_av_ok)(const omp_plan *P, const KFN(strip) *S)
{
    return S->mode == 3 && P->p.dim_v % SW == 0 && P->p.kernel[2] <= 64;
}

/*
 * The weighted sums and outputs of paired border strip S (fl lanes: the
 * left half's queries from lane 0, the right half's from lane fl / 2) of
 * block B, after block(..., av = 0): straight into the output tensor.
 */
static NATTEN_OMP_FAST_TARGET void KFN(border_av)(const omp_plan *P, const KFN(fblk) *B, const KFN(strip) *S,
                                                  int64_t b, int64_t h, int64_t x0, int64_t fl)
{
    const natten_problem *p = &P->p;
    const natten_view *V = VIEW(P, NATTEN_ARG_V), *O = VIEW(P, NATTEN_ARG_OUT);
    int64_t d2 = p->dilation[2], g2 = S->x2[0] % d2, ng = natten_group_len(p->extent[2], d2, g2), voff[64];
    for (int side = 0; side < 2; side++) {
        int l0 = side * (int)fl / 2, nl = 0;
        /* the half's window start on axis 2 (group coordinates; every lane alike) */
        int64_t a = (side ? S->col1 : S->col0) - P->fsh - P->goff[g2], nt = ng - a < p->kernel[2] ? ng - a : p->kernel[2];
        REAL *out[12];
        while (nl < fl / 2 && S->x2[l0 + nl] >= 0) nl++;
        /* keys past the group are in no window: their weights are 0 and av_step's products +0 */
        for (int64_t t2 = 0; t2 < nt; t2++) voff[t2] = ((a + t2) * d2 + g2) * V->stride[3];
        for (int q0 = 0; q0 < nl; q0 += 4) {
            int nq = nl - q0 < 4 ? nl - q0 : 4;
            for (int r = 0; r < B->nr; r++)
                for (int q = 0; q < nq; q++)
                    out[r * 4 + q] = DATA(P, NATTEN_ARG_OUT) + natten_off(O, b, x0, B->x1[r], S->x2[l0 + q0 + q], h, 0);
            KFN(bav_q)(B, voff, nt, l0 + q0, out, p->dim_v, nq, 0);
        }
    }
}

/*
 * The weighted sums and outputs of full-width strip S (mode 0, P->vdirect)
 * of block B, after block(..., av = 0): lane l's keys are the group's
 * positions pos + l + t2 (pos: lane 0's first), in the value tensor.
 */
static NATTEN_OMP_FAST_TARGET void KFN(direct_av)(const omp_plan *P, const KFN(fblk) *B, const KFN(strip) *S,
                                                  int64_t b, int64_t h, int64_t x0)
{
    const natten_problem *p = &P->p;
    const natten_view *V = VIEW(P, NATTEN_ARG_V), *O = VIEW(P, NATTEN_ARG_OUT);
    int64_t d2 = p->dilation[2], g2 = S->x2[0] % d2, pos = S->col0 - P->fsh - P->goff[g2], voff[64 + 3];
    REAL *out[12];
    for (int q0 = 0; q0 < S->w; q0 += 4) {
        int nq = S->w - q0 < 4 ? (int)S->w - q0 : 4;
        /* key t: slot t - q of query q0 + q */
        for (int64_t t = 0; t < p->kernel[2] + nq - 1; t++) voff[t] = ((pos + q0 + t) * d2 + g2) * V->stride[3];
        for (int r = 0; r < B->nr; r++)
            for (int q = 0; q < nq; q++)
                out[r * 4 + q] = DATA(P, NATTEN_ARG_OUT) + natten_off(O, b, x0, B->x1[r], S->x2[q0 + q], h, 0);
        KFN(bav_q)(B, voff, p->kernel[2], q0, out, p->dim_v, nq, 1);
    }
}

/*
 * 1 if the first and last strips of group g2 (ng positions) are broadcast
 * strips (the borders) of at most SW / 2 lanes with strips between them:
 * fna_rows pairs them in one vector (mode 3).  *w: the first strip's
 * lanes; *ul, *wl: the last strip's position and lanes.
 */
static int KFN(border_pair)(const omp_plan *P, int64_t g2, int64_t ng, int64_t *w, int64_t *ul, int64_t *wl)
{
    int mode, model = 0;
    *w = KFN(strip_len)(P, g2, 0, ng, &mode);
    *ul = *wl = 0;
    if (!(mode == 2 && *w < ng && *w <= SW / 2)) return 0;
    for (int64_t u = *w, wu; u < ng; u += wu) {
        *ul = u;
        wu = *wl = KFN(strip_len)(P, g2, u, ng, &model);
    }
    return model == 2 && *wl <= SW / 2;
}

/*
 * 1 if every strip of the fused forward's blocks can sum the value tensor
 * itself (border_av for the paired borders, direct_av for the rest): value
 * head dim a multiple of SW, K2 <= 64, and every strip that is not a paired
 * border moves its window (mode 0) inside its group.
 */
static int KFN(fast_vdirect)(const omp_plan *P)
{
    const natten_problem *p = &P->p;
    if (p->dim_v % SW || p->kernel[2] > 64) return 0;
    for (int64_t g2 = 0; g2 < p->dilation[2]; g2++) {
        int64_t ng = natten_group_len(p->extent[2], p->dilation[2], g2), w, ul, wl, ub = 0, ue = ng;
        int mode;
        if (KFN(border_pair)(P, g2, ng, &w, &ul, &wl)) ub = w, ue = ul;
        for (int64_t u = ub; u < ue; u += w) {
            w = KFN(strip_len)(P, g2, u, ng, &mode);
            if (mode != 0 || P->wa[2][u * p->dilation[2] + g2] + w - 1 + p->kernel[2] > ng) return 0;
        }
    }
    return 1;
}

/* Per-thread scratch of fna_rows without the row cache, in REAL units (64-byte multiples). */
static inline int64_t KFN(fast_scratch)(const natten_problem *p)
{
    return (3 * (p->dim + p->window + p->dim_v + 2) + 1) * SW;
}

/* Pack key row (b, hk, y0, y1) of view a (C channels) into dst ([C][ncol], padding untouched). */
static void KFN(pack_row)(const omp_plan *P, const natten_view *v, int64_t b, int64_t hk, int64_t y0, int64_t y1,
                          REAL *dst, int64_t ncol)
{
    const natten_problem *p = &P->p;
    for (int64_t g = 0; g < p->dilation[2]; g++)
        KFN(pack_seg)((const REAL *)(void *)v->data + natten_off(v, b, y0, y1, g, hk, 0), p->dilation[2] * v->stride[3],
                      natten_group_len(p->extent[2], p->dilation[2], g), v->shape[NV_C], dst + P->goff[g], ncol);
}

/* One strip S of block B (fl: the kernel's lanes): queries in, outputs and lse out. */
static NATTEN_OMP_FAST_TARGET void KFN(fna_one)(const omp_plan *P, const KFN(fblk) *B, const KFN(strip) *S, int64_t b,
                                                int64_t h, int64_t x0, const REAL *rpb, REAL *trash, int64_t fl)
{
    const natten_problem *p = &P->p;
    const natten_view *Q = VIEW(P, NATTEN_ARG_Q), *O = VIEW(P, NATTEN_ARG_OUT), *L = VIEW(P, NATTEN_ARG_LSE);
    for (int r = 0; r < B->nr; r++)
        KFN(load_t)(S, DATA(P, NATTEN_ARG_Q) + natten_off(Q, b, x0, B->x1[r], 0, h, 0), Q->stride[3], p->dim,
                    (REAL)p->scale, B->qt[r]);
    int bav = KFN(border_av_ok)(P, S), dav = P->vdirect && S->mode == 0;
    if (fl <= SW / 4) block_f32_q(P, B, S, rpb, !bav && !dav);
    else if (fl <= SW / 2) block_f32_h(P, B, S, rpb, !bav && !dav);
    else block_f32_w(P, B, S, rpb, !bav && !dav);
    if (bav) KFN(border_av)(P, B, S, b, h, x0, fl);
    if (dav) KFN(direct_av)(P, B, S, b, h, x0);
    for (int r = 0; r < B->nr; r++) {
        if (!bav && !dav)
            KFN(store_t)(S, B->o[r], p->dim_v, DATA(P, NATTEN_ARG_OUT) + natten_off(O, b, x0, B->x1[r], 0, h, 0),
                         O->stride[3], trash);
        if (L->data) {
            float *lr = (float *)L->data + natten_off(L, b, x0, B->x1[r], 0, h, 0);
            for (int l = 0; l < S->w; l++)
                if (KFN(live)(S, l)) lr[S->x2[l] * L->stride[3]] = (float)B->m[r][l];
        }
    }
}

/*
 * The fused forward of rows x1 = (u1 + r) * d1 + g1, r < nr, of (b, h, x0),
 * every strip of the last axis (all mode 0 or 2: fna_fast_ok()) as blocks
 * (fast.h).  scr: fast_scratch(), 64-byte aligned; rc: the thread's row
 * cache; ptrs: 2 * m0 * m1 pointers; back: the thread's next block is the
 * one before (1) or after (0) this one.
 */
static NATTEN_OMP_FAST_TARGET void KFN(fna_rows)(const omp_plan *P, int64_t b, int64_t h, int64_t x0, int64_t g1,
                                                 int64_t u1, int nr, REAL *scr, KFN(fcache) *rc, const REAL **ptrs,
                                                 KFN(frun) *runs, int back)
{
    const natten_problem *p = &P->p;
    const natten_view *Q = VIEW(P, NATTEN_ARG_Q);
    int64_t hk = h / (p->heads / p->heads_kv), D = p->dim, Dv = p->dim_v, W = p->window, ncol = P->pack[0].ncol;
    const REAL *rpb = natten_has(p, NATTEN_ARG_RPB) ? DATA(P, NATTEN_ARG_RPB) + h * P->rh : NULL;
    REAL *f = scr, *trash;
    KFN(fblk) B;
    KFN(strip) S;
    int64_t a0 = P->wa[0][x0], n0 = P->wb[0][x0] - a0, g0 = x0 % p->dilation[0];
    B.nr = nr;
    for (int r = 0; r < 3; r++) {
        B.qt[r] = f; f += D * SW;
        B.z[r] = f; f += W * SW;
        B.o[r] = f; f += Dv * SW;
        B.m[r] = f; f += SW;
        B.s[r] = f; f += SW;
    }
    trash = f;
    for (int r = 0; r < nr; r++) {
        int64_t x1 = (u1 + r) * p->dilation[1] + g1;
        B.x1[r] = x1;
        B.u1[r] = u1 + r;
        B.a1[r] = P->wa[1][x1];
        B.n1[r] = P->wb[1][x1] - B.a1[r];
        if (r == 0 || B.a1[r] < B.jlo) B.jlo = B.a1[r];
        if (r == 0 || B.a1[r] + B.n1[r] > B.jhi) B.jhi = B.a1[r] + B.n1[r];
    }
    /* the thread's next block's queries (rows after this block, or before it): their loads miss the cache otherwise */
    for (int r = 0; r < nr; r++) {
        int64_t u = back ? u1 - 1 - r : u1 + nr + r, x1;
        if (u < 0 || u * p->dilation[1] + g1 >= p->extent[1]) break;
        x1 = u * p->dilation[1] + g1;
        for (int64_t x2 = 0; x2 < p->extent[2]; x2++) {
            const char *a = (const char *)(DATA(P, NATTEN_ARG_Q) + natten_off(Q, b, x0, x1, x2, h, 0));
            for (int64_t c = 0; c < (int64_t)(D * sizeof(REAL)); c += 64) __builtin_prefetch(a + c);
        }
    }
    /* the block's key rows, packed once per thread while they stay in its cache */
    B.m1 = rc->m1;
    B.kp = ptrs;
    B.vp = ptrs + rc->m0 * rc->m1;
    for (int64_t t0 = 0; t0 < n0; t0++) {
        int64_t y0 = (a0 + t0) * p->dilation[0] + g0;
        for (int64_t j = B.jlo; j < B.jhi; j++) {
            int64_t y1 = j * p->dilation[1] + g1, id = ((b * p->heads_kv + hk) * p->extent[0] + y0) * p->extent[1] + y1;
            int64_t slot = ((a0 + t0) % rc->m0) * rc->m1 + j % rc->m1;
            REAL *kd = rc->k + slot * rc->kslot, *vd = rc->v + slot * rc->vslot;
            if (rc->tag[slot] != id + 1) {
                KFN(pack_row)(P, VIEW(P, NATTEN_ARG_K), b, hk, y0, y1, kd + P->fsh, ncol);
                if (!P->vdirect) KFN(pack_row)(P, VIEW(P, NATTEN_ARG_V), b, hk, y0, y1, vd + P->fsh, ncol);
                rc->tag[slot] = id + 1;
            }
            B.kp[t0 * B.m1 + j - B.jlo] = kd;
            B.vp[t0 * B.m1 + j - B.jlo] = vd;
        }
    }
    /* runs of consecutive rows whose windows hold key row (t0, j): at most 2 per key row */
    B.run = runs;
    B.nrun = 0;
    for (int64_t t0 = 0; t0 < n0; t0++)
        for (int64_t j = B.jlo; j < B.jhi; j++) {
            int r = 0;
            while (r < nr) {
                int r1;
                KFN(frun) *R = &runs[B.nrun];
                if (!(j >= B.a1[r] && j < B.a1[r] + B.n1[r])) { r++; continue; }
                for (r1 = r + 1; r1 < nr && j >= B.a1[r1] && j < B.a1[r1] + B.n1[r1]; r1++) {}
                R->k = B.kp[t0 * B.m1 + j - B.jlo];
                R->v = B.vp[t0 * B.m1 + j - B.jlo];
                R->vt = DATA(P, NATTEN_ARG_V) + natten_off(VIEW(P, NATTEN_ARG_V), b, (a0 + t0) * p->dilation[0] + g0,
                                                           j * p->dilation[1] + g1, 0, hk, 0);
                for (int i = 0; i < 3; i++)
                    R->w[i] = i >= r && i < r1 ? B.z[i] + ((t0 * p->kernel[1] + j - B.a1[i]) * p->kernel[2]) * SW : B.z[0];
                R->kind = r * 4 + (r1 - r);
                B.nrun++;
                r = r1;
            }
        }
    for (int64_t g2 = 0; g2 < p->dilation[2]; g2++) {
        int64_t ng = natten_group_len(p->extent[2], p->dilation[2], g2), ub = 0, ue = ng, w, wl, ul;
        int mode;
        /*
         * The group's first and last strips, broadcast (the borders, where
         * the window stops moving) and narrow, share one vector: half a
         * vector each (mode 3), half the FMAs of two narrow strips.
         */
        {
            if (KFN(border_pair)(P, g2, ng, &w, &ul, &wl)) {
                KFN(strip) S1;
                int64_t hw = w > wl ? w : wl, fl = hw <= SW / 8 ? SW / 4 : hw <= SW / 4 ? SW / 2 : SW;
                KFN(strip_init)(P, &S, x0, B.x1[0], g2, 0, w, 2);
                KFN(strip_init)(P, &S1, x0, B.x1[0], g2, ul, wl, 2);
                for (int l = SW - 1; l >= 0; l--) {
                    const KFN(strip) *T = l < fl / 2 ? &S : &S1;
                    int lt = l < fl / 2 ? l : l - (int)fl / 2;
                    int lc = lt < SW ? lt : 0;
                    S.len[l] = T->len[lc];
                    S.eb[l] = T->eb[lc];
                    S.x2[l] = l < fl && lt < T->w ? T->x2[lt] : -1;
                }
                S.w = fl;
                S.mode = 3;
                S.full = S.full && S1.full;
                S.col0 += P->fsh;
                S.col1 = S1.col0 + P->fsh;
                KFN(fna_one)(P, &B, &S, b, h, x0, rpb, trash, fl);
                ub = w;
                ue = ul;
            }
        }
        for (int64_t u = ub; u < ue; u += w) {
            w = KFN(strip_len)(P, g2, u, ng, &mode);
            KFN(strip_init)(P, &S, x0, B.x1[0], g2, u, w, mode);
            S.col0 += P->fsh;
            S.col1 += P->fsh;
            KFN(fna_one)(P, &B, &S, b, h, x0, rpb, trash, w);
        }
    }
}
#endif

#undef VL_
#undef SW
#undef VIEW
#undef DATA
#undef KFN
#undef KFN_
#undef KFN__
