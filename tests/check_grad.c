/*
 * check_grad.c - every gradient of every op against central finite
 * differences in float64: f = sum(w * forward output) for random w, so
 * df/dx is exactly what the backward op computes with the incoming gradient w.
 * Runs on each backend that takes float64 (a Check loop over the registry).
 */
#include "cases.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLES 10      /* elements probed per input tensor */
#define STEP 1e-6
#define LIMIT 1e-6      /* |fd - analytic| / max(1, |analytic|) */

static uint64_t seed;

/* f = sum over finite outputs of w * y. */
static double objective(const tt *y, const tt *w)
{
    double f = 0;
    for (int64_t i = 0; i < y->numel; i++) {
        double v = tt_get(y, i);
        if (isfinite(v)) f += tt_get(w, i) * v;
    }
    return f;
}

static void copy_values(tt *dst, const tt *src)
{
    for (int64_t i = 0; i < src->numel; i++) tt_set(dst, i, tt_get(src, i));
    tt_upload(dst);
}

typedef struct {
    tc_op fwd, bwd;
    tc_role out, grad_in;            /* forward output; its gradient role in the backward op */
    tc_role inputs[4], grads[4];     /* differentiated inputs and their gradient roles */
} op_pair;

static const op_pair pairs[] = {
    {OP_QK, OP_QK_BW, R_ATTN, R_DATTN, {R_Q, R_K, R_RPB, R_COUNT}, {R_DQ, R_DK, R_DRPB, R_COUNT}},
    {OP_AV, OP_AV_BW, R_OUT, R_DOUT, {R_ATTN, R_V, R_COUNT, R_COUNT}, {R_DATTN, R_DV, R_COUNT, R_COUNT}},
    {OP_FNA, OP_FNA_BW, R_OUT, R_DOUT, {R_Q, R_K, R_V, R_RPB}, {R_DQ, R_DK, R_DV, R_DRPB}},
};

/* Returns 0 if the backend refused (unsupported), 1 if checked. */
static int check_case(natten_context *ctx, const char *backend, DLDeviceType dev, const tc_case *c,
                      const op_pair *op)
{
    DLDataType f64 = tt_dtype("float64");
    uint64_t rng = seed ^ (uint64_t)(c - tc_cases) * 7919u ^ (uint64_t)op->fwd;
    tc_io f, b;
    natten_status st;
    char desc[256];
    tt *w;
    tc_describe(&c->r, desc, sizeof desc);
    ck_assert(tc_setup(&f, &c->r, op->fwd, f64, TT_COMPACT, dev, &rng));
    ck_assert(tc_setup(&b, &c->r, op->bwd, f64, TT_COMPACT, dev, &rng));
    for (int x = 0; x < R_COUNT; x++)
        if (f.t[x] && b.t[x] && !(b.outputs & (1u << x)) && x != R_OUT && x != R_LSE) copy_values(b.t[x], f.t[x]);
    w = b.t[op->grad_in];
    if (op->fwd == OP_FNA) {
        /* the backward needs the forward's out and lse */
        st = tc_run(ctx, &f);
        if (st == NATTEN_ERROR_UNSUPPORTED) { tc_teardown(&f); tc_teardown(&b); return 0; }
        ck_assert_msg(st == NATTEN_SUCCESS, "%s", natten_last_error());
        copy_values(b.t[R_OUT], f.t[R_OUT]);
        copy_values(b.t[R_LSE], f.t[R_LSE]);
    }
    st = tc_run(ctx, &b);
    if (st == NATTEN_ERROR_UNSUPPORTED) { tc_teardown(&f); tc_teardown(&b); return 0; }
    ck_assert_msg(st == NATTEN_SUCCESS, "%s %s on %s: %s", backend, tc_op_names[op->bwd], desc, natten_last_error());
    for (int j = 0; j < 4 && op->inputs[j] != R_COUNT; j++) {
        tt *x = f.t[op->inputs[j]], *g = b.t[op->grads[j]];
        if (x == NULL || g == NULL) continue;
        for (int s = 0; s < SAMPLES; s++) {
            int64_t e = (int64_t)(tt_uniform(&rng) * (double)x->numel);
            double x0 = tt_get(x, e), fp, fm, fd, an = tt_get(g, e);
            tt_set(x, e, x0 + STEP);
            tt_upload(x);
            ck_assert_int_eq(tc_run(ctx, &f), NATTEN_SUCCESS);
            fp = objective(f.t[op->out], w);
            tt_set(x, e, x0 - STEP);
            tt_upload(x);
            ck_assert_int_eq(tc_run(ctx, &f), NATTEN_SUCCESS);
            fm = objective(f.t[op->out], w);
            tt_set(x, e, x0);
            tt_upload(x);
            fd = (fp - fm) / (2 * STEP);
            ck_assert_msg(fabs(fd - an) <= LIMIT * fmax(1.0, fabs(an)),
                          "%s %s on %s: d%s[%lld] analytic %.12g, finite difference %.12g (seed %llu)", backend,
                          tc_op_names[op->bwd], desc, tc_role_names[op->inputs[j]], (long long)e, an, fd,
                          (unsigned long long)seed);
        }
    }
    tc_teardown(&f);
    tc_teardown(&b);
    return 1;
}

static void run_pair(int backend, const op_pair *op)
{
    natten_backend_info info;
    natten_context *ctx;
    int checked = 0, skipped = 0;
    ck_assert_int_eq(natten_backend_get_info(backend, &info), NATTEN_SUCCESS);
    if (!info.available || tt_mem_for(info.device_type) == NULL) {
        printf("grad %-10s %-12s: skipped, backend unavailable here\n", info.name, tc_op_names[op->bwd]);
        return;
    }
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ctx, info.name), NATTEN_SUCCESS);
    for (int c = 0; c < tc_ncases; c++) {
        if (check_case(ctx, info.name, info.device_type, &tc_cases[c], op)) checked++;
        else skipped++;
    }
    printf("grad %-10s %-12s: %d cases match finite differences, %d skipped (unsupported)\n", info.name,
           tc_op_names[op->bwd], checked, skipped);
    natten_context_destroy(ctx);
}

START_TEST(qk) { run_pair(_i, &pairs[0]); }
END_TEST
START_TEST(av) { run_pair(_i, &pairs[1]); }
END_TEST
START_TEST(fna) { run_pair(_i, &pairs[2]); }
END_TEST

int main(void)
{
    Suite *s = suite_create("grad");
    TCase *tc = tcase_create("finite differences");
    SRunner *sr;
    int failed, n = natten_backend_count();
    seed = tt_seed();
    printf("check_grad: seed %llu (set NATTEN_TEST_SEED to repeat)\n", (unsigned long long)seed);
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, qk, 0, n);
    tcase_add_loop_test(tc, av, 0, n);
    tcase_add_loop_test(tc, fna, 0, n);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
