"""The small losses' eager fast path (coord_losses._fast, pfld._fast): plain arguments on a C++
backend go straight to the C++ op without the Python checks (the C++ checks repeat them), and
give exactly what the checked path gives. Bad inputs are tests/test_bad_inputs.py's."""

import numpy as np
import pytest
import torch

import landmark_kernels as lk
from landmark_kernels import coord_losses, pfld

G = torch.Generator().manual_seed(0)
PRED = (4 * torch.rand(3, 5, 2, generator=G)).requires_grad_()
TARGET = 4 * torch.rand(3, 5, 2, generator=G)
PHI = torch.rand(3, 5, generator=G)
ANGLES = torch.randn(3, 3, generator=G).requires_grad_()
ANGLES_TARGET = torch.randn(3, 3, generator=G)
ATTRIBUTES = (torch.rand(3, 4, generator=G) < 0.5).float()

# name: (module holding the Python check, its name, call(scalar) with hyper-parameters of that
# scalar type, the leaves to differentiate)
CALLS = {
    "wing": (coord_losses, "check_wing",
             lambda x: lk.wing_loss(PRED, TARGET, omega=x(10.0), epsilon=x(2.0)), (PRED,)),
    "soft_wing": (coord_losses, "check_soft_wing",
                  lambda x: lk.soft_wing_loss(PRED, TARGET, omega1=x(2.0), omega2=x(20.0),
                                              epsilon=x(0.5)), (PRED,)),
    "acr": (coord_losses, "check_acr",
            lambda x: lk.acr_loss(PRED / 4, TARGET / 4, PHI, lam=x(1.0)), (PRED,)),
    "pfld": (pfld, "check_pfld",
             lambda x: lk.pfld_loss(PRED, TARGET, ANGLES, ANGLES_TARGET, ATTRIBUTES,
                                    weight_floor=x(0.5))[0], (PRED, ANGLES)),
}


@pytest.mark.parametrize("name", CALLS)
def test_plain_call_skips_the_python_checks(monkeypatch, name):
    module, check, call, _ = CALLS[name]

    def refuse(*args, **kwargs):
        raise AssertionError("the Python check ran")
    monkeypatch.setattr(module, check, refuse)
    assert torch.isfinite(call(float))
    with pytest.raises(AssertionError, match="the Python check ran"):
        call(np.float64)  # a NumPy scalar takes the checked path


@pytest.mark.parametrize("name", CALLS)
def test_fast_and_checked_paths_agree(name):
    _, _, call, leaves = CALLS[name]
    results = []
    for scalar in (float, np.float64):  # fast path, checked path
        loss = call(scalar)
        results.append((loss.detach(), *torch.autograd.grad(loss, leaves)))
    for fast, checked in zip(*results):
        assert torch.equal(fast, checked)
