"""PFLD loss (docs/coordinate_losses.md) in Triton: same contract as the C++ op
`landmark_kernels::pfld_loss` (csrc/registration.cpp) and the same per-sample maths as
csrc/pfld_math.h.

Stage one, one program per SAMPLES samples: the class weights (every program computes them
from the batch's attribute frequencies: a few loads per sample, against a launch), each sample's
factor W_b, its squared distance D_b, the gradient W_b·2(ŷ − y)/B and ∂weighted/∂angles; the
per-sample W_b·D_b and D_b go to a scratch. Stage two, one program: both batch means, in a
fixed order (no atomics: bitwise reproducible).
"""

import torch
import triton
import triton.language as tl

from ._math import param, sin_cos_quarter_turn

_ROW_BLOCK = 1024
_TILE = 1024  # elements of (samples × row block) per program and step
_MAX_SAMPLES = 64  # samples per program: its (samples × classes / angles) tiles stay small
_BATCH_BLOCK = 64


@triton.jit
def _sample_kernel(pred_ptr, target_ptr, angles_ptr, angles_target_ptr, attr_ptr, weights_ptr,
                   grad_ptr, grad_angles_ptr, partial_ptr, batch, row, num_angles, num_classes,
                   batch_f: tl.float64, period: tl.float64, weight_floor: tl.float64,
                   HAS_WEIGHTS: tl.constexpr, COMPUTE_GRAD: tl.constexpr, CT: tl.constexpr,
                   SAMPLES: tl.constexpr, BLOCK: tl.constexpr, BLOCK_B: tl.constexpr,
                   BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr):
    period_ct = param(period, CT)
    floor_ct = param(weight_floor, CT)
    batch_ct = param(batch_f, CT)  # B as a float (an int argument of 1 becomes a constexpr)
    inv_batch = 1.0 / batch_ct
    classes = tl.arange(0, BLOCK_C)
    class_ok = classes < num_classes
    if HAS_WEIGHTS:
        w = tl.load(weights_ptr + classes, mask=class_ok, other=0.0).to(CT)
    else:
        # PFLD-pytorch: 1/mean_b(a_bc), or B where no sample has class c (pfld_math.h).
        count = tl.zeros([BLOCK_C], CT)
        for b0 in range(0, batch, BLOCK_B):
            rows = b0 + tl.arange(0, BLOCK_B)
            ok = (rows < batch)[:, None] & class_ok[None, :]
            a = tl.load(attr_ptr + rows[:, None] * num_classes + classes[None, :], mask=ok,
                        other=0.0).to(CT)
            count += tl.sum(a, axis=0)
        freq = count * inv_batch
        w = tl.where(freq > 0.0, 1.0 / tl.where(freq > 0.0, freq, 1.0), batch_ct)

    rows = tl.program_id(0).to(tl.int64) * SAMPLES + tl.arange(0, SAMPLES)
    row_ok = rows < batch
    a = tl.load(attr_ptr + rows[:, None] * num_classes + classes[None, :],
                mask=row_ok[:, None] & class_ok[None, :], other=0.0).to(CT)
    attr = tl.sum(a * w[None, :], axis=1)
    attr = tl.where(attr < floor_ct, floor_ct, attr)  # NaN stays NaN, as clamp(min=)
    ks = tl.arange(0, BLOCK_K)
    angle_ok = row_ok[:, None] & (ks < num_angles)[None, :]
    angle_idx = rows[:, None] * num_angles + ks[None, :]
    d = (tl.load(angles_ptr + angle_idx, mask=angle_ok, other=0.0).to(CT)
         - tl.load(angles_target_ptr + angle_idx, mask=angle_ok, other=0.0).to(CT))
    # Wrapped into [−period/2, period/2): a full-turn error is no error. Through half the
    # angle, h: 1 − cos x = 2·sin²h (no cancellation for small errors), sin x = 2·sin h·cos h.
    to_radians = 6.283185307179586 / period_ct
    h = 0.5 * (d - period_ct * tl.floor(d / period_ct + 0.5)) * to_radians
    sin_h, cos_h = sin_cos_quarter_turn(h, CT)
    sample_weight = tl.sum(tl.where(angle_ok, 2.0 * sin_h * sin_h, 0.0), axis=1) * attr

    grad_scale = 2.0 * sample_weight * inv_batch  # W_b·2/B: the gradient of `weighted`
    d2 = tl.zeros([SAMPLES], CT)
    for start in range(0, row, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        ok = row_ok[:, None] & (offs < row)[None, :]
        idx = rows[:, None] * row + offs[None, :]
        diff = (tl.load(pred_ptr + idx, mask=ok, other=0.0).to(CT)
                - tl.load(target_ptr + idx, mask=ok, other=0.0).to(CT))
        d2 += tl.sum(diff * diff, axis=1)
        if COMPUTE_GRAD:
            tl.store(grad_ptr + idx, (grad_scale[:, None] * diff).to(grad_ptr.dtype.element_ty),
                     mask=ok)
    if COMPUTE_GRAD:
        slope = 2.0 * sin_h * cos_h * to_radians * (attr * d2 * inv_batch)[:, None]
        tl.store(grad_angles_ptr + angle_idx, slope.to(grad_angles_ptr.dtype.element_ty),
                 mask=angle_ok)
    tl.store(partial_ptr + rows, sample_weight * d2, mask=row_ok)
    tl.store(partial_ptr + batch + rows, d2, mask=row_ok)


@triton.jit
def _batch_sum_kernel(partial_ptr, weighted_ptr, l2_ptr, batch, batch_f: tl.float64,
                      CT: tl.constexpr, BLOCK_B: tl.constexpr):
    inv_batch = 1.0 / param(batch_f, CT)
    acc_weighted = tl.zeros([BLOCK_B], CT)
    acc_l2 = tl.zeros([BLOCK_B], CT)
    for b0 in range(0, batch, BLOCK_B):
        rows = b0 + tl.arange(0, BLOCK_B)
        row_ok = rows < batch
        acc_weighted += tl.load(partial_ptr + rows, mask=row_ok, other=0.0)
        acc_l2 += tl.load(partial_ptr + batch + rows, mask=row_ok, other=0.0)
    tl.store(weighted_ptr, (tl.sum(acc_weighted, axis=0) * inv_batch).to(
        weighted_ptr.dtype.element_ty))
    tl.store(l2_ptr, (tl.sum(acc_l2, axis=0) * inv_batch).to(l2_ptr.dtype.element_ty))


def pfld_loss(pred, target, angles, angles_target, attributes, attribute_weights, degrees,
              weight_floor, compute_grad):
    """Triton body of `landmark_kernels::pfld_loss_triton` (arguments checked by the caller):
    (weighted, l2, grad_pred, grad_angles) as the C++ op."""
    pred, target = pred.contiguous(), target.contiguous()
    angles, angles_target = angles.contiguous(), angles_target.contiguous()
    attributes = attributes.contiguous()
    batch, num_angles = angles.shape
    num_classes = attributes.shape[1]
    row = pred.numel() // batch if batch > 0 else 0
    acc_dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    grad_dtype = torch.float32 if pred.dtype == torch.float16 else pred.dtype
    dev = pred.device
    weighted = torch.empty((), dtype=acc_dtype, device=dev)
    l2 = torch.empty((), dtype=acc_dtype, device=dev)
    grad_pred = torch.empty(pred.shape if compute_grad else (0,), dtype=grad_dtype, device=dev)
    grad_angles = torch.empty(angles.shape if compute_grad else (0,), dtype=acc_dtype, device=dev)
    outputs = (weighted, l2, grad_pred, grad_angles)
    if batch == 0:  # the empty batch: both means are 0
        weighted.zero_()
        l2.zero_()
        return outputs
    ct = tl.float64 if acc_dtype == torch.float64 else tl.float32
    block = min(_ROW_BLOCK, triton.next_power_of_2(max(row, 1)))
    samples = min(_MAX_SAMPLES, _TILE // block, triton.next_power_of_2(batch))
    partials = torch.empty((2, batch), dtype=acc_dtype, device=dev)  # W_b·D_b, D_b
    weights = attribute_weights.contiguous() if attribute_weights is not None else attributes
    _sample_kernel[(triton.cdiv(batch, samples),)](
        pred, target, angles, angles_target, attributes, weights, grad_pred, grad_angles,
        partials, batch, row, num_angles, num_classes, float(batch),
        360.0 if degrees else 6.283185307179586, float(weight_floor),
        HAS_WEIGHTS=attribute_weights is not None, COMPUTE_GRAD=bool(compute_grad), CT=ct,
        SAMPLES=samples, BLOCK=block, BLOCK_B=_BATCH_BLOCK,
        BLOCK_C=triton.next_power_of_2(max(num_classes, 1)),
        BLOCK_K=triton.next_power_of_2(max(num_angles, 1)), num_warps=4)
    _batch_sum_kernel[(1,)](partials, weighted, l2, batch, float(batch), CT=ct,
                            BLOCK_B=_BATCH_BLOCK, num_warps=4)
    return outputs
