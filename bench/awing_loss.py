"""AWing + weighted loss map, fwd+bwd: each backend vs the eager reference, torch.compile of
it, and the memory floor (read pred and target, write the gradient: 12 bytes/pixel in fp32);
and the 4-stack case (stacked hourglass): one multi-stage call against four single-stage calls
(its floor reads the 4 stages and writes 4 gradients, 32 bytes/pixel in fp32; reading the
target once adds 4 more)."""

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
        rows += four_stacks(device, backends, pred, (target,), lk.awing_loss, "awing")
    return rows


def stages_fwd_bwd(loss_fn, stages, *args):
    """fwd_bwd for a list of leaf stages (each gets its own gradient, reset every run)."""
    def run():
        loss_fn(stages, *args).backward()
        for stage in stages:
            stage.grad = None
    return run


def four_stacks(device, backends, pred, target_args, loss_fn, name, stages=4):
    """Stacked hourglass: `stages` stage outputs against one target (target_args), four
    separate single-stage calls vs one multi-stage call on a stacked (S,B,K,H,W) pred and on a
    list (stacked inside: one copy)."""
    stacked = torch.stack([pred.detach()] * stages).requires_grad_()
    listed = [p.clone().requires_grad_() for p in stacked.detach()]
    grad = torch.empty_like(stacked)
    case = f"{stages} stacks {name} {'x'.join(map(str, pred.shape))} fp32"
    variants = {"floor (copy)": lambda: torch.mul(stacked.detach(), 2.0, out=grad)}
    for backend in backends:
        variants[f"{stages} x {loss_fn.__name__} {backend}"] = stages_fwd_bwd(
            lambda s, *a, bk=backend: sum(loss_fn(p, *a, backend=bk) for p in s), listed,
            *target_args)
        variants[f"{loss_fn.__name__}(S={stages} stacked) {backend}"] = fwd_bwd(
            lambda s, *a, bk=backend: loss_fn(s, *a, backend=bk), stacked, *target_args)
        variants[f"{loss_fn.__name__}(list of {stages}) {backend}"] = stages_fwd_bwd(
            lambda s, *a, bk=backend: loss_fn(s, *a, backend=bk), listed, *target_args)
    return [dict(case=case, variant=variant, ms=median_ms(fn, device))
            for variant, fn in variants.items()]
