"""NATTEN 0.14's module path: `from natten.natten1d import NeighborhoodAttention1D`.

The 0.14 class had the relative positional bias on by default (argument `bias=True`), and
NAT/DiNAT checkpoints of that era hold an `rpb` tensor; this class keeps that default.
`natten.NeighborhoodAttention1D` follows 0.15+ (`rel_pos_bias=False`).
"""
from .modules import NeighborhoodAttention1D as _NA


class NeighborhoodAttention1D(_NA):
    def __init__(self, dim, num_heads, kernel_size, dilation=1, bias=True, qkv_bias=True,
                 qk_scale=None, attn_drop=0.0, proj_drop=0.0):
        super().__init__(dim, num_heads, kernel_size, dilation=dilation, rel_pos_bias=bias,
                         qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop,
                         proj_drop=proj_drop)


__all__ = ["NeighborhoodAttention1D"]
