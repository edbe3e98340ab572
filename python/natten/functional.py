"""NATTEN-compatible functional API.

Every function takes NumPy arrays or torch tensors (CPU or CUDA) and returns
the same kind.  torch tensors get autograd and torch.compile support (through
the custom ops in natten/_torch.py); other arrays get plain forward results
(their backward ops are in ``natten.ops``).

Unfused ops, heads-first ``[B, H, *S, D]`` (NATTEN <= 0.17):
    na{1,2,3}d_qk(query, key, kernel_size, dilation=1, is_causal=False, rpb=None, stride=1)
        -> attn [B, H, *S, K1*..*Kn]      (no scaling: pre-scale query)
    na{1,2,3}d_av(attn, value, kernel_size, dilation=1, is_causal=False, stride=1)
        -> out [B, H, *S, D]
Fused ops, heads-last ``[B, *S, H, D]`` (NATTEN >= 0.17, argument order of 0.20+):
    na{1,2,3}d(query, key, value, kernel_size, stride=1, dilation=1, is_causal=False,
               scale=None, rpb=None, return_lse=False) -> out | (out, lse)
NATTEN 0.14 names: natten{1,2}dqkrpb, natten{1,2}dqk, natten{1,2}dav; 0.15 names
na{1,2}d_qk_with_bias.

kernel_size, dilation, stride: an int or one int per spatial axis;
is_causal: a bool or one bool per axis.
"""
from . import _lib

__all__ = [
    "na1d_qk", "na2d_qk", "na3d_qk", "na1d_av", "na2d_av", "na3d_av", "na1d", "na2d", "na3d",
    "natten1dqkrpb", "natten1dqk", "natten1dav", "natten2dqkrpb", "natten2dqk", "natten2dav",
    "na1d_qk_with_bias", "na2d_qk_with_bias",
]


def _t():
    from . import _torch
    return _torch


def _cast(x, like):
    """rpb to the key's dtype, attn to the value's dtype (as NATTEN 0.17 does)."""
    if x is None or x.dtype == like.dtype:
        return x
    return x.to(like.dtype) if _lib.is_torch(x) else x.astype(like.dtype)


# NATTEN 0.21's performance knobs: accepted and ignored (libnatten picks backends and tiles;
# the result does not depend on them).
_IGNORED_0_21 = frozenset(["backend", "q_tile_shape", "kv_tile_shape", "backward_q_tile_shape",
                           "backward_kv_tile_shape", "backward_kv_splits", "backward_use_pt_reduction",
                           "run_persistent_kernel", "kernel_schedule", "torch_compile",
                           "attention_kwargs", "xformers_kwargs"])


def _extras(op, additional_keys=None, additional_values=None, **kw):
    if not kw and additional_keys is None and additional_values is None:
        return
    unknown = set(kw) - _IGNORED_0_21
    if unknown:
        raise TypeError(f"{op}() got unexpected keyword argument(s) {sorted(unknown)}")
    if additional_keys is not None or additional_values is not None:
        raise NotImplementedError(f"{op}: additional_keys/additional_values (extra tokens) are not "
                                  "supported; attend to them densely and merge the results")


def _qk(rank, op, query, key, kernel_size, dilation, is_causal, rpb, stride):
    p = _lib.make_params(rank, kernel_size, dilation, stride, is_causal)
    rpb = _cast(rpb, key)
    if _lib.is_torch(query):
        _lib._check_rank(query, rank + 3, "query", _lib._hf(rank), op)
        _lib._check_rank(key, rank + 3, "key", _lib._hf(rank), op)
        return _t().na_qk(query, key, rpb, list(p[0]), list(p[1]), list(p[2]), list(p[3]))
    return _lib.qk_forward(query, key, rpb, p, op=op)


def _av(rank, op, attn, value, kernel_size, dilation, is_causal, stride):
    p = _lib.make_params(rank, kernel_size, dilation, stride, is_causal)
    attn = _cast(attn, value)
    if _lib.is_torch(value):
        _lib._check_rank(attn, rank + 3, "attn", "[B, H, " + ", ".join("XYZ"[:rank]) + ", K]", op)
        _lib._check_rank(value, rank + 3, "value", _lib._hf(rank), op)
        return _t().na_av(attn, value, list(p[0]), list(p[1]), list(p[2]), list(p[3]))
    return _lib.av_forward(attn, value, p, op=op)


def _fused(rank, op, query, key, value, kernel_size, stride, dilation, is_causal, scale, rpb,
           return_lse):
    p = _lib.make_params(rank, kernel_size, dilation, stride, is_causal, scale)
    rpb = _cast(rpb, query)
    if _lib.is_torch(query):
        for t, name in ((query, "query"), (key, "key"), (value, "value")):
            _lib._check_rank(t, rank + 3, name, _lib._hl(rank), op)
        out, lse = _t().na_fused(query, key, value, rpb, list(p[0]), list(p[1]), list(p[2]),
                                 list(p[3]), p[4])
    else:
        out, lse = _lib.fna_forward(query, key, value, rpb, p, with_lse=return_lse, op=op)
    return (out, lse) if return_lse else out


# --------------------------------------------------------------------------- unfused

def na1d_qk(query, key, kernel_size, dilation=1, is_causal=False, rpb=None, stride=1, **kw):
    """attn[B, H, L, K] = query . key over each query's window (+ rpb[H, 2K-1])."""
    _extras("na1d_qk", **kw)
    return _qk(1, "na1d_qk", query, key, kernel_size, dilation, is_causal, rpb, stride)


def na2d_qk(query, key, kernel_size, dilation=1, is_causal=False, rpb=None, stride=1, **kw):
    """attn[B, H, X, Y, KX*KY] = query . key over each query's window (+ rpb)."""
    _extras("na2d_qk", **kw)
    return _qk(2, "na2d_qk", query, key, kernel_size, dilation, is_causal, rpb, stride)


def na3d_qk(query, key, kernel_size, dilation=1, is_causal=False, rpb=None, stride=1, **kw):
    """attn[B, H, X, Y, Z, KX*KY*KZ] = query . key over each query's window (+ rpb)."""
    _extras("na3d_qk", **kw)
    return _qk(3, "na3d_qk", query, key, kernel_size, dilation, is_causal, rpb, stride)


def na1d_av(attn, value, kernel_size, dilation=1, is_causal=False, stride=1, **kw):
    """out[B, H, L, D] = sum over window slots of attn * value."""
    _extras("na1d_av", **kw)
    return _av(1, "na1d_av", attn, value, kernel_size, dilation, is_causal, stride)


def na2d_av(attn, value, kernel_size, dilation=1, is_causal=False, stride=1, **kw):
    _extras("na2d_av", **kw)
    return _av(2, "na2d_av", attn, value, kernel_size, dilation, is_causal, stride)


def na3d_av(attn, value, kernel_size, dilation=1, is_causal=False, stride=1, **kw):
    _extras("na3d_av", **kw)
    return _av(3, "na3d_av", attn, value, kernel_size, dilation, is_causal, stride)


# --------------------------------------------------------------------------- fused

def na1d(query, key, value, kernel_size, stride=1, dilation=1, is_causal=False, scale=None,
         rpb=None, return_lse=False, **kw):
    """softmax(scale * q.k (+ rpb)) v over each query's window; [B, L, H, D] heads-last.
    scale defaults to D**-0.5 (an explicit 0.0 is honoured).  return_lse adds the
    natural-log logsumexp [B, L, H] (float32; no gradient flows through it)."""
    _extras("na1d", **kw)
    return _fused(1, "na1d", query, key, value, kernel_size, stride, dilation, is_causal, scale, rpb,
                  return_lse)


def na2d(query, key, value, kernel_size, stride=1, dilation=1, is_causal=False, scale=None,
         rpb=None, return_lse=False, **kw):
    _extras("na2d", **kw)
    return _fused(2, "na2d", query, key, value, kernel_size, stride, dilation, is_causal, scale, rpb,
                  return_lse)


def na3d(query, key, value, kernel_size, stride=1, dilation=1, is_causal=False, scale=None,
         rpb=None, return_lse=False, **kw):
    _extras("na3d", **kw)
    return _fused(3, "na3d", query, key, value, kernel_size, stride, dilation, is_causal, scale, rpb,
                  return_lse)


# --------------------------------------------------------------------------- NATTEN 0.14/0.15 names

def natten1dqkrpb(query, key, rpb, kernel_size, dilation):
    return na1d_qk(query, key, kernel_size, dilation, rpb=rpb)


def natten1dqk(query, key, kernel_size, dilation):
    return na1d_qk(query, key, kernel_size, dilation)


def natten1dav(attn, value, kernel_size, dilation):
    return na1d_av(attn, value, kernel_size, dilation)


def natten2dqkrpb(query, key, rpb, kernel_size, dilation):
    return na2d_qk(query, key, kernel_size, dilation, rpb=rpb)


def natten2dqk(query, key, kernel_size, dilation):
    return na2d_qk(query, key, kernel_size, dilation)


def natten2dav(attn, value, kernel_size, dilation):
    return na2d_av(attn, value, kernel_size, dilation)


def na1d_qk_with_bias(query, key, bias, kernel_size, dilation):
    return na1d_qk(query, key, kernel_size, dilation, rpb=bias)


def na2d_qk_with_bias(query, key, bias, kernel_size, dilation):
    return na2d_qk(query, key, kernel_size, dilation, rpb=bias)
