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
/* A candidate whose warm-up run takes longer than this is timed once more. */
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

/* The host timer: one warm-up, then the median of reps runs. */
static natten_status time_host(natten_op_fn fn, const natten_problem *p, const natten_exec *x, int reps,
                               double *median_ms)
{
    double t[MAX_REPS], t0 = now_ms(), warm;
    natten_status st = fn(p, x);
    if (st) return st;
    warm = now_ms() - t0;
    if (warm > SLOW_MS) reps = 1;
    for (int r = 0; r < reps; r++) {
        t0 = now_ms();
        if ((st = fn(p, x))) return st;
        t[r] = now_ms() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    *median_ms = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    return NATTEN_SUCCESS;
}

static void time_candidate(const natten_problem *p, const natten_exec *base, natten_candidate *c, int reps)
{
    natten_problem q;
    natten_exec x = *base;
    scratch s;
    natten_op_fn fn = c->backend->op[p->op];
    x.config = c->config;
    c->ms = -1;
    natten_clear_error();
    if ((c->status = scratch_problem(p, c->backend, &x, &q, &s)) == NATTEN_SUCCESS) {
        c->status = c->backend->time_op ? c->backend->time_op(fn, &q, &x, reps, &c->ms)
                                        : time_host(fn, &q, &x, reps, &c->ms);
        scratch_release(&s);
    }
    if (c->status != NATTEN_SUCCESS) {
        snprintf(c->why, sizeof c->why, "%s: %s", natten_status_string(c->status), natten_last_error());
        c->ms = -1;
    } else {
        c->why[0] = '\0';
    }
}

/* Timed ones fastest first (ties keep registry order), then the rest in order. */
static int cmp_candidate(const void *a, const void *b)
{
    const natten_candidate *x = a, *y = b;
    int xo = x->status == NATTEN_SUCCESS, yo = y->status == NATTEN_SUCCESS;
    if (xo != yo) return yo - xo;
    if (xo && x->ms != y->ms) return x->ms < y->ms ? -1 : 1;
    return 0;
}

natten_status natten_measure(const natten_problem *p, const natten_exec *x, natten_candidate *c, int n,
                             int reps, int *n_ok)
{
    int ok = 0;
    natten_candidate *sorted;
    if (reps < 1) reps = 1;
    if (reps > MAX_REPS) reps = MAX_REPS;
    for (int i = 0; i < n; i++) {
        if (c[i].status != NATTEN_SUCCESS) { c[i].ms = -1; continue; }
        time_candidate(p, x, &c[i], reps);
        ok += c[i].status == NATTEN_SUCCESS;
    }
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
