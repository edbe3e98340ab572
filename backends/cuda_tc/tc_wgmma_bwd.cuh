/*
 * tc_wgmma_bwd.cuh - a Hopper backward of cuda-tc for head dim 128 (fp16/bf16):
 * warpgroup MMA (wgmma.mma_async, sm_90a only).  Shared by the library's
 * tc-bwd128-sm90a.cu (compiled for sm_90a alone; two of the variants, cuda-tc
 * configurations 11 and 12 and the default on sm_90, and since v11 the SK
 * backward, configurations 16 and 17) and the standalone harness (all six,
 * NOTES.md v5).
 *
 * Built from tc_wgmma.cuh's pieces (descriptors, the 128-byte swizzled tile
 * layout, the wgmma wrappers, fences) and tc_kernels.cuh's geometry; the
 * structure is that of the mma.sync backward (v2):
 *  - delta = rowsum(dO * O): tc_kernels.cuh's kernel;
 *  - a key-parallel kernel (dkv_kernel): a block owns a box of 64 * KWG keys,
 *    one warpgroup per 64 keys (the owned box halved along its first axis
 *    longer than 1); it loops over the query tiles (BQ rows) covering the
 *    inverse neighbourhoods of its keys, for every query head of its KV head:
 *      S^T  = K Q^T   (wgmma m64nBQk16, both operands in shared memory, K-major)
 *      dP^T = V dO^T  (same)
 *      P^T  = exp(S^T - lse) where the key is in the query's window (a 64-bit
 *             mask per query over the warpgroup's keys), dS^T = P^T (dP^T - delta)
 *      dV  += P^T dO  (wgmma m64n128k16, A = P^T from registers: the
 *             accumulator fragment of S^T is the A fragment; B = the dO tile,
 *             MN-major, as V in the forward)
 *      dK  += dS^T Q  (same, B = the Q tile)
 *    dK, dV (64 + 64 floats per thread) stay in registers; written once.
 *    SK (v11, two warpgroups): a warpgroup skips the query tiles outside its
 *    own keys' inverse windows (exact: their products would add zeros), with
 *    boxes planned for it (plan_dkv_sk; library configurations 16 and 17).
 *  - a query-parallel kernel (dq_kernel): a block owns 64 * QWG queries (one
 *    warpgroup per 64), iterates over the key tiles (BN keys) of the union of
 *    their windows as the forward does:
 *      S = Q K^T, dP = dO V^T (shared x shared), P = exp(S - lse) masked by the
 *      forward's window bits, dS = P (dP - delta), dQ += dS K (A = dS from
 *      registers, B = the K tile, MN-major).
 *  No atomics: each output row is written by exactly one thread, after a fixed
 *  order of accumulation: deterministic.
 * Both kernels: two cp.async stages of the iterated tiles, fence.proxy.async,
 * one __syncthreads per tile before the MMAs and one after, wgmma.fence /
 * commit_group / wait_group 0 around each group of products (no overlap of
 * softmax and MMA inside a warpgroup; two or more warpgroups per SM overlap).
 * PIPE (v17, template flag; the rank-3 default's kernels): the barrier after
 * the products goes, the next tile is staged after the S, dP products are
 * issued (its loads overlap them), and in dK/dV (PIPE 2) a tile's dV, dK
 * products are issued with the next tile's S^T, dP^T and waited for by
 * wait_group 1 and a second barrier before their stage is refilled.
 */
#ifndef NATTEN_TC_WGMMA_BWD_CUH
#define NATTEN_TC_WGMMA_BWD_CUH

#include <stdlib.h>

#include "tc_wgmma.cuh"

namespace tc {
namespace wg {

/* Bytes of a swizzled tile of R rows of D = 128 halves. */
template <int R> __host__ __device__ constexpr int tile_bytes() { return R * D * 2; }

/*
 * Warpgroup g's part of an owned box of 128 rows (KWG = 2): the first 64
 * rows in box order are the box halved along its first axis longer than 1
 * (sides are powers of two, row = c0*o1*o2 + c1*o2 + c2), so warpgroup g owns
 * the sub-box `sub` at offset off (box coordinates) and its row r' is row
 * 64 g + r' of the box.  halves == 1: the box itself.
 */
__host__ __device__ __forceinline__ void split_box(const int own[3], int halves, int g, int sub[3], int off[3])
{
    /* written out, no run-time index: the arrays stay in registers */
    const int h = halves == 2 ? (own[0] > 1 ? 0 : own[1] > 1 ? 1 : 2) : -1;
    sub[0] = h == 0 ? own[0] / 2 : own[0];
    sub[1] = h == 1 ? own[1] / 2 : own[1];
    sub[2] = h == 2 ? own[2] / 2 : own[2];
    off[0] = h == 0 ? g * sub[0] : 0;
    off[1] = h == 1 ? g * sub[1] : 0;
    off[2] = h == 2 ? g * sub[2] : 0;
}

/*
 * One tile's two products of either kernel: S = A B^T into s and dP = C E^T
 * into dp, N columns each.  dA and dC: descriptors of the warpgroup's
 * resident 64-row slices (tiles of RT bytes; warpgroup wgi's at byte
 * wgi * 64 * 128), dB and dE of the streamed tiles of this tile's stage (ST
 * bytes each); k-step kk lies in half kk / 4 at byte 32 (kk % 4) of both.
 * v16: the descriptors are built once by the caller and moved per k-step by
 * sdesc_add (constant offsets), not rebuilt by sdesc per wgmma.  With OVL,
 * S's group is committed on its own and only it is waited for (dP keeps
 * running); otherwise both.
 */
template <typename T, int N, int RT, int ST, bool OVL>
__device__ __forceinline__ void tile_products(float (&s)[N / 2], float (&dp)[N / 2], uint64_t dA, uint64_t dB,
                                              uint64_t dC, uint64_t dE)
{
    pin(s);
    pin(dp);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        const uint32_t ra = (kk >> 2) * (RT / 2) + (kk & 3) * 32;
        const uint32_t sa = (kk >> 2) * (ST / 2) + (kk & 3) * 32;
        mma_ss<T, N>(s, sdesc_add(dA, ra), sdesc_add(dB, sa), kk > 0);
    }
    if (OVL) wg_commit();
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        const uint32_t ra = (kk >> 2) * (RT / 2) + (kk & 3) * 32;
        const uint32_t sa = (kk >> 2) * (ST / 2) + (kk & 3) * 32;
        mma_ss<T, N>(dp, sdesc_add(dC, ra), sdesc_add(dE, sa), kk > 0);
    }
    wg_commit();
    if (OVL) {
        wg_wait<1>();
    } else {
        wg_wait<0>();
        pin(dp);
    }
    pin(s);
}

/* PIPE (v17): tile_products' two products issued as one group (wgmma.fence
 * and commit by the caller), no wait. */
template <typename T, int N, int RT, int ST>
__device__ __forceinline__ void issue_products(float (&s)[N / 2], float (&dp)[N / 2], uint64_t dA, uint64_t dB,
                                               uint64_t dC, uint64_t dE)
{
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        const uint32_t ra = (kk >> 2) * (RT / 2) + (kk & 3) * 32;
        const uint32_t sa = (kk >> 2) * (ST / 2) + (kk & 3) * 32;
        mma_ss<T, N>(s, sdesc_add(dA, ra), sdesc_add(dB, sa), kk > 0);
    }
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        const uint32_t ra = (kk >> 2) * (RT / 2) + (kk & 3) * 32;
        const uint32_t sa = (kk >> 2) * (ST / 2) + (kk & 3) * 32;
        mma_ss<T, N>(dp, sdesc_add(dC, ra), sdesc_add(dE, sa), kk > 0);
    }
}

/*
 * v16: the iterated tiles of a block's grid (nt[0] x nt[1] x nt[2] boxes of
 * shape box from lo, the last axis fastest: tile_origin's order) walked one
 * step per tile by their origins, instead of tile_origin's integer divisions
 * per call: an axis wraps to lo when its origin reaches end = lo + nt * box.
 * next() returns true when the walk wraps from the last tile to the first
 * (the dK/dV kernel's next query head).  Every value is the block's.
 */
struct TileWalk {
    int org[3], lo[3], end[3];
    __device__ __forceinline__ void start(const int l[3], const int nt[3], const int box[3])
    {
#pragma unroll
        for (int i = 0; i < 3; i++) org[i] = lo[i] = l[i], end[i] = l[i] + nt[i] * box[i];
    }
    __device__ __forceinline__ bool next(const int box[3])
    {
        bool carry = true; /* into axis i */
#pragma unroll
        for (int i = 2; i >= 0; i--) {
            const int o = carry ? org[i] + box[i] : org[i];
            const bool wrap = carry && o == end[i];
            org[i] = wrap ? lo[i] : o;
            carry = wrap;
        }
        return carry;
    }
};

/*
 * P = 2^x of the backward (v16).  fp16: one MUFU.EX2 (ex2_approx, flushing
 * results below 2^-126 to zero) instead of exp2f's denormal fix-up (~7 more
 * instructions per score: FSETP, PLOP3, two predicated FMULs, moves); the
 * same bits as exp2f in every result: for x >= -126 both are the same
 * MUFU.EX2, and a P below 2^-126 becomes 0 in fp16 either way, as does
 * dS = P (dP - delta) (|dP - delta| < 2^41 for finite fp16 inputs and
 * head dim 128: far below the 2^101 that would lift it to fp16's smallest
 * subnormal, 2^-24), with the same sign.  bf16 (subnormals down to 2^-133)
 * keeps exp2f.
 */
template <typename T> __device__ __forceinline__ float exp2_p(float x)
{
    if constexpr (std::is_same<T, __half>::value) return ex2_approx(x);
    else return exp2f(x);
}

/* ---- dK, dV: key-parallel ------------------------------------------------ */

/* K and V (one tile each), Q and dO (two stages each), lse and delta (two
 * stages), the window masks (two stages x KWG x BQ). */
/*
 * dkv_kernel's scores of one tile, in its S^T / dP^T fragments: s[4j + 2rr +
 * e] is key krow + 8rr, query 8j + 2(lane & 3) + e.  P^T = exp(S^T scale -
 * lse) where the query's window holds the key (bit krow + 8rr of the
 * query's mask M), else 0; L the tile's lse, sl2 = scale log2(e).
 */
template <typename T, int BQ>
__device__ __forceinline__ void dkv_p(float (&s)[BQ / 2], const float *L, const uint64_t *M, int krow, int lane,
                                      float sl2)
{
#pragma unroll
    for (int j = 0; j < BQ / 8; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const int col = 8 * j + 2 * (lane & 3) + e;
            const float l2 = L[col] * LOG2E;
            const uint64_t m = M[col] >> krow;
#pragma unroll
            for (int rr = 0; rr < 2; rr++) {
                const int i = 4 * j + 2 * rr + e;
                s[i] = ((m >> (8 * rr)) & 1u) ? exp2_p<T>(fmaf(s[i], sl2, -l2)) : 0.f;
            }
        }
}

/* dS^T = P^T (dP^T - delta), in place of dP^T; Dl the tile's delta. */
template <int BQ>
__device__ __forceinline__ void dkv_ds(float (&dp)[BQ / 2], const float (&s)[BQ / 2], const float *Dl, int lane)
{
#pragma unroll
    for (int j = 0; j < BQ / 8; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const float dl = Dl[8 * j + 2 * (lane & 3) + e];
#pragma unroll
            for (int rr = 0; rr < 2; rr++) {
                const int i = 4 * j + 2 * rr + e;
                dp[i] = s[i] * (dp[i] - dl);
            }
        }
}

/*
 * The dK/dV kernels' epilogue: this lane's key rows krow + 8 rr of the
 * warpgroup's sub-box (shape sub, at w.o + koff), dK scaled, dV as summed;
 * rows past the group are not written (w.h is the KV head).
 */
template <typename T>
__device__ __forceinline__ void store_dkdv(const Params &p, const Work &w, const int sub[3], const int koff[3],
                                           int krow, int lane, const float (&dk)[64], const float (&dv)[64])
{
    T *dkb = reinterpret_cast<T *>(p.dk.data) + w.b * p.dk.s[0] + w.h * p.dk.s[4];
    T *dvb = reinterpret_cast<T *>(p.dv.data) + w.b * p.dv.s[0] + w.h * p.dv.s[4];
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        int c[3], u[3];
        box_coords(krow + 8 * rr, sub, c);
        bool valid = true;
#pragma unroll
        for (int i = 0; i < 3; i++) {
            u[i] = w.o[i] + koff[i] + c[i];
            valid = valid && u[i] < w.n[i];
        }
        if (!valid) continue;
        T *rk = dkb + token_off(p, p.dk, w.g, u);
        T *rv = dvb + token_off(p, p.dv, w.g, u);
#pragma unroll
        for (int j = 0; j < D / 8; j++) {
            const int col = j * 8 + 2 * (lane & 3);
            *reinterpret_cast<uint32_t *>(rk + col) =
                Mma<T>::pack(dk[4 * j + 2 * rr] * p.scale, dk[4 * j + 2 * rr + 1] * p.scale);
            *reinterpret_cast<uint32_t *>(rv + col) = Mma<T>::pack(dv[4 * j + 2 * rr], dv[4 * j + 2 * rr + 1]);
        }
    }
}

template <int KWG, int BQ> constexpr size_t dkv_smem_bytes()
{
    return 1024 + 2 * tile_bytes<KWG * 64>() + 2 * 2 * tile_bytes<BQ>() + 2 * 2 * BQ * sizeof(float) +
           2 * KWG * BQ * sizeof(uint64_t);
}

template <typename T, int KWG, int BQ, int MINB, bool OVL, bool SK = false, int PIPE = 0>
__global__ void __launch_bounds__(KWG * 128, MINB) dkv_kernel(const Params p)
{
#if TC_WGMMA_DEVICE
    constexpr int NT = KWG * 128, RK = KWG * 64, KT = tile_bytes<RK>(), QT = tile_bytes<BQ>();
    static_assert(BQ == 32 || BQ == 64, "query tiles of 32 or 64 rows");
    static_assert(!SK || (KWG == 2 && !OVL), "SK: two warpgroups, no overlap");
    static_assert(PIPE == 0 || !OVL, "PIPE: no OVL");
    extern __shared__ __align__(1024) char smem_raw[];
    char *sm = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    char *sK = sm, *sV = sK + KT, *sQ = sV + KT, *sG = sQ + 2 * QT;
    float *sL = reinterpret_cast<float *>(sG + 2 * QT); /* lse (natural log), [2][BQ] */
    float *sD = sL + 2 * BQ;                            /* delta, [2][BQ] */
    uint64_t *sM = reinterpret_cast<uint64_t *>(sD + 2 * BQ); /* [2][KWG][BQ] */
    const uint32_t aK = smem_u32(sK), aV = smem_u32(sV), aQ = smem_u32(sQ), aG = smem_u32(sG);
    /* SK: wgi by a shuffle, so that ptxas sees it (and the skip decisions
     * that follow) warp-uniform, as in fwd_ws_kernel */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5,
              wgi = SK ? __shfl_sync(0xffffffffu, warp >> 2, 0) : warp >> 2;

    KeyBlock blk;
    if (!key_block(p, blk)) return;
    const Work &w = blk.w; /* w.h is the KV head */
    const int hk = w.h, gh = blk.gh;
    const int *lo = blk.lo, *ntq = blk.nt; /* the queries whose windows meet the owned keys */
    const int ntq_all = blk.ntq;
    const int ntiles = ntq_all * gh;
    const T *kb = head_base<T>(p.k, w.b, hk);
    const T *vb = head_base<T>(p.v, w.b, hk);

    /* The window masks are window_bits over each warpgroup's sub-box of keys:
     * a Params whose iterated box is that sub-box (window_bits reads it and
     * rep only). */
    Params kp;
    int koff[3]; /* this warpgroup's sub-box: origin w.o + koff, shape kp.it */
    split_box(p.own, KWG, wgi, kp.it, koff);
    kp.rep[0] = kp.rep[1] = 0;
    for (int c = 0; c < kp.it[1]; c++) kp.rep[0] |= 1ull << (c * kp.it[2]);
    for (int c = 0; c < kp.it[0]; c++) kp.rep[1] |= 1ull << (c * kp.it[1] * kp.it[2]);

    /* SK (v11): the queries whose windows meet this warpgroup's keys,
     * [slo, shi) per axis (none: its sub-box lies past the group's extent);
     * a query tile outside them is skipped by the warpgroup (no products:
     * none of its queries sees any of its keys), which still stages its
     * share of the tiles and meets every barrier. */
    int slo[3] = {0, 0, 0}, shi[3] = {0, 0, 0};
    bool snone = false;
    if (SK) {
#pragma unroll
        for (int i = 0; i < 3; i++) {
            const int first = w.o[i] + koff[i], last = min(first + kp.it[i], w.n[i]) - 1;
            int a0, b0, a1, b1;
            snone = snone || first > last;
            inv_win32(w.n[i], p.K[i], p.st[i], p.causal[i], min(first, w.n[i] - 1), a0, b0);
            inv_win32(w.n[i], p.K[i], p.st[i], p.causal[i], max(last, 0), a1, b1);
            slo[i] = a0;
            shi[i] = b1;
        }
    }

    const RowSlot ks = row_slot<RK, NT>(p.own), qs = row_slot<BQ, NT>(p.it);
    int qc[3] = {0, 0, 0}; /* box coordinates of query row tid (< BQ) */
    if (tid < BQ) box_coords(tid, p.it, qc);
    /* the tile to stage next: query head hq, origin qw.org (v16: walked) */
    TileWalk qw;
    qw.start(lo, ntq, p.it);
    int hq = hk * gh;
    auto load_q = [&](int stage) {
        const int h = hq;
        const int *org = qw.org;
        const T *qb = head_base<T>(p.q, w.b, h);
        const T *gb = head_base<T>(p.dout, w.b, h);
        gather_sw<T, BQ, NT, true>(sQ + stage * QT, qb, p, p.q, w, qs, p.itprod, org);
        gather_sw<T, BQ, NT, true>(sG + stage * QT, gb, p, p.dout, w, qs, p.itprod, org);
        if (tid < BQ) {
            int uq[3], a[3] = {0, 0, 0}, b[3] = {0, 0, 0};
            bool valid = tid < p.itprod;
#pragma unroll
            for (int i = 0; i < 3; i++) {
                uq[i] = org[i] + qc[i];
                valid = valid && uq[i] < w.n[i];
            }
            const float *lb = head_base<float>(p.lse, w.b, h);
            cp_async4(sL + stage * BQ + tid, valid ? lb + token_off(p, p.lse, w.g, uq) : lb, valid);
            cp_async4(sD + stage * BQ + tid, valid ? p.delta + delta_index(p, w.b, h, w.g, uq) : p.delta, valid);
            if (valid) window_of(p, w.n, uq, a, b);
#pragma unroll
            for (int g = 0; g < KWG; g++) {
                int sub[3], off[3], korg[3];
                split_box(p.own, KWG, g, sub, off);
#pragma unroll
                for (int i = 0; i < 3; i++) korg[i] = w.o[i] + off[i];
                sM[(stage * KWG + g) * BQ + tid] = valid ? window_bits(kp, korg, a, b) : 0ull;
            }
        }
    };

    gather_sw<T, RK, NT, true>(sK, kb, p, p.k, w, ks, RK, w.o);
    gather_sw<T, RK, NT, true>(sV, vb, p, p.v, w, ks, RK, w.o);
    if (ntiles > 0) load_q(0);
    cp_commit();
    int qorg[3]; /* tile t's origin (SK) */

    /* v16: descriptors built once, moved by sdesc_add (the resident K, V
     * slices of this warpgroup; stage 0 of the Q, dO tiles) */
    const uint64_t dK0 = sdesc(aK + wgi * 64 * 128, 16, 1024), dV0 = sdesc(aV + wgi * 64 * 128, 16, 1024);
    const uint64_t dQ0 = sdesc(aQ, 16, 1024), dG0 = sdesc(aG, 16, 1024);
    const uint64_t dQn = sdesc(aQ, QT / 2, 1024), dGn = sdesc(aG, QT / 2, 1024); /* B MN-major */

    float dk[64], dv[64], s[BQ / 2], dp[BQ / 2];
#pragma unroll
    for (int j = 0; j < 64; j++) dk[j] = dv[j] = 0.f;
#pragma unroll
    for (int j = 0; j < BQ / 2; j++) s[j] = dp[j] = 0.f;
    const float sl2 = p.scale * LOG2E;
    /* this lane's key rows in its warpgroup's sub-box: krow + 8 rr */
    const int krow = (warp & 3) * 16 + (lane >> 2);

    if constexpr (PIPE != 0) {
        /*
         * PIPE (v17): one barrier per tile, after which tile t + 1 is staged
         * while tile t's S^T, dP^T products run; PIPE 1: dV, dK += ... of
         * tile t waited for in tile t (the next barrier frees its stage);
         * PIPE 2: issued in tile t + 1 as a group before its S^T, dP^T (P^T
         * and dS^T fragments kept), waited for (wait_group 1) and a second
         * barrier before tile t + 2 is staged over tile t's stage.  Same
         * products in the same order as PIPE 0: the same bits.
         */
        uint32_t pa[BQ / 16][4], da[BQ / 16][4];
        int pstage = 0;
        bool pend = false; /* PIPE 2: tile pstage's dV, dK not issued yet */
        auto issue_dvdk = [&](int st) {
#pragma unroll
            for (int kk = 0; kk < BQ / 16; kk++)
                mma_rs_n128<T>(dv, pa[kk], sdesc_add(dGn, st * QT + kk * 2048));
#pragma unroll
            for (int kk = 0; kk < BQ / 16; kk++)
                mma_rs_n128<T>(dk, da[kk], sdesc_add(dQn, st * QT + kk * 2048));
        };
        for (int t = 0; t < ntiles; t++) {
            const int stage = t & 1;
#pragma unroll
            for (int i = 0; i < 3; i++) qorg[i] = qw.org[i]; /* qw: at tile t */
            cp_wait<0>();
            fence_async_smem();
            __syncthreads();
            bool meet = true;
            if (SK) {
                meet = !snone;
#pragma unroll
                for (int i = 0; i < 3; i++) meet = meet && qorg[i] < shi[i] && qorg[i] + p.it[i] > slo[i];
            }
            if (meet || pend) {
                pin(s);
                pin(dp);
                pin(dv);
                pin(dk);
                wg_fence();
                if (pend) {
                    issue_dvdk(pstage);
                    wg_commit();
                }
                if (meet) {
                    issue_products<T, BQ, KT, QT>(s, dp, dK0, sdesc_add(dQ0, stage * QT), dV0,
                                                  sdesc_add(dG0, stage * QT));
                    wg_commit();
                }
            }
            if (PIPE == 2) {
                if (pend) {
                    if (meet) wg_wait<1>();
                    else wg_wait<0>();
                    pin(dv);
                    pin(dk);
                    pend = false;
                }
                __syncthreads(); /* every warp's products over stage ^ 1 done */
            }
            if (t + 1 < ntiles) {
                if (qw.next(p.it)) hq++;
                load_q(stage ^ 1);
                cp_commit();
            }
            if (meet) {
                wg_wait<0>();
                pin(dp);
                pin(s);
                dkv_p<T, BQ>(s, sL + stage * BQ, sM + (stage * KWG + wgi) * BQ, krow, lane, sl2);
#pragma unroll
                for (int kk = 0; kk < BQ / 16; kk++) acc_to_a<T>(pa[kk], &s[8 * kk], &s[8 * kk + 4]);
                dkv_ds<BQ>(dp, s, sD + stage * BQ, lane);
#pragma unroll
                for (int kk = 0; kk < BQ / 16; kk++) acc_to_a<T>(da[kk], &dp[8 * kk], &dp[8 * kk + 4]);
                if (PIPE == 1) {
                    pin(dv);
                    pin(dk);
                    wg_fence();
                    issue_dvdk(stage);
                    wg_commit();
                    wg_wait<0>();
                    pin(dv);
                    pin(dk);
                } else {
                    pend = true;
                    pstage = stage;
                }
            }
        }
        if (pend) {
            pin(dv);
            pin(dk);
            wg_fence();
            issue_dvdk(pstage);
            wg_commit();
            wg_wait<0>();
            pin(dv);
            pin(dk);
        }
    } else
    for (int t = 0; t < ntiles; t++) {
        const int stage = t & 1;
#pragma unroll
        for (int i = 0; i < 3; i++) qorg[i] = qw.org[i]; /* qw: at tile t */
        if (t + 1 < ntiles) {
            if (qw.next(p.it)) hq++;
            load_q(stage ^ 1);
            cp_commit();
            cp_wait<1>();
        } else {
            cp_wait<0>();
        }
        fence_async_smem();
        __syncthreads();

        bool meet = true;
        if (SK) {
            meet = !snone;
#pragma unroll
            for (int i = 0; i < 3; i++) meet = meet && qorg[i] < shi[i] && qorg[i] + p.it[i] > slo[i];
        }
        if (meet) {
            /* S^T = K Q^T, dP^T = V dO^T; OVL: P^T while dP^T is computed, dS^T while dV is */
            tile_products<T, BQ, KT, QT, OVL>(s, dp, dK0, sdesc_add(dQ0, stage * QT), dV0, sdesc_add(dG0, stage * QT));

            dkv_p<T, BQ>(s, sL + stage * BQ, sM + (stage * KWG + wgi) * BQ, krow, lane, sl2);
            uint32_t pa[BQ / 16][4], da[BQ / 16][4];
#pragma unroll
            for (int kk = 0; kk < BQ / 16; kk++) acc_to_a<T>(pa[kk], &s[8 * kk], &s[8 * kk + 4]);
            /* dS^T = P^T (dP^T - delta), as the A operand of dK += dS^T Q */
            auto make_ds = [&]() {
                dkv_ds<BQ>(dp, s, sD + stage * BQ, lane);
#pragma unroll
                for (int kk = 0; kk < BQ / 16; kk++) acc_to_a<T>(da[kk], &dp[8 * kk], &dp[8 * kk + 4]);
            };
            if (!OVL) make_ds();

            /* dV += P^T dO, dK += dS^T Q: k-step kk = queries 16kk.., at byte
             * 2048 kk of each half; LBO = the offset of the halves (B MN-major,
             * as V in the forward) */
            pin(dv);
            pin(dk);
            wg_fence();
#pragma unroll
            for (int kk = 0; kk < BQ / 16; kk++)
                mma_rs_n128<T>(dv, pa[kk], sdesc_add(dGn, stage * QT + kk * 2048));
            if (OVL) {
                wg_commit();
                wg_wait<1>(); /* dP^T done, dV in flight */
                pin(dp);
                make_ds();
                wg_fence(); /* da written since the last fence */
            }
#pragma unroll
            for (int kk = 0; kk < BQ / 16; kk++)
                mma_rs_n128<T>(dk, da[kk], sdesc_add(dQn, stage * QT + kk * 2048));
            wg_commit();
            wg_wait<0>();
            pin(dv);
            pin(dk);
        } /* SK: tiles outside the warpgroup's queries: no products */
        __syncthreads();
    }
    cp_wait<0>(); /* nothing may stay in flight (no tiles: keys in no window) */

    store_dkdv<T>(p, w, kp.it, koff, krow, lane, dk, dv);
#else
    (void)p;
    __trap();
#endif
}

/*
 * v26: the warp-specialised dK/dV kernel (FlashAttention-3's structure, as
 * fwd_ws_kernel for the forward).  One block of three warpgroups per SM:
 * warpgroups 0 and 1 compute (64 keys each, split_box's halves of a 128-key
 * box planned by plan_dkv_sk, each skipping the query tiles outside its keys'
 * inverse windows, as dkv_kernel's SK), warpgroup 2 is the producer: it
 * stages each query tile (Q, dO, lse, delta, and the window masks it
 * computes) into an NS-stage ring, waits for its own copies one tile later,
 * fences them for the async proxy and arrives on the stage's "full" mbarrier
 * (fwd_ws_kernel's PF).  The consumers wait on it and release the stage on
 * its "empty" mbarrier, every consumer thread after its warpgroup's products
 * (one arrival a warp after __syncwarp orders the same, but racecheck does
 * not follow it and reports the lanes' loads of lse, delta and the masks).
 * No block-wide barrier in the loop: the consumers drift apart, and staging
 * is out of their path.  setmaxnreg moves registers from the producer (48;
 * ptxas -v: 52 bytes of its loop spilled) to the consumers (224; at 216
 * ptxas serialises their wgmma, C7512).  The products, their order and the
 * epilogue are dkv_kernel's (SK, PIPE 0): the same bits.  (Measured and not
 * kept, NOTES.md v26: a 4-stage ring, dkv_kernel's OVL overlaps.)
 * AF (v27; the default's form, configuration 21): the producer does not wait
 * for its own copies; each of its threads arrives twice on a stage's "full"
 * barrier, by cp.async.mbarrier.arrive (made when its copies have landed)
 * and by a plain arrive after its stores of the masks, and the consumers
 * fence for the async proxy after their wait (fwd_ws_kernel's form without
 * PF).  (Measured and not kept, NOTES.md v27: the consumers taking turns at
 * the tensor cores, FA3's ping-pong.)
 */
template <int BQ, int NS> constexpr size_t dkv_ws_smem_bytes()
{
    return 1024 + 2 * tile_bytes<128>() +
           NS * (2 * tile_bytes<BQ>() + 2 * BQ * sizeof(float) + 2 * BQ * sizeof(uint64_t)) + 2 * NS * 8;
}

template <typename T, int BQ, int NS, bool AF = false>
__global__ void __launch_bounds__(384, 1) dkv_ws_kernel(const Params p)
{
#if TC_WGMMA_DEVICE
    constexpr int RK = 128, NCT = 256, NPT = 128, KT = tile_bytes<RK>(), QT = tile_bytes<BQ>();
    static_assert(BQ == 32 || BQ == 64, "query tiles of 32 or 64 rows");
    static_assert(NS >= 2, "a ring of two stages or more");
    extern __shared__ __align__(1024) char smem_raw[];
    char *sm = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    char *sK = sm, *sV = sK + KT, *sQ = sV + KT, *sG = sQ + NS * QT;
    float *sL = reinterpret_cast<float *>(sG + NS * QT);      /* lse (natural log), [NS][BQ] */
    float *sD = sL + NS * BQ;                                  /* delta, [NS][BQ] */
    uint64_t *sM = reinterpret_cast<uint64_t *>(sD + NS * BQ); /* window masks, [NS][2][BQ] */
    const uint32_t bar0 = smem_u32(sM + NS * 2 * BQ); /* full[s] at bar0 + 8s, empty[s] at bar0 + 8(NS + s) */
    const uint32_t aK = smem_u32(sK), aV = smem_u32(sV), aQ = smem_u32(sQ), aG = smem_u32(sG);
    const int tid = threadIdx.x;

    KeyBlock blk;
    if (!key_block(p, blk)) return;
    const Work &w = blk.w; /* w.h is the KV head */
    const int hk = w.h, gh = blk.gh;
    const int *lo = blk.lo, *ntq = blk.nt;
    const int ntiles = blk.ntq * gh;

    /* the consumers stage K and V (their waits follow the barrier) */
    if (tid < NCT) {
        const RowSlot ks = row_slot<RK, NCT>(p.own);
        gather_sw<T, RK, NCT, true>(sK, head_base<T>(p.k, w.b, hk), p, p.k, w, ks, RK, w.o);
        gather_sw<T, RK, NCT, true>(sV, head_base<T>(p.v, w.b, hk), p, p.v, w, ks, RK, w.o);
        cp_commit();
    }
    if (tid == 0) {
#pragma unroll
        for (int s = 0; s < NS; s++) {
            mbar_init(bar0 + 8 * s, AF ? 2 * NPT : NPT);
            mbar_init(bar0 + 8 * (NS + s), NCT);
        }
    }
    __syncthreads();

    TileWalk qw; /* the query tile at hand, in both roles */
    qw.start(lo, ntq, p.it);

    if (tid >= NCT) {
        /* producer warpgroup: NPT / BQ threads per query row */
        reg_dealloc<48>();
        const int pt = tid - NCT;
        RowSlot qs;
        qs.r = pt / (NPT / BQ);
        qs.sub = pt % (NPT / BQ);
        box_coords(qs.r, p.it, qs.c);
        int qc[3] = {0, 0, 0}; /* box coordinates of query row pt (< BQ) */
        if (pt < BQ) box_coords(pt, p.it, qc);
        /* the window masks are window_bits over each consumer's sub-box of
         * keys (a Params whose iterated box is that sub-box: window_bits
         * reads it and rep only) */
        Params kp;
        int koff[2][3];
        split_box(p.own, 2, 0, kp.it, koff[0]);
        split_box(p.own, 2, 1, kp.it, koff[1]);
        kp.rep[0] = kp.rep[1] = 0;
        for (int c = 0; c < kp.it[1]; c++) kp.rep[0] |= 1ull << (c * kp.it[2]);
        for (int c = 0; c < kp.it[0]; c++) kp.rep[1] |= 1ull << (c * kp.it[1] * kp.it[2]);
        int hq = hk * gh, st = 0;
        uint32_t ph = 0;
        for (int t = 0; t < ntiles; t++) {
            if (t >= NS) mbar_wait(bar0 + 8 * (NS + st), ph ^ 1);
            const T *qb = head_base<T>(p.q, w.b, hq);
            const T *gb = head_base<T>(p.dout, w.b, hq);
            gather_sw<T, BQ, NPT, true>(sQ + st * QT, qb, p, p.q, w, qs, p.itprod, qw.org);
            gather_sw<T, BQ, NPT, true>(sG + st * QT, gb, p, p.dout, w, qs, p.itprod, qw.org);
            if (pt < BQ) {
                int uq[3], a[3] = {0, 0, 0}, b[3] = {0, 0, 0};
                bool valid = pt < p.itprod;
#pragma unroll
                for (int i = 0; i < 3; i++) {
                    uq[i] = qw.org[i] + qc[i];
                    valid = valid && uq[i] < w.n[i];
                }
                const float *lb = head_base<float>(p.lse, w.b, hq);
                cp_async4(sL + st * BQ + pt, valid ? lb + token_off(p, p.lse, w.g, uq) : lb, valid);
                cp_async4(sD + st * BQ + pt, valid ? p.delta + delta_index(p, w.b, hq, w.g, uq) : p.delta, valid);
                if (valid) window_of(p, w.n, uq, a, b);
#pragma unroll
                for (int g = 0; g < 2; g++) {
                    int korg[3];
#pragma unroll
                    for (int i = 0; i < 3; i++) korg[i] = w.o[i] + koff[g][i];
                    sM[(st * 2 + g) * BQ + pt] = valid ? window_bits(kp, korg, a, b) : 0ull;
                }
            }
            ring_staged<AF, true, NS>(bar0, st, t); /* AF: two arrivals a thread (count 2 NPT) */
            if (++st == NS) st = 0, ph ^= 1;
            if (qw.next(p.it)) hq++;
        }
        ring_drain<AF, NS>(bar0, st, ntiles);
        return;
    }

    /* consumers: warpgroup wgi owns the keys of its half of the box
     * (128 x 48 + 256 x 224 = 63488 of the SM's 65536 registers; at 216
     * ptxas serialises the wgmma, C7512) */
    reg_alloc<224>();
    /* wgi by a shuffle, so that ptxas sees it (and the skip decisions that
     * follow) warp-uniform, as in fwd_ws_kernel */
    const int lane = tid & 31, warp = tid >> 5, wgi = __shfl_sync(0xffffffffu, warp >> 2, 0);
    int ksub[3], koff[3]; /* this warpgroup's sub-box: origin w.o + koff, shape ksub */
    split_box(p.own, 2, wgi, ksub, koff);
    /* the queries whose windows meet this warpgroup's keys, [slo, shi) per
     * axis (none: its sub-box lies past the group's extent), as dkv_kernel's
     * SK */
    int slo[3], shi[3];
    bool snone = false;
#pragma unroll
    for (int i = 0; i < 3; i++) {
        const int first = w.o[i] + koff[i], last = min(first + ksub[i], w.n[i]) - 1;
        int a0, b0, a1, b1;
        snone = snone || first > last;
        inv_win32(w.n[i], p.K[i], p.st[i], p.causal[i], min(first, w.n[i] - 1), a0, b0);
        inv_win32(w.n[i], p.K[i], p.st[i], p.causal[i], max(last, 0), a1, b1);
        slo[i] = a0;
        shi[i] = b1;
    }

    const uint64_t dK0 = sdesc(aK + wgi * 64 * 128, 16, 1024), dV0 = sdesc(aV + wgi * 64 * 128, 16, 1024);
    const uint64_t dQ0 = sdesc(aQ, 16, 1024), dG0 = sdesc(aG, 16, 1024);
    const uint64_t dQn = sdesc(aQ, QT / 2, 1024), dGn = sdesc(aG, QT / 2, 1024); /* B MN-major */

    float dk[64], dv[64], s[BQ / 2], dp[BQ / 2];
#pragma unroll
    for (int j = 0; j < 64; j++) dk[j] = dv[j] = 0.f;
#pragma unroll
    for (int j = 0; j < BQ / 2; j++) s[j] = dp[j] = 0.f;
    const float sl2 = p.scale * LOG2E;
    const int krow = (warp & 3) * 16 + (lane >> 2); /* this lane's key rows: krow + 8 rr */

    cp_wait<0>(); /* K and V: every consumer's copies landed, then seen by all */
    fence_async_smem();
    named_sync(1, NCT);

    int st = 0;
    uint32_t ph = 0;
    for (int t = 0; t < ntiles; t++) {
        bool meet = !snone;
#pragma unroll
        for (int i = 0; i < 3; i++) meet = meet && qw.org[i] < shi[i] && qw.org[i] + p.it[i] > slo[i];
        qw.next(p.it);
        mbar_wait(bar0 + 8 * st, ph);
        if (AF) fence_async_smem();
        if (meet) {
            /* S^T = K Q^T, dP^T = V dO^T */
            tile_products<T, BQ, KT, QT, false>(s, dp, dK0, sdesc_add(dQ0, st * QT), dV0, sdesc_add(dG0, st * QT));
            dkv_p<T, BQ>(s, sL + st * BQ, sM + (st * 2 + wgi) * BQ, krow, lane, sl2);
            uint32_t pa[BQ / 16][4], da[BQ / 16][4];
#pragma unroll
            for (int kk = 0; kk < BQ / 16; kk++) acc_to_a<T>(pa[kk], &s[8 * kk], &s[8 * kk + 4]);
            /* dS^T = P^T (dP^T - delta), the A operand of dK += dS^T Q */
            dkv_ds<BQ>(dp, s, sD + st * BQ, lane);
#pragma unroll
            for (int kk = 0; kk < BQ / 16; kk++) acc_to_a<T>(da[kk], &dp[8 * kk], &dp[8 * kk + 4]);
            /* dV += P^T dO, dK += dS^T Q (B MN-major, as dkv_kernel) */
            pin(dv);
            pin(dk);
            wg_fence();
#pragma unroll
            for (int kk = 0; kk < BQ / 16; kk++)
                mma_rs_n128<T>(dv, pa[kk], sdesc_add(dGn, st * QT + kk * 2048));
#pragma unroll
            for (int kk = 0; kk < BQ / 16; kk++)
                mma_rs_n128<T>(dk, da[kk], sdesc_add(dQn, st * QT + kk * 2048));
            wg_commit();
            wg_wait<0>();
            pin(dv);
            pin(dk);
        } /* a tile outside the warpgroup's queries: no products */
        /* every consumer thread arrives (not one a warp after __syncwarp):
         * the same order, in the form compute-sanitizer's racecheck follows
         * for the plain loads of lse, delta and the masks */
        mbar_arrive(bar0 + 8 * (NS + st));
        if (++st == NS) st = 0, ph ^= 1;
    }

    store_dkdv<T>(p, w, ksub, koff, krow, lane, dk, dv);
#else
    (void)p;
    __trap();
#endif
}

/* ---- dQ: query-parallel --------------------------------------------------- */

/* Q and dO (one tile each), K and V (two stages each), the rows' windows. */
/*
 * dq_kernel's scores of one tile: s[4j + 2rr + e] is row warp * 16 + lane / 4
 * + 8rr, key 8j + 2(lane & 3) + e.  dq_p: P of row half rr = exp(S scale -
 * lse) where bit 8j + e of the row's window bits is set, else 0 (lse2 = the
 * row's lse log2(e)); dq_ds: dS = P (dP - delta) in place of P.
 */
template <typename T, int BN>
__device__ __forceinline__ void dq_p(float (&s)[BN / 2], uint64_t bits, int rr, float sl2, float lse2)
{
#pragma unroll
    for (int j = 0; j < BN / 8; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const int i = 4 * j + 2 * rr + e;
            s[i] = ((bits >> (8 * j + e)) & 1u) ? exp2_p<T>(fmaf(s[i], sl2, -lse2)) : 0.f;
        }
}

template <int BN>
__device__ __forceinline__ void dq_ds(float (&s)[BN / 2], const float (&dp)[BN / 2], const float (&dlt)[2])
{
#pragma unroll
    for (int j = 0; j < BN / 8; j++)
#pragma unroll
        for (int rr = 0; rr < 2; rr++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int i = 4 * j + 2 * rr + e;
                s[i] *= dp[i] - dlt[rr];
            }
}

/* The dQ kernels' epilogue: this lane's rows (lane_rows'), dQ scaled. */
template <typename T>
__device__ __forceinline__ void store_dq(const Params &p, const Work &w, const int (&u)[1][2][3],
                                         const bool (&rvalid)[1][2], int lane, const float (&dq)[64])
{
    T *db = reinterpret_cast<T *>(p.dq.data) + w.b * p.dq.s[0] + w.h * p.dq.s[4];
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        if (!rvalid[0][rr]) continue;
        T *row = db + token_off(p, p.dq, w.g, u[0][rr]);
#pragma unroll
        for (int j = 0; j < D / 8; j++) {
            const int col = j * 8 + 2 * (lane & 3);
            *reinterpret_cast<uint32_t *>(row + col) =
                Mma<T>::pack(dq[4 * j + 2 * rr] * p.scale, dq[4 * j + 2 * rr + 1] * p.scale);
        }
    }
}

template <int QWG, int BN> constexpr size_t dq_smem_bytes()
{
    return 1024 + 2 * tile_bytes<QWG * 64>() + 2 * 2 * tile_bytes<BN>() + QWG * 64 * 8 * sizeof(int);
}

template <typename T, int QWG, int BN, int MINB, bool OVL, bool PIPE = false>
__global__ void __launch_bounds__(QWG * 128, MINB) dq_kernel(const Params p)
{
#if TC_WGMMA_DEVICE
    constexpr int NT = QWG * 128, RQ = QWG * 64, QT = tile_bytes<RQ>(), KT = tile_bytes<BN>();
    static_assert(BN == 32 || BN == 64, "key tiles of 32 or 64 rows (64-bit masks)");
    static_assert(!PIPE || !OVL, "PIPE: no OVL");
    extern __shared__ __align__(1024) char smem_raw[];
    char *sm = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    char *sQ = sm, *sG = sQ + QT, *sK = sG + QT, *sV = sK + 2 * KT;
    int *sWin = reinterpret_cast<int *>(sV + 2 * KT); /* row r: a[3], -, b[3], - */
    const uint32_t aQ = smem_u32(sQ), aG = smem_u32(sG), aK = smem_u32(sK), aV = smem_u32(sV);
    /* wgi by a shuffle (v16): warp-uniform to ptxas, so that the
     * descriptors of this warpgroup's Q and dO slices live in uniform
     * registers */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wgi = __shfl_sync(0xffffffffu, warp >> 2, 0);

    QueryBlock blk;
    if (!query_block(p, blk)) return;
    const Work &w = blk.w;
    const int *lo = blk.lo, *ia = blk.ia, *ib = blk.ib, *ntk = blk.nt;
    const int ntiles = blk.ntiles, hk = blk.hk;
    const T *qb = head_base<T>(p.q, w.b, w.h);
    const T *gb = head_base<T>(p.dout, w.b, w.h);
    const T *kb = head_base<T>(p.k, w.b, hk);
    const T *vb = head_base<T>(p.v, w.b, hk);
    const float *lb = head_base<float>(p.lse, w.b, w.h);

    /* the owned rows' windows (rows past the group: clamped) */
    if (tid < RQ) {
        int c[3], uc[3], a[3], b[3];
        box_coords(tid, p.own, c);
#pragma unroll
        for (int i = 0; i < 3; i++) uc[i] = min(w.o[i] + c[i], w.n[i] - 1);
        window_of(p, w.n, uc, a, b);
        *reinterpret_cast<int4 *>(sWin + 8 * tid) = make_int4(a[0], a[1], a[2], 0);
        *reinterpret_cast<int4 *>(sWin + 8 * tid + 4) = make_int4(b[0], b[1], b[2], 0);
    }
    /* this lane's rows warp * 16 + lane / 4 + 8 rr: lse (base 2) and delta */
    int u[1][2][3];
    bool rvalid[1][2];
    float lse2[2], dlt[2];
    lane_rows<1>(p, w, warp, lane, u, rvalid);
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        lse2[rr] = rvalid[0][rr] ? lb[token_off(p, p.lse, w.g, u[0][rr])] * LOG2E : 0.f;
        dlt[rr] = rvalid[0][rr] ? p.delta[delta_index(p, w.b, w.h, w.g, u[0][rr])] : 0.f;
    }

    const RowSlot qs = row_slot<RQ, NT>(p.own), ks = row_slot<BN, NT>(p.it);
    /* the tile to stage next, walked (v16) */
    TileWalk kw;
    kw.start(lo, ntk, p.it);
    auto load_kv = [&](int stage) {
        const int *org = kw.org;
        gather_sw<T, BN, NT, true>(sK + stage * KT, kb, p, p.k, w, ks, p.itprod, org);
        gather_sw<T, BN, NT, true>(sV + stage * KT, vb, p, p.v, w, ks, p.itprod, org);
    };
    gather_sw<T, RQ, NT, true>(sQ, qb, p, p.q, w, qs, RQ, w.o);
    gather_sw<T, RQ, NT, true>(sG, gb, p, p.dout, w, qs, RQ, w.o);
    if (ntiles > 0) load_kv(0);
    cp_commit();

    /* v16: descriptors built once, moved by sdesc_add (this warpgroup's Q,
     * dO slices; stage 0 of the K, V tiles) */
    const uint64_t dQ0 = sdesc(aQ + wgi * 64 * 128, 16, 1024), dG0 = sdesc(aG + wgi * 64 * 128, 16, 1024);
    const uint64_t dK0 = sdesc(aK, 16, 1024), dV0 = sdesc(aV, 16, 1024);
    const uint64_t dKn = sdesc(aK, KT / 2, 1024); /* B MN-major */

    float dq[64], s[BN / 2], dp[BN / 2];
#pragma unroll
    for (int j = 0; j < 64; j++) dq[j] = 0.f;
#pragma unroll
    for (int j = 0; j < BN / 2; j++) s[j] = dp[j] = 0.f;
    const float sl2 = p.scale * LOG2E;

    /* the keys in row warp*16 + lane/4 + 8rr's window as bits, shifted for
     * this lane (tiles inside every owned row's window: all real keys) */
    auto row_bits = [&](const int org[3], int rr) {
        bool full = true;
#pragma unroll
        for (int i = 0; i < 3; i++) full = full && org[i] >= ia[i] && org[i] + p.it[i] <= ib[i];
        uint64_t bits;
        if (full) {
            bits = bit_range(0, p.itprod);
        } else {
            const int r = warp * 16 + rr * 8 + (lane >> 2);
            const int4 x = *reinterpret_cast<const int4 *>(sWin + 8 * r);
            const int4 y = *reinterpret_cast<const int4 *>(sWin + 8 * r + 4);
            const int a[3] = {x.x, x.y, x.z}, b[3] = {y.x, y.y, y.z};
            bits = window_bits(p, org, a, b);
        }
        return bits >> (2 * (lane & 3));
    };
    if constexpr (PIPE) {
        /*
         * PIPE (v17): one barrier per tile (not two), after which tile t + 1
         * is staged while tile t's S, dP products run; dQ += dS K waited for
         * in tile t, so that the next barrier frees its stage.  (Issuing it in
         * tile t + 1 instead, as dkv_kernel's PIPE 2 does, needs the dS
         * fragments kept: ptxas then serialises every wgmma, C7512, at the
         * 128 registers of two blocks per SM.)  Same products in the same
         * order as without PIPE: the same bits.
         */
        uint32_t da[BN / 16][4];
        for (int t = 0; t < ntiles; t++) {
            const int stage = t & 1;
            int org[3]; /* tile t's origin (kw: at tile t) */
#pragma unroll
            for (int i = 0; i < 3; i++) org[i] = kw.org[i];
            cp_wait<0>();
            fence_async_smem();
            __syncthreads();
            pin(s);
            pin(dp);
            pin(dq);
            wg_fence();
            issue_products<T, BN, QT, KT>(s, dp, dQ0, sdesc_add(dK0, stage * KT), dG0, sdesc_add(dV0, stage * KT));
            wg_commit();
            if (t + 1 < ntiles) {
                kw.next(p.it);
                load_kv(stage ^ 1);
                cp_commit();
            }
            wg_wait<0>();
            pin(dp);
            pin(s);
#pragma unroll
            for (int rr = 0; rr < 2; rr++) dq_p<T, BN>(s, row_bits(org, rr), rr, sl2, lse2[rr]);
            dq_ds<BN>(s, dp, dlt);
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) acc_to_a<T>(da[kk], &s[8 * kk], &s[8 * kk + 4]);
            pin(dq);
            wg_fence();
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++)
                mma_rs_n128<T>(dq, da[kk], sdesc_add(dKn, stage * KT + kk * 2048));
            wg_commit();
            wg_wait<0>();
            pin(dq);
        }
    } else
    for (int t = 0; t < ntiles; t++) {
        const int stage = t & 1;
        int org[3]; /* tile t's origin (kw: at tile t) */
#pragma unroll
        for (int i = 0; i < 3; i++) org[i] = kw.org[i];
        if (t + 1 < ntiles) {
            kw.next(p.it);
            load_kv(stage ^ 1);
            cp_commit();
            cp_wait<1>();
        } else {
            cp_wait<0>();
        }
        fence_async_smem();
        __syncthreads();

        /* S = Q K^T, dP = dO V^T; OVL: P while dP is computed */
        tile_products<T, BN, QT, KT, OVL>(s, dp, dQ0, sdesc_add(dK0, stage * KT), dG0, sdesc_add(dV0, stage * KT));

        /* s[4j + 2rr + e]: row warp*16 + lane/4 + 8rr, key 8j + 2(lane & 3) + e;
         * the keys in the row's window as bits (tiles inside every owned
         * row's window: all real keys) */
        bool full = true;
#pragma unroll
        for (int i = 0; i < 3; i++) full = full && org[i] >= ia[i] && org[i] + p.it[i] <= ib[i];
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            uint64_t bits;
            if (full) {
                bits = bit_range(0, p.itprod);
            } else {
                const int r = warp * 16 + rr * 8 + (lane >> 2);
                const int4 x = *reinterpret_cast<const int4 *>(sWin + 8 * r);
                const int4 y = *reinterpret_cast<const int4 *>(sWin + 8 * r + 4);
                const int a[3] = {x.x, x.y, x.z}, b[3] = {y.x, y.y, y.z};
                bits = window_bits(p, org, a, b);
            }
            dq_p<T, BN>(s, bits >> 2 * (lane & 3), rr, sl2, lse2[rr]);
        }
        if (OVL) {
            pin(s); /* the exponentials before the wait, not sunk past it */
            wg_wait<0>();
            pin(dp);
        }
        dq_ds<BN>(s, dp, dlt);
        uint32_t da[BN / 16][4];
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) acc_to_a<T>(da[kk], &s[8 * kk], &s[8 * kk + 4]);

        /* dQ += dS K: k-step kk = keys 16kk.., B = the K tile, MN-major */
        pin(dq);
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++)
            mma_rs_n128<T>(dq, da[kk], sdesc_add(dKn, stage * KT + kk * 2048));
        wg_commit();
        wg_wait<0>();
        pin(dq);
        __syncthreads();
    }
    cp_wait<0>();

    store_dq<T>(p, w, u, rvalid, lane, dq);
#else
    (void)p;
    __trap();
#endif
}

/*
 * v26: the warp-specialised dQ kernel (dkv_ws_kernel's structure on
 * dq_kernel's products).  One block of NC + 1 warpgroups per SM: warpgroups
 * 0 .. NC - 1 own 64 queries each of a box of 64 NC queries (their Q and dO
 * rows, the rows' windows, lse and delta staged once), warpgroup NC is the
 * producer: it gathers the K, V tiles (BN keys) of the box's key range into
 * an NS-stage ring and arrives on a stage's "full" mbarrier once its copies
 * have landed and are fenced (PF); every consumer thread arrives on the
 * stage's "empty" mbarrier after its warpgroup's products.  The products,
 * their order and the epilogue are dq_kernel's (without OVL): the same bits.
 * (Measured and not kept, NOTES.md v26: dq_kernel's OVL overlap, 32-key
 * tiles.)  AF (v27): the producer's arrivals made by cp.async.mbarrier.arrive
 * when its copies land (no wait for them), the consumers fencing, as
 * dkv_ws_kernel's AF.
 */
template <int BN, int NS, int NC> constexpr size_t dq_ws_smem_bytes()
{
    return 1024 + 2 * tile_bytes<64 * NC>() + NS * 2 * tile_bytes<BN>() + 64 * NC * 8 * sizeof(int) + 2 * NS * 8;
}

template <typename T, int BN, int NS, int NC, bool AF = false>
__global__ void __launch_bounds__(128 * (NC + 1), 1) dq_ws_kernel(const Params p)
{
#if TC_WGMMA_DEVICE
    constexpr int RQ = 64 * NC, NCT = 128 * NC, NPT = 128, QT = tile_bytes<RQ>(), KT = tile_bytes<BN>();
    static_assert(NC == 2 || NC == 3, "two or three consumer warpgroups");
    static_assert(BN == 32 || BN == 64, "key tiles of 32 or 64 rows (64-bit masks)");
    static_assert(NS >= 2, "a ring of two stages or more");
    extern __shared__ __align__(1024) char smem_raw[];
    char *sm = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    char *sQ = sm, *sG = sQ + QT, *sK = sG + QT, *sV = sK + NS * KT;
    int *sWin = reinterpret_cast<int *>(sV + NS * KT); /* row r: a[3], -, b[3], - */
    const uint32_t bar0 = smem_u32(sWin + RQ * 8);  /* full[s] at bar0 + 8s, empty[s] at bar0 + 8(NS + s) */
    const uint32_t aQ = smem_u32(sQ), aG = smem_u32(sG), aK = smem_u32(sK), aV = smem_u32(sV);
    const int tid = threadIdx.x;

    QueryBlock blk;
    if (!query_block(p, blk)) return;
    const Work &w = blk.w;
    const int *lo = blk.lo, *ia = blk.ia, *ib = blk.ib, *ntk = blk.nt;
    const int ntiles = blk.ntiles, hk = blk.hk;

    /* the consumers stage their Q and dO rows and the rows' windows (rows
     * past the group: clamped) */
    if (tid < NCT) {
        const RowSlot qs = row_slot<RQ, NCT>(p.own);
        gather_sw<T, RQ, NCT, true>(sQ, head_base<T>(p.q, w.b, w.h), p, p.q, w, qs, RQ, w.o);
        gather_sw<T, RQ, NCT, true>(sG, head_base<T>(p.dout, w.b, w.h), p, p.dout, w, qs, RQ, w.o);
        cp_commit();
        if (tid < RQ) {
            int c[3], uc[3], a[3], b[3];
            box_coords(tid, p.own, c);
#pragma unroll
            for (int i = 0; i < 3; i++) uc[i] = min(w.o[i] + c[i], w.n[i] - 1);
            window_of(p, w.n, uc, a, b);
            *reinterpret_cast<int4 *>(sWin + 8 * tid) = make_int4(a[0], a[1], a[2], 0);
            *reinterpret_cast<int4 *>(sWin + 8 * tid + 4) = make_int4(b[0], b[1], b[2], 0);
        }
    }
    if (tid == 0) {
#pragma unroll
        for (int s = 0; s < NS; s++) {
            mbar_init(bar0 + 8 * s, NPT);
            mbar_init(bar0 + 8 * (NS + s), NCT);
        }
    }
    __syncthreads();

    TileWalk kw; /* the key tile at hand, in both roles */
    kw.start(lo, ntk, p.it);

    if (tid >= NCT) {
        /* producer warpgroup: NPT / BN threads per key row */
        if (NC == 2) reg_dealloc<40>();
        else reg_dealloc<32>();
        const T *kb = head_base<T>(p.k, w.b, hk);
        const T *vb = head_base<T>(p.v, w.b, hk);
        RowSlot ks;
        ks.r = (tid - NCT) / (NPT / BN);
        ks.sub = (tid - NCT) % (NPT / BN);
        box_coords(ks.r, p.it, ks.c);
        int st = 0;
        uint32_t ph = 0;
        for (int t = 0; t < ntiles; t++) {
            if (t >= NS) mbar_wait(bar0 + 8 * (NS + st), ph ^ 1);
            gather_sw<T, BN, NPT, true>(sK + st * KT, kb, p, p.k, w, ks, p.itprod, kw.org);
            gather_sw<T, BN, NPT, true>(sV + st * KT, vb, p, p.v, w, ks, p.itprod, kw.org);
            ring_staged<AF, false, NS>(bar0, st, t);
            if (++st == NS) st = 0, ph ^= 1;
            kw.next(p.it);
        }
        ring_drain<AF, NS>(bar0, st, ntiles);
        return;
    }

    /* consumers: warpgroup wgi owns rows 64 wgi .. 64 wgi + 63 (128 x 40 +
     * 256 x 232 or 128 x 32 + 384 x 160 of the SM's 65536 registers) */
    if (NC == 2) reg_alloc<232>();
    else reg_alloc<160>();
    /* wgi by a shuffle: warp-uniform to ptxas (dq_kernel's v16) */
    const int lane = tid & 31, warp = tid >> 5, wgi = __shfl_sync(0xffffffffu, warp >> 2, 0);
    const float *lb = head_base<float>(p.lse, w.b, w.h);
    /* this lane's rows warp * 16 + lane / 4 + 8 rr: lse (base 2) and delta */
    int u[1][2][3];
    bool rvalid[1][2];
    float lse2[2], dlt[2];
    lane_rows<1>(p, w, warp, lane, u, rvalid);
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        lse2[rr] = rvalid[0][rr] ? lb[token_off(p, p.lse, w.g, u[0][rr])] * LOG2E : 0.f;
        dlt[rr] = rvalid[0][rr] ? p.delta[delta_index(p, w.b, w.h, w.g, u[0][rr])] : 0.f;
    }
    const uint64_t dQ0 = sdesc(aQ + wgi * 64 * 128, 16, 1024), dG0 = sdesc(aG + wgi * 64 * 128, 16, 1024);
    const uint64_t dK0 = sdesc(aK, 16, 1024), dV0 = sdesc(aV, 16, 1024);
    const uint64_t dKn = sdesc(aK, KT / 2, 1024); /* B MN-major */

    float dq[64], s[BN / 2], dp[BN / 2];
#pragma unroll
    for (int j = 0; j < 64; j++) dq[j] = 0.f;
#pragma unroll
    for (int j = 0; j < BN / 2; j++) s[j] = dp[j] = 0.f;
    const float sl2 = p.scale * LOG2E;

    cp_wait<0>(); /* Q and dO: every consumer's copies landed, then seen by all */
    fence_async_smem();
    named_sync(1, NCT);

    int st = 0;
    uint32_t ph = 0;
    for (int t = 0; t < ntiles; t++) {
        int org[3]; /* tile t's origin */
#pragma unroll
        for (int i = 0; i < 3; i++) org[i] = kw.org[i];
        kw.next(p.it);
        mbar_wait(bar0 + 8 * st, ph);
        if (AF) fence_async_smem();

        /* S = Q K^T, dP = dO V^T */
        tile_products<T, BN, QT, KT, false>(s, dp, dQ0, sdesc_add(dK0, st * KT), dG0, sdesc_add(dV0, st * KT));
        /* the keys in the row's window as bits (tiles inside every owned
         * row's window: all real keys), as dq_kernel */
        bool full = true;
#pragma unroll
        for (int i = 0; i < 3; i++) full = full && org[i] >= ia[i] && org[i] + p.it[i] <= ib[i];
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            uint64_t bits;
            if (full) {
                bits = bit_range(0, p.itprod);
            } else {
                const int r = warp * 16 + rr * 8 + (lane >> 2);
                const int4 x = *reinterpret_cast<const int4 *>(sWin + 8 * r);
                const int4 y = *reinterpret_cast<const int4 *>(sWin + 8 * r + 4);
                const int a[3] = {x.x, x.y, x.z}, b[3] = {y.x, y.y, y.z};
                bits = window_bits(p, org, a, b);
            }
            dq_p<T, BN>(s, bits >> 2 * (lane & 3), rr, sl2, lse2[rr]);
        }
        dq_ds<BN>(s, dp, dlt);
        uint32_t da[BN / 16][4];
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) acc_to_a<T>(da[kk], &s[8 * kk], &s[8 * kk + 4]);

        /* dQ += dS K: k-step kk = keys 16kk.., B = the K tile, MN-major */
        pin(dq);
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++)
            mma_rs_n128<T>(dq, da[kk], sdesc_add(dKn, st * KT + kk * 2048));
        wg_commit();
        wg_wait<0>();
        pin(dq);
        mbar_arrive(bar0 + 8 * (NS + st)); /* this thread is done with the stage */
        if (++st == NS) st = 0, ph ^= 1;
    }

    store_dq<T>(p, w, u, rvalid, lane, dq);
#else
    (void)p;
    __trap();
#endif
}

/* ---- host side ------------------------------------------------------------ */

/*
 * The backward: delta, dQ (owned boxes of 64 QWG queries, BN-key tiles, the
 * forward's weighted box search: it skips the mask on full tiles), dK/dV
 * (owned boxes of 64 KWG keys, BQ-query tiles, the fewest tiles: the mask is
 * applied on every tile).  OVL: in both kernels the exponentials of P are
 * computed while dP's products run (two commit groups), and in dK/dV, dS
 * while dV += P^T dO runs.  p.delta must hold B*H*L0*L1*L2 floats.
 * parts (timing of the pieces in the harness): bit 0 delta, bit 1 dQ, bit 2
 * dK/dV; the pieces left out must have run before on the same inputs.
 */
template <typename T, int KWG, int BQ, int KMINB, int QWG, int BN, int QMINB, bool OVL, int KPIPE = 0,
          bool QPIPE = false>
cudaError_t backward_v(const Params &p, cudaStream_t st, int parts = 7)
{
    int ext[3];
    group_ext(p, ext);
    const int64_t rows = (int64_t)p.B * p.H * p.L[0] * p.L[1] * p.L[2];
    if (rows == 0) return cudaSuccess;
    cudaError_t e = cudaSuccess;
    if (parts & 1) {
        fna_delta_kernel<T, D><<<(unsigned)((rows + 255) / 256), 256, 0, st>>>(p, rows);
        e = cudaGetLastError();
        if (e != cudaSuccess) return e;
    }
    static unsigned long long done_dq, done_dkv;
    if (parts & 2) {
        Params q = p;
        choose_box(QWG * 64, ext, q.own);
        plan_iter(q, BN, ext, fwd_mask_weight());
        e = launch(dq_kernel<T, QWG, BN, QMINB, OVL, QPIPE>, &done_dq, plan_grid(q, q.H), QWG * 128,
                   dq_smem_bytes<QWG, BN>(), st, q);
        if (e != cudaSuccess) return e;
    }
    if (!(parts & 4)) return cudaSuccess;
    Params k = p;
    choose_box(KWG * 64, ext, k.own);
    plan_iter(k, BQ, ext);
    return launch(dkv_kernel<T, KWG, BQ, KMINB, OVL, false, KPIPE>, &done_dkv, plan_grid(k, k.Hkv), KWG * 128,
                  dkv_smem_bytes<KWG, BQ>(), st, k);
}

/*
 * SK's boxes for the dK/dV kernel (v11): the owned key box (128 rows, powers
 * of two, no side past twice its extent, or choose_box's; two warpgroups, the
 * halves split_box makes) and the iterated query box (at most bq rows, any
 * shape) that minimise the warpgroup tiles of the whole grid (one head):
 * every block's tile grid over its keys' inverse-window union, a warpgroup
 * counting the tiles that meet its half's union (the tiles it does not skip).
 * Exact for the largest dilation group, not a typical-block model: a block's
 * tiles are a product over the axes of per-axis counts, so the sum over the
 * grid is the product of per-axis sums.  Ties: more rows per tile, then
 * choose_box's box.  Returns the warpgroup tiles per head (-1: no memory for
 * the search, choose_box's and plan_iter's boxes).
 */
static inline double plan_dkv_sk(Params &p, const int ext[3], int bq)
{
    int def[3];
    choose_box(128, ext, def);
    double best = -1;
    int bprod = 0, bown[3] = {def[0], def[1], def[2]}, bit[3] = {1, 1, 1};
    /* per block of an axis: lo, hi, and both halves' lo, hi (malloc: the
     * library links no C++ runtime) */
    int *span = nullptr;
    size_t cap = 0;
    for (int a = 0; a <= 7; a++)
        for (int b = 0; a + b <= 7; b++) {
            const int own[3] = {1 << a, 1 << b, 1 << (7 - a - b)};
            const bool isdef = own[0] == def[0] && own[1] == def[1] && own[2] == def[2];
            bool ok = true;
            for (int i = 0; i < 3; i++) ok = ok && (own[i] == 1 || own[i] < 2 * ext[i]);
            if (!ok && !isdef) continue;
            const int sx = own[0] > 1 ? 0 : own[1] > 1 ? 1 : 2; /* split_box's axis */
            /* per axis and tile width k (1..bq): the tiles summed over the
             * axis's blocks, for warpgroup 0 and 1 (equal but on sx) */
            double sum[3][2][65];
            for (int i = 0; i < 3; i++) {
                const int n = ext[i], nb = cdiv(n, own[i]), half = own[i] / 2;
                if ((size_t)nb * 6 > cap) {
                    free(span);
                    cap = (size_t)nb * 6;
                    span = static_cast<int *>(malloc(cap * sizeof(int)));
                    if (span == nullptr) { /* no memory: choose_box's box, the fewest tiles */
                        choose_box(128, ext, p.own);
                        plan_iter(p, bq, ext);
                        return -1;
                    }
                }
                for (int x = 0; x < nb; x++) {
                    const int first = x * own[i], last = (first + own[i] < n ? first + own[i] : n) - 1;
                    int a0, b0, a1, b1;
                    inv_win32(n, p.K[i], p.st[i], p.causal[i], first, a0, b0);
                    inv_win32(n, p.K[i], p.st[i], p.causal[i], last, a1, b1);
                    int *sp = &span[(size_t)x * 6];
                    sp[0] = a0, sp[1] = b1;
                    for (int g = 0; g < 2; g++) {
                        const int gf = i == sx ? first + g * half : first;
                        const int gl = i == sx ? (gf + half < n ? gf + half : n) - 1 : last;
                        if (gf > gl) { /* past the extent: no tiles */
                            sp[2 + 2 * g] = sp[3 + 2 * g] = a0;
                            continue;
                        }
                        inv_win32(n, p.K[i], p.st[i], p.causal[i], gf, a0, b0);
                        inv_win32(n, p.K[i], p.st[i], p.causal[i], gl, a1, b1);
                        sp[2 + 2 * g] = a0, sp[3 + 2 * g] = b1;
                    }
                }
                for (int k = 1; k <= bq; k++)
                    for (int g = 0; g < 2; g++) {
                        double t = 0;
                        for (int x = 0; x < nb; x++) {
                            const int *sp = &span[(size_t)x * 6];
                            const int lo = sp[0], glo = sp[2 + 2 * g], ghi = sp[3 + 2 * g];
                            if (ghi > glo) t += cdiv(ghi - lo, k) - (glo - lo) / k;
                        }
                        sum[i][g][k] = t;
                    }
            }
            for (int k0 = 1; k0 <= bq && k0 <= ext[0]; k0++)
                for (int k1 = 1; k0 * k1 <= bq && k1 <= ext[1]; k1++) {
                    const int k2 = bq / (k0 * k1) < ext[2] ? bq / (k0 * k1) : ext[2];
                    const int k[3] = {k0, k1, k2};
                    double cost = 0;
                    for (int g = 0; g < 2; g++) cost += sum[0][g][k[0]] * sum[1][g][k[1]] * sum[2][g][k[2]];
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
    free(span);
    for (int i = 0; i < 3; i++) p.own[i] = bown[i], p.it[i] = bit[i];
    finish_iter(p);
    return best;
}

/*
 * The backward with SK's dK/dV (v11): 128-key boxes planned by plan_dkv_sk
 * (BQ-query tiles, one block per SM), each warpgroup skipping the query
 * tiles outside its keys' inverse windows; dQ as backward_v's variant 1
 * (128-query boxes, 32-key tiles, two blocks per SM).  Same delta, same
 * parts.
 */
template <typename T, int BQ, int KPIPE = 0, bool QPIPE = false>
cudaError_t backward_sk(const Params &p, cudaStream_t st, int parts = 7)
{
    int ext[3];
    group_ext(p, ext);
    const int64_t rows = (int64_t)p.B * p.H * p.L[0] * p.L[1] * p.L[2];
    if (rows == 0) return cudaSuccess;
    /* delta and dQ: backward_v's variant 1 (configuration 12) */
    cudaError_t e = backward_v<T, 1, 32, 2, 2, 32, 2, false, 0, QPIPE>(p, st, parts & 3);
    if (e != cudaSuccess) return e;
    static unsigned long long done_dkv;
    if (!(parts & 4)) return cudaSuccess;
    Params k = p;
    plan_dkv_sk(k, ext, BQ);
    return launch(dkv_kernel<T, 2, BQ, 1, false, true, KPIPE>, &done_dkv, plan_grid(k, k.Hkv), 2 * 128,
                  dkv_smem_bytes<2, BQ>(), st, k);
}

/*
 * The warp-specialised backward (v26): delta as backward_v; dQ by
 * dq_ws_kernel over boxes of 64 QNC queries (QNC 2: choose_box's 128-query
 * boxes; 3: the forward's NC 3 plan, plan_ws_sk) and 64-key tiles; dK/dV by
 * dkv_ws_kernel over plan_dkv_sk's boxes and 64-query tiles; both with a
 * 3-stage ring; AF (v27) both kernels in their AF form.  Same parts as
 * backward_v.
 */
template <typename T, int QNC, bool AF = false>
cudaError_t backward_ws(const Params &p, cudaStream_t st, int parts = 7)
{
    static_assert(QNC == 2 || QNC == 3, "two or three dQ consumer warpgroups");
    constexpr int NS = 3, BN = 64, BQ = 64;
    int ext[3];
    group_ext(p, ext);
    const int64_t rows = (int64_t)p.B * p.H * p.L[0] * p.L[1] * p.L[2];
    if (rows == 0) return cudaSuccess;
    cudaError_t e = backward_v<T, 1, 32, 2, 2, 32, 2, false>(p, st, parts & 1);
    if (e != cudaSuccess) return e;
    if (parts & 2) {
        static unsigned long long done_dq;
        Params q = p;
        if (QNC == 2) {
            choose_box(128, ext, q.own);
            plan_iter(q, BN, ext, fwd_mask_weight());
        } else {
            plan_ws_sk(q, ext, fwd_mask_weight(), 3, BN);
        }
        e = launch(dq_ws_kernel<T, BN, NS, QNC, AF>, &done_dq, plan_grid(q, q.H), 128 * (QNC + 1),
                   dq_ws_smem_bytes<BN, NS, QNC>(), st, q);
        if (e != cudaSuccess) return e;
    }
    if (!(parts & 4)) return cudaSuccess;
    static unsigned long long done_dkv;
    Params k = p;
    plan_dkv_sk(k, ext, BQ);
    return launch(dkv_ws_kernel<T, BQ, NS, AF>, &done_dkv, plan_grid(k, k.Hkv), 384, dkv_ws_smem_bytes<BQ, NS>(), st,
                  k);
}

} /* namespace wg */
} /* namespace tc */

#endif /* NATTEN_TC_WGMMA_BWD_CUH */
