/*
 * fast.h - the fused forward's register-blocked kernels (float only),
 * included by kernels.h twice: FL = SW lanes (one 512-bit vector) and
 * FL = SW / 2 (one 256-bit vector, for strips of at most SW / 2 queries,
 * typically the borders of an axis where the window stops moving).  FTAG
 * names the instance.  Every function here is compiled for AVX-512
 * (NATTEN_OMP_FAST_TARGET) and only called after a runtime check.
 *
 * A block is up to three query rows (consecutive members of one dilation
 * group on axis 1, same batch, head and x0) times one strip of the last
 * axis.  Windows are separable, so the rows share the strip's lane tables
 * and differ only in which key rows they read: a key row is loaded once
 * and multiplied into the logits (or weighted sums) of every row of the
 * block whose window holds it.  That halves the loads per FMA against a
 * single row, and the unaligned key/value loads (lane l reads column
 * col0 + l + t2) are what bounds these loops on this CPU.
 *
 * Scratch layout is the generic strips' ([channel or slot][SW]); the half
 * width kernels use the low FL lanes of each SW row.
 */

#define FFN__(n, s, t) n##_##s##_##t
#define FFN_(n, s, t) FFN__(n, s, t)
#define FFN(n) FFN_(n, SFX, FTAG)

typedef REAL FFN(v) __attribute__((vector_size(FL * sizeof(REAL))));
typedef REAL FFN(vu) __attribute__((vector_size(FL * sizeof(REAL)), aligned(sizeof(REAL))));

typedef int32_t FFN(vi) __attribute__((vector_size(FL * sizeof(REAL))));

/*
 * exp(x) for x <= 0 (logits minus their maximum) lane by lane: as vexp
 * (x = n ln2 + r, 2^n from the exponent bits), with a degree-5 polynomial
 * fitted (weighted least squares iterated to minimax) to e^r on
 * |r| <= ln2/2: relative error 1.1e-7, two FMAs fewer than vexp's.  The
 * clamp is one vmaxps and y * 2^n one vscalefps (FMAX, FSCALEF: the
 * instance's width), so no float to integer conversion is needed; a NaN
 * lane stays NaN.  The clamp at -104 (n = -150) makes exp(-inf) exactly 0
 * (y 2^-150 rounds to 0, y < 1.42), so masked slots (-inf) need no mask;
 * below -87.3 the results are subnormal (e^-104 < 2^-150).
 */
static inline __attribute__((always_inline)) NATTEN_OMP_FAST_TARGET FFN(v) FFN(exp)(FFN(v) x)
{
    const FFN(v) shifter = 12582912.0f - (FFN(v)){0}; /* 1.5 * 2^23 */
    FFN(v) t, n, r, y;
    x = FMAX(-104.0f - (FFN(v)){0}, x); /* vmaxps returns its second operand for a NaN */
    t = x * 1.44269504f + shifter; /* 1.5 * 2^23 + round(x / ln2) */
    n = t - shifter;
    r = x - n * 0.693145752f;
    r = r - n * 1.42860677e-06f;
    y = 0.0083125252f * r + 0.041890115f;
    y = y * r + 0.16667114f;
    y = y * r + 0.49999231f;
    y = y * r + 1.0f;
    y = y * r + 1.0f;
    return FSCALEF(y, n); /* y * 2^n (vscalefps), exact as the multiply by 2^n it replaces */
}

/*
 * log(x) lane by lane for the softmax sums (x >= 1, finite): x = m 2^e with
 * m in [sqrt(1/2), sqrt(2)), from the exponent bits; log(m) = 2 atanh(s),
 * s = (m - 1) / (m + 1), |s| <= 0.172, odd series to s^9 (truncation
 * 7e-10 relative); e ln2 in two parts.  A NaN lane stays NaN (x - x).
 */
static inline __attribute__((always_inline)) NATTEN_OMP_FAST_TARGET FFN(v) FFN(log)(FFN(v) x)
{
    FFN(vi) i = (FFN(vi))x, e = (i - 0x3f3504f3) >> 23; /* 0x3f3504f3: sqrt(1/2) */
    FFN(v) m = (FFN(v))(i - (e << 23)), ef = __builtin_convertvector(e, FFN(v));
    FFN(v) s = (m - 1.0f) / (m + 1.0f), s2 = s * s, y;
    y = s2 * (1.0f / 9) + 1.0f / 7;
    y = y * s2 + 1.0f / 5;
    y = y * s2 + 1.0f / 3;
    y = y * s2 + 1.0f;
    return ef * 0.693145752f + (2 * s * y + ef * 1.42860677e-06f) + (x - x);
}

/* k[0] in the low half of the lanes, k[d] in the high half (x - 0 is x, also for -0) */
static inline __attribute__((always_inline)) NATTEN_OMP_FAST_TARGET FFN(v) FFN(dual)(const REAL *k, int64_t d)
{
    static const int32_t lanes[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    FFN(vi) idx, lo;
    memcpy(&idx, lanes, sizeof idx);
    lo = idx < FL / 2;
    return (FFN(v))((lo & (FFN(vi))(k[0] - (FFN(v)){0})) | (~lo & (FFN(vi))(k[d] - (FFN(v)){0})));
}

/*
 * one key / value vector: lane l at k[l] (BC = 0), k[0] in every lane
 * (BC = 1), or k[0] in the low half and k[d] in the high half (BC = 2)
 */
#define FLOAD(k, BC) \
    ((BC) == 2 ? FFN(dual)(k, d) : (BC) ? *(k) - (FFN(v)){0} : *(const FFN(vu) *)(k)) /* x - 0 is x, also for -0 */

#if FWIDE
/*
 * Lanes s .. s + FL - 1 of the concatenation a, b (s < 8, a constant after
 * unrolling): the vector an unaligned load at column col0 + s returns, from
 * the two vectors at col0 and col0 + FL (BC = 3, col0 a multiple of FL).
 * One valignd on the shuffle pipes instead of a load that crosses a cache
 * line and takes both load slots (an intrinsic: GCC 12 turns the same
 * __builtin_shufflevector into vpermt2ps with an index vector per shift,
 * which it spills, and a copy, since vpermt2ps overwrites an operand).
 */
#  define FSH_(s) (FFN(v)) _mm512_alignr_epi32((__m512i)b, (__m512i)a, s) /* valignd: (b:a) >> s lanes */
static inline __attribute__((always_inline)) NATTEN_OMP_FAST_TARGET FFN(v) FFN(shift)(FFN(v) a, FFN(v) b, const int s)
{
    switch (s) {
    case 0: return a;
    case 1: return FSH_(1);
    case 2: return FSH_(2);
    case 3: return FSH_(3);
    case 4: return FSH_(4);
    case 5: return FSH_(5);
    case 6: return FSH_(6);
    default: return FSH_(7);
    }
}
#  undef FSH_
#else
static inline __attribute__((always_inline)) NATTEN_OMP_FAST_TARGET FFN(v) FFN(shift)(FFN(v) a, FFN(v) b, const int s)
{
    (void)b, (void)s;
    return a; /* never called: BC = 3 is the full-width instance's */
}
#endif

/*
 * Logits of NR block rows sharing one key row, slots t2 < NT:
 * z_r[t * SW + l] = sum_c q_r[c * SW + l] * key(c, t).  kr: the packed key
 * row at the strip's first column and the chunk's first slot.
 */
static inline __attribute__((always_inline)) NATTEN_OMP_FAST_TARGET void
FFN(qk)(const REAL *q0, const REAL *q1, const REAL *q2, const REAL *kr, int64_t ncol, int64_t C, REAL *z0,
        REAL *z1, REAL *z2, const int NR, const int NT, const int BC, int64_t d)
{
    FFN(v) a0[8], a1[8], a2[8];
#if FPAIR
    /*
     * Paired border strips in 256-bit vectors (BC = 2): the run's first two
     * rows in one 512-bit vector (the first in the low half, the second in
     * the high half), each key's 512-bit dual vector its 256-bit one twice:
     * two FMAs instead of three per key for three rows, one instead of two
     * for two.  Same products and sums lane by lane.
     */
    if (BC == 2 && NR > 1) {
        __m512 b[8];
#  pragma GCC unroll 8
        for (int t = 0; t < NT; t++) b[t] = _mm512_setzero_ps(), a2[t] = (FFN(v)){0};
        for (int64_t c = 0; c < C; c++) {
            const REAL *k = kr + c * ncol;
            __m512 u01 = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_load_ps(q0 + c * SW)),
                                            _mm256_load_ps(q1 + c * SW), 1);
            FFN(v) u2 = NR > 2 ? *(const FFN(v) *)(q2 + c * SW) : (FFN(v)){0};
#  pragma GCC unroll 8
            for (int t = 0; t < NT; t++) {
                /* k[t] in lanes 0-3 and 8-11, k[t + d] in lanes 4-7 and 12-15 */
                __m512 kv = _mm512_mask_mov_ps(_mm512_set1_ps(k[t + d]), 0x0f0f, _mm512_set1_ps(k[t]));
                NATTEN_OMP_REG(kv);
                b[t] = _mm512_fmadd_ps(u01, kv, b[t]);
                if (NR > 2) a2[t] += u2 * (FFN(v))_mm512_castps512_ps256(kv);
            }
        }
#  pragma GCC unroll 8
        for (int t = 0; t < NT; t++) {
            _mm256_store_ps(z0 + t * SW, _mm512_castps512_ps256(b[t]));
            _mm256_store_ps(z1 + t * SW, _mm512_extractf32x8_ps(b[t], 1));
            if (NR > 2) *(FFN(v) *)(z2 + t * SW) = a2[t];
        }
        return;
    }
#endif
#pragma GCC unroll 8
    for (int t = 0; t < NT; t++) a0[t] = a1[t] = a2[t] = (FFN(v)){0};
    for (int64_t c = 0; c < C; c++) {
        const REAL *k = kr + c * ncol;
        FFN(v) u0 = *(const FFN(v) *)(q0 + c * SW);
        FFN(v) u1 = NR > 1 ? *(const FFN(v) *)(q1 + c * SW) : u0;
        FFN(v) u2 = NR > 2 ? *(const FFN(v) *)(q2 + c * SW) : u0;
        FFN(v) k0 = BC == 3 ? *(const FFN(vu) *)k : u0, k1 = BC == 3 ? *(const FFN(vu) *)(k + FL) : u0;
#pragma GCC unroll 8
        for (int t = 0; t < NT; t++) {
            FFN(v) kv = BC == 3 ? FFN(shift)(k0, k1, t) : FLOAD(k + t, BC);
            NATTEN_OMP_REG(kv);
            a0[t] += u0 * kv;
            if (NR > 1) a1[t] += u1 * kv;
            if (NR > 2) a2[t] += u2 * kv;
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; t++) {
        *(FFN(v) *)(z0 + t * SW) = a0[t];
        if (NR > 1) *(FFN(v) *)(z1 + t * SW) = a1[t];
        if (NR > 2) *(FFN(v) *)(z2 + t * SW) = a2[t];
    }
}

/* All K2 slots of one key row for NR rows, in chunks of at most 8 slots. */
static inline __attribute__((always_inline)) NATTEN_OMP_FAST_TARGET void
FFN(qk_row)(const REAL *const *q, const REAL *kr, int64_t ncol, int64_t C, REAL *const *z, int64_t K2, const int NR,
            const int BC, int64_t d)
{
    int64_t nch = (K2 + 7) / 8, t = 0;
    for (int64_t ch = 0; ch < nch; ch++) {
        int nt = (int)((K2 - t) / (nch - ch)); /* even chunks: 7 -> 7, 9 -> 4 + 5 */
        const REAL *k = kr + t;
        REAL *z0 = z[0] + t * SW, *z1 = z[NR > 1 ? 1 : 0] + t * SW, *z2 = z[NR > 2 ? 2 : 0] + t * SW;
        const REAL *q0 = q[0], *q1 = q[NR > 1 ? 1 : 0], *q2 = q[NR > 2 ? 2 : 0];
        switch (nt) {
        case 8: FFN(qk)(q0, q1, q2, k, ncol, C, z0, z1, z2, NR, 8, BC, d); break;
        case 7: FFN(qk)(q0, q1, q2, k, ncol, C, z0, z1, z2, NR, 7, BC, d); break;
        case 6: FFN(qk)(q0, q1, q2, k, ncol, C, z0, z1, z2, NR, 6, BC, d); break;
        case 5: FFN(qk)(q0, q1, q2, k, ncol, C, z0, z1, z2, NR, 5, BC, d); break;
        case 4: FFN(qk)(q0, q1, q2, k, ncol, C, z0, z1, z2, NR, 4, BC, d); break;
        case 3: FFN(qk)(q0, q1, q2, k, ncol, C, z0, z1, z2, NR, 3, BC, d); break;
        case 2: FFN(qk)(q0, q1, q2, k, ncol, C, z0, z1, z2, NR, 2, BC, d); break;
        default: FFN(qk)(q0, q1, q2, k, ncol, C, z0, z1, z2, NR, 1, BC, d); break;
        }
        t += nt;
    }
}

static NATTEN_OMP_FAST_TARGET void FFN(qk_nr)(const REAL *const *q, const REAL *kr, int64_t ncol, int64_t C,
                                              REAL *const *z, int64_t K2, int nr, int bc, int64_t d)
{
    if (bc == 3) { /* K2 <= 8: one chunk */
        if (nr == 3) FFN(qk_row)(q, kr, ncol, C, z, K2, 3, 3, 0);
        else if (nr == 2) FFN(qk_row)(q, kr, ncol, C, z, K2, 2, 3, 0);
        else FFN(qk_row)(q, kr, ncol, C, z, K2, 1, 3, 0);
    } else if (bc == 2) {
        if (nr == 3) FFN(qk_row)(q, kr, ncol, C, z, K2, 3, 2, d);
        else if (nr == 2) FFN(qk_row)(q, kr, ncol, C, z, K2, 2, 2, d);
        else FFN(qk_row)(q, kr, ncol, C, z, K2, 1, 2, d);
    } else if (bc) {
        if (nr == 3) FFN(qk_row)(q, kr, ncol, C, z, K2, 3, 1, 0);
        else if (nr == 2) FFN(qk_row)(q, kr, ncol, C, z, K2, 2, 1, 0);
        else FFN(qk_row)(q, kr, ncol, C, z, K2, 1, 1, 0);
    } else {
        if (nr == 3) FFN(qk_row)(q, kr, ncol, C, z, K2, 3, 0, 0);
        else if (nr == 2) FFN(qk_row)(q, kr, ncol, C, z, K2, 2, 0, 0);
        else FFN(qk_row)(q, kr, ncol, C, z, K2, 1, 0, 0);
    }
}

/*
 * Weighted sums of one value row for the block rows RLO .. RLO + NR - 1,
 * CC channels: a[r][c] += sum_t2 w_r[t2 * SW + l] * value(c, t2).  pw[r]:
 * row r's weights of this key row; vr: the packed value row at the chunk's
 * first channel and the strip's first column.
 */
static inline __attribute__((always_inline)) NATTEN_OMP_FAST_TARGET void
FFN(av_step)(FFN(v) (*a)[8], const REAL *const *pw, const REAL *vr, int64_t ncol, int64_t K2, const int RLO,
             const int NR, const int CC, const int BC, int64_t d)
{
    const REAL *w0 = pw[RLO], *w1 = pw[NR > 1 ? RLO + 1 : RLO], *w2 = pw[NR > 2 ? RLO + 2 : RLO];
    for (int64_t t2 = 0; t2 < K2; t2++) {
        FFN(v) p0 = *(const FFN(v) *)(w0 + t2 * SW);
        FFN(v) p1 = NR > 1 ? *(const FFN(v) *)(w1 + t2 * SW) : p0;
        FFN(v) p2 = NR > 2 ? *(const FFN(v) *)(w2 + t2 * SW) : p0;
#pragma GCC unroll 8
        for (int c = 0; c < CC; c++) {
            FFN(v) vv = FLOAD(vr + c * ncol + t2, BC);
            NATTEN_OMP_REG(vv);
            a[RLO][c] += p0 * vv;
            if (NR > 1) a[RLO + 1][c] += p1 * vv;
            if (NR > 2) a[RLO + 2][c] += p2 * vv;
        }
    }
}

/*
 * av_step for BC = 3 (K2 <= 8, CC <= 4): the CC value rows' two aligned
 * vectors at the strip's column stay in registers and every slot's vector is
 * a shift of them.  Same products, same order as av_step.
 */
static inline __attribute__((always_inline)) NATTEN_OMP_FAST_TARGET void
FFN(av_step3)(FFN(v) (*a)[8], const REAL *const *pw, const REAL *vr, int64_t ncol, int64_t K2, const int RLO,
              const int NR, const int CC)
{
    const REAL *w0 = pw[RLO], *w1 = pw[NR > 1 ? RLO + 1 : RLO], *w2 = pw[NR > 2 ? RLO + 2 : RLO];
    FFN(v) v0[4], v1[4];
#pragma GCC unroll 4
    for (int c = 0; c < CC; c++) {
        v0[c] = *(const FFN(vu) *)(vr + c * ncol);
        v1[c] = *(const FFN(vu) *)(vr + c * ncol + FL);
    }
#pragma GCC unroll 8
    for (int t2 = 0; t2 < 8; t2++) {
        if (t2 >= K2) break;
        FFN(v) p0 = *(const FFN(v) *)(w0 + t2 * SW);
        FFN(v) p1 = NR > 1 ? *(const FFN(v) *)(w1 + t2 * SW) : p0;
        FFN(v) p2 = NR > 2 ? *(const FFN(v) *)(w2 + t2 * SW) : p0;
#pragma GCC unroll 4
        for (int c = 0; c < CC; c++) {
            FFN(v) vv = FFN(shift)(v0[c], v1[c], t2);
            a[RLO][c] += p0 * vv;
            if (NR > 1) a[RLO + 1][c] += p1 * vv;
            if (NR > 2) a[RLO + 2][c] += p2 * vv;
        }
    }
}

/* o_r[(c0 + c) * SW + l] = weighted sum over the block's windows, c < CC. */
static inline __attribute__((always_inline)) NATTEN_OMP_FAST_TARGET void
FFN(av_chunk)(const omp_plan *P, const KFN(fblk) *B, const KFN(strip) *S, int64_t c0, const int CC, const int BC)
{
    const natten_problem *p = &P->p;
    const omp_pack *pk = &P->pack[1];
    int64_t K2 = p->kernel[2], ncol = pk->ncol, d = BC == 2 ? S->col1 - S->col0 : 0;
    FFN(v) a[3][8];
#pragma GCC unroll 3
    for (int r = 0; r < 3; r++)
#pragma GCC unroll 8
        for (int c = 0; c < CC; c++) a[r][c] = (FFN(v)){0};
    for (int64_t n = 0; n < B->nrun; n++) {
        const KFN(frun) *R = &B->run[n];
        const REAL *vr = R->v + c0 * ncol + S->col0;
        if (BC == 3) {
            switch (R->kind) {
            case 1: FFN(av_step3)(a, (const REAL *const *)R->w, vr, ncol, K2, 0, 1, CC); break;
            case 2: FFN(av_step3)(a, (const REAL *const *)R->w, vr, ncol, K2, 0, 2, CC); break;
            case 3: FFN(av_step3)(a, (const REAL *const *)R->w, vr, ncol, K2, 0, 3, CC); break;
            case 5: FFN(av_step3)(a, (const REAL *const *)R->w, vr, ncol, K2, 1, 1, CC); break;
            case 6: FFN(av_step3)(a, (const REAL *const *)R->w, vr, ncol, K2, 1, 2, CC); break;
            default: FFN(av_step3)(a, (const REAL *const *)R->w, vr, ncol, K2, 2, 1, CC); break;
            }
            continue;
        }
        switch (R->kind) {
        case 1: FFN(av_step)(a, (const REAL *const *)R->w, vr, ncol, K2, 0, 1, CC, BC, d); break;
        case 2: FFN(av_step)(a, (const REAL *const *)R->w, vr, ncol, K2, 0, 2, CC, BC, d); break;
        case 3: FFN(av_step)(a, (const REAL *const *)R->w, vr, ncol, K2, 0, 3, CC, BC, d); break;
        case 5: FFN(av_step)(a, (const REAL *const *)R->w, vr, ncol, K2, 1, 1, CC, BC, d); break;
        case 6: FFN(av_step)(a, (const REAL *const *)R->w, vr, ncol, K2, 1, 2, CC, BC, d); break;
        default: FFN(av_step)(a, (const REAL *const *)R->w, vr, ncol, K2, 2, 1, CC, BC, d); break;
        }
    }
    for (int r = 0; r < B->nr; r++) {
        FFN(v) inv = 1 / *(const FFN(v) *)B->s[r];
        for (int c = 0; c < CC; c++) *(FFN(v) *)(B->o[r] + (c0 + c) * SW) = a[r][c] * inv;
    }
}

static NATTEN_OMP_FAST_TARGET void FFN(av_all)(const omp_plan *P, const KFN(fblk) *B, const KFN(strip) *S,
                                               int bc)
{
    int64_t c = 0, C = P->pack[1].C;
    if (bc == 3) {
        for (; c + 4 <= C; c += 4) FFN(av_chunk)(P, B, S, c, 4, 3);
        bc = 0; /* the channels left: the same values by unaligned loads */
    }
    for (; c + 8 <= C; c += 8) {
        if (bc == 2) FFN(av_chunk)(P, B, S, c, 8, 2);
        else if (bc) FFN(av_chunk)(P, B, S, c, 8, 1);
        else FFN(av_chunk)(P, B, S, c, 8, 0);
    }
    for (; c + 4 <= C; c += 4) {
        if (bc == 2) FFN(av_chunk)(P, B, S, c, 4, 2);
        else if (bc) FFN(av_chunk)(P, B, S, c, 4, 1);
        else FFN(av_chunk)(P, B, S, c, 4, 0);
    }
    for (; c < C; c++) {
        if (bc == 2) FFN(av_chunk)(P, B, S, c, 1, 2);
        else if (bc) FFN(av_chunk)(P, B, S, c, 1, 1);
        else FFN(av_chunk)(P, B, S, c, 1, 0);
    }
}

/*
 * One block: logits, softmax and weighted sums for the rows of B on strip S
 * (mode 0, 2 or 3): o_r (normalised) and m_r, s_r (max, sum of exponentials)
 * per lane; without the weighted sums (av = 0) the unnormalised weights
 * stay in z_r.  Slots outside a row's window on axes 0 and 1 are never read
 * (softmax and weighted sums skip them), so they are not filled.
 */
static NATTEN_OMP_FAST_TARGET void FFN(block)(const omp_plan *P, const KFN(fblk) *B, const KFN(strip) *S,
                                              const REAL *rpb, int av)
{
    const natten_problem *p = &P->p;
    const omp_pack *pk = &P->pack[0];
    int64_t K1 = p->kernel[1], K2 = p->kernel[2], ncol = pk->ncol;
    int bc = S->mode == 3 ? 2 : S->mode == 2;
    int64_t d = S->col1 - S->col0;
    /* full-width strips at a column that is a multiple of FL, windows of at most 8 on axis 2: shifts (BC 3) */
    if (FWIDE && S->mode == 0 && K2 <= 8 && S->col0 % FL == 0 && ncol % FL == 0) bc = 3;
    /* logits of the rows' valid key rows; the rest of each window is -inf */
    for (int r = 0; r < B->nr; r++)
        for (int64_t t0 = 0; t0 < p->kernel[0]; t0++)
            for (int64_t t1 = 0; t1 < K1; t1++) {
                REAL *zr = B->z[r] + (t0 * K1 + t1) * K2 * SW;
                if (t0 < S->n[0] && t1 < B->n1[r]) continue;
                for (int64_t i = 0; i < K2 * SW; i++) zr[i] = -INFINITY;
            }
    for (int64_t n = 0; n < B->nrun; n++) {
        const KFN(frun) *R = &B->run[n];
        int r = R->kind >> 2;
        FFN(qk_nr)((const REAL *const *)&B->qt[r], R->k + S->col0, ncol, pk->C, &R->w[r], K2, R->kind & 3, bc, d);
    }
    for (int r = 0; r < B->nr; r++) {
        REAL *restrict z = B->z[r], *restrict m = B->m[r], *restrict s = B->s[r];
        /* partial windows on axis 2 (causal), and the bias */
        if (!S->full || rpb)
            for (int64_t t0 = 0; t0 < S->n[0]; t0++)
                for (int64_t t1 = 0; t1 < B->n1[r]; t1++) {
                    const REAL *rr = rpb ? rpb + natten_rpb_index(p->kernel[0], S->u[0], S->a[0] + t0) * P->rs[0] +
                                               natten_rpb_index(K1, B->u1[r], B->a1[r] + t1) * P->rs[1]
                                         : NULL;
                    REAL *zr = z + (t0 * K1 + t1) * K2 * SW;
                    for (int64_t t2 = 0; t2 < K2; t2++)
#pragma omp simd
                        for (int l = 0; l < FL; l++) {
                            REAL v = zr[t2 * SW + l];
                            if (rr) v += rr[(S->eb[l] + t2) * P->rs[2]];
                            zr[t2 * SW + l] = t2 < S->len[l] ? v : -INFINITY;
                        }
                }
        FFN(v) mx, sum = (FFN(v)){0}, mq[4];
        for (int i = 0; i < 4; i++) mq[i] = -INFINITY - (FFN(v)){0};
        /* four independent running maxima: a compare-and-select chain per slot is slow */
        for (int64_t t0 = 0; t0 < S->n[0]; t0++)
            for (int64_t t = t0 * K1 * K2; t < (t0 * K1 + B->n1[r]) * K2; t += 4)
#pragma GCC unroll 4
                for (int i = 0; i < 4; i++)
                    if (t + i < (t0 * K1 + B->n1[r]) * K2) {
                        FFN(v) v = *(const FFN(v) *)(z + (t + i) * SW);
                        mq[i] = FMAX(v, mq[i]); /* v > mq[i] ? v : mq[i], NaN passed over */
                    }
        for (int i = 1; i < 4; i++) mq[0] = FMAX(mq[i], mq[0]);
        mx = mq[0];
        for (int64_t t0 = 0; t0 < S->n[0]; t0++)
            for (int64_t t = t0 * K1 * K2; t < (t0 * K1 + B->n1[r]) * K2; t++) {
                FFN(v) v = *(const FFN(v) *)(z + t * SW);
                FFN(v) e = FFN(exp)(v - mx); /* 0 for -inf (a lane of -inf only: NaN, a dead lane) */
                *(FFN(v) *)(z + t * SW) = e;
                sum += e;
            }
        *(FFN(v) *)m = mx + FFN(log)(sum); /* lse */
        *(FFN(v) *)s = sum;
        for (int l = FL; l < SW; l++) m[l] = 0, s[l] = 1;
    }
    if (av) FFN(av_all)(P, B, S, bc); /* else the caller sums (kernels.h, border_av) */
}

#undef FLOAD
#undef FFN
#undef FFN_
#undef FFN__
