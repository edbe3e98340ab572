/*
 * check_cuda.c - what the equivalence suite cannot see of the cuda-tiled
 * backend: a non-default stream, out-of-memory that leaves the library usable,
 * bigger shapes (several lanes per query, chunked staging), device indices,
 * empty batches, refusals with reasons.
 *
 * Exits 77 (skip) when the backend is not built or no usable GPU is present.
 * Runs without forking (CUDA cannot be used in a child after the parent
 * touched it), so each test cleans up after itself.
 */
#include "cases.h"

#include <check.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKEND "cuda-tiled"

static uint64_t seed;

static const struct {
    const char *dtype;
    double limit;
} tols[] = {{"float64", 1e-10}, {"float32", 1e-4}, {"float16", 1e-2}, {"bfloat16", 5e-2}};

static int bf16_ok(void)
{
    int major = 0;
    return cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) == cudaSuccess && major >= 8;
}

/* Run op on case r with the backend on device tensors and with naive on host
 * tensors of the same values; compare every output. */
/* op on the backend under test against naive; the GPU's tensors in layout
 * (the token tensors heads-first or, TT_COMPACT, heads-last as the
 * reference's) */
static void compare_in(const ref_problem *r, tc_op op, const char *dtype, double limit, natten_context *ctx,
                       tt_layout layout)
{
    natten_context *ref_ctx;
    uint64_t rng = seed ^ (uint64_t)op * 7919u, rng2 = rng;
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
    ck_assert_msg(st == NATTEN_SUCCESS, "%s %s %s on %s: %s", BACKEND, tc_op_names[op], dtype, desc,
                  natten_last_error());
    x = tc_compare_runs(&io, &ref, limit, &e);
    ck_assert_msg(x < 0, "%s %s %s on %s: %s differs from naive: normalised %.3g (limit %.1g), %lld bad; seed %llu",
                  BACKEND, tc_op_names[op], dtype, desc, tc_role_names[x], e.norm, limit, (long long)e.bad,
                  (unsigned long long)seed);
    tc_teardown(&ref);
    tc_teardown(&io);
    natten_context_destroy(ref_ctx);
}

static void compare(const ref_problem *r, tc_op op, const char *dtype, double limit, natten_context *ctx)
{
    compare_in(r, op, dtype, limit, ctx, TT_HEADS_FIRST);
}

static natten_context *forced(void)
{
    natten_context *ctx;
    ck_assert_int_eq(natten_context_create(&ctx), NATTEN_SUCCESS);
    ck_assert_msg(natten_context_set_backend(ctx, BACKEND) == NATTEN_SUCCESS, "%s", natten_last_error());
    return ctx;
}

/* rank, B, H, Hkv, D, Dv, S, K, d, s, causal, scale, rpb */
static const ref_problem bigger[] = {
    /* 2 lanes per query (D 40), GQA, dilation, causal axis, more than one chunk */
    {2, 2, 4, 2, 40, 24, {20, 22, 1}, {5, 7, 1}, {2, 1, 1}, {1, 2, 1}, {0, 1, 0}, 0, 0},
    /* 4 lanes per query, RPB, even K */
    {2, 1, 2, 2, 100, 100, {12, 13, 1}, {4, 5, 1}, {1, 2, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1},
    /* a wide 1-D window: the partner box is staged in several chunks */
    {1, 2, 2, 2, 64, 64, {300, 1, 1}, {201, 1, 1}, {1, 1, 1}, {3, 1, 1}, {0, 0, 0}, 0, 0},
    /* the fast 2-D kernels (head dim <= 32, rank <= 2): causal, dilation,
     * L mod d != 0, several tiles; then with RPB */
    {2, 2, 3, 3, 32, 32, {30, 33, 1}, {7, 5, 1}, {1, 2, 1}, {1, 1, 1}, {1, 0, 0}, 0, 0},
    {2, 1, 2, 2, 16, 16, {17, 19, 1}, {5, 7, 1}, {3, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1},
    /* 3-D with everything */
    {3, 1, 2, 1, 33, 17, {6, 7, 8}, {3, 4, 5}, {2, 1, 1}, {1, 2, 3}, {1, 0, 1}, 0.25, 0},
};

START_TEST(bigger_shapes)
{
    natten_context *ctx = forced();
    for (size_t t = 0; t < sizeof tols / sizeof tols[0]; t++) {
        if (strcmp(tols[t].dtype, "bfloat16") == 0 && !bf16_ok()) continue;
        for (size_t c = 0; c < sizeof bigger / sizeof bigger[0]; c++)
            for (int op = 0; op < OP_COUNT; op++) compare(&bigger[c], (tc_op)op, tols[t].dtype, tols[t].limit, ctx);
    }
    natten_context_destroy(ctx);
}
END_TEST

START_TEST(other_stream)
{
    natten_context *ctx = forced();
    cudaStream_t s;
    ck_assert_int_eq(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    ck_assert_int_eq(natten_context_set_stream(ctx, s), NATTEN_SUCCESS);
    /* tc_run downloads with cudaMemcpy, which does not wait for a non-blocking
     * stream: synchronise first by running on that stream and then syncing. */
    for (int op = 0; op < 2 * OP_COUNT; op++) {
        uint64_t rng = seed + (uint64_t)op, rng2 = rng;
        const ref_problem *r = &bigger[op < OP_COUNT ? 0 : 3]; /* generic, then the fast 2-D kernels */
        tc_io ref, io;
        tt_err e;
        int x;
        natten_context *ref_ctx;
        ck_assert_int_eq(natten_context_create(&ref_ctx), NATTEN_SUCCESS);
        ck_assert_int_eq(natten_context_set_backend(ref_ctx, "naive"), NATTEN_SUCCESS);
        ck_assert(tc_setup(&ref, r, (tc_op)(op % OP_COUNT), tt_dtype("float32"), TT_COMPACT, kDLCPU, &rng));
        ck_assert(tc_setup(&io, r, (tc_op)(op % OP_COUNT), tt_dtype("float32"), TT_COMPACT, kDLCUDA, &rng2));
        ck_assert_int_eq(tc_run(ref_ctx, &ref), NATTEN_SUCCESS);
        ck_assert_msg(tc_run(ctx, &io) == NATTEN_SUCCESS, "%s", natten_last_error());
        ck_assert_int_eq(cudaStreamSynchronize(s), cudaSuccess);
        for (int y = 0; y < R_COUNT; y++)
            if (io.outputs & (1u << y)) ck_assert(tt_download(io.t[y]));
        x = tc_compare_runs(&io, &ref, 1e-4, &e);
        ck_assert_msg(x < 0, "stream: %s %s normalised %.3g, %lld bad", tc_op_names[op % OP_COUNT], tc_role_names[x],
                      e.norm, (long long)e.bad);
        tc_teardown(&ref);
        tc_teardown(&io);
        natten_context_destroy(ref_ctx);
    }
    ck_assert_str_eq(natten_context_last_backend(ctx), BACKEND);
    ck_assert_int_eq(cudaStreamDestroy(s), cudaSuccess);
    natten_context_destroy(ctx);
}
END_TEST

/* A tensor header with a made-up shape over addr (never dereferenced). */
static DLTensor fake(void *addr, int ndim, const int64_t *shape, DLDataType dt)
{
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.data = addr;
    t.device.device_type = kDLCUDA;
    t.ndim = ndim;
    t.shape = (int64_t *)shape;
    t.dtype = dt;
    return t;
}

START_TEST(out_of_memory)
{
    natten_context *ctx = forced();
    /* 2^36 query rows: the backward's per-row scratch alone is 256 GiB.  The
     * tensors themselves are never touched: the scratch allocation fails first.
     * Outputs sit 2^44 bytes apart so that validation sees no overlap. */
    static const int64_t shape[4] = {1 << 20, 1 << 16, 1, 1}, lshape[3] = {1 << 20, 1 << 16, 1};
    DLDataType f32 = {kDLFloat, 32, 1};
    char *base = (char *)((uintptr_t)1 << 46);
    DLTensor q = fake(base, 4, shape, f32), o = fake(base, 4, shape, f32), l = fake(base, 3, lshape, f32);
    DLTensor dq = fake(base + ((uint64_t)1 << 44), 4, shape, f32);
    DLTensor dk = fake(base + ((uint64_t)2 << 44), 4, shape, f32);
    DLTensor dv = fake(base + ((uint64_t)3 << 44), 4, shape, f32);
    natten_params p;
    int K = 3;
    natten_status st;
    ck_assert_int_eq(natten_params_init(&p, 1, &K), NATTEN_SUCCESS);
    st = natten_fna_backward(ctx, &p, &q, &q, &q, NULL, &o, &l, &o, &dq, &dk, &dv, NULL);
    ck_assert_msg(st == NATTEN_ERROR_OUT_OF_MEMORY, "expected out of memory, got %s: %s",
                  natten_status_string(st), natten_last_error());
    printf("out_of_memory: %s\n", natten_last_error());
    /* still usable */
    compare(&bigger[0], OP_FNA, "float32", 1e-4, ctx);
    compare(&bigger[0], OP_FNA_BW, "float32", 1e-4, ctx);
    natten_context_destroy(ctx);
}
END_TEST

START_TEST(device_index)
{
    natten_context *ctx = forced();
    int n = 0;
    ref_problem r = bigger[0];
    uint64_t rng = seed;
    tc_io io;
    natten_status st;
    ck_assert_int_eq(cudaGetDeviceCount(&n), cudaSuccess);
    /* tensors on a device that does not exist: refused, with the reason */
    ck_assert(tc_setup(&io, &r, OP_FNA, tt_dtype("float32"), TT_COMPACT, kDLCUDA, &rng));
    for (int x = 0; x < R_COUNT; x++)
        if (io.t[x]) io.t[x]->t.device.device_id = n;
    st = tc_run(ctx, &io);
    ck_assert_int_eq(st, NATTEN_ERROR_UNSUPPORTED);
    ck_assert_msg(strstr(natten_last_error(), "device") != NULL, "%s", natten_last_error());
    printf("device_index: %s\n", natten_last_error());
    tc_teardown(&io);
    /* the caller's current device is left alone */
    {
        int cur = -1;
        ck_assert_int_eq(cudaSetDevice(n - 1), cudaSuccess);
        compare(&bigger[0], OP_FNA, "float32", 1e-4, ctx); /* tensors on device 0 */
        ck_assert_int_eq(cudaGetDevice(&cur), cudaSuccess);
        ck_assert_int_eq(cur, n - 1);
        ck_assert_int_eq(cudaSetDevice(0), cudaSuccess);
    }
    if (n < 2) printf("device_index: one device only; multi-device run not tested\n");
    natten_context_destroy(ctx);
}
END_TEST

START_TEST(empty_and_refused)
{
    natten_context *ctx = forced();
    ref_problem r = {1, 0, 2, 2, 4, 4, {9, 1, 1}, {3, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1};
    uint64_t rng = seed;
    tc_io io;
    /* B = 0: d_rpb is still an output and must be all zeros */
    ck_assert(tc_setup(&io, &r, OP_QK_BW, tt_dtype("float32"), TT_COMPACT, kDLCUDA, &rng));
    ck_assert_msg(tc_run(ctx, &io) == NATTEN_SUCCESS, "%s", natten_last_error());
    for (int64_t i = 0; i < io.t[R_DRPB]->numel; i++) ck_assert(tt_get(io.t[R_DRPB], i) == 0.0);
    tc_teardown(&io);
    /* a head dim too long for the register blocking is refused with a reason */
    r.B = 1;
    r.D = r.Dv = 1025;
    r.has_rpb = 0;
    ck_assert(tc_setup(&io, &r, OP_FNA, tt_dtype("float32"), TT_COMPACT, kDLCUDA, &rng));
    ck_assert_int_eq(tc_run(ctx, &io), NATTEN_ERROR_UNSUPPORTED);
    printf("empty_and_refused: %s\n", natten_last_error());
    tc_teardown(&io);
    /* the largest head dim it takes */
    r.D = r.Dv = 1024;
    compare(&r, OP_FNA, "float32", 1e-4, ctx);
    compare(&r, OP_FNA_BW, "float32", 1e-4, ctx);
    natten_context_destroy(ctx);
}
END_TEST

/* More shapes for the tensor-core kernels (fp16/bf16, head dim 16 or 32,
 * rank <= 2): a unit rows axis (one query row per warp in the lean kernels), strides
 * (a warp's two query rows further apart in keys; stride = kernel), an odd
 * row count (a warp with one row at the tile edge), causal on both axes with
 * dilation, Dv != D, partial tiles, RPB; then windows the lean kernels do not take
 * (9 x 11: 8 columns span more than 16 keys, W > 64), which fall back to the
 * wide kernels (qkm/avm); last, four and six heads (the head-group kernels
 * qkh/avh: a tile row's four heads one run in memory, with RPB; causal with a
 * stride; pairs of heads with dilation and RPB, one run a query). */
static const ref_problem tc_shapes[] = {
    {1, 2, 2, 2, 32, 32, {40, 1, 1}, {9, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1},
    {2, 1, 2, 2, 32, 16, {23, 26, 1}, {5, 3, 1}, {1, 1, 1}, {3, 2, 1}, {0, 0, 0}, 0, 0},
    {2, 1, 2, 2, 16, 32, {19, 21, 1}, {3, 5, 1}, {2, 1, 1}, {1, 1, 1}, {1, 1, 0}, 0, 0},
    {2, 2, 1, 1, 32, 32, {14, 18, 1}, {3, 3, 1}, {1, 1, 1}, {3, 3, 1}, {0, 0, 0}, 0, 0},
    {2, 1, 3, 3, 16, 16, {9, 37, 1}, {7, 7, 1}, {1, 1, 1}, {1, 1, 1}, {0, 1, 0}, 0, 1},
    {2, 1, 2, 2, 32, 32, {20, 24, 1}, {9, 11, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1},
    {2, 2, 4, 4, 32, 32, {19, 22, 1}, {7, 7, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1},
    {2, 1, 4, 4, 16, 16, {13, 17, 1}, {5, 3, 1}, {1, 1, 1}, {2, 1, 1}, {1, 1, 0}, 0, 0},
    {2, 1, 6, 6, 32, 32, {17, 20, 1}, {3, 5, 1}, {2, 2, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1},
    /* the bulk-copy QK of sm_90+ (qkb: heads 1, 2 or 4, head dim 32, not
     * causal): runs not 16-byte aligned (19 columns of 4 x 15 slots) with
     * row dilation and RPB, even windows over several tiles (2 x 8: 6 x 8
     * windows made fl_plan's tile too large for qkb), two heads with row
     * dilation and strides */
    {2, 2, 4, 4, 32, 32, {21, 19, 1}, {5, 3, 1}, {2, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1},
    {2, 3, 4, 4, 32, 32, {30, 40, 1}, {6, 4, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    {2, 2, 2, 2, 32, 32, {33, 29, 1}, {7, 5, 1}, {3, 1, 1}, {2, 1, 1}, {0, 0, 0}, 0, 0},
    /* the bulk-copy AV of sm_90+ (avb: its attention runs 16-byte aligned,
     * so a row of the attention tensor a multiple of 8 elements, and the
     * last tile's runs too): two heads of 25 slots over partial tiles with
     * row dilation, one head of even windows with column strides; the 19 x
     * 22 shape above (four heads, partial tiles) takes it as well */
    {2, 2, 2, 2, 32, 32, {18, 20, 1}, {5, 5, 1}, {2, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0},
    {2, 1, 1, 1, 32, 32, {16, 24, 1}, {4, 6, 1}, {1, 1, 1}, {1, 2, 1}, {0, 0, 0}, 0, 0},
};

/* The fast 2-D kernels under each configuration's tile budget (other tile
 * shapes, so other partial tiles), and with the fast kernels switched off for
 * the same problems (the generic kernels on a 2-D problem with a short head
 * dim); the tensor-core configurations (0: default, lean kernels and their
 * head-group variants, on sm_90+ the bulk-copy QK; 4: tc-wide; 5:
 * tc-lean-per-head; 6: tc-head-groups) also on tc_shapes in fp16 and bf16,
 * the default with the bulk-copy QK's grid capped at 3 blocks (many
 * tiles a block: its ring of stages and run buffers wraps), and the default
 * with the bulk-copy QK's 16-byte copies instead of a bulk copy a position
 * (NATTEN_CUDA_TILED_PBULK=0). */
START_TEST(configs_and_generic)
{
    natten_context *ctx = forced();
    static const char *const env[][2] = {{"NATTEN_CUDA_TILED_CONFIG", "0"},
                                         {"NATTEN_CUDA_TILED_CONFIG", "1"},
                                         {"NATTEN_CUDA_TILED_CONFIG", "2"},
                                         {"NATTEN_CUDA_TILED_CONFIG", "3"},
                                         {"NATTEN_CUDA_TILED_CONFIG", "4"},
                                         {"NATTEN_CUDA_TILED_CONFIG", "5"},
                                         {"NATTEN_CUDA_TILED_CONFIG", "6"},
                                         {"NATTEN_CUDA_TILED_BLOCKS", "3"},
                                         {"NATTEN_CUDA_TILED_PBULK", "0"},
                                         {"NATTEN_CUDA_TILED_NO_FAST", "1"}};
    for (size_t e = 0; e < sizeof env / sizeof env[0]; e++) {
        const int tc = strcmp(env[e][0], "NATTEN_CUDA_TILED_BLOCKS") == 0 ||
                       strcmp(env[e][0], "NATTEN_CUDA_TILED_PBULK") == 0 ||
                       (strcmp(env[e][0], "NATTEN_CUDA_TILED_CONFIG") == 0 &&
                        (strcmp(env[e][1], "0") == 0 || strcmp(env[e][1], "4") == 0 ||
                         strcmp(env[e][1], "5") == 0 || strcmp(env[e][1], "6") == 0));
        ck_assert_int_eq(setenv(env[e][0], env[e][1], 1), 0);
        for (size_t c = 3; c <= 4; c++)
            for (int op = 0; op < OP_COUNT; op++) {
                compare(&bigger[c], (tc_op)op, "float32", 1e-4, ctx);
                compare(&bigger[c], (tc_op)op, "float16", 1e-2, ctx);
            }
        for (size_t c = 0; tc && c < sizeof tc_shapes / sizeof tc_shapes[0]; c++)
            for (int op = 0; op < OP_COUNT; op++) {
                compare(&tc_shapes[c], (tc_op)op, "float16", 1e-2, ctx);
                if (bf16_ok()) compare(&tc_shapes[c], (tc_op)op, "bfloat16", 5e-2, ctx);
            }
        /* the forward QK and AV with every tensor heads-last as well: the
         * layout the bulk-copy kernels need (their q, k and v with the heads
         * adjacent; heads-first token tensors above never reach them) */
        for (size_t c = 0; tc && c < sizeof tc_shapes / sizeof tc_shapes[0]; c++)
            for (int op = OP_QK; op <= OP_AV; op += OP_AV - OP_QK) {
                compare_in(&tc_shapes[c], (tc_op)op, "float16", 1e-2, ctx, TT_COMPACT);
                if (bf16_ok()) compare_in(&tc_shapes[c], (tc_op)op, "bfloat16", 5e-2, ctx, TT_COMPACT);
            }
        ck_assert_int_eq(unsetenv(env[e][0]), 0);
    }
    natten_context_destroy(ctx);
}
END_TEST

/* The fast fused kernels' variants (fast2d.cuh): the backward as one launch
 * (bwd2, the default) or two (NATTEN_CUDA_TILED_BWD_SPLIT=1: dq2 then dkv2
 * reading dq2's delta), the plain column order (the default) or the rotated
 * one with interleaved lanes (NATTEN_CUDA_TILED_ROT=1); each against naive,
 * and the one- and two-launch backwards bit-identical (both compute delta in
 * the same order) under either column order.  Shapes: causal, dilation,
 * several tiles; RPB and even K; GQA with RPB (dkv2's blocks walk a group of
 * query heads); causal columns with dilation and stride (windows of varying
 * length), Dv != D. */
static const ref_problem bwd_shapes[] = {
    {2, 2, 3, 3, 32, 32, {30, 33, 1}, {7, 5, 1}, {1, 2, 1}, {1, 1, 1}, {1, 0, 0}, 0, 0},
    {2, 1, 2, 2, 16, 16, {17, 19, 1}, {5, 7, 1}, {3, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1},
    {2, 2, 4, 2, 32, 32, {21, 26, 1}, {7, 6, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1},
    {2, 1, 2, 1, 32, 24, {9, 40, 1}, {3, 9, 1}, {1, 4, 1}, {1, 2, 1}, {0, 1, 0}, 0, 0},
};

static void set_variant(int rot, int split)
{
    ck_assert_int_eq(setenv("NATTEN_CUDA_TILED_ROT", rot ? "1" : "0", 1), 0);
    ck_assert_int_eq(setenv("NATTEN_CUDA_TILED_BWD_SPLIT", split ? "1" : "0", 1), 0);
}

START_TEST(fused_variants)
{
    natten_context *ctx = forced();
    for (size_t c = 0; c < sizeof bwd_shapes / sizeof bwd_shapes[0]; c++) {
        char desc[256];
        tc_describe(&bwd_shapes[c], desc, sizeof desc);
        for (int rot = 0; rot < 2; rot++) {
            for (int split = 0; split < 2; split++) {
                set_variant(rot, split);
                compare(&bwd_shapes[c], OP_FNA_BW, "float32", 1e-4, ctx);
                compare(&bwd_shapes[c], OP_FNA_BW, "float16", 1e-2, ctx);
                if (!split) compare(&bwd_shapes[c], OP_FNA, "float32", 1e-4, ctx);
            }
            /* one launch against two, same inputs: the same bits */
            {
                uint64_t rng = seed ^ 0x5bd1e995u, rng2 = rng;
                tc_io one, two;
                tt_err e;
                int x;
                ck_assert(tc_setup(&one, &bwd_shapes[c], OP_FNA_BW, tt_dtype("float32"), TT_COMPACT, kDLCUDA, &rng));
                ck_assert(tc_setup(&two, &bwd_shapes[c], OP_FNA_BW, tt_dtype("float32"), TT_COMPACT, kDLCUDA, &rng2));
                set_variant(rot, 0);
                ck_assert_msg(tc_run(ctx, &one) == NATTEN_SUCCESS, "%s", natten_last_error());
                set_variant(rot, 1);
                ck_assert_msg(tc_run(ctx, &two) == NATTEN_SUCCESS, "%s", natten_last_error());
                x = tc_compare_runs(&one, &two, 0.0, &e);
                ck_assert_msg(x < 0, "rot %d, %s: one launch and two differ in %s (normalised %.3g, %lld bad)", rot,
                              desc, tc_role_names[x], e.norm, (long long)e.bad);
                tc_teardown(&one);
                tc_teardown(&two);
            }
        }
    }
    ck_assert_int_eq(unsetenv("NATTEN_CUDA_TILED_ROT"), 0);
    ck_assert_int_eq(unsetenv("NATTEN_CUDA_TILED_BWD_SPLIT"), 0);
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
            printf("check_cuda: skipped, %s is unavailable: %s\n", BACKEND, info.reason);
            return 77;
        }
    }
    if (!found) {
        printf("check_cuda: skipped, %s is not in this build\n", BACKEND);
        return 77;
    }
    seed = tt_seed();
    printf("check_cuda: seed %llu (set NATTEN_TEST_SEED to repeat)\n", (unsigned long long)seed);
    s = suite_create("cuda");
    /* one case per test, so that CK_RUN_CASE / CK_EXCLUDE_CASES can pick */
    {
        const struct {
            const char *name;
            const TTest *fn;
        } tests[] = {{"bigger", bigger_shapes}, {"stream", other_stream}, {"oom", out_of_memory},
                     {"device", device_index}, {"empty", empty_and_refused},
                     {"configs", configs_and_generic}, {"variants", fused_variants}};
        for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
            tc = tcase_create(tests[i].name);
            tcase_add_test(tc, tests[i].fn);
            suite_add_tcase(s, tc);
        }
    }
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
