"""Wing, SoftWing and ACR coordinate losses (docs/coordinate_losses.md) in Triton: one kernel
family.

Same contracts as the C++ ops `landmark_kernels::wing_loss`, `soft_wing_loss` and `acr_loss`
(csrc/registration.cpp) and the same per-element formulation as csrc/coord_loss_math.h; the
loss is a constexpr parameter of one kernel. Each program walks `iters` blocks of BLOCK
consecutive elements of the flattened (B,N,D) tensors, writes the gradient (and the per-element
loss for "none") and keeps a running sum. A problem that fits one program (up to
_ONE_PROGRAM_MAX elements, e.g. a batch of 64 faces × 98 landmarks) is reduced in that program:
one launch in all. Larger ones store one partial per program, which a second one-program kernel
adds in a fixed order. No atomics: reductions are bitwise reproducible run after run.
"""

import torch
import triton
import triton.language as tl

from ._math import log1p, param

_NONE, _MEAN, _SUM, _BATCHMEAN = 0, 1, 2, 3  # reduction codes of the op schemas
_WING, _SOFT_WING, _ACR = 0, 1, 2
_BLOCK = 1024
_ONE_PROGRAM_MAX = 16384
_MAX_PROGRAMS = 4096
_REDUCE_BLOCK = 1024


@triton.jit
def _element_loss(diff, phi, p0, p1, p2, LOSS: tl.constexpr):
    """Loss and ∂loss/∂diff of each element (coord_loss_math.h). Wing: p0 = ω, p1 = ε,
    p2 = 1/ε. SoftWing: p0 = ω1, p1 = ω2, p2 = ε. ACR: p0 = λ."""
    delta = tl.abs(diff)
    if LOSS == 0:
        # ω·ln(1 + x/ε) + (δ − x), x = min(δ, ω): both branches of eq. 5 with one log1p.
        small = delta < p0
        x = tl.where(small, delta, p0)
        slope = tl.where(small, p0 / (p1 + delta), 1.0)
        loss = p0 * log1p(x * p2) + (delta - x)
    elif LOSS == 1:
        # ω1 + ω2·ln(1 + (δ − ω1)/(ε + ω1)) = ω2·ln(1 + δ/ε) + B, without the cancellation.
        small = delta < p0
        excess = tl.where(small, 0.0, delta - p0)
        slope = tl.where(small, 1.0, p1 / (p2 + delta))
        loss = tl.where(small, delta, p0 + p1 * log1p(excess / (p2 + p0)))
    else:
        # x = min(Δ, 1), u = x^(1−Φ), t = u·x = x^(2−Φ): one log and one exp for both.
        small = delta <= 1.0
        x = tl.where(small, delta, 1.0)
        e = 1.0 - phi
        positive = x > 0.0
        u = tl.exp2(e * tl.log2(tl.where(positive, x, 1.0)))
        u = tl.where(positive, u, tl.where(e == 0.0, 1.0, 0.0))
        t = u * x
        slope = tl.where(small, p0 * (1.0 + e) * u / (1.0 + t), 2.0 * delta)
        loss = tl.where(small, p0 * log1p(t), delta * delta + phi * 0.6931471805599453 - 1.0)
        valid = (phi >= 0.0) & (phi <= 1.0)  # NaN outside Φ's domain
        slope = tl.where(valid, slope, float("nan"))
        loss = tl.where(valid, loss, float("nan"))
    # The subgradient 0 at diff = 0; NaN stays NaN (slope·diff·0).
    grad = tl.where(diff > 0.0, slope, tl.where(diff < 0.0, -slope, slope * (diff * 0.0)))
    loss = tl.where(delta != delta, delta, loss)
    return loss, grad


@triton.jit
def _coord_loss_kernel(pred_ptr, target_ptr, weight_ptr, phi_ptr, loss_ptr, grad_ptr,
                       partial_ptr, numel, dims, iters,
                       # fp64 parameters, rounded to CT in the kernel: fp64 runs keep them exact
                       p0: tl.float64, p1: tl.float64, p2: tl.float64, grad_scale: tl.float64,
                       divisor: tl.float64,
                       LOSS: tl.constexpr,
                       WEIGHT_MODE: tl.constexpr,  # 0 none, 1 per landmark, 2 per element
                       PHI_PER_LANDMARK: tl.constexpr,
                       STORE_LOSS: tl.constexpr,   # reduction "none": the per-element loss
                       REDUCE: tl.constexpr,       # 0 no, 1 partial per program, 2 final value
                       COMPUTE_GRAD: tl.constexpr, CT: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    c0, c1, c2, scale = param(p0, CT), param(p1, CT), param(p2, CT), param(grad_scale, CT)
    acc = tl.zeros([BLOCK], CT)
    for it in range(iters):
        offs = (pid * iters + it) * BLOCK + tl.arange(0, BLOCK)
        inside = offs < numel
        target = tl.load(target_ptr + offs, mask=inside, other=0.0).to(CT)
        diff = tl.load(pred_ptr + offs, mask=inside, other=0.0).to(CT) - target
        if WEIGHT_MODE == 1:
            w = tl.load(weight_ptr + offs // dims, mask=inside, other=0.0).to(CT)
        elif WEIGHT_MODE == 2:
            w = tl.load(weight_ptr + offs, mask=inside, other=0.0).to(CT)
        else:
            w = tl.full([BLOCK], 1.0, CT)
        # (pred − target)·w, not pred·w − target·w: exactly 0 at δ = 0, no cancellation near it.
        diff = diff * w
        if LOSS == 2:
            phi_offs = offs // dims if PHI_PER_LANDMARK else offs
            phi = tl.load(phi_ptr + phi_offs, mask=inside, other=0.0).to(CT)
        else:
            phi = diff
        loss, g = _element_loss(diff, phi, c0, c1, c2, LOSS)
        if COMPUTE_GRAD:
            grad = g * w * scale
            tl.store(grad_ptr + offs, grad.to(grad_ptr.dtype.element_ty), mask=inside)
        if STORE_LOSS:
            tl.store(loss_ptr + offs, loss.to(loss_ptr.dtype.element_ty), mask=inside)
        acc += tl.where(inside, loss, 0.0)
    if REDUCE == 1:
        tl.store(partial_ptr + pid, tl.sum(acc, axis=0))
    elif REDUCE == 2:
        total = tl.sum(acc, axis=0) / param(divisor, CT)
        tl.store(loss_ptr, total.to(loss_ptr.dtype.element_ty))


@triton.jit
def _sum_partials_kernel(partial_ptr, out_ptr, n_partials, divisor: tl.float64,
                         CT: tl.constexpr, BLOCK: tl.constexpr):
    # One program, fixed visiting order: the sum is the same bits on every run.
    acc = tl.zeros([BLOCK], CT)
    for start in range(0, n_partials, BLOCK):
        idx = start + tl.arange(0, BLOCK)
        acc += tl.load(partial_ptr + idx, mask=idx < n_partials, other=0.0)
    total = tl.sum(acc, axis=0) / param(divisor, CT)
    tl.store(out_ptr, total.to(out_ptr.dtype.element_ty))


def _weight_mode(weight, pred):
    if weight is None:
        return 0
    return 2 if weight.dim() == 3 and weight.shape[2] == pred.shape[2] else 1


def _coord_loss(loss_kind, pred, target, weight, phi, params, reduction, compute_grad, loss,
                grad, grad_scale):
    """Runs the family into the caller's outputs; arguments already checked by the op
    (landmark_kernels.coord_losses). weight / phi: None, per landmark ((B,N) or (B,N,1)) or per
    element (B,N,D). loss: per element for reduction "none", else 0-dim; grad: ∂loss/∂pred for
    grad_output = 1 times grad_scale (the caller's 1/divisor of the reduction)."""
    pred, target = pred.contiguous(), target.contiguous()
    batch, _, dims = pred.shape
    numel = pred.numel()
    if numel == 0:
        if reduction != _NONE:
            loss.zero_()
        return loss, grad
    divisor = {_MEAN: numel, _BATCHMEAN: batch}.get(reduction, 1)
    weight_mode = _weight_mode(weight, pred)
    weight = weight.contiguous() if weight is not None else pred
    phi_per_landmark = phi is not None and _weight_mode(phi, pred) == 1
    phi = phi.contiguous() if phi is not None else pred

    blocks = triton.cdiv(numel, _BLOCK)
    n_programs = 1 if numel <= _ONE_PROGRAM_MAX else min(blocks, _MAX_PROGRAMS)
    iters = triton.cdiv(blocks, n_programs)
    reduce = 0 if reduction == _NONE else (2 if n_programs == 1 else 1)
    partials = torch.empty(n_programs if reduce == 1 else 0, dtype=loss.dtype, device=pred.device)
    ct = tl.float64 if loss.dtype == torch.float64 else tl.float32
    p0, p1, p2 = (float(p) for p in params)
    _coord_loss_kernel[(n_programs,)](
        pred, target, weight, phi, loss, grad, partials, numel, dims, iters,
        p0, p1, p2, float(grad_scale), float(divisor),
        LOSS=loss_kind, WEIGHT_MODE=weight_mode, PHI_PER_LANDMARK=phi_per_landmark,
        STORE_LOSS=reduction == _NONE, REDUCE=reduce, COMPUTE_GRAD=bool(compute_grad), CT=ct,
        BLOCK=_BLOCK, num_warps=4)
    if reduce == 1:
        _sum_partials_kernel[(1,)](partials, loss, n_programs, float(divisor), CT=ct,
                                   BLOCK=_REDUCE_BLOCK)
    return loss, grad


def wing_loss(pred, target, target_weight, omega, epsilon, reduction, compute_grad, *, loss,
              grad, grad_scale):
    """Triton body of `landmark_kernels::wing_loss_triton`: (loss, grad) as the C++ op."""
    return _coord_loss(_WING, pred, target, target_weight, None,
                       (omega, epsilon, 1.0 / epsilon), reduction, compute_grad, loss, grad,
                       grad_scale)


def soft_wing_loss(pred, target, target_weight, omega1, omega2, epsilon, reduction,
                   compute_grad, *, loss, grad, grad_scale):
    """Triton body of `landmark_kernels::soft_wing_loss_triton`: (loss, grad) as the C++ op."""
    return _coord_loss(_SOFT_WING, pred, target, target_weight, None,
                       (omega1, omega2, epsilon), reduction, compute_grad, loss, grad, grad_scale)


def acr_loss(pred, target, phi, lam, reduction, compute_grad, *, loss, grad, grad_scale):
    """Triton body of `landmark_kernels::acr_loss_triton`: (loss, grad) as the C++ op."""
    return _coord_loss(_ACR, pred, target, None, phi, (lam, 0.0, 0.0), reduction, compute_grad,
                       loss, grad, grad_scale)
