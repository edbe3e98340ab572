/*
 * bulk2d.cuh - cuda-tiled's unfused fp16/bf16 QK and AV for devices of
 * compute capability 9.0 or more, with producer warps that stage each tile's
 * operands while consumer warps work on the previous tile; included by
 * kernels.cuh after mma2d.cuh, whose tiles, windows, segments, products and
 * runs it reuses.
 *
 * Why (issue #8, cuda-tiled NOTES "bulk2d"): the head-group kernels qkh/avh
 * do what mma2d.cuh's lean kernels do, one tile per block: stage the
 * operands, wait, multiply, write out, exit.  Their 16 warps spend most of
 * their ~900 instructions on the copies in and out (16-byte cp.async and
 * stores, their addresses) and a block's phases do not overlap, so they are
 * neither memory- nor issue-bound.  Here one block an SM (hc = H <= 4 heads,
 * all of a query's heads) walks its share of the tiles with
 *  - producer warps that stage tile j + 1 while the consumers work on j
 *    into a two-stage ring; a stage's "full" mbarrier completes when its
 *    copies have landed, and the consumers release it on its "empty"
 *    mbarrier once they have read it.  QK (qkb) stages the tile's key box
 *    and query positions, each position (its hc head vectors, contiguous in
 *    a heads-last tensor) by one bulk copy whose bytes "full" counts (with
 *    the 16-byte cp.async copies before, the H200's 56x56 QK ran 49.2 M
 *    warp instructions instead of 45.1 M and 5-7 us longer: NOTES "bulk2d:
 *    positions by bulk copies"); AV (avb) the value box by 16-byte cp.async, each thread
 *    arriving on "full" when its copies have landed, and the tile rows'
 *    attention runs (a tile row's queries and heads: one contiguous run in
 *    global memory) by one bulk copy each;
 *  - hc x (warps a head) consumer warps.  qkb: fl_qk_products into the
 *    tile's staged attention runs, then each run goes out as one bulk store
 *    (the TMA engine: one instruction) of its 16-byte-aligned middle, its
 *    ends (at most 7 elements each) by plain stores; two run buffers, so the
 *    products of tile j + 1 go on while tile j's stores read theirs.  The
 *    warps of a pair of tile rows (every head's) meet at their own named
 *    barrier before their two runs go out, not the whole block.  avb: A
 *    fragments from the staged runs as avh builds them, B fragments from the
 *    staged values, the output straight to global memory (one 16-byte store
 *    a lane after a 4x4 transpose within each quad).
 * A staged position is hc * D elements and 16 bytes of pad (hc * D * 2 + 16
 * bytes: an odd number of 16-byte units, so that ldmatrix's 8 rows of one
 * head fall into 8 different bank groups).
 *
 * Scope (qb_plan, ab_plan): rank 2, head dim 32, no causal axis, a merged
 * attention layout (heads last, no column dilation), the head vectors of a
 * position adjacent and 16-byte aligned; RPB, dilation of the rows, strides,
 * even K: as qkh/avh.  avb also needs its attention runs 16-byte aligned.
 * Everything else keeps qkh/avh, qkl/avl or qkm/avm.
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
    int pbulk;  /* qkb: each staged position by one bulk copy, the "full" barrier counting their bytes */
    int pb;     /* bytes a position's copy moves: hc * D * 2 */
    int psb;    /* bytes a staged position takes: pb + 16 */
    int sq;     /* bytes from a stage's start to its second part: QK's query positions, AV's attention runs */
    int sst;    /* bytes per stage: QK: box (spr * spc + 16 positions) and T0 * T1 query positions;
                 * AV: box (spr * spc positions) and T0 attention runs */
    int sruns;  /* bytes from the start to what follows the stages: QK's run buffers, AV's zero position */
    int srun;   /* QK: bytes per run buffer (nrun * rstr elements, 128-byte multiple); AV: bytes per
                 * staged attention run (T1 hc W elements, a 16-byte multiple) */
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

/* the barrier's arrival that also expects bytes more of asynchronous
 * transactions (qb_load's) before its phase can complete */
__device__ __forceinline__ void qb_arrive_tx(unsigned bar, unsigned bytes)
{
#if QB_ON
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
#else
    (void)bar;
    (void)bytes;
#endif
}

/* bytes (a multiple of 16, both addresses 16-byte aligned) from global to
 * shared memory by one bulk copy (the TMA engine), its bytes counted as
 * transactions of the barrier bar (expected there by qb_arrive_tx) */
__device__ __forceinline__ void qb_load(unsigned dst, const void *src, unsigned bytes, unsigned bar)
{
#if QB_ON
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
                 "l"(src), "r"(bytes), "r"(bar)
                 : "memory");
#else
    (void)dst;
    (void)src;
    (void)bytes;
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

/* The stages' barriers at sb (thread 0): full[2], each phase nfull
 * arrivals, then empty[2], each phase one arrival a consumer warp (plain:
 * one a consumer lane). */
__device__ __forceinline__ void qb_init_bars(unsigned sb, const qbgeo &B, int nfull)
{
    qb_init(sb, (unsigned)nfull);
    qb_init(sb + 8, (unsigned)nfull);
    qb_init(sb + 16, (unsigned)(B.plain ? 32 * B.nc : B.nc));
    qb_init(sb + 24, (unsigned)(B.plain ? 32 * B.nc : B.nc));
    qb_init_fence();
}

/* item it's batch and tile; false where the tile lies past its group */
__device__ __forceinline__ bool qb_item(const qbgeo &B, int it, int &b, f2tile &t)
{
    b = fl_quo(B.nt, it);
    return fl_tile_at(B.F, it - b * B.ntiles, t);
}

/* A producer thread's next item it: its batch b and tile t (false: past its
 * group, nothing to stage), once the stage of the block's j-th tile (j % 2)
 * is free: that stage's "full" barrier and its shared address st. */
__device__ __forceinline__ bool qb_stage(const qbgeo &B, int it, unsigned sb, int &j, int &b, f2tile &t,
                                         unsigned &full, unsigned &st)
{
    if (!qb_item(B, it, b, t)) return false;
    const int s = j & 1;
    full = sb + 8 * s;
    st = sb + QB_BARS + (unsigned)(s * B.sst);
    qb_wait(sb + 16 + 8 * s, ((j >> 1) & 1) ^ 1); /* its "empty" barrier */
    j++;
    return true;
}

/* A consumer warp's (wh of its head) next item it: its batch b, tile t and
 * the warp's segment S (worked out while the copies land), the stage s of
 * the block's j-th tile and the phase ph of its "full" barrier to wait for;
 * false: past its group. */
__device__ __forceinline__ bool qb_take(const qbgeo &B, int it, int wh, int &j, int &b, f2tile &t, flseg &S, int &s,
                                        unsigned &ph)
{
    if (!qb_item(B, it, b, t)) return false;
    s = j & 1;
    ph = (unsigned)(j >> 1) & 1u;
    j++;
    fl_get_seg0(B.F, t, S, wh);
    fl_get_seg1(B.F, t, S);
    return true;
}

/* The nr x nc positions of a box, the thread's 16-byte chunk k of each
 * (cpp chunks a position) by cp.async: from g + go (go: the element offset
 * of position (0, 0)'s chunk k; rs, cs: the row and column steps in
 * elements) to the shared address s (spc positions of psb bytes a row).
 * The thread is v of dp (dp cpp = the producer threads, so its chunk stays
 * k): it takes columns v, v + dp, ... and every row of each; where dp is
 * twice nc or more, the dp / nc threads of a column share its rows instead
 * (thread v: column v % nc, rows v / nc, + dp / nc, ...).  A copy costs
 * the loop 10 warp instructions on the H200's profile, the earlier
 * position-by-position walk 30 (cuda-tiled NOTES "bulk2d: avb"). */
template <typename T>
__device__ __forceinline__ void qb_copy(const T *g, unsigned s, int nr, int nc, int spc, int psb, int rs, int cs, int v,
                                        int dp)
{
    int c0 = v, r0 = 0, rstep = 1;
    if (dp >= 2 * nc) {
        rstep = dp / nc;
        r0 = v / nc;
        c0 = v - r0 * nc;
        if (r0 >= rstep) return;
    }
    const int gstep = rstep * rs;
    const unsigned sstep = (unsigned)(rstep * spc * psb);
    for (int c = c0; c < nc; c += dp) {
        const T *gp = g + r0 * rs + c * cs;
        unsigned sp = s + (unsigned)((r0 * spc + c) * psb);
#pragma unroll 2
        for (int r = r0; r < nr; r += rstep, gp += gstep, sp += sstep) qb_cp16(sp, gp);
    }
}

/* The producer warps (thread pt of 32 np): stage j of its block's tiles in
 * stage j % 2 (its box and its query positions).  With B.pbulk, each
 * position (a query's or key's hc head vectors, contiguous in global
 * memory) by one bulk copy (the TMA engine), thread v of the producers
 * taking positions v, v + 32 np, ... of the box and then the queries, and
 * thread 0 arriving on the stage's "full" barrier with the tile's bytes
 * expected (the barrier counts that one arrival); else 16-byte cp.async
 * copies (qb_copy), each thread arriving once its copies have landed. */
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
        unsigned full, st;
        if (!qb_stage(B, it, sb, j, b, t, full, st)) continue;
        const int nr = t.bb[0] - t.ba[0], nc = t.bb[1] - t.ba[1], qr = t.u1[0] - t.u0[0] + 1,
                  qc = t.u1[1] - t.u0[1] + 1;
        const T *kg = f2at<T>(Kt, b, 0) + (t.ba[0] * d0 + t.g[0]) * Kt.sr + (t.ba[1] * d1 + t.g[1]) * Kt.sc;
        const T *qg = f2at<T>(Q, b, 0) + (t.u0[0] * d0 + t.g[0]) * Q.sr + (t.u0[1] * d1 + t.g[1]) * Q.sc;
        if (B.pbulk) {
            const int nb = nr * nc, n = nb + qr * qc;
            if (pt == 0) qb_arrive_tx(full, (unsigned)(n * B.pb));
            for (int i = pt; i < n; i += 32 * B.np) {
                const bool key = i < nb;
                const int e = key ? i : i - nb, w = key ? nc : qc, r = e / w, c = e - r * w;
                const T *src = key ? kg + r * d0 * Kt.sr + c * d1 * Kt.sc : qg + r * d0 * Q.sr + c * d1 * Q.sc;
                const int at = key ? (r * G.spc + c) * B.psb : B.sq + (r * T1 + c) * B.psb;
                qb_load(st + (unsigned)at, src, (unsigned)B.pb, full);
            }
            continue;
        }
        qb_copy<T>(kg + 8 * k, st + 16 * k, nr, nc, G.spc, B.psb, d0 * Kt.sr, d1 * Kt.sc, i0, dp);
        qb_copy<T>(qg + 8 * k, st + (unsigned)B.sq + 16 * k, qr, qc, T1, B.psb, d0 * Q.sr, d1 * Q.sc, i0, dp);
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
        qb_init_bars(sb, B, B.pbulk ? 1 : 32 * B.np); /* pbulk: producer thread 0's arrival */
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
        flseg S;
        int s;
        unsigned ph;
        if (!qb_take(B, it, wh, j, b, t, S, s, ph)) continue;
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

/*
 * avb_kernel: the AV of the same problems the same way (ab_plan).  Why
 * (cuda-tiled NOTES "bulk2d: avb"): avh is qkh's mirror image, one tile a
 * block with no overlap of its phases (108.8 us on the 56x56 problem where
 * qkb's QK takes 86).  Here the producers stage, for tile j + 1, the V box
 * (positions of hc head vectors, padded as qkb's) as 16-byte cp.async and
 * the tile rows' attention runs (a tile row's queries and heads: one
 * contiguous run in global memory, 16-byte aligned and a multiple of 16
 * bytes long in every tile, ab_plan) as one bulk copy each; the consumers build their A fragments
 * from the staged runs and their B fragments from the box as avh does, then
 * write each query's Dv = 32 outputs of a head straight to global memory:
 * the quad's four lanes exchange their words (two shuffle rounds) so that
 * each lane holds 8 consecutive elements, one 16-byte store (a query's
 * head is 64 bytes: two whole sectors a quad).  Keys past the box's columns
 * read a zero position (as avh's zrow: the weights there are zero, and a
 * stale position of an earlier tile could hold an infinity).
 */

/* AV's producer warps (thread pt of 32 np): stage j of its block's tiles in
 * stage j % 2, its V box by cp.async, each thread arriving on the stage's
 * "full" barrier once its copies have landed, and its attention runs (nr
 * runs of n elements, 16-byte aligned, a multiple of 16 bytes: ab_plan) by
 * one bulk copy each from thread 0, which first arrives once more on "full"
 * expecting their bytes (the barrier counts 32 np + 1 arrivals). */
template <typename T>
__device__ __forceinline__ void qb_produce_av(const qbgeo &B, const f2view &Wt, const f2view &V, unsigned sb, int pt)
{
    const flgeo &F = B.F;
    const f2geo &G = F.g;
    const int d0 = G.ax[0].d, d1 = G.ax[1].d, cpp = B.pb >> 4, k = pt & (cpp - 1);
    const int dp = 32 * B.np / cpp, i0 = pt / cpp, qe = F.hc * F.ra.E;
    int j = 0;
    for (int it = (int)blockIdx.x; it < B.items; it += (int)gridDim.x) {
        int b;
        f2tile t;
        unsigned full, st;
        if (!qb_stage(B, it, sb, j, b, t, full, st)) continue;
        const int nc = t.bb[1] - t.ba[1];
        const T *vg = f2at<T>(V, b, 0) + (t.ba[0] * d0 + t.g[0]) * V.sr + (t.ba[1] * d1 + t.g[1]) * V.sc + 8 * k;
        const T *ag = f2at<T>(Wt, b, 0) + (t.u0[0] * d0 + t.g[0]) * Wt.sr + (t.u0[1] * d1 + t.g[1]) * Wt.sc;
        if (pt == 0) {
            const int nr = t.u1[0] - t.u0[0] + 1;
            const unsigned rb = (unsigned)(sizeof(T) * (t.u1[1] - t.u0[1] + 1) * qe);
            qb_arrive_tx(full, (unsigned)nr * rb);
            for (int r = 0; r < nr; r++) qb_load(st + (unsigned)(B.sq + r * B.srun), ag + r * d0 * Wt.sr, rb, full);
        }
        qb_copy<T>(vg, st + 16 * k, t.bb[0] - t.ba[0], nc, G.spc, B.psb, d0 * V.sr, d1 * V.sc, i0, dp);
        if (!B.plain) {
            qb_arrive_copies(full);
        } else {
            fm_cp_wait();
            qb_arrive(full);
        }
    }
}

/* Lanes 4 gq + tq of a quad hold words w[n] = elements 8 n + 2 tq, + 1 of
 * their query (n < 4); afterwards lane tq holds elements 8 tq .. 8 tq + 7
 * (a 4 x 4 transpose of words within the quad: two rounds of two shuffles). */
__device__ __forceinline__ uint4 qb_quad_t(const unsigned (&w)[4], int tq)
{
    const bool hi = (tq & 2) != 0, odd = (tq & 1) != 0;
    /* round 1 (lanes tq, tq ^ 2): the lower pair keeps words 0, 1 and takes
     * its partner's 0, 1; the upper keeps 2, 3 and takes its partner's 2, 3 */
    const unsigned r0 = __shfl_xor_sync(0xffffffffu, hi ? w[0] : w[2], 2);
    const unsigned r1 = __shfl_xor_sync(0xffffffffu, hi ? w[1] : w[3], 2);
    const unsigned x0 = hi ? r0 : w[0], x1 = hi ? r1 : w[1], x2 = hi ? w[2] : r0, x3 = hi ? w[3] : r1;
    /* now x0, x1: row (tq & 1), words c, c + 1 (c = tq & 2); x2, x3: row
     * (tq & 1) + 2; round 2 (lanes tq, tq ^ 1) keeps word c + (tq & 1) */
    const unsigned y0 = __shfl_xor_sync(0xffffffffu, odd ? x0 : x1, 1);
    const unsigned y1 = __shfl_xor_sync(0xffffffffu, odd ? x2 : x3, 1);
    return odd ? make_uint4(y0, x1, y1, x3) : make_uint4(x0, y0, x2, y1);
}

/* Shared memory: the mbarriers, two stages (box, then the tile's attention
 * runs), the zero position.  Block: nc consumer warps, then np producers. */
template <typename T>
__global__ void __launch_bounds__(QB_MAXT, 1) avb_kernel(qbgeo B, f2view Wt, f2view V, f2view O, int D)
{
#if QB_ON
    extern __shared__ __align__(16) unsigned char ct_smem[];
    const flgeo &F = B.F;
    const f2geo &G = F.g;
    const int warp = (int)threadIdx.x >> 5, lane = (int)threadIdx.x & 31;
    const unsigned sb = qb_sa(ct_smem);
    if (threadIdx.x == 0) {
        qb_init_bars(sb, B, 32 * B.np + 1); /* + 1: the runs' bulk copies (qb_produce_av) */
    }
    for (int i = (int)threadIdx.x; i < B.psb / 16; i += (int)blockDim.x)
        ((uint4 *)(ct_smem + B.sruns))[i] = make_uint4(0u, 0u, 0u, 0u);
    __syncthreads(); /* the barriers and the zero position; the only block-wide one */
    if (warp >= B.nc) {
        qb_produce_av<T>(B, Wt, V, sb, (int)threadIdx.x - 32 * B.nc);
        return;
    }
    const int hl = warp >> F.lnw, wh = warp - (hl << F.lnw), ps = B.psb / (int)sizeof(T);
    const int K1 = G.ax[1].K, tq = lane & 3, d0 = G.ax[0].d, d1 = G.ax[1].d, E = F.ra.E, qe = F.hc * E;
    const int rstr = B.srun / (int)sizeof(T);
    const T *zrow = (const T *)(ct_smem + B.sruns) + hl * D + (lane >> 4) * 8;
    int j = 0;
    for (int it = (int)blockIdx.x; it < B.items; it += (int)gridDim.x) {
        int b;
        f2tile t;
        flseg S;
        int s;
        unsigned ph;
        if (!qb_take(B, it, wh, j, b, t, S, s, ph)) continue;
        const int nc = t.bb[1] - t.ba[1], lr = S.u0 - t.u0[0], lc = S.col - t.u0[1];
        const unsigned char *stg = ct_smem + QB_BARS + s * B.sst;
        /* A fragment registers as avh's: rows gq (query row 0) and gq + 8
         * (row 1), staged columns ns + 2 tq (+ 1, + 8, + 9): window columns
         * jw (+ 1, + 8, + 9) of the lane's queries, read where inside the
         * window; B: lane l gives key ns + (l & 15), d 8 (l >> 4) */
        const int jw = S.ns + 2 * tq - S.ca;
        const unsigned short *x0b = (const unsigned short *)(stg + B.sq) + lr * rstr + lc * qe + hl * E + jw;
        const unsigned short *x1b = x0b + rstr;
        const unsigned cn = S.qon ? (unsigned)S.cn : 0u;
        const bool w00 = (unsigned)jw < cn, w01 = (unsigned)(jw + 1) < cn, w10 = (unsigned)(jw + 8) < cn,
                   w11 = (unsigned)(jw + 9) < cn;
        const int key = S.ns + (lane & 15), kstep = G.spc * ps;
        const T *vb = key < nc ? (const T *)stg + hl * D + (S.ra0 - t.ba[0]) * kstep + key * ps + (lane >> 4) * 8
                               : zrow;
        const int vstep = key < nc ? kstep : 0;
        float acc[4][4];
#pragma unroll
        for (int n = 0; n < 4; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[n][e] = 0.f;
        qb_wait(sb + 8 * s, ph);
        if (S.nrow > 0) fh_av_products<T>(S, vb, vstep, x0b, x1b, K1, w00, w01, w10, w11, 32, acc);
        __syncwarp();
        if (B.plain) qb_arrive(sb + 16 + 8 * s); /* the stage read (plain: by every lane) */
        if (lane == 0 && !B.plain) qb_arrive(sb + 16 + 8 * s);
        /* the output: each lane 8 consecutive elements of its query's head */
        T *op = f2at<T>(O, b, hl) + (S.u0 * d0 + t.g[0]) * O.sr + (S.col * d1 + t.g[1]) * O.sc + 8 * tq;
#pragma unroll
        for (int r = 0; r < 2; r++) {
            if (r >= S.nrow) break;
            unsigned w[4];
#pragma unroll
            for (int n = 0; n < 4; n++) {
                T e[2];
                put(&e[0], acc[n][2 * r]);
                put(&e[1], acc[n][2 * r + 1]);
                w[n] = fm_pack<T>(e[0], e[1]);
            }
            const uint4 o = qb_quad_t(w, tq);
            if (S.qon) *(uint4 *)(op + r * d0 * O.sr) = o;
        }
    }
#endif
}

#endif /* !__HIP__ */
