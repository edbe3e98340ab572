/*
 * harness.cu - standalone check and timing of the tensor-core kernels, built
 * by a plain nvcc command (not part of the Autotools build):
 *   nvcc -O3 -std=c++17 -arch=sm_90 -I backends/cuda_tc -I lib \
 *        backends/cuda_tc/standalone/harness.cu -o tc-harness
 *   ./tc-harness check        # edge cases vs a double-precision CPU reference
 *   ./tc-harness bench [reps] [w2] [cfgs] [probs] [fb]   # the issue's target problems (fp16):
 *       configurations cfgs (digits, default all) on problems probs (digits), bit-mask ones
 *       also with box-search mask weight w2; fb: backward and fwd+bwd of the default too
 *   ./tc-harness checkv N     # edge cases, configuration N alone (sanitizers)
 * Configurations: 0..8 the mma.sync forward and dQ kernels (tc_kernels.cuh),
 * 9..17 (letters a..i) the Hopper forward (tc_wgmma.cuh), 18..23 (letters
 * j..o) the Hopper backward (tc_wgmma_bwd.cuh) after the default forward,
 * 24..32 (letters p..x) the warp-specialised Hopper forward (v7), 33..40
 * (letters y, z, A..F) more of it (v8).
 * Inputs are uniform in [-1, 1] (a hash of the index), outputs are NaN-filled
 * before each call, every element compared: error = max|x - ref| / max(1, max|ref|).
 */
#include "tc_kernels.cuh"
#include "tc_wgmma.cuh"
#include "tc_wgmma_bwd.cuh"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CK(x)                                                                                      \
    do {                                                                                           \
        cudaError_t e_ = (x);                                                                      \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));    \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

struct Case {
    const char *name;
    int rank, B, H, Hkv, D;
    int L[3], K[3], d[3], s[3], c[3];
    int bf16, heads_first, bwd;
    int sample; /* forward rows to check (0 = all) */
};

static float h2f(uint16_t x, int bf16)
{
    if (bf16) {
        uint32_t u = (uint32_t)x << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    __half h;
    memcpy(&h, &x, 2);
    return __half2float(h);
}

__global__ void fill_kernel(uint16_t *p, int64_t n, uint32_t seed, int bf16)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 16;
        h *= 0x7feb352du;
        h ^= h >> 15;
        h *= 0x846ca68bu;
        h ^= h >> 16;
        float f = (h >> 8) * (2.0f / 16777216.0f) - 1.0f;
        if (bf16) {
            __nv_bfloat16 b = __float2bfloat16(f);
            p[i] = *reinterpret_cast<uint16_t *>(&b);
        } else {
            __half b = __float2half(f);
            p[i] = *reinterpret_cast<uint16_t *>(&b);
        }
    }
}

/* A token tensor [B, L0, L1, L2, H, C] in compact or heads-first layout. */
struct Buf {
    uint16_t *dev = nullptr;
    std::vector<uint16_t> host;
    int64_t n = 0;
    int64_t s[5];
    int64_t C;
};

static void make_tok(Buf &b, const Case &c, int heads, int C, int hf)
{
    int64_t N = (int64_t)c.L[0] * c.L[1] * c.L[2];
    b.C = C;
    b.n = (int64_t)c.B * N * heads * C;
    if (!hf) {
        b.s[4] = C;
        b.s[3] = (int64_t)heads * C;
        b.s[2] = b.s[3] * c.L[2];
        b.s[1] = b.s[2] * c.L[1];
        b.s[0] = b.s[1] * c.L[0];
    } else {
        b.s[3] = C;
        b.s[2] = (int64_t)C * c.L[2];
        b.s[1] = b.s[2] * c.L[1];
        b.s[4] = b.s[1] * c.L[0];
        b.s[0] = b.s[4] * heads;
    }
    CK(cudaMalloc(&b.dev, b.n * 2));
}

static tc::Tensor view(const Buf &b)
{
    tc::Tensor t;
    t.data = (char *)b.dev;
    for (int i = 0; i < 5; i++) t.s[i] = b.s[i];
    return t;
}

static int64_t off(const Buf &b, int64_t bb, const int x[3], int h, int c)
{
    return bb * b.s[0] + x[0] * b.s[1] + x[1] * b.s[2] + x[2] * b.s[3] + h * b.s[4] + c;
}

static void fill(Buf &b, uint32_t seed, int bf16)
{
    fill_kernel<<<1024, 256>>>(b.dev, b.n, seed, bf16);
    CK(cudaGetLastError());
}

static void down(Buf &b)
{
    b.host.resize(b.n);
    CK(cudaMemcpy(b.host.data(), b.dev, b.n * 2, cudaMemcpyDeviceToHost));
}

static int g_variant = -1; /* kernel configuration of fwd and dQ (tc_kernels.cuh) */
static int g_bwd = -1;     /* the Hopper backward's variant (-1: tc::backward) */
static int g_cfg = -1;     /* the harness configuration being run (reports) */

/* The Hopper forward's variants (tc_wgmma.cuh, D 128 only; the harness must
 * be built with -arch=sm_90a for them): configurations N_CFG.. here, named by
 * the letters a.. in bench's configuration list. */
constexpr int N_WG = 9, N_ALL = tc::N_CFG + N_WG;
static const char *const wg_names[N_WG] = {"wg2x64-n64-v0",      "wg2x64-n64-v1",      "wg2x64-n64-v2",
                                           "wg2x64-n64-v0-b2",   "wg2x64-n64-v2-b2",   "wg2x64-n32-v0-b2",
                                           "wg2x64-n64-v0-b2-o", "wg2x64-n64-v0-b1-o", "wg2x64-n32-v0-b2-o"};
static const int wg_bn[N_WG] = {64, 64, 64, 64, 64, 32, 64, 64, 32};
/* v7: the warp-specialised Hopper forward (tc_wgmma.cuh fwd_ws_kernel):
 * configurations N_TOT.. (letters p..x), after the backward's: -s<ring
 * stages>, -o: FA3's intra-warpgroup overlap, -pp: its ping-pong, -pf: the
 * producer fences its copies (PF), -r: tree reductions (RED).  t is the
 * library's configuration 13; v..x were added after the last device call
 * and have not run. */
/* v8: y..F (33..40): -s6 (six stages: 225 KB of shared memory), -q: Q in
 * registers, S = Q K^T with A from registers (QR), -sk: each consumer
 * warpgroup skips the tiles outside its own rows' windows (SK 1), -sk2: and
 * the boxes planned for that (SK 2, plan_ws_sk). */
constexpr int N_WS = 17, N_END = 24 + N_WS;
static const char *const ws_names[N_WS] = {
    "ws1p2x64-n64-s3",         "ws1p2x64-n64-s3-o",    "ws1p2x64-n64-s4-o",      "ws1p2x64-n64-s3-o-pp",
    "ws1p2x64-n64-s4-o-pp",    "ws1p2x64-n64-s3-o-pp-pf", "ws1p2x64-n64-s5-o-pp", "ws1p2x64-n64-s4-o-pp-r",
    "ws1p2x64-n64-s5-o-pp-r",  "ws1p2x64-n64-s6-o-pp", "ws1p2x64-n64-s4-o-pp-q", "ws1p2x64-n64-s5-o-pp-q",
    "ws1p2x64-n64-s5-o-pp-r-q", "ws1p2x64-n64-s6-o-pp-q", "ws1p2x64-n64-s6-o-pp-r-q",
    "ws1p2x64-n64-s4-o-pp-sk", "ws1p2x64-n64-s4-o-pp-sk2"};
static bool is_ws(int v) { return v >= 24 && v < N_END; }
static bool is_wg(int v) { return (v >= tc::N_CFG && v < N_ALL) || is_ws(v); }

/* The Hopper backward's variants (tc_wgmma_bwd.cuh, D 128 only): harness
 * configurations N_ALL.. (letters j..); the forward before them is the
 * library's default (tc::forward).  Names: dK/dV kernel k<warpgroups>q<query
 * tile>, dQ kernel q<warpgroups>n<key tile>, -b<blocks per SM asked>; -o:
 * the exponentials overlap the products (OVL). */
constexpr int N_WGB = 6, N_TOT = N_ALL + N_WGB;
static const char *const wgb_names[N_WGB] = {"wgb-k1q64b2-q1n64b2-o", "wgb-k2q64b1-q1n64b2-o", "wgb-k1q64b2-q1n64b2",
                                             "wgb-k2q64b1-q1n64b2",   "wgb-k1q64b2-q2n64b1",   "wgb-k1q32b2-q2n32b2"};
static_assert(N_TOT == 24, "the warp-specialised forward follows the backward's configurations");
static bool is_wgb(int v) { return v >= N_ALL && v < N_TOT; }
static const char *cfg_name(int v)
{
    return is_ws(v)    ? ws_names[v - N_TOT]
           : is_wgb(v) ? wgb_names[v - N_ALL]
           : is_wg(v)  ? wg_names[v - tc::N_CFG]
                       : tc::cfg_names[v];
}
/* Harness configuration v: the forward (g_variant) and backward (g_bwd) it runs. */
static void select_cfg(int v)
{
    g_cfg = v;
    g_variant = (v >= 0 && v < N_ALL) || is_ws(v) ? v : -1;
    g_bwd = is_wgb(v) ? v - N_ALL : -1;
}
static int cfg_rows(int v) { return is_wg(v) ? 128 : tc::cfg_rows[v]; }
static int cfg_bn(int v) { return is_ws(v) ? tc::wg::WS_BN : is_wg(v) ? wg_bn[v - tc::N_CFG] : tc::cfg_bn[v]; }
static bool cfg_bits(int v) { return is_wg(v) ? true : tc::cfg_bits[v]; }
static char cfg_char(int v) { return (char)(v < 9 ? '0' + v : v < 35 ? 'a' + (v - 9) : 'A' + (v - 35)); }

static int g_parts = 7; /* the Hopper backward's pieces run (bench: timing of dQ, dK/dV alone) */

template <typename T> static cudaError_t run_wgb(const tc::Params &p, int k)
{
    switch (k) {
    case 0: return tc::wg::backward_v<T, 1, 64, 2, 1, 64, 2, true>(p, 0, g_parts);
    case 1: return tc::wg::backward_v<T, 2, 64, 1, 1, 64, 2, true>(p, 0, g_parts);
    case 2: return tc::wg::backward_v<T, 1, 64, 2, 1, 64, 2, false>(p, 0, g_parts);
    case 3: return tc::wg::backward_v<T, 2, 64, 1, 1, 64, 2, false>(p, 0, g_parts);
    case 4: return tc::wg::backward_v<T, 1, 64, 2, 2, 64, 1, false>(p, 0, g_parts);
    default: return tc::wg::backward_v<T, 1, 32, 2, 2, 32, 2, false>(p, 0, g_parts);
    }
}

template <typename T> static cudaError_t run_wg(tc::Params p, int k)
{
    switch (k) {
    case 0: return tc::wg::forward_v<T, 0, 1, 64, false>(p, 0);
    case 1: return tc::wg::forward_v<T, 1, 1, 64, false>(p, 0);
    case 2: return tc::wg::forward_v<T, 2, 1, 64, false>(p, 0);
    case 3: return tc::wg::forward_v<T, 0, 2, 64, false>(p, 0);
    case 4: return tc::wg::forward_v<T, 2, 2, 64, false>(p, 0);
    case 5: return tc::wg::forward_v<T, 0, 2, 32, false>(p, 0);
    case 6: return tc::wg::forward_v<T, 0, 2, 64, true>(p, 0);
    case 7: return tc::wg::forward_v<T, 0, 1, 64, true>(p, 0);
    case 8: return tc::wg::forward_v<T, 0, 2, 32, true>(p, 0);
    case N_TOT - tc::N_CFG: return tc::wg::forward_ws<T, 3, false, false>(p, 0);
    case N_TOT - tc::N_CFG + 1: return tc::wg::forward_ws<T, 3, true, false>(p, 0);
    case N_TOT - tc::N_CFG + 2: return tc::wg::forward_ws<T, 4, true, false>(p, 0);
    case N_TOT - tc::N_CFG + 3: return tc::wg::forward_ws<T, 3, true, true>(p, 0);
    case N_TOT - tc::N_CFG + 4: return tc::wg::forward_ws<T, 4, true, true>(p, 0);
    case N_TOT - tc::N_CFG + 5: return tc::wg::forward_ws<T, 3, true, true, true>(p, 0);
    case N_TOT - tc::N_CFG + 6: return tc::wg::forward_ws<T, 5, true, true>(p, 0);
    case N_TOT - tc::N_CFG + 7: return tc::wg::forward_ws<T, 4, true, true, false, true>(p, 0);
    case N_TOT - tc::N_CFG + 8: return tc::wg::forward_ws<T, 5, true, true, false, true>(p, 0);
    case N_TOT - tc::N_CFG + 9: return tc::wg::forward_ws<T, 6, true, true>(p, 0);
    case N_TOT - tc::N_CFG + 10: return tc::wg::forward_ws<T, 4, true, true, false, false, true>(p, 0);
    case N_TOT - tc::N_CFG + 11: return tc::wg::forward_ws<T, 5, true, true, false, false, true>(p, 0);
    case N_TOT - tc::N_CFG + 12: return tc::wg::forward_ws<T, 5, true, true, false, true, true>(p, 0);
    case N_TOT - tc::N_CFG + 13: return tc::wg::forward_ws<T, 6, true, true, false, false, true>(p, 0);
    case N_TOT - tc::N_CFG + 14: return tc::wg::forward_ws<T, 6, true, true, false, true, true>(p, 0);
    case N_TOT - tc::N_CFG + 15: return tc::wg::forward_ws<T, 4, true, true, false, false, false, 1>(p, 0);
    default: return tc::wg::forward_ws<T, 4, true, true, false, false, false, 2>(p, 0);
    }
}

static cudaError_t run_fwd(const Case &c, tc::Params p)
{
    if (is_wg(g_variant)) {
        if (c.D != 128) return cudaErrorInvalidValue;
        return c.bf16 ? run_wg<__nv_bfloat16>(p, g_variant - tc::N_CFG) : run_wg<__half>(p, g_variant - tc::N_CFG);
    }
    if (c.bf16) {
        if (c.D == 32) return tc::forward<__nv_bfloat16, 32>(p, 0, g_variant);
        if (c.D == 64) return tc::forward<__nv_bfloat16, 64>(p, 0, g_variant);
        return tc::forward<__nv_bfloat16, 128>(p, 0, g_variant);
    }
    if (c.D == 32) return tc::forward<__half, 32>(p, 0, g_variant);
    if (c.D == 64) return tc::forward<__half, 64>(p, 0, g_variant);
    return tc::forward<__half, 128>(p, 0, g_variant);
}

static cudaError_t run_bwd(const Case &c, tc::Params p)
{
    if (g_bwd >= 0) {
        if (c.D != 128) return cudaErrorInvalidValue;
        return c.bf16 ? run_wgb<__nv_bfloat16>(p, g_bwd) : run_wgb<__half>(p, g_bwd);
    }
    if (c.bf16) {
        if (c.D == 32) return tc::backward<__nv_bfloat16, 32>(p, 0, g_variant);
        if (c.D == 64) return tc::backward<__nv_bfloat16, 64>(p, 0, g_variant);
        return tc::backward<__nv_bfloat16, 128>(p, 0, g_variant);
    }
    if (c.D == 32) return tc::backward<__half, 32>(p, 0, g_variant);
    if (c.D == 64) return tc::backward<__half, 64>(p, 0, g_variant);
    return tc::backward<__half, 128>(p, 0, g_variant);
}

/* Neighbours of token x (global), per axis: global index list. */
static void nbrs(const Case &c, const int x[3], std::vector<int> ax[3])
{
    for (int i = 0; i < 3; i++) {
        int64_t a, b;
        natten_window(c.L[i], c.K[i], c.d[i], c.s[i], c.c[i], x[i], &a, &b);
        ax[i].clear();
        for (int64_t t = a; t < b; t++) ax[i].push_back((int)(t * c.d[i] + x[i] % c.d[i]));
    }
}

struct Setup {
    Case c;
    Buf q, k, v, o, g, dq, dk, dv;
    float *lse = nullptr, *delta = nullptr;
    std::vector<float> lse_h;
    int64_t N;
    tc::Params p;
};

static void setup(Setup &S, const Case &c0, uint32_t seed)
{
    Case c = c0;
    for (int i = c.rank; i < 3; i++) c.L[i] = c.K[i] = c.d[i] = c.s[i] = 1, c.c[i] = 0;
    S.c = c;
    S.N = (int64_t)c.L[0] * c.L[1] * c.L[2];
    make_tok(S.q, c, c.H, c.D, c.heads_first);
    make_tok(S.k, c, c.Hkv, c.D, c.heads_first);
    make_tok(S.v, c, c.Hkv, c.D, c.heads_first);
    make_tok(S.o, c, c.H, c.D, c.heads_first);
    fill(S.q, seed, c.bf16);
    fill(S.k, seed * 3 + 1, c.bf16);
    fill(S.v, seed * 5 + 2, c.bf16);
    CK(cudaMemset(S.o.dev, 0xff, S.o.n * 2)); /* NaN */
    CK(cudaMalloc(&S.lse, c.B * S.N * c.H * 4));
    CK(cudaMemset(S.lse, 0xff, c.B * S.N * c.H * 4));
    tc::Params &p = S.p;
    memset(&p, 0, sizeof p);
    p.q = view(S.q);
    p.k = view(S.k);
    p.v = view(S.v);
    p.o = view(S.o);
    p.lse.data = (char *)S.lse;
    p.lse.s[4] = 1;
    p.lse.s[3] = c.H;
    p.lse.s[2] = (int64_t)c.H * c.L[2];
    p.lse.s[1] = p.lse.s[2] * c.L[1];
    p.lse.s[0] = p.lse.s[1] * c.L[0];
    p.B = c.B;
    p.H = c.H;
    p.Hkv = c.Hkv;
    for (int i = 0; i < 3; i++) {
        p.L[i] = c.L[i];
        p.K[i] = c.K[i];
        p.dil[i] = c.d[i];
        p.st[i] = c.s[i];
        p.causal[i] = c.c[i];
    }
    p.scale = 1.0f / sqrtf((float)c.D);
    if (c.bwd) {
        make_tok(S.g, c, c.H, c.D, c.heads_first);
        make_tok(S.dq, c, c.H, c.D, c.heads_first);
        make_tok(S.dk, c, c.Hkv, c.D, c.heads_first);
        make_tok(S.dv, c, c.Hkv, c.D, c.heads_first);
        fill(S.g, seed * 7 + 3, c.bf16);
        CK(cudaMemset(S.dq.dev, 0xff, S.dq.n * 2));
        CK(cudaMemset(S.dk.dev, 0xff, S.dk.n * 2));
        CK(cudaMemset(S.dv.dev, 0xff, S.dv.n * 2));
        CK(cudaMalloc(&S.delta, c.B * S.N * c.H * 4));
        p.dout = view(S.g);
        p.dq = view(S.dq);
        p.dk = view(S.dk);
        p.dv = view(S.dv);
        p.delta = S.delta;
    }
}

static void teardown(Setup &S)
{
    Buf *bs[] = {&S.q, &S.k, &S.v, &S.o, &S.g, &S.dq, &S.dk, &S.dv};
    for (Buf *b : bs)
        if (b->dev) cudaFree(b->dev);
    cudaFree(S.lse);
    cudaFree(S.delta);
}

static void tok_of(const Case &c, int64_t n, int x[3])
{
    x[2] = (int)(n % c.L[2]);
    x[1] = (int)((n / c.L[2]) % c.L[1]);
    x[0] = (int)(n / ((int64_t)c.L[1] * c.L[2]));
}

/* Reference forward of one query row: logits z over the neighbour list. */
static double ref_row(const Setup &S, int b, const int x[3], int h, std::vector<int64_t> &keys,
                      std::vector<double> &P, std::vector<double> &out)
{
    const Case &c = S.c;
    std::vector<int> ax[3];
    nbrs(c, x, ax);
    int hk = h / (c.H / c.Hkv);
    keys.clear();
    for (int a : ax[0])
        for (int bb : ax[1])
            for (int cc : ax[2]) keys.push_back(((int64_t)a * c.L[1] + bb) * c.L[2] + cc);
    P.assign(keys.size(), 0);
    double m = -INFINITY;
    for (size_t t = 0; t < keys.size(); t++) {
        int y[3];
        tok_of(c, keys[t], y);
        double z = 0;
        for (int e = 0; e < c.D; e++)
            z += (double)h2f(S.q.host[off(S.q, b, x, h, e)], c.bf16) * h2f(S.k.host[off(S.k, b, y, hk, e)], c.bf16);
        z *= S.p.scale;
        P[t] = z;
        m = std::max(m, z);
    }
    double sum = 0;
    for (double &z : P) sum += exp(z - m);
    double lse = m + log(sum);
    out.assign(c.D, 0);
    for (size_t t = 0; t < keys.size(); t++) {
        int y[3];
        tok_of(c, keys[t], y);
        P[t] = exp(P[t] - lse);
        for (int e = 0; e < c.D; e++) out[e] += P[t] * h2f(S.v.host[off(S.v, b, y, hk, e)], c.bf16);
    }
    return lse;
}

struct Err {
    double maxabs = 0, maxref = 0;
    long bad = 0;
    void add(double x, double r)
    {
        if (!std::isfinite(x)) {
            bad++;
            return;
        }
        maxabs = std::max(maxabs, fabs(x - r));
        maxref = std::max(maxref, fabs(r));
    }
    double norm() const { return bad ? INFINITY : maxabs / std::max(1.0, maxref); }
};

static int check_case(const Case &c0, uint32_t seed)
{
    Setup S;
    setup(S, c0, seed);
    const Case &c = S.c;
    double tol = c.bf16 ? 5e-2 : 1e-2;
    cudaError_t e = run_fwd(c, S.p);
    if (e == cudaSuccess && c.bwd) e = run_bwd(c, S.p);
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    if (e != cudaSuccess) {
        printf("FAIL %-34s cuda: %s\n", c.name, cudaGetErrorString(e));
        teardown(S);
        return 1;
    }
    down(S.q);
    down(S.k);
    down(S.v);
    down(S.o);
    S.lse_h.resize(c.B * S.N * c.H);
    CK(cudaMemcpy(S.lse_h.data(), S.lse, S.lse_h.size() * 4, cudaMemcpyDeviceToHost));
    Err eo, el, edq, edk, edv;
    std::vector<int64_t> keys;
    std::vector<double> P, out;
    int64_t rows = (int64_t)c.B * S.N * c.H;
    std::vector<double> dq, dk, dv;
    if (c.bwd) {
        down(S.g);
        down(S.dq);
        down(S.dk);
        down(S.dv);
        dq.assign(S.q.n, 0);
        dk.assign(S.k.n, 0);
        dv.assign(S.v.n, 0);
    }
    int64_t nchk = c.sample && !c.bwd ? c.sample : rows;
    for (int64_t ri = 0; ri < nchk; ri++) {
        int64_t r = nchk == rows ? ri : (int64_t)((ri * 2654435761ull + seed) % (uint64_t)rows);
        int h = (int)(r % c.H);
        int64_t n = (r / c.H) % S.N;
        int b = (int)(r / (c.H * S.N));
        int x[3];
        tok_of(c, n, x);
        double lse = ref_row(S, b, x, h, keys, P, out);
        for (int e2 = 0; e2 < c.D; e2++) eo.add(h2f(S.o.host[off(S.o, b, x, h, e2)], c.bf16), out[e2]);
        el.add(S.lse_h[(b * S.N + n) * c.H + h], lse);
        if (!c.bwd) continue;
        /* backward of this row, the naive way */
        int hk = h / (c.H / c.Hkv);
        double delta = 0;
        for (int e2 = 0; e2 < c.D; e2++)
            delta += (double)h2f(S.g.host[off(S.g, b, x, h, e2)], c.bf16) * h2f(S.o.host[off(S.o, b, x, h, e2)], c.bf16);
        for (size_t t = 0; t < keys.size(); t++) {
            int y[3];
            tok_of(c, keys[t], y);
            double dp = 0;
            for (int e2 = 0; e2 < c.D; e2++)
                dp += (double)h2f(S.g.host[off(S.g, b, x, h, e2)], c.bf16) * h2f(S.v.host[off(S.v, b, y, hk, e2)], c.bf16);
            double ds = P[t] * (dp - delta);
            for (int e2 = 0; e2 < c.D; e2++) {
                dq[off(S.q, b, x, h, e2)] += S.p.scale * ds * h2f(S.k.host[off(S.k, b, y, hk, e2)], c.bf16);
                dk[off(S.k, b, y, hk, e2)] += S.p.scale * ds * h2f(S.q.host[off(S.q, b, x, h, e2)], c.bf16);
                dv[off(S.v, b, y, hk, e2)] += P[t] * h2f(S.g.host[off(S.g, b, x, h, e2)], c.bf16);
            }
        }
    }
    if (c.bwd) {
        for (int64_t i = 0; i < S.q.n; i++) edq.add(h2f(S.dq.host[i], c.bf16), dq[i]);
        for (int64_t i = 0; i < S.k.n; i++) edk.add(h2f(S.dk.host[i], c.bf16), dk[i]);
        for (int64_t i = 0; i < S.v.n; i++) edv.add(h2f(S.dv.host[i], c.bf16), dv[i]);
    }
    bool ok = eo.norm() <= tol && el.norm() <= tol &&
              (!c.bwd || (edq.norm() <= tol && edk.norm() <= tol && edv.norm() <= tol));
    printf("%s v%d %-34s out %.2e lse %.2e", ok ? "ok  " : "FAIL", g_cfg, c.name, eo.norm(), el.norm());
    if (c.bwd) printf(" dq %.2e dk %.2e dv %.2e", edq.norm(), edk.norm(), edv.norm());
    printf("\n");
    teardown(S);
    return ok ? 0 : 1;
}

static const Case checks[] = {
    /* name rank B H Hkv D L K d s c bf16 hf bwd sample */
    {"1d L100 K7 D32", 1, 2, 2, 2, 32, {100}, {7}, {1}, {1}, {0}, 0, 0, 1, 0},
    {"1d L64 K=L D64 (dense)", 1, 1, 2, 2, 64, {64}, {64}, {1}, {1}, {0}, 0, 0, 1, 0},
    {"1d L37 K8 even D32", 1, 1, 2, 2, 32, {37}, {8}, {1}, {1}, {0}, 0, 0, 1, 0},
    {"1d L45 K5 d4 causal D64", 1, 1, 2, 2, 64, {45}, {5}, {4}, {1}, {1}, 0, 0, 1, 0},
    {"1d L50 K5 s5 (s=K) D32", 1, 1, 2, 1, 32, {50}, {5}, {1}, {5}, {0}, 0, 0, 1, 0},
    {"1d L77 K9 s3 causal D128", 1, 1, 2, 2, 128, {77}, {9}, {1}, {3}, {1}, 0, 0, 1, 0},
    {"1d L300 K33 d2 s2 causal D128", 1, 1, 1, 1, 128, {300}, {33}, {2}, {2}, {1}, 0, 0, 1, 0},
    {"1d L130 K=L causal D64", 1, 1, 1, 1, 64, {130}, {130}, {1}, {1}, {1}, 0, 0, 1, 0},
    {"2d 20x23 K5,7 d2,1 GQA D64", 2, 1, 4, 2, 64, {20, 23}, {5, 7}, {2, 1}, {1, 1}, {0, 0}, 0, 0, 1, 0},
    {"2d 17x19 K4,6 causal0 D128", 2, 1, 2, 2, 128, {17, 19}, {4, 6}, {1, 1}, {1, 1}, {1, 0}, 0, 0, 1, 0},
    {"2d 16x16 K=L D32 (dense)", 2, 1, 2, 2, 32, {16, 16}, {16, 16}, {1, 1}, {1, 1}, {0, 0}, 0, 0, 1, 0},
    {"2d 30x30 K7 d3 causal1 D32 hf", 2, 1, 2, 2, 32, {30, 30}, {7, 7}, {3, 3}, {1, 1}, {0, 1}, 0, 1, 1, 0},
    {"2d 21x18 K6 s6,3 D64 hf", 2, 2, 2, 1, 64, {21, 18}, {6, 6}, {1, 1}, {6, 3}, {0, 0}, 0, 1, 1, 0},
    {"2d 56x56 K7 B2 H2 D32", 2, 2, 2, 2, 32, {56, 56}, {7, 7}, {1, 1}, {1, 1}, {0, 0}, 0, 0, 1, 0},
    {"3d 9x10x11 K3,5,7 d3,2,1 D64", 3, 1, 2, 2, 64, {9, 10, 11}, {3, 5, 7}, {3, 2, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0, 1, 0},
    {"3d 8x8x8 K3 causal GQA4 D128", 3, 1, 4, 1, 128, {8, 8, 8}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 0, 0, 1, 0},
    {"3d 6x12x10 K3,3,5 s3,2,5 D32", 3, 1, 2, 2, 32, {6, 12, 10}, {3, 3, 5}, {1, 1, 1}, {3, 2, 5}, {0, 0, 0}, 0, 0, 1, 0},
    {"3d 7x9x13 K4,2,6 c1,0,1 D64 hf", 3, 1, 2, 2, 64, {7, 9, 13}, {4, 2, 6}, {1, 2, 1}, {1, 1, 2}, {1, 0, 1}, 0, 1, 1, 0},
    {"bf16 1d L100 K7 D32", 1, 2, 2, 2, 32, {100}, {7}, {1}, {1}, {0}, 1, 0, 1, 0},
    {"bf16 2d 20x23 K5,7 d2,1 GQA D64", 2, 1, 4, 2, 64, {20, 23}, {5, 7}, {2, 1}, {1, 1}, {0, 0}, 1, 0, 1, 0},
    {"bf16 3d 8x8x8 K3 causal D128", 3, 1, 2, 2, 128, {8, 8, 8}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1, 0, 1, 0},
    {"2d 64x64 K33 D128 fwd-sampled", 2, 1, 2, 2, 128, {64, 64}, {33, 33}, {1, 1}, {1, 1}, {0, 0}, 0, 0, 0, 2000},
};

struct Bench {
    const char *name;
    Case c;
    double target_fwd, target_fb;
};

static const Bench benches[] = {
    {"2d 256x256 K80 H24 D128", {"b1", 2, 1, 24, 24, 128, {256, 256}, {80, 80}, {1, 1}, {1, 1}, {0, 0}, 0, 0, 1, 64}, 18, 55},
    {"3d 30x48x80 K18,24,24 H24 D128",
     {"b2", 3, 1, 24, 24, 128, {30, 48, 80}, {18, 24, 24}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0, 1, 64}, 90, 280},
    {"1d 32768 K2048 H1 D128", {"b3", 1, 1, 1, 1, 128, {32768}, {2048}, {1}, {1}, {0}, 0, 0, 1, 64}, 0.1, 0},
    {"2d 56x56 K7 H2 D32 B16", {"b4", 2, 16, 2, 2, 32, {56, 56}, {7, 7}, {1, 1}, {1, 1}, {0, 0}, 0, 0, 1, 64}, 0.06, 0.25},
};

/* what: 0 forward, 1 forward + backward, 2 backward alone */
static double median_ms(const Case &c, const tc::Params &p, int what, int reps)
{
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    std::vector<float> t;
    for (int i = 0; i < reps + 3; i++) {
        CK(cudaEventRecord(a));
        if (what != 2) CK(run_fwd(c, p));
        if (what != 0) CK(run_bwd(c, p));
        CK(cudaEventRecord(b));
        CK(cudaEventSynchronize(b));
        float ms;
        CK(cudaEventElapsedTime(&ms, a, b));
        if (i >= 3) t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

/* The boxes configuration v plans for case c (as forward_v does). */
static void plan_of(const Case &c, int v, int own[3], int it[3])
{
    tc::Params p;
    int ext[3];
    memset(&p, 0, sizeof p);
    for (int i = 0; i < 3; i++) {
        p.L[i] = i < c.rank ? c.L[i] : 1;
        p.K[i] = i < c.rank ? c.K[i] : 1;
        p.dil[i] = i < c.rank ? c.d[i] : 1;
        p.st[i] = i < c.rank ? c.s[i] : 1;
        p.causal[i] = i < c.rank ? c.c[i] : 0;
    }
    tc::group_ext(p, ext);
    if (v == N_END - 1) { /* F: SK 2's own planning */
        tc::wg::plan_ws_sk(p, ext, tc::fwd_mask_weight());
    } else {
        tc::choose_box(cfg_rows(v), ext, p.own);
        tc::plan_iter(p, cfg_bn(v), ext, cfg_bits(v) ? tc::fwd_mask_weight() : 0.0);
    }
    for (int i = 0; i < 3; i++) own[i] = p.own[i], it[i] = p.it[i];
}

/* Element-wise comparison of two fp16/bf16 arrays on the GPU: out[0] the
 * largest |a - b| and out[1] the largest |b| as float bits (a NaN in a beats
 * every number), out[2] the number of elements whose bits differ. */
__global__ void diff_kernel(const uint16_t *a, const uint16_t *b, int64_t n, int bf16, unsigned *out)
{
    unsigned md = 0, mr = 0, nd = 0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const float x = bf16 ? __uint_as_float((unsigned)a[i] << 16) : __half2float(__ushort_as_half(a[i]));
        const float y = bf16 ? __uint_as_float((unsigned)b[i] << 16) : __half2float(__ushort_as_half(b[i]));
        md = max(md, __float_as_uint(fabsf(x - y)));
        mr = max(mr, __float_as_uint(fabsf(y)));
        nd += a[i] != b[i];
    }
    atomicMax(&out[0], md);
    atomicMax(&out[1], mr);
    atomicAdd(&out[2], nd);
}

struct Diff {
    double err; /* max |a - b| / max |b| (NaN if a holds one) */
    unsigned long long ndiff;
};

static Diff diff(const uint16_t *a, const uint16_t *b, int64_t n, int bf16)
{
    unsigned *d, h[3];
    CK(cudaMalloc(&d, sizeof h));
    CK(cudaMemset(d, 0, sizeof h));
    diff_kernel<<<1024, 256>>>(a, b, n, bf16, d);
    CK(cudaGetLastError());
    CK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    CK(cudaFree(d));
    float md, mr;
    memcpy(&md, &h[0], 4);
    memcpy(&mr, &h[1], 4);
    return {mr > 0 ? (double)md / mr : (double)md, h[2]};
}

/* Forward of the configurations in cfgs (a list of digits and letters, "" =
 * all; bit-mask ones with the default box-search mask weight and again with
 * w2 where that changes the box) on the problems in probs (digits of
 * benches[]); then, when fb: the default forward and backward alone (fb 1:
 * also fwd+bwd timed as one, and the backward of configurations 2 and 5), and
 * each picked Hopper backward (letters j..): backward alone, the sum with
 * the Hopper forward d, its outputs against the default backward's on the
 * same inputs (max |diff| / max |ref| per gradient) and bit-identical on a
 * second run. */
static int bench(int reps, double w2, const char *cfgs, const char *probs, int fb)
{
    int fails = 0;
    const double w0 = tc::fwd_mask_weight();
    auto picked = [](const char *list, int i) { return !*list || strchr(list, cfg_char(i)) != nullptr; };
    printf("%-36s %-18s %-14s %10s %9s %8s\n", "problem (fp16)", "config", "own/iter box", "fwd ms", "TFLOP/s",
           "target");
    for (const Bench &bm : benches) {
        if (!picked(probs, (int)(&bm - benches))) continue;
        Setup S;
        setup(S, bm.c, 1234);
        const Case &c = S.c;
        double win = 1;
        for (int i = 0; i < 3; i++) win *= c.K[i];
        double flop = 4.0 * c.B * c.H * (double)S.N * win * c.D;
        for (int pass = 0; pass < 2; pass++)
            for (int v = 0; v < N_END; v++) {
                if (!picked(cfgs, v) || is_wgb(v)) continue;
                if (is_wg(v) && c.D != 128) continue;
                select_cfg(v);
                int own[3], it[3], it0[3];
                tc::fwd_mask_weight() = w0;
                plan_of(c, v, own, it0);
                if (pass == 1) {
                    tc::fwd_mask_weight() = w2;
                    plan_of(c, v, own, it);
                    if (!cfg_bits(v) || !memcmp(it, it0, sizeof it)) continue;
                } else {
                    memcpy(it, it0, sizeof it);
                }
                char box[64];
                snprintf(box, sizeof box, "%dx%dx%d/%dx%dx%d", own[0], own[1], own[2], it[0], it[1], it[2]);
                double f = median_ms(c, S.p, 0, reps);
                printf("v%d %-33s %-18s %-14s %10.4f %9.1f %8.3f  w %.2f\n", v, bm.name, cfg_name(v), box, f,
                       flop / f * 1e-9, bm.target_fwd, cfg_bits(v) ? tc::fwd_mask_weight() : 0.0);
                fflush(stdout);
            }
        tc::fwd_mask_weight() = w0;
        select_cfg(-1);
        bool any_wgb = false;
        for (int k = 0; k < N_WGB; k++) any_wgb = any_wgb || picked(cfgs, N_ALL + k);
        any_wgb = any_wgb && c.D == 128;
        double fh = 0;
        if (fb && any_wgb) {
            select_cfg(tc::N_CFG + 3); /* the Hopper forward the library ships (d) */
            fh = median_ms(c, S.p, 0, reps);
            printf("fwd %s %-26s fwd %.4f ms (%.1f TFLOP/s)\n", cfg_name(g_cfg), bm.name, fh, flop / fh * 1e-9);
            select_cfg(-1);
        }
        if (fb) {
            double f = median_ms(c, S.p, 0, reps); /* also: O and lse of the default forward for what follows */
            double b = median_ms(c, S.p, 2, reps);
            if (fb == 1) {
                double fbm = median_ms(c, S.p, 1, reps);
                printf("default %-28s fwd %.4f ms; bwd alone %.4f ms; fwd+bwd %.4f ms (%.1f TFLOP/s, target %.3f)\n",
                       bm.name, f, b, fbm, 3.5 * flop / fbm * 1e-9, bm.target_fb);
                /* the backward of configurations 2 and 5 (run 4 of v3: 64-row and
                 * 128-row dQ and dK/dV blocks; since then both 64-row) */
                for (int v : {2, 5}) {
                    select_cfg(v);
                    printf("bwd v%d %-29s bwd alone %.4f ms\n", v, bm.name, median_ms(c, S.p, 2, reps));
                }
                select_cfg(-1);
            } else {
                printf("default %-28s fwd %.4f ms; bwd alone %.4f ms (%.1f TFLOP/s); sum %.4f ms (target %.3f)\n",
                       bm.name, f, b, 2.5 * flop / b * 1e-9, f + b, bm.target_fb);
            }
            fflush(stdout);
        }
        if (fb && any_wgb) {
            /* the default backward's gradients (on the default forward's O, lse) */
            Buf *g3[3] = {&S.dq, &S.dk, &S.dv};
            uint16_t *ref[3], *again[3];
            CK(run_bwd(c, S.p));
            CK(cudaDeviceSynchronize());
            for (int i = 0; i < 3; i++) {
                CK(cudaMalloc(&ref[i], g3[i]->n * 2));
                CK(cudaMalloc(&again[i], g3[i]->n * 2));
                CK(cudaMemcpy(ref[i], g3[i]->dev, g3[i]->n * 2, cudaMemcpyDeviceToDevice));
            }
            const double tol = c.bf16 ? 5e-2 : 1e-2;
            for (int k = 0; k < N_WGB; k++) {
                if (!picked(cfgs, N_ALL + k)) continue;
                select_cfg(N_ALL + k);
                for (int i = 0; i < 3; i++) CK(cudaMemset(g3[i]->dev, 0xff, g3[i]->n * 2));
                const double tb = median_ms(c, S.p, 2, reps);
                CK(cudaDeviceSynchronize());
                Diff d[3];
                for (int i = 0; i < 3; i++) {
                    d[i] = diff(g3[i]->dev, ref[i], g3[i]->n, c.bf16);
                    CK(cudaMemcpy(again[i], g3[i]->dev, g3[i]->n * 2, cudaMemcpyDeviceToDevice));
                    CK(cudaMemset(g3[i]->dev, 0xff, g3[i]->n * 2));
                }
                CK(run_bwd(c, S.p));
                CK(cudaDeviceSynchronize());
                unsigned long long nd = 0;
                for (int i = 0; i < 3; i++) nd += diff(g3[i]->dev, again[i], g3[i]->n, c.bf16).ndiff;
                const bool ok = d[0].err <= tol && d[1].err <= tol && d[2].err <= tol && nd == 0;
                printf("bwd v%d %-20s %-28s bwd alone %.4f ms (%.1f TFLOP/s); + fwd %s %.4f ms (target %.3f); "
                       "vs default dq %.2e dk %.2e dv %.2e; rerun %llu bits differ %s\n",
                       g_cfg, cfg_name(g_cfg), bm.name, tb, 2.5 * flop / tb * 1e-9, cfg_name(tc::N_CFG + 3), fh + tb,
                       bm.target_fb, d[0].err, d[1].err, d[2].err, nd, ok ? "ok" : "FAIL");
                fflush(stdout);
                fails += !ok;
                if (k == 0 || k == 2) { /* where the time goes: the pieces alone (10 runs) */
                    double tp[3];
                    for (int i = 0; i < 3; i++) {
                        g_parts = 1 << i;
                        tp[i] = median_ms(c, S.p, 2, 10);
                    }
                    g_parts = 7;
                    printf("bwd v%d %-20s %-28s delta %.4f ms, dQ %.4f ms, dK/dV %.4f ms\n", g_cfg, cfg_name(g_cfg),
                           bm.name, tp[0], tp[1], tp[2]);
                    fflush(stdout);
                }
            }
            select_cfg(-1);
            for (int i = 0; i < 3; i++) {
                CK(cudaFree(ref[i]));
                CK(cudaFree(again[i]));
            }
        }
        teardown(S);
        /* spot check of the same problem's forward: sampled rows */
        Case cc = bm.c;
        cc.bwd = 0;
        cc.name = bm.name;
        for (int v = 0; v < N_END; v++)
            if (picked(cfgs, v) && !is_wgb(v) && (!is_wg(v) || cc.D == 128)) select_cfg(v), fails += check_case(cc, 99);
        tc::fwd_mask_weight() = w2;
        for (int v = 3; v < N_END && w2 != w0; v++) /* (v8: not again with the same weight) */
            if (picked(cfgs, v) && !is_wgb(v) && (!is_wg(v) || cc.D == 128)) select_cfg(v), fails += check_case(cc, 98);
        tc::fwd_mask_weight() = w0;
        select_cfg(-1);
    }
    return fails;
}

/*
 * The Hopper dK/dV kernel's iteration replayed on the host (the kernel's
 * planning, blocks, query tiles and per-warpgroup window masks, dilation 1):
 * every (query, key) pair with the key in the query's window must get its
 * mask bit in exactly one (block, query tile), and no other pair any.
 * Returns the number of wrong pairs; *pairs counts the pairs checked.
 * sk (v11, kwg 2): the boxes of plan_dkv_sk, and each warpgroup skipping the
 * query tiles outside its keys' inverse windows as dkv_kernel's SK does (a
 * skipped tile sets none of its bits): no pair may be lost.
 */
static long dkv_cover(int kwg, int bq, const tc::Params &p0, long *pairs, bool sk = false)
{
    tc::Params p = p0;
    int ext[3], nown[3];
    tc::group_ext(p, ext);
    if (sk) {
        tc::wg::plan_dkv_sk(p, ext, bq);
    } else {
        tc::choose_box(kwg * 64, ext, p.own);
        tc::plan_iter(p, bq, ext);
    }
    auto coords = [](int r, const int box[3], int c[3]) {
        c[2] = r % box[2];
        c[1] = (r / box[2]) % box[1];
        c[0] = r / (box[1] * box[2]);
    };
    const int *n = ext;
    const int N = n[0] * n[1] * n[2];
    std::vector<int> cnt((size_t)N * N, 0);
    long bad = 0;
    for (int i = 0; i < 3; i++) nown[i] = (n[i] + p.own[i] - 1) / p.own[i];
    for (int t = 0; t < nown[0] * nown[1] * nown[2]; t++) {
        const int tt[3] = {t / (nown[1] * nown[2]), (t / nown[2]) % nown[1], t % nown[2]};
        int o[3], lo[3], hi[3], ntq[3];
        for (int i = 0; i < 3; i++) {
            int a0, b0, a1, b1;
            o[i] = tt[i] * p.own[i];
            const int klast = std::min(o[i] + p.own[i], n[i]) - 1;
            tc::inv_win32(n[i], p.K[i], p.st[i], p.causal[i], o[i], a0, b0);
            tc::inv_win32(n[i], p.K[i], p.st[i], p.causal[i], klast, a1, b1);
            lo[i] = a0;
            hi[i] = b1;
            ntq[i] = (hi[i] - lo[i] + p.it[i] - 1) / p.it[i];
        }
        for (int tq = 0; tq < ntq[0] * ntq[1] * ntq[2]; tq++) {
            int org[3], jq[3] = {tq / (ntq[1] * ntq[2]), (tq / ntq[2]) % ntq[1], tq % ntq[2]};
            for (int i = 0; i < 3; i++) org[i] = lo[i] + jq[i] * p.it[i];
            for (int r = 0; r < bq; r++) {
                int qc[3], uq[3], a[3], b[3];
                coords(r, p.it, qc);
                bool valid = r < p.itprod;
                for (int i = 0; i < 3; i++) {
                    uq[i] = org[i] + qc[i];
                    valid = valid && uq[i] < n[i];
                }
                if (!valid) continue;
                for (int i = 0; i < 3; i++) tc::win32(n[i], p.K[i], p.st[i], p.causal[i], uq[i], a[i], b[i]);
                for (int g = 0; g < kwg; g++) {
                    tc::Params kp;
                    int off[3], korg[3];
                    tc::wg::split_box(p.own, kwg, g, kp.it, off);
                    if (sk) { /* dkv_kernel's skip decision, as written there */
                        bool meet = true;
                        for (int i = 0; i < 3; i++) {
                            const int first = o[i] + off[i], last = std::min(first + kp.it[i], n[i]) - 1;
                            int a0, b0, a1, b1;
                            meet = meet && first <= last;
                            tc::inv_win32(n[i], p.K[i], p.st[i], p.causal[i], std::min(first, n[i] - 1), a0, b0);
                            tc::inv_win32(n[i], p.K[i], p.st[i], p.causal[i], std::max(last, 0), a1, b1);
                            meet = meet && org[i] < b1 && org[i] + p.it[i] > a0;
                        }
                        if (!meet) continue;
                    }
                    kp.rep[0] = kp.rep[1] = 0;
                    for (int c = 0; c < kp.it[1]; c++) kp.rep[0] |= 1ull << (c * kp.it[2]);
                    for (int c = 0; c < kp.it[0]; c++) kp.rep[1] |= 1ull << (c * kp.it[1] * kp.it[2]);
                    for (int i = 0; i < 3; i++) korg[i] = o[i] + off[i];
                    const uint64_t bits = tc::window_bits(kp, korg, a, b);
                    for (int kr = 0; kr < 64; kr++) {
                        if (!((bits >> kr) & 1)) continue;
                        int kc[3], uk[3];
                        coords(kr, kp.it, kc);
                        bool kv = true;
                        for (int i = 0; i < 3; i++) {
                            uk[i] = korg[i] + kc[i];
                            kv = kv && uk[i] < n[i];
                        }
                        if (!kv) {
                            bad++; /* a bit for a key past the extent */
                            continue;
                        }
                        const int qi = (uq[0] * n[1] + uq[1]) * n[2] + uq[2];
                        const int ki = (uk[0] * n[1] + uk[1]) * n[2] + uk[2];
                        cnt[(size_t)qi * N + ki]++;
                    }
                }
            }
        }
    }
    for (int qi = 0; qi < N; qi++) {
        int uq[3] = {qi / (n[1] * n[2]), (qi / n[2]) % n[1], qi % n[2]}, a[3], b[3];
        for (int i = 0; i < 3; i++) tc::win32(n[i], p.K[i], p.st[i], p.causal[i], uq[i], a[i], b[i]);
        for (int ki = 0; ki < N; ki++) {
            int uk[3] = {ki / (n[1] * n[2]), (ki / n[2]) % n[1], ki % n[2]};
            bool in = true;
            for (int i = 0; i < 3; i++) in = in && uk[i] >= a[i] && uk[i] < b[i];
            (*pairs)++;
            bad += cnt[(size_t)qi * N + ki] != (in ? 1 : 0);
        }
    }
    return bad;
}

/* The kernels' 32-bit window functions against lib/natten-window.h. */
static int selftest(void)
{
    long n_checked = 0, bad = 0;
    for (int n = 1; n <= 40; n++)
        for (int K = 1; K <= n; K++)
            for (int s = 1; s <= K; s++)
                for (int c = 0; c < 2; c++)
                    for (int u = 0; u < n; u++) {
                        int64_t a, b, qa, qb;
                        int a3, b3, qa3, qb3;
                        natten_window_g(n, K, s, c, u, &a, &b);
                        tc::win32(n, K, s, c, u, a3, b3);
                        natten_inverse_window_g(n, K, s, c, u, &qa, &qb);
                        tc::inv_win32(n, K, s, c, u, qa3, qb3);
                        n_checked++;
                        if (a != a3 || b != b3 || qa != qa3 || qb != qb3) {
                            if (bad++ < 5) printf("mismatch n %d K %d s %d c %d u %d\n", n, K, s, c, u);
                        }
                    }
    printf("selftest: %ld window cases, %ld mismatches\n", n_checked, bad);
    /* window_bits against a direct test of every row of random boxes */
    long nb = 0, badb = 0;
    uint32_t r = 12345;
    auto rnd = [&](int n) {
        r = r * 1664525u + 1013904223u;
        return (int)((r >> 8) % (uint32_t)n);
    };
    for (int it = 0; it < 200000; it++) {
        tc::Params p;
        memset(&p, 0, sizeof p);
        int ext[3] = {1 + rnd(40), 1 + rnd(40), 1 + rnd(40)}, bn = rnd(2) ? 64 : 32;
        for (int i = 0; i < 3; i++) p.K[i] = 1 + rnd(ext[i]), p.st[i] = 1, p.dil[i] = 1, p.L[i] = ext[i];
        tc::choose_box(rnd(2) ? 64 : 128, ext, p.own);
        tc::plan_iter(p, bn, ext, rnd(3) * 0.5);
        int org[3], a[3], b[3];
        for (int i = 0; i < 3; i++) {
            org[i] = rnd(ext[i]);
            a[i] = rnd(ext[i] + 1);
            b[i] = a[i] + rnd(ext[i] + 1 - a[i]);
            if (rnd(8) == 0) a[i] = org[i] - rnd(5), b[i] = org[i] + p.it[i] + rnd(5); /* covers the box */
        }
        uint64_t m = tc::window_bits(p, org, a, b);
        for (int row = 0; row < 64; row++) {
            int c[3] = {row / (p.it[1] * p.it[2]), (row / p.it[2]) % p.it[1], row % p.it[2]};
            bool want = row < p.itprod;
            for (int i = 0; i < 3; i++) want = want && org[i] + c[i] >= a[i] && org[i] + c[i] < b[i];
            nb++;
            if (want != (bool)((m >> row) & 1)) {
                if (badb++ < 5)
                    printf("window_bits mismatch: it %dx%dx%d row %d org %d,%d,%d\n", p.it[0], p.it[1], p.it[2], row,
                           org[0], org[1], org[2]);
            }
        }
    }
    printf("selftest: %ld window-bit cases, %ld mismatches\n", nb, badb);
    /* the Hopper dK/dV kernel's warpgroup sub-boxes (split_box): row 64 g + r'
     * of a 128-row owned box is row r' of warpgroup g's sub-box at its offset */
    long ns = 0, bads = 0;
    for (int it = 0; it < 20000; it++) {
        int ext[3] = {1 + rnd(300), 1 + rnd(300), 1 + rnd(300)}, own[3];
        if (rnd(4) == 0) ext[rnd(3)] = 1;
        if (rnd(4) == 0) ext[rnd(3)] = 1;
        tc::choose_box(128, ext, own);
        for (int g = 0; g < 2; g++) {
            int sub[3], o[3];
            tc::wg::split_box(own, 2, g, sub, o);
            ns++;
            bool okb = sub[0] * sub[1] * sub[2] == 64;
            for (int r = 0; r < 64 && okb; r++) {
                const int R = 64 * g + r;
                const int c[3] = {R / (own[1] * own[2]), (R / own[2]) % own[1], R % own[2]};
                const int cs[3] = {r / (sub[1] * sub[2]), (r / sub[2]) % sub[1], r % sub[2]};
                for (int i = 0; i < 3; i++) okb = okb && c[i] == o[i] + cs[i];
            }
            if (!okb && bads++ < 5) printf("split_box mismatch: own %dx%dx%d g %d\n", own[0], own[1], own[2], g);
        }
    }
    printf("selftest: %ld sub-box cases, %ld mismatches\n", ns, bads);
    /* the Hopper dK/dV kernel's coverage of every (query, key) pair */
    long np = 0, badc = 0;
    int nprob = 0;
    for (int it = 0; it < 300; it++) {
        tc::Params p;
        memset(&p, 0, sizeof p);
        const int rank = 1 + rnd(3);
        for (int i = 0; i < 3; i++) {
            p.L[i] = i < rank ? 1 + rnd(rank == 1 ? 400 : rank == 2 ? 30 : 11) : 1;
            p.K[i] = 1 + rnd(p.L[i]);
            p.st[i] = 1 + rnd(p.K[i]);
            p.causal[i] = rnd(3) == 0;
            p.dil[i] = 1;
        }
        for (int kwg = 1; kwg <= 3; kwg++) /* 3: two warpgroups with SK (v11) */
            for (int bq = 32; bq <= 64; bq *= 2) {
                const long b0 = badc;
                badc += dkv_cover(kwg == 3 ? 2 : kwg, bq, p, &np, kwg == 3);
                nprob++;
                if (badc != b0 && badc - b0 < 100000)
                    printf("dkv coverage: L %d,%d,%d K %d,%d,%d s %d,%d,%d c %d,%d,%d kwg %d%s bq %d: %ld wrong pairs\n",
                           p.L[0], p.L[1], p.L[2], p.K[0], p.K[1], p.K[2], p.st[0], p.st[1], p.st[2], p.causal[0],
                           p.causal[1], p.causal[2], kwg == 3 ? 2 : kwg, kwg == 3 ? " sk" : "", bq, badc - b0);
            }
    }
    printf("selftest: dK/dV coverage, %d plans, %ld pairs, %ld wrong\n", nprob, np, badc);
    return bad != 0 || badb != 0 || bads != 0 || badc != 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "check";
    int reps = argc > 2 ? atoi(argv[2]) : 20;
    if (!strcmp(mode, "selftest")) return selftest();
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s, sm_%d%d, %d SMs\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
    int fails = 0;
    if (!strcmp(mode, "probe")) return 0;
    if (!strcmp(mode, "check") || !strcmp(mode, "all") || !strcmp(mode, "checkv")) {
        int n = (int)(sizeof checks / sizeof checks[0]);
        int v0 = 0, v1 = N_END; /* checkv N: configuration N alone (for the sanitizers) */
        if (!strcmp(mode, "checkv")) {
            if (reps < 0 || reps >= N_END) {
                fprintf(stderr, "checkv: configurations 0..%d\n", N_END - 1);
                return 2;
            }
            v0 = reps, v1 = reps + 1;
        }
        for (int v = v0; v < v1; v++) {
            select_cfg(v);
            for (const Case &c : checks) {
                /* the Hopper variants (forward and backward): every case, at head dim 128 */
                Case c128 = c;
                if (is_wg(v) || is_wgb(v)) c128.D = 128;
                fails += check_case(c128, 42 + (uint32_t)(&c - checks) + 100 * v);
            }
        }
        select_cfg(-1);
        printf("check: %d failed of %d (%d kernel configurations)\n", fails, (v1 - v0) * n, v1 - v0);
    }
    if (!strcmp(mode, "bench") || !strcmp(mode, "all"))
        fails += bench(reps, argc > 3 ? atof(argv[3]) : 1.0, argc > 4 ? argv[4] : "", argc > 5 ? argv[5] : "",
                       argc > 6 ? atoi(argv[6]) : 1);
    return fails ? 1 : 0;
}
