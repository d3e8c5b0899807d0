"""Wing loss (docs/coordinate_losses.md): its reference values, then the coordinate-loss suite
on every backend."""

import pytest
import torch

import landmark_kernels as lk

from conftest import backend_params
from coord_cases import *  # noqa: F401,F403  (the shared tests, collected here)
from coord_cases import CoordCase

WING = CoordCase("wing_loss", dict(omega=10.0, epsilon=2.0), error_scale=8.0, kinks=(10.0,))


@pytest.fixture
def case():
    return WING


SPEC_PRED = [0.0, 0.5, 3.0, 9.99, 10.0, 25.0]  # both branches, δ = ω exactly


@pytest.mark.parametrize("device,backend", backend_params() + [
    pytest.param("cpu", "torch", id="torch-cpu")])
@pytest.mark.parametrize("pred,expected", [
    (torch.ones(1, 3, 2), 24.327906),
    (torch.tensor(SPEC_PRED).reshape(1, 3, 2), 80.138790),
], ids=["ones", "branches"])
def test_spec_values(device, backend, pred, expected):
    pred = pred.to(device)
    loss = lk.wing_loss(pred, torch.zeros_like(pred), backend=backend)
    assert loss.item() == pytest.approx(expected, abs=1e-5)


def test_linear_branch_offset_is_negative():
    """C = ω − ω·ln(1 + ω/ε) = −7.917595: for δ ≥ ω the loss is δ + 7.917595 (continuous)."""
    pred = torch.tensor([[[10.0, 25.0]]], dtype=torch.float64)
    loss = lk.wing_loss(pred, torch.zeros_like(pred), reduction="none")
    torch.testing.assert_close(loss, pred + 7.917595, rtol=0, atol=1e-6)
