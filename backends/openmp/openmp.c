/*
 * openmp.c - the OpenMP CPU backend: every op, ranks 1-3, every parameter,
 * float32 and float64 natively, float16 / bfloat16 stored as such and
 * computed in float32.
 *
 * Work is split into rows (batch, head, outer two spatial indices; all of the
 * last axis) handed out with a static schedule.  The spatial axes are rotated
 * so that the problem's last axis is the row axis; within a row, queries go
 * in strips of one vector of lanes against transposed, packed keys and
 * values (kernels.h says how).  Query-side results (attn,
 * out, lse, d_q, d_attn) are written by the query's row; key-side gradients
 * (d_k, d_v) are gathered per key over its inverse neighbourhood (spec 1.8),
 * so no two threads write the same element and every sum has a fixed order:
 * bitwise reproducible for a fixed thread count.  d_rpb is summed in double
 * into one partial array per thread, then reduced in thread order.
 *
 * Half-precision tensors are converted to float32 copies on the way in and
 * back on the way out (in parallel); the kernels (kernels.h) only see float
 * or double.  A non-unit stride on the head dim is refused in supports().
 */
#include "natten-impl.h"
#include "natten-half.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute)
#  if __has_attribute(target_clones)
#    define NATTEN_OMP_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#  endif
#endif
#ifndef NATTEN_OMP_CLONES
#  define NATTEN_OMP_CLONES
#endif

/*
 * The fused forward's register-blocked path (fast.h) is written for
 * AVX-512 with GCC/clang vector extensions; it is compiled for x86-64 only
 * and taken when the CPU has AVX-512 (fast_cpu()).  NATTEN_OMP_REG keeps a
 * loaded vector in a register: without it GCC folds the load into every
 * FMA that uses it, which repeats the (unaligned) load per use.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#  include <cpuid.h>
#  include <immintrin.h>
#  define NATTEN_OMP_FAST 1
#  define NATTEN_OMP_FAST_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
#  define NATTEN_OMP_REG(x) __asm__("" : "+v"(x))
#else
#  define NATTEN_OMP_FAST 0
#endif

/* NATTEN_OMP_SCALAR keeps a value in a general register (kernels.h, tr). */
#if defined(__GNUC__)
#  define NATTEN_OMP_SCALAR(x) __asm__("" : "+r"(x))
#else
#  define NATTEN_OMP_SCALAR(x) ((void)0)
#endif

/*
 * A transposed copy of keys or values of every (batch, head, x0, x1):
 * [C][ncol], columns = positions on the last axis ordered dilation group by
 * group (so a group's members are adjacent), padded with zeros so that a
 * strip's vector loads never leave the buffer.
 */
typedef struct omp_pack {
    void *data;                  /* NULL if the op does not use this pack */
    int64_t C, ncol, row;        /* row = C * ncol: one (x0, x1) */
    int64_t head, heads;         /* head = X0 * X1 * row; heads of the packed tensor */
} omp_pack;

typedef enum { Q_QK_FWD, Q_AV_FWD, Q_QK_BWD, Q_AV_BWD, Q_FNA_FWD, Q_FNA_BWD } qkind;

/* Per-call tables shared by all threads (read-only once built). */
typedef struct omp_plan {
    natten_problem p;            /* the problem, views pointing at float/double data */
    int64_t *wa[3], *wb[3];      /* window [a, b) of each index (group coordinates) */
    int64_t *ia[3], *ib[3];      /* inverse window [qa, qb) of each index (group coordinates) */
    int64_t rs[3], rh;           /* strides of compact [H, E0, E1, E2] (rpb copy, d_rpb sums) */
    int64_t n_rpb;               /* H * E0 * E1 * E2 */
    natten_view wp, ws;          /* fused backward: P and dS, [B, X.., H, W] compact */
    int64_t *goff;               /* first packed column of each dilation group of axis 2 */
    omp_pack pack[2];            /* operands of the query strips (see strip_row) */
    int64_t fsh;                 /* fused forward blocks: packed rows start fsh columns in (alignment) */
    int vdirect;                 /* fused forward blocks: every strip sums the value tensor itself (no packed V) */
    int nthreads;
} omp_plan;

#define REAL float
#define REAL_IS_DOUBLE 0
#define SFX f32
#include "kernels.h"
#undef REAL
#undef REAL_IS_DOUBLE
#undef SFX

#define REAL double
#define REAL_IS_DOUBLE 1
#define SFX f64
#include "kernels.h"
#undef REAL
#undef REAL_IS_DOUBLE
#undef SFX

static natten_status oom(void)
{
    return natten_error(NATTEN_ERROR_OUT_OF_MEMORY, "openmp: cannot allocate scratch memory");
}

static int team_size(const natten_exec *x)
{
    return x && x->num_threads > 0 ? x->num_threads : omp_get_max_threads();
}

/* ---- half <-> float copies ---------------------------------------------- */

static int64_t numel(const natten_view *v)
{
    int64_t n = 1;
    for (int i = 0; i < 6; i++) n *= v->shape[i];
    return n;
}

static void compact_strides(natten_view *v)
{
    int64_t s = 1;
    for (int i = 5; i >= 0; i--) {
        v->stride[i] = s;
        s *= v->shape[i] > 0 ? v->shape[i] : 1;
    }
}

/* Element offset of flat (row-major) index i of v. */
static int64_t flat_off(const natten_view *v, int64_t i)
{
    int64_t off = 0;
    for (int d = 5; d >= 0; d--) {
        off += (i % v->shape[d]) * v->stride[d];
        i /= v->shape[d];
    }
    return off;
}

/*
 * fp16 rows with a contiguous head dim converted 8 values at a time by the
 * F16C instructions (vcvtph2ps, vcvtps2ph with round to nearest even): the
 * same bits as natten-half.h's conversions (exact to float; to half one
 * rounding from float) except for NaN payloads.  The scalar ones cost ~3 ns
 * a value and made an fp16 fused forward 8x slower than its fp32 one.
 */
#if NATTEN_OMP_FAST
#  define NATTEN_OMP_F16C 1
#  define NATTEN_OMP_F16C_TARGET __attribute__((target("avx,f16c")))
/* AVX with the OS saving its registers (__builtin_cpu_supports checks that),
 * and the F16C bit of CPUID leaf 1 (clang's builtin does not name "f16c"). */
static int f16c_cpu(void)
{
    unsigned a, b, c, d;
    return __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

static NATTEN_OMP_F16C_TARGET void f16_row_to_float(const uint16_t *h, float *f, int64_t C)
{
    int64_t c = 0;
    for (; c + 8 <= C; c += 8) _mm256_storeu_ps(f + c, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(h + c))));
    for (; c < C; c++) f[c] = natten_f16_to_float(h[c]);
}

static NATTEN_OMP_F16C_TARGET void float_row_to_f16(const float *f, uint16_t *h, int64_t C)
{
    int64_t c = 0;
    for (; c + 8 <= C; c += 8)
        _mm_storeu_si128((__m128i *)(void *)(h + c),
                         _mm256_cvtps_ph(_mm256_loadu_ps(f + c), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; c < C; c++) h[c] = natten_float_to_f16(f[c]);
}
#else
#  define NATTEN_OMP_F16C 0
#endif

/* dst (compact float) <- src (half, any strides); or back when to_half. */
static void convert(const natten_view *half, float *f, natten_dtype t, int to_half, int nt)
{
    int64_t n = numel(half), C = half->shape[5];
    uint16_t *h = (uint16_t *)(void *)half->data;
    if (n == 0) return;
#if NATTEN_OMP_F16C
    if (t == NATTEN_F16 && half->stride[5] == 1 && f16c_cpu()) {
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t r = 0; r < n / C; r++) {
            if (to_half) float_row_to_f16(f + r * C, h + flat_off(half, r * C), C);
            else f16_row_to_float(h + flat_off(half, r * C), f + r * C, C);
        }
        return;
    }
#endif
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < n / C; r++) {
        int64_t base = flat_off(half, r * C);
        for (int64_t c = 0; c < C; c++) {
            int64_t o = base + c * half->stride[5];
            if (to_half)
                h[o] = t == NATTEN_F16 ? natten_float_to_f16(f[r * C + c]) : natten_float_to_bf16(f[r * C + c]);
            else
                f[r * C + c] = t == NATTEN_F16 ? natten_f16_to_float(h[o]) : natten_bf16_to_float(h[o]);
        }
    }
}

/*
 * p rounded up to a 64-byte boundary (a cache line).  Scratch that the
 * kernels read and write as 64-byte vectors (the strips' and key_pass's
 * per-thread slices) is allocated 64 bytes larger and used from there:
 * malloc's 16-byte alignment puts every such vector across two cache lines,
 * and the last line of one thread's slice into the next thread's (measured:
 * QK / AV forward 56x56 K 7 D 32 with the strips' scratch 16 bytes off,
 * 3-9 % slower on 1 and on 2 threads; docs/benchmarks.md, omp10).
 */
static char *line_up(void *p)
{
    return (char *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

/* ---- plan ---------------------------------------------------------------- */

typedef struct omp_call {
    omp_plan P;
    const natten_problem *orig;
    float *conv[NATTEN_ARG_COUNT];   /* float copies of half tensors */
    void *tables;
    void *wbuf;
    void *kscr;                      /* key_pass scratch, taken before any output is written */
} omp_call;

static void call_free(omp_call *c)
{
    for (int a = 0; a < NATTEN_ARG_COUNT; a++) natten_free(c->conv[a]);
    natten_free(c->tables);
    natten_free(c->wbuf);
    natten_free(c->kscr);
    for (int i = 0; i < 2; i++) natten_free(c->P.pack[i].data);
}

/*
 * Rotate the spatial axes so that the problem's last real axis is axis 2
 * (the padding axes of extent 1 go in front): the query strips run along
 * axis 2.  Slot order is unchanged (leading windows of one).
 */
static void rotate_axes(natten_problem *p)
{
    int sh = 3 - p->rank;
    int64_t e[3];
    int k[3], d[3], s[3], c[3];
    if (sh == 0) return;
    for (int i = 0; i < 3; i++) {
        int j = (i + sh) % 3;
        e[j] = p->extent[i]; k[j] = p->kernel[i]; d[j] = p->dilation[i]; s[j] = p->stride[i]; c[j] = p->causal[i];
    }
    memcpy(p->extent, e, sizeof e);
    memcpy(p->kernel, k, sizeof k);
    memcpy(p->dilation, d, sizeof d);
    memcpy(p->stride, s, sizeof s);
    memcpy(p->causal, c, sizeof c);
    for (int a = 0; a < NATTEN_ARG_COUNT; a++) {
        natten_view *v = &p->arg[a], o = *v;
        for (int i = 0; i < 3; i++) {
            v->shape[1 + (i + sh) % 3] = o.shape[1 + i];
            v->stride[1 + (i + sh) % 3] = o.stride[1 + i];
        }
    }
}

/* Window / inverse-window tables of every index, and group column offsets. */
static natten_status build_tables(omp_call *c)
{
    const natten_problem *p = &c->P.p;
    int64_t tot = p->dilation[2], *t;
    for (int i = 0; i < 3; i++) tot += 4 * p->extent[i];
    c->tables = t = natten_malloc((size_t)tot * sizeof(int64_t));
    if (!t) return oom();
    for (int i = 0; i < 3; i++) {
        int64_t L = p->extent[i];
        int d = p->dilation[i];
        c->P.wa[i] = t; c->P.wb[i] = t + L; c->P.ia[i] = t + 2 * L; c->P.ib[i] = t + 3 * L;
        t += 4 * L;
        for (int64_t j = 0; j < L; j++) {
            int64_t n = natten_group_len(L, d, j % d);
            natten_window_g(n, p->kernel[i], p->stride[i], p->causal[i], j / d, &c->P.wa[i][j], &c->P.wb[i][j]);
            natten_inverse_window_g(n, p->kernel[i], p->stride[i], p->causal[i], j / d, &c->P.ia[i][j],
                                    &c->P.ib[i][j]);
        }
    }
    c->P.goff = t;
    for (int64_t g = 0, o = 0; g < p->dilation[2]; g++) {
        c->P.goff[g] = o;
        o += natten_group_len(p->extent[2], p->dilation[2], g);
    }
    return NATTEN_SUCCESS;
}

/* rpb: a compact [H, E0, E1, E2] copy in the compute type, so that one flat
 * index serves both the bias and the d_rpb partial sums. */
static natten_status copy_rpb(omp_call *c)
{
    const natten_problem *p = c->orig;
    const natten_view *r = &c->P.p.arg[NATTEN_ARG_RPB];
    int64_t e[3];
    char *cp;
    for (int i = 0; i < 3; i++) e[i] = 2 * c->P.p.kernel[i] - 1;
    c->P.rs[2] = 1; c->P.rs[1] = e[2]; c->P.rs[0] = e[1] * e[2];
    c->P.rh = e[0] * e[1] * e[2];
    c->P.n_rpb = p->heads * c->P.rh;
    if (!natten_has(p, NATTEN_ARG_RPB)) return NATTEN_SUCCESS;
    cp = natten_malloc((size_t)c->P.n_rpb * (p->dtype == NATTEN_F64 ? 8 : 4));
    if (!cp) return oom();
    c->conv[NATTEN_ARG_RPB] = (float *)(void *)cp;
    for (int64_t h = 0, i = 0; h < p->heads; h++)
        for (int64_t e0 = 0; e0 < r->shape[1]; e0++)
            for (int64_t e1 = 0; e1 < r->shape[2]; e1++)
                for (int64_t e2 = 0; e2 < r->shape[3]; e2++, i++) {
                    int64_t o = natten_off(r, 0, e0, e1, e2, h, 0);
                    const void *src = r->data;
                    switch (p->dtype) {
                    case NATTEN_F64: ((double *)(void *)cp)[i] = ((const double *)src)[o]; break;
                    case NATTEN_F32: ((float *)(void *)cp)[i] = ((const float *)src)[o]; break;
                    case NATTEN_F16: ((float *)(void *)cp)[i] = natten_f16_to_float(((const uint16_t *)src)[o]); break;
                    default: ((float *)(void *)cp)[i] = natten_bf16_to_float(((const uint16_t *)src)[o]); break;
                    }
                }
    c->P.p.arg[NATTEN_ARG_RPB].data = cp;
    return NATTEN_SUCCESS;
}

static natten_status call_init(omp_call *c, const natten_problem *p, const natten_exec *x)
{
    natten_status st;
    memset(c, 0, sizeof *c);
    c->orig = p;
    c->P.p = *p;
    c->P.nthreads = team_size(x);
    /* half tensors: float copies (compact, original axis order), inputs converted now */
    if (p->dtype == NATTEN_F16 || p->dtype == NATTEN_BF16) {
        for (int a = 0; a < NATTEN_ARG_COUNT; a++) {
            natten_view *v = &c->P.p.arg[a];
            if (!v->data || a == NATTEN_ARG_LSE || a == NATTEN_ARG_RPB) continue;
            c->conv[a] = natten_malloc((size_t)numel(v) * sizeof(float));
            if (!c->conv[a]) return oom();
            if (!natten_arg_is_output(p->op, (natten_arg)a))
                convert(&p->arg[a], c->conv[a], p->dtype, 0, c->P.nthreads);
            v->data = (char *)c->conv[a];
            compact_strides(v);
        }
    }
    rotate_axes(&c->P.p);
    if ((st = build_tables(c))) return st;
    return copy_rpb(c);
}

/* Write float copies of half outputs back. */
static void call_finish(omp_call *c)
{
    const natten_problem *p = c->orig;
    for (int a = 0; a < NATTEN_ARG_COUNT; a++)
        if (c->conv[a] && natten_arg_is_output(p->op, (natten_arg)a))
            convert(&p->arg[a], c->conv[a], p->dtype, 1, c->P.nthreads);
}

static int is_double(const natten_problem *p)
{
    return p->dtype == NATTEN_F64;
}

static size_t real_size(const natten_problem *p)
{
    return is_double(p) ? sizeof(double) : sizeof(float);
}

/* Per-thread scratch, in bytes (whole cache lines). */
static size_t scratch_bytes(const natten_problem *p)
{
    int64_t n = is_double(p) ? strip_scratch_f64(p) : strip_scratch_f32(p);
    return ((size_t)n * real_size(p) + 63) & ~(size_t)63;
}

/* ---- drivers ------------------------------------------------------------ */

/*
 * Pack role a (token view with `heads` heads and C channels) into P->pack[i]
 * (transposed, see omp_pack), in parallel over (b, head, x0, x1).
 */
static natten_status pack(omp_plan *P, int i, natten_arg a)
{
    const natten_problem *p = &P->p;
    const natten_view *v = &p->arg[a];
    omp_pack *pk = &P->pack[i];
    size_t es = real_size(p);
    int64_t rows, X2 = p->extent[2];
    pk->C = v->shape[NV_C];
    pk->heads = v->shape[NV_H];
    /* strip loads reach SW - 1 lanes and K2 - 1 slots past a group's last column */
    pk->ncol = X2 + 64 / (int64_t)es + p->kernel[2];
    pk->row = pk->C * pk->ncol;
    pk->head = p->extent[0] * p->extent[1] * pk->row;
    rows = p->batch * pk->heads * p->extent[0] * p->extent[1];
    pk->data = natten_malloc((size_t)(rows * pk->row) * es);
    if (!pk->data) return oom();
#pragma omp parallel for schedule(static) num_threads(P->nthreads)
    for (int64_t r = 0; r < rows; r++) {
        int64_t x1 = r % p->extent[1], t = r / p->extent[1];
        int64_t x0 = t % p->extent[0], h = (t / p->extent[0]) % pk->heads;
        int64_t b = t / p->extent[0] / pk->heads;
        for (int64_t g = 0; g < p->dilation[2]; g++) {
            int64_t off = natten_off(v, b, x0, x1, g, h, 0), ts = p->dilation[2] * v->stride[3];
            int64_t n = natten_group_len(X2, p->dilation[2], g);
            if (is_double(p))
                pack_seg_f64((const double *)(void *)v->data + off, ts, n, pk->C,
                             (double *)pk->data + r * pk->row + P->goff[g], pk->ncol);
            else
                pack_seg_f32((const float *)(void *)v->data + off, ts, n, pk->C,
                             (float *)pk->data + r * pk->row + P->goff[g], pk->ncol);
        }
        for (int64_t c = 0; c < pk->C; c++)
            memset((char *)pk->data + (size_t)(r * pk->row + c * pk->ncol + X2) * es, 0,
                   (size_t)(pk->ncol - X2) * es);
    }
    return NATTEN_SUCCESS;
}

/*
 * Run the query-side kernel of kind k over every row.  If drpb_out is
 * non-NULL, each thread sums d_rpb into its own zeroed partial and the
 * partials are added in thread order into drpb_out ([H, E] compact, double).
 */
static natten_status query_pass(omp_plan *P, qkind k, double *drpb_out)
{
    const natten_problem *p = &P->p;
    int nt = P->nthreads;
    size_t sb = scratch_bytes(p);
    int64_t rows = p->batch * p->heads * p->extent[0] * p->extent[1];
    char *scr = natten_malloc(sb * (size_t)nt + 64);
    double *part = NULL, *pa = NULL; /* pa: part from its first cache line */
    size_t ps = ((size_t)P->n_rpb + 7) & ~(size_t)7; /* d_rpb partials: whole cache lines each */
    int used = 1;
    if (!scr) return oom();
    if (drpb_out) {
        part = natten_calloc((size_t)nt * ps + 8, sizeof(double));
        if (!part) { natten_free(scr); return oom(); }
        pa = (double *)(void *)line_up(part);
    }
#pragma omp parallel num_threads(nt)
    {
        int tid = omp_get_thread_num();
        char *s = line_up(scr) + sb * (size_t)tid;
        double *dr = pa ? pa + (size_t)tid * ps : NULL;
#pragma omp single
        used = omp_get_num_threads();
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            int64_t x1 = r % p->extent[1], t = r / p->extent[1];
            int64_t x0 = t % p->extent[0];
            int64_t h = (t / p->extent[0]) % p->heads, b = t / p->extent[0] / p->heads;
            double *drh = dr ? dr + h * P->rh : NULL;
            if (is_double(p)) strip_row_f64(P, k, b, h, x0, x1, (double *)(void *)s, drh);
            else strip_row_f32(P, k, b, h, x0, x1, (float *)(void *)s, drh);
        }
    }
    if (drpb_out) {
        for (int64_t i = 0; i < P->n_rpb; i++) drpb_out[i] = 0;
        for (int t = 0; t < used; t++)
            for (int64_t i = 0; i < P->n_rpb; i++) drpb_out[i] += pa[(size_t)t * ps + i];
    }
    natten_free(part);
    natten_free(scr);
    return NATTEN_SUCCESS;
}

/* Per-thread key_pass scratch for head dims up to C. */
static size_t key_scratch_bytes(const natten_problem *p, int64_t C)
{
    return ((size_t)C * real_size(p) + 63) & ~(size_t)63;
}

/* Take the key_pass scratch (head dims up to C) up front: the query pass
 * writes outputs, and running out of memory after it would leave them
 * half-written (a failed call writes nothing). */
static natten_status key_scratch(omp_call *c, int64_t C)
{
    c->kscr = natten_malloc(key_scratch_bytes(&c->P.p, C) * (size_t)c->P.nthreads + 64);
    return c->kscr ? NATTEN_SUCCESS : oom();
}

/* Key-side gradient: OUT[key] = factor * sum over its inverse neighbourhood of W * S.
 * scr: key_scratch() for at least C. */
static natten_status key_pass(omp_plan *P, char *scr, const natten_view *W, const natten_view *S, int64_t C,
                              natten_view *OUT, double factor)
{
    const natten_problem *p = &P->p;
    int nt = P->nthreads;
    size_t sb = key_scratch_bytes(p, C);
    int64_t rows = p->batch * OUT->shape[NV_H] * p->extent[0] * p->extent[1];
#pragma omp parallel num_threads(nt)
    {
        char *s = line_up(scr) + sb * (size_t)omp_get_thread_num();
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            int64_t y1 = r % p->extent[1], t = r / p->extent[1];
            int64_t y0 = t % p->extent[0];
            int64_t hk = (t / p->extent[0]) % OUT->shape[NV_H], b = t / p->extent[0] / OUT->shape[NV_H];
            if (is_double(p))
                key_row_f64(P, W, S, C, OUT, factor, b, hk, y0, y1, (double *)(void *)s);
            else
                key_row_f32(P, W, S, C, OUT, (float)factor, b, hk, y0, y1, (float *)(void *)s);
        }
    }
    return NATTEN_SUCCESS;
}

/* d_rpb (double [H, E] compact) into the problem's d_rpb view. */
static void store_drpb(omp_plan *P, const double *acc)
{
    const natten_view *v = &P->p.arg[NATTEN_ARG_D_RPB];
    int64_t e[3] = {v->shape[1], v->shape[2], v->shape[3]};
    for (int64_t h = 0; h < P->p.heads; h++)
        for (int64_t i = 0; i < e[0]; i++)
            for (int64_t j = 0; j < e[1]; j++)
                for (int64_t k = 0; k < e[2]; k++) {
                    int64_t o = natten_off(v, 0, i, j, k, h, 0);
                    double x = acc[h * P->rh + i * P->rs[0] + j * P->rs[1] + k];
                    if (is_double(&P->p)) ((double *)(void *)v->data)[o] = x;
                    else ((float *)(void *)v->data)[o] = (float)x;
                }
}

static natten_status finish(omp_call *c, natten_status st)
{
    if (st == NATTEN_SUCCESS) call_finish(c);
    call_free(c);
    return st;
}

static natten_status qk_forward(const natten_problem *p, const natten_exec *x)
{
    omp_call c;
    natten_status st = call_init(&c, p, x);
    if (st == NATTEN_SUCCESS) st = pack(&c.P, 0, NATTEN_ARG_K);
    if (st == NATTEN_SUCCESS) st = query_pass(&c.P, Q_QK_FWD, NULL);
    return finish(&c, st);
}

static natten_status av_forward(const natten_problem *p, const natten_exec *x)
{
    omp_call c;
    natten_status st = call_init(&c, p, x);
    if (st == NATTEN_SUCCESS) st = pack(&c.P, 1, NATTEN_ARG_V);
    if (st == NATTEN_SUCCESS) st = query_pass(&c.P, Q_AV_FWD, NULL);
    return finish(&c, st);
}

#if NATTEN_OMP_FAST
static int fast_cpu(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/*
 * 1 if every strip of the last axis loads its keys as one vector or one
 * broadcast (modes 0 and 2), which the blocks of fast.h need; strides that
 * need gathers (mode 1) take the strips of query_pass.
 */
static int fna_fast_ok(const omp_plan *P)
{
    const natten_problem *p = &P->p;
    for (int64_t g2 = 0; g2 < p->dilation[2]; g2++) {
        int64_t ng = natten_group_len(p->extent[2], p->dilation[2], g2);
        for (int64_t u = 0, w; u < ng; u += w) {
            int mode;
            w = strip_len_f32(P, g2, u, ng, &mode);
            if (mode == 1) return 0;
        }
    }
    return 1;
}

/*
 * Fused forward, float: blocks of up to R query rows (one axis-1 dilation
 * group, consecutive members), in row order within each (batch, head, x0),
 * so that a thread's consecutive blocks share most of their key rows: each
 * thread packs the key and value rows it needs into its own small cache
 * (fcache) instead of a packed copy of the whole tensors.  The blocks are
 * split into one range per pair of threads; in a range, the pair's first
 * thread takes blocks from the start forward and the second from the end
 * backward (a block's key rows overlap its predecessor's either way), each
 * claim one shared counter increment, until they meet: a thread that runs
 * slower takes fewer blocks, at no cost in locality (a static schedule
 * waits for the slower thread).
 */
static natten_status fna_fwd_blocks(omp_plan *P, int R)
{
    const natten_problem *p = &P->p;
    int nt = P->nthreads;
    int64_t nb1 = 0, total, *tab, m0 = p->kernel[0], m1 = 1, ncol, kslot, vslot;
    size_t fb, cb, tb, sb;
    char *scr;
    for (int64_t g = 0; g < p->dilation[1]; g++) nb1 += (natten_group_len(p->extent[1], p->dilation[1], g) + R - 1) / R;
    /* the table, then one claim counter per pair of threads, a cache line (64 bytes) apart */
    tab = natten_malloc(((size_t)nb1 * 3 + 8 * ((size_t)nt + 2)) * sizeof(int64_t));
    if (!tab) return oom();
    nb1 = 0;
    for (int64_t g = 0; g < p->dilation[1]; g++) {
        int64_t n = natten_group_len(p->extent[1], p->dilation[1], g);
        for (int64_t u = 0; u < n; u += R, nb1++) {
            int64_t nr = n - u < R ? n - u : R, x = u * p->dilation[1] + g, y = (u + nr - 1) * p->dilation[1] + g;
            tab[3 * nb1] = g;
            tab[3 * nb1 + 1] = u;
            tab[3 * nb1 + 2] = nr;
            /* key rows of the block: from the first row's window start to the last row's end */
            if (P->wb[1][y] - P->wa[1][x] > m1) m1 = P->wb[1][y] - P->wa[1][x];
        }
    }
    /*
     * packed rows as omp_pack's, fsh columns to the right: the first
     * full-width strip of group 0 (the strips after it step by 16) starts at
     * a multiple of 16 columns, so its loads can be two aligned vectors and
     * shifts (fast.h, BC 3).  Strip loads reach SW - 1 lanes and K2 - 1
     * slots past the extent, the aligned pairs 2 SW - 1 columns past the
     * strip's start; ncol a multiple of 16 keeps every channel row aligned.
     */
    P->fsh = 0;
    for (int64_t u = 0, w, ng = natten_group_len(p->extent[2], p->dilation[2], 0); u < ng; u += w) {
        int mode;
        w = strip_len_f32(P, 0, u, ng, &mode);
        if (mode == 0) {
            P->fsh = (16 - (P->goff[0] + P->wa[2][u * p->dilation[2]]) % 16) % 16;
            break;
        }
    }
    P->vdirect = fast_vdirect_f32(P);
    ncol = (P->fsh + p->extent[2] + 32 + p->kernel[2] + 15) & ~(int64_t)15;
    kslot = (p->dim * ncol + 15) & ~(int64_t)15;
    vslot = (p->dim_v * ncol + 15) & ~(int64_t)15;
    for (int i = 0; i < 2; i++) {
        P->pack[i].C = i ? p->dim_v : p->dim;
        P->pack[i].ncol = ncol;
        P->pack[i].row = P->pack[i].C * ncol;
    }
    fb = (size_t)fast_scratch_f32(p) * sizeof(float);
    cb = (size_t)(m0 * m1 * (kslot + vslot)) * sizeof(float);
    tb = (size_t)(m0 * m1) * (sizeof(int64_t) + 2 * sizeof(float *) + 2 * sizeof(frun_f32));
    sb = (fb + cb + tb + 63) & ~(size_t)63;
    scr = natten_malloc(sb * (size_t)nt + 64);
    if (!scr) {
        natten_free(tab);
        return oom();
    }
    total = p->batch * p->heads * p->extent[0] * nb1;
    for (int i = 0; i < 8 * (nt + 2); i++) tab[3 * nb1 + i] = 0;
#pragma omp parallel num_threads(nt)
    {
        char *s = line_up(scr) + sb * (size_t)omp_get_thread_num();
        int tid = omp_get_thread_num(), npair = (omp_get_num_threads() + 1) / 2, back = tid % 2;
        int64_t lo = total * (tid / 2) / npair, hi = total * (tid / 2 + 1) / npair, k = 0;
        int64_t *cnt = tab + 3 * nb1 + 8 * (tid / 2 + 1);
        fcache_f32 rc;
        memset(s, 0, sb); /* zero padding of the packed rows, empty tags */
        rc.k = (float *)(void *)(s + fb);
        rc.v = rc.k + m0 * m1 * kslot;
        rc.kslot = kslot;
        rc.vslot = vslot;
        rc.tag = (int64_t *)(void *)(s + fb + cb);
        rc.m0 = m0;
        rc.m1 = m1;
        for (;;) {
            int64_t n, i, e, t, x0, h, b;
#pragma omp atomic capture
            n = (*cnt)++;
            if (n >= hi - lo) break;
            i = back ? hi - 1 - k : lo + k; /* k + the partner's claims <= n + 1 <= hi - lo: no block twice */
            k++;
            e = i % nb1, t = i / nb1;
            x0 = t % p->extent[0], h = (t / p->extent[0]) % p->heads, b = t / p->extent[0] / p->heads;
            fna_rows_f32(P, b, h, x0, tab[3 * e], tab[3 * e + 1], (int)tab[3 * e + 2], (float *)(void *)s, &rc,
                         (const float **)(void *)(rc.tag + m0 * m1),
                         (frun_f32 *)(void *)((const float **)(void *)(rc.tag + m0 * m1) + 2 * m0 * m1), back);
        }
    }
    natten_free(tab);
    natten_free(scr);
    return NATTEN_SUCCESS;
}
#endif

static natten_status fna_forward(const natten_problem *p, const natten_exec *x)
{
    omp_call c;
    natten_status st = call_init(&c, p, x);
#if NATTEN_OMP_FAST
    /* configurations (openmp_configs): 0 blocks of 3 rows, 1 of 2 rows, 2 the strips only */
    if (st == NATTEN_SUCCESS && (!x || x->config != 2) && !is_double(p) && fast_cpu() && fna_fast_ok(&c.P)) {
        st = fna_fwd_blocks(&c.P, x && x->config == 1 ? 2 : 3);
        return finish(&c, st);
    }
#endif
    if (st == NATTEN_SUCCESS) st = pack(&c.P, 0, NATTEN_ARG_K);
    if (st == NATTEN_SUCCESS) st = pack(&c.P, 1, NATTEN_ARG_V);
    if (st == NATTEN_SUCCESS) st = query_pass(&c.P, Q_FNA_FWD, NULL);
    return finish(&c, st);
}

static natten_status qk_backward(const natten_problem *p, const natten_exec *x)
{
    omp_call c;
    double *dr = NULL;
    natten_status st = call_init(&c, p, x);
    omp_plan *P = &c.P;
    if (st == NATTEN_SUCCESS && natten_has(p, NATTEN_ARG_D_RPB)) {
        dr = natten_malloc((size_t)P->n_rpb * sizeof(double));
        if (!dr) st = oom();
    }
    if (st == NATTEN_SUCCESS) st = key_scratch(&c, p->dim);
    if (st == NATTEN_SUCCESS) st = pack(P, 1, NATTEN_ARG_K);
    if (st == NATTEN_SUCCESS) st = query_pass(P, Q_QK_BWD, dr);
    if (st == NATTEN_SUCCESS)
        st = key_pass(P, c.kscr, &P->p.arg[NATTEN_ARG_D_ATTN], &P->p.arg[NATTEN_ARG_Q], p->dim,
                      &P->p.arg[NATTEN_ARG_D_K], 1.0);
    if (st == NATTEN_SUCCESS && dr) store_drpb(P, dr);
    natten_free(dr);
    return finish(&c, st);
}

static natten_status av_backward(const natten_problem *p, const natten_exec *x)
{
    omp_call c;
    natten_status st = call_init(&c, p, x);
    omp_plan *P = &c.P;
    if (st == NATTEN_SUCCESS) st = key_scratch(&c, p->dim_v);
    if (st == NATTEN_SUCCESS) st = pack(P, 0, NATTEN_ARG_V);
    if (st == NATTEN_SUCCESS) st = query_pass(P, Q_AV_BWD, NULL);
    if (st == NATTEN_SUCCESS)
        st = key_pass(P, c.kscr, &P->p.arg[NATTEN_ARG_ATTN], &P->p.arg[NATTEN_ARG_D_OUT], p->dim_v,
                      &P->p.arg[NATTEN_ARG_D_V], 1.0);
    return finish(&c, st);
}

static natten_status fna_backward(const natten_problem *p, const natten_exec *x)
{
    omp_call c;
    double *dr = NULL;
    natten_status st = call_init(&c, p, x);
    omp_plan *P = &c.P;
    if (st == NATTEN_SUCCESS) {
        /* P and dS of every (query, slot): [B, X0, X1, X2, H, W] compact */
        int64_t n = p->batch * p->tokens * p->heads * p->window;
        P->wp.shape[0] = p->batch;
        for (int i = 0; i < 3; i++) P->wp.shape[1 + i] = P->p.extent[i];
        P->wp.shape[4] = p->heads;
        P->wp.shape[5] = p->window;
        compact_strides(&P->wp);
        P->ws = P->wp;
        c.wbuf = natten_malloc(2 * (size_t)n * real_size(p));
        if (!c.wbuf) st = oom();
        else {
            P->wp.data = c.wbuf;
            P->ws.data = (char *)c.wbuf + (size_t)n * real_size(p);
        }
    }
    if (st == NATTEN_SUCCESS && natten_has(p, NATTEN_ARG_D_RPB)) {
        dr = natten_malloc((size_t)P->n_rpb * sizeof(double));
        if (!dr) st = oom();
    }
    if (st == NATTEN_SUCCESS) st = key_scratch(&c, p->dim > p->dim_v ? p->dim : p->dim_v);
    if (st == NATTEN_SUCCESS) st = pack(P, 0, NATTEN_ARG_K);
    if (st == NATTEN_SUCCESS) st = pack(P, 1, NATTEN_ARG_V);
    if (st == NATTEN_SUCCESS) st = query_pass(P, Q_FNA_BWD, dr);
    if (st == NATTEN_SUCCESS)
        st = key_pass(P, c.kscr, &P->ws, &P->p.arg[NATTEN_ARG_Q], p->dim, &P->p.arg[NATTEN_ARG_D_K], p->scale);
    if (st == NATTEN_SUCCESS)
        st = key_pass(P, c.kscr, &P->wp, &P->p.arg[NATTEN_ARG_D_OUT], p->dim_v, &P->p.arg[NATTEN_ARG_D_V], 1.0);
    if (st == NATTEN_SUCCESS && dr) store_drpb(P, dr);
    natten_free(dr);
    return finish(&c, st);
}

/* ---- table entry ------------------------------------------------------- */

static int openmp_supports(const natten_problem *p, char *why, size_t len)
{
    /* every dtype, rank and parameter is taken; the packing and the strips'
     * transposes read the head dim as contiguous vectors */
    return natten_inner_contiguous(p, why, len);
}

/*
 * Tunable variants for measured selection (issue 4).  They differ only in
 * the fused forward of float problems on AVX-512 CPUs: row blocks of 3 (the
 * default) or 2 query rows sharing key loads, or the strips of query_pass
 * alone (no blocks).  Every other op and problem runs the same code under
 * each, so the tuner measures them as equals there.
 */
static const char *const openmp_configs[] = {"rows3", "rows2", "strips"};

const natten_backend natten_backend_openmp = {
    .name = "openmp",
    .description = "multithreaded CPU (OpenMP): queries in vector lanes, packed K/V, deterministic backward",
    .device_type = kDLCPU,
    .probe = NULL,
    .supports = openmp_supports,
    .op = {
        [NATTEN_OP_QK_FORWARD] = qk_forward,
        [NATTEN_OP_QK_BACKWARD] = qk_backward,
        [NATTEN_OP_AV_FORWARD] = av_forward,
        [NATTEN_OP_AV_BACKWARD] = av_backward,
        [NATTEN_OP_FNA_FORWARD] = fna_forward,
        [NATTEN_OP_FNA_BACKWARD] = fna_backward,
    },
    .n_configs = 3,
    .config_names = openmp_configs,
};
