"""NeighborhoodAttention1D/2D/3D as NAT and DiNAT use them (NATTEN 0.14-0.17).

Same constructor arguments, parameter names (qkv, rpb, proj) and state_dict
keys as NATTEN's modules, so their checkpoints load unchanged.  Input and
output are channels-last: ``[B, L, C]``, ``[B, X, Y, C]``, ``[B, X, Y, Z, C]``.

Two equivalent paths: the fused op (na{n}d, one kernel, lse kept for backward)
and the unfused pair (na{n}d_qk -> softmax -> dropout -> na{n}d_av).  The fused
one runs unless attention dropout is active (training with attn_drop > 0) or
``use_fused_na(False)`` was called.
"""
import torch
from torch import nn
from torch.nn.functional import pad

from . import _lib, functional as F  # noqa: F401  (functional registers nothing; _torch does)
from . import _torch  # noqa: F401  registers the custom ops

__all__ = ["NeighborhoodAttention1D", "NeighborhoodAttention2D", "NeighborhoodAttention3D",
           "use_fused_na", "is_fused_na_enabled"]

_fused = {"enabled": True}


def use_fused_na(mode=True):
    """Let the modules use the fused op when attention dropout is inactive (default on)."""
    _fused["enabled"] = bool(mode)


def is_fused_na_enabled():
    return _fused["enabled"]


_QK = {1: F.na1d_qk, 2: F.na2d_qk, 3: F.na3d_qk}
_AV = {1: F.na1d_av, 2: F.na2d_av, 3: F.na3d_av}
_NA = {1: F.na1d, 2: F.na2d, 3: F.na3d}


class _NeighborhoodAttentionND(nn.Module):
    rank = 0

    def __init__(self, dim, num_heads, kernel_size, dilation=1, is_causal=False, rel_pos_bias=False,
                 qkv_bias=True, qk_scale=None, attn_drop=0.0, proj_drop=0.0, *, bias=None):
        super().__init__()
        n = self.rank
        if bias is not None:     # NATTEN 0.14's name for rel_pos_bias
            rel_pos_bias = bias
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = qk_scale or self.head_dim ** -0.5
        p = _lib.make_params(n, kernel_size, dilation, 1, is_causal)
        self.kernel_size, self.dilation, self.is_causal = p[0], p[1], p[3]
        # NATTEN's name for the smallest extent a window fits in, per axis.
        self.window_size = tuple(k * d for k, d in zip(self.kernel_size, self.dilation))

        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        if rel_pos_bias:
            self.rpb = nn.Parameter(torch.zeros(num_heads, *(2 * k - 1 for k in self.kernel_size)))
            nn.init.trunc_normal_(self.rpb, std=0.02, mean=0.0, a=-2.0, b=2.0)
        else:
            self.register_parameter("rpb", None)
        self.attn_drop_rate = attn_drop
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        n = self.rank
        if x.dim() != n + 2:
            raise ValueError(f"{type(self).__name__} expects a {n + 2}-D input [B, *S, C], "
                             f"got shape {tuple(x.shape)}")
        B, *S, C = x.shape
        # NATTEN 0.14-0.17 zero-pad inputs smaller than a window at the end of each
        # axis and crop afterwards; NAT/DiNAT rely on it at their coarsest stages.
        padding = [max(0, w - s) for w, s in zip(self.window_size, S)]
        if any(padding):
            spec = [0, 0]
            for pd in reversed(padding):
                spec += [0, pd]
            x = pad(x, spec)
        Sp = list(x.shape[1:-1])

        qkv = self.qkv(x).reshape(B, *Sp, 3, self.num_heads, self.head_dim)
        use_fused = _fused["enabled"] and not (self.training and self.attn_drop_rate > 0)
        if use_fused:
            # [3, B, *S, H, D], heads-last
            qkv = qkv.permute(n + 1, 0, *range(1, n + 1), n + 2, n + 3)
            q, k, v = qkv[0], qkv[1], qkv[2]
            out = _NA[n](q, k, v, self.kernel_size, dilation=self.dilation, is_causal=self.is_causal,
                         scale=self.scale, rpb=self.rpb)
            out = out.reshape(B, *Sp, C)
        else:
            # [3, B, H, *S, D], heads-first
            qkv = qkv.permute(n + 1, 0, n + 2, *range(1, n + 1), n + 3)
            q, k, v = qkv[0], qkv[1], qkv[2]
            q = q * self.scale
            attn = _QK[n](q, k, self.kernel_size, self.dilation, is_causal=self.is_causal, rpb=self.rpb)
            attn = attn.softmax(dim=-1)
            attn = self.attn_drop(attn)
            out = _AV[n](attn, v, self.kernel_size, self.dilation, is_causal=self.is_causal)
            out = out.permute(0, *range(2, n + 2), 1, n + 2).reshape(B, *Sp, C)
        if any(padding):
            out = out[(slice(None),) + tuple(slice(0, s) for s in S)]
        return self.proj_drop(self.proj(out))

    def extra_repr(self):
        return (f"head_dim={self.head_dim}, num_heads={self.num_heads}, "
                f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"is_causal={self.is_causal}, has_bias={self.rpb is not None}")


class NeighborhoodAttention1D(_NeighborhoodAttentionND):
    """Neighborhood attention over [B, L, C]."""
    rank = 1


class NeighborhoodAttention2D(_NeighborhoodAttentionND):
    """Neighborhood attention over [B, X, Y, C] (NAT, DiNAT)."""
    rank = 2


class NeighborhoodAttention3D(_NeighborhoodAttentionND):
    """Neighborhood attention over [B, X, Y, Z, C]."""
    rank = 3
