/*
 * check_cuda_tc.c - the tensor-core backend (cuda-tc) against the naive
 * reference on the same inputs, on problems larger than the equivalence
 * suite's and on the edge cases of its tiling: extents that are not a multiple
 * of the tile, K = L (dense attention), even K, dilation with L mod d != 0,
 * causal on each axis, stride = K, GQA/MQA, head dims 32/64/128, fp16 and
 * bf16, compact and heads-first layouts; every kernel configuration,
 * including the Hopper (sm_90a) forward and backward ones, on those and (the
 * Hopper forwards and backward) on more head-dim-128 edge cases; plus refusals (with
 * reasons), measured selection over the configurations and determinism of
 * the backward.
 *
 * Exits 77 (skip) when the backend is not built or no GPU of compute
 * capability 8.0 or more is present.  Runs without forking (CUDA cannot be
 * used in a child after the parent touched it).
 */
#include "cases.h"

#include <check.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKEND "cuda-tc"

static uint64_t seed;

/* The equivalence suite's tolerances (normalised max error), not loosened. */
static const struct {
    const char *dtype;
    double limit;
} tols[] = {{"float16", 1e-2}, {"bfloat16", 5e-2}};

/* rank, B, H, Hkv, D, Dv, S, K, d, s, causal, scale, rpb */
static const ref_problem cases[] = {
    /* extent not a multiple of the 64-row tile; two batches */
    {1, 2, 2, 2, 32, 32, {100, 1, 1}, {7, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    /* K = L on both axes: dense attention */
    {2, 1, 2, 2, 64, 64, {12, 12, 1}, {12, 12, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    /* even K */
    {2, 1, 2, 2, 32, 32, {15, 17, 1}, {4, 6, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    /* dilation with L mod d != 0 */
    {2, 1, 2, 2, 64, 64, {23, 19, 1}, {3, 5, 1}, {3, 2, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    /* causal on each axis */
    {3, 1, 2, 2, 32, 32, {6, 7, 8}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 0, 0}, 0, 0},
    {3, 1, 2, 2, 32, 32, {6, 7, 8}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 0}, 0, 0},
    {3, 1, 2, 2, 32, 32, {6, 7, 8}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 0, 1}, 0, 0},
    /* stride = K (blocked attention) */
    {2, 1, 2, 2, 64, 64, {18, 20, 1}, {3, 5, 1}, {1, 1, 1}, {3, 5, 1}, {0, 0, 0}, 0, 0},
    /* GQA and MQA, D 128 */
    {2, 1, 4, 2, 128, 128, {14, 14, 1}, {5, 5, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    {1, 1, 4, 1, 128, 128, {70, 1, 1}, {9, 1, 1}, {2, 1, 1}, {1, 1, 1}, {1, 0, 0}, 0.2, 0},
    /* everything at once, 3-D, D 128 */
    {3, 1, 2, 1, 128, 128, {7, 9, 10}, {3, 4, 5}, {2, 1, 2}, {1, 2, 1}, {0, 1, 0}, 0, 0},
    /* several full tiles per block (masking only at the window edges) */
    {2, 1, 1, 1, 128, 128, {40, 40, 1}, {13, 13, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    /* a wide 1-D window with dilation, stride and causal */
    {1, 1, 2, 2, 64, 64, {300, 1, 1}, {65, 1, 1}, {2, 1, 1}, {4, 1, 1}, {1, 0, 0}, 0, 0},
};

/* The backward of head dim 128 on the Hopper kernels, where the default
 * path and configurations 11, 12, 16, 17 and 19 to 21 run it: more edge cases of its
 * tiling (128-key dK/dV boxes split in two, warpgroups skipping tiles, 32-row
 * tiles, 128-query dQ boxes). */
static const ref_problem wg_cases[] = {
    /* 1-D: two 128-key boxes per dilation group, stride, causal, GQA */
    {1, 1, 2, 1, 128, 128, {300, 1, 1}, {65, 1, 1}, {2, 1, 1}, {4, 1, 1}, {1, 0, 0}, 0, 0},
    /* even K, stride = K on axis 0, extents not a multiple of any box */
    {2, 1, 2, 2, 128, 128, {33, 29, 1}, {8, 5, 1}, {1, 1, 1}, {8, 1, 1}, {0, 0, 0}, 0, 0},
    /* K = L: dense attention */
    {2, 1, 1, 1, 128, 128, {16, 20, 1}, {16, 20, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    /* dilation with L mod d != 0, causal on the last axis, GQA */
    {3, 1, 2, 1, 128, 128, {7, 10, 14}, {3, 5, 4}, {2, 1, 3}, {1, 1, 1}, {0, 0, 1}, 0, 0},
    /* causal on the first two axes, stride */
    {3, 1, 1, 1, 128, 128, {9, 8, 20}, {3, 3, 7}, {1, 1, 1}, {1, 2, 3}, {1, 1, 0}, 0, 0},
    /* MQA, two batches, odd dilation remainder, causal on axis 1, a scale */
    {2, 2, 2, 1, 128, 128, {30, 27, 1}, {11, 7, 1}, {1, 2, 1}, {1, 1, 1}, {0, 1, 0}, 0.05, 0},
};

/* The Hopper configurations (wgmma, sm_90a) are refused, with one of these
 * reasons, on devices other than compute capability 9.0 and by builds
 * without sm_90a; on an sm_90 device of an sm_90a build they run. */
#define WGMMA_CONFIG 10
#define WGMMA_NAME "wg2x64-n64-sm90a"
/* The warp-specialised Hopper forward (a producer warpgroup and two
 * consumers): refused as configuration 10. */
#define WS_CONFIG 13
#define WS_NAME "ws-p1c2x64-n64-sm90a"
/* Its tile-skipping form (v8): refused as configuration 10. */
#define WSK_CONFIG 14
#define WSK_NAME "ws-p1c2x64-n64-sk-sm90a"
/* The same with three consumer warpgroups, a 192-row query box (v10):
 * refused as configuration 10. */
#define WSK3_CONFIG 15
#define WSK3_NAME "ws-p1c3x64-n64-sk-sm90a"
/* That kernel with the boxes of its last round split in parts, merged by a
 * second kernel (v12): refused as configuration 10. */
#define WSKS_CONFIG 18
#define WSKS_NAME "ws-p1c3x64-n64-sk-split-sm90a"
/* The Hopper backward configurations: the forward runs its default under
 * them, a backward of head dim other than 128 is refused.  16 and 17 (v11):
 * 128-key dK/dV boxes whose warpgroups skip the query tiles outside their
 * keys' inverse windows; 19 and 20 (v26): warp-specialised dK/dV and dQ
 * kernels (128- and 192-query dQ boxes); 21 (v27): 20 with the producers'
 * arrivals made by cp.async. */
#define N_WGB 7
static const int wgb_configs[N_WGB] = {11, 12, 16, 17, 19, 20, 21};
static const char *const wgb_names[N_WGB] = {"wgb-k128q64b1-q64n64b2-sm90a", "wgb-k64q32b2-q128n32b2-sm90a",
                                             "wgb-k128q64b1sk-q128n32b2-sm90a", "wgb-k128q32b1sk-q128n32b2-sm90a",
                                             "wgb-k128q64ws3-q128n64ws3-sm90a", "wgb-k128q64ws3-q192n64ws3-sm90a",
                                             "wgb-k128q64ws3af-q192n64ws3af-sm90a"};
static int wgmma_refusal(const char *why)
{
    return (strstr(why, "needs sm_90a, device") != NULL && strstr(why, "is sm_90") == NULL) ||
           strstr(why, "needs sm_90a kernels, which this build lacks") != NULL;
}
static int is_wgb(int config)
{
    for (int i = 0; i < N_WGB; i++)
        if (config == wgb_configs[i]) return 1;
    return 0;
}
static int is_wgb_name(const char *name)
{
    for (int i = 0; i < N_WGB; i++)
        if (!strcmp(name, wgb_names[i])) return 1;
    return 0;
}
/* Whether configuration config may refuse op on r with reason why. */
static int may_refuse(int config, const ref_problem *r, tc_op op, const char *why)
{
    if (config == WGMMA_CONFIG || config == WS_CONFIG || config == WSK_CONFIG || config == WSK3_CONFIG ||
        config == WSKS_CONFIG)
        return wgmma_refusal(why);
    if (is_wgb(config) && op == OP_FNA_BW)
        return wgmma_refusal(why) ||
               (r->D != 128 && strstr(why, "is a backward for head dim 128, not head dim") != NULL);
    return 0;
}
/* ... and whether it must (a Hopper backward configuration, another head dim). */
static int must_refuse(int config, const ref_problem *r, tc_op op)
{
    return is_wgb(config) && op == OP_FNA_BW && r->D != 128;
}

/* Run op on case r (id: its number, for the random inputs) with the backend
 * on device tensors (layout) and with naive on host tensors of the same
 * values; compare every output.  config: the
 * configuration chosen (0: none), whose refusals with its reasons are a pass
 * (may_refuse; must_refuse: only a refusal is). */
static void compare_r(const ref_problem *r, int id, tc_op op, const char *dtype, double limit, tt_layout layout,
                      natten_context *ctx, int config)
{
    natten_context *ref_ctx;
    uint64_t rng = seed ^ ((uint64_t)op * 7919u + (uint64_t)id * 104729u), rng2 = rng;
    tc_io ref, io;
    natten_status st;
    tt_err e;
    int x;
    char desc[256];
    tc_describe(r, desc, sizeof desc);
    ck_assert_int_eq(natten_context_create(&ref_ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ref_ctx, "naive"), NATTEN_SUCCESS);
    ck_assert(tc_setup(&ref, r, op, tt_dtype(dtype), TT_COMPACT, kDLCPU, &rng));
    ck_assert(tc_setup(&io, r, op, tt_dtype(dtype), layout, kDLCUDA, &rng2));
    ck_assert_msg(tc_run(ref_ctx, &ref) == NATTEN_SUCCESS, "naive: %s", natten_last_error());
    st = tc_run(ctx, &io);
    ck_assert_msg(!must_refuse(config, r, op) || st == NATTEN_ERROR_UNSUPPORTED,
                  "configuration %d ran %s on %s (head dim %lld): status %d", config, tc_op_names[op], desc,
                  (long long)r->D, (int)st);
    if (config && st == NATTEN_ERROR_UNSUPPORTED && may_refuse(config, r, op, natten_last_error())) {
        printf("refused (configuration %d, %s %s): %s\n", config, tc_op_names[op], dtype, natten_last_error());
        tc_teardown(&ref);
        tc_teardown(&io);
        natten_context_destroy(ref_ctx);
        return;
    }
    ck_assert_msg(st == NATTEN_SUCCESS, "%s %s %s on %s: %s", BACKEND, tc_op_names[op], dtype, desc,
                  natten_last_error());
    ck_assert_str_eq(natten_context_last_backend(ctx), BACKEND);
    x = tc_compare_runs(&io, &ref, limit, &e);
    ck_assert_msg(x < 0, "%s %s %s on %s: %s differs from naive: normalised %.3g (limit %.1g), %lld bad; seed %llu",
                  BACKEND, tc_op_names[op], dtype, desc, tc_role_names[x], e.norm, limit, (long long)e.bad,
                  (unsigned long long)seed);
    tc_teardown(&ref);
    tc_teardown(&io);
    natten_context_destroy(ref_ctx);
}

static void compare(const ref_problem *r, tc_op op, const char *dtype, double limit, tt_layout layout,
                    natten_context *ctx)
{
    compare_r(r, (int)(r - cases), op, dtype, limit, layout, ctx, 0);
}

static natten_context *forced(void)
{
    natten_context *ctx;
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_msg(natten_context_set_backend(ctx, BACKEND) == NATTEN_SUCCESS, "%s", natten_last_error());
    return ctx;
}

START_TEST(edge_cases)
{
    natten_context *ctx = forced();
    size_t c = (size_t)_i;
    for (size_t t = 0; t < sizeof tols / sizeof tols[0]; t++) {
        tt_layout layout = (c + t) % 2 ? TT_HEADS_FIRST : TT_COMPACT;
        compare(&cases[c], OP_FNA, tols[t].dtype, tols[t].limit, layout, ctx);
        compare(&cases[c], OP_FNA_BW, tols[t].dtype, tols[t].limit, layout, ctx);
    }
    natten_context_destroy(ctx);
}
END_TEST

/* Every kernel configuration (1..N_CONFIGS; 0 is the default the edge cases
 * ran) on every edge case, forward and backward, one dtype per case in turn,
 * chosen through NATTEN_CUDA_TC_CONFIG (the backend reads it when the
 * context asks for the default).  Configuration 10 is the Hopper forward
 * (head dim 128; the rest run their defaults under it), 11 and 12 the Hopper
 * backward (head dim 128; the forward runs its default under them, a
 * backward of another head dim is refused), 13 the warp-specialised Hopper
 * forward, 14 its tile-skipping form and 15 that with three consumer
 * warpgroups (as 10), 16 and 17 Hopper backwards whose dK/dV warpgroups skip
 * tiles (as 11 and 12), 18 the split forward (as 10), 19 to 21 the
 * warp-specialised Hopper backwards (as 11); refused on other devices. */
#define N_CONFIGS 21

static void set_config(int config)
{
    char val[16];
    snprintf(val, sizeof val, "%d", config);
    ck_assert_int_eq(config ? setenv("NATTEN_CUDA_TC_CONFIG", val, 1) : unsetenv("NATTEN_CUDA_TC_CONFIG"), 0);
}

START_TEST(each_config)
{
    natten_context *ctx = forced();
    set_config(_i);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t t = (c + (size_t)_i) % 2;
        tt_layout layout = c % 2 ? TT_HEADS_FIRST : TT_COMPACT;
        compare_r(&cases[c], (int)c, OP_FNA, tols[t].dtype, tols[t].limit, layout, ctx, _i);
        compare_r(&cases[c], (int)c, OP_FNA_BW, tols[t].dtype, tols[t].limit, layout, ctx, _i);
    }
    set_config(0);
    natten_context_destroy(ctx);
}
END_TEST

/* The Hopper backward on its own edge cases (head dim 128): through the
 * default (_i 0: on an sm_90 device it runs there), then configurations 11,
 * 12, 16, 17 and 19 to 21; both dtypes (each case one, in turn), both layouts. */
START_TEST(hopper_backward)
{
    natten_context *ctx = forced();
    const int config = _i == 0 ? 0 : wgb_configs[_i - 1];
    set_config(config);
    for (size_t c = 0; c < sizeof wg_cases / sizeof wg_cases[0]; c++) {
        size_t t = (c + (size_t)_i) % 2;
        tt_layout layout = (c / 2 + (size_t)_i) % 2 ? TT_HEADS_FIRST : TT_COMPACT;
        compare_r(&wg_cases[c], 100 + (int)c, OP_FNA_BW, tols[t].dtype, tols[t].limit, layout, ctx, config);
    }
    set_config(0);
    natten_context_destroy(ctx);
}
END_TEST

/* A copy of each output of io (host side, after tc_run), for same_outputs. */
static void keep_outputs(const tc_io *io, void *first[R_COUNT])
{
    for (int x = 0; x < R_COUNT; x++) {
        first[x] = NULL;
        if (!(io->outputs & (1u << x))) continue;
        first[x] = malloc(io->t[x]->bytes);
        ck_assert(first[x] != NULL);
        memcpy(first[x], io->t[x]->host, io->t[x]->bytes);
    }
}

/* Each output of io bit-identical to its copy kept by keep_outputs (what:
 * the failure message after the output's name); the copies are freed. */
static void same_outputs(const tc_io *io, void *first[R_COUNT], const char *what)
{
    for (int x = 0; x < R_COUNT; x++) {
        if (!(io->outputs & (1u << x))) continue;
        ck_assert(first[x] != NULL);
        ck_assert_msg(tt_buffer_equal(io->t[x], first[x]), "%s %s", tc_role_names[x], what);
        free(first[x]);
        first[x] = NULL;
    }
}

/* v17: configuration 12's backward runs its kernels with PIPE (one barrier
 * a tile, dV/dK issued with the next tile); NATTEN_CUDA_TC_BWD_PIPE=0 runs
 * the same build's kernels without it (variant 4, for measurements).  Both
 * issue the same products in the same order, so dQ, dK and dV must be
 * bit-identical: case _i of wg_cases, fp16 and bf16 in turn, the PIPE=0 run
 * also compared with naive.  Refusals off sm_90a pass. */
START_TEST(hopper_backward_pipe_off)
{
    natten_context *ctx = forced();
    const ref_problem *r = &wg_cases[_i];
    const int config = wgb_configs[1]; /* 12 */
    const size_t t = (size_t)_i % 2;
    uint64_t rng = seed ^ (uint64_t)(400 + _i);
    tc_io io;
    void *first[R_COUNT] = {0};
    char what[128];
    natten_status st;
    ck_assert(tc_setup(&io, r, OP_FNA_BW, tt_dtype(tols[t].dtype), TT_COMPACT, kDLCUDA, &rng));
    set_config(config);
    ck_assert_int_eq(unsetenv("NATTEN_CUDA_TC_BWD_PIPE"), 0);
    st = tc_run(ctx, &io);
    if (st == NATTEN_ERROR_UNSUPPORTED && may_refuse(config, r, OP_FNA_BW, natten_last_error())) {
        printf("refused (configuration %d): %s\n", config, natten_last_error());
        set_config(0);
        tc_teardown(&io);
        natten_context_destroy(ctx);
        return;
    }
    ck_assert_msg(st == NATTEN_SUCCESS, "%s", natten_last_error());
    keep_outputs(&io, first);
    ck_assert_int_eq(setenv("NATTEN_CUDA_TC_BWD_PIPE", "0", 1), 0);
    st = tc_run(ctx, &io); /* outputs poisoned again first */
    ck_assert_int_eq(unsetenv("NATTEN_CUDA_TC_BWD_PIPE"), 0);
    ck_assert_msg(st == NATTEN_SUCCESS, "NATTEN_CUDA_TC_BWD_PIPE=0: %s", natten_last_error());
    snprintf(what, sizeof what, "of wg_cases[%d] (%s) differs between configuration 12 with and without PIPE", _i,
             tols[t].dtype);
    same_outputs(&io, first, what);
    tc_teardown(&io);
    set_config(config);
    ck_assert_int_eq(setenv("NATTEN_CUDA_TC_BWD_PIPE", "0", 1), 0);
    compare_r(r, 100 + _i, OP_FNA_BW, tols[t].dtype, tols[t].limit, TT_HEADS_FIRST, ctx, config);
    ck_assert_int_eq(unsetenv("NATTEN_CUDA_TC_BWD_PIPE"), 0);
    set_config(0);
    natten_context_destroy(ctx);
}
END_TEST

/* The Hopper forwards on the backward's edge cases (head dim 128): through
 * the default (_i 0), configuration 10 (_i 1), 13 (_i 2), 14 (_i 3), 15
 * (_i 4) and 18 (_i 5); both dtypes (each case one, in turn), both layouts. */
START_TEST(hopper_forward)
{
    natten_context *ctx = forced();
    const int config = _i == 0   ? 0
                       : _i == 1 ? WGMMA_CONFIG
                       : _i == 2 ? WS_CONFIG
                       : _i == 3 ? WSK_CONFIG
                       : _i == 4 ? WSK3_CONFIG
                                 : WSKS_CONFIG;
    set_config(config);
    for (size_t c = 0; c < sizeof wg_cases / sizeof wg_cases[0]; c++) {
        size_t t = (c + (size_t)_i) % 2;
        tt_layout layout = (c / 2 + (size_t)_i) % 2 ? TT_HEADS_FIRST : TT_COMPACT;
        compare_r(&wg_cases[c], 200 + (int)c, OP_FNA, tols[t].dtype, tols[t].limit, layout, ctx, config);
    }
    set_config(0);
    natten_context_destroy(ctx);
}
END_TEST

/* The split forward (configuration 18) with every box split in
 * NATTEN_CUDA_TC_SPLIT parts (_i 0..3: 2, 3, 5, 7; the box's tiles are not a
 * multiple of most of them, and parts of small boxes are empty), on the
 * head-dim-128 edge cases (ranks 1-3, causal, dilation, stride, GQA/MQA,
 * even K) and on problems whose 192-row grid is just above one round of an
 * H200's 132 SMs (its own plan: the last round's boxes split, the first
 * round's whole; _i 4: no forced split), fp16 and bf16 in turn, both
 * layouts; outputs (O and lse) poisoned before each run, as everywhere. */
static const ref_problem split_cases[] = {
    /* 1-D, 140 boxes of 192 rows (H200: 8 split in 8 parts), causal */
    {1, 1, 1, 1, 128, 128, {26880, 1, 1}, {65, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 0, 0}, 0, 0},
    /* 1-D, 3 heads x 2 dilation groups x 47 boxes = 282 (18 split in 7), MQA, odd K */
    {1, 1, 3, 1, 128, 128, {18000, 1, 1}, {33, 1, 1}, {2, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    /* 2-D, 4 heads x 36 boxes of 24x8 = 144 (12 split in 8), even K, stride, GQA */
    {2, 1, 4, 2, 128, 128, {70, 90, 1}, {12, 9, 1}, {1, 1, 1}, {1, 2, 1}, {0, 0, 0}, 0, 0},
};
START_TEST(split_forward)
{
    natten_context *ctx = forced();
    static const int parts[4] = {2, 3, 5, 7};
    char val[16];
    set_config(WSKS_CONFIG);
    if (_i < 4) {
        snprintf(val, sizeof val, "%d", parts[_i]);
        ck_assert_int_eq(setenv("NATTEN_CUDA_TC_SPLIT", val, 1), 0);
        for (size_t c = 0; c < sizeof wg_cases / sizeof wg_cases[0]; c++) {
            size_t t = (c + (size_t)_i) % 2;
            tt_layout layout = (c / 2 + (size_t)_i) % 2 ? TT_HEADS_FIRST : TT_COMPACT;
            compare_r(&wg_cases[c], 300 + (int)c, OP_FNA, tols[t].dtype, tols[t].limit, layout, ctx, WSKS_CONFIG);
        }
        compare_r(&cases[10], 310, OP_FNA, tols[_i % 2].dtype, tols[_i % 2].limit, TT_COMPACT, ctx, WSKS_CONFIG);
        ck_assert_int_eq(unsetenv("NATTEN_CUDA_TC_SPLIT"), 0);
    } else {
        for (size_t c = 0; c < sizeof split_cases / sizeof split_cases[0]; c++)
            for (size_t t = 0; t < sizeof tols / sizeof tols[0]; t++)
                compare_r(&split_cases[c], 320 + (int)c, OP_FNA, tols[t].dtype, tols[t].limit,
                          (c + t) % 2 ? TT_HEADS_FIRST : TT_COMPACT, ctx, WSKS_CONFIG);
        /* the default picks the split forward for the 1-D cases on an H200 */
        set_config(0);
        compare_r(&split_cases[0], 320, OP_FNA, "float16", 1e-2, TT_COMPACT, ctx, 0);
    }
    set_config(0);
    natten_context_destroy(ctx);
}
END_TEST

/* v14: the split forward's scratch.  Its arrival counters are kept between
 * calls (zero at each launch, put back to zero by the merging part) and
 * shared by every stream of the device, so two streams' launches must be
 * ordered; under graph capture each call takes fresh, zeroed scratch.  _i 0:
 * the two natural-split problems of split_cases (H200: 8 boxes in 8 parts,
 * 18 in 7; the second grows the scratch) on two non-blocking streams, three
 * calls each, issued alternately without a sync; _i 1: each call captured
 * into a graph on its own stream, the two graphs launched twice each,
 * alternately.  Outputs poisoned once before, compared with naive after. */
START_TEST(split_streams)
{
    natten_context *ref_ctx, *ctx[2];
    cudaStream_t s[2];
    cudaGraph_t g[2] = {0};
    cudaGraphExec_t ge[2] = {0};
    tc_io ref[2], io[2];
    DLTensor *T[2][R_COUNT];
    ck_assert_int_eq(natten_context_create(&ref_ctx), NATTEN_SUCCESS);
    ck_assert_int_eq(natten_context_set_backend(ref_ctx, "naive"), NATTEN_SUCCESS);
    set_config(WSKS_CONFIG);
    for (int i = 0; i < 2; i++) {
        uint64_t rng = seed ^ (uint64_t)(330 + i) * 104729u, rng2 = rng;
        ck_assert(tc_setup(&ref[i], &split_cases[i], OP_FNA, tt_dtype("float16"), TT_COMPACT, kDLCPU, &rng));
        ck_assert(tc_setup(&io[i], &split_cases[i], OP_FNA, tt_dtype("float16"), TT_COMPACT, kDLCUDA, &rng2));
        ck_assert_msg(tc_run(ref_ctx, &ref[i]) == NATTEN_SUCCESS, "naive: %s", natten_last_error());
        ctx[i] = forced();
        ck_assert_int_eq(cudaStreamCreateWithFlags(&s[i], cudaStreamNonBlocking), cudaSuccess);
        ck_assert_int_eq(natten_context_set_stream(ctx[i], s[i]), NATTEN_SUCCESS);
        for (int x = 0; x < R_COUNT; x++) {
            T[i][x] = io[i].t[x] ? &io[i].t[x]->t : NULL;
            if (io[i].t[x] && (io[i].outputs & (1u << x))) tt_poison(io[i].t[x]);
        }
    }
    /* the uploads (legacy stream, pageable memory) landed before the
     * non-blocking streams start */
    ck_assert_int_eq(cudaDeviceSynchronize(), cudaSuccess);
    for (int round = 0; round < (_i == 0 ? 3 : 1); round++)
        for (int i = 0; i < 2; i++) {
            natten_status st;
            if (_i == 1) ck_assert_int_eq(cudaStreamBeginCapture(s[i], cudaStreamCaptureModeThreadLocal), cudaSuccess);
            st = tc_call(ctx[i], OP_FNA, &io[i].params, T[i]);
            if (_i == 1) ck_assert_int_eq(cudaStreamEndCapture(s[i], &g[i]), cudaSuccess);
            if (st == NATTEN_ERROR_UNSUPPORTED && may_refuse(WSKS_CONFIG, &split_cases[i], OP_FNA, natten_last_error())) {
                printf("refused (configuration %d): %s\n", WSKS_CONFIG, natten_last_error());
                goto done;
            }
            ck_assert_msg(st == NATTEN_SUCCESS, "split forward on stream %d: %s", i, natten_last_error());
        }
    if (_i == 1) {
        for (int i = 0; i < 2; i++) ck_assert_int_eq(cudaGraphInstantiate(&ge[i], g[i], 0), cudaSuccess);
        for (int round = 0; round < 2; round++)
            for (int i = 0; i < 2; i++) ck_assert_int_eq(cudaGraphLaunch(ge[i], s[i]), cudaSuccess);
    }
    for (int i = 0; i < 2; i++) {
        tt_err e;
        int x;
        ck_assert_int_eq(cudaStreamSynchronize(s[i]), cudaSuccess);
        for (x = 0; x < R_COUNT; x++)
            if (io[i].t[x] && (io[i].outputs & (1u << x))) ck_assert(tt_download(io[i].t[x]));
        x = tc_compare_runs(&io[i], &ref[i], 1e-2, &e);
        ck_assert_msg(x < 0, "split forward on stream %d (%s): %s differs from naive: normalised %.3g, %lld bad", i,
                      _i ? "graphs" : "streams", tc_role_names[x], e.norm, (long long)e.bad);
    }
done:
    for (int i = 0; i < 2; i++) {
        if (ge[i]) (void)cudaGraphExecDestroy(ge[i]);
        if (g[i]) (void)cudaGraphDestroy(g[i]);
        (void)cudaStreamSynchronize(s[i]);
        natten_context_destroy(ctx[i]);
        (void)cudaStreamDestroy(s[i]);
        tc_teardown(&ref[i]);
        tc_teardown(&io[i]);
    }
    set_config(0);
    natten_context_destroy(ref_ctx);
}
END_TEST

/* Measured selection times every configuration of the forced backend, on a
 * head-dim-128 problem forward (_i 0) and backward (_i 1): only the Hopper
 * configurations may be refused, with their device/build reasons. */
START_TEST(tuner_times_configs)
{
    natten_context *ctx = forced();
    natten_tuning_result res[N_CONFIGS + 2];
    int count = 0, seen_wgb = 0, seen_ws = 0, seen_wsk = 0, seen_wsk3 = 0, seen_wsks = 0;
    uint64_t rng = seed;
    tc_io io;
    const tc_op op = _i ? OP_FNA_BW : OP_FNA;
    ck_assert_int_eq(natten_context_set_tuning(ctx, NATTEN_TUNING_MEASURE), NATTEN_SUCCESS);
    ck_assert(tc_setup(&io, &cases[11], op, tt_dtype("float16"), TT_COMPACT, kDLCUDA, &rng));
    ck_assert_msg(tc_run(ctx, &io) == NATTEN_SUCCESS, "%s", natten_last_error());
    ck_assert_int_eq(natten_context_tuning_report(ctx, res, N_CONFIGS + 2, &count, NULL, 0), NATTEN_SUCCESS);
    ck_assert_int_eq(count, 1 + N_CONFIGS);
    for (int i = 0; i < count; i++) {
        int wgb = is_wgb_name(res[i].config);
        ck_assert_str_eq(res[i].backend, BACKEND);
        seen_wgb += wgb;
        seen_ws += !strcmp(res[i].config, WS_NAME);
        seen_wsk += !strcmp(res[i].config, WSK_NAME);
        seen_wsk3 += !strcmp(res[i].config, WSK3_NAME);
        seen_wsks += !strcmp(res[i].config, WSKS_NAME);
        if ((!strcmp(res[i].config, WGMMA_NAME) || !strcmp(res[i].config, WS_NAME) ||
             !strcmp(res[i].config, WSK_NAME) || !strcmp(res[i].config, WSK3_NAME) ||
             !strcmp(res[i].config, WSKS_NAME) || (wgb && op == OP_FNA_BW)) &&
            res[i].status == NATTEN_ERROR_UNSUPPORTED && wgmma_refusal(res[i].reason)) {
            printf("tuned %s: %s refused: %s\n", tc_op_names[op], res[i].config, res[i].reason);
            continue;
        }
        ck_assert_msg(res[i].status == NATTEN_SUCCESS && res[i].time_ms > 0, "config %s: %s", res[i].config,
                      res[i].reason);
        printf("tuned %s: %s %.4f ms\n", tc_op_names[op], res[i].config, res[i].time_ms);
    }
    ck_assert_int_eq(seen_wgb, N_WGB);
    ck_assert_int_eq(seen_ws, 1);
    ck_assert_int_eq(seen_wsk, 1);
    ck_assert_int_eq(seen_wsk3, 1);
    ck_assert_int_eq(seen_wsks, 1);
    tc_teardown(&io);
    natten_context_destroy(ctx);
}
END_TEST

/* Each refusal is UNSUPPORTED with a reason naming the cause. */
static void refused(ref_problem r, tc_op op, const char *dtype, const char *word)
{
    natten_context *ctx = forced();
    uint64_t rng = seed;
    tc_io io;
    ck_assert(tc_setup(&io, &r, op, tt_dtype(dtype), TT_COMPACT, kDLCUDA, &rng));
    ck_assert_int_eq(tc_run(ctx, &io), NATTEN_ERROR_UNSUPPORTED);
    ck_assert_msg(strstr(natten_last_error(), word) != NULL, "reason '%s' lacks '%s'", natten_last_error(), word);
    printf("refused: %s\n", natten_last_error());
    tc_teardown(&io);
    natten_context_destroy(ctx);
}

START_TEST(refusals)
{
    ref_problem r = cases[0];
    refused(r, OP_FNA, "float32", "fp16/bf16");
    refused(r, OP_QK, "float16", "has no");
    r.D = r.Dv = 48;
    refused(r, OP_FNA, "float16", "head dim");
    r.D = 64;
    r.Dv = 32;
    refused(r, OP_FNA, "float16", "value head dim");
    r.Dv = 64;
    r.has_rpb = 1;
    refused(r, OP_FNA, "float16", "positional bias");
}
END_TEST

/* With the backend not forced, an fp32 problem still runs (on another backend). */
START_TEST(falls_back)
{
    natten_context *ctx;
    uint64_t rng = seed;
    tc_io io;
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert(tc_setup(&io, &cases[0], OP_FNA, tt_dtype("float32"), TT_COMPACT, kDLCUDA, &rng));
    ck_assert_msg(tc_run(ctx, &io) == NATTEN_SUCCESS, "%s", natten_last_error());
    ck_assert_str_ne(natten_context_last_backend(ctx), BACKEND);
    tc_teardown(&io);
    natten_context_destroy(ctx);
}
END_TEST

/* The backward has no atomics: two runs give identical bits.  _i 0: the
 * default; 1..7: configurations 11, 12, 16, 17 and 19 to 21 (the Hopper backward),
 * which may be refused on other devices.  _i 8 (v12): the split forward
 * (configuration 18, every box in 3 parts: merged in a fixed order). */
START_TEST(deterministic)
{
    natten_context *ctx = forced();
    const ref_problem *r = &cases[8]; /* GQA: dK/dV sum over query heads */
    const int config = _i == 0 ? 0 : _i <= N_WGB ? wgb_configs[_i - 1] : WSKS_CONFIG;
    const tc_op op = _i <= N_WGB ? OP_FNA_BW : OP_FNA;
    uint64_t rng = seed;
    tc_io io;
    void *first[R_COUNT] = {0};
    char what[128];
    natten_status st;
    ck_assert(tc_setup(&io, r, op, tt_dtype("float16"), TT_COMPACT, kDLCUDA, &rng));
    set_config(config);
    if (op == OP_FNA) ck_assert_int_eq(setenv("NATTEN_CUDA_TC_SPLIT", "3", 1), 0);
    st = tc_run(ctx, &io);
    if (config && st == NATTEN_ERROR_UNSUPPORTED && may_refuse(config, r, op, natten_last_error())) {
        printf("refused (configuration %d): %s\n", config, natten_last_error());
        set_config(0);
        (void)unsetenv("NATTEN_CUDA_TC_SPLIT");
        tc_teardown(&io);
        natten_context_destroy(ctx);
        return;
    }
    ck_assert_msg(st == NATTEN_SUCCESS, "%s", natten_last_error());
    keep_outputs(&io, first);
    ck_assert_msg(tc_run(ctx, &io) == NATTEN_SUCCESS, "%s", natten_last_error());
    snprintf(what, sizeof what, "differs between two runs (configuration %d)", config);
    same_outputs(&io, first, what);
    set_config(0);
    ck_assert_int_eq(unsetenv("NATTEN_CUDA_TC_SPLIT"), 0);
    tc_teardown(&io);
    natten_context_destroy(ctx);
}
END_TEST

int main(void)
{
    natten_backend_info info;
    int found = 0;
    Suite *s;
    TCase *tc;
    SRunner *sr;
    int failed;
    for (int i = 0; i < natten_backend_count(); i++) {
        if (natten_backend_get_info(i, &info) != NATTEN_SUCCESS || strcmp(info.name, BACKEND) != 0) continue;
        found = 1;
        if (!info.available) {
            printf("check_cuda_tc: skipped, %s is unavailable: %s\n", BACKEND, info.reason);
            return 77;
        }
    }
    if (!found || tt_mem_for(kDLCUDA) == NULL) {
        printf("check_cuda_tc: skipped, %s is not in this build\n", BACKEND);
        return 77;
    }
    seed = tt_seed();
    printf("check_cuda_tc: seed %llu (set NATTEN_TEST_SEED to repeat)\n", (unsigned long long)seed);
    s = suite_create("cuda-tc");
    /* five cases, so that CK_RUN_CASE can pick one (tests/gpu-sanitize.sh) */
    tc = tcase_create("edges");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, edge_cases, 0, (int)(sizeof cases / sizeof cases[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("configs");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, each_config, 1, 1 + N_CONFIGS);
    tcase_add_loop_test(tc, tuner_times_configs, 0, 2);
    suite_add_tcase(s, tc);
    /* the Hopper kernels' own cases (backward, then both forwards): a case of
     * its own for the sanitizers */
    tc = tcase_create("hopper");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, hopper_backward, 0, 1 + N_WGB);
    tcase_add_loop_test(tc, hopper_forward, 0, 6);
    tcase_add_loop_test(tc, hopper_backward_pipe_off, 0, (int)(sizeof wg_cases / sizeof wg_cases[0]));
    suite_add_tcase(s, tc);
    /* the split forward (v12, v14): a case of its own for the sanitizers */
    tc = tcase_create("split");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, split_forward, 0, 5);
    tcase_add_loop_test(tc, split_streams, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("api");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, falls_back);
    tcase_add_loop_test(tc, deterministic, 0, 2 + N_WGB);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
