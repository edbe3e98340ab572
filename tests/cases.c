/* cases.c - see cases.h. */
#include "cases.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const tc_op_names[OP_COUNT] = {"qk_forward", "qk_backward", "av_forward",
                                           "av_backward", "fna_forward", "fna_backward"};
const char *const tc_role_names[R_COUNT] = {"q", "k", "v", "attn", "rpb", "out", "lse",
                                            "d_out", "d_attn", "d_q", "d_k", "d_v", "d_rpb"};

#define P1(L, K, d, s, c) {L, 1, 1}, {K, 1, 1}, {d, 1, 1}, {s, 1, 1}, {c, 0, 0}

/* rank, B, H, Hkv, D, Dv, S[3], K[3], d[3], s[3], causal[3], scale, has_rpb
 * Together they cover: every rank, odd and even K, K = L, dilation with
 * L mod d != 0, causal per axis, stride incl. stride = K, causal + stride, GQA,
 * Dv != D, RPB (with even K and with causal), mixed per-axis parameters. */
const tc_case tc_cases[] = {
    {"1d basic", {1, 2, 2, 2, 8, 8, {16, 1, 1}, {7, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1}},
    {"1d even K, L mod d != 0", {1, 1, 2, 2, 5, 5, {17, 1, 1}, {4, 1, 1}, {3, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1}},
    {"1d K = L", {1, 2, 1, 1, 4, 4, {9, 1, 1}, {9, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1}},
    {"1d causal", {1, 1, 2, 2, 4, 4, {11, 1, 1}, {4, 1, 1}, {2, 1, 1}, {1, 1, 1}, {1, 0, 0}, 0, 1}},
    {"1d causal stride", {1, 2, 1, 1, 4, 3, {13, 1, 1}, {5, 1, 1}, {1, 1, 1}, {2, 1, 1}, {1, 0, 0}, 0, 0}},
    {"1d stride = K", {1, 1, 2, 2, 3, 3, {12, 1, 1}, {4, 1, 1}, {1, 1, 1}, {4, 1, 1}, {0, 0, 0}, 0, 0}},
    {"1d stride, dilation, GQA", {1, 1, 4, 2, 4, 6, {10, 1, 1}, {3, 1, 1}, {2, 1, 1}, {2, 1, 1}, {0, 0, 0}, 0.3, 0}},
    {"2d mixed K, dilation", {2, 1, 2, 2, 6, 6, {7, 9, 1}, {3, 4, 1}, {2, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1}},
    {"2d causal axis 0, stride", {2, 2, 1, 1, 4, 4, {8, 7, 1}, {5, 3, 1}, {1, 1, 1}, {2, 1, 1}, {1, 0, 0}, 0, 0}},
    {"2d causal axis 1, even K, RPB", {2, 1, 2, 2, 4, 4, {6, 7, 1}, {2, 4, 1}, {1, 1, 1}, {1, 1, 1}, {0, 1, 0}, 0, 1}},
    {"2d K = L (self attention)", {2, 1, 2, 2, 5, 5, {5, 6, 1}, {5, 6, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1}},
    {"2d GQA, Dv != D, stride = K", {2, 1, 4, 1, 8, 5, {6, 6, 1}, {3, 2, 1}, {1, 2, 1}, {3, 2, 1}, {0, 0, 0}, 0, 0}},
    {"3d mixed", {3, 1, 2, 2, 4, 4, {5, 6, 7}, {3, 2, 3}, {1, 2, 2}, {1, 2, 3}, {0, 1, 0}, 0, 0}},
    {"3d causal all, RPB", {3, 1, 1, 1, 3, 3, {4, 4, 5}, {2, 3, 5}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 0, 1}},
    {"3d dilation L mod d != 0", {3, 2, 2, 2, 4, 4, {5, 7, 3}, {2, 3, 3}, {2, 2, 1}, {1, 1, 1}, {0, 0, 0}, 0, 1}},
    /* head dims the tensor-core kernels take (32, 64): tile edges, GQA, causal + stride */
    {"1d D 32, GQA, causal stride, L mod d", {1, 1, 4, 2, 32, 32, {37, 1, 1}, {6, 1, 1}, {2, 1, 1}, {3, 1, 1}, {1, 0, 0}, 0, 0}},
    {"2d D 32, even K, dilation", {2, 1, 2, 2, 32, 32, {11, 10, 1}, {4, 5, 1}, {2, 1, 1}, {1, 1, 1}, {0, 0, 0}, 0, 0}},
    {"3d D 64, stride = K, causal axis 2", {3, 1, 1, 1, 64, 64, {5, 6, 9}, {3, 2, 4}, {1, 2, 1}, {3, 1, 2}, {0, 0, 1}, 0, 0}},
};
const int tc_ncases = (int)(sizeof tc_cases / sizeof tc_cases[0]);

void tc_params(const ref_problem *r, natten_params *p)
{
    natten_params_init(p, r->rank, r->K);
    for (int i = 0; i < r->rank; i++) {
        p->dilation[i] = r->d[i];
        p->stride[i] = r->s[i];
        p->is_causal[i] = r->causal[i];
    }
    if (r->scale != 0) natten_params_set_scale(p, r->scale);
}

void tc_describe(const ref_problem *r, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "%dd B=%lld H=%lld/%lld D=%lld/%lld", r->rank,
                                (long long)r->B, (long long)r->H, (long long)r->Hkv,
                                (long long)r->D, (long long)r->Dv);
    for (int i = 0; i < r->rank && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, " [L=%lld K=%d d=%d s=%d%s]", (long long)r->S[i],
                              r->K[i], r->d[i], r->s[i], r->causal[i] ? " causal" : "");
    if (r->has_rpb && n < len) snprintf(buf + n, len - n, " rpb");
}

static int is_fused(tc_op op) { return op == OP_FNA || op == OP_FNA_BW; }

/* Shape of role x for problem r. */
static int role_shape(const ref_problem *r, tc_role x, int64_t *shape, int *token)
{
    int n = r->rank, nd = 0;
    int64_t W = ref_window(r);
    *token = 1;
    if (x == R_RPB || x == R_DRPB) {
        shape[nd++] = r->H;
        for (int i = 0; i < n; i++) shape[nd++] = 2 * r->K[i] - 1;
        *token = 0;
        return nd;
    }
    shape[nd++] = r->B;
    for (int i = 0; i < n; i++) shape[nd++] = r->S[i];
    switch (x) {
    case R_Q: case R_DQ: shape[nd++] = r->H; shape[nd++] = r->D; break;
    case R_K: case R_DK: shape[nd++] = r->Hkv; shape[nd++] = r->D; break;
    case R_V: case R_DV: shape[nd++] = r->Hkv; shape[nd++] = r->Dv; break;
    case R_OUT: case R_DOUT: shape[nd++] = r->H; shape[nd++] = r->Dv; break;
    case R_ATTN: case R_DATTN: shape[nd++] = r->H; shape[nd++] = W; break;
    default: shape[nd++] = r->H; *token = 0; break; /* lse */
    }
    return nd;
}

#define B(x) (1u << (x))

static void op_roles(tc_op op, int rpb, unsigned *in, unsigned *out)
{
    switch (op) {
    case OP_QK: *in = B(R_Q) | B(R_K) | (rpb ? B(R_RPB) : 0); *out = B(R_ATTN); break;
    case OP_QK_BW: *in = B(R_DATTN) | B(R_Q) | B(R_K); *out = B(R_DQ) | B(R_DK) | (rpb ? B(R_DRPB) : 0); break;
    case OP_AV: *in = B(R_ATTN) | B(R_V); *out = B(R_OUT); break;
    case OP_AV_BW: *in = B(R_DOUT) | B(R_ATTN) | B(R_V); *out = B(R_DATTN) | B(R_DV); break;
    case OP_FNA: *in = B(R_Q) | B(R_K) | B(R_V) | (rpb ? B(R_RPB) : 0); *out = B(R_OUT) | B(R_LSE); break;
    default:
        *in = B(R_Q) | B(R_K) | B(R_V) | (rpb ? B(R_RPB) : 0) | B(R_OUT) | B(R_LSE) | B(R_DOUT);
        *out = B(R_DQ) | B(R_DK) | B(R_DV) | (rpb ? B(R_DRPB) : 0);
        break;
    }
}

int tc_setup(tc_io *io, const ref_problem *c, tc_op op, DLDataType dt, tt_layout layout,
             DLDeviceType dev, uint64_t *rng)
{
    unsigned in, out;
    memset(io, 0, sizeof *io);
    io->r = *c;
    io->op = op;
    if (!is_fused(op)) { io->r.Hkv = io->r.H; if (op == OP_QK || op == OP_QK_BW) io->r.Dv = io->r.D; }
    if (io->r.scale == 0) io->r.scale = 1.0 / sqrt((double)io->r.D);
    tc_params(c, &io->params);
    op_roles(op, c->has_rpb, &in, &out);
    io->outputs = out;
    for (int x = 0; x < R_COUNT; x++) {
        int64_t shape[TT_MAXDIM];
        int token, nd;
        DLDataType xt = dt;
        if (!((in | out) & B(x))) continue;
        nd = role_shape(&io->r, (tc_role)x, shape, &token);
        if (x == R_LSE) { xt.code = kDLFloat; xt.bits = 32; }
        io->t[x] = tt_new(nd, shape, xt, layout, token, dev);
        if (io->t[x] == NULL) { tc_teardown(io); return 0; }
        if (in & B(x)) tt_fill_random(io->t[x], rng, x == R_ATTN ? 0.5 : 1.0);
    }
    if (op == OP_FNA_BW) {
        /* out and lse must be the forward's: take them from the reference */
        double *q = tt_to_double(io->t[R_Q]), *k = tt_to_double(io->t[R_K]),
               *v = tt_to_double(io->t[R_V]);
        double *rpb = io->t[R_RPB] ? tt_to_double(io->t[R_RPB]) : NULL;
        double *o = malloc(sizeof(double) * (size_t)io->t[R_OUT]->numel);
        double *l = malloc(sizeof(double) * (size_t)io->t[R_LSE]->numel);
        ref_fna(&io->r, q, k, v, rpb, o, l);
        for (int64_t i = 0; i < io->t[R_OUT]->numel; i++) tt_set(io->t[R_OUT], i, o[i]);
        for (int64_t i = 0; i < io->t[R_LSE]->numel; i++) tt_set(io->t[R_LSE], i, l[i]);
        tt_upload(io->t[R_OUT]);
        tt_upload(io->t[R_LSE]);
        free(q); free(k); free(v); free(rpb); free(o); free(l);
    }
    return 1;
}

void tc_teardown(tc_io *io)
{
    for (int x = 0; x < R_COUNT; x++) { tt_free(io->t[x]); io->t[x] = NULL; }
}

natten_status tc_call(natten_context *ctx, tc_op op, const natten_params *p, DLTensor *const T[R_COUNT])
{
    switch (op) {
    case OP_QK: return natten_qk_forward(ctx, p, T[R_Q], T[R_K], T[R_RPB], T[R_ATTN]);
    case OP_QK_BW: return natten_qk_backward(ctx, p, T[R_DATTN], T[R_Q], T[R_K], T[R_DQ], T[R_DK], T[R_DRPB]);
    case OP_AV: return natten_av_forward(ctx, p, T[R_ATTN], T[R_V], T[R_OUT]);
    case OP_AV_BW: return natten_av_backward(ctx, p, T[R_DOUT], T[R_ATTN], T[R_V], T[R_DATTN], T[R_DV]);
    case OP_FNA: return natten_fna_forward(ctx, p, T[R_Q], T[R_K], T[R_V], T[R_RPB], T[R_OUT], T[R_LSE]);
    default:
        return natten_fna_backward(ctx, p, T[R_Q], T[R_K], T[R_V], T[R_RPB], T[R_OUT], T[R_LSE], T[R_DOUT],
                                   T[R_DQ], T[R_DK], T[R_DV], T[R_DRPB]);
    }
}

natten_status tc_run(natten_context *ctx, tc_io *io)
{
    natten_status st;
    DLTensor *T[R_COUNT] = {0};
    for (int x = 0; x < R_COUNT; x++) {
        if (io->t[x] == NULL) continue;
        if (io->outputs & B(x)) tt_poison(io->t[x]);
        T[x] = &io->t[x]->t;
    }
    st = tc_call(ctx, io->op, &io->params, T);
    for (int x = 0; x < R_COUNT; x++)
        if (io->t[x] && (io->outputs & B(x))) tt_download(io->t[x]);
    return st;
}

void tc_reference(const tc_io *io, double *ref[R_COUNT])
{
    double *in[R_COUNT] = {0};
    const ref_problem *r = &io->r;
    for (int x = 0; x < R_COUNT; x++) {
        ref[x] = NULL;
        if (io->t[x] == NULL) continue;
        if (io->outputs & B(x)) ref[x] = malloc(sizeof(double) * (size_t)(io->t[x]->numel + 1));
        else in[x] = tt_to_double(io->t[x]);
    }
    switch (io->op) {
    case OP_QK: ref_qk(r, in[R_Q], in[R_K], in[R_RPB], ref[R_ATTN]); break;
    case OP_QK_BW: ref_qk_backward(r, in[R_DATTN], in[R_Q], in[R_K], ref[R_DQ], ref[R_DK], ref[R_DRPB]); break;
    case OP_AV: ref_av(r, in[R_ATTN], in[R_V], ref[R_OUT]); break;
    case OP_AV_BW: ref_av_backward(r, in[R_DOUT], in[R_ATTN], in[R_V], ref[R_DATTN], ref[R_DV]); break;
    case OP_FNA: ref_fna(r, in[R_Q], in[R_K], in[R_V], in[R_RPB], ref[R_OUT], ref[R_LSE]); break;
    default:
        ref_fna_backward(r, in[R_Q], in[R_K], in[R_V], in[R_RPB], in[R_OUT], in[R_LSE], in[R_DOUT],
                         ref[R_DQ], ref[R_DK], ref[R_DV], ref[R_DRPB]);
        break;
    }
    for (int x = 0; x < R_COUNT; x++) free(in[x]);
}

int tc_compare_runs(const tc_io *io, const tc_io *ref, double limit, tt_err *e)
{
    for (int x = 0; x < R_COUNT; x++) {
        double *want;
        if (!io->t[x] || !(io->outputs & B(x))) continue;
        want = tt_to_double(ref->t[x]);
        *e = tt_compare(io->t[x], want);
        free(want);
        if (!(e->bad == 0 && e->norm <= limit)) return x; /* a NaN norm fails too */
    }
    return -1;
}
