"""The GPU-only code paths of AWing, checked on the CPU: the fp32 fast-math formulation of the
CUDA and Triton kernels (its documented error bound), and the Triton scaling kernel that serves
the backward on CUDA tensors when the CUDA kernels are not built (run by the interpreter)."""

import math

import numpy as np
import pytest
import torch

from landmark_kernels import _backends, reference

# Worst-case relative errors of the hardware approximations (PTX ISA): lg2.approx 2^-22.6
# absolute near 1 (else 2 ulp), ex2.approx 2 ulp, rcp.approx 1 ulp.
_LG2_ABS, _ULP = 2.0 ** -22.6, 2.0 ** -23


def _fast_math_pixel(delta, y, sign, *, alpha=2.1, omega=14.0, epsilon=1.0, theta=0.5):
    """csrc/cuda/awing_loss.cu FastMath + awing_pixel in fp32 numpy, each approximation pushed
    to its error bound in the direction `sign` (+1 or −1)."""
    f = np.float32
    delta, y = delta.astype(f), y.astype(f)
    x = np.minimum(delta, f(theta))
    e = f(alpha) - y
    at_zero = ~(x > 0)
    xs = np.maximum(np.where(at_zero, f(1), x) * f(1 / epsilon), f(1.17549435e-38))
    lx = (np.log2(xs) + sign * np.maximum(_LG2_ABS, 2 * _ULP * np.abs(np.log2(xs)))).astype(f)
    t = (np.exp2(e * lx) * (1 + sign * 2 * _ULP)).astype(f)
    t_over_xs = (np.exp2((e - 1) * lx) * (1 + sign * 2 * _ULP)).astype(f)
    t = np.where(at_zero, f(0), t)
    rcp = (1 / (f(1) + t) * (1 + sign * _ULP)).astype(f)
    g = np.where(at_zero, f(0), f(omega) * e * t_over_xs * f(1 / epsilon) * rcp)
    series = t * (1 - t * (0.5 - t * (1 / 3 - t * (0.25 - t * 0.2))))
    lg = (np.log2(f(1) + t) + sign * np.maximum(_LG2_ABS, 2 * _ULP * np.log2(f(1) + t)))
    log1p = np.where(t < 0.0625, series, f(math.log(2)) * lg).astype(f)
    loss = f(omega) * log1p + g * (delta - x)
    return loss, sign * 0 + np.sign(delta) * g


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_fast_math_meets_the_fp32_contract(sign):
    """Loss and gradient within 1e-5 relative (1e-6 absolute) of the fp64 reference over the
    heatmap range: δ from 1e-6 to 2, targets in [0, 1]."""
    delta = np.concatenate([np.geomspace(1e-6, 2.0, 4000), [0.0, 0.5]])
    delta, y = np.meshgrid(delta, np.linspace(0.0, 1.0, 21))
    loss, grad = _fast_math_pixel(delta.ravel(), y.ravel(), sign)
    pred = torch.tensor(y.ravel() + delta.ravel(), dtype=torch.float64).reshape(1, 1, 1, -1)
    target = torch.tensor(y.ravel(), dtype=torch.float64).reshape(1, 1, 1, -1)
    pred.requires_grad_()
    ref_loss = reference.awing_loss(pred, target, weight_map=False, reduction="none")
    (ref_grad,) = torch.autograd.grad(ref_loss.sum(), pred)
    torch.testing.assert_close(torch.from_numpy(loss.astype(np.float64)), ref_loss.detach().flatten(),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.from_numpy(grad.astype(np.float64)), ref_grad.flatten(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not (_backends.HAS_TRITON and _backends.TRITON_INTERPRET),
                    reason="needs triton with TRITON_INTERPRET=1 (no CUDA GPU on this machine)")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_triton_scale_grad(dtype):
    from landmark_kernels.triton_kernels.scale_grad import scale_grad_
    grad = torch.randn(3, 700, dtype=torch.float64).to(dtype)  # 2100: three blocks
    kept = grad.clone()
    scale_grad_(grad, torch.tensor(1.0))
    assert torch.equal(grad, kept)  # grad_output 1: untouched
    scale = torch.tensor(-2.5, dtype=torch.float64 if dtype == torch.float64 else torch.float32)
    scale_grad_(grad, scale)
    expected = (kept.to(scale.dtype) * scale).to(dtype)
    if dtype == torch.bfloat16:  # the interpreter truncates to bf16 where a GPU rounds
        torch.testing.assert_close(grad, expected, rtol=2.0 ** -7, atol=0)
    else:
        assert torch.equal(grad, expected)
