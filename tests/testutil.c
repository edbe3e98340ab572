/* testutil.c - see testutil.h. */
#include "testutil.h"
#include "natten-half.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- memory ------------------------------------------------------------ */

static int host_alloc(void **p, size_t bytes) { *p = malloc(bytes ? bytes : 1); return *p != NULL; }
static void host_release(void *p) { free(p); }
static int host_copy(void *dst, const void *src, size_t bytes) { if (dst != src) memcpy(dst, src, bytes); return 1; }
static int host_copy_c(void *dst, const void *src, size_t bytes) { return host_copy(dst, src, bytes); }

static const tt_mem host_mem = {kDLCPU, host_alloc, host_release, host_copy, host_copy_c};

#ifdef TT_HAVE_CUDA
extern const tt_mem tt_cuda_mem;
#endif
#ifdef TT_HAVE_HIP
extern const tt_mem tt_hip_mem;
#endif

const tt_mem *tt_mem_for(DLDeviceType type)
{
    if (type == kDLCPU) return &host_mem;
#ifdef TT_HAVE_CUDA
    if (type == kDLCUDA) return &tt_cuda_mem;
#endif
#ifdef TT_HAVE_HIP
    if (type == kDLROCM) return &tt_hip_mem;
#endif
    return NULL;
}

/* ---- tensors ----------------------------------------------------------- */

static size_t esize(DLDataType t) { return t.bits / 8u; }

tt *tt_new(int ndim, const int64_t *shape, DLDataType dtype, tt_layout layout, int token,
           DLDeviceType dev)
{
    tt *x = calloc(1, sizeof *x);
    int perm[TT_MAXDIM];
    int64_t s, pad = layout == TT_PADDED ? 3 : 0, offset = layout == TT_PADDED ? 5 : 0, span = 0;
    if (x == NULL) return NULL;
    x->mem = tt_mem_for(dev);
    if (x->mem == NULL) { free(x); return NULL; }
    x->numel = 1;
    for (int i = 0; i < ndim; i++) {
        perm[i] = i;
        x->shape[i] = shape[i];
        x->numel *= shape[i];
    }
    if (token && layout == TT_HEADS_FIRST && ndim >= 4) {
        perm[1] = ndim - 2;
        for (int i = 2; i < ndim - 1; i++) perm[i] = i - 1;
    }
    s = layout == TT_INNER_STRIDED ? 2 : 1;
    for (int m = ndim - 1; m >= 0; m--) {
        x->strides[perm[m]] = s;
        s = s * (shape[perm[m]] > 0 ? shape[perm[m]] : 1) + pad;
    }
    for (int i = 0; i < ndim; i++)
        if (shape[i] > 0) span += (shape[i] - 1) * x->strides[i];
    x->bytes = (size_t)(offset + span + 1 + pad) * esize(dtype);
    x->host = malloc(x->bytes);
    if (x->host == NULL) { free(x); return NULL; }
    if (dev == kDLCPU) x->dev = x->host;
    else if (!x->mem->alloc(&x->dev, x->bytes)) { free(x->host); free(x); return NULL; }
    memset(x->host, 0, x->bytes);
    x->t.data = x->dev;
    x->t.device.device_type = dev;
    x->t.device.device_id = 0;
    x->t.ndim = ndim;
    x->t.dtype = dtype;
    x->t.shape = x->shape;
    x->t.strides = layout == TT_COMPACT ? NULL : x->strides; /* NULL strides = compact */
    x->t.byte_offset = (uint64_t)offset * esize(dtype);
    return x;
}

void tt_free(tt *x)
{
    if (x == NULL) return;
    if (x->dev != x->host) x->mem->release(x->dev);
    free(x->host);
    free(x);
}

static int64_t elem_offset(const tt *x, int64_t linear)
{
    int64_t off = 0;
    for (int i = x->t.ndim - 1; i >= 0; i--) {
        off += (linear % x->shape[i]) * x->strides[i];
        linear /= x->shape[i];
    }
    return off + (int64_t)(x->t.byte_offset / esize(x->t.dtype));
}

double tt_get(const tt *x, int64_t linear)
{
    const char *p = x->host + elem_offset(x, linear) * (int64_t)esize(x->t.dtype);
    if (x->t.dtype.code == kDLBfloat) return natten_bf16_to_float(*(const uint16_t *)p);
    switch (x->t.dtype.bits) {
    case 16: return natten_f16_to_float(*(const uint16_t *)p);
    case 32: return *(const float *)p;
    default: return *(const double *)p;
    }
}

void tt_set(tt *x, int64_t linear, double v)
{
    char *p = x->host + elem_offset(x, linear) * (int64_t)esize(x->t.dtype);
    if (x->t.dtype.code == kDLBfloat) { *(uint16_t *)p = natten_double_to_bf16(v); return; }
    switch (x->t.dtype.bits) {
    case 16: *(uint16_t *)p = natten_double_to_f16(v); break;
    case 32: *(float *)p = (float)v; break;
    default: *(double *)p = v; break;
    }
}

tt *tt_clone_layout(const tt *like, tt_layout layout, DLDeviceType dev)
{
    int token = like->t.ndim >= 4;
    tt *x = tt_new(like->t.ndim, like->shape, like->t.dtype, layout, token, dev);
    if (x == NULL) return NULL;
    for (int64_t i = 0; i < like->numel; i++) tt_set(x, i, tt_get(like, i));
    if (!tt_upload(x)) { tt_free(x); return NULL; }
    return x;
}

uint64_t tt_seed(void)
{
    const char *s = getenv("NATTEN_TEST_SEED");
    if (s && *s) return strtoull(s, NULL, 0);
    return (uint64_t)time(NULL) * 2654435761u + (uint64_t)clock();
}

double tt_uniform(uint64_t *rng)
{
    /* splitmix64 */
    uint64_t z = (*rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1p-53;
}

void tt_fill_random(tt *x, uint64_t *rng, double scale)
{
    for (int64_t i = 0; i < x->numel; i++) tt_set(x, i, scale * (2.0 * tt_uniform(rng) - 1.0));
    tt_upload(x);
}

void tt_poison(tt *x)
{
    size_t es = esize(x->t.dtype);
    for (size_t i = 0; i + es <= x->bytes; i += es) {
        if (x->t.dtype.code == kDLBfloat) *(uint16_t *)(x->host + i) = 0x7fc1;
        else if (es == 2) *(uint16_t *)(x->host + i) = 0x7e01;
        else if (es == 4) { float f = NAN; memcpy(x->host + i, &f, 4); }
        else { double d = NAN; memcpy(x->host + i, &d, 8); }
    }
    tt_upload(x);
}

int tt_upload(tt *x) { return x->dev == x->host || x->mem->upload(x->dev, x->host, x->bytes); }
int tt_download(tt *x) { return x->dev == x->host || x->mem->download(x->host, x->dev, x->bytes); }

int tt_buffer_equal(const tt *x, const void *image)
{
    return memcmp(x->host, image, x->bytes) == 0;
}

DLDataType tt_dtype(const char *name)
{
    DLDataType t = {kDLFloat, 32, 1};
    if (strcmp(name, "float64") == 0) t.bits = 64;
    else if (strcmp(name, "float16") == 0) t.bits = 16;
    else if (strcmp(name, "bfloat16") == 0) { t.code = kDLBfloat; t.bits = 16; }
    return t;
}

const char *tt_dtype_name(DLDataType t)
{
    if (t.code == kDLBfloat) return "bfloat16";
    return t.bits == 16 ? "float16" : t.bits == 32 ? "float32" : "float64";
}

double *tt_to_double(const tt *x)
{
    double *d = malloc((size_t)(x->numel > 0 ? x->numel : 1) * sizeof *d);
    if (d == NULL) return NULL;
    for (int64_t i = 0; i < x->numel; i++) d[i] = tt_get(x, i);
    return d;
}

tt_err tt_compare(const tt *x, const double *ref)
{
    tt_err e = {0, 0, 0, -1};
    double refmax = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        double a = tt_get(x, i), r = ref[i];
        if (isinf(r) || isinf(a) || isnan(a) || isnan(r)) {
            if (!(isinf(r) && isinf(a) && (r > 0) == (a > 0))) {
                if (e.bad++ == 0) e.first_bad = i;
            }
            continue;
        }
        if (fabs(r) > refmax) refmax = fabs(r);
        if (fabs(a - r) > e.max_abs) e.max_abs = fabs(a - r);
    }
    e.norm = e.max_abs / (refmax > 1 ? refmax : 1);
    return e;
}

/* ---- dense-masked reference --------------------------------------------- */

int64_t ref_tokens(const ref_problem *r)
{
    int64_t n = 1;
    for (int i = 0; i < r->rank; i++) n *= r->S[i];
    return n;
}

int64_t ref_window(const ref_problem *r)
{
    int64_t w = 1;
    for (int i = 0; i < r->rank; i++) w *= r->K[i];
    return w;
}

void ref_window_1d(int64_t L, int K, int d, int s, int causal, int64_t i, int64_t *a, int64_t *b)
{
    int64_t g = i % d, u = i / d, n = (L - g + d - 1) / d, p;
    int64_t rl = K / 2, rr = K - 1 - rl;
    if (causal) {
        p = (u / s) * s + s - 1;
        if (p > n - 1) p = n - 1;
        *a = p - K + 1 > 0 ? p - K + 1 : 0;
        *b = u + 1;
        return;
    }
    p = (u / s) * s + s / 2;
    if (p > n - 1) p = n - 1;
    *a = (p - rl > 0 ? p - rl : 0) + (p + rr >= n ? n - 1 - rr - p : 0);
    *b = *a + K;
}

/* Membership of key token j in query token i's neighbourhood (all axes), in
 * two parts so that the dense loops below do the query's part once per
 * query.  ref_query_of: per axis, the query's dilation group g, its position
 * u in the group and its window [a, b) in the group's coordinates. */
typedef struct {
    int64_t g[3], u[3], a[3], b[3];
} ref_query;

static void ref_query_of(const ref_problem *r, int64_t i, ref_query *q)
{
    int64_t ci[3];
    for (int ax = r->rank - 1; ax >= 0; ax--) {
        ci[ax] = i % r->S[ax]; i /= r->S[ax];
    }
    for (int ax = 0; ax < r->rank; ax++) {
        q->g[ax] = ci[ax] % r->d[ax];
        q->u[ax] = ci[ax] / r->d[ax];
        ref_window_1d(r->S[ax], r->K[ax], r->d[ax], r->s[ax], r->causal[ax], ci[ax], &q->a[ax], &q->b[ax]);
    }
}

/* Is key token j in the neighbourhood of q?  If so, its slot and RPB index. */
static int ref_member_q(const ref_problem *r, const ref_query *q, int64_t j, int64_t *slot, int64_t *rpb_index)
{
    int64_t cj[3], sl = 0, e = 0;
    for (int ax = r->rank - 1; ax >= 0; ax--) {
        cj[ax] = j % r->S[ax]; j /= r->S[ax];
    }
    for (int ax = 0; ax < r->rank; ax++) {
        int64_t jg = cj[ax] / r->d[ax];
        if (cj[ax] % r->d[ax] != q->g[ax]) return 0;
        if (jg < q->a[ax] || jg >= q->b[ax]) return 0;
        sl = sl * r->K[ax] + (jg - q->a[ax]);
        e = e * (2 * r->K[ax] - 1) + (jg - q->u[ax] + r->K[ax] - 1);
    }
    *slot = sl;
    *rpb_index = e;
    return 1;
}

static int64_t rpb_size(const ref_problem *r)
{
    int64_t e = 1;
    for (int i = 0; i < r->rank; i++) e *= 2 * r->K[i] - 1;
    return e;
}

#define TOK(r, b, i, h, C) ((((b) * ref_tokens(r) + (i)) * (r)->H + (h)) * (C))
#define TOKKV(r, b, i, h, C) ((((b) * ref_tokens(r) + (i)) * (r)->Hkv + (h)) * (C))

static double ddot(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t c = 0; c < n; c++) s += a[c] * b[c];
    return s;
}

void ref_qk(const ref_problem *r, const double *q, const double *k, const double *rpb, double *attn)
{
    int64_t N = ref_tokens(r), W = ref_window(r), E = rpb_size(r);
    for (int64_t x = 0; x < r->B * N * r->H * W; x++) attn[x] = -INFINITY;
    for (int64_t b = 0; b < r->B; b++)
        for (int64_t i = 0; i < N; i++) {
            ref_query qi;
            ref_query_of(r, i, &qi);
            for (int64_t h = 0; h < r->H; h++)
                for (int64_t j = 0; j < N; j++) {
                    int64_t slot, e;
                    if (!ref_member_q(r, &qi, j, &slot, &e)) continue;
                    attn[TOK(r, b, i, h, W) + slot] =
                        ddot(q + TOK(r, b, i, h, r->D), k + TOK(r, b, j, h, r->D), r->D) +
                        (rpb ? rpb[h * E + e] : 0.0);
                }
        }
}

void ref_qk_backward(const ref_problem *r, const double *d_attn, const double *q, const double *k,
                     double *d_q, double *d_k, double *d_rpb)
{
    int64_t N = ref_tokens(r), W = ref_window(r), E = rpb_size(r);
    memset(d_q, 0, sizeof(double) * (size_t)(r->B * N * r->H * r->D));
    memset(d_k, 0, sizeof(double) * (size_t)(r->B * N * r->H * r->D));
    if (d_rpb) memset(d_rpb, 0, sizeof(double) * (size_t)(r->H * E));
    for (int64_t b = 0; b < r->B; b++)
        for (int64_t i = 0; i < N; i++) {
            ref_query qi;
            ref_query_of(r, i, &qi);
            for (int64_t h = 0; h < r->H; h++)
                for (int64_t j = 0; j < N; j++) {
                    int64_t slot, e;
                    if (!ref_member_q(r, &qi, j, &slot, &e)) continue;
                    double g = d_attn[TOK(r, b, i, h, W) + slot];
                    for (int64_t c = 0; c < r->D; c++) {
                        d_q[TOK(r, b, i, h, r->D) + c] += g * k[TOK(r, b, j, h, r->D) + c];
                        d_k[TOK(r, b, j, h, r->D) + c] += g * q[TOK(r, b, i, h, r->D) + c];
                    }
                    if (d_rpb) d_rpb[h * E + e] += g;
                }
        }
}

void ref_av(const ref_problem *r, const double *attn, const double *v, double *out)
{
    int64_t N = ref_tokens(r), W = ref_window(r);
    memset(out, 0, sizeof(double) * (size_t)(r->B * N * r->H * r->Dv));
    for (int64_t b = 0; b < r->B; b++)
        for (int64_t i = 0; i < N; i++) {
            ref_query qi;
            ref_query_of(r, i, &qi);
            for (int64_t h = 0; h < r->H; h++)
                for (int64_t j = 0; j < N; j++) {
                    int64_t slot, e;
                    if (!ref_member_q(r, &qi, j, &slot, &e)) continue;
                    double w = attn[TOK(r, b, i, h, W) + slot];
                    for (int64_t c = 0; c < r->Dv; c++)
                        out[TOK(r, b, i, h, r->Dv) + c] += w * v[TOK(r, b, j, h, r->Dv) + c];
                }
        }
}

void ref_av_backward(const ref_problem *r, const double *d_out, const double *attn, const double *v,
                     double *d_attn, double *d_v)
{
    int64_t N = ref_tokens(r), W = ref_window(r);
    memset(d_attn, 0, sizeof(double) * (size_t)(r->B * N * r->H * W));
    memset(d_v, 0, sizeof(double) * (size_t)(r->B * N * r->H * r->Dv));
    for (int64_t b = 0; b < r->B; b++)
        for (int64_t i = 0; i < N; i++) {
            ref_query qi;
            ref_query_of(r, i, &qi);
            for (int64_t h = 0; h < r->H; h++)
                for (int64_t j = 0; j < N; j++) {
                    int64_t slot, e;
                    if (!ref_member_q(r, &qi, j, &slot, &e)) continue;
                    d_attn[TOK(r, b, i, h, W) + slot] =
                        ddot(d_out + TOK(r, b, i, h, r->Dv), v + TOK(r, b, j, h, r->Dv), r->Dv);
                    for (int64_t c = 0; c < r->Dv; c++)
                        d_v[TOK(r, b, j, h, r->Dv) + c] +=
                            attn[TOK(r, b, i, h, W) + slot] * d_out[TOK(r, b, i, h, r->Dv) + c];
                }
        }
}

/* Dense masked logits of query (b, i, h) over all N keys (qi: ref_query_of
 * i); returns lse. */
static double dense_logits(const ref_problem *r, const double *q, const double *k, const double *rpb,
                           int64_t b, int64_t i, const ref_query *qi, int64_t h, double *z)
{
    int64_t N = ref_tokens(r), E = rpb_size(r), hk = h / (r->H / r->Hkv);
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < N; j++) {
        int64_t slot, e;
        if (!ref_member_q(r, qi, j, &slot, &e)) { z[j] = -INFINITY; continue; }
        z[j] = r->scale * ddot(q + TOK(r, b, i, h, r->D), k + TOKKV(r, b, j, hk, r->D), r->D) +
               (rpb ? rpb[h * E + e] : 0.0);
        if (z[j] > m) m = z[j];
    }
    for (int64_t j = 0; j < N; j++)
        if (z[j] != -INFINITY) s += exp(z[j] - m); /* a masked key adds exp(-inf) = 0 */
    return m + log(s);
}

void ref_fna(const ref_problem *r, const double *q, const double *k, const double *v,
             const double *rpb, double *out, double *lse)
{
    int64_t N = ref_tokens(r);
    double *z = malloc(sizeof(double) * (size_t)N);
    for (int64_t b = 0; b < r->B; b++)
        for (int64_t i = 0; i < N; i++) {
            ref_query qi;
            ref_query_of(r, i, &qi);
            for (int64_t h = 0; h < r->H; h++) {
                int64_t hk = h / (r->H / r->Hkv);
                double l = dense_logits(r, q, k, rpb, b, i, &qi, h, z);
                double *o = out + TOK(r, b, i, h, r->Dv);
                for (int64_t c = 0; c < r->Dv; c++) o[c] = 0;
                for (int64_t j = 0; j < N; j++) {
                    double pj = z[j] == -INFINITY ? 0 : exp(z[j] - l);
                    if (pj == 0) continue;
                    for (int64_t c = 0; c < r->Dv; c++) o[c] += pj * v[TOKKV(r, b, j, hk, r->Dv) + c];
                }
                if (lse) lse[(b * N + i) * r->H + h] = l;
            }
        }
    free(z);
}

void ref_fna_backward(const ref_problem *r, const double *q, const double *k, const double *v,
                      const double *rpb, const double *out, const double *lse, const double *d_out,
                      double *d_q, double *d_k, double *d_v, double *d_rpb)
{
    int64_t N = ref_tokens(r), E = rpb_size(r);
    double *z = malloc(sizeof(double) * (size_t)N);
    memset(d_q, 0, sizeof(double) * (size_t)(r->B * N * r->H * r->D));
    memset(d_k, 0, sizeof(double) * (size_t)(r->B * N * r->Hkv * r->D));
    memset(d_v, 0, sizeof(double) * (size_t)(r->B * N * r->Hkv * r->Dv));
    if (d_rpb) memset(d_rpb, 0, sizeof(double) * (size_t)(r->H * E));
    for (int64_t b = 0; b < r->B; b++)
        for (int64_t i = 0; i < N; i++) {
            ref_query qi;
            ref_query_of(r, i, &qi);
            for (int64_t h = 0; h < r->H; h++) {
                int64_t hk = h / (r->H / r->Hkv);
                const double *dO = d_out + TOK(r, b, i, h, r->Dv);
                double delta = ddot(dO, out + TOK(r, b, i, h, r->Dv), r->Dv);
                double l = lse[(b * N + i) * r->H + h];
                dense_logits(r, q, k, rpb, b, i, &qi, h, z);
                for (int64_t j = 0; j < N; j++) {
                    int64_t slot, e;
                    if (!ref_member_q(r, &qi, j, &slot, &e)) continue;
                    double P = exp(z[j] - l);
                    double dS = P * (ddot(dO, v + TOKKV(r, b, j, hk, r->Dv), r->Dv) - delta);
                    for (int64_t c = 0; c < r->D; c++) {
                        d_q[TOK(r, b, i, h, r->D) + c] += r->scale * dS * k[TOKKV(r, b, j, hk, r->D) + c];
                        d_k[TOKKV(r, b, j, hk, r->D) + c] += r->scale * dS * q[TOK(r, b, i, h, r->D) + c];
                    }
                    for (int64_t c = 0; c < r->Dv; c++) d_v[TOKKV(r, b, j, hk, r->Dv) + c] += P * dO[c];
                    if (d_rpb) d_rpb[h * E + e] += dS;
                }
            }
        }
    free(z);
}
