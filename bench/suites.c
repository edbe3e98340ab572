/* suites.c - problem arithmetic (tokens, FLOPs, labels) and the preset suites. */
#include "bench.h"

#include <stdio.h>
#include <string.h>

int64_t bench_tokens(const bench_problem *p)
{
    int64_t n = 1;
    for (int i = 0; i < p->rank; i++) n *= p->S[i];
    return n;
}

int64_t bench_window(const bench_problem *p)
{
    int64_t w = 1;
    for (int i = 0; i < p->rank; i++) w *= p->K[i];
    return w;
}

/* 2 FLOPs per multiply-add; every window counted as prod K (NATTEN's and the
 * issues' convention: fused forward = 4 B H N prod(K) D when Dv = D).
 * Backward: qk/av two products each; fused = recompute S, dP, dV, dQ, dK. */
double bench_flops(const bench_problem *p, bench_op op, bench_dir dir)
{
    double bhnw = (double)p->B * (double)p->H * (double)bench_tokens(p) * (double)bench_window(p);
    double D = (double)p->D, Dv = (double)p->Dv, f = 0, b = 0;
    switch (op) {
    case OP_QK: f = 2 * D; b = 4 * D; break;
    case OP_AV: f = 2 * Dv; b = 4 * Dv; break;
    case OP_FNA: f = 2 * (D + Dv); b = 2 * (3 * D + 2 * Dv); break;
    default: break;
    }
    return bhnw * (dir == DIR_FWD ? f : dir == DIR_BWD ? b : f + b);
}

void bench_axes(const int64_t *v64, const int *v, int rank, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < rank && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%lld", i ? "x" : "",
                         v64 ? (long long)v64[i] : (long long)v[i]);
        if (n < 0) break;
        used += (size_t)n;
    }
}

static int all_equal(const int *v, int rank, int value)
{
    for (int i = 0; i < rank; i++)
        if (v[i] != value) return 0;
    return 1;
}

void bench_problem_describe(const bench_problem *p, char *buf, size_t len)
{
    char s[64], k[64], d[64], st[64], c[64];
    bench_axes(p->S, NULL, p->rank, s, sizeof s);
    bench_axes(NULL, p->K, p->rank, k, sizeof k);
    bench_axes(NULL, p->dil, p->rank, d, sizeof d);
    bench_axes(NULL, p->str, p->rank, st, sizeof st);
    bench_axes(NULL, p->causal, p->rank, c, sizeof c);
    snprintf(buf, len, "%d-D %s, window %s%s%s%s%s%s%s, B %lld, H %lld", p->rank, s, k,
             all_equal(p->dil, p->rank, 1) ? "" : ", dilation ", all_equal(p->dil, p->rank, 1) ? "" : d,
             all_equal(p->str, p->rank, 1) ? "" : ", stride ", all_equal(p->str, p->rank, 1) ? "" : st,
             all_equal(p->causal, p->rank, 0) ? "" : ", causal ",
             all_equal(p->causal, p->rank, 0) ? "" : c, (long long)p->B, (long long)p->H);
    if (p->Hkv != p->H)
        snprintf(buf + strlen(buf), len - strlen(buf), " (kv %lld)", (long long)p->Hkv);
    snprintf(buf + strlen(buf), len - strlen(buf), ", D %lld", (long long)p->D);
    if (p->Dv != p->D)
        snprintf(buf + strlen(buf), len - strlen(buf), " (v %lld)", (long long)p->Dv);
    snprintf(buf + strlen(buf), len - strlen(buf), ", %s%s", p->dtype->name, p->rpb ? ", rpb" : "");
    if (p->threads > 0)
        snprintf(buf + strlen(buf), len - strlen(buf), ", %d thread%s", p->threads,
                 p->threads > 1 ? "s" : "");
}

/* ---- preset suites ---- */

#define ALL_OPS ((1u << OP_QK) | (1u << OP_AV) | (1u << OP_FNA))
#define FNA_ONLY (1u << OP_FNA)
#define UNFUSED ((1u << OP_QK) | (1u << OP_AV))

typedef struct {
    const char *label;
    int rank;
    int64_t s0, s1, s2;
    int k0, k1, k2;
    int64_t B, H, D;
    const char *dtype;
    unsigned ops;
    int backward;
    int threads; /* -1: every CPU */
} suite_row;

/* Issue 3 (OpenMP backend): 2-D 56x56, K 7, H 4, D 32, B 1, fp32: every op,
 * forward and backward; the fused forward again on 1 and on every thread. */
static const suite_row cpu_rows[] = {
    {"cpu-56x56", 2, 56, 56, 0, 7, 7, 0, 1, 4, 32, "float32", ALL_OPS, 1, 0},
    {"cpu-56x56-1t", 2, 56, 56, 0, 7, 7, 0, 1, 4, 32, "float32", FNA_ONLY, 0, 1},
    {"cpu-56x56-nt", 2, 56, 56, 0, 7, 7, 0, 1, 4, 32, "float32", FNA_ONLY, 0, -1},
};
static const suite_row cpu_quick[] = {
    {"cpu-q-16x16", 2, 16, 16, 0, 7, 7, 0, 1, 2, 16, "float32", ALL_OPS, 1, 0},
    {"cpu-q-16x16-1t", 2, 16, 16, 0, 7, 7, 0, 1, 2, 16, "float32", FNA_ONLY, 0, 1},
    {"cpu-q-16x16-nt", 2, 16, 16, 0, 7, 7, 0, 1, 2, 16, "float32", FNA_ONLY, 0, -1},
};

/* Issue 9 (tensor cores, fp16) and issue 8 (tiled CUDA). */
static const suite_row gpu_rows[] = {
    {"i9-2d-256-w80", 2, 256, 256, 0, 80, 80, 0, 1, 24, 128, "float16", FNA_ONLY, 1, 0},
    {"i9-3d-30x48x80", 3, 30, 48, 80, 18, 24, 24, 1, 24, 128, "float16", FNA_ONLY, 1, 0},
    {"i9-1d-32768-w2048", 1, 32768, 0, 0, 2048, 0, 0, 1, 1, 128, "float16", FNA_ONLY, 0, 0},
    {"i9-2d-56-k7-b16", 2, 56, 56, 0, 7, 7, 0, 16, 2, 32, "float16", FNA_ONLY, 1, 0},
    {"i8-unfused-b64", 2, 56, 56, 0, 7, 7, 0, 64, 4, 32, "float16", UNFUSED, 0, 0},
    {"i8-fna-fp32-b16", 2, 56, 56, 0, 7, 7, 0, 16, 2, 32, "float32", FNA_ONLY, 1, 0},
    {"i8-fna-fp32-256-w80", 2, 256, 256, 0, 80, 80, 0, 1, 24, 128, "float32", FNA_ONLY, 0, 0},
};
static const suite_row gpu_quick[] = {
    {"gpu-q-2d-64-w16", 2, 64, 64, 0, 16, 16, 0, 1, 2, 128, "float16", FNA_ONLY, 1, 0},
    {"gpu-q-3d-8x12x16", 3, 8, 12, 16, 4, 6, 6, 1, 2, 128, "float16", FNA_ONLY, 0, 0},
    {"gpu-q-1d-512-w64", 1, 512, 0, 0, 64, 0, 0, 1, 1, 128, "float16", FNA_ONLY, 0, 0},
    {"gpu-q-unfused", 2, 14, 14, 0, 7, 7, 0, 2, 2, 32, "float16", UNFUSED, 0, 0},
};

/* The classic NAT feature-map sweep: 7^2 .. 224^2, K 7, D 32, H 4. */
static const suite_row anchor_rows[] = {
    {"anchor-7", 2, 7, 7, 0, 7, 7, 0, 1, 4, 32, "float32", ALL_OPS, 0, 0},
    {"anchor-14", 2, 14, 14, 0, 7, 7, 0, 1, 4, 32, "float32", ALL_OPS, 0, 0},
    {"anchor-28", 2, 28, 28, 0, 7, 7, 0, 1, 4, 32, "float32", ALL_OPS, 0, 0},
    {"anchor-56", 2, 56, 56, 0, 7, 7, 0, 1, 4, 32, "float32", ALL_OPS, 0, 0},
    {"anchor-112", 2, 112, 112, 0, 7, 7, 0, 1, 4, 32, "float32", ALL_OPS, 0, 0},
    {"anchor-224", 2, 224, 224, 0, 7, 7, 0, 1, 4, 32, "float32", ALL_OPS, 0, 0},
};
static const suite_row anchor_quick[] = {
    {"anchor-7", 2, 7, 7, 0, 7, 7, 0, 1, 4, 32, "float32", ALL_OPS, 0, 0},
    {"anchor-14", 2, 14, 14, 0, 7, 7, 0, 1, 4, 32, "float32", ALL_OPS, 0, 0},
};

static const struct {
    const char *name;
    const suite_row *rows, *quick;
    int n, nquick;
} suites[] = {
#define N(a) (int)(sizeof(a) / sizeof((a)[0]))
    {"cpu", cpu_rows, cpu_quick, N(cpu_rows), N(cpu_quick)},
    {"gpu", gpu_rows, gpu_quick, N(gpu_rows), N(gpu_quick)},
    {"anchors", anchor_rows, anchor_quick, N(anchor_rows), N(anchor_quick)},
#undef N
};

const char *bench_suite_names(void) { return "cpu, gpu, anchors"; }

int bench_suite(const char *name, int quick, bench_problem *out, int max)
{
    for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
        const suite_row *rows;
        int n;
        if (strcmp(name, suites[s].name) != 0) continue;
        rows = quick ? suites[s].quick : suites[s].rows;
        n = quick ? suites[s].nquick : suites[s].n;
        for (int i = 0; i < n && i < max; i++) {
            const suite_row *r = &rows[i];
            bench_problem *p = &out[i];
            const int64_t S[3] = {r->s0, r->s1, r->s2};
            const int K[3] = {r->k0, r->k1, r->k2};
            memset(p, 0, sizeof *p);
            snprintf(p->label, sizeof p->label, "%s", r->label);
            p->rank = r->rank;
            for (int a = 0; a < 3; a++) {
                p->S[a] = a < r->rank ? S[a] : 1;
                p->K[a] = a < r->rank ? K[a] : 1;
                p->dil[a] = p->str[a] = 1;
            }
            p->B = r->B;
            p->H = p->Hkv = r->H;
            p->D = p->Dv = r->D;
            p->dtype = bench_dtype_find(r->dtype);
            p->ops = r->ops;
            p->backward = r->backward;
            p->threads = r->threads < 0 ? bench_cpu_count() : r->threads;
        }
        return n < max ? n : max;
    }
    return -1;
}
