"""Pure-PyTorch definitions of every op (SPEC.md in executable form).

Each function here is the `backend="torch"` path and the ground truth that the C++, CUDA and
Triton kernels are tested against. They favour clarity over speed, use plain autograd, and are
written so that autograd itself never produces NaN where the SPEC defines a gradient.
"""

import torch
import torch.nn.functional as F

from ._stages import is_multi_stage, stage_sum

REDUCTIONS = ("none", "mean", "sum")


def weighted_loss_map(target, *, map_weight=10.0, map_threshold=0.2, map_kernel=3):
    """AWing weighted loss map factor W·M + 1 (AWing paper §4.3), shape of `target` (B,K,H,W).

    M = 1 where the map_kernel×map_kernel grey dilation of the target exceeds map_threshold
    (strict). The dilation is a max pool with −inf padding, i.e. scipy's grey_dilation; like
    max_pool2d, a NaN in the window makes the dilated value NaN, hence M = 0 there.
    """
    if target.numel() == 0:  # max_pool2d rejects empty planes; an empty map is all ones
        return torch.ones_like(target)
    dilated = F.max_pool2d(target, map_kernel, stride=1, padding=map_kernel // 2)
    return map_weight * (dilated > map_threshold).to(target.dtype) + 1.0


def _upcast(pred, *others):
    """Compute in fp32 (fp64 stays fp64), as the kernels do; constants (targets) are detached."""
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    return (pred.to(dtype),) + tuple(None if t is None else t.detach().to(dtype) for t in others)


def _weighted_difference(pred, target, target_weight):
    """mmpose semantics: the loss sees (pred·w, target·w), w (B,K[,H,W]) or (B,N[,D]). Returns
    (pred·w − target·w, target·w), the difference formed as (pred − target)·w: exact where
    pred ≈ target, where the AWing gradient ∝ δ^(α−y−1) magnifies any rounding of δ."""
    if target_weight is None:
        return pred - target, target
    w = target_weight
    while w.dim() < pred.dim():
        w = w.unsqueeze(-1)
    return (pred - target) * w, target * w


def _reduce(loss, reduction):
    """Sum in a fixed order, whatever the thread count: rows of 4096 (each summed by one
    thread), then the row sums (one thread below 32768 rows, i.e. 1.3e8 elements)."""
    if reduction == "none":
        return loss
    flat = loss.reshape(-1)
    rows = F.pad(flat, (0, (-flat.numel()) % 4096)).view(-1, 4096)
    total = rows.sum(dim=1).sum()
    if reduction == "mean":  # an empty batch gives 0, not nan
        return total / max(loss.numel(), 1)
    return total


def awing_loss(pred, target, *, alpha=2.1, omega=14.0, epsilon=1.0, theta=0.5,
               weight_map=True, map_weight=10.0, map_threshold=0.2, map_kernel=3,
               target_weight=None, reduction="mean"):
    """Adaptive Wing loss (Wang et al., ICCV 2019, eq. 6) with the weighted loss map (§4.3).

    pred, target: (B,K,H,W). target_weight: None, (B,K) or (B,K,H,W). The map is built from
    the weighted target. No gradient flows to target or target_weight. Returns a scalar for
    "mean"/"sum", a (B,K,H,W) per-pixel loss for "none", in fp32 (fp64 for fp64 pred).
    """
    pred, target, target_weight = _upcast(pred, target.detach(), target_weight)
    diff, target = _weighted_difference(pred, target, target_weight)
    # δ = |diff| with a NaN-propagating derivative (torch's abs has derivative sign(NaN) = 0):
    # NaN in gives NaN loss and gradient in every backend.
    sign = torch.where(diff > 0, 1.0, torch.where(diff < 0, -1.0, diff * 0))
    delta = diff * sign
    exponent = alpha - target
    # Small errors, eq. 6 first branch. The power is taken on a safe base wherever the branch is
    # not used, so that autograd does not form 0·inf = NaN at δ = 0 (where the gradient is
    # defined as 0) or inf/inf = NaN at δ = inf (where it is the slope A of the other branch).
    is_small = delta < theta
    safe_delta = torch.where(is_small & (delta > 0), delta, torch.ones_like(delta))
    small = omega * torch.log1p(torch.pow(safe_delta / epsilon, exponent))
    small = torch.where(delta > 0, small,
                        omega * torch.log1p(torch.pow(torch.zeros_like(delta), exponent)))
    # Large errors: linear with slope A and offset C so that the loss is C¹ at δ = θ.
    theta_pow = torch.pow(torch.full_like(target, theta / epsilon), exponent)
    a = omega * exponent * (theta_pow / (theta / epsilon)) / (epsilon * (1 + theta_pow))
    c = theta * a - omega * torch.log1p(theta_pow)
    loss = torch.where(is_small, small, a * delta - c)
    if weight_map:
        loss = loss * weighted_loss_map(target, map_weight=map_weight,
                                        map_threshold=map_threshold, map_kernel=map_kernel)
    return _reduce(loss, reduction)


def _sigma_per_channel(sigma, channels, like):
    """sigma as a (K,) tensor of `like`'s dtype and device (a number applies to every channel)."""
    sigma = torch.as_tensor(sigma, dtype=like.dtype, device=like.device)
    return sigma.expand(channels) if sigma.dim() == 0 else sigma


def render_gaussian_heatmaps(coords, height, width, sigma, *, dtype=None):
    """Gaussian target heatmaps y = exp(−((x−cx)² + (y−cy)²)/(2σ²)) (AWing/HRNet targets).

    coords: (B,K,2) landmark positions (x, y) in heatmap pixels, pixel centres at integers: pixel
    (row i, column j) sits at (x, y) = (j, i). sigma: a number or (K,). A landmark with a NaN
    coordinate (missing) renders as an all-zero heatmap; one far outside the map renders its
    in-map tail. Returns (B,K,height,width) in `dtype` (default coords' dtype).
    """
    sigma = _sigma_per_channel(sigma, coords.shape[1], coords)
    xs = torch.arange(width, dtype=coords.dtype, device=coords.device)
    ys = torch.arange(height, dtype=coords.dtype, device=coords.device)
    cx, cy = coords[..., 0, None, None], coords[..., 1, None, None]
    d2 = (xs - cx) ** 2 + (ys[:, None] - cy) ** 2
    heat = torch.exp(-d2 / (2 * sigma[:, None, None] ** 2))
    missing = torch.isnan(coords).any(dim=-1)[..., None, None]
    heat = torch.where(missing, torch.zeros_like(heat), heat)
    return heat.to(dtype or coords.dtype)


def awing_loss_from_coords(pred, coords, sigma, *, stage_weights=None, **awing_keywords):
    """awing_loss(pred, render_gaussian_heatmaps(coords, H, W, sigma), **awing_keywords), the
    target rendered in fp32 (fp64 for fp64 pred). pred (B,K,H,W), coords (B,K,2), sigma a number
    or (K,). Multi-stage: pred (S,B,K,H,W) or a list of S (B,K,H,W) gives
    Σ_s stage_weights[s]·loss(pred[s]) (weights default to 1)."""
    if is_multi_stage(pred):
        return stage_sum(lambda p: awing_loss_from_coords(p, coords, sigma, **awing_keywords),
                         pred, stage_weights)
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    target = render_gaussian_heatmaps(coords.detach().to(dtype), pred.shape[-2], pred.shape[-1],
                                      sigma)
    return awing_loss(pred, target, **awing_keywords)
