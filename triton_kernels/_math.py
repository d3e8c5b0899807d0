"""Helpers shared by the Triton kernels (interpreter-friendly: no libdevice)."""

import triton
import triton.language as tl


@triton.jit
def param(x, CT: tl.constexpr):
    # A float argument as a CT scalar. Arithmetic with the argument itself would round it to
    # fp32 first (Triton types float scalars as fp32, and so does its interpreter), which an
    # fp64 run must not; the arguments are declared fp64 for the same reason.
    return tl.sum(tl.full([1], x, CT), axis=0)


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
