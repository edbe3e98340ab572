/*
 * tune.c - measured selection's two mechanisms, kept free of the registry and
 * the context so that a test can drive them with fake backends: the problem
 * signature (what "the same problem" means for the cache and for wisdom) and
 * the timing of a list of candidates on scratch outputs.
 */
#include "natten-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- signatures -------------------------------------------------------- */

/* Layout class of a role: '-' absent, 'c' compact row-major in logical order,
 * 'i' innermost (head dim) axis unit-stride, 'g' anything else.  Backends
 * decide on these classes (supports()), so problems that differ only within
 * a class run the same code at the same speed. */
static char layout_class(const natten_view *v)
{
    int64_t want = 1;
    int compact = 1;
    if (v->data == NULL) return '-';
    for (int i = 5; i >= 0; i--) {
        if (v->shape[i] <= 1) continue;
        if (v->stride[i] != want) compact = 0;
        want *= v->shape[i];
    }
    if (compact) return 'c';
    return v->shape[NV_C] <= 1 || v->stride[NV_C] == 1 ? 'i' : 'g';
}

static const char *device_kind(DLDeviceType t)
{
    return t == kDLCPU ? "cpu" : t == kDLCUDA ? "cuda" : t == kDLROCM ? "rocm" : "dev";
}

void natten_signature(const natten_problem *p, char buf[NATTEN_SIG_LEN])
{
    char lay[NATTEN_ARG_COUNT + 1];
    for (int a = 0; a < NATTEN_ARG_COUNT; a++) lay[a] = layout_class(&p->arg[a]);
    lay[NATTEN_ARG_COUNT] = '\0';
    snprintf(buf, NATTEN_SIG_LEN,
             "%s:%d/%s/%s/r%d/b%lld/h%lld,%lld/d%lld,%lld/x%lld,%lld,%lld/k%d,%d,%d/dil%d,%d,%d/"
             "s%d,%d,%d/c%d%d%d/%s",
             device_kind(p->device.device_type), p->device.device_id, natten_op_name(p->op),
             natten_dtype_name(p->dtype), p->rank, (long long)p->batch, (long long)p->heads,
             (long long)p->heads_kv, (long long)p->dim, (long long)p->dim_v, (long long)p->extent[0],
             (long long)p->extent[1], (long long)p->extent[2], p->kernel[0], p->kernel[1], p->kernel[2],
             p->dilation[0], p->dilation[1], p->dilation[2], p->stride[0], p->stride[1], p->stride[2],
             p->causal[0], p->causal[1], p->causal[2], lay);
}

int natten_config_count(const natten_backend *b)
{
    return b->n_configs > 1 ? b->n_configs : 1;
}

const char *natten_config_name(const natten_backend *b, int config)
{
    if (b->config_names == NULL || config < 0 || config >= b->n_configs) return "default";
    return b->config_names[config];
}

/* ---- scratch outputs ---------------------------------------------------- */

/* Bytes spanned by an output view (validated: positive, non-overlapping strides). */
static size_t span_bytes(const natten_view *v, size_t esize)
{
    int64_t hi = 0;
    for (int i = 0; i < 6; i++) {
        if (v->shape[i] == 0) return 0;
        if (v->shape[i] > 1) hi += (v->shape[i] - 1) * v->stride[i];
    }
    return (size_t)(hi + 1) * esize;
}

typedef struct scratch {
    void *ptr[NATTEN_ARG_COUNT];
    const natten_backend *b;
    const natten_exec *x;
} scratch;

static void scratch_release(scratch *s)
{
    for (int a = 0; a < NATTEN_ARG_COUNT; a++) {
        if (s->ptr[a] == NULL) continue;
        if (s->b->scratch_free) s->b->scratch_free(s->ptr[a], s->x);
        else natten_free(s->ptr[a]);
        s->ptr[a] = NULL;
    }
}

/* q = p with every non-empty output redirected to fresh memory of the same
 * layout on b's device. */
static natten_status scratch_problem(const natten_problem *p, const natten_backend *b,
                                     const natten_exec *x, natten_problem *q, scratch *s)
{
    *q = *p;
    memset(s, 0, sizeof *s);
    s->b = b;
    s->x = x;
    for (int a = 0; a < NATTEN_ARG_COUNT; a++) {
        size_t es = a == NATTEN_ARG_LSE ? 4 : natten_dtype_size(p->dtype), bytes;
        if (!natten_has(p, (natten_arg)a) || !natten_arg_is_output(p->op, (natten_arg)a)) continue;
        if ((bytes = span_bytes(&p->arg[a], es)) == 0) continue;
        s->ptr[a] = b->scratch_alloc ? b->scratch_alloc(bytes, x) : natten_malloc(bytes);
        if (s->ptr[a] == NULL) {
            scratch_release(s);
            return natten_error(NATTEN_ERROR_OUT_OF_MEMORY,
                                "cannot allocate %zu bytes of scratch for %s on backend %s", bytes,
                                natten_arg_name((natten_arg)a), b->name);
        }
        q->arg[a].data = s->ptr[a];
    }
    return NATTEN_SUCCESS;
}

/* ---- timing ------------------------------------------------------------- */

#define MAX_REPS 15
/* A candidate whose first run takes longer than this is timed once more only
 * (and may be pruned after that first run, see natten_measure). */
#define SLOW_MS 1000.0

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* One run of fn, its time in *ms: the backend's timer without a warm-up
 * (time_op with reps 0), else the host clock. */
static natten_status one_run(const natten_backend *b, natten_op_fn fn, const natten_problem *p,
                             const natten_exec *x, double *ms)
{
    double t0;
    natten_status st;
    if (b->time_op) return b->time_op(fn, p, x, 0, ms);
    t0 = now_ms();
    st = fn(p, x);
    *ms = now_ms() - t0;
    return st;
}

/* Is a time of ms hopeless against the best median so far? */
static int hopeless(double ms, double best, double prune)
{
    return prune > 0 && best > 0 && ms > prune * best;
}

/* Time one candidate on p (outputs already redirected to scratch):
 *   1. a first (cold) run; if it took over SLOW_MS and is hopeless, stop:
 *      pruned after one run;
 *   2. a first warm run; if it is hopeless, stop: pruned; if the cold run
 *      took over SLOW_MS, it is the time (timed once);
 *   3. else the median of reps runs (the backend's timer: its own warm-up,
 *      then reps runs; the host clock: the first warm run and reps - 1 more). */
static natten_status time_one(natten_candidate *c, natten_op_fn fn, const natten_problem *p, const natten_exec *x,
                              int reps, double best, double prune)
{
    const natten_backend *b = c->backend;
    double t[MAX_REPS], cold;
    natten_status st;
    if ((st = one_run(b, fn, p, x, &cold))) return st;
    c->runs = 1;
    c->ms = cold;
    if (cold > SLOW_MS && hopeless(cold, best, prune)) {
        c->pruned = 1;
        return NATTEN_SUCCESS;
    }
    if ((st = one_run(b, fn, p, x, &t[0]))) return st;
    c->ms = t[0];
    if (hopeless(t[0], best, prune)) {
        c->pruned = 1;
        return NATTEN_SUCCESS;
    }
    if (cold > SLOW_MS) return NATTEN_SUCCESS;
    if (b->time_op) {
        if ((st = b->time_op(fn, p, x, reps, &c->ms))) return st;
        c->runs = reps;
        return NATTEN_SUCCESS;
    }
    for (int r = 1; r < reps; r++)
        if ((st = one_run(b, fn, p, x, &t[r]))) return st;
    c->ms = median(t, reps);
    c->runs = reps;
    return NATTEN_SUCCESS;
}

/* ---- the pre-probe ------------------------------------------------------ */

/* Every op does the same work for each (batch, KV-head group) pair: its
 * query heads attend to that group's keys and values only, and nothing
 * couples two batch entries or two groups but d_rpb, a sum over them.  So
 * the problem cut to batch 1 and one group (heads/heads_kv query heads, one
 * KV head; unfused ops have heads == heads_kv: one head) is a 1/n-size
 * problem, n = batch * heads_kv, with the same rank, extents, window, head
 * dims, dtype and strides.  The views keep their strides and base pointers,
 * so the cut reads the first batch entry and group of the caller's inputs.
 * Gives n, or 0 when there is nothing to cut (n = 1). */
static int64_t reduced_problem(const natten_problem *p, natten_problem *r)
{
    int64_t n = p->batch * p->heads_kv, group;
    if (n < 2 || p->heads_kv < 1 || p->heads % p->heads_kv != 0) return 0;
    group = p->heads / p->heads_kv;
    *r = *p;
    r->batch = 1;
    r->heads = group;
    r->heads_kv = 1;
    for (int a = 0; a < NATTEN_ARG_COUNT; a++) {
        natten_view *v = &r->arg[a];
        int kv = a == NATTEN_ARG_K || a == NATTEN_ARG_V || a == NATTEN_ARG_D_K || a == NATTEN_ARG_D_V;
        if (v->data == NULL) continue;
        if (a != NATTEN_ARG_RPB && a != NATTEN_ARG_D_RPB) v->shape[NV_B] = 1;
        v->shape[NV_H] = kv ? 1 : group;
    }
    return n;
}

/* A candidate predicted to take less than this is not pruned on its probe:
 * its full first run is cheap enough, and it sees the real problem (a small
 * probe can underfill a GPU, which makes the linear prediction too high). */
#define PROBE_MIN_MS SLOW_MS
/* Nor is there a probe while the best time is under this: a candidate would
 * have to be over 1000x slower than the best to reach a second, and on such
 * small problems the probe's two calls cost more in call overhead (thread
 * start-up, kernel launches) than they could save. */
#define PROBE_MIN_BEST_MS 1.0

/* Before the first full-size run of a candidate (once some candidate has a
 * best time): time it on the 1/n-size problem (a cold run, then a warm run,
 * which is the time: the cold one may pay for loading code), and predict
 * n x that.  Returns 1 and sets c (pruned, ms = the prediction, runs 0) when
 * the prediction is hopeless; 0 when the full problem must be timed: the
 * prediction is not hopeless, or there is nothing to cut, or the candidate
 * refuses the cut problem or fails on it (so the cut never changes what a
 * candidate supports: the full call decides). */
static int probe_prunes(const natten_problem *p, const natten_exec *x, natten_candidate *c, double best,
                        double prune)
{
    const natten_backend *b = c->backend;
    natten_problem r, q;
    scratch s;
    char why[256];
    double cold, warm, predicted;
    int64_t n;
    natten_status st;
    if (!(prune > 0 && best >= PROBE_MIN_BEST_MS) || (n = reduced_problem(p, &r)) == 0) return 0;
    if (b->supports != NULL && !b->supports(&r, why, sizeof why)) return 0;
    if (scratch_problem(&r, b, x, &q, &s) != NATTEN_SUCCESS) {
        natten_clear_error();
        return 0;
    }
    st = one_run(b, b->op[p->op], &q, x, &cold);
    if (st == NATTEN_SUCCESS) st = one_run(b, b->op[p->op], &q, x, &warm);
    scratch_release(&s);
    natten_clear_error();
    if (st != NATTEN_SUCCESS) return 0;
    predicted = warm * (double)n;
    if (predicted < PROBE_MIN_MS || !hopeless(predicted, best, prune)) return 0;
    c->ms = predicted;
    c->runs = 0;
    c->pruned = 1;
    snprintf(c->why, sizeof c->why, "pruned: predicted %.4g ms from a 1/%lld-size probe (%.4g ms), %.1fx the best so far (%.4g ms)",
             predicted, (long long)n, warm, predicted / best, best);
    return 1;
}

static void time_candidate(const natten_problem *p, const natten_exec *base, natten_candidate *c, int reps,
                           double best, double prune)
{
    natten_problem q;
    natten_exec x = *base;
    scratch s;
    natten_op_fn fn = c->backend->op[p->op];
    x.config = c->config;
    c->ms = -1;
    c->runs = c->pruned = 0;
    natten_clear_error();
    if (probe_prunes(p, &x, c, best, prune)) {
        c->status = NATTEN_SUCCESS;
        return;
    }
    if ((c->status = scratch_problem(p, c->backend, &x, &q, &s)) == NATTEN_SUCCESS) {
        c->status = time_one(c, fn, &q, &x, reps, best, prune);
        scratch_release(&s);
    }
    if (c->status != NATTEN_SUCCESS) {
        snprintf(c->why, sizeof c->why, "%s: %s", natten_status_string(c->status), natten_last_error());
        c->ms = -1;
        c->runs = c->pruned = 0;
    } else if (c->pruned) {
        snprintf(c->why, sizeof c->why, "pruned: 1 run, %.1fx the best so far (%.4g ms)", c->ms / best, best);
    } else {
        c->why[0] = '\0';
    }
}

/* ---- interleaved refinement (host clock) ---------------------------------- */

/* On a shared CPU a candidate's block of runs can fall into a slow episode
 * (another process, a core's frequency or an SMT sibling) that the next
 * candidate's block escapes, and configurations within a few percent of each
 * other then trade places: measured on the 2-core machine of docs/benchmarks.md,
 * the OpenMP backend's three configurations (identical code for the unfused
 * ops) were picked 7-22 % slower than the fastest in 2-3 of 9 problems per
 * run, and a slow episode can make a first pass 1.3-1.8x too slow.  So the
 * candidates of the best one's backend that came within REFINE_FACTOR of it
 * are timed again together: reps rounds in which each runs twice in turn
 * (the first run brings its code and buffers back after the others', the
 * second is timed), and each keeps the median of its rounds, so that a slow
 * episode hits them alike.  Backends with their own timer (GPUs, CUDA events on a
 * device of their own) skip this: their first-pass times are stable, and a
 * second pass over seconds-long candidates would double the tuning time. */
#define REFINE_FACTOR 2.0

static void refine(const natten_problem *p, const natten_exec *base, natten_candidate *c, int n, int reps)
{
    const natten_backend *b;
    natten_problem q;
    natten_exec x = *base;
    scratch s;
    double *t;
    int *who, k = 0, best = -1;
    for (int i = 0; i < n; i++)
        if (c[i].status == NATTEN_SUCCESS && !c[i].pruned && c[i].runs > 1 && (best < 0 || c[i].ms < c[best].ms))
            best = i;
    if (best < 0 || (b = c[best].backend)->time_op != NULL || b->op[p->op] == NULL) return;
    who = natten_malloc((size_t)n * sizeof *who);
    t = natten_malloc((size_t)n * MAX_REPS * sizeof *t);
    if (who == NULL || t == NULL) goto out; /* the first pass's times stand */
    for (int i = 0; i < n; i++)
        if (c[i].backend == b && c[i].status == NATTEN_SUCCESS && !c[i].pruned && c[i].runs > 1 &&
            c[i].ms <= REFINE_FACTOR * c[best].ms)
            who[k++] = i;
    if (k < 2 || scratch_problem(p, b, &x, &q, &s) != NATTEN_SUCCESS) goto out;
    for (int r = 0; r < reps; r++)
        for (int j = 0; j < k; j++) {
            double warm;
            x.config = c[who[j]].config;
            /* a run to bring this configuration's code and buffers back, then the timed one */
            if (one_run(b, b->op[p->op], &q, &x, &warm) != NATTEN_SUCCESS ||
                one_run(b, b->op[p->op], &q, &x, &t[j * MAX_REPS + r]) != NATTEN_SUCCESS) {
                scratch_release(&s); /* ran before, fails now: keep the first pass */
                goto out;
            }
        }
    scratch_release(&s);
    for (int j = 0; j < k; j++) {
        c[who[j]].ms = median(&t[j * MAX_REPS], reps);
        c[who[j]].runs += reps;
    }
out:
    natten_free(who);
    natten_free(t);
    natten_clear_error();
}

/* Fully timed ones fastest first, then the pruned ones by their single time
 * or prediction (ties keep registry order), then the rest in order.  A pruned
 * candidate never comes first: its time exceeded f x the best of the first
 * pass, but refine() re-times the best backend's configurations afterwards,
 * and under load their medians can rise above it (seen in CI: a pruned
 * candidate sorted first and won). */
static int cmp_candidate(const void *a, const void *b)
{
    const natten_candidate *x = a, *y = b;
    int xo = x->status == NATTEN_SUCCESS, yo = y->status == NATTEN_SUCCESS;
    if (xo != yo) return yo - xo;
    if (xo && x->pruned != y->pruned) return x->pruned - y->pruned;
    if (xo && x->ms != y->ms) return x->ms < y->ms ? -1 : 1;
    return 0;
}

natten_status natten_measure(const natten_problem *p, const natten_exec *x, natten_candidate *c, int n,
                             int reps, double prune, int *n_ok)
{
    int ok = 0;
    double best = -1;
    natten_candidate *sorted;
    if (reps < 1) reps = 1;
    if (reps > MAX_REPS) reps = MAX_REPS;
    for (int i = 0; i < n; i++) {
        if (c[i].status != NATTEN_SUCCESS) { c[i].ms = -1; c[i].runs = c[i].pruned = 0; continue; }
        time_candidate(p, x, &c[i], reps, best, prune);
        if (c[i].status != NATTEN_SUCCESS) continue;
        ok++;
        if (!c[i].pruned && (best < 0 || c[i].ms < best)) best = c[i].ms;
    }
    refine(p, x, c, n, reps);
    /* A stable sort: qsort is not, so sort (index-tagged) copies by insertion. */
    sorted = natten_malloc((size_t)n * sizeof *sorted);
    if (sorted == NULL) return natten_error(NATTEN_ERROR_OUT_OF_MEMORY, "cannot sort %d candidates", n);
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && cmp_candidate(&c[i], &sorted[j - 1]) < 0) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = c[i];
    }
    memcpy(c, sorted, (size_t)n * sizeof *c);
    natten_free(sorted);
    *n_ok = ok;
    natten_clear_error();
    return NATTEN_SUCCESS;
}
