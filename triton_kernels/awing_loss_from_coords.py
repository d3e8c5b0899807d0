"""AWing loss against Gaussian targets rendered in the kernel from coordinates (SPEC §1b).

Same contract as `landmark_kernels::awing_loss_from_coords` (csrc/registration.cpp) and the same
target as csrc/gaussian_target.h: per tile, a column Gaussian gx (BLOCK_W exponentials) and a
row Gaussian gy (BLOCK_H), the target their product, and the k×k dilation of the weighted
target from the window pixel nearest to the landmark along each axis (farthest for a negative
weight), so no target is read and no halo either. The per-pixel loss is the AWing kernel's
(awing_pixel); tiles, partial sums and their fixed-order total as in awing_loss.py, and so is
the stage loop of the multi-stage op (stages_loss: the target rendered once per tile for all
stages).
"""

import torch
import triton
import triton.language as tl

from ._math import param as _param
from .awing_loss import (_MAX_PROGRAMS, _NONE, _NUM_WARPS, Specialisation, _tile_shape,
                         finish_sum, stage_weight_tensor, stages_loss)

#: Kernel arguments that are not int32 or pointers (for scripts/kernel_report.py).
SCALAR_TYPES = {name: "fp64" for name in ("alpha", "omega", "inv_epsilon", "theta",
                                         "map_weight", "map_threshold", "grad_scale")}


@triton.jit
def _window_pixel(j, c, radius, n, FARTHEST: tl.constexpr):
    """gaussian_target.h dilation_pixel for the window j − radius .. j + radius cut to
    [0, n − 1]: nearest to c (w ≥ 0) or the farther end (w < 0)."""
    lo = tl.maximum(j - radius, 0.0)
    hi = tl.minimum(j + radius, n - 1.0)
    if FARTHEST:
        return tl.where(c - lo > hi - c, lo, hi)
    else:
        return tl.minimum(tl.maximum(tl.floor(c + 0.5), lo), hi)


@triton.jit
def _dilated(fx, fy, cx, cy, k, radius, H, W, FARTHEST: tl.constexpr):
    """The separable k×k dilation of the unweighted Gaussian (max for w ≥ 0, min for w < 0)."""
    px = _window_pixel(fx, cx, radius, W, FARTHEST)
    py = _window_pixel(fy, cy, radius, H, FARTHEST)
    return tl.exp((py - cy) * (py - cy) * k) * tl.exp((px - cx) * (px - cx) * k)


@triton.jit
def tiles_kernel(pred_ptr, coords_ptr, sigma_ptr, weight_ptr, loss_ptr, grad_ptr, partial_ptr,
                 stage_weight_ptr, K, H, W, tiles_w, tiles_per_plane, num_tiles, S, stage_numel,
                 alpha: tl.float64, omega: tl.float64, inv_epsilon: tl.float64,
                 theta: tl.float64, map_weight: tl.float64, map_threshold: tl.float64,
                 grad_scale: tl.float64,
                 MAP_KERNEL: tl.constexpr, USE_MAP: tl.constexpr, HAS_WEIGHT: tl.constexpr,
                 STORE_LOSS: tl.constexpr, STORE_PARTIAL: tl.constexpr,
                 COMPUTE_GRAD: tl.constexpr, MULTI_STAGE: tl.constexpr,
                 STAGE_WEIGHTS: tl.constexpr, CT: tl.constexpr, FAST: tl.constexpr,
                 VEC4: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    alpha, omega, inv_epsilon = _param(alpha, CT), _param(omega, CT), _param(inv_epsilon, CT)
    theta, map_weight = _param(theta, CT), _param(map_weight, CT)
    map_threshold, grad_scale = _param(map_threshold, CT), _param(grad_scale, CT)
    if VEC4:  # W % 4 == 0: rows start 16-byte aligned, accesses vectorise
        W = (W // 4) * 4
    radius: tl.constexpr = MAP_KERNEL // 2
    pid = tl.program_id(0)
    acc = tl.zeros([BLOCK_H, BLOCK_W], CT)
    for t in range(pid, num_tiles, tl.num_programs(0)):
        plane = (t // tiles_per_plane).to(tl.int64)
        tile = t % tiles_per_plane
        rows = (tile // tiles_w) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
        cols = (tile % tiles_w) * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]
        inside = (rows < H) & (cols < W)
        offs = plane * H * W + rows * W + cols  # int64: B·K·H·W may pass 2^31

        if HAS_WEIGHT:
            w = tl.load(weight_ptr + plane).to(CT)
        else:
            w = tl.full([], 1.0, CT)
        cx = tl.load(coords_ptr + 2 * plane).to(CT)
        cy = tl.load(coords_ptr + 2 * plane + 1).to(CT)
        # A missing landmark (NaN coordinate) moves to +inf: its target is exp(−inf) = 0.
        missing = (cx != cx) | (cy != cy)
        cx = tl.where(missing, float("inf"), cx)
        cy = tl.where(missing, float("inf"), cy)
        sigma = tl.load(sigma_ptr + plane % K).to(CT)
        k = -0.5 / (sigma * sigma)
        fx = cols.to(CT)
        fy = rows.to(CT)
        # One exponential per row and per column of the tile, not per pixel.
        gx = tl.exp((fx - cx) * (fx - cx) * k)
        gy = tl.exp((fy - cy) * (fy - cy) * k)
        target = gy * gx
        if USE_MAP:  # first: one value (the factor) lives across the loss maths, not four
            if w < 0.0:  # a per-heatmap branch: only one of the two is computed
                dilated = _dilated(fx, fy, cx, cy, k, radius, H, W, True)
            else:
                dilated = _dilated(fx, fy, cx, cy, k, radius, H, W, False)
            factor = tl.where(w * dilated > map_threshold, map_weight + 1.0, 1.0).to(CT)
        else:
            factor = 1.0
        acc = stages_loss(pred_ptr, grad_ptr, loss_ptr, stage_weight_ptr, S, stage_numel, offs,
                          inside, target, target * w, w, factor, acc, alpha, omega,
                          inv_epsilon, theta, grad_scale, MULTI_STAGE, STAGE_WEIGHTS, STORE_LOSS,
                          STORE_PARTIAL, COMPUTE_GRAD, CT, FAST)
    if STORE_PARTIAL:
        tl.store(partial_ptr + pid, tl.sum(acc))


def specialisation(shape, *, map_kernel, has_weight, reduction, compute_grad, stages=None,
                   stage_weights=False):
    """Grid, constexprs (all but CT and FAST) and warps of tiles_kernel for one stage's pred of
    `shape` (B,K,H,W); map_kernel 0 means no map; stages, stage_weights as in
    awing_loss.specialisation."""
    batch, channels, height, width = shape
    block_h, block_w = _tile_shape(height, width)
    tiles_w = triton.cdiv(width, block_w)
    tiles_per_plane = triton.cdiv(height, block_h) * tiles_w
    num_tiles = batch * channels * tiles_per_plane
    n_programs = max(1, min(num_tiles, _MAX_PROGRAMS))
    constexprs = dict(MAP_KERNEL=max(int(map_kernel), 1), USE_MAP=map_kernel > 0,
                      HAS_WEIGHT=bool(has_weight), STORE_LOSS=reduction == _NONE,
                      STORE_PARTIAL=reduction != _NONE, COMPUTE_GRAD=bool(compute_grad),
                      MULTI_STAGE=stages is not None, STAGE_WEIGHTS=bool(stage_weights),
                      VEC4=width % 4 == 0, BLOCK_H=block_h, BLOCK_W=block_w)
    return Specialisation((n_programs,), constexprs, _NUM_WARPS,
                          block_h * block_w // (32 * _NUM_WARPS), n_programs,
                          (tiles_w, tiles_per_plane, num_tiles, stages or 1,
                           batch * channels * height * width))


def awing_loss_from_coords_stages(pred, coords, sigma, target_weight, stage_weights, alpha,
                                  omega, epsilon, theta, map_weight, map_threshold, map_kernel,
                                  reduction, compute_grad, *, loss, grad, grad_scale):
    """Triton body of `landmark_kernels::awing_loss_from_coords_stages_triton` (arguments
    checked by the caller): pred (S,B,K,H,W) and S stage_weights, or None for the single-stage
    op (pred (B,K,H,W)). Writes the caller's outputs as
    triton_kernels.awing_loss.awing_loss_stages does and returns (loss, grad)."""
    pred = pred.contiguous()
    coords = coords.contiguous()
    sigma = sigma.contiguous()
    if target_weight is not None:
        target_weight = target_weight.contiguous()
    if pred.numel() == 0:
        if reduction != _NONE:
            loss.zero_()
        return loss, grad
    ct = tl.float64 if loss.dtype == torch.float64 else tl.float32
    weights = stage_weight_tensor(stage_weights, loss)
    shape = pred.shape[1:] if stage_weights is not None else pred.shape
    spec = specialisation(shape, map_kernel=map_kernel if map_weight != 0.0 else 0,
                          has_weight=target_weight is not None, reduction=reduction,
                          compute_grad=compute_grad,
                          stages=None if stage_weights is None else len(stage_weights),
                          stage_weights=weights is not None)
    partials = torch.empty(spec.n_programs if reduction != _NONE else 0, device=pred.device,
                           dtype=loss.dtype)
    tiles_kernel[spec.grid](
        pred, coords, sigma, target_weight if target_weight is not None else pred, loss, grad,
        partials, weights if weights is not None else loss, shape[1], shape[2], shape[3],
        *spec.tile_args, float(alpha), float(omega), 1.0 / float(epsilon), float(theta),
        float(map_weight), float(map_threshold), float(grad_scale), CT=ct,
        num_warps=spec.num_warps, FAST=pred.is_cuda and ct == tl.float32, **spec.constexprs)
    finish_sum(partials, loss, spec, shape.numel(), reduction, ct)
    return loss, grad


def awing_loss_from_coords(pred, coords, sigma, target_weight, alpha, omega, epsilon, theta,
                           map_weight, map_threshold, map_kernel, reduction, compute_grad, *,
                           loss, grad, grad_scale):
    """Triton body of `landmark_kernels::awing_loss_from_coords_triton`:
    awing_loss_from_coords_stages' single-stage case (pred (B,K,H,W), no stage loop)."""
    return awing_loss_from_coords_stages(pred, coords, sigma, target_weight, None, alpha, omega,
                                         epsilon, theta, map_weight, map_threshold, map_kernel,
                                         reduction, compute_grad, loss=loss, grad=grad,
                                         grad_scale=grad_scale)
