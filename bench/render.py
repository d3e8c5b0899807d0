"""Gaussian target heatmaps from B×K×2 coordinates (K = 68 or 98, 64×64, σ = 1.5), forward only
(targets need no gradient): lk.render_gaussian_heatmaps (one write of the output: a row and a
column Gaussian multiplied); the eager reference (the full 2-D exponent) and torch.compile of
it; the public code: mmpose's unbiased Gaussian renderer, per sample and per keypoint in NumPy
in the data loader, plus the copy to the device; the floor: filling the same output bytes."""

import numpy as np
import torch

import landmark_kernels as lk
from landmark_kernels import reference

from . import public_code
from .harness import Case, Impl, compiled

SIGMA = 1.5


def shapes(device, size):
    """(B, K, H, W) of the rendered heatmaps."""
    if size == "smoke":
        return [(2, 5, 16, 16), (1, 3, 12, 12)]
    batch = {"quick": 2, "full": 8}[size] if device.type == "cpu" else 32
    return [(batch, k, 64, 64) for k in ((98,) if size == "quick" else (68, 98))]


def render(device, size):
    result = []

    def one(b, k, h, w):  # per shape: the closures bind its own tensors
        cases = []
        g = torch.Generator(device=device).manual_seed(0)
        coords = torch.rand(b, k, 2, device=device, generator=g) * torch.tensor(
            [w - 1.0, h - 1.0], device=device)
        coords_np = coords.cpu().numpy()
        out = torch.empty(b, k, h, w, device=device)
        impls = [
            Impl("lk.render_gaussian_heatmaps", "ours",
                 lambda: lk.render_gaussian_heatmaps(coords, h, w, SIGMA)),
            Impl("eager reference", "baseline",
                 lambda: reference.render_gaussian_heatmaps(coords, h, w, SIGMA)),
            *compiled("reference", reference.render_gaussian_heatmaps,
                      lambda f: f(coords, h, w, SIGMA), size),
            Impl("mmpose unbiased Gaussians (NumPy loader) + copy", "baseline",
                 lambda: torch.from_numpy(np.stack([
                     public_code.mmpose_unbiased_heatmaps(c, h, w, SIGMA) for c in coords_np
                 ])).to(device)),
            Impl("floor: write 4 B/px", "floor", lambda: out.fill_(1.0)),
        ]
        cases.append(Case("render", f"B={b} K={k} {h}×{w}", impls, bytes=4 * out.numel()))
        return cases

    for item in shapes(device, size):
        result += one(*item)
    return result
