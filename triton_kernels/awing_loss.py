"""Adaptive Wing loss with the weighted loss map (SPEC §1) in Triton.

Same contract as the C++ op `landmark_kernels::awing_loss` (csrc/registration.cpp) and the same
per-pixel formulation as csrc/awing_math.h. Stage one: a fixed number of programs walk
BLOCK_H×BLOCK_W tiles of the heatmaps (four pixels per thread); each builds the map from k×k
shifted loads of the weighted target (the halo is re-read from L1/L2 instead of staged; the
taps unroll, their masks are per row and per column), writes the gradient and, for reduction
"none", the loss map, and stores one partial sum per program. Stage two: one program adds the
partials as a tree, in a fixed order. No atomics, so a reduction is bitwise reproducible run
after run. scripts/kernel_report.py compiles `tiles_kernel` for sm_90/sm_80 through
`specialisation`, the launch facts shared with the wrapper below.
"""

import collections

import torch
import triton
import triton.language as tl

from ._math import log1p, param

_NONE, _MEAN = 0, 1  # reduction codes of the op schema; 2 is sum
_NUM_WARPS = 4
_TILE_ELEMS = 4 * 32 * _NUM_WARPS  # four pixels per thread: few registers, 16-byte accesses
_MAX_BLOCK_W = 64       # 256 B fp32 rows: coalesced, while a tile still spans several rows
# Fixed (device-independent) number of stage-one programs at most, so the partials and their
# order depend on the problem size only; it also bounds stage two to one tree of ≤ 4096 values.
_MAX_PROGRAMS = 4096

#: Kernel arguments that are not int32 or pointers (for scripts/kernel_report.py).
SCALAR_TYPES = {name: "fp64" for name in ("alpha", "omega", "inv_epsilon", "theta",
                                         "map_weight", "map_threshold", "grad_scale")}


@triton.jit
def _asm1(x, instruction: tl.constexpr):
    return tl.inline_asm_elementwise(instruction, "=f,f", [x], dtype=tl.float32, is_pure=True,
                                     pack=1)


@triton.jit
def _lg2(x, FAST: tl.constexpr):
    # FAST (fp32 on a GPU): the hardware's lg2 (one MUFU, subnormals flushed), as the CUDA
    # kernel's FastMath; tl.log2 is an accurate ~25-instruction polynomial. The interpreter
    # (no inline assembly) and fp64 take tl.log2.
    if FAST:
        return _asm1(x, "lg2.approx.ftz.f32 $0, $1;")
    else:
        return tl.log2(x)


@triton.jit
def _ex2(x, FAST: tl.constexpr):
    if FAST:
        return _asm1(x, "ex2.approx.ftz.f32 $0, $1;")
    else:
        return tl.exp2(x)


@triton.jit
def _rcp(x, FAST: tl.constexpr):
    # 1/x within 1 ulp for x in [1, 2^126] (the Python checks bound 1 + t there).
    if FAST:
        return _asm1(x, "rcp.approx.ftz.f32 $0, $1;")
    else:
        return 1.0 / x


@triton.jit
def _log1p(t, CT: tl.constexpr, FAST: tl.constexpr):
    if CT == tl.float64:
        return log1p(t)  # accurate (Goldberg), as the CPU kernel's
    else:
        # As csrc/cuda/awing_loss.cu FastMath: the series to t⁵ below 1/16 (error < t⁶/6), else
        # lg2(1 + t) (relative error ≈ 2e-6): no division, one MUFU.
        series = t * (1.0 - t * (0.5 - t * (1.0 / 3.0 - t * (0.25 - t * 0.2))))
        return tl.where(t < 0.0625, series, 0.6931471805599453 * _lg2(1.0 + t, FAST))


@triton.jit
def awing_pixel(diff, y, alpha, omega, inv_epsilon, theta, CT: tl.constexpr,
                FAST: tl.constexpr):
    """Loss of each pixel and the slope g = |∂loss/∂δ| for diff = (pred − target)·w and the
    weighted target y (eq. 6); shared by every Triton AWing kernel."""
    # csrc/awing_math.h: x = min(δ, θ), t = (x/ε)^(α−y), g = ω(α−y)t / (x(1+t)) is the
    # slope at x (= A once δ ≥ θ), so loss = ω·log1p(t) + g·(δ − x) covers both branches.
    # g = ω(α−y)·(t/xs)·(1/ε)/(1+t) with t/xs = xs^(α−y−1) taken as a power of its own: no
    # quotient of two tiny numbers. xs below fp32's normal range counts as 2^−126 (the
    # hardware's lg2/ex2 flush subnormals), which keeps t/xs exact where α − y = 1.
    delta = tl.abs(diff)
    x = tl.minimum(delta, theta)
    e = alpha - y
    positive = x > 0.0
    xs = tl.where(positive, x, 1.0) * inv_epsilon
    if CT == tl.float32:
        xs = tl.maximum(xs, 1.1754943508222875e-38)
    lx = _lg2(xs, FAST)
    t = _ex2(e * lx, FAST)
    t_over_xs = _ex2((e - 1.0) * lx, FAST)
    # 0^e as torch.pow: 0 for e > 0, 1 for e = 0, inf for e < 0; the gradient there is 0.
    t = tl.where(positive, t, tl.where(e > 0.0, 0.0, tl.where(e == 0.0, 1.0, float("inf"))))
    g = tl.where(positive, omega * e * inv_epsilon * t_over_xs * _rcp(1.0 + t, FAST), 0.0)
    loss = omega * _log1p(t, CT, FAST) + g * (delta - x)
    return loss, g


@triton.jit
def signed_slope(diff, g):
    # ∂loss/∂diff; diff·0: 0 at δ = 0, NaN for a NaN input (NaN in, NaN out as the other
    # backends).
    return tl.where(diff > 0.0, g, tl.where(diff < 0.0, -g, diff * 0.0))


@triton.jit
def _one_stage(pred_ptr, grad_ptr, loss_ptr, offs, inside, target, y, w, factor, ws, acc,
               alpha, omega, inv_epsilon, theta, grad_scale, WEIGHTED: tl.constexpr,
               STORE_LOSS: tl.constexpr, STORE_PARTIAL: tl.constexpr,
               COMPUTE_GRAD: tl.constexpr, CT: tl.constexpr, FAST: tl.constexpr):
    # (pred − target)·w rather than pred·w − y: exact when pred ≈ target, where the gradient
    # ∝ δ^(α−y−1) magnifies any rounding in δ (and exactly 0 at δ = 0 under FMA).
    diff = (tl.load(pred_ptr + offs, mask=inside, other=0.0).to(CT) - target) * w
    loss, g = awing_pixel(diff, y, alpha, omega, inv_epsilon, theta, CT, FAST)
    loss = loss * factor
    if WEIGHTED:  # the stage's weight (multi-stage with weights other than 1)
        loss = loss * ws
        grad_scale = grad_scale * ws
    if COMPUTE_GRAD:
        grad = factor * w * signed_slope(diff, g) * grad_scale
        tl.store(grad_ptr + offs, grad.to(grad_ptr.dtype.element_ty), mask=inside)
    if STORE_LOSS:
        tl.store(loss_ptr + offs, loss.to(loss_ptr.dtype.element_ty), mask=inside)
    if STORE_PARTIAL:
        acc += tl.where(inside, loss, 0.0)
    return acc


@triton.jit
def stages_loss(pred_ptr, grad_ptr, loss_ptr, stage_weight_ptr, S, stage_numel, offs, inside,
                target, y, w, factor, acc, alpha, omega, inv_epsilon, theta, grad_scale,
                MULTI_STAGE: tl.constexpr, STAGE_WEIGHTS: tl.constexpr,
                STORE_LOSS: tl.constexpr, STORE_PARTIAL: tl.constexpr,
                COMPUTE_GRAD: tl.constexpr, CT: tl.constexpr, FAST: tl.constexpr):
    """Loss, gradient (and loss map) of one tile for every stage against its target (target,
    y = target·w) and map factor, computed once by the caller; returns acc plus the tile's
    loss. Stage s is at s·stage_numel elements from the pointers (S stages when MULTI_STAGE,
    else one), times stage_weight_ptr[s] when STAGE_WEIGHTS. Shared by every AWing kernel."""
    if MULTI_STAGE:
        for s in range(S):
            if STAGE_WEIGHTS:
                ws = tl.load(stage_weight_ptr + s).to(CT)
            else:
                ws = 1.0
            acc = _one_stage(pred_ptr, grad_ptr, loss_ptr, offs, inside, target, y, w, factor,
                             ws, acc, alpha, omega, inv_epsilon, theta, grad_scale,
                             STAGE_WEIGHTS, STORE_LOSS, STORE_PARTIAL, COMPUTE_GRAD, CT, FAST)
            # Pointer steps, not s·stage_numel: no 32-bit product to overflow.
            pred_ptr += stage_numel
            grad_ptr += stage_numel
            loss_ptr += stage_numel
    else:
        acc = _one_stage(pred_ptr, grad_ptr, loss_ptr, offs, inside, target, y, w, factor, 1.0,
                         acc, alpha, omega, inv_epsilon, theta, grad_scale, False, STORE_LOSS,
                         STORE_PARTIAL, COMPUTE_GRAD, CT, FAST)
    return acc


@triton.jit
def _weighted_target(target_ptr, weight_ptr, offs, ok, w, WEIGHT_MODE: tl.constexpr,
                     CT: tl.constexpr):
    """Weighted target at offs, −inf where not ok (the max_pool2d padding)."""
    v = tl.load(target_ptr + offs, mask=ok, other=0.0).to(CT)
    if WEIGHT_MODE == 1:
        v = v * w
    elif WEIGHT_MODE == 2:
        v = v * tl.load(weight_ptr + offs, mask=ok, other=0.0).to(CT)
    return tl.where(ok, v, float("-inf"))


@triton.jit
def tiles_kernel(pred_ptr, target_ptr, weight_ptr, loss_ptr, grad_ptr, partial_ptr,
                 stage_weight_ptr, H, W, tiles_w, tiles_per_plane, num_tiles, S, stage_numel,
                 # fp64 parameters, rounded to CT in the kernel: fp64 runs keep them exact
                 alpha: tl.float64, omega: tl.float64, inv_epsilon: tl.float64,
                 theta: tl.float64, map_weight: tl.float64, map_threshold: tl.float64,
                 grad_scale: tl.float64,
                 MAP_KERNEL: tl.constexpr, USE_MAP: tl.constexpr,
                 WEIGHT_MODE: tl.constexpr,  # 0 none, 1 per channel, 2 per pixel
                 STORE_LOSS: tl.constexpr, STORE_PARTIAL: tl.constexpr,
                 COMPUTE_GRAD: tl.constexpr, MULTI_STAGE: tl.constexpr,
                 STAGE_WEIGHTS: tl.constexpr, CT: tl.constexpr, FAST: tl.constexpr,
                 VEC4: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    alpha, omega, inv_epsilon = param(alpha, CT), param(omega, CT), param(inv_epsilon, CT)
    theta, map_weight = param(theta, CT), param(map_weight, CT)
    map_threshold, grad_scale = param(map_threshold, CT), param(grad_scale, CT)
    if VEC4:  # W % 4 == 0: say so, so that rows start 16-byte aligned and accesses vectorise
        W = (W // 4) * 4
    pid = tl.program_id(0)
    acc = tl.zeros([BLOCK_H, BLOCK_W], CT)
    # A 1-D grid of at most _MAX_PROGRAMS programs, each walking tiles pid, pid + grid, ...
    for t in range(pid, num_tiles, tl.num_programs(0)):
        plane = (t // tiles_per_plane).to(tl.int64)
        tile = t % tiles_per_plane
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

        if USE_MAP:
            # Grey dilation of the weighted target, NaN-propagating as max_pool2d (a NaN
            # target's neighbours get factor 1). Row and column masks are formed once per tap
            # row / column; the taps unroll.
            radius: tl.constexpr = MAP_KERNEL // 2
            dilated = tl.full([BLOCK_H, BLOCK_W], float("-inf"), CT)
            for dy in tl.static_range(MAP_KERNEL):
                r = rows + (dy - radius)
                row_ok = (r >= 0) & (r < H)
                for dx in tl.static_range(MAP_KERNEL):
                    c = cols + (dx - radius)
                    ok = row_ok & ((c >= 0) & (c < W))
                    v = _weighted_target(target_ptr, weight_ptr, base + r * W + c, ok, w,
                                         WEIGHT_MODE, CT)
                    dilated = tl.maximum(dilated, v, propagate_nan=tl.PropagateNan.ALL)
            factor = tl.where(dilated > map_threshold, map_weight + 1.0, 1.0).to(CT)
        else:
            factor = 1.0

        acc = stages_loss(pred_ptr + base, grad_ptr + base, loss_ptr + base, stage_weight_ptr,
                          S, stage_numel, offs, inside, target, y, w, factor, acc, alpha, omega,
                          inv_epsilon, theta, grad_scale, MULTI_STAGE, STAGE_WEIGHTS,
                          STORE_LOSS, STORE_PARTIAL, COMPUTE_GRAD, CT, FAST)
    if STORE_PARTIAL:
        tl.store(partial_ptr + pid, tl.sum(acc))


@triton.jit
def sum_partials_kernel(partial_ptr, out_ptr, n_partials, numel: tl.float64,
                        MEAN: tl.constexpr, CT: tl.constexpr, BLOCK: tl.constexpr):
    # One program, one tree over all partials (BLOCK ≥ n_partials): the same bits every run.
    idx = tl.arange(0, BLOCK)
    total = tl.sum(tl.load(partial_ptr + idx, mask=idx < n_partials, other=0.0), axis=0)
    if MEAN:
        total = total / param(numel, CT)
    tl.store(out_ptr, total.to(out_ptr.dtype.element_ty))


Specialisation = collections.namedtuple(
    "Specialisation", "grid constexprs num_warps elements_per_thread n_programs tile_args")


def _tile_shape(height, width):
    """Wide rows for coalescing; the rest of the tile's pixels go to rows, so that the
    (k−1)-pixel halo re-read by the dilation is a small share of the tile."""
    block_w = min(triton.next_power_of_2(width), _MAX_BLOCK_W)
    block_h = min(triton.next_power_of_2(height), max(1, _TILE_ELEMS // block_w))
    return block_h, block_w


def specialisation(shape, *, map_kernel, weight_mode, reduction, compute_grad,
                   stages=None, stage_weights=False):
    """Grid, constexprs (all but CT) and warps of tiles_kernel for one stage's pred of `shape`
    (B,K,H,W); map_kernel 0 means no map; stages: the stage count of a multi-stage op (None:
    the single-stage op); stage_weights: whether they are weighted."""
    batch, channels, height, width = shape
    block_h, block_w = _tile_shape(height, width)
    tiles_w = triton.cdiv(width, block_w)
    tiles_per_plane = triton.cdiv(height, block_h) * tiles_w
    num_tiles = batch * channels * tiles_per_plane
    n_programs = max(1, min(num_tiles, _MAX_PROGRAMS))
    constexprs = dict(MAP_KERNEL=max(int(map_kernel), 1), USE_MAP=map_kernel > 0,
                      WEIGHT_MODE=weight_mode, STORE_LOSS=reduction == _NONE,
                      STORE_PARTIAL=reduction != _NONE, COMPUTE_GRAD=bool(compute_grad),
                      MULTI_STAGE=stages is not None, STAGE_WEIGHTS=bool(stage_weights),
                      VEC4=width % 4 == 0, BLOCK_H=block_h, BLOCK_W=block_w)
    return Specialisation((n_programs,), constexprs, _NUM_WARPS,
                          block_h * block_w // (32 * _NUM_WARPS), n_programs,
                          (tiles_w, tiles_per_plane, num_tiles, stages or 1,
                           batch * channels * height * width))


def stage_weight_tensor(stage_weights, like):
    """The stage weights as a device tensor in the loss dtype, or None when all are 1 (the
    kernel then multiplies by nothing)."""
    if stage_weights is None or all(w == 1.0 for w in stage_weights):
        return None
    return torch.tensor(stage_weights, dtype=like.dtype, device=like.device)


def finish_sum(partials, loss, spec, count, reduction, ct):
    """Stage two: the fixed-order sum of the programs' partials into the 0-dim loss (divided
    by count, one stage's pixels, for "mean")."""
    if reduction != _NONE:
        sum_partials_kernel[(1,)](partials, loss, spec.n_programs, float(count),
                                  MEAN=reduction == _MEAN, CT=ct,
                                  BLOCK=triton.next_power_of_2(spec.n_programs), num_warps=8)


def awing_loss_stages(pred, target, target_weight, stage_weights, alpha, omega, epsilon, theta,
                      map_weight, map_threshold, map_kernel, reduction, compute_grad, *, loss,
                      grad, grad_scale):
    """Triton body of `landmark_kernels::awing_loss_stages_triton` (arguments checked by the
    caller): pred (S,B,K,H,W), stage_weights S numbers or None (the single-stage op, pred
    (B,K,H,W)). Writes into the caller's outputs: loss, the map (pred's shape) for reduction 0,
    else a 0-dim tensor (Σ_s w_s·sum_s, divided by one stage's numel for mean; 0 when empty),
    in fp32 (fp64 for fp64 input); grad, when compute_grad, ∂loss/∂pred for grad_output = 1
    times grad_scale (the caller's factor for one stage's reduction), in grad's dtype. Returns
    (loss, grad)."""
    pred = pred.contiguous()
    target = target.contiguous()
    weight_mode = 0
    if target_weight is not None:
        target_weight = target_weight.contiguous()
        weight_mode = 1 if target_weight.dim() == 2 else 2
    if pred.numel() == 0:
        if reduction != _NONE:
            loss.zero_()
        return loss, grad

    # fp16/bf16/fp32 compute in fp32; fp64 stays fp64 (gradcheck under the interpreter).
    ct = tl.float64 if loss.dtype == torch.float64 else tl.float32
    weights = stage_weight_tensor(stage_weights, loss)
    spec = specialisation(target.shape, map_kernel=map_kernel if map_weight != 0.0 else 0,
                          weight_mode=weight_mode, reduction=reduction,
                          compute_grad=compute_grad,
                          stages=None if stage_weights is None else len(stage_weights),
                          stage_weights=weights is not None)
    partials = torch.empty(spec.n_programs if reduction != _NONE else 0, device=pred.device,
                           dtype=loss.dtype)
    tiles_kernel[spec.grid](
        pred, target, target_weight if target_weight is not None else pred, loss, grad, partials,
        weights if weights is not None else loss, target.shape[2], target.shape[3],
        *spec.tile_args, float(alpha), float(omega), 1.0 / float(epsilon), float(theta),
        float(map_weight), float(map_threshold), float(grad_scale), CT=ct,
        num_warps=spec.num_warps, FAST=pred.is_cuda and ct == tl.float32, **spec.constexprs)
    finish_sum(partials, loss, spec, target.numel(), reduction, ct)
    return loss, grad


def awing_loss(pred, target, target_weight, alpha, omega, epsilon, theta, map_weight,
               map_threshold, map_kernel, reduction, compute_grad, *, loss, grad, grad_scale):
    """Triton body of `landmark_kernels::awing_loss_triton`: awing_loss_stages' single-stage
    case (pred (B,K,H,W), no stage loop)."""
    return awing_loss_stages(pred, target, target_weight, None, alpha, omega, epsilon, theta,
                             map_weight, map_threshold, map_kernel, reduction, compute_grad,
                             loss=loss, grad=grad, grad_scale=grad_scale)
