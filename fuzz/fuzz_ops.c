/*
 * fuzz_ops.c - libFuzzer target: every public op, on every CPU backend.
 *
 * The input bytes decode into an op, its params and, for each tensor the op
 * takes, a shape, dtype, device, memory layout (compact, permuted, padded with
 * a byte offset, negative or zero strides, or a view into another tensor's
 * buffer) and possibly one deliberate mistake.  Missing bytes read as zero,
 * and all-zero bytes decode to a valid, compact problem, so the fuzzer starts
 * from calls that succeed and mutates its way to the edges.
 *
 * Each call runs on the naive backend, then on every other usable CPU backend,
 * each from the same buffer image, and must either
 *   - fail (the same status on every backend, UNSUPPORTED excepted) with every
 *     buffer bit-identical to before the call, or
 *   - succeed, write every output element (outputs are NaN-poisoned; inputs
 *     are finite), leave every byte that is not an output element untouched,
 *     and agree with the naive backend run on compact copies of the same
 *     values (bit-exact for naive itself, a dtype tolerance for the others).
 * Anything else aborts, and ASan/UBSan catch reads or writes out of bounds.
 */
#include <natten.h>
#include "natten-half.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { Q, K, V, ATTN, RPB, OUT, LSE, DOUT, DATTN, DQ, DK, DV, DRPB, NROLE };
static const char *const role_name[NROLE] = {"q", "k", "v", "attn", "rpb", "out", "lse",
                                             "d_out", "d_attn", "d_q", "d_k", "d_v", "d_rpb"};
enum { OP_QK, OP_QK_BW, OP_AV, OP_AV_BW, OP_FNA, OP_FNA_BW, NOP };
#define BIT(x) (1u << (x))

/* Roles of each op: required, optional, written (as in natten.h). */
static const struct { unsigned req, opt, out; } ops[NOP] = {
    [OP_QK] = {BIT(Q) | BIT(K) | BIT(ATTN), BIT(RPB), BIT(ATTN)},
    [OP_QK_BW] = {BIT(DATTN) | BIT(Q) | BIT(K) | BIT(DQ) | BIT(DK), BIT(DRPB), BIT(DQ) | BIT(DK) | BIT(DRPB)},
    [OP_AV] = {BIT(ATTN) | BIT(V) | BIT(OUT), 0, BIT(OUT)},
    [OP_AV_BW] = {BIT(DOUT) | BIT(ATTN) | BIT(V) | BIT(DATTN) | BIT(DV), 0, BIT(DATTN) | BIT(DV)},
    [OP_FNA] = {BIT(Q) | BIT(K) | BIT(V) | BIT(OUT), BIT(RPB) | BIT(LSE), BIT(OUT) | BIT(LSE)},
    [OP_FNA_BW] = {BIT(Q) | BIT(K) | BIT(V) | BIT(OUT) | BIT(LSE) | BIT(DOUT) | BIT(DQ) | BIT(DK) | BIT(DV),
                   BIT(RPB) | BIT(DRPB), BIT(DQ) | BIT(DK) | BIT(DV) | BIT(DRPB)},
};

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "fuzz_ops: %s:%d: ", __FILE__, __LINE__);                 \
            fprintf(stderr, __VA_ARGS__);                                             \
            fprintf(stderr, "\n");                                                    \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* ---- input bytes ------------------------------------------------------- */

typedef struct { const uint8_t *p; size_t n; } reader;
static unsigned u8(reader *r) { if (r->n == 0) return 0; r->n--; return *r->p++; }

/* ---- tensors ----------------------------------------------------------- */

typedef struct {
    DLTensor t;
    int64_t shape[8], strides[8];
    char *buf;          /* start of the buffer (owned unless alias) */
    size_t bytes;
    int owner;          /* buffer index this tensor lives in */
} ftensor;

typedef struct {
    char *mem;
    size_t bytes;
    char *snap;         /* image before the call */
    unsigned char *written; /* 1 per byte that belongs to an output element */
} fbuf;

typedef struct {
    int op;
    natten_params params;
    unsigned present;
    ftensor x[NROLE];
    fbuf buf[NROLE];
    int nbuf;
} fcall;

static size_t esize_of(DLDataType d) { return d.bits / 8u ? d.bits / 8u : 1; }

static int is_float_dtype(DLDataType d)
{
    return d.lanes == 1 && ((d.code == kDLFloat && (d.bits == 16 || d.bits == 32 || d.bits == 64)) ||
                            (d.code == kDLBfloat && d.bits == 16));
}

static double get_elem(const char *p, DLDataType d)
{
    if (d.code == kDLBfloat) { uint16_t h; memcpy(&h, p, 2); return natten_bf16_to_float(h); }
    if (d.bits == 16) { uint16_t h; memcpy(&h, p, 2); return natten_f16_to_float(h); }
    if (d.bits == 32) { float f; memcpy(&f, p, 4); return f; }
    { double v; memcpy(&v, p, 8); return v; }
}

static void set_elem(char *p, DLDataType d, double v)
{
    if (d.code == kDLBfloat) { uint16_t h = natten_double_to_bf16(v); memcpy(p, &h, 2); }
    else if (d.bits == 16) { uint16_t h = natten_double_to_f16(v); memcpy(p, &h, 2); }
    else if (d.bits == 32) { float f = (float)v; memcpy(p, &f, 4); }
    else memcpy(p, &v, 8);
}

static int64_t numel_of(const ftensor *f)
{
    int64_t n = 1;
    for (int i = 0; i < f->t.ndim; i++) n *= f->shape[i];
    return n;
}

/* Byte address of logical element `linear` (row-major) of f. */
static char *elem_ptr(const ftensor *f, int64_t linear)
{
    int64_t off = 0;
    const int64_t *st = f->t.strides;
    int64_t cst[8], s = 1;
    if (st == NULL) {
        for (int i = f->t.ndim - 1; i >= 0; i--) { cst[i] = s; s *= f->shape[i]; }
        st = cst;
    }
    for (int i = f->t.ndim - 1; i >= 0; i--) {
        off += (linear % f->shape[i]) * st[i];
        linear /= f->shape[i];
    }
    return (char *)f->t.data + f->t.byte_offset + off * (int64_t)esize_of(f->t.dtype);
}

/* The correct logical shape of role x. */
static int role_shape(int x, int rank, int64_t B, int64_t H, int64_t Hkv, int64_t D, int64_t Dv,
                      const int64_t *S, const int *Kr, int64_t W, int64_t *shape)
{
    int nd = 0;
    if (x == RPB || x == DRPB) {
        shape[nd++] = H;
        for (int i = 0; i < rank; i++) shape[nd++] = 2 * (int64_t)Kr[i] - 1;
        return nd;
    }
    shape[nd++] = B;
    for (int i = 0; i < rank; i++) shape[nd++] = S[i];
    switch (x) {
    case Q: case DQ: shape[nd++] = H; shape[nd++] = D; break;
    case K: case DK: shape[nd++] = Hkv; shape[nd++] = D; break;
    case V: case DV: shape[nd++] = Hkv; shape[nd++] = Dv; break;
    case OUT: case DOUT: shape[nd++] = H; shape[nd++] = Dv; break;
    case ATTN: case DATTN: shape[nd++] = H; shape[nd++] = W; break;
    default: shape[nd++] = H; break; /* lse */
    }
    return nd;
}

/* Strides for layout mode m (elements); returns 0 for "use NULL strides". */
static int make_strides(ftensor *f, unsigned m, unsigned arg)
{
    int nd = f->t.ndim, perm[8];
    int64_t s = 1, pad = 0;
    for (int i = 0; i < nd; i++) perm[i] = i;
    switch (m) {
    case 0: return 0;
    case 2: /* heads first: move dim nd-2 right after dim 0 */
        if (nd >= 4) { int h = perm[nd - 2]; for (int i = nd - 2; i > 1; i--) perm[i] = perm[i - 1]; perm[1] = h; }
        break;
    case 3: pad = 1 + arg % 3; break;
    case 7: /* a random permutation */
        for (int i = nd - 1; i > 0; i--) { int j = (int)((arg + (unsigned)i * 7u) % (unsigned)(i + 1)); int t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
        break;
    default: break;
    }
    for (int mm = nd - 1; mm >= 0; mm--) {
        f->strides[perm[mm]] = s;
        s = s * (f->shape[perm[mm]] > 0 ? f->shape[perm[mm]] : 1) + pad;
    }
    if (nd > 0 && m == 4) f->strides[arg % (unsigned)nd] *= -1;  /* negative stride */
    if (nd > 0 && m == 5) f->strides[arg % (unsigned)nd] = 0;    /* broadcast */
    if (nd > 0 && m == 1 && (arg & 1)) f->strides[nd - 1] = 2;  /* inner stride 2 (may overlap) */
    return 1;
}

/* Element span [lo, hi] of f's strides (shape entries <= 0 count as empty). */
static int span(const ftensor *f, int64_t *lo, int64_t *hi)
{
    int64_t l = 0, h = 0;
    for (int i = 0; i < f->t.ndim; i++) {
        if (f->shape[i] <= 0) { *lo = *hi = 0; return 0; }
        if (f->t.strides == NULL) continue;
        int64_t e = (f->shape[i] - 1) * f->strides[i];
        if (e < 0) l += e; else h += e;
    }
    if (f->t.strides == NULL) h = numel_of(f) - 1;
    *lo = l;
    *hi = h;
    return 1;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int add_buffer(fcall *c, size_t bytes)
{
    fbuf *b = &c->buf[c->nbuf];
    b->bytes = bytes ? bytes : 1;
    b->mem = malloc(b->bytes);
    b->snap = malloc(b->bytes);
    b->written = calloc(b->bytes, 1);
    CHECK(b->mem && b->snap && b->written, "out of memory");
    return c->nbuf++;
}

/* Decode tensor x of the call; `correct` is its valid shape. */
static void decode_tensor(fcall *c, int x, reader *r, int nd, const int64_t *correct, DLDataType dt,
                          int is_output)
{
    ftensor *f = &c->x[x];
    unsigned lay = u8(r), mut = u8(r), arg = u8(r);
    unsigned layout = lay & 7, mistake = (mut & 7) == 7 ? 1 + (mut >> 3) % 8 : 0;
    int64_t lo, hi;
    size_t es;
    memset(f, 0, sizeof *f);
    f->t.ndim = nd;
    memcpy(f->shape, correct, sizeof(int64_t) * (size_t)nd);
    f->t.shape = f->shape;
    f->t.dtype = dt;
    f->t.device.device_type = kDLCPU;
    switch (mistake) {
    case 1: if (nd) f->shape[arg % (unsigned)nd] += 1; break;
    case 2: if (nd) f->shape[arg % (unsigned)nd] -= 1; break;   /* may reach 0 or -1 */
    case 3: if (nd < 7) { f->shape[nd] = 1 + arg % 2; f->t.ndim = ++nd; } break;
    case 4: if (nd > 0) f->t.ndim = --nd; break;
    case 5: { /* another dtype */
        static const DLDataType other[] = {{kDLFloat, 32, 1}, {kDLFloat, 64, 1}, {kDLFloat, 16, 1},
                                           {kDLBfloat, 16, 1}, {kDLInt, 32, 1}, {kDLFloat, 32, 2},
                                           {kDLFloat, 8, 1}, {kDLUInt, 8, 1}};
        f->t.dtype = other[arg % 8];
        break;
    }
    case 6: f->t.device.device_type = (arg & 1) ? kDLCUDA : kDLCUDAHost; break;
    case 7: f->t.device.device_id = (int32_t)arg; break; /* harmless on CPU */
    default: break;
    }
    if (mistake == 8 && (arg & 1) && nd > 0) f->shape[arg % (unsigned)nd] = -(int64_t)(arg % 3) - 2;
    es = esize_of(f->t.dtype);
    if (make_strides(f, layout == 6 ? (arg >> 4) % 6 : layout, arg)) f->t.strides = f->strides;
    if (!span(f, &lo, &hi)) lo = hi = 0;
    /* a view into an earlier tensor's buffer, when it fits there */
    if (layout == 6 && c->nbuf > 0) {
        int j = (int)(arg % (unsigned)c->nbuf);
        int64_t need = (hi - lo + 1) * (int64_t)es, room = (int64_t)c->buf[j].bytes - need;
        if (room >= 0) {
            int64_t at = ((int64_t)(mut >> 3) * (int64_t)es) % (room + 1);
            at -= at % (int64_t)es;
            f->owner = j;
            f->t.data = c->buf[j].mem;
            f->t.byte_offset = (uint64_t)(at - lo * (int64_t)es);
            return;
        }
    }
    {
        int64_t extra = layout == 3 ? 1 + arg % 5 : 0;
        f->owner = add_buffer(c, (size_t)((hi - lo + 1 + extra) * (int64_t)es));
        f->t.data = c->buf[f->owner].mem;
        f->t.byte_offset = (uint64_t)((extra - lo) * (int64_t)es);
    }
    if (mistake == 8 && !(arg & 1)) {
        if (arg & 2) f->t.data = NULL; else if (nd > 0) f->t.shape = NULL;
    }
    (void)is_output;
}

static void free_call(fcall *c)
{
    for (int i = 0; i < c->nbuf; i++) { free(c->buf[i].mem); free(c->buf[i].snap); free(c->buf[i].written); }
}

/* ---- running ----------------------------------------------------------- */

static natten_status call_op(natten_context *ctx, int op, const natten_params *p, DLTensor *T[NROLE])
{
    switch (op) {
    case OP_QK: return natten_qk_forward(ctx, p, T[Q], T[K], T[RPB], T[ATTN]);
    case OP_QK_BW: return natten_qk_backward(ctx, p, T[DATTN], T[Q], T[K], T[DQ], T[DK], T[DRPB]);
    case OP_AV: return natten_av_forward(ctx, p, T[ATTN], T[V], T[OUT]);
    case OP_AV_BW: return natten_av_backward(ctx, p, T[DOUT], T[ATTN], T[V], T[DATTN], T[DV]);
    case OP_FNA: return natten_fna_forward(ctx, p, T[Q], T[K], T[V], T[RPB], T[OUT], T[LSE]);
    default:
        return natten_fna_backward(ctx, p, T[Q], T[K], T[V], T[RPB], T[OUT], T[LSE], T[DOUT], T[DQ], T[DK],
                                   T[DV], T[DRPB]);
    }
}

static int usable_tensor(const ftensor *f)
{
    if (f->t.shape == NULL || f->t.data == NULL || !is_float_dtype(f->t.dtype)) return 0;
    for (int i = 0; i < f->t.ndim; i++)
        if (f->shape[i] < 0) return 0;
    return 1;
}

/* Values equal for the oracle: same bits-as-double (NaN = NaN), or within tol. */
static int close_enough(double a, double b, double tol, double scale)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b)) return a == b;
    return fabs(a - b) <= tol * (scale > 1 ? scale : 1);
}

static double tolerance(DLDataType d)
{
    if (d.code == kDLBfloat) return 5e-2;
    return d.bits == 16 ? 1e-2 : d.bits == 32 ? 1e-4 : 1e-10;
}

static natten_context *contexts[16];
static const char *names[16];
static natten_context *ref_ctx;
static int n_cpu;

/* Outcomes per op (naive run), printed at exit when FUZZ_OPS_STATS is set. */
static long outcome[NOP][3];

static void print_stats(void)
{
    static const char *const opn[NOP] = {"qk_forward", "qk_backward", "av_forward", "av_backward",
                                         "fna_forward", "fna_backward"};
    for (int o = 0; o < NOP; o++)
        fprintf(stderr, "fuzz_ops: %-12s %8ld succeeded %8ld invalid %8ld unsupported\n", opn[o],
                outcome[o][0], outcome[o][1], outcome[o][2]);
}

static void setup_once(void)
{
    static int done;
    if (done) return;
    done = 1;
    if (getenv("FUZZ_OPS_STATS")) atexit(print_stats);
    CHECK(natten_context_create(&ref_ctx) == NATTEN_SUCCESS, "context");
    CHECK(natten_context_set_backend(ref_ctx, "naive") == NATTEN_SUCCESS, "naive");
    for (int i = 0; i < natten_backend_count() && n_cpu < 16; i++) {
        natten_backend_info info;
        CHECK(natten_backend_get_info(i, &info) == NATTEN_SUCCESS, "info");
        if (info.device_type != kDLCPU || !info.available) continue;
        CHECK(natten_context_create(&contexts[n_cpu]) == NATTEN_SUCCESS, "context");
        CHECK(natten_context_set_backend(contexts[n_cpu], info.name) == NATTEN_SUCCESS, "set %s", info.name);
        names[n_cpu++] = info.name;
    }
}

/* Run the compact copy of c on naive; ref[x] gets the logical values of each output. */
static natten_status run_compact(const fcall *c, double *ref[NROLE])
{
    ftensor cx[NROLE];
    DLTensor *T[NROLE] = {0};
    natten_status st;
    for (int x = 0; x < NROLE; x++) {
        const ftensor *f = &c->x[x];
        int64_t n;
        if (!(c->present & BIT(x))) continue;
        cx[x] = *f;
        cx[x].t.shape = cx[x].shape;
        cx[x].t.strides = NULL;
        cx[x].t.byte_offset = 0;
        n = numel_of(f);
        cx[x].t.data = malloc((size_t)(n > 0 ? n : 1) * esize_of(f->t.dtype));
        CHECK(cx[x].t.data, "out of memory");
        for (int64_t i = 0; i < n; i++) memcpy(elem_ptr(&cx[x], i), elem_ptr(f, i), esize_of(f->t.dtype));
        T[x] = &cx[x].t;
    }
    st = call_op(ref_ctx, c->op, &c->params, T);
    for (int x = 0; x < NROLE; x++) {
        if (!(c->present & BIT(x))) continue;
        if (ops[c->op].out & BIT(x)) {
            int64_t n = numel_of(&c->x[x]);
            ref[x] = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
            CHECK(ref[x], "out of memory");
            for (int64_t i = 0; i < n; i++) ref[x][i] = get_elem(elem_ptr(&cx[x], i), cx[x].t.dtype);
        }
        free(cx[x].t.data);
    }
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size};
    fcall c;
    unsigned b;
    int rank, kr[3];
    int64_t B, H, Hkv, D, Dv, S[3], W = 1;
    DLDataType dt;
    static const DLDataType dtypes[4] = {{kDLFloat, 32, 1}, {kDLFloat, 64, 1}, {kDLFloat, 16, 1}, {kDLBfloat, 16, 1}};
    uint64_t seed = 0x5eed;
    natten_status st0 = NATTEN_SUCCESS;
    double *ref[NROLE] = {0};
    int compact_done = 0, moderate = 1; /* moderate scale: finite inputs give finite outputs */

    setup_once();
    memset(&c, 0, sizeof c);
    for (size_t i = 0; i < size; i++) seed = seed * 1099511628211ull ^ data[i];

    /* the problem */
    c.op = (int)(u8(&r) % NOP);
    b = u8(&r);
    rank = 1 + (int)(b % 3);
    dt = dtypes[(b / 3) % 4];
    b = u8(&r);
    B = (int64_t)((b & 3) == 3 ? 0 : 1 + (b & 3) % 2);
    Hkv = 1 + (b >> 2) % 2;
    H = (c.op == OP_FNA || c.op == OP_FNA_BW) ? Hkv * (1 + (b >> 3) % 2) : Hkv;
    if ((b >> 4) == 15) H = Hkv = 0; /* no heads at all */
    b = u8(&r);
    D = 1 + b % 4;
    Dv = (c.op == OP_QK || c.op == OP_QK_BW) ? D : 1 + (b >> 2) % 4;
    for (int i = 0; i < rank; i++) {
        unsigned a = u8(&r), kk = u8(&r), e = u8(&r);
        int d = 1 + (int)((e >> 1) % 2), cap;
        S[i] = 3 + a % 5;
        cap = (int)(S[i] / d);
        kr[i] = cap >= 2 ? 2 + (int)(kk % (unsigned)(cap - 1)) : 2;
        W *= kr[i];
        (void)e;
    }
    CHECK(natten_params_init(&c.params, rank, kr) == NATTEN_SUCCESS, "params_init: %s", natten_last_error());
    for (int i = 0; i < rank; i++) {
        unsigned e = u8(&r);
        c.params.dilation[i] = 1 + (int)((e >> 1) % 2);
        if (S[i] < (int64_t)kr[i] * c.params.dilation[i]) c.params.dilation[i] = 1;
        c.params.stride[i] = 1 + (int)((e >> 2) % (unsigned)kr[i]);
        c.params.is_causal[i] = (int)(e & 1);
    }
    b = u8(&r); /* optional tensors */
    c.present = ops[c.op].req;
    if (b & 1) c.present |= ops[c.op].opt & (BIT(RPB) | BIT(LSE));
    if (b & 2) c.present |= ops[c.op].opt & BIT(DRPB);
    if (c.present & (BIT(RPB) | BIT(DRPB)))
        for (int i = 0; i < rank; i++) if (!(b & 4)) c.params.stride[i] = 1;
    if ((c.present & BIT(DRPB)) && c.op == OP_FNA_BW) c.present |= BIT(RPB);
    b = u8(&r); /* scale and deliberate parameter mistakes */
    if (b & 0x80) {
        static const double scales[] = {0.0, 0.5, -1.0, 1e300, NAN, INFINITY, -0.0, 3.0};
        natten_params_set_scale(&c.params, scales[b & 7]);
        moderate = fabs(scales[b & 7]) <= 10;
    }
    switch ((b >> 3) & 15) {
    case 1: c.params.kernel_size[(b & 7) % 3] = (int)(b & 7) - 2; break;     /* K < 2 */
    case 2: c.params.dilation[(b & 7) % 3] = 0; break;
    case 3: c.params.stride[(b & 7) % 3] = (b & 1) ? 0 : c.params.kernel_size[(b & 7) % 3] + 1; break;
    case 4: c.params.is_causal[(b & 7) % 3] = (int)(b & 7) - 3; break;
    case 5: c.params.rank = (b & 1) ? 0 : 4; break;
    case 6: c.params.kernel_size[0] = (b & 1) ? 0x7fffffff : 0x40000001; break;
    case 7: c.params.dilation[0] = 0x7fffffff; break;
    case 8: for (int i = rank; i < 3; i++) c.params.kernel_size[i] = 0x7fffffff; break; /* unused axes */
    default: break;
    }

    /* the tensors, in role order: earlier buffers can host later views */
    for (int x = 0; x < NROLE; x++) {
        int64_t shape[8];
        int nd;
        DLDataType xdt = x == LSE ? dtypes[0] : dt;
        if (!(c.present & BIT(x))) continue;
        nd = role_shape(x, rank, B, H, Hkv, D, Dv, S, kr, W, shape);
        decode_tensor(&c, x, &r, nd, shape, xdt, (ops[c.op].out & BIT(x)) != 0);
    }

    /* fill every buffer with small finite values, then NaN-poison the outputs */
    for (int i = 0; i < c.nbuf; i++)
        for (size_t k = 0; k < c.buf[i].bytes; k++) c.buf[i].mem[k] = (char)(rng_next(&seed) & 0x3f);
    for (int x = 0; x < NROLE; x++) {
        const ftensor *f = &c.x[x];
        DLDataType d = x == LSE ? dtypes[0] : dt;
        if (!(c.present & BIT(x)) || !usable_tensor(f) || f->t.dtype.bits != d.bits || f->t.dtype.code != d.code)
            continue;
        if (ops[c.op].out & BIT(x)) continue;
        for (int64_t i = 0; i < numel_of(f); i++)
            set_elem(elem_ptr(f, i), f->t.dtype, (double)((int)(rng_next(&seed) % 33) - 16) / 16.0);
    }
    for (int x = 0; x < NROLE; x++) {
        const ftensor *f = &c.x[x];
        if (!(c.present & BIT(x)) || !(ops[c.op].out & BIT(x)) || !usable_tensor(f)) continue;
        for (int64_t i = 0; i < numel_of(f); i++) {
            char *p = elem_ptr(f, i);
            set_elem(p, f->t.dtype, NAN);
            for (size_t k = 0; k < esize_of(f->t.dtype); k++)
                c.buf[f->owner].written[(size_t)(p - c.buf[f->owner].mem) + k] = 1;
        }
    }
    for (int i = 0; i < c.nbuf; i++) memcpy(c.buf[i].snap, c.buf[i].mem, c.buf[i].bytes);

    /* naive first (contexts[] starts with the registry's first CPU backend;
     * the reference context is naive), then every CPU backend */
    for (int k = -1; k < n_cpu; k++) {
        DLTensor *T[NROLE] = {0};
        natten_status st;
        natten_context *ctx = k < 0 ? ref_ctx : contexts[k];
        const char *name = k < 0 ? "naive (reference)" : names[k];
        for (int i = 0; i < c.nbuf; i++) memcpy(c.buf[i].mem, c.buf[i].snap, c.buf[i].bytes);
        for (int x = 0; x < NROLE; x++)
            if (c.present & BIT(x)) T[x] = &c.x[x].t;
        st = call_op(ctx, c.op, &c.params, T);
        if (k < 0) {
            st0 = st;
            outcome[c.op][st == NATTEN_SUCCESS ? 0 : st == NATTEN_ERROR_INVALID_ARGUMENT ? 1 : 2]++;
        }
        if (st != NATTEN_SUCCESS) {
            CHECK(st == NATTEN_ERROR_INVALID_ARGUMENT || st == NATTEN_ERROR_UNSUPPORTED,
                  "op %d: unexpected status %s: %s", c.op, natten_status_string(st), natten_last_error());
            CHECK(natten_last_error()[0] != '\0', "op %d failed with status %s but no message", c.op,
                  natten_status_string(st));
            CHECK(st == st0 || (st0 == NATTEN_SUCCESS && st == NATTEN_ERROR_UNSUPPORTED),
                  "op %d: backend %d says %s, naive said %s (%s)", c.op, k, natten_status_string(st),
                  natten_status_string(st0), natten_last_error());
            for (int i = 0; i < c.nbuf; i++)
                CHECK(memcmp(c.buf[i].mem, c.buf[i].snap, c.buf[i].bytes) == 0,
                      "op %d failed (%s: %s) but buffer %d changed", c.op, natten_status_string(st),
                      natten_last_error(), i);
            continue;
        }
        CHECK(st0 == NATTEN_SUCCESS, "op %d: backend %d succeeds where naive failed", c.op, k);
        /* nothing but output elements changed */
        for (int i = 0; i < c.nbuf; i++)
            for (size_t z = 0; z < c.buf[i].bytes; z++)
                CHECK(c.buf[i].written[z] || c.buf[i].mem[z] == c.buf[i].snap[z],
                      "op %d on %s: byte %zu of buffer %d is not an output element but changed", c.op, name, z, i);
        if (!compact_done) {
            natten_status sc = run_compact(&c, ref);
            compact_done = 1;
            CHECK(sc == NATTEN_SUCCESS, "op %d: strided call succeeded but the compact copy fails: %s", c.op,
                  natten_last_error());
        }
        for (int x = 0; x < NROLE; x++) {
            const ftensor *f = &c.x[x];
            /* naive is exact against itself: its sums do not depend on the layout */
            double scale = 0, tol = (k < 0 || strcmp(name, "naive") == 0) ? 0 : tolerance(f->t.dtype);
            int64_t n;
            if (!(c.present & BIT(x)) || !(ops[c.op].out & BIT(x))) continue;
            n = numel_of(f);
            for (int64_t i = 0; i < n; i++)
                if (isfinite(ref[x][i]) && fabs(ref[x][i]) > scale) scale = fabs(ref[x][i]);
            for (int64_t i = 0; i < n; i++) {
                double got = get_elem(elem_ptr(f, i), f->t.dtype);
                CHECK(!isnan(got) || !moderate, "op %d on %s: %s[%lld] is NaN (never written?)", c.op, name, role_name[x],
                      (long long)i);
                /* an extreme scale overflows: the numbers mean nothing, only their absence would */
                if (!moderate) continue;
                CHECK(close_enough(got, ref[x][i], tol, scale),
                      "op %d on %s: %s[%lld] = %.17g but compact naive gives %.17g (scale %s%g)", c.op, name,
                      role_name[x], (long long)i, got, ref[x][i], c.params.has_scale ? "" : "default, ",
                      c.params.scale);
            }
        }
    }
    for (int x = 0; x < NROLE; x++) free(ref[x]);
    free_call(&c);
    return 0;
}
