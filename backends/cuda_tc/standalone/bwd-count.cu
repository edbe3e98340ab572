/*
 * bwd-count.cu - host-only counts for NOTES.md v11: per kernel of the Hopper
 * backward (tc_wgmma_bwd.cuh) and per problem, the tiles a block iterates
 * (and those its warpgroups would iterate if each skipped the tiles outside
 * its own rows' union, as the forward's SK does), the masked tiles, the rows
 * gathered from L2, the FLOPs computed and the useful FLOPs: summed over every
 * block of one head (not a typical block), with the library's own planning
 * (choose_box, plan_iter, plan_ws_sk) and window arithmetic (win32,
 * inv_win32).  No GPU needed:
 *   nvcc -std=c++17 -I backends/cuda_tc -I lib backends/cuda_tc/standalone/bwd-count.cu -o bwd-count
 *   ./bwd-count
 */
#include <stdio.h>
#include <string.h>
#include <chrono>
#include "tc_wgmma_bwd.cuh"

using namespace tc;
using tc::wg::plan_ws_sk;
using tc::wg::plan_dkv_sk;

struct Prob {
    const char *name;
    int L[3], K[3];
};

struct Count {
    double blocks = 0, btiles = 0, bmasked = 0; /* block-level tiles, masked (block intersection) */
    double wtiles = 0, wmasked = 0;             /* warpgroup tiles as the kernel iterates them (all: nwg x btiles) */
    double stiles = 0, smasked = 0;             /* with per-warpgroup skipping */
    double rows = 0;                            /* real rows gathered (each row: two 256-byte rows) */
    double pairs = 0;                           /* (query, key) pairs inside the window */
};

/* The sub-box of part g of nparts along axis ax. */
static void part(const int own[3], int nparts, int ax, int g, int sub[3], int off[3])
{
    for (int i = 0; i < 3; i++) sub[i] = own[i], off[i] = 0;
    sub[ax] = own[ax] / nparts;
    off[ax] = g * sub[ax];
}

/* kind 0: query-parallel (union of windows); 1: key-parallel (union of
 * inverse windows).  own: owned box, it: iterated box, nwg warpgroups
 * splitting own along axis ax. */
static Count count(const Params &p, int kind, const int own[3], const int it[3], int nwg, int ax)
{
    Count c;
    int n[3], nb[3];
    for (int i = 0; i < 3; i++) n[i] = p.L[i], nb[i] = cdiv(n[i], own[i]);
    auto span = [&](int i, int first, int last, int &lo, int &hi, int &ia, int &ib) {
        int a0, b0, a1, b1;
        if (kind == 0) {
            win32(n[i], p.K[i], p.st[i], p.causal[i], first, a0, b0);
            win32(n[i], p.K[i], p.st[i], p.causal[i], last, a1, b1);
        } else {
            inv_win32(n[i], p.K[i], p.st[i], p.causal[i], first, a0, b0);
            inv_win32(n[i], p.K[i], p.st[i], p.causal[i], last, a1, b1);
        }
        lo = a0, hi = b1, ia = a1, ib = b0;
    };
    for (int x0 = 0; x0 < nb[0]; x0++)
        for (int x1 = 0; x1 < nb[1]; x1++)
            for (int x2 = 0; x2 < nb[2]; x2++) {
                const int o[3] = {x0 * own[0], x1 * own[1], x2 * own[2]};
                int lo[3], hi[3], ia[3], ib[3], nt[3];
                double nrows = 1;
                for (int i = 0; i < 3; i++) {
                    const int last = (o[i] + own[i] < n[i] ? o[i] + own[i] : n[i]) - 1;
                    span(i, o[i], last, lo[i], hi[i], ia[i], ib[i]);
                    nt[i] = cdiv(hi[i] - lo[i], it[i]);
                    nrows *= last - o[i] + 1;
                }
                c.blocks++;
                c.pairs += nrows * p.K[0] * p.K[1] * p.K[2]; /* non-causal, K <= n: every window has prod K */
                /* the warpgroups' unions and intersections */
                int glo[4][3], ghi[4][3], gia[4][3], gib[4][3];
                bool gok[4];
                for (int g = 0; g < nwg; g++) {
                    int sub[3], off[3];
                    part(own, nwg, ax, g, sub, off);
                    gok[g] = true;
                    for (int i = 0; i < 3; i++) {
                        const int first = o[i] + off[i];
                        const int last = (first + sub[i] < n[i] ? first + sub[i] : n[i]) - 1;
                        if (first > last) {
                            gok[g] = false;
                            break;
                        }
                        span(i, first, last, glo[g][i], ghi[g][i], gia[g][i], gib[g][i]);
                    }
                }
                for (int j0 = 0; j0 < nt[0]; j0++)
                    for (int j1 = 0; j1 < nt[1]; j1++)
                        for (int j2 = 0; j2 < nt[2]; j2++) {
                            const int org[3] = {lo[0] + j0 * it[0], lo[1] + j1 * it[1], lo[2] + j2 * it[2]};
                            bool full = true;
                            double r = 1;
                            for (int i = 0; i < 3; i++) {
                                full = full && org[i] >= ia[i] && org[i] + it[i] <= ib[i];
                                const int e = org[i] + it[i] < n[i] ? it[i] : n[i] - org[i];
                                r *= e > 0 ? e : 0;
                            }
                            c.btiles++;
                            c.bmasked += !full;
                            c.rows += r;
                            c.wtiles += nwg;
                            c.wmasked += full ? 0 : nwg;
                            for (int g = 0; g < nwg; g++) {
                                if (!gok[g]) continue;
                                bool meet = true, gfull = true;
                                for (int i = 0; i < 3; i++) {
                                    meet = meet && org[i] < ghi[g][i] && org[i] + it[i] > glo[g][i];
                                    gfull = gfull && org[i] >= gia[g][i] && org[i] + it[i] <= gib[g][i];
                                }
                                if (!meet) continue;
                                c.stiles++;
                                c.smasked += !gfull;
                            }
                        }
            }
    return c;
}

static int first_long(const int own[3]) { return own[0] > 1 ? 0 : own[1] > 1 ? 1 : 2; }

/* gemms: products per warpgroup tile (dQ 3, dK/dV 4); bt: rows of a tile
 * (the N of S, i.e. keys for dQ, queries for dK/dV); ms: measured ms or 0. */
static void report(const char *what, const Prob &pb, const Params &p, const Count &c, int gemms, int bt, int H,
                   double ms, const int own[3], const int it[3])
{
    const double flop_tile = 2.0 * gemms * 64 * bt * 128; /* one warpgroup tile */
    const double raw = c.wtiles * flop_tile * H, skip = c.stiles * flop_tile * H;
    const double useful = c.pairs * gemms * 2.0 * 128 * H;
    const double bytes = c.rows * 512.0 * H;
    (void)p;
    printf("%-6s %-26s own %2dx%2dx%2d it %2dx%2dx%2d blocks %6.0f | tiles/blk %6.1f masked %4.0f%% | wg-tiles/blk "
           "%6.1f -> skip %6.1f (%+5.1f%%) masked %4.0f%% | util %.3f (skip %.3f) | gathered %7.1f GB, rows/owned row "
           "%6.1f | B/useful-FLOP %.4f",
           pb.name, what, own[0], own[1], own[2], it[0], it[1], it[2], c.blocks, c.btiles / c.blocks,
           100 * c.bmasked / c.btiles, c.wtiles / c.blocks, c.stiles / c.blocks, 100 * (c.stiles / c.wtiles - 1),
           100 * c.smasked / c.stiles, useful / raw, useful / skip, bytes / 1e9,
           c.rows / (c.blocks * own[0] * own[1] * own[2]), bytes / useful);
    if (ms > 0)
        printf(" | %.1f ms: raw %.0f TFLOP/s, useful %.0f, gather %.2f TB/s", ms, raw / ms / 1e9, useful / ms / 1e9,
               bytes / ms / 1e9);
    printf("\n");
}

int main()
{
    const Prob probs[2] = {{"2d", {256, 256, 1}, {80, 80, 1}}, {"3d", {30, 48, 80}, {18, 24, 24}}};
    /* measured pieces (NOTES.md v6 / s4 run2, harness, fp16, H200): dQ and
     * dK/dV alone where known; 0 = not measured apart */
    for (int pi = 0; pi < 2; pi++) {
        const Prob &pb = probs[pi];
        Params p;
        memset(&p, 0, sizeof p);
        p.B = 1;
        p.H = p.Hkv = 24;
        for (int i = 0; i < 3; i++) p.L[i] = pb.L[i], p.K[i] = pb.K[i], p.dil[i] = p.st[i] = 1;
        int ext[3];
        group_ext(p, ext);
        const bool d2 = pi == 0;
        /* dQ variants: QWG, BN, measured ms */
        struct V {
            const char *name;
            int wg, bt;
            double ms;
        };
        const V dqv[] = {{"dq q64n64 (v20)", 1, 64, d2 ? 38.53 : 160.46},
                         {"dq q128n64 (v22)", 2, 64, d2 ? 33.3 : 136.4},
                         {"dq q128n32 (v23: default)", 2, 32, 0},
                         {"dq q128n64", 2, 64, 0}};
        for (const V &v : dqv) {
            Params q = p;
            choose_box(v.wg * 64, ext, q.own);
            plan_iter(q, v.bt, ext, fwd_mask_weight());
            const Count c = count(q, 0, q.own, q.it, v.wg, first_long(q.own));
            report(v.name, pb, q, c, 3, v.bt, p.H, v.ms, q.own, q.it);
        }
        /* dQ with a 192-row box (three warpgroups), plan_ws_sk's boxes at
         * 32- and 64-key tiles (its search is for 64-row tiles: WS_BN) */
        {
            Params q = p;
            plan_ws_sk(q, ext, fwd_mask_weight(), 3);
            int sx = q.own[0] % 3 == 0 && q.own[0] > 1 ? 0 : q.own[1] % 3 == 0 && q.own[1] > 1 ? 1 : 2;
            /* the tripled axis: the one divisible by 3 (sides are 2^k or 3 * 2^k) */
            const Count c = count(q, 0, q.own, q.it, 3, sx);
            report("dq q192n64 sk (plan_ws_sk)", pb, q, c, 3, 64, p.H, 0, q.own, q.it);
            /* and with 2 warpgroups, plan_ws_sk nc 2 (128 rows) */
            Params r = p;
            plan_ws_sk(r, ext, fwd_mask_weight(), 2);
            const Count c2 = count(r, 0, r.own, r.it, 2, first_long(r.own));
            report("dq q128n64 sk (plan_ws_sk)", pb, r, c2, 3, 64, p.H, 0, r.own, r.it);
        }
        const V dkv[] = {{"dkv k64q64 (v20)", 1, 64, d2 ? 49.95 : 207.99},
                         {"dkv k128q64 (v21)", 2, 64, d2 ? 42.4 : 178.8},
                         {"dkv k64q32 (v23: default)", 1, 32, 0},
                         {"dkv k128q32", 2, 32, 0},
                         {"dkv k256q64", 4, 64, 0}};
        for (const V &v : dkv) {
            Params k = p;
            choose_box(v.wg * 64, ext, k.own);
            plan_iter(k, v.bt, ext);
            const Count c = count(k, 1, k.own, k.it, v.wg, first_long(k.own));
            report(v.name, pb, k, c, 4, v.bt, p.H, v.ms, k.own, k.it);
        }
        /* dK/dV with plan_ws_sk's boxes (weight 0: dkv_kernel masks every
         * tile anyway), 128 keys (two warpgroups) and 192 (three; more
         * registers than an SM has, for reference) */
        for (int nc = 2; nc <= 3; nc++)
            for (int bq = 64; bq >= 32; bq /= 2) {
            Params k = p;
            plan_ws_sk(k, ext, 0.0, nc, bq);
            const int sx = nc == 2 ? first_long(k.own)
                                   : (k.own[0] % 3 == 0 && k.own[0] > 1 ? 0 : k.own[1] % 3 == 0 && k.own[1] > 1 ? 1 : 2);
            const Count c = count(k, 1, k.own, k.it, nc, sx);
            char name[64];
            snprintf(name, sizeof name, "dkv k%dq%d sk (plan_ws_sk)", 64 * nc, bq);
            report(name, pb, k, c, 4, bq, p.H, 0, k.own, k.it);
        }
        /* v11's configurations 16 and 17: plan_dkv_sk's boxes, 32- and
         * 64-query tiles (and the host time of the planning) */
        for (int bq = 64; bq >= 32; bq /= 2) {
            Params k = p;
            const auto t0 = std::chrono::steady_clock::now();
            plan_dkv_sk(k, ext, bq);
            const double us =
                std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
            const Count c = count(k, 1, k.own, k.it, 2, first_long(k.own));
            char name[64];
            snprintf(name, sizeof name, "dkv k128q%d sk (plan_dkv_sk)", bq);
            report(name, pb, k, c, 4, bq, p.H, 0, k.own, k.it);
            printf("       (plan_dkv_sk: %.0f us on this host)\n", us);
        }
        /* v23's total, both kernels (measured together: 2-D 79.08 ms, 3-D 279.01 ms, delta 0.4 / 0.7) */
        printf("\n");
    }
    return 0;
}
