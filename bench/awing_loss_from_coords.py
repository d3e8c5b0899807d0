"""AWing from coordinates (the Gaussian target rendered inside the loss), heatmap shapes as the
AWing bench, σ = 1.5. Ours on each backend (and render + awing_loss, ours in two steps); the
eager reference (render + AWing in PyTorch) and torch.compile of it; the public pipelines, whose
loaders render the targets: mmpose's loss and the official AWing loss on loader-made targets,
with the loader's work (mmpose's unbiased Gaussian renderer per sample, the official scipy
weight map) on its own row; the floor: read pred, write the gradient (8 B/pixel)."""

import numpy as np
import torch

import landmark_kernels as lk
from landmark_kernels import reference

from . import public_code
from .awing_loss import heatmap_pair, shapes, stacks_case
from .harness import Case, Impl, compiled, ours

SIGMA = 1.5


def _loader(coords_np, height, width, device):
    """What the public loaders do per batch: render each sample's targets (mmpose's renderer)
    and, with scipy, the official weight map. Returns the tensors on `device`."""
    targets = np.stack([public_code.mmpose_unbiased_heatmaps(c, height, width, SIGMA)
                        for c in coords_np])
    maps = () if public_code.grey_dilation is None else \
        (torch.from_numpy(public_code.official_weight_map(targets)).to(device),)
    return (torch.from_numpy(targets).to(device),) + maps


def _public(pred, target, coords_np, device):
    """mmpose's loss and the official one on loader-made targets, and the loader's cost."""
    h, w = pred.shape[-2:]
    loaded = _loader(coords_np, h, w, device)
    impls = [Impl(f"{public_code.MMPOSE} AdaptiveWingLoss on loader-made target (no map)",
                  "baseline", lambda: public_code.mmpose_awing(pred, target))]
    if len(loaded) == 2:
        impls.append(Impl("official AWing loss × map, both loader-made", "baseline",
                          lambda: public_code.official_awing_with_map(pred, target, loaded[1])))
    what = "mmpose unbiased Gaussians" + (" + scipy weight map" if len(loaded) == 2 else "")
    return impls + [Impl(f"loader: {what} (CPU) + copy", "loader",
                         lambda: _loader(coords_np, h, w, device)[0])]


def cases(device, size):
    result = []

    def one(shape):  # per shape: the closures bind its own tensors
        cases = []
        h, w = shape[-2:]
        coords, target, pred = heatmap_pair(shape, device)
        grad = torch.empty_like(pred)
        impls = ours("lk.awing_loss_from_coords",
                     lambda b: lk.awing_loss_from_coords(pred, coords, SIGMA, backend=b), device)
        impls += ours("lk.render_gaussian_heatmaps + lk.awing_loss", lambda b: lk.awing_loss(
            pred, lk.render_gaussian_heatmaps(coords, h, w, SIGMA), backend=b), device)
        impls += [
            Impl("eager reference", "baseline",
                 lambda: reference.awing_loss_from_coords(pred, coords, SIGMA)),
            *compiled("reference", reference.awing_loss_from_coords,
                      lambda f: f(pred, coords, SIGMA), size),
            *_public(pred, target, coords.cpu().numpy(), device),
            Impl("floor: copy 8 B/px", "floor", lambda: torch.mul(pred.detach(), 2.0, out=grad)),
        ]
        cases.append(Case("awing_from_coords", "B={} K={} {}×{}".format(*shape), impls,
                          leaves=(pred,), bytes=8 * pred.numel()))
        cases.append(stacks_case("awing_from_coords", lk.awing_loss_from_coords, pred,
                                 (coords, SIGMA), device, target_bytes=0))
        return cases

    for shape in shapes(device, size):
        result += one(shape)
    return result
