"""Input checks shared by every op: each raises a ValueError/TypeError naming the argument.

The C++ and CUDA kernels TORCH_CHECK the same invariants, so a direct torch.ops call cannot read
out of bounds either; these checks exist to give users a message in Python terms first.
"""

import math
import numbers

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def tensor(name, value, *, dim=None, dims=None):
    """Check that `value` is a floating tensor of rank `dim` (or one of `dims`)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating tensor (float16, bfloat16, float32 or "
                        f"float64), got {value.dtype}")
    allowed = dims if dims is not None else ((dim,) if dim is not None else None)
    if allowed is not None and value.dim() not in allowed:
        want = " or ".join(str(d) for d in allowed)
        raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(value.shape)}")
    return value


def same_shape(name, value, ref_name, ref):
    if value.shape != ref.shape:
        raise ValueError(f"{name} must have the shape of {ref_name} {tuple(ref.shape)}, "
                         f"got {tuple(value.shape)}")


def same_device_dtype(name, value, ref_name, ref, *, dtype=True):
    if value.device != ref.device:
        raise ValueError(f"{name} is on {value.device} but {ref_name} is on {ref.device}")
    if dtype and value.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {value.dtype} but {ref_name} has {ref.dtype}")


def finite(name, value):
    # A chained comparison rather than math.isfinite: it is also False for NaN and traces in
    # torch.compile without a graph break.
    if not isinstance(value, (int, float)) or isinstance(value, bool) or \
            not -math.inf < value < math.inf:
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def positive(name, value):
    if finite(name, value) <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def odd_kernel(name, value, *, largest):
    if (not isinstance(value, int) or isinstance(value, bool) or value < 1 or value % 2 == 0
            or value > largest):
        raise ValueError(f"{name} must be an odd integer in [1, {largest}], got {value!r}")
    return value


def choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def real_in_range(name, value, low, high, *, zero_ok=False):
    """A real number of any kind (Python, NumPy; not bool) in [low, high], or 0 if zero_ok;
    returned as a Python float."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or \
            not (low <= value <= high or (zero_ok and value == 0)):
        zero = "0 or " if zero_ok else ""
        raise ValueError(f"{name} must be {zero}a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def dtype_compatible(name, value, ref_name, ref):
    """value's dtype must be ref's, unless autocast is on for their device and would cast both
    to fp32 (neither is fp64): the usual AMP pattern, e.g. a bf16 prediction, an fp32 target."""
    if value.dtype == ref.dtype:
        return
    if ref.device.type in ("cpu", "cuda") and torch.is_autocast_enabled(ref.device.type) and \
            torch.float64 not in (value.dtype, ref.dtype):
        return
    raise TypeError(f"{name} has dtype {value.dtype} but {ref_name} has {ref.dtype}")
