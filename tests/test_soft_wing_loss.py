"""SoftWing loss (docs/coordinate_losses.md): its reference values, then the coordinate-loss
suite on every backend."""

import pytest
import torch

import landmark_kernels as lk

from conftest import backend_params
from coord_cases import *  # noqa: F401,F403  (the shared tests, collected here)
from coord_cases import CoordCase

SOFT_WING = CoordCase("soft_wing_loss", dict(omega1=2.0, omega2=20.0, epsilon=0.5),
                      error_scale=3.0, kinks=(2.0,))


@pytest.fixture
def case():
    return SOFT_WING


SPEC_PRED = [0.0, 0.5, 3.0, 9.99, 10.0, 25.0]


@pytest.mark.parametrize("device,backend", backend_params() + [
    pytest.param("cpu", "torch", id="torch-cpu")])
@pytest.mark.parametrize("pred,reduction,expected", [
    (torch.ones(1, 3, 2), "batchmean", 6.0),
    (torch.tensor(SPEC_PRED).reshape(1, 3, 2), "batchmean", 119.061523),
    (torch.tensor(SPEC_PRED).reshape(1, 3, 2), "mean", 19.843587),
], ids=["ones", "branches", "branches-mean"])
def test_spec_values(device, backend, pred, reduction, expected):
    pred = pred.to(device)
    loss = lk.soft_wing_loss(pred, torch.zeros_like(pred), reduction=reduction, backend=backend)
    assert loss.item() == pytest.approx(expected, abs=1e-5)


def test_normalised_coordinates_degenerate_to_l1():
    """The documented pitfall: with the pixel defaults, errors of coordinates in [0,1] are all
    below ω1 = 2, so SoftWing is exactly L1 there."""
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(4, 98, 2, generator=g), torch.rand(4, 98, 2, generator=g)
    loss = lk.soft_wing_loss(pred, target)
    torch.testing.assert_close(loss, (pred - target).abs().sum() / 4)
