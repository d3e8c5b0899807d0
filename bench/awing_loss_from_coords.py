"""AWing from coordinates, fwd+bwd: the fused op (target rendered in the kernel) against the
ways a pipeline gets there today: lk.awing_loss on a pre-rendered target (the loader rendered
it: only the loss is timed), render + lk.awing_loss in the step, the "weight map + AWing"
eager reference (render, dilate, AWing in PyTorch, as the official code's loader-side map but
without scipy), the 4-stack case (one multi-stage call against four single-stage calls, and
against four awing_loss calls on the pre-rendered target), and the copy floors (8 bytes/pixel
for this op: read pred, write grad; 12 for the rendered path)."""

import torch

import landmark_kernels as lk
from landmark_kernels import reference

from .awing_loss import four_stacks, stages_fwd_bwd
from .harness import fwd_bwd, median_ms

SIGMA = 1.5


def shapes(device):
    # The AWing bench's shapes (WFLW heatmaps of 64×64), all 99 channels Gaussians here.
    return [(64, 99, 64, 64)] if device.type == "cuda" else [(8, 99, 64, 64)]


def _weight_map_awing(pred, coords):
    """Render, build the weighted loss map (dilation) and AWing, all eager PyTorch."""
    target = reference.render_gaussian_heatmaps(coords, *pred.shape[-2:], SIGMA)
    return reference.awing_loss(pred, target)


def run(device, backends):
    rows = []
    for shape in shapes(device):
        b, k, h, w = shape
        g = torch.Generator(device=device).manual_seed(0)
        coords = torch.rand(b, k, 2, device=device, generator=g) * torch.tensor(
            [w - 1.0, h - 1.0], device=device)
        target = lk.render_gaussian_heatmaps(coords, h, w, SIGMA)
        pred = (target + 0.1 * torch.randn(shape, device=device, generator=g)).requires_grad_()
        case = f"awing from coords {'x'.join(map(str, shape))} fp32"
        grad = torch.empty_like(pred)
        variants = {
            # "floor (copy)" is the rendered path's 12 B/px floor (the yardstick).
            "floor (copy)": lambda: torch.add(pred.detach(), target, out=grad),
            "floor 8 B/px (read pred, write grad)": lambda: torch.mul(pred.detach(), 2.0,
                                                                      out=grad),
            "eager reference": fwd_bwd(_weight_map_awing, pred, coords),
        }
        for backend in backends:
            variants[f"awing_loss(pre-rendered) {backend}"] = fwd_bwd(
                lambda p, t, bk=backend: lk.awing_loss(p, t, backend=bk), pred, target)
            variants[f"render + awing_loss {backend}"] = fwd_bwd(
                lambda p, c, bk=backend: lk.awing_loss(
                    p, lk.render_gaussian_heatmaps(c, h, w, SIGMA), backend=bk), pred, coords)
            variants[f"awing_loss_from_coords {backend}"] = fwd_bwd(
                lambda p, c, bk=backend: lk.awing_loss_from_coords(p, c, SIGMA, backend=bk),
                pred, coords)
        for name, fn in variants.items():
            rows.append(dict(case=case, variant=name, ms=median_ms(fn, device)))
        rows += _four_stacks(device, backends, pred, coords, target)
    return rows


def _four_stacks(device, backends, pred, coords, target):
    """Stacked hourglass, S = 4: awing_loss_from_coords on 4 stages (stacked, list) vs four
    awing_loss_from_coords calls (floor: read 4 stages, write 4 gradients) and vs four
    awing_loss calls on the pre-rendered target."""
    rows = four_stacks(device, backends, pred, (coords, SIGMA), lk.awing_loss_from_coords,
                       "awing from coords")
    listed = [pred.detach().clone().requires_grad_() for _ in range(4)]
    for backend in backends:
        fn = stages_fwd_bwd(lambda s, t, bk=backend: sum(lk.awing_loss(p, t, backend=bk)
                                                         for p in s), listed, target)
        rows.append(dict(case=rows[0]["case"], variant=f"4 x awing_loss(pre-rendered) {backend}",
                         ms=median_ms(fn, device)))
    return rows
