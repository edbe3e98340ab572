// tc-emu: a host emulation of cuda-tiled's tensor-core kernels (mma2d.cuh),
// for checking their index arithmetic where no GPU is at hand.  gen.py copies
// the kernels, their structs and host plans out of the sources with the asm
// primitives removed; this file supplies those (mma.sync m16n8k16, ldmatrix,
// shfl, cp.async, st.shared) and runs one OS thread per CUDA thread, warp
// collectives meeting at per-warp barriers.  Shared memory starts as 0xff
// (NaN halves), so a product that reads a position nobody wrote shows up.
// Each problem runs the wide kernels (qkm/avm, fm_plan), the lean ones
// (qkl/avl, fl_plan), their head-group variants (qkh/avh, fh_plan, where
// it takes the layout) and the bulk-copy QK and AV of bulk2d.cuh (qkb,
// qb_plan; avb, ab_plan, its attention tensor 16-byte aligned; each where
// it applies, else qkh/avh; their mbarriers and named barriers emulated
// with phases, 3 blocks so that each walks several tiles) in fp16 and compares QK (with
// RPB, -inf where masked) and AV against a float reference computed from the
// same inputs.
//
//   python3 tools/tc-emu/gen.py . /tmp/tc-emu-gen.h &&
//   g++ -std=c++20 -O1 -pthread -w -DTC_EMU_GEN=\"/tmp/tc-emu-gen.h\" \
//       tools/tc-emu/emu.cpp -o /tmp/tc-emu && /tmp/tc-emu [PROBLEM ...]
//
// (GCC 12+ for _Float16 and <barrier>; PROBLEM: indices into probs below, all
// of them without; about six minutes for all problems on two cores, 18 and 24
// nearly half of it.)  What it cannot see: timing, memory ordering (cp.async copies at
// once), bank conflicts, bf16.
// TC_EMU_NOTAB=1: the lean and head-group kernels compute their tiles (flgeo's
// table switched off, as for problems with more than FL_TT tiles an axis).
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <thread>
#include <vector>
typedef int64_t i64;
typedef _Float16 __half;
struct __nv_bfloat16 {
    uint16_t x;
};
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct uint4 {
    unsigned x, y, z, w;
};
struct uint2 {
    unsigned x, y;
};
static inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
#define __device__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(a, b)
#define FM_ON 1
#define QB_ON 1
thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }
static inline float __fdividef(float a, float b) { return a / b; }
static inline float to_acc(__half x) { return (float)x; }
static inline void put(__half *p, float x) { *p = (__half)x; }
struct natten_problem {
    int rank;
    i64 heads;
    i64 extent[3];
    int kernel[3], dilation[3], stride[3], causal[3];
    i64 batch;
};
// per-block, per-warp state
struct Warp {
    std::barrier<> bar{32};
    uint32_t u[32][8];
    const void *ptr[32];
    float f[32][4];
};
// an mbarrier (bulk2d.cuh): arrivals expected a phase, still pending, phases
// completed; tx: transaction bytes expected (qb_arrive_tx) less those done (qb_load)
struct MBar {
    std::mutex m;
    std::condition_variable cv;
    unsigned count = 0, pending = 0, phase = 0;
    long long tx = 0;
};
struct Block {
    unsigned char *smem;
    std::barrier<> *bar;
    std::vector<std::unique_ptr<Warp>> warps;
    std::mutex lock;                                    // for the two maps
    std::map<unsigned, std::unique_ptr<MBar>> mbars;    // by shared-memory offset
    std::map<int, std::unique_ptr<std::barrier<>>> named; // bar.sync id
};
thread_local Block *cur;
static inline unsigned char *emu_smem() { return cur->smem; }
static inline Warp &W_() { return *cur->warps[threadIdx.x / 32]; }
static inline int lane_() { return threadIdx.x & 31; }
static void __syncthreads() { cur->bar->arrive_and_wait(); }
static void __syncwarp() { W_().bar.arrive_and_wait(); }
static int __shfl_sync(unsigned, int v, int src) {
    Warp &w = W_();
    w.u[lane_()][0] = (uint32_t)v;
    w.bar.arrive_and_wait();
    int r = (int)w.u[src][0];
    w.bar.arrive_and_wait();
    return r;
}
static unsigned __shfl_xor_sync(unsigned m, unsigned v, int x) { return (unsigned)__shfl_sync(m, (int)v, lane_() ^ x); }
static inline float h2f(uint32_t bits16) {
    uint16_t b = (uint16_t)bits16;
    __half h;
    memcpy(&h, &b, 2);
    return (float)h;
}
template <typename T> struct fm_is_half;
template <typename T> static void fm_mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    Warp &w = W_();
    int l = lane_();
    for (int i = 0; i < 4; i++)
        w.u[l][i] = a[i];
    w.u[l][4] = b0;
    w.u[l][5] = b1;
    w.bar.arrive_and_wait();
    float A[16][16], B[16][8];
    for (int ln = 0; ln < 32; ln++) {
        int g = ln >> 2, t = ln & 3;
        uint32_t *r = w.u[ln];
        A[g][2 * t] = h2f(r[0]);
        A[g][2 * t + 1] = h2f(r[0] >> 16);
        A[g + 8][2 * t] = h2f(r[1]);
        A[g + 8][2 * t + 1] = h2f(r[1] >> 16);
        A[g][2 * t + 8] = h2f(r[2]);
        A[g][2 * t + 9] = h2f(r[2] >> 16);
        A[g + 8][2 * t + 8] = h2f(r[3]);
        A[g + 8][2 * t + 9] = h2f(r[3] >> 16);
        B[2 * t][g] = h2f(r[4]);
        B[2 * t + 1][g] = h2f(r[4] >> 16);
        B[2 * t + 8][g] = h2f(r[5]);
        B[2 * t + 9][g] = h2f(r[5] >> 16);
    }
    w.bar.arrive_and_wait();
    int g = l >> 2, t = l & 3;
    for (int e = 0; e < 4; e++) {
        int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
        float s = c[e];
        for (int k = 0; k < 16; k++)
            s += A[row][k] * B[k][col];
        c[e] = s;
    }
}
template <typename T> static void fm_mma0(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    c[0] = c[1] = c[2] = c[3] = 0.f;
    fm_mma<T>(c, a, b0, b1);
}
// ldmatrix: n matrices; lanes 8i..8i+7 give row addresses of matrix i
static void ldsm(const void *p, int n, bool trans, unsigned *r) {
    Warp &w = W_();
    int l = lane_();
    w.ptr[l] = p;
    w.bar.arrive_and_wait();
    for (int i = 0; i < n; i++) {
        // matrix i: rows from lanes 8i..8i+7, 8 halves each
        uint16_t M[8][8];
        for (int rr = 0; rr < 8; rr++)
            memcpy(M[rr], w.ptr[8 * i + rr], 16);
        int g = l >> 2, t = l & 3;
        uint16_t lo, hi;
        if (!trans) {
            lo = M[g][2 * t];
            hi = M[g][2 * t + 1];
        } else {
            lo = M[2 * t][g];
            hi = M[2 * t + 1][g];
        }
        r[i] = lo | (uint32_t)hi << 16;
    }
    w.bar.arrive_and_wait();
}
static void fm_ldsm_t4(const void *p, unsigned &r0, unsigned &r1, unsigned &r2, unsigned &r3) {
    unsigned r[4];
    ldsm(p, 4, true, r);
    r0 = r[0];
    r1 = r[1];
    r2 = r[2];
    r3 = r[3];
}
static void fm_ldsm4(const void *p, unsigned &r0, unsigned &r1, unsigned &r2, unsigned &r3) {
    unsigned r[4];
    ldsm(p, 4, false, r);
    r0 = r[0];
    r1 = r[1];
    r2 = r[2];
    r3 = r[3];
}
static void fm_ldsm2(const void *p, unsigned &r0, unsigned &r1) {
    unsigned r[2];
    ldsm(p, 2, false, r);
    r0 = r[0];
    r1 = r[1];
}
static void fm_cp16(void *dst, const void *src) { memcpy(dst, src, 16); }
static void fm_cp8(void *dst, const void *src) { memcpy(dst, src, 8); }
static void fm_cp_wait() {}
static unsigned __cvta_generic_to_shared(const void *p) { return (unsigned)((const unsigned char *)p - cur->smem); }
static void fl_sts16(unsigned a, unsigned short v) { memcpy(cur->smem + a, &v, 2); }
// bulk2d.cuh's primitives: mbarriers with phases (an arrival on a barrier
// whose phase has no pending arrival left, or a wait of 30 s, fails the run),
// named barriers; copies (cp.async, bulk stores) happen at once
static MBar &emu_mbar(unsigned a) {
    std::lock_guard<std::mutex> g(cur->lock);
    auto &b = cur->mbars[a];
    if (!b) b.reset(new MBar);
    return *b;
}
// the phase completes when no arrival is pending and no transaction byte
// (called with b.m held)
static void emu_mbar_step(MBar &b) {
    if (b.pending == 0 && b.tx == 0) {
        b.phase++;
        b.pending = b.count;
        b.cv.notify_all();
    }
}
static unsigned qb_sa(const void *p) { return __cvta_generic_to_shared(p); }
static void qb_init(unsigned a, unsigned n) {
    MBar &b = emu_mbar(a);
    std::lock_guard<std::mutex> g(b.m);
    b.count = b.pending = n;
    b.phase = 0;
}
static void qb_init_fence() {}
static void qb_arrive(unsigned a) {
    MBar &b = emu_mbar(a);
    std::lock_guard<std::mutex> g(b.m);
    if (b.count == 0) {
        fflush(stdout);
        fprintf(stderr, "  mbarrier %u: arrival before its initialisation\n", a);
        abort();
    }
    if (b.pending == 0) {
        fflush(stdout);
        fprintf(stderr, "  mbarrier %u: arrival on a phase that waits for transactions only\n", a);
        abort();
    }
    --b.pending;
    emu_mbar_step(b);
}
static void qb_arrive_copies(unsigned a) { qb_arrive(a); }
static void qb_arrive_tx(unsigned a, unsigned bytes) {
    {
        MBar &b = emu_mbar(a);
        std::lock_guard<std::mutex> g(b.m);
        b.tx += bytes;
    }
    qb_arrive(a);
}
// the copy at once, then its bytes done on the barrier (a phase whose
// expected bytes never match its copies' never completes: the 30-s wait fails)
static void qb_load(unsigned s, const void *src, unsigned bytes, unsigned a) {
    memcpy(cur->smem + s, src, bytes);
    MBar &b = emu_mbar(a);
    std::lock_guard<std::mutex> g(b.m);
    b.tx -= bytes;
    emu_mbar_step(b);
}
// the phase of this parity has completed: the one in progress has the other parity
static void qb_wait(unsigned a, unsigned parity) {
    MBar &b = emu_mbar(a);
    std::unique_lock<std::mutex> g(b.m);
    if (!b.cv.wait_for(g, std::chrono::seconds(30), [&] { return (b.phase & 1u) != parity; })) {
        fflush(stdout);
        fprintf(stderr, "  mbarrier %u: thread %u waited 30 s for parity %u (phase %u): deadlock\n", a, threadIdx.x,
                parity, b.phase);
        abort();
    }
}
static void qb_cp16(unsigned s, const void *g) { memcpy(cur->smem + s, g, 16); }
static void qb_store(void *dst, unsigned src, unsigned bytes) { memcpy(dst, cur->smem + src, bytes); }
template <bool READ> static void qb_store_wait() {}
static void qb_fence() {}
static void qb_sync(int id, int threads) {
    std::barrier<> *b;
    {
        std::lock_guard<std::mutex> g(cur->lock);
        auto &p = cur->named[id];
        if (!p) p.reset(new std::barrier<>(threads));
        b = p.get();
    }
    b->arrive_and_wait();
}
#ifndef TC_EMU_GEN
#define TC_EMU_GEN "tc-emu-gen.h"
#endif
#include TC_EMU_GEN

// ---- harness ----
static void launch(dim3 grid, dim3 block, size_t smem, std::function<void()> body) {
    gridDim = grid;
    blockDim = block;
    std::vector<unsigned char> mem(smem);
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                memset(mem.data(), 0xff, mem.size()); /* NaN halves: reads of unwritten memory show */
                Block B;
                B.smem = mem.data();
                std::barrier<> bar((std::ptrdiff_t)block.x);
                B.bar = &bar;
                for (unsigned w = 0; w < (block.x + 31) / 32; w++)
                    B.warps.emplace_back(new Warp());
                std::vector<std::thread> th;
                for (unsigned t = 0; t < block.x; t++)
                    th.emplace_back([&, t, x, y, z] {
                        cur = &B;
                        threadIdx = dim3(t, 0, 0);
                        blockIdx = dim3(x, y, z);
                        body();
                    });
                for (auto &t : th)
                    t.join();
                /* every phase's expected bytes met by its copies: bytes left
                 * over mean a count that does not match the copies (on a GPU
                 * an early or late phase) */
                for (auto &m : B.mbars)
                    if (m.second->tx != 0) {
                        fflush(stdout);
                        fprintf(stderr, "  mbarrier %u: %lld transaction bytes left at the block's end\n", m.first,
                                m.second->tx);
                        abort();
                    }
            }
}

struct Prob {
    int rank, B, H, D, Dv, L[2], K[2], d[2], s[2], c[2], rpb, headsfirst;
};
static void win(int n, int K, int s, int c, int u, int &a, int &b) {
    if (c) {
        int lead = std::min((u / s) * s + s - 1, n - 1);
        a = std::max(lead - K + 1, 0);
        b = u + 1;
    } else {
        int lead = std::min((u / s) * s + s / 2, n - 1);
        int st = std::max(std::min(lead - K / 2, n - K), 0);
        a = st;
        b = st + K;
    }
}
struct Ten {
    std::vector<__half> v;
    f2view view;
};
// [B, X0, X1, H, C] (heads last) or [B, H, X0, X1, C]; rows/cols as f2mk sees them
static Ten mk(const Prob &P, int C, std::mt19937 &rng, bool fill, bool hf) {
    Ten t;
    int X0 = P.rank == 2 ? P.L[0] : 1, X1 = P.rank == 2 ? P.L[1] : P.L[0];
    t.v.resize((size_t)P.B * P.H * X0 * X1 * C + 4);
    std::uniform_real_distribution<float> U(-1, 1);
    for (auto &x : t.v)
        x = fill ? (__half)U(rng) : (__half)NAN;
    // odd byte offset for attention tensors: +1 element
    i64 sC = 1, sX1, sX0, sH, sB;
    if (hf) {
        sX1 = C;
        sX0 = (i64)X1 * C;
        sH = (i64)X0 * X1 * C;
        sB = sH * P.H;
    } else {
        sH = C;
        sX1 = (i64)P.H * C;
        sX0 = sX1 * X1;
        sB = sX0 * X0;
    }
    (void)sC;
    t.view.p = (char *)t.v.data();
    t.view.sb = sB;
    t.view.sh = sH;
    t.view.sr = (int)sX0;
    t.view.sc = (int)sX1;
    return t;
}
static natten_problem np(const Prob &P) {
    natten_problem p;
    memset(&p, 0, sizeof p);
    p.rank = P.rank;
    p.batch = P.B;
    p.heads = P.H;
    for (int a = 0; a < 3; a++) {
        p.extent[a] = 1;
        p.kernel[a] = 1;
        p.dilation[a] = 1;
        p.stride[a] = 1;
        p.causal[a] = 0;
    }
    for (int a = 0; a < P.rank; a++) {
        p.extent[a] = P.L[a];
        p.kernel[a] = P.K[a];
        p.dilation[a] = P.d[a];
        p.stride[a] = P.s[a];
        p.causal[a] = P.c[a];
    }
    return p;
}
static int failures = 0;
// mode 0: qkm/avm (fm_plan); 1: qkl/avl (fl_plan); 2: qkh/avh (fh_plan, at most hmax heads a block;
// skipped where it refuses the layout); 3: qkb (qb_plan, TC_EMU_NB blocks, default 3: several tiles a
// block) and avb (ab_plan; avh where it refuses)
static void run(const Prob &P, int mode, int seed, int hmax = 4) {
    const bool lean = mode == 1;
    std::mt19937 rng(seed);
    // rows = axis 0 in 2-D, unit in 1-D
    int K0 = P.rank == 2 ? P.K[0] : 1, K1 = P.rank == 2 ? P.K[1] : P.K[0], W = K0 * K1;
    int L0 = P.rank == 2 ? P.L[0] : 1, L1 = P.rank == 2 ? P.L[1] : P.L[0];
    int d0 = P.rank == 2 ? P.d[0] : 1, d1 = P.rank == 2 ? P.d[1] : P.d[0];
    int s0 = P.rank == 2 ? P.s[0] : 1, s1 = P.rank == 2 ? P.s[1] : P.s[0];
    int c0 = P.rank == 2 ? P.c[0] : 0, c1 = P.rank == 2 ? P.c[1] : P.c[0];
    // headsfirst 2: the token tensors heads-first, the attention ones heads-last (check_cuda's layout)
    const bool hft = P.headsfirst != 0, hfa = P.headsfirst == 1;
    Ten Q = mk(P, P.D, rng, true, hft), K = mk(P, P.D, rng, true, hft), V = mk(P, P.Dv, rng, true, hft);
    Ten A = mk(P, W, rng, false, hfa), Wt = mk(P, W, rng, true, hfa), O = mk(P, P.Dv, rng, false, hft);
    // odd offset for the attention tensors (2-byte alignment only), unless
    // TC_EMU_AL=1: then 8 bytes, so that the head-group kernels may take
    // padded runs (fh_al4, fh_pad_pick) where the strides allow
    const int aoff = getenv("TC_EMU_AL") ? 8 : 2;
    A.view.p += aoff;
    Wt.view.p += aoff;
    std::vector<__half> rpbv((size_t)P.H * (2 * K0 - 1) * (2 * K1 - 1));
    std::uniform_real_distribution<float> U(-1, 1);
    for (auto &x : rpbv)
        x = (__half)U(rng);
    f2view R;
    R.p = (char *)rpbv.data();
    R.sb = 0;
    R.sh = (2 * K0 - 1) * (2 * K1 - 1);
    R.sr = 2 * K1 - 1;
    R.sc = 1;
    natten_problem p = np(P);
    f2plan F;
    flgeo G;
    const float mval = -INFINITY;
    int causal = c0 | c1;
    // QK
    // (mode 3: qkb where qb_plan takes the problem, else qkh as mode 2)
    qbgeo QB;
    const bool qkb = mode == 3 && qb_plan(&p, 227 * 1024, P.D, Q.view, K.view, A.view.sh, A.view.sc, F, QB);
    if (mode == 3 && !qkb) printf("  bulk: qb_plan refused (qkh)\n");
    if (qkb) {
        qbgeo &B = QB;
        if (getenv("TC_EMU_NOTAB")) B.F.tt = 0;
        const int nb = getenv("TC_EMU_NB") ? atoi(getenv("TC_EMU_NB")) : 3;
        F.grid = dim3((unsigned)std::max(1, std::min(B.items, nb)), 1, 1);
        launch(F.grid, F.block, F.smem, [&] {
            if (P.rpb)
                qkb_kernel<__half, true>(B, Q.view, K.view, R, A.view, P.D);
            else
                qkb_kernel<__half, false>(B, Q.view, K.view, R, A.view, P.D);
        });
    } else if (mode >= 2) {
        if (!fh_plan(&p, 2, P.H, 72 * 1024, 112 * 1024, hmax, false, A.view.sh, A.view.sc, 0, 0, 0,
                     fh_al4(A.view) ? 1u : 0u, F, G)) {
            printf("  heads: fh_plan(qk) refused (heads not adjacent, or nothing to gain)\n");
            return;
        }
        if (getenv("TC_EMU_NOTAB")) G.tt = 0; // the tiles computed in the kernel, not from the table
        launch(F.grid, F.block, F.smem, [&] {
            if (P.rpb)
                qkh_kernel<__half, true>(G, Q.view, K.view, R, A.view, P.D, mval, causal);
            else
                qkh_kernel<__half, false>(G, Q.view, K.view, R, A.view, P.D, mval, causal);
        });
    } else if (lean) {
        if (!fl_plan(&p, 2, P.H, 72 * 1024, false, F, G)) {
            printf("  fl_plan(qk) refused\n");
            return;
        }
        if (getenv("TC_EMU_NOTAB")) G.tt = 0; // the tiles computed in the kernel, not from the table
        launch(F.grid, F.block, F.smem, [&] {
            if (P.rpb)
                qkl_kernel<__half, true>(G, Q.view, K.view, R, A.view, P.D, mval, causal);
            else
                qkl_kernel<__half, false>(G, Q.view, K.view, R, A.view, P.D, mval, causal);
        });
    } else {
        if (!fm_plan(&p, 2, P.H, 72 * 1024, F)) {
            printf("  fm_plan refused\n");
            return;
        }
        launch(F.grid, F.block, F.smem,
               [&] { qkm_kernel<__half>(F.g, Q.view, K.view, R, A.view, P.D, P.rpb, mval, causal); });
    }
    // AV (mode 3: avb where ab_plan takes the problem, its attention tensor
    // 16-byte aligned for it; else avh)
    bool avb = false;
    if (mode == 3) {
        qbgeo B;
        f2plan FB;
        Wt.view.p -= aoff;
        avb = ab_plan(&p, 227 * 1024, P.Dv, Wt.view, V.view, O.view, FB, B);
        if (avb) {
            if (getenv("TC_EMU_NOTAB")) B.F.tt = 0;
            const int nb = getenv("TC_EMU_NB") ? atoi(getenv("TC_EMU_NB")) : 3;
            FB.grid = dim3((unsigned)std::max(1, std::min(B.items, nb)), 1, 1);
            launch(FB.grid, FB.block, FB.smem, [&] { avb_kernel<__half>(B, Wt.view, V.view, O.view, P.Dv); });
            printf("  bulk av: avb, block %u, smem %zu, tile %d x %d\n", FB.block.x, FB.smem, FB.g.ax[0].T,
                   FB.g.ax[1].T);
        } else {
            printf("  bulk av: ab_plan refused (avh)\n");
            Wt.view.p += aoff;
        }
    }
    if (avb) {
    } else if (mode >= 2) {
        f2plan FA;
        if (!fh_plan(&p, 2, P.H, 72 * 1024, 112 * 1024, hmax, true, Wt.view.sh, Wt.view.sc, P.Dv, O.view.sh,
                     O.view.sc, (fh_al4(Wt.view) ? 1u : 0u) | (fh_al4(O.view) ? 2u : 0u), FA, G)) {
            printf("  heads: fh_plan(av) refused\n");
            return;
        }
        if (getenv("TC_EMU_NOTAB")) G.tt = 0; // the tiles computed in the kernel, not from the table
        launch(FA.grid, FA.block, FA.smem, [&] { avh_kernel<__half>(G, Wt.view, V.view, O.view, P.Dv); });
        if (mode == 2) F = FA;
    } else if (lean) {
        if (!fl_plan(&p, 2, P.H, 72 * 1024, true, F, G)) {
            printf("  fl_plan(av) refused\n");
            return;
        }
        if (getenv("TC_EMU_NOTAB")) G.tt = 0; // the tiles computed in the kernel, not from the table
        launch(F.grid, F.block, F.smem, [&] { avl_kernel<__half>(G, Wt.view, V.view, O.view, P.Dv); });
    } else {
        launch(F.grid, F.block, F.smem, [&] { avm_kernel<__half>(F.g, Wt.view, V.view, O.view, P.Dv); });
    }
    // reference (float, from the fp16 inputs)
    double eq = 0, ea = 0;
    long bad = 0;
    auto at = [](Ten &t, int b, int h, int r, int c) {
        return (__half *)t.view.p + b * t.view.sb + h * t.view.sh + (i64)r * t.view.sr + (i64)c * t.view.sc;
    };
    for (int b = 0; b < P.B; b++)
        for (int h = 0; h < P.H; h++)
            for (int i0 = 0; i0 < L0; i0++)
                for (int i1 = 0; i1 < L1; i1++) {
                    int g0 = i0 % d0, u0 = i0 / d0, n0 = (L0 - g0 + d0 - 1) / d0;
                    int g1 = i1 % d1, u1 = i1 / d1, n1 = (L1 - g1 + d1 - 1) / d1;
                    int ra, rb, ca, cb;
                    win(n0, K0, s0, c0, u0, ra, rb);
                    win(n1, K1, s1, c1, u1, ca, cb);
                    __half *a = at(A, b, h, i0, i1), *wt = at(Wt, b, h, i0, i1);
                    std::vector<double> o(P.Dv, 0.0);
                    for (int tr = 0; tr < K0; tr++)
                        for (int tc = 0; tc < K1; tc++) {
                            int slot = tr * K1 + tc;
                            bool ok = tr < rb - ra && tc < cb - ca;
                            double ref = -INFINITY;
                            int kr = (ra + tr) * d0 + g0, kc = (ca + tc) * d1 + g1;
                            if (ok) {
                                double s = 0;
                                __half *q = at(Q, b, h, i0, i1), *k = at(K, b, h, kr, kc);
                                for (int x = 0; x < P.D; x++)
                                    s += (double)(float)q[x] * (double)(float)k[x];
                                if (P.rpb)
                                    s += (float)
                                        rpbv[h * R.sh + (ra + tr - u0 + K0 - 1) * R.sr + (ca + tc - u1 + K1 - 1)];
                                ref = s;
                                __half *v = at(V, b, h, kr, kc);
                                for (int x = 0; x < P.Dv; x++)
                                    o[x] += (double)(float)wt[slot] * (double)(float)v[x];
                            }
                            double got = (float)a[slot];
                            if (std::isinf(ref)) {
                                if (!(std::isinf(got) && got < 0)) {
                                    if (bad++ < 5)
                                        printf("  qk b%d h%d (%d,%d) slot %d: got %g want -inf\n", b, h, i0, i1, slot,
                                               got);
                                }
                            } else if (!(std::fabs(got - ref) <= 2e-3 * (1 + std::fabs(ref)))) {
                                if (bad++ < 5)
                                    printf("  qk b%d h%d (%d,%d) slot %d: got %g want %g\n", b, h, i0, i1, slot, got,
                                           ref);
                            } else
                                eq = std::max(eq, std::fabs(got - ref));
                        }
                    __half *op = at(O, b, h, i0, i1);
                    for (int x = 0; x < P.Dv; x++) {
                        double got = (float)op[x];
                        if (!(std::fabs(got - o[x]) <= 2e-3 * (1 + std::fabs(o[x])))) {
                            if (bad++ < 10)
                                printf("  av b%d h%d (%d,%d) d %d: got %g want %g\n", b, h, i0, i1, x, got, o[x]);
                        } else
                            ea = std::max(ea, std::fabs(got - o[x]));
                    }
                }
    // neighbours of the attention tensor untouched (the element before and after)
    if (!std::isnan((float)A.v[0])) {
        bad++;
        printf("  qk wrote before the tensor\n");
    }
    printf("  %s: max err qk %.3g av %.3g, %ld bad; grid %u x %u x %u, block %u, smem %zu, tile %d x %d",
           mode == 3 ? "bulk" : mode == 2 ? (hmax < 4 ? "heads-2" : "heads") : lean ? "lean" : "default", eq, ea, bad, F.grid.x, F.grid.y, F.grid.z, F.block.x, F.smem, F.g.ax[0].T,
           F.g.ax[1].T);
    if (mode == 2) printf(", av pads %d/%d", G.ra.pad, G.ro.pad);
    printf("\n");
    if (bad)
        failures++;
}
int main(int argc, char **argv) {
    std::vector<Prob> probs = {
        // rank, B, H, D, Dv, L, K, d, s, c, rpb, headsfirst
        {2, 1, 2, 32, 32, {20, 21}, {7, 7}, {1, 1}, {1, 1}, {0, 0}, 0, 0},
        {2, 1, 1, 32, 32, {20, 21}, {7, 7}, {1, 1}, {1, 1}, {0, 0}, 1, 1},
        {2, 2, 3, 32, 32, {30, 33}, {7, 5}, {1, 2}, {1, 1}, {1, 0}, 0, 0},
        {2, 1, 2, 16, 16, {17, 19}, {5, 7}, {3, 1}, {1, 1}, {0, 0}, 1, 1},
        {1, 2, 2, 32, 32, {40, 1}, {9, 1}, {1, 1}, {1, 1}, {0, 0}, 1, 0},
        {2, 1, 2, 32, 16, {23, 26}, {5, 3}, {1, 1}, {3, 2}, {0, 0}, 0, 0},
        {2, 1, 2, 16, 32, {19, 21}, {3, 5}, {2, 1}, {1, 1}, {1, 1}, 0, 1},
        {2, 2, 1, 32, 32, {14, 18}, {3, 3}, {1, 1}, {3, 3}, {0, 0}, 0, 0},
        {2, 1, 3, 16, 16, {9, 37}, {7, 7}, {1, 1}, {1, 1}, {0, 1}, 1, 0},
        {2, 1, 1, 32, 32, {56, 56}, {7, 7}, {1, 1}, {1, 1}, {0, 0}, 0, 0},
        {2, 1, 2, 32, 32, {12, 44}, {3, 3}, {1, 1}, {1, 1}, {0, 0}, 0, 0},
        {2, 1, 1, 32, 32, {21, 30}, {5, 5}, {1, 2}, {2, 2}, {1, 1}, 0, 1},
        {2, 1, 1, 16, 32, {25, 31}, {4, 6}, {2, 3}, {4, 3}, {0, 1}, 0, 0},
        {2, 1, 1, 32, 32, {20, 24}, {9, 11}, {1, 1}, {1, 1}, {0, 0}, 1, 0},
        // head groups: 4 heads (one run a tile row) with RPB, causal with a stride, 1-D, 6 heads
        {2, 2, 4, 32, 32, {19, 22}, {7, 7}, {1, 1}, {1, 1}, {0, 0}, 1, 0},
        {2, 1, 4, 16, 16, {13, 17}, {5, 3}, {1, 1}, {2, 1}, {1, 1}, 0, 0},
        {1, 2, 4, 32, 32, {45, 1}, {7, 1}, {1, 1}, {1, 1}, {0, 0}, 0, 0},
        {2, 1, 6, 32, 32, {17, 20}, {3, 5}, {2, 1}, {1, 1}, {0, 0}, 1, 0},
        {2, 1, 4, 32, 32, {56, 56}, {7, 7}, {1, 1}, {1, 1}, {0, 0}, 0, 0},
        // dilated columns (one run a query), token tensors heads-first
        {2, 1, 4, 32, 32, {15, 23}, {3, 7}, {1, 2}, {1, 1}, {0, 0}, 1, 2},
        {2, 2, 2, 16, 32, {11, 27}, {5, 5}, {2, 1}, {1, 3}, {1, 0}, 0, 2},
        // four heads, rows 21 x 196 elements apart: with TC_EMU_AL=1 padded runs (pad 32) that start
        // at 0 and 4 mod 8 elements, a partial last tile (chunks of two queries, partial chunks)
        {2, 2, 4, 32, 32, {19, 21}, {7, 7}, {1, 1}, {1, 1}, {0, 0}, 0, 0},
        // the bulk-copy QK: even windows with row dilation and RPB (2 x 8 tiles); two heads, row dilation
        // and stride (4 x 32); check_cuda's even-window shape over three images
        {2, 2, 4, 32, 32, {17, 19}, {6, 4}, {2, 1}, {1, 1}, {0, 0}, 1, 0},
        {2, 1, 2, 32, 32, {33, 29}, {7, 5}, {3, 1}, {2, 1}, {0, 0}, 0, 0},
        {2, 3, 4, 32, 32, {30, 40}, {6, 4}, {1, 1}, {1, 1}, {0, 0}, 0, 0},
        // the bulk-copy AV (aligned runs): check_cuda's two avb shapes
        {2, 2, 2, 32, 32, {18, 20}, {5, 5}, {2, 1}, {1, 1}, {0, 0}, 0, 0},
        {2, 1, 1, 32, 32, {16, 24}, {4, 6}, {1, 1}, {1, 2}, {0, 0}, 0, 0},
    };
    // arguments: the problems to run (indices); none: all
    for (size_t i = 0; i < probs.size(); i++) {
        bool listed = argc == 1;
        for (int a = 1; a < argc; a++)
            listed = listed || atoi(argv[a]) == (int)i;
        if (!listed)
            continue;
        const Prob &P = probs[i];
        printf("problem %zu: rank %d B %d H %d D %d Dv %d L %dx%d K %dx%d d %dx%d s %dx%d c %d%d rpb %d %s\n", i,
               P.rank, P.B, P.H, P.D, P.Dv, P.L[0], P.L[1], P.K[0], P.K[1], P.d[0], P.d[1], P.s[0], P.s[1], P.c[0],
               P.c[1], P.rpb, P.headsfirst == 2 ? "tokens heads-first" : P.headsfirst ? "heads-first" : "heads-last");
        for (int mode = 0; mode < 4; mode++)
            run(P, mode, 1 + (int)i);
        if (P.H % 4 == 0) // head pairs (fh_plan's hc 2, as for H 2 or 6)
            run(P, 2, 1 + (int)i, 2);
    }
    printf("%d failures\n", failures);
    return failures != 0;
}
