"""Which backend runs an op, and the rule behind backend="auto".

auto: CUDA tensors use the CUDA C++ kernels when built, else Triton, else torch; CPU tensors use
the C++ kernels ("cpu"). Triton is never auto-picked on the CPU: its interpreter (TRITON_INTERPRET=1)
is for testing the Triton kernels, not for speed. Other devices fall back to "torch".
Availability is decided once at import (TRITON_INTERPRET must be set before importing).
"""

import importlib.util
import os

import torch

from . import _validate
from ._extension import HAS_CUDA_KERNELS

BACKENDS = ("cuda", "triton", "cpu", "torch")
HAS_TRITON = importlib.util.find_spec("triton") is not None
TRITON_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
_AVAILABLE = {
    "cuda": tuple(b for b, ok in (("cuda", HAS_CUDA_KERNELS and torch.cuda.is_available()),
                                  ("triton", HAS_TRITON and torch.cuda.is_available()),
                                  ("torch", True)) if ok),
    "cpu": ("cpu",) + (("triton",) if HAS_TRITON and TRITON_INTERPRET else ()) + ("torch",),
}


# The C++ backend of each device type, where built: what "auto" picks there.
_NATIVE = {kind: kind for kind in ("cpu", "cuda") if _AVAILABLE[kind][0] == kind}


def fast_path(backend, pred):
    """The C++ backend ("cpu" or "cuda") an eager call may go straight to, or None: pred must be
    a plain tensor (not traced: no torch.compile, no subclass) and `backend` must select the C++
    kernels of its device ("auto" or their name; any other name is left to resolve()). Costs a
    few attribute reads: it guards the small losses' unchecked fast path (coord_losses._fast,
    pfld._fast)."""
    if type(pred) is not torch.Tensor or torch.compiler.is_compiling():
        return None
    kind = "cpu" if pred.is_cpu else ("cuda" if pred.is_cuda else None)
    return _NATIVE.get(kind) if backend == "auto" or backend == kind else None


def available_backends(device):
    """Backends that work for tensors on `device` (str or torch.device), fastest first."""
    return _AVAILABLE.get(torch.device(device).type, ("torch",))


def resolve(backend, device):
    """The concrete backend for `backend` ("auto" or a name) on `device`; raises if unusable."""
    available = _AVAILABLE.get(device.type, ("torch",))
    if backend == "auto":
        return available[0]
    if backend in available:
        return backend
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'auto' or one of {BACKENDS}, got {backend!r}")
    raise RuntimeError(f"backend {backend!r} is not available for {device.type} tensors here; "
                       f"available: {available}")


def reference_call(device, fn, *args, **kwargs):
    """fn(*args, **kwargs) for backend="torch"; under autocast, as the ops' autocast rule runs
    the kernels (floating tensors in fp32, autocast off): the reference's matrix products would
    otherwise run in bf16/fp16 and return that dtype, unlike every other backend
    (docs/backends.md)."""
    if not _validate.autocast_enabled(device):
        return fn(*args, **kwargs)

    def fp32(v):
        return v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
    with torch.autocast(device.type, enabled=False):
        return fn(*map(fp32, args), **{k: fp32(v) for k, v in kwargs.items()})
