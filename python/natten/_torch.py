"""torch integration: the ops as torch.library custom ops, with fake (meta)
implementations for torch.compile and autograd formulas that call libnatten's
backward ops.

Ops (namespace ``libnatten``, so that they never clash with NATTEN's own):
  na_qk(query, key, rpb?, kernel_size, dilation, stride, is_causal) -> attn        heads-first
  na_av(attn, value, kernel_size, dilation, stride, is_causal) -> out             heads-first
  na_fused(query, key, value, rpb?, kernel_size, dilation, stride, is_causal, scale?)
      -> (out, lse)                                                               heads-last
and their backward ops.  Every output is a fresh contiguous tensor (the fake
implementations promise exactly that).  Only first derivatives are provided:
the backward ops are not themselves differentiable.
"""
import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from . import _lib

_NS = "libnatten"


def _params(kernel_size, dilation, stride, is_causal, scale=None):
    return (tuple(int(k) for k in kernel_size), tuple(int(d) for d in dilation),
            tuple(int(s) for s in stride), tuple(bool(c) for c in is_causal), scale)


# --------------------------------------------------------------------------- QK

@torch.library.custom_op(f"{_NS}::na_qk", mutates_args=())
def na_qk(query: Tensor, key: Tensor, rpb: Optional[Tensor], kernel_size: List[int],
          dilation: List[int], stride: List[int], is_causal: List[bool]) -> Tensor:
    return _lib.qk_forward(query, key, rpb, _params(kernel_size, dilation, stride, is_causal))


@na_qk.register_fake
def _(query, key, rpb, kernel_size, dilation, stride, is_causal):
    return query.new_empty(tuple(query.shape[:-1]) + (math.prod(kernel_size),))


@torch.library.custom_op(f"{_NS}::na_qk_backward", mutates_args=())
def na_qk_backward(d_attn: Tensor, query: Tensor, key: Tensor, with_rpb: bool,
                   kernel_size: List[int], dilation: List[int], stride: List[int],
                   is_causal: List[bool]) -> Tuple[Tensor, Tensor, Tensor]:
    d_q, d_k, d_rpb = _lib.qk_backward(d_attn, query, key,
                                       _params(kernel_size, dilation, stride, is_causal), with_rpb)
    return d_q, d_k, d_rpb if d_rpb is not None else query.new_empty((0,))


@na_qk_backward.register_fake
def _(d_attn, query, key, with_rpb, kernel_size, dilation, stride, is_causal):
    rpb = (query.shape[1],) + tuple(2 * k - 1 for k in kernel_size) if with_rpb else (0,)
    return query.new_empty(query.shape), key.new_empty(key.shape), query.new_empty(rpb)


def _qk_setup(ctx, inputs, output):
    query, key, rpb, kernel_size, dilation, stride, is_causal = inputs
    ctx.save_for_backward(query, key)
    ctx.with_rpb = rpb is not None
    ctx.nparams = (kernel_size, dilation, stride, is_causal)


def _qk_backward(ctx, grad):
    query, key = ctx.saved_tensors
    d_q, d_k, d_rpb = na_qk_backward(grad, query, key, ctx.with_rpb, *ctx.nparams)
    return d_q, d_k, (d_rpb if ctx.with_rpb else None), None, None, None, None


na_qk.register_autograd(_qk_backward, setup_context=_qk_setup)


# --------------------------------------------------------------------------- AV

@torch.library.custom_op(f"{_NS}::na_av", mutates_args=())
def na_av(attn: Tensor, value: Tensor, kernel_size: List[int], dilation: List[int],
          stride: List[int], is_causal: List[bool]) -> Tensor:
    return _lib.av_forward(attn, value, _params(kernel_size, dilation, stride, is_causal))


@na_av.register_fake
def _(attn, value, kernel_size, dilation, stride, is_causal):
    return value.new_empty(tuple(attn.shape[:-1]) + (value.shape[-1],))


@torch.library.custom_op(f"{_NS}::na_av_backward", mutates_args=())
def na_av_backward(d_out: Tensor, attn: Tensor, value: Tensor, kernel_size: List[int],
                   dilation: List[int], stride: List[int],
                   is_causal: List[bool]) -> Tuple[Tensor, Tensor]:
    return _lib.av_backward(d_out, attn, value, _params(kernel_size, dilation, stride, is_causal))


@na_av_backward.register_fake
def _(d_out, attn, value, kernel_size, dilation, stride, is_causal):
    return attn.new_empty(attn.shape), value.new_empty(value.shape)


def _av_setup(ctx, inputs, output):
    attn, value, kernel_size, dilation, stride, is_causal = inputs
    ctx.save_for_backward(attn, value)
    ctx.nparams = (kernel_size, dilation, stride, is_causal)


def _av_backward(ctx, grad):
    attn, value = ctx.saved_tensors
    d_attn, d_v = na_av_backward(grad, attn, value, *ctx.nparams)
    return d_attn, d_v, None, None, None, None


na_av.register_autograd(_av_backward, setup_context=_av_setup)


# --------------------------------------------------------------------------- fused

@torch.library.custom_op(f"{_NS}::na_fused", mutates_args=())
def na_fused(query: Tensor, key: Tensor, value: Tensor, rpb: Optional[Tensor],
             kernel_size: List[int], dilation: List[int], stride: List[int],
             is_causal: List[bool], scale: Optional[float]) -> Tuple[Tensor, Tensor]:
    return _lib.fna_forward(query, key, value, rpb,
                            _params(kernel_size, dilation, stride, is_causal, scale))


@na_fused.register_fake
def _(query, key, value, rpb, kernel_size, dilation, stride, is_causal, scale):
    out = query.new_empty(tuple(query.shape[:-1]) + (value.shape[-1],))
    lse = query.new_empty(tuple(query.shape[:-1]), dtype=torch.float32)
    return out, lse


@torch.library.custom_op(f"{_NS}::na_fused_backward", mutates_args=())
def na_fused_backward(d_out: Tensor, query: Tensor, key: Tensor, value: Tensor,
                      rpb: Optional[Tensor], out: Tensor, lse: Tensor, kernel_size: List[int],
                      dilation: List[int], stride: List[int], is_causal: List[bool],
                      scale: Optional[float]) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    d_q, d_k, d_v, d_rpb = _lib.fna_backward(
        query, key, value, rpb, out, lse, d_out,
        _params(kernel_size, dilation, stride, is_causal, scale), rpb is not None)
    return d_q, d_k, d_v, d_rpb if d_rpb is not None else query.new_empty((0,))


@na_fused_backward.register_fake
def _(d_out, query, key, value, rpb, out, lse, kernel_size, dilation, stride, is_causal, scale):
    d_rpb = rpb.new_empty(rpb.shape) if rpb is not None else query.new_empty((0,))
    return query.new_empty(query.shape), key.new_empty(key.shape), value.new_empty(value.shape), d_rpb


def _fused_setup(ctx, inputs, output):
    query, key, value, rpb, kernel_size, dilation, stride, is_causal, scale = inputs
    out, lse = output
    ctx.save_for_backward(query, key, value, rpb, out, lse)
    ctx.nparams = (kernel_size, dilation, stride, is_causal, scale)
    # As in NATTEN, the logsumexp is an auxiliary output: no gradient flows through it.
    ctx.mark_non_differentiable(lse)


def _fused_backward(ctx, grad_out, grad_lse):
    query, key, value, rpb, out, lse = ctx.saved_tensors
    d_q, d_k, d_v, d_rpb = na_fused_backward(grad_out, query, key, value, rpb, out, lse, *ctx.nparams)
    return d_q, d_k, d_v, (d_rpb if rpb is not None else None), None, None, None, None, None


na_fused.register_autograd(_fused_backward, setup_context=_fused_setup)
