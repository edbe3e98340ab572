"""libnatten's status codes become Python exceptions (no torch needed)."""
import ctypes

import numpy as np
import pytest

import natten
from natten import _C


def test_exception_classes():
    assert issubclass(natten.InvalidArgumentError, ValueError)
    assert issubclass(natten.UnsupportedError, NotImplementedError)
    for cls in (natten.InvalidArgumentError, natten.UnsupportedError, natten.BackendUnavailableError):
        assert issubclass(cls, natten.NattenError) and issubclass(cls, RuntimeError)


def test_invalid_argument_messages():
    q = np.zeros((1, 2, 7, 4))
    with pytest.raises(ValueError, match=r"kernel_size\[0\]\*dilation\[0\]=10 exceeds") as e:
        natten.na1d_qk(q, q, 5, dilation=2)
    assert e.value.status == 1 and e.value.op == "qk_forward"
    # heads-first dims are named in the caller's numbering: k.shape[1] is H here
    with pytest.raises(ValueError, match=r"k\.shape\[1\]=3 but q\.shape\[1\]=2"):
        natten.na1d_qk(q, np.zeros((1, 3, 7, 4)), 3)
    with pytest.raises(ValueError, match=r"k\.shape\[2\]=6 but q\.shape\[2\]=7"):
        natten.na1d_qk(q, np.zeros((1, 2, 6, 4)), 3)
    with pytest.raises(ValueError, match="dtype"):
        natten.na1d_qk(q, q.astype(np.float32), 3)
    with pytest.raises(ValueError, match="floating-point"):
        natten.na1d_qk(q.astype(np.int32), q.astype(np.int32), 3)
    with pytest.raises(ValueError, match="stride"):
        natten.na1d(q, q, q, 3, stride=4)
    with pytest.raises(ValueError, match="kernel_size has 3 entries"):
        natten.na2d_qk(np.zeros((1, 1, 5, 5, 2)), np.zeros((1, 1, 5, 5, 2)), (3, 3, 3))
    with pytest.raises(ValueError, match="needs 5"):
        natten.na2d(q, q, q, 3)


def test_backend_unavailable():
    with pytest.raises(natten.BackendUnavailableError, match="no-such"):
        natten.set_backend("no-such")
    assert natten.get_backend() is None
    with pytest.raises(RuntimeError):
        with natten.use_backend("no-such"):
            pass


def test_set_tuning():
    try:
        natten.set_tuning("measure")
    except NotImplementedError as e:
        assert "tuning" in str(e)
    else:
        natten.set_tuning("heuristic")


# --- hand-made DLPack capsules, for what NumPy cannot produce --------------------------

class _Dev(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _Dev), ("ndim", ctypes.c_int32),
                ("dtype", _DType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _Managed(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p)]


class _ManagedVersioned(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p), ("flags", ctypes.c_uint64), ("dl_tensor", _DLTensor)]


_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_NAMES = {False: b"dltensor", True: b"dltensor_versioned"}   # must outlive the capsules


def _fake_capsule(arr, keep, code=2, bits=64, lanes=1, versioned=False, flags=0, major=1):
    shape = (ctypes.c_int64 * arr.ndim)(*arr.shape)
    t = _DLTensor(arr.ctypes.data, _Dev(1, 0), arr.ndim, _DType(code, bits, lanes), shape, None, 0)
    m = _ManagedVersioned(major, 0, None, None, flags, t) if versioned else _Managed(t, None, None)
    keep += [shape, m]
    return _capsule_new(ctypes.addressof(m), _NAMES[versioned], None)


def test_unsupported_and_capsule_checks():
    keep = []
    a = np.zeros((1, 5, 1, 2))
    p = natten.ops.make_params(1, 3)
    ctx = _C.Context()
    # two lanes per element: a valid request nothing can run
    q2 = _fake_capsule(a, keep, lanes=2)
    with pytest.raises(NotImplementedError, match="lanes"):
        ctx.qk_forward(p, q2, q2, None, _fake_capsule(np.zeros((1, 5, 1, 3)), keep, lanes=2))
    # a 128-bit float: also unsupported, not invalid
    q16 = _fake_capsule(a, keep, bits=128)
    with pytest.raises(natten.UnsupportedError, match="128-bit"):
        ctx.qk_forward(p, q16, q16, None, _fake_capsule(np.zeros((1, 5, 1, 3)), keep, bits=128))
    # versioned capsules are read; a read-only output is refused before libnatten is called
    qv = _fake_capsule(a, keep, versioned=True)
    out = np.full((1, 5, 1, 3), np.nan)
    ctx.qk_forward(p, qv, qv, None, _fake_capsule(out, keep, versioned=True))
    assert np.all(out == 0)
    with pytest.raises(ValueError, match="read-only"):
        ctx.qk_forward(p, qv, qv, None, _fake_capsule(out, keep, versioned=True, flags=1))
    with pytest.raises(BufferError, match="major version 2"):
        ctx.qk_forward(p, _fake_capsule(a, keep, versioned=True, major=2), qv, None,
                       _fake_capsule(out, keep))
    with pytest.raises(TypeError, match="DLPack capsule"):
        ctx.qk_forward(p, a, qv, None, _fake_capsule(out, keep))
    with pytest.raises(TypeError, match="__dlpack__"):
        natten.na1d_qk([[1.0]], [[1.0]], 3)
