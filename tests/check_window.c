/*
 * check_window.c - neighbourhoods (spec section 1): the library's window
 * arithmetic (lib/natten-window.h) against the spec's worked examples and an
 * exhaustive comparison with the test's own formula; slot order and RPB
 * indices through the public API; K = extent equals plain self attention.
 */
#include "cases.h"
#include "natten-window.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "{0,1,2} {0,1,2} ..." from the library's windows. */
static void window_sets(int L, int K, int d, int s, int causal, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < L; i++) {
        int64_t a, b;
        natten_window(L, K, d, s, causal, i, &a, &b);
        n += (size_t)snprintf(buf + n, len - n, "%s{", i ? " " : "");
        for (int64_t t = a; t < b; t++)
            n += (size_t)snprintf(buf + n, len - n, "%s%lld", t > a ? "," : "", (long long)(t * d + i % d));
        n += (size_t)snprintf(buf + n, len - n, "}");
    }
}

/* Spec 1.6, written out in full. */
static const struct {
    int L, K, d, s, causal;
    const char *sets;
} examples[] = {
    {7, 3, 1, 1, 0, "{0,1,2} {0,1,2} {1,2,3} {2,3,4} {3,4,5} {4,5,6} {4,5,6}"},
    {8, 4, 1, 1, 0, "{0,1,2,3} {0,1,2,3} {0,1,2,3} {1,2,3,4} {2,3,4,5} {3,4,5,6} {4,5,6,7} {4,5,6,7}"},
    {10, 3, 2, 1, 0, "{0,2,4} {1,3,5} {0,2,4} {1,3,5} {2,4,6} {3,5,7} {4,6,8} {5,7,9} {4,6,8} {5,7,9}"},
    {7, 3, 2, 1, 0, "{0,2,4} {1,3,5} {0,2,4} {1,3,5} {2,4,6} {1,3,5} {2,4,6}"},
    {6, 3, 1, 1, 1, "{0} {0,1} {0,1,2} {1,2,3} {2,3,4} {3,4,5}"},
    {8, 4, 1, 1, 1, "{0} {0,1} {0,1,2} {0,1,2,3} {1,2,3,4} {2,3,4,5} {3,4,5,6} {4,5,6,7}"},
    {7, 3, 2, 1, 1, "{0} {1} {0,2} {1,3} {0,2,4} {1,3,5} {2,4,6}"},
    {8, 4, 1, 2, 0, "{0,1,2,3} {0,1,2,3} {1,2,3,4} {1,2,3,4} {3,4,5,6} {3,4,5,6} {4,5,6,7} {4,5,6,7}"},
    {7, 3, 1, 2, 0, "{0,1,2} {0,1,2} {2,3,4} {2,3,4} {4,5,6} {4,5,6} {4,5,6}"},
    {9, 3, 1, 3, 0, "{0,1,2} {0,1,2} {0,1,2} {3,4,5} {3,4,5} {3,4,5} {6,7,8} {6,7,8} {6,7,8}"},
    {7, 3, 1, 2, 1, "{0} {0,1} {1,2} {1,2,3} {3,4} {3,4,5} {4,5,6}"},
    {10, 3, 2, 2, 0, "{0,2,4} {1,3,5} {0,2,4} {1,3,5} {4,6,8} {5,7,9} {4,6,8} {5,7,9} {4,6,8} {5,7,9}"},
};

START_TEST(worked_examples)
{
    char got[512];
    window_sets(examples[_i].L, examples[_i].K, examples[_i].d, examples[_i].s, examples[_i].causal, got,
                sizeof got);
    ck_assert_msg(strcmp(got, examples[_i].sets) == 0, "L=%d K=%d d=%d s=%d causal=%d:\n got  %s\n want %s",
                  examples[_i].L, examples[_i].K, examples[_i].d, examples[_i].s, examples[_i].causal, got,
                  examples[_i].sets);
}
END_TEST

/* The library's clamp form against the test's max + border-correction form,
 * and the inverse neighbourhood against brute force, for every small case. */
START_TEST(exhaustive_small)
{
    long checked = 0;
    for (int L = 2; L < 40; L++)
        for (int d = 1; d <= 7; d++)
            for (int K = 2; K * d <= L; K++)
                for (int s = 1; s <= K; s++)
                    for (int causal = 0; causal <= 1; causal++)
                        for (int i = 0; i < L; i++) {
                            int64_t a, b, ra, rb, n = natten_group_len(L, d, i % d);
                            natten_window(L, K, d, s, causal, i, &a, &b);
                            ref_window_1d(L, K, d, s, causal, i, &ra, &rb);
                            ck_assert_msg(a == ra && b == rb,
                                          "L=%d K=%d d=%d s=%d causal=%d i=%d: library [%lld,%lld) test [%lld,%lld)",
                                          L, K, d, s, causal, i, (long long)a, (long long)b, (long long)ra,
                                          (long long)rb);
                            ck_assert(b - a <= K && (causal || b - a == K));
                            ck_assert(a <= i / d && i / d < b); /* a query sees itself */
                            if (i < d) {
                                /* inverse neighbourhood of each position v of this group */
                                for (int64_t v = 0; v < n; v++) {
                                    int64_t qa, qb, first = -1, last = -1;
                                    natten_inverse_window_g(n, K, s, causal, v, &qa, &qb);
                                    for (int64_t u = 0; u < n; u++) {
                                        int64_t wa, wb;
                                        natten_window_g(n, K, s, causal, u, &wa, &wb);
                                        if (wa <= v && v < wb) {
                                            if (first < 0) first = u;
                                            ck_assert_msg(last < 0 || last == u - 1, "inverse not contiguous");
                                            last = u;
                                        }
                                    }
                                    ck_assert_msg(qa == first && qb == last + 1,
                                                  "inverse n=%lld K=%d s=%d causal=%d v=%lld: [%lld,%lld) want "
                                                  "[%lld,%lld)", (long long)n, K, s, causal, (long long)v,
                                                  (long long)qa, (long long)qb, (long long)first,
                                                  (long long)last + 1);
                                }
                            }
                            checked++;
                        }
    printf("window: %ld (L, K, d, s, causal, query) combinations agree\n", checked);
}
END_TEST

/* Make a compact float64 CPU tensor. */
static tt *f64(int ndim, const int64_t *shape)
{
    return tt_new(ndim, shape, tt_dtype("float64"), TT_COMPACT, 0, kDLCPU);
}

/* Through the public API: with D = 1, q = 1 and k[j] = j, qk_forward writes the
 * key index into each slot; with an rpb of bias[e] = 1000 e it adds the index. */
static void slot_keys(int rank, const int64_t *S, const int *K, const int *d, const int *causal, tt **attn_out,
                      int with_rpb)
{
    natten_context *ctx;
    natten_params p;
    int64_t qs[6] = {1}, rs[4];
    int n = 0;
    tt *q, *k, *attn, *rpb = NULL;
    int64_t W = 1, N = 1;
    for (int i = 0; i < rank; i++) { qs[1 + i] = S[i]; W *= K[i]; N *= S[i]; }
    qs[rank + 1] = 1; qs[rank + 2] = 1;
    n = rank + 3;
    q = f64(n, qs);
    k = f64(n, qs);
    qs[rank + 2] = W;
    attn = f64(n, qs);
    for (int64_t j = 0; j < N; j++) { tt_set(q, j, 1.0); tt_set(k, j, (double)j); }
    natten_params_init(&p, rank, K);
    for (int i = 0; i < rank; i++) { p.dilation[i] = d[i]; p.is_causal[i] = causal[i]; }
    if (with_rpb) {
        int64_t E = 1;
        rs[0] = 1;
        for (int i = 0; i < rank; i++) { rs[1 + i] = 2 * K[i] - 1; E *= rs[1 + i]; }
        rpb = f64(rank + 1, rs);
        for (int64_t e = 0; e < E; e++) tt_set(rpb, e, 1000.0 * (double)e);
    }
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ctx, "naive"), NATTEN_SUCCESS);
    tt_poison(attn);
    ck_assert_msg(natten_qk_forward(ctx, &p, &q->t, &k->t, rpb ? &rpb->t : NULL, &attn->t) == NATTEN_SUCCESS,
                  "%s", natten_last_error());
    natten_context_destroy(ctx);
    tt_free(q); tt_free(k); tt_free(rpb);
    *attn_out = attn;
}

START_TEST(slot_order_2d)
{
    /* spec 1.7: extent (5,6), K=(3,4), query (0,5): rows {0,1,2}, cols {2,3,4,5} */
    int64_t S[2] = {5, 6};
    int K[2] = {3, 4}, d[2] = {1, 1}, c[2] = {0, 0};
    tt *attn;
    int64_t q = 0 * 6 + 5, W = 12;
    slot_keys(2, S, K, d, c, &attn, 0);
    ck_assert_double_eq(tt_get(attn, q * W + 0), 0 * 6 + 2);
    ck_assert_double_eq(tt_get(attn, q * W + 3), 0 * 6 + 5);
    ck_assert_double_eq(tt_get(attn, q * W + 4), 1 * 6 + 2);
    ck_assert_double_eq(tt_get(attn, q * W + 11), 2 * 6 + 5);
    tt_free(attn);
}
END_TEST

START_TEST(slots_match_examples)
{
    /* every 1-D worked example without stride, through qk_forward's slots */
    for (size_t x = 0; x < sizeof examples / sizeof examples[0]; x++) {
        int64_t S[1] = {examples[x].L};
        int K[1] = {examples[x].K}, d[1] = {examples[x].d}, c[1] = {examples[x].causal};
        char got[512];
        size_t n = 0;
        tt *attn;
        if (examples[x].s != 1) continue;
        slot_keys(1, S, K, d, c, &attn, 0);
        for (int i = 0; i < examples[x].L; i++) {
            int any = 0;
            n += (size_t)snprintf(got + n, sizeof got - n, "%s{", i ? " " : "");
            for (int t = 0; t < K[0]; t++) {
                double v = tt_get(attn, (int64_t)i * K[0] + t);
                if (isinf(v) && v < 0) continue; /* masked causal slot */
                n += (size_t)snprintf(got + n, sizeof got - n, "%s%d", any++ ? "," : "", (int)v);
            }
            n += (size_t)snprintf(got + n, sizeof got - n, "}");
        }
        ck_assert_msg(strcmp(got, examples[x].sets) == 0, "example %zu via qk_forward:\n got  %s\n want %s", x,
                      got, examples[x].sets);
        tt_free(attn);
    }
}
END_TEST

START_TEST(rpb_examples)
{
    /* spec 2: L=7,K=3: query 0 -> {2,3,4}, 1-5 -> {1,2,3}, 6 -> {0,1,2};
     * L=10,K=3,d=2: 0,1 -> {2,3,4}; 2-7 -> {1,2,3}; 8,9 -> {0,1,2}. */
    static const struct { int L, d; int first[10]; } want[] = {
        {7, 1, {2, 1, 1, 1, 1, 1, 0}},
        {10, 2, {2, 2, 1, 1, 1, 1, 1, 1, 0, 0}},
    };
    for (int x = 0; x < 2; x++) {
        int64_t S[1] = {want[x].L};
        int K[1] = {3}, d[1] = {want[x].d}, c[1] = {0};
        tt *attn;
        slot_keys(1, S, K, d, c, &attn, 1);
        for (int i = 0; i < want[x].L; i++)
            for (int t = 0; t < 3; t++) {
                double v = tt_get(attn, (int64_t)i * 3 + t);
                int e = (int)(v / 1000.0 + 0.5);
                ck_assert_msg(e == want[x].first[i] + t, "L=%d d=%d query %d slot %d: bias index %d, want %d",
                              want[x].L, want[x].d, i, t, e, want[x].first[i] + t);
            }
        tt_free(attn);
    }
}
END_TEST

/* K = extent on every axis, not causal: fused NA equals plain softmax attention. */
START_TEST(full_window_is_self_attention)
{
    const int64_t B = 2, H = 2, D = 5, X = 4, Y = 5, N = X * Y;
    int64_t shape[5] = {B, X, Y, H, D}, ls[4] = {B, X, Y, H};
    int K[2] = {4, 5};
    uint64_t rng = 12345;
    natten_context *ctx;
    natten_params p;
    tt *q = f64(5, shape), *k = f64(5, shape), *v = f64(5, shape), *o = f64(5, shape), *lse;
    DLDataType f32 = {kDLFloat, 32, 1};
    lse = tt_new(4, ls, f32, TT_COMPACT, 0, kDLCPU);
    tt_fill_random(q, &rng, 1);
    tt_fill_random(k, &rng, 1);
    tt_fill_random(v, &rng, 1);
    natten_params_init(&p, 2, K);
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    tt_poison(o);
    ck_assert_int_eq(natten_fna_forward(ctx, &p, &q->t, &k->t, &v->t, NULL, &o->t, &lse->t), NATTEN_SUCCESS);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < N; i++)
            for (int64_t h = 0; h < H; h++) {
                double z[20], m = -INFINITY, s = 0;
                for (int64_t j = 0; j < N; j++) {
                    z[j] = 0;
                    for (int64_t c = 0; c < D; c++)
                        z[j] += tt_get(q, ((b * N + i) * H + h) * D + c) * tt_get(k, ((b * N + j) * H + h) * D + c);
                    z[j] /= sqrt((double)D);
                    if (z[j] > m) m = z[j];
                }
                for (int64_t j = 0; j < N; j++) s += exp(z[j] - m);
                ck_assert(fabs(tt_get(lse, (b * N + i) * H + h) - (m + log(s))) < 1e-5);
                for (int64_t c = 0; c < D; c++) {
                    double want = 0;
                    for (int64_t j = 0; j < N; j++) want += exp(z[j] - m) / s * tt_get(v, ((b * N + j) * H + h) * D + c);
                    ck_assert(fabs(tt_get(o, ((b * N + i) * H + h) * D + c) - want) < 1e-12);
                }
            }
    natten_context_destroy(ctx);
    tt_free(q); tt_free(k); tt_free(v); tt_free(o); tt_free(lse);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("window");
    TCase *tc = tcase_create("neighbourhoods");
    SRunner *sr;
    int failed;
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, worked_examples, 0, (int)(sizeof examples / sizeof examples[0]));
    tcase_add_test(tc, exhaustive_small);
    tcase_add_test(tc, slot_order_2d);
    tcase_add_test(tc, slots_match_examples);
    tcase_add_test(tc, rpb_examples);
    tcase_add_test(tc, full_window_is_self_attention);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
