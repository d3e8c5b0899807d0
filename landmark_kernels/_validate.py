"""Input checks shared by every op: each raises a ValueError/TypeError naming the argument.

The C++ and CUDA kernels TORCH_CHECK the same invariants, so a direct torch.ops call cannot read
out of bounds either; these checks give users a message in Python terms first, and they are what
the fake kernels and the Triton ops (Python, no C++ checks) run.
"""

import math
import numbers

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
#: The largest finite fp32: hyper-parameters must fit the fp32 arithmetic of the kernels.
FP32_MAX = float(torch.finfo(torch.float32).max)


#: Device types with an autocast state; torch.is_autocast_enabled raises for the others (meta).
AUTOCAST_DEVICE_TYPES = tuple(t for t in ("cpu", "cuda", "xpu", "mps", "hpu", "xla", "mtia")
                              if torch.amp.is_autocast_available(t))


def autocast_enabled(device):
    """Whether autocast is on for `device`'s type; False for a type without autocast (meta), so
    that a meta tensor among CPU tensors reaches the device checks, which name it."""
    return device.type in AUTOCAST_DEVICE_TYPES and torch.is_autocast_enabled(device.type)


def is_tensor(name, value):
    """Any torch.Tensor (index tensors too); a TypeError naming the argument otherwise."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


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


def _is_real(value):
    # Python and NumPy numbers (np.float32, np.int64, ... register as numbers.Real); bool is not
    # a hyper-parameter. The type test first: it is the common case and costs ~50 ns.
    return type(value) in (float, int) or (isinstance(value, numbers.Real)
                                           and not isinstance(value, (bool, torch.Tensor)))


def finite(name, value, *, bound=FP32_MAX):
    """A real number with |value| ≤ bound (default: finite in fp32), returned as float."""
    # A chained comparison rather than math.isfinite: it is also False for NaN and traces in
    # torch.compile without a graph break.
    if not _is_real(value) or not -bound <= float(value) <= bound:
        what = "a finite number" if bound == FP32_MAX else f"a number in [-{bound:g}, {bound:g}]"
        raise ValueError(f"{name} must be {what} (fp32 range), got {value!r}")
    return float(value)


def positive(name, value, *, smallest=0.0):
    """A real number in (smallest, FP32_MAX], returned as float."""
    if finite(name, value) <= smallest:  # finite() returns a float
        raise ValueError(f"{name} must be > {smallest:g}, got {value!r}")
    return float(value)


def non_negative(name, value):
    if finite(name, value) < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return float(value)


def odd_kernel(name, value, *, largest):
    if (not _is_real(value) or not isinstance(value, numbers.Integral) or value < 1
            or value % 2 == 0 or value > largest):
        raise ValueError(f"{name} must be an odd integer in [1, {largest}], got {value!r}")
    return int(value)


def choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def code(name, value, allowed):
    """An integer code of a raw op (e.g. the reduction), one of `allowed`."""
    if type(value) is not int or value not in allowed:
        raise ValueError(f"{name} must be one of the codes {sorted(allowed)}, got {value!r}")
    return value


def finite_fp32_product(name, value):
    """A derived constant (e.g. (θ/ε)^α) that must stay finite in fp32; `name` says which."""
    if not (math.isfinite(value) and abs(value) <= FP32_MAX):
        raise ValueError(f"{name} overflows fp32 ({value!r}): choose smaller values")
    return value


def real_in_range(name, value, low, high, *, zero_ok=False):
    """A real number of any kind (Python, NumPy; not bool) in [low, high], or 0 if zero_ok;
    returned as a Python float."""
    if not _is_real(value) or not (low <= float(value) <= high or (zero_ok and value == 0)):
        zero = "0 or " if zero_ok else ""
        raise ValueError(f"{name} must be {zero}a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)
