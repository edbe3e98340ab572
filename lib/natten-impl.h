/*
 * natten-impl.h - private: the problem description every backend receives,
 * the backend table entry, and internal helpers.  The only header that
 * includes config.h.  Never installed.
 */
#ifndef NATTEN_IMPL_H
#define NATTEN_IMPL_H

#ifdef HAVE_CONFIG_H
#  include "config.h"
#endif
#include "natten.h"
#include "natten-window.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NATTEN_INTERNAL __attribute__((visibility("hidden")))

typedef enum natten_dtype {
    NATTEN_F32,
    NATTEN_F64,
    NATTEN_F16,
    NATTEN_BF16,
    NATTEN_DTYPE_COUNT
} natten_dtype;

/*
 * A validated tensor, always 6-D in a canonical order so that backends can
 * loop over three spatial axes whatever the rank:
 *   token tensors (q k v out attn and gradients)  [B, X0, X1, X2, H, C]
 *   lse                                           [B, X0, X1, X2, H, 1]
 *   rpb, d_rpb                                    [1, E0, E1, E2, H, 1]
 * Axes beyond the problem's rank have extent 1 and stride 0.  Strides count
 * elements and may be anything for inputs (even negative); outputs never
 * overlap themselves.  data already includes DLTensor.byte_offset; it is
 * NULL when the role is absent.
 */
typedef struct natten_view {
    char *data;
    int64_t shape[6];
    int64_t stride[6];
} natten_view;

enum { NV_B = 0, NV_X0 = 1, NV_X1 = 2, NV_X2 = 3, NV_H = 4, NV_C = 5 };

/* Element offset of index (b, x0, x1, x2, h, c). */
static inline int64_t natten_off(const natten_view *v, int64_t b, int64_t x0, int64_t x1,
                                 int64_t x2, int64_t h, int64_t c)
{
    return b * v->stride[0] + x0 * v->stride[1] + x1 * v->stride[2] + x2 * v->stride[3] +
           h * v->stride[4] + c * v->stride[5];
}

/*
 * Everything a backend needs to run one op: validated once, in validate.c.
 * Parameters are padded to three axes: beyond rank, extent 1, K 1, d 1, s 1,
 * not causal (a window of one, which leaves every formula unchanged).
 */
typedef struct natten_problem {
    natten_op op;
    natten_dtype dtype;       /* of every tensor but lse (always float32) */
    DLDevice device;
    int rank;
    int64_t batch;
    int64_t heads;            /* query heads (= heads of attn, out, rpb) */
    int64_t heads_kv;         /* key/value heads; == heads for unfused ops */
    int64_t dim;              /* head dim of q and k */
    int64_t dim_v;            /* head dim of v and out */
    int64_t extent[3];
    int kernel[3], dilation[3], stride[3], causal[3];
    int64_t window;           /* kernel[0]*kernel[1]*kernel[2] = slots per query */
    int64_t tokens;           /* extent[0]*extent[1]*extent[2] */
    double scale;             /* fused ops: the softmax scale, resolved */
    natten_view arg[NATTEN_ARG_COUNT];
} natten_problem;

static inline int natten_has(const natten_problem *p, natten_arg a)
{
    return p->arg[a].data != NULL;
}

/* Per-call execution settings taken from the context. */
typedef struct natten_exec {
    int num_threads;          /* 0 = backend default */
    void *stream;             /* cudaStream_t / hipStream_t, NULL = default */
    int config;               /* index into the backend's configs; 0 = default */
} natten_exec;

typedef natten_status (*natten_op_fn)(const natten_problem *p, const natten_exec *x);

/*
 * A backend: one folder under backends/, one const instance of this struct,
 * one line in lib/registry.c.  probe() says once whether it can run on this
 * machine (the registry caches the answer); supports() says whether it takes
 * this problem and, when not, why, in words.  An op it lacks is NULL.
 * Both write their reason into why[len] and return 1 (yes) or 0 (no).
 */
typedef struct natten_backend {
    const char *name;
    const char *description;
    DLDeviceType device_type;
    int (*probe)(char *why, size_t len);
    int (*supports)(const natten_problem *p, char *why, size_t len);
    natten_op_fn op[NATTEN_OP_COUNT];
    int n_configs;                        /* tunable variants (0 means 1: the default) */
    const char *const *config_names;
    /* For measured selection: scratch memory on the backend's device and a
     * timer.  CPU backends leave all three NULL (host memory, monotonic clock).
     * time_op runs fn once to warm up, then reps times, and gives the median
     * in milliseconds (GPU backends: events on x->stream); reps 0 means one
     * timed run without the warm-up (the tuner's first look at a candidate,
     * which may prune it; an older time_op that warms up anyway is correct,
     * only slower). */
    void *(*scratch_alloc)(size_t bytes, const natten_exec *x);
    void (*scratch_free)(void *ptr, const natten_exec *x);
    natten_status (*time_op)(natten_op_fn fn, const natten_problem *p, const natten_exec *x, int reps,
                             double *median_ms);
    /* For wisdom: the name of device device_id ("NVIDIA H200") into buf[len],
     * returning 1, or 0 if there is no such device.  CPU backends leave it
     * NULL (the library names the host's CPU). */
    int (*device_name)(int device_id, char *buf, size_t len);
} natten_backend;

/* registry.c */
NATTEN_INTERNAL const natten_backend *natten_backend_at(int index);
NATTEN_INTERNAL const natten_backend *natten_backend_find(const char *name);
/* Cached probe; returns 1 if usable, else 0 and *reason (static storage). */
NATTEN_INTERNAL int natten_backend_usable(const natten_backend *b, const char **reason);

/* status.c: set this thread's message and return s.  Backends use it too. */
NATTEN_INTERNAL natten_status natten_error(natten_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
NATTEN_INTERNAL void natten_clear_error(void);

/* alloc.c: host allocations of lib/ and CPU backends (size 0 gives a valid
 * pointer); NULL means out of memory. */
NATTEN_INTERNAL void *natten_malloc(size_t bytes);
NATTEN_INTERNAL void *natten_calloc(size_t n, size_t size);
NATTEN_INTERNAL void natten_free(void *p);

/* validate.c */
NATTEN_INTERNAL natten_status natten_validate(natten_problem *prob, natten_op op,
                                              const natten_params *p,
                                              const DLTensor *const t[NATTEN_ARG_COUNT]);
NATTEN_INTERNAL const char *natten_op_name(natten_op op);
NATTEN_INTERNAL const char *natten_dtype_name(natten_dtype t);
NATTEN_INTERNAL size_t natten_dtype_size(natten_dtype t);
/* 1 if the output role a of op is written by it (else it is read or unused). */
NATTEN_INTERNAL int natten_arg_is_output(natten_op op, natten_arg a);
NATTEN_INTERNAL const char *natten_arg_name(natten_arg a);

/* Like natten_validate, for natten_explain: tensors may have NULL data (a
 * fake aligned address stands in) and aliasing between tensors is not checked. */
NATTEN_INTERNAL natten_status natten_validate_shapes(natten_problem *prob, natten_op op,
                                                     const natten_params *p,
                                                     const DLTensor *const t[NATTEN_ARG_COUNT]);

/* select.c: 1 if backend b can run p here (device, probe, op, supports()),
 * else 0 with the reason in why[len]. */
NATTEN_INTERNAL int natten_applicable(const natten_backend *b, const natten_problem *p, char *why,
                                      size_t len);

/* tune.c: problem signatures and the measurement of candidates. */
#define NATTEN_SIG_LEN 256
/* The signature of p as one token of [A-Za-z0-9_:,./=-] (op, dtype, device,
 * rank, sizes, K, d, s, causal, per-role layout class and presence). */
NATTEN_INTERNAL void natten_signature(const natten_problem *p, char buf[NATTEN_SIG_LEN]);
/* Configurations of b: at least 1; names "default" when b has none. */
NATTEN_INTERNAL int natten_config_count(const natten_backend *b);
NATTEN_INTERNAL const char *natten_config_name(const natten_backend *b, int config);

typedef struct natten_candidate {
    const natten_backend *backend;
    int config;
    natten_status status;     /* in: SUCCESS to time it, else already refused; out: result */
    double ms;                /* out: median, -1 if not timed */
    int runs;                 /* out: timed runs behind ms */
    int pruned;               /* out: 1 if stopped after one run, or after its pre-probe
                                 (runs 0, ms the prediction), as hopeless (status SUCCESS) */
    char why[160];            /* refusal / failure / pruning text */
} natten_candidate;

/* Time each candidate whose status is SUCCESS on p, in order: outputs go to
 * scratch buffers of the same layout (the candidate's scratch_alloc, else
 * host memory), inputs are p's.  A first run, then the median of reps runs
 * (the backend's time_op, else a monotonic clock).  Pruning (prune > 0): a
 * candidate whose first warm run (or, when over a second, its cold first run)
 * takes longer than prune times the best median so far is not timed further:
 * pruned = 1, ms = that run.  Before that first run, once some candidate has
 * a time, a candidate is timed on a cut problem (batch 1, one KV-head group:
 * 1/(batch*heads_kv) of the work) and pruned without a full run (runs 0,
 * ms = the linear prediction) when the prediction is over a second and
 * hopeless; a cut problem it refuses or fails on leaves the full run to
 * decide.  Sorts c[] fastest first (pruned ones by their
 * single time; never first), the failed and refused after, and gives the
 * number timed (pruned included) in *n_ok.  Never writes p's outputs. */
NATTEN_INTERNAL natten_status natten_measure(const natten_problem *p, const natten_exec *x,
                                             natten_candidate *c, int n, int reps, double prune,
                                             int *n_ok);

/* wisdom.c: the parser is a pure function over a buffer (fuzzed). */
#define NATTEN_WISDOM_MAX_DEVICES 16
#define NATTEN_WISDOM_MAX_ENTRIES 65536
typedef struct natten_wisdom_entry {
    char sig[NATTEN_SIG_LEN];
    char backend[64];
    char config[64];
    int64_t ns;               /* measured median, nanoseconds */
} natten_wisdom_entry;

typedef struct natten_wisdom {
    int format;
    char library[32];
    char backends[256];
    int n_devices;
    struct { char id[32]; char name[128]; } device[NATTEN_WISDOM_MAX_DEVICES];
    int n_entries;
    natten_wisdom_entry *entry;   /* natten_malloc'ed; natten_wisdom_release frees */
} natten_wisdom;

/* Parse buf[len] (need not be terminated).  On failure *w holds nothing to
 * free and the thread's message says which line is wrong and how. */
NATTEN_INTERNAL natten_status natten_wisdom_parse(const char *buf, size_t len, natten_wisdom *w);
NATTEN_INTERNAL void natten_wisdom_release(natten_wisdom *w);
/* Name of device "cpu:0" / "cuda:1" on this machine into buf; 0 if unknown. */
NATTEN_INTERNAL int natten_device_name(const char *id, char *buf, size_t len);

/* Helpers for backends' supports(): 1 if role a's last (C) axis is unit-stride
 * (or has one element), for every present role. */
NATTEN_INTERNAL int natten_inner_contiguous(const natten_problem *p, char *why, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* NATTEN_IMPL_H */
