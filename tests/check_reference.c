/*
 * check_reference.c - the naive backend against the independent dense-masked
 * reference of testutil.c (mask from the spec's membership predicate, plain
 * attention in double), every op, dtype, case and layout.  The only error
 * allowed is the final rounding of each output to its dtype.
 */
#include "cases.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

/* max |naive - reference| / max(1, max |reference|): output rounding only. */
static const struct {
    const char *dtype;
    double limit;
} limits[] = {{"float64", 1e-12}, {"float32", 1e-6}, {"float16", 1e-3}, {"bfloat16", 8e-3}};

static uint64_t seed;

static void check_op(tc_op op)
{
    natten_context *ctx;
    int n = 0;
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ctx, "naive"), NATTEN_SUCCESS);
    for (size_t t = 0; t < sizeof limits / sizeof limits[0]; t++)
        for (int c = 0; c < tc_ncases; c++)
            for (int layout = 0; layout < TT_LAYOUT_COUNT; layout++) {
                uint64_t rng = seed + (uint64_t)(c * 131 + layout * 7 + (int)t);
                tc_io io;
                double *ref[R_COUNT];
                char desc[256];
                natten_status st;
                tc_describe(&tc_cases[c].r, desc, sizeof desc);
                ck_assert(tc_setup(&io, &tc_cases[c].r, op, tt_dtype(limits[t].dtype), (tt_layout)layout,
                                   kDLCPU, &rng));
                st = tc_run(ctx, &io);
                ck_assert_msg(st == NATTEN_SUCCESS, "%s on %s: %s", tc_op_names[op], desc, natten_last_error());
                tc_reference(&io, ref);
                for (int x = 0; x < R_COUNT; x++) {
                    tt_err e;
                    if (!ref[x]) continue;
                    e = tt_compare(io.t[x], ref[x]);
                    /* lse is float32 whatever the dtype */
                    ck_assert_msg(e.bad == 0 && e.norm <= (x == R_LSE ? limits[1].limit : limits[t].limit),
                                  "%s %s layout %d on %s: %s max abs %.3g normalised %.3g (limit %.1g), "
                                  "%lld NaN/inf mismatches (first %lld), seed %llu",
                                  tc_op_names[op], limits[t].dtype, layout, desc, tc_role_names[x], e.max_abs,
                                  e.norm, limits[t].limit, (long long)e.bad, (long long)e.first_bad,
                                  (unsigned long long)seed);
                    free(ref[x]);
                }
                tc_teardown(&io);
                n++;
            }
    printf("reference %-12s: %d problems match the dense reference\n", tc_op_names[op], n);
    natten_context_destroy(ctx);
}

START_TEST(qk_forward) { check_op(OP_QK); }
END_TEST
START_TEST(qk_backward) { check_op(OP_QK_BW); }
END_TEST
START_TEST(av_forward) { check_op(OP_AV); }
END_TEST
START_TEST(av_backward) { check_op(OP_AV_BW); }
END_TEST
START_TEST(fna_forward) { check_op(OP_FNA); }
END_TEST
START_TEST(fna_backward) { check_op(OP_FNA_BW); }
END_TEST

int main(void)
{
    Suite *s = suite_create("reference");
    TCase *tc = tcase_create("naive vs dense-masked attention");
    SRunner *sr;
    int failed;
    seed = tt_seed();
    printf("check_reference: seed %llu (set NATTEN_TEST_SEED to repeat)\n", (unsigned long long)seed);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, qk_forward);
    tcase_add_test(tc, qk_backward);
    tcase_add_test(tc, av_forward);
    tcase_add_test(tc, av_backward);
    tcase_add_test(tc, fna_forward);
    tcase_add_test(tc, fna_backward);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
