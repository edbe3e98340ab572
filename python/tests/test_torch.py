"""torch path: ops, autograd, gradcheck, modules, torch.compile, views, devices.
Skipped as a whole when torch is not installed; CUDA cases run when torch sees a GPU
and libnatten has a usable CUDA backend (else they skip, saying why)."""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import natten  # noqa: E402
import reference as ref  # noqa: E402
from natten import functional as F  # noqa: E402

# Under a loaded 2-core CI host torch's intra-op thread pool makes tiny ops ~1000x slower.
torch.set_num_threads(1)

TOL = {torch.float64: 1e-11, torch.float32: 1e-5}
TOL_FUSED_GRAD = {torch.float64: 1e-6, torch.float32: 1e-5}   # lse is float32 (test_numpy.py)


def _cuda_reason():
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    usable = [b for b in natten.backends() if b.device == "cuda" and b.available]
    if not usable:
        have = [f"{b.name} ({b.reason})" for b in natten.backends() if b.device == "cuda"]
        return "libnatten has no usable CUDA backend" + (": " + ", ".join(have) if have else "")
    return None


CUDA_SKIP = _cuda_reason()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(CUDA_SKIP is not None,
                                                                 reason=str(CUDA_SKIP)))]


def close(got, want, dtype, what, tol=None):
    got = got.detach().cpu().double().numpy() if torch.is_tensor(got) else np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    fin = np.isfinite(want)
    assert np.array_equal(np.isfinite(got), fin), f"{what}: non-finite entries differ"
    scale = max(1.0, float(np.abs(want[fin]).max(initial=0.0)))
    err = float(np.abs(got[fin] - want[fin]).max(initial=0.0)) / scale
    tol = TOL[dtype] if tol is None else tol
    assert err <= tol, f"{what}: normalised max abs error {err:.3g} > {tol:.1g}"


def npy(t):
    return t.detach().cpu().numpy()


def randn(shape, dtype, device, gen, requires_grad=False):
    t = torch.randn(shape, dtype=dtype, generator=gen).to(device)
    return t.requires_grad_(requires_grad)


@pytest.fixture
def gen(rng):
    return torch.Generator().manual_seed(int(rng.integers(2**31)))


# (S, K, dilation, stride, causal, B, H, D, rpb)
CASES = [
    ((9,), (3,), (2,), (1,), (False,), 2, 2, 4, True),
    ((8,), (4,), (1,), (2,), (True,), 1, 2, 3, False),
    ((7, 6), (3, 3), (2, 1), (1, 1), (False, True), 1, 2, 3, False),
    ((6, 5), (3, 3), (1, 1), (1, 1), (False, False), 2, 1, 4, True),
    ((4, 3, 5), (3, 2, 3), (1, 1, 1), (1, 1, 2), (False, False, True), 1, 2, 2, False),
]
IDS = ["%dd-%d" % (len(c[0]), i) for i, c in enumerate(CASES)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unfused_autograd(case, dtype, device, gen):
    S, K, d, s, c, B, H, D, with_rpb = case
    n = len(S)
    nb = ref.Neighbourhood(S, K, d, s, c)
    q, k, v = (randn((B, H) + S + (D,), dtype, device, gen, True) for _ in range(3))
    rpb = randn((H,) + tuple(2 * x - 1 for x in K), dtype, device, gen, True) if with_rpb else None

    attn = getattr(F, f"na{n}d_qk")(q, k, K, d, is_causal=c, rpb=rpb, stride=s)
    assert attn.device == q.device and attn.dtype == dtype
    close(attn, ref.qk(npy(q), npy(k), nb, None if rpb is None else npy(rpb)), dtype, "attn")
    d_attn = randn(attn.shape, dtype, device, gen)
    attn.backward(d_attn)
    rq, rk, rr = ref.qk_backward(npy(d_attn), npy(q), npy(k), nb, rpb.shape if with_rpb else None)
    close(q.grad, rq, dtype, "d_q")
    close(k.grad, rk, dtype, "d_k")
    if with_rpb:
        close(rpb.grad, rr, dtype, "d_rpb")

    w = torch.softmax(attn.detach(), -1).requires_grad_(True)
    out = getattr(F, f"na{n}d_av")(w, v, K, d, is_causal=c, stride=s)
    close(out, ref.av(npy(w), npy(v), nb), dtype, "out")
    d_out = randn(out.shape, dtype, device, gen)
    out.backward(d_out)
    ra, rv = ref.av_backward(npy(d_out), npy(w), npy(v), nb)
    close(w.grad, ra, dtype, "d_attn")
    close(v.grad, rv, dtype, "d_v")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fused_autograd(case, dtype, device, gen):
    S, K, d, s, c, B, H, D, with_rpb = case
    n = len(S)
    nb = ref.Neighbourhood(S, K, d, s, c)
    hkv = 1 if H % 2 == 0 else H                      # GQA where the head count allows
    q = randn((B,) + S + (H, D), dtype, device, gen, True)
    k = randn((B,) + S + (hkv, D), dtype, device, gen, True)
    v = randn((B,) + S + (hkv, D + 2), dtype, device, gen, True)
    rpb = randn((H,) + tuple(2 * x - 1 for x in K), dtype, device, gen, True) if with_rpb else None
    scale = 0.5 if with_rpb else None

    out, lse = getattr(F, f"na{n}d")(q, k, v, K, stride=s, dilation=d, is_causal=c, scale=scale,
                                     rpb=rpb, return_lse=True)
    assert lse.dtype == torch.float32 and not lse.requires_grad
    r_out, r_lse = ref.fused(npy(q), npy(k), npy(v), nb, scale, None if rpb is None else npy(rpb))
    close(out, r_out, dtype, "out")
    close(lse, r_lse, torch.float32, "lse")
    d_out = randn(out.shape, dtype, device, gen)
    out.backward(d_out)
    rq, rk, rv, rr = ref.fused_backward(npy(d_out), npy(q), npy(k), npy(v), nb, scale,
                                        None if rpb is None else npy(rpb))
    for t, want, name in ((q, rq, "d_q"), (k, rk, "d_k"), (v, rv, "d_v")):
        close(t.grad, want, dtype, name, TOL_FUSED_GRAD[dtype])
    if with_rpb:
        close(rpb.grad, rr, dtype, "d_rpb", TOL_FUSED_GRAD[dtype])


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck(device, gen):
    kw = dict(dtype=torch.float64, device=device, gen=gen, requires_grad=True)
    # 1D with rpb, L mod d != 0
    q, k, v = (randn((1, 2, 7, 3), **kw) for _ in range(3))
    rpb = randn((2, 5), **kw)
    assert torch.autograd.gradcheck(lambda q, k, r: F.na1d_qk(q, k, 3, 2, rpb=r), (q, k, rpb))
    a = randn((1, 2, 7, 3), **kw)
    assert torch.autograd.gradcheck(lambda a, v: F.na1d_av(a, v, 3, 2), (a, v))
    # 2D causal on one axis: -inf slots, so check through softmax
    q, k, v = (randn((1, 1, 5, 4, 2), **kw) for _ in range(3))
    assert torch.autograd.gradcheck(
        lambda q, k: F.na2d_qk(q, k, (3, 2), is_causal=(True, False)).softmax(-1), (q, k))
    # fused 2D with stride and rpb, GQA; the lse output carries no gradient
    q = randn((1, 5, 4, 2, 2), **kw)
    k, v = (randn((1, 5, 4, 1, 2), **kw) for _ in range(2))
    rpb = randn((2, 5, 3), **kw)
    assert torch.autograd.gradcheck(lambda q, k, v, r: F.na2d(q, k, v, (3, 2), rpb=r), (q, k, v, rpb))
    assert torch.autograd.gradcheck(lambda q, k, v: F.na2d(q, k, v, (3, 2), stride=(2, 1),
                                                          is_causal=(False, True)), (q, k, v))
    # 3D
    q, k, v = (randn((1, 3, 3, 4, 1, 2), **kw) for _ in range(3))
    assert torch.autograd.gradcheck(lambda q, k, v: F.na3d(q, k, v, (3, 2, 3), dilation=(1, 1, 1)),
                                    (q, k, v))


@pytest.mark.parametrize("device", DEVICES)
def test_strided_views_zero_copy(device, gen):
    """Heads-first q/k/v as views of one heads-last qkv buffer; attn as a column slice;
    the capsule we hand to libnatten points at the caller's memory."""
    B, S, H, D, K = 2, (6, 7), 2, 3, (3, 3)
    nb = ref.Neighbourhood(S, K, (1, 1), (1, 1), (False, False))
    qkv = randn((B,) + S + (3, H, D), torch.float64, device, gen)
    q, k, v = (qkv[..., i, :, :].movedim(3, 1) for i in range(3))
    assert not q.is_contiguous()
    cap = natten._lib._capsule(natten._lib.heads_last(q))
    assert torch.from_dlpack(cap).data_ptr() == q.data_ptr()
    attn = F.na2d_qk(q, k, K)
    close(attn, ref.qk(npy(q), npy(k), nb), torch.float64, "attn")
    wide = randn((B, H) + S + (13,), torch.float64, device, gen)
    a = wide[..., 2:11]
    close(F.na2d_av(a, v, K), ref.av(npy(a), npy(v), nb), torch.float64, "out")
    # fused on heads-last views, with a non-contiguous incoming gradient
    ql, kl, vl = (qkv[..., i, :, :].detach().requires_grad_(True) for i in range(3))
    out = F.na2d(ql, kl, vl, K)
    g = randn((B,) + S + (2 * H, D), torch.float64, device, gen)[..., ::2, :]   # head stride 2D
    out.backward(g)
    rq = ref.fused_backward(npy(g), npy(ql), npy(kl), npy(vl), nb)[0]
    close(ql.grad, rq, torch.float64, "d_q", TOL_FUSED_GRAD[torch.float64])


def _nat_block(dim=16, heads=2, kernel=3, dilation=1, rpb=True):
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = torch.nn.LayerNorm(dim)
            self.attn = natten.NeighborhoodAttention2D(dim, heads, kernel, dilation=dilation,
                                                       rel_pos_bias=rpb)
            self.norm2 = torch.nn.LayerNorm(dim)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 2 * dim), torch.nn.GELU(),
                                           torch.nn.Linear(2 * dim, dim))

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))
    return Block()


@pytest.mark.parametrize("rank,shape,kw", [
    (1, (2, 11, 12), dict(kernel_size=5, dilation=2)),
    (1, (2, 9, 12), dict(kernel_size=3, is_causal=True)),
    (2, (2, 7, 9, 12), dict(kernel_size=(3, 5), rel_pos_bias=True)),
    (2, (1, 2, 3, 12), dict(kernel_size=7, dilation=1, rel_pos_bias=True)),   # smaller than a window: padded
    (3, (1, 4, 5, 6, 12), dict(kernel_size=3, dilation=(1, 1, 2), qkv_bias=False)),
])
def test_module_shapes_and_paths(rank, shape, kw):
    torch.manual_seed(0)
    cls = getattr(natten, f"NeighborhoodAttention{rank}D")
    m = cls(12, 3, **kw).double().eval()
    x = torch.randn(shape, dtype=torch.float64)
    y = m(x)
    assert y.shape == x.shape
    natten.use_fused_na(False)
    try:
        y2 = m(x)
    finally:
        natten.use_fused_na(True)
    torch.testing.assert_close(y, y2, atol=1e-10, rtol=0)          # fused == unfused
    keys = {"qkv.weight", "proj.weight", "proj.bias"} | ({"rpb"} if kw.get("rel_pos_bias") else set())
    assert keys <= set(m.state_dict())


def test_module_training_step():
    torch.manual_seed(0)
    m = torch.nn.Sequential(natten.NeighborhoodAttention2D(16, 2, 3, rel_pos_bias=True, attn_drop=0.1,
                                                           proj_drop=0.1))
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    x = torch.randn(2, 8, 8, 16)
    target = torch.randn(2, 8, 8, 16)
    before = {k: p.detach().clone() for k, p in m.named_parameters()}
    for _ in range(2):   # once through the unfused path (dropout active), once fused
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(m(x), target)
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
        opt.step()
        m[0].attn_drop_rate, m[0].attn_drop.p = 0.0, 0.0
    assert all(not torch.equal(before[k], p) for k, p in m.named_parameters())


# Inductor's C++ code generation takes over a minute on a loaded 2-core host, so the default
# run compiles through dynamo + AOTAutograd (graph capture, fake impls, registered autograd:
# everything natten provides) and NATTEN_TEST_INDUCTOR=1 adds the full inductor backend.
COMPILE_BACKENDS = ["aot_eager"] + (["inductor"] if os.environ.get("NATTEN_TEST_INDUCTOR") == "1" else [])


@pytest.mark.parametrize("backend", COMPILE_BACKENDS)
@pytest.mark.parametrize("device", DEVICES)
def test_compile_nat_block(backend, device):
    torch._dynamo.reset()
    torch.manual_seed(0)
    block = _nat_block().double().to(device)
    x = torch.randn(2, 7, 9, 16, dtype=torch.float64, device=device, requires_grad=True)
    compiled = torch.compile(block, fullgraph=True, backend=backend)
    y_eager = block(x)
    (gx_eager,) = torch.autograd.grad(y_eager.square().sum(), x)
    y = compiled(x)
    (gx,) = torch.autograd.grad(y.square().sum(), x)
    torch.testing.assert_close(y, y_eager, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(gx, gx_eager, atol=1e-9, rtol=1e-9)


def test_compile_functional_unfused():
    torch._dynamo.reset()

    def f(q, k, v):
        a = F.na1d_qk(q * 0.5, k, 3, dilation=2, is_causal=True).softmax(-1)
        return F.na1d_av(a, v, 3, dilation=2, is_causal=True)

    q, k, v = (torch.randn(1, 2, 9, 4, dtype=torch.float64) for _ in range(3))
    torch.testing.assert_close(torch.compile(f, fullgraph=True, backend="aot_eager")(q, k, v), f(q, k, v))


@pytest.mark.skipif(CUDA_SKIP is not None, reason=str(CUDA_SKIP))
def test_cuda_stream_and_device_index():
    """Results on a side stream and on every visible device match the CPU."""
    q, k, v = (torch.randn(1, 9, 8, 2, 4, dtype=torch.float32) for _ in range(3))
    want = F.na2d(q, k, v, 3)
    for idx in range(torch.cuda.device_count()):
        dev = torch.device("cuda", idx)
        qd, kd, vd = (t.to(dev) for t in (q, k, v))
        s = torch.cuda.Stream(device=dev)
        with torch.cuda.stream(s):
            out = F.na2d(qd, kd, vd, 3)
        s.synchronize()
        assert out.device == dev
        torch.testing.assert_close(out.cpu(), want, atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(CUDA_SKIP is not None or torch.cuda.device_count() < 2,
                    reason=str(CUDA_SKIP or "fewer than 2 CUDA devices"))
def test_cuda_device_index_nonzero_autograd():
    dev = torch.device("cuda", 1)
    q = torch.randn(1, 2, 9, 4, device=dev, dtype=torch.float64, requires_grad=True)
    attn = F.na1d_qk(q, q, 3)
    attn.sum().backward()
    assert attn.device == dev and q.grad.device == dev
    qc = q.detach().cpu().requires_grad_(True)
    F.na1d_qk(qc, qc, 3).sum().backward()
    torch.testing.assert_close(q.grad.cpu(), qc.grad)
    with pytest.raises(ValueError, match="device"):
        F.na1d_qk(q, q.detach().to("cuda:0"), 3)


def test_errors_torch():
    q = torch.randn(1, 2, 7, 4)
    with pytest.raises(ValueError, match="exceeds"):
        F.na1d_qk(q, q, 5, dilation=2)
    with pytest.raises(ValueError, match="dtype"):
        F.na1d_qk(q, q.double(), 3)
    with pytest.raises(ValueError, match="floating-point"):
        F.na1d_qk(q.long(), q.long(), 3)
    if CUDA_SKIP is not None and torch.cuda.is_available():
        # a GPU but no CUDA backend in this libnatten: valid request, nobody can run it
        qc = q.cuda()
        with pytest.raises(NotImplementedError, match="no backend"):
            F.na1d_qk(qc, qc, 3)
    with pytest.raises(ValueError, match="needs 5"):
        F.na2d_qk(q, q, 3)
    with pytest.raises(RuntimeError):
        with natten.use_backend("no-such-backend"):
            pass


# Half precision: the reference runs in float64 on the same (rounded) inputs, so the error is
# the backend's accumulation and the final rounding: a few ulps of the output dtype
# (fp16 2^-11, bf16 2^-8), scaled by the window size for the gradients.
HALF_TOL = {torch.float16: 4e-3, torch.bfloat16: 3e-2}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_half_precision(dtype, device, gen):
    S, K = (9, 8), (3, 5)
    nb = ref.Neighbourhood(S, K, (2, 1), (1, 1), (False, True))
    q, k, v = (randn((1,) + S + (2, 8), dtype, device, gen, True) for _ in range(3))
    out = F.na2d(q, k, v, K, dilation=(2, 1), is_causal=(False, True))
    assert out.dtype == dtype
    f = [npy(t.float()) for t in (q, k, v)]
    close(out, ref.fused(*f, nb)[0], dtype, "out", HALF_TOL[dtype])
    d_out = randn(out.shape, dtype, device, gen)
    out.backward(d_out)
    want = ref.fused_backward(npy(d_out.float()), *f, nb)
    for t, w, name in zip((q, k, v), want, ("d_q", "d_k", "d_v")):
        close(t.grad, w, dtype, name, 4 * HALF_TOL[dtype])
    qh = q.detach().movedim(-2, 1)
    attn = F.na2d_qk(qh, k.detach().movedim(-2, 1), K, (2, 1), is_causal=(False, True))
    close(attn, ref.qk(npy(qh.float()), npy(k.detach().movedim(-2, 1).float()), nb), dtype, "attn",
          HALF_TOL[dtype])


def test_module_014_signature():
    """0.14 modules: rpb on by default (bias=True), same state_dict keys as the 0.17 class
    built with rel_pos_bias=True; `bias=` is accepted by the 0.17 classes too."""
    from natten.natten1d import NeighborhoodAttention1D as Old1D
    from natten.natten2d import NeighborhoodAttention2D as Old2D
    old = Old2D(16, 2, 5, 2)
    assert old.rpb is not None and old.rpb.shape == (2, 9, 9)
    new = natten.NeighborhoodAttention2D(16, 2, 5, 2, rel_pos_bias=True)
    new.load_state_dict(old.state_dict())
    x = torch.randn(1, 12, 11, 16)
    torch.testing.assert_close(new(x), old(x))
    assert Old1D(8, 2, 3, bias=False).rpb is None
    assert natten.NeighborhoodAttention1D(8, 2, 3, bias=True).rpb is not None
