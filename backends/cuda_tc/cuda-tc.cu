/*
 * cuda-tc.cu - the cuda-tc backend's host side: fused neighborhood attention
 * forward and backward on tensor cores (sm_80 and up, fp16/bf16, head dims
 * 32/64/128).  The probe, supports() with a reason for every refusal, running
 * on the tensors' device and the context's stream, scratch and the timer.
 * Kernels: tc_kernels.cuh, instantiated per dtype in tc-f16.cu / tc-bf16.cu;
 * the Hopper (sm_90a) forward and backward for head dim 128: tc_wgmma.cuh and
 * tc_wgmma_bwd.cuh, in tc-fwd128-sm90a.cu / tc-bwd128-sm90a.cu.
 */
#include "natten-impl.h"
#include "cuda-tc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CC_NAME "cuda-tc"
#include "../cuda-common.cuh"

#define TC_MAX_DEVICES 64

/* Written once by tc_probe (the registry serialises and caches probes);
 * read-only afterwards. */
static struct tc_device {
    int usable, cc;
    int nsm; /* multiprocessors (the split forward's plan) */
    int wgmma; /* the sm_90a kernels (tc-fwd128-sm90a.cu, tc-bwd128-sm90a.cu) run here */
    char name[256];
    char why[200];
    char wg_why[200]; /* why not, when !wgmma */
} devices[TC_MAX_DEVICES];
static cc_pool pools[TC_MAX_DEVICES]; /* the backward's row scratch (cuda-common.cuh) */
static int n_devices;

/* Built like the real kernels (sm_80+ images only): no image, no kernels. */
__global__ void tc_probe_kernel(int *x)
{
    if (x) *x = 0;
}

static int tc_probe(char *why, size_t len)
{
    int n = 0, prev = 0, usable = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorNoDevice || (e == cudaSuccess && n == 0)) {
        snprintf(why, len, "no CUDA device");
        (void)cudaGetLastError();
        return 0;
    }
    if (e != cudaSuccess) {
        snprintf(why, len, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
        (void)cudaGetLastError();
        return 0;
    }
    (void)cudaGetDevice(&prev);
    n_devices = n < TC_MAX_DEVICES ? n : TC_MAX_DEVICES;
    for (int i = 0; i < n_devices; i++) {
        struct tc_device *d = &devices[i];
        cudaDeviceProp pr;
        cudaFuncAttributes fa;
        if ((e = cudaGetDeviceProperties(&pr, i)) != cudaSuccess) {
            snprintf(d->why, sizeof d->why, "cudaGetDeviceProperties: %s", cudaGetErrorString(e));
            (void)cudaGetLastError();
            continue;
        }
        d->cc = pr.major * 10 + pr.minor;
        d->nsm = pr.multiProcessorCount;
        snprintf(d->name, sizeof d->name, "%s", pr.name);
        if (d->cc < 80) {
            snprintf(d->why, sizeof d->why,
                     "device %d (%s) has compute capability %d.%d; the tensor-core kernels need 8.0", i, d->name,
                     pr.major, pr.minor);
            continue;
        }
        if ((e = cudaSetDevice(i)) == cudaSuccess) e = cudaFuncGetAttributes(&fa, (const void *)tc_probe_kernel);
        if (e != cudaSuccess) {
            snprintf(d->why, sizeof d->why, "device %d (%s, sm_%d): %s", i, d->name, d->cc,
                     e == cudaErrorInvalidDeviceFunction || e == cudaErrorNoKernelImageForDevice
                         ? "this build has no tensor-core kernels for its architecture (configure --with-cuda-arch)"
                         : cudaGetErrorString(e));
            (void)cudaGetLastError();
            continue;
        }
        d->usable = 1;
        pools[i] = cc_pool_create(i);
        usable++;
        /* The Hopper kernels: sm_90a code runs on compute capability 9.0 alone. */
        if (d->cc != 90) {
            snprintf(d->wg_why, sizeof d->wg_why, "needs sm_90a, device %d (%s) is sm_%d", i, d->name, d->cc);
        } else {
#ifdef HAVE_CUDA_TC_SM90A
            if ((e = tc_probe_sm90a()) == cudaSuccess) e = tc_probe_sm90a_bwd();
            if (e == cudaSuccess) {
                d->wgmma = 1;
            } else {
                snprintf(d->wg_why, sizeof d->wg_why, "device %d (%s, sm_90): sm_90a kernels do not load: %s", i,
                         d->name, cudaGetErrorString(e));
                (void)cudaGetLastError();
            }
#else
            snprintf(d->wg_why, sizeof d->wg_why,
                     "needs sm_90a kernels, which this build lacks (configure --with-cuda-arch with 90)");
#endif
        }
    }
    (void)cudaSetDevice(prev);
    (void)cudaGetLastError();
    if (!usable) snprintf(why, len, "%s", devices[0].why);
    return usable > 0;
}

/* Token roles whose rows the kernels copy with 16-byte loads. */
static const natten_arg token_roles[] = {NATTEN_ARG_Q,     NATTEN_ARG_K,   NATTEN_ARG_V,   NATTEN_ARG_OUT,
                                         NATTEN_ARG_D_OUT, NATTEN_ARG_D_Q, NATTEN_ARG_D_K, NATTEN_ARG_D_V};

static const char *role_name(natten_arg a) { return natten_arg_name(a); }

static int tc_supports(const natten_problem *p, char *why, size_t len)
{
    int id = p->device.device_id;
    if (id < 0 || id >= n_devices) {
        snprintf(why, len, "tensors are on CUDA device %d but %d devices are visible", id, n_devices);
        return 0;
    }
    if (!devices[id].usable) {
        snprintf(why, len, "%s", devices[id].why);
        return 0;
    }
    if (p->dtype != NATTEN_F16 && p->dtype != NATTEN_BF16) {
        snprintf(why, len, "tensor-core backend runs fp16/bf16, not %s", natten_dtype_name(p->dtype));
        return 0;
    }
    if (p->op != NATTEN_OP_FNA_FORWARD && p->op != NATTEN_OP_FNA_BACKWARD) {
        snprintf(why, len, "tensor-core backend runs the fused ops only");
        return 0;
    }
    if (natten_has(p, NATTEN_ARG_RPB) || natten_has(p, NATTEN_ARG_D_RPB)) {
        snprintf(why, len, "relative positional bias is not supported by the tensor-core kernels");
        return 0;
    }
    if (p->dim != 32 && p->dim != 64 && p->dim != 128) {
        snprintf(why, len, "head dim %lld: the tensor-core kernels are built for 32, 64 and 128",
                 (long long)p->dim);
        return 0;
    }
    if (p->dim_v != p->dim) {
        snprintf(why, len, "value head dim %lld differs from %lld: not supported by the tensor-core kernels",
                 (long long)p->dim_v, (long long)p->dim);
        return 0;
    }
    if (!natten_inner_contiguous(p, why, len)) return 0;
    for (size_t i = 0; i < sizeof token_roles / sizeof token_roles[0]; i++) {
        const natten_view *v = &p->arg[token_roles[i]];
        if (!v->data) continue;
        if ((uintptr_t)v->data % 16 != 0) {
            snprintf(why, len, "%s does not start on a 16-byte boundary (tensor-core kernels load rows in 16 bytes)",
                     role_name(token_roles[i]));
            return 0;
        }
        for (int a = 0; a < 5; a++)
            if (v->stride[a] % 8 != 0) {
                snprintf(why, len, "%s has stride %lld on dim %d, not a multiple of 8 elements (16-byte rows)",
                         role_name(token_roles[i]), (long long)v->stride[a], a);
                return 0;
            }
    }
    /* 32-bit block and coordinate arithmetic */
    {
        tc::Params q;
        int ext[3];
        int64_t grid = 1;
        memset(&q, 0, sizeof q);
        for (int i = 0; i < 3; i++) {
            if (p->extent[i] >= (1 << 28)) {
                snprintf(why, len, "extent %lld on axis %d is too large for the tensor-core kernels",
                         (long long)p->extent[i], i);
                return 0;
            }
            q.L[i] = (int)p->extent[i];
            q.dil[i] = p->dilation[i];
        }
        tc::group_ext(q, ext);
        tc::choose_box(tc::BR, ext, q.own);
        for (int i = 0; i < 3; i++) grid *= (int64_t)tc::cdiv(ext[i], q.own[i]) * p->dilation[i];
        grid *= p->batch * p->heads;
        if (grid > 0x7fffffffLL || p->batch > 0x7fffffffLL || p->heads > 0x7fffffffLL) {
            snprintf(why, len, "%lld blocks exceed the CUDA grid limit of the tensor-core kernels", (long long)grid);
            return 0;
        }
    }
    return 1;
}

static tc::Tensor view(const natten_problem *p, natten_arg a)
{
    tc::Tensor t;
    t.data = p->arg[a].data;
    for (int i = 0; i < 5; i++) t.s[i] = p->arg[a].stride[i];
    return t;
}

static void params_of(const natten_problem *p, tc::Params &q)
{
    memset(&q, 0, sizeof q);
    q.q = view(p, NATTEN_ARG_Q);
    q.k = view(p, NATTEN_ARG_K);
    q.v = view(p, NATTEN_ARG_V);
    q.o = view(p, NATTEN_ARG_OUT);
    q.lse = view(p, NATTEN_ARG_LSE);
    q.dout = view(p, NATTEN_ARG_D_OUT);
    q.dq = view(p, NATTEN_ARG_D_Q);
    q.dk = view(p, NATTEN_ARG_D_K);
    q.dv = view(p, NATTEN_ARG_D_V);
    q.B = (int)p->batch;
    q.H = (int)p->heads;
    q.Hkv = (int)p->heads_kv;
    for (int i = 0; i < 3; i++) {
        q.L[i] = (int)p->extent[i];
        q.K[i] = p->kernel[i];
        q.dil[i] = p->dilation[i];
        q.st[i] = p->stride[i];
        q.causal[i] = p->causal[i];
    }
    q.scale = (float)p->scale;
}

/*
 * Configurations: 0 is the per-head-dim default, 1..tc::N_CFG the kernel
 * configurations of tc_kernels.cuh (forward; the backward's dQ kernel has
 * three of them, see tc::backward), then the Hopper kernels (sm_90a, head
 * dim 128; refused with the reason on devices without them):
 *  N_CFG + 1: the Hopper forward (tc_wgmma.cuh); the backward and other
 *             head dims run their defaults under it;
 *  N_CFG + 2, N_CFG + 3: the Hopper backward (tc_wgmma_bwd.cuh), variants 0
 *             and 1 of tc_backward_d128_sm90a; the forward runs its default
 *             under them; a backward of another head dim is refused;
 *  N_CFG + 4: the warp-specialised Hopper forward (tc_wgmma.cuh,
 *             fwd_ws_kernel; NOTES.md v7); the rest as under N_CFG + 1;
 *  N_CFG + 5: the same kernel whose consumer warpgroups skip the tiles
 *             outside their own rows' windows, with boxes planned for it
 *             (SK 2; NOTES.md v8); the rest as under N_CFG + 1;
 *  N_CFG + 6: that with three consumer warpgroups and a 192-row query box
 *             (NC 3; NOTES.md v10); the rest as under N_CFG + 1;
 *  N_CFG + 7, N_CFG + 8: the Hopper backward with 128-key dK/dV boxes whose
 *             warpgroups skip the query tiles outside their keys' inverse
 *             windows (SK; NOTES.md v11), 64- and 32-query tiles: variants 2
 *             and 3 of tc_backward_d128_sm90a; as N_CFG + 2 otherwise.
 *  N_CFG + 9: N_CFG + 6's kernel with the boxes of its last, partial round
 *             split in parts over the idle SMs and merged by a second kernel
 *             (tc_forward_d128_sm90a's which 4; NOTES.md v12); the rest as
 *             under N_CFG + 1.
 *  N_CFG + 10, N_CFG + 11: the warp-specialised Hopper backward (a
 *             producer warpgroup and a 3-stage ring in both kernels; dK/dV
 *             over N_CFG + 7's boxes, dQ over 128- or 192-query boxes:
 *             tc_backward_d128_sm90a's which 5 and 6; NOTES.md v26); as
 *             N_CFG + 2 otherwise.
 *  N_CFG + 12: N_CFG + 11 with the producers' arrivals on a stage's
 *             "full" barrier made by cp.async.mbarrier.arrive (AF; which 7;
 *             NOTES.md v27).
 * The tuner times them all.  When the exec asks for the default,
 * NATTEN_CUDA_TC_CONFIG=<n> (1..TC_N_CONFIGS - 1) picks one instead: for
 * tests that run each configuration through the public API.
 */
#define TC_WGMMA_VARIANT tc::N_CFG /* variant_of() of the Hopper forward configuration */
#define TC_WGB_VARIANT (tc::N_CFG + 1) /* ... of the first Hopper backward configuration */
#define TC_WGB_COUNT 2
#define TC_WS_VARIANT (tc::N_CFG + 1 + TC_WGB_COUNT) /* ... of the warp-specialised Hopper forward */
#define TC_WSK_VARIANT (TC_WS_VARIANT + 1)            /* ... of its tile-skipping form (SK 2) */
#define TC_WSK3_VARIANT (TC_WS_VARIANT + 2)           /* ... of that with three consumer warpgroups */
#define TC_WGBSK_VARIANT (TC_WS_VARIANT + 3) /* ... of the first SK Hopper backward (tc_backward_d128_sm90a's 2) */
#define TC_WGBSK_COUNT 2
#define TC_WSKS_VARIANT (TC_WGBSK_VARIANT + TC_WGBSK_COUNT) /* ... of the split forward (v12) */
#define TC_WGBWS_VARIANT (TC_WSKS_VARIANT + 1) /* ... of the first warp-specialised backward (which 5, v26) */
#define TC_WGBWS_COUNT 3
/* Which Hopper forward the default runs (when TC_WGMMA_DEFAULT is 1): 0 the
 * two-blocks-per-SM kernel (configuration N_CFG + 1), 1 the warp-specialised
 * one (N_CFG + 4): harness variant t, faster than variant d on all three
 * head-dim-128 targets on the H200 (NOTES.md v7: 2-D 19.25 against 22.07 ms,
 * 3-D 82.75 against 96.00 ms, 1-D 0.1265 against 0.1445 ms) and passing the
 * harness's 22 edge cases (fp16 and bf16); 2 its tile-skipping form
 * (N_CFG + 5) for problems of at least TC_WSK_MIN_ROWS query rows (batch x
 * heads x tokens) and 1 below (ws_default).  NOTES.md v8, on the H200 (one
 * device call): configuration 14 against 13, 3-D 71.89 against 81.25 ms,
 * 2-D 18.70 against 18.96 ms (23040 and 12288 blocks), 1-D 0.1323 against
 * 0.1314 ms (256 blocks: equal within the noise), and 0.0646 against 0.0354
 * ms on check_cuda_tc's small 3-D case (24 blocks, the tuner's single runs):
 * the threshold (1024 blocks of 128 rows) lies in the unmeasured gap between
 * 256 and 12288 blocks.  Both kernels passed check_cuda_tc on the H200.
 * 3 (v10): the tile-skipping kernel with three consumer warpgroups
 * (N_CFG + 6) from TC_WSK_MIN_ROWS query rows up, 1 below: on the H200
 * (NOTES.md v10, device call 14) 2-D 15.46 against 14's 18.91 ms, 3-D 54.01
 * against 73.60 ms, 1-D 0.146 against 13's 0.132 ms (171 blocks of 192 rows:
 * below the threshold, so 13 stays there), 0.0787 against 0.0351 ms on
 * check_cuda_tc's small 3-D case; check_cuda_tc passed with it. */
#define TC_WS_DEFAULT 3
/* 1 (v12): below TC_WSK_MIN_ROWS, for rank 1, the split forward (N_CFG + 9)
 * where its 192-row grid fills at least one round of the SMs and its last
 * round's boxes are split (ws_default); 13's kernel otherwise.  The 1-D
 * target (32768 rows, H 1) is such a problem: 171 boxes on 132 SMs.  Rank 1
 * only: the one measured, and its box plan is cheap (plan_ws_sk of ranks 2
 * and 3 costs the host far more than a small problem's kernel).  On the H200
 * (NOTES.md v12, device calls 17 and 18, fp16, median of 20): 18 121.9-128.2
 * us against 13's 128.5-134.4 and 15's 139.2-147.3 us; check_cuda_tc passed. */
#define TC_WS_SPLIT_DEFAULT 1
#define TC_WSK_MIN_ROWS (1 << 17)
/* 1: the Hopper forward is the default for head dim 128 on sm_90 devices.
 * Its kernel passed the harness's 22 edge cases (fp16 and bf16) and was 30 %
 * faster than configuration 6 on the 2-D target (NOTES.md v4); 0 takes it out
 * of the defaults (it stays configuration 10). */
#define TC_WGMMA_DEFAULT 1
/* 1: the Hopper backward is the default for head dim 128 on sm_90 devices
 * (NOTES.md v5: 1.7x to 1.8x faster than the mma.sync backward on the three
 * D-128 targets, every variant passing the harness's edge cases); 0 takes it
 * out of the defaults (it stays configurations 11 and 12).  Which variant:
 * wgb_default(). */
#define TC_WGMMA_BWD_DEFAULT 1
#define TC_N_CONFIGS (1 + tc::N_CFG + 1 + TC_WGB_COUNT + 3 + TC_WGBSK_COUNT + 1 + TC_WGBWS_COUNT)
static const char *const config_names[TC_N_CONFIGS] = {
    "default",        tc::cfg_names[0], tc::cfg_names[1], tc::cfg_names[2], tc::cfg_names[3],
    tc::cfg_names[4], tc::cfg_names[5], tc::cfg_names[6], tc::cfg_names[7], tc::cfg_names[8],
    "wg2x64-n64-sm90a",
    /* dK/dV: keys per block, query tile, blocks per SM; dQ: queries per block, key tile, blocks per SM */
    "wgb-k128q64b1-q64n64b2-sm90a", /* harness v21 */
    "wgb-k64q32b2-q128n32b2-sm90a", /* harness v23 */
    "ws-p1c2x64-n64-sm90a",         /* a producer and two consumer warpgroups */
    "ws-p1c2x64-n64-sk-sm90a",      /* the same, each consumer skipping the tiles its rows do not see */
    "ws-p1c3x64-n64-sk-sm90a",      /* the same with three consumers: a 192-row query box */
    "wgb-k128q64b1sk-q128n32b2-sm90a", /* dK/dV: 128-key boxes, warpgroups skipping (SK), 64-query tiles */
    "wgb-k128q32b1sk-q128n32b2-sm90a", /* the same, 32-query tiles */
    "ws-p1c3x64-n64-sk-split-sm90a",   /* 15's kernel, the last round's boxes split over idle SMs */
    /* a producer warpgroup and a 3-stage ring in dK/dV (16's boxes) and dQ (128 or 192 queries) */
    "wgb-k128q64ws3-q128n64ws3-sm90a", "wgb-k128q64ws3-q192n64ws3-sm90a",
    /* 20 with the producers' arrivals on "full" made by cp.async (af) */
    "wgb-k128q64ws3af-q192n64ws3af-sm90a",
};
static_assert(tc::N_CFG == 9, "config_names lists every kernel configuration");

#ifdef HAVE_CUDA_TC_SM90A
/* ---- v14: the split forward's plan and counters, kept between calls ------
 * The plan (plan_split: plan_ws_sk's box search, 1-2 us of host time before
 * the launch, inside the caller's timing) is remembered per problem shape in
 * a small table.  The kernel's arrival counters (one per split box) must be
 * zero at the launch and are zero again after it (the merging part resets
 * its box's), so they are kept in the module's data (tc_split_counters: zero
 * when loaded, per device) and need no memset.  Two launches must not use
 * them at the same time, so every launch that uses them is ordered after the
 * previous one: on the same stream by the stream itself, from another stream
 * by waiting on an event recorded after that launch (split forwards on two
 * streams of one device therefore run one after the other: each one fills
 * the device anyway, that is when the split is chosen).  A stream under
 * graph capture (or one whose capture state cannot be read), and a problem
 * with more split boxes than counters, take fresh counters per call, zeroed
 * by a memset on the stream: a graph may be launched while another launch of
 * it runs.  The partials are stream-ordered scratch per call, as the
 * backward's (kept memory would be reported as a leak at exit). */
static pthread_mutex_t split_lock = PTHREAD_MUTEX_INITIALIZER;
#define SPLIT_PLANS 16
static struct split_plan {
    int used;
    tc::Params q; /* the problem (its key: split_key_eq) as planned (split_plan_copy) */
    size_t bytes;
    int64_t grid;
} split_plans[SPLIT_PLANS];
static unsigned split_next; /* the entry the next new plan replaces (round robin) */
static struct split_state {
    unsigned int *ctr;      /* the device's kept counters (tc_split_counters), once looked up */
    size_t nctr;
    int looked;
    cudaEvent_t done;       /* recorded after the last launch that used ctr */
    unsigned long long sid; /* that launch's stream (cudaStreamGetId) */
    int used;
} split_state[TC_MAX_DEVICES];

/* The same plan: the fields plan_split reads (extents, window, dilation,
 * stride, causal, batch and heads, SMs, forced split). */
static int split_key_eq(const tc::Params &a, const tc::Params &q)
{
    for (int i = 0; i < 3; i++)
        if (a.L[i] != q.L[i] || a.K[i] != q.K[i] || a.dil[i] != q.dil[i] || a.st[i] != q.st[i] ||
            a.causal[i] != q.causal[i])
            return 0;
    return a.B == q.B && a.H == q.H && a.Hkv == q.Hkv && a.nsm == q.nsm && a.force_split == q.force_split;
}

/* The fields plan_split writes, from a planned src to dst. */
static void split_plan_copy(tc::Params &dst, const tc::Params &src)
{
    for (int i = 0; i < 3; i++) dst.own[i] = src.own[i], dst.it[i] = src.it[i], dst.nown[i] = src.nown[i];
    dst.itprod = src.itprod, dst.sfull = src.sfull, dst.sparts = src.sparts;
    dst.rep[0] = src.rep[0], dst.rep[1] = src.rep[1];
}

/* tc_forward_split_plan(q, grid), remembered: q planned as it would plan it. */
static size_t split_plan_of(tc::Params &q, int64_t *grid)
{
    pthread_mutex_lock(&split_lock);
    for (int n = 0; n < SPLIT_PLANS; n++) {
        const struct split_plan *e = &split_plans[n];
        if (!e->used || !split_key_eq(e->q, q)) continue;
        split_plan_copy(q, e->q);
        *grid = e->grid;
        const size_t bytes = e->bytes;
        pthread_mutex_unlock(&split_lock);
        return bytes;
    }
    pthread_mutex_unlock(&split_lock);
    const size_t bytes = tc_forward_split_plan(q, grid);
    struct split_plan e;
    e.used = 1;
    e.q = q;
    e.bytes = bytes;
    e.grid = *grid;
    pthread_mutex_lock(&split_lock);
    split_plans[split_next++ % SPLIT_PLANS] = e;
    pthread_mutex_unlock(&split_lock);
    return bytes;
}

/* The split forward (which 4) of q, planned, with bytes of partials for its
 * nsplit split boxes (> 0), on stream s of device dev (current). */
static cudaError_t split_forward(int dev, tc::Params &q, size_t bytes, int64_t nsplit, cudaStream_t s, int bf16)
{
    const size_t cbytes = ((size_t)nsplit * sizeof(unsigned int) + 255) / 256 * 256;
    struct split_state *k = &split_state[dev];
    cudaError_t e;
    char *b = NULL;
    int kept;
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(s, &cs) != cudaSuccess) {
        (void)cudaGetLastError();
        cs = cudaStreamCaptureStatusActive;
    }
    pthread_mutex_lock(&split_lock);
    if (!k->looked) {
        k->ctr = tc_split_counters(&k->nctr);
        if (k->ctr == NULL) (void)cudaGetLastError();
        k->looked = 1;
    }
    kept = cs == cudaStreamCaptureStatusNone && k->ctr != NULL && (size_t)nsplit <= k->nctr;
    if (!kept) pthread_mutex_unlock(&split_lock);
    /* the partials (and fresh counters where not kept) */
    if ((e = cc_malloc_async((void **)&b, (kept ? 0 : cbytes) + bytes, pools[dev], s)) != cudaSuccess) {
        if (kept) pthread_mutex_unlock(&split_lock);
        return e;
    }
    if (!kept) {
        if ((e = cudaMemsetAsync(b, 0, cbytes, s)) == cudaSuccess) {
            q.sticket = (unsigned int *)b;
            q.part = (float *)(b + cbytes);
            e = tc_forward_d128_sm90a(q, s, bf16, 4);
        }
        (void)cudaFreeAsync(b, s);
        return e;
    }
    {
        unsigned long long sid = 0;
        int same = 0;
#if CUDART_VERSION >= 12000
        if (cudaStreamGetId(s, &sid) == cudaSuccess) same = k->used && k->sid == sid;
        else (void)cudaGetLastError();
#endif
        if (k->done == NULL && (e = cudaEventCreateWithFlags(&k->done, cudaEventDisableTiming)) != cudaSuccess) {
            k->done = NULL;
            goto out;
        }
        /* after the last launch that used the counters (a stream waiting on
         * its own earlier event: already so) */
        if (k->used && !same && (e = cudaStreamWaitEvent(s, k->done, 0)) != cudaSuccess) goto out;
        q.sticket = k->ctr;
        q.part = (float *)b;
        e = tc_forward_d128_sm90a(q, s, bf16, 4);
        if (e == cudaSuccess) {
            /* the next user from another stream waits for this launch */
            if ((e = cudaEventRecord(k->done, s)) == cudaSuccess) {
                k->used = 1;
                k->sid = sid;
            } else {
                /* not recorded: this launch's counters may still be in use,
                 * which no later launch could wait for */
                (void)cudaStreamSynchronize(s);
            }
        }
    }
out:
    pthread_mutex_unlock(&split_lock);
    (void)cudaFreeAsync(b, s);
    return e;
}
#endif

/* The Hopper backward variant run by default (head dim 128, sm_90): measured
 * on the H200 (fp16, NOTES.md v5), variant 1 (v23) was the fastest on the 2-D
 * (79.1 against 81.3 ms) and 3-D (279.0 against 340.0 ms) targets, variant 0
 * (v21) on the 1-D one (0.574 against 0.593 ms), so rank 1 takes variant 0.
 * v11/v12 (TC_WGBSK_DEFAULT 1): variant 2 (configuration 16, 128-key SK
 * dK/dV boxes) for rank 2 from TC_WSK_MIN_ROWS query rows up: on the H200
 * (NOTES.md v12, device calls 17, 18) 2-D 77.29 / 76.66 against variant 1's
 * 80.29 / 79.65 ms,
 * but 3-D 284.74 against 281.28 and 1-D 0.814 against variant 0's 0.581 ms,
 * and its host plan (plan_dkv_sk, ~1 ms) would dominate small problems.
 * v17: variant 1 runs its kernels with PIPE (tc-bwd128-sm90a.cu; 3-D 213.0 /
 * 214.1 against 232.7 / 233.0 ms); variant 2 keeps its own (the 2-D target
 * measured no change with PIPE in its dQ kernel).
 * v26 (TC_WGBWS_DEFAULT): the warp-specialised backward, variant 6
 * (configuration 20; 5 is configuration 19), for ranks 2 and 3 from
 * TC_WSK_MIN_ROWS query rows up: on the H200 (NOTES.md v26, session 22) 2-D
 * 44.2-44.5 ms with 19's kernels against variant 2's 54.7, 3-D 174.5 against
 * variant 1's 198.0 (the host plans, plan_dkv_sk and for 20 plan_ws_sk,
 * would dominate small problems); rank 1 unmeasured: variant 0 stays.
 * v27: variant 7 (configuration 21: 20 with the producers' arrivals made by
 * cp.async) in its place: on the H200 (NOTES.md v27, session 23 call 3, three
 * alternating rounds) 2-D backward 43.57-43.82 against 43.90-44.21 ms, forward
 * + backward 56.38-56.48 against 57.12-57.34 ms, bf16 45.29 against 45.79;
 * 3-D 158.5 against 158.2 ms (one round each: equal within the noise). */
#define TC_WGBSK_DEFAULT 1
#define TC_WGBWS_DEFAULT 7
#ifdef HAVE_CUDA_TC_SM90A
static int wgb_default(const natten_problem *p)
{
    if (p->rank == 1) return 0;
    if (TC_WGBWS_DEFAULT && p->batch * p->heads * p->tokens >= TC_WSK_MIN_ROWS) return TC_WGBWS_DEFAULT;
    if (TC_WGBSK_DEFAULT && p->rank == 2 && p->batch * p->heads * p->tokens >= TC_WSK_MIN_ROWS) return 2;
    return 1;
}
/* The Hopper forward the default runs (TC_WS_DEFAULT). */
/* (v12: where it picks the split forward, q is left planned for it and
 * *split_bytes holds its scratch.) */
static int ws_default(const natten_problem *p, tc::Params &q, size_t *split_bytes)
{
    const int64_t rows = p->batch * p->heads * p->tokens;
    if (TC_WS_DEFAULT >= 2 && rows < TC_WSK_MIN_ROWS) {
        if (TC_WS_SPLIT_DEFAULT && p->rank == 1 && q.force_split < 2) {
            const tc::Params q0 = q;
            int64_t grid = 0;
            const size_t bytes = split_plan_of(q, &grid);
            if (grid >= q.nsm && q.sparts >= 2) {
                *split_bytes = bytes;
                return 4;
            }
            q = q0;
        }
        return 1;
    }
    return TC_WS_DEFAULT;
}
#endif

static int variant_of(const natten_exec *x)
{
    int c = x->config;
    if (c == 0) {
        const char *env = getenv("NATTEN_CUDA_TC_CONFIG");
        if (env != NULL && *env != '\0') c = atoi(env);
    }
    return c >= 1 && c < TC_N_CONFIGS ? c - 1 : -1;
}

static natten_status run(const natten_problem *p, const natten_exec *x)
{
    cudaStream_t s = (cudaStream_t)x->stream;
    int backward = p->op == NATTEN_OP_FNA_BACKWARD;
    tc::Params q;
    cudaError_t e;
    natten_status st = NATTEN_SUCCESS;
    if (p->batch == 0 || p->heads == 0 || p->tokens == 0) return NATTEN_SUCCESS; /* nothing to write */
    params_of(p, q);
    const struct tc_device *d = &devices[p->device.device_id];
    int variant = variant_of(x);
    /* a Hopper backward chosen */
    int wgb = variant >= TC_WGB_VARIANT && variant < TC_WGB_VARIANT + TC_WGB_COUNT ? variant - TC_WGB_VARIANT
              : variant >= TC_WGBSK_VARIANT && variant < TC_WGBSK_VARIANT + TC_WGBSK_COUNT
                  ? TC_WGB_COUNT + variant - TC_WGBSK_VARIANT
              : variant >= TC_WGBWS_VARIANT && variant < TC_WGBWS_VARIANT + TC_WGBWS_COUNT
                  ? 5 + variant - TC_WGBWS_VARIANT
                  : -1;
    if (wgb >= 0 && !backward) variant = wgb = -1; /* the forward runs its default under it */
    const int wg_fwd = variant == TC_WGMMA_VARIANT || variant == TC_WS_VARIANT || variant == TC_WSK_VARIANT ||
                       variant == TC_WSK3_VARIANT || variant == TC_WSKS_VARIANT; /* a Hopper forward chosen */
    if ((wg_fwd || wgb >= 0) && !d->wgmma)
        return natten_error(NATTEN_ERROR_UNSUPPORTED, "cuda-tc: configuration %s %s", config_names[1 + variant],
                            d->wg_why);
    if (wgb >= 0 && p->dim != 128)
        return natten_error(NATTEN_ERROR_UNSUPPORTED,
                            "cuda-tc: configuration %s is a backward for head dim 128, not head dim %lld",
                            config_names[1 + variant], (long long)p->dim);
#ifdef HAVE_CUDA_TC_SM90A
    /* The Hopper backward: when chosen, and by default (the default or the
     * Hopper forward's configuration) for head dim 128 where it runs, once
     * TC_WGMMA_BWD_DEFAULT is 1. */
    int run_wgb = wgb;
    if (backward && wgb < 0 && TC_WGMMA_BWD_DEFAULT && p->dim == 128 && d->wgmma && (variant < 0 || wg_fwd))
        run_wgb = wgb_default(p);
    /* Head dim 128 forward: the Hopper kernels where they run, when chosen,
     * and by default once TC_WGMMA_DEFAULT is 1 (see its definition). */
    const int wg_default = TC_WGMMA_DEFAULT && variant < 0;
    if (!backward && p->dim == 128 && d->wgmma && (wg_fwd || wg_default)) {
        q.nsm = d->nsm;
        {
            const char *env = getenv("NATTEN_CUDA_TC_SPLIT"); /* tests: every box in that many parts */
            q.force_split = env != NULL && *env != '\0' ? atoi(env) : 0;
        }
        size_t bytes = 0;
        const int which = variant == TC_WSKS_VARIANT   ? 4
                          : variant == TC_WSK3_VARIANT  ? 3
                          : variant == TC_WSK_VARIANT   ? 2
                          : variant == TC_WS_VARIANT    ? 1
                          : variant == TC_WGMMA_VARIANT ? 0
                                                        : ws_default(p, q, &bytes);
        if (which == 4) {
            /* planned once (host time counts: 1-2 us a plan; remembered per
             * shape, split_plan_of); one launch (v14) */
            int64_t grid = 0;
            if (q.sparts < 1) bytes = split_plan_of(q, &grid);
            else grid = tc::plan_grid(q, q.H);
            const int64_t nsplit = q.sparts >= 2 ? grid - q.sfull : 0;
            e = nsplit > 0 ? split_forward(p->device.device_id, q, bytes, nsplit, s, p->dtype == NATTEN_BF16)
                           : tc_forward_d128_sm90a(q, s, p->dtype == NATTEN_BF16, 4);
            return e == cudaSuccess ? NATTEN_SUCCESS
                   : cc_error(e, nsplit > 0 ? "split forward (sm_90a): its scratch or launch"
                                            : "fused forward launch (sm_90a)");
        }
        e = tc_forward_d128_sm90a(q, s, p->dtype == NATTEN_BF16, which);
        return e == cudaSuccess ? NATTEN_SUCCESS : cc_error(e, "fused forward launch (sm_90a)");
    }
#endif
    if (backward) {
        size_t bytes = (size_t)p->batch * (size_t)p->heads * (size_t)p->tokens * sizeof(float);
        if ((e = cc_malloc_async((void **)&q.delta, bytes, pools[p->device.device_id], s)) != cudaSuccess)
            return cc_error(e, "stream-ordered allocation of the backward's row scratch");
    }
#ifdef HAVE_CUDA_TC_SM90A
    if (backward && run_wgb >= 0) {
        if (run_wgb == 1) {
            /* v17: variant 1's kernels run with PIPE; NATTEN_CUDA_TC_BWD_PIPE=0
             * runs them as v16 left them (variant 4; same bits), for
             * measurements against the same build */
            const char *env = getenv("NATTEN_CUDA_TC_BWD_PIPE");
            if (env != NULL && strcmp(env, "0") == 0) run_wgb = 4;
        }
        e = tc_backward_d128_sm90a(q, s, p->dtype == NATTEN_BF16, run_wgb);
        if (e != cudaSuccess) st = cc_error(e, "fused backward launch (sm_90a)");
    } else
#endif
    {
        e = p->dtype == NATTEN_F16 ? tc_run_f16(q, s, (int)p->dim, backward, variant)
                                   : tc_run_bf16(q, s, (int)p->dim, backward, variant);
        if (e != cudaSuccess) st = cc_error(e, backward ? "fused backward launch" : "fused forward launch");
    }
    if (q.delta) (void)cudaFreeAsync(q.delta, s);
    return st;
}

/* Run on the tensors' device, then give the caller's thread its device back. */
static natten_status on_device(const natten_problem *p, const natten_exec *x)
{
    return cc_on_device(run, p, x);
}

extern "C" const natten_backend natten_backend_cuda_tc;

const natten_backend natten_backend_cuda_tc = {
    "cuda-tc",
    "CUDA tensor cores (mma.sync, sm_80+; wgmma forward and backward for head dim 128 on sm_90a): fused NA "
    "forward/backward, fp16/bf16, head dim 32/64/128",
    kDLCUDA,
    tc_probe,
    tc_supports,
    {NULL, NULL, NULL, NULL, on_device, on_device},
    TC_N_CONFIGS,
    config_names,
    cc_scratch_alloc,
    cc_scratch_free,
    cc_time_op,
    cc_device_name,
};
