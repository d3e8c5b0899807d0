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


@triton.jit
def sin_cos_quarter_turn(h, CT: tl.constexpr):
    # (sin h, cos h) for |h| ≤ π/2. In fp32 as Taylor polynomials (truncation under 6e-8 there):
    # tl.sin/tl.cos compile to libdevice's, whose reduction for huge arguments keeps a local
    # array in every kernel that calls them; here the argument needs no reduction.
    if CT == tl.float64:
        return tl.sin(h), tl.cos(h)
    h2 = h * h
    s = h + h * h2 * (-1.0 / 6 + h2 * (1.0 / 120 + h2 * (-1.0 / 5040 + h2 * (
        1.0 / 362880 + h2 * (-1.0 / 39916800)))))
    c = 1.0 + h2 * (-0.5 + h2 * (1.0 / 24 + h2 * (-1.0 / 720 + h2 * (1.0 / 40320 + h2 * (
        -1.0 / 3628800 + h2 * (1.0 / 479001600))))))
    return s, c
