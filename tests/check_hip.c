/*
 * check_hip.c - the hip-tiled backend (backends/hip: the cuda-tiled sources
 * built by hipcc).  On every host: it is compiled in under its name, for ROCm
 * tensors; where it cannot run it says why in words, forcing it fails with
 * NATTEN_ERROR_BACKEND_UNAVAILABLE, and a call on ROCm tensors is refused
 * with that reason before any device memory is touched.  On a host with a
 * usable AMD GPU, also every op in every dtype on the shared cases (heads-first
 * layout) against naive; check_equivalence covers the other layouts there
 * through tests/testutil-hip.c.
 *
 * Exits 77 (skip) when no usable AMD GPU is present, once the checks that
 * need none have passed.  Runs without forking (like CUDA, HIP cannot be used
 * in a child once the parent has touched it).
 */
#include "cases.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKEND "hip-tiled"

static uint64_t seed;
static natten_backend_info info;

/* Max normalised error per dtype (see check_equivalence.c for the metric). */
static const struct {
    const char *dtype;
    double limit;
} tols[] = {{"float64", 1e-10}, {"float32", 1e-4}, {"float16", 1e-2}, {"bfloat16", 5e-2}};

START_TEST(registered)
{
    ck_assert_int_eq(info.device_type, kDLROCM);
    ck_assert_ptr_nonnull(strstr(natten_version_string(), BACKEND));
    ck_assert_ptr_nonnull(info.description);
    if (!info.available) {
        natten_context *ctx;
        ck_assert_ptr_nonnull(info.reason);
        ck_assert_msg(strlen(info.reason) > 3, "no reason given: '%s'", info.reason);
        ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
        ck_assert_int_eq(natten_context_set_backend(ctx, BACKEND), NATTEN_ERROR_BACKEND_UNAVAILABLE);
        ck_assert_ptr_nonnull(strstr(natten_last_error(), info.reason));
        natten_context_destroy(ctx);
    }
}
END_TEST

/* Host tensors labelled ROCm: the dispatcher must refuse them with the
 * probe's reason, never reaching a kernel or touching the (host) data. */
START_TEST(refused_without_gpu)
{
    natten_context *ctx;
    uint64_t rng = seed;
    tc_io io;
    DLTensor *T[R_COUNT];
    if (info.available) return;
    ck_assert(tc_setup(&io, &tc_cases[0].r, OP_FNA, tt_dtype("float32"), TT_COMPACT, kDLCPU, &rng));
    for (int x = 0; x < R_COUNT; x++) {
        T[x] = io.t[x] ? &io.t[x]->t : NULL;
        if (T[x]) T[x]->device.device_type = kDLROCM;
    }
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(tc_call(ctx, io.op, &io.params, T), NATTEN_ERROR_UNSUPPORTED);
    ck_assert_msg(strstr(natten_last_error(), BACKEND) && strstr(natten_last_error(), info.reason),
                  "refusal does not say why: %s", natten_last_error());
    for (int x = 0; x < R_COUNT; x++)
        if (T[x]) T[x]->device.device_type = kDLCPU;
    natten_context_destroy(ctx);
    tc_teardown(&io);
}
END_TEST

/* On the GPU: op _i of every case and dtype against naive on the same values. */
static void compare(const ref_problem *r, tc_op op, const char *dtype, double limit, natten_context *ctx,
                    natten_context *ref_ctx)
{
    uint64_t rng = seed ^ (uint64_t)op * 7919u, rng2 = rng;
    tc_io ref, io;
    natten_status st;
    char desc[256];
    tc_describe(r, desc, sizeof desc);
    ck_assert(tc_setup(&ref, r, op, tt_dtype(dtype), TT_COMPACT, kDLCPU, &rng));
    ck_assert(tc_setup(&io, r, op, tt_dtype(dtype), TT_HEADS_FIRST, kDLROCM, &rng2));
    ck_assert_msg(tc_run(ref_ctx, &ref) == NATTEN_SUCCESS, "naive: %s", natten_last_error());
    st = tc_run(ctx, &io);
    ck_assert_msg(st == NATTEN_SUCCESS || st == NATTEN_ERROR_UNSUPPORTED, "%s %s %s on %s: %s", BACKEND,
                  tc_op_names[op], dtype, desc, natten_last_error());
    if (st == NATTEN_SUCCESS) {
        tt_err e;
        int x = tc_compare_runs(&io, &ref, limit, &e);
        ck_assert_msg(x < 0, "%s %s %s on %s: %s differs from naive: normalised %.3g (limit %.1g), %lld bad; "
                      "seed %llu", BACKEND, tc_op_names[op], dtype, desc, tc_role_names[x], e.norm, limit,
                      (long long)e.bad, (unsigned long long)seed);
    }
    tc_teardown(&ref);
    tc_teardown(&io);
}

START_TEST(on_gpu)
{
    natten_context *ctx, *ref_ctx;
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_create(&ref_ctx), NATTEN_SUCCESS);
    ck_assert_msg(natten_context_set_backend(ctx, BACKEND) == NATTEN_SUCCESS, "%s", natten_last_error());
    ck_assert_int_eq(natten_context_set_backend(ref_ctx, "naive"), NATTEN_SUCCESS);
    for (size_t t = 0; t < sizeof tols / sizeof tols[0]; t++)
        for (int c = 0; c < tc_ncases; c++)
            compare(&tc_cases[c].r, (tc_op)_i, tols[t].dtype, tols[t].limit, ctx, ref_ctx);
    natten_context_destroy(ctx);
    natten_context_destroy(ref_ctx);
}
END_TEST

int main(void)
{
    int found = 0, failed;
    Suite *s;
    TCase *tc;
    SRunner *sr;
    for (int i = 0; i < natten_backend_count() && !found; i++)
        found = natten_backend_get_info(i, &info) == NATTEN_SUCCESS && strcmp(info.name, BACKEND) == 0;
    if (!found) {
        printf("check_hip: %s is not in this build (configure --with-hip)\n", BACKEND);
        return 1;
    }
    seed = tt_seed();
    printf("check_hip: seed %llu (set NATTEN_TEST_SEED to repeat); %s is %s%s\n", (unsigned long long)seed,
           BACKEND, info.available ? "usable here" : "unavailable here: ", info.available ? "" : info.reason);
    s = suite_create("hip");
    tc = tcase_create("hip-tiled");
    tcase_add_test(tc, registered);
    tcase_add_test(tc, refused_without_gpu);
    if (info.available) tcase_add_loop_test(tc, on_gpu, 0, OP_COUNT);
    tcase_set_timeout(tc, 600);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed) return 1;
    if (!info.available) {
        printf("check_hip: skipped the GPU checks, no usable AMD GPU\n");
        return 77;
    }
    return 0;
}
