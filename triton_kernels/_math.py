"""Element-wise helpers shared by the Triton kernels (interpreter-friendly: no libdevice)."""

import triton
import triton.language as tl


@triton.jit
def log1p(t):
    # No libdevice in the interpreter; log(u)·t/(u−1) cancels the rounding of u = 1 + t
    # (Goldberg), so small t keeps full relative precision.
    u = 1.0 + t
    d = u - 1.0
    safe_d = tl.where(d == 0.0, 1.0, d)
    r = tl.log(u) * (t / safe_d)
    r = tl.where(d == 0.0, t, r)
    return tl.where(u == float("inf"), u, r)


@triton.jit
def scalar(value, CT: tl.constexpr):
    """A float kernel argument as a [1] tensor of the compute type CT, rounded once. Declare the
    argument `tl.float64`: compiled kernels then receive it in fp64, and the interpreter, which
    keeps a Python float, combines it with a CT tensor at full precision (tl.cast or tl.where
    would first round it to fp32)."""
    return (tl.zeros([1], CT) + value).to(CT)
