"""Coordinate losses on B×N×2 landmarks (N = 68 or 98), fp32: Wing, SoftWing, ACR, PFLD. Ours
on each backend; the eager reference and torch.compile of it; the public code (mmpose's Wing
and SoftWing; PFLD-pytorch's loss with its Python loop over the attribute classes; ACR's
official TensorFlow loss restated op for op in PyTorch). These tensors are tiny: the cost is kernel
launches and host overhead, not bytes, so the floor is the trivial loss
`(pred - target).abs().sum()` forward and backward."""

import torch

import landmark_kernels as lk
from landmark_kernels import reference

from . import public_code
from .harness import Case, Impl, compiled, ours


def shapes(device, size):
    """(B, N) pairs: a batch of 64 faces (the floor comparison) and a large batch (256 on a CPU,
    1024 on a GPU), 98 landmarks (WFLW); the full run adds 68 (300W)."""
    if size == "smoke":
        return [(2, 68), (3, 5)]
    large = 256 if device.type == "cpu" else 1024
    result = [(64, 98), (large, 98)]
    return result if size == "quick" else result + [(64, 68)]


def _trivial(pred, target):
    return (pred - target).abs().sum()


def coord_inputs(batch, n, device, scale):
    """(pred (B,N,2) requiring grad, target, the generator): targets in [0, scale)."""
    g = torch.Generator(device=device).manual_seed(0)
    target = scale * torch.rand(batch, n, 2, device=device, generator=g)
    noise = scale / 32 * torch.randn(batch, n, 2, device=device, generator=g)
    return (target + noise).requires_grad_(), target, g


def coord_case(op, batch, n, pred, target, impls, extra_leaves=()):
    """A coordinate-loss Case: the impls plus the trivial-loss floor."""
    floor = Impl("floor: (pred - target).abs().sum()", "floor", lambda: _trivial(pred, target))
    return Case(op, f"B={batch} N={n} D=2", impls + [floor], leaves=(pred,) + extra_leaves)


def _pointwise(op, lk_fn, ref_fn, public_name, public_fn, device, size):
    result = []

    def one(batch, n):  # per shape: the closures bind its own tensors
        cases = []
        pred, target, _ = coord_inputs(batch, n, device, 256.0)
        impls = ours(f"lk.{op}_loss", lambda b: lk_fn(pred, target, backend=b), device) + [
            Impl("eager reference", "baseline", lambda: ref_fn(pred, target)),
            *compiled("reference", ref_fn, lambda f: f(pred, target), size),
            Impl(f"{public_code.MMPOSE} {public_name}", "baseline",
                 lambda: public_fn(pred, target)),
        ]
        cases.append(coord_case(op, batch, n, pred, target, impls))
        return cases

    for item in shapes(device, size):
        result += one(*item)
    return result


def wing(device, size):
    return _pointwise("wing", lk.wing_loss, reference.wing_loss, "WingLoss",
                      public_code.mmpose_wing,
                      device, size)


def soft_wing(device, size):
    return _pointwise("soft_wing", lk.soft_wing_loss, reference.soft_wing_loss, "SoftWingLoss",
                      public_code.mmpose_soft_wing, device, size)


def acr(device, size):
    result = []

    def one(batch, n):  # per shape: the closures bind its own tensors
        cases = []
        pred, target, g = coord_inputs(batch, n, device, 1.0)  # ACR's Δ ≈ 1 scale
        phi = torch.rand(batch, n, 2, device=device, generator=g)
        impls = ours("lk.acr_loss", lambda b: lk.acr_loss(pred, target, phi, backend=b),
                     device) + [
            Impl("eager reference", "baseline", lambda: reference.acr_loss(pred, target, phi)),
            *compiled("reference", reference.acr_loss, lambda f: f(pred, target, phi), size),
            Impl("official ACR (TensorFlow code, restated)", "baseline",
                 lambda: public_code.official_acr(pred, target, phi)),
        ]
        cases.append(coord_case("acr", batch, n, pred, target, impls))
        return cases

    for item in shapes(device, size):
        result += one(*item)
    return result


def pfld(device, size):
    result = []

    def one(batch, n):  # per shape: the closures bind its own tensors
        cases = []
        pred, target, g = coord_inputs(batch, n, device, 1.0)
        angles_target = torch.randn(batch, 3, device=device, generator=g)
        angles = (angles_target + 0.1 * torch.randn(batch, 3, device=device, generator=g)
                  ).requires_grad_()
        attributes = (torch.rand(batch, 5, device=device, generator=g) < 0.3).float()
        args = (pred, target, angles, angles_target, attributes)
        attribute_gt = torch.cat([torch.zeros(batch, 1, device=device), attributes], dim=1)
        impls = ours("lk.pfld_loss", lambda b: lk.pfld_loss(*args, backend=b)[0], device) + [
            Impl("eager reference", "baseline", lambda: reference.pfld_loss(*args)[0]),
            *compiled("reference", reference.pfld_loss, lambda f: f(*args)[0], size),
            Impl("PFLD-pytorch PFLDLoss (host loop)", "baseline",
                 lambda: public_code.pfld_pytorch_loss(
                     attribute_gt, target.flatten(1), angles_target, angles, pred.flatten(1),
                     batch)[0]),
        ]
        cases.append(coord_case("pfld", batch, n, pred, target, impls,
                                extra_leaves=(angles,)))
        return cases

    for item in shapes(device, size):
        result += one(*item)
    return result
