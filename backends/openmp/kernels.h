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

static inline REAL KFN(dot)(const REAL *restrict a, const REAL *restrict b, int64_t n)
{
    REAL s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < n; c++) s += a[c] * b[c];
    return s;
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
    e = (int64_t)n + 1023;
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
    e = (int32_t)n + 127;
    bits = (uint32_t)e << 23;
    {
        float s;
        memcpy(&s, &bits, sizeof s);
        return y * s;
    }
#endif
}

#define VIEW(P, a) (&(P)->p.arg[a])
#define DATA(P, a) ((REAL *)(P)->p.arg[a].data)

/*
 * The valid slots of query (b, x0, x1, x2), in slot order: offsets of the key
 * token (without batch and head) in roles ka and va, the slot number t, and
 * the rpb flat offset.  Returns how many.
 */
static inline int64_t KFN(gather)(const omp_plan *P, natten_arg ka, natten_arg va, const int64_t x[3],
                                  int64_t *koff, int64_t *voff, int64_t *slot, int64_t *roff)
{
    const natten_problem *p = &P->p;
    const natten_view *kv = &p->arg[ka], *vv = &p->arg[va];
    int64_t n = 0, wa[3], wb[3], g[3], u[3];
    for (int i = 0; i < 3; i++) {
        wa[i] = P->wa[i][x[i]];
        wb[i] = P->wb[i][x[i]];
        g[i] = x[i] % p->dilation[i];
        u[i] = x[i] / p->dilation[i];
    }
    for (int64_t t0 = 0; t0 < p->kernel[0] && wa[0] + t0 < wb[0]; t0++) {
        int64_t k0 = (wa[0] + t0) * p->dilation[0] + g[0];
        int64_t e0 = natten_rpb_index(p->kernel[0], u[0], wa[0] + t0);
        for (int64_t t1 = 0; t1 < p->kernel[1] && wa[1] + t1 < wb[1]; t1++) {
            int64_t k1 = (wa[1] + t1) * p->dilation[1] + g[1];
            int64_t e1 = natten_rpb_index(p->kernel[1], u[1], wa[1] + t1);
            int64_t kbase = k0 * kv->stride[1] + k1 * kv->stride[2];
            int64_t vbase = k0 * vv->stride[1] + k1 * vv->stride[2];
            int64_t tb = (t0 * p->kernel[1] + t1) * p->kernel[2];
            int64_t rb = e0 * P->rs[0] + e1 * P->rs[1];
            for (int64_t t2 = 0; t2 < p->kernel[2] && wa[2] + t2 < wb[2]; t2++) {
                int64_t k2 = (wa[2] + t2) * p->dilation[2] + g[2];
                koff[n] = kbase + k2 * kv->stride[3];
                voff[n] = vbase + k2 * vv->stride[3];
                slot[n] = tb + t2;
                roff[n] = rb + natten_rpb_index(p->kernel[2], u[2], wa[2] + t2) * P->rs[2];
                n++;
            }
        }
    }
    return n;
}

/* Scratch per thread, in REAL units (callers size it with this). */
static inline int64_t KFN(scratch_len)(const natten_problem *p)
{
    int64_t c = p->dim > p->dim_v ? p->dim : p->dim_v;
    /* 3 vectors of the head dim, z/P/dS of one query, and 3 int64 lists */
    return 4 * c + 3 * p->window + 4 * p->window * (int64_t)(sizeof(int64_t) / sizeof(REAL)) + 64;
}

typedef struct {
    REAL *v0, *v1, *v2, *z, *zp, *zs;
    int64_t *koff, *voff, *slot, *roff;
} KFN(scratch);

static inline KFN(scratch) KFN(carve)(const natten_problem *p, REAL *base)
{
    KFN(scratch) s;
    int64_t c = p->dim > p->dim_v ? p->dim : p->dim_v;
    s.v0 = base;
    s.v1 = s.v0 + c;
    s.v2 = s.v1 + c;
    s.z = s.v2 + c;
    s.zp = s.z + p->window;
    s.zs = s.zp + p->window;
    s.koff = (int64_t *)(void *)(s.zs + p->window + 8 - (p->window % 8));
    s.voff = s.koff + p->window;
    s.slot = s.voff + p->window;
    s.roff = s.slot + p->window;
    return s;
}

/* ---- query-side kernels: one row (b, h, x0, x1), every x2 ------------- */

NATTEN_OMP_CLONES
static void KFN(qk_fwd_row)(const omp_plan *P, int64_t b, int64_t h, int64_t x0, int64_t x1, REAL *scr)
{
    const natten_problem *p = &P->p;
    const natten_view *Q = VIEW(P, NATTEN_ARG_Q), *K = VIEW(P, NATTEN_ARG_K), *A = VIEW(P, NATTEN_ARG_ATTN);
    const REAL *kb = DATA(P, NATTEN_ARG_K) + b * K->stride[0] + h * K->stride[4];
    const REAL *rpb = natten_has(p, NATTEN_ARG_RPB) ? DATA(P, NATTEN_ARG_RPB) + h * P->rh : NULL;
    KFN(scratch) s = KFN(carve)(p, scr);
    for (int64_t x2 = 0; x2 < p->extent[2]; x2++) {
        int64_t x[3] = {x0, x1, x2};
        const REAL *q = DATA(P, NATTEN_ARG_Q) + natten_off(Q, b, x0, x1, x2, h, 0);
        REAL *out = DATA(P, NATTEN_ARG_ATTN) + natten_off(A, b, x0, x1, x2, h, 0);
        int64_t n = KFN(gather)(P, NATTEN_ARG_K, NATTEN_ARG_K, x, s.koff, s.voff, s.slot, s.roff);
        for (int64_t t = 0; t < p->window; t++) out[t] = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            REAL z = KFN(dot)(q, kb + s.koff[j], p->dim);
            if (rpb) z += rpb[s.roff[j]];
            out[s.slot[j]] = z;
        }
    }
}

NATTEN_OMP_CLONES
static void KFN(av_fwd_row)(const omp_plan *P, int64_t b, int64_t h, int64_t x0, int64_t x1, REAL *scr)
{
    const natten_problem *p = &P->p;
    const natten_view *V = VIEW(P, NATTEN_ARG_V), *A = VIEW(P, NATTEN_ARG_ATTN), *O = VIEW(P, NATTEN_ARG_OUT);
    const REAL *vb = DATA(P, NATTEN_ARG_V) + b * V->stride[0] + h * V->stride[4];
    KFN(scratch) s = KFN(carve)(p, scr);
    for (int64_t x2 = 0; x2 < p->extent[2]; x2++) {
        int64_t x[3] = {x0, x1, x2};
        const REAL *a = DATA(P, NATTEN_ARG_ATTN) + natten_off(A, b, x0, x1, x2, h, 0);
        REAL *out = DATA(P, NATTEN_ARG_OUT) + natten_off(O, b, x0, x1, x2, h, 0);
        int64_t n = KFN(gather)(P, NATTEN_ARG_V, NATTEN_ARG_V, x, s.koff, s.voff, s.slot, s.roff);
        for (int64_t c = 0; c < p->dim_v; c++) s.v0[c] = 0;
        for (int64_t j = 0; j < n; j++) KFN(axpy)(s.v0, a[s.slot[j]], vb + s.koff[j], p->dim_v);
        for (int64_t c = 0; c < p->dim_v; c++) out[c] = s.v0[c];
    }
}

/* QK backward, query side: d_q = sum_t d_attn[t] k_t; d_rpb partials. */
NATTEN_OMP_CLONES
static void KFN(qk_bwd_row)(const omp_plan *P, int64_t b, int64_t h, int64_t x0, int64_t x1, REAL *scr,
                            double *drpb)
{
    const natten_problem *p = &P->p;
    const natten_view *K = VIEW(P, NATTEN_ARG_K), *G = VIEW(P, NATTEN_ARG_D_ATTN), *DQ = VIEW(P, NATTEN_ARG_D_Q);
    const REAL *kb = DATA(P, NATTEN_ARG_K) + b * K->stride[0] + h * K->stride[4];
    KFN(scratch) s = KFN(carve)(p, scr);
    for (int64_t x2 = 0; x2 < p->extent[2]; x2++) {
        int64_t x[3] = {x0, x1, x2};
        const REAL *g = DATA(P, NATTEN_ARG_D_ATTN) + natten_off(G, b, x0, x1, x2, h, 0);
        REAL *dq = DATA(P, NATTEN_ARG_D_Q) + natten_off(DQ, b, x0, x1, x2, h, 0);
        int64_t n = KFN(gather)(P, NATTEN_ARG_K, NATTEN_ARG_K, x, s.koff, s.voff, s.slot, s.roff);
        for (int64_t c = 0; c < p->dim; c++) s.v0[c] = 0;
        for (int64_t j = 0; j < n; j++) {
            REAL w = g[s.slot[j]];
            KFN(axpy)(s.v0, w, kb + s.koff[j], p->dim);
            if (drpb) drpb[s.roff[j]] += w;
        }
        for (int64_t c = 0; c < p->dim; c++) dq[c] = s.v0[c];
    }
}

/* AV backward, query side: d_attn[t] = <d_out, v_t>, 0 on masked slots. */
NATTEN_OMP_CLONES
static void KFN(av_bwd_row)(const omp_plan *P, int64_t b, int64_t h, int64_t x0, int64_t x1, REAL *scr)
{
    const natten_problem *p = &P->p;
    const natten_view *V = VIEW(P, NATTEN_ARG_V), *DO = VIEW(P, NATTEN_ARG_D_OUT), *DA = VIEW(P, NATTEN_ARG_D_ATTN);
    const REAL *vb = DATA(P, NATTEN_ARG_V) + b * V->stride[0] + h * V->stride[4];
    KFN(scratch) s = KFN(carve)(p, scr);
    for (int64_t x2 = 0; x2 < p->extent[2]; x2++) {
        int64_t x[3] = {x0, x1, x2};
        const REAL *dout = DATA(P, NATTEN_ARG_D_OUT) + natten_off(DO, b, x0, x1, x2, h, 0);
        REAL *da = DATA(P, NATTEN_ARG_D_ATTN) + natten_off(DA, b, x0, x1, x2, h, 0);
        int64_t n = KFN(gather)(P, NATTEN_ARG_V, NATTEN_ARG_V, x, s.koff, s.voff, s.slot, s.roff);
        for (int64_t t = 0; t < p->window; t++) da[t] = 0;
        for (int64_t j = 0; j < n; j++) da[s.slot[j]] = KFN(dot)(dout, vb + s.koff[j], p->dim_v);
    }
}

/*
 * Fused forward, one query at a time: logits of its valid slots, softmax,
 * weighted sum of values; the per-query weights live only in scratch.
 */
NATTEN_OMP_CLONES
static void KFN(fna_fwd_row)(const omp_plan *P, int64_t b, int64_t h, int64_t x0, int64_t x1, REAL *scr)
{
    const natten_problem *p = &P->p;
    const natten_view *Q = VIEW(P, NATTEN_ARG_Q), *K = VIEW(P, NATTEN_ARG_K), *V = VIEW(P, NATTEN_ARG_V);
    const natten_view *O = VIEW(P, NATTEN_ARG_OUT), *L = VIEW(P, NATTEN_ARG_LSE);
    int64_t hk = h / (p->heads / p->heads_kv);
    const REAL *kb = DATA(P, NATTEN_ARG_K) + b * K->stride[0] + hk * K->stride[4];
    const REAL *vb = DATA(P, NATTEN_ARG_V) + b * V->stride[0] + hk * V->stride[4];
    const REAL *rpb = natten_has(p, NATTEN_ARG_RPB) ? DATA(P, NATTEN_ARG_RPB) + h * P->rh : NULL;
    const REAL scale = (REAL)p->scale;
    KFN(scratch) s = KFN(carve)(p, scr);
    for (int64_t x2 = 0; x2 < p->extent[2]; x2++) {
        int64_t x[3] = {x0, x1, x2};
        const REAL *q = DATA(P, NATTEN_ARG_Q) + natten_off(Q, b, x0, x1, x2, h, 0);
        REAL *out = DATA(P, NATTEN_ARG_OUT) + natten_off(O, b, x0, x1, x2, h, 0);
        int64_t n = KFN(gather)(P, NATTEN_ARG_K, NATTEN_ARG_V, x, s.koff, s.voff, s.slot, s.roff);
        REAL m = -INFINITY, sum = 0;
        for (int64_t c = 0; c < p->dim; c++) s.v1[c] = q[c];
        for (int64_t j = 0; j < n; j++) {
            REAL z = scale * KFN(dot)(s.v1, kb + s.koff[j], p->dim);
            if (rpb) z += rpb[s.roff[j]];
            s.z[j] = z;
            m = z > m ? z : m;
        }
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < n; j++) {
            REAL e = KFN(vexp)(s.z[j] - m);
            s.z[j] = e;
            sum += e;
        }
        for (int64_t c = 0; c < p->dim_v; c++) s.v0[c] = 0;
        for (int64_t j = 0; j < n; j++) KFN(axpy)(s.v0, s.z[j], vb + s.voff[j], p->dim_v);
        {
            REAL inv = 1 / sum;
#pragma omp simd
            for (int64_t c = 0; c < p->dim_v; c++) out[c] = s.v0[c] * inv;
        }
        if (L->data)
            ((float *)L->data)[natten_off(L, b, x0, x1, x2, h, 0)] = (float)(m + log(sum));
    }
}

/*
 * Fused backward, query side: recompute P, dP = <d_out, v>, dS = P (dP - Δ);
 * d_q = scale sum dS k; keep P and dS (slot-indexed, [B,H,N,W] compact) for
 * the key side; d_rpb partials.
 */
NATTEN_OMP_CLONES
static void KFN(fna_bwd_row)(const omp_plan *P, int64_t b, int64_t h, int64_t x0, int64_t x1, REAL *scr,
                             double *drpb)
{
    const natten_problem *p = &P->p;
    const natten_view *Q = VIEW(P, NATTEN_ARG_Q), *K = VIEW(P, NATTEN_ARG_K), *V = VIEW(P, NATTEN_ARG_V);
    const natten_view *O = VIEW(P, NATTEN_ARG_OUT), *L = VIEW(P, NATTEN_ARG_LSE);
    const natten_view *DO = VIEW(P, NATTEN_ARG_D_OUT), *DQ = VIEW(P, NATTEN_ARG_D_Q);
    const natten_view *SP = &P->wp, *SS = &P->ws;
    int64_t hk = h / (p->heads / p->heads_kv);
    const REAL *kb = DATA(P, NATTEN_ARG_K) + b * K->stride[0] + hk * K->stride[4];
    const REAL *vb = DATA(P, NATTEN_ARG_V) + b * V->stride[0] + hk * V->stride[4];
    const REAL *rpb = natten_has(p, NATTEN_ARG_RPB) ? DATA(P, NATTEN_ARG_RPB) + h * P->rh : NULL;
    const REAL scale = (REAL)p->scale;
    KFN(scratch) s = KFN(carve)(p, scr);
    for (int64_t x2 = 0; x2 < p->extent[2]; x2++) {
        int64_t x[3] = {x0, x1, x2};
        const REAL *q = DATA(P, NATTEN_ARG_Q) + natten_off(Q, b, x0, x1, x2, h, 0);
        const REAL *o = DATA(P, NATTEN_ARG_OUT) + natten_off(O, b, x0, x1, x2, h, 0);
        const REAL *dout = DATA(P, NATTEN_ARG_D_OUT) + natten_off(DO, b, x0, x1, x2, h, 0);
        REAL *dq = DATA(P, NATTEN_ARG_D_Q) + natten_off(DQ, b, x0, x1, x2, h, 0);
        REAL *wp = (REAL *)SP->data + natten_off(SP, b, x0, x1, x2, h, 0);
        REAL *ws = (REAL *)SS->data + natten_off(SS, b, x0, x1, x2, h, 0);
        REAL lse = (REAL)((const float *)L->data)[natten_off(L, b, x0, x1, x2, h, 0)];
        REAL delta = KFN(dot)(dout, o, p->dim_v);
        int64_t n = KFN(gather)(P, NATTEN_ARG_K, NATTEN_ARG_V, x, s.koff, s.voff, s.slot, s.roff);
        for (int64_t j = 0; j < n; j++) {
            REAL z = scale * KFN(dot)(q, kb + s.koff[j], p->dim);
            if (rpb) z += rpb[s.roff[j]];
            s.z[j] = z - lse;
        }
#pragma omp simd
        for (int64_t j = 0; j < n; j++) s.zp[j] = KFN(vexp)(s.z[j]);
        for (int64_t j = 0; j < n; j++) s.zs[j] = s.zp[j] * (KFN(dot)(dout, vb + s.voff[j], p->dim_v) - delta);
        for (int64_t t = 0; t < p->window; t++) wp[t] = ws[t] = 0;
        for (int64_t c = 0; c < p->dim; c++) s.v0[c] = 0;
        for (int64_t j = 0; j < n; j++) {
            wp[s.slot[j]] = s.zp[j];
            ws[s.slot[j]] = s.zs[j];
            KFN(axpy)(s.v0, s.zs[j], kb + s.koff[j], p->dim);
            if (drpb) drpb[s.roff[j]] += s.zs[j];
        }
#pragma omp simd
        for (int64_t c = 0; c < p->dim; c++) dq[c] = scale * s.v0[c];
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
        g[2] = y2 % p->dilation[2];
        v[2] = y2 / p->dilation[2];
        qa[2] = P->ia[2][y2];
        qb[2] = P->ib[2][y2];
        for (int64_t c = 0; c < C; c++) acc[c] = 0;
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
                        KFN(axpy)(acc, w, sr + x2 * S->stride[3], C);
                    }
                }
            }
#pragma omp simd
        for (int64_t c = 0; c < C; c++) out[c] = factor * acc[c];
    }
}

#undef VIEW
#undef DATA
#undef KFN
#undef KFN_
#undef KFN__
