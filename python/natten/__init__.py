"""natten: neighborhood attention over libnatten, with NATTEN's Python API.

    import natten
    from natten.functional import na2d, na2d_qk, na2d_av
    from natten import NeighborhoodAttention2D        # needs torch

Works with NumPy arrays and torch tensors (CPU, CUDA), zero-copy via DLPack.
See docs/python.md.
"""
import sys
from collections import namedtuple

from . import _C, _lib
from ._C import (BackendUnavailableError, InvalidArgumentError, NattenError,  # noqa: F401
                 UnsupportedError)
from ._lib import (explain, get_backend, get_tuning, last_backend, load_wisdom,  # noqa: F401
                   save_wisdom, set_backend, set_num_threads, set_tuning, tuning_report,
                   use_backend)
from . import functional, ops  # noqa: F401
from .functional import *  # noqa: F401,F403

__version__ = "0.1.0"

Backend = namedtuple("Backend", "name description device available reason")

_TORCH_NAMES = ("NeighborhoodAttention1D", "NeighborhoodAttention2D", "NeighborhoodAttention3D",
                "use_fused_na", "is_fused_na_enabled")


def version():
    """The library's version string, with its compiled-in backends."""
    return _C.version_string()


def has_cuda():
    """True if libnatten has a CUDA backend that is usable on this machine."""
    return any(b.device == "cuda" and b.available for b in backends())


def has_tuning():
    """True if the libnatten this module was built against has set_tuning/wisdom."""
    return bool(_C.HAVE_TUNING)


def version_info():
    """(major, minor, patch) of the libnatten headers this module was built against."""
    return (_C.VERSION_MAJOR, _C.VERSION_MINOR, _C.VERSION_PATCH)


def backends():
    """Backends compiled into libnatten, in selection order: [Backend(name, description,
    device, available, reason)], reason saying why one is not available here."""
    return [Backend(*row) for row in _C.backends()]


def __getattr__(name):
    # The torch modules load on first use, so that `import natten` works without torch.
    if name in _TORCH_NAMES:
        from . import modules
        return getattr(modules, name)
    raise AttributeError(f"module 'natten' has no attribute {name!r}")


if "torch" in sys.modules:   # register the custom ops now, outside any torch.compile trace
    from . import _torch  # noqa: F401
