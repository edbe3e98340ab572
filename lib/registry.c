/*
 * registry.c - the one ordered table of backends: fastest first, the naive
 * reference last (it accepts every valid CPU problem).  Adding a backend is
 * one guarded line here plus its folder under backends/.
 */
#include "natten-impl.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

extern const natten_backend natten_backend_naive;
#ifdef HAVE_OPENMP_BACKEND
extern const natten_backend natten_backend_openmp;
#endif
#ifdef HAVE_CUDA_TC
extern const natten_backend natten_backend_cuda_tc;
#endif
#ifdef HAVE_CUDA
extern const natten_backend natten_backend_cuda_tiled;
#endif
#ifdef HAVE_HIP
extern const natten_backend natten_backend_hip_tiled;
#endif

static const natten_backend *const registry[] = {
#ifdef HAVE_CUDA_TC
    &natten_backend_cuda_tc,
#endif
#ifdef HAVE_CUDA
    &natten_backend_cuda_tiled,
#endif
#ifdef HAVE_HIP
    &natten_backend_hip_tiled,
#endif
#ifdef HAVE_OPENMP_BACKEND
    &natten_backend_openmp,
#endif
    &natten_backend_naive,
};

#define N_BACKENDS ((int)(sizeof registry / sizeof registry[0]))

/* probe() results, computed once per backend on first use, under probe_lock
 * (a probe may initialise a driver: it must run once, not once per thread).
 * A reason is written once, before done is set, and never changed after, so
 * the pointer natten_backend_usable hands out stays valid and stable. */
static struct {
    int done, usable;
    char reason[256];
} probed[N_BACKENDS];
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;

int natten_backend_count(void)
{
    return N_BACKENDS;
}

const natten_backend *natten_backend_at(int index)
{
    return index >= 0 && index < N_BACKENDS ? registry[index] : NULL;
}

const natten_backend *natten_backend_find(const char *name)
{
    for (int i = 0; i < N_BACKENDS; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

int natten_backend_usable(const natten_backend *b, const char **reason)
{
    int i, usable;
    for (i = 0; i < N_BACKENDS && registry[i] != b; i++) {}
    if (i == N_BACKENDS) {
        *reason = "not a registered backend";
        return 0;
    }
    pthread_mutex_lock(&probe_lock);
    if (!probed[i].done) {
        probed[i].reason[0] = '\0';
        probed[i].usable = b->probe ? b->probe(probed[i].reason, sizeof probed[i].reason) : 1;
        if (!probed[i].usable && probed[i].reason[0] == '\0') /* a refusal always has words */
            snprintf(probed[i].reason, sizeof probed[i].reason, "probe failed without giving a reason");
        probed[i].done = 1;
    }
    usable = probed[i].usable;
    pthread_mutex_unlock(&probe_lock);
    *reason = usable ? NULL : probed[i].reason;
    return usable;
}

natten_status natten_backend_get_info(int index, natten_backend_info *info)
{
    const natten_backend *b = natten_backend_at(index);
    if (info == NULL)
        return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "info is NULL");
    if (b == NULL)
        return natten_error(NATTEN_ERROR_INVALID_ARGUMENT,
                            "backend index %d out of range [0, %d)", index, N_BACKENDS);
    info->name = b->name;
    info->description = b->description;
    info->device_type = b->device_type;
    info->available = natten_backend_usable(b, &info->reason);
    return NATTEN_SUCCESS;
}

static char version_text[256];

static void build_version_text(void)
{
    size_t n = (size_t)snprintf(version_text, sizeof version_text, "libnatten %d.%d.%d (backends:",
                                NATTEN_VERSION_MAJOR, NATTEN_VERSION_MINOR, NATTEN_VERSION_PATCH);
    for (int i = 0; i < N_BACKENDS && n < sizeof version_text; i++)
        n += (size_t)snprintf(version_text + n, sizeof version_text - n, " %s", registry[i]->name);
    if (n < sizeof version_text) snprintf(version_text + n, sizeof version_text - n, ")");
}

const char *natten_version_string(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, build_version_text);
    return version_text;
}
