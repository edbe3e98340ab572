"""Low-level ops without autograd, for any DLPack array (NumPy, torch, ...).

``params`` comes from ``make_params(rank, kernel_size, dilation=1, stride=1,
is_causal=False, scale=None)``.  Layouts: unfused ops heads-first
``[B, H, *S, D]``, fused ops heads-last ``[B, *S, H, D]`` (see natten/_lib.py).
Each returns freshly allocated outputs in the inputs' framework:

    qk_forward(q, k, rpb, params)                          -> attn
    qk_backward(d_attn, q, k, params, with_rpb)            -> (d_q, d_k, d_rpb | None)
    av_forward(attn, v, params)                            -> out
    av_backward(d_out, attn, v, params)                    -> (d_attn, d_v)
    fna_forward(q, k, v, rpb, params, with_lse=True)       -> (out, lse | None)
    fna_backward(q, k, v, rpb, out, lse, d_out, params, with_rpb)
                                                           -> (d_q, d_k, d_v, d_rpb | None)
"""
from ._lib import (av_backward, av_forward, fna_backward, fna_forward, make_params, qk_backward,
                   qk_forward)

__all__ = ["make_params", "qk_forward", "qk_backward", "av_forward", "av_backward", "fna_forward",
           "fna_backward"]
