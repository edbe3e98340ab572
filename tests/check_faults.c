/*
 * check_faults.c - allocation failure (needs configure --enable-fault-injection;
 * otherwise it exits 77, a skip).
 *
 * For each CPU backend and op, on a few problems: run once to count the host
 * allocations the call makes, then run again once per allocation with exactly
 * that one failing.  Every such call must return NATTEN_ERROR_OUT_OF_MEMORY
 * with a message, leave every tensor bit-identical (outputs keep their
 * poison), and the context must work normally afterwards.  Leaks are the
 * sanitizer build's (LeakSanitizer) or valgrind's to find: see
 * docs/reliability.md.
 */
#include "config.h"
#include "cases.h"
#include "natten-fault.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NATTEN_FAULT_INJECTION

/* Problems with and without bias (d_rpb adds an allocation), GQA, 3-D. */
static const int problems[] = {0, 7, 11, 13};

static uint64_t seed;

static void fail_each(int backend, tc_op op)
{
    natten_backend_info info;
    natten_context *ctx;
    long injected = 0;
    ck_assert_int_eq(natten_backend_get_info(backend, &info), NATTEN_SUCCESS);
    if (!info.available || info.device_type != kDLCPU) {
        printf("faults %-8s %-12s: skipped (not a usable CPU backend)\n", info.name, tc_op_names[op]);
        return;
    }
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ctx, info.name), NATTEN_SUCCESS);
    for (size_t c = 0; c < sizeof problems / sizeof problems[0]; c++) {
        const tc_case *tcase = &tc_cases[problems[c]];
        uint64_t rng = seed + c;
        tc_io io;
        char *image[R_COUNT] = {0};
        long n;
        natten_status st;
        ck_assert(tc_setup(&io, &tcase->r, op, tt_dtype("float32"), TT_HEADS_FIRST, kDLCPU, &rng));
        natten_fault_fail_after(-1);
        st = tc_run(ctx, &io);
        n = natten_fault_allocations();
        if (st == NATTEN_ERROR_UNSUPPORTED) { tc_teardown(&io); continue; }
        ck_assert_msg(st == NATTEN_SUCCESS, "%s %s on %s: %s", info.name, tc_op_names[op], tcase->name,
                      natten_last_error());
        for (int x = 0; x < R_COUNT; x++) {
            if (io.t[x] == NULL) continue;
            if (io.outputs & (1u << x)) tt_poison(io.t[x]); /* what tc_run leaves before the call */
            image[x] = malloc(io.t[x]->bytes);
            ck_assert(image[x] != NULL);
            memcpy(image[x], io.t[x]->host, io.t[x]->bytes);
        }
        for (long i = 0; i < n; i++) {
            natten_fault_fail_after(i);
            st = tc_run(ctx, &io);
            natten_fault_fail_after(-1);
            ck_assert_msg(st == NATTEN_ERROR_OUT_OF_MEMORY,
                          "%s %s on %s with allocation %ld of %ld failing: %s (%s), want out of memory",
                          info.name, tc_op_names[op], tcase->name, i + 1, n, natten_status_string(st),
                          natten_last_error());
            ck_assert_msg(natten_last_error()[0] != '\0', "out of memory without a message");
            for (int x = 0; x < R_COUNT; x++)
                ck_assert_msg(io.t[x] == NULL || tt_buffer_equal(io.t[x], image[x]),
                              "%s %s on %s: %s changed although allocation %ld failed", info.name,
                              tc_op_names[op], tcase->name, tc_role_names[x], i + 1);
            injected++;
        }
        /* and the context still works */
        ck_assert_msg(tc_run(ctx, &io) == NATTEN_SUCCESS, "%s after injected failures: %s", info.name,
                      natten_last_error());
        for (int x = 0; x < R_COUNT; x++) free(image[x]);
        tc_teardown(&io);
    }
    printf("faults %-8s %-12s: %ld allocation failures injected, each returned out of memory cleanly\n",
           info.name, tc_op_names[op], injected);
    natten_context_destroy(ctx);
}

/* Measured selection (NATTEN_TUNING_MEASURE) allocates too: candidate lists,
 * scratch outputs, the report, the cache of winners.  A fresh context per run
 * so that every run measures.  Here a failure may also be absorbed (the
 * measurement is skipped and the heuristic pick runs): then the call must
 * succeed with the outputs of an uninjected run (within float64 rounding:
 * the heuristic pick may be another backend than the measured winner). */
static void fail_each_measured(tc_op op)
{
    const tc_case *tcase = &tc_cases[7];
    uint64_t rng = seed;
    tc_io io;
    char *image[R_COUNT] = {0};
    double *result[R_COUNT] = {0};
    natten_context *ctx;
    long n, oom = 0, absorbed = 0;
    natten_status st;
    ck_assert(tc_setup(&io, &tcase->r, op, tt_dtype("float64"), TT_COMPACT, kDLCPU, &rng));
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_tuning(ctx, NATTEN_TUNING_MEASURE), NATTEN_SUCCESS);
    natten_fault_fail_after(-1);
    st = tc_run(ctx, &io);
    n = natten_fault_allocations();
    natten_context_destroy(ctx);
    ck_assert_msg(st == NATTEN_SUCCESS, "%s measured: %s", tc_op_names[op], natten_last_error());
    for (int x = 0; x < R_COUNT; x++) {
        if (io.t[x] == NULL) continue;
        if (io.outputs & (1u << x)) {
            result[x] = tt_to_double(io.t[x]);
            ck_assert(result[x] != NULL);
            tt_poison(io.t[x]);
        }
        image[x] = malloc(io.t[x]->bytes);
        ck_assert(image[x] != NULL);
        memcpy(image[x], io.t[x]->host, io.t[x]->bytes);
    }
    for (long i = 0; i < n; i++) {
        ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
        ck_assert_int_eq(natten_context_set_tuning(ctx, NATTEN_TUNING_MEASURE), NATTEN_SUCCESS);
        natten_fault_fail_after(i);
        st = tc_run(ctx, &io);
        natten_fault_fail_after(-1);
        natten_context_destroy(ctx);
        ck_assert_msg(st == NATTEN_SUCCESS || st == NATTEN_ERROR_OUT_OF_MEMORY,
                      "%s measured, allocation %ld of %ld failing: %s (%s)", tc_op_names[op], i + 1, n,
                      natten_status_string(st), natten_last_error());
        for (int x = 0; x < R_COUNT; x++) {
            tt_err e;
            if (io.t[x] == NULL) continue;
            if (st != NATTEN_SUCCESS || !(io.outputs & (1u << x))) {
                ck_assert_msg(tt_buffer_equal(io.t[x], image[x]), "%s measured, allocation %ld failing (%s): "
                              "%s changed", tc_op_names[op], i + 1, natten_status_string(st), tc_role_names[x]);
                continue;
            }
            e = tt_compare(io.t[x], result[x]);
            ck_assert_msg(e.bad == 0 && e.norm <= 1e-10, "%s measured, allocation %ld failing (absorbed): %s "
                          "differs from the uninjected result by %.3g (%lld bad)", tc_op_names[op], i + 1,
                          tc_role_names[x], e.norm, (long long)e.bad);
        }
        if (st == NATTEN_SUCCESS) absorbed++; else oom++;
    }
    printf("faults measured %-12s: %ld allocations failed in turn: %ld out of memory, %ld absorbed "
           "(same result)\n", tc_op_names[op], n, oom, absorbed);
    for (int x = 0; x < R_COUNT; x++) { free(image[x]); free(result[x]); }
    tc_teardown(&io);
}

START_TEST(measured) { fail_each_measured((tc_op)_i); }
END_TEST

START_TEST(qk_forward) { fail_each(_i, OP_QK); }
END_TEST
START_TEST(qk_backward) { fail_each(_i, OP_QK_BW); }
END_TEST
START_TEST(av_forward) { fail_each(_i, OP_AV); }
END_TEST
START_TEST(av_backward) { fail_each(_i, OP_AV_BW); }
END_TEST
START_TEST(fna_forward) { fail_each(_i, OP_FNA); }
END_TEST
START_TEST(fna_backward) { fail_each(_i, OP_FNA_BW); }
END_TEST

/* natten_context_create itself. */
START_TEST(context_create)
{
    natten_context *ctx = (natten_context *)&ctx;
    natten_fault_fail_after(0);
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_ERROR_OUT_OF_MEMORY);
    natten_fault_fail_after(-1);
    ck_assert_ptr_null(ctx);
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    natten_context_destroy(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("allocation failure");
    SRunner *sr;
    int failed, n = natten_backend_count();
    seed = tt_seed();
    printf("check_faults: seed %llu\n", (unsigned long long)seed);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, context_create);
    tcase_add_loop_test(tc, qk_forward, 0, n);
    tcase_add_loop_test(tc, qk_backward, 0, n);
    tcase_add_loop_test(tc, av_forward, 0, n);
    tcase_add_loop_test(tc, av_backward, 0, n);
    tcase_add_loop_test(tc, fna_forward, 0, n);
    tcase_add_loop_test(tc, fna_backward, 0, n);
    tcase_add_loop_test(tc, measured, 0, OP_COUNT);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#else

int main(void)
{
    printf("check_faults: skipped: this build has no allocation-failure hook "
           "(configure --enable-fault-injection)\n");
    return 77;
}

#endif
