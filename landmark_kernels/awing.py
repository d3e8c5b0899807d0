"""Adaptive Wing loss with the weighted loss map (SPEC §1): functional API and op wiring."""

import torch

from . import _backends, _validate, reference
from ._fused import REDUCTION_CODES, register_fused_loss

_OPS = torch.ops.landmark_kernels
_MAX_MAP_KERNEL = 31  # csrc/awing_loss.h kMaxMapKernel: the CUDA halo tile bound


def awing_loss(pred, target, *, alpha=2.1, omega=14.0, epsilon=1.0, theta=0.5,
               weight_map=True, map_weight=10.0, map_threshold=0.2, map_kernel=3,
               target_weight=None, reduction="mean", backend="auto"):
    """Adaptive Wing loss (Wang et al. 2019, eq. 6) times the weighted loss map W·M + 1 (§4.3).

    Args:
        pred, target: heatmaps (B,K,H,W), same floating dtype and device; any H×W and strides.
        alpha, omega, epsilon, theta: the loss's α=2.1, ω=14, ε=1, θ=0.5 (mmpose defaults).
        weight_map: multiply by the map; M = 1 where the map_kernel×map_kernel grey dilation of
            the target exceeds map_threshold (strict); map_weight is W. Computed in the kernel,
            never materialised. weight_map=False gives mmpose's plain AdaptiveWingLoss.
        target_weight: None, (B,K) or (B,K,H,W): the loss sees (pred·w, target·w) (mmpose).
        reduction: "mean" over B·K·H·W (default, mmpose), "sum", or "none" (per pixel).
        backend: "auto", "cuda", "triton", "cpu" or "torch" (see available_backends).

    Returns the loss in fp32 for fp32/fp16/bf16 pred (fp64 for fp64): accumulated in fp32, and an
    fp16 sum over a batch would overflow. The gradient has pred's dtype. Mean and sum of an
    empty batch are 0. Gradients flow to pred only, not to target or target_weight; the
    gradient at δ = 0 is 0.
    """
    _validate.tensor("pred", pred, dim=4)
    _validate.tensor("target", target)
    _validate.same_shape("target", target, "pred", pred)
    _validate.same_device_dtype("target", target, "pred", pred)
    _validate.finite("alpha", alpha)
    _validate.positive("omega", omega)
    _validate.positive("epsilon", epsilon)
    _validate.positive("theta", theta)
    _validate.finite("map_weight", map_weight)
    _validate.finite("map_threshold", map_threshold)
    _validate.odd_kernel("map_kernel", map_kernel, largest=_MAX_MAP_KERNEL)
    _validate.choice("reduction", reduction, reference.REDUCTIONS)
    if target_weight is not None:
        _validate.tensor("target_weight", target_weight, dims=(2, 4))
        if target_weight.shape not in (pred.shape[:2], pred.shape):
            raise ValueError(f"target_weight must be (B,K) = {tuple(pred.shape[:2])} or the shape "
                             f"of pred, got {tuple(target_weight.shape)}")
        _validate.same_device_dtype("target_weight", target_weight, "pred", pred, dtype=False)
        target_weight = target_weight.to(pred.dtype)
    backend = _backends.resolve(backend, pred.device)
    if backend == "torch":
        return reference.awing_loss(
            pred, target, alpha=alpha, omega=omega, epsilon=epsilon, theta=theta,
            weight_map=weight_map, map_weight=map_weight, map_threshold=map_threshold,
            map_kernel=map_kernel, target_weight=target_weight, reduction=reduction)
    op = _OPS.awing_loss_triton if backend == "triton" else _OPS.awing_loss
    loss, _ = op(pred, target, target_weight, float(alpha), float(omega), float(epsilon),
                 float(theta), float(map_weight) if weight_map else 0.0, float(map_threshold),
                 map_kernel, REDUCTION_CODES[reduction],
                 pred.requires_grad and torch.is_grad_enabled())
    return loss


def _awing_triton_kernel(*args):
    if args[0].device.type == "cpu" and not _backends.TRITON_INTERPRET:
        # No Triton on CPU tensors without the interpreter: the C++ CPU kernel (same contract)
        # stands in, so the op stays usable (opcheck, torch.compile) on any machine.
        return _OPS.awing_loss.default(*args)
    from triton_kernels.awing_loss import awing_loss as triton_awing_loss
    return triton_awing_loss(*args)


torch.library.impl("landmark_kernels::awing_loss_triton", ("cpu", "cuda"))(_awing_triton_kernel)
register_fused_loss("landmark_kernels::awing_loss")
register_fused_loss("landmark_kernels::awing_loss_triton")
