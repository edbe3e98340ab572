/*
 * validate.c - the one place that checks a request.  Turns the user's params
 * and DLTensors into a natten_problem (canonical 6-D views, resolved sizes),
 * or fails with a message naming the tensor, the dimension and both numbers.
 * Nothing here touches tensor data.
 */
#include "natten-impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BIT(a) (1u << (a))

/* Which roles an op takes (required or optional) and which of them it writes. */
static const struct op_spec {
    const char *name;
    unsigned required, optional, outputs;
} op_spec[NATTEN_OP_COUNT] = {
    [NATTEN_OP_QK_FORWARD] = {"qk_forward", BIT(NATTEN_ARG_Q) | BIT(NATTEN_ARG_K) | BIT(NATTEN_ARG_ATTN),
                              BIT(NATTEN_ARG_RPB), BIT(NATTEN_ARG_ATTN)},
    [NATTEN_OP_QK_BACKWARD] = {"qk_backward",
                               BIT(NATTEN_ARG_D_ATTN) | BIT(NATTEN_ARG_Q) | BIT(NATTEN_ARG_K) |
                                   BIT(NATTEN_ARG_D_Q) | BIT(NATTEN_ARG_D_K),
                               BIT(NATTEN_ARG_D_RPB),
                               BIT(NATTEN_ARG_D_Q) | BIT(NATTEN_ARG_D_K) | BIT(NATTEN_ARG_D_RPB)},
    [NATTEN_OP_AV_FORWARD] = {"av_forward", BIT(NATTEN_ARG_ATTN) | BIT(NATTEN_ARG_V) | BIT(NATTEN_ARG_OUT),
                              0, BIT(NATTEN_ARG_OUT)},
    [NATTEN_OP_AV_BACKWARD] = {"av_backward",
                               BIT(NATTEN_ARG_D_OUT) | BIT(NATTEN_ARG_ATTN) | BIT(NATTEN_ARG_V) |
                                   BIT(NATTEN_ARG_D_ATTN) | BIT(NATTEN_ARG_D_V),
                               0, BIT(NATTEN_ARG_D_ATTN) | BIT(NATTEN_ARG_D_V)},
    [NATTEN_OP_FNA_FORWARD] = {"fna_forward",
                               BIT(NATTEN_ARG_Q) | BIT(NATTEN_ARG_K) | BIT(NATTEN_ARG_V) | BIT(NATTEN_ARG_OUT),
                               BIT(NATTEN_ARG_RPB) | BIT(NATTEN_ARG_LSE),
                               BIT(NATTEN_ARG_OUT) | BIT(NATTEN_ARG_LSE)},
    [NATTEN_OP_FNA_BACKWARD] = {"fna_backward",
                                BIT(NATTEN_ARG_Q) | BIT(NATTEN_ARG_K) | BIT(NATTEN_ARG_V) |
                                    BIT(NATTEN_ARG_OUT) | BIT(NATTEN_ARG_LSE) | BIT(NATTEN_ARG_D_OUT) |
                                    BIT(NATTEN_ARG_D_Q) | BIT(NATTEN_ARG_D_K) | BIT(NATTEN_ARG_D_V),
                                BIT(NATTEN_ARG_RPB) | BIT(NATTEN_ARG_D_RPB),
                                BIT(NATTEN_ARG_D_Q) | BIT(NATTEN_ARG_D_K) | BIT(NATTEN_ARG_D_V) |
                                    BIT(NATTEN_ARG_D_RPB)},
};

static const char *const arg_names[NATTEN_ARG_COUNT] = {
    "q", "k", "v", "attn", "rpb", "out", "lse", "d_out", "d_attn", "d_q", "d_k", "d_v", "d_rpb",
};

/* The shape class of each role: which sizes its logical dims must equal. */
typedef enum { SHAPE_QD, SHAPE_KD, SHAPE_KDV, SHAPE_QDV, SHAPE_QW, SHAPE_LSE, SHAPE_RPB } shape_class;

static const shape_class arg_shape[NATTEN_ARG_COUNT] = {
    [NATTEN_ARG_Q] = SHAPE_QD,     [NATTEN_ARG_K] = SHAPE_KD,      [NATTEN_ARG_V] = SHAPE_KDV,
    [NATTEN_ARG_ATTN] = SHAPE_QW,  [NATTEN_ARG_RPB] = SHAPE_RPB,   [NATTEN_ARG_OUT] = SHAPE_QDV,
    [NATTEN_ARG_LSE] = SHAPE_LSE,  [NATTEN_ARG_D_OUT] = SHAPE_QDV, [NATTEN_ARG_D_ATTN] = SHAPE_QW,
    [NATTEN_ARG_D_Q] = SHAPE_QD,   [NATTEN_ARG_D_K] = SHAPE_KD,    [NATTEN_ARG_D_V] = SHAPE_KDV,
    [NATTEN_ARG_D_RPB] = SHAPE_RPB,
};

const char *natten_op_name(natten_op op) { return op_spec[op].name; }
const char *natten_arg_name(natten_arg a) { return arg_names[a]; }

int natten_arg_is_output(natten_op op, natten_arg a)
{
    return (op_spec[op].outputs & BIT(a)) != 0;
}

const char *natten_dtype_name(natten_dtype t)
{
    static const char *const names[] = {"float32", "float64", "float16", "bfloat16"};
    return names[t];
}

size_t natten_dtype_size(natten_dtype t)
{
    static const size_t sizes[] = {4, 8, 2, 2};
    return sizes[t];
}

#define INVALID(...) natten_error(NATTEN_ERROR_INVALID_ARGUMENT, __VA_ARGS__)
#define UNSUPPORTED(...) natten_error(NATTEN_ERROR_UNSUPPORTED, __VA_ARGS__)

static natten_status dtype_of(const DLTensor *t, const char *name, natten_dtype *out)
{
    DLDataType d = t->dtype;
    if (d.lanes != 1)
        return UNSUPPORTED("%s has %d lanes per element; only scalar elements are supported", name,
                           d.lanes);
    if (d.code == kDLFloat && d.bits == 32) *out = NATTEN_F32;
    else if (d.code == kDLFloat && d.bits == 64) *out = NATTEN_F64;
    else if (d.code == kDLFloat && d.bits == 16) *out = NATTEN_F16;
    else if (d.code == kDLBfloat && d.bits == 16) *out = NATTEN_BF16;
    else if (d.code == kDLFloat || d.code == kDLBfloat || d.code >= 6)
        /* codes 6 and up are DLPack 1.1's float8/float6/float4 formats */
        return UNSUPPORTED("%s has a %d-bit floating-point dtype (code %d); supported are float16, "
                           "bfloat16, float32 and float64", name, d.bits, d.code);
    else
        return INVALID("%s has dtype code %d (%d bits); attention needs floating-point tensors",
                       name, d.code, d.bits);
    return NATTEN_SUCCESS;
}

/* Resolved sizes the tensors are checked against, each with where it came from. */
typedef struct {
    int64_t val;
    char src[48];
} sized;

typedef struct {
    sized b, s[3], hq, hkv, d, dv;
    int have_hkv, have_d, have_dv;
} dims;

/* z->src = "<name>.shape[<i>]", built by hand: this runs on every call, and
 * snprintf here was ~13 % of the host time of a tiny call (perf; i < 10). */
static void set_sized(sized *z, int64_t v, const char *name, int i)
{
    static const char mid[] = ".shape[";
    size_t n = strlen(name);
    if (n > sizeof z->src - sizeof mid - 2) n = sizeof z->src - sizeof mid - 2;
    z->val = v;
    memcpy(z->src, name, n);
    memcpy(z->src + n, mid, sizeof mid - 1);
    n += sizeof mid - 1;
    z->src[n++] = (char)('0' + i);
    z->src[n++] = ']';
    z->src[n] = '\0';
}

/* Fill the reference sizes from the first tensor that defines each. */
static void derive_dims(dims *dm, int n, const DLTensor *const t[NATTEN_ARG_COUNT])
{
    static const natten_arg order[] = {NATTEN_ARG_Q, NATTEN_ARG_K, NATTEN_ARG_V, NATTEN_ARG_ATTN,
                                       NATTEN_ARG_OUT, NATTEN_ARG_D_OUT, NATTEN_ARG_D_ATTN};
    memset(dm, 0, sizeof *dm);
    dm->b.val = -1;
    for (size_t j = 0; j < sizeof order / sizeof order[0]; j++) {
        natten_arg a = order[j];
        const DLTensor *x = t[a];
        if (x == NULL) continue;
        if (dm->b.val < 0) {
            set_sized(&dm->b, x->shape[0], arg_names[a], 0);
            for (int i = 0; i < n; i++)
                set_sized(&dm->s[i], x->shape[1 + i], arg_names[a], 1 + i);
            set_sized(&dm->hq, x->shape[n + 1], arg_names[a], n + 1);
        }
        if (!dm->have_hkv && (a == NATTEN_ARG_K || a == NATTEN_ARG_V)) {
            set_sized(&dm->hkv, x->shape[n + 1], arg_names[a], n + 1);
            dm->have_hkv = 1;
        }
        if (!dm->have_d && (a == NATTEN_ARG_Q || a == NATTEN_ARG_K)) {
            set_sized(&dm->d, x->shape[n + 2], arg_names[a], n + 2);
            dm->have_d = 1;
        }
        if (!dm->have_dv && (a == NATTEN_ARG_V || a == NATTEN_ARG_OUT || a == NATTEN_ARG_D_OUT)) {
            set_sized(&dm->dv, x->shape[n + 2], arg_names[a], n + 2);
            dm->have_dv = 1;
        }
    }
}

static natten_status check_dim(natten_arg a, int i, int64_t got, const sized *want)
{
    if (got != want->val)
        return INVALID("%s.shape[%d]=%lld but %s=%lld; they must match", arg_names[a], i,
                       (long long)got, want->src, (long long)want->val);
    return NATTEN_SUCCESS;
}

/* Check every dim of role a against its shape class. */
static natten_status check_shape(natten_arg a, const DLTensor *x, int n, const dims *dm,
                                 const natten_params *p, int64_t window)
{
    natten_status st;
    shape_class c = arg_shape[a];
    for (int i = 0; i < x->ndim; i++)
        if (x->shape[i] < 0)
            return INVALID("%s.shape[%d]=%lld is negative", arg_names[a], i, (long long)x->shape[i]);
    if (c == SHAPE_RPB) {
        if ((st = check_dim(a, 0, x->shape[0], &dm->hq))) return st;
        for (int i = 0; i < n; i++)
            if (x->shape[1 + i] != 2LL * p->kernel_size[i] - 1)
                return INVALID("%s.shape[%d]=%lld but 2*kernel_size[%d]-1=%lld; they must match",
                               arg_names[a], 1 + i, (long long)x->shape[1 + i], i,
                               2LL * p->kernel_size[i] - 1);
        return NATTEN_SUCCESS;
    }
    if ((st = check_dim(a, 0, x->shape[0], &dm->b))) return st;
    for (int i = 0; i < n; i++)
        if ((st = check_dim(a, 1 + i, x->shape[1 + i], &dm->s[i]))) return st;
    {
        const sized *h = (c == SHAPE_KD || c == SHAPE_KDV) ? &dm->hkv : &dm->hq;
        if ((st = check_dim(a, n + 1, x->shape[n + 1], h))) return st;
    }
    switch (c) {
    case SHAPE_QD:
    case SHAPE_KD:
        return check_dim(a, n + 2, x->shape[n + 2], &dm->d);
    case SHAPE_QDV:
    case SHAPE_KDV:
        return check_dim(a, n + 2, x->shape[n + 2], &dm->dv);
    case SHAPE_QW:
        if (x->shape[n + 2] != window)
            return INVALID("%s.shape[%d]=%lld but the window has %lld slots (product of "
                           "kernel_size); they must match",
                           arg_names[a], n + 2, (long long)x->shape[n + 2], (long long)window);
        return NATTEN_SUCCESS;
    default:
        return NATTEN_SUCCESS;
    }
}

static natten_status check_params(const natten_params *p, const dims *dm, natten_op op,
                                  int has_rpb, int64_t *window)
{
    int n = p->rank;
    *window = 1;
    for (int i = 0; i < n; i++) {
        int K = p->kernel_size[i], d = p->dilation[i], s = p->stride[i];
        if (K < 2)
            return INVALID("kernel_size[%d]=%d but a window needs at least 2 keys", i, K);
        if (d < 1) return INVALID("dilation[%d]=%d but dilation must be >= 1", i, d);
        if (s < 1 || s > K)
            return INVALID("stride[%d]=%d but stride must be in [1, kernel_size[%d]=%d]", i, s, i, K);
        if (p->is_causal[i] != 0 && p->is_causal[i] != 1)
            return INVALID("is_causal[%d]=%d but it must be 0 or 1", i, p->is_causal[i]);
        if ((int64_t)K * d > dm->s[i].val)
            return INVALID("%s=%lld but kernel_size[%d]*dilation[%d]=%lld exceeds it", dm->s[i].src,
                           (long long)dm->s[i].val, i, i, (long long)K * d);
        *window *= K; /* K <= extent <= 2^62, three axes: product fits in int64 after the check below */
        if (*window > ((int64_t)1 << 40))
            return INVALID("the window has more than 2^40 slots (kernel_size product)");
        if (has_rpb && s != 1)
            return INVALID("stride[%d]=%d but relative positional bias needs stride 1 (the bias "
                           "table covers offsets up to kernel_size-1 only)", i, s);
    }
    if (op == NATTEN_OP_FNA_FORWARD || op == NATTEN_OP_FNA_BACKWARD) {
        if (p->has_scale && !isfinite(p->scale))
            return INVALID("scale=%g but it must be finite", p->scale);
    }
    return NATTEN_SUCCESS;
}

/* Element count with overflow detection.  The extents must multiply within
 * int64 even when one of them is 0 (read as 1 here): backends size buffers
 * and strides from the other extents, e.g. the token count, and an empty
 * tensor of 2^40 x 2^40 tokens is no real tensor anyway. */
static int numel_of(const DLTensor *x, int64_t *numel)
{
    int64_t m = 1;
    int empty = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (x->shape[i] == 0) empty = 1;
        else if (__builtin_mul_overflow(m, x->shape[i], &m)) return 0;
    }
    *numel = empty ? 0 : m;
    return 1;
}

/* Byte span [lo, hi) of a tensor relative to its data pointer; 0 on overflow. */
static int span_of(const natten_view *v, size_t esize, int64_t numel, int64_t *lo, int64_t *hi)
{
    int64_t l = 0, h = 0;
    if (numel == 0) {
        *lo = *hi = 0;
        return 1;
    }
    for (int i = 0; i < 6; i++) {
        int64_t e;
        if (v->shape[i] <= 1) continue;
        if (__builtin_mul_overflow(v->shape[i] - 1, v->stride[i], &e)) return 0;
        if (e < 0) { if (__builtin_add_overflow(l, e, &l)) return 0; }
        else if (__builtin_add_overflow(h, e, &h)) return 0;
    }
    if (__builtin_mul_overflow(l, (int64_t)esize, lo)) return 0;
    if (__builtin_mul_overflow(h + 1, (int64_t)esize, hi)) return 0;
    return 1;
}

/* 1 if no two distinct indices of v reach the same element: positive strides,
 * each at least the extent covered by the smaller ones. */
static int nonoverlapping(const natten_view *v)
{
    int idx[6], m = 0;
    for (int i = 0; i < 6; i++)
        if (v->shape[i] > 1) {
            if (v->stride[i] <= 0) return 0;
            idx[m++] = i;
        }
    for (int i = 1; i < m; i++) /* insertion sort by stride */
        for (int j = i; j > 0 && v->stride[idx[j]] < v->stride[idx[j - 1]]; j--) {
            int tmp = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = tmp;
        }
    for (int i = 1; i < m; i++)
        if (v->stride[idx[i]] < v->stride[idx[i - 1]] * v->shape[idx[i - 1]]) return 0;
    return 1;
}

/* Can delta (elements) be written as sum c_i*stride_i with |c_i| < shape_i, over
 * dims ord[0..m-1] sorted by decreasing stride?  Strides are nested, so the
 * dims below level i reach less than one stride_i: try floor and ceil only. */
static int reachable(const natten_view *v, const int *ord, int m, int64_t delta)
{
    if (m == 0) return delta == 0;
    {
        int64_t s = v->stride[ord[0]], q = delta / s;
        for (int64_t c = q - 1; c <= q + 1; c++) {
            if (c <= -v->shape[ord[0]] || c >= v->shape[ord[0]]) continue;
            if (reachable(v, ord + 1, m - 1, delta - c * s)) return 1;
        }
    }
    return 0;
}

/* 1 if views a and b (both non-empty, spans intersecting) may share an element.
 * Proves independence only for the common case of interleaved views of one
 * buffer (same shape and strides, e.g. q/k/v slices of a packed qkv tensor). */
static int may_collide(const natten_view *a, const natten_view *b, size_t esize_a, size_t esize_b)
{
    int ord[6], m = 0;
    int64_t delta;
    if (esize_a != esize_b) return 1;
    if (memcmp(a->shape, b->shape, sizeof a->shape) || memcmp(a->stride, b->stride, sizeof a->stride))
        return 1;
    if (!nonoverlapping(a)) return 1;
    if ((b->data - a->data) % (ptrdiff_t)esize_a) return 1;
    delta = (int64_t)((b->data - a->data) / (ptrdiff_t)esize_a);
    for (int i = 0; i < 6; i++)
        if (a->shape[i] > 1) ord[m++] = i;
    for (int i = 1; i < m; i++)
        for (int j = i; j > 0 && a->stride[ord[j]] > a->stride[ord[j - 1]]; j--) {
            int tmp = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = tmp;
        }
    return reachable(a, ord, m, delta);
}

/* Where a data-less tensor (natten_validate_shapes) appears to live: a fake,
 * well-aligned address, so that natten_has() sees the role and a backend's
 * alignment test passes; never dereferenced. */
#define SHAPES_ONLY_BASE ((uintptr_t)1 << 20)

/* Build the canonical 6-D view of role a (see natten-impl.h). */
static void make_view(natten_view *v, natten_arg a, const DLTensor *x, int n, int shapes_only)
{
    int64_t cstride[6];
    const int64_t *st = x->strides;
    int map[6]; /* logical dim of x for each canonical axis, -1 = padded */
    shape_class c = arg_shape[a];
    if (st == NULL) { /* compact row-major */
        int64_t s = 1;
        /* An overflow here means the element count overflows too (rejected
         * below) or the tensor is empty (strides never used): saturate. */
        for (int i = x->ndim - 1; i >= 0; i--) {
            cstride[i] = s;
            if (x->shape[i] > 1 && __builtin_mul_overflow(s, x->shape[i], &s)) s = INT64_MAX;
        }
        st = cstride;
    }
    for (int i = 0; i < 6; i++) map[i] = -1;
    if (c == SHAPE_RPB) {
        for (int i = 0; i < n; i++) map[1 + i] = 1 + i;
        map[NV_H] = 0;
    } else {
        map[NV_B] = 0;
        for (int i = 0; i < n; i++) map[1 + i] = 1 + i;
        map[NV_H] = n + 1;
        if (c != SHAPE_LSE) map[NV_C] = n + 2;
    }
    for (int i = 0; i < 6; i++) {
        v->shape[i] = map[i] < 0 ? 1 : x->shape[map[i]];
        v->stride[i] = map[i] < 0 ? 0 : st[map[i]];
    }
    /* no arithmetic on a NULL pointer: an empty tensor may come without memory */
    if (shapes_only && x->data == NULL)
        v->data = (char *)(SHAPES_ONLY_BASE + (uintptr_t)x->byte_offset);
    else
        v->data = x->data ? (char *)x->data + x->byte_offset : NULL;
}

static natten_status validate(natten_problem *prob, natten_op op, const natten_params *p,
                              const DLTensor *const t[NATTEN_ARG_COUNT], int shapes_only)
{
    const struct op_spec *spec = &op_spec[op];
    dims dm;
    int n, first = -1;
    int64_t window, numel[NATTEN_ARG_COUNT], lo[NATTEN_ARG_COUNT], hi[NATTEN_ARG_COUNT];
    natten_dtype dt = NATTEN_F32;
    natten_status st;

    memset(prob, 0, sizeof *prob);
    if (p == NULL) return INVALID("params is NULL");
    if (p->rank < 1 || p->rank > 3) return INVALID("params.rank=%d but it must be 1, 2 or 3", p->rank);
    n = p->rank;

    for (int a = 0; a < NATTEN_ARG_COUNT; a++) {
        if ((spec->required & BIT(a)) && t[a] == NULL)
            return INVALID("%s: %s is NULL but it is required", spec->name, arg_names[a]);
        if (t[a] == NULL) continue;
        if (t[a]->shape == NULL && t[a]->ndim > 0) return INVALID("%s.shape is NULL", arg_names[a]);
        if (first < 0) first = a;
    }
    if (t[NATTEN_ARG_D_RPB] && !(op == NATTEN_OP_QK_BACKWARD || t[NATTEN_ARG_RPB]))
        return INVALID("%s: d_rpb is given but rpb is not; there is no bias to differentiate",
                       spec->name);

    /* dtypes and devices */
    for (int a = 0; a < NATTEN_ARG_COUNT; a++) {
        natten_dtype d = NATTEN_F32; /* set by dtype_of; gcc -O1 cannot tell */
        if (t[a] == NULL) continue;
        if ((st = dtype_of(t[a], arg_names[a], &d))) return st;
        if (a == NATTEN_ARG_LSE) {
            if (d != NATTEN_F32)
                return INVALID("lse has dtype %s but it must be float32", natten_dtype_name(d));
            continue;
        }
        if (a == first || (first == NATTEN_ARG_LSE)) dt = d;
        else if (d != dt)
            return INVALID("%s has dtype %s but %s has %s; they must match", arg_names[a],
                           natten_dtype_name(d), arg_names[first], natten_dtype_name(dt));
        if (t[a]->device.device_type != t[first]->device.device_type ||
            (t[a]->device.device_type != kDLCPU &&
             t[a]->device.device_id != t[first]->device.device_id))
            return INVALID("%s is on device (type %d, id %d) but %s is on (type %d, id %d); all "
                           "tensors of a call must be on one device",
                           arg_names[a], t[a]->device.device_type, t[a]->device.device_id,
                           arg_names[first], t[first]->device.device_type, t[first]->device.device_id);
    }
    if (t[NATTEN_ARG_LSE] && (t[NATTEN_ARG_LSE]->device.device_type != t[first]->device.device_type ||
                              (t[first]->device.device_type != kDLCPU &&
                               t[NATTEN_ARG_LSE]->device.device_id != t[first]->device.device_id)))
        return INVALID("lse is on another device than %s; all tensors of a call must be on one device",
                       arg_names[first]);
    {
        DLDeviceType dev = t[first]->device.device_type;
        if (dev != kDLCPU && dev != kDLCUDA && dev != kDLROCM)
            return UNSUPPORTED("tensors are on device type %d; supported are CPU (%d), CUDA (%d) "
                               "and ROCm (%d)", dev, kDLCPU, kDLCUDA, kDLROCM);
    }

    /* ranks first, so that shape indexing below stays in bounds */
    for (int a = 0; a < NATTEN_ARG_COUNT; a++) {
        shape_class c;
        int want;
        if (t[a] == NULL) continue;
        c = arg_shape[a];
        want = c == SHAPE_RPB ? n + 1 : c == SHAPE_LSE ? n + 2 : n + 3;
        if (t[a]->ndim != want)
            return INVALID("%s has %d dimensions but a rank-%d problem needs %d (%s)", arg_names[a],
                           t[a]->ndim, n, want,
                           c == SHAPE_RPB ? "[H, 2K-1 per axis]"
                           : c == SHAPE_LSE ? "[B, spatial.., H]" : "[B, spatial.., H, C]");
    }
    derive_dims(&dm, n, t);
    if ((st = check_params(p, &dm, op, t[NATTEN_ARG_RPB] || t[NATTEN_ARG_D_RPB], &window))) return st;
    for (int a = 0; a < NATTEN_ARG_COUNT; a++)
        if (t[a] && (st = check_shape((natten_arg)a, t[a], n, &dm, p, window))) return st;

    if (dm.have_d && dm.d.val < 1) return INVALID("%s=%lld but the head dim must be >= 1", dm.d.src, (long long)dm.d.val);
    if (dm.have_dv && dm.dv.val < 1) return INVALID("%s=%lld but the head dim must be >= 1", dm.dv.src, (long long)dm.dv.val);
    if (op == NATTEN_OP_FNA_FORWARD || op == NATTEN_OP_FNA_BACKWARD) {
        if (dm.hkv.val == 0 ? dm.hq.val != 0 : dm.hq.val % dm.hkv.val != 0)
            return INVALID("%s=%lld query heads but %s=%lld key/value heads; query heads must be a "
                           "multiple (GQA)", dm.hq.src, (long long)dm.hq.val, dm.hkv.src,
                           (long long)dm.hkv.val);
    } else if (dm.have_hkv && (st = check_dim(t[NATTEN_ARG_K] ? NATTEN_ARG_K : NATTEN_ARG_V, n + 1,
                                              dm.hkv.val, &dm.hq))) {
        return st; /* unfused ops: one head count for all */
    }

    /* fill the problem */
    prob->op = op;
    prob->dtype = dt;
    prob->device = t[first]->device;
    if (prob->device.device_type == kDLCPU) prob->device.device_id = 0;
    prob->rank = n;
    prob->batch = dm.b.val;
    prob->heads = dm.hq.val;
    prob->heads_kv = dm.have_hkv ? dm.hkv.val : dm.hq.val;
    prob->dim_v = dm.have_dv ? dm.dv.val : 0;
    prob->dim = dm.have_d ? dm.d.val : prob->dim_v;
    prob->window = window;
    prob->tokens = 1;
    for (int i = 0; i < 3; i++) {
        int on = i < n;
        prob->extent[i] = on ? dm.s[i].val : 1;
        prob->kernel[i] = on ? p->kernel_size[i] : 1;
        prob->dilation[i] = on ? p->dilation[i] : 1;
        prob->stride[i] = on ? p->stride[i] : 1;
        prob->causal[i] = on ? p->is_causal[i] : 0;
        /* can overflow only for empty tensors (non-empty ones are counted below) */
        if (__builtin_mul_overflow(prob->tokens, prob->extent[i], &prob->tokens))
            return INVALID("the token count (product of the spatial extents) overflows 64 bits");
    }
    prob->scale = p->has_scale ? p->scale : 1.0 / sqrt((double)(prob->dim > 0 ? prob->dim : 1));

    /* sizes, pointers, memory layout */
    for (int a = 0; a < NATTEN_ARG_COUNT; a++) {
        size_t es;
        if (t[a] == NULL) continue;
        es = a == NATTEN_ARG_LSE ? 4 : natten_dtype_size(dt);
        if (t[a]->byte_offset > (uint64_t)PTRDIFF_MAX)
            return INVALID("%s.byte_offset=%llu does not fit a pointer offset", arg_names[a],
                           (unsigned long long)t[a]->byte_offset);
        make_view(&prob->arg[a], (natten_arg)a, t[a], n, shapes_only);
        if (!numel_of(t[a], &numel[a]) || !span_of(&prob->arg[a], es, numel[a], &lo[a], &hi[a]))
            return INVALID("%s: its element count or byte extent overflows 64 bits", arg_names[a]);
        if (numel[a] > 0 && t[a]->data == NULL && !shapes_only)
            return INVALID("%s.data is NULL but it has %lld elements", arg_names[a], (long long)numel[a]);
        if (numel[a] == 0 && prob->arg[a].data == NULL)
            prob->arg[a].data = (char *)(uintptr_t)es; /* present but empty: never dereferenced */
        if ((spec->outputs & BIT(a)) && numel[a] > 0 && !nonoverlapping(&prob->arg[a]))
            return INVALID("%s: its strides make distinct elements share memory; outputs need "
                           "positive, non-overlapping strides", arg_names[a]);
    }
    for (int a = 0; a < NATTEN_ARG_COUNT && !shapes_only; a++) {
        if (!t[a] || !(spec->outputs & BIT(a)) || numel[a] == 0) continue;
        for (int b = 0; b < NATTEN_ARG_COUNT; b++) {
            const char *pa, *pb;
            if (b == a || !t[b] || numel[b] == 0) continue;
            if ((spec->outputs & BIT(b)) && b < a) continue; /* pair already seen */
            pa = prob->arg[a].data;
            pb = prob->arg[b].data;
            if (pa + hi[a] <= pb + lo[b] || pb + hi[b] <= pa + lo[a]) continue;
            if (may_collide(&prob->arg[a], &prob->arg[b], a == NATTEN_ARG_LSE ? 4 : natten_dtype_size(dt),
                            b == NATTEN_ARG_LSE ? 4 : natten_dtype_size(dt)))
                return INVALID("%s overlaps %s in memory; an output may not alias another tensor "
                               "of the call", arg_names[a], arg_names[b]);
        }
    }
    return NATTEN_SUCCESS;
}

natten_status natten_validate(natten_problem *prob, natten_op op, const natten_params *p,
                              const DLTensor *const t[NATTEN_ARG_COUNT])
{
    return validate(prob, op, p, t, 0);
}

natten_status natten_validate_shapes(natten_problem *prob, natten_op op, const natten_params *p,
                                     const DLTensor *const t[NATTEN_ARG_COUNT])
{
    return validate(prob, op, p, t, 1);
}

int natten_inner_contiguous(const natten_problem *p, char *why, size_t len)
{
    for (int a = 0; a < NATTEN_ARG_COUNT; a++) {
        const natten_view *v = &p->arg[a];
        if (!v->data || a == NATTEN_ARG_LSE || a == NATTEN_ARG_RPB || a == NATTEN_ARG_D_RPB) continue;
        if (v->shape[NV_C] > 1 && v->stride[NV_C] != 1) {
            snprintf(why, len, "%s has stride %lld on its last dim; this backend needs it contiguous",
                     arg_names[a], (long long)v->stride[NV_C]);
            return 0;
        }
    }
    return 1;
}
