/*
 * testutil.h - test tensors (any layout, any dtype, host or device memory),
 * random fills, NaN poisoning, comparisons, and an independent dense-masked
 * reference of every op written from the spec (double precision).
 */
#ifndef NATTEN_TESTUTIL_H
#define NATTEN_TESTUTIL_H

#include <natten.h>
#include <stddef.h>
#include <stdint.h>

#define TT_MAXDIM 6

/* Memory layouts a test tensor can take (the logical shape never changes). */
typedef enum {
    TT_COMPACT,       /* row-major */
    TT_HEADS_FIRST,   /* token tensors stored [B, H, S.., C]; others compact */
    TT_PADDED,        /* row-major with padded rows and a byte_offset */
    TT_INNER_STRIDED, /* last dim has stride 2 */
    TT_LAYOUT_COUNT
} tt_layout;

/* How tensors reach a device: host memory for CPU; tests/testutil-cuda.c for CUDA,
 * tests/testutil-hip.c for ROCm. */
typedef struct tt_mem {
    DLDeviceType type;
    int (*alloc)(void **p, size_t bytes);
    void (*release)(void *p);
    int (*upload)(void *dev, const void *host, size_t bytes);
    int (*download)(void *host, const void *dev, size_t bytes);
} tt_mem;

/* The memory functions for a device type, or NULL if this test build has none. */
const tt_mem *tt_mem_for(DLDeviceType type);

typedef struct tt {
    DLTensor t;           /* t.data is the buffer start; byte_offset selects element 0 */
    int64_t shape[TT_MAXDIM], strides[TT_MAXDIM];
    char *host;           /* host image of the whole buffer */
    void *dev;            /* device buffer (== host on CPU) */
    size_t bytes;
    int64_t numel;
    const tt_mem *mem;
} tt;

/* A tensor; token = 1 if shaped [B, S.., H, C] (layouts apply), else compact/padded.
 * Returns NULL on allocation failure. */
tt *tt_new(int ndim, const int64_t *shape, DLDataType dtype, tt_layout layout, int token,
           DLDeviceType dev);
void tt_free(tt *x);
tt *tt_clone_layout(const tt *like, tt_layout layout, DLDeviceType dev); /* same values */

double tt_get(const tt *x, int64_t linear);           /* logical row-major index */
void tt_set(tt *x, int64_t linear, double v);
void tt_fill_random(tt *x, uint64_t *rng, double scale); /* uniform in [-scale, scale] */
void tt_poison(tt *x);                                 /* every byte of the buffer: NaN */
int tt_upload(tt *x);                                  /* host image -> device (no-op on CPU) */
int tt_download(tt *x);                                /* device -> host image */
int tt_buffer_equal(const tt *x, const void *image);  /* bit-identical buffer? */

uint64_t tt_seed(void);                                /* NATTEN_TEST_SEED or time-based */
double tt_uniform(uint64_t *rng);                      /* [0, 1) */

DLDataType tt_dtype(const char *name);                 /* "float32", "float16", ... */
const char *tt_dtype_name(DLDataType t);

/* Comparison of x against a reference (in double, logical order). */
typedef struct tt_err {
    double max_abs;   /* max |x - ref| over finite reference entries */
    double norm;      /* max_abs / max(1, max |ref|) */
    int64_t bad;      /* entries where x is NaN, or -inf disagrees */
    int64_t first_bad;
} tt_err;
tt_err tt_compare(const tt *x, const double *ref);

/* ---- the dense-masked reference (spec 1.4, 4.3, 4.4), all double ---- */
typedef struct ref_problem {
    int rank;
    int64_t B, H, Hkv, D, Dv, S[3];
    int K[3], d[3], s[3], causal[3];
    double scale;
    int has_rpb;
} ref_problem;

int64_t ref_tokens(const ref_problem *r);
int64_t ref_window(const ref_problem *r);
/* Test-side window (NATTEN's max + border-correction form, not the library's). */
void ref_window_1d(int64_t L, int K, int d, int s, int causal, int64_t i, int64_t *a, int64_t *b);

/* Arrays are compact, logical order: tokens [B, N, H, C], attn [B, N, H, W],
 * lse [B, N, H], rpb [H, E0, E1, E2]. */
void ref_qk(const ref_problem *r, const double *q, const double *k, const double *rpb, double *attn);
void ref_qk_backward(const ref_problem *r, const double *d_attn, const double *q, const double *k,
                     double *d_q, double *d_k, double *d_rpb);
void ref_av(const ref_problem *r, const double *attn, const double *v, double *out);
void ref_av_backward(const ref_problem *r, const double *d_out, const double *attn, const double *v,
                     double *d_attn, double *d_v);
void ref_fna(const ref_problem *r, const double *q, const double *k, const double *v,
             const double *rpb, double *out, double *lse);
void ref_fna_backward(const ref_problem *r, const double *q, const double *k, const double *v,
                      const double *rpb, const double *out, const double *lse, const double *d_out,
                      double *d_q, double *d_k, double *d_v, double *d_rpb);

/* Copy a tensor's values into a fresh double array (logical order). */
double *tt_to_double(const tt *x);

#endif
