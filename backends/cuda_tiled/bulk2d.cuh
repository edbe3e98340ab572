/*
 * bulk2d.cuh - cuda-tiled's unfused fp16/bf16 QK for devices of compute
 * capability 9.0 or more, with its data moved by the bulk-copy (TMA) engine;
 * included by kernels.cuh after mma2d.cuh, whose tiles, windows, segments,
 * products and runs it reuses.
 *
 * Why (issue #8, cuda-tiled NOTES "bulk2d"): the head-group kernel qkh does
 * what mma2d.cuh's lean kernels do, one tile per block: stage the keys, wait,
 * multiply, write out, exit.  Its 16 warps spend most of their ~900
 * instructions on the copies in and out (16-byte cp.async and stores, their
 * addresses) and its block's phases do not overlap, so it is neither
 * memory- nor issue-bound.  Here one block an SM (hc = H <= 4 heads, all of
 * a query's heads) walks its share of the tiles with
 *  - producer warps that stage tile j + 1 while the consumers work on j:
 *    the tile's key box and query positions (a position's hc head vectors
 *    are contiguous in a heads-last tensor) by 16-byte cp.async into a
 *    two-stage ring, each thread arriving on the stage's "full" mbarrier when
 *    its copies have landed; the consumers release a stage on its "empty"
 *    mbarrier once they have read it;
 *  - hc x (warps a head) consumer warps: fl_qk_products into the tile's
 *    staged attention runs (a tile row's queries and heads: one contiguous
 *    run in global memory), then each run goes out as one bulk store (the
 *    TMA engine: one instruction) of its 16-byte-aligned middle, its ends
 *    (at most 7 elements each) by plain stores; two run buffers, so the
 *    products of tile j + 1 go on while tile j's stores read theirs.  The
 *    warps of a pair of tile rows (every head's) meet at their own named
 *    barrier before their two runs go out, not the whole block.
 * A staged position is hc * D elements and 16 bytes of pad (hc * D * 2 + 16
 * bytes: an odd number of 16-byte units, so that ldmatrix's 8 rows of one
 * head fall into 8 different bank groups).
 *
 * Scope (qb_plan): rank 2, head dim 32, no causal axis, a merged attention
 * layout (heads last, no column dilation), q and k with their heads adjacent
 * and 16-byte aligned positions; RPB, dilation of the rows, strides, even K:
 * as qkh.  Everything else keeps qkh/qkl/qkm.
 */

#if !defined(__HIP__)

/* The kernel's body exists only in images for sm_90+ (bulk copies and
 * mbarriers that cp.async arrives on); the host launches it only where the
 * image the device runs is one (qb_fit). */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#  define QB_ON 1
#else
#  define QB_ON 0
#endif

#define QB_MAXC 16                    /* consumer warps at most */
#define QB_MAXP 8                     /* producer warps at most */
#define QB_MAXT (32 * (QB_MAXC + QB_MAXP))
#define QB_BARS 128                   /* bytes before the stages: the four mbarriers */

struct qbgeo {
    flgeo F;    /* tile plan and table (fl_plan), hc = H, lnw, F.ra: the merged runs, no pad */
    fldiv nt;   /* division by ntiles */
    int ntiles; /* tiles of all dilation groups */
    int items;  /* batch x ntiles */
    int nc;     /* consumer warps: hc << lnw */
    int np;     /* producer warps (after the consumers) */
    int plain;  /* every thread waits for its own copies and arrives itself (slower; see qb_plan) */
    int pb;     /* bytes a position's copy moves: hc * D * 2 */
    int psb;    /* bytes a staged position takes: pb + 16 */
    int sq;     /* bytes from a stage's start to its query positions */
    int sst;    /* bytes per stage: box (spr * spc + 16 positions) and T0 * T1 query positions */
    int sruns;  /* bytes from the start to the run buffers */
    int srun;   /* bytes per run buffer (nrun * rstr elements, 128-byte multiple) */
};

__device__ __forceinline__ unsigned qb_sa(const void *p)
{
    return (unsigned)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void qb_init(unsigned bar, unsigned count)
{
#if QB_ON
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#else
    (void)bar;
    (void)count;
#endif
}

/* the barriers' initialisation visible to the block's other threads and to
 * the asynchronous copies (before the __syncthreads that publishes it) */
__device__ __forceinline__ void qb_init_fence()
{
#if QB_ON
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void qb_arrive(unsigned bar)
{
#if QB_ON
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
#else
    (void)bar;
#endif
}

/* wait for the completion of the barrier's phase of this parity */
__device__ __forceinline__ void qb_wait(unsigned bar, unsigned parity)
{
#if QB_ON
    unsigned done = 0;
    while (!done)
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done)
                     : "r"(bar), "r"(parity)
                     : "memory");
#else
    (void)bar;
    (void)parity;
#endif
}

/* 16 bytes from global memory to the shared address s (cp.async) */
__device__ __forceinline__ void qb_cp16(unsigned s, const void *g)
{
#if QB_ON
    /* no "memory" clobber: the copies are ordered by the barriers' asm,
     * which have one, and the producer reads nothing they write */
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(g));
#else
    (void)s;
    (void)g;
#endif
}

/* the barrier's arrival once this thread's cp.async copies so far have
 * landed (not counted in advance: the barrier's count includes it) */
__device__ __forceinline__ void qb_arrive_copies(unsigned bar)
{
#if QB_ON
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
#else
    (void)bar;
#endif
}

/* bytes (a multiple of 16, both addresses 16-byte aligned) from shared to
 * global memory, in this thread's bulk group */
__device__ __forceinline__ void qb_store(void *dst, unsigned src, unsigned bytes)
{
#if QB_ON
    asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(dst), "r"(src), "r"(bytes)
                 : "memory");
    asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#else
    (void)dst;
    (void)src;
    (void)bytes;
#endif
}

/* this thread's bulk stores have read their sources (READ) or are done */
template <bool READ>
__device__ __forceinline__ void qb_store_wait()
{
#if QB_ON
    if (READ) asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
    else asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
#endif
}

/* this thread's shared-memory writes, ordered before later bulk copies */
__device__ __forceinline__ void qb_fence()
{
#if QB_ON
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

/* named barrier id (1..8; 0 is __syncthreads) of threads */
__device__ __forceinline__ void qb_sync(int id, int threads)
{
#if QB_ON
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
#else
    (void)id;
    (void)threads;
#endif
}

/* item it's batch and tile; false where the tile lies past its group */
__device__ __forceinline__ bool qb_item(const qbgeo &B, int it, int &b, f2tile &t)
{
    b = fl_quo(B.nt, it);
    return fl_tile_at(B.F, it - b * B.ntiles, t);
}

/* Positions [0, n) of a box of nc columns a row, the thread's 16-byte
 * chunk k of each (cpp chunks a position) by cp.async: from g + go (go: the
 * element offset of position i0's chunk k; rs, cs: the row and column
 * steps in elements) to the shared address s (spc positions of psb bytes a
 * row).  The thread takes positions i0, i0 + dp, ... (dp cpp = the producer
 * threads, so its chunk stays k), stepping its offsets without divisions. */
template <typename T>
__device__ __forceinline__ void qb_copy(const T *g, unsigned s, int n, int nc, int spc, int psb, int rs, int cs,
                                        int i0, int dp)
{
    int r = 0, c = i0;
    while (c >= nc) c -= nc, r++;
    int go = r * rs + c * cs;
    s += (unsigned)((r * spc + c) * psb);
    const int gstep = dp * cs, gwrap = rs - nc * cs;
    const unsigned sstep = (unsigned)(dp * psb), swrap = (unsigned)((spc - nc) * psb);
    for (int i = i0; i < n; i += dp) {
        qb_cp16(s, g + go);
        c += dp;
        go += gstep;
        s += sstep;
        while (c >= nc) {
            c -= nc;
            go += gwrap;
            s += swrap;
        }
    }
}

/* The producer warps (thread pt of 32 np): stage j of its block's tiles in
 * stage j % 2 (its box and its query positions), each thread arriving on
 * the stage's "full" barrier once its copies have landed. */
template <typename T>
__device__ __forceinline__ void qb_produce(const qbgeo &B, const f2view &Q, const f2view &Kt, unsigned sb, int pt)
{
    const flgeo &F = B.F;
    const f2geo &G = F.g;
    const int d0 = G.ax[0].d, d1 = G.ax[1].d, T1 = G.ax[1].T, cpp = B.pb >> 4, k = pt & (cpp - 1);
    const int dp = 32 * B.np / cpp, i0 = pt / cpp;
    int j = 0;
    for (int it = (int)blockIdx.x; it < B.items; it += (int)gridDim.x) {
        int b;
        f2tile t;
        if (!qb_item(B, it, b, t)) continue;
        const int s = j & 1;
        const unsigned full = sb + 8 * s, empty = sb + 16 + 8 * s, st = sb + QB_BARS + (unsigned)(s * B.sst);
        qb_wait(empty, ((j >> 1) & 1) ^ 1);
        j++;
        const int nc = t.bb[1] - t.ba[1], qc = t.u1[1] - t.u0[1] + 1;
        const T *kg = f2at<T>(Kt, b, 0) + (t.ba[0] * d0 + t.g[0]) * Kt.sr + (t.ba[1] * d1 + t.g[1]) * Kt.sc + 8 * k;
        const T *qg = f2at<T>(Q, b, 0) + (t.u0[0] * d0 + t.g[0]) * Q.sr + (t.u0[1] * d1 + t.g[1]) * Q.sc + 8 * k;
        qb_copy<T>(kg, st + 16 * k, (t.bb[0] - t.ba[0]) * nc, nc, G.spc, B.psb, d0 * Kt.sr, d1 * Kt.sc, i0, dp);
        qb_copy<T>(qg, st + (unsigned)B.sq + 16 * k, (t.u1[0] - t.u0[0] + 1) * qc, qc, T1, B.psb, d0 * Q.sr,
                   d1 * Q.sc, i0, dp);
        if (!B.plain) {
            qb_arrive_copies(full);
        } else {
            fm_cp_wait(); /* plain: the thread's own copies landed, then an ordinary arrival */
            qb_arrive(full);
        }
    }
}

/* Shared memory: the mbarriers (full[2], empty[2]), two stages (box, then
 * the tile's query positions), two run buffers.  Block: nc consumer warps,
 * then np producers. */
template <typename T, bool RPB>
__global__ void __launch_bounds__(QB_MAXT, 1) qkb_kernel(qbgeo B, f2view Q, f2view Kt, f2view R, f2view O, int D)
{
#if QB_ON
    extern __shared__ __align__(16) unsigned char ct_smem[];
    const flgeo &F = B.F;
    const f2geo &G = F.g;
    const int warp = (int)threadIdx.x >> 5, lane = (int)threadIdx.x & 31;
    const unsigned sb = qb_sa(ct_smem);
    if (threadIdx.x == 0) {
        qb_init(sb, (unsigned)(32 * B.np));
        qb_init(sb + 8, (unsigned)(32 * B.np));
        qb_init(sb + 16, (unsigned)(B.plain ? 32 * B.nc : B.nc));
        qb_init(sb + 24, (unsigned)(B.plain ? 32 * B.nc : B.nc));
        qb_init_fence();
    }
    __syncthreads(); /* the barriers; the only block-wide one */
    if (warp >= B.nc) {
        qb_produce<T>(B, Q, Kt, sb, (int)threadIdx.x - 32 * B.nc);
        return;
    }
    const int hl = warp >> F.lnw, wh = warp - (hl << F.lnw), ps = B.psb / (int)sizeof(T), T1 = G.ax[1].T;
    const int gr = wh >> F.lwc, wcl = wh - (gr << F.lwc);
    int j = 0;
    for (int it = (int)blockIdx.x; it < B.items; it += (int)gridDim.x) {
        int b;
        f2tile t;
        if (!qb_item(B, it, b, t)) continue;
        const int s = j & 1;
        const unsigned ph = (unsigned)(j >> 1) & 1u;
        j++;
        /* the tile's geometry while its copies land */
        flseg S;
        fl_get_seg0(F, t, S, wh);
        fl_get_seg1(F, t, S);
        const int lr = S.u0 - t.u0[0], lc = S.col - t.u0[1];
        T *st = (T *)(ct_smem + B.sruns + s * B.srun);
        const int pos0 = fh_pos<T>(F, F.ra, t, O, b, 0, lr, lc, hl), pos1 = fh_pos<T>(F, F.ra, t, O, b, 0, lr + 1, lc, hl);
        const T *stage = (const T *)(ct_smem + QB_BARS + s * B.sst) + hl * D;
        qb_wait(sb + 8 * s, ph);
        if (S.nrow > 0) {
            /* A rows i = lane & 15: query (lr + i / 8, c0 + i % 8) of the tile */
            unsigned qa[2][4];
            const int i = lane & 15;
            const T *qp = (const T *)((const unsigned char *)stage + B.sq) +
                          ((lr + (i >> 3)) * T1 + (S.c0 - t.u0[1]) + (i & 7)) * ps + 8 * (lane >> 4);
            fm_ldsm4(qp, qa[0][0], qa[0][1], qa[0][2], qa[0][3]);
            fm_ldsm4(qp + 16, qa[1][0], qa[1][1], qa[1][2], qa[1][3]);
            fl_qk_products<T, RPB, 2>(G, t, S, stage, ps, qa, R, hl, lane, st + pos0, st + pos1);
        }
        __syncwarp();
        if (B.plain) qb_arrive(sb + 16 + 8 * s); /* the stage read (plain: by every lane) */
        if (lane == 0) {
            if (!B.plain) qb_arrive(sb + 16 + 8 * s);
            qb_store_wait<true>(); /* this lane's stores of the tile before: the other buffer free */
        }
        qb_fence();
        /* the group's runs written, its earlier stores read: barrier 1 + gr
         * of the hc << lwc warps of tile rows 2 gr and 2 gr + 1 (rpw 2) */
        qb_sync(1 + gr, 32 * (F.hc << F.lwc));
        /* run rho of the group goes out from its warp of head rho % 2 (of
         * head 0 when hc is 1) and column segment 0: its 16-byte-aligned
         * middle as one bulk store (lane 0), its ends by lanes 0..6, 8..14 */
        if (wcl != 0) continue;
        for (int rho = 2 * gr + hl; rho < min(2 * gr + 2, F.ra.nrun); rho += F.hc) {
            int n;
            T *g = fh_run<T>(F, F.ra, t, O, b, 0, rho, n);
            if (n == 0) continue;
            const int sh = (int)(((size_t)g >> 1) & 7);
            const T *sp = st + rho * F.ra.rstr + sh;
            const int ea = min((8 - sh) & 7, n), eb = ea + ((n - ea) & ~7);
            if (lane < ea) g[lane] = sp[lane];
            if (lane >= 8 && eb + lane - 8 < n) g[eb + lane - 8] = sp[eb + lane - 8];
            if (lane == 0 && eb > ea) qb_store(g + ea, qb_sa(sp + ea), (unsigned)(2 * (eb - ea)));
        }
    }
    if (lane == 0) qb_store_wait<false>();
#endif
}

#endif /* !__HIP__ */
