/*
 * check_limits.c - sizes at the edges: element counts and byte extents that
 * overflow int64, strides that overflow, extents and kernel sizes near 2^31,
 * windows beyond the 2^40-slot limit, zero-size dimensions, and 64-bit
 * indexing (tensors whose elements lie more than 2^31 elements apart).
 *
 * No test needs much memory: overflowing or huge tensors are either empty,
 * rejected before any byte is read, or broadcast inputs (stride 0) over a tiny
 * buffer; the far-apart tensors live in sparse anonymous mappings of which
 * only a few pages are ever touched.
 */
#include "cases.h"

#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const DLDataType F32 = {kDLFloat, 32, 1};

/* A DLTensor over caller-given memory. */
typedef struct {
    DLTensor t;
    int64_t shape[8], strides[8];
} view;

/* The logical shape of role x (see natten.h) for a problem of these sizes. */
static int role_shape(tc_role x, int rank, int64_t B, int64_t H, int64_t D, const int64_t *L,
                      const int *K, int64_t *shape)
{
    int nd = 0;
    int64_t W = 1;
    for (int i = 0; i < rank; i++) W *= K[i];
    if (x == R_RPB || x == R_DRPB) {
        shape[nd++] = H;
        for (int i = 0; i < rank; i++) shape[nd++] = 2 * (int64_t)K[i] - 1;
        return nd;
    }
    shape[nd++] = B;
    for (int i = 0; i < rank; i++) shape[nd++] = L[i];
    shape[nd++] = H;
    if (x == R_LSE) return nd;
    shape[nd++] = (x == R_ATTN || x == R_DATTN) ? W : D;
    return nd;
}

/* Roles of each op (rpb/d_rpb included where the op takes them). */
static unsigned op_roles(tc_op op, int with_rpb, unsigned *outputs)
{
#define B_(x) (1u << (x))
    static const unsigned in[OP_COUNT] = {
        B_(R_Q) | B_(R_K),
        B_(R_DATTN) | B_(R_Q) | B_(R_K),
        B_(R_ATTN) | B_(R_V),
        B_(R_DOUT) | B_(R_ATTN) | B_(R_V),
        B_(R_Q) | B_(R_K) | B_(R_V),
        B_(R_Q) | B_(R_K) | B_(R_V) | B_(R_OUT) | B_(R_LSE) | B_(R_DOUT),
    };
    static const unsigned out[OP_COUNT] = {
        B_(R_ATTN), B_(R_DQ) | B_(R_DK), B_(R_OUT), B_(R_DATTN) | B_(R_DV), B_(R_OUT) | B_(R_LSE),
        B_(R_DQ) | B_(R_DK) | B_(R_DV),
    };
    unsigned i = in[op], o = out[op];
    if (with_rpb) {
        if (op == OP_QK || op == OP_FNA) i |= B_(R_RPB);
        if (op == OP_QK_BW) o |= B_(R_DRPB);
        if (op == OP_FNA_BW) { i |= B_(R_RPB); o |= B_(R_DRPB); }
    }
    *outputs = o;
    return i | o;
#undef B_
}

static natten_status call_op(natten_context *ctx, tc_op op, const natten_params *p, DLTensor *T[R_COUNT])
{
    switch (op) {
    case OP_QK: return natten_qk_forward(ctx, p, T[R_Q], T[R_K], T[R_RPB], T[R_ATTN]);
    case OP_QK_BW: return natten_qk_backward(ctx, p, T[R_DATTN], T[R_Q], T[R_K], T[R_DQ], T[R_DK], T[R_DRPB]);
    case OP_AV: return natten_av_forward(ctx, p, T[R_ATTN], T[R_V], T[R_OUT]);
    case OP_AV_BW: return natten_av_backward(ctx, p, T[R_DOUT], T[R_ATTN], T[R_V], T[R_DATTN], T[R_DV]);
    case OP_FNA: return natten_fna_forward(ctx, p, T[R_Q], T[R_K], T[R_V], T[R_RPB], T[R_OUT], T[R_LSE]);
    default:
        return natten_fna_backward(ctx, p, T[R_Q], T[R_K], T[R_V], T[R_RPB], T[R_OUT], T[R_LSE], T[R_DOUT],
                                   T[R_DQ], T[R_DK], T[R_DV], T[R_DRPB]);
    }
}

/* Every role of op over a problem of these sizes; each tensor's data is
 * `data` (may be NULL) and, if bcast, all its strides are 0. */
static void build(view v[R_COUNT], DLTensor *T[R_COUNT], tc_op op, int with_rpb, int rank, int64_t B,
                  int64_t H, int64_t D, const int64_t *L, const int *K, void *data, int bcast)
{
    unsigned outs, roles = op_roles(op, with_rpb, &outs);
    for (int x = 0; x < R_COUNT; x++) {
        T[x] = NULL;
        if (!(roles & (1u << x))) continue;
        memset(&v[x], 0, sizeof v[x]);
        v[x].t.ndim = role_shape((tc_role)x, rank, B, H, D, L, K, v[x].shape);
        v[x].t.shape = v[x].shape;
        v[x].t.strides = bcast ? v[x].strides : NULL; /* zeros */
        v[x].t.dtype = F32;
        v[x].t.device.device_type = kDLCPU;
        v[x].t.data = data;
        T[x] = &v[x].t;
    }
}

static void params_for(natten_params *p, int rank, const int *K)
{
    ck_assert_int_eq(natten_params_init(p, rank, K), NATTEN_SUCCESS);
}

/* ---- overflow --------------------------------------------------------------- */

/* Element counts beyond int64: every op says INVALID_ARGUMENT, reads and writes nothing. */
START_TEST(element_count_overflows)
{
    tc_op op = (tc_op)_i;
    natten_context *ctx;
    natten_params p;
    view v[R_COUNT];
    DLTensor *T[R_COUNT];
    float buf[4] = {1, 2, 3, 4}, before[4];
    int K[1] = {3};
    int64_t L[1] = {(int64_t)1 << 21};
    memcpy(before, buf, sizeof buf);
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    params_for(&p, 1, K);
    /* B * L * H * D = 2^84 */
    build(v, T, op, 0, 1, (int64_t)1 << 21, (int64_t)1 << 21, (int64_t)1 << 21, L, K, buf, 1);
    ck_assert_int_eq(call_op(ctx, op, &p, T), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(natten_last_error(), "overflows") != NULL, "message: %s", natten_last_error());
    ck_assert(memcmp(buf, before, sizeof buf) == 0);
    natten_context_destroy(ctx);
}
END_TEST

/* 2^61 float64 elements fit int64 but their bytes do not. */
START_TEST(byte_extent_overflows)
{
    natten_context *ctx;
    natten_params p;
    view v[R_COUNT];
    DLTensor *T[R_COUNT];
    double buf[4] = {0};
    int K[1] = {3};
    int64_t L[1] = {(int64_t)1 << 61};
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    params_for(&p, 1, K);
    build(v, T, OP_AV, 0, 1, 1, 1, 1, L, K, buf, 1);
    /* v compact (NULL strides): its byte span is 2^61 * 8 = 2^64 */
    v[R_V].t.strides = NULL;
    v[R_V].t.dtype.bits = 64;
    v[R_ATTN].t.dtype.bits = 64;
    v[R_OUT].t.dtype.bits = 64;
    ck_assert_int_eq(natten_av_forward(ctx, &p, T[R_ATTN], T[R_V], T[R_OUT]), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(natten_last_error(), "v: its element count or byte extent overflows") != NULL,
                  "message: %s", natten_last_error());
    natten_context_destroy(ctx);
}
END_TEST

/* (extent - 1) * stride beyond int64, positive and negative. */
START_TEST(stride_overflows)
{
    natten_context *ctx;
    natten_params p;
    view v[R_COUNT];
    DLTensor *T[R_COUNT];
    float buf[64] = {0};
    int K[1] = {3};
    int64_t L[1] = {5};
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    params_for(&p, 1, K);
    static const int64_t far[2] = {(int64_t)1 << 62, -((int64_t)1 << 62) - 1}; /* 2 * far overflows */
    for (int j = 0; j < 2; j++) {
        build(v, T, OP_QK, 0, 1, 3, 1, 2, L, K, buf, 1);
        v[R_K].strides[0] = far[j];
        ck_assert_int_eq(natten_qk_forward(ctx, &p, T[R_Q], T[R_K], NULL, T[R_ATTN]),
                         NATTEN_ERROR_INVALID_ARGUMENT);
        ck_assert_msg(strstr(natten_last_error(), "k: its element count or byte extent overflows") != NULL,
                      "message: %s", natten_last_error());
    }
    natten_context_destroy(ctx);
}
END_TEST

/* byte_offset beyond what a pointer can be offset by. */
START_TEST(byte_offset_overflows)
{
    natten_context *ctx;
    natten_params p;
    view v[R_COUNT];
    DLTensor *T[R_COUNT];
    float buf[64] = {0};
    int K[1] = {3};
    int64_t L[1] = {5};
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    params_for(&p, 1, K);
    build(v, T, OP_QK, 0, 1, 1, 1, 2, L, K, buf, 1);
    v[R_Q].t.byte_offset = UINT64_MAX - 3;
    ck_assert_int_eq(natten_qk_forward(ctx, &p, T[R_Q], T[R_K], NULL, T[R_ATTN]), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(natten_last_error(), "byte_offset") != NULL, "message: %s", natten_last_error());
    natten_context_destroy(ctx);
}
END_TEST

/* An empty tensor (B = 0, or H = 0) whose other extents multiply past 2^63
 * (two axes of 2^40): refused cleanly, as no backend could size its token
 * count; no overflow on the way (UBSan build). */
START_TEST(empty_tensor_with_huge_extents)
{
    tc_op op = (tc_op)(_i / 2);
    int zero_heads = _i % 2;
    natten_context *ctx;
    natten_params p;
    view v[R_COUNT];
    DLTensor *T[R_COUNT];
    int K[2] = {3, 3};
    int64_t L[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    params_for(&p, 2, K);
    build(v, T, op, 0, 2, zero_heads ? 1 : 0, zero_heads ? 0 : (int64_t)1 << 20, 4, L, K, NULL, 0);
    ck_assert_int_eq(call_op(ctx, op, &p, T), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(natten_last_error(), "overflows 64 bits") != NULL, "%s: %s", tc_op_names[op],
                  natten_last_error());
    /* the same with extents that fit: success, nothing to do */
    L[0] = L[1] = (int64_t)1 << 20;
    build(v, T, op, 0, 2, zero_heads ? 1 : 0, zero_heads ? 0 : (int64_t)1 << 10, 4, L, K, NULL, 0);
    ck_assert_msg(call_op(ctx, op, &p, T) == NATTEN_SUCCESS, "%s: %s", tc_op_names[op], natten_last_error());
    natten_context_destroy(ctx);
}
END_TEST

/* ---- extents and kernel sizes near 2^31 -------------------------------------- */

/* L = 2^31 + 5 and K = INT_MAX, with B = 0 (nothing to compute): valid, and
 * every op succeeds without touching memory (data pointers are NULL). */
START_TEST(extent_and_kernel_near_2p31)
{
    tc_op op = (tc_op)_i;
    natten_context *ctx;
    natten_params p;
    view v[R_COUNT];
    DLTensor *T[R_COUNT];
    float rpb_cell = 0.5f;
    int K[1] = {INT_MAX};
    int64_t L[1] = {((int64_t)1 << 31) + 5};
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    params_for(&p, 1, K);
    build(v, T, op, 1, 1, 0, 1, 4, L, K, NULL, 0);
    if (T[R_RPB]) { /* [1, 2^32 - 3], broadcast from one cell */
        v[R_RPB].t.data = &rpb_cell;
        v[R_RPB].t.strides = v[R_RPB].strides;
    }
    if (T[R_DRPB]) T[R_DRPB] = NULL; /* d_rpb would be 2^32 real elements */
    ck_assert_msg(call_op(ctx, op, &p, T) == NATTEN_SUCCESS, "%s: %s", tc_op_names[op], natten_last_error());
    if (T[R_RPB]) {
        /* the bias table's 2K-1 in 64 bits: 4294967293, in the message */
        v[R_RPB].shape[1] = 7;
        ck_assert_int_eq(call_op(ctx, op, &p, T), NATTEN_ERROR_INVALID_ARGUMENT);
        ck_assert_msg(strstr(natten_last_error(), "2*kernel_size[0]-1=4294967293") != NULL, "message: %s",
                      natten_last_error());
    }
    natten_context_destroy(ctx);
}
END_TEST

/* K * dilation beyond int: compared with the extent in 64 bits. */
START_TEST(kernel_times_dilation_beyond_int)
{
    natten_context *ctx;
    natten_params p;
    view v[R_COUNT];
    DLTensor *T[R_COUNT];
    int K[1] = {1 << 30};
    int64_t L[1] = {(int64_t)1 << 33};
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    params_for(&p, 1, K);
    p.dilation[0] = 8; /* K * d = 2^33 */
    build(v, T, OP_FNA, 0, 1, 0, 2, 4, L, K, NULL, 0);
    ck_assert_msg(call_op(ctx, OP_FNA, &p, T) == NATTEN_SUCCESS, "%s", natten_last_error());
    L[0] -= 1;
    build(v, T, OP_FNA, 0, 1, 0, 2, 4, L, K, NULL, 0);
    ck_assert_int_eq(call_op(ctx, OP_FNA, &p, T), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(natten_last_error(), "kernel_size[0]*dilation[0]=8589934592 exceeds it") != NULL,
                  "message: %s", natten_last_error());
    natten_context_destroy(ctx);
}
END_TEST

/* A window of more than 2^40 slots is refused (with B = 0: no memory needed). */
START_TEST(window_over_2p40)
{
    natten_context *ctx;
    natten_params p;
    view v[R_COUNT];
    DLTensor *T[R_COUNT];
    int K[3] = {1 << 14, 1 << 14, 1 << 13};
    int64_t L[3] = {1 << 14, 1 << 14, 1 << 13};
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    params_for(&p, 3, K);
    build(v, T, OP_FNA, 0, 3, 0, 1, 4, L, K, NULL, 0);
    ck_assert_int_eq(call_op(ctx, OP_FNA, &p, T), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(natten_last_error(), "2^40") != NULL, "message: %s", natten_last_error());
    K[2] = 1 << 12; /* exactly 2^40: allowed */
    L[2] = 1 << 12;
    params_for(&p, 3, K);
    build(v, T, OP_FNA, 0, 3, 0, 1, 4, L, K, NULL, 0);
    ck_assert_msg(call_op(ctx, OP_FNA, &p, T) == NATTEN_SUCCESS, "%s", natten_last_error());
    natten_context_destroy(ctx);
}
END_TEST

/* ---- zero-size dimensions ----------------------------------------------------- */

/* B = 0 or H = 0: success; empty outputs untouched; with B = 0 the bias
 * gradient (which still has H * (2K-1) elements) comes out as exact zeros.
 * Loops over (backend, op, which dim is zero). */
START_TEST(zero_size_dims)
{
    int n_ops = OP_COUNT, backend = _i / (2 * n_ops), rest = _i % (2 * n_ops);
    tc_op op = (tc_op)(rest / 2);
    int zero_heads = rest % 2;
    natten_backend_info info;
    natten_context *ctx;
    natten_params p;
    view v[R_COUNT];
    DLTensor *T[R_COUNT];
    float drpb[4], canary[4], canary0[4];
    int K[2] = {3, 5};
    int64_t L[2] = {4, 6};
    unsigned outs;
    natten_status st;

    ck_assert_int_eq(natten_backend_get_info(backend, &info), NATTEN_SUCCESS);
    if (!info.available || info.device_type != kDLCPU) return; /* CPU tensors only here */
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ctx, info.name), NATTEN_SUCCESS);
    params_for(&p, 2, K);
    for (int i = 0; i < 4; i++) canary[i] = canary0[i] = (float)NAN;
    op_roles(op, 1, &outs);
    build(v, T, op, 1, 2, zero_heads ? 3 : 0, zero_heads ? 0 : 2, 4, L, K, canary, 0);
    if (T[R_RPB]) { v[R_RPB].t.data = canary; v[R_RPB].t.strides = v[R_RPB].strides; } /* broadcast input */
    if (T[R_DRPB] && zero_heads) { /* empty too: must stay untouched */
        for (int i = 0; i < 4; i++) drpb[i] = (float)NAN;
        v[R_DRPB].t.data = drpb;
    } else if (T[R_DRPB]) {
        T[R_DRPB] = NULL; /* B = 0 with d_rpb: empty_batch_bias_gradient_is_zero */
    }
    st = call_op(ctx, op, &p, T);
    if (st == NATTEN_ERROR_UNSUPPORTED) {
        printf("limits %-8s %-12s zero %s: unsupported (%s)\n", info.name, tc_op_names[op],
               zero_heads ? "heads" : "batch", natten_last_error());
        natten_context_destroy(ctx);
        return;
    }
    ck_assert_msg(st == NATTEN_SUCCESS, "%s %s with %s = 0: %s", info.name, tc_op_names[op],
                  zero_heads ? "H" : "B", natten_last_error());
    ck_assert_msg(memcmp(canary, canary0, sizeof canary) == 0, "%s %s: an empty tensor's memory was written",
                  info.name, tc_op_names[op]);
    for (int i = 0; T[R_DRPB] && i < 4; i++) ck_assert(isnan(drpb[i]));
    (void)outs;
    natten_context_destroy(ctx);
}
END_TEST

/* d_rpb with B = 0 must be zeros: the gradient of an empty sum. */
START_TEST(empty_batch_bias_gradient_is_zero)
{
    int backend = _i / 2;
    tc_op op = _i % 2 ? OP_FNA_BW : OP_QK_BW;
    natten_backend_info info;
    natten_context *ctx;
    natten_params p;
    view v[R_COUNT];
    DLTensor *T[R_COUNT];
    static float drpb[2 * 5 * 9];
    float one = 1.0f;
    int K[2] = {3, 5};
    int64_t L[2] = {4, 6};
    natten_status st;

    ck_assert_int_eq(natten_backend_get_info(backend, &info), NATTEN_SUCCESS);
    if (!info.available || info.device_type != kDLCPU) return;
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ctx, info.name), NATTEN_SUCCESS);
    params_for(&p, 2, K);
    build(v, T, op, 1, 2, 0, 2, 4, L, K, NULL, 0);
    if (T[R_RPB]) { v[R_RPB].t.data = &one; v[R_RPB].t.strides = v[R_RPB].strides; }
    for (size_t i = 0; i < sizeof drpb / sizeof drpb[0]; i++) drpb[i] = (float)NAN;
    v[R_DRPB].t.data = drpb;
    st = call_op(ctx, op, &p, T);
    if (st == NATTEN_ERROR_UNSUPPORTED) {
        printf("limits %-8s %-12s empty batch with d_rpb: unsupported\n", info.name, tc_op_names[op]);
        natten_context_destroy(ctx);
        return;
    }
    ck_assert_msg(st == NATTEN_SUCCESS, "%s %s: %s", info.name, tc_op_names[op], natten_last_error());
    for (size_t i = 0; i < sizeof drpb / sizeof drpb[0]; i++)
        ck_assert_msg(drpb[i] == 0.0f && !signbit(drpb[i]), "%s %s: d_rpb[%zu] = %g with B = 0, want 0",
                      info.name, tc_op_names[op], i, (double)drpb[i]);
    natten_context_destroy(ctx);
}
END_TEST

/* L = 0 (an empty spatial axis) cannot hold a window: INVALID, not success. */
START_TEST(zero_extent_is_invalid)
{
    natten_context *ctx;
    natten_params p;
    view v[R_COUNT];
    DLTensor *T[R_COUNT];
    int K[1] = {3};
    int64_t L[1] = {0};
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    params_for(&p, 1, K);
    build(v, T, OP_QK, 0, 1, 1, 1, 4, L, K, NULL, 0);
    ck_assert_int_eq(call_op(ctx, OP_QK, &p, T), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(natten_last_error(), "exceeds it") != NULL, "message: %s", natten_last_error());
    natten_context_destroy(ctx);
}
END_TEST

/* ---- 64-bit indexing ------------------------------------------------------------ */

/* Each tensor of the op gets batch stride FAR (> 2^31 elements) inside its own
 * sparse mapping, so every offset of batch 1 exceeds 32 bits; the results
 * must equal naive on compact copies.  Loops over (backend, op). */
#define FAR (((int64_t)1 << 31) + 17)

typedef struct {
    DLTensor t;
    int64_t strides[TT_MAXDIM];
    void *map;
    size_t bytes;
} far_tensor;

static int far_new(far_tensor *f, const tt *like)
{
    size_t es = like->t.dtype.bits / 8u;
    int64_t s = 1;
    f->t = like->t;
    f->t.byte_offset = 0;
    for (int i = like->t.ndim - 1; i >= 1; i--) { f->strides[i] = s; s *= like->shape[i]; }
    f->strides[0] = FAR;
    f->t.strides = f->strides;
    f->bytes = (size_t)(FAR * (like->shape[0] - 1) + s) * es;
    f->map = mmap(NULL, f->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (f->map == MAP_FAILED) return 0;
    f->t.data = f->map;
    return 1;
}

/* Copy logical values between a test tensor and a far tensor (same shape, dtype). */
static void far_copy(far_tensor *f, const tt *x, int to_far)
{
    size_t es = x->t.dtype.bits / 8u;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t off = 0, lin = i, xo = 0;
        for (int d = x->t.ndim - 1; d >= 0; d--) {
            off += (lin % x->shape[d]) * f->strides[d];
            xo += (lin % x->shape[d]) * x->strides[d];
            lin /= x->shape[d];
        }
        xo += (int64_t)(x->t.byte_offset / es);
        if (to_far) memcpy((char *)f->map + off * (int64_t)es, x->host + xo * (int64_t)es, es);
        else memcpy(x->host + xo * (int64_t)es, (char *)f->map + off * (int64_t)es, es);
    }
}

START_TEST(offsets_beyond_2p31)
{
    int backend = _i / OP_COUNT;
    tc_op op = (tc_op)(_i % OP_COUNT);
    natten_backend_info info;
    natten_context *ctx, *ref_ctx;
    static const ref_problem prob = {2, 2, 2, 2, 4, 4, {5, 6, 1}, {3, 2, 1}, {1, 2, 1}, {1, 1, 1}, {0, 1, 0}, 0, 1};
    uint64_t rng = 7;
    tc_io ref, io;
    far_tensor far[R_COUNT];
    DLTensor *T[R_COUNT] = {0};
    natten_status st;

    ck_assert_int_eq(natten_backend_get_info(backend, &info), NATTEN_SUCCESS);
    if (!info.available || info.device_type != kDLCPU) return;
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_create(&ref_ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ctx, info.name), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ref_ctx, "naive"), NATTEN_SUCCESS);
    ck_assert(tc_setup(&ref, &prob, op, F32, TT_COMPACT, kDLCPU, &rng));
    rng = 7;
    ck_assert(tc_setup(&io, &prob, op, F32, TT_COMPACT, kDLCPU, &rng));
    ck_assert_int_eq(tc_run(ref_ctx, &ref), NATTEN_SUCCESS);
    memset(far, 0, sizeof far);
    for (int x = 0; x < R_COUNT; x++) {
        if (io.t[x] == NULL) continue;
        if (io.t[x]->t.ndim < 4) { /* rpb, d_rpb: small, compact */
            if (io.outputs & (1u << x)) tt_poison(io.t[x]);
            T[x] = &io.t[x]->t;
            continue;
        }
        if (!far_new(&far[x], io.t[x])) {
            printf("limits: offsets_beyond_2p31 skipped: cannot map %zu bytes sparse\n", far[x].bytes);
            for (int y = 0; y < x; y++) if (far[y].map) munmap(far[y].map, far[y].bytes);
            tc_teardown(&ref); tc_teardown(&io);
            natten_context_destroy(ctx); natten_context_destroy(ref_ctx);
            return;
        }
        if (io.outputs & (1u << x)) tt_poison(io.t[x]);
        far_copy(&far[x], io.t[x], 1);
        T[x] = &far[x].t;
    }
    st = call_op(ctx, op, &io.params, T);
    if (st == NATTEN_ERROR_UNSUPPORTED) {
        printf("limits %-8s %-12s offsets beyond 2^31: unsupported\n", info.name, tc_op_names[op]);
    } else {
        ck_assert_msg(st == NATTEN_SUCCESS, "%s %s: %s", info.name, tc_op_names[op], natten_last_error());
        for (int x = 0; x < R_COUNT; x++) {
            double *want;
            tt_err e;
            if (!(io.outputs & (1u << x))) continue;
            if (far[x].map) far_copy(&far[x], io.t[x], 0);
            want = tt_to_double(ref.t[x]);
            e = tt_compare(io.t[x], want);
            ck_assert_msg(e.bad == 0 && e.norm <= 1e-4, "%s %s: %s differs from compact naive by %.3g (%lld bad)",
                          info.name, tc_op_names[op], tc_role_names[x], e.norm, (long long)e.bad);
            free(want);
        }
    }
    for (int x = 0; x < R_COUNT; x++) if (far[x].map) munmap(far[x].map, far[x].bytes);
    tc_teardown(&ref);
    tc_teardown(&io);
    natten_context_destroy(ctx);
    natten_context_destroy(ref_ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("limits");
    TCase *ov = tcase_create("overflow"), *big = tcase_create("near 2^31"), *zero = tcase_create("zero size"),
          *idx = tcase_create("64-bit indexing");
    SRunner *sr;
    int failed, nb = natten_backend_count();
    tcase_add_loop_test(ov, element_count_overflows, 0, OP_COUNT);
    tcase_add_test(ov, byte_extent_overflows);
    tcase_add_test(ov, stride_overflows);
    tcase_add_test(ov, byte_offset_overflows);
    tcase_add_loop_test(ov, empty_tensor_with_huge_extents, 0, 2 * OP_COUNT);
    tcase_add_loop_test(big, extent_and_kernel_near_2p31, 0, OP_COUNT);
    tcase_add_test(big, kernel_times_dilation_beyond_int);
    tcase_add_test(big, window_over_2p40);
    tcase_add_loop_test(zero, zero_size_dims, 0, nb * 2 * OP_COUNT);
    tcase_add_loop_test(zero, empty_batch_bias_gradient_is_zero, 0, nb * 2);
    tcase_add_test(zero, zero_extent_is_invalid);
    tcase_add_loop_test(idx, offsets_beyond_2p31, 0, nb * OP_COUNT);
    tcase_set_timeout(idx, 120);
    suite_add_tcase(s, ov);
    suite_add_tcase(s, big);
    suite_add_tcase(s, zero);
    suite_add_tcase(s, idx);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
