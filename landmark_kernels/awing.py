"""Adaptive Wing loss with the weighted loss map: functional API and op wiring."""

import math

import torch

from . import _backends, _validate, reference
from ._fused import REDUCTION_CODES, register_fused_loss
from ._stages import call_fused, check_stages, split, stage_sum

_MAX_MAP_KERNEL = 31  # csrc/awing_loss.h kMaxMapKernel: the CUDA halo tile bound
_REDUCTIONS = ("none", "mean", "sum")
_LOG_T_MAX = 126 * math.log(2.0)


def _check_constants(alpha, omega, epsilon, theta):
    """The loss's constants must fit the fp32 maths for targets y in [0, 1]: (θ/ε)^(α−y) ≤ 2^126
    (the GPU kernels' reciprocal of 1 + t is exact to 1 ulp up to there) and the slope A of the
    linear branch (eq. 6) finite, both largest at y = 0 or y = 1."""
    log_ratio = math.log(theta / epsilon)
    for exponent in (alpha, alpha - 1.0):
        if exponent * log_ratio > _LOG_T_MAX:
            raise ValueError(f"alpha={alpha!r}, theta={theta!r} and epsilon={epsilon!r} overflow "
                             "fp32: (theta/epsilon)^(alpha - target) > 2^126")
    theta_pow = math.exp(alpha * log_ratio)
    slope = omega * alpha * theta_pow / (theta * (1.0 + theta_pow))
    if not slope <= _validate.FP32_MAX or not omega * math.log1p(theta_pow) <= _validate.FP32_MAX:
        raise ValueError(f"omega={omega!r} with alpha, theta, epsilon gives a loss slope that "
                         "overflows fp32")


def check_awing_params(alpha, omega, epsilon, theta, map_weight, map_threshold, map_kernel,
                       reduction, compute_grad):
    """The scalar arguments of both AWing raw ops (awing_loss, awing_loss_from_coords)."""
    _validate.positive("alpha", alpha)
    _validate.positive("omega", omega)
    _validate.positive("epsilon", epsilon, smallest=1.0 / _validate.FP32_MAX)
    _validate.positive("theta", theta)
    _check_constants(alpha, omega, epsilon, theta)
    _validate.non_negative("map_weight", map_weight)
    _validate.finite("map_threshold", map_threshold)
    _validate.odd_kernel("map_kernel", map_kernel, largest=_MAX_MAP_KERNEL)
    _validate.code("reduction", reduction, (0, 1, 2))
    if type(compute_grad) is not bool:
        raise TypeError(f"compute_grad must be a bool, got {compute_grad!r}")


def check_op_args(pred, target, target_weight, alpha, omega, epsilon, theta, map_weight,
                  map_threshold, map_kernel, reduction, compute_grad, *, same_dtype=True):
    """Validate the arguments of the raw ops awing_loss / awing_loss_triton (their schema in
    csrc/registration.cpp), as the C++ kernels do; also run by the fake and Triton kernels.
    same_dtype=False lets autocast cast mixed dtypes later."""
    _validate.tensor("pred", pred, dim=4)
    _validate.tensor("target", target)
    _validate.same_shape("target", target, "pred", pred)
    _validate.same_device_dtype("target", target, "pred", pred, dtype=same_dtype)
    if target_weight is not None:
        _validate.tensor("target_weight", target_weight, dims=(2, 4))
        if target_weight.shape != pred.shape[:2] and target_weight.shape != pred.shape:
            raise ValueError(f"target_weight must be (B,K) = {tuple(pred.shape[:2])} or the shape "
                             f"of pred {tuple(pred.shape)}, got {tuple(target_weight.shape)}")
        _validate.same_device_dtype("target_weight", target_weight, "pred", pred,
                                    dtype=same_dtype)
    check_awing_params(alpha, omega, epsilon, theta, map_weight, map_threshold, map_kernel,
                       reduction, compute_grad)


def _channel_weight(target_weight):
    """mmpose passes (B,K,1) (some code (B,K,1,1)): one weight per heatmap, i.e. (B,K)."""
    if isinstance(target_weight, torch.Tensor) and target_weight.dim() in (3, 4) \
            and all(size == 1 for size in target_weight.shape[2:]):
        return target_weight.reshape(target_weight.shape[:2])
    return target_weight


def public_target_weight(target_weight, pred, same_dtype):
    """A public call's target_weight: per channel as the kernels take it, in pred's dtype
    unless autocast casts everything later (same_dtype=False)."""
    target_weight = _channel_weight(target_weight)
    if isinstance(target_weight, torch.Tensor) and same_dtype \
            and target_weight.dtype in _validate.FLOAT_DTYPES:
        target_weight = target_weight.to(pred.dtype)
    return target_weight


def awing_loss(pred, target, *, alpha=2.1, omega=14.0, epsilon=1.0, theta=0.5,
               weight_map=True, map_weight=10.0, map_threshold=0.2, map_kernel=3,
               target_weight=None, reduction="mean", stage_weights=None, backend="auto"):
    """Adaptive Wing loss (Wang et al. 2019, eq. 6) times the weighted loss map W·M + 1 (§4.3).

    Args:
        pred, target: heatmaps (B,K,H,W), same floating dtype and device (under autocast, any
            dtypes: the op runs in fp32); any H×W and strides. Targets are expected in [0, 1].
        alpha, omega, epsilon, theta: the loss's α=2.1, ω=14, ε=1, θ=0.5 (mmpose defaults), any
            real numbers (NumPy scalars too) with α, ω, ε, θ > 0 whose constants fit fp32.
        weight_map: multiply by the map; M = 1 where the map_kernel×map_kernel grey dilation of
            the target exceeds map_threshold (strict); map_weight (≥ 0) is W. Computed in the
            kernel, never materialised. weight_map=False gives mmpose's plain AdaptiveWingLoss.
        target_weight: None, (B,K), (B,K,1) or (B,K,H,W): the loss sees (pred·w, target·w)
            (mmpose), with δ formed as (pred − target)·w.
        reduction: "mean" over B·K·H·W (default, mmpose), "sum", or "none" (per pixel).
        backend: "auto", "cuda", "triton", "cpu" or "torch" (see available_backends).
        Multi-stage (stacked hourglass): pred (S,B,K,H,W) or a list of S (B,K,H,W) (1 ≤ S ≤ 16)
            against one target gives Σ_s stage_weights[s]·loss(pred[s]) (S real numbers,
            default all 1), each stage reduced as a single call; for reduction "none" the
            (S,B,K,H,W) stack of the weighted per-stage maps (sum it over dim 0 for the summed
            map). One kernel launch reads the target once per pixel for all stages (in fp32
            4 + 8·S bytes/pixel instead of 12·S); a list is stacked first, one copy
            (landmark_kernels/_stages.py).

    Returns the loss in fp32 for fp32/fp16/bf16 pred (fp64 for fp64): accumulated in fp32, and an
    fp16 sum over a batch would overflow. The gradient has pred's dtype. Mean and sum of an
    empty batch are 0. Gradients flow to pred only, not to target or target_weight; the
    gradient at δ = 0 is 0. NaN in pred or target gives NaN loss and gradient at that pixel
    (and factor 1 for its neighbours' map); pred = ±inf gives loss inf, gradient ±A.
    """
    _validate.choice("reduction", reduction, _REDUCTIONS)
    pred, stage, stage_weights = split(pred, stage_weights)
    same_dtype = not _validate.autocast_enabled(pred.device)
    target_weight = public_target_weight(target_weight, pred, same_dtype)
    args = (stage, target, target_weight, alpha, omega, epsilon, theta,
            map_weight if weight_map else 0.0, map_threshold, map_kernel,
            REDUCTION_CODES[reduction], pred.requires_grad and torch.is_grad_enabled())
    check_op_args(*args, same_dtype=same_dtype)
    backend = _backends.resolve(backend, pred.device)
    if backend == "torch":
        def single(p):
            return reference.awing_loss(
                p, target, alpha=alpha, omega=omega, epsilon=epsilon, theta=theta,
                weight_map=weight_map, map_weight=map_weight, map_threshold=map_threshold,
                map_kernel=map_kernel, target_weight=target_weight, reduction=reduction)
        return single(pred) if stage_weights is None else stage_sum(single, pred, stage_weights)
    scalars = (*map(float, args[3:9]), int(map_kernel), *args[10:])
    return call_fused("awing_loss", backend, pred, (target, target_weight), stage_weights,
                      scalars)


def check_stages_op_args(pred, target, target_weight, stage_weights, *scalars, same_dtype=True):
    """Validate the arguments of the raw ops awing_loss_stages(_triton): pred (S,B,K,H,W) with
    S stage_weights, each stage as awing_loss's pred."""
    check_stages(pred, stage_weights)
    check_op_args(pred[0], target, target_weight, *scalars, same_dtype=same_dtype)


def _triton_kernel():
    from .triton_kernels.awing_loss import awing_loss as triton_awing_loss
    return triton_awing_loss


def _triton_stages_kernel():
    from .triton_kernels.awing_loss import awing_loss_stages
    return awing_loss_stages


register_fused_loss("awing_loss", check=check_op_args, triton_kernel=_triton_kernel)
register_fused_loss("awing_loss_stages", check=check_stages_op_args,
                    triton_kernel=_triton_stages_kernel, stages=True)
