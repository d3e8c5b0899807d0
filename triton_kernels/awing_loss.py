"""Adaptive Wing loss with the weighted loss map (SPEC §1) in Triton.

Same contract as the C++ op `landmark_kernels::awing_loss` (csrc/registration.cpp) and the same
per-pixel formulation as csrc/awing_math.h. Stage one: each program takes a BLOCK_H×BLOCK_W
tile of one heatmap, builds the map from k×k shifted loads of the weighted target (the halo is
re-read from L1/L2 instead of staged), writes the gradient and, for reduction "none", the loss
map, and stores one partial sum. Stage two: one program adds the partials in a fixed order.
No atomics, so a reduction is bitwise reproducible run after run.
"""

import torch
import triton
import triton.language as tl

from ._math import log1p, param

_NONE, _MEAN = 0, 1  # reduction codes of the op schema; 2 is sum
_TILE_ELEMS = 1024      # pixels per program: 8 per thread at 4 warps
_MAX_BLOCK_W = 64       # 256 B fp32 rows: coalesced, while a tile still spans several rows
_REDUCE_BLOCK = 1024


@triton.jit
def _awing_tiles_kernel(pred_ptr, target_ptr, weight_ptr, loss_ptr, grad_ptr, partial_ptr,
                        H, W, tiles_w, tiles_per_plane,
                        # fp64 parameters, rounded to CT in the kernel: fp64 runs keep them exact
                        alpha: tl.float64, omega: tl.float64, inv_epsilon: tl.float64,
                        theta: tl.float64, map_weight: tl.float64, map_threshold: tl.float64,
                        grad_scale: tl.float64,
                        MAP_KERNEL: tl.constexpr, USE_MAP: tl.constexpr,
                        WEIGHT_MODE: tl.constexpr,  # 0 none, 1 per channel, 2 per pixel
                        STORE_LOSS: tl.constexpr, STORE_PARTIAL: tl.constexpr,
                        COMPUTE_GRAD: tl.constexpr, CT: tl.constexpr,
                        BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    alpha, omega, inv_epsilon = param(alpha, CT), param(omega, CT), param(inv_epsilon, CT)
    theta, map_weight = param(theta, CT), param(map_weight, CT)
    map_threshold, grad_scale = param(map_threshold, CT), param(grad_scale, CT)
    # A 1-D grid: planes × tiles can exceed the 65535 limit of grid axes 1 and 2.
    pid = tl.program_id(0)
    plane = (pid // tiles_per_plane).to(tl.int64)
    tile = pid % tiles_per_plane
    rows = (tile // tiles_w) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    cols = (tile % tiles_w) * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]
    inside = (rows < H) & (cols < W)
    offs = rows * W + cols
    base = plane * H * W  # int64: B·K·H·W may pass 2^31

    if WEIGHT_MODE == 1:
        w = tl.load(weight_ptr + plane).to(CT)
    elif WEIGHT_MODE == 2:
        w = tl.load(weight_ptr + base + offs, mask=inside, other=0.0).to(CT)
    else:
        w = 1.0
    target = tl.load(target_ptr + base + offs, mask=inside, other=0.0).to(CT)
    y = target * w
    # (pred − target)·w rather than pred·w − y: exact when pred ≈ target, where the gradient
    # ∝ δ^(α−y−1) magnifies any rounding in δ (and exactly 0 at δ = 0 even under FMA).
    diff = (tl.load(pred_ptr + base + offs, mask=inside, other=0.0).to(CT) - target) * w

    # csrc/awing_math.h: x = min(δ, θ), t = (x/ε)^(α−y), g = ω(α−y)t / (x(1+t)) is the slope
    # at x (= A once δ ≥ θ), so loss = ω·log1p(t) + g·(δ − x) covers both branches branch-free.
    delta = tl.abs(diff)
    x = tl.minimum(delta, theta)
    e = alpha - y
    positive = x > 0.0
    safe_x = tl.where(positive, x, 1.0)
    t = tl.exp2(e * tl.log2(safe_x * inv_epsilon))
    # 0^e as torch.pow: 0 for e > 0, 1 for e = 0, inf for e < 0; the gradient there is 0.
    t = tl.where(positive, t, tl.where(e > 0.0, 0.0, tl.where(e == 0.0, 1.0, float("inf"))))
    g = tl.where(positive, omega * e * t / (safe_x * (1.0 + t)), 0.0)
    loss = omega * log1p(t) + g * (delta - x)

    if USE_MAP:
        # Grey dilation of the weighted target, −inf outside the plane (max_pool2d padding).
        radius: tl.constexpr = MAP_KERNEL // 2
        dilated = tl.full([BLOCK_H, BLOCK_W], float("-inf"), CT)
        for dy in range(MAP_KERNEL):
            r = rows + (dy - radius)
            row_ok = (r >= 0) & (r < H)
            for dx in range(MAP_KERNEL):
                c = cols + (dx - radius)
                ok = row_ok & (c >= 0) & (c < W)
                n_offs = r * W + c
                v = tl.load(target_ptr + base + n_offs, mask=ok, other=0.0).to(CT)
                if WEIGHT_MODE == 1:
                    v = v * w
                elif WEIGHT_MODE == 2:
                    v = v * tl.load(weight_ptr + base + n_offs, mask=ok, other=0.0).to(CT)
                # NaN-propagating, as max_pool2d: a NaN target's neighbours get factor 1.
                dilated = tl.maximum(dilated, tl.where(ok, v, float("-inf")),
                                     propagate_nan=tl.PropagateNan.ALL)
        factor = tl.where(dilated > map_threshold, map_weight + 1.0, 1.0).to(CT)
        loss = loss * factor
    else:
        factor = 1.0

    if COMPUTE_GRAD:
        # diff·0: 0 at δ = 0, NaN for a NaN input (NaN in, NaN out as the other backends).
        signed_g = tl.where(diff > 0.0, g, tl.where(diff < 0.0, -g, diff * 0.0))
        grad = factor * w * signed_g * grad_scale
        tl.store(grad_ptr + base + offs, grad.to(grad_ptr.dtype.element_ty), mask=inside)
    if STORE_LOSS:
        tl.store(loss_ptr + base + offs, loss.to(loss_ptr.dtype.element_ty), mask=inside)
    if STORE_PARTIAL:
        tl.store(partial_ptr + pid, tl.sum(tl.where(inside, loss, 0.0)))


@triton.jit
def _sum_partials_kernel(partial_ptr, out_ptr, n_partials, numel: tl.float64,
                         MEAN: tl.constexpr, CT: tl.constexpr, BLOCK: tl.constexpr):
    # One program, fixed visiting order: the sum is the same bits on every run.
    acc = tl.zeros([BLOCK], CT)
    for start in range(0, n_partials, BLOCK):
        idx = start + tl.arange(0, BLOCK)
        acc += tl.load(partial_ptr + idx, mask=idx < n_partials, other=0.0)
    total = tl.sum(acc, axis=0)
    if MEAN:
        total = total / param(numel, CT)
    tl.store(out_ptr, total.to(out_ptr.dtype.element_ty))


def _tile_shape(height, width):
    """Wide rows for coalescing; the rest of the 1024-pixel budget goes to rows, so that the
    (k−1)-pixel halo re-read by the dilation is a small share of the tile."""
    block_w = min(triton.next_power_of_2(width), _MAX_BLOCK_W)
    block_h = min(triton.next_power_of_2(height), max(1, _TILE_ELEMS // block_w))
    return block_h, block_w


def awing_loss(pred, target, target_weight, alpha, omega, epsilon, theta, map_weight,
               map_threshold, map_kernel, reduction, compute_grad, *, loss, grad, grad_scale):
    """Triton body of `landmark_kernels::awing_loss_triton` (arguments checked by the caller).

    Writes into the caller's outputs: loss, the (B,K,H,W) map for reduction 0, else a 0-dim
    tensor (sum, or sum / numel for mean; 0 when empty), in fp32 (fp64 for fp64 input); grad,
    when compute_grad, ∂loss/∂pred for grad_output = 1 times grad_scale (the caller's factor for
    the reduction), in grad's dtype. Returns (loss, grad).
    """
    pred = pred.contiguous()
    target = target.contiguous()
    batch, channels, height, width = pred.shape
    planes, numel = batch * channels, pred.numel()
    weight_mode = 0
    if target_weight is not None:
        target_weight = target_weight.contiguous()
        weight_mode = 1 if target_weight.dim() == 2 else 2
    if numel == 0:
        if reduction != _NONE:
            loss.zero_()
        return loss, grad

    # fp16/bf16/fp32 compute in fp32; fp64 stays fp64 (gradcheck under the interpreter).
    ct = tl.float64 if loss.dtype == torch.float64 else tl.float32
    block_h, block_w = _tile_shape(height, width)
    tiles_w = triton.cdiv(width, block_w)
    tiles_per_plane = triton.cdiv(height, block_h) * tiles_w
    n_programs = planes * tiles_per_plane
    reduce = reduction != _NONE
    partials = torch.empty(n_programs if reduce else 0, device=pred.device, dtype=loss.dtype)
    _awing_tiles_kernel[(n_programs,)](
        pred, target, target_weight if target_weight is not None else pred, loss, grad, partials,
        height, width, tiles_w, tiles_per_plane,
        float(alpha), float(omega), 1.0 / float(epsilon), float(theta), float(map_weight),
        float(map_threshold), float(grad_scale),
        MAP_KERNEL=int(map_kernel), USE_MAP=float(map_weight) != 0.0, WEIGHT_MODE=weight_mode,
        STORE_LOSS=not reduce, STORE_PARTIAL=reduce, COMPUTE_GRAD=bool(compute_grad), CT=ct,
        BLOCK_H=block_h, BLOCK_W=block_w, num_warps=4)
    if reduce:
        _sum_partials_kernel[(1,)](partials, loss, n_programs, float(numel),
                                   MEAN=reduction == _MEAN, CT=ct, BLOCK=_REDUCE_BLOCK)
    return loss, grad
