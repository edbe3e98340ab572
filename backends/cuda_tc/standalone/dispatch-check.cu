/*
 * dispatch-check.cu - a host-only check of cuda-tc.cu's dispatch: which kernel
 * entry point run() calls (or which refusal it gives) per op, head dim, rank,
 * configuration 0..18 and device (with or without the sm_90a kernels), with
 * the entry points, the scratch allocation and the library's helpers mocked.
 * No GPU needed; built by hand from a configured build directory BUILD (for
 * config.h, configured with 90 among --with-cuda-arch):
 *   nvcc -std=c++17 -DHAVE_CONFIG_H -I BUILD -I lib -I backends/cuda_tc -I backends \
 *       backends/cuda_tc/standalone/dispatch-check.cu -o dispatch-check && ./dispatch-check
 * Exit status 0 iff every expectation holds.  (Against the first version of
 * the Hopper backward's dispatch it fails 6 expectations: the forward under
 * configurations 11 and 12 launched the backward.)
 */
#include <cuda_runtime.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "natten-impl.h"
#include "cuda-tc.h"
#include "tc_wgmma.cuh"

static int g_called, g_which, g_variant, g_delta, g_part;
static const unsigned int *g_ticket;
static unsigned int g_counters[4096];
static char g_msg[512];
cudaError_t tc_run_f16(const tc::Params &p, cudaStream_t, int, int backward, int variant)
{ (void)backward; g_called = 1; g_variant = variant; g_delta = p.delta != nullptr; return cudaSuccess; }
cudaError_t tc_run_bf16(const tc::Params &p, cudaStream_t, int, int backward, int variant)
{ (void)backward; g_called = 2; g_variant = variant; g_delta = p.delta != nullptr; return cudaSuccess; }
cudaError_t tc_forward_d32(const tc::Params &, cudaStream_t, int, int) { return cudaSuccess; }
cudaError_t tc_forward_d64(const tc::Params &, cudaStream_t, int, int) { return cudaSuccess; }
cudaError_t tc_forward_d128(const tc::Params &, cudaStream_t, int, int) { return cudaSuccess; }
cudaError_t tc_forward_d128_sm90a(const tc::Params &p, cudaStream_t, int, int which)
{ g_called = 3; g_which = which; g_part = p.part != nullptr && p.sticket != nullptr; g_ticket = p.sticket; return cudaSuccess; }
unsigned int *tc_split_counters(size_t *n) { *n = 4096; return g_counters; }
/* the real plan (host code of tc_wgmma.cuh), as tc-fwd128-sm90a.cu has it */
size_t tc_forward_split_plan(tc::Params &p, int64_t *grid)
{
    size_t bytes = 0;
    tc::wg::plan_split(p, &bytes);
    *grid = tc::plan_grid(p, p.H);
    return bytes;
}
cudaError_t tc_backward_d128_sm90a(const tc::Params &p, cudaStream_t, int, int which)
{ g_called = 4; g_which = which; g_delta = p.delta != nullptr; return p.delta ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t tc_probe_sm90a(void) { return cudaSuccess; }
cudaError_t tc_probe_sm90a_bwd(void) { return cudaSuccess; }
natten_status natten_error(natten_status s, const char *fmt, ...)
{ va_list ap; va_start(ap, fmt); vsnprintf(g_msg, sizeof g_msg, fmt, ap); va_end(ap); return s; }
void *natten_malloc(size_t b) { return malloc(b); }
void natten_free(void *p) { free(p); }
const char *natten_dtype_name(natten_dtype) { return "?"; }
const char *natten_arg_name(natten_arg) { return "?"; }
int natten_inner_contiguous(const natten_problem *, char *, size_t) { return 1; }

static int g_allocs;
#define cudaMallocAsync(ptr, bytes, s) ((*(ptr) = malloc(bytes)), g_allocs++, cudaSuccess)
#define cudaFreeAsync(ptr, s) (free(ptr), cudaSuccess)
/* v14: the split forward's kept scratch (no stream capture here, one stream) */
static int g_event;
#define cudaStreamIsCapturing(s, cs) ((*(cs) = cudaStreamCaptureStatusNone), cudaSuccess)
#define cudaStreamGetId(s, id) ((*(id) = 1), cudaSuccess)
#define cudaEventCreateWithFlags(ev, f) ((*(ev) = (cudaEvent_t)&g_event), cudaSuccess)
static cudaError_t mock_wait(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
static cudaError_t mock_record(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
#define cudaStreamWaitEvent mock_wait
#define cudaEventRecord mock_record
static int g_memsets;
#define cudaMemsetAsync(ptr, v, n, s) (memset((ptr), (v), (n)), g_memsets++, cudaSuccess)
#include "cuda-tc.cu"

static int fails;
static int64_t g_heads = 1; /* heads of the problems expect() runs (1: 1 query row) */
static void expect(int wg, natten_op op, int dim, int rank, int cfg, int want_called, int want_arg, const char *refuse)
{
    natten_problem p;
    natten_exec x;
    memset(&p, 0, sizeof p);
    memset(&x, 0, sizeof x);
    p.op = op; p.dtype = NATTEN_F16; p.rank = rank; p.batch = 1; p.heads = g_heads; p.heads_kv = 1;
    p.dim = p.dim_v = dim; p.tokens = 1; p.extent[0] = p.extent[1] = p.extent[2] = 1;
    for (int a = 0; a < 3; a++) p.kernel[a] = p.dilation[a] = p.stride[a] = 1;
    x.config = cfg;
    devices[0].wgmma = wg;
    g_called = 0; g_which = g_variant = -99; g_msg[0] = 0; g_delta = 0;
    natten_status st = run(&p, &x);
    int ok;
    if (refuse) ok = st == NATTEN_ERROR_UNSUPPORTED && strstr(g_msg, refuse) != NULL && g_called == 0;
    else ok = st == NATTEN_SUCCESS && g_called == want_called &&
              (want_called >= 3 ? g_which == want_arg : want_called <= 2 ? g_variant == want_arg : 1) &&
              (op == NATTEN_OP_FNA_BACKWARD ? g_delta : 1);
    printf("%s wg=%d %s D%d rank%d cfg%-2d -> called %d which %d variant %d st %d %s\n", ok ? "ok  " : "FAIL", wg,
           op == NATTEN_OP_FNA_BACKWARD ? "bwd" : "fwd", dim, rank, cfg, g_called, g_which, g_variant, (int)st, g_msg);
    fails += !ok;
}

int main(void)
{
    n_devices = 1;
    devices[0].usable = 1;
    devices[0].cc = 90;
    snprintf(devices[0].wg_why, sizeof devices[0].wg_why, "needs sm_90a, device 0 (X) is sm_80");
    const natten_op F = NATTEN_OP_FNA_FORWARD, B = NATTEN_OP_FNA_BACKWARD;
    for (int wg = 0; wg < 2; wg++) {
        for (int cfg = 0; cfg <= 18; cfg++) {
            int mma = cfg >= 1 && cfg <= 9, wgf = cfg == 10 || cfg == 13 || cfg == 14 || cfg == 15 || cfg == 18,
                wgbc = cfg == 11 || cfg == 12 || cfg == 16 || cfg == 17;
            /* the Hopper backward's variant: 11, 12 -> 0, 1; 16, 17 (v11, SK) -> 2, 3 */
            const int wgbw = cfg <= 12 ? cfg - 11 : cfg - 14;
            /* forward, D 128: which Hopper forward (0: configuration 10, 1: 13, 2: 14, 3: 15, 4: 18; the
             * default of a one-row problem: 1) */
            if (wgf && !wg) expect(wg, F, 128, 2, cfg, 0, 0, "needs sm_90a");
            else if (wg && !mma)
                expect(wg, F, 128, 2, cfg, 3,
                       cfg == 18 ? 4 : cfg == 15 ? 3 : cfg == 14 ? 2 : cfg == 13 ? 1 : cfg == 10 ? 0 : 1, NULL);
            else expect(wg, F, 128, 2, cfg, 1, mma ? cfg - 1 : wgf ? cfg - 1 : -1, NULL);
            /* forward, D 32 */
            if (wgf && !wg) expect(wg, F, 32, 2, cfg, 0, 0, "needs sm_90a");
            else expect(wg, F, 32, 2, cfg, 1, mma ? cfg - 1 : wgf ? cfg - 1 : -1, NULL);
            /* backward, D 128, ranks 1..3 */
            for (int rank = 1; rank <= 3; rank++) {
                if ((cfg >= 10) && !wg) expect(wg, B, 128, rank, cfg, 0, 0, "needs sm_90a");
                else if (wg && (cfg == 0 || wgf)) expect(wg, B, 128, rank, cfg, 4, rank == 1 ? 0 : 1, NULL);
                else if (wg && wgbc) expect(wg, B, 128, rank, cfg, 4, wgbw, NULL);
                else expect(wg, B, 128, rank, cfg, 1, mma ? cfg - 1 : -1, NULL);
            }
            /* backward, D 64 */
            if (cfg >= 10 && !wg) expect(wg, B, 64, 2, cfg, 0, 0, "needs sm_90a");
            else if (wgbc) expect(wg, B, 64, 2, cfg, 0, 0, "is a backward for head dim 128, not head dim 64");
            else expect(wg, B, 64, 2, cfg, 1, mma ? cfg - 1 : wgf ? cfg - 1 : -1, NULL);
        }
    }
    /* the default forward of a big problem (TC_WSK_MIN_ROWS query rows):
     * the tile-skipping kernel (TC_WS_DEFAULT: 3 since v10, three consumer
     * warpgroups); one row fewer: configuration 13's */
    g_heads = TC_WSK_MIN_ROWS;
    expect(1, F, 128, 2, 0, 3, TC_WS_DEFAULT, NULL);
    expect(1, F, 128, 3, 0, 3, TC_WS_DEFAULT, NULL);
    expect(1, F, 128, 2, 13, 3, 1, NULL);
    expect(1, F, 128, 2, 14, 3, 2, NULL);
    /* v12: the default backward of such a problem: variant 2 (configuration
     * 16) for rank 2, 1 for rank 3, 0 for rank 1 */
    expect(1, B, 128, 1, 0, 4, 0, NULL);
    expect(1, B, 128, 2, 0, 4, 2, NULL);
    expect(1, B, 128, 3, 0, 4, 1, NULL);
    expect(1, B, 128, 2, 13, 4, 2, NULL);
    expect(1, B, 128, 2, 12, 4, 1, NULL);
    g_heads = TC_WSK_MIN_ROWS - 1;
    expect(1, B, 128, 2, 0, 4, 1, NULL);
    expect(1, F, 128, 2, 0, 3, 1, NULL);
    expect(1, F, 128, 2, 14, 3, 2, NULL);
    expect(1, F, 128, 2, 15, 3, 3, NULL);
    /* v12: the 1-D target (32768 rows, K 2048, H 1) on 132 SMs: the split
     * forward by default (171 boxes of 192 rows: 39 split in 3), with its
     * scratch; on 171 SMs (no partial round) and for rank 2 of the same
     * rows, configuration 13's kernel; under configuration 18 a one-row
     * problem (1 box: split in 8 over 132 SMs) gets its scratch too */
    {
        natten_problem p;
        natten_exec x;
        const int nsm[3] = {132, 171, 132}, rank[3] = {1, 1, 2}, want[3] = {4, 1, 1};
        for (int i = 0; i < 3; i++) {
            memset(&p, 0, sizeof p);
            memset(&x, 0, sizeof x);
            p.op = F; p.dtype = NATTEN_F16; p.rank = rank[i]; p.batch = p.heads = p.heads_kv = 1;
            p.dim = p.dim_v = 128;
            p.tokens = 32768;
            p.extent[0] = rank[i] == 1 ? 32768 : 128;
            p.extent[1] = rank[i] == 1 ? 1 : 256;
            p.extent[2] = 1;
            p.kernel[0] = rank[i] == 1 ? 2048 : 45;
            p.kernel[1] = rank[i] == 1 ? 1 : 45;
            p.kernel[2] = 1;
            for (int a = 0; a < 3; a++) p.dilation[a] = p.stride[a] = 1;
            devices[0].wgmma = 1;
            devices[0].nsm = nsm[i];
            g_called = 0; g_which = -99; g_part = -1;
            natten_status st = run(&p, &x);
            const int ok = st == NATTEN_SUCCESS && g_called == 3 && g_which == want[i] && g_part == (want[i] == 4);
            printf("%s fwd D128 rank%d %lld tokens nsm %d cfg0 -> called %d which %d scratch %d\n", ok ? "ok  " : "FAIL",
                   rank[i], (long long)p.tokens, nsm[i], g_called, g_which, g_part);
            fails += !ok;
        }
        /* v14: the 1-D target's call takes the kept counters (no memset)
         * and one allocation, its partials, each time */
        {
            devices[0].nsm = 132;
            p.rank = 1; p.tokens = p.extent[0] = 32768; p.extent[1] = 1; p.kernel[0] = 2048; p.kernel[1] = 1;
            g_allocs = g_memsets = 0;
            g_ticket = nullptr;
            natten_status st = run(&p, &x);
            st = st ? st : run(&p, &x);
            const int ok = st == NATTEN_SUCCESS && g_which == 4 && g_part == 1 && g_ticket == g_counters &&
                           g_allocs == 2 && g_memsets == 0;
            printf("%s fwd D128 rank1 32768 tokens twice: kept counters %d, allocations %d, memsets %d\n",
                   ok ? "ok  " : "FAIL", g_ticket == g_counters, g_allocs, g_memsets);
            fails += !ok;
        }
        devices[0].nsm = 132;
        g_heads = 1;
        g_part = -1;
        expect(1, F, 128, 1, 18, 3, 4, NULL);
        printf("%s cfg18 one row: scratch %d\n", g_part == 1 ? "ok  " : "FAIL", g_part);
        fails += g_part != 1;
    }
    printf("%d failed\n", fails);
    return fails != 0;
}
