"""Gaussian heatmap encoding and its matching decoder (one pixel convention for both).

Convention: pixel (row i, column j) of an H×W heatmap has its centre at (x, y) = (j, i), so a
landmark at integer coordinates peaks exactly on a pixel and there is no ±0.5 shift anywhere.
decode_heatmaps(render_gaussian_heatmaps(c, ...)) returns c to within 0.25 pixel ("quarter")
or ~2e-3 pixel ("dark"); decoding with another convention silently biases every landmark.
"""

import torch

from . import _validate
from .reference import _sigma_per_channel

_REFINES = ("quarter", "dark", None)


def render_gaussian_heatmaps(coords, height, width, sigma, *, dtype=None):
    """Gaussian heatmaps exp(−((x−cx)² + (y−cy)²)/(2σ²)) of landmark coordinates.

    Args:
        coords: (B,K,2) floating, (x, y) in heatmap pixels, pixel centres at integers. A landmark
            with a NaN coordinate (missing) gets an all-zero heatmap.
        height, width: the heatmap size (positive integers).
        sigma: the Gaussian's standard deviation in pixels, a number or a (K,) sequence/tensor.
        dtype: output dtype (fp32/fp16/bf16/fp64); default coords' dtype.
    Returns (B,K,height,width). Computed in fp32 (fp64 for fp64 coords) as the product of a row
    and a column Gaussian (the same values as reference.render_gaussian_heatmaps to rounding),
    so it costs one write of the output; any device, autograd not needed (no gradient).
    """
    _validate.tensor("coords", coords, dim=3)
    if coords.shape[-1] != 2:
        raise ValueError(f"coords must be (B,K,2), got {tuple(coords.shape)}")
    for name, size in (("height", height), ("width", width)):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"{name} must be a positive integer, got {size!r}")
    out_dtype = coords.dtype
    compute = torch.float64 if coords.dtype == torch.float64 else torch.float32
    coords = coords.detach().to(compute)
    sigma = check_sigma(sigma, coords.shape[1], coords)
    inv = -0.5 / sigma[:, None] ** 2                          # (K,1)
    xs = torch.arange(width, dtype=compute, device=coords.device)
    ys = torch.arange(height, dtype=compute, device=coords.device)
    # A NaN coordinate becomes +inf: both factors are then exp(−inf) = 0.
    c = torch.where(torch.isnan(coords).any(-1, keepdim=True), float("inf"), coords)
    gx = torch.exp((xs - c[..., 0, None]) ** 2 * inv)          # (B,K,W)
    gy = torch.exp((ys - c[..., 1, None]) ** 2 * inv)          # (B,K,H)
    return (gy[..., :, None] * gx[..., None, :]).to(dtype or out_dtype)


def check_sigma(sigma, channels, like):
    """sigma (a real number, or K of them) as a (K,) tensor of like's dtype/device; values are
    checked (> 0, finite) except for a tensor on an accelerator (no host sync)."""
    if isinstance(sigma, torch.Tensor):
        if sigma.dim() > 1 or (sigma.dim() == 1 and sigma.shape[0] != channels):
            raise ValueError(f"sigma must be a number or ({channels},), got shape "
                             f"{tuple(sigma.shape)}")
        if sigma.device.type == "cpu" and not torch.compiler.is_compiling() \
                and not bool(((sigma > 0) & (sigma < float("inf"))).all()):
            raise ValueError(f"sigma must be finite and > 0, got {sigma}")
        return _sigma_per_channel(sigma, channels, like)
    if isinstance(sigma, (list, tuple)):
        if len(sigma) != channels:
            raise ValueError(f"sigma must be a number or {channels} numbers, got {len(sigma)}")
        values = [_validate.positive("sigma", s) for s in sigma]
        return torch.tensor(values, dtype=like.dtype, device=like.device)
    return _sigma_per_channel(_validate.positive("sigma", sigma), channels, like)


def decode_heatmaps(heatmaps, *, refine="quarter"):
    """Landmark coordinates (B,K,2) as (x, y) from heatmaps (B,K,H,W), the exact inverse of
    render_gaussian_heatmaps' convention (pixel centres at integers).

    refine: "quarter" (default): the arg-max moved a quarter pixel towards the larger
    neighbour along x and along y (Newell et al., HRNet, face-alignment), where both neighbours
    exist; "dark": the sub-pixel maximum of the log-heatmap's second-order Taylor expansion at
    the arg-max (Zhang et al., DARK, CVPR 2020; exact for a Gaussian; a predicted heatmap is
    usually smoothed first, which this function leaves to the caller), where the 3×3
    neighbourhood exists and the Hessian is negative definite; None: the integer arg-max.
    Returns coordinates in the heatmaps' dtype (fp32 for fp16/bf16); no gradient.
    """
    _validate.tensor("heatmaps", heatmaps, dim=4)
    _validate.choice("refine", refine, _REFINES)
    b, k, h, w = heatmaps.shape
    hm = heatmaps.detach()
    if hm.dtype in (torch.float16, torch.bfloat16):
        hm = hm.float()
    flat = hm.reshape(b, k, h * w)
    if h * w == 0:
        raise ValueError(f"heatmaps must have at least one pixel, got {tuple(heatmaps.shape)}")
    idx = flat.argmax(dim=-1)
    px, py = idx % w, idx // w
    coords = torch.stack((px, py), dim=-1).to(hm.dtype)
    if refine is None:
        return coords

    def at(dx, dy):  # heatmap value at the arg-max shifted by (dx, dy), clamped to the map
        j = (px + dx).clamp(0, w - 1)
        i = (py + dy).clamp(0, h - 1)
        return flat.gather(-1, (i * w + j)[..., None])[..., 0]

    inner_x = (px >= 1) & (px <= w - 2)
    inner_y = (py >= 1) & (py <= h - 2)
    if refine == "quarter":
        ox = torch.where(inner_x, 0.25 * torch.sign(at(1, 0) - at(-1, 0)), 0.0)
        oy = torch.where(inner_y, 0.25 * torch.sign(at(0, 1) - at(0, -1)), 0.0)
        return coords + torch.stack((ox, oy), dim=-1)
    # DARK: offset = −H⁻¹∇ of log(heatmap) from central differences at the arg-max.
    tiny = torch.finfo(hm.dtype).tiny
    log = {(dx, dy): torch.log(at(dx, dy).clamp_min(tiny))
           for dx in (-1, 0, 1) for dy in (-1, 0, 1)}
    gx = 0.5 * (log[1, 0] - log[-1, 0])
    gy = 0.5 * (log[0, 1] - log[0, -1])
    hxx = log[1, 0] - 2 * log[0, 0] + log[-1, 0]
    hyy = log[0, 1] - 2 * log[0, 0] + log[0, -1]
    hxy = 0.25 * (log[1, 1] - log[1, -1] - log[-1, 1] + log[-1, -1])
    det = hxx * hyy - hxy * hxy
    usable = inner_x & inner_y & (hxx < 0) & (det > 0)
    safe_det = torch.where(usable, det, 1.0)
    ox = -(hyy * gx - hxy * gy) / safe_det
    oy = -(hxx * gy - hxy * gx) / safe_det
    offset = torch.stack((torch.where(usable, ox, 0.0), torch.where(usable, oy, 0.0)), dim=-1)
    return coords + offset
