/*
 * check_errors.c - one test per validation rule: the call fails with the
 * right status, the message names the problem, and every output buffer is
 * bit-identical to its poisoned state afterwards (a failed call writes nothing).
 */
#include "cases.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef DLTensor *tensors[R_COUNT];

/* Base problems: valid as they stand. */
static const ref_problem base2d = {2, 1, 2, 2, 4, 4, {6, 7, 1}, {3, 3, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1};
static const ref_problem gqa2d = {2, 1, 4, 2, 4, 6, {6, 7, 1}, {3, 3, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0};
static const ref_problem empty_batch = {2, 0, 2, 2, 4, 4, {6, 7, 1}, {3, 3, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0};

static int64_t big_shape[8];

#define MUT(name) static void name(tensors T, natten_params *p)
MUT(null_q) { (void)p; T[R_Q] = NULL; }
MUT(null_out) { (void)p; T[R_OUT] = NULL; }
MUT(rank0) { (void)T; p->rank = 0; }
MUT(rank4) { (void)T; p->rank = 4; }
MUT(kernel1) { (void)T; p->kernel_size[1] = 1; }
MUT(dilation0) { (void)T; p->dilation[0] = 0; }
MUT(stride0) { (void)T; p->stride[1] = 0; }
MUT(stride_gt_k) { (void)T; p->stride[1] = 4; }
MUT(causal2) { (void)T; p->is_causal[0] = 2; }
MUT(window_too_big) { (void)T; p->dilation[1] = 3; }
MUT(q_ndim) { (void)p; T[R_Q]->ndim = 4; }
MUT(k_extent) { (void)p; T[R_K]->shape[2] = 6; }
MUT(k_batch) { (void)p; T[R_K]->shape[0] = 2; }
MUT(k_dim) { (void)p; T[R_K]->shape[4] = 3; }
MUT(v_dim_vs_out) { (void)p; T[R_OUT]->shape[4] = 5; }
MUT(attn_window) { (void)p; T[R_ATTN]->shape[4] = 8; }
MUT(k_f64) { (void)p; T[R_K]->dtype.bits = 64; }
MUT(q_int) { (void)p; T[R_Q]->dtype.code = kDLInt; }
MUT(q_fp8) { (void)p; T[R_Q]->dtype.bits = 8; T[R_K]->dtype.bits = 8; T[R_V]->dtype.bits = 8; T[R_OUT]->dtype.bits = 8; if (T[R_RPB]) T[R_RPB]->dtype.bits = 8; }
MUT(float8_code)
{
    (void)p;
    for (int x = 0; x < R_COUNT; x++)
        if (T[x] && x != R_LSE) { T[x]->dtype.code = 10; T[x]->dtype.bits = 8; } /* DLPack 1.1 float8_e4m3fn */
}
MUT(q_lanes) { (void)p; T[R_Q]->dtype.lanes = 2; }
MUT(lse_f64) { (void)p; T[R_LSE]->dtype.bits = 64; }
MUT(lse_shape) { (void)p; T[R_LSE]->shape[3] = 3; }
MUT(rpb_shape) { (void)p; T[R_RPB]->shape[2] = 6; }
MUT(rpb_heads) { (void)p; T[R_RPB]->shape[0] = 3; }
MUT(rpb_stride) { (void)T; p->stride[0] = 2; }
MUT(k_on_gpu) { (void)p; T[R_K]->device.device_type = kDLCUDA; }
MUT(all_vulkan) { (void)p; for (int x = 0; x < R_COUNT; x++) if (T[x] && x != R_LSE) T[x]->device.device_type = kDLVulkan; if (T[R_LSE]) T[R_LSE]->device.device_type = kDLVulkan; }
MUT(gqa_indivisible) { (void)p; T[R_K]->shape[3] = 3; T[R_V]->shape[3] = 3; }
MUT(qk_heads) { (void)p; T[R_K]->shape[3] = 1; }
MUT(out_aliases_q) { (void)p; T[R_OUT]->data = T[R_Q]->data; T[R_OUT]->byte_offset = T[R_Q]->byte_offset; }
MUT(out_zero_stride) { (void)p; T[R_OUT]->strides = big_shape; memset(big_shape, 0, sizeof big_shape); }
MUT(overflow)
{
    (void)p;
    for (int x = 0; x < R_COUNT; x++) {
        if (!T[x]) continue;
        T[x]->shape[0] = (int64_t)1 << 40;                /* batch, or heads of rpb */
        if (x != R_RPB) T[x]->shape[3] = (int64_t)1 << 40; /* heads */
    }
}
MUT(negative) { (void)p; T[R_Q]->shape[4] = -4; }
MUT(null_data) { (void)p; T[R_V]->data = NULL; T[R_V]->byte_offset = 0; }
MUT(drpb_without_rpb) { (void)p; T[R_RPB] = NULL; }
MUT(scale_inf) { (void)T; natten_params_set_scale(p, 1.0 / 0.0); }
MUT(dim_zero) { (void)p; T[R_Q]->shape[4] = 0; T[R_K]->shape[4] = 0; }

static const struct error_case {
    const char *name;
    const ref_problem *prob;
    tc_op op;
    void (*mutate)(tensors, natten_params *);
    natten_status want;
    const char *message; /* must appear in natten_last_error() */
} cases[] = {
    {"required tensor NULL", &base2d, OP_FNA, null_q, NATTEN_ERROR_INVALID_ARGUMENT, "q is NULL"},
    {"output NULL", &base2d, OP_FNA, null_out, NATTEN_ERROR_INVALID_ARGUMENT, "out is NULL"},
    {"rank 0", &base2d, OP_FNA, rank0, NATTEN_ERROR_INVALID_ARGUMENT, "params.rank=0"},
    {"rank 4", &base2d, OP_QK, rank4, NATTEN_ERROR_INVALID_ARGUMENT, "params.rank=4"},
    {"K < 2", &base2d, OP_FNA, kernel1, NATTEN_ERROR_INVALID_ARGUMENT, "kernel_size[1]=1"},
    {"d < 1", &base2d, OP_AV, dilation0, NATTEN_ERROR_INVALID_ARGUMENT, "dilation[0]=0"},
    {"stride 0", &gqa2d, OP_FNA, stride0, NATTEN_ERROR_INVALID_ARGUMENT, "stride[1]=0"},
    {"stride > K", &gqa2d, OP_FNA_BW, stride_gt_k, NATTEN_ERROR_INVALID_ARGUMENT, "stride[1]=4"},
    {"causal not 0/1", &base2d, OP_QK, causal2, NATTEN_ERROR_INVALID_ARGUMENT, "is_causal[0]=2"},
    {"K*d > extent", &base2d, OP_FNA, window_too_big, NATTEN_ERROR_INVALID_ARGUMENT,
     "q.shape[2]=7 but kernel_size[1]*dilation[1]=9 exceeds it"},
    {"wrong ndim", &base2d, OP_FNA, q_ndim, NATTEN_ERROR_INVALID_ARGUMENT, "q has 4 dimensions"},
    {"spatial mismatch", &base2d, OP_QK, k_extent, NATTEN_ERROR_INVALID_ARGUMENT, "k.shape[2]=6 but q.shape[2]=7"},
    {"batch mismatch", &base2d, OP_FNA, k_batch, NATTEN_ERROR_INVALID_ARGUMENT, "k.shape[0]=2 but q.shape[0]=1"},
    {"head dim mismatch", &base2d, OP_QK_BW, k_dim, NATTEN_ERROR_INVALID_ARGUMENT, "k.shape[4]=3 but q.shape[4]=4"},
    {"value dim mismatch", &base2d, OP_FNA, v_dim_vs_out, NATTEN_ERROR_INVALID_ARGUMENT, "out.shape[4]=5 but v.shape[4]=4"},
    {"attn width", &base2d, OP_QK, attn_window, NATTEN_ERROR_INVALID_ARGUMENT, "attn.shape[4]=8 but the window has 9"},
    {"dtype mismatch", &base2d, OP_FNA, k_f64, NATTEN_ERROR_INVALID_ARGUMENT, "k has dtype float64 but q has float32"},
    {"integer dtype", &base2d, OP_FNA, q_int, NATTEN_ERROR_INVALID_ARGUMENT, "q has dtype code 0"},
    {"fp8 dtype", &base2d, OP_FNA, q_fp8, NATTEN_ERROR_UNSUPPORTED, "8-bit floating-point"},
    {"DLPack float8 code", &base2d, OP_FNA, float8_code, NATTEN_ERROR_UNSUPPORTED, "(code 10)"},
    {"vector lanes", &base2d, OP_FNA, q_lanes, NATTEN_ERROR_UNSUPPORTED, "q has 2 lanes"},
    {"lse not float32", &base2d, OP_FNA, lse_f64, NATTEN_ERROR_INVALID_ARGUMENT, "lse has dtype float64"},
    {"lse shape", &base2d, OP_FNA_BW, lse_shape, NATTEN_ERROR_INVALID_ARGUMENT, "lse.shape[3]=3 but q.shape[3]=2"},
    {"rpb shape", &base2d, OP_QK, rpb_shape, NATTEN_ERROR_INVALID_ARGUMENT, "rpb.shape[2]=6 but 2*kernel_size[1]-1=5"},
    {"rpb heads", &base2d, OP_FNA, rpb_heads, NATTEN_ERROR_INVALID_ARGUMENT, "rpb.shape[0]=3 but q.shape[3]=2"},
    {"rpb with stride", &base2d, OP_FNA, rpb_stride, NATTEN_ERROR_INVALID_ARGUMENT, "needs stride 1"},
    {"mixed devices", &base2d, OP_FNA, k_on_gpu, NATTEN_ERROR_INVALID_ARGUMENT, "one device"},
    {"unsupported device", &base2d, OP_QK, all_vulkan, NATTEN_ERROR_UNSUPPORTED, "device type 7"},
    {"GQA heads not divisible", &gqa2d, OP_FNA, gqa_indivisible, NATTEN_ERROR_INVALID_ARGUMENT, "must be a multiple"},
    {"unfused heads differ", &base2d, OP_QK, qk_heads, NATTEN_ERROR_INVALID_ARGUMENT, "k.shape[3]=1 but q.shape[3]=2"},
    {"output aliases input", &base2d, OP_FNA, out_aliases_q, NATTEN_ERROR_INVALID_ARGUMENT, "out overlaps q"},
    {"output overlaps itself", &base2d, OP_FNA, out_zero_stride, NATTEN_ERROR_INVALID_ARGUMENT, "out: its strides"},
    {"element count overflow", &base2d, OP_QK, overflow, NATTEN_ERROR_INVALID_ARGUMENT, "overflows 64 bits"},
    {"negative size", &base2d, OP_FNA, negative, NATTEN_ERROR_INVALID_ARGUMENT, "q.shape[4]=-4 is negative"},
    {"NULL data", &base2d, OP_AV, null_data, NATTEN_ERROR_INVALID_ARGUMENT, "v.data is NULL"},
    {"d_rpb without rpb", &base2d, OP_FNA_BW, drpb_without_rpb, NATTEN_ERROR_INVALID_ARGUMENT, "d_rpb is given but rpb is not"},
    {"non-finite scale", &base2d, OP_FNA, scale_inf, NATTEN_ERROR_INVALID_ARGUMENT, "scale=inf"},
    {"head dim 0", &base2d, OP_QK, dim_zero, NATTEN_ERROR_INVALID_ARGUMENT, "head dim must be >= 1"},
};

START_TEST(validation_rule)
{
    const struct error_case *c = &cases[_i];
    uint64_t rng = 99;
    tc_io io;
    tensors T = {0};
    natten_context *ctx;
    natten_status st;
    char *image[R_COUNT] = {0};
    ck_assert(tc_setup(&io, c->prob, c->op, tt_dtype("float32"), TT_COMPACT, kDLCPU, &rng));
    for (int x = 0; x < R_COUNT; x++) {
        if (!io.t[x]) continue;
        T[x] = &io.t[x]->t;
        if (io.outputs & (1u << x)) {
            tt_poison(io.t[x]);
            image[x] = malloc(io.t[x]->bytes);
            memcpy(image[x], io.t[x]->host, io.t[x]->bytes);
        }
    }
    c->mutate(T, &io.params);
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    st = tc_call(ctx, c->op, &io.params, T);
    ck_assert_msg(st == c->want, "%s: status %s, want %s (%s)", c->name, natten_status_string(st),
                  natten_status_string(c->want), natten_last_error());
    ck_assert_msg(strstr(natten_last_error(), c->message) != NULL, "%s: message '%s' lacks '%s'", c->name,
                  natten_last_error(), c->message);
    for (int x = 0; x < R_COUNT; x++)
        if (image[x]) {
            ck_assert_msg(tt_buffer_equal(io.t[x], image[x]), "%s: %s was written by a failed call", c->name,
                          tc_role_names[x]);
            free(image[x]);
        }
    natten_context_destroy(ctx);
    tc_teardown(&io);
}
END_TEST

START_TEST(null_context)
{
    uint64_t rng = 1;
    tc_io io;
    ck_assert(tc_setup(&io, &base2d, OP_FNA, tt_dtype("float32"), TT_COMPACT, kDLCPU, &rng));
    ck_assert_int_eq(tc_run(NULL, &io), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert(strstr(natten_last_error(), "ctx is NULL"));
    tc_teardown(&io);
}
END_TEST

START_TEST(null_params)
{
    uint64_t rng = 1;
    tc_io io;
    tensors T = {0};
    natten_context *ctx;
    ck_assert(tc_setup(&io, &base2d, OP_FNA, tt_dtype("float32"), TT_COMPACT, kDLCPU, &rng));
    for (int x = 0; x < R_COUNT; x++) T[x] = io.t[x] ? &io.t[x]->t : NULL;
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(tc_call(ctx, OP_FNA, NULL, T), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert(strstr(natten_last_error(), "params is NULL"));
    natten_context_destroy(ctx);
    tc_teardown(&io);
}
END_TEST

START_TEST(context_and_params_api)
{
    natten_context *ctx;
    natten_params p;
    natten_backend_info info;
    int k[3] = {3, 3, 3};
    ck_assert_int_eq(natten_context_create(NULL), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(natten_params_init(NULL, 1, k), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(natten_params_init(&p, 0, k), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(natten_params_init(&p, 2, NULL), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(natten_backend_get_info(-1, &info), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(natten_backend_get_info(natten_backend_count(), &info), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(natten_backend_get_info(0, NULL), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ctx, "no-such-backend"), NATTEN_ERROR_BACKEND_UNAVAILABLE);
    ck_assert(strstr(natten_last_error(), "no backend named 'no-such-backend'"));
    ck_assert_int_eq(natten_context_set_num_threads(ctx, -1), NATTEN_ERROR_INVALID_ARGUMENT);
    ck_assert_int_eq(natten_context_set_backend(ctx, "auto"), NATTEN_SUCCESS);
    ck_assert_ptr_null(natten_context_last_backend(ctx));
    natten_context_destroy(ctx);
    natten_context_destroy(NULL); /* a no-op */
    ck_assert_str_eq(natten_status_string(NATTEN_ERROR_UNSUPPORTED), "unsupported");
    ck_assert_str_eq(natten_status_string((natten_status)1234), "unknown status");
}
END_TEST

START_TEST(env_backend_unknown)
{
    natten_context *ctx = (natten_context *)&ctx;
    setenv("NATTEN_BACKEND", "warp-drive", 1);
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_ERROR_BACKEND_UNAVAILABLE);
    ck_assert_ptr_null(ctx);
    ck_assert(strstr(natten_last_error(), "warp-drive"));
    unsetenv("NATTEN_BACKEND");
}
END_TEST

START_TEST(zero_batch_succeeds)
{
    uint64_t rng = 5;
    tc_io io;
    natten_context *ctx;
    ck_assert(tc_setup(&io, &empty_batch, OP_FNA, tt_dtype("float32"), TT_COMPACT, kDLCPU, &rng));
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(tc_run(ctx, &io), NATTEN_SUCCESS);
    natten_context_destroy(ctx);
    tc_teardown(&io);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("validation");
    SRunner *sr;
    int failed;
    tcase_add_loop_test(tc, validation_rule, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, null_context);
    tcase_add_test(tc, null_params);
    tcase_add_test(tc, context_and_params_api);
    tcase_add_test(tc, env_backend_unknown);
    tcase_add_test(tc, zero_batch_succeeds);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
