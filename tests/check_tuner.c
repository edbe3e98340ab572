/*
 * check_tuner.c - the measurement machinery of measured selection (lib/tune.c)
 * driven with fake backends, since a build with the naive backend alone has
 * a single candidate.  Linked against lib/tune.c and its few dependencies
 * directly (not libnatten), so that internal functions are reachable.
 *
 * Fakes sleep for a time that depends on backend and configuration, so that
 * the order of the timings is known (gaps of 20+ ms, wide enough for a loaded
 * machine's scheduling noise); one fails, one is refused up front, one
 * brings its own scratch allocator and timer (as GPU backends do).  Pruning
 * is tested with scripted timers (no clock involved): each call of a
 * scripted backend's time_op reports the next time of its script.
 */
#include "natten-impl.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a small fna_forward problem with real tensors ----------------------- */

#define L 12
#define H 2
#define D 4

static float qkv[3][L * H * D], out_buf[L * H * D], lse_buf[L * H];
static int64_t tok_shape[4] = {1, L, H, D}, lse_shape[3] = {1, L, H};

static void make_problem(natten_problem *p, int kernel, const int64_t *out_strides)
{
    static DLTensor t[NATTEN_ARG_COUNT];
    const DLTensor *arg[NATTEN_ARG_COUNT] = {0};
    natten_params params;
    for (int a = 0; a < 3; a++) {
        t[a] = (DLTensor){qkv[a], {kDLCPU, 0}, 4, {kDLFloat, 32, 1}, tok_shape, NULL, 0};
        arg[a] = &t[a];
    }
    t[NATTEN_ARG_OUT] = (DLTensor){out_buf, {kDLCPU, 0}, 4, {kDLFloat, 32, 1}, tok_shape, (int64_t *)out_strides, 0};
    t[NATTEN_ARG_LSE] = (DLTensor){lse_buf, {kDLCPU, 0}, 3, {kDLFloat, 32, 1}, lse_shape, NULL, 0};
    arg[NATTEN_ARG_OUT] = &t[NATTEN_ARG_OUT];
    arg[NATTEN_ARG_LSE] = &t[NATTEN_ARG_LSE];
    memset(&params, 0, sizeof params); /* natten_params_init lives in context.c, not linked here */
    params.rank = 1;
    params.kernel_size[0] = kernel;
    params.dilation[0] = params.stride[0] = 1;
    ck_assert_msg(natten_validate(p, NATTEN_OP_FNA_FORWARD, &params, arg) == NATTEN_SUCCESS, "%s",
                  natten_last_error());
}

/* ---- fake backends -------------------------------------------------------- */

static int calls[4], allocs, frees, timer_calls;
static int wrote_caller_output;

static void sleep_ms(double ms)
{
    struct timespec t = {(time_t)(ms / 1e3), (long)(fmod(ms, 1e3) * 1e6)};
    while (nanosleep(&t, &t) != 0) {}
}

/* Write every output it is given (as a real op would) and notice if that is
 * the caller's buffer. */
static void scribble(const natten_problem *p)
{
    if (p->arg[NATTEN_ARG_OUT].data == (char *)out_buf || p->arg[NATTEN_ARG_LSE].data == (char *)lse_buf)
        wrote_caller_output = 1;
    for (int64_t x = 0; x < L; x++)
        for (int64_t h = 0; h < p->heads; h++) { /* the tuner's cut problem has fewer */
            for (int64_t c = 0; c < D; c++)
                ((float *)p->arg[NATTEN_ARG_OUT].data)[natten_off(&p->arg[NATTEN_ARG_OUT], 0, x, 0, 0, h, c)] = 1;
            ((float *)p->arg[NATTEN_ARG_LSE].data)[natten_off(&p->arg[NATTEN_ARG_LSE], 0, x, 0, 0, h, 0)] = 1;
        }
}

static const double fast_ms[] = {60, 2, 25}; /* per configuration: config 1 is fastest */

static natten_status fast_op(const natten_problem *p, const natten_exec *x)
{
    calls[0]++;
    scribble(p);
    sleep_ms(fast_ms[x->config]);
    return NATTEN_SUCCESS;
}

static natten_status slow_op(const natten_problem *p, const natten_exec *x)
{
    (void)x;
    calls[1]++;
    scribble(p);
    sleep_ms(100);
    return NATTEN_SUCCESS;
}

static natten_status broken_op(const natten_problem *p, const natten_exec *x)
{
    (void)p; (void)x;
    calls[2]++;
    return natten_error(NATTEN_ERROR_DEVICE, "the fake device fell over");
}

static natten_status never_op(const natten_problem *p, const natten_exec *x)
{
    (void)p; (void)x;
    calls[3]++;
    return NATTEN_SUCCESS;
}

static void *fake_alloc(size_t bytes, const natten_exec *x)
{
    (void)x;
    allocs++;
    return malloc(bytes);
}

static void fake_free(void *ptr, const natten_exec *x)
{
    (void)x;
    frees++;
    free(ptr);
}

/* A device timer: reports a fixed median without running reps times. */
static natten_status fake_timer(natten_op_fn fn, const natten_problem *p, const natten_exec *x, int reps,
                                double *median_ms)
{
    natten_status st = fn(p, x);
    (void)reps;
    timer_calls++;
    *median_ms = 0.25;
    return st;
}

static int yes(const natten_problem *p, char *why, size_t len) { (void)p; (void)why; (void)len; return 1; }

static const char *const fast_configs[] = {"big", "small", "medium"};
static const natten_backend fake_fast = {
    .name = "fast", .device_type = kDLCPU, .supports = yes, .op = {[NATTEN_OP_FNA_FORWARD] = fast_op},
    .n_configs = 3, .config_names = fast_configs,
};
static const natten_backend fake_slow = {
    .name = "slow", .device_type = kDLCPU, .supports = yes, .op = {[NATTEN_OP_FNA_FORWARD] = slow_op},
    .scratch_alloc = fake_alloc, .scratch_free = fake_free,
};
static const natten_backend fake_broken = {
    .name = "broken", .device_type = kDLCPU, .supports = yes, .op = {[NATTEN_OP_FNA_FORWARD] = broken_op},
    .scratch_alloc = fake_alloc, .scratch_free = fake_free,
};
static const natten_backend fake_refused = {
    .name = "refused", .device_type = kDLCPU, .supports = yes, .op = {[NATTEN_OP_FNA_FORWARD] = never_op},
};
static const natten_backend fake_timed = {
    .name = "timed", .device_type = kDLCPU, .supports = yes, .op = {[NATTEN_OP_FNA_FORWARD] = slow_op},
    .scratch_alloc = fake_alloc, .scratch_free = fake_free, .time_op = fake_timer,
};

/* A host-clock backend whose configuration 0 runs into a slow episode during
 * its first-pass block (its first 4 calls: a cold run, a warm one and 2 more
 * for reps 3) and is the fastest afterwards; configuration 1 is steady;
 * configuration 2 is far slower (over REFINE_FACTOR x the best). */
static int episode_calls[3];
static natten_status episode_op(const natten_problem *p, const natten_exec *x)
{
    static const double steady[3] = {6, 10, 50};
    scribble(p);
    sleep_ms(x->config == 0 && episode_calls[0] < 4 ? 18 : steady[x->config]);
    episode_calls[x->config]++;
    return NATTEN_SUCCESS;
}
static const char *const episode_configs[] = {"episodic", "steady", "slow"};
static const natten_backend fake_episode = {
    .name = "episode", .device_type = kDLCPU, .supports = yes, .op = {[NATTEN_OP_FNA_FORWARD] = episode_op},
    .n_configs = 3, .config_names = episode_configs,
};

/* Also resets the counters (tests may run unforked: CK_FORK=no). */
static void poison_caller(void)
{
    memset(calls, 0, sizeof calls);
    allocs = frees = timer_calls = wrote_caller_output = 0;
    memset(out_buf, 0xff, sizeof out_buf);
    memset(lse_buf, 0xff, sizeof lse_buf);
}

static int caller_untouched(void)
{
    const unsigned char *a = (const unsigned char *)out_buf, *b = (const unsigned char *)lse_buf;
    for (size_t i = 0; i < sizeof out_buf; i++) if (a[i] != 0xff) return 0;
    for (size_t i = 0; i < sizeof lse_buf; i++) if (b[i] != 0xff) return 0;
    return 1;
}

START_TEST(fastest_wins_on_scratch)
{
    natten_problem p;
    natten_exec x = {0, NULL, 0};
    natten_candidate c[6];
    int ok = -1;
    memset(c, 0, sizeof c);
    c[0].backend = &fake_broken;
    c[1].backend = &fake_slow;
    for (int k = 0; k < 3; k++) { c[2 + k].backend = &fake_fast; c[2 + k].config = k; }
    c[5].backend = &fake_refused;
    c[5].status = NATTEN_ERROR_UNSUPPORTED;
    snprintf(c[5].why, sizeof c[5].why, "refuses: a fake reason");
    make_problem(&p, 5, NULL);
    poison_caller();
    ck_assert_int_eq(natten_measure(&p, &x, c, 6, 3, 0, &ok), NATTEN_SUCCESS);
    ck_assert_int_eq(ok, 4);
    /* fastest first: fast/small, fast/medium, fast/big, slow; then broken, refused in order */
    ck_assert_ptr_eq(c[0].backend, &fake_fast);
    ck_assert_int_eq(c[0].config, 1);
    ck_assert_int_eq(c[1].config, 2);
    ck_assert_int_eq(c[2].config, 0);
    ck_assert_ptr_eq(c[3].backend, &fake_slow);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(c[i].status, NATTEN_SUCCESS);
    for (int i = 1; i < 4; i++) ck_assert(c[i].ms >= c[i - 1].ms);
    ck_assert(c[0].ms >= 1.9 && c[3].ms >= 99);
    ck_assert_ptr_eq(c[4].backend, &fake_broken);
    ck_assert_int_eq(c[4].status, NATTEN_ERROR_DEVICE);
    ck_assert(c[4].ms < 0);
    ck_assert_msg(strstr(c[4].why, "fell over") != NULL, "%s", c[4].why);
    ck_assert_ptr_eq(c[5].backend, &fake_refused);
    ck_assert_int_eq(c[5].status, NATTEN_ERROR_UNSUPPORTED);
    ck_assert_str_eq(c[5].why, "refuses: a fake reason");
    /* one warm-up + 3 runs each; refused never ran; the broken one stopped at its warm-up */
    ck_assert_int_eq(calls[0], 3 * 4);
    ck_assert_int_eq(calls[1], 4);
    ck_assert_int_eq(calls[2], 1);
    ck_assert_int_eq(calls[3], 0);
    /* the caller's outputs were never handed out, let alone written */
    ck_assert(!wrote_caller_output);
    ck_assert(caller_untouched());
    /* the backend's own scratch allocator: out + lse, each freed */
    ck_assert_int_eq(allocs, 4);
    ck_assert_int_eq(frees, 4);
}
END_TEST

/* The candidates of the best one's host-clock backend that came within 2x of
 * it are timed again in interleaved rounds (a warm run, then a timed one,
 * each in turn): a slow episode during one candidate's first-pass block no
 * longer decides the pick. */
START_TEST(refinement_interleaves)
{
    natten_problem p;
    natten_exec x = {0, NULL, 0};
    natten_candidate c[3];
    int ok;
    memset(c, 0, sizeof c);
    memset(episode_calls, 0, sizeof episode_calls);
    for (int k = 0; k < 3; k++) { c[k].backend = &fake_episode; c[k].config = k; }
    make_problem(&p, 5, NULL);
    poison_caller();
    ck_assert_int_eq(natten_measure(&p, &x, c, 3, 3, 0, &ok), NATTEN_SUCCESS);
    ck_assert_int_eq(ok, 3);
    /* first pass: episodic 18 ms (within 2x of steady's 10), then 3 rounds: 6 ms against 10 */
    ck_assert_msg(c[0].config == 0 && c[1].config == 1 && c[2].config == 2, "order %d %d %d", c[0].config,
                  c[1].config, c[2].config);
    ck_assert_msg(c[0].ms > 5 && c[0].ms < 9, "episodic: %g ms", c[0].ms);
    ck_assert_int_eq(c[0].runs, 3 + 3);
    ck_assert_int_eq(c[1].runs, 3 + 3);
    ck_assert_int_eq(c[2].runs, 3); /* 50 ms: not a contender */
    /* 1 cold + 3 first-pass runs, then 2 runs in each of 3 rounds; the slow one only its first pass */
    ck_assert_int_eq(episode_calls[0], 4 + 6);
    ck_assert_int_eq(episode_calls[1], 4 + 6);
    ck_assert_int_eq(episode_calls[2], 4);
    ck_assert(!wrote_caller_output);
    ck_assert(caller_untouched());
}
END_TEST

START_TEST(backend_timer_and_layout)
{
    /* out strided (heads-first): scratch keeps the layout and the span */
    static const int64_t heads_first[4] = {L * H * D, D, L * D, 1};
    natten_problem p;
    natten_exec x = {0, NULL, 0};
    natten_candidate c[2];
    int ok;
    memset(c, 0, sizeof c);
    c[0].backend = &fake_slow;
    c[1].backend = &fake_timed;
    make_problem(&p, 3, heads_first);
    poison_caller();
    ck_assert_int_eq(natten_measure(&p, &x, c, 2, 5, 0, &ok), NATTEN_SUCCESS);
    ck_assert_int_eq(ok, 2);
    ck_assert_ptr_eq(c[0].backend, &fake_timed); /* its timer said 0.25 ms */
    ck_assert(c[0].ms == 0.25);
    /* a first run (reps 0: no warm-up), a first warm run, then the median of reps */
    ck_assert_int_eq(timer_calls, 3);
    ck_assert(caller_untouched());
    ck_assert_int_eq(allocs, frees);
}
END_TEST

/* ---- pruning: scripted timers ----------------------------------------- */

/* Per backend a script of times, one per time_op call (reps 0 or 1: the
 * time of one run; reps > 1: the median); the calls are recorded. */
typedef struct script {
    double t[4];
    int calls, reps[8];
    /* the pre-probe on the cut problem (heads 2 -> 1: 1/2 size): its cold and
     * warm run's times, and what it saw */
    double probe[2];
    int probe_calls, probe_batch, probe_heads, probe_heads_kv;
    int64_t probe_q_heads, probe_out_heads;
} script;
static script scripts[5];

static natten_status scripted_timer(natten_op_fn fn, const natten_problem *p, const natten_exec *x, int reps,
                                    double *median_ms)
{
    natten_status st = fn(p, x); /* the op does run (on scratch) */
    script *s = &scripts[x->config];
    if (p->heads == 1) { /* the cut problem (the full one has H = 2 heads) */
        ck_assert_int_eq(reps, 0);
        *median_ms = s->probe[s->probe_calls < 2 ? s->probe_calls : 1];
        s->probe_calls++;
        s->probe_batch = (int)p->batch;
        s->probe_heads = (int)p->heads;
        s->probe_heads_kv = (int)p->heads_kv;
        s->probe_q_heads = p->arg[NATTEN_ARG_Q].shape[NV_H];
        s->probe_out_heads = p->arg[NATTEN_ARG_OUT].shape[NV_H];
        return st;
    }
    s->reps[s->calls < 8 ? s->calls : 7] = reps;
    *median_ms = s->t[s->calls < 4 ? s->calls : 3];
    s->calls++;
    return st;
}

static natten_status quick_op(const natten_problem *p, const natten_exec *x)
{
    (void)x;
    scribble(p);
    return NATTEN_SUCCESS;
}

/* One backend, five configurations, each scripted (the config picks the script). */
static const char *const scripted_configs[] = {"a", "b", "c", "d", "e"};
static const natten_backend fake_scripted = {
    .name = "scripted", .device_type = kDLCPU, .supports = yes, .op = {[NATTEN_OP_FNA_FORWARD] = quick_op},
    .n_configs = 5, .config_names = scripted_configs, .time_op = scripted_timer,
};

static void run_scripted(double prune, natten_candidate *c, int *ok)
{
    natten_problem p;
    natten_exec x = {0, NULL, 0};
    memset(c, 0, 5 * sizeof *c);
    for (int k = 0; k < 5; k++) {
        c[k].backend = &fake_scripted;
        c[k].config = k;
    }
    make_problem(&p, 3, NULL);
    poison_caller();
    ck_assert_int_eq(natten_measure(&p, &x, c, 5, 5, prune, ok), NATTEN_SUCCESS);
    ck_assert(caller_untouched());
}

static void set_scripts(void)
{
    /* {cold run, first warm run, median of reps} in ms */
    static const double t[5][3] = {
        {12.0, 10.0, 10.0},    /* a: first, sets the best (10) */
        {40.0, 35.0, 34.0},    /* b: warm 35 > 3 x 10: pruned after its warm run */
        {5000.0, 4000.0, 1},   /* c: cold 5 s > 1 s and > 3 x 10: pruned after one run */
        {9.0, 8.0, 7.5},       /* d: the winner */
        {25.0, 20.0, 20.0},    /* e: warm 20 < 3 x 7.5: timed in full */
    };
    memset(scripts, 0, sizeof scripts);
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < 3; i++) scripts[k].t[i] = t[k][i];
}

START_TEST(pruning_is_deterministic)
{
    natten_candidate c[5];
    int ok = 0;
    set_scripts();
    run_scripted(3.0, c, &ok);
    ck_assert_int_eq(ok, 5);
    /* calls per candidate: a, d and e: cold (reps 0), warm (reps 0), median (reps 5);
     * b: cold, warm; c: cold only */
    ck_assert_int_eq(scripts[0].calls, 3);
    ck_assert_int_eq(scripts[1].calls, 2);
    ck_assert_int_eq(scripts[2].calls, 1);
    ck_assert_int_eq(scripts[3].calls, 3);
    ck_assert_int_eq(scripts[4].calls, 3);
    ck_assert_int_eq(scripts[0].reps[0], 0);
    ck_assert_int_eq(scripts[0].reps[1], 0);
    ck_assert_int_eq(scripts[0].reps[2], 5);
    /* fastest first: d 7.5, a 10, e 20, b 35 (pruned on its warm run), c 5000 (pruned on its
     * cold run: over a second and hopeless) */
    ck_assert_int_eq(c[0].config, 3);
    ck_assert(c[0].ms == 7.5 && c[0].runs == 5 && !c[0].pruned && c[0].why[0] == '\0');
    ck_assert_int_eq(c[1].config, 0);
    ck_assert(c[1].ms == 10.0 && c[1].runs == 5 && !c[1].pruned);
    ck_assert_int_eq(c[2].config, 4);
    ck_assert(c[2].ms == 20.0 && c[2].runs == 5 && !c[2].pruned);
    ck_assert_int_eq(c[3].config, 1);
    ck_assert(c[3].ms == 35.0 && c[3].runs == 1 && c[3].pruned);
    ck_assert_int_eq(c[3].status, NATTEN_SUCCESS);
    ck_assert_msg(strstr(c[3].why, "pruned: 1 run, 3.5x the best so far") != NULL, "%s", c[3].why);
    ck_assert_int_eq(c[4].config, 2);
    ck_assert(c[4].ms == 5000.0 && c[4].runs == 1 && c[4].pruned);
    ck_assert_msg(strstr(c[4].why, "pruned") != NULL, "%s", c[4].why);
}
END_TEST

START_TEST(pruning_off_times_everything)
{
    natten_candidate c[5];
    int ok = 0;
    set_scripts();
    scripts[2].t[1] = 3000.0; /* c: slow cold run, so its warm run is its time */
    run_scripted(0, c, &ok);
    ck_assert_int_eq(ok, 5);
    for (int k = 0; k < 5; k++) ck_assert(!c[k].pruned);
    ck_assert_int_eq(scripts[1].calls, 3); /* b timed in full */
    ck_assert_int_eq(scripts[2].calls, 2); /* c: cold over a second: timed once more only */
    ck_assert_int_eq(c[0].config, 3);
    ck_assert_int_eq(c[4].config, 2);
    ck_assert(c[4].ms == 3000.0 && c[4].runs == 1);
}
END_TEST

/* The first candidate has no best to compare with and is never pruned, so a
 * winner always exists; a pruned candidate never comes first. */
START_TEST(first_is_never_pruned)
{
    natten_candidate c[5];
    int ok = 0;
    set_scripts();
    scripts[0].t[0] = 9000.0; /* a: a slow first run, and still first in line */
    scripts[0].t[1] = 9000.0;
    run_scripted(1.0, c, &ok); /* the harshest factor */
    ck_assert_int_eq(ok, 5);
    ck_assert(!c[0].pruned);
    for (int i = 1; i < 5; i++) ck_assert(c[i].ms >= c[0].ms);
    ck_assert_int_eq(scripts[0].calls, 2); /* a: cold over a second: timed once more only */
    /* the fully timed ones first, fastest first: d 7.5, b 34, a 9000 (timed once) */
    ck_assert(c[0].config == 3 && c[0].ms == 7.5);
    ck_assert(c[1].config == 1 && !c[1].pruned && c[1].ms == 34.0);
    ck_assert(c[2].config == 0 && !c[2].pruned && c[2].ms == 9000.0 && c[2].runs == 1);
    /* then the pruned ones by their single time: e (warm 20 > 1 x 7.5, d's), c (cold 5000) */
    ck_assert(c[3].config == 4 && c[3].pruned && c[3].ms == 20.0);
    ck_assert(c[4].config == 2 && c[4].pruned && c[4].ms == 5000.0);
}
END_TEST

/* The pre-probe: c's probe says 2600 ms warm (after a 9000 ms cold run that
 * paid for loading code), so 5200 ms predicted for the full problem (twice
 * the work), > 1 s and > 3 x 10: pruned with no full-size run at all. */
START_TEST(probe_prunes_before_the_first_full_run)
{
    natten_candidate c[5];
    int ok = 0;
    set_scripts();
    scripts[2].probe[0] = 9000.0;
    scripts[2].probe[1] = 2600.0;
    for (int k = 0; k < 5; k++)
        if (k != 2) scripts[k].probe[0] = scripts[k].probe[1] = 1.0; /* predicted 2 ms: not hopeless */
    run_scripted(3.0, c, &ok);
    ck_assert_int_eq(ok, 5);
    ck_assert_int_eq(scripts[2].calls, 0);       /* never run at full size */
    ck_assert_int_eq(scripts[2].probe_calls, 2); /* cold + warm on the cut problem */
    ck_assert_int_eq(scripts[0].probe_calls, 0); /* a: first, no best yet: no probe */
    for (int k = 1; k < 5; k++) ck_assert_int_eq(scripts[k].probe_calls, 2);
    /* the cut: batch 1, one head of q and out (this problem has no GQA) */
    ck_assert_int_eq(scripts[2].probe_batch, 1);
    ck_assert_int_eq(scripts[2].probe_heads, 1);
    ck_assert_int_eq(scripts[2].probe_heads_kv, 1);
    ck_assert_int_eq(scripts[2].probe_q_heads, 1);
    ck_assert_int_eq(scripts[2].probe_out_heads, 1);
    /* the others are timed as without a probe (b pruned on its warm run) */
    ck_assert_int_eq(scripts[1].calls, 2);
    ck_assert_int_eq(scripts[3].calls, 3);
    ck_assert_int_eq(c[0].config, 3);
    ck_assert_int_eq(c[4].config, 2);
    ck_assert(c[4].pruned && c[4].runs == 0 && c[4].ms == 5200.0 && c[4].status == NATTEN_SUCCESS);
    ck_assert_msg(strstr(c[4].why, "pruned: predicted 5200 ms from a 1/2-size probe") != NULL, "%s", c[4].why);
}
END_TEST

/* A prediction under a second is never pruned on the probe (the full first
 * run is cheap, and a small probe may underfill a GPU); nor is one within
 * f x best; with pruning off there is no probe at all. */
START_TEST(probe_spares_cheap_and_close_candidates)
{
    natten_candidate c[5];
    int ok = 0;
    set_scripts();
    scripts[1].probe[0] = scripts[1].probe[1] = 400.0; /* b: 800 ms predicted: hopeless but cheap */
    scripts[4].probe[0] = scripts[4].probe[1] = 11.0;  /* e: 22 ms < 3 x 7.5 */
    run_scripted(3.0, c, &ok);
    ck_assert_int_eq(ok, 5);
    ck_assert_int_eq(scripts[1].probe_calls, 2);
    ck_assert_int_eq(scripts[1].calls, 2); /* its full runs decide: pruned on its warm run */
    ck_assert_int_eq(scripts[4].calls, 3);
    ck_assert_int_eq(c[3].config, 1);
    ck_assert(c[3].pruned && c[3].runs == 1 && c[3].ms == 35.0);
    set_scripts();
    scripts[2].probe[0] = scripts[2].probe[1] = 2600.0;
    run_scripted(0, c, &ok);
    for (int k = 0; k < 5; k++) ck_assert_int_eq(scripts[k].probe_calls, 0);
    ck_assert_int_eq(scripts[2].calls, 2);
    /* a best under 1 ms: no probe either (c then costs its one full run) */
    set_scripts();
    scripts[0].t[0] = scripts[0].t[1] = scripts[0].t[2] = 0.9;
    scripts[2].probe[0] = scripts[2].probe[1] = 2600.0;
    run_scripted(3.0, c, &ok);
    for (int k = 0; k < 5; k++) ck_assert_int_eq(scripts[k].probe_calls, 0);
    ck_assert_int_eq(scripts[2].calls, 1);
    ck_assert_msg(strstr(c[4].why, "pruned: 1 run") != NULL, "%s", c[4].why);
}
END_TEST

/* The cut never changes what a candidate supports: a backend that refuses
 * the cut problem, or fails on it, is timed on the full problem as usual. */
static int refuses_one_head(const natten_problem *p, char *why, size_t len)
{
    if (p->heads < 2) { snprintf(why, len, "wants 2 heads"); return 0; }
    return 1;
}

static int cut_calls, full_calls;
static natten_status fails_on_cut_op(const natten_problem *p, const natten_exec *x)
{
    (void)x;
    if (p->heads < 2) { cut_calls++; return natten_error(NATTEN_ERROR_DEVICE, "no cut for me"); }
    full_calls++;
    scribble(p);
    sleep_ms(1);
    return NATTEN_SUCCESS;
}

/* first in line: sets a best of ~3 ms (over the 1 ms below which nothing is probed) */
static natten_status tiny_op(const natten_problem *p, const natten_exec *x)
{
    (void)x;
    scribble(p);
    sleep_ms(3);
    return NATTEN_SUCCESS;
}

static const natten_backend fake_tiny = {
    .name = "tiny", .device_type = kDLCPU, .supports = yes, .op = {[NATTEN_OP_FNA_FORWARD] = tiny_op},
};
static const natten_backend fake_picky = {
    .name = "picky", .device_type = kDLCPU, .supports = refuses_one_head,
    .op = {[NATTEN_OP_FNA_FORWARD] = fails_on_cut_op},
};
static const natten_backend fake_flaky = {
    .name = "flaky", .device_type = kDLCPU, .supports = yes, .op = {[NATTEN_OP_FNA_FORWARD] = fails_on_cut_op},
};

START_TEST(probe_refused_or_failed_falls_back)
{
    natten_problem p;
    natten_exec x = {0, NULL, 0};
    natten_candidate c[3];
    int ok = 0;
    memset(c, 0, sizeof c);
    c[0].backend = &fake_tiny;
    c[1].backend = &fake_picky;
    c[2].backend = &fake_flaky;
    make_problem(&p, 3, NULL);
    poison_caller();
    cut_calls = full_calls = 0;
    ck_assert_int_eq(natten_measure(&p, &x, c, 3, 3, 1e6, &ok), NATTEN_SUCCESS);
    ck_assert_int_eq(ok, 3);
    ck_assert_int_eq(cut_calls, 1);        /* flaky only: picky refused the cut, never ran it */
    ck_assert_int_eq(full_calls, 2 * 4);   /* both timed in full: a warm-up and 3 runs */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(c[i].status, NATTEN_SUCCESS);
        ck_assert(!c[i].pruned && c[i].runs == 3);
        ck_assert_msg(c[i].why[0] == '\0', "%s", c[i].why);
    }
    ck_assert(caller_untouched());
}
END_TEST

START_TEST(signatures)
{
    static const int64_t heads_first[4] = {L * H * D, D, L * D, 1};
    natten_problem a, b, c, d;
    char sa[NATTEN_SIG_LEN], sb[NATTEN_SIG_LEN], sc[NATTEN_SIG_LEN], sd[NATTEN_SIG_LEN];
    make_problem(&a, 5, NULL);
    make_problem(&b, 5, NULL);
    make_problem(&c, 3, NULL);
    make_problem(&d, 5, heads_first);
    natten_signature(&a, sa);
    natten_signature(&b, sb);
    natten_signature(&c, sc);
    natten_signature(&d, sd);
    ck_assert_str_eq(sa, sb);
    ck_assert_str_ne(sa, sc); /* K */
    ck_assert_str_ne(sa, sd); /* layout class of out */
    ck_assert_msg(strncmp(sa, "cpu:0/fna_forward/float32/", 26) == 0, "%s", sa);
    for (const char *s = sa; *s; s++)
        ck_assert_msg(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:,./=-", *s) != NULL,
                      "signature '%s' has '%c'", sa, *s);
    ck_assert_int_eq(natten_config_count(&fake_fast), 3);
    ck_assert_int_eq(natten_config_count(&fake_slow), 1);
    ck_assert_str_eq(natten_config_name(&fake_fast, 2), "medium");
    ck_assert_str_eq(natten_config_name(&fake_slow, 0), "default");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tuner");
    TCase *tc = tcase_create("measure");
    SRunner *sr;
    int failed;
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fastest_wins_on_scratch);
    tcase_add_test(tc, backend_timer_and_layout);
    tcase_add_test(tc, refinement_interleaves);
    tcase_add_test(tc, pruning_is_deterministic);
    tcase_add_test(tc, pruning_off_times_everything);
    tcase_add_test(tc, first_is_never_pruned);
    tcase_add_test(tc, probe_prunes_before_the_first_full_run);
    tcase_add_test(tc, probe_spares_cheap_and_close_candidates);
    tcase_add_test(tc, probe_refused_or_failed_falls_back);
    tcase_add_test(tc, signatures);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
