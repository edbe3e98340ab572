/*
 * dispatch.c - the public op entry points.  Each call is validated once
 * (validate.c), then handed to the backend and configuration select.c picks:
 * the forced backend, a remembered or measured winner, or the first backend in
 * registry order that runs on the tensors' device, is usable here, has the op
 * and whose supports() accepts the problem.
 */
#include "natten-impl.h"
#include "natten-context.h"

#include <stdio.h>
#include <string.h>

/* 1 if every output the call writes is empty: nothing to compute.  (Looks for
 * a zero extent rather than multiplying: the other extents of an empty tensor
 * may multiply past int64.) */
static int nothing_to_write(const natten_problem *p)
{
    for (int a = 0; a < NATTEN_ARG_COUNT; a++) {
        int empty = 0;
        if (!natten_has(p, (natten_arg)a) || !natten_arg_is_output(p->op, (natten_arg)a)) continue;
        for (int i = 0; i < 6; i++) empty |= p->arg[a].shape[i] == 0;
        if (!empty) return 0;
    }
    return 1;
}

static natten_status run(natten_context *ctx, natten_op op, const natten_params *params,
                         const DLTensor *const t[NATTEN_ARG_COUNT])
{
    natten_problem p;
    natten_exec x;
    const natten_backend *b;
    natten_status st;

    natten_clear_error();
    if (ctx == NULL) return natten_error(NATTEN_ERROR_INVALID_ARGUMENT, "%s: ctx is NULL", natten_op_name(op));
    if ((st = natten_validate(&p, op, params, t))) {
        if (ctx->verbose) fprintf(stderr, "natten: %s: %s\n", natten_op_name(op), natten_last_error());
        return st;
    }
    if (nothing_to_write(&p)) return NATTEN_SUCCESS;
    if ((st = natten_select(ctx, &p, &b, &x.config))) return st;
    x.num_threads = ctx->num_threads;
    x.stream = ctx->stream;
    st = b->op[op](&p, &x);
    if (st == NATTEN_SUCCESS) atomic_store(&ctx->last, b);
    else if (ctx->verbose) fprintf(stderr, "natten: %s on %s failed: %s\n", natten_op_name(op), b->name,
                                   natten_last_error());
    return st;
}

natten_status natten_qk_forward(natten_context *ctx, const natten_params *p, const DLTensor *q,
                                const DLTensor *k, const DLTensor *rpb, DLTensor *attn)
{
    const DLTensor *t[NATTEN_ARG_COUNT] = {0};
    t[NATTEN_ARG_Q] = q; t[NATTEN_ARG_K] = k; t[NATTEN_ARG_RPB] = rpb; t[NATTEN_ARG_ATTN] = attn;
    return run(ctx, NATTEN_OP_QK_FORWARD, p, t);
}

natten_status natten_qk_backward(natten_context *ctx, const natten_params *p, const DLTensor *d_attn,
                                 const DLTensor *q, const DLTensor *k, DLTensor *d_q, DLTensor *d_k,
                                 DLTensor *d_rpb)
{
    const DLTensor *t[NATTEN_ARG_COUNT] = {0};
    t[NATTEN_ARG_D_ATTN] = d_attn; t[NATTEN_ARG_Q] = q; t[NATTEN_ARG_K] = k;
    t[NATTEN_ARG_D_Q] = d_q; t[NATTEN_ARG_D_K] = d_k; t[NATTEN_ARG_D_RPB] = d_rpb;
    return run(ctx, NATTEN_OP_QK_BACKWARD, p, t);
}

natten_status natten_av_forward(natten_context *ctx, const natten_params *p, const DLTensor *attn,
                                const DLTensor *v, DLTensor *out)
{
    const DLTensor *t[NATTEN_ARG_COUNT] = {0};
    t[NATTEN_ARG_ATTN] = attn; t[NATTEN_ARG_V] = v; t[NATTEN_ARG_OUT] = out;
    return run(ctx, NATTEN_OP_AV_FORWARD, p, t);
}

natten_status natten_av_backward(natten_context *ctx, const natten_params *p, const DLTensor *d_out,
                                 const DLTensor *attn, const DLTensor *v, DLTensor *d_attn,
                                 DLTensor *d_v)
{
    const DLTensor *t[NATTEN_ARG_COUNT] = {0};
    t[NATTEN_ARG_D_OUT] = d_out; t[NATTEN_ARG_ATTN] = attn; t[NATTEN_ARG_V] = v;
    t[NATTEN_ARG_D_ATTN] = d_attn; t[NATTEN_ARG_D_V] = d_v;
    return run(ctx, NATTEN_OP_AV_BACKWARD, p, t);
}

natten_status natten_fna_forward(natten_context *ctx, const natten_params *p, const DLTensor *q,
                                 const DLTensor *k, const DLTensor *v, const DLTensor *rpb,
                                 DLTensor *out, DLTensor *lse)
{
    const DLTensor *t[NATTEN_ARG_COUNT] = {0};
    t[NATTEN_ARG_Q] = q; t[NATTEN_ARG_K] = k; t[NATTEN_ARG_V] = v; t[NATTEN_ARG_RPB] = rpb;
    t[NATTEN_ARG_OUT] = out; t[NATTEN_ARG_LSE] = lse;
    return run(ctx, NATTEN_OP_FNA_FORWARD, p, t);
}

natten_status natten_fna_backward(natten_context *ctx, const natten_params *p, const DLTensor *q,
                                  const DLTensor *k, const DLTensor *v, const DLTensor *rpb,
                                  const DLTensor *out, const DLTensor *lse, const DLTensor *d_out,
                                  DLTensor *d_q, DLTensor *d_k, DLTensor *d_v, DLTensor *d_rpb)
{
    const DLTensor *t[NATTEN_ARG_COUNT] = {0};
    t[NATTEN_ARG_Q] = q; t[NATTEN_ARG_K] = k; t[NATTEN_ARG_V] = v; t[NATTEN_ARG_RPB] = rpb;
    t[NATTEN_ARG_OUT] = out; t[NATTEN_ARG_LSE] = lse; t[NATTEN_ARG_D_OUT] = d_out;
    t[NATTEN_ARG_D_Q] = d_q; t[NATTEN_ARG_D_K] = d_k; t[NATTEN_ARG_D_V] = d_v; t[NATTEN_ARG_D_RPB] = d_rpb;
    return run(ctx, NATTEN_OP_FNA_BACKWARD, p, t);
}
