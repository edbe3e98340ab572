/* context.c - contexts: the forced backend, stream, threads, last pick. */
#include "natten-impl.h"
#include "natten-context.h"

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

natten_status natten_context_create(natten_context **out)
{
    natten_context *ctx;
    const char *env;
    natten_status st;
    if (out == NULL) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "ctx is NULL");
    *out = NULL;
    ctx = natten_calloc(1, sizeof *ctx);
    if (ctx == NULL) return natten_error(NATTEN_ERROR_OUT_OF_MEMORY, "cannot allocate a context");
    env = getenv("NATTEN_VERBOSE");
    ctx->verbose = env != NULL && env[0] != '\0' && strcmp(env, "0") != 0;
    env = getenv("NATTEN_BACKEND");
    if (env != NULL && env[0] != '\0' && (st = natten_context_set_backend(ctx, env))) {
        natten_free(ctx);
        return st;
    }
    *out = ctx;
    return NATTEN_SUCCESS;
}

void natten_context_destroy(natten_context *ctx)
{
    natten_free(ctx);
}

natten_status natten_context_set_backend(natten_context *ctx, const char *name)
{
    const natten_backend *b;
    const char *why;
    if (ctx == NULL) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "ctx is NULL");
    if (name == NULL || strcmp(name, "auto") == 0) {
        ctx->forced = NULL;
        return NATTEN_SUCCESS;
    }
    b = natten_backend_find(name);
    if (b == NULL)
        return natten_error(NATTEN_ERROR_BACKEND_UNAVAILABLE,
                            "no backend named '%s' in this build (%s)", name, natten_version_string());
    if (!natten_backend_usable(b, &why))
        return natten_error(NATTEN_ERROR_BACKEND_UNAVAILABLE, "backend '%s' is not usable here: %s",
                            name, why);
    ctx->forced = b;
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
