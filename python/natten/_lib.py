"""Framework-neutral layer over the C extension.

Everything here works on any array that speaks DLPack and that we know how to
allocate alongside: NumPy arrays, torch tensors (CPU and CUDA) and array-API
namespaces (``x.__array_namespace__()``).  Outputs are allocated in the
caller's framework, on the caller's device, then written by libnatten through
DLPack; inputs are passed as they are (strided views included, nothing is made
contiguous).

Layouts at this level are those of the public Python API:
  unfused ops (qk/av)  heads-first  q, k, v, out [B, H, *S, D]; attn [B, H, *S, K1*..*Kn]
  fused ops            heads-last   q, k, v, out [B, *S, H, D];  lse [B, *S, H] (float32)
  rpb                  [H, 2K1-1, .., 2Kn-1]
libnatten itself is heads-last, so heads-first tensors are handed over as
permuted views (zero-copy).
"""
import math
import os
import re
import sys
import threading
from collections import namedtuple
from contextlib import contextmanager

from . import _C

# ---------------------------------------------------------------------------
# Process-wide settings and per-thread contexts

_lock = threading.Lock()
# backend/tuning None = as the context was created (NATTEN_BACKEND / NATTEN_TUNING honoured)
_settings = {"backend": None, "num_threads": 0, "tuning": None, "wisdom": ()}
_generation = [0]                                 # bumped on every settings change
_local = threading.local()


def _set(key, value):
    with _lock:
        _settings[key] = value
        _generation[0] += 1


def _context():
    """This thread's natten_context, brought in line with the settings."""
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        ctx = _local.ctx = _C.Context()
        _local.gen = 0      # settings at creation: environment only
    if _local.gen != _generation[0]:
        with _lock:
            st, gen = dict(_settings), _generation[0]
        # None restores what the context was created with: NATTEN_BACKEND if set, else auto.
        ctx.set_backend(st["backend"] if st["backend"] is not None
                        else (os.environ.get("NATTEN_BACKEND") or None))
        ctx.set_num_threads(st["num_threads"])
        if _C.HAVE_TUNING:
            tuning = st["tuning"] or os.environ.get("NATTEN_TUNING") or "heuristic"
            ctx.set_tuning(_TUNING.get(tuning, 0))
            for path in st["wisdom"][getattr(_local, "wisdom_seen", 0):]:
                try:    # load_wisdom() already checked the file in its own thread
                    ctx.wisdom_import(path)
                except _C.NattenError:
                    pass
            _local.wisdom_seen = len(st["wisdom"])
        _local.gen = gen
    return ctx


def set_backend(name):
    """Force backend ``name`` for every later call (None or "auto": automatic selection)."""
    if name is not None and name != "auto":
        _C.Context().set_backend(name)      # raises now for an unknown or unusable name
    _set("backend", None if name == "auto" else name)


def get_backend():
    return _settings["backend"]


@contextmanager
def use_backend(name):
    """``with natten.use_backend("naive"): ...`` forces a backend inside the block."""
    old = _settings["backend"]
    set_backend(name)
    try:
        yield
    finally:
        _set("backend", old)


def set_num_threads(n):
    _C.Context().set_num_threads(int(n))   # validates
    _set("num_threads", int(n))


_TUNING = {"heuristic": 0, "measure": 1}


def _need_tuning(what):
    if not _C.HAVE_TUNING:
        raise NotImplementedError(f"{what}: this natten was built against a libnatten without the "
                                  "tuning API (natten_context_set_tuning, natten_wisdom_*)")


def set_tuning(mode):
    """Backend selection for every later call: "heuristic" (the first backend that accepts
    the problem) or "measure" (time every applicable backend and configuration the first
    time a problem signature is seen, keep the fastest).  None: as NATTEN_TUNING says."""
    _need_tuning("set_tuning")
    if mode is not None and mode not in _TUNING:
        raise ValueError(f"tuning mode {mode!r}: expected 'heuristic' or 'measure'")
    _set("tuning", mode)


def get_tuning():
    return _settings["tuning"]


def save_wisdom(path):
    """Write the calling thread's remembered winners (measured or imported) to path."""
    _need_tuning("save_wisdom")
    _context().wisdom_export(os.fspath(path))


def load_wisdom(path):
    """Import a wisdom file into this thread's context now (errors raise: a corrupt file is
    ValueError, one from another version/device NotImplementedError) and into every
    other thread's context at its next call."""
    _need_tuning("load_wisdom")
    path = os.fspath(path)
    ctx = _context()
    ctx.wisdom_import(path)
    with _lock:
        _settings["wisdom"] = _settings["wisdom"] + (path,)
        _generation[0] += 1
    _local.wisdom_seen = len(_settings["wisdom"])


def tuning_report():
    """(signature, [(backend, config, status, time_ms, reason), ...]) for the last problem
    this thread measured, fastest first."""
    _need_tuning("tuning_report")
    return _context().tuning_report()


Explanation = namedtuple("Explanation", "op backend status text")


def explain(fn, *args, **kwargs):
    """Call fn(*args, **kwargs) (a natten function on NumPy arrays or torch tensors) without
    running anything: each libnatten op it would call is only explained.  Returns a list of
    Explanation(op, backend, status, text): the backend that would run it (None if none),
    the status it would get, and libnatten's account of every backend's verdict.  Outputs
    fn returns are left unwritten."""
    if not _C.HAVE_EXPLAIN:
        raise NotImplementedError("explain: this natten was built against a libnatten without "
                                  "natten_explain")
    if getattr(_local, "explain", None) is not None:
        raise RuntimeError("explain() calls do not nest")
    _local.explain = []
    try:
        fn(*args, **kwargs)
        return _local.explain
    finally:
        _local.explain = None


def last_backend():
    """Name of the backend that ran this thread's last successful op, or None."""
    ctx = getattr(_local, "ctx", None)
    return None if ctx is None else ctx.last_backend()


# ---------------------------------------------------------------------------
# Frameworks: recognising, allocating, permuting, exporting

def _torch_module():
    return sys.modules.get("torch")


def is_torch(x):
    torch = _torch_module()
    return torch is not None and isinstance(x, torch.Tensor)


_ALIGN = 64


def _numpy_empty(shape, dtype):
    """np.empty, but starting on a 64-byte boundary (a cache line): np.empty's
    malloc gives 16 bytes past one, which puts every 64-byte vector of a head
    row across two lines and slows the CPU kernels (docs/benchmarks.md, omp9
    and omp10)."""
    import numpy as np
    dtype = np.dtype(dtype)
    shape = tuple(int(n) for n in shape)
    nbytes = dtype.itemsize * math.prod(shape)
    buf = np.empty(nbytes + _ALIGN, dtype=np.uint8)
    off = -buf.ctypes.data % _ALIGN
    return buf[off:off + nbytes].view(dtype).reshape(shape)


def _empty(like, shape, dtype=None):
    """An uninitialised array of `shape` in like's framework, on like's device
    (NumPy arrays 64-byte aligned)."""
    if is_torch(like):
        torch = _torch_module()
        return torch.empty(tuple(shape), dtype=like.dtype if dtype is None else dtype, device=like.device)
    if hasattr(like, "__array_namespace__") and type(like).__module__ != "numpy":
        xp = like.__array_namespace__()
        kw = {}
        if getattr(like, "device", None) is not None:
            kw["device"] = like.device
        return xp.empty(tuple(shape), dtype=like.dtype if dtype is None else dtype, **kw)
    import numpy as np
    return _numpy_empty(shape, np.asarray(like).dtype if dtype is None else dtype)


def _float32(like):
    if is_torch(like):
        return _torch_module().float32
    if hasattr(like, "__array_namespace__"):
        return like.__array_namespace__().float32
    import numpy as np
    return np.float32


def _permute(x, axes):
    if is_torch(x):
        return x.permute(*axes)
    if hasattr(x, "__array_namespace__"):
        return x.__array_namespace__().permute_dims(x, tuple(axes))
    import numpy as np
    return np.transpose(x, axes)


def heads_last(x):
    """[B, H, *S, C] -> the view [B, *S, H, C]."""
    n = x.ndim
    return _permute(x, (0,) + tuple(range(2, n - 1)) + (1, n - 1))


def _capsule(x):
    """A DLPack capsule for x (borrowed: drop it after the call)."""
    if is_torch(x):
        x = x.detach()   # autograd is handled above this layer; the data is shared
        if x.device.type == "cuda":
            torch = _torch_module()
            with torch.cuda.device(x.device):   # torch exports only from the current device
                return x.__dlpack__(stream=-1)  # -1: we run on torch's current stream; no sync
        return x.__dlpack__()
    if not hasattr(x, "__dlpack__"):
        raise TypeError(f"expected an array with __dlpack__ (NumPy, torch, ...), got {type(x).__name__}")
    try:
        # Versioned capsules carry a read-only flag, so read-only NumPy inputs export.
        return x.__dlpack__(max_version=(1, 0))
    except TypeError:
        return x.__dlpack__()


_SHAPE_REF = re.compile(r"\b((?:d_)?(?:q|k|v|attn|out))\.shape\[(\d+)\]")


def _heads_first_text(msg, rank):
    """Rewrite libnatten's heads-last dim numbers ("q.shape[1]") into the heads-first
    numbering the caller used, so that the message names the caller's dims."""
    def fix(m):
        i = int(m.group(2))
        j = i + 1 if 1 <= i <= rank else (1 if i == rank + 1 else i)
        return f"{m.group(1)}.shape[{j}]"
    return _SHAPE_REF.sub(fix, msg)


def _heads_first_message(err, rank):
    msg = str(err.args[0]) if err.args else ""
    new = _heads_first_text(msg, rank)
    if new != msg:
        err.args = (new,) + tuple(err.args[1:])
    return err


def _call(op, params, *tensors, heads_first=False):
    """Run ctx.<op>(params, capsules...) with the right device and stream."""
    ctx = _context()
    dev = next((t for t in tensors if t is not None and is_torch(t) and t.device.type == "cuda"), None)
    caps = [None if t is None else _capsule(t) for t in tensors]
    record = getattr(_local, "explain", None)
    if record is not None:          # inside explain(): ask which backend would run it, run nothing
        status, backend, text = ctx.explain(op, params, *caps)
        if heads_first:
            text = _heads_first_text(text, len(params[0]))
        record.append(Explanation(op, backend, _C.status_string(status), text))
        return
    try:
        if dev is None:
            getattr(ctx, op)(params, *caps)
            return
        torch = _torch_module()
        with torch.cuda.device(dev.device):
            ctx.set_stream(torch.cuda.current_stream().cuda_stream)
            getattr(ctx, op)(params, *caps)
    except _C.NattenError as e:
        if heads_first:
            _heads_first_message(e, len(params[0]))
        raise


# ---------------------------------------------------------------------------
# Parameters

def _per_axis(value, rank, name, kind=int):
    if isinstance(value, (list, tuple)):
        if len(value) != rank:
            raise ValueError(f"{name} has {len(value)} entries but this is a {rank}-D operation")
        vals = tuple(value)
    else:
        vals = (value,) * rank
    out = []
    for v in vals:
        if kind is bool:
            if v not in (True, False):   # also 0/1 and numpy bools
                raise ValueError(f"{name} must be a bool or a tuple of {rank} bools, got {value!r}")
            out.append(bool(v))
        else:
            if isinstance(v, bool) or not isinstance(v, int):
                try:
                    iv = int(v)
                except (TypeError, ValueError):
                    iv = None
                if iv is None or iv != v or isinstance(v, bool):
                    raise ValueError(f"{name} must be an int or a tuple of {rank} ints, got {value!r}")
                v = iv
            out.append(int(v))
    return tuple(out)


def make_params(rank, kernel_size, dilation=1, stride=1, is_causal=False, scale=None):
    """(kernel_size, dilation, stride, is_causal, scale) tuples as the extension takes them."""
    return (_per_axis(kernel_size, rank, "kernel_size"),
            _per_axis(dilation, rank, "dilation"),
            _per_axis(stride, rank, "stride"),
            _per_axis(is_causal, rank, "is_causal", bool),
            None if scale is None else float(scale))


def window_size(params):
    return math.prod(params[0])


def rpb_shape(heads, params):
    return (heads,) + tuple(2 * k - 1 for k in params[0])


def _check_rank(x, want, name, layout, op):
    if not hasattr(x, "__dlpack__") or not hasattr(x, "ndim"):
        raise TypeError(f"{op}: {name} must be an array with __dlpack__ (NumPy, torch, ...), "
                        f"got {type(x).__name__}")
    if x.ndim != want:
        raise ValueError(f"{op}: {name} has {x.ndim} dimensions but a {want - 3}-D operation needs "
                         f"{want} ({layout})")


def _hf(rank):
    return "[B, H, " + ", ".join("XYZ"[:rank]) + ", D]"


def _hl(rank):
    return "[B, " + ", ".join("XYZ"[:rank]) + ", H, D]"


# ---------------------------------------------------------------------------
# The six ops, output-allocating.  No autograd here (see _torch.py).

def qk_forward(q, k, rpb, params, op="qk"):
    """attn[B, H, *S, W] = q.k (+ rpb) over each query's window; q, k heads-first."""
    n = len(params[0])
    _check_rank(q, n + 3, "query", _hf(n), op)
    _check_rank(k, n + 3, "key", _hf(n), op)
    attn = _empty(q, tuple(q.shape[:-1]) + (window_size(params),))
    _call("qk_forward", params, heads_last(q), heads_last(k), rpb, heads_last(attn), heads_first=True)
    return attn


def qk_backward(d_attn, q, k, params, with_rpb, op="qk_backward"):
    """(d_q, d_k, d_rpb or None)."""
    n = len(params[0])
    _check_rank(q, n + 3, "query", _hf(n), op)
    d_q = _empty(q, q.shape)
    d_k = _empty(k, k.shape)
    d_rpb = _empty(q, rpb_shape(q.shape[1], params)) if with_rpb else None
    _call("qk_backward", params, heads_last(d_attn), heads_last(q), heads_last(k), heads_last(d_q),
          heads_last(d_k), d_rpb, heads_first=True)
    return d_q, d_k, d_rpb


def av_forward(attn, v, params, op="av"):
    """out[B, H, *S, Dv] = sum over window slots of attn * v; heads-first."""
    n = len(params[0])
    _check_rank(attn, n + 3, "attn", "[B, H, " + ", ".join("XYZ"[:n]) + ", K]", op)
    _check_rank(v, n + 3, "value", _hf(n), op)
    out = _empty(v, tuple(attn.shape[:-1]) + (v.shape[-1],))
    _call("av_forward", params, heads_last(attn), heads_last(v), heads_last(out), heads_first=True)
    return out


def av_backward(d_out, attn, v, params, op="av_backward"):
    """(d_attn, d_v)."""
    d_attn = _empty(attn, attn.shape)
    d_v = _empty(v, v.shape)
    _call("av_backward", params, heads_last(d_out), heads_last(attn), heads_last(v),
          heads_last(d_attn), heads_last(d_v), heads_first=True)
    return d_attn, d_v


def fna_forward(q, k, v, rpb, params, with_lse=True, op="na"):
    """Fused, heads-last: (out[B, *S, H, Dv], lse[B, *S, H] float32 or None)."""
    n = len(params[0])
    for t, name in ((q, "query"), (k, "key"), (v, "value")):
        _check_rank(t, n + 3, name, _hl(n), op)
    out = _empty(q, tuple(q.shape[:-1]) + (v.shape[-1],))
    lse = _empty(q, tuple(q.shape[:-1]), _float32(q)) if with_lse else None
    _call("fna_forward", params, q, k, v, rpb, out, lse)
    return out, lse


def fna_backward(q, k, v, rpb, out, lse, d_out, params, with_rpb, op="na_backward"):
    """(d_q, d_k, d_v, d_rpb or None)."""
    d_q = _empty(q, q.shape)
    d_k = _empty(k, k.shape)
    d_v = _empty(v, v.shape)
    d_rpb = _empty(q, tuple(rpb.shape)) if with_rpb else None
    _call("fna_backward", params, q, k, v, rpb, out, lse, d_out, d_q, d_k, d_v, d_rpb)
    return d_q, d_k, d_v, d_rpb
