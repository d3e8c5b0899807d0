"""AWing loss against Gaussian targets rendered inside the kernel from landmark coordinates."""

import torch

from . import _backends, _validate, reference
from ._fused import REDUCTION_CODES, loss_dtype, register_fused_loss
from .awing import _REDUCTIONS, check_awing_params, public_target_weight
from ._stages import call_fused, check_stages, split, stage_sum
from .heatmaps import check_sigma



def check_op_args(pred, coords, sigma, target_weight, alpha, omega, epsilon, theta, map_weight,
                  map_threshold, map_kernel, reduction, compute_grad, *, same_dtype=True):
    """Validate the arguments of the raw ops awing_loss_from_coords(_triton) (schema in
    csrc/registration.cpp) as the C++ kernels do: coords (B,K,2) and sigma (K,) in the compute
    dtype (fp32, fp64 for fp64 pred), target_weight (B,K) as pred."""
    _validate.tensor("pred", pred, dim=4)
    batch, channels = pred.shape[:2]
    _validate.tensor("coords", coords, dim=3)
    if coords.shape != (batch, channels, 2):
        raise ValueError(f"coords must be (B,K,2) = ({batch}, {channels}, 2), got "
                         f"{tuple(coords.shape)}")
    _validate.same_device_dtype("coords", coords, "pred", pred, dtype=False)
    if same_dtype and coords.dtype != loss_dtype(pred.dtype):
        raise TypeError(f"coords must have dtype {loss_dtype(pred.dtype)} (the compute dtype of "
                        f"pred {pred.dtype}), got {coords.dtype}")
    _validate.tensor("sigma", sigma, dim=1)
    if sigma.shape != (channels,):
        raise ValueError(f"sigma must be (K,) = ({channels},), got {tuple(sigma.shape)}")
    _validate.same_device_dtype("sigma", sigma, "coords", coords, dtype=same_dtype)
    if target_weight is not None:
        _validate.tensor("target_weight", target_weight, dim=2)
        if target_weight.shape != pred.shape[:2]:
            raise ValueError(f"target_weight must be (B,K) = {tuple(pred.shape[:2])}, got "
                             f"{tuple(target_weight.shape)}")
        _validate.same_device_dtype("target_weight", target_weight, "pred", pred,
                                    dtype=same_dtype)
    check_awing_params(alpha, omega, epsilon, theta, map_weight, map_threshold, map_kernel,
                       reduction, compute_grad)


def awing_loss_from_coords(pred, coords, sigma, *, alpha=2.1, omega=14.0, epsilon=1.0,
                           theta=0.5, weight_map=True, map_weight=10.0, map_threshold=0.2,
                           map_kernel=3, target_weight=None, reduction="mean", stage_weights=None,
                           backend="auto"):
    """lk.awing_loss(pred, render_gaussian_heatmaps(coords, H, W, sigma), ...) in one pass: the
    Gaussian target and its weighted loss map are computed in the kernel, never stored.

    Args:
        pred: heatmaps (B,K,H,W), any floating dtype; or several stages' outputs, (S,B,K,H,W) or
            a list of S (B,K,H,W), 1 ≤ S ≤ 16 (stacked hourglass): the result is the sum of the
            per-stage losses, each reduced as a single-stage call, times stage_weights (S real
            numbers, default all 1); for reduction "none" the (S,B,K,H,W) stack of the weighted
            per-stage maps. One kernel launch renders each target pixel once for all stages
            and reads each stage and writes its gradient (8 bytes/pixel/stage in fp32); a list
            is stacked first, one copy (landmark_kernels/_stages.py).
        coords: (B,K,2) landmark positions (x, y) in heatmap pixels, pixel centres at integers
            (render_gaussian_heatmaps' convention). A missing landmark may have NaN coordinates:
            its target is all zeros, as rendered; mask it with target_weight = 0.
        sigma: the Gaussian's standard deviation in pixels, a number or (K,).
        target_weight: None, (B,K) or (B,K,1), as in awing_loss.
        Every other keyword is awing_loss's, with its defaults.
    Returns the loss in fp32 (fp64 for fp64 pred). No gradient flows to coords or sigma.
    """
    _validate.choice("reduction", reduction, _REDUCTIONS)
    pred, stage, stage_weights = split(pred, stage_weights)
    _validate.tensor("coords", coords, dim=3)
    same_dtype = not _validate.autocast_enabled(pred.device)
    compute = loss_dtype(pred.dtype)
    coords = coords.detach().to(compute)
    sigma = check_sigma(sigma, stage.shape[1], coords)
    target_weight = public_target_weight(target_weight, pred, same_dtype)
    args = (stage, coords, sigma, target_weight, alpha, omega, epsilon, theta,
            map_weight if weight_map else 0.0, map_threshold, map_kernel,
            REDUCTION_CODES[reduction], pred.requires_grad and torch.is_grad_enabled())
    check_op_args(*args, same_dtype=same_dtype)
    backend = _backends.resolve(backend, pred.device)
    if backend == "torch":
        def single(p):
            return reference.awing_loss_from_coords(
                p, coords, sigma, alpha=alpha, omega=omega, epsilon=epsilon, theta=theta,
                weight_map=weight_map, map_weight=map_weight, map_threshold=map_threshold,
                map_kernel=map_kernel, target_weight=target_weight, reduction=reduction)
        return single(pred) if stage_weights is None else stage_sum(single, pred, stage_weights)
    scalars = (*map(float, args[4:10]), int(map_kernel), *args[11:])
    return call_fused("awing_loss_from_coords", backend, pred, (coords, sigma, target_weight),
                      stage_weights, scalars)


def check_stages_op_args(pred, coords, sigma, target_weight, stage_weights, *scalars,
                         same_dtype=True):
    """Validate the arguments of the raw ops awing_loss_from_coords_stages(_triton): pred
    (S,B,K,H,W) with S stage_weights, each stage as awing_loss_from_coords's pred."""
    check_stages(pred, stage_weights)
    check_op_args(pred[0], coords, sigma, target_weight, *scalars, same_dtype=same_dtype)


def _triton_kernel():
    from .triton_kernels.awing_loss_from_coords import awing_loss_from_coords as kernel
    return kernel


def _triton_stages_kernel():
    from .triton_kernels.awing_loss_from_coords import awing_loss_from_coords_stages as kernel
    return kernel


register_fused_loss("awing_loss_from_coords", check=check_op_args, triton_kernel=_triton_kernel)
register_fused_loss("awing_loss_from_coords_stages", check=check_stages_op_args,
                    triton_kernel=_triton_stages_kernel, stages=True)
