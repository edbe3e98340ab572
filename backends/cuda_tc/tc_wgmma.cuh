/*
 * tc_wgmma.cuh - the Hopper forward of cuda-tc (head dim 128, fp16/bf16):
 * warpgroup MMA (wgmma.mma_async, sm_90a only).  Shared by the library's
 * tc-fwd128-sm90a.cu (compiled for sm_90a alone) and the standalone harness.
 *
 * Same blocks as configuration 7 of tc_kernels.cuh (a 128-row query box,
 * 64-key iterated tiles, bit-mask windows, the weighted box search), but:
 *  - 2 warpgroups of 128 threads, each owning 64 query rows (warp w of the
 *    block: rows 16w..16w+15, as the mma.sync kernels with 8 warps);
 *  - S = Q K^T by wgmma m64n64k16, A (Q) and B (K) both from shared memory,
 *    K-major (rows of D contiguous), 128-byte swizzle;
 *  - O += P V by wgmma m64n128k16 (or two m64n64k16), A = P from registers
 *    (the accumulator fragment of S is the A fragment of P, as with mma.sync),
 *    B = the V tile in shared memory, [keys][D] = MN-major (trans-b);
 *  - rows gathered by address with cp.async (16 B) straight into the
 *    swizzled layout: a tile of R rows is two 64-column halves, each R rows of
 *    128 bytes, the 16-byte chunk c of row r at chunk c ^ (r & 7);
 *  - two stages; fence.proxy.async between the cp.async writes and the
 *    wgmma reads; wgmma.fence / commit_group / wait_group 0 around each product.
 * Device code exists only when compiled for sm_90a (__CUDA_ARCH_FEAT_SM90_ALL);
 * elsewhere the kernel traps, and the host side never launches it there.
 */
#ifndef NATTEN_TC_WGMMA_CUH
#define NATTEN_TC_WGMMA_CUH

#include "tc_kernels.cuh"

#include <type_traits>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define TC_WGMMA_DEVICE 1
#else
#define TC_WGMMA_DEVICE 0
#endif

namespace tc {
namespace wg {

#define TC_WGMMA_SS_N64(TY) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n" \
        "wgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY " " \
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23," \
        "%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\n}\n" \
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), \
          "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), \
          "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), \
          "+f"(d[29]), "+f"(d[30]), "+f"(d[31]) \
        : "l"(da), "l"(db), "r"(acc))

#define TC_WGMMA_RS_N128(TY) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n" \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY " " \
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23," \
        "%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45," \
        "%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66," \
        "%67}, %68, p, 1, 1, 1;\n}\n" \
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), \
          "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), \
          "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), \
          "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), \
          "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), \
          "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), \
          "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), \
          "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]) \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(acc))

#define TC_WGMMA_RS_N64(TY) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n" \
        "wgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY " " \
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23," \
        "%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n" \
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), \
          "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), \
          "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), \
          "+f"(d[29]), "+f"(d[30]), "+f"(d[31]) \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(acc))

/* S (64 x 64) with A (Q) from registers and B (K) K-major in shared memory
 * (as the SS form's B: no transpose); acc 0 zeroes d first. */
#define TC_WGMMA_RS_N64_KM(TY) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n" \
        "wgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY " " \
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23," \
        "%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 0;\n}\n" \
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), \
          "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), \
          "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), \
          "+f"(d[29]), "+f"(d[30]), "+f"(d[31]) \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(acc))

#define TC_WGMMA_SS_N32(TY) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n" \
        "wgmma.mma_async.sync.aligned.m64n32k16.f32." TY "." TY " " \
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, %16, %17, p, 1, 1, 0, 0;\n}\n" \
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]) \
        : "l"(da), "l"(db), "r"(acc))

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wg_wait()
{
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/* cp.async (generic proxy) writes -> wgmma (async proxy) reads */
__device__ __forceinline__ void fence_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
/* Pins a register's uses and definitions to this point of the instruction
 * stream: accumulators are read only after wgmma.wait_group, written only
 * before wgmma.fence. */
template <int N> __device__ __forceinline__ void pin(float (&x)[N])
{
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(x[i])::"memory");
}

/* S (64 x N) from shared A and B, N = 64 or 32 keys */
template <typename T, int N>
__device__ __forceinline__ void mma_ss(float (&d)[N / 2], uint64_t da, uint64_t db, int acc)
{
    if constexpr (N == 64) {
        if constexpr (std::is_same<T, __half>::value) TC_WGMMA_SS_N64("f16");
        else TC_WGMMA_SS_N64("bf16");
    } else {
        static_assert(N == 32, "S tiles of 32 or 64 keys");
        if constexpr (std::is_same<T, __half>::value) TC_WGMMA_SS_N32("f16");
        else TC_WGMMA_SS_N32("bf16");
    }
}

template <typename T> __device__ __forceinline__ void mma_rs_n128(float (&d)[64], const uint32_t a[4], uint64_t db)
{
    const int acc = 1;
    if constexpr (std::is_same<T, __half>::value) TC_WGMMA_RS_N128("f16");
    else TC_WGMMA_RS_N128("bf16");
}

template <typename T> __device__ __forceinline__ void mma_rs_n64(float *d, const uint32_t a[4], uint64_t db)
{
    const int acc = 1;
    if constexpr (std::is_same<T, __half>::value) TC_WGMMA_RS_N64("f16");
    else TC_WGMMA_RS_N64("bf16");
}

/* S (64 x 64 keys) from A (Q) in registers and K in shared memory */
template <typename T> __device__ __forceinline__ void mma_rs_s64(float (&d)[32], const uint32_t a[4], uint64_t db, int acc)
{
    if constexpr (std::is_same<T, __half>::value) TC_WGMMA_RS_N64_KM("f16");
    else TC_WGMMA_RS_N64_KM("bf16");
}

/* Shared-memory matrix descriptor: start address, leading and stride byte
 * offsets (16-byte units, 14 bits each), 128-byte swizzle (mode 1, bits 62-63). */
__device__ __forceinline__ uint64_t sdesc(uint32_t addr, uint32_t lbo, uint32_t sbo)
{
    return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)((lbo >> 4) & 0x3FFF) << 16) |
           ((uint64_t)((sbo >> 4) & 0x3FFF) << 32) | (1ull << 62);
}

/* Descriptor d moved by `bytes` (a multiple of 16): the start address field
 * alone, by a 32-bit add of the low word (no carry leaves the 14-bit field:
 * shared addresses stay below 2^18).  v15: fwd_ws_kernel builds its
 * descriptors once and moves them per stage and k-step, instead of sdesc's
 * mask, shift and or per wgmma (~10 uniform instructions each). */
__device__ __forceinline__ uint64_t sdesc_add(uint64_t d, uint32_t bytes)
{
    const uint32_t lo = (uint32_t)d + (bytes >> 4), hi = (uint32_t)(d >> 32);
    return ((uint64_t)hi << 32) | lo;
}

constexpr int D = 128, BRQ = 128, NTH = 256;
constexpr int QBYTES = BRQ * D * 2; /* one tile (two 64-column halves) */
template <int BN> __host__ __device__ constexpr int kv_bytes() { return BN * D * 2; }

/* Byte offset of 16-byte chunk ch (0..15) of row r in a swizzled tile of R rows. */
template <int R> __device__ __forceinline__ uint32_t sw_off(int r, int ch)
{
    return (uint32_t)((ch >> 3) * R * 128 + r * 128 + (((ch & 7) ^ (r & 7)) << 4));
}

/*
 * Gather the rows of a box (R rows, origin org, the first prod rows real; rows
 * outside the group or past prod zero-filled) of tensor t (base at batch and
 * head) into a swizzled tile of R rows: NTH threads, NTH / R per row, this
 * thread's slot rs (row_slot<R, NTH>).
 */
template <typename T, int R, int NTH, bool IMM = false>
__device__ __forceinline__ void gather_sw(char *dst, const T *base, const Params &p, const Tensor &t, const Work &w,
                                          const RowSlot &rs, int prod, const int org[3])
{
    constexpr int TPR = NTH / R, CPT = 16 / TPR;
    static_assert(TPR >= 1 && CPT >= 1 && TPR * CPT == 16, "threads per row");
    int u[3];
    bool valid = rs.r < prod;
#pragma unroll
    for (int i = 0; i < 3; i++) {
        u[i] = org[i] + rs.c[i];
        valid = valid && u[i] < w.n[i];
    }
    const T *src = valid ? base + token_off(p, t, w.g, u) : base;
    /* v22: copy j of a row's TPR threads takes chunks j TPR .. j TPR + TPR - 1,
     * one a thread, so that a warp's copy asks for whole 32-byte sectors (TPR
     * 2: a sector in each of 16 rows).  v1..v21 gave each thread CPT
     * consecutive chunks: a warp's copy asked for half a sector in each of 16
     * rows, 32 lines, and every sector twice.  -10 % on every forward, -7 %
     * on the backward (NOTES.md v22). */
    const int c0 = rs.sub;
    if constexpr (IMM) {
        /* the backward's (v16): this thread's first chunk's address, the
         * others at immediate offsets (the same addresses; in the forward
         * this form measured 7-9 % slower, so it keeps the one below) */
        src += c0 * 8;
#pragma unroll
        for (int j = 0; j < CPT; j++) cp_async16(dst + sw_off<R>(rs.r, c0 + j * TPR), src + j * TPR * 8, valid);
    } else {
#pragma unroll
        for (int j = 0; j < CPT; j++) {
            const int ch = c0 + j * TPR;
            cp_async16(dst + sw_off<R>(rs.r, ch), src + ch * 8, valid);
        }
    }
}

/* Variants (the harness builds them all; the library one):
 *  VMODE 0: O += P V as m64n128k16, V descriptor LBO = the offset of the two
 *           64-column halves (8 KB), SBO = of 8-key groups (1 KB);
 *  VMODE 1: the same with LBO and SBO swapped;
 *  VMODE 2: two m64n64k16 per k-step, one per half (LBO = SBO = 1 KB: only
 *           the 8-key group offset matters).
 *  MINB: blocks per SM asked of the register allocator (1: 255 registers;
 *        2: 128, row windows in shared memory);
 *  BN: keys per iterated tile (64 or 32);
 *  OVL: O += P V of tile t left in flight until S of tile t + 1 is issued
 *       (two barriers per tile; the next tile's loads start after it). */
template <int MINB, int BN> constexpr size_t smem_bytes()
{
    return 1024 + QBYTES + 2 * 2 * kv_bytes<BN>() + (MINB > 1 ? BRQ * 8 * sizeof(int) : 0);
}

template <typename T, int VMODE, int MINB, int BN, bool OVL>
__global__ void __launch_bounds__(NTH, MINB) fwd_kernel(const Params p)
{
#if TC_WGMMA_DEVICE
    constexpr bool WSMEM = MINB > 1;
    constexpr int KVBYTES = kv_bytes<BN>();
    extern __shared__ __align__(1024) char smem_raw[];
    char *sm = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    char *sQ = sm, *sK = sQ + QBYTES, *sV = sK + 2 * KVBYTES;
    int *sWin = reinterpret_cast<int *>(sV + 2 * KVBYTES);
    const uint32_t aQ = smem_u32(sQ), aK = smem_u32(sK), aV = smem_u32(sV);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wgi = warp >> 2;

    QueryBlock blk;
    if (!query_block(p, blk)) return;
    const Work &w = blk.w;
    const int *lo = blk.lo, *ia = blk.ia, *ib = blk.ib, *ntk = blk.nt;
    const int ntiles = blk.ntiles, hk = blk.hk;
    const T *qb = head_base<T>(p.q, w.b, w.h);
    const T *kb = head_base<T>(p.k, w.b, hk);
    const T *vb = head_base<T>(p.v, w.b, hk);

    /* this lane's two rows (warp * 16 + lane / 4 + 8 rr) and their windows */
    int wa[WSMEM ? 1 : 2][3], wb[WSMEM ? 1 : 2][3];
    if (WSMEM) {
        for (int r = tid; r < BRQ; r += NTH) {
            int c[3], uc[3], a[3], b[3];
            box_coords(r, p.own, c);
#pragma unroll
            for (int i = 0; i < 3; i++) uc[i] = min(w.o[i] + c[i], w.n[i] - 1);
            window_of(p, w.n, uc, a, b);
            *reinterpret_cast<int4 *>(sWin + 8 * r) = make_int4(a[0], a[1], a[2], 0);
            *reinterpret_cast<int4 *>(sWin + 8 * r + 4) = make_int4(b[0], b[1], b[2], 0);
        }
    } else {
        int u[1][2][3];
        bool rvalid[1][2];
        lane_rows<1>(p, w, warp, lane, u, rvalid);
#pragma unroll
        for (int rr = 0; rr < (WSMEM ? 1 : 2); rr++) {
            int uc[3];
#pragma unroll
            for (int i = 0; i < 3; i++) uc[i] = min(u[0][rr][i], w.n[i] - 1);
            window_of(p, w.n, uc, wa[rr], wb[rr]);
        }
    }
    auto row_window = [&](int rr, int a[3], int b[3]) {
        if (WSMEM) {
            const int r = warp * 16 + rr * 8 + (lane >> 2);
            const int4 x = *reinterpret_cast<const int4 *>(sWin + 8 * r);
            const int4 y = *reinterpret_cast<const int4 *>(sWin + 8 * r + 4);
            a[0] = x.x, a[1] = x.y, a[2] = x.z, b[0] = y.x, b[1] = y.y, b[2] = y.z;
        } else {
#pragma unroll
            for (int i = 0; i < 3; i++) a[i] = wa[WSMEM ? 0 : rr][i], b[i] = wb[WSMEM ? 0 : rr][i];
        }
    };

    const RowSlot qs = row_slot<BRQ, NTH>(p.own), ks = row_slot<BN, NTH>(p.it);
    auto load_kv = [&](int t, int stage) {
        int org[3];
        tile_origin(t, ntk, lo, p.it, org);
        gather_sw<T, BN, NTH>(sK + stage * KVBYTES, kb, p, p.k, w, ks, p.itprod, org);
        gather_sw<T, BN, NTH>(sV + stage * KVBYTES, vb, p, p.v, w, ks, p.itprod, org);
    };

    gather_sw<T, BRQ, NTH>(sQ, qb, p, p.q, w, qs, BRQ, w.o);
    if (ntiles > 0) load_kv(0, 0);
    cp_commit();

    float o[64], s[BN / 2];
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
    for (int j = 0; j < 64; j++) o[j] = 0.f;
#pragma unroll
    for (int j = 0; j < BN / 2; j++) s[j] = 0.f;
    const float sl2 = p.scale * LOG2E;

    for (int t = 0; t < ntiles; t++) {
        const int stage = t & 1;
        if (!OVL) {
            if (t + 1 < ntiles) {
                load_kv(t + 1, stage ^ 1);
                cp_commit();
                cp_wait<1>();
            } else {
                cp_wait<0>();
            }
        } else {
            cp_wait<0>(); /* tile t, loaded during the previous iteration */
        }
        fence_async_smem();
        __syncthreads();

        /* S = Q K^T: 8 k-steps of 16; k-step kk is in half kk / 4 at byte 32 (kk % 4) */
        pin(s);
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            const uint64_t da = sdesc(aQ + (kk >> 2) * (QBYTES / 2) + wgi * 64 * 128 + (kk & 3) * 32, 16, 1024);
            const uint64_t db =
                sdesc(aK + stage * KVBYTES + (kk >> 2) * (KVBYTES / 2) + (kk & 3) * 32, 16, 1024);
            mma_ss<T, BN>(s, da, db, kk > 0);
        }
        wg_commit();
        if (OVL) {
            /* O += P V of tile t - 1 is done (in this warpgroup; the barrier:
             * in all), so its stage takes tile t + 1 */
            wg_wait<1>();
            __syncthreads();
            if (t + 1 < ntiles) load_kv(t + 1, stage ^ 1);
            cp_commit();
        }
        wg_wait<0>();
        pin(s);
        if (OVL) pin(o);

        int org[3];
        tile_origin(t, ntk, lo, p.it, org);
        bool full = true;
#pragma unroll
        for (int i = 0; i < 3; i++) full = full && org[i] >= ia[i] && org[i] + p.it[i] <= ib[i];
        /* this lane: s[4j + 2rr + e] is row warp*16 + lane/4 + 8rr, key 8j + 2(lane & 3) + e */
        if (!full) {
#pragma unroll
            for (int rr = 0; rr < 2; rr++) {
                int a[3], b[3];
                row_window(rr, a, b);
                const uint64_t bits = window_bits(p, org, a, b) >> (2 * (lane & 3));
#pragma unroll
                for (int j = 0; j < BN / 8; j++)
#pragma unroll
                    for (int e = 0; e < 2; e++)
                        if (!((bits >> (j * 8 + e)) & 1u)) s[4 * j + rr * 2 + e] = -INFINITY;
            }
        } else if (p.itprod < BN) {
#pragma unroll
            for (int j = 0; j < BN / 8; j++)
#pragma unroll
                for (int e = 0; e < 2; e++)
                    if (j * 8 + 2 * (lane & 3) + e >= p.itprod) s[4 * j + e] = s[4 * j + 2 + e] = -INFINITY;
        }
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < BN / 8; j++) mx = fmaxf(mx, fmaxf(s[4 * j + rr * 2], s[4 * j + rr * 2 + 1]));
            mx = shfl_max4(mx) * sl2;
            const float mnew = fmaxf(m[rr], mx);
            const float muse = mnew == -INFINITY ? 0.f : mnew;
            const float alpha = exp2f(m[rr] - muse);
            m[rr] = mnew;
            l[rr] *= alpha;
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
                o[4 * j + rr * 2] *= alpha;
                o[4 * j + rr * 2 + 1] *= alpha;
            }
#pragma unroll
            for (int j = 0; j < BN / 8; j++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const float pv = exp2f(fmaf(s[4 * j + rr * 2 + e], sl2, -muse));
                    s[4 * j + rr * 2 + e] = pv;
                    l[rr] += pv;
                }
        }
        uint32_t pa[BN / 16][4];
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) acc_to_a<T>(pa[kk], &s[8 * kk], &s[8 * kk + 4]);

        /* O += P V: k-step kk = keys 16kk.., at byte 2048 kk of each half */
        pin(o);
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            const uint32_t vaddr = aV + stage * KVBYTES + kk * 16 * 128;
            if (VMODE == 0) {
                mma_rs_n128<T>(o, pa[kk], sdesc(vaddr, KVBYTES / 2, 1024));
            } else if (VMODE == 1) {
                mma_rs_n128<T>(o, pa[kk], sdesc(vaddr, 1024, KVBYTES / 2));
            } else {
                mma_rs_n64<T>(o, pa[kk], sdesc(vaddr, 1024, 1024));
                mma_rs_n64<T>(o + 32, pa[kk], sdesc(vaddr + KVBYTES / 2, 1024, 1024));
            }
        }
        wg_commit();
        if (!OVL) {
            wg_wait<0>();
            pin(o);
            __syncthreads();
        }
    }
    wg_wait<0>();
    pin(o);
    cp_wait<0>();

    int u[1][2][3];
    bool rvalid[1][2];
    lane_rows<1>(p, w, warp, lane, u, rvalid);
    T *ob = reinterpret_cast<T *>(p.o.data) + w.b * p.o.s[0] + w.h * p.o.s[4];
    float *lb = p.lse.data ? reinterpret_cast<float *>(p.lse.data) + w.b * p.lse.s[0] + w.h * p.lse.s[4] : nullptr;
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        const float lsum = shfl_sum4(l[rr]);
        if (!rvalid[0][rr]) continue;
        const float inv = 1.f / lsum;
        T *orow = ob + token_off(p, p.o, w.g, u[0][rr]);
#pragma unroll
        for (int j = 0; j < D / 8; j++) {
            const int col = j * 8 + 2 * (lane & 3);
            *reinterpret_cast<uint32_t *>(orow + col) =
                Mma<T>::pack(o[4 * j + rr * 2] * inv, o[4 * j + rr * 2 + 1] * inv);
        }
        if (lb != nullptr && (lane & 3) == 0) lb[token_off(p, p.lse, w.g, u[0][rr])] = (m[rr] + log2f(lsum)) * LN2;
    }
#else
    (void)p;
    __trap();
#endif
}

/* ---- v7: the warp-specialised forward (FlashAttention-3's structure) ------
 * One block of 3 warpgroups per SM: warpgroups 0 and 1 compute (64 query rows
 * each, as fwd_kernel's two), warpgroup 2 is the producer: it gathers the K/V
 * tiles by cp.async into an NS-stage ring and signals each stage's "full"
 * mbarrier with cp.async.mbarrier.arrive.noinc (the arrival happens when the
 * thread's copies have landed); the consumers wait on it, read the stage by
 * wgmma and release it on the stage's "empty" mbarrier (lane 0 of each of the
 * 8 consumer warps).  No __syncthreads in the loop.  setmaxnreg moves
 * registers from the producer (40) to the consumers (232).
 * OVL (FA3's intra-warpgroup overlap): S(t) = Q K(t)^T and O += P(t-1) V(t-1)
 * are issued together; the softmax of tile t runs while P(t-1) V(t-1) is in
 * flight, and O is rescaled after it completes.
 * PP (with OVL; FA3's ping-pong): the two consumer warpgroups take turns at
 * issuing their products (named barriers 2 and 3), so that one's softmax
 * runs while the other's products do.
 * PF: the producer, not the consumers, orders the copies before the async
 * proxy: it commits each tile's copies as a cp.async group, waits for the
 * previous tile's group, fences (fence.proxy.async) and arrives on that
 * tile's "full" barrier (the consumers then need no fence).
 * RED: the row maxima and sums of a tile as trees (8 partial maxima, 4
 * partial sums per row) instead of one serial chain each.
 * QR (v8): each consumer keeps its Q rows in registers (the A fragments of
 * the 8 k-steps, 32 registers, read once from the swizzled Q tile) and
 * issues S = Q K^T with A from registers: the tensor cores then read only
 * K from shared memory (2 KB per m64n64k16 instead of 4 KB).
 * SK (v8, with OVL and PP): each consumer warpgroup skips the tiles outside
 * the union of its own 64 rows' windows (its rows are a half of the query
 * box: a sub-box) and masks only the tiles leaving their intersection; a
 * skipped tile is still waited for and released (the ring's phases stay in
 * step), and still takes its ping-pong turn (both warpgroups take ntiles + 1
 * turns).  Skipping is exact: no key of a skipped tile lies in any of the
 * warpgroup's windows.  SK 2 also plans the boxes for it (plan_ws_sk). */
__device__ __forceinline__ void mbar_init(uint32_t bar, unsigned count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar)
{
    asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.shared::cta.b64 st, [%0];\n}\n" ::"r"(bar) : "memory");
}
/* arrives when every cp.async this thread issued before has completed */
__device__ __forceinline__ void mbar_arrive_cp_async(uint32_t bar)
{
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity)
{
    asm volatile("{\n.reg .pred p;\nTC_MBAR_WAIT:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
                 "@!p bra TC_MBAR_WAIT;\n}\n" ::"r"(bar),
                 "r"(parity)
                 : "memory");
}
__device__ __forceinline__ void named_sync(int id, int n)
{
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}
/* bar.red.or: named barrier id over n threads; true in every one of them iff
 * any passed true (v14: the split forward's "last part" flag) */
__device__ __forceinline__ bool named_sync_or(int id, int n, bool x)
{
    int r;
    asm volatile("{\n .reg .pred p, q;\n setp.ne.s32 p, %1, 0;\n bar.red.or.pred q, %2, %3, p;\n selp.s32 %0, 1, 0, q;\n}\n"
                 : "=r"(r)
                 : "r"((int)x), "r"(id), "r"(n)
                 : "memory");
    return r != 0;
}
__device__ __forceinline__ void named_arrive(int id, int n)
{
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}
template <int N> __device__ __forceinline__ void reg_dealloc() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N)); }
template <int N> __device__ __forceinline__ void reg_alloc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N)); }
/*
 * The warp-specialised kernels' producers (fwd_ws_kernel, and the backward's
 * dkv_ws_kernel and dq_ws_kernel): a thread has issued its copies (and, with
 * PLAIN, plain stores) of tile t into stage st; its arrivals on the stage's
 * "full" barrier.  AF (not PF): one made by cp.async.mbarrier.arrive when its
 * copies have landed and, with PLAIN, one now (a release of its plain
 * stores); the consumers fence for the async proxy.  Otherwise (PF):
 * the copies committed as a group, and tile t - 1's, once landed and fenced,
 * marked full by a plain arrival.  ring_drain: after the loop, PF's arrival
 * for the last tile.
 */
template <bool AF, bool PLAIN, int NS> __device__ __forceinline__ void ring_staged(uint32_t bar0, int st, int t)
{
    if (AF) {
        mbar_arrive_cp_async(bar0 + 8 * st);
        if (PLAIN) mbar_arrive(bar0 + 8 * st);
    } else {
        cp_commit();
        if (t > 0) { /* tile t - 1's copies landed: it is full */
            cp_wait<1>();
            fence_async_smem();
            mbar_arrive(bar0 + 8 * (st == 0 ? NS - 1 : st - 1));
        }
    }
}
template <bool AF, int NS> __device__ __forceinline__ void ring_drain(uint32_t bar0, int st, int ntiles)
{
    cp_wait<0>();
    if (!AF && ntiles > 0) {
        fence_async_smem();
        mbar_arrive(bar0 + 8 * (st == 0 ? NS - 1 : st - 1));
    }
}

/* 2^x by one MUFU.EX2 (exp2f adds a denormal fix-up of three instructions);
 * flushes results below 2^-126 to zero, which the fp32 sums of P cannot see. */
__device__ __forceinline__ float ex2_approx(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

/* The iterated tiles in tile_origin's order (axis 2 fastest), without its
 * divisions: org is tile t's origin after t calls of next(). */
struct TileCursor {
    int j1, j2, org[3];
    __device__ __forceinline__ void start(const int lo[3])
    {
        j1 = j2 = 0;
        org[0] = lo[0], org[1] = lo[1], org[2] = lo[2];
    }
    __device__ __forceinline__ void next(const int nt[3], const int lo[3], const int box[3])
    {
        if (++j2 < nt[2]) {
            org[2] += box[2];
            return;
        }
        j2 = 0;
        org[2] = lo[2];
        if (++j1 < nt[1]) {
            org[1] += box[1];
            return;
        }
        j1 = 0;
        org[1] = lo[1];
        org[0] += box[0];
    }
    /* tile t's origin, as t calls of next() from start() */
    __device__ __forceinline__ void seek(int t, const int nt[3], const int lo[3], const int box[3])
    {
        j2 = t % nt[2];
        j1 = (t / nt[2]) % nt[1];
        org[0] = lo[0] + t / (nt[1] * nt[2]) * box[0];
        org[1] = lo[1] + j1 * box[1];
        org[2] = lo[2] + j2 * box[2];
    }
};

/* NC (v10): consumer warpgroups of 64 query rows each (2: the 128-row box
 * of v7/v8; 3: a 192-row box, 512 threads, registers 32 / 160 as FA3 sets
 * them for three consumer warpgroups) */
constexpr int WS_BN = 64;
/* fwd_ws_kernel's softmax (v15): how far (log2 units) a tile's row maximum
 * may exceed the row's reference before O and l are rescaled to it; P then
 * stays <= 2^WS_RESCALE_SLACK (256: well inside fp16/bf16 and the fp32 sums).
 * 0 rescales on every new maximum (v7..v14). */
#ifndef WS_RESCALE_SLACK
#define WS_RESCALE_SLACK 8.f
#endif
template <int NC> __host__ __device__ constexpr int ws_nth() { return 128 * (NC + 1); }
/* v12: floats of one split part: O of the box's rows, then (m, l) per row */
template <int NC> __host__ __device__ constexpr size_t split_unit_floats() { return (size_t)64 * NC * (D + 2); }
template <int NS, int NC = 2> constexpr size_t ws_smem_bytes()
{
    return 1024 + 64 * NC * D * 2 + NS * 2 * kv_bytes<WS_BN>() + 2 * NS * 8;
}

/* v12/v14: the merge of a split box's parts, by the NTH consumer threads
 * (tid 0..NTH-1) of the part that arrived last (fwd_ws_kernel).  Over the
 * parts in order 0..S-1: M = max m_j, L = sum l_j 2^(m_j - M), O = sum o_j
 * 2^(m_j - M) / L, lse = (M + log2 L) ln 2: the unsplit kernel's epilogue
 * over the union of the parts' tiles, in a fixed order whichever part merges
 * (deterministic; v12's merge kernel's arithmetic).  A warp owns RPW box
 * rows (rows w, w + NW, ...): lane i < RPW computes row i's weights
 * 2^(m_j - M) and 1/L (and writes its lse), the warp then reads the parts'
 * O of all its rows at once, part after part (RPW loads of 512 bytes in
 * flight per warp: the latency of L2 is paid S + 1 times, not per row),
 * each row's weights broadcast by a shuffle.  No shared memory.  Rows
 * outside their group (padding of the box) are read but not written.  The
 * partials are read through L2 (ld.global.cg): other SMs wrote them. */
constexpr int SPLIT_MAX = 8;
template <typename T, int NC, int NTH>
__device__ __forceinline__ void split_merge_box(const Params &p, const Work &w, const float *pbox, int tid)
{
    constexpr int QROWS = 64 * NC, NW = NTH / 32, RPW = QROWS / NW;
    static_assert(QROWS % NW == 0 && RPW <= 32, "whole rows per warp");
    constexpr size_t UF = split_unit_floats<NC>();
    const int S = p.sparts, lane = tid & 31, wq = tid >> 5;
    /* lane i < RPW: row wq + i NW's weights */
    float wt[SPLIT_MAX], inv = 0.f;
    {
        const int r = wq + (lane < RPW ? lane : 0) * NW;
        float ml[SPLIT_MAX][2];
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < SPLIT_MAX; j++) {
            ml[j][0] = -INFINITY, ml[j][1] = 0.f;
            if (j < S) {
                const float2 v = __ldcg(reinterpret_cast<const float2 *>(pbox + j * UF + QROWS * D + 2 * r));
                ml[j][0] = v.x, ml[j][1] = v.y;
                mx = fmaxf(mx, v.x);
            }
        }
        float L = 0.f;
#pragma unroll
        for (int j = 0; j < SPLIT_MAX; j++) {
            wt[j] = 0.f;
            if (j < S) {
                wt[j] = ml[j][0] == -INFINITY ? 0.f : exp2f(ml[j][0] - mx);
                L = fmaf(ml[j][1], wt[j], L);
            }
        }
        inv = 1.f / L;
        int c[3], u[3];
        bool valid = lane < RPW;
        box_coords(r, p.own, c);
#pragma unroll
        for (int i = 0; i < 3; i++) {
            u[i] = w.o[i] + c[i];
            valid = valid && u[i] < w.n[i];
        }
        if (valid && p.lse.data != nullptr)
            reinterpret_cast<float *>(p.lse.data)[w.b * p.lse.s[0] + w.h * p.lse.s[4] + token_off(p, p.lse, w.g, u)] =
                (mx + log2f(L)) * LN2;
    }
    float4 acc[RPW];
#pragma unroll
    for (int i = 0; i < RPW; i++) acc[i] = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int j = 0; j < SPLIT_MAX; j++) {
        if (j >= S) break;
        float4 v[RPW];
#pragma unroll
        for (int i = 0; i < RPW; i++)
            v[i] = __ldcg(reinterpret_cast<const float4 *>(pbox + j * UF + (size_t)(wq + i * NW) * D + 4 * lane));
#pragma unroll
        for (int i = 0; i < RPW; i++) {
            const float wj = __shfl_sync(0xffffffffu, wt[j], i);
            acc[i].x = fmaf(v[i].x, wj, acc[i].x);
            acc[i].y = fmaf(v[i].y, wj, acc[i].y);
            acc[i].z = fmaf(v[i].z, wj, acc[i].z);
            acc[i].w = fmaf(v[i].w, wj, acc[i].w);
        }
    }
    T *ob = reinterpret_cast<T *>(p.o.data) + w.b * p.o.s[0] + w.h * p.o.s[4];
#pragma unroll
    for (int i = 0; i < RPW; i++) {
        const float iv = __shfl_sync(0xffffffffu, inv, i);
        int c[3], u[3];
        bool valid = true;
        box_coords(wq + i * NW, p.own, c);
#pragma unroll
        for (int a = 0; a < 3; a++) {
            u[a] = w.o[a] + c[a];
            valid = valid && u[a] < w.n[a];
        }
        if (!valid) continue;
        uint2 pk;
        pk.x = Mma<T>::pack(acc[i].x * iv, acc[i].y * iv);
        pk.y = Mma<T>::pack(acc[i].z * iv, acc[i].w * iv);
        *reinterpret_cast<uint2 *>(ob + token_off(p, p.o, w.g, u) + 4 * lane) = pk;
    }
}

template <typename T, int NS, bool OVL, bool PP, bool PF = false, bool RED = false, bool QR = false, int SK = 0,
          int NC = 2, bool SPLIT = false>
__global__ void __launch_bounds__(128 * (NC + 1), 1) fwd_ws_kernel(const Params p)
{
    static_assert(OVL || !PP, "ping-pong with the overlapped loop only");
    static_assert(!SK || (OVL && PP && !PF), "SK: the overlapped, ping-ponged loop");
    static_assert(NC == 2 || NC == 3, "two or three consumer warpgroups");
#if TC_WGMMA_DEVICE
    constexpr int BN = WS_BN, KVB = kv_bytes<BN>();
    constexpr int WS_NTH = ws_nth<NC>(), WS_NCT = 128 * NC, QROWS = 64 * NC, QBY = QROWS * D * 2;
    extern __shared__ __align__(1024) char smem_raw[];
    char *sm = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    char *sQ = sm, *sK = sQ + QBY, *sV = sK + NS * KVB;
    const uint32_t aQ = smem_u32(sQ), aK = smem_u32(sK), aV = smem_u32(sV);
    const uint32_t bar0 = smem_u32(sV + NS * KVB); /* full[s] at bar0 + 8s, empty[s] at bar0 + 8(NS + s) */
    const int tid = threadIdx.x;

    /* SPLIT (v12): a block from p.sfull on is part `part` of box
     * p.sfull + sunit / p.sparts and iterates tiles [t0, t0 + ntiles) of it */
    int64_t bidx = blockIdx.x;
    int sunit = -1, part = 0;
    if (SPLIT && bidx >= p.sfull) {
        sunit = (int)(bidx - p.sfull);
        part = sunit % p.sparts;
        bidx = p.sfull + sunit / p.sparts;
    }
    QueryBlock blk;
    if (!query_block(p, blk, bidx)) return;
    const Work &w = blk.w;
    int ntiles = blk.ntiles, t0 = 0;
    if (SPLIT && sunit >= 0) {
        t0 = (int)((int64_t)part * blk.ntiles / p.sparts);
        ntiles = (int)((int64_t)(part + 1) * blk.ntiles / p.sparts) - t0;
    }
    /* v22: the consumers' Q rows are asked for first, before the producer
     * fills its ring (NS tiles of copies that would otherwise queue ahead of
     * them); they wait for them after the barrier */
    auto gather_q = [&]() {
        const T *qb = head_base<T>(p.q, w.b, w.h);
        const RowSlot qs = row_slot<QROWS, WS_NCT>(p.own);
        gather_sw<T, QROWS, WS_NCT>(sQ, qb, p, p.q, w, qs, QROWS, w.o);
        cp_commit();
    };
    if (tid < WS_NCT) gather_q();
    if (tid == 0) {
#pragma unroll
        for (int s = 0; s < NS; s++) {
            mbar_init(bar0 + 8 * s, WS_NTH - WS_NCT);
            mbar_init(bar0 + 8 * (NS + s), WS_NCT / 32);
        }
    }
    __syncthreads();

    if (tid >= WS_NCT) {
        /* producer warpgroup: two threads per key row, 8 chunks each of K and V */
        if (NC == 2) reg_dealloc<40>();
        else reg_dealloc<32>();
        const T *kb = head_base<T>(p.k, w.b, blk.hk);
        const T *vb = head_base<T>(p.v, w.b, blk.hk);
        RowSlot ks;
        ks.r = (tid - WS_NCT) >> 1;
        ks.sub = (tid - WS_NCT) & 1;
        box_coords(ks.r, p.it, ks.c);
        int st = 0;
        uint32_t ph = 0;
        TileCursor cur;
        cur.start(blk.lo);
        if (SPLIT) cur.seek(t0, blk.nt, blk.lo, p.it);
        for (int t = 0; t < ntiles; t++) {
            if (t >= NS) mbar_wait(bar0 + 8 * (NS + st), ph ^ 1);
            gather_sw<T, BN, WS_NTH - WS_NCT>(sK + st * KVB, kb, p, p.k, w, ks, p.itprod, cur.org);
            gather_sw<T, BN, WS_NTH - WS_NCT>(sV + st * KVB, vb, p, p.v, w, ks, p.itprod, cur.org);
            ring_staged<!PF, false, NS>(bar0, st, t);
            if (++st == NS) st = 0, ph ^= 1;
            cur.next(blk.nt, blk.lo, p.it);
        }
        ring_drain<!PF, NS>(bar0, st, ntiles);
        return;
    }

    /* consumers: warpgroup wgi owns rows 64 wgi .. 64 wgi + 63 */
    if (NC == 2) reg_alloc<232>();
    else reg_alloc<160>();
    /* SK: wgi by a shuffle, so that ptxas sees it (and the skip decisions
     * made from it) uniform: wgmmas under a branch it takes for divergent
     * are serialized (C7520) */
    const int lane = tid & 31, warp = tid >> 5, wgi = SK ? __shfl_sync(0xffffffffu, warp >> 2, 0) : warp >> 2;
    int wa[2][3], wb[2][3];
    {
        int u[1][2][3];
        bool rvalid[1][2];
        lane_rows<1>(p, w, warp, lane, u, rvalid);
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            int uc[3];
#pragma unroll
            for (int i = 0; i < 3; i++) uc[i] = min(u[0][rr][i], w.n[i] - 1);
            window_of(p, w.n, uc, wa[rr], wb[rr]);
        }
    }
    /* SK: the union [ulo, uhi) and intersection [uia, uib) of this
     * warpgroup's rows' windows (its valid rows: a sub-box of the query box
     * from box row 64 wgi to 64 wgi + 63); uempty: no valid row */
    int ulo[3], uhi[3], uia[3], uib[3];
    bool uempty = false;
    if (SK) {
        int c0[3], c1[3];
        box_coords(64 * wgi, p.own, c0);
        box_coords(64 * wgi + 63, p.own, c1);
#pragma unroll
        for (int i = 0; i < 3; i++) {
            const int first = w.o[i] + c0[i], last = min(w.o[i] + c1[i], w.n[i] - 1);
            uempty = uempty || first >= w.n[i];
            win32(w.n[i], p.K[i], p.st[i], p.causal[i], min(first, w.n[i] - 1), ulo[i], uib[i]);
            win32(w.n[i], p.K[i], p.st[i], p.causal[i], last, uia[i], uhi[i]);
        }
    } else {
#pragma unroll
        for (int i = 0; i < 3; i++) ulo[i] = blk.lo[i], uhi[i] = blk.hi[i], uia[i] = blk.ia[i], uib[i] = blk.ib[i];
    }
    cp_wait<0>();
    fence_async_smem();
    named_sync(1, WS_NCT);
    /* QR: this thread's A fragments of Q (rows r0 and r0 + 8 of the block,
     * columns 16 kk + 2 (lane & 3) (+1) and 8 more), as acc_to_a packs P */
    uint32_t qa[QR ? D / 16 : 1][4];
    if (QR) {
        const int r0 = wgi * 64 + (warp & 3) * 16 + (lane >> 2), cb = 4 * (lane & 3);
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
            for (int i = 0; i < 4; i++)
                qa[kk][i] = *reinterpret_cast<const uint32_t *>(sQ + sw_off<QROWS>(r0 + 8 * (i & 1), 2 * kk + (i >> 1)) + cb);
    }

    float o[64], s[BN / 2];
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
    for (int j = 0; j < 64; j++) o[j] = 0.f;
#pragma unroll
    for (int j = 0; j < BN / 2; j++) s[j] = 0.f;
    const float sl2 = p.scale * LOG2E;
    uint32_t pa[BN / 16][4];

    /* the descriptors of stage 0's K and V and of this warpgroup's Q rows,
     * moved per stage and k-step by sdesc_add (v15) */
    const uint64_t dK0 = sdesc(aK, 16, 1024), dV0 = sdesc(aV, KVB / 2, 1024);
    const uint64_t dQ0 = sdesc(aQ + wgi * 64 * 128, 16, 1024);
    auto issue_s = [&](int st) {
        const uint64_t dK = sdesc_add(dK0, st * KVB);
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            const uint64_t db = sdesc_add(dK, (kk >> 2) * (KVB / 2) + (kk & 3) * 32);
            if (QR) {
                mma_rs_s64<T>(s, qa[kk], db, kk > 0);
            } else {
                const uint64_t da = sdesc_add(dQ0, (kk >> 2) * (QBY / 2) + (kk & 3) * 32);
                mma_ss<T, BN>(s, da, db, kk > 0);
            }
        }
        wg_commit();
    };
    auto issue_pv = [&](int st) {
        const uint64_t dV = sdesc_add(dV0, st * KVB);
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) mma_rs_n128<T>(o, pa[kk], sdesc_add(dV, kk * 16 * 128));
        wg_commit();
    };
    /* mask the next tile's scores (tiles in order: cur), update m and l,
     * s := exp2(s sl2 - m); alpha: O's factor */
    TileCursor cur;
    cur.start(blk.lo);
    if (SPLIT) cur.seek(t0, blk.nt, blk.lo, p.it);
    auto softmax = [&](float alpha[2]) {
        const int *org = cur.org;
        bool full = true;
#pragma unroll
        for (int i = 0; i < 3; i++) full = full && org[i] >= uia[i] && org[i] + p.it[i] <= uib[i];
        if (!full) {
#pragma unroll
            for (int rr = 0; rr < 2; rr++) {
                const uint64_t bits = window_bits(p, org, wa[rr], wb[rr]) >> (2 * (lane & 3));
#pragma unroll
                for (int j = 0; j < BN / 8; j++)
#pragma unroll
                    for (int e = 0; e < 2; e++)
                        if (!((bits >> (j * 8 + e)) & 1u)) s[4 * j + rr * 2 + e] = -INFINITY;
            }
        } else if (p.itprod < BN) {
#pragma unroll
            for (int j = 0; j < BN / 8; j++)
#pragma unroll
                for (int e = 0; e < 2; e++)
                    if (j * 8 + 2 * (lane & 3) + e >= p.itprod) s[4 * j + e] = s[4 * j + 2 + e] = -INFINITY;
        }
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            float mx = -INFINITY;
            if (RED) {
                float tm[BN / 8];
#pragma unroll
                for (int j = 0; j < BN / 8; j++) tm[j] = fmaxf(s[4 * j + rr * 2], s[4 * j + rr * 2 + 1]);
#pragma unroll
                for (int h = BN / 16; h >= 1; h /= 2)
#pragma unroll
                    for (int j = 0; j < h; j++) tm[j] = fmaxf(tm[j], tm[j + h]);
                mx = tm[0];
            } else {
#pragma unroll
                for (int j = 0; j < BN / 8; j++) mx = fmaxf(mx, fmaxf(s[4 * j + rr * 2], s[4 * j + rr * 2 + 1]));
            }
            mx = shfl_max4(mx) * sl2;
            /* v15: the row's reference m moves only when the tile's maximum
             * exceeds it by more than WS_RESCALE_SLACK (log2 units; 0: by
             * anything, the plain running maximum), so P <= 2^slack and O
             * and l keep their scale (alpha = 1, no O rescale) on most tiles;
             * O / l and lse = m + log2 l do not depend on the reference */
            if (mx > m[rr] + WS_RESCALE_SLACK) {
                alpha[rr] = ex2_approx(m[rr] - mx);
                m[rr] = mx;
                l[rr] *= alpha[rr];
            } else {
                alpha[rr] = 1.f;
            }
            const float muse = m[rr] == -INFINITY ? 0.f : m[rr];
            float ps[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
            for (int j = 0; j < BN / 8; j++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const float pv = ex2_approx(fmaf(s[4 * j + rr * 2 + e], sl2, -muse));
                    s[4 * j + rr * 2 + e] = pv;
                    if (RED) ps[(2 * j + e) & 3] += pv;
                    else l[rr] += pv;
                }
            if (RED) l[rr] += (ps[0] + ps[1]) + (ps[2] + ps[3]);
        }
        cur.next(blk.nt, blk.lo, p.it);
    };
    /* O *= alpha (skipped where no row of the warp changed its maximum), P
     * to A fragments */
    auto rescale_pack = [&](const float alpha[2]) {
        if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
            for (int rr = 0; rr < 2; rr++)
#pragma unroll
                for (int j = 0; j < D / 8; j++) {
                    o[4 * j + rr * 2] *= alpha[rr];
                    o[4 * j + rr * 2 + 1] *= alpha[rr];
                }
        }
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) acc_to_a<T>(pa[kk], &s[8 * kk], &s[8 * kk + 4]);
    };
    auto release = [&](int st) {
        __syncwarp();
        if (lane == 0) mbar_arrive(bar0 + 8 * (NS + st));
    };

    /* PP: warpgroup g issues after bar.sync 2 + g and lets the next one go
     * by bar.arrive 2 + (g + 1) % NC (a ring: 0, 1, (2,) 0, ...); the last
     * warpgroup lets 0 go first, and 0 takes that last arrival after its
     * loop (every arrival matched).  Each barrier: 256 threads, the waiting
     * warpgroup and the arriving one. */
    auto turn_begin = [&]() {
        if (PP) named_sync(2 + wgi, 256);
    };
    auto turn_end = [&]() {
        if (PP) named_arrive(NC == 2 ? 3 - wgi : wgi == NC - 1 ? 2 : 3 + wgi, 256);
    };
    if (PP && wgi == NC - 1) named_arrive(2, 256);
    int st = 0;
    uint32_t ph = 0;
    if (!OVL) {
        for (int t = 0; t < ntiles; t++) {
            mbar_wait(bar0 + 8 * st, ph);
            if (!PF) fence_async_smem();
            pin(s);
            wg_fence();
            issue_s(st);
            wg_wait<0>();
            pin(s);
            float alpha[2];
            softmax(alpha);
            rescale_pack(alpha);
            pin(o);
            wg_fence();
            issue_pv(st);
            wg_wait<0>();
            pin(o);
            release(st);
            if (++st == NS) st = 0, ph ^= 1;
        }
    } else if (SK) {
        /* pend: the stage of the last computed tile, whose O += P V is not
         * issued yet (always the previous tile: a skipped tile flushes it).
         * Every wgmma group is waited for in the branch that issues it. */
        float alpha[2];
        int pend = -1;
        for (int t = 0; t < ntiles; t++) {
            bool need = !uempty;
#pragma unroll
            for (int i = 0; i < 3; i++) need = need && cur.org[i] < uhi[i] && cur.org[i] + p.it[i] > ulo[i];
            mbar_wait(bar0 + 8 * st, ph);
            if (need && pend >= 0) {
                fence_async_smem();
                pin(s);
                pin(o);
                turn_begin();
                wg_fence();
                issue_s(st);
                issue_pv(pend);
                turn_end();
                wg_wait<1>();
                pin(s);
                softmax(alpha);
                wg_wait<0>();
                pin(o);
                release(pend);
                rescale_pack(alpha);
                pend = st;
            } else if (need) {
                fence_async_smem();
                pin(s);
                turn_begin();
                wg_fence();
                issue_s(st);
                turn_end();
                wg_wait<0>();
                pin(s);
                softmax(alpha);
                rescale_pack(alpha);
                pend = st;
            } else if (pend >= 0) {
                pin(o);
                turn_begin();
                wg_fence();
                issue_pv(pend);
                turn_end();
                wg_wait<0>();
                pin(o);
                release(pend);
                pend = -1;
                release(st);
                cur.next(blk.nt, blk.lo, p.it);
            } else {
                turn_begin();
                turn_end();
                release(st);
                cur.next(blk.nt, blk.lo, p.it);
            }
            if (++st == NS) st = 0, ph ^= 1;
        }
        /* the last turn, taken even with nothing to issue */
        if (pend >= 0) {
            pin(o);
            turn_begin();
            wg_fence();
            issue_pv(pend);
            turn_end();
            wg_wait<0>();
            pin(o);
            release(pend);
        } else {
            turn_begin();
            turn_end();
        }
    } else if (ntiles > 0) {
        float alpha[2];
        mbar_wait(bar0, 0);
        if (!PF) fence_async_smem();
        pin(s);
        turn_begin();
        wg_fence();
        issue_s(0);
        turn_end();
        wg_wait<0>();
        pin(s);
        softmax(alpha);
        rescale_pack(alpha);
        for (int t = 1; t < ntiles; t++) {
            int nst = st + 1;
            uint32_t nph = ph;
            if (nst == NS) nst = 0, nph ^= 1;
            mbar_wait(bar0 + 8 * nst, nph);
            if (!PF) fence_async_smem();
            pin(s);
            pin(o);
            turn_begin();
            wg_fence();
            issue_s(nst);
            issue_pv(st);
            turn_end();
            wg_wait<1>();
            pin(s);
            softmax(alpha);
            wg_wait<0>();
            pin(o);
            release(st);
            rescale_pack(alpha);
            st = nst, ph = nph;
        }
        pin(o);
        turn_begin();
        wg_fence();
        issue_pv(st);
        turn_end();
        wg_wait<0>();
        pin(o);
        release(st);
    }
    if (PP && wgi == 0) named_sync(2, 256);

    if (SPLIT && sunit >= 0) {
        /* a part: unnormalised O (fp32), m (log2 units, scaled) and l of
         * every box row, valid or not */
        const int sb = sunit / p.sparts; /* the split box */
        const float *pbox = p.part + (size_t)sb * p.sparts * split_unit_floats<NC>();
        float *po = p.part + (size_t)sunit * split_unit_floats<NC>();
        float *pml = po + QROWS * D;
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            const float lsum = shfl_sum4(l[rr]);
            const int r = warp * 16 + (lane >> 2) + rr * 8;
#pragma unroll
            for (int j = 0; j < D / 8; j++)
                *reinterpret_cast<float2 *>(po + r * D + j * 8 + 2 * (lane & 3)) =
                    make_float2(o[4 * j + rr * 2], o[4 * j + rr * 2 + 1]);
            if ((lane & 3) == 0) *reinterpret_cast<float2 *>(pml + 2 * r) = make_float2(m[rr], lsum);
        }
        /* v14: the part of the box that arrives last merges the parts (v12's
         * merge kernel, inside this kernel).  Release: every consumer fences
         * its writes, the consumers meet, thread 0 fences and draws a ticket
         * from the box's arrival counter (p.sticket[sb], zero at the launch);
         * the part that draws sparts - 1 is last, every other part having
         * released its partials before drawing.  That part puts the counter
         * back to 0 (no part of this launch touches it again), so the next
         * launch finds it zero (cuda-tc.cu keeps the counters between calls,
         * or zeroes fresh ones). */
        __threadfence();
        named_sync(1, WS_NCT);
        bool last = false;
        if (tid == 0) {
            __threadfence();
            const unsigned int ticket = atomicAdd(p.sticket + sb, 1u);
            last = ticket == (unsigned int)p.sparts - 1u;
            if (last) {
                __threadfence();
                atomicExch(p.sticket + sb, 0u);
            }
        }
        /* thread 0's verdict to every consumer (a barrier with an OR) */
        if (!named_sync_or(1, WS_NCT, last)) return;
        __threadfence();
        split_merge_box<T, NC, WS_NCT>(p, w, pbox, tid);
        return;
    }
    int u[1][2][3];
    bool rvalid[1][2];
    lane_rows<1>(p, w, warp, lane, u, rvalid);
    T *ob = reinterpret_cast<T *>(p.o.data) + w.b * p.o.s[0] + w.h * p.o.s[4];
    float *lb = p.lse.data ? reinterpret_cast<float *>(p.lse.data) + w.b * p.lse.s[0] + w.h * p.lse.s[4] : nullptr;
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        const float lsum = shfl_sum4(l[rr]);
        if (!rvalid[0][rr]) continue;
        const float inv = 1.f / lsum;
        T *orow = ob + token_off(p, p.o, w.g, u[0][rr]);
#pragma unroll
        for (int j = 0; j < D / 8; j++) {
            const int col = j * 8 + 2 * (lane & 3);
            *reinterpret_cast<uint32_t *>(orow + col) =
                Mma<T>::pack(o[4 * j + rr * 2] * inv, o[4 * j + rr * 2 + 1] * inv);
        }
        if (lb != nullptr && (lane & 3) == 0) lb[token_off(p, p.lse, w.g, u[0][rr])] = (m[rr] + log2f(lsum)) * LN2;
    }
#else
    (void)p;
    __trap();
#endif
}

/* Host side: the boxes of configuration 7 (128 query rows, 64-key tiles, the
 * weighted box search). */
template <typename T, int VMODE, int MINB, int BN, bool OVL> cudaError_t forward_v(Params p, cudaStream_t st)
{
    int ext[3];
    group_ext(p, ext);
    choose_box(BRQ, ext, p.own);
    plan_iter(p, BN, ext, fwd_mask_weight());
    static unsigned long long done;
    return launch(fwd_kernel<T, VMODE, MINB, BN, OVL>, &done, plan_grid(p, p.H), NTH, smem_bytes<MINB, BN>(), st,
                  p);
}

/* Tiles of width k (a grid from 0) meeting [off, off + U) along an axis, and
 * how many of them lie inside [off + ia, off + ib). */
static inline void sk_axis(int k, int off, int U, int ia, int ib, int &touched, int &full)
{
    touched = (off + U - 1) / k - off / k + 1;
    const int f0 = cdiv(off + ia, k), f1 = (off + ib) / k;
    full = f1 > f0 ? f1 - f0 : 0;
}

/* SK 2's boxes: the query box (128 rows, powers of two; no side past twice
 * its extent, or choose_box's) and the iterated box (at most WS_BN rows,
 * any shape) that minimise the consumers' work over the typical interior
 * block: query boxes x the two warpgroups' (tiles + weight x masked tiles),
 * a warpgroup's tiles being those of the block's tile grid that meet its
 * half box's union (the second half starts one half further); ties: more
 * rows per tile, then choose_box's query box.  Returns that cost.  bn: the
 * most rows of an iterated tile (v11: the dK/dV kernel's SK plans its query
 * tiles of 32 or 64 rows with it). */
static inline double plan_ws_sk(Params &p, const int ext[3], double weight, int nc = 2, int bn = WS_BN)
{
    int def[3];
    choose_box(nc == 2 ? BRQ : 64, ext, def);
    if (nc == 3) def[def[0] > 1 ? 0 : def[1] > 1 ? 1 : 2] *= 3;
    double best = -1;
    int bprod = 0, bown[3] = {def[0], def[1], def[2]}, bit[3] = {1, 1, 1};
    /* candidates: nc 2, the power-of-two boxes of 128 rows, split along their
     * first axis longer than 1; nc 3 (v10), a power-of-two box of 64 rows
     * with one axis tripled, the axis the thirds split: no axis before it
     * longer than 1, so that each third (64 rows) is a sub-box */
    const int lg = nc == 2 ? 7 : 6;
    for (int a = 0; a <= lg; a++)
        for (int b = 0; a + b <= lg; b++)
            for (int j = 0; j < (nc == 2 ? 1 : 3); j++) {
                int own[3] = {1 << a, 1 << b, 1 << (lg - a - b)};
                int sx = own[0] > 1 ? 0 : own[1] > 1 ? 1 : 2; /* the axis the halves split */
                if (nc == 3) {
                    if (j > sx) continue;
                    sx = j;
                    own[j] *= 3;
                }
                const bool isdef = own[0] == def[0] && own[1] == def[1] && own[2] == def[2];
                bool ok = true;
                for (int i = 0; i < 3; i++) ok = ok && (own[i] == 1 || own[i] < 2 * ext[i]);
                if (!ok && !isdef) continue;
                int half[3] = {own[0], own[1], own[2]};
                half[sx] /= nc;
                int U[3], ia[3], ib[3];
                union_ext(p, ext, half, U, ia, ib);
                double nbox = 1;
                for (int i = 0; i < 3; i++) nbox *= cdiv(ext[i], own[i]);
                for (int k0 = 1; k0 <= bn && k0 <= U[0]; k0++)
                    for (int k1 = 1; k0 * k1 <= bn && k1 <= U[1]; k1++) {
                        const int k2 = bn / (k0 * k1) < U[2] ? bn / (k0 * k1) : U[2];
                        const int k[3] = {k0, k1, k2};
                        double work = 0;
                        for (int g = 0; g < nc; g++) {
                            int tt = 1, ff = 1;
                            for (int i = 0; i < 3; i++) {
                                int t1, f1;
                                sk_axis(k[i], i == sx ? g * half[i] : 0, U[i], ia[i], ib[i], t1, f1);
                                tt *= t1;
                                ff *= f1;
                            }
                            work += tt + weight * (tt - ff);
                        }
                        const double cost = nbox * work;
                        const int prod = k0 * k1 * k2;
                        const bool better = best < 0 || cost < best * (1 - 1e-12) ||
                                            (cost <= best * (1 + 1e-12) && (prod > bprod || (prod == bprod && isdef)));
                        if (better) {
                            best = cost;
                            bprod = prod;
                            for (int i = 0; i < 3; i++) bown[i] = own[i], bit[i] = k[i];
                        }
                    }
            }
    for (int i = 0; i < 3; i++) p.own[i] = bown[i], p.it[i] = bit[i];
    finish_iter(p);
    return best;
}

/* Host side of the warp-specialised forward: the same boxes as forward_v
 * (SK 2: plan_ws_sk's; NC 3 only with SK 2). */
template <typename T, int NS, bool OVL, bool PP, bool PF = false, bool RED = false, bool QR = false, int SK = 0,
          int NC = 2>
cudaError_t forward_ws(Params p, cudaStream_t st)
{
    static_assert(NC == 2 || SK == 2, "a 192-row box only with plan_ws_sk's boxes");
    int ext[3];
    group_ext(p, ext);
    if (SK == 2) {
        plan_ws_sk(p, ext, fwd_mask_weight(), NC);
    } else {
        choose_box(BRQ, ext, p.own);
        plan_iter(p, WS_BN, ext, fwd_mask_weight());
    }
    static unsigned long long done;
    return launch(fwd_ws_kernel<T, NS, OVL, PP, PF, RED, QR, SK, NC>, &done, plan_grid(p, p.H), ws_nth<NC>(),
                  ws_smem_bytes<NS, NC>(), st, p);
}

/* v12, the split forward's plan (configuration 18): the boxes of NC 3 / SK 2
 * (plan_ws_sk), the grid of whole boxes, and which boxes are split.  One
 * block per SM (177 KB of shared memory), so a grid of g boxes runs in
 * ceil(g / nsm) rounds; the last round's r = g mod nsm boxes leave SMs idle.
 * Those r boxes are split in S = min(SPLIT_MAX, nsm / r) parts (each part a
 * contiguous share of the box's tiles), so the tail round fills up to nsm
 * SMs with blocks 1/S as long; the first g - r boxes are whole.  S < 2: no
 * split (the plain kernel's work and result).  force_split (tests): every
 * box in that many parts.  Returns the blocks to launch; p.sfull, p.sparts
 * set, and *bytes: the parts' scratch (0: none). */
static inline int64_t plan_split(Params &p, size_t *bytes)
{
    int ext[3];
    group_ext(p, ext);
    plan_ws_sk(p, ext, fwd_mask_weight(), 3);
    const int64_t grid = plan_grid(p, p.H);
    int64_t r = 0;
    int S = 1;
    if (p.force_split >= 2) {
        S = p.force_split;
        r = grid;
    } else if (p.nsm > 0) {
        r = grid % p.nsm;
        if (r > 0) S = p.nsm / r < SPLIT_MAX ? (int)(p.nsm / r) : SPLIT_MAX;
    }
    if (S < 2 || grid <= 0) {
        p.sfull = (int)grid;
        p.sparts = 1;
        *bytes = 0;
        return grid;
    }
    p.sfull = (int)(grid - r);
    p.sparts = S;
    *bytes = (size_t)r * S * split_unit_floats<3>() * sizeof(float);
    return p.sfull + r * S;
}

/* The split forward: fwd_ws_kernel with SPLIT (NC 3, SK 2, as
 * configuration 15); the last part of each split box to finish merges it
 * (v14; v12 launched split_merge_kernel for that).  p: planned by plan_split
 * already (p.sparts >= 1: the caller took its scratch) or not (p.sparts 0:
 * planned here); where it splits, p.part: plan_split's bytes of scratch
 * (device), p.sticket: a counter per split box (grid - p.sfull of them), all
 * zero at the launch and zero again after it. */
template <typename T, int NS> cudaError_t forward_ws_split(Params p, cudaStream_t st)
{
    size_t bytes = 0;
    if (p.sparts < 1) plan_split(p, &bytes);
    const int64_t grid = (int64_t)p.nown[0] * p.nown[1] * p.nown[2] * p.dil[0] * p.dil[1] * p.dil[2] * p.H * p.B;
    const int64_t split = p.sparts >= 2 ? grid - p.sfull : 0; /* split boxes */
    if (split > 0 && (p.part == nullptr || p.sticket == nullptr)) return cudaErrorInvalidValue;
    static unsigned long long done;
    return launch(fwd_ws_kernel<T, NS, true, true, false, false, false, 2, 3, true>, &done,
                  p.sfull + split * p.sparts, ws_nth<3>(), ws_smem_bytes<NS, 3>(), st, p);
}

} /* namespace wg */
} /* namespace tc */

#endif /* NATTEN_TC_WGMMA_CUH */
