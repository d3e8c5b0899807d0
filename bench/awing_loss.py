"""AWing + weighted loss map on B×K×64×64 heatmaps (K = 68+1 or 98+1 with the boundary map),
fp32. Ours on each backend; the eager reference and torch.compile of it; mmpose's
AdaptiveWingLoss (no weight map); the official pipeline (the map M made in the data loader on
the CPU with scipy, then the loss × (W·M + 1)) with its loader cost on its own row; the floor:
a copy of the bytes the op must move (read pred and target, write the gradient: 12 B/pixel).
Also the 4-stack case (stacked hourglass): one multi-stage call against four single-stage calls."""

import torch

import landmark_kernels as lk
from landmark_kernels import reference

from . import public_code
from .harness import Case, Impl, compiled, ours


def shapes(device, size):
    """(B, K, H, W) heatmap shapes: 99 channels (98 + the boundary map) in --quick."""
    if size == "smoke":
        return [(2, 5, 16, 16), (1, 3, 12, 12)]  # two: each case binds its own tensors
    batch = {"quick": 2, "full": 8}[size] if device.type == "cpu" else \
        {"quick": 16, "full": 32}[size]
    return [(batch, k, 64, 64) for k in ((99,) if size == "quick" else (69, 99))]


def heatmap_pair(shape, device):
    """Mostly-dark targets (a Gaussian per channel) and a noisy prediction of them."""
    b, k, h, w = shape
    g = torch.Generator(device=device).manual_seed(0)
    coords = torch.rand(b, k, 2, device=device, generator=g) * torch.tensor(
        [w - 1.0, h - 1.0], device=device)
    target = reference.render_gaussian_heatmaps(coords, h, w, 1.5)
    pred = (target + 0.1 * torch.randn(shape, device=device, generator=g)).requires_grad_()
    return coords, target, pred


_NOTES = ["mmpose's AdaptiveWingLoss has no weighted loss map: it computes less than ours and "
          "the official pipeline."]
if public_code.grey_dilation is None:
    _NOTES.append("scipy is not installed: the official AWing pipeline is not timed.")


def _official(pred, target, device):
    """The official pipeline: the loss on a loader-made map, and the loader's cost (none
    without scipy)."""
    if public_code.grey_dilation is None:
        return []
    target_np = target.cpu().numpy()
    weight_map = torch.from_numpy(public_code.official_weight_map(target_np)).to(device)
    return [
        Impl("official AWing loss × loader-made map", "baseline",
             lambda: public_code.official_awing_with_map(pred, target, weight_map)),
        Impl("official loader: scipy weight map (CPU) + copy to device", "loader",
             lambda: torch.from_numpy(public_code.official_weight_map(target_np)).to(device)),
    ]


def cases(device, size):
    result = []

    def one(shape):  # per shape: the closures bind its own tensors
        cases = []
        _, target, pred = heatmap_pair(shape, device)
        grad = torch.empty_like(pred)
        impls = ours("lk.awing_loss", lambda b: lk.awing_loss(pred, target, backend=b), device)
        impls += [
            Impl("eager reference", "baseline", lambda: reference.awing_loss(pred, target)),
            *compiled("reference", reference.awing_loss, lambda f: f(pred, target), size),
            Impl(f"{public_code.MMPOSE} AdaptiveWingLoss (no weight map)", "baseline",
                 lambda: public_code.mmpose_awing(pred, target)),
            *_official(pred, target, device),
            Impl("floor: copy 12 B/px", "floor", lambda: torch.add(pred.detach(), target,
                                                                   out=grad)),
        ]
        cases.append(Case("awing", "B={} K={} {}×{}".format(*shape), impls, leaves=(pred,),
                          bytes=12 * pred.numel(), notes=_NOTES))
        cases.append(stacks_case("awing", lk.awing_loss, pred, (target,), device,
                                 target_bytes=4))
        return cases

    for shape in shapes(device, size):
        result += one(shape)
    return result


def stacks_case(op, loss_fn, pred, target_args, device, *, target_bytes, stages=4):
    """Stacked hourglass: `stages` stage outputs against one target. Ours: one multi-stage call
    on the stacked (S,B,K,H,W) pred, and on a list of S preds (stacked inside: one copy); the
    baseline: S single-stage calls. The floor reads the stages and writes their gradients
    (8 B/pixel/stage in fp32); the op also reads the target once (target_bytes per pixel)."""
    stacked = torch.stack([pred.detach()] * stages).requires_grad_()
    listed = [p.clone().requires_grad_() for p in stacked.detach()]
    grad = torch.empty_like(stacked)
    name = f"lk.{loss_fn.__name__}"
    impls = ours(f"{name}(S={stages} stacked)",
                 lambda b: loss_fn(stacked, *target_args, backend=b), device)
    impls += ours(f"{name}(list of {stages})",
                  lambda b: loss_fn(listed, *target_args, backend=b), device)
    impls += [
        Impl(f"{stages} single-stage {name} calls", "baseline",
             lambda: sum(loss_fn(p, *target_args) for p in listed)),
        Impl(f"floor: copy {8 * stages} B/px", "floor",
             lambda: torch.mul(stacked.detach(), 2.0, out=grad)),
    ]
    return Case(op, "{} stacks B={} K={} {}×{}".format(stages, *pred.shape), impls,
                leaves=(stacked, *listed), bytes=(8 * stages + target_bytes) * pred.numel())
