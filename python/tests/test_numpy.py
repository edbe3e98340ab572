"""NumPy path: natten's ops against the dense-masked reference in tests/reference.py."""
import threading

import numpy as np
import pytest

import natten
import natten.ops as ops
import reference as ref

# Tolerances (max abs error, normalised by the reference's max magnitude, floor 1).  The
# backends accumulate in at least float32, so the error is the output rounding plus
# accumulation order: a few ulps of the output dtype.
TOL = {np.float64: 1e-11, np.float32: 1e-5, np.float16: 5e-3}
# The fused backward recomputes P = exp(z - lse) from the float32 lse the API stores, so
# its gradients carry lse's rounding (2^-24 relative, times |lse|) even in float64.
TOL_FUSED_GRAD = {np.float64: 1e-6, np.float32: 1e-5}

# (S, K, dilation, stride, causal, B, H, D, rpb)
CASES = [
    ((9,), (3,), (1,), (1,), (False,), 2, 2, 4, True),
    ((10,), (4,), (2,), (1,), (False,), 1, 2, 3, False),       # even K, L mod d = 0
    ((7,), (3,), (2,), (1,), (True,), 2, 1, 5, False),         # causal, L mod d != 0
    ((8,), (8,), (1,), (1,), (False,), 1, 1, 4, True),         # K = L
    ((9,), (3,), (1,), (3,), (False,), 1, 2, 4, False),        # stride = K (blocked)
    ((7,), (3,), (1,), (2,), (True,), 1, 1, 3, False),         # causal + stride
    ((5, 6), (3, 4), (1, 1), (1, 1), (False, False), 1, 2, 4, False),
    ((7, 6), (3, 3), (2, 1), (1, 1), (False, True), 2, 1, 3, False),
    ((6, 5), (3, 3), (1, 1), (1, 1), (False, False), 1, 2, 2, True),
    ((8, 7), (4, 3), (1, 2), (2, 3), (True, False), 1, 1, 2, False),
    ((3, 4, 5), (3, 2, 3), (1, 2, 1), (1, 1, 1), (False, False, True), 1, 2, 3, False),
    ((4, 3, 5), (3, 3, 3), (1, 1, 1), (1, 1, 1), (False, False, False), 1, 1, 2, True),
]
IDS = ["S%s-K%s-d%s-s%s-c%s-rpb%d" % (c[0], c[1], c[2], c[3], "".join("1" if x else "0" for x in c[4]), c[8])
       for c in CASES]


def close(got, want, dtype, what, tol=None):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    fin = np.isfinite(want)
    assert np.array_equal(np.isfinite(got), fin), f"{what}: non-finite entries differ"
    assert np.array_equal(got[~fin], want[~fin]), f"{what}: infinities differ"
    scale = max(1.0, float(np.abs(want[fin]).max(initial=0.0)))
    err = float(np.abs(got[fin] - want[fin]).max(initial=0.0)) / scale
    tol = TOL[dtype] if tol is None else tol
    assert err <= tol, f"{what}: normalised max abs error {err:.3g} > {tol:.1g}"


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unfused(case, dtype, rng):
    S, K, d, s, c, B, H, D, with_rpb = case
    n = len(S)
    nb = ref.Neighbourhood(S, K, d, s, c)
    q, k, v = (randn(rng, (B, H) + S + (D,), dtype) for _ in range(3))
    rpb = randn(rng, (H,) + tuple(2 * x - 1 for x in K), dtype) if with_rpb else None
    fn_qk = getattr(natten, f"na{n}d_qk")
    fn_av = getattr(natten, f"na{n}d_av")

    attn = fn_qk(q, k, K, d, is_causal=c, rpb=rpb, stride=s)
    assert isinstance(attn, np.ndarray) and attn.dtype == dtype and attn.flags.c_contiguous
    close(attn, ref.qk(q, k, nb, rpb), dtype, "attn")

    # softmax over slots, as a model does between the two ops
    w = np.exp(attn - attn.max(-1, keepdims=True))
    w = (w / w.sum(-1, keepdims=True)).astype(dtype)
    out = fn_av(w, v, K, d, is_causal=c, stride=s)
    close(out, ref.av(w, v, nb), dtype, "out")

    p = ops.make_params(n, K, d, s, c)
    d_attn = randn(rng, attn.shape, dtype)
    dq, dk, drpb = ops.qk_backward(d_attn, q, k, p, with_rpb)
    rq, rk, rr = ref.qk_backward(d_attn, q, k, nb, rpb.shape if with_rpb else None)
    close(dq, rq, dtype, "d_q")
    close(dk, rk, dtype, "d_k")
    if with_rpb:
        close(drpb, rr, dtype, "d_rpb")
    else:
        assert drpb is None

    d_out = randn(rng, out.shape, dtype)
    da, dv = ops.av_backward(d_out, w, v, p)
    ra, rv = ref.av_backward(d_out, w, v, nb)
    close(da, ra, dtype, "d_attn")
    close(dv, rv, dtype, "d_v")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fused(case, dtype, rng):
    S, K, d, s, c, B, H, D, with_rpb = case
    n = len(S)
    nb = ref.Neighbourhood(S, K, d, s, c)
    q = randn(rng, (B,) + S + (H, D), dtype)
    k = randn(rng, (B,) + S + (H, D), dtype)
    v = randn(rng, (B,) + S + (H, D + 1), dtype)        # Dv != D
    rpb = randn(rng, (H,) + tuple(2 * x - 1 for x in K), dtype) if with_rpb else None
    scale = None if D % 2 else 0.37
    fn = getattr(natten, f"na{n}d")

    out, lse = fn(q, k, v, K, stride=s, dilation=d, is_causal=c, scale=scale, rpb=rpb, return_lse=True)
    assert out.dtype == dtype and lse.dtype == np.float32 and lse.shape == (B,) + S + (H,)
    r_out, r_lse = ref.fused(q, k, v, nb, scale, rpb)
    close(out, r_out, dtype, "out")
    close(lse, r_lse, np.float32, "lse")
    assert isinstance(fn(q, k, v, K, s, d, c, scale, rpb), np.ndarray)   # positional, no lse

    d_out = randn(rng, out.shape, dtype)
    p = ops.make_params(n, K, d, s, c, scale)
    dq, dk, dv, drpb = ops.fna_backward(q, k, v, rpb, out, lse, d_out, p, with_rpb)
    rq, rk, rv, rr = ref.fused_backward(d_out, q, k, v, nb, scale, rpb)
    for got, want, name in ((dq, rq, "d_q"), (dk, rk, "d_k"), (dv, rv, "d_v")):
        close(got, want, dtype, name, TOL_FUSED_GRAD[dtype])
    if with_rpb:
        close(drpb, rr, dtype, "d_rpb", TOL_FUSED_GRAD[dtype])


def test_fused_gqa(rng):
    S, K = (9, 5), (3, 3)
    nb = ref.Neighbourhood(S, K, (1, 1), (1, 1), (False, False))
    q = rng.standard_normal((2,) + S + (4, 3))
    k = rng.standard_normal((2,) + S + (2, 3))
    v = rng.standard_normal((2,) + S + (2, 3))
    out, lse = natten.na2d(q, k, v, K, return_lse=True)
    r_out, r_lse = ref.fused(q, k, v, nb)
    close(out, r_out, np.float64, "out")
    d_out = rng.standard_normal(out.shape)
    grads = ops.fna_backward(q, k, v, None, out, lse, d_out, ops.make_params(2, K), False)
    for got, want in zip(grads[:3], ref.fused_backward(d_out, q, k, v, nb)[:3]):
        close(got, want, np.float64, "grad", TOL_FUSED_GRAD[np.float64])


def test_float16(rng):
    S, K = (11,), (5,)
    nb = ref.Neighbourhood(S, K, (1,), (1,), (False,))
    q, k, v = (rng.standard_normal((1, 2) + S + (8,)).astype(np.float16) for _ in range(3))
    attn = natten.na1d_qk(q, k, 5)
    assert attn.dtype == np.float16
    close(attn, ref.qk(q, k, nb), np.float16, "attn")
    out = natten.na1d(*(np.moveaxis(t, 1, -2) for t in (q, k, v)), 5)
    close(out, ref.fused(*(np.moveaxis(t, 1, -2) for t in (q, k, v)), nb)[0], np.float16, "out")


def test_strided_views(rng):
    """Heads-first data passed as views of other layouts: permuted, sliced, reversed,
    read-only; attn as a column slice of a wider buffer.  Nothing is copied."""
    S, K, B, H, D = (7, 6), (3, 3), 2, 3, 4
    nb = ref.Neighbourhood(S, K, (1, 1), (1, 1), (False, False))
    # q, k, v interleaved in one heads-last buffer [B, X, Y, 3, H, D], viewed heads-first
    qkv = rng.standard_normal((B,) + S + (3, H, D))
    q, k, v = (np.moveaxis(qkv[..., i, :, :], 3, 1) for i in range(3))
    assert not q.flags.c_contiguous and np.shares_memory(q, qkv)
    k = k[:, :, ::-1]                                # negative stride
    v.flags.writeable = False
    q.flags.writeable = False
    attn = natten.na2d_qk(q, k, K)
    close(attn, ref.qk(q, k, nb), np.float64, "attn (views)")
    wide = rng.standard_normal((B, H) + S + (20,))
    a = wide[..., 3:3 + 9]                            # row stride 20 > window 9
    out = natten.na2d_av(a, v, K)
    close(out, ref.av(a, v, nb), np.float64, "out (attn view)")
    # fused, heads-last views of the same buffer
    ql, kl, vl = qkv[..., 0, :, :], qkv[..., 1, :, :], qkv[..., 2, :, :]
    close(natten.na2d(ql, kl, vl, K), ref.fused(ql, kl, vl, nb)[0], np.float64, "fused (views)")


def test_empty_batch():
    q = np.zeros((0, 2, 7, 4))
    assert natten.na1d_qk(q, q, 3).shape == (0, 2, 7, 3)
    assert natten.na1d(np.zeros((0, 7, 2, 4)), np.zeros((0, 7, 2, 4)), np.zeros((0, 7, 2, 4)), 3).shape == (0, 7, 2, 4)


def test_outputs_cache_line_aligned(rng):
    """NumPy outputs start on a 64-byte boundary (np.empty's malloc gives 16 bytes past
    one), whatever the inputs' alignment, and the values do not depend on it."""
    S, K, B, H, D = (9, 20), (3, 5), 1, 2, 16
    nb = ref.Neighbourhood(S, K, (1, 1), (1, 1), (False, False))

    def at(x, off):  # a copy of x starting off bytes past a cache line
        buf = np.empty(x.nbytes + 128, np.uint8)
        start = -buf.ctypes.data % 64 + off
        y = buf[start:start + x.nbytes].view(x.dtype).reshape(x.shape)
        y[...] = x
        assert y.ctypes.data % 64 == off
        return y

    q, k, v, d_out = (randn(rng, (B,) + S + (H, D), np.float32) for _ in range(4))   # heads-last
    qh, kh, vh = (randn(rng, (B, H) + S + (D,), np.float32) for _ in range(3))       # heads-first
    p = ops.make_params(2, K)
    for off in (0, 16, 4):
        qo, ko, vo, do, qho, kho, vho = (at(x, off) for x in (q, k, v, d_out, qh, kh, vh))
        out, lse = natten.na2d(qo, ko, vo, K, return_lse=True)
        grads = ops.fna_backward(qo, ko, vo, None, out, lse, do, p, False)[:3]
        attn = ops.qk_forward(qho, kho, None, p)
        av = ops.av_forward(at(attn, off), vho, p)
        for x in (out, lse, attn, av) + tuple(grads):
            assert x.ctypes.data % 64 == 0, (off, x.shape)
        close(out, ref.fused(q, k, v, nb)[0], np.float32, "out (inputs %d bytes off)" % off)
        close(attn, ref.qk(qh, kh, nb), np.float32, "attn (inputs %d bytes off)" % off)
        close(av, ref.av(attn, vh, nb), np.float32, "av (inputs %d bytes off)" % off)
    for dt in (np.float64, np.float16, np.int8):
        x = natten._lib._empty(np.zeros(3, dt), (5, 7))
        assert x.dtype == dt and x.shape == (5, 7) and x.flags.c_contiguous and x.flags.writeable
        assert x.ctypes.data % 64 == 0
    assert natten._lib._empty(q, (0, 3)).shape == (0, 3)


def test_legacy_names(rng):
    q, k, v = (rng.standard_normal((1, 2, 8, 9, 4)) for _ in range(3))
    rpb = rng.standard_normal((2, 5, 5))
    a = natten.functional.natten2dqkrpb(q, k, rpb, 3, 2)
    np.testing.assert_array_equal(a, natten.na2d_qk(q, k, 3, 2, rpb=rpb))
    np.testing.assert_array_equal(natten.functional.natten2dqk(q, k, 3, 1), natten.na2d_qk(q, k, 3))
    np.testing.assert_array_equal(natten.functional.natten2dav(a, v, 3, 2), natten.na2d_av(a, v, 3, 2))
    q1, k1 = q[:, :, 0], k[:, :, 0]
    np.testing.assert_array_equal(natten.functional.natten1dqkrpb(q1, k1, rpb[:, 0], 3, 1),
                                  natten.na1d_qk(q1, k1, 3, rpb=rpb[:, 0]))
    a1 = natten.functional.natten1dqk(q1, k1, 3, 2)
    np.testing.assert_array_equal(a1, natten.na1d_qk(q1, k1, 3, 2))
    np.testing.assert_array_equal(natten.functional.natten1dav(a1, v[:, :, 0], 3, 2),
                                  natten.na1d_av(a1, v[:, :, 0], 3, 2))


def test_threads(rng):
    q = rng.standard_normal((1, 2, 12, 11, 4))
    want = natten.na2d_qk(q, q, 5)
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(np.array_equal(natten.na2d_qk(q, q, 5), want))
        except Exception as e:   # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and all(results) and len(results) == 80


def test_backends_and_version():
    bs = natten.backends()
    assert bs and bs[-1].name == "naive" and bs[-1].available and bs[-1].device == "cpu"
    assert all(b.available or b.reason for b in bs)
    assert natten.version().startswith("libnatten ")
    assert natten.version_info() >= (0, 1, 0)
    q = np.ones((1, 1, 5, 2))
    with natten.use_backend("naive"):
        assert natten.get_backend() == "naive"
        natten.na1d_qk(q, q, 3)
        assert natten.last_backend() == "naive"
    assert natten.get_backend() is None


def test_natten_keyword_compat():
    q = np.random.default_rng(1).standard_normal((1, 9, 2, 4))
    want = natten.na1d(q, q, q, 3)
    # NATTEN 0.21's performance knobs are accepted and change nothing
    got = natten.na1d(q, q, q, 3, backend="cutlass-fna", q_tile_shape=(64,), kv_tile_shape=(64,),
                      torch_compile=False)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(NotImplementedError, match="additional_keys"):
        natten.na1d(q, q, q, 3, additional_keys=q, additional_values=q)
    with pytest.raises(TypeError, match="unexpected keyword"):
        natten.na1d(q, q, q, 3, kernel_sizes=3)
    qh = np.moveaxis(q, 2, 1)
    np.testing.assert_array_equal(natten.na1d_qk(qh, qh, 3, additional_keys=None), natten.na1d_qk(qh, qh, 3))
