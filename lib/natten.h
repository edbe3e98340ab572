/*
 * natten.h - libnatten public API: neighborhood attention over DLPack tensors.
 *
 * Every fallible call returns a natten_status; natten_last_error() gives this
 * thread's detail message for the last failure.  A failed call writes nothing
 * to any output tensor.  The semantics are those of
 * shared/spec/NEIGHBORHOOD_ATTENTION.md; docs/api.md documents every function.
 *
 * Tensor layouts (logical dimension order; any strides, counted in elements):
 *   q, k, v, out and their gradients   [B, S1..Sn, H, D]     (n = params.rank)
 *   attn, d_attn (unfused ops)         [B, S1..Sn, H, K1*..*Kn]
 *   lse (fused ops, always float32)    [B, S1..Sn, H]
 *   rpb, d_rpb                         [H, 2K1-1, .., 2Kn-1]
 * Heads-first data ([B, H, S.., D] in memory) is passed as a permuted view.
 */
#ifndef NATTEN_H
#define NATTEN_H

#include <stddef.h>
#include <stdint.h>
#include <dlpack/dlpack.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NATTEN_VERSION_MAJOR 0
#define NATTEN_VERSION_MINOR 1
#define NATTEN_VERSION_PATCH 0

#if defined(_WIN32)
#  define NATTEN_API __declspec(dllexport)
#elif defined(__GNUC__)
#  define NATTEN_API __attribute__((visibility("default")))
#else
#  define NATTEN_API
#endif

typedef enum natten_status {
    NATTEN_SUCCESS = 0,
    NATTEN_ERROR_INVALID_ARGUMENT,     /* the request is wrong */
    NATTEN_ERROR_UNSUPPORTED,          /* valid request, no (chosen) backend can do it */
    NATTEN_ERROR_BACKEND_UNAVAILABLE,  /* unknown backend name, or not usable here */
    NATTEN_ERROR_OUT_OF_MEMORY,
    NATTEN_ERROR_DEVICE,               /* the device runtime reported an error */
    NATTEN_ERROR_INTERNAL
} natten_status;

NATTEN_API const char *natten_status_string(natten_status s);
/* This thread's message for its last failed call ("" if none). */
NATTEN_API const char *natten_last_error(void);
/* "libnatten 0.1.0 (backends: naive openmp ...)" */
NATTEN_API const char *natten_version_string(void);

/* Neighborhood parameters, one entry per spatial axis, index 0 = outermost. */
typedef struct natten_params {
    int rank;             /* 1, 2 or 3 */
    int kernel_size[3];   /* window size K >= 2 (odd or even) */
    int dilation[3];      /* d >= 1 */
    int stride[3];        /* 1 <= s <= K */
    int is_causal[3];     /* 0 or 1 */
    int has_scale;        /* fused ops: 0 = scale 1/sqrt(D); 1 = use .scale as given */
    double scale;
} natten_params;

/* Fill *p with rank, kernel_size[0..rank-1], dilation 1, stride 1, not causal,
 * default scale. */
NATTEN_API natten_status natten_params_init(natten_params *p, int rank,
                                            const int *kernel_size);
/* Set an explicit softmax scale for the fused ops (0.0 is honoured). */
NATTEN_API natten_status natten_params_set_scale(natten_params *p, double scale);

/* Contexts: independent; one context may be used from several threads. */
typedef struct natten_context natten_context;

NATTEN_API natten_status natten_context_create(natten_context **ctx);
NATTEN_API void natten_context_destroy(natten_context *ctx); /* NULL is a no-op */
/* Force a backend by name; NULL or "auto" restores automatic selection.
 * "name/config" forces one of its configurations too (by the configuration's
 * name as natten_context_tuning_report gives it, or by index): the tuner is
 * then bypassed.  An unknown configuration is NATTEN_ERROR_BACKEND_UNAVAILABLE. */
NATTEN_API natten_status natten_context_set_backend(natten_context *ctx, const char *name);
/* CUDA/HIP stream (cudaStream_t) for GPU backends; NULL = legacy default stream. */
NATTEN_API natten_status natten_context_set_stream(natten_context *ctx, void *stream);
/* CPU threads for multithreaded backends; 0 = the backend's default. */
NATTEN_API natten_status natten_context_set_num_threads(natten_context *ctx, int n);
/* Name of the backend that ran this context's last successful op, or NULL. */
NATTEN_API const char *natten_context_last_backend(const natten_context *ctx);

/* Backends compiled into this build, in selection order (fastest first). */
typedef struct natten_backend_info {
    const char *name;
    const char *description;
    DLDeviceType device_type;  /* kDLCPU, kDLCUDA or kDLROCM */
    int available;             /* 1 if usable on this machine now */
    const char *reason;        /* why not, when available == 0; else NULL */
} natten_backend_info;

NATTEN_API int natten_backend_count(void);
NATTEN_API natten_status natten_backend_get_info(int index, natten_backend_info *info);

/* ---- Selection: explain, measure, remember (docs/selection.md) ---------- */

/* The ops, and the tensor roles they take, for the generic calls below. */
typedef enum natten_op {
    NATTEN_OP_QK_FORWARD,
    NATTEN_OP_QK_BACKWARD,
    NATTEN_OP_AV_FORWARD,
    NATTEN_OP_AV_BACKWARD,
    NATTEN_OP_FNA_FORWARD,
    NATTEN_OP_FNA_BACKWARD,
    NATTEN_OP_COUNT
} natten_op;

typedef enum natten_arg {
    NATTEN_ARG_Q, NATTEN_ARG_K, NATTEN_ARG_V, NATTEN_ARG_ATTN, NATTEN_ARG_RPB,
    NATTEN_ARG_OUT, NATTEN_ARG_LSE, NATTEN_ARG_D_OUT, NATTEN_ARG_D_ATTN,
    NATTEN_ARG_D_Q, NATTEN_ARG_D_K, NATTEN_ARG_D_V, NATTEN_ARG_D_RPB,
    NATTEN_ARG_COUNT
} natten_arg;

/* How a context picks a backend when none is forced.
 * HEURISTIC: the first backend in registry order that accepts the problem,
 *   with its default configuration (or the remembered winner, see below).
 * MEASURE: the first time a problem signature is seen, time every backend x
 *   configuration that accepts it (on scratch outputs; inputs are read) and
 *   keep the fastest for that signature.  Also NATTEN_TUNING=measure.
 * In both modes a signature already in the context's cache (measured earlier,
 * or imported as wisdom) runs its remembered winner.  While measuring, a
 * candidate whose first run takes longer than NATTEN_TUNING_PRUNE (default 3)
 * times the best median so far is pruned: timed once, not further; one whose
 * time predicted from a cut-down problem (batch 1, one KV-head group) is over
 * a second and that hopeless is pruned without a full-size run. */
typedef enum natten_tuning {
    NATTEN_TUNING_HEURISTIC = 0,
    NATTEN_TUNING_MEASURE = 1
} natten_tuning;

NATTEN_API natten_status natten_context_set_tuning(natten_context *ctx, natten_tuning mode);

/* Which backend would run op on tensors t[role] (NULL for an absent role), and
 * why each other backend refuses, as text in buf[len] (always terminated,
 * truncated if short).  Only shape, ndim, strides, byte_offset, dtype and
 * device are read: data may be NULL, nothing is allocated or run (aliasing
 * between tensors is not checked without data).  *backend (nullable) gets the
 * pick's name or NULL.  Returns NATTEN_SUCCESS if some backend would run it,
 * NATTEN_ERROR_UNSUPPORTED if none would, NATTEN_ERROR_INVALID_ARGUMENT if
 * the request is wrong (the message is in buf too). */
NATTEN_API natten_status natten_explain(natten_context *ctx, natten_op op, const natten_params *p,
                                        const DLTensor *const t[NATTEN_ARG_COUNT],
                                        const char **backend, char *buf, size_t len);

/* One candidate of the last measured selection (cuDNN's perf array). */
typedef struct natten_tuning_result {
    const char *backend;       /* static storage */
    const char *config;        /* the backend's configuration name, "default" if it has none */
    int config_index;
    natten_status status;      /* SUCCESS if timed; else why it was not (refused, failed) */
    double time_ms;            /* median time; < 0 when status != SUCCESS */
    char reason[160];          /* refusal or failure message; "" on success; "pruned: ..." */
    int runs;                  /* timed runs behind time_ms (0 when not timed, or pruned on its
                                  pre-probe) */
    int pruned;                /* 1: found hopeless (status SUCCESS) after one run (time_ms that
                                  run's time, runs 1) or on a cut-down pre-probe (time_ms the
                                  prediction, runs 0), not timed further; see NATTEN_TUNING_PRUNE */
} natten_tuning_result;

/* The candidates of the last problem this context measured: fully timed ones
 * fastest first (results[0] is the winner when its status is SUCCESS), then
 * the pruned ones by their time, refused and failed ones after.  Writes
 * min(capacity, total) entries; *count (nullable) gets the total.
 * signature (nullable) gets the problem's signature text.
 * NATTEN_ERROR_INVALID_ARGUMENT if nothing was measured yet. */
NATTEN_API natten_status natten_context_tuning_report(natten_context *ctx,
                                                      natten_tuning_result *results,
                                                      int capacity, int *count,
                                                      char *signature, size_t sig_len);

/* Wisdom: the context's remembered winners as a small text file, salted with
 * the library version, the compiled-in backends and the device names.
 * Import is all or nothing, merges into the context's cache and never trusts
 * a file made elsewhere: NATTEN_ERROR_INVALID_ARGUMENT for an unreadable,
 * corrupt or truncated file, NATTEN_ERROR_UNSUPPORTED for a well-formed file
 * from another version, backend set or device.  NATTEN_WISDOM=<path> imports
 * at context creation (a rejected file is then ignored; NATTEN_VERBOSE says
 * why). */
NATTEN_API natten_status natten_wisdom_export(natten_context *ctx, const char *path);
NATTEN_API natten_status natten_wisdom_import(natten_context *ctx, const char *path);

/* Unfused ops: never scale.  attn = q.k (+ rpb); invalid causal slots are -inf. */
NATTEN_API natten_status natten_qk_forward(natten_context *ctx, const natten_params *p,
                                           const DLTensor *q, const DLTensor *k,
                                           const DLTensor *rpb /* nullable */,
                                           DLTensor *attn);
NATTEN_API natten_status natten_qk_backward(natten_context *ctx, const natten_params *p,
                                            const DLTensor *d_attn, const DLTensor *q,
                                            const DLTensor *k, DLTensor *d_q, DLTensor *d_k,
                                            DLTensor *d_rpb /* nullable */);
NATTEN_API natten_status natten_av_forward(natten_context *ctx, const natten_params *p,
                                           const DLTensor *attn, const DLTensor *v,
                                           DLTensor *out);
NATTEN_API natten_status natten_av_backward(natten_context *ctx, const natten_params *p,
                                            const DLTensor *d_out, const DLTensor *attn,
                                            const DLTensor *v, DLTensor *d_attn,
                                            DLTensor *d_v);

/* Fused ops: out = softmax(scale*q.k + rpb) v over each query's neighbourhood;
 * lse = natural-log logsumexp of the logits (float32).  k, v may have fewer heads
 * (GQA: Hq % Hkv == 0) and v its own head dim. */
NATTEN_API natten_status natten_fna_forward(natten_context *ctx, const natten_params *p,
                                            const DLTensor *q, const DLTensor *k,
                                            const DLTensor *v,
                                            const DLTensor *rpb /* nullable */,
                                            DLTensor *out, DLTensor *lse /* nullable */);
NATTEN_API natten_status natten_fna_backward(natten_context *ctx, const natten_params *p,
                                             const DLTensor *q, const DLTensor *k,
                                             const DLTensor *v,
                                             const DLTensor *rpb /* nullable */,
                                             const DLTensor *out, const DLTensor *lse,
                                             const DLTensor *d_out, DLTensor *d_q,
                                             DLTensor *d_k, DLTensor *d_v,
                                             DLTensor *d_rpb /* nullable */);

#ifdef __cplusplus
}
#endif

#endif /* NATTEN_H */
