/*
 * check_openmp.c - the OpenMP backend where its own machinery can break:
 * query strips of 16 (float) or 8 (double) lanes along the last axis, with
 * vector loads inside the extent, broadcasts at the borders and gathers
 * elsewhere; transposed packing in blocks; key-side gradients through the
 * inverse neighbourhood; per-thread d_rpb partials.  Each case runs every op
 * forced onto "openmp" (several thread counts, layouts and dtypes) and is
 * compared with the naive backend on the same inputs, with the tolerances of
 * check_equivalence.  Then: the same call twice gives bit-identical outputs,
 * and a non-unit head-dim stride is refused with a reason.  Every
 * configuration, and tensors off a cache-line boundary, are a second
 * program built from this file (check_openmp_configs, CHECK_OPENMP_CONFIGS).
 */
#include "cases.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P1(L, K, d, s, c) {L, 1, 1}, {K, 1, 1}, {d, 1, 1}, {s, 1, 1}, {c, 0, 0}

/* rank, B, H, Hkv, D, Dv, S[3], K[3], d[3], s[3], causal[3], scale, has_rpb */
static const tc_case cases[] = {
    /* extent not a multiple of the strip (16 / 8), borders on both sides */
    {"1d L=37 K=5", {1, 1, 2, 2, 16, 16, P1(37, 5, 1, 1, 0), 0, 1}},
    {"1d L=33 K=3 D=20", {1, 2, 1, 1, 20, 20, P1(33, 3, 1, 1, 0), 0, 1}},
    /* K = L: every query shares one window (broadcast strips only) */
    {"1d K = L = 20", {1, 1, 2, 2, 8, 8, P1(20, 20, 1, 1, 0), 0, 1}},
    /* stride = K: blocked attention, window starts step by K (gathers) */
    {"1d stride = K = 4", {1, 1, 2, 2, 16, 16, P1(24, 4, 1, 4, 0), 0, 0}},
    {"1d stride 2 K 5 d 3", {1, 1, 1, 1, 12, 12, P1(47, 5, 3, 2, 0), 0, 0}},
    /* causal: partial windows in the first strip, full ones after */
    {"1d causal L=40 K=7", {1, 1, 2, 2, 16, 16, P1(40, 7, 1, 1, 1), 0, 0}},
    {"1d causal stride L=41 K=6 s=3", {1, 1, 1, 1, 8, 8, P1(41, 6, 1, 3, 1), 0, 0}},
    {"1d long L=300 K=13 d=3", {1, 1, 2, 2, 32, 32, P1(300, 13, 3, 1, 0), 0, 1}},
    /* 2-D: dilation on the strip axis, causal strip axis, stride */
    {"2d 20x35 K7 d(1,2)", {2, 1, 2, 2, 16, 16, {20, 35, 1}, {7, 7, 1}, {1, 2, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1}},
    {"2d 17x50 K(5,9) causal(0,1)", {2, 1, 1, 1, 32, 32, {17, 50, 1}, {5, 9, 1}, {1, 1, 1}, {1, 1, 1}, {0, 1, 0}, 0, 0}},
    {"2d 24x24 K3 stride(2,3)", {2, 1, 2, 2, 16, 16, {24, 24, 1}, {3, 3, 1}, {1, 1, 1}, {2, 3, 1}, {0, 0, 0}, 0, 0}},
    {"2d 12x40 GQA Dv!=D", {2, 2, 4, 2, 20, 36, {12, 40, 1}, {3, 5, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0.25, 0}},
    {"2d 9x30 even K(4,6) causal(1,0)", {2, 1, 2, 1, 48, 16, {9, 30, 1}, {4, 6, 1}, {1, 1, 1}, {1, 1, 1}, {1, 0, 0}, 0, 0}},
    /* 3-D, mixed per-axis parameters */
    {"3d 6x9x21 mixed", {3, 1, 2, 2, 16, 16, {6, 9, 21}, {3, 5, 7}, {2, 1, 3}, {1, 2, 1}, {1, 0, 0}, 0, 0}},
    {"3d 5x6x17 causal all rpb", {3, 1, 2, 2, 8, 8, {5, 6, 17}, {3, 3, 5}, {1, 2, 1}, {1, 1, 1}, {1, 1, 1}, 0, 1}},
    /* the fused forward's row blocks (3 rows of one axis-1 dilation group sharing key rows):
     * K = L on the block axis (every row reads every key row), dilation there with group
     * lengths not a multiple of 3, causal both axes, strips of 4 / 8 / 16 lanes, K2 > 8 */
    {"2d 23x37 K(23,5) rpb", {2, 1, 2, 2, 16, 16, {23, 37, 1}, {23, 5, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1}},
    {"2d 31x40 K(5,7) d(3,1) GQA Dv=24", {2, 1, 4, 2, 16, 24, {31, 40, 1}, {5, 7, 1}, {3, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0}},
    {"2d 14x70 K(3,11) causal rpb", {2, 1, 1, 1, 16, 16, {14, 70, 1}, {3, 11, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 0}, 0, 1}},
    {"2d 10x19 K(4,19) stride(2,1)", {2, 2, 1, 1, 8, 8, {10, 19, 1}, {4, 19, 1}, {1, 1, 1}, {2, 1, 1}, {0, 0, 0}, 0, 0}},
    /* the fused forward pairs a group's two border strips (broadcast, at most 8 lanes each) in
     * one vector, half each: halves of 2 / 4 / 8 lanes, borders of unequal widths (even K),
     * nothing between the borders, per-group borders under dilation, rpb */
    {"2d 9x8 K(3,7) borders only", {2, 1, 2, 2, 16, 16, {9, 8, 1}, {3, 7, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1}},
    {"2d 11x26 K(5,6) rpb", {2, 1, 2, 2, 16, 16, {11, 26, 1}, {5, 6, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1}},
    {"2d 7x45 K(3,15) d(1,2)", {2, 1, 1, 1, 32, 32, {7, 45, 1}, {3, 15, 1}, {1, 2, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0}},
    {"2d 8x33 K(3,9) GQA Dv=40", {2, 1, 4, 2, 16, 40, {8, 33, 1}, {3, 9, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1}},
    {"2d 6x17 K(5,3) causal(1,0)", {2, 2, 1, 1, 32, 32, {6, 17, 1}, {5, 3, 1}, {1, 1, 1}, {1, 1, 1}, {1, 0, 0}, 0, 0}},
    /* the fused forward's lse (a vector log of the sum, max subtracted): windows of over a
     * thousand keys at a small scale, so sums reach the hundreds; long runs lists (K1 = 33) */
    {"2d 34x48 K33 scale 0.01", {2, 1, 1, 1, 16, 16, {34, 48, 1}, {33, 33, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0.01, 0}},
    /* the fused forward's aligned strips (K2 <= 8, full-width strips at a multiple of 16 packed
     * columns: two aligned vectors and valignd shifts per channel): the benchmark's row shape;
     * K2 = 8 (the largest shift), Dv not a multiple of 4 (the channels left go by unaligned loads)
     * and rpb; causal on the strip axis (a lone border strip first, aligned strips after) */
    {"2d 20x56 K7 D32", {2, 1, 2, 2, 32, 32, {20, 56, 1}, {7, 7, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0}},
    {"2d 10x61 K(3,8) Dv=22 rpb", {2, 1, 1, 1, 16, 22, {10, 61, 1}, {3, 8, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1}},
    {"2d 12x45 K(3,7) causal(0,1)", {2, 1, 2, 2, 16, 16, {12, 45, 1}, {3, 7, 1}, {1, 1, 1}, {1, 1, 1}, {0, 1, 0}, 0, 0}},
    /* the paired border strips' weighted sums from the value tensor (border_av): 6 border queries
     * per half (two groups of queries), Dv = 64 (two chunks of two vectors), GQA, a 2-row block */
    {"2d 8x40 K(3,11) GQA Dv=64 rpb", {2, 1, 4, 2, 16, 64, {8, 40, 1}, {3, 11, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1}},
    /* the full-width strips' weighted sums from the value tensor (direct_av: every strip of the
     * problem sums the tensor, no packed values): dilation 2 on the strip axis (two groups),
     * a strip of 6 live lanes between the borders, Dv = 48 (a two-vector and a one-vector chunk) */
    {"2d 9x60 K(3,7) d(1,2) GQA Dv=48", {2, 1, 4, 2, 16, 48, {9, 60, 1}, {3, 7, 1}, {1, 2, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0}},
};
static const int ncases = (int)(sizeof cases / sizeof cases[0]);

/* the backend's configurations: rows3 (the default), rows2, strips (backends/openmp/openmp.c);
 * each_config checks that there is no further one, so that a new one gets tested */
#define OPENMP_CONFIGS 3

/* Same data as check_equivalence's table: max |x - naive| / max(1, max |naive|). */
static const struct tol {
    const char *dtype;
    double limit;
} tolerances[] = {
    {"float64", 1e-10},
    {"float32", 1e-4},
    {"float16", 1e-2},
    {"bfloat16", 5e-2},
};

static uint64_t seed;

static natten_context *context(const char *backend, int threads)
{
    natten_context *ctx;
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ctx, backend), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_num_threads(ctx, threads), NATTEN_SUCCESS);
    return ctx;
}

/* The inputs of a comparison: from the case, op, layout and thread count. */
static uint64_t case_rng(const tc_case *c, tc_op op, tt_layout layout, int threads)
{
    return seed ^ ((uint64_t)(c - cases) << 40) ^ ((uint64_t)op << 24) ^ ((uint64_t)layout << 8) ^ (uint64_t)threads;
}

/* The naive result on those inputs (compact layout), into ref. */
static void reference(const tc_case *c, tc_op op, const struct tol *tl, tt_layout layout, int threads, tc_io *ref)
{
    uint64_t rng = case_rng(c, op, layout, threads);
    natten_context *ref_ctx = context("naive", 0);
    natten_status st;
    ck_assert(tc_setup(ref, &c->r, op, tt_dtype(tl->dtype), TT_COMPACT, kDLCPU, &rng));
    st = tc_run(ref_ctx, ref);
    ck_assert_msg(st == NATTEN_SUCCESS, "naive failed: %s", natten_last_error());
    natten_context_destroy(ref_ctx);
}

/* backend (openmp or openmp/N) on the same inputs in the given layout,
 * against ref. */
static void compare_ref(const tc_case *c, tc_op op, const struct tol *tl, tt_layout layout, int threads,
                        const char *backend, const tc_io *ref)
{
    uint64_t rng = case_rng(c, op, layout, threads);
    natten_context *ctx = context(backend, threads);
    tc_io io;
    natten_status st;
    tt_err e;
    int x;
    char desc[256];
    tc_describe(&c->r, desc, sizeof desc);
    ck_assert(tc_setup(&io, &c->r, op, tt_dtype(tl->dtype), layout, kDLCPU, &rng));
    st = tc_run(ctx, &io);
    ck_assert_msg(st == NATTEN_SUCCESS, "%s %s %s (%d threads, layout %d) on %s [%s]: %s", backend, tc_op_names[op],
                  tl->dtype, threads, (int)layout, c->name, desc, natten_last_error());
    ck_assert_str_eq(natten_context_last_backend(ctx), "openmp");
    x = tc_compare_runs(&io, ref, tl->limit, &e);
    ck_assert_msg(x < 0,
                  "%s %s %s (%d threads, layout %d) on %s [%s]: %s differs from naive: max abs %.3g, "
                  "normalised %.3g (limit %.1g), %lld NaN/inf mismatches (first at %lld); seed %llu",
                  backend, tc_op_names[op], tl->dtype, threads, (int)layout, c->name, desc, tc_role_names[x],
                  e.max_abs, e.norm, tl->limit, (long long)e.bad, (long long)e.first_bad, (unsigned long long)seed);
    tc_teardown(&io);
    natten_context_destroy(ctx);
}

#ifndef CHECK_OPENMP_CONFIGS /* check_openmp: tiling edges, reproducibility, refusals */
#define PROGRAM "check_openmp"

static void compare_case(const tc_case *c, tc_op op, const struct tol *tl, tt_layout layout, int threads,
                         const char *backend)
{
    tc_io ref;
    reference(c, op, tl, layout, threads, &ref);
    compare_ref(c, op, tl, layout, threads, backend, &ref);
    tc_teardown(&ref);
}

static const int thread_counts[] = {1, 2, 3};

/* _i: one case; every op, dtype and a rotation of layouts and thread counts. */
START_TEST(tiling_edges)
{
    const tc_case *c = &cases[_i];
    int n = 0;
    for (int op = 0; op < OP_COUNT; op++)
        for (size_t t = 0; t < sizeof tolerances / sizeof tolerances[0]; t++, n++) {
            tt_layout layout = (tt_layout)(n % 3); /* compact, heads-first, padded */
            int threads = thread_counts[(n / 3) % 3];
            compare_case(c, (tc_op)op, &tolerances[t], layout, threads, "openmp");
        }
}
END_TEST

/* Bit-identical outputs for the same inputs and thread count (no atomics). */
START_TEST(reproducible)
{
    static const tc_case *const picks[] = {&cases[8], &cases[13], &cases[14], &cases[16], &cases[20], &cases[25]};
    const tc_case *c = picks[_i % 6];
    int threads = 1 + _i / 6;
    for (int op = 0; op < OP_COUNT; op++) {
        uint64_t rng = seed + (uint64_t)op;
        natten_context *ctx = context("openmp", threads);
        tc_io io;
        char *first[R_COUNT] = {0};
        ck_assert(tc_setup(&io, &c->r, (tc_op)op, tt_dtype("float32"), TT_COMPACT, kDLCPU, &rng));
        ck_assert_int_eq(tc_run(ctx, &io), NATTEN_SUCCESS);
        for (int x = 0; x < R_COUNT; x++)
            if (io.outputs & (1u << x)) {
                first[x] = malloc(io.t[x]->bytes);
                memcpy(first[x], io.t[x]->host, io.t[x]->bytes);
            }
        for (int rep = 0; rep < 3; rep++) {
            ck_assert_int_eq(tc_run(ctx, &io), NATTEN_SUCCESS); /* outputs are re-poisoned first */
            for (int x = 0; x < R_COUNT; x++)
                if (first[x])
                    ck_assert_msg(tt_buffer_equal(io.t[x], first[x]),
                                  "%s: %s of %s with %d threads differs between two identical calls",
                                  c->name, tc_role_names[x], tc_op_names[op], threads);
        }
        for (int x = 0; x < R_COUNT; x++) free(first[x]);
        tc_teardown(&io);
        natten_context_destroy(ctx);
    }
}
END_TEST

/* A strided head dim is refused with a reason, not copied. */
START_TEST(refuses_strided_head_dim)
{
    uint64_t rng = seed;
    natten_context *ctx = context("openmp", 0);
    tc_io io;
    ck_assert(tc_setup(&io, &cases[0].r, OP_FNA, tt_dtype("float32"), TT_INNER_STRIDED, kDLCPU, &rng));
    ck_assert_int_eq(tc_run(ctx, &io), NATTEN_ERROR_UNSUPPORTED);
    ck_assert_msg(strstr(natten_last_error(), "stride") != NULL, "reason: %s", natten_last_error());
    tc_teardown(&io);
    natten_context_destroy(ctx);
}
END_TEST

#else /* check_openmp_configs: every configuration, misaligned tensors */
#define PROGRAM "check_openmp_configs"

/* _i: case _i, its fused ops in float32 and float16 under every configuration
 * of the backend, each forced as "openmp/<index>" (the tuner's candidates; the
 * default runs in tiling_edges too), all against one naive result per op and
 * dtype: the configurations see the same inputs (compact layout, 2 threads),
 * and the naive reference is most of this test's time (built with CI's
 * sanitizer flags, case 24 alone, K 33 x 33, took 68 s of naive time when each
 * configuration had its own). */
START_TEST(each_config)
{
    char name[32];
    if (_i == 0) { /* once: the configurations are those OPENMP_CONFIGS names */
        natten_context *probe;
        ck_assert_int_eq(natten_context_create(&probe), NATTEN_SUCCESS);
        for (int k = 0; k < OPENMP_CONFIGS; k++) {
            snprintf(name, sizeof name, "openmp/%d", k);
            ck_assert_msg(natten_context_set_backend(probe, name) == NATTEN_SUCCESS, "%s: %s", name,
                          natten_last_error());
        }
        snprintf(name, sizeof name, "openmp/%d", OPENMP_CONFIGS);
        ck_assert_msg(natten_context_set_backend(probe, name) == NATTEN_ERROR_BACKEND_UNAVAILABLE,
                      "openmp has more than %d configurations: test the new one", OPENMP_CONFIGS);
        natten_context_destroy(probe);
    }
    for (int op = OP_FNA; op <= OP_FNA_BW; op++)
        for (size_t t = 1; t <= 2; t++) { /* float32, float16 */
            tc_io ref;
            reference(&cases[_i], (tc_op)op, &tolerances[t], TT_COMPACT, 2, &ref);
            for (int k = 0; k < OPENMP_CONFIGS; k++) {
                snprintf(name, sizeof name, "openmp/%d", k);
                compare_ref(&cases[_i], (tc_op)op, &tolerances[t], TT_COMPACT, 2, name, &ref);
            }
            tc_teardown(&ref);
        }
}
END_TEST

/*
 * Every tensor n * 4 bytes past a 64-byte boundary (n = _i, 0-15: NumPy's
 * malloc'ed arrays are 16 bytes past one): the forward ops' outputs are
 * bit-identical to those of the same inputs on the boundary (no path may
 * depend on the alignment but in speed).  Cases: full-width strips summing
 * the value tensor (direct_av), Dv = 48 (a two-vector and a one-vector
 * chunk), paired borders (border_av, Dv = 64), dilation on the strip axis.
 */
START_TEST(misaligned_tensors)
{
    static const tc_case *const picks[] = {&cases[25], &cases[29], &cases[28], &cases[21]};
    static const tc_op ops[] = {OP_FNA, OP_QK, OP_AV};
    size_t off = 4 * (size_t)_i;
    for (size_t c = 0; c < sizeof picks / sizeof picks[0]; c++)
        for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
            uint64_t rng = seed + c;
            natten_context *ctx = context("openmp", 2);
            tc_io io;
            DLTensor t[R_COUNT], *T[R_COUNT] = {0};
            char *buf[2][R_COUNT] = {{0}};
            ck_assert(tc_setup(&io, &picks[c]->r, ops[o], tt_dtype("float32"), TT_COMPACT, kDLCPU, &rng));
            for (int a = 0; a < 2; a++) { /* a = 0: on the boundary; 1: off bytes past it */
                for (int x = 0; x < R_COUNT; x++) {
                    if (!io.t[x]) continue;
                    buf[a][x] = aligned_alloc(64, (io.t[x]->bytes + 127) & ~(size_t)63);
                    ck_assert(buf[a][x] != NULL);
                    if (io.outputs & (1u << x)) memset(buf[a][x] + (a ? off : 0), 0xff, io.t[x]->bytes);
                    else memcpy(buf[a][x] + (a ? off : 0), io.t[x]->host, io.t[x]->bytes);
                    t[x] = io.t[x]->t;
                    t[x].data = buf[a][x] + (a ? off : 0);
                    T[x] = &t[x];
                }
                ck_assert_msg(tc_call(ctx, ops[o], &io.params, T) == NATTEN_SUCCESS, "%s", natten_last_error());
            }
            for (int x = 0; x < R_COUNT; x++)
                if (io.outputs & (1u << x))
                    ck_assert_msg(memcmp(buf[0][x], buf[1][x] + off, io.t[x]->bytes) == 0,
                                  "%s: %s of %s with its tensors %zu bytes past a cache line differs from the "
                                  "aligned run", picks[c]->name, tc_role_names[x], tc_op_names[ops[o]], off);
            for (int x = 0; x < R_COUNT; x++) free(buf[0][x]), free(buf[1][x]);
            tc_teardown(&io);
            natten_context_destroy(ctx);
        }
}
END_TEST

#endif

int main(void)
{
    Suite *s = suite_create("openmp");
    TCase *tc;
    SRunner *sr;
    int failed;
    {
        natten_context *ctx;
        natten_context_create(&ctx);
        if (natten_context_set_backend(ctx, "openmp") != NATTEN_SUCCESS) {
            printf("%s: the openmp backend is not available: %s\n", PROGRAM, natten_last_error());
            natten_context_destroy(ctx);
            return 77;
        }
        natten_context_destroy(ctx);
    }
    seed = tt_seed();
    printf("%s: seed %llu (set NATTEN_TEST_SEED to repeat)\n", PROGRAM, (unsigned long long)seed);
    /* One Check case per kind of test, so that each can run alone
     * (CK_RUN_CASE=edges|reproducible|refusals|configs|misaligned).  The
     * suite is built twice (tests/local.mk): check_openmp runs the first
     * three, check_openmp_configs (CHECK_OPENMP_CONFIGS) the last two, so
     * that `make -j2 check` runs the halves side by side (under CI's
     * sanitizers each half takes minutes). */
#ifndef CHECK_OPENMP_CONFIGS
    tc = tcase_create("edges");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, tiling_edges, 0, ncases);
    suite_add_tcase(s, tc);
    tc = tcase_create("reproducible");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, reproducible, 0, 12);
    suite_add_tcase(s, tc);
    tc = tcase_create("refusals");
    tcase_add_test(tc, refuses_strided_head_dim);
    suite_add_tcase(s, tc);
#else
    tc = tcase_create("configs");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, each_config, 0, ncases);
    suite_add_tcase(s, tc);
    tc = tcase_create("misaligned");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, misaligned_tensors, 0, 16);
    suite_add_tcase(s, tc);
#endif
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
