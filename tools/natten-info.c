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
            "problem flags (as natten-bench):\n"
            "  -i L[,L[,L]]      spatial extents (rank = their count; 'x' also separates)\n"
            "  -w K[,K[,K]]      window (one value applies to every axis)\n"
            "  -b B  -n H  --heads-kv H  -d D  --dim-value D\n"
            "  --dilation d[,..]  --stride s[,..]  --causal 0|1[,..]\n"
            "  --dtype float32|float64|float16|bfloat16   --device cpu|cuda:N|rocm:N\n"
            "  --op qk_forward|qk_backward|av_forward|av_backward|fna_forward|fna_backward\n"
            "  --rpb  --lse  --heads-first\n"
            "  --backend NAME    force a backend (as NATTEN_BACKEND)\n"
            "  --measure         explain measured selection (as NATTEN_TUNING=measure)\n");
}

/* "a,b,c" or "axbxc" into v[3]; returns the count, 0 on a syntax error. */
static int parse_list(const char *s, long long *v)
{
    int n = 0;
    char *end;
    while (n < 3) {
        v[n++] = strtoll(s, &end, 10);
        if (end == s) return 0;
        if (*end == '\0') return n;
        if (*end != ',' && *end != 'x') return 0;
        s = end + 1;
    }
    return 0;
}

static int int_list(const char *flag, const char *s, int *out)
{
    long long v[3];
    int n = parse_list(s, v);
    if (n == 0) {
        fprintf(stderr, "natten-info: %s '%s': want up to three integers\n", flag, s);
        return 0;
    }
    for (int i = 0; i < 3; i++) out[i] = (int)(i < n ? v[i] : v[n - 1]);
    return 1;
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

static int parse_args(int argc, char **argv, problem *p)
{
    long long ext[3];
    int have_kv = 0, have_dv = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (strcmp(a, "--rpb") == 0) { p->rpb = 1; takes = 0; }
        else if (strcmp(a, "--lse") == 0) { p->lse = 1; takes = 0; }
        else if (strcmp(a, "--heads-first") == 0) { p->heads_first = 1; takes = 0; }
        else if (strcmp(a, "--measure") == 0) { p->measure = 1; takes = 0; }
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { usage(stdout); exit(0); }
        else if (v == NULL) { fprintf(stderr, "natten-info: %s needs a value\n", a); return 0; }
        else if (strcmp(a, "-i") == 0) {
            if ((p->rank = parse_list(v, ext)) == 0) { fprintf(stderr, "natten-info: -i '%s': want L[,L[,L]]\n", v); return 0; }
            for (int k = 0; k < 3; k++) p->extent[k] = k < p->rank ? ext[k] : 1;
        }
        else if (strcmp(a, "-w") == 0) { if (!int_list(a, v, p->kernel)) return 0; }
        else if (strcmp(a, "--dilation") == 0) { if (!int_list(a, v, p->dilation)) return 0; }
        else if (strcmp(a, "--stride") == 0) { if (!int_list(a, v, p->stride)) return 0; }
        else if (strcmp(a, "--causal") == 0) { if (!int_list(a, v, p->causal)) return 0; }
        else if (strcmp(a, "-b") == 0) p->batch = atoll(v);
        else if (strcmp(a, "-n") == 0) p->heads = atoll(v);
        else if (strcmp(a, "--heads-kv") == 0) { p->heads_kv = atoll(v); have_kv = 1; }
        else if (strcmp(a, "-d") == 0) p->dim = atoll(v);
        else if (strcmp(a, "--dim-value") == 0) { p->dim_v = atoll(v); have_dv = 1; }
        else if (strcmp(a, "--backend") == 0) p->backend = v;
        else if (strcmp(a, "--dtype") == 0) {
            if (!parse_dtype(v, &p->dtype)) { fprintf(stderr, "natten-info: unknown dtype '%s'\n", v); return 0; }
        } else if (strcmp(a, "--device") == 0) {
            if (!parse_device(v, &p->device)) { fprintf(stderr, "natten-info: unknown device '%s'\n", v); return 0; }
        } else if (strcmp(a, "--op") == 0) {
            int k;
            for (k = 0; k < NATTEN_OP_COUNT && strcmp(v, op_names[k]) != 0; k++) {}
            if (k == NATTEN_OP_COUNT) { fprintf(stderr, "natten-info: unknown op '%s'\n", v); return 0; }
            p->op = (natten_op)k;
        } else {
            fprintf(stderr, "natten-info: unknown flag '%s'\n", a);
            usage(stderr);
            return 0;
        }
        i += takes;
    }
    if (!have_kv) p->heads_kv = p->heads;
    if (!have_dv) p->dim_v = p->dim;
    return 1;
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
    problem p = {NATTEN_OP_FNA_FORWARD, 2, 1, 4, 4, 32, 32, {32, 32, 1}, {7, 7, 7}, {1, 1, 1}, {1, 1, 1},
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

    if (!parse_args(argc, argv, &p)) return 2;
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
