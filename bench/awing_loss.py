"""AWing + weighted loss map, fwd+bwd: each backend vs the eager reference, torch.compile of
it, and the memory floor (read pred and target, write the gradient: 12 bytes/pixel in fp32)."""

import torch

import landmark_kernels as lk
from landmark_kernels import reference

from .harness import fwd_bwd, median_ms


def shapes(device):
    # The training shapes of the anchors: WFLW (98 landmarks + 1) heatmaps of 64×64.
    return [(64, 99, 64, 64)] if device.type == "cuda" else [(8, 99, 64, 64)]


def run(device, backends):
    rows = []
    for shape in shapes(device):
        g = torch.Generator(device=device).manual_seed(0)
        target = torch.rand(shape, device=device, generator=g) ** 8  # mostly-dark heatmaps
        pred = (target + 0.1 * torch.randn(shape, device=device, generator=g)).requires_grad_()
        case = f"awing {'x'.join(map(str, shape))} fp32"
        grad = torch.empty_like(pred)
        variants = {
            "floor (copy)": lambda: torch.add(pred.detach(), target, out=grad),
            "eager reference": fwd_bwd(reference.awing_loss, pred, target),
            "torch.compile(reference)": fwd_bwd(torch.compile(reference.awing_loss), pred, target),
        }
        for backend in backends:
            variants[f"lk backend={backend}"] = fwd_bwd(
                lambda p, t, b=backend: lk.awing_loss(p, t, backend=b), pred, target)
        for name, fn in variants.items():
            rows.append(dict(case=case, variant=name, ms=median_ms(fn, device)))
    return rows
