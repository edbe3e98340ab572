/*
 * natten-bench - time every backend on the same neighborhood-attention
 * problems and verify each against the naive reference as it goes.
 *
 *   natten-bench                          default 2-D problem, every backend
 *   natten-bench -i 56 56 -w 7 -n 4 -d 32 --op fna --backward
 *   natten-bench --suite cpu --peak       the OpenMP issue's problems
 *   natten-bench --suite anchors --csv    7^2 .. 224^2 sweep, for bench/plot
 *
 * Every result is checked: the op runs once on poisoned outputs and is
 * compared with the naive backend in float64 on the same inputs (on a smaller
 * problem of the same shape when naive would take too long; the output says
 * so), and a result that ran on another backend than the one requested
 * (natten_context_last_backend) is refused, never counted.  Uses only the
 * public API.
 */
#include "bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROBLEMS 64
#define MAX_BACKENDS 32
#define MAX_RUNS 100000
#define MAX_CANDIDATES 256  /* backend x configuration pairs a tuning report may list */

static const char *op_names[OP_COUNT] = {"qk", "av", "fna"};
static const char *dir_names[DIR_COUNT] = {"fwd", "bwd", "fwd+bwd"};

/* ------------------------------------------------------------------ options */

typedef enum { OUT_TABLE, OUT_CSV, OUT_JSON } out_format;

static struct {
    bench_problem base;       /* the command-line problem */
    const char *suite;
    int quick;
    const char *backends;     /* "all", "auto", or a comma list */
    const char *device;       /* "all", "cpu", "cuda", "cuda:N" */
    int warmup, repeat;       /* -1 = automatic */
    int threads;
    out_format format;
    int peak, verify;
    double verify_limit, verify_flops, naive_limit;
    unsigned long long seed;
    int dtype_set;
    int dry_run;
    int backends_set, device_set;
    const char *csv_out, *json_out;
    const char *tune;         /* --tune FILE: build wisdom instead of benchmarking */
    int tune_check;           /* --tune-check: tune, then time every candidate on its own */
    int check_all;            /* --check-all: also time candidates > 10x the tuner's best */
    double max_call;          /* --max-call S: a first call over S seconds is the only run */
} opt;

static void usage(FILE *f)
{
    fprintf(f,
"usage: natten-bench [options]\n"
"Times each backend of libnatten on a neighborhood-attention problem and\n"
"verifies it against the naive reference (float64) on the same inputs.\n"
"\n"
"problem (NATTEN profiler style; per-axis flags take 1 value or one per axis):\n"
"  -i, --input-size S..   extent per spatial axis; the count sets the rank (default 56 56)\n"
"  -w, --window K..       window size per axis (default 7)\n"
"  -b, --batch N          batch (default 1)\n"
"  -n, --heads N          query heads (default 4)\n"
"      --heads-kv N       key/value heads, GQA (default = heads; fused op only)\n"
"  -d, --dim N            head dim of q and k (default 32)\n"
"      --dim-value N      head dim of v (default = dim; fused op and av)\n"
"      --dilation N..     dilation per axis (default 1)\n"
"      --stride N..       stride per axis (default 1)\n"
"      --causal [0|1..]   causal per axis; alone: every axis\n"
"      --rpb              add a relative positional bias (qk, fna)\n"
"      --dtype T          float32 | float64 | float16 | bfloat16 (default float32)\n"
"      --op OP            fna | qk | av | all (default all)\n"
"      --backward         also time the backward and forward+backward\n"
"\n"
"what runs:\n"
"      --backend NAME     a backend, a comma list, all (default) or auto (the\n"
"                         library's own pick, reported as auto>NAME); NAME/CONFIG\n"
"                         forces one of its configurations (by name or index,\n"
"                         as NATTEN_BACKEND does), e.g. openmp/1,openmp/0\n"
"      --device DEV       cpu | cuda | cuda:N | all (default all: each backend on its device)\n"
"      --threads N        natten_context_set_num_threads (default 0: backend default)\n"
"      --suite NAME       preset problems: %s\n"
"                         (gpu: only GPU backends unless --backend/--device say otherwise)\n"
"      --quick            the tiny variant of a suite\n"
"      --warmup N         untimed runs first (default 1 CPU, 5 GPU)\n"
"      --repeat N         timed runs (default: >= 5 CPU / 20 GPU, up to ~1 s)\n"
"      --seed N           random inputs (default 42)\n"
"      --misalign N       host tensors start N bytes past a 256-byte boundary\n"
"                         (default 0; N < 256, a multiple of the element size;\n"
"                         16 is NumPy's malloc'ed arrays)\n"
"      --max-call S       a result whose first call takes over S seconds is timed by\n"
"                         that call alone (default: no limit; a first call over 1 s\n"
"                         already replaces the other warm-up runs)\n"
"\n"
"checking:\n"
"      --no-verify        skip the comparison with naive\n"
"      --verify-limit S   verify on a smaller same-shaped problem when the float64\n"
"                         reference would take longer than S seconds (default 5)\n"
"      --verify-flops F   ... or would do more than F FLOPs (default 1e9: a few\n"
"                         seconds of naive float64 on any CPU; 0: no cap)\n"
"      --naive-limit S    do not time naive when one call would take longer (default 10)\n"
"\n"
"output:\n"
"      --csv | --json     machine-readable results on stdout (default: a table)\n"
"      --csv-out FILE     also write the CSV to FILE (any output format on stdout)\n"
"      --json-out FILE    also write the JSON to FILE\n"
"      --peak             measure this CPU's fp32 FMA peak; report %%peak per CPU result\n"
"      --tune FILE        measured selection instead of a benchmark: let the library\n"
"                         time every backend x configuration on each problem (op,\n"
"                         and backward with --backward) on --device (default cpu),\n"
"                         print what it measured and save the winners as wisdom in\n"
"                         FILE (merged with FILE's if it is valid for this build)\n"
"      --tune-check       check measured selection: per problem (op; backward with\n"
"                         --backward) tune in a fresh context, then time the pick and\n"
"                         every candidate (backend/config) on its own with the\n"
"                         timing above; print pick/fastest with PASS (<= 1.05) or\n"
"                         FAIL; exit 1 on any FAIL.  Candidates the tuner timed at\n"
"                         over 10x its best are not timed again unless --check-all\n"
"      --list             list the backends and exit\n"
"      --dry-run          print the problems (with --json: as JSON, for bench/peers.py) and exit\n"
"  -h, --help             this text;  --version  the library version\n"
"\n"
"Exit status: 0 all results verified; 1 a result failed (error, wrong numbers or a\n"
"silent fallback to another backend); 2 bad usage.\n",
            bench_suite_names());
}

static void die_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "natten-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n");
    usage(stderr);
    exit(2);
}

static long long parse_int(const char *flag, const char *s, long long lo, long long hi)
{
    char *end;
    long long v;
    if (s == NULL) die_usage("%s needs a value", flag);
    v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0') die_usage("%s: '%s' is not an integer", flag, s);
    if (v < lo || v > hi) die_usage("%s: %lld is outside [%lld, %lld]", flag, v, lo, hi);
    return v;
}

static double parse_double(const char *flag, const char *s)
{
    char *end;
    double v;
    if (s == NULL) die_usage("%s needs a value", flag);
    v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !(v >= 0)) die_usage("%s: '%s' is not a number >= 0", flag, s);
    return v;
}

static int is_number(const char *s)
{
    if (s == NULL || *s == '\0') return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* Collect the numbers after a per-axis flag: argv[*i+1 ..] while numeric. */
static int take_list(int argc, char **argv, int *i, const char *flag, long long *v, int max,
                     long long lo, long long hi)
{
    int n = 0;
    while (*i + 1 < argc && is_number(argv[*i + 1])) {
        if (n == max) die_usage("%s: at most %d values", flag, max);
        v[n++] = parse_int(flag, argv[++*i], lo, hi);
    }
    if (n == 0) die_usage("%s needs at least one value", flag);
    return n;
}

typedef struct {
    long long v[3];
    int n;
} axis_list;

static void apply_axes(const char *flag, const axis_list *a, int rank, int *dst, int dflt)
{
    for (int i = 0; i < 3; i++) dst[i] = i < rank ? dflt : 1;
    if (a->n == 0) return;
    if (a->n != 1 && a->n != rank)
        die_usage("%s: %d values, but -i gives %d axes (give 1 or %d)", flag, a->n, rank, rank);
    for (int i = 0; i < rank; i++) dst[i] = (int)a->v[a->n == 1 ? 0 : i];
}

static void parse_args(int argc, char **argv)
{
    axis_list in = {{56, 56, 0}, 2}, win = {{7, 0, 0}, 1}, dil = {{0}, 0}, str = {{0}, 0},
              cau = {{0}, 0};
    long long heads_kv = -1, dim_value = -1;
    bench_problem *p = &opt.base;
    const char *op = "all";
    memset(&opt, 0, sizeof opt);
    p->B = 1;
    p->H = 4;
    p->D = 32;
    p->dtype = bench_dtype_f32();
    opt.backends = "all";
    opt.device = "all";
    opt.warmup = opt.repeat = -1;
    opt.verify = 1;
    opt.verify_limit = 5;
    opt.verify_flops = 1e9;
    opt.naive_limit = 10;
    opt.seed = 42;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
#define IS(s, l) (strcmp(a, (s)) == 0 || strcmp(a, (l)) == 0)
#define VALUE() (i++, next)
        if (IS("-h", "--help")) {
            usage(stdout);
            exit(0);
        } else if (IS("", "--version")) {
            printf("natten-bench: %s\n", natten_version_string());
            exit(0);
        } else if (IS("", "--list")) {
            opt.suite = "--list";
        } else if (IS("-i", "--input-size")) {
            in.n = take_list(argc, argv, &i, a, in.v, 3, 1, 1LL << 31);
        } else if (IS("-w", "--window")) {
            win.n = take_list(argc, argv, &i, a, win.v, 3, 2, 1LL << 31);
        } else if (IS("", "--dilation")) {
            dil.n = take_list(argc, argv, &i, a, dil.v, 3, 1, 1LL << 31);
        } else if (IS("", "--stride")) {
            str.n = take_list(argc, argv, &i, a, str.v, 3, 1, 1LL << 31);
        } else if (IS("", "--causal")) {
            if (next != NULL && is_number(next)) {
                cau.n = take_list(argc, argv, &i, a, cau.v, 3, 0, 1);
            } else {
                cau.n = 1;
                cau.v[0] = 1;
            }
        } else if (IS("-b", "--batch")) {
            p->B = parse_int(a, VALUE(), 1, 1LL << 31);
        } else if (IS("-n", "--heads")) {
            p->H = parse_int(a, VALUE(), 1, 1LL << 31);
        } else if (IS("", "--heads-kv")) {
            heads_kv = parse_int(a, VALUE(), 1, 1LL << 31);
        } else if (IS("-d", "--dim")) {
            p->D = parse_int(a, VALUE(), 1, 1LL << 31);
        } else if (IS("", "--dim-value")) {
            dim_value = parse_int(a, VALUE(), 1, 1LL << 31);
        } else if (IS("", "--dtype")) {
            const char *v = VALUE();
            if (v == NULL) die_usage("--dtype needs a value");
            if ((p->dtype = bench_dtype_find(v)) == NULL)
                die_usage("--dtype: unknown type '%s' (float32, float64, float16, bfloat16)", v);
            opt.dtype_set = 1;
        } else if (IS("", "--op")) {
            op = VALUE();
            if (op == NULL) die_usage("--op needs a value");
        } else if (IS("", "--backward")) {
            p->backward = 1;
        } else if (IS("", "--rpb")) {
            p->rpb = 1;
        } else if (IS("", "--backend")) {
            if ((opt.backends = VALUE()) == NULL) die_usage("--backend needs a value");
            opt.backends_set = 1;
        } else if (IS("", "--device")) {
            if ((opt.device = VALUE()) == NULL) die_usage("--device needs a value");
            opt.device_set = 1;
            if (strcmp(opt.device, "all") && strcmp(opt.device, "cpu") && strcmp(opt.device, "cuda") &&
                !(strncmp(opt.device, "cuda:", 5) == 0 && is_number(opt.device + 5)))
                die_usage("--device: '%s' is not cpu, cuda, cuda:N or all", opt.device);
        } else if (IS("", "--threads")) {
            opt.threads = (int)parse_int(a, VALUE(), 0, 4096);
        } else if (IS("", "--warmup")) {
            opt.warmup = (int)parse_int(a, VALUE(), 0, MAX_RUNS);
        } else if (IS("", "--repeat")) {
            opt.repeat = (int)parse_int(a, VALUE(), 1, MAX_RUNS);
        } else if (IS("", "--misalign")) {
            bench_misalign = (size_t)parse_int(a, VALUE(), 0, 255);
        } else if (IS("", "--seed")) {
            opt.seed = (unsigned long long)parse_int(a, VALUE(), 0, 1LL << 62);
        } else if (IS("", "--suite")) {
            if ((opt.suite = VALUE()) == NULL) die_usage("--suite needs a value");
        } else if (IS("", "--quick")) {
            opt.quick = 1;
        } else if (IS("", "--csv")) {
            opt.format = OUT_CSV;
        } else if (IS("", "--json")) {
            opt.format = OUT_JSON;
        } else if (IS("", "--csv-out")) {
            if ((opt.csv_out = VALUE()) == NULL) die_usage("--csv-out needs a file name");
        } else if (IS("", "--json-out")) {
            if ((opt.json_out = VALUE()) == NULL) die_usage("--json-out needs a file name");
        } else if (IS("", "--peak")) {
            opt.peak = 1;
        } else if (IS("", "--tune")) {
            if ((opt.tune = VALUE()) == NULL) die_usage("--tune needs a file name");
        } else if (IS("", "--tune-check")) {
            opt.tune_check = 1;
        } else if (IS("", "--max-call")) {
            opt.max_call = parse_double(a, VALUE());
        } else if (IS("", "--check-all")) {
            opt.check_all = 1;
        } else if (IS("", "--dry-run")) {
            opt.dry_run = 1;
        } else if (IS("", "--no-verify")) {
            opt.verify = 0;
        } else if (IS("", "--verify-limit")) {
            opt.verify_limit = parse_double(a, VALUE());
        } else if (IS("", "--verify-flops")) {
            opt.verify_flops = parse_double(a, VALUE());
        } else if (IS("", "--naive-limit")) {
            opt.naive_limit = parse_double(a, VALUE());
        } else {
            die_usage("unknown option '%s'", a);
        }
#undef IS
#undef VALUE
    }
    p->rank = in.n;
    for (int i = 0; i < 3; i++) p->S[i] = i < in.n ? in.v[i] : 1;
    apply_axes("-w", &win, p->rank, p->K, 7);
    apply_axes("--dilation", &dil, p->rank, p->dil, 1);
    apply_axes("--stride", &str, p->rank, p->str, 1);
    apply_axes("--causal", &cau, p->rank, p->causal, 0);
    for (int i = 0; i < p->rank; i++) {
        if ((int64_t)p->K[i] * p->dil[i] > p->S[i])
            die_usage("axis %d: window %d x dilation %d exceeds the extent %lld", i, p->K[i],
                      p->dil[i], (long long)p->S[i]);
        if (p->str[i] > p->K[i])
            die_usage("axis %d: stride %d exceeds the window %d", i, p->str[i], p->K[i]);
    }
    p->Hkv = heads_kv > 0 ? heads_kv : p->H;
    if (p->H % p->Hkv != 0)
        die_usage("--heads-kv %lld does not divide --heads %lld", (long long)p->Hkv, (long long)p->H);
    p->Dv = dim_value > 0 ? dim_value : p->D;
    if (strcmp(op, "all") == 0) {
        p->ops = (1u << OP_QK) | (1u << OP_AV) | (1u << OP_FNA);
    } else {
        for (int o = 0; o < OP_COUNT; o++)
            if (strcmp(op, op_names[o]) == 0) p->ops = 1u << o;
        if (p->ops == 0) die_usage("--op: '%s' is not fna, qk, av or all", op);
    }
    p->threads = opt.threads;
}

/* ----------------------------------------------------------------- tensors */

enum { T_Q, T_K, T_V, T_RPB, T_ATTN, T_OUT, T_LSE, T_DATTN, T_DOUT, T_DQ, T_DK, T_DV, T_DRPB, T_COUNT };
static const char *role_names[T_COUNT] = {"q", "k", "v", "rpb", "attn", "out", "lse",
                                          "d_attn", "d_out", "d_q", "d_k", "d_v", "d_rpb"};
#define B(r) (1u << (r))

/* Inputs and outputs of each op and direction (FWDBWD: forward then backward). */
static unsigned op_inputs(const bench_problem *p, bench_op op, bench_dir dir)
{
    unsigned rpb = p->rpb && op != OP_AV ? B(T_RPB) : 0;
    static const unsigned fwd[OP_COUNT] = {B(T_Q) | B(T_K), B(T_ATTN) | B(T_V), B(T_Q) | B(T_K) | B(T_V)};
    static const unsigned bwd[OP_COUNT] = {B(T_DATTN) | B(T_Q) | B(T_K), B(T_DOUT) | B(T_ATTN) | B(T_V),
                                           B(T_Q) | B(T_K) | B(T_V) | B(T_OUT) | B(T_LSE) | B(T_DOUT)};
    static const unsigned fwd_out[OP_COUNT] = {B(T_ATTN), B(T_OUT), B(T_OUT) | B(T_LSE)};
    if (dir == DIR_FWD) return fwd[op] | rpb;
    if (dir == DIR_BWD) return bwd[op] | rpb;
    return ((fwd[op] | bwd[op]) & ~fwd_out[op]) | rpb;
}

static unsigned op_outputs(const bench_problem *p, bench_op op, bench_dir dir)
{
    unsigned drpb = p->rpb && op != OP_AV ? B(T_DRPB) : 0;
    static const unsigned fwd[OP_COUNT] = {B(T_ATTN), B(T_OUT), B(T_OUT) | B(T_LSE)};
    static const unsigned bwd[OP_COUNT] = {B(T_DQ) | B(T_DK), B(T_DATTN) | B(T_DV),
                                           B(T_DQ) | B(T_DK) | B(T_DV)};
    if (dir == DIR_FWD) return fwd[op];
    if (dir == DIR_BWD) return bwd[op] | drpb;
    return fwd[op] | bwd[op] | drpb;
}

typedef struct job {
    bench_tensor *t[T_COUNT];
    unsigned in, out;
} job;

static int role_shape(const bench_problem *p, bench_op op, int role, int64_t *shape)
{
    int n = 0;
    /* the unfused ops have no GQA: k and v carry every query head */
    int64_t hkv = op == OP_FNA ? p->Hkv : p->H;
    if (role == T_RPB || role == T_DRPB) {
        shape[n++] = p->H;
        for (int i = 0; i < p->rank; i++) shape[n++] = 2 * p->K[i] - 1;
        return n;
    }
    shape[n++] = p->B;
    for (int i = 0; i < p->rank; i++) shape[n++] = p->S[i];
    switch (role) {
    case T_Q: case T_DQ: shape[n++] = p->H; shape[n++] = p->D; break;
    case T_K: case T_DK: shape[n++] = hkv; shape[n++] = p->D; break;
    case T_V: case T_DV: shape[n++] = hkv; shape[n++] = p->Dv; break;
    case T_OUT: case T_DOUT: shape[n++] = p->H; shape[n++] = p->Dv; break;
    case T_ATTN: case T_DATTN: shape[n++] = p->H; shape[n++] = bench_window(p); break;
    case T_LSE: shape[n++] = p->H; break;
    default: break;
    }
    return n;
}

static void job_free(job *j)
{
    for (int r = 0; r < T_COUNT; r++) bt_free(j->t[r]);
    memset(j, 0, sizeof *j);
}

/* Allocate every tensor of (op, dir); dt overrides the problem's dtype (lse stays fp32). */
static int job_alloc(job *j, const bench_problem *p, bench_op op, bench_dir dir,
                     const bench_dtype *dt, bench_device where)
{
    memset(j, 0, sizeof *j);
    j->in = op_inputs(p, op, dir);
    j->out = op_outputs(p, op, dir);
    for (int r = 0; r < T_COUNT; r++) {
        int64_t shape[6];
        int n;
        if (!((j->in | j->out) & B(r))) continue;
        n = role_shape(p, op, r, shape);
        j->t[r] = bt_new(n, shape, r == T_LSE ? bench_dtype_f32() : dt, where);
        if (j->t[r] == NULL) {
            job_free(j);
            return 0;
        }
    }
    return 1;
}

static void job_fill_inputs(job *j, const bench_problem *p, uint64_t seed)
{
    uint64_t rng = seed;
    double w = (double)bench_window(p);
    for (int r = 0; r < T_COUNT; r++) {
        if (!(j->in & B(r))) continue;
        switch (r) {
        case T_RPB: bt_fill(j->t[r], &rng, -0.5, 0.5); break;
        case T_ATTN: bt_fill(j->t[r], &rng, 0, 2 / w); break;   /* like softmax weights */
        case T_LSE: bt_fill(j->t[r], &rng, log(w), log(w) + 1); break;
        default: bt_fill(j->t[r], &rng, -1, 1);
        }
    }
}

static size_t job_bytes(const job *j, unsigned roles)
{
    size_t s = 0;
    for (int r = 0; r < T_COUNT; r++)
        if ((roles & B(r)) && j->t[r]) s += j->t[r]->bytes;
    return s;
}

/* ---------------------------------------------------------------- running */

static void make_params(const bench_problem *p, natten_params *np)
{
    natten_params_init(np, p->rank, p->K);
    for (int i = 0; i < p->rank; i++) {
        np->dilation[i] = p->dil[i];
        np->stride[i] = p->str[i];
        np->is_causal[i] = p->causal[i];
    }
}

#define DL(j, r) ((j)->t[r] ? &(j)->t[r]->t : NULL)

static natten_status run_dir(natten_context *ctx, const natten_params *np, job *j, bench_op op,
                             int backward)
{
    if (!backward) {
        switch (op) {
        case OP_QK: return natten_qk_forward(ctx, np, DL(j, T_Q), DL(j, T_K), DL(j, T_RPB), DL(j, T_ATTN));
        case OP_AV: return natten_av_forward(ctx, np, DL(j, T_ATTN), DL(j, T_V), DL(j, T_OUT));
        default:
            return natten_fna_forward(ctx, np, DL(j, T_Q), DL(j, T_K), DL(j, T_V), DL(j, T_RPB),
                                      DL(j, T_OUT), DL(j, T_LSE));
        }
    }
    switch (op) {
    case OP_QK:
        return natten_qk_backward(ctx, np, DL(j, T_DATTN), DL(j, T_Q), DL(j, T_K), DL(j, T_DQ),
                                  DL(j, T_DK), DL(j, T_DRPB));
    case OP_AV:
        return natten_av_backward(ctx, np, DL(j, T_DOUT), DL(j, T_ATTN), DL(j, T_V), DL(j, T_DATTN),
                                  DL(j, T_DV));
    default:
        return natten_fna_backward(ctx, np, DL(j, T_Q), DL(j, T_K), DL(j, T_V), DL(j, T_RPB),
                                   DL(j, T_OUT), DL(j, T_LSE), DL(j, T_DOUT), DL(j, T_DQ), DL(j, T_DK),
                                   DL(j, T_DV), DL(j, T_DRPB));
    }
}

/* One run of (op, dir); checks who ran it.  want == NULL: any backend. */
typedef struct call {
    natten_context *ctx;
    natten_params np;
    job *j;
    bench_op op;
    bench_dir dir;
    const char *want;
    natten_status st;
    char ran[64];
    char err[512];
} call;

/* NATTEN_BENCH_SELFTEST=wrong|fallback makes the checks below see a wrong
 * number or another backend, so that tests/bench-cli.sh can show they bite. */
static const char *selftest(void)
{
    const char *s = getenv("NATTEN_BENCH_SELFTEST");
    return s ? s : "";
}

static int call_once(void *arg)
{
    call *c = arg;
    const char *who;
    c->st = NATTEN_SUCCESS;
    if (c->dir != DIR_BWD) c->st = run_dir(c->ctx, &c->np, c->j, c->op, 0);
    if (c->st == NATTEN_SUCCESS && c->dir != DIR_FWD) c->st = run_dir(c->ctx, &c->np, c->j, c->op, 1);
    if (c->st != NATTEN_SUCCESS) {
        snprintf(c->err, sizeof c->err, "%s", natten_last_error());
        return 0;
    }
    who = natten_context_last_backend(c->ctx);
    if (strcmp(selftest(), "fallback") == 0) who = "selftest-other";
    snprintf(c->ran, sizeof c->ran, "%s", who ? who : "?");
    /* a wanted "name/config" ran on its backend when the names agree */
    return c->want == NULL ||
           (who != NULL && strlen(who) == strcspn(c->want, "/") && strncmp(who, c->want, strlen(who)) == 0);
}

/* --------------------------------------------------------------- results */

typedef struct result {
    int problem;
    bench_op op;
    bench_dir dir;
    char backend[64], ran_on[64], device[24];
    int runs;
    double median, min, max;         /* seconds; median < 0: no time */
    double flops, bytes;
    long long mem, scratch;          /* bytes; scratch < 0: unknown */
    double max_err, norm_err, tol;   /* max_err < 0: not verified */
    int64_t bad;
    char verified_on[160];
    double speedup, peak_frac;       /* < 0: n/a */
    double bw_frac;                  /* GPU: GB/s over the device-to-device copy rate */
    char status[600];
    int failed;
    int one_call;                    /* --max-call: timed by its first call alone */
} result;

static result *results;
static int nresults, capresults;
static bench_problem problems[MAX_PROBLEMS];
static int nproblems;
static int any_failed;
static double peak1, peakn;          /* GFLOP/s: one thread, every thread */
static double gpu_bw;                /* bytes/s, device-to-device copy (--peak) */
static double loadavg = -1;
static char cpu_model[256];
static char command_line[2048];

static result *new_result(void)
{
    if (nresults == capresults) {
        int cap = capresults ? 2 * capresults : 64;
        result *r = realloc(results, (size_t)cap * sizeof *r);
        if (r == NULL) {
            fprintf(stderr, "natten-bench: out of memory\n");
            exit(1);
        }
        results = r;
        capresults = cap;
    }
    memset(&results[nresults], 0, sizeof results[nresults]);
    results[nresults].median = results[nresults].max_err = results[nresults].speedup = -1;
    results[nresults].peak_frac = results[nresults].scratch = results[nresults].bw_frac = -1;
    return &results[nresults++];
}

/* ----------------------------------------------------------------- progress */

static int progress_on;
static int progress_total, progress_done;

static void progress(const char *what)
{
    int width = 30, fill;
    if (!progress_on || progress_total <= 0) return;
    fill = width * progress_done / progress_total;
    fprintf(stderr, "\r[%.*s%*s] %d/%d %-40.40s", fill, "##############################",
            width - fill, "", progress_done, progress_total, what);
    fflush(stderr);
}

static void progress_clear(void)
{
    if (progress_on) fprintf(stderr, "\r%*s\r", 80, "");
}

/* ------------------------------------------------------------ the backends */

typedef struct target {
    char name[64];          /* "" = auto */
    bench_device dev;
    char devname[24];
} target;

static target targets[MAX_BACKENDS];
static int ntargets;
static int naive_index = -1;

static int device_wanted(DLDeviceType type, int *id)
{
    *id = 0;
    if (strcmp(opt.device, "all") == 0) return 1;
    if (type == kDLCPU) return strcmp(opt.device, "cpu") == 0;
    if (type != kDLCUDA || strncmp(opt.device, "cuda", 4) != 0) return 0;
    if (opt.device[4] == ':') *id = atoi(opt.device + 5);
    return 1;
}

/* One target per backend (--backend all) or per listed entry, which may
 * name a configuration too ("cuda-tc/11", as NATTEN_BACKEND takes it). */
static void add_target(const natten_backend_info *info, const char *entry, size_t len, int listed)
{
    char why[256];
    int id;
    /* --suite gpu: GPU backends only, unless asked otherwise (naive stays the reference) */
    if (opt.suite && strcmp(opt.suite, "gpu") == 0 && !opt.backends_set && !opt.device_set &&
        info->device_type == kDLCPU)
        return;
    if (!device_wanted(info->device_type, &id)) return;
    if (!info->available) {
        if (listed) fprintf(stderr, "natten-bench: backend %s is not available here: %s\n",
                            info->name, info->reason ? info->reason : "?");
        return;
    }
    if (info->device_type == kDLCUDA && !gpu_load(why, sizeof why)) {
        fprintf(stderr, "natten-bench: skipping %s: %s\n", info->name, why);
        return;
    }
    if (info->device_type != kDLCPU && info->device_type != kDLCUDA) {
        fprintf(stderr, "natten-bench: skipping %s: the bench has no memory functions for its device\n",
                info->name);
        return;
    }
    if (len >= sizeof targets[0].name) die_usage("--backend: '%.*s' is too long", (int)len, entry);
    if (memchr(entry, '/', len)) { /* the configuration must exist: the library says so */
        natten_context *ctx = NULL;
        char full[sizeof targets[0].name];
        natten_status st;
        snprintf(full, sizeof full, "%.*s", (int)len, entry);
        st = natten_context_create(&ctx);
        if (st == NATTEN_SUCCESS) st = natten_context_set_backend(ctx, full);
        if (st != NATTEN_SUCCESS) die_usage("--backend %s: %s", full, natten_last_error());
        natten_context_destroy(ctx);
    }
    if (ntargets == MAX_BACKENDS) return;
    {
        target *t = &targets[ntargets++];
        snprintf(t->name, sizeof t->name, "%.*s", (int)len, entry);
        t->dev.type = info->device_type;
        t->dev.id = id;
        snprintf(t->devname, sizeof t->devname, info->device_type == kDLCPU ? "cpu" : "cuda:%d", id);
        if (strcmp(t->name, "naive") == 0) naive_index = ntargets - 1;
    }
}

static void pick_targets(void)
{
    int n = natten_backend_count();
    if (strcmp(opt.backends, "auto") == 0) {
        target *t = &targets[ntargets++];
        int id = 0;
        t->dev.type = strncmp(opt.device, "cuda", 4) == 0 ? kDLCUDA : kDLCPU;
        if (t->dev.type == kDLCUDA) device_wanted(kDLCUDA, &id);
        t->dev.id = id;
        snprintf(t->devname, sizeof t->devname, t->dev.type == kDLCPU ? "cpu" : "cuda:%d", id);
        return;
    }
    if (strcmp(opt.backends, "all") == 0) {
        for (int i = 0; i < n; i++) {
            natten_backend_info info;
            if (natten_backend_get_info(i, &info) == NATTEN_SUCCESS)
                add_target(&info, info.name, strlen(info.name), 0);
        }
    } else {
        for (const char *s = opt.backends; *s;) {
            /* every listed name must exist; "name/config" names a configuration of it */
            const char *comma = strchr(s, ',');
            size_t len = comma ? (size_t)(comma - s) : strlen(s);
            size_t nlen = strcspn(s, "/,");
            int found = 0;
            for (int i = 0; i < n && !found; i++) {
                natten_backend_info info;
                if (natten_backend_get_info(i, &info) == NATTEN_SUCCESS && strlen(info.name) == nlen &&
                    strncmp(info.name, s, nlen) == 0) {
                    found = 1;
                    add_target(&info, s, len, 1);
                }
            }
            if (!found) die_usage("--backend: no backend '%.*s' in this build (%s)", (int)nlen, s,
                                  natten_version_string());
            s = comma ? comma + 1 : s + len;
        }
    }
    if (ntargets == 0) {
        fprintf(stderr, "natten-bench: no backend to run (--backend %s, --device %s%s)\n", opt.backends,
                opt.device, opt.suite && strcmp(opt.suite, "gpu") == 0 && !opt.backends_set && !opt.device_set
                                ? "; --suite gpu runs GPU backends only, and none is available here" : "");
        exit(2);
    }
}

/* --------------------------------------------------- naive cost estimate */

static double naive_gflops[OP_COUNT][DIR_COUNT]; /* measured once per op: fp32, 16x16, K 7 */

static double naive_rate(bench_op op, bench_dir dir)
{
    if (naive_gflops[op][dir] <= 0) {
        bench_problem p;
        bench_device cpu = {kDLCPU, 0};
        job j;
        call c;
        double best = 1e30;
        memset(&p, 0, sizeof p);
        p.rank = 2;
        p.S[0] = p.S[1] = 16;
        p.S[2] = 1;
        p.K[0] = p.K[1] = 7;
        p.K[2] = 1;
        for (int i = 0; i < 3; i++) p.dil[i] = p.str[i] = 1;
        p.B = p.H = p.Hkv = 1;
        p.D = p.Dv = 32;
        p.dtype = bench_dtype_f32();
        naive_gflops[op][dir] = 0.1; /* fallback guess */
        if (!job_alloc(&j, &p, op, dir, p.dtype, cpu)) return naive_gflops[op][dir];
        job_fill_inputs(&j, &p, 1);
        memset(&c, 0, sizeof c);
        if (natten_context_create(&c.ctx) == NATTEN_SUCCESS &&
            natten_context_set_backend(c.ctx, "naive") == NATTEN_SUCCESS) {
            make_params(&p, &c.np);
            c.j = &j;
            c.op = op;
            c.dir = dir;
            for (int i = 0; i < 3; i++) {
                double t0 = bench_now(), dt;
                if (!call_once(&c)) break;
                dt = bench_now() - t0;
                if (dt < best) best = dt;
            }
            if (best < 1e30) naive_gflops[op][dir] = bench_flops(&p, op, dir) / best * 1e-9;
        }
        natten_context_destroy(c.ctx);
        job_free(&j);
    }
    return naive_gflops[op][dir];
}

static double naive_seconds(const bench_problem *p, bench_op op, bench_dir dir)
{
    double f = bench_flops(p, op, dir);
    /* the unfused fp16/bf16 paths convert every element: be pessimistic */
    return f / (naive_rate(op, dir) * 1e9) * (p->dtype->size == 2 ? 2 : 1);
}

/* FLOPs of the float64 naive reference of (p, op, dir): the op itself, and
 * for the fused backward also the forward that makes out and lse. */
static double reference_flops(const bench_problem *p, bench_op op, bench_dir dir)
{
    return bench_flops(p, op, dir) + (op == OP_FNA && dir == DIR_BWD ? bench_flops(p, op, DIR_FWD) : 0);
}

/* A smaller problem of the same shape whose reference fits the time limit
 * (estimated from naive's rate on a small problem, which a big problem's
 * cache misses can make far too hopeful) and the FLOP budget (--verify-flops,
 * the bound that holds whatever the cache does):
 * batch, then heads (keeping the GQA ratio), then extents (down to 2*K*d, so
 * both borders and an interior remain), then windows (keeping parity).
 * Returns 1 if it had to shrink. */
static int64_t extent_floor(const bench_problem *orig, const bench_problem *v, int i)
{
    int64_t m = 2 * (int64_t)v->K[i] * v->dil[i];
    return m < orig->S[i] ? m : orig->S[i];
}

static int shrink_for_verify(const bench_problem *p, bench_op op, bench_dir dir, bench_problem *v)
{
    int shrunk = 0;
    *v = *p;
    /* the reference is the naive op itself (+ a forward for the fused backward's out/lse) */
    while (naive_seconds(v, op, dir) + (op == OP_FNA && dir == DIR_BWD ? naive_seconds(v, op, DIR_FWD) : 0) >
               opt.verify_limit ||
           (opt.verify_flops > 0 && reference_flops(v, op, dir) > opt.verify_flops)) {
        int best = -1;
        double ratio = 1;
        shrunk = 1;
        if (v->B > 1) { v->B = 1; continue; }
        if (v->Hkv > 1) { v->H /= v->Hkv; v->Hkv = 1; continue; }
        if (v->H > 1) { v->H = v->Hkv = 1; continue; }
        for (int i = 0; i < v->rank; i++) {
            double r = (double)v->S[i] / (double)extent_floor(p, v, i);
            if (r > ratio) { ratio = r; best = i; }
        }
        if (best >= 0) {
            int64_t m = extent_floor(p, v, best);
            v->S[best] = v->S[best] / 2 > m ? v->S[best] / 2 : m;
            continue;
        }
        for (int i = 0; i < v->rank; i++)
            if (best < 0 || v->K[i] > v->K[best]) best = i;
        if (v->K[best] <= 3) break;
        v->K[best] = (v->K[best] / 2) | (v->K[best] & 1);
        if (v->str[best] > v->K[best]) v->str[best] = v->K[best];
        /* keep the extent/window relation: K = L stays K = L */
        v->S[best] = p->S[best] == (int64_t)p->K[best] * p->dil[best]
                         ? (int64_t)v->K[best] * v->dil[best]
                         : extent_floor(p, v, best) + (p->S[best] % 2 ? 1 : 0);
    }
    return shrunk;
}

/* ------------------------------------------------------------- verification */

typedef struct reference {
    bench_problem vp;   /* the verified problem */
    int shrunk;
    job in;             /* inputs in the working dtype (host) */
    job ref;            /* naive float64 outputs */
    int ok;
    natten_status st;   /* the naive reference's status when !ok */
    char why[600];
} reference;

/* Inputs for the verification problem and the float64 naive answer. */
static void reference_build(reference *R, const bench_problem *p, bench_op op, bench_dir dir)
{
    bench_device cpu = {kDLCPU, 0};
    natten_context *ctx = NULL;
    call c;
    memset(R, 0, sizeof *R);
    R->shrunk = shrink_for_verify(p, op, dir, &R->vp);
    if (!job_alloc(&R->in, &R->vp, op, dir, p->dtype, cpu) ||
        !job_alloc(&R->ref, &R->vp, op, dir, bench_dtype_f64(), cpu)) {
        snprintf(R->why, sizeof R->why, "out of host memory for the reference");
        return;
    }
    job_fill_inputs(&R->in, &R->vp, opt.seed + 1000u * (unsigned)op + (unsigned)dir);
    if (natten_context_create(&ctx) != NATTEN_SUCCESS || natten_context_set_backend(ctx, "naive")) {
        snprintf(R->why, sizeof R->why, "naive reference: %s", natten_last_error());
        natten_context_destroy(ctx);
        return;
    }
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    make_params(&R->vp, &c.np);
    c.op = op;
    if (op == OP_FNA && dir == DIR_BWD) {
        /* out and lse must belong to q, k, v: the naive forward in the working dtype */
        job f;
        if (!job_alloc(&f, &R->vp, op, DIR_FWD, p->dtype, cpu)) {
            snprintf(R->why, sizeof R->why, "out of host memory for the reference");
            natten_context_destroy(ctx);
            return;
        }
        for (int r = 0; r < T_COUNT; r++)
            if (f.in & B(r)) bt_copy_values(f.t[r], R->in.t[r]);
        c.j = &f;
        c.dir = DIR_FWD;
        if (!call_once(&c)) {
            R->st = c.st;
            snprintf(R->why, sizeof R->why, "naive forward for out/lse: %s", c.err);
            job_free(&f);
            natten_context_destroy(ctx);
            return;
        }
        bt_copy_values(R->in.t[T_OUT], f.t[T_OUT]);
        bt_copy_values(R->in.t[T_LSE], f.t[T_LSE]);
        job_free(&f);
    }
    for (int r = 0; r < T_COUNT; r++)
        if (R->in.in & B(r)) bt_copy_values(R->ref.t[r], R->in.t[r]);
    c.j = &R->ref;
    c.dir = dir;
    if (!call_once(&c)) {
        R->st = c.st;
        snprintf(R->why, sizeof R->why, "naive reference: %s", c.err);
    } else {
        R->ok = 1;
    }
    natten_context_destroy(ctx);
}

static void reference_free(reference *R)
{
    job_free(&R->in);
    job_free(&R->ref);
}

/* ------------------------------------------------------------------ timing */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Time (op, dir) of problem p on target t: fills r's timing and memory fields. */
static int time_calls(call *c, const target *t, result *r, int is_gpu)
{
    static double times[MAX_RUNS];
    int warm = opt.warmup >= 0 ? opt.warmup : is_gpu ? 5 : 1;
    int min_runs = opt.repeat > 0 ? opt.repeat : is_gpu ? 20 : 5;
    int max_runs = opt.repeat > 0 ? opt.repeat : is_gpu ? 1000 : 200;
    double budget = opt.repeat > 0 ? 0 : 1.0, total = 0, first;
    int n = 0;
    long long rss0 = -1, used0 = -1;

    /* first call: scratch memory (CPU peak RSS over the call; GPU memory kept) */
    if (is_gpu) {
        gpu_sync(t->dev.id);
        used0 = gpu_mem_used(t->dev.id);
    } else if (bench_rss_reset()) {
        rss0 = bench_rss_kib("VmRSS:");
    }
    first = bench_now();
    if (!call_once(c)) return 0;
    if (is_gpu) {
        long long used1;
        gpu_sync(t->dev.id);
        used1 = gpu_mem_used(t->dev.id);
        if (used0 >= 0 && used1 >= 0) r->scratch = used1 > used0 ? used1 - used0 : 0;
    } else if (rss0 >= 0) {
        long long hwm = bench_rss_kib("VmHWM:");
        if (hwm >= 0) r->scratch = hwm > rss0 ? (hwm - rss0) * 1024 : 0;
    }
    first = bench_now() - first;
    if (opt.repeat <= 0 && first > 1.0) warm = 1; /* a slow first call is warm-up enough */
    if (opt.max_call > 0 && first > opt.max_call) {
        /* --max-call: that first call is the only run (its time includes first-call costs) */
        times[n++] = first;
        r->one_call = 1;
        warm = 0;
        max_runs = 0;
    }
    for (int i = 1; i < warm; i++)
        if (!call_once(c)) return 0;
    while (n < max_runs && (n < min_runs || total < budget)) {
        double dt;
        if (is_gpu) {
            int ok = gpu_time(t->dev.id, call_once, c, &dt);
            if (ok == 0) {
                snprintf(c->err, sizeof c->err, "CUDA timing: %s", gpu_error());
                c->st = NATTEN_ERROR_DEVICE;
            }
            if (ok != 1) return 0;
        } else {
            double t0 = bench_now();
            if (!call_once(c)) return 0;
            dt = bench_now() - t0;
        }
        times[n++] = dt;
        total += dt;
        if (opt.repeat <= 0 && n >= 3 && total > 5 * budget) break; /* slow calls: 3 are enough */
    }
    qsort(times, (size_t)n, sizeof times[0], cmp_double);
    r->runs = n;
    r->min = times[0];
    r->max = times[n - 1];
    r->median = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
    return 1;
}

/* Copy host images of a job into a device job of the same shapes. */
static int job_to_device(job *dst, const job *src, const bench_problem *p, bench_op op, bench_dir dir,
                         bench_device where)
{
    if (!job_alloc(dst, p, op, dir, src->t[T_Q] ? src->t[T_Q]->dtype : p->dtype, where)) return 0;
    for (int r = 0; r < T_COUNT; r++) {
        if (!dst->t[r]) continue;
        memcpy(dst->t[r]->host, src->t[r]->host, src->t[r]->bytes);
        if (!bt_upload(dst->t[r])) return 0;
    }
    return 1;
}

static void poison_outputs(job *j)
{
    for (int r = 0; r < T_COUNT; r++)
        if (j->out & B(r)) {
            bt_poison(j->t[r]);
            bt_upload(j->t[r]);
        }
}

static void set_status(result *r, int failed, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->status, sizeof r->status, fmt, ap);
    va_end(ap);
    if (failed) {
        r->failed = 1;
        any_failed = 1;
    }
}

static void fail_call(result *r, const call *c, const char *when)
{
    if (c->st == NATTEN_SUCCESS) {
        set_status(r, 1, "FALLBACK: asked for %s, ran on %s (%s); not counted", c->want, c->ran, when);
    } else if (c->st == NATTEN_ERROR_UNSUPPORTED) {
        set_status(r, 0, "unsupported: %s", c->err);
    } else {
        set_status(r, 1, "error (%s): %s: %s", when, natten_status_string(c->st), c->err);
    }
}

/* Step 1: run once on NaN-poisoned outputs (the reference's problem, maybe
 * smaller) and compare with the float64 naive answer.  0 = stop here. */
static int verify_one(call *c, const target *t, reference *R, job *dj, result *r)
{
    const bench_problem *p = &problems[r->problem];
    bench_err e = {0, 0, 0};
    int worst = -1, is_gpu = t->dev.type != kDLCPU;
    job *vj = &R->in;
    if (!R->ok) {
        if (R->st == NATTEN_ERROR_INVALID_ARGUMENT)
            set_status(r, 1, "invalid problem (the library rejects it): %s", R->why);
        else
            set_status(r, 1, "no reference: %s", R->why);
        return 0;
    }
    if (is_gpu) {
        if (!job_to_device(dj, &R->in, &R->vp, r->op, r->dir, t->dev)) {
            set_status(r, 1, "device memory: %s", gpu_error());
            return 0;
        }
        vj = dj;
    }
    poison_outputs(vj);
    c->j = vj;
    make_params(&R->vp, &c->np);
    if (!call_once(c)) {
        fail_call(r, c, "verification run");
        return 0;
    }
    make_params(p, &c->np);
    snprintf(r->ran_on, sizeof r->ran_on, "%s", c->ran);
    for (int q = 0; q < T_COUNT; q++) {
        double before = e.norm;
        int64_t bad = e.bad;
        if (!(vj->out & B(q))) continue;
        if (!bt_download(vj->t[q])) {
            set_status(r, 1, "download: %s", gpu_error());
            return 0;
        }
        if (worst < 0 && strcmp(selftest(), "wrong") == 0)
            bench_store(vj->t[q]->dtype, vj->t[q]->host, 0, bench_load(vj->t[q]->dtype, vj->t[q]->host, 0) + 1);
        bt_compare(vj->t[q], R->ref.t[q], &e);
        if (e.norm > before || e.bad > bad || worst < 0) worst = q;
    }
    r->max_err = e.max_abs;
    r->norm_err = e.norm;
    r->bad = e.bad;
    r->tol = r->dir == DIR_FWD ? p->dtype->tol_forward : p->dtype->tol_backward;
    if (R->shrunk) bench_problem_describe(&R->vp, r->verified_on, sizeof r->verified_on);
    else snprintf(r->verified_on, sizeof r->verified_on, "full problem");
    if (e.bad > 0 || !(e.norm <= r->tol))
        set_status(r, 1, "WRONG: %s error %.3g (normalised %.3g, tol %.0e), %lld bad elements",
                   worst >= 0 ? role_names[worst] : "?", e.max_abs, e.norm, r->tol, (long long)e.bad);
    return 1;
}

/* Step 2: time the full problem (reusing the verified tensors when it is the
 * same problem) and derive rates, memory and fractions of peak. */
static void time_one(call *c, const target *t, reference *R, job *dj, job *tj, result *r)
{
    const bench_problem *p = &problems[r->problem];
    int is_gpu = t->dev.type != kDLCPU, is_naive = t->name[0] && strcmp(t->name, "naive") == 0;
    if (is_naive && naive_seconds(p, r->op, r->dir) > opt.naive_limit) {
        set_status(r, 0, "not timed: naive needs ~%.0f s per call (--naive-limit %.0f)",
                   naive_seconds(p, r->op, r->dir), opt.naive_limit);
        return;
    }
    if (!R->shrunk && opt.verify) {
        c->j = is_gpu ? dj : &R->in;
    } else {
        if (!job_alloc(tj, p, r->op, r->dir, p->dtype, t->dev)) {
            set_status(r, 1, "out of memory for the timed problem%s%s", is_gpu ? ": " : "",
                       is_gpu ? gpu_error() : "");
            return;
        }
        job_fill_inputs(tj, p, opt.seed + 7);
        for (int q = 0; q < T_COUNT; q++)
            if (tj->t[q] && !bt_upload(tj->t[q])) {
                set_status(r, 1, "upload: %s", gpu_error());
                return;
            }
        c->j = tj;
        if (r->op == OP_FNA && r->dir == DIR_BWD) {
            /* out/lse from this backend's forward when it has one (else random) */
            call f = *c;
            f.dir = DIR_FWD;
            f.want = NULL;
            call_once(&f);
        }
    }
    if (!time_calls(c, t, r, is_gpu)) {
        fail_call(r, c, "timed run");
        r->median = -1;
        return;
    }
    if (!r->ran_on[0]) snprintf(r->ran_on, sizeof r->ran_on, "%s", c->ran);
    r->bytes = (double)job_bytes(c->j, c->j->in | c->j->out);
    r->mem = (long long)r->bytes + (r->scratch > 0 ? r->scratch : 0);
    if (!t->name[0]) snprintf(r->backend, sizeof r->backend, "auto>%.40s", c->ran);
    if (!is_gpu && opt.peak && peak1 > 0) {
        int th = p->threads > 0 ? p->threads : bench_cpu_count();
        double pk = th >= bench_cpu_count() ? peakn : peak1 * th;
        if (is_naive) pk = peak1; /* naive is one thread */
        r->peak_frac = r->flops / r->median * 1e-9 / pk;
    }
    if (is_gpu && gpu_bw > 0) r->bw_frac = r->bytes / r->median / gpu_bw;
    if (!r->status[0] && r->one_call)
        set_status(r, 0, "%s (1 call: the first took over --max-call %g s)", opt.verify ? "ok" : "ok, not verified",
                   opt.max_call);
    if (!r->status[0]) set_status(r, 0, opt.verify ? "ok" : "ok (not verified)");
}

/* One (problem, op, dir) on one target: a context forced to the backend, then
 * verify, then time. */
static void bench_one(int pi, bench_op op, bench_dir dir, const target *t, reference *R)
{
    const bench_problem *p = &problems[pi];
    int is_gpu = t->dev.type != kDLCPU;
    result *r = new_result();
    call c;
    job dj, tj;
    memset(&dj, 0, sizeof dj);
    memset(&tj, 0, sizeof tj);
    memset(&c, 0, sizeof c);
    r->problem = pi;
    r->op = op;
    r->dir = dir;
    snprintf(r->backend, sizeof r->backend, "%.40s", t->name[0] ? t->name : "auto");
    snprintf(r->device, sizeof r->device, "%s", t->devname);
    r->flops = bench_flops(p, op, dir);
    c.op = op;
    c.dir = dir;
    c.want = t->name[0] ? t->name : NULL;
    make_params(p, &c.np);
    if (natten_context_create(&c.ctx) != NATTEN_SUCCESS ||
        (c.want && natten_context_set_backend(c.ctx, c.want) != NATTEN_SUCCESS) ||
        (p->threads > 0 && natten_context_set_num_threads(c.ctx, p->threads) != NATTEN_SUCCESS) ||
        (is_gpu && natten_context_set_stream(c.ctx, gpu_stream(t->dev.id)) != NATTEN_SUCCESS)) {
        set_status(r, 1, "context: %s", natten_last_error());
    } else if (!opt.verify || verify_one(&c, t, R, &dj, r)) {
        time_one(&c, t, R, &dj, &tj, r);
    }
    job_free(&dj);
    job_free(&tj);
    natten_context_destroy(c.ctx);
}

/* ------------------------------------------------------------------ output */

static void fmt_time(double s, char *buf, size_t len)
{
    if (s < 0) snprintf(buf, len, "-");
    else if (s < 1e-3) snprintf(buf, len, "%.1f us", s * 1e6);
    else if (s < 1) snprintf(buf, len, "%.3f ms", s * 1e3);
    else snprintf(buf, len, "%.3f s", s);
}

static void fmt_rate(double v, const char *unit, char *buf, size_t len)
{
    if (v < 0 || !isfinite(v)) snprintf(buf, len, "-");
    else if (v >= 1e12) snprintf(buf, len, "%.1f T%s", v * 1e-12, unit);
    else if (v >= 1e9) snprintf(buf, len, "%.1f G%s", v * 1e-9, unit);
    else snprintf(buf, len, "%.1f M%s", v * 1e-6, unit);
}

static void fmt_bytes(long long b, char *buf, size_t len)
{
    if (b < 0) snprintf(buf, len, "-");
    else if (b >= 1LL << 30) snprintf(buf, len, "%.2f GiB", (double)b / (1 << 30));
    else if (b >= 1LL << 20) snprintf(buf, len, "%.1f MiB", (double)b / (1 << 20));
    else snprintf(buf, len, "%.1f KiB", (double)b / 1024);
}

/* The table: each problem's head, then each result's row as soon as it is
 * known (a run cut short by a timeout still shows what it finished). */
static void print_table_head(int pi)
{
    const bench_problem *p = &problems[pi];
    char desc[256];
    bench_problem_describe(p, desc, sizeof desc);
    printf("\n== %s%s%s\n", p->label[0] ? p->label : "", p->label[0] ? ": " : "", desc);
    if (!opt.verify) printf("   not verified (--no-verify)\n");
    printf("%-14s %-4s %-7s %11s %11s %11s %12s %11s %10s %9s %8s%s  %s\n", "backend", "op", "dir",
           "median", "min", "max", "FLOP/s", "GB/s", "memory", "max err", "vs naive",
           opt.peak ? "  %peak" : "", "status");
    fflush(stdout);
}

/* The smaller problem that stands in for a problem's (op, dir) in verification. */
static void print_table_verified_on(const bench_problem *v, bench_op op, bench_dir dir)
{
    char desc[256];
    bench_problem_describe(v, desc, sizeof desc);
    printf("   %s %s verified on a smaller problem of the same shape (the float64 naive reference is capped at "
           "%g s estimated and %.3g FLOP): %s\n", op_names[op], dir_names[dir], opt.verify_limit, opt.verify_flops,
           desc);
    fflush(stdout);
}

static void print_table_row(const result *r)
{
    char buf[12][64], name[80];
    fmt_time(r->median, buf[0], sizeof buf[0]);
    fmt_time(r->median < 0 ? -1 : r->min, buf[1], sizeof buf[1]);
    fmt_time(r->median < 0 ? -1 : r->max, buf[2], sizeof buf[2]);
    fmt_rate(r->median > 0 ? r->flops / r->median : -1, "FLOP/s", buf[3], sizeof buf[3]);
    fmt_rate(r->median > 0 ? r->bytes / r->median : -1, "B/s", buf[4], sizeof buf[4]);
    fmt_bytes(r->median > 0 ? r->mem : -1, buf[5], sizeof buf[5]);
    if (r->max_err < 0) snprintf(buf[6], sizeof buf[6], "-");
    else snprintf(buf[6], sizeof buf[6], "%.2e", r->max_err);
    if (r->speedup < 0) snprintf(buf[7], sizeof buf[7], "-");
    else snprintf(buf[7], sizeof buf[7], "%.1fx", r->speedup);
    if (r->peak_frac >= 0) snprintf(buf[8], sizeof buf[8], "%.1f%%", 100 * r->peak_frac);
    else if (r->bw_frac >= 0) snprintf(buf[8], sizeof buf[8], "%.0f%%bw", 100 * r->bw_frac);
    else snprintf(buf[8], sizeof buf[8], "-");
    snprintf(name, sizeof name, "%.50s%s%.20s", r->backend, strcmp(r->device, "cpu") ? "@" : "",
             strcmp(r->device, "cpu") ? r->device : "");
    printf("%-14s %-4s %-7s %11s %11s %11s %12s %11s %10s %9s %8s", name, op_names[r->op],
           dir_names[r->dir], buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7]);
    if (opt.peak) printf(" %7s", buf[8]);
    printf("  %s\n", r->status);
    fflush(stdout);
}

/* Machine-readable output goes to dst: stdout, or a --csv-out/--json-out file. */
static FILE *dst, *csv_file;

static void fputc_dst(int c) { fputc(c, dst); }

/* Problems that differ only in their thread count: print the scaling of each
 * backend, op and direction timed in both (issue 3's "2 threads >= 1.8x 1"). */
static int same_but_threads(const bench_problem *a, const bench_problem *b)
{
    bench_problem x = *a, y = *b;
    memset(x.label, 0, sizeof x.label);
    memset(y.label, 0, sizeof y.label);
    x.threads = y.threads = 0;
    x.ops = y.ops = 0;
    x.backward = y.backward = 0;
    return memcmp(&x, &y, sizeof x) == 0;
}

static void print_thread_scaling(void)
{
    int header = 0;
    for (int a = 0; a < nproblems; a++)
        for (int b = 0; b < nproblems; b++) {
            const bench_problem *pa = &problems[a], *pb = &problems[b];
            if (a == b || pa->threads <= 0 || pb->threads <= pa->threads || !same_but_threads(pa, pb))
                continue;
            for (int i = 0; i < nresults; i++) {
                const result *ra = &results[i];
                if (ra->problem != a || ra->median <= 0 || ra->failed) continue;
                for (int j = 0; j < nresults; j++) {
                    const result *rb = &results[j];
                    if (rb->problem != b || rb->median <= 0 || rb->failed || rb->op != ra->op ||
                        rb->dir != ra->dir || strcmp(rb->backend, ra->backend) != 0)
                        continue;
                    if (!header) {
                        printf("\nthread scaling (same problem, median times):\n");
                        header = 1;
                    }
                    printf("  %-12s %-4s %-7s %d thread%s %.2fx %d thread%s\n", ra->backend, op_names[ra->op],
                           dir_names[ra->dir], pb->threads, pb->threads > 1 ? "s" : "",
                           ra->median / rb->median, pa->threads, pa->threads > 1 ? "s" : "");
                }
            }
        }
}

static void csv_field(const char *s, int last)
{
    if (strpbrk(s, ",\"\n")) {
        fputc_dst('"');
        for (; *s; s++) {
            if (*s == '"') fputc_dst('"');
            fputc_dst(*s == '\n' ? ' ' : *s);
        }
        fputc_dst('"');
    } else {
        fputs(s, dst);
    }
    fputc_dst(last ? '\n' : ',');
}

static const char *csv_columns[] = {
    "label", "rank", "extent", "window", "dilation", "stride", "causal", "batch", "heads",
    "heads_kv", "dim", "dim_value", "dtype", "rpb", "threads", "backend", "ran_on", "device", "op",
    "dir", "runs", "median_ms", "min_ms", "max_ms", "flops", "gflops", "bytes", "gbps",
    "mem_bytes", "scratch_bytes", "max_err", "norm_err", "tol", "verified_on", "speedup_vs_naive",
    "peak_fraction", "bw_fraction", "status",
};
#define NCOLS (int)(sizeof csv_columns / sizeof csv_columns[0])

/* The fields of one result as strings, in csv_columns order; "" = none. */
static void result_fields(const result *r, char f[NCOLS][640])
{
    const bench_problem *p = &problems[r->problem];
    int k = 0;
#define PUT(...) snprintf(f[k++], 640, __VA_ARGS__)
#define NUM(ok, fmtv, v) do { if (ok) PUT(fmtv, v); else f[k++][0] = '\0'; } while (0)
    PUT("%s", p->label);
    PUT("%d", p->rank);
    bench_axes(p->S, NULL, p->rank, f[k++], 640);
    bench_axes(NULL, p->K, p->rank, f[k++], 640);
    bench_axes(NULL, p->dil, p->rank, f[k++], 640);
    bench_axes(NULL, p->str, p->rank, f[k++], 640);
    bench_axes(NULL, p->causal, p->rank, f[k++], 640);
    PUT("%lld", (long long)p->B);
    PUT("%lld", (long long)p->H);
    PUT("%lld", (long long)(r->op == OP_FNA ? p->Hkv : p->H));
    PUT("%lld", (long long)p->D);
    PUT("%lld", (long long)p->Dv);
    PUT("%s", p->dtype->name);
    PUT("%d", p->rpb);
    PUT("%d", p->threads);
    PUT("%s", r->backend);
    PUT("%s", r->ran_on);
    PUT("%s", r->device);
    PUT("%s", op_names[r->op]);
    PUT("%s", dir_names[r->dir]);
    PUT("%d", r->runs);
    NUM(r->median >= 0, "%.6g", r->median * 1e3);
    NUM(r->median >= 0, "%.6g", r->min * 1e3);
    NUM(r->median >= 0, "%.6g", r->max * 1e3);
    PUT("%.6g", r->flops);
    NUM(r->median > 0, "%.6g", r->flops / r->median * 1e-9);
    NUM(r->median >= 0, "%.6g", r->bytes);
    NUM(r->median > 0, "%.6g", r->bytes / r->median * 1e-9);
    NUM(r->median >= 0, "%lld", r->mem);
    NUM(r->scratch >= 0, "%lld", r->scratch);
    NUM(r->max_err >= 0, "%.6g", r->max_err);
    NUM(r->max_err >= 0, "%.6g", r->norm_err);
    NUM(r->max_err >= 0, "%.6g", r->tol);
    PUT("%s", r->verified_on);
    NUM(r->speedup >= 0, "%.6g", r->speedup);
    NUM(r->peak_frac >= 0, "%.6g", r->peak_frac);
    NUM(r->bw_frac >= 0, "%.6g", r->bw_frac);
    PUT("%s", r->status);
#undef PUT
#undef NUM
}

static void print_csv_header(void)
{
    for (int c = 0; c < NCOLS; c++) csv_field(csv_columns[c], c == NCOLS - 1);
    fflush(dst);
}

/* One result's CSV row to dst, flushed: written as soon as it is known. */
static void print_csv_row(const result *r)
{
    static char f[NCOLS][640];
    result_fields(r, f);
    for (int c = 0; c < NCOLS; c++) csv_field(f[c], c == NCOLS - 1);
    fflush(dst);
}

static void json_string(const char *s)
{
    fputc_dst('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(dst, "\\%c", ch);
        else if (ch < 0x20) fprintf(dst, "\\u%04x", ch);
        else fputc_dst(ch);
    }
    fputc_dst('"');
}

/* Columns that are numbers in JSON (the rest are strings; empty = null). */
static int json_numeric(int c)
{
    static const char *text[] = {"label", "extent", "window", "dilation", "stride", "causal",
                                 "dtype", "backend", "ran_on", "device", "op", "dir",
                                 "verified_on", "status"};
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
        if (strcmp(csv_columns[c], text[i]) == 0) return 0;
    return 1;
}

static void print_json(const char *date, const char *gpu)
{
    static char f[NCOLS][640];
    fprintf(dst, "{\n  \"tool\": \"natten-bench\",\n  \"library\": ");
    json_string(natten_version_string());
    fprintf(dst, ",\n  \"date\": ");
    json_string(date);
    fprintf(dst, ",\n  \"suite\": ");
    if (opt.suite) json_string(opt.suite);
    else fprintf(dst, "null");
    fprintf(dst, ",\n  \"quick\": %s", opt.quick ? "true" : "false");
    fprintf(dst, ",\n  \"command\": ");
    json_string(command_line);
    fprintf(dst, ",\n  \"cpu\": ");
    json_string(cpu_model);
    fprintf(dst, ",\n  \"cpus\": %d,\n  \"gpu\": ", bench_cpu_count());
    if (gpu) json_string(gpu);
    else fprintf(dst, "null");
    fprintf(dst, ",\n  \"peak_gflops_1_thread\": ");
    if (peak1 > 0) fprintf(dst, "%.6g", peak1); else fprintf(dst, "null");
    fprintf(dst, ",\n  \"peak_gflops_all_threads\": ");
    if (peakn > 0) fprintf(dst, "%.6g", peakn); else fprintf(dst, "null");
    fprintf(dst, ",\n  \"gpu_copy_gbps\": ");
    if (gpu_bw > 0) fprintf(dst, "%.6g", gpu_bw * 1e-9);
    else fprintf(dst, "null");
    fprintf(dst, ",\n  \"loadavg\": ");
    if (loadavg >= 0) fprintf(dst, "%.2f", loadavg);
    else fprintf(dst, "null");
    fprintf(dst, ",\n  \"failed\": %s,\n  \"results\": [", any_failed ? "true" : "false");
    for (int i = 0; i < nresults; i++) {
        result_fields(&results[i], f);
        fprintf(dst, "%s\n    {", i ? "," : "");
        for (int c = 0; c < NCOLS; c++) {
            fprintf(dst, "%s\"%s\": ", c ? ", " : "", csv_columns[c]);
            if (json_numeric(c)) fputs(f[c][0] ? f[c] : "null", dst);
            else json_string(f[c]);
        }
        fprintf(dst, "}");
    }
    fprintf(dst, "\n  ]\n}\n");
}

static void json_axes(const char *key, const int64_t *v64, const int *v, int rank)
{
    fprintf(dst, "\"%s\": [", key);
    for (int i = 0; i < rank; i++)
        fprintf(dst, "%s%lld", i ? ", " : "", v64 ? (long long)v64[i] : (long long)v[i]);
    fprintf(dst, "]");
}

/* --dry-run: the problem list, as text or (--json) as data for bench/peers.py. */
static void print_problems(void)
{
    dst = stdout;
    if (opt.format != OUT_JSON) {
        for (int i = 0; i < nproblems; i++) {
            char desc[256], ops[32] = "";
            bench_problem_describe(&problems[i], desc, sizeof desc);
            for (int o = 0; o < OP_COUNT; o++)
                if (problems[i].ops & (1u << o))
                    snprintf(ops + strlen(ops), sizeof ops - strlen(ops), "%s%s", ops[0] ? "," : "",
                             op_names[o]);
            printf("%-22s %s; ops %s%s\n", problems[i].label[0] ? problems[i].label : "-", desc, ops,
                   problems[i].backward ? " (+backward)" : "");
        }
        return;
    }
    printf("{\"problems\": [");
    for (int i = 0; i < nproblems; i++) {
        const bench_problem *p = &problems[i];
        int first = 1;
        printf("%s\n  {\"label\": ", i ? "," : "");
        json_string(p->label);
        printf(", \"rank\": %d, ", p->rank);
        json_axes("extent", p->S, NULL, p->rank);
        printf(", ");
        json_axes("window", NULL, p->K, p->rank);
        printf(", ");
        json_axes("dilation", NULL, p->dil, p->rank);
        printf(", ");
        json_axes("stride", NULL, p->str, p->rank);
        printf(", ");
        json_axes("causal", NULL, p->causal, p->rank);
        printf(", \"batch\": %lld, \"heads\": %lld, \"heads_kv\": %lld, \"dim\": %lld, "
               "\"dim_value\": %lld, \"dtype\": \"%s\", \"rpb\": %d, \"threads\": %d, "
               "\"backward\": %d, \"ops\": [",
               (long long)p->B, (long long)p->H, (long long)p->Hkv, (long long)p->D, (long long)p->Dv,
               p->dtype->name, p->rpb, p->threads, p->backward);
        for (int o = 0; o < OP_COUNT; o++)
            if (p->ops & (1u << o)) {
                printf("%s\"%s\"", first ? "" : ", ", op_names[o]);
                first = 0;
            }
        printf("]}");
    }
    printf("\n]}\n");
}

/* ------------------------------------------------------------------- main */

static void list_backends(void)
{
    int n = natten_backend_count();
    printf("%s\n", natten_version_string());
    for (int i = 0; i < n; i++) {
        natten_backend_info info;
        if (natten_backend_get_info(i, &info) != NATTEN_SUCCESS) continue;
        printf("  %-12s %-5s %s\n", info.name, info.device_type == kDLCPU ? "cpu" : "gpu",
               info.available ? "available" : info.reason ? info.reason : "unavailable");
    }
    {
        /* the bench's own CUDA path: runtime, devices, one device-to-device copy */
        char why[256];
        if (!gpu_load(why, sizeof why)) {
            printf("bench CUDA memory: none (%s)\n", why);
        } else {
            printf("bench CUDA memory: %s\n", gpu_runtime());
            for (int d = 0; d < gpu_device_count(); d++) {
                double bw = gpu_copy_bandwidth(d);
                printf("  cuda:%d  %s", d, gpu_device_name(d));
                if (bw > 0) printf(", device-to-device copy %.0f GB/s\n", bw * 1e-9);
                else printf(", copy test failed: %s\n", gpu_error());
            }
        }
    }
}

/* ------------------------------------------------------------------- tune */

/* --tune FILE: run each problem once through a context in measure mode (the
 * library times the candidates), print its report, export the wisdom. */
static int tune(void)
{
    natten_context *ctx;
    bench_device where = {kDLCPU, 0};
    char why[256], prev[512] = "";
    int failed = 0, measured = 0;
    if (strncmp(opt.device, "cuda", 4) == 0) {
        where.type = kDLCUDA;
        if (opt.device[4] == ':') where.id = atoi(opt.device + 5);
        if (!gpu_load(why, sizeof why)) {
            fprintf(stderr, "natten-bench: --tune on %s: %s\n", opt.device, why);
            return 1;
        }
    }
    if (natten_context_create(&ctx) != NATTEN_SUCCESS ||
        natten_context_set_tuning(ctx, NATTEN_TUNING_MEASURE) != NATTEN_SUCCESS ||
        (where.type == kDLCUDA && natten_context_set_stream(ctx, gpu_stream(where.id)) != NATTEN_SUCCESS)) {
        fprintf(stderr, "natten-bench: context: %s\n", natten_last_error());
        return 1;
    }
    if (access(opt.tune, F_OK) == 0) {
        if (natten_wisdom_import(ctx, opt.tune) == NATTEN_SUCCESS)
            printf("natten-bench: merging with the wisdom in %s\n", opt.tune);
        else
            printf("natten-bench: %s is not usable here and will be replaced: %s\n", opt.tune, natten_last_error());
    }
    printf("natten-bench --tune: %s | %s\n", natten_version_string(), where.type == kDLCPU ? "cpu" : opt.device);
    for (int pi = 0; pi < nproblems; pi++) {
        const bench_problem *p = &problems[pi];
        char desc[256];
        bench_problem_describe(p, desc, sizeof desc);
        for (int o = 0; o < OP_COUNT; o++) {
            if (!(p->ops & (1u << o))) continue;
            for (int d = 0; d < (p->backward ? 2 : 1); d++) {
                natten_tuning_result res[MAX_CANDIDATES];
                natten_params np;
                natten_status st;
                job j;
                char sig[512] = "";
                int n = 0;
                make_params(p, &np);
                natten_context_set_num_threads(ctx, p->threads);
                if (!job_alloc(&j, p, (bench_op)o, d ? DIR_BWD : DIR_FWD, p->dtype, where)) {
                    printf("%s %s %s: cannot allocate the tensors\n", desc, op_names[o], dir_names[d]);
                    failed = 1;
                    continue;
                }
                job_fill_inputs(&j, p, opt.seed);
                for (int r = 0; r < T_COUNT; r++)
                    if (j.t[r]) bt_upload(j.t[r]);
                st = run_dir(ctx, &np, &j, (bench_op)o, d);
                if (st != NATTEN_SUCCESS) {
                    printf("%s %s %s: %s: %s\n", desc, op_names[o], dir_names[d], natten_status_string(st),
                           natten_last_error());
                    failed = 1;
                } else if (natten_context_tuning_report(ctx, res, MAX_CANDIDATES, &n, sig, sizeof sig) != NATTEN_SUCCESS ||
                           strcmp(sig, prev) == 0) {
                    printf("%s %s %s: %s (remembered)\n", desc, op_names[o], dir_names[d],
                           natten_context_last_backend(ctx));
                } else {
                    printf("%s %s %s:\n", desc, op_names[o], dir_names[d]);
                    for (int i = 0; i < n && i < MAX_CANDIDATES; i++) {
                        char how[200];
                        if (res[i].status != NATTEN_SUCCESS) {
                            printf("    %-10s %-16s %s\n", res[i].backend, res[i].config, res[i].reason);
                            continue;
                        }
                        if (res[i].pruned) snprintf(how, sizeof how, "%s", res[i].reason);
                        else if (res[i].runs == 1) snprintf(how, sizeof how, "1 run");
                        else snprintf(how, sizeof how, "median of %d runs", res[i].runs);
                        printf("  %s%-10s %-16s %12.4f ms  %s\n", i ? "  " : "* ", res[i].backend, res[i].config,
                               res[i].time_ms, how);
                    }
                    snprintf(prev, sizeof prev, "%s", sig);
                    measured++;
                }
                job_free(&j);
            }
        }
    }
    if (natten_wisdom_export(ctx, opt.tune) != NATTEN_SUCCESS) {
        fprintf(stderr, "natten-bench: %s\n", natten_last_error());
        failed = 1;
    } else {
        printf("natten-bench: %d problems measured; wisdom written to %s (use NATTEN_WISDOM=%s)\n", measured,
               opt.tune, opt.tune);
    }
    natten_context_destroy(ctx);
    return failed;
}

/* ------------------------------------------------------------- tune check */

#define CHECK_TOL 1.05   /* issue 4: the pick within 5 % of the fastest candidate */
#define CHECK_SKIP 10.0  /* without --check-all: not timed again if the tuner saw > 10x its best */

typedef struct check_row {
    char backend[64], config[64];
    double tuner_ms;        /* the tuner's time (median, or the single run of a pruned one) */
    int tuner_runs, pruned;
    double ms;              /* this check's own median; < 0: not timed */
    int runs;
    char note[200];
} check_row;

static FILE *check_csv;

static void check_csv_row(const bench_problem *p, const char *op, const char *dir, const check_row *c,
                          int chosen, int fastest, double ratio, const char *verdict)
{
    char desc[256];
    if (check_csv == NULL) return;
    bench_problem_describe(p, desc, sizeof desc);
    dst = check_csv;
    csv_field(p->label, 0);
    csv_field(desc, 0);
    csv_field(op, 0);
    csv_field(dir, 0);
    csv_field(c ? c->backend : "", 0);
    csv_field(c ? c->config : "", 0);
    fprintf(check_csv, "%.6g,%d,%d,", c ? c->tuner_ms : -1, c ? c->tuner_runs : 0, c ? c->pruned : 0);
    fprintf(check_csv, "%.6g,%d,%d,%d,%.6g,", c ? c->ms : -1, c ? c->runs : 0, chosen, fastest, ratio);
    csv_field(verdict, 0);
    csv_field(c ? c->note : "", 1);
}

/* Time backend/config on job j on its own: a context forced to it, the bench's timing. */
static void check_time(check_row *c, const bench_problem *p, bench_op op, bench_dir dir, job *j, bench_device where)
{
    char name[160];
    call k;
    result r;
    target t;
    memset(&k, 0, sizeof k);
    memset(&r, 0, sizeof r);
    memset(&t, 0, sizeof t);
    t.dev = where;
    snprintf(name, sizeof name, "%s/%s", c->backend, c->config);
    k.op = op;
    k.dir = dir;
    k.want = c->backend;
    k.j = j;
    make_params(p, &k.np);
    c->ms = -1;
    if (natten_context_create(&k.ctx) != NATTEN_SUCCESS || natten_context_set_backend(k.ctx, name) != NATTEN_SUCCESS ||
        (p->threads > 0 && natten_context_set_num_threads(k.ctx, p->threads) != NATTEN_SUCCESS) ||
        (where.type == kDLCUDA && natten_context_set_stream(k.ctx, gpu_stream(where.id)) != NATTEN_SUCCESS)) {
        snprintf(c->note, sizeof c->note, "context: %.180s", natten_last_error());
    } else if (!time_calls(&k, &t, &r, where.type != kDLCPU)) {
        snprintf(c->note, sizeof c->note, "%.180s", k.st ? k.err : "ran on another backend");
    } else {
        c->ms = r.median * 1e3;
        c->runs = r.runs;
        if (r.one_call) snprintf(c->note, sizeof c->note, "1 call (over --max-call)");
    }
    natten_context_destroy(k.ctx);
}

/* --tune-check: for each problem, op and direction, let a fresh context in
 * measure mode pick, then time the pick and every candidate on its own and
 * compare: PASS when the pick's time is within 5 % of the fastest's. */
static int tune_check(void)
{
    bench_device where = {kDLCPU, 0};
    char why[256];
    int pass = 0, fail = 0, other = 0;
    if (strncmp(opt.device, "cuda", 4) == 0) {
        where.type = kDLCUDA;
        if (opt.device[4] == ':') where.id = atoi(opt.device + 5);
        if (!gpu_load(why, sizeof why)) {
            fprintf(stderr, "natten-bench: --tune-check on %s: %s\n", opt.device, why);
            return 1;
        }
    }
    if (opt.csv_out && (check_csv = fopen(opt.csv_out, "w")) == NULL) {
        perror(opt.csv_out);
        return 1;
    }
    if (opt.format == OUT_CSV) check_csv = stdout;
    if (check_csv)
        fprintf(check_csv, "label,problem,op,dir,backend,config,tuner_ms,tuner_runs,pruned,check_ms,check_runs,"
                           "chosen,fastest,ratio,verdict,note\n");
    if (opt.format != OUT_CSV)
        printf("natten-bench --tune-check: %s | %s | pick within %.0f %% of the fastest candidate, each timed on "
               "its own (median)\n", natten_version_string(), where.type == kDLCPU ? "cpu" : opt.device,
               (CHECK_TOL - 1) * 100);
    for (int pi = 0; pi < nproblems; pi++) {
        const bench_problem *p = &problems[pi];
        char desc[256];
        bench_problem_describe(p, desc, sizeof desc);
        for (int o = 0; o < OP_COUNT; o++) {
            double pick_ms[2] = {-1, -1}, best_ms[2] = {-1, -1};
            if (!(p->ops & (1u << o))) continue;
            for (int d = 0; d < (p->backward ? 2 : 1); d++) {
                bench_dir dir = d ? DIR_BWD : DIR_FWD;
                natten_tuning_result res[MAX_CANDIDATES];
                check_row rows[MAX_CANDIDATES];
                natten_context *ctx = NULL;
                natten_params np;
                natten_status st;
                job j;
                int n = 0, nrows = 0, fastest = -1;
                double ratio = -1;
                const char *verdict;
                make_params(p, &np);
                if (!job_alloc(&j, p, (bench_op)o, dir, p->dtype, where)) {
                    printf("%s %s %s: cannot allocate the tensors\n", desc, op_names[o], dir_names[dir]);
                    other++;
                    continue;
                }
                job_fill_inputs(&j, p, opt.seed);
                for (int r = 0; r < T_COUNT; r++)
                    if (j.t[r]) bt_upload(j.t[r]);
                if (natten_context_create(&ctx) != NATTEN_SUCCESS ||
                    natten_context_set_tuning(ctx, NATTEN_TUNING_MEASURE) != NATTEN_SUCCESS ||
                    (p->threads > 0 && natten_context_set_num_threads(ctx, p->threads) != NATTEN_SUCCESS) ||
                    (where.type == kDLCUDA &&
                     natten_context_set_stream(ctx, gpu_stream(where.id)) != NATTEN_SUCCESS) ||
                    (st = run_dir(ctx, &np, &j, (bench_op)o, d)) != NATTEN_SUCCESS ||
                    natten_context_tuning_report(ctx, res, MAX_CANDIDATES, &n, NULL, 0) != NATTEN_SUCCESS) {
                    printf("%s %s %s: tuning failed: %s\n", desc, op_names[o], dir_names[dir], natten_last_error());
                    natten_context_destroy(ctx);
                    job_free(&j);
                    other++;
                    continue;
                }
                natten_context_destroy(ctx);
                if (n > MAX_CANDIDATES)
                    printf("%s %s %s: %d candidates, checking the first %d\n", desc, op_names[o], dir_names[dir], n,
                           MAX_CANDIDATES);
                /* each row as soon as it is timed (the fastest is named at the end) */
                if (opt.format != OUT_CSV) {
                    printf("\n== %s%s%s %s %s\n", p->label[0] ? p->label : "", p->label[0] ? ": " : "", desc,
                           op_names[o], dir_names[dir]);
                    printf("   %-12s %-20s %12s %-28s %12s %6s  %s\n", "backend", "config", "tuner ms", "(tuner)",
                           "own ms", "runs", "");
                }
                for (int i = 0; i < n && i < MAX_CANDIDATES; i++) {
                    check_row *c = &rows[nrows];
                    if (res[i].status != NATTEN_SUCCESS) continue;
                    memset(c, 0, sizeof *c);
                    snprintf(c->backend, sizeof c->backend, "%s", res[i].backend);
                    snprintf(c->config, sizeof c->config, "%s", res[i].config);
                    c->tuner_ms = res[i].time_ms;
                    c->tuner_runs = res[i].runs;
                    c->pruned = res[i].pruned;
                    c->ms = -1;
                    nrows++;
                    if (!opt.check_all && i > 0 && res[i].time_ms > CHECK_SKIP * res[0].time_ms) {
                        snprintf(c->note, sizeof c->note, "not timed again: the tuner saw %.0fx its best "
                                 "(--check-all times it)", res[i].time_ms / res[0].time_ms);
                    } else {
                        check_time(c, p, (bench_op)o, dir, &j, where);
                        if (c->ms >= 0 && (fastest < 0 || c->ms < rows[fastest].ms)) fastest = nrows - 1;
                    }
                    if (opt.format != OUT_CSV) {
                        char tun[64], own[32];
                        snprintf(tun, sizeof tun, "%s%d run%s", c->pruned ? "pruned, " : "", c->tuner_runs,
                                 c->tuner_runs == 1 ? "" : "s");
                        if (c->ms >= 0) snprintf(own, sizeof own, "%.4f", c->ms);
                        else snprintf(own, sizeof own, "-");
                        printf(" %s %-12s %-20s %12.4f %-28s %12s %6d  %s\n", nrows == 1 ? "*" : " ", c->backend,
                               c->config, c->tuner_ms, tun, own, c->runs, c->note);
                    }
                }
                job_free(&j);
                /* rows[0] is the tuner's pick (its report is fastest first) */
                if (nrows == 0 || rows[0].ms < 0 || fastest < 0) {
                    verdict = "NO TIME";
                    other++;
                } else {
                    ratio = rows[0].ms / rows[fastest].ms;
                    verdict = ratio <= CHECK_TOL ? "PASS" : "FAIL";
                    if (ratio <= CHECK_TOL) pass++;
                    else fail++;
                    pick_ms[d] = rows[0].ms;
                    best_ms[d] = rows[fastest].ms;
                }
                if (opt.format != OUT_CSV) {
                    if (ratio > 0)
                        printf("   pick %s/%s %.4f ms, fastest %s/%s %.4f ms: ratio %.3f %s\n", rows[0].backend,
                               rows[0].config, rows[0].ms, rows[fastest].backend, rows[fastest].config,
                               rows[fastest].ms, ratio, verdict);
                    else
                        printf("   %s: the pick could not be timed on its own\n", verdict);
                }
                /* the CSV rows carry the group's verdict: written when it is known, flushed */
                for (int i = 0; i < nrows; i++)
                    check_csv_row(p, op_names[o], dir_names[dir], &rows[i], i == 0, i == fastest, ratio, verdict);
                if (check_csv) fflush(check_csv);
            }
            /* forward + backward of the fused op: the two picks against the two fastest */
            if (o == OP_FNA && p->backward && pick_ms[0] > 0 && pick_ms[1] > 0) {
                double ratio = (pick_ms[0] + pick_ms[1]) / (best_ms[0] + best_ms[1]);
                const char *verdict = ratio <= CHECK_TOL ? "PASS" : "FAIL";
                if (opt.format != OUT_CSV)
                    printf("\n== %s%s%s fna fwd+bwd\n   picks %.4f + %.4f ms, fastest %.4f + %.4f ms: ratio %.3f %s\n",
                           p->label[0] ? p->label : "", p->label[0] ? ": " : "", desc, pick_ms[0], pick_ms[1],
                           best_ms[0], best_ms[1], ratio, verdict);
                if (ratio <= CHECK_TOL) pass++;
                else fail++;
                check_csv_row(p, "fna", "fwd+bwd", NULL, 0, 0, ratio, verdict);
                if (check_csv) fflush(check_csv);
            }
        }
    }
    if (opt.format != OUT_CSV)
        printf("\nnatten-bench --tune-check: %d PASS, %d FAIL, %d not checked (errors)\n", pass, fail, other);
    if (check_csv && check_csv != stdout) fclose(check_csv);
    dst = stdout;
    return fail || other ? 1 : 0;
}

int main(int argc, char **argv)
{
    char date[64], header[512];
    const char *gpu_name = NULL;
    time_t now = time(NULL);
    size_t used = 0;
    int total = 0;

    for (int i = 0; i < argc && used < sizeof command_line; i++) {
        int n = snprintf(command_line + used, sizeof command_line - used, "%s%s", i ? " " : "",
                         i == 0 ? "natten-bench" : argv[i]);
        if (n < 0) break;
        used += (size_t)n;
    }
    /* every line as soon as it is printed, also into a file or a pipe: a run
     * cut by a timeout keeps what it finished */
    setvbuf(stdout, NULL, _IOLBF, 0);
    parse_args(argc, argv);
    if (opt.suite && strcmp(opt.suite, "--list") == 0) {
        list_backends();
        return 0;
    }
    if (opt.suite) {
        nproblems = bench_suite(opt.suite, opt.quick, problems, MAX_PROBLEMS);
        if (nproblems < 0) die_usage("--suite: unknown suite '%s' (%s)", opt.suite, bench_suite_names());
        for (int i = 0; i < nproblems; i++) {
            if (opt.dtype_set) problems[i].dtype = opt.base.dtype;
            if (problems[i].threads == 0) problems[i].threads = opt.threads;
        }
    } else {
        if (opt.quick) die_usage("--quick needs --suite");
        problems[0] = opt.base;
        nproblems = 1;
    }
    for (int i = 0; i < nproblems; i++)
        if (bench_misalign % problems[i].dtype->size)
            die_usage("--misalign: %zu is not a multiple of the %s element size (%zu bytes)", bench_misalign,
                      problems[i].dtype->name, problems[i].dtype->size);
    if (opt.dry_run) {
        print_problems();
        return 0;
    }
    if (opt.tune && opt.tune_check) die_usage("--tune and --tune-check do not go together");
    if (opt.check_all && !opt.tune_check) die_usage("--check-all needs --tune-check");
    if (opt.tune) return tune();
    if (opt.tune_check) return tune_check();
    pick_targets();
    bench_cpu_model(cpu_model, sizeof cpu_model);
    for (int i = 0; i < ntargets; i++)
        if (targets[i].dev.type == kDLCUDA && gpu_name == NULL) gpu_name = gpu_device_name(targets[i].dev.id);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", localtime(&now));
    progress_on = isatty(2);

    if (opt.peak) {
        if (progress_on) fprintf(stderr, "measuring the fp32 FMA peak...");
        peak1 = bench_peak_gflops(1, 0.5);
        peakn = bench_cpu_count() > 1 ? bench_peak_gflops(bench_cpu_count(), 0.5) : peak1;
        for (int i = 0; i < ntargets; i++)
            if (targets[i].dev.type == kDLCUDA && gpu_bw <= 0) gpu_bw = gpu_copy_bandwidth(targets[i].dev.id);
        progress_clear();
    }
    {
        FILE *f = fopen("/proc/loadavg", "r");
        if (f != NULL) {
            if (fscanf(f, "%lf", &loadavg) != 1) loadavg = -1;
            fclose(f);
        }
    }
    snprintf(header, sizeof header, "%s | %s (%d CPUs, load %.2f)%s%s | %s", natten_version_string(),
             cpu_model, bench_cpu_count(), loadavg, gpu_name ? " | " : "", gpu_name ? gpu_name : "", date);
    if (opt.format == OUT_TABLE) {
        printf("natten-bench: %s\n", header);
        if (opt.peak)
            printf("fp32 FMA peak (%s): %.1f GFLOP/s on 1 thread, %.1f GFLOP/s on %d threads\n",
                   bench_peak_isa(), peak1, peakn, bench_cpu_count());
        if (bench_misalign) { /* what bt_new gives, measured on one */
            int64_t one = 1;
            bench_tensor *x = bt_new(1, &one, problems[0].dtype, (bench_device){kDLCPU, 0});
            if (x != NULL)
                printf("host tensors: %u bytes past a 256-byte boundary (--misalign)\n",
                       (unsigned)((uintptr_t)x->host % 256));
            bt_free(x);
        }
        if (gpu_bw > 0)
            printf("GPU device-to-device copy: %.0f GB/s (%%bw: a GPU result's GB/s over it)\n",
                   gpu_bw * 1e-9);
        if (loadavg > bench_cpu_count())
            printf("warning: load average %.1f on %d CPUs: other work competes with this run, so CPU\n"
                   "         medians are inflated (multithreaded ones most); compare min, or rerun when idle\n",
                   loadavg, bench_cpu_count());
        printf("times: median/min/max of timed runs (CPU: clock_gettime, GPU: CUDA events); "
               "FLOP/s: 2 per multiply-add, windows counted as prod(K)\n");
    }

    for (int pi = 0; pi < nproblems; pi++)
        for (int o = 0; o < OP_COUNT; o++)
            if (problems[pi].ops & (1u << o))
                total += (problems[pi].backward ? 3 : 1) * ntargets;
    progress_total = total;

    /* Rows go out as soon as they are known (table, CSV on stdout and in
     * --csv-out, each flushed), so that a run cut by a timeout keeps what it
     * finished; JSON is one document and is written at the end. */
    if (opt.csv_out && (csv_file = fopen(opt.csv_out, "w")) == NULL) {
        perror(opt.csv_out);
        return 1;
    }
    if (csv_file) {
        dst = csv_file;
        print_csv_header();
    }
    if (opt.format == OUT_CSV) {
        dst = stdout;
        print_csv_header();
    }
    for (int pi = 0; pi < nproblems; pi++) {
        const bench_problem *p = &problems[pi];
        if (opt.format == OUT_TABLE) print_table_head(pi);
        for (int o = 0; o < OP_COUNT; o++) {
            if (!(p->ops & (1u << o))) continue;
            for (int d = 0; d < (p->backward ? DIR_COUNT : 1); d++) {
                reference R;
                int first = nresults, shown = nresults;
                char what[128];
                snprintf(what, sizeof what, "%.47s %s %s: reference", p->label[0] ? p->label : "problem",
                         op_names[o], dir_names[d]);
                progress(what);
                if (opt.verify) reference_build(&R, p, (bench_op)o, (bench_dir)d);
                else memset(&R, 0, sizeof R);
                if (opt.verify && R.shrunk && opt.format == OUT_TABLE) {
                    progress_clear();
                    print_table_verified_on(&R.vp, (bench_op)o, (bench_dir)d);
                }
                for (int t = 0; t < ntargets; t++) {
                    snprintf(what, sizeof what, "%.47s %s %s: %.40s", p->label[0] ? p->label : "problem",
                             op_names[o], dir_names[d], targets[t].name[0] ? targets[t].name : "auto");
                    progress(what);
                    bench_one(pi, (bench_op)o, (bench_dir)d, &targets[t], &R);
                    progress_done++;
                    /* speedup vs naive (same problem, op, direction): rows wait for naive's time */
                    if (naive_index >= 0 && t < naive_index) continue;
                    if (naive_index >= 0) {
                        double naive = results[first + naive_index].median;
                        for (int i = shown; i < nresults; i++)
                            if (naive > 0 && results[i].median > 0) results[i].speedup = naive / results[i].median;
                    }
                    progress_clear();
                    for (; shown < nresults; shown++) {
                        if (opt.format == OUT_TABLE) print_table_row(&results[shown]);
                        if (opt.format == OUT_CSV) {
                            dst = stdout;
                            print_csv_row(&results[shown]);
                        }
                        if (csv_file) {
                            dst = csv_file;
                            print_csv_row(&results[shown]);
                        }
                    }
                }
                reference_free(&R);
            }
        }
        progress_clear();
    }
    dst = stdout;
    if (opt.format == OUT_JSON) print_json(date, gpu_name);
    if (csv_file) fclose(csv_file);
    if (opt.json_out) {
        if ((dst = fopen(opt.json_out, "w")) == NULL) {
            perror(opt.json_out);
            return 1;
        }
        print_json(date, gpu_name);
        fclose(dst);
    }
    if (opt.format == OUT_TABLE) print_thread_scaling();
    if (opt.format == OUT_TABLE && any_failed)
        printf("\nnatten-bench: some results FAILED (see status); exit status 1\n");
    free(results);
    return any_failed ? 1 : 0;
}
