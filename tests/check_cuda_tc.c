/*
 * check_cuda_tc.c - the tensor-core backend (cuda-tc) against the naive
 * reference on the same inputs, on problems larger than the equivalence
 * suite's and on the edge cases of its tiling: extents that are not a multiple
 * of the tile, K = L (dense attention), even K, dilation with L mod d != 0,
 * causal on each axis, stride = K, GQA/MQA, head dims 32/64/128, fp16 and
 * bf16, compact and heads-first layouts; plus refusals (with reasons) and
 * determinism of the backward.
 *
 * Exits 77 (skip) when the backend is not built or no GPU of compute
 * capability 8.0 or more is present.  Runs without forking (CUDA cannot be
 * used in a child after the parent touched it).
 */
#include "cases.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKEND "cuda-tc"

static uint64_t seed;

/* The equivalence suite's tolerances (normalised max error), not loosened. */
static const struct {
    const char *dtype;
    double limit;
} tols[] = {{"float16", 1e-2}, {"bfloat16", 5e-2}};

/* rank, B, H, Hkv, D, Dv, S, K, d, s, causal, scale, rpb */
static const ref_problem cases[] = {
    /* extent not a multiple of the 64-row tile; two batches */
    {1, 2, 2, 2, 32, 32, {100, 1, 1}, {7, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    /* K = L on both axes: dense attention */
    {2, 1, 2, 2, 64, 64, {12, 12, 1}, {12, 12, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    /* even K */
    {2, 1, 2, 2, 32, 32, {15, 17, 1}, {4, 6, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    /* dilation with L mod d != 0 */
    {2, 1, 2, 2, 64, 64, {23, 19, 1}, {3, 5, 1}, {3, 2, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    /* causal on each axis */
    {3, 1, 2, 2, 32, 32, {6, 7, 8}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 0, 0}, 0, 0},
    {3, 1, 2, 2, 32, 32, {6, 7, 8}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 0}, 0, 0},
    {3, 1, 2, 2, 32, 32, {6, 7, 8}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 0, 1}, 0, 0},
    /* stride = K (blocked attention) */
    {2, 1, 2, 2, 64, 64, {18, 20, 1}, {3, 5, 1}, {1, 1, 1}, {3, 5, 1}, {0, 0, 0}, 0, 0},
    /* GQA and MQA, D 128 */
    {2, 1, 4, 2, 128, 128, {14, 14, 1}, {5, 5, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    {1, 1, 4, 1, 128, 128, {70, 1, 1}, {9, 1, 1}, {2, 1, 1}, {1, 1, 1}, {1, 0, 0}, 0.2, 0},
    /* everything at once, 3-D, D 128 */
    {3, 1, 2, 1, 128, 128, {7, 9, 10}, {3, 4, 5}, {2, 1, 2}, {1, 2, 1}, {0, 1, 0}, 0, 0},
    /* several full tiles per block (masking only at the window edges) */
    {2, 1, 1, 1, 128, 128, {40, 40, 1}, {13, 13, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    /* a wide 1-D window with dilation, stride and causal */
    {1, 1, 2, 2, 64, 64, {300, 1, 1}, {65, 1, 1}, {2, 1, 1}, {4, 1, 1}, {1, 0, 0}, 0, 0},
};

/* The Hopper configuration (wgmma, sm_90a) is refused, with one of these
 * reasons, on devices other than compute capability 9.0 and by builds
 * without sm_90a; on an sm_90 device of an sm_90a build it runs. */
#define WGMMA_CONFIG 10
#define WGMMA_NAME "wg2x64-n64-sm90a"
static int wgmma_refusal(const char *why)
{
    return (strstr(why, "needs sm_90a, device") != NULL && strstr(why, "is sm_90") == NULL) ||
           strstr(why, "needs sm_90a kernels, which this build lacks") != NULL;
}

/* Run op on case r with the backend on device tensors (layout) and with naive
 * on host tensors of the same values; compare every output.  may_refuse: the
 * Hopper configuration is chosen, and a refusal with its reason is a pass. */
static void compare_r(const ref_problem *r, tc_op op, const char *dtype, double limit, tt_layout layout,
                      natten_context *ctx, int may_refuse)
{
    natten_context *ref_ctx;
    uint64_t rng = seed ^ ((uint64_t)op * 7919u + (uint64_t)(r - cases) * 104729u), rng2 = rng;
    tc_io ref, io;
    natten_status st;
    tt_err e;
    int x;
    char desc[256];
    tc_describe(r, desc, sizeof desc);
    ck_assert_int_eq(natten_context_create(&ref_ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ref_ctx, "naive"), NATTEN_SUCCESS);
    ck_assert(tc_setup(&ref, r, op, tt_dtype(dtype), TT_COMPACT, kDLCPU, &rng));
    ck_assert(tc_setup(&io, r, op, tt_dtype(dtype), layout, kDLCUDA, &rng2));
    ck_assert_msg(tc_run(ref_ctx, &ref) == NATTEN_SUCCESS, "naive: %s", natten_last_error());
    st = tc_run(ctx, &io);
    if (may_refuse && st == NATTEN_ERROR_UNSUPPORTED && wgmma_refusal(natten_last_error())) {
        printf("refused (configuration %d): %s\n", WGMMA_CONFIG, natten_last_error());
        tc_teardown(&ref);
        tc_teardown(&io);
        natten_context_destroy(ref_ctx);
        return;
    }
    ck_assert_msg(st == NATTEN_SUCCESS, "%s %s %s on %s: %s", BACKEND, tc_op_names[op], dtype, desc,
                  natten_last_error());
    ck_assert_str_eq(natten_context_last_backend(ctx), BACKEND);
    x = tc_compare_runs(&io, &ref, limit, &e);
    ck_assert_msg(x < 0, "%s %s %s on %s: %s differs from naive: normalised %.3g (limit %.1g), %lld bad; seed %llu",
                  BACKEND, tc_op_names[op], dtype, desc, tc_role_names[x], e.norm, limit, (long long)e.bad,
                  (unsigned long long)seed);
    tc_teardown(&ref);
    tc_teardown(&io);
    natten_context_destroy(ref_ctx);
}

static void compare(const ref_problem *r, tc_op op, const char *dtype, double limit, tt_layout layout,
                    natten_context *ctx)
{
    compare_r(r, op, dtype, limit, layout, ctx, 0);
}

static natten_context *forced(void)
{
    natten_context *ctx;
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_msg(natten_context_set_backend(ctx, BACKEND) == NATTEN_SUCCESS, "%s", natten_last_error());
    return ctx;
}

START_TEST(edge_cases)
{
    natten_context *ctx = forced();
    size_t c = (size_t)_i;
    for (size_t t = 0; t < sizeof tols / sizeof tols[0]; t++) {
        tt_layout layout = (c + t) % 2 ? TT_HEADS_FIRST : TT_COMPACT;
        compare(&cases[c], OP_FNA, tols[t].dtype, tols[t].limit, layout, ctx);
        compare(&cases[c], OP_FNA_BW, tols[t].dtype, tols[t].limit, layout, ctx);
    }
    natten_context_destroy(ctx);
}
END_TEST

/* Every kernel configuration (1..N_CONFIGS; 0 is the default the edge cases
 * ran) on every edge case, forward and backward, one dtype per case in turn,
 * chosen through NATTEN_CUDA_TC_CONFIG (the backend reads it when the
 * context asks for the default).  Configuration 10 is the Hopper forward
 * (head dim 128; the rest run their defaults under it), refused elsewhere. */
#define N_CONFIGS 10

START_TEST(each_config)
{
    natten_context *ctx = forced();
    char val[16];
    snprintf(val, sizeof val, "%d", _i);
    ck_assert_int_eq(setenv("NATTEN_CUDA_TC_CONFIG", val, 1), 0);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t t = (c + (size_t)_i) % 2;
        tt_layout layout = c % 2 ? TT_HEADS_FIRST : TT_COMPACT;
        compare_r(&cases[c], OP_FNA, tols[t].dtype, tols[t].limit, layout, ctx, _i == WGMMA_CONFIG);
        compare_r(&cases[c], OP_FNA_BW, tols[t].dtype, tols[t].limit, layout, ctx, _i == WGMMA_CONFIG);
    }
    ck_assert_int_eq(unsetenv("NATTEN_CUDA_TC_CONFIG"), 0);
    natten_context_destroy(ctx);
}
END_TEST

/* Measured selection times every configuration of the forced backend. */
START_TEST(tuner_times_configs)
{
    natten_context *ctx = forced();
    natten_tuning_result res[N_CONFIGS + 2];
    int count = 0;
    uint64_t rng = seed;
    tc_io io;
    ck_assert_int_eq(natten_context_set_tuning(ctx, NATTEN_TUNING_MEASURE), NATTEN_SUCCESS);
    ck_assert(tc_setup(&io, &cases[11], OP_FNA, tt_dtype("float16"), TT_COMPACT, kDLCUDA, &rng));
    ck_assert_msg(tc_run(ctx, &io) == NATTEN_SUCCESS, "%s", natten_last_error());
    ck_assert_int_eq(natten_context_tuning_report(ctx, res, N_CONFIGS + 2, &count, NULL, 0), NATTEN_SUCCESS);
    ck_assert_int_eq(count, 1 + N_CONFIGS);
    for (int i = 0; i < count; i++) {
        ck_assert_str_eq(res[i].backend, BACKEND);
        if (!strcmp(res[i].config, WGMMA_NAME) && res[i].status == NATTEN_ERROR_UNSUPPORTED &&
            wgmma_refusal(res[i].reason)) {
            printf("tuned: %s refused: %s\n", res[i].config, res[i].reason);
            continue;
        }
        ck_assert_msg(res[i].status == NATTEN_SUCCESS && res[i].time_ms > 0, "config %s: %s", res[i].config,
                      res[i].reason);
        printf("tuned: %s %.4f ms\n", res[i].config, res[i].time_ms);
    }
    tc_teardown(&io);
    natten_context_destroy(ctx);
}
END_TEST

/* Each refusal is UNSUPPORTED with a reason naming the cause. */
static void refused(ref_problem r, tc_op op, const char *dtype, const char *word)
{
    natten_context *ctx = forced();
    uint64_t rng = seed;
    tc_io io;
    ck_assert(tc_setup(&io, &r, op, tt_dtype(dtype), TT_COMPACT, kDLCUDA, &rng));
    ck_assert_int_eq(tc_run(ctx, &io), NATTEN_ERROR_UNSUPPORTED);
    ck_assert_msg(strstr(natten_last_error(), word) != NULL, "reason '%s' lacks '%s'", natten_last_error(), word);
    printf("refused: %s\n", natten_last_error());
    tc_teardown(&io);
    natten_context_destroy(ctx);
}

START_TEST(refusals)
{
    ref_problem r = cases[0];
    refused(r, OP_FNA, "float32", "fp16/bf16");
    refused(r, OP_QK, "float16", "has no");
    r.D = r.Dv = 48;
    refused(r, OP_FNA, "float16", "head dim");
    r.D = 64;
    r.Dv = 32;
    refused(r, OP_FNA, "float16", "value head dim");
    r.Dv = 64;
    r.has_rpb = 1;
    refused(r, OP_FNA, "float16", "positional bias");
}
END_TEST

/* With the backend not forced, an fp32 problem still runs (on another backend). */
START_TEST(falls_back)
{
    natten_context *ctx;
    uint64_t rng = seed;
    tc_io io;
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert(tc_setup(&io, &cases[0], OP_FNA, tt_dtype("float32"), TT_COMPACT, kDLCUDA, &rng));
    ck_assert_msg(tc_run(ctx, &io) == NATTEN_SUCCESS, "%s", natten_last_error());
    ck_assert_str_ne(natten_context_last_backend(ctx), BACKEND);
    tc_teardown(&io);
    natten_context_destroy(ctx);
}
END_TEST

/* The backward has no atomics: two runs give identical bits. */
START_TEST(deterministic)
{
    natten_context *ctx = forced();
    const ref_problem *r = &cases[8]; /* GQA: dK/dV sum over query heads */
    uint64_t rng = seed;
    tc_io io;
    void *first[R_COUNT] = {0};
    ck_assert(tc_setup(&io, r, OP_FNA_BW, tt_dtype("float16"), TT_COMPACT, kDLCUDA, &rng));
    ck_assert_msg(tc_run(ctx, &io) == NATTEN_SUCCESS, "%s", natten_last_error());
    for (int x = 0; x < R_COUNT; x++) {
        if (!(io.outputs & (1u << x))) continue;
        first[x] = malloc(io.t[x]->bytes);
        ck_assert(first[x] != NULL);
        memcpy(first[x], io.t[x]->host, io.t[x]->bytes);
    }
    ck_assert_msg(tc_run(ctx, &io) == NATTEN_SUCCESS, "%s", natten_last_error());
    for (int x = 0; x < R_COUNT; x++) {
        if (!first[x]) continue;
        ck_assert_msg(tt_buffer_equal(io.t[x], first[x]), "%s differs between two runs", tc_role_names[x]);
        free(first[x]);
    }
    tc_teardown(&io);
    natten_context_destroy(ctx);
}
END_TEST

int main(void)
{
    natten_backend_info info;
    int found = 0;
    Suite *s;
    TCase *tc;
    SRunner *sr;
    int failed;
    for (int i = 0; i < natten_backend_count(); i++) {
        if (natten_backend_get_info(i, &info) != NATTEN_SUCCESS || strcmp(info.name, BACKEND) != 0) continue;
        found = 1;
        if (!info.available) {
            printf("check_cuda_tc: skipped, %s is unavailable: %s\n", BACKEND, info.reason);
            return 77;
        }
    }
    if (!found || tt_mem_for(kDLCUDA) == NULL) {
        printf("check_cuda_tc: skipped, %s is not in this build\n", BACKEND);
        return 77;
    }
    seed = tt_seed();
    printf("check_cuda_tc: seed %llu (set NATTEN_TEST_SEED to repeat)\n", (unsigned long long)seed);
    s = suite_create("cuda-tc");
    /* three cases, so that CK_RUN_CASE can pick one (tests/gpu-sanitize.sh) */
    tc = tcase_create("edges");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, edge_cases, 0, (int)(sizeof cases / sizeof cases[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("configs");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, each_config, 1, 1 + N_CONFIGS);
    tcase_add_test(tc, tuner_times_configs);
    suite_add_tcase(s, tc);
    tc = tcase_create("api");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, falls_back);
    tcase_add_test(tc, deterministic);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
