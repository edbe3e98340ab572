/*
 * check_threads.c - one library, many threads.
 *
 * 8 threads each make 200 random calls (op, problem, dtype, layout drawn per
 * call), all on one shared context (heuristic, then measured selection, where
 * threads time candidates and share the cache of winners) or each on its own
 * context, and check every result
 * against the dense reference.  One call in eight is deliberately wrong (a
 * head dim of 1000 + the thread's number) and must fail with this thread's
 * own message: the error text is thread-local.  Between calls threads read
 * the shared context's last backend, the backend list and the version string.
 * Run it under ThreadSanitizer (docs/reliability.md) to prove the absence of
 * data races, not just of wrong answers.
 */
#include "cases.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 8
#define CALLS 200

static const struct {
    const char *dtype;
    double limit; /* max |x - reference| / max(1, max |reference|) */
} dtypes[] = {{"float64", 1e-10}, {"float32", 1e-4}, {"float16", 1e-2}, {"bfloat16", 5e-2}};

static uint64_t seed;

typedef struct {
    int id;
    natten_context *ctx;
    int calls, wrong, ok;
    char failure[512];
} worker;

#define FAIL(w, ...) do { if (!(w)->failure[0]) snprintf((w)->failure, sizeof (w)->failure, __VA_ARGS__); } while (0)

/* A deliberately invalid call: q's head dim is 1000 + id, k's is not. */
static void wrong_call(worker *w, tc_io *io)
{
    char want[64];
    int64_t saved;
    natten_status st;
    tt *q = io->t[R_Q] ? io->t[R_Q] : io->t[R_V];
    if (q == NULL) return;
    saved = q->shape[q->t.ndim - 1];
    q->shape[q->t.ndim - 1] = 1000 + w->id;
    st = tc_run(w->ctx, io);
    q->shape[q->t.ndim - 1] = saved;
    snprintf(want, sizeof want, "=%d", 1000 + w->id);
    if (st != NATTEN_ERROR_INVALID_ARGUMENT)
        FAIL(w, "thread %d: wrong call gave %s", w->id, natten_status_string(st));
    else if (strstr(natten_last_error(), want) == NULL)
        FAIL(w, "thread %d: error message is not this thread's: '%s' (want '%s')", w->id, natten_last_error(),
             want);
    w->wrong++;
}

static void *work(void *arg)
{
    worker *w = arg;
    uint64_t rng = seed * 31 + (uint64_t)w->id;
    for (int call = 0; call < CALLS && !w->failure[0]; call++) {
        int c = (int)(tt_uniform(&rng) * tc_ncases), t = (int)(tt_uniform(&rng) * 4);
        tc_op op = (tc_op)(tt_uniform(&rng) * OP_COUNT);
        tt_layout layout = (tt_layout)(tt_uniform(&rng) * TT_LAYOUT_COUNT);
        tc_io io;
        natten_status st;
        natten_backend_info info;
        double *ref[R_COUNT];
        w->calls++;
        if (!tc_setup(&io, &tc_cases[c].r, op, tt_dtype(dtypes[t].dtype), layout, kDLCPU, &rng)) {
            FAIL(w, "thread %d: setup failed", w->id);
            break;
        }
        if (call % 8 == 7) {
            wrong_call(w, &io);
            tc_teardown(&io);
            continue;
        }
        st = tc_run(w->ctx, &io);
        if (st != NATTEN_SUCCESS) {
            FAIL(w, "thread %d: %s on %s: %s (%s)", w->id, tc_op_names[op], tc_cases[c].name,
                 natten_status_string(st), natten_last_error());
            tc_teardown(&io);
            break;
        }
        if (natten_last_error()[0] != '\0') FAIL(w, "thread %d: success left a message: %s", w->id, natten_last_error());
        tc_reference(&io, ref);
        for (int x = 0; x < R_COUNT; x++) {
            tt_err e;
            if (!ref[x]) continue;
            e = tt_compare(io.t[x], ref[x]);
            if (e.bad || e.norm > (x == R_LSE ? 1e-4 : dtypes[t].limit))
                FAIL(w, "thread %d: %s %s layout %d on %s: %s off by %.3g (%lld bad); seed %llu", w->id,
                     tc_op_names[op], dtypes[t].dtype, (int)layout, tc_cases[c].name, tc_role_names[x], e.norm,
                     (long long)e.bad, (unsigned long long)seed);
            free(ref[x]);
        }
        tc_teardown(&io);
        /* read-only queries, concurrently with other threads' calls */
        if (natten_context_last_backend(w->ctx) == NULL) FAIL(w, "thread %d: no last backend", w->id);
        if (natten_backend_get_info(call % natten_backend_count(), &info) != NATTEN_SUCCESS || info.name == NULL)
            FAIL(w, "thread %d: backend info", w->id);
        if (strncmp(natten_version_string(), "libnatten ", 10) != 0) FAIL(w, "thread %d: version", w->id);
        w->ok++;
    }
    return NULL;
}

static void run_threads(int shared, int measured)
{
    pthread_t th[THREADS];
    worker w[THREADS];
    natten_context *one = NULL;
    int ok = 0, wrong = 0;
    if (shared) ck_assert_int_eq(natten_context_create(&one), NATTEN_SUCCESS);
    if (shared && measured) ck_assert_int_eq(natten_context_set_tuning(one, NATTEN_TUNING_MEASURE), NATTEN_SUCCESS);
    memset(w, 0, sizeof w);
    for (int i = 0; i < THREADS; i++) {
        w[i].id = i;
        if (shared) w[i].ctx = one;
        else ck_assert_int_eq(natten_context_create(&w[i].ctx), NATTEN_SUCCESS);
    }
    for (int i = 0; i < THREADS; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
    for (int i = 0; i < THREADS; i++) ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < THREADS; i++) {
        ck_assert_msg(w[i].failure[0] == '\0', "%s", w[i].failure);
        ck_assert_int_eq(w[i].calls, CALLS);
        ok += w[i].ok;
        wrong += w[i].wrong;
        if (!shared) natten_context_destroy(w[i].ctx);
    }
    natten_context_destroy(one);
    printf("threads: %d threads x %d calls on %s: %d correct results, %d invalid calls refused with their own "
           "message\n", THREADS, CALLS,
           !shared ? "a context each" : measured ? "one shared context, measured selection" : "one shared context",
           ok, wrong);
}

START_TEST(shared_context) { run_threads(1, 0); }
END_TEST
START_TEST(shared_context_measured) { run_threads(1, 1); }
END_TEST
START_TEST(separate_contexts) { run_threads(0, 0); }
END_TEST

int main(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("concurrent calls");
    SRunner *sr;
    int failed;
    seed = tt_seed();
    printf("check_threads: seed %llu (set NATTEN_TEST_SEED to repeat)\n", (unsigned long long)seed);
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, shared_context);
    tcase_add_test(tc, shared_context_measured);
    tcase_add_test(tc, separate_contexts);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
