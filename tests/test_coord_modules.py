"""lk.nn coordinate-loss modules: mmpose's numbers for mmpose's arguments, coord_scale, ACR's Φ
from a shape model, PFLD, repr and the mmpose (mmengine) registry."""

import math

import pytest
import torch

import landmark_kernels as lk

from conftest import assert_close


class MmposeWingLoss(torch.nn.Module):
    """mmpose's WingLoss (mmpose/models/losses/regression_loss.py), verbatim."""

    def __init__(self, omega=10.0, epsilon=2.0, use_target_weight=False, loss_weight=1.):
        super().__init__()
        self.omega, self.epsilon = omega, epsilon
        self.use_target_weight, self.loss_weight = use_target_weight, loss_weight
        self.C = self.omega * (1.0 - math.log(1.0 + self.omega / self.epsilon))

    def criterion(self, pred, target):
        delta = (target - pred).abs()
        losses = torch.where(delta < self.omega,
                             self.omega * torch.log(1.0 + delta / self.epsilon), delta - self.C)
        return torch.mean(torch.sum(losses, dim=[1, 2]), dim=0)

    def forward(self, output, target, target_weights=None):
        if self.use_target_weight:
            loss = self.criterion(output * target_weights, target * target_weights)
        else:
            loss = self.criterion(output, target)
        return loss * self.loss_weight


class MmposeSoftWingLoss(MmposeWingLoss):
    """mmpose's SoftWingLoss, verbatim (criterion and constants)."""

    def __init__(self, omega1=2.0, omega2=20.0, epsilon=0.5, use_target_weight=False,
                 loss_weight=1.):
        torch.nn.Module.__init__(self)
        self.omega1, self.omega2, self.epsilon = omega1, omega2, epsilon
        self.use_target_weight, self.loss_weight = use_target_weight, loss_weight
        self.B = self.omega1 - self.omega2 * math.log(1.0 + self.omega1 / self.epsilon)

    def criterion(self, pred, target):
        delta = (target - pred).abs()
        losses = torch.where(delta < self.omega1, delta,
                             self.omega2 * torch.log(1.0 + delta / self.epsilon) + self.B)
        return torch.mean(torch.sum(losses, dim=[1, 2]), dim=0)


def coords(batch=4, n=98, scale=30.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = 256 * torch.rand(batch, n, 2, generator=g)
    pred = target + scale * torch.randn(batch, n, 2, generator=g)
    return pred.requires_grad_(), target


@pytest.mark.parametrize("ours,theirs,kwargs", [
    (lk.nn.WingLoss, MmposeWingLoss, {}),
    (lk.nn.WingLoss, MmposeWingLoss, dict(omega=5.0, epsilon=1.0, loss_weight=2.0)),
    (lk.nn.SoftWingLoss, MmposeSoftWingLoss, {}),
    (lk.nn.SoftWingLoss, MmposeSoftWingLoss, dict(omega1=3.0, omega2=10.0, loss_weight=0.5)),
], ids=["wing", "wing-args", "softwing", "softwing-args"])
@pytest.mark.parametrize("use_target_weight", [False, True])
def test_mmpose_numbers(ours, theirs, kwargs, use_target_weight):
    pred, target = coords()
    w = (torch.rand(4, 98, 1) > 0.2).float()  # mmpose 1.x: keypoint_weights.unsqueeze(-1)
    kw = dict(kwargs, use_target_weight=use_target_weight)
    ours, theirs = ours(**kw), theirs(**kw)
    loss = ours(pred, target, w)
    expected = theirs(pred, target, w)
    assert_close(loss.detach(), expected.detach(), what="loss")
    g, = torch.autograd.grad(loss, pred)
    g_expected, = torch.autograd.grad(expected, pred)
    assert_close(g, g_expected, what="grad")
    assert_close(ours(pred, target, target_weights=w).detach(), expected.detach())
    for w2 in (w.reshape(4, 98), w.expand(4, 98, 2)):  # the other shapes mmpose heads pass
        assert_close(ours(pred, target, w2).detach(), expected.detach())


def test_target_weight_rules():
    pred, target = coords()
    w = torch.ones(4, 98)
    with pytest.raises(ValueError, match="target_weight is required"):
        lk.nn.WingLoss(use_target_weight=True)(pred, target)
    with pytest.raises(ValueError, match="not both"):
        lk.nn.WingLoss()(pred, target, w, target_weights=w)
    ignored = lk.nn.WingLoss()(pred, target, torch.zeros(4, 98))  # use_target_weight=False
    assert ignored.item() == pytest.approx(lk.wing_loss(pred, target).item())


@pytest.mark.parametrize("module", [lk.nn.WingLoss, lk.nn.SoftWingLoss])
def test_coord_scale_gives_the_pixel_loss_on_normalised_labels(module):
    pred, target = coords(scale=3.0)
    pixel = module()(pred, target)
    normalised = module(coord_scale=256.0)(pred / 256, target / 256)
    assert normalised.item() == pytest.approx(pixel.item(), rel=1e-5)


def test_softwing_on_normalised_labels_without_scale_is_l1():
    """The pitfall coord_scale fixes: errors < ω1 = 2 everywhere, so the loss is L1."""
    pred, target = coords(scale=3.0)
    p, t = pred.detach() / 256, target / 256
    l1 = (p - t).abs().sum() / 4
    assert lk.nn.SoftWingLoss()(p, t).item() == pytest.approx(l1.item(), rel=1e-5)
    assert lk.nn.SoftWingLoss(coord_scale=256.0)(p, t).item() != pytest.approx(
        256 * l1.item(), rel=1e-2)


def test_acr_module_with_shape_model():
    g = torch.Generator().manual_seed(0)
    model = lk.ShapeModel.fit(torch.randn(200, 98, 2, generator=g))
    pred = torch.randn(4, 98, 2, generator=g, requires_grad=True)
    target = torch.randn(4, 98, 2, generator=g)
    module = lk.nn.ACRLoss(loss_weight=100.0, shape_model=model)
    module.set_epoch(50)
    assert module.variance == 0.90
    expected = 100 * lk.acr_loss(pred, target, model.phi(target, 0.90))
    assert_close(module(pred, target).detach(), expected.detach())
    phi = torch.rand(4, 98)
    assert_close(module(pred, target, phi=phi).detach(),
                 100 * lk.acr_loss(pred, target, phi).detach())
    w = torch.rand(4, 98, 1)
    weighted = lk.nn.ACRLoss(use_target_weight=True, shape_model=model, variance=0.9)
    assert_close(weighted(pred, target, w).detach(),
                 lk.acr_loss(pred * w, target * w, model.phi(target, 0.9)).detach())
    with pytest.raises(ValueError, match="needs phi, or a shape_model"):
        lk.nn.ACRLoss()(pred, target)


def test_pfld_module():
    g = torch.Generator().manual_seed(0)
    args = (torch.randn(4, 196, generator=g), torch.randn(4, 196, generator=g),
            torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g),
            (torch.rand(4, 5, generator=g) < 0.5).float())
    weighted, l2 = lk.nn.PFLDLoss(weight_floor=1.0, loss_weight=2.0)(*args)
    expected = lk.pfld_loss(*args, weight_floor=1.0)
    assert weighted.item() == pytest.approx(2 * expected[0].item())
    assert l2.item() == pytest.approx(2 * expected[1].item())


def test_repr_shows_hyper_parameters():
    assert "omega=10.0, epsilon=2.0, use_target_weight=False" in repr(lk.nn.WingLoss())
    text = repr(lk.nn.SoftWingLoss(coord_scale=256))
    assert "omega1=2.0, omega2=20.0, epsilon=0.5" in text and "coord_scale=256" in text
    assert "lam=2.0" in repr(lk.nn.ACRLoss(lam=2.0))
    assert "weight_floor=1.0" in repr(lk.nn.PFLDLoss(weight_floor=1.0))
    with pytest.raises(ValueError, match="coord_scale must be > 0"):
        lk.nn.WingLoss(coord_scale=0)


def test_mmengine_registry_builds_the_coordinate_losses():
    mmengine = pytest.importorskip("mmengine", reason="mmengine (mmpose's registry) not installed")
    from landmark_kernels import mmpose as integration
    registry = integration.register_modules(mmengine.Registry("models"))
    loss = registry.build(dict(type="LKSoftWingLoss", omega1=2.0, use_target_weight=True,
                               loss_weight=1.0))
    assert isinstance(loss, lk.nn.SoftWingLoss) and loss.use_target_weight
    for name in ("LKWingLoss", "LKACRLoss", "LKPFLDLoss"):
        assert registry.get(name) is not None
