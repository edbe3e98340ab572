// wg-emu: a host emulation of cuda-tc's kernels (tc_kernels.cuh: mma.sync;
// tc_wgmma.cuh, tc_wgmma_bwd.cuh: the Hopper forward and backward on wgmma),
// for checking their index arithmetic, descriptors and synchronisation where
// no GPU is at hand.  gen-wg.py copies the kernels and their host plans out of
// the sources with the PTX wrappers removed; this file supplies those and runs
// one OS thread per CUDA thread, one block at a time.
//
//   python3 tools/tc-emu/gen-wg.py . /tmp/wg-gen.h &&
//   g++ -std=c++20 -O1 -pthread -w -I lib -DWG_EMU_GEN=\"/tmp/wg-gen.h\" \
//       tools/tc-emu/wg.cpp -o /tmp/wg-emu && /tmp/wg-emu [PROBLEM [KERNEL [DTYPE]]]
//
// PROBLEM: a name from probs[] below, "all" (the default; ~3 min on two
// cores) or "quick" (2d and 1d-causal: every Hopper entry point, the
// split forward splitting); KERNEL: "all" (the default), entry points
// separated by commas, or "-" and those to leave out ("-wgb6"); the entry
// points: mma (the mma.sync forward and backward, every head dim), wg0,
// ws1..ws3, split, wgb0..wgb3, wgb5..wgb7 (the Hopper ones, head dim 128); DTYPE: fp16 (the
// default) or bf16 (limits 5e-2 instead of 1e-2 for O and 2e-2 for the
// gradients).  Emulation is barrier-bound: another busy process on the
// machine slows it several times.
//
// What it models, and how strictly:
//  - wgmma.mma_async (m64nNk16, f32 += f16/bf16): A and B through their
//    shared-memory descriptors (128-byte swizzle: K-major, and MN-major for
//    B with LBO = the stride of 64-column atoms, SBO = of 8-row groups) or A
//    from registers.  A product runs when a wgmma.wait_group retires its
//    group, not when issued: shared memory is read then, and the accumulator
//    registers hold NaN in between, so a kernel that refills a stage before
//    the wait, or reads an accumulator early, gets wrong results here.
//  - cp.async: a copy lands when its thread's cp.async.wait_group retires its
//    group, or at cp.async.mbarrier.arrive; until then shared memory holds
//    what it held (it starts as 0xff bytes: NaN halves), so a read that is
//    not ordered after the copy by the kernel's own barriers shows.
//  - mbarriers (arrivals, phases, parity waits), named barriers (bar.sync,
//    bar.arrive, bar.red.or with thread counts), __syncthreads, warp
//    collectives (shfl, ldmatrix, mma.sync) meet at per-warp barriers.  A
//    wait of 30 s is reported as a deadlock.
//  - What it cannot see: timing, bank conflicts, register limits
//    (setmaxnreg is a no-op), fp32 summation order inside a product.
#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

// ---- CUDA types and qualifiers ---------------------------------------------
#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __shared__ static
#define __restrict__

typedef _Float16 __half;
struct __nv_bfloat16 {
    uint16_t x;
};
struct __half2 {
    __half x, y;
};
struct __nv_bfloat162 {
    __nv_bfloat16 x, y;
};
struct float2 {
    float x, y;
};
struct float4 {
    float x, y, z, w;
};
struct int4 {
    int x, y, z, w;
};
struct uint4 {
    unsigned x, y, z, w;
};
struct uint2 {
    unsigned x, y;
};
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
static inline float2 make_float2(float a, float b) { return {a, b}; }
static inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
static inline int4 make_int4(int a, int b, int c, int d) { return {a, b, c, d}; }
static inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }

typedef int cudaError_t;
typedef void *cudaStream_t;
enum { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorInvalidConfiguration = 9 };
static inline cudaError_t cudaGetLastError() { return cudaSuccess; }
static inline cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }

static inline float bf2f(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint16_t f2bf(float f) { /* round to nearest even */
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
static inline __half2 __floats2half2_rn(float a, float b) { return {(__half)a, (__half)b}; }
static inline float2 __half22float2(__half2 h) { return {(float)h.x, (float)h.y}; }
static inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {{f2bf(a)}, {f2bf(b)}}; }
static inline float2 __bfloat1622float2(__nv_bfloat162 h) { return {bf2f(h.x.x), bf2f(h.y.x)}; }
static inline float __half2float(__half h) { return (float)h; }
static inline float __bfloat162float(__nv_bfloat16 h) { return bf2f(h.x); }
using std::max;
using std::min;

// ---- the emulated block ------------------------------------------------------
thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

static void emu_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void emu_fail(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    va_start(ap, fmt);
    fprintf(stderr, "  wg-emu: block %u thread %u: ", blockIdx.x, threadIdx.x);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}
#define EMU_TIMEOUT std::chrono::seconds(30)

// A barrier over a number of threads, with an OR of their votes (bar.sync,
// bar.arrive, bar.red.or, __syncthreads); `dropped`: threads that exited,
// counted as arrived in every later phase (only for the block-wide id 0).
struct PhaseBar {
    std::mutex m;
    std::condition_variable cv;
    int expected = 0, arrived = 0, dropped = 0;
    unsigned phase = 0;
    bool vote = false, result = false;
    bool arrive(bool wait, bool v) {
        std::unique_lock<std::mutex> g(m);
        unsigned ph = phase;
        vote = vote || v;
        if (++arrived + dropped >= expected) {
            result = vote;
            vote = false;
            arrived = 0;
            phase++;
            cv.notify_all();
            return result;
        }
        if (!wait) return false;
        if (!cv.wait_for(g, EMU_TIMEOUT, [&] { return phase != ph; }))
            emu_fail("a barrier of %d threads waited 30 s (%d arrived): deadlock", expected, arrived);
        return result;
    }
    void drop() {
        std::lock_guard<std::mutex> g(m);
        dropped++;
        if (arrived > 0 && arrived + dropped >= expected) {
            result = vote;
            vote = false;
            arrived = 0;
            phase++;
            cv.notify_all();
        }
    }
};

// An mbarrier: arrivals expected a phase, still pending, phases completed.
struct MBar {
    std::mutex m;
    std::condition_variable cv;
    unsigned count = 0, pending = 0, phase = 0;
};

struct Warp {
    std::barrier<> bar{32};
    uint32_t u[32][8];
    const void *ptr[32];
};

// wgmma: the A fragments of the ops issued from registers, by issue number,
// for the warpgroup's 128 threads
struct WGroup {
    std::barrier<> bar{128};
    std::mutex m;
    std::map<long, std::array<std::array<uint32_t, 4>, 128>> afrag;
};

struct Block {
    unsigned char *smem;
    size_t smem_bytes;
    std::vector<std::unique_ptr<Warp>> warps;
    std::vector<std::unique_ptr<WGroup>> wgroups;
    std::mutex lock; // for the maps
    std::map<unsigned, std::unique_ptr<MBar>> mbars;
    std::map<int, std::unique_ptr<PhaseBar>> named;
    /* per 16-byte chunk: reads by wgmma products in flight, cp.async copies not landed */
    std::unique_ptr<std::atomic<int>[]> reading, landing;
};
thread_local Block *cur;
static inline char *emu_smem() { return (char *)cur->smem; }
static inline Warp &W_() { return *cur->warps[threadIdx.x / 32]; }
static inline int lane_() { return threadIdx.x & 31; }
static inline unsigned __cvta_generic_to_shared(const void *p) {
    const unsigned char *c = (const unsigned char *)p;
    if (c < cur->smem || c >= cur->smem + cur->smem_bytes) emu_fail("a shared-memory address outside the block's");
    return (unsigned)(c - cur->smem);
}
static inline uint32_t smem_u32(const void *p) { return __cvta_generic_to_shared(p); }
static inline unsigned char *sm_at(uint32_t a, unsigned bytes) {
    if ((size_t)a + bytes > cur->smem_bytes)
        emu_fail("shared-memory access at %u (+%u) past the block's %zu bytes", a, bytes, cur->smem_bytes);
    return cur->smem + a;
}

static PhaseBar &named_bar(int id, int n) {
    std::lock_guard<std::mutex> g(cur->lock);
    auto &b = cur->named[id];
    if (!b) {
        b.reset(new PhaseBar);
        b->expected = n;
    } else if (b->expected != n) {
        emu_fail("named barrier %d used with %d threads and with %d", id, b->expected, n);
    }
    return *b;
}

// ---- warp collectives ----------------------------------------------------------
static void __syncwarp(unsigned = 0xffffffffu) { W_().bar.arrive_and_wait(); }
template <typename V> static V shfl(V v, int src) {
    static_assert(sizeof(V) <= 4, "32-bit shuffles");
    Warp &w = W_();
    uint32_t x = 0;
    memcpy(&x, &v, sizeof v);
    w.u[lane_()][0] = x;
    w.bar.arrive_and_wait();
    x = w.u[src & 31][0];
    w.bar.arrive_and_wait();
    V r;
    memcpy(&r, &x, sizeof r);
    return r;
}
template <typename V> static V __shfl_sync(unsigned, V v, int src) { return shfl(v, src); }
template <typename V> static V __shfl_xor_sync(unsigned, V v, int x) { return shfl(v, lane_() ^ x); }
static bool __any_sync(unsigned, bool p) {
    Warp &w = W_();
    w.u[lane_()][0] = p;
    w.bar.arrive_and_wait();
    bool r = false;
    for (int l = 0; l < 32; l++) r = r || w.u[l][0];
    w.bar.arrive_and_wait();
    return r;
}
static void __syncthreads() { named_bar(0, (int)blockDim.x).arrive(true, false); }
static void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
static void __trap() { emu_fail("__trap()"); }
template <typename V> static V __ldcg(const V *p) { return *p; }
static unsigned atomicAdd(unsigned *p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
static unsigned atomicExch(unsigned *p, unsigned v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }

// ---- cp.async: copies land when their group is waited for ----------------------
struct Copy {
    void *dst;
    const void *src;
    unsigned bytes;
    bool valid;
    long group;
};
thread_local std::vector<Copy> copies;
thread_local long copy_group;
static void land(const Copy &c) {
    if (c.valid) memcpy(c.dst, c.src, c.bytes);
    else memset(c.dst, 0, c.bytes);
    cur->landing[__cvta_generic_to_shared(c.dst) / 16]--;
}
// A copy into a chunk that a product in flight reads is a race on a GPU
// (the copy may land before the product has read it).
static void cp_async(void *dst, const void *src, unsigned bytes, bool valid) {
    const uint32_t a = __cvta_generic_to_shared(dst);
    (void)sm_at(a, bytes);
    if (((uintptr_t)dst | (valid ? (uintptr_t)src : 0)) % bytes) emu_fail("a misaligned %u-byte cp.async", bytes);
    if (cur->reading[a / 16] > 0)
        emu_fail("cp.async into shared memory at %u, which a wgmma product in flight reads", a);
    cur->landing[a / 16]++;
    copies.push_back({dst, src, bytes, valid, copy_group});
}
static void cp_async16(void *dst, const void *src, bool valid) { cp_async(dst, src, 16, valid); }
static void cp_async4(void *dst, const void *src, bool valid) { cp_async(dst, src, 4, valid); }
static void cp_commit() { copy_group++; }
// every committed group but the newest n
static void cp_land(long n) {
    std::vector<Copy> keep;
    for (const Copy &c : copies)
        if (c.group < copy_group - n) land(c);
        else keep.push_back(c);
    copies.swap(keep);
}
template <int N> static void cp_wait() { cp_land(N); }
static void cp_land_all() {
    for (const Copy &c : copies) land(c);
    copies.clear();
}

// ---- ldmatrix, mma.sync -------------------------------------------------------------
static void ldsm(const void *p, bool trans, uint32_t r[4]) {
    Warp &w = W_();
    int l = lane_();
    w.ptr[l] = p;
    w.bar.arrive_and_wait();
    for (int i = 0; i < 4; i++) {
        uint16_t M[8][8];
        for (int rr = 0; rr < 8; rr++) memcpy(M[rr], sm_at(__cvta_generic_to_shared(w.ptr[8 * i + rr]), 16), 16);
        int g = l >> 2, t = l & 3;
        uint16_t lo = trans ? M[2 * t][g] : M[g][2 * t], hi = trans ? M[2 * t + 1][g] : M[g][2 * t + 1];
        r[i] = lo | (uint32_t)hi << 16;
    }
    w.bar.arrive_and_wait();
}
static void ldsm4(uint32_t r[4], const void *p) { ldsm(p, false, r); }
static void ldsm4t(uint32_t r[4], const void *p) { ldsm(p, true, r); }

template <typename T> static float elt(uint16_t bits) {
    if constexpr (std::is_same<T, __half>::value) {
        __half h;
        memcpy(&h, &bits, 2);
        return (float)h;
    } else {
        return bf2f(bits);
    }
}
template <typename T> static void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    Warp &w = W_();
    int l = lane_();
    for (int i = 0; i < 4; i++) w.u[l][i] = a[i];
    w.u[l][4] = b0;
    w.u[l][5] = b1;
    w.bar.arrive_and_wait();
    float A[16][16], B[16][8];
    for (int ln = 0; ln < 32; ln++) {
        int g = ln >> 2, t = ln & 3;
        const uint32_t *r = w.u[ln];
        for (int h = 0; h < 2; h++) {
            A[g][2 * t + h] = elt<T>((uint16_t)(r[0] >> 16 * h));
            A[g + 8][2 * t + h] = elt<T>((uint16_t)(r[1] >> 16 * h));
            A[g][2 * t + 8 + h] = elt<T>((uint16_t)(r[2] >> 16 * h));
            A[g + 8][2 * t + 8 + h] = elt<T>((uint16_t)(r[3] >> 16 * h));
            B[2 * t + h][g] = elt<T>((uint16_t)(r[4] >> 16 * h));
            B[2 * t + 8 + h][g] = elt<T>((uint16_t)(r[5] >> 16 * h));
        }
    }
    w.bar.arrive_and_wait();
    int g = l >> 2, t = l & 3;
    for (int e = 0; e < 4; e++) {
        int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
        float s = c[e];
        for (int k = 0; k < 16; k++) s += A[row][k] * B[k][col];
        c[e] = s;
    }
}

// ---- wgmma -----------------------------------------------------------------------------
// A shared-memory descriptor: start address, LBO, SBO (16-byte units), and
// the swizzle mode (bits 62-63; only 1, 128 bytes, is modelled).
struct Desc {
    uint32_t start, lbo, sbo;
};
static Desc desc_of(uint64_t d) {
    if ((d >> 62) != 1) emu_fail("a wgmma descriptor without the 128-byte swizzle (mode %u)", (unsigned)(d >> 62));
    if ((d >> 49) & 7) emu_fail("a wgmma descriptor with a base offset");
    return {(uint32_t)(d & 0x3fff) << 4, (uint32_t)((d >> 16) & 0x3fff) << 4, (uint32_t)((d >> 32) & 0x3fff) << 4};
}
static inline uint32_t swz(uint32_t a) { return a ^ (((a >> 7) & 7) << 4); }
template <typename T> static float sm_elt(uint32_t a) {
    uint16_t b;
    memcpy(&b, sm_at(swz(a), 2), 2);
    return elt<T>(b);
}
// K-major: row r (of M or N), column k of the k-step
template <typename T> static float kmajor(const Desc &d, int r, int k) {
    return sm_elt<T>(d.start + (uint32_t)(r / 8) * d.sbo + (uint32_t)(r % 8) * 128 + (uint32_t)k * 2);
}
// MN-major B: row k of the k-step, column n
template <typename T> static float mnmajor(const Desc &d, int k, int n) {
    return sm_elt<T>(d.start + (uint32_t)(n / 64) * d.lbo + (uint32_t)(k / 8) * d.sbo + (uint32_t)(k % 8) * 128 +
                     (uint32_t)(n % 64) * 2);
}

struct WgOp {
    int n;          // N of m64nNk16
    bool a_regs;    // A from registers (else the descriptor da)
    bool b_mn;      // B MN-major (trans-b)
    uint64_t da, db;
    float *d;
    bool acc;       // scale-d: D += A B (else D = A B)
    bool has_old;   // the first op on d of this chain: its value at issue
    float old[64];
    long seq;       // issue number of an A-from-registers op
    long group;
    int isa;        // 0: f16, 1: bf16
    std::vector<uint32_t> chunks; // the 16-byte chunks of shared memory it reads
};
static void chunks_kmajor(std::vector<uint32_t> &v, uint64_t d, int rows) {
    const Desc x = desc_of(d);
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < 16; k += 8)
            v.push_back(swz(x.start + (uint32_t)(r / 8) * x.sbo + (uint32_t)(r % 8) * 128 + (uint32_t)k * 2) / 16);
}
static void chunks_mnmajor(std::vector<uint32_t> &v, uint64_t d, int n) {
    const Desc x = desc_of(d);
    for (int k = 0; k < 16; k++)
        for (int c = 0; c < n; c += 8)
            v.push_back(swz(x.start + (uint32_t)(c / 64) * x.lbo + (uint32_t)(k / 8) * x.sbo + (uint32_t)(k % 8) * 128 +
                            (uint32_t)(c % 64) * 2) / 16);
}
thread_local std::vector<WgOp> wg_ops;
thread_local long wg_group, wg_seq;

template <typename T>
static void wg_issue(int n, bool a_regs, bool b_mn, uint64_t da, const uint32_t *a, uint64_t db, float *d, int acc) {
    WgOp op{};
    op.n = n;
    op.a_regs = a_regs;
    op.b_mn = b_mn;
    op.da = da;
    op.db = db;
    op.d = d;
    op.acc = acc != 0;
    op.group = wg_group;
    op.isa = std::is_same<T, __half>::value ? 0 : 1;
    bool chained = false;
    for (const WgOp &o : wg_ops)
        if (o.d == d) chained = true;
        else if (o.d < d + n / 2 && d < o.d + o.n / 2) emu_fail("wgmma accumulators that overlap another's in flight");
    op.has_old = !chained;
    /* what it reads must have landed; nothing may be copied over it until it retires */
    if (!a_regs) chunks_kmajor(op.chunks, da, 64);
    if (b_mn) chunks_mnmajor(op.chunks, db, n);
    else chunks_kmajor(op.chunks, db, n);
    for (uint32_t c : op.chunks) {
        (void)sm_at(c * 16, 16);
        if (cur->landing[c] > 0) emu_fail("a wgmma reads shared memory at %u before its cp.async landed", c * 16);
        cur->reading[c]++;
    }
    if (!chained)
        for (int i = 0; i < n / 2; i++) op.old[i] = d[i];
    for (int i = 0; i < n / 2; i++) d[i] = NAN; /* not readable before the wait */
    if (a_regs) {
        op.seq = wg_seq++;
        WGroup &g = *cur->wgroups[threadIdx.x / 128];
        std::lock_guard<std::mutex> l(g.m);
        auto &e = g.afrag[op.seq];
        for (int i = 0; i < 4; i++) e[threadIdx.x % 128][i] = a[i];
    }
    wg_ops.push_back(op);
}

// Runs after the warpgroup's barrier in wg_wait: no thread adds A fragments
// until the next one, so the op's entry is read without the lock.
template <typename T> static void wg_run(const WgOp &op, WGroup &g) {
    const int t = threadIdx.x % 128, w = t / 32, l = t % 32;
    const Desc db = desc_of(op.db);
    const std::array<std::array<uint32_t, 4>, 128> *frag = nullptr;
    if (op.a_regs) {
        std::lock_guard<std::mutex> lk(g.m);
        frag = &g.afrag.at(op.seq);
    }
    float A[2][16];
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 16; k++) {
            const int r = 16 * w + l / 4 + 8 * h;
            if (!op.a_regs) {
                A[h][k] = kmajor<T>(desc_of(op.da), r, k);
                continue;
            }
            /* mma.sync's A fragment of warp w: row r % 16, column k */
            const int rr = r % 16, lane = (rr % 8) * 4 + (k % 8) / 2, reg = (rr >= 8) + 2 * (k >= 8);
            A[h][k] = elt<T>((uint16_t)((*frag)[w * 32 + lane][reg] >> 16 * (k % 2)));
        }
    for (int i = 0; i < op.n / 2; i++) {
        const int j = i / 4, h = (i / 2) % 2, col = 8 * j + 2 * (l % 4) + i % 2;
        float s = op.acc ? (op.has_old ? op.old[i] : op.d[i]) : 0.f;
        for (int k = 0; k < 16; k++) s += A[h][k] * (op.b_mn ? mnmajor<T>(db, k, col) : kmajor<T>(db, col, k));
        op.d[i] = s;
    }
}

static void wg_fence() {}
static void wg_commit() { wg_group++; }
static void fence_async_smem() {}
template <int N> static void pin(float (&)[N]) {}
template <int N> static void reg_dealloc() {}
template <int N> static void reg_alloc() {}

// every committed group but the newest N retires: its products run now
template <int N> static void wg_wait() {
    WGroup &g = *cur->wgroups[threadIdx.x / 128];
    g.bar.arrive_and_wait(); /* every thread's A fragments are in */
    std::vector<WgOp> keep;
    long last = -1;
    for (const WgOp &op : wg_ops)
        if (op.group < wg_group - N) {
            if (op.isa == 0) wg_run<__half>(op, g);
            else wg_run<__nv_bfloat16>(op, g);
            for (uint32_t c : op.chunks) cur->reading[c]--;
            if (op.a_regs) last = std::max(last, op.seq);
        } else {
            keep.push_back(op);
        }
    wg_ops.swap(keep);
    g.bar.arrive_and_wait();
    if (threadIdx.x % 128 == 0 && last >= 0) {
        std::lock_guard<std::mutex> l(g.m);
        g.afrag.erase(g.afrag.begin(), g.afrag.upper_bound(last));
    }
}

namespace tc {
template <typename T> struct Mma;
template <> struct Mma<__half> {
    static void run(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) { mma16816<__half>(c, a, b0, b1); }
    static uint32_t pack(float x, float y) {
        __half2 h = __floats2half2_rn(x, y);
        uint32_t u;
        memcpy(&u, &h, 4);
        return u;
    }
    static float2 unpack(uint32_t u) {
        __half2 h;
        memcpy(&h, &u, 4);
        return __half22float2(h);
    }
};
template <> struct Mma<__nv_bfloat16> {
    static void run(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
        mma16816<__nv_bfloat16>(c, a, b0, b1);
    }
    static uint32_t pack(float x, float y) { return f2bf(x) | (uint32_t)f2bf(y) << 16; }
    static float2 unpack(uint32_t u) { return {bf2f((uint16_t)u), bf2f((uint16_t)(u >> 16))}; }
};
namespace wg {
template <typename T, int N> static void mma_ss(float (&d)[N / 2], uint64_t da, uint64_t db, int acc) {
    wg_issue<T>(N, false, false, da, nullptr, db, d, acc);
}
template <typename T> static void mma_rs_n128(float (&d)[64], const uint32_t a[4], uint64_t db) {
    wg_issue<T>(128, true, true, 0, a, db, d, 1);
}
template <typename T> static void mma_rs_n64(float *d, const uint32_t a[4], uint64_t db) {
    wg_issue<T>(64, true, true, 0, a, db, d, 1);
}
template <typename T> static void mma_rs_s64(float (&d)[32], const uint32_t a[4], uint64_t db, int acc) {
    wg_issue<T>(64, true, false, 0, a, db, d, acc);
}

// mbarriers: an arrival past the phase's count, or a wait of 30 s, fails the run
static MBar &mbar(uint32_t a) {
    (void)sm_at(a, 8);
    if (a % 8) emu_fail("a misaligned mbarrier at %u", a);
    std::lock_guard<std::mutex> g(cur->lock);
    auto &b = cur->mbars[a];
    if (!b) b.reset(new MBar);
    return *b;
}
static void mbar_init(uint32_t a, unsigned count) {
    MBar &b = mbar(a);
    std::lock_guard<std::mutex> g(b.m);
    b.count = b.pending = count;
    b.phase = 0;
}
static void mbar_arrive(uint32_t a) {
    MBar &b = mbar(a);
    std::lock_guard<std::mutex> g(b.m);
    if (b.count == 0) emu_fail("mbarrier %u: an arrival before its initialisation", a);
    if (--b.pending == 0) {
        b.phase++;
        b.pending = b.count;
        b.cv.notify_all();
    }
}
static void mbar_arrive_cp_async(uint32_t a) {
    cp_land_all();
    mbar_arrive(a);
}
// the phase of this parity has completed: the one in progress has the other parity
static void mbar_wait(uint32_t a, uint32_t parity) {
    MBar &b = mbar(a);
    std::unique_lock<std::mutex> g(b.m);
    if (!b.cv.wait_for(g, EMU_TIMEOUT, [&] { return (b.phase & 1u) != parity; }))
        emu_fail("mbarrier %u: waited 30 s for parity %u (phase %u): deadlock", a, parity, b.phase);
}
static void named_sync(int id, int n) { named_bar(id, n).arrive(true, false); }
static bool named_sync_or(int id, int n, bool x) { return named_bar(id, n).arrive(true, x); }
static void named_arrive(int id, int n) { named_bar(id, n).arrive(false, false); }
static float ex2_approx(float x) { return exp2f(x); }
} // namespace wg
} // namespace tc

// ---- launches --------------------------------------------------------------------------
static size_t smem_limit = 227 * 1024;
static long blocks_run;
static void emu_launch(std::function<void()> body, unsigned grid, int threads, size_t smem, cudaStream_t) {
    if (smem > smem_limit) {
        fprintf(stderr, "  wg-emu: a launch asks for %zu bytes of shared memory (the H200 has %zu)\n", smem,
                smem_limit);
        abort();
    }
    if (threads % 32 || threads > 1024) {
        fprintf(stderr, "  wg-emu: a launch of %d threads a block\n", threads);
        abort();
    }
    gridDim = dim3(grid);
    blockDim = dim3((unsigned)threads);
    std::vector<unsigned char> mem(smem + 1024);
    /* dynamic shared memory is 16-byte aligned; the kernels align further themselves */
    unsigned char *base = mem.data() + (16 - ((uintptr_t)mem.data() & 15)) % 16 + 16;
    for (unsigned x = 0; x < grid; x++) {
        memset(mem.data(), 0xff, mem.size());
        Block B;
        B.smem = base;
        B.smem_bytes = smem;
        B.reading.reset(new std::atomic<int>[smem / 16 + 1]());
        B.landing.reset(new std::atomic<int>[smem / 16 + 1]());
        for (int w = 0; w < threads / 32; w++) B.warps.emplace_back(new Warp());
        for (int w = 0; w < (threads + 127) / 128; w++) B.wgroups.emplace_back(new WGroup());
        std::vector<std::thread> th;
        for (int t = 0; t < threads; t++)
            th.emplace_back([&, t, x] {
                cur = &B;
                threadIdx = dim3((unsigned)t);
                blockIdx = dim3(x);
                copies.clear();
                copy_group = 0;
                wg_ops.clear();
                wg_group = wg_seq = 0;
                body();
                if (!wg_ops.empty()) emu_fail("exited with %zu wgmma products never waited for", wg_ops.size());
                cp_land_all();
                /* an exited thread no longer takes part in its warp's, warpgroup's
                 * and the block's barriers */
                W_().bar.arrive_and_drop();
                named_bar(0, (int)blockDim.x).drop();
                if (threads % 128 == 0) cur->wgroups[threadIdx.x / 128]->bar.arrive_and_drop();
            });
        for (auto &t : th) t.join();
        blocks_run++;
    }
}
namespace tc {
struct Params;
template <typename K>
static cudaError_t launch(K kernel, unsigned long long *, int64_t grid, int threads, size_t smem, cudaStream_t st,
                          const Params &p) {
    if (grid <= 0) return cudaSuccess;
    if (grid > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
    emu_launch([&] { kernel(p); }, (unsigned)grid, threads, smem, st);
    return cudaSuccess;
}
} // namespace tc

#ifndef WG_EMU_GEN
#define WG_EMU_GEN "wg-gen.h"
#endif
#include WG_EMU_GEN


// ---- harness ---------------------------------------------------------------------------
#include "natten-window.h"

struct Prob {
    const char *name;
    int rank, B, H, Hkv, D;
    int L[3], K[3], d[3], s[3], c[3];
};
static const Prob probs[] = {
    /* name       rank B H Hkv D    L             K            dilation    stride      causal */
    {"2d",        2, 1, 2, 2, 128, {16, 20, 1}, {7, 5, 1},   {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
    {"2d-even",   2, 1, 1, 1, 128, {20, 18, 1}, {8, 6, 1},   {1, 1, 1}, {2, 3, 1}, {0, 0, 0}},
    {"2d-causal", 2, 1, 1, 1, 128, {14, 22, 1}, {5, 9, 1},   {1, 1, 1}, {1, 1, 1}, {1, 0, 0}},
    {"2d-dil",    2, 1, 4, 2, 128, {18, 23, 1}, {5, 7, 1},   {2, 3, 1}, {1, 1, 1}, {0, 0, 0}},
    {"2d-dense",  2, 1, 1, 1, 128, {12, 12, 1}, {12, 12, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
    {"1d",        1, 2, 1, 1, 128, {300, 1, 1}, {33, 1, 1},  {1, 1, 1}, {1, 1, 1}, {0, 0, 0}},
    {"1d-causal", 1, 1, 1, 1, 128, {260, 1, 1}, {40, 1, 1},  {1, 1, 1}, {4, 1, 1}, {1, 0, 0}},
    {"3d",        3, 1, 1, 1, 128, {6, 8, 10},  {3, 3, 7},   {1, 2, 1}, {1, 1, 1}, {0, 0, 1}},
    {"2d-d64",    2, 1, 2, 1, 64,  {16, 20, 1}, {7, 5, 1},   {1, 1, 1}, {1, 1, 1}, {0, 1, 0}},
    {"2d-d32",    2, 2, 1, 1, 32,  {15, 17, 1}, {5, 4, 1},   {2, 1, 1}, {1, 2, 1}, {0, 0, 0}},
};

template <typename T> static T to_t(float x);
template <> __half to_t<__half>(float x) { return (__half)x; }
template <> __nv_bfloat16 to_t<__nv_bfloat16>(float x) { return {f2bf(x)}; }
static inline double to_d(__half x) { return (double)(float)x; }
static inline double to_d(__nv_bfloat16 x) { return (double)bf2f(x.x); }
static inline double to_d(float x) { return (double)x; }
template <typename T> static std::vector<T> rnd(size_t n, std::mt19937 &g, float scale) {
    std::uniform_real_distribution<float> U(-scale, scale);
    std::vector<T> v(n);
    for (auto &x : v) x = to_t<T>(U(g));
    return v;
}
static tc::Tensor tens(void *data, const Prob &P, int heads, int C) {
    tc::Tensor t;
    t.data = (char *)data;
    t.s[4] = C;
    t.s[3] = (int64_t)heads * C;
    t.s[2] = t.s[3] * P.L[2];
    t.s[1] = t.s[2] * P.L[1];
    t.s[0] = t.s[1] * P.L[0];
    return t;
}

struct Ref {
    std::vector<double> o, lse, dq, dk, dv;
};
// The fused forward and backward in double from the spec's windows.
template <typename T>
static Ref reference(const Prob &P, const std::vector<T> &q, const std::vector<T> &k, const std::vector<T> &v,
                     const std::vector<T> &dout, double scale) {
    const int D = P.D, N = P.L[0] * P.L[1] * P.L[2], G = P.H / P.Hkv;
    Ref r;
    r.o.assign((size_t)P.B * N * P.H * D, 0);
    r.lse.assign((size_t)P.B * N * P.H, 0);
    r.dq.assign(r.o.size(), 0);
    r.dk.assign((size_t)P.B * N * P.Hkv * D, 0);
    r.dv.assign(r.dk.size(), 0);
    for (int b = 0; b < P.B; b++)
        for (int h = 0; h < P.H; h++)
            for (int x = 0; x < N; x++) {
                const int ix[3] = {x / (P.L[1] * P.L[2]), x / P.L[2] % P.L[1], x % P.L[2]};
                int64_t a[3], e[3];
                for (int i = 0; i < 3; i++) {
                    natten_window(P.L[i], P.K[i], P.d[i], P.s[i], P.c[i], ix[i], &a[i], &e[i]);
                }
                std::vector<int> keys;
                for (int64_t u0 = a[0]; u0 < e[0]; u0++)
                    for (int64_t u1 = a[1]; u1 < e[1]; u1++)
                        for (int64_t u2 = a[2]; u2 < e[2]; u2++)
                            keys.push_back((int)(((u0 * P.d[0] + ix[0] % P.d[0]) * P.L[1] + u1 * P.d[1] + ix[1] % P.d[1]) *
                                                     P.L[2] + u2 * P.d[2] + ix[2] % P.d[2]));
                const size_t qo = (((size_t)b * N + x) * P.H + h) * D;
                auto ko = [&](int y) { return (((size_t)b * N + y) * P.Hkv + h / G) * D; };
                std::vector<double> s(keys.size()), dp(keys.size());
                double m = -INFINITY, sum = 0;
                for (size_t j = 0; j < keys.size(); j++) {
                    double t = 0;
                    for (int c = 0; c < D; c++) t += to_d(q[qo + c]) * to_d(k[ko(keys[j]) + c]);
                    s[j] = t * scale;
                    m = std::max(m, s[j]);
                }
                for (double t : s) sum += exp(t - m);
                const double lse = m + log(sum);
                r.lse[((size_t)b * N + x) * P.H + h] = lse;
                for (size_t j = 0; j < keys.size(); j++) {
                    const double p = exp(s[j] - lse);
                    for (int c = 0; c < D; c++) r.o[qo + c] += p * to_d(v[ko(keys[j]) + c]);
                }
                /* backward, from the exact O */
                double delta = 0;
                for (int c = 0; c < D; c++) delta += to_d(dout[qo + c]) * r.o[qo + c];
                for (size_t j = 0; j < keys.size(); j++) {
                    const double p = exp(s[j] - lse);
                    double t = 0;
                    for (int c = 0; c < D; c++) t += to_d(dout[qo + c]) * to_d(v[ko(keys[j]) + c]);
                    const double ds = p * (t - delta);
                    for (int c = 0; c < D; c++) {
                        r.dq[qo + c] += scale * ds * to_d(k[ko(keys[j]) + c]);
                        r.dk[ko(keys[j]) + c] += scale * ds * to_d(q[qo + c]);
                        r.dv[ko(keys[j]) + c] += p * to_d(dout[qo + c]);
                    }
                }
            }
    return r;
}

static int failures, checks;
template <typename V> static double err_of(const std::vector<V> &got, const std::vector<double> &want, size_t *bad) {
    double mx = 0, e = 0;
    *bad = 0;
    for (size_t i = 0; i < want.size(); i++) {
        mx = std::max(mx, fabs(want[i]));
        const double g = to_d(got[i]);
        if (!std::isfinite(g)) (*bad)++;
        else e = std::max(e, fabs(g - want[i]));
    }
    return e / std::max(mx, 1e-30);
}
template <typename V>
static void expect(const char *what, const std::vector<V> &got, const std::vector<double> &want, double tol) {
    size_t bad;
    const double e = err_of(got, want, &bad);
    checks++;
    const bool ok = bad == 0 && e <= tol;
    if (!ok) failures++;
    printf("    %-28s normalised error %.2e (limit %.0e), %zu not finite: %s\n", what, e, tol, bad, ok ? "ok" : "FAIL");
    fflush(stdout);
}

// Forward and backward of one problem through every kernel family that takes it.
template <typename T> static void run(const Prob &P, const char *only) {
    const bool bf = std::is_same<T, __nv_bfloat16>::value;
    const double tol_o = bf ? 5e-2 : 1e-2, tol_g = bf ? 5e-2 : 2e-2; /* bf16: 8-bit significands */
    std::mt19937 g(1234);
    const int D = P.D, N = P.L[0] * P.L[1] * P.L[2];
    const size_t nq = (size_t)P.B * N * P.H * D, nk = (size_t)P.B * N * P.Hkv * D, nl = (size_t)P.B * N * P.H;
    std::vector<T> q = rnd<T>(nq, g, 1.f), k = rnd<T>(nk, g, 1.f), v = rnd<T>(nk, g, 1.f), dout = rnd<T>(nq, g, 1.f);
    const double scale = 1.0 / sqrt((double)D);
    printf("%s: rank %d, L %dx%dx%d, K %dx%dx%d, dilation %dx%dx%d, stride %dx%dx%d, causal %d%d%d, B %d, H %d, "
           "Hkv %d, D %d\n",
           P.name, P.rank, P.L[0], P.L[1], P.L[2], P.K[0], P.K[1], P.K[2], P.d[0], P.d[1], P.d[2], P.s[0], P.s[1],
           P.s[2], P.c[0], P.c[1], P.c[2], P.B, P.H, P.Hkv, D);
    const Ref R = reference(P, q, k, v, dout, scale);
    std::vector<T> o(nq), oref(nq), dq(nq), dk(nk), dv(nk);
    std::vector<float> lse(nl), lseref(nl), delta(nl);
    for (size_t i = 0; i < nq; i++) oref[i] = to_t<T>((float)R.o[i]);
    for (size_t i = 0; i < nl; i++) lseref[i] = (float)R.lse[i];
    tc::Params p;
    memset(&p, 0, sizeof p);
    p.q = tens(q.data(), P, P.H, D);
    p.k = tens(k.data(), P, P.Hkv, D);
    p.v = tens(v.data(), P, P.Hkv, D);
    p.dout = tens(dout.data(), P, P.H, D);
    p.dq = tens(dq.data(), P, P.H, D);
    p.dk = tens(dk.data(), P, P.Hkv, D);
    p.dv = tens(dv.data(), P, P.Hkv, D);
    p.B = P.B;
    p.H = P.H;
    p.Hkv = P.Hkv;
    for (int i = 0; i < 3; i++) {
        p.L[i] = P.L[i];
        p.K[i] = P.K[i];
        p.dil[i] = P.d[i];
        p.st[i] = P.s[i];
        p.causal[i] = P.c[i];
    }
    p.scale = (float)scale;
    p.nsm = 4; /* few SMs, so that the split forward's tail round splits on small problems */
    /* only: "all", entry points separated by commas, or "-" and those to leave out */
    auto want = [&](const char *name) {
        if (only == nullptr || strcmp(only, "all") == 0) return true;
        const bool but = only[0] == '-';
        const size_t n = strlen(name);
        for (const char *q = only + but; *q != '\0';) {
            const char *e = strchr(q, ',');
            const size_t len = e != nullptr ? (size_t)(e - q) : strlen(q);
            if (len == n && strncmp(q, name, n) == 0) return !but;
            q += len + (e != nullptr);
        }
        return but;
    };
    /* one call, timed and reported; false where the entry point refused */
    auto ran = [&](const char *dir, const char *name, std::function<cudaError_t(tc::Params &)> &call, tc::Params &x) {
        const long b0 = blocks_run;
        const auto t0 = std::chrono::steady_clock::now();
        const cudaError_t e = call(x);
        printf("  %s %s: %s, %ld blocks, %.1f s\n", dir, name, e == cudaSuccess ? "ran" : "REFUSED", blocks_run - b0,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        if (e != cudaSuccess) failures++;
        return e == cudaSuccess;
    };
    auto fwd = [&](const char *name, std::function<cudaError_t(tc::Params &)> call) {
        if (!want(name)) return;
        std::fill(o.begin(), o.end(), to_t<T>(NAN));
        std::fill(lse.begin(), lse.end(), NAN);
        tc::Params x = p;
        x.o = tens(o.data(), P, P.H, D);
        x.lse = tens(lse.data(), P, P.H, 1);
        if (!ran("forward", name, call, x)) return;
        expect("O", o, R.o, tol_o);
        expect("lse", lse, R.lse, 1e-3);
    };
    auto bwd = [&](const char *name, std::function<cudaError_t(tc::Params &)> call) {
        if (!want(name)) return;
        for (auto *t : {&dq, &dk, &dv}) std::fill(t->begin(), t->end(), to_t<T>(NAN));
        std::fill(delta.begin(), delta.end(), NAN);
        tc::Params x = p;
        x.o = tens(oref.data(), P, P.H, D);
        x.lse = tens(lseref.data(), P, P.H, 1);
        x.delta = delta.data();
        if (!ran("backward", name, call, x)) return;
        expect("dQ", dq, R.dq, tol_g);
        expect("dK", dk, R.dk, tol_g);
        expect("dV", dv, R.dv, tol_g);
    };
    using namespace tc;
    /* mma.sync kernels (sm_80+): the per-head-dim default */
    if (D == 32) {
        fwd("mma", [](Params &x) { return forward<T, 32>(x, nullptr); });
        bwd("mma", [](Params &x) { return backward<T, 32>(x, nullptr); });
    } else if (D == 64) {
        fwd("mma", [](Params &x) { return forward<T, 64>(x, nullptr); });
        bwd("mma", [](Params &x) { return backward<T, 64>(x, nullptr); });
    } else {
        fwd("mma", [](Params &x) { return forward<T, 128>(x, nullptr); });
        bwd("mma", [](Params &x) { return backward<T, 128>(x, nullptr); });
        /* the Hopper kernels as tc-fwd128-sm90a.cu and tc-bwd128-sm90a.cu call them */
        fwd("wg0", [](Params &x) { return wg::forward_v<T, 0, 2, 64, false>(x, nullptr); });
        fwd("ws1", [](Params &x) { return wg::forward_ws<T, 4, true, true>(x, nullptr); });
        fwd("ws2", [](Params &x) { return wg::forward_ws<T, 4, true, true, false, false, false, 2>(x, nullptr); });
        fwd("ws3", [](Params &x) {
            return wg::forward_ws<T, 4, true, true, false, false, false, 2, 3>(x, nullptr);
        });
        fwd("split", [&](Params &x) {
            size_t bytes = 0;
            wg::plan_split(x, &bytes);
            const int64_t grid = plan_grid(x, x.H), nsplit = x.sparts >= 2 ? grid - x.sfull : 0;
            printf("  split: %lld boxes whole, %lld split in %d parts\n", (long long)x.sfull, (long long)nsplit,
                   x.sparts);
            std::vector<float> part(bytes / sizeof(float) + 1, NAN);
            std::vector<unsigned> tickets((size_t)std::max<int64_t>(nsplit, 1), 0u);
            x.part = part.data();
            x.sticket = tickets.data();
            const cudaError_t e = wg::forward_ws_split<T, 4>(x, nullptr);
            for (unsigned t : tickets)
                if (t != 0) emu_fail("a split box's counter left at %u", t);
            return e;
        });
        bwd("wgb0", [](Params &x) { return wg::backward_v<T, 2, 64, 1, 1, 64, 2, false>(x, nullptr); });
        bwd("wgb1", [](Params &x) { return wg::backward_v<T, 1, 32, 2, 2, 32, 2, false, 2, true>(x, nullptr); });
        bwd("wgb2", [](Params &x) { return wg::backward_sk<T, 64>(x, nullptr); });
        bwd("wgb3", [](Params &x) { return wg::backward_sk<T, 32>(x, nullptr); });
        bwd("wgb5", [](Params &x) { return wg::backward_ws<T, 2>(x, nullptr); });
        bwd("wgb6", [](Params &x) { return wg::backward_ws<T, 3>(x, nullptr); });
        bwd("wgb7", [](Params &x) { return wg::backward_ws<T, 3, true>(x, nullptr); });
    }
}

int main(int argc, char **argv) {
    const char *pname = argc > 1 ? argv[1] : nullptr, *kname = argc > 2 ? argv[2] : nullptr;
    const bool bf = argc > 3 && strcmp(argv[3], "bf16") == 0;
    if (argc > 3 && !bf && strcmp(argv[3], "fp16") != 0) {
        fprintf(stderr, "wg-emu: dtype %s: fp16 or bf16\n", argv[3]);
        return 2;
    }
    int n = 0;
    for (const Prob &P : probs)
        if (pname == nullptr || strcmp(pname, "all") == 0 || strcmp(pname, P.name) == 0 ||
            (strcmp(pname, "quick") == 0 && (strcmp(P.name, "2d") == 0 || strcmp(P.name, "1d-causal") == 0))) {
            if (bf) run<__nv_bfloat16>(P, kname);
            else run<__half>(P, kname);
            n++;
        }
    if (n == 0) {
        fprintf(stderr, "wg-emu: no problem named %s\n", pname);
        return 2;
    }
    printf("wg-emu: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
