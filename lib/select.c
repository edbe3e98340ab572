/*
 * select.c - which backend (and configuration) runs a validated problem, and
 * why: the forced backend; else a remembered winner (measured here or
 * imported as wisdom); else, in measure mode, the fastest candidate timed now;
 * else the first backend in registry order that accepts the problem.  The
 * same decision is available as text (natten_explain) without running it.
 */
#include "natten-impl.h"
#include "natten-context.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define REPS 5  /* timed runs per candidate after one warm-up; the median counts */

static const char *device_word(DLDeviceType t)
{
    return t == kDLCPU ? "CPU" : t == kDLCUDA ? "CUDA" : t == kDLROCM ? "ROCm" : "other";
}

int natten_applicable(const natten_backend *b, const natten_problem *p, char *why, size_t len)
{
    const char *reason;
    if ((DLDeviceType)b->device_type != p->device.device_type) {
        snprintf(why, len, "runs on %s tensors, these are on %s", device_word(b->device_type),
                 device_word(p->device.device_type));
        return 0;
    }
    if (!natten_backend_usable(b, &reason)) {
        snprintf(why, len, "not usable here: %s", reason);
        return 0;
    }
    if (b->op[p->op] == NULL) {
        snprintf(why, len, "has no %s", natten_op_name(p->op));
        return 0;
    }
    why[0] = '\0';
    if (b->supports(p, why, len)) return 1;
    if (why[0] == '\0') snprintf(why, len, "refuses (no reason given)");
    return 0;
}

/* ---- the cache of winners ------------------------------------------------ */

int natten_tuned_find(natten_context *ctx, const char *sig, natten_tuned *out)
{
    int found = 0;
    pthread_mutex_lock(&ctx->lock);
    for (int i = 0; i < ctx->n_tuned && !found; i++)
        if (strcmp(ctx->tuned[i].sig, sig) == 0) {
            *out = ctx->tuned[i];
            found = 1;
        }
    pthread_mutex_unlock(&ctx->lock);
    return found;
}

int natten_tuned_count(natten_context *ctx)
{
    int n;
    pthread_mutex_lock(&ctx->lock);
    n = ctx->n_tuned;
    pthread_mutex_unlock(&ctx->lock);
    return n;
}

natten_status natten_tuned_put(natten_context *ctx, const natten_tuned *t)
{
    natten_status st = NATTEN_SUCCESS;
    int i;
    pthread_mutex_lock(&ctx->lock);
    for (i = 0; i < ctx->n_tuned && strcmp(ctx->tuned[i].sig, t->sig) != 0; i++) {}
    if (i == ctx->cap_tuned) {
        int cap = ctx->cap_tuned ? 2 * ctx->cap_tuned : 16;
        natten_tuned *grown = natten_malloc((size_t)cap * sizeof *grown);
        if (grown == NULL) {
            st = natten_error(NATTEN_ERROR_OUT_OF_MEMORY, "cannot grow the tuning cache to %d entries", cap);
        } else {
            if (ctx->n_tuned) memcpy(grown, ctx->tuned, (size_t)ctx->n_tuned * sizeof *grown);
            natten_free(ctx->tuned);
            ctx->tuned = grown;
            ctx->cap_tuned = cap;
        }
    }
    if (st == NATTEN_SUCCESS) {
        ctx->tuned[i] = *t;
        if (i == ctx->n_tuned) ctx->n_tuned++;
    }
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

/* ---- measured selection ------------------------------------------------- */

/* The candidates for p: every configuration of every backend that accepts it,
 * and one refused entry per backend that does not (for the report).  With
 * only != NULL, that backend alone. */
static natten_candidate *list_candidates(const natten_problem *p, const natten_backend *only, int *n)
{
    int cap = 0, m = 0;
    natten_candidate *c;
    for (int i = 0; i < natten_backend_count(); i++) {
        const natten_backend *b = natten_backend_at(i);
        if (!only || b == only) cap += natten_config_count(b);
    }
    if ((c = natten_calloc((size_t)cap, sizeof *c)) == NULL) return NULL;
    for (int i = 0; i < natten_backend_count(); i++) {
        const natten_backend *b = natten_backend_at(i);
        const char *r;
        char why[sizeof c->why];
        if (only && b != only) continue;
        if (natten_applicable(b, p, why, sizeof why)) {
            for (int k = 0; k < natten_config_count(b); k++) {
                c[m].backend = b;
                c[m++].config = k;
            }
            continue;
        }
        c[m].backend = b;
        c[m].status = natten_backend_usable(b, &r) ? NATTEN_ERROR_UNSUPPORTED
                                                   : NATTEN_ERROR_BACKEND_UNAVAILABLE;
        snprintf(c[m++].why, sizeof c->why, "%s", why);
    }
    *n = m;
    return c;
}

static natten_status keep_report(natten_context *ctx, const char *sig, const natten_candidate *c, int n)
{
    natten_tuning_result *r = natten_calloc((size_t)n, sizeof *r);
    if (r == NULL) return natten_error(NATTEN_ERROR_OUT_OF_MEMORY, "cannot keep the tuning report");
    for (int i = 0; i < n; i++) {
        r[i].backend = c[i].backend->name;
        r[i].config = natten_config_name(c[i].backend, c[i].config);
        r[i].config_index = c[i].config;
        r[i].status = c[i].status;
        r[i].time_ms = c[i].status == NATTEN_SUCCESS ? c[i].ms : -1;
        r[i].runs = c[i].status == NATTEN_SUCCESS ? c[i].runs : 0;
        r[i].pruned = c[i].status == NATTEN_SUCCESS && c[i].pruned;
        snprintf(r[i].reason, sizeof r[i].reason, "%s", c[i].why);
    }
    pthread_mutex_lock(&ctx->lock);
    natten_free(ctx->report);
    ctx->report = r;
    ctx->n_report = n;
    snprintf(ctx->report_sig, sizeof ctx->report_sig, "%s", sig);
    pthread_mutex_unlock(&ctx->lock);
    return NATTEN_SUCCESS;
}

/* Time the candidates of p, remember and return the winner; 0 if none could
 * be timed (the caller falls back to the heuristic pick). */
static int measure(natten_context *ctx, const natten_problem *p, const char *sig,
                   const natten_backend *only, natten_tuned *win)
{
    natten_exec x = {ctx->num_threads, ctx->stream, 0};
    natten_candidate *c;
    int n = 0, ok = 0;

    char why[512];

    pthread_mutex_lock(&ctx->measure_lock);
    /* Another thread may have measured it meanwhile; a remembered winner that
     * refuses this very problem (alignment, say) is measured over again. */
    if (natten_tuned_find(ctx, sig, win) && natten_applicable(win->backend, p, why, sizeof why)) {
        pthread_mutex_unlock(&ctx->measure_lock);
        return 1;
    }
    if ((c = list_candidates(p, only, &n)) != NULL && natten_measure(p, &x, c, n, REPS, ctx->prune, &ok) == NATTEN_SUCCESS) {
        for (int i = 0; i < n && ctx->verbose; i++) {
            if (c[i].status == NATTEN_SUCCESS && c[i].pruned)
                fprintf(stderr, "natten: %s: measured %s/%s: %.4f ms (%s)\n", natten_op_name(p->op),
                        c[i].backend->name, natten_config_name(c[i].backend, c[i].config), c[i].ms, c[i].why);
            else if (c[i].status == NATTEN_SUCCESS)
                fprintf(stderr, "natten: %s: measured %s/%s: %.4f ms\n", natten_op_name(p->op),
                        c[i].backend->name, natten_config_name(c[i].backend, c[i].config), c[i].ms);
            else
                fprintf(stderr, "natten: %s: not timed %s/%s: %s\n", natten_op_name(p->op),
                        c[i].backend->name, natten_config_name(c[i].backend, c[i].config), c[i].why);
        }
        keep_report(ctx, sig, c, n);
        if (ok > 0) {
            snprintf(win->sig, sizeof win->sig, "%s", sig);
            win->backend = c[0].backend;
            win->config = c[0].config;
            win->ns = (int64_t)(c[0].ms * 1e6 + 0.5);
            natten_tuned_put(ctx, win);
        }
    }
    natten_free(c);
    pthread_mutex_unlock(&ctx->measure_lock);
    return ok > 0;
}

/* ---- the decision ------------------------------------------------------- */

/* Where the decision came from, for NATTEN_VERBOSE and natten_explain. */
typedef enum { BY_FORCE, BY_MEMORY, BY_MEASURE, BY_ORDER, BY_NONE } pick_origin;

/* Writes printf-style text at buf[*used] (bounded, always terminated). */
static void say(char *buf, size_t len, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void say(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
    va_list ap;
    int k;
    if (buf == NULL || *used >= len) return;
    va_start(ap, fmt);
    k = vsnprintf(buf + *used, len - *used, fmt, ap);
    va_end(ap);
    if (k > 0) *used += (size_t)k < len - *used ? (size_t)k : len - *used - 1;
}

static const natten_backend *first_accepting(const natten_problem *p, int verbose, char *all, size_t len)
{
    char why[512];
    size_t used = 0;
    if (all) all[0] = '\0';
    for (int i = 0; i < natten_backend_count(); i++) {
        const natten_backend *b = natten_backend_at(i);
        if (natten_applicable(b, p, why, sizeof why)) return b;
        if (verbose) fprintf(stderr, "natten: %s: %s refuses: %s\n", natten_op_name(p->op), b->name, why);
        say(all, len, &used, "%s%s: %s", used ? "; " : "", b->name, why);
    }
    return NULL;
}

/* The cache key: the problem's signature, plus the context's thread count
 * when it sets one (a thread count changes which candidate is fastest). */
static void context_signature(const natten_context *ctx, const natten_problem *p, char sig[NATTEN_SIG_LEN])
{
    natten_signature(p, sig);
    if (ctx->num_threads > 0) {
        size_t n = strlen(sig);
        snprintf(sig + n, NATTEN_SIG_LEN - n, "/t%d", ctx->num_threads);
    }
}

/* The pick for p without running anything but (in measure mode, when
 * may_measure) the timing of candidates. */
static pick_origin decide(natten_context *ctx, const natten_problem *p, int may_measure,
                          const natten_backend **b, int *config, char *why, size_t len)
{
    char sig[NATTEN_SIG_LEN], tmp[512];
    natten_tuned t;
    int measuring = atomic_load(&ctx->tuning) == NATTEN_TUNING_MEASURE;

    *config = 0;
    /* The signature is the key of remembered picks and of measurements; a
     * context with neither (the common case) does not build it: formatting
     * it was most of the library's host time in a small call. */
    if (measuring || natten_tuned_count(ctx) > 0) context_signature(ctx, p, sig);
    else sig[0] = '\0';
    if (ctx->forced) {
        *b = ctx->forced;
        if (!natten_applicable(ctx->forced, p, why, len)) return BY_NONE;
        if (ctx->forced_config >= 0) {
            *config = ctx->forced_config;
        } else if (natten_config_count(ctx->forced) > 1 && sig[0]) { /* measure its configurations alone */
            size_t n = strlen(sig);
            snprintf(sig + n, sizeof sig - n, "/only=%s", ctx->forced->name);
            if (natten_tuned_find(ctx, sig, &t) && t.backend == ctx->forced) *config = t.config;
            else if (measuring && may_measure && measure(ctx, p, sig, ctx->forced, &t)) *config = t.config;
        }
        return BY_FORCE;
    }
    if (natten_tuned_find(ctx, sig, &t) && natten_applicable(t.backend, p, tmp, sizeof tmp)) {
        *b = t.backend;
        *config = t.config < natten_config_count(t.backend) ? t.config : 0;
        return BY_MEMORY;
    }
    if (measuring && may_measure && measure(ctx, p, sig, NULL, &t)) {
        *b = t.backend;
        *config = t.config;
        return BY_MEASURE;
    }
    *b = first_accepting(p, ctx->verbose && may_measure, why, len);
    return *b ? BY_ORDER : BY_NONE;
}

natten_status natten_select(natten_context *ctx, const natten_problem *p, const natten_backend **b,
                            int *config)
{
    static const char *const origin[] = {"forced", "remembered", "measured", "first that accepts"};
    char why[2048];
    pick_origin o = decide(ctx, p, 1, b, config, why, sizeof why);
    if (o == BY_NONE && ctx->forced) {
        if (ctx->verbose) fprintf(stderr, "natten: %s: forced backend %s refuses: %s\n",
                                  natten_op_name(p->op), ctx->forced->name, why);
        *b = NULL;
        return natten_error(NATTEN_ERROR_UNSUPPORTED, "%s: backend %s (forced) refuses this problem: %s",
                            natten_op_name(p->op), ctx->forced->name, why);
    }
    if (o == BY_NONE)
        return natten_error(NATTEN_ERROR_UNSUPPORTED, "%s: no backend can run this problem (%s)",
                            natten_op_name(p->op), why);
    if (ctx->verbose)
        fprintf(stderr, "natten: %s: picked %s (config %s; %s)\n", natten_op_name(p->op), (*b)->name,
                natten_config_name(*b, *config), origin[o]);
    return NATTEN_SUCCESS;
}

/* ---- explanation -------------------------------------------------------- */

natten_status natten_explain(natten_context *ctx, natten_op op, const natten_params *params,
                             const DLTensor *const t[NATTEN_ARG_COUNT], const char **backend, char *buf,
                             size_t len)
{
    natten_problem p;
    natten_status st;
    const natten_backend *b = NULL;
    char sig[NATTEN_SIG_LEN], why[512];
    size_t used = 0;
    int config = 0, measuring;
    pick_origin o;

    natten_clear_error();
    if (backend) *backend = NULL;
    if (buf && len) buf[0] = '\0';
    if (ctx == NULL) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "explain: ctx is NULL");
    if ((unsigned)op >= NATTEN_OP_COUNT)
        return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "explain: op=%d is not a natten_op", (int)op);
    if (t == NULL) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "explain: the tensor array is NULL");
    if ((st = natten_validate_shapes(&p, op, params, t))) {
        say(buf, len, &used, "%s: invalid request: %s\n", natten_op_name(op), natten_last_error());
        return st;
    }
    context_signature(ctx, &p, sig);
    measuring = atomic_load(&ctx->tuning) == NATTEN_TUNING_MEASURE;
    say(buf, len, &used, "problem   %s\nselection %s%s%s\n", sig, measuring ? "measure" : "heuristic",
        ctx->forced ? ", forced backend " : "", ctx->forced ? ctx->forced->name : "");
    o = decide(ctx, &p, 0, &b, &config, why, sizeof why);
    for (int i = 0; i < natten_backend_count(); i++) {
        const natten_backend *c = natten_backend_at(i);
        int yes = natten_applicable(c, &p, why, sizeof why);
        say(buf, len, &used, "  %-12s %s", c->name, c == b && o != BY_NONE ? "RUNS" : yes ? "accepts" : "refuses");
        if (yes && natten_config_count(c) > 1)
            say(buf, len, &used, " (%d configurations)", natten_config_count(c));
        say(buf, len, &used, "%s%s\n", yes ? "" : "  ", yes ? "" : why);
    }
    switch (o) {
    case BY_FORCE:
        say(buf, len, &used, "pick      %s/%s: forced (NATTEN_BACKEND or natten_context_set_backend)\n",
            b->name, natten_config_name(b, config));
        break;
    case BY_MEMORY:
        say(buf, len, &used, "pick      %s/%s: remembered for this signature (measured or wisdom)\n",
            b->name, natten_config_name(b, config));
        break;
    case BY_ORDER:
        if (measuring)
            say(buf, len, &used, "pick      not measured yet: the first call times every accepting "
                "backend x configuration; without a timing, %s runs (first that accepts)\n", b->name);
        else
            say(buf, len, &used, "pick      %s/%s: the first backend in registry order that accepts\n",
                b->name, natten_config_name(b, config));
        break;
    default:
        say(buf, len, &used, "pick      none: %s\n",
            ctx->forced ? "the forced backend refuses (no fallback)" : "no backend accepts");
        return natten_error(NATTEN_ERROR_UNSUPPORTED, "%s: no backend would run this problem",
                            natten_op_name(op));
    }
    if (backend) *backend = b->name;
    return NATTEN_SUCCESS;
}

/* ---- inspection ----------------------------------------------------------- */

natten_status natten_context_tuning_report(natten_context *ctx, natten_tuning_result *results, int capacity,
                                           int *count, char *signature, size_t sig_len)
{
    natten_status st = NATTEN_SUCCESS;
    if (ctx == NULL) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "ctx is NULL");
    if (capacity < 0 || (capacity > 0 && results == NULL))
        return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "results is NULL or capacity=%d is negative",
                            capacity);
    pthread_mutex_lock(&ctx->lock);
    if (ctx->report == NULL) {
        st = natten_error(NATTEN_ERROR_INVALID_ARGUMENT,
                          "this context has measured nothing yet (see natten_context_set_tuning)");
    } else {
        int n = ctx->n_report < capacity ? ctx->n_report : capacity;
        if (n > 0) memcpy(results, ctx->report, (size_t)n * sizeof *results);
        if (count) *count = ctx->n_report;
        if (signature && sig_len) snprintf(signature, sig_len, "%s", ctx->report_sig);
    }
    pthread_mutex_unlock(&ctx->lock);
    return st;
}
