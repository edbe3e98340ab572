/*
 * check_equivalence.c - every backend computes the same function.
 *
 * For each backend in the registry (a Check loop test over
 * natten_backend_count()), each op, dtype, case and layout: run the backend
 * (forced by name) on NaN-poisoned outputs and compare with the naive backend
 * on the same inputs.  For the naive backend itself the comparison is naive on
 * a non-compact layout against naive on compact tensors (layout invariance);
 * check_reference proves naive against the dense reference.
 * A combination a backend refuses (NATTEN_ERROR_UNSUPPORTED) is counted as
 * skipped and printed; an unavailable backend skips as a whole.
 */
#include "cases.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tolerances (data, not code): max |x - naive| / max(1, max |naive|). */
static const struct tol {
    const char *dtype;
    double forward, backward;
} tolerances[] = {
    {"float64", 1e-10, 1e-10},
    {"float32", 1e-4, 1e-4},
    {"float16", 1e-2, 1e-2},
    {"bfloat16", 5e-2, 5e-2},
};

static uint64_t seed;

typedef struct { int compared, skipped; } tally;

static void compare_one(natten_context *ctx, natten_context *ref_ctx, const natten_backend_info *info,
                        const tc_case *c, tc_op op, const struct tol *tl, tt_layout layout, tally *n)
{
    uint64_t rng = seed ^ ((uint64_t)(c - tc_cases) << 32) ^ ((uint64_t)op << 16) ^ (uint64_t)layout;
    DLDataType dt = tt_dtype(tl->dtype);
    tc_io ref, io;
    natten_status st;
    tt_err e;
    int x;
    char desc[256];
    int is_naive = strcmp(info->name, "naive") == 0;
    uint64_t rng2 = rng;
    double limit = (op == OP_QK_BW || op == OP_AV_BW || op == OP_FNA_BW) ? tl->backward : tl->forward;

    tc_describe(&c->r, desc, sizeof desc);
    ck_assert_msg(tc_setup(&ref, &c->r, op, dt, TT_COMPACT, kDLCPU, &rng), "setup failed");
    ck_assert_msg(tc_setup(&io, &c->r, op, dt, is_naive ? (layout == TT_COMPACT ? TT_HEADS_FIRST : layout) : layout,
                           info->device_type, &rng2), "setup failed on %s", info->name);
    st = tc_run(ref_ctx, &ref);
    ck_assert_msg(st == NATTEN_SUCCESS, "naive %s failed on %s: %s", tc_op_names[op], desc, natten_last_error());
    st = tc_run(ctx, &io);
    if (st == NATTEN_ERROR_UNSUPPORTED) {
        n->skipped++;
        tc_teardown(&ref);
        tc_teardown(&io);
        return;
    }
    ck_assert_msg(st == NATTEN_SUCCESS, "%s %s %s on %s: %s (%s)", info->name, tc_op_names[op], tl->dtype,
                  desc, natten_status_string(st), natten_last_error());
    x = tc_compare_runs(&io, &ref, limit, &e);
    ck_assert_msg(x < 0,
                  "%s %s %s layout %d on %s: %s differs from naive: max abs %.3g, normalised %.3g "
                  "(limit %.1g), %lld NaN/inf mismatches (first at %lld); seed %llu",
                  info->name, tc_op_names[op], tl->dtype, (int)layout, desc, tc_role_names[x], e.max_abs,
                  e.norm, limit, (long long)e.bad, (long long)e.first_bad, (unsigned long long)seed);
    n->compared++;
    tc_teardown(&ref);
    tc_teardown(&io);
}

static void run_op(int backend, tc_op op)
{
    natten_backend_info info;
    natten_context *ctx, *ref_ctx;
    tally n = {0, 0};
    ck_assert_int_eq(natten_backend_get_info(backend, &info), NATTEN_SUCCESS);
    if (!info.available) {
        printf("equivalence %-10s %-12s: skipped, backend unavailable: %s\n", info.name, tc_op_names[op],
               info.reason);
        return;
    }
    if (tt_mem_for(info.device_type) == NULL) {
        printf("equivalence %-10s %-12s: skipped, this test build cannot allocate its device memory\n",
               info.name, tc_op_names[op]);
        return;
    }
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_create(&ref_ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ctx, info.name), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ref_ctx, "naive"), NATTEN_SUCCESS);
    for (size_t t = 0; t < sizeof tolerances / sizeof tolerances[0]; t++)
        for (int c = 0; c < tc_ncases; c++)
            for (int layout = 0; layout < TT_LAYOUT_COUNT; layout++)
                compare_one(ctx, ref_ctx, &info, &tc_cases[c], op, &tolerances[t], (tt_layout)layout, &n);
    printf("equivalence %-10s %-12s: %d compared, %d skipped (unsupported by the backend)\n", info.name,
           tc_op_names[op], n.compared, n.skipped);
    natten_context_destroy(ctx);
    natten_context_destroy(ref_ctx);
}

START_TEST(qk_forward) { run_op(_i, OP_QK); }
END_TEST
START_TEST(qk_backward) { run_op(_i, OP_QK_BW); }
END_TEST
START_TEST(av_forward) { run_op(_i, OP_AV); }
END_TEST
START_TEST(av_backward) { run_op(_i, OP_AV_BW); }
END_TEST
START_TEST(fna_forward) { run_op(_i, OP_FNA); }
END_TEST
START_TEST(fna_backward) { run_op(_i, OP_FNA_BW); }
END_TEST

int main(void)
{
    Suite *s = suite_create("equivalence");
    TCase *tc = tcase_create("backends vs naive");
    SRunner *sr;
    int failed, n = natten_backend_count();
    seed = tt_seed();
    printf("check_equivalence: seed %llu (set NATTEN_TEST_SEED to repeat), %d backends\n",
           (unsigned long long)seed, n);
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, qk_forward, 0, n);
    tcase_add_loop_test(tc, qk_backward, 0, n);
    tcase_add_loop_test(tc, av_forward, 0, n);
    tcase_add_loop_test(tc, av_backward, 0, n);
    tcase_add_loop_test(tc, fna_forward, 0, n);
    tcase_add_loop_test(tc, fna_backward, 0, n);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
