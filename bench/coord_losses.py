"""Coordinate losses (Wing, SoftWing, ACR, PFLD), fwd+bwd at N=98 landmarks, D=2, fp32: each
backend vs the eager reference, torch.compile of it, and the trivial loss
`(pred - target).abs().sum()` forward+backward — the floor for such small tensors, where the
cost is launches and host overhead, not bytes."""

import torch

import landmark_kernels as lk
from landmark_kernels import reference

from .harness import fwd_bwd, median_ms

FLOOR = "trivial |p−t|.sum()"


def batches(device):
    return (64, 1024) if device.type == "cuda" else (64, 256)


def _trivial(pred, target):
    return (pred - target).abs().sum()


def _cases(batch, device):
    """{case: (reference fn, lk fn taking backend=, pred, extra args)} at batch size `batch`."""
    g = torch.Generator(device=device).manual_seed(0)
    target = 256 * torch.rand(batch, 98, 2, device=device, generator=g)
    pred = (target + 8 * torch.randn(batch, 98, 2, device=device, generator=g)).requires_grad_()
    phi = torch.rand(batch, 98, 2, device=device, generator=g)
    unit = (target / 256, (pred.detach() / 256 + 0.1).requires_grad_())  # ACR's Δ ≈ 1 scale
    angles_target = torch.randn(batch, 3, device=device, generator=g)
    angles = (angles_target + 0.1 * torch.randn(batch, 3, device=device, generator=g))
    attributes = (torch.rand(batch, 5, device=device, generator=g) < 0.3).float()
    pfld = (angles.requires_grad_(), angles_target, attributes)
    return {
        "wing": (reference.wing_loss, lk.wing_loss, pred, (target,)),
        "soft_wing": (reference.soft_wing_loss, lk.soft_wing_loss, pred, (target,)),
        "acr": (reference.acr_loss, lk.acr_loss, unit[1], (unit[0], phi)),
        "pfld (weighted)": (lambda *a: reference.pfld_loss(*a)[0],
                            lambda *a, backend: lk.pfld_loss(*a, backend=backend)[0],
                            pred, (target,) + pfld),
    }


def run(device, backends):
    rows = []
    for batch in batches(device):
        for name, (ref, fn, pred, args) in _cases(batch, device).items():
            case = f"{name} B={batch} N=98 D=2 fp32"
            variants = {
                FLOOR: fwd_bwd(_trivial, pred, args[0]),
                "eager reference": fwd_bwd(ref, pred, *args),
                "torch.compile(reference)": fwd_bwd(torch.compile(ref), pred, *args),
            }
            for backend in backends:
                variants[f"lk backend={backend}"] = fwd_bwd(
                    lambda p, *a, b=backend: fn(p, *a, backend=b), pred, *args)
            for variant, run_once in variants.items():
                rows.append(dict(case=case, variant=variant, ms=median_ms(run_once, device)))
    return rows
