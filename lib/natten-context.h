/* natten-context.h - private: the context structure (lib/ only). */
#ifndef NATTEN_CONTEXT_H
#define NATTEN_CONTEXT_H

#include <pthread.h>
#include <stdatomic.h>

/* One remembered winner: measured here, or imported as wisdom. */
typedef struct natten_tuned {
    char sig[NATTEN_SIG_LEN];
    const natten_backend *backend;
    int config;
    int64_t ns;                     /* its median time, nanoseconds */
} natten_tuned;

struct natten_context {
    const natten_backend *forced;   /* NULL = automatic selection */
    int forced_config;              /* with forced: its configuration, -1 = choose */
    int num_threads;
    void *stream;
    int verbose;                    /* NATTEN_VERBOSE: print picks and refusals */
    _Atomic(const natten_backend *) last;
    _Atomic int tuning;             /* natten_tuning */
    double prune;                   /* NATTEN_TUNING_PRUNE: prune factor, 0 = never */

    /* Measured selection (select.c).  lock guards tuned[] and the report and
     * is held only briefly; measure_lock serialises measurements so that two
     * threads neither time the same signature twice nor disturb each other's
     * timings.  Order: measure_lock before lock. */
    pthread_mutex_t lock;
    pthread_mutex_t measure_lock;
    natten_tuned *tuned;
    int n_tuned, cap_tuned;
    natten_tuning_result *report;
    int n_report;
    char report_sig[NATTEN_SIG_LEN];
};

/* select.c: the remembered winner of sig (1) or 0, how many are remembered;
 * and remember one (which replaces an older winner of the same signature). */
NATTEN_INTERNAL int natten_tuned_find(natten_context *ctx, const char *sig, natten_tuned *out);
NATTEN_INTERNAL int natten_tuned_count(natten_context *ctx); /* winners remembered so far */
NATTEN_INTERNAL natten_status natten_tuned_put(natten_context *ctx, const natten_tuned *t);

/* select.c: the backend and configuration to run p with (see select.c), or
 * NATTEN_ERROR_UNSUPPORTED with the reasons. */
NATTEN_INTERNAL natten_status natten_select(natten_context *ctx, const natten_problem *p,
                                            const natten_backend **b, int *config);

#endif
