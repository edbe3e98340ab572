/* tensor.c - natten-bench's element types, host/device tensors, comparison,
 * random numbers, clocks and resident-memory probes. */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* natten-bench is built with OpenMP where the library is (Makefile.am). */
#ifdef _OPENMP
#  define BENCH_PRAGMA(x) _Pragma(#x)
#  define BENCH_PARALLEL_FOR(cond) BENCH_PRAGMA(omp parallel for schedule(static) if (cond))
#else
#  define BENCH_PARALLEL_FOR(cond)
#endif

/* Tolerances are the equivalence suite's (tests/check_equivalence.c). */
static const bench_dtype dtypes[] = {
    {"float32", {kDLFloat, 32, 1}, 4, 1e-4, 1e-4},
    {"float64", {kDLFloat, 64, 1}, 8, 1e-10, 1e-10},
    {"float16", {kDLFloat, 16, 1}, 2, 1e-2, 1e-2},
    {"bfloat16", {kDLBfloat, 16, 1}, 2, 5e-2, 5e-2},
};

static const struct { const char *alias, *name; } dtype_aliases[] = {
    {"fp32", "float32"}, {"f32", "float32"}, {"float", "float32"},
    {"fp64", "float64"}, {"f64", "float64"}, {"double", "float64"},
    {"fp16", "float16"}, {"f16", "float16"}, {"half", "float16"},
    {"bf16", "bfloat16"},
};

const bench_dtype *bench_dtype_find(const char *name)
{
    for (size_t i = 0; i < sizeof dtype_aliases / sizeof dtype_aliases[0]; i++)
        if (strcmp(name, dtype_aliases[i].alias) == 0) name = dtype_aliases[i].name;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(name, dtypes[i].name) == 0) return &dtypes[i];
    return NULL;
}

const bench_dtype *bench_dtype_f32(void) { return &dtypes[0]; }
const bench_dtype *bench_dtype_f64(void) { return &dtypes[1]; }

/* IEEE binary16 <-> float, round to nearest even. */
static float f16_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    float f;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        f = ldexpf((float)man, -24);
        return sign ? -f : f;
    } else {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    }
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Integer arithmetic on the double's bits; the rounding step has no branch
 * (random data made the branch the fill's main cost). */
static uint16_t double_to_f16(double x)
{
    uint64_t b, man, rem, half;
    int e, shift;
    unsigned m;
    uint16_t sign;
    memcpy(&b, &x, sizeof b);
    sign = (uint16_t)((b >> 48) & 0x8000u);
    e = (int)((b >> 52) & 0x7ff);
    man = b & ((1ull << 52) - 1);
    if (e == 0x7ff) return (uint16_t)(sign | (man ? 0x7e00u : 0x7c00u));
    e -= 1023 - 15;                  /* the half's biased exponent */
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);
    if (e < -10) return sign;         /* below half the smallest subnormal: zero */
    shift = 42;
    if (e <= 0) {                     /* a subnormal half */
        man |= 1ull << 52;
        shift += 1 - e;
    }
    m = (unsigned)(man >> shift);
    rem = man & ((1ull << shift) - 1);
    half = 1ull << (shift - 1);
    m += (rem > half) | ((rem == half) & (m & 1u)); /* a carry into the exponent is right too */
    return (uint16_t)(sign | ((e > 0 ? (unsigned)e << 10 : 0u) + m));
}

static uint16_t float_to_bf16(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if (isnan(x)) return (uint16_t)((bits >> 16) | 0x40u);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

static float bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

void bench_store(const bench_dtype *t, void *base, int64_t i, double v)
{
    switch (t->size) {
    case 8: ((double *)base)[i] = v; break;
    case 4: ((float *)base)[i] = (float)v; break;
    default:
        ((uint16_t *)base)[i] = t->dl.code == kDLBfloat ? float_to_bf16((float)v) : double_to_f16(v);
    }
}

double bench_load(const bench_dtype *t, const void *base, int64_t i)
{
    switch (t->size) {
    case 8: return ((const double *)base)[i];
    case 4: return ((const float *)base)[i];
    default: {
        uint16_t h = ((const uint16_t *)base)[i];
        return t->dl.code == kDLBfloat ? bf16_to_float(h) : f16_to_float(h);
    }
    }
}

#define SPLITMIX_GAMMA 0x9e3779b97f4a7c15ull

double bench_uniform(uint64_t *rng)
{
    /* splitmix64 */
    uint64_t z = (*rng += SPLITMIX_GAMMA);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1p-53;
}

size_t bench_misalign;

bench_tensor *bt_new(int ndim, const int64_t *shape, const bench_dtype *dt, bench_device where)
{
    bench_tensor *x = calloc(1, sizeof *x);
    size_t off;
    if (x == NULL) return NULL;
    x->numel = 1;
    for (int i = 0; i < ndim; i++) {
        x->shape[i] = shape[i];
        x->numel *= shape[i];
    }
    x->dtype = dt;
    x->bytes = (size_t)x->numel * dt->size;
    x->where = where;
    /*
     * DLPack's data pointer "is always aligned to 256 bytes as in CUDA"
     * (dlpack.h), as frameworks' CPU allocators also give (PyTorch: 64 bytes):
     * malloc's 16 bytes would put every 64-byte vector of a head row across
     * two cache lines, which no framework tensor does (docs/benchmarks.md,
     * the omp9 branch: ~10 % on the OpenMP fused forward).  --misalign N
     * (bench_misalign) starts it N bytes past that boundary instead, as
     * NumPy's malloc'ed arrays are (16 bytes past a page), rounded down to
     * a multiple of the element size (the float64 reference copies, the
     * fp32 lse of a half problem).
     */
    off = bench_misalign - bench_misalign % dt->size;
    x->base = aligned_alloc(256, ((x->bytes ? x->bytes : 1) + off + 255) & ~(size_t)255);
    if (x->base == NULL) {
        free(x);
        return NULL;
    }
    x->host = (char *)x->base + off;
    if (where.type == kDLCPU) {
        x->dev = x->host;
    } else if (!gpu_malloc(where.id, &x->dev, x->bytes ? x->bytes : 1)) {
        free(x->base);
        free(x);
        return NULL;
    }
    x->t.data = x->dev;
    x->t.device.device_type = where.type;
    x->t.device.device_id = where.id;
    x->t.ndim = ndim;
    x->t.dtype = dt->dl;
    x->t.shape = x->shape;
    x->t.strides = NULL;
    x->t.byte_offset = 0;
    return x;
}

void bt_free(bench_tensor *x)
{
    if (x == NULL) return;
    if (x->where.type != kDLCPU) gpu_free(x->where.id, x->dev);
    free(x->base);
    free(x);
}

int bt_upload(bench_tensor *x)
{
    if (x->where.type == kDLCPU) return 1;
    return gpu_upload(x->where.id, x->dev, x->host, x->bytes);
}

int bt_download(bench_tensor *x)
{
    if (x->where.type == kDLCPU) return 1;
    return gpu_download(x->where.id, x->host, x->dev, x->bytes);
}

void bt_poison(bench_tensor *x)
{
    memset(x->host, 0xff, x->bytes); /* all-ones bytes are a NaN in every float type */
}

/* Element i gets the generator's (i+1)-th draw from *rng (splitmix64's state
 * after i draws is *rng + i * gamma), so the fill is the same on any number
 * of threads; large tensors (the GPU problems: 10^9 elements, seconds each)
 * are filled by all of them. */
void bt_fill(bench_tensor *x, uint64_t *rng, double lo, double hi)
{
    const uint64_t start = *rng;
    const int64_t n = x->numel;
    BENCH_PARALLEL_FOR(n > (1 << 20))
    for (int64_t i = 0; i < n; i++) {
        uint64_t s = start + (uint64_t)i * SPLITMIX_GAMMA;
        bench_store(x->dtype, x->host, i, lo + (hi - lo) * bench_uniform(&s));
    }
    *rng = start + (uint64_t)n * SPLITMIX_GAMMA;
}

void bt_copy_values(bench_tensor *dst, const bench_tensor *src)
{
    for (int64_t i = 0; i < dst->numel && i < src->numel; i++)
        bench_store(dst->dtype, dst->host, i, bench_load(src->dtype, src->host, i));
}

void bt_compare(const bench_tensor *x, const bench_tensor *ref, bench_err *e)
{
    double max_ref = 0, max_abs = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        double r = bench_load(ref->dtype, ref->host, i), v = bench_load(x->dtype, x->host, i);
        if (isfinite(r)) {
            double d = fabs(v - r);
            if (!isfinite(v)) {
                e->bad++;
                continue;
            }
            if (fabs(r) > max_ref) max_ref = fabs(r);
            if (d > max_abs) max_abs = d;
        } else if (!(isinf(r) && v == r)) {
            e->bad++;
        }
    }
    if (max_abs > e->max_abs) e->max_abs = max_abs;
    if (max_abs / (max_ref > 1 ? max_ref : 1) > e->norm) e->norm = max_abs / (max_ref > 1 ? max_ref : 1);
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int bench_rss_reset(void)
{
    /* Linux >= 4.0: writing 5 resets this process's peak RSS (VmHWM). */
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int ok;
    if (f == NULL) return 0;
    ok = fputs("5", f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok;
}

long long bench_rss_kib(const char *field)
{
    char line[256];
    long long v = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0) {
            v = strtoll(line + n, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}
