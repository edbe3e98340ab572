/*
 * naive.c - the reference backend: every op, every parameter, every dtype,
 * any strides, on the CPU.  Plain loops straight from the spec, accumulation
 * in double, half types read and written as such.  Speed is not its job;
 * being obviously right is.
 */
#include "natten-impl.h"
#include "natten-half.h"

#include <math.h>
#include <string.h>

/* ---- element access ---------------------------------------------------- */

static double ld(const natten_problem *p, natten_arg a, int64_t off)
{
    const char *base = p->arg[a].data;
    if (a == NATTEN_ARG_LSE) return ((const float *)base)[off];
    switch (p->dtype) {
    case NATTEN_F32: return ((const float *)base)[off];
    case NATTEN_F64: return ((const double *)base)[off];
    case NATTEN_F16: return natten_f16_to_float(((const uint16_t *)base)[off]);
    default: return natten_bf16_to_float(((const uint16_t *)base)[off]);
    }
}

static void st(const natten_problem *p, natten_arg a, int64_t off, double x)
{
    char *base = p->arg[a].data;
    if (a == NATTEN_ARG_LSE) { ((float *)base)[off] = (float)x; return; }
    switch (p->dtype) {
    case NATTEN_F32: ((float *)base)[off] = (float)x; break;
    case NATTEN_F64: ((double *)base)[off] = x; break;
    case NATTEN_F16: ((uint16_t *)base)[off] = natten_double_to_f16(x); break;
    default: ((uint16_t *)base)[off] = natten_double_to_bf16(x); break;
    }
}

/* Offset of (b, token x[3], h, c) in role a. */
static int64_t at(const natten_problem *p, natten_arg a, int64_t b, const int64_t x[3], int64_t h,
                  int64_t c)
{
    return natten_off(&p->arg[a], b, x[0], x[1], x[2], h, c);
}

/* ---- neighbourhoods ---------------------------------------------------- */

typedef struct {
    int64_t a[3], b[3], g[3], u[3]; /* per axis: window [a, b), group, group position */
} nbhd;

static void neighbourhood(const natten_problem *p, const int64_t x[3], nbhd *n)
{
    for (int i = 0; i < 3; i++) {
        natten_window(p->extent[i], p->kernel[i], p->dilation[i], p->stride[i], p->causal[i], x[i],
                      &n->a[i], &n->b[i]);
        n->g[i] = x[i] % p->dilation[i];
        n->u[i] = x[i] / p->dilation[i];
    }
}

/* Key of slot t (row-major over the window); 0 if the slot is masked (causal). */
static int slot_key(const natten_problem *p, const nbhd *n, int64_t t, int64_t key[3], int64_t rpb[3])
{
    int64_t ti[3];
    ti[2] = t % p->kernel[2];
    ti[1] = (t / p->kernel[2]) % p->kernel[1];
    ti[0] = t / ((int64_t)p->kernel[2] * p->kernel[1]);
    for (int i = 0; i < 3; i++) {
        int64_t pos = n->a[i] + ti[i];
        if (pos >= n->b[i]) return 0;
        key[i] = pos * p->dilation[i] + n->g[i];
        rpb[i] = natten_rpb_index(p->kernel[i], n->u[i], pos);
    }
    return 1;
}

static int64_t rpb_off(const natten_problem *p, natten_arg a, int64_t h, const int64_t e[3])
{
    return natten_off(&p->arg[a], 0, e[0], e[1], e[2], h, 0);
}

/* Loop over every (batch, query token, query head). */
#define FOR_EACH_QUERY(p, b, x, h)                                                   \
    for (int64_t b = 0; b < (p)->batch; b++)                                         \
        for (int64_t x##0 = 0; x##0 < (p)->extent[0]; x##0++)                        \
            for (int64_t x##1 = 0; x##1 < (p)->extent[1]; x##1++)                    \
                for (int64_t x##2 = 0; x##2 < (p)->extent[2]; x##2++)                \
                    for (int64_t h = 0, x[3] = {x##0, x##1, x##2}; h < (p)->heads; h++)

/* Double accumulator shaped like a token tensor [B, X0, X1, X2, H, C] (compact). */
typedef struct {
    double *v;
    int64_t s[6];
} acc;

static int acc_init(acc *A, const natten_problem *p, int64_t heads, int64_t c)
{
    int64_t n = p->batch * p->tokens * heads * c;
    A->s[5] = 1;
    A->s[4] = c;
    A->s[3] = heads * c;
    A->s[2] = p->extent[2] * A->s[3];
    A->s[1] = p->extent[1] * A->s[2];
    A->s[0] = p->extent[0] * A->s[1];
    A->v = natten_calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    return A->v != NULL;
}

static double *acc_at(const acc *A, int64_t b, const int64_t x[3], int64_t h)
{
    return A->v + b * A->s[0] + x[0] * A->s[1] + x[1] * A->s[2] + x[2] * A->s[3] + h * A->s[4];
}

/* Write accumulator A (shaped like role a) into role a. */
static void acc_store(const natten_problem *p, const acc *A, natten_arg a)
{
    const natten_view *v = &p->arg[a];
    for (int64_t b = 0; b < v->shape[0]; b++)
        for (int64_t x0 = 0; x0 < v->shape[1]; x0++)
            for (int64_t x1 = 0; x1 < v->shape[2]; x1++)
                for (int64_t x2 = 0; x2 < v->shape[3]; x2++)
                    for (int64_t h = 0, x[3] = {x0, x1, x2}; h < v->shape[4]; h++)
                        for (int64_t c = 0; c < v->shape[5]; c++)
                            st(p, a, at(p, a, b, x, h, c), acc_at(A, b, x, h)[c]);
}

/* d_rpb accumulator [H, E0, E1, E2] (compact). */
typedef struct {
    double *v;
    int64_t e[3];
} rpb_acc;

static int rpb_acc_init(rpb_acc *R, const natten_problem *p)
{
    for (int i = 0; i < 3; i++) R->e[i] = 2 * p->kernel[i] - 1;
    R->v = natten_calloc((size_t)(p->heads * R->e[0] * R->e[1] * R->e[2] + 1), sizeof(double));
    return R->v != NULL;
}

static double *rpb_acc_at(const rpb_acc *R, int64_t h, const int64_t e[3])
{
    return R->v + ((h * R->e[0] + e[0]) * R->e[1] + e[1]) * R->e[2] + e[2];
}

static void rpb_acc_store(const natten_problem *p, const rpb_acc *R)
{
    int64_t e[3];
    for (int64_t h = 0; h < p->heads; h++)
        for (e[0] = 0; e[0] < R->e[0]; e[0]++)
            for (e[1] = 0; e[1] < R->e[1]; e[1]++)
                for (e[2] = 0; e[2] < R->e[2]; e[2]++)
                    st(p, NATTEN_ARG_D_RPB, rpb_off(p, NATTEN_ARG_D_RPB, h, e), *rpb_acc_at(R, h, e));
}

static double dot(const natten_problem *p, natten_arg a, int64_t oa, natten_arg b, int64_t ob,
                  int64_t n)
{
    double s = 0;
    int64_t sa = p->arg[a].stride[NV_C], sb = p->arg[b].stride[NV_C];
    for (int64_t c = 0; c < n; c++) s += ld(p, a, oa + c * sa) * ld(p, b, ob + c * sb);
    return s;
}

static natten_status oom(void)
{
    return natten_error(NATTEN_ERROR_OUT_OF_MEMORY, "naive: cannot allocate accumulation buffers");
}

/* Query head h reads key/value head kv_head(h) (GQA: contiguous groups). */
static int64_t kv_head(const natten_problem *p, int64_t h)
{
    return h / (p->heads / p->heads_kv);
}

/* ---- unfused ops ------------------------------------------------------- */

static natten_status qk_forward(const natten_problem *p, const natten_exec *ex)
{
    (void)ex;
    FOR_EACH_QUERY(p, b, x, h) {
        nbhd n;
        neighbourhood(p, x, &n);
        for (int64_t t = 0; t < p->window; t++) {
            int64_t key[3], e[3];
            int64_t o = at(p, NATTEN_ARG_ATTN, b, x, h, t);
            if (!slot_key(p, &n, t, key, e)) {
                st(p, NATTEN_ARG_ATTN, o, -INFINITY);
                continue;
            }
            double s = dot(p, NATTEN_ARG_Q, at(p, NATTEN_ARG_Q, b, x, h, 0), NATTEN_ARG_K,
                           at(p, NATTEN_ARG_K, b, key, h, 0), p->dim);
            if (natten_has(p, NATTEN_ARG_RPB)) s += ld(p, NATTEN_ARG_RPB, rpb_off(p, NATTEN_ARG_RPB, h, e));
            st(p, NATTEN_ARG_ATTN, o, s);
        }
    }
    return NATTEN_SUCCESS;
}

static natten_status qk_backward(const natten_problem *p, const natten_exec *ex)
{
    acc dq, dk;
    rpb_acc dr = {0};
    int want_rpb = natten_has(p, NATTEN_ARG_D_RPB);
    (void)ex;
    if (!acc_init(&dq, p, p->heads, p->dim)) return oom();
    if (!acc_init(&dk, p, p->heads, p->dim) || (want_rpb && !rpb_acc_init(&dr, p))) {
        natten_free(dq.v); natten_free(dk.v);
        return oom();
    }
    FOR_EACH_QUERY(p, b, x, h) {
        nbhd n;
        neighbourhood(p, x, &n);
        for (int64_t t = 0; t < p->window; t++) {
            int64_t key[3], e[3];
            if (!slot_key(p, &n, t, key, e)) continue;
            double g = ld(p, NATTEN_ARG_D_ATTN, at(p, NATTEN_ARG_D_ATTN, b, x, h, t));
            double *dqr = acc_at(&dq, b, x, h), *dkr = acc_at(&dk, b, key, h);
            int64_t ok = at(p, NATTEN_ARG_K, b, key, h, 0), sk = p->arg[NATTEN_ARG_K].stride[NV_C];
            int64_t oq = at(p, NATTEN_ARG_Q, b, x, h, 0), sq = p->arg[NATTEN_ARG_Q].stride[NV_C];
            for (int64_t c = 0; c < p->dim; c++) {
                dqr[c] += g * ld(p, NATTEN_ARG_K, ok + c * sk);
                dkr[c] += g * ld(p, NATTEN_ARG_Q, oq + c * sq);
            }
            if (want_rpb) *rpb_acc_at(&dr, h, e) += g;
        }
    }
    acc_store(p, &dq, NATTEN_ARG_D_Q);
    acc_store(p, &dk, NATTEN_ARG_D_K);
    if (want_rpb) rpb_acc_store(p, &dr);
    natten_free(dq.v); natten_free(dk.v); natten_free(dr.v);
    return NATTEN_SUCCESS;
}

static natten_status av_forward(const natten_problem *p, const natten_exec *ex)
{
    double *o = natten_malloc((size_t)p->dim_v * sizeof *o);
    (void)ex;
    if (o == NULL) return oom();
    FOR_EACH_QUERY(p, b, x, h) {
        nbhd n;
        neighbourhood(p, x, &n);
        for (int64_t c = 0; c < p->dim_v; c++) o[c] = 0;
        for (int64_t t = 0; t < p->window; t++) {
            int64_t key[3], e[3];
            if (!slot_key(p, &n, t, key, e)) continue;
            double w = ld(p, NATTEN_ARG_ATTN, at(p, NATTEN_ARG_ATTN, b, x, h, t));
            int64_t ov = at(p, NATTEN_ARG_V, b, key, h, 0), sv = p->arg[NATTEN_ARG_V].stride[NV_C];
            for (int64_t c = 0; c < p->dim_v; c++) o[c] += w * ld(p, NATTEN_ARG_V, ov + c * sv);
        }
        for (int64_t c = 0; c < p->dim_v; c++) st(p, NATTEN_ARG_OUT, at(p, NATTEN_ARG_OUT, b, x, h, c), o[c]);
    }
    natten_free(o);
    return NATTEN_SUCCESS;
}

static natten_status av_backward(const natten_problem *p, const natten_exec *ex)
{
    acc dv;
    (void)ex;
    if (!acc_init(&dv, p, p->heads, p->dim_v)) return oom();
    FOR_EACH_QUERY(p, b, x, h) {
        nbhd n;
        neighbourhood(p, x, &n);
        int64_t od = at(p, NATTEN_ARG_D_OUT, b, x, h, 0);
        for (int64_t t = 0; t < p->window; t++) {
            int64_t key[3], e[3];
            int64_t oa = at(p, NATTEN_ARG_D_ATTN, b, x, h, t);
            if (!slot_key(p, &n, t, key, e)) {
                st(p, NATTEN_ARG_D_ATTN, oa, 0.0);
                continue;
            }
            st(p, NATTEN_ARG_D_ATTN, oa,
               dot(p, NATTEN_ARG_D_OUT, od, NATTEN_ARG_V, at(p, NATTEN_ARG_V, b, key, h, 0), p->dim_v));
            double w = ld(p, NATTEN_ARG_ATTN, at(p, NATTEN_ARG_ATTN, b, x, h, t));
            double *dvr = acc_at(&dv, b, key, h);
            for (int64_t c = 0; c < p->dim_v; c++)
                dvr[c] += w * ld(p, NATTEN_ARG_D_OUT, od + c * p->arg[NATTEN_ARG_D_OUT].stride[NV_C]);
        }
    }
    acc_store(p, &dv, NATTEN_ARG_D_V);
    natten_free(dv.v);
    return NATTEN_SUCCESS;
}

/* ---- fused ops --------------------------------------------------------- */

/* Logits z[t] of one query (masked slots: -inf); returns their logsumexp. */
static double logits(const natten_problem *p, int64_t b, const int64_t x[3], int64_t h,
                     const nbhd *n, double *z)
{
    double m = -INFINITY, s = 0;
    int64_t hk = kv_head(p, h), oq = at(p, NATTEN_ARG_Q, b, x, h, 0);
    for (int64_t t = 0; t < p->window; t++) {
        int64_t key[3], e[3];
        if (!slot_key(p, n, t, key, e)) { z[t] = -INFINITY; continue; }
        z[t] = p->scale * dot(p, NATTEN_ARG_Q, oq, NATTEN_ARG_K, at(p, NATTEN_ARG_K, b, key, hk, 0), p->dim);
        if (natten_has(p, NATTEN_ARG_RPB)) z[t] += ld(p, NATTEN_ARG_RPB, rpb_off(p, NATTEN_ARG_RPB, h, e));
        if (z[t] > m) m = z[t];
    }
    for (int64_t t = 0; t < p->window; t++) s += exp(z[t] - m);
    return m + log(s);
}

static natten_status fna_forward(const natten_problem *p, const natten_exec *ex)
{
    double *z = natten_malloc((size_t)p->window * sizeof *z), *o = natten_malloc((size_t)p->dim_v * sizeof *o);
    (void)ex;
    if (z == NULL || o == NULL) {
        natten_free(z); natten_free(o);
        return oom();
    }
    FOR_EACH_QUERY(p, b, x, h) {
        nbhd n;
        neighbourhood(p, x, &n);
        double lse = logits(p, b, x, h, &n, z);
        int64_t hk = kv_head(p, h);
        for (int64_t c = 0; c < p->dim_v; c++) o[c] = 0;
        for (int64_t t = 0; t < p->window; t++) {
            int64_t key[3], e[3];
            if (!slot_key(p, &n, t, key, e)) continue;
            double w = exp(z[t] - lse);
            int64_t ov = at(p, NATTEN_ARG_V, b, key, hk, 0), sv = p->arg[NATTEN_ARG_V].stride[NV_C];
            for (int64_t c = 0; c < p->dim_v; c++) o[c] += w * ld(p, NATTEN_ARG_V, ov + c * sv);
        }
        for (int64_t c = 0; c < p->dim_v; c++) st(p, NATTEN_ARG_OUT, at(p, NATTEN_ARG_OUT, b, x, h, c), o[c]);
        if (natten_has(p, NATTEN_ARG_LSE))
            st(p, NATTEN_ARG_LSE, natten_off(&p->arg[NATTEN_ARG_LSE], b, x[0], x[1], x[2], h, 0), lse);
    }
    natten_free(z);
    natten_free(o);
    return NATTEN_SUCCESS;
}

static natten_status fna_backward(const natten_problem *p, const natten_exec *ex)
{
    acc dq, dk, dv;
    rpb_acc dr = {0};
    int want_rpb = natten_has(p, NATTEN_ARG_D_RPB);
    double *z = natten_malloc((size_t)p->window * sizeof *z);
    (void)ex;
    dq.v = dk.v = dv.v = NULL;
    if (!z || !acc_init(&dq, p, p->heads, p->dim) || !acc_init(&dk, p, p->heads_kv, p->dim) ||
        !acc_init(&dv, p, p->heads_kv, p->dim_v) || (want_rpb && !rpb_acc_init(&dr, p))) {
        natten_free(z); natten_free(dq.v); natten_free(dk.v); natten_free(dv.v);
        return oom();
    }
    FOR_EACH_QUERY(p, b, x, h) {
        nbhd n;
        neighbourhood(p, x, &n);
        int64_t hk = kv_head(p, h);
        int64_t oq = at(p, NATTEN_ARG_Q, b, x, h, 0), odo = at(p, NATTEN_ARG_D_OUT, b, x, h, 0);
        int64_t sq = p->arg[NATTEN_ARG_Q].stride[NV_C], sdo = p->arg[NATTEN_ARG_D_OUT].stride[NV_C];
        double lse = ld(p, NATTEN_ARG_LSE, natten_off(&p->arg[NATTEN_ARG_LSE], b, x[0], x[1], x[2], h, 0));
        double delta = dot(p, NATTEN_ARG_D_OUT, odo, NATTEN_ARG_OUT, at(p, NATTEN_ARG_OUT, b, x, h, 0), p->dim_v);
        double *dqr = acc_at(&dq, b, x, h);
        logits(p, b, x, h, &n, z);
        for (int64_t t = 0; t < p->window; t++) {
            int64_t key[3], e[3];
            if (!slot_key(p, &n, t, key, e)) continue;
            int64_t ok = at(p, NATTEN_ARG_K, b, key, hk, 0), ov = at(p, NATTEN_ARG_V, b, key, hk, 0);
            int64_t sk = p->arg[NATTEN_ARG_K].stride[NV_C];
            double P = exp(z[t] - lse);
            double dP = dot(p, NATTEN_ARG_D_OUT, odo, NATTEN_ARG_V, ov, p->dim_v);
            double dS = P * (dP - delta);
            double *dkr = acc_at(&dk, b, key, hk), *dvr = acc_at(&dv, b, key, hk);
            for (int64_t c = 0; c < p->dim; c++) {
                dqr[c] += p->scale * dS * ld(p, NATTEN_ARG_K, ok + c * sk);
                dkr[c] += p->scale * dS * ld(p, NATTEN_ARG_Q, oq + c * sq);
            }
            for (int64_t c = 0; c < p->dim_v; c++) dvr[c] += P * ld(p, NATTEN_ARG_D_OUT, odo + c * sdo);
            if (want_rpb) *rpb_acc_at(&dr, h, e) += dS;
        }
    }
    acc_store(p, &dq, NATTEN_ARG_D_Q);
    acc_store(p, &dk, NATTEN_ARG_D_K);
    acc_store(p, &dv, NATTEN_ARG_D_V);
    if (want_rpb) rpb_acc_store(p, &dr);
    natten_free(z); natten_free(dq.v); natten_free(dk.v); natten_free(dv.v); natten_free(dr.v);
    return NATTEN_SUCCESS;
}

static int naive_supports(const natten_problem *p, char *why, size_t len)
{
    (void)p; (void)why; (void)len;
    return 1; /* the reference takes every valid CPU problem */
}

const natten_backend natten_backend_naive = {
    .name = "naive",
    .description = "reference: plain loops, double accumulation, any dtype/stride (CPU)",
    .device_type = kDLCPU,
    .probe = NULL,
    .supports = naive_supports,
    .op = {
        [NATTEN_OP_QK_FORWARD] = qk_forward,
        [NATTEN_OP_QK_BACKWARD] = qk_backward,
        [NATTEN_OP_AV_FORWARD] = av_forward,
        [NATTEN_OP_AV_BACKWARD] = av_backward,
        [NATTEN_OP_FNA_FORWARD] = fna_forward,
        [NATTEN_OP_FNA_BACKWARD] = fna_backward,
    },
};
