/*
 * natten-info - what this build of libnatten contains, what can run here, and
 * (--explain) which backend would run a given problem and why the others
 * refuse.  --explain takes natten-bench's problem flags and allocates nothing:
 * it describes the tensors by shape only (natten_explain).
 */
#include <natten.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *device_name(DLDeviceType t)
{
    return t == kDLCPU ? "cpu" : t == kDLCUDA ? "cuda" : t == kDLROCM ? "rocm" : "?";
}

static int table(void)
{
    int n = natten_backend_count();
    printf("%s\n\n", natten_version_string());
    printf("%-12s %-6s %-10s %s\n", "backend", "device", "available", "description / reason");
    for (int i = 0; i < n; i++) {
        natten_backend_info info;
        if (natten_backend_get_info(i, &info) != NATTEN_SUCCESS) {
            fprintf(stderr, "natten-info: %s\n", natten_last_error());
            return 1;
        }
        printf("%-12s %-6s %-10s %s\n", info.name, device_name(info.device_type),
               info.available ? "yes" : "no", info.available ? info.description : info.reason);
    }
    return 0;
}

/* ---- --explain ------------------------------------------------------------- */

typedef struct problem {
    natten_op op;
    int rank;
    int64_t batch, heads, heads_kv, dim, dim_v, extent[3];
    int kernel[3], dilation[3], stride[3], causal[3];
    int rpb, lse, heads_first;
    DLDataType dtype;
    DLDevice device;
    const char *backend;
    int measure;
} problem;

static const char *const op_names[NATTEN_OP_COUNT] = {"qk_forward", "qk_backward", "av_forward",
                                                      "av_backward", "fna_forward", "fna_backward"};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: natten-info                 the backend table\n"
            "       natten-info --explain [problem flags]\n"
            "Which backend would run the problem, and why each other refuses; nothing is\n"
            "allocated or run.  Problem flags as natten-bench (per-axis flags take one value\n"
            "or one per axis, as separate words or joined by ',' or 'x'):\n"
            "  -i, --input-size S..   extents; the count sets the rank (default 56 56)\n"
            "  -w, --window K..       window (default 7)\n"
            "  -b, --batch N  -n, --heads N  --heads-kv N  -d, --dim N  --dim-value N\n"
            "      --dilation d..  --stride s..  --causal [0|1..] (alone: every axis)\n"
            "      --dtype float32|float64|float16|bfloat16   --device cpu|cuda:N|rocm:N\n"
            "      --op fna|qk|av (or fna_forward, qk_backward, ...)  --backward\n"
            "      --rpb  --lse  --heads-first (token tensors stored [B, H, S.., D])\n"
            "      --backend NAME     force a backend (as NATTEN_BACKEND)\n"
            "      --measure          measured selection (as NATTEN_TUNING=measure)\n"
            "Exit status: 0 a backend would run it; 1 none would, or the request is invalid;\n"
            "2 bad usage.\n");
}

static void bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "natten-info: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    usage(stderr);
    exit(2);
}

static int is_list_word(const char *s)
{
    if (s == NULL || *s < '0' || *s > '9') return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || *s == ',' || *s == 'x')) return 0;
    return 1;
}

/* The values after a per-axis flag: following words while numeric, each
 * possibly "a,b" or "axb".  Returns the count (1..3). */
static int take_list(int argc, char **argv, int *i, const char *flag, long long *v)
{
    int n = 0;
    while (*i + 1 < argc && is_list_word(argv[*i + 1])) {
        const char *s = argv[++*i];
        char *end;
        do {
            if (n == 3) bad_usage("%s: at most 3 values", flag);
            v[n++] = strtoll(s, &end, 10);
            if (end == s) bad_usage("%s: not a list of integers", flag);
            s = *end ? end + 1 : end;
        } while (*end);
    }
    if (n == 0) bad_usage("%s needs at least one value", flag);
    return n;
}

static void axes(const char *flag, const long long *v, int n, int rank, int *dst)
{
    if (n == 0) return;
    if (n != 1 && n != rank) bad_usage("%s: give one value or one per axis of -i", flag);
    for (int i = 0; i < 3; i++) dst[i] = (int)v[n == 1 || i >= n ? 0 : i];
}

static int parse_dtype(const char *s, DLDataType *t)
{
    static const struct { const char *name; uint8_t code, bits; } d[] = {
        {"float32", kDLFloat, 32}, {"float64", kDLFloat, 64}, {"float16", kDLFloat, 16}, {"bfloat16", kDLBfloat, 16}};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        if (strcmp(s, d[i].name) == 0) {
            t->code = d[i].code;
            t->bits = d[i].bits;
            t->lanes = 1;
            return 1;
        }
    return 0;
}

static int parse_device(const char *s, DLDevice *d)
{
    d->device_id = 0;
    if (strcmp(s, "cpu") == 0) { d->device_type = kDLCPU; return 1; }
    if (sscanf(s, "cuda:%d", &d->device_id) == 1) { d->device_type = kDLCUDA; return 1; }
    if (strcmp(s, "cuda") == 0) { d->device_type = kDLCUDA; return 1; }
    if (sscanf(s, "rocm:%d", &d->device_id) == 1) { d->device_type = kDLROCM; return 1; }
    return 0;
}

static const char *need(const char *flag, const char *v)
{
    if (v == NULL) bad_usage("%s needs a value", flag);
    return v;
}

static long long number(const char *flag, const char *v)
{
    char *end;
    long long x;
    if (v == NULL) bad_usage("%s needs a value", flag);
    x = strtoll(v, &end, 10);
    if (end == v || *end) bad_usage("%s: not an integer", flag);
    return x;
}

static void parse_args(int argc, char **argv, problem *p)
{
    static const char *const short_ops[3] = {"qk", "av", "fna"};
    long long ext[3];
    int have_kv = 0, have_dv = 0, backward = 0, fwd_op = NATTEN_OP_FNA_FORWARD, full_op = -1;
    long long win[3] = {7}, dil[3] = {1}, str[3] = {1}, cau[3] = {0};
    int nwin = 1, ndil = 1, nstr = 1, ncau = 1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
#define IS(s, l) (strcmp(a, (s)) == 0 || strcmp(a, (l)) == 0)
        if (IS("-h", "--help")) { usage(stdout); exit(0); }
        else if (IS("", "--rpb")) p->rpb = 1;
        else if (IS("", "--lse")) p->lse = 1;
        else if (IS("", "--heads-first")) p->heads_first = 1;
        else if (IS("", "--measure")) p->measure = 1;
        else if (IS("", "--backward")) backward = 1;
        else if (IS("-i", "--input-size")) {
            p->rank = take_list(argc, argv, &i, a, ext);
            for (int k = 0; k < 3; k++) p->extent[k] = k < p->rank ? ext[k] : 1;
        }
        else if (IS("-w", "--window")) nwin = take_list(argc, argv, &i, a, win);
        else if (IS("", "--dilation")) ndil = take_list(argc, argv, &i, a, dil);
        else if (IS("", "--stride")) nstr = take_list(argc, argv, &i, a, str);
        else if (IS("", "--causal")) {
            if (is_list_word(val)) ncau = take_list(argc, argv, &i, a, cau);
            else { ncau = 1; cau[0] = 1; }
        }
        else if (IS("-b", "--batch")) { p->batch = number(a, val); i++; }
        else if (IS("-n", "--heads")) { p->heads = number(a, val); i++; }
        else if (IS("", "--heads-kv")) { p->heads_kv = number(a, val); i++; have_kv = 1; }
        else if (IS("-d", "--dim")) { p->dim = number(a, val); i++; }
        else if (IS("", "--dim-value")) { p->dim_v = number(a, val); i++; have_dv = 1; }
        else if (IS("", "--backend")) { p->backend = need(a, val); i++; }
        else if (IS("", "--dtype")) {
            if (!parse_dtype(need(a, val), &p->dtype)) bad_usage("--dtype: unknown type '%s'", val);
            i++;
        } else if (IS("", "--device")) {
            if (!parse_device(need(a, val), &p->device)) bad_usage("--device: '%s' is not cpu, cuda:N or rocm:N", val);
            i++;
        } else if (IS("", "--op")) {
            need(a, val);
            for (int k = 0; k < 3; k++)
                if (strcmp(val, short_ops[k]) == 0) fwd_op = 2 * k;
            for (int k = 0; k < NATTEN_OP_COUNT; k++)
                if (strcmp(val, op_names[k]) == 0) full_op = k;
            if (full_op < 0 && strcmp(val, short_ops[fwd_op / 2]) != 0) bad_usage("--op: unknown op '%s'", val);
            i++;
        } else {
            bad_usage("unknown option '%s'", a);
        }
#undef IS
    }
    p->op = (natten_op)(full_op >= 0 ? full_op : fwd_op + backward);
    axes("-w", win, nwin, p->rank, p->kernel);
    axes("--dilation", dil, ndil, p->rank, p->dilation);
    axes("--stride", str, nstr, p->rank, p->stride);
    axes("--causal", cau, ncau, p->rank, p->causal);
    if (!have_kv) p->heads_kv = p->heads;
    if (!have_dv) p->dim_v = p->dim;
}

/* A data-less DLTensor: shape and (heads-first or compact) strides only. */
typedef struct desc {
    DLTensor t;
    int64_t shape[6], strides[6];
} desc;

/* Token tensor [B, S.., H, C]; heads_first stores it [B, H, S.., C]. */
static void token(desc *d, const problem *p, int64_t heads, int64_t c, int has_c)
{
    int n = p->rank, nd = n + 2 + has_c;
    int64_t s = 1;
    d->shape[0] = p->batch;
    for (int i = 0; i < n; i++) d->shape[1 + i] = p->extent[i];
    d->shape[n + 1] = heads;
    if (has_c) d->shape[n + 2] = c;
    for (int i = nd - 1; i >= 0; i--) { /* compact row-major */
        d->strides[i] = s;
        s *= d->shape[i];
    }
    if (p->heads_first) { /* memory order B, H, S.., C */
        s = has_c ? c : 1;
        for (int i = n; i >= 1; i--) { d->strides[i] = s; s *= p->extent[i - 1]; }
        d->strides[n + 1] = s;
        d->strides[0] = s * heads;
    }
    d->t.ndim = nd;
}

static void bias(desc *d, const problem *p)
{
    int64_t s = 1;
    d->shape[0] = p->heads;
    for (int i = 0; i < p->rank; i++) d->shape[1 + i] = 2LL * p->kernel[i] - 1;
    d->t.ndim = p->rank + 1;
    for (int i = d->t.ndim - 1; i >= 0; i--) { d->strides[i] = s; s *= d->shape[i]; }
}

static int explain(int argc, char **argv)
{
    problem p = {NATTEN_OP_FNA_FORWARD, 2, 1, 4, 4, 32, 32, {56, 56, 1}, {7, 7, 7}, {1, 1, 1}, {1, 1, 1},
                 {0, 0, 0}, 0, 0, 0, {kDLFloat, 32, 1}, {kDLCPU, 0}, NULL, 0};
    desc d[NATTEN_ARG_COUNT];
    const DLTensor *t[NATTEN_ARG_COUNT] = {0};
    natten_params params;
    natten_context *ctx;
    natten_status st;
    const char *pick;
    char text[8192];
    int64_t window = 1;
    int fused, backward;

    parse_args(argc, argv, &p);
    if (natten_params_init(&params, p.rank, p.kernel) != NATTEN_SUCCESS) {
        fprintf(stderr, "natten-info: %s\n", natten_last_error());
        return 2;
    }
    for (int i = 0; i < p.rank; i++) {
        params.dilation[i] = p.dilation[i];
        params.stride[i] = p.stride[i];
        params.is_causal[i] = p.causal[i];
        window *= p.kernel[i];
    }
    fused = p.op == NATTEN_OP_FNA_FORWARD || p.op == NATTEN_OP_FNA_BACKWARD;
    backward = p.op == NATTEN_OP_QK_BACKWARD || p.op == NATTEN_OP_AV_BACKWARD || p.op == NATTEN_OP_FNA_BACKWARD;
    if (!fused) p.heads_kv = p.heads;
    memset(d, 0, sizeof d);
    token(&d[NATTEN_ARG_Q], &p, p.heads, p.dim, 1);
    token(&d[NATTEN_ARG_K], &p, p.heads_kv, p.dim, 1);
    token(&d[NATTEN_ARG_V], &p, p.heads_kv, fused ? p.dim_v : p.dim, 1);
    token(&d[NATTEN_ARG_OUT], &p, p.heads, fused ? p.dim_v : p.dim, 1);
    token(&d[NATTEN_ARG_ATTN], &p, p.heads, window, 1);
    token(&d[NATTEN_ARG_LSE], &p, p.heads, 1, 0);
    bias(&d[NATTEN_ARG_RPB], &p);
    d[NATTEN_ARG_D_Q] = d[NATTEN_ARG_Q];
    d[NATTEN_ARG_D_K] = d[NATTEN_ARG_K];
    d[NATTEN_ARG_D_V] = d[NATTEN_ARG_V];
    d[NATTEN_ARG_D_OUT] = d[NATTEN_ARG_OUT];
    d[NATTEN_ARG_D_ATTN] = d[NATTEN_ARG_ATTN];
    d[NATTEN_ARG_D_RPB] = d[NATTEN_ARG_RPB];
    for (int a = 0; a < NATTEN_ARG_COUNT; a++) {
        d[a].t.shape = d[a].shape;
        d[a].t.strides = d[a].strides;
        d[a].t.dtype = a == NATTEN_ARG_LSE ? (DLDataType){kDLFloat, 32, 1} : p.dtype;
        d[a].t.device = p.device;
    }
#define USE(role) (t[role] = &d[role].t)
    switch (p.op) {
    case NATTEN_OP_QK_FORWARD: USE(NATTEN_ARG_Q); USE(NATTEN_ARG_K); USE(NATTEN_ARG_ATTN); break;
    case NATTEN_OP_QK_BACKWARD:
        USE(NATTEN_ARG_D_ATTN); USE(NATTEN_ARG_Q); USE(NATTEN_ARG_K); USE(NATTEN_ARG_D_Q); USE(NATTEN_ARG_D_K);
        break;
    case NATTEN_OP_AV_FORWARD: USE(NATTEN_ARG_ATTN); USE(NATTEN_ARG_V); USE(NATTEN_ARG_OUT); break;
    case NATTEN_OP_AV_BACKWARD:
        USE(NATTEN_ARG_D_OUT); USE(NATTEN_ARG_ATTN); USE(NATTEN_ARG_V); USE(NATTEN_ARG_D_ATTN); USE(NATTEN_ARG_D_V);
        break;
    case NATTEN_OP_FNA_FORWARD:
        USE(NATTEN_ARG_Q); USE(NATTEN_ARG_K); USE(NATTEN_ARG_V); USE(NATTEN_ARG_OUT);
        if (p.lse) USE(NATTEN_ARG_LSE);
        break;
    default:
        USE(NATTEN_ARG_Q); USE(NATTEN_ARG_K); USE(NATTEN_ARG_V); USE(NATTEN_ARG_OUT); USE(NATTEN_ARG_LSE);
        USE(NATTEN_ARG_D_OUT); USE(NATTEN_ARG_D_Q); USE(NATTEN_ARG_D_K); USE(NATTEN_ARG_D_V);
        break;
    }
    if (p.rpb && p.op != NATTEN_OP_AV_FORWARD && p.op != NATTEN_OP_AV_BACKWARD) {
        if (p.op != NATTEN_OP_QK_BACKWARD) USE(NATTEN_ARG_RPB);
        if (backward) USE(NATTEN_ARG_D_RPB);
    }
#undef USE
    if (natten_context_create(&ctx) != NATTEN_SUCCESS ||
        (p.backend && natten_context_set_backend(ctx, p.backend) != NATTEN_SUCCESS) ||
        (p.measure && natten_context_set_tuning(ctx, NATTEN_TUNING_MEASURE) != NATTEN_SUCCESS)) {
        fprintf(stderr, "natten-info: %s\n", natten_last_error());
        return 2;
    }
    st = natten_explain(ctx, p.op, &params, t, &pick, text, sizeof text);
    fputs(text, stdout);
    natten_context_destroy(ctx);
    if (st != NATTEN_SUCCESS) fprintf(stderr, "natten-info: %s: %s\n", natten_status_string(st), natten_last_error());
    return st == NATTEN_SUCCESS ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--explain") == 0) return explain(argc, argv);
    if (argc > 1) {
        usage(strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    return table();
}
