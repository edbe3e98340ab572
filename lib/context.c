/* context.c - contexts: the forced backend, stream, threads, tuning mode,
 * last pick; the environment variables that preset them. */
#include "natten-impl.h"
#include "natten-context.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

natten_status natten_params_init(natten_params *p, int rank, const int *kernel_size)
{
    if (p == NULL) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "params is NULL");
    if (rank < 1 || rank > 3)
        return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "rank=%d but it must be 1, 2 or 3", rank);
    if (kernel_size == NULL) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "kernel_size is NULL");
    memset(p, 0, sizeof *p);
    p->rank = rank;
    for (int i = 0; i < 3; i++) {
        p->kernel_size[i] = i < rank ? kernel_size[i] : 1;
        p->dilation[i] = 1;
        p->stride[i] = 1;
    }
    return NATTEN_SUCCESS;
}

natten_status natten_params_set_scale(natten_params *p, double scale)
{
    if (p == NULL) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "params is NULL");
    p->has_scale = 1;
    p->scale = scale;
    return NATTEN_SUCCESS;
}

/* NATTEN_VERBOSE: say once per context which backends cannot run here. */
static void report_probes(void)
{
    for (int i = 0; i < natten_backend_count(); i++) {
        const natten_backend *b = natten_backend_at(i);
        const char *why;
        if (!natten_backend_usable(b, &why))
            fprintf(stderr, "natten: backend %s is not usable here: %s\n", b->name, why);
    }
}

static natten_status tuning_from_env(natten_context *ctx, const char *env)
{
    if (strcmp(env, "measure") == 0) return natten_context_set_tuning(ctx, NATTEN_TUNING_MEASURE);
    if (strcmp(env, "heuristic") == 0) return natten_context_set_tuning(ctx, NATTEN_TUNING_HEURISTIC);
    return natten_error(NATTEN_ERROR_INVALID_ARGUMENT,
                        "NATTEN_TUNING='%s' but it must be 'heuristic' or 'measure'", env);
}

/* The prune factor of measured selection: a candidate whose first run takes
 * longer than this times the best median so far is not timed further. */
#define DEFAULT_PRUNE 3.0

static natten_status prune_from_env(natten_context *ctx, const char *env)
{
    char *end;
    double f = strtod(env, &end);
    if (strcmp(env, "off") == 0) f = 0, end = (char *)env + 3;
    if (end == env || *end != '\0' || !(f == 0 || (f >= 1 && f <= 1e6)))
        return natten_error(NATTEN_ERROR_INVALID_ARGUMENT,
                            "NATTEN_TUNING_PRUNE='%s' but it must be a factor >= 1, or 0/off (never prune)", env);
    ctx->prune = f;
    return NATTEN_SUCCESS;
}

natten_status natten_context_create(natten_context **out)
{
    natten_context *ctx;
    const char *env;
    natten_status st = NATTEN_SUCCESS;
    if (out == NULL) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "ctx is NULL");
    *out = NULL;
    ctx = natten_calloc(1, sizeof *ctx);
    if (ctx == NULL) return natten_error(NATTEN_ERROR_OUT_OF_MEMORY, "cannot allocate a context");
    ctx->forced_config = -1;
    if (pthread_mutex_init(&ctx->lock, NULL) != 0) {
        natten_free(ctx);
        return natten_error(NATTEN_ERROR_OUT_OF_MEMORY, "cannot create a mutex");
    }
    if (pthread_mutex_init(&ctx->measure_lock, NULL) != 0) {
        pthread_mutex_destroy(&ctx->lock);
        natten_free(ctx);
        return natten_error(NATTEN_ERROR_OUT_OF_MEMORY, "cannot create a mutex");
    }
    env = getenv("NATTEN_VERBOSE");
    ctx->verbose = env != NULL && env[0] != '\0' && strcmp(env, "0") != 0;
    if (ctx->verbose) report_probes();
    env = getenv("NATTEN_BACKEND");
    if (env != NULL && env[0] != '\0') st = natten_context_set_backend(ctx, env);
    env = getenv("NATTEN_TUNING");
    if (st == NATTEN_SUCCESS && env != NULL && env[0] != '\0') st = tuning_from_env(ctx, env);
    ctx->prune = DEFAULT_PRUNE;
    env = getenv("NATTEN_TUNING_PRUNE");
    if (st == NATTEN_SUCCESS && env != NULL && env[0] != '\0') st = prune_from_env(ctx, env);
    if (st != NATTEN_SUCCESS) {
        natten_context_destroy(ctx);
        return st;
    }
    env = getenv("NATTEN_WISDOM");
    if (env != NULL && env[0] != '\0' && natten_wisdom_import(ctx, env) != NATTEN_SUCCESS) {
        /* A stale or broken file is ignored, not trusted, and not fatal. */
        if (ctx->verbose) fprintf(stderr, "natten: NATTEN_WISDOM ignored: %s\n", natten_last_error());
        natten_clear_error();
    }
    *out = ctx;
    return NATTEN_SUCCESS;
}

void natten_context_destroy(natten_context *ctx)
{
    if (ctx == NULL) return;
    pthread_mutex_destroy(&ctx->lock);
    pthread_mutex_destroy(&ctx->measure_lock);
    natten_free(ctx->tuned);
    natten_free(ctx->report);
    natten_free(ctx);
}

natten_status natten_context_set_tuning(natten_context *ctx, natten_tuning mode)
{
    if (ctx == NULL) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "ctx is NULL");
    if (mode != NATTEN_TUNING_HEURISTIC && mode != NATTEN_TUNING_MEASURE)
        return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "tuning mode %d is not a natten_tuning",
                            (int)mode);
    atomic_store(&ctx->tuning, (int)mode);
    return NATTEN_SUCCESS;
}

natten_status natten_context_set_backend(natten_context *ctx, const char *name)
{
    const natten_backend *b;
    const char *why;
    char bname[64];
    const char *slash;
    int config = -1;
    if (ctx == NULL) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "ctx is NULL");
    if (name == NULL || strcmp(name, "auto") == 0) {
        ctx->forced = NULL;
        ctx->forced_config = -1;
        return NATTEN_SUCCESS;
    }
    /* "backend/configuration": that configuration only (by name, or by index) */
    slash = strchr(name, '/');
    snprintf(bname, sizeof bname, "%.*s", slash ? (int)(slash - name) : (int)strlen(name), name);
    b = natten_backend_find(bname);
    if (b == NULL)
        return natten_error(NATTEN_ERROR_BACKEND_UNAVAILABLE,
                            "no backend named '%s' in this build (%s)", bname, natten_version_string());
    if (slash) {
        const char *c = slash + 1;
        for (int k = 0; k < natten_config_count(b) && config < 0; k++)
            if (strcmp(c, natten_config_name(b, k)) == 0) config = k;
        if (config < 0 && c[0] >= '0' && c[0] <= '9' && strspn(c, "0123456789") == strlen(c) &&
            strlen(c) < 6 && atoi(c) < natten_config_count(b))
            config = atoi(c);
        if (config < 0) {
            char list[512];
            size_t used = 0;
            list[0] = '\0';
            for (int k = 0; k < natten_config_count(b) && used < sizeof list; k++) {
                int w = snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", natten_config_name(b, k));
                if (w < 0) break;
                used += (size_t)w;
            }
            return natten_error(NATTEN_ERROR_BACKEND_UNAVAILABLE,
                                "backend '%s' has no configuration '%s' (it has: %s)", bname, c, list);
        }
    }
    if (!natten_backend_usable(b, &why))
        return natten_error(NATTEN_ERROR_BACKEND_UNAVAILABLE, "backend '%s' is not usable here: %s",
                            bname, why);
    ctx->forced = b;
    ctx->forced_config = config;
    return NATTEN_SUCCESS;
}

natten_status natten_context_set_stream(natten_context *ctx, void *stream)
{
    if (ctx == NULL) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "ctx is NULL");
    ctx->stream = stream;
    return NATTEN_SUCCESS;
}

natten_status natten_context_set_num_threads(natten_context *ctx, int n)
{
    if (ctx == NULL) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "ctx is NULL");
    if (n < 0)
        return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "num_threads=%d but it must be >= 0", n);
    ctx->num_threads = n;
    return NATTEN_SUCCESS;
}

const char *natten_context_last_backend(const natten_context *ctx)
{
    const natten_backend *b;
    if (ctx == NULL) return NULL;
    b = atomic_load(&((natten_context *)ctx)->last);
    return b ? b->name : NULL;
}
