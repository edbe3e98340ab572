"""An independent NumPy reference for neighborhood attention, written from the
spec (shared/spec/NEIGHBORHOOD_ATTENTION.md §1.2-1.4, §1.7, §2, §3.3-3.4,
§4.3-4.4): build each query's neighbour set from the per-axis predicate, then
do plain dense (masked) attention in float64.  Shares no code with natten.

Layouts: unfused heads-first [B, H, *S, D]; fused heads-last [B, *S, H, D].
"""
import itertools
import math

import numpy as np


def axis_window(L, K, d, s, causal, i):
    """Neighbours of query i on one axis: list of (key index, slot, rpb index)."""
    g, u = i % d, i // d
    n_g = (L - g + d - 1) // d                    # length of dilation group g
    if causal:
        p = min((u // s) * s + s - 1, n_g - 1)    # leader: last of its stride group
        a, b = max(p - K + 1, 0), u + 1
    else:
        p = min((u // s) * s + s // 2, n_g - 1)   # leader: middle of its stride group
        a = min(max(p - K // 2, 0), n_g - K)
        b = a + K
    return [(pp * d + g, pp - a, pp - u + K - 1) for pp in range(a, b)]


class Neighbourhood:
    """For spatial shape S and per-axis K, d, s, causal: nbr[i, t] = flat key index of
    slot t of flat query i (-1 if the slot is invalid), and bias index per slot."""

    def __init__(self, S, K, d, s, causal):
        n = len(S)
        self.S, self.K = tuple(S), tuple(K)
        self.tokens, self.window = math.prod(S), math.prod(K)
        self.nbr = -np.ones((self.tokens, self.window), dtype=np.int64)
        self.eidx = np.zeros((self.tokens, self.window, n), dtype=np.int64)
        for qi, q in enumerate(itertools.product(*(range(x) for x in S))):
            per_axis = [axis_window(S[a], K[a], d[a], s[a], causal[a], q[a]) for a in range(n)]
            for combo in itertools.product(*per_axis):
                key = np.ravel_multi_index(tuple(c[0] for c in combo), S)
                slot = np.ravel_multi_index(tuple(c[1] for c in combo), K)
                self.nbr[qi, slot] = key
                self.eidx[qi, slot] = [c[2] for c in combo]
        self.valid = self.nbr >= 0

    def bias(self, rpb):
        """rpb[H, 2K-1..] -> per (h, query, slot) bias [H, T, W]."""
        idx = (slice(None),) + tuple(self.eidx[..., a] for a in range(len(self.S)))
        return rpb[idx]

    def dense(self, per_slot, fill=0.0):
        """[..., T, W] per-slot values -> [..., T, T] dense (fill where not a neighbour)."""
        out = np.full(per_slot.shape[:-1] + (self.tokens,), fill, dtype=np.float64)
        ti, tw = np.nonzero(self.valid)
        out[..., ti, self.nbr[ti, tw]] = per_slot[..., ti, tw]
        return out

    def gather(self, dense, fill):
        """[..., T, T] dense -> [..., T, W] per slot (fill for invalid slots)."""
        out = np.full(dense.shape[:-1] + (self.window,), fill, dtype=np.float64)
        ti, tw = np.nonzero(self.valid)
        out[..., ti, tw] = dense[..., ti, self.nbr[ti, tw]]
        return out

    def mask(self):
        m = np.zeros((self.tokens, self.tokens), dtype=bool)
        ti, tw = np.nonzero(self.valid)
        m[ti, self.nbr[ti, tw]] = True
        return m

    def rpb_grad(self, d_bias, rpb_shape):
        """Scatter-add per (h, query, slot) gradient [H, T, W] into rpb's shape."""
        g = np.zeros(rpb_shape, dtype=np.float64)
        ti, tw = np.nonzero(self.valid)
        for h in range(rpb_shape[0]):
            np.add.at(g[h], tuple(self.eidx[ti, tw, a] for a in range(len(self.S))), d_bias[h, ti, tw])
        return g


def _flat_hf(x, n):
    """heads-first [B, H, *S, C] -> [B, H, T, C] float64."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(x.shape[:2] + (-1, x.shape[-1]))


def _flat_hl(x, n):
    """heads-last [B, *S, H, C] -> [B, H, T, C] float64."""
    x = np.asarray(x, dtype=np.float64)
    x = np.moveaxis(x, n + 1, 1)
    return x.reshape(x.shape[:2] + (-1, x.shape[-1]))


def _unflat_hl(x, S):
    """[B, H, T, C] -> heads-last [B, *S, H, C]."""
    x = x.reshape(x.shape[:2] + tuple(S) + x.shape[3:])
    return np.moveaxis(x, 1, len(S) + 1)


def _unflat_hf(x, S):
    return x.reshape(x.shape[:2] + tuple(S) + x.shape[3:])


def qk(q, k, nb, rpb=None):
    """Unfused QK, heads-first; invalid slots are -inf."""
    n = len(nb.S)
    Q, Kt = _flat_hf(q, n), _flat_hf(k, n)
    scores = np.einsum("bhic,bhjc->bhij", Q, Kt)
    a = nb.gather(scores, -np.inf)
    if rpb is not None:
        a = a + np.where(nb.valid, nb.bias(np.asarray(rpb, np.float64)), 0.0)[None]
    return _unflat_hf(a, nb.S)


def qk_backward(d_attn, q, k, nb, rpb_shape=None):
    n = len(nb.S)
    dA = np.where(nb.valid, _flat_hf(d_attn, n), 0.0)
    dense = nb.dense(dA)
    dq = np.einsum("bhij,bhjc->bhic", dense, _flat_hf(k, n))
    dk = np.einsum("bhij,bhic->bhjc", dense, _flat_hf(q, n))
    drpb = nb.rpb_grad(dA.sum(0), rpb_shape) if rpb_shape is not None else None
    return _unflat_hf(dq, nb.S), _unflat_hf(dk, nb.S), drpb


def av(attn, v, nb):
    n = len(nb.S)
    A = np.where(nb.valid, _flat_hf(attn, n), 0.0)
    out = np.einsum("bhij,bhjc->bhic", nb.dense(A), _flat_hf(v, n))
    return _unflat_hf(out, nb.S)


def av_backward(d_out, attn, v, nb):
    n = len(nb.S)
    A = np.where(nb.valid, _flat_hf(attn, n), 0.0)
    dO, V = _flat_hf(d_out, n), _flat_hf(v, n)
    d_attn = nb.gather(np.einsum("bhic,bhjc->bhij", dO, V), 0.0)
    dv = np.einsum("bhij,bhic->bhjc", nb.dense(A), dO)
    return _unflat_hf(d_attn, nb.S), _unflat_hf(dv, nb.S)


def _fused_parts(q, k, v, nb, scale, rpb):
    n = len(nb.S)
    Q, Kt, V = _flat_hl(q, n), _flat_hl(k, n), _flat_hl(v, n)
    hq, hkv = Q.shape[1], Kt.shape[1]
    rep = hq // hkv                     # GQA: query head h reads kv head h // rep
    Kt, V = np.repeat(Kt, rep, axis=1), np.repeat(V, rep, axis=1)
    if scale is None:
        scale = Q.shape[-1] ** -0.5
    z = scale * np.einsum("bhic,bhjc->bhij", Q, Kt)
    if rpb is not None:
        z = z + nb.dense(np.where(nb.valid, nb.bias(np.asarray(rpb, np.float64)), 0.0))[None]
    z = np.where(nb.mask(), z, -np.inf)
    m = z.max(-1, keepdims=True)
    lse = m[..., 0] + np.log(np.exp(z - m).sum(-1))
    P = np.exp(z - lse[..., None])
    return Q, Kt, V, P, lse, scale, rep


def fused(q, k, v, nb, scale=None, rpb=None):
    """(out heads-last, lse [B, *S, H])."""
    Q, Kt, V, P, lse, scale, rep = _fused_parts(q, k, v, nb, scale, rpb)
    out = np.einsum("bhij,bhjc->bhic", P, V)
    lse_hl = np.moveaxis(lse.reshape(lse.shape[:2] + nb.S), 1, -1)
    return _unflat_hl(out, nb.S), lse_hl


def fused_backward(d_out, q, k, v, nb, scale=None, rpb=None):
    """(dq, dk, dv, drpb) for the fused op; heads-last."""
    n = len(nb.S)
    Q, Kt, V, P, lse, scale, rep = _fused_parts(q, k, v, nb, scale, rpb)
    dO = _flat_hl(d_out, n)
    out = np.einsum("bhij,bhjc->bhic", P, V)
    delta = (dO * out).sum(-1, keepdims=True)
    dP = np.einsum("bhic,bhjc->bhij", dO, V)
    dS = P * (dP - delta)
    dq = scale * np.einsum("bhij,bhjc->bhic", dS, Kt)
    dk = scale * np.einsum("bhij,bhic->bhjc", dS, Q)
    dv = np.einsum("bhij,bhic->bhjc", P, dO)
    B, H, T, _ = dk.shape
    dk = dk.reshape(B, H // rep, rep, T, -1).sum(2)
    dv = dv.reshape(B, H // rep, rep, T, -1).sum(2)
    drpb = None
    if rpb is not None:
        drpb = nb.rpb_grad(nb.gather(dS, 0.0).sum(0), np.shape(rpb))
    return _unflat_hl(dq, nb.S), _unflat_hl(dk, nb.S), _unflat_hl(dv, nb.S), drpb
