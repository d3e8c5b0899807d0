"""ACR loss (docs/coordinate_losses.md): hand-computed values, then the coordinate-loss suite on
every backend."""

import math

import pytest
import torch

import landmark_kernels as lk

from conftest import backend_params
from coord_cases import *  # noqa: F401,F403  (the shared tests, collected here)
from coord_cases import CoordCase

ACR = CoordCase("acr_loss", dict(lam=1.0), error_scale=1.2, kinks=(1.0,), aux="phi",
                default_reduction="mean")


@pytest.fixture
def case():
    return ACR


ALL = backend_params() + [pytest.param("cpu", "torch", id="torch-cpu")]


@pytest.mark.parametrize("device,backend", ALL)
def test_values_by_hand(device, backend):
    """Δ ≤ 1: λ·ln(1 + Δ^(2−Φ)); Δ > 1: Δ² + Φ·ln2 − 1, with λ = 2."""
    pred = torch.tensor([[[0.5, 0.5], [1.0, 2.0], [3.0, 0.0]]], device=device)
    phi = torch.tensor([[[0.0, 1.0], [0.5, 0.25], [1.0, 0.7]]], device=device)
    loss = lk.acr_loss(pred, torch.zeros_like(pred), phi, lam=2.0, reduction="none",
                       backend=backend)
    ln2 = math.log(2.0)
    expected = [[[2 * math.log1p(0.25), 2 * math.log1p(0.5), 2 * ln2],
                 [4 + 0.25 * ln2 - 1, 9 + ln2 - 1, 0.0]]]
    expected = torch.tensor(expected, device=device).reshape(1, 3, 2)
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("device,backend", ALL)
def test_jump_at_one_is_documented(device, backend):
    """The official constant makes the loss jump by (λ − Φ)·ln2 at Δ = 1 (none where λ = Φ)."""
    pred = torch.tensor([[[1.0, 1.0 + 1e-6]]], device=device, dtype=torch.float64 if
                        backend in ("cpu", "torch") else torch.float32)
    for lam, phi_value in ((1.0, 0.3), (0.6, 0.6)):
        phi = torch.full_like(pred, phi_value)
        loss = lk.acr_loss(pred, torch.zeros_like(pred), phi, lam=lam, reduction="none",
                           backend=backend)
        jump = (loss[0, 0, 0] - loss[0, 0, 1]).item()
        assert jump == pytest.approx((lam - phi_value) * math.log(2.0), abs=1e-5)


@pytest.mark.parametrize("device,backend", ALL)
def test_phi_one_gradient_at_zero(device, backend):
    """Φ = 1: the exponent 2 − Φ is 1, the loss λ·ln(1+Δ) has a kink at 0: subgradient 0;
    just off 0 the slope is λ (never NaN or inf), and tiny Δ keep their exact gradient."""
    pred = torch.tensor([[[0.0, 1e-30, -1e-30, 1e-3]]], device=device).reshape(1, 2, 2)
    pred.requires_grad_()
    phi = torch.ones_like(pred)
    loss = lk.acr_loss(pred, torch.zeros_like(pred), phi, lam=3.0, reduction="sum",
                       backend=backend)
    (grad,) = torch.autograd.grad(loss, pred)
    expected = torch.tensor([0.0, 3.0, -3.0, 3.0 / (1 + 1e-3)], device=device).reshape(1, 2, 2)
    torch.testing.assert_close(grad, expected, rtol=1e-5, atol=0)


def test_phi_outside_unit_interval():
    """Φ ∉ [0,1]: the cpu backend raises (free on host memory); the reference (and the GPU
    kernels) give NaN at those elements, value and gradient."""
    pred = torch.rand(2, 3, 2, requires_grad=True)
    phi = torch.rand(2, 3, 2)
    phi[1, 2, 0] = 1.5
    with pytest.raises(RuntimeError, match=r"phi must be in \[0, 1\]: 1 of its values are not"):
        lk.acr_loss(pred, torch.zeros_like(pred), phi, backend="cpu")
    loss = lk.acr_loss(pred, torch.zeros_like(pred), phi, backend="torch", reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    assert loss.isnan().sum() == 1 and loss[1, 2, 0].isnan()
    assert grad.isnan().sum() == 1 and grad[1, 2, 0].isnan()


@pytest.mark.parametrize("device,backend", [p for p in backend_params()
                                            if "cpu" not in p.id.split("-")[0]])
def test_phi_outside_unit_interval_gives_nan_on_gpu_kernels(device, backend):
    pred = torch.rand(2, 3, 2, device=device, requires_grad=True)
    phi = torch.rand(2, 3, 2, device=device)
    phi[0, 0, 1] = -0.1
    loss = lk.acr_loss(pred, torch.zeros_like(pred), phi, backend=backend, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    assert loss.isnan().sum() == 1 and loss[0, 0, 1].isnan()
    assert grad.isnan().sum() == 1 and grad[0, 0, 1].isnan()


def test_fp32_cpu_accuracy_per_element():
    """The cpu backend's fp32 loss and gradient, element by element, against fp64 maths on the
    same inputs: within 4 ulp·(1 + (2−Φ)·|ln Δ|) on the log branch. The second factor is the
    conditioning of Δ^(1−Φ) in float: the rounding of its exponent (1−Φ)·ln Δ, which grows
    with |ln Δ|. Δ from 1 down to subnormals, Φ at 0, 1, next to them and in between."""
    g = torch.Generator().manual_seed(3)
    n = 1 << 16
    delta = torch.exp2(-149 * torch.rand(n, generator=g, dtype=torch.float64) ** 3).float()
    delta[: n // 4] = torch.rand(n // 4, generator=g)  # most errors of a training run
    sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    phi = torch.rand(n, generator=g)
    phi[0::7], phi[1::7] = 0.0, 1.0
    phi[2::7] = 1 - torch.rand(len(phi[2::7]), generator=g) * 2**-20
    phi[3::7] = torch.rand(len(phi[3::7]), generator=g) * 2**-20
    pred = (sign * delta).reshape(1, -1, 2).requires_grad_()
    loss = lk.acr_loss(pred, torch.zeros_like(pred), phi.reshape(1, -1, 2), reduction="none",
                       backend="cpu")
    (grad,) = torch.autograd.grad(loss.sum(), pred)

    d, p = delta.double(), phi.double()
    t = d ** (2 - p)
    expected_loss = torch.log1p(t)
    expected_grad = sign.double() * (2 - p) * d ** (1 - p) / (1 + t)
    bound = 4 * (1 + (2 - p) * d.log().abs())
    for actual, expected, what in ((loss, expected_loss, "loss"), (grad, expected_grad, "grad")):
        ulp = torch.exp2(torch.floor(torch.log2(expected.abs())).clamp_min(-126) - 23)
        ulps = (actual.detach().reshape(-1).double() - expected).abs() / ulp
        worst = (ulps / bound).argmax()
        assert ulps[worst] <= bound[worst], (
            f"{what}: {ulps[worst]:.1f} ulp at Δ={delta[worst]:.3g}, Φ={phi[worst]:.3g}")
