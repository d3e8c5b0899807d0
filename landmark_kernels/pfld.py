"""PFLD loss (docs/coordinate_losses.md): functional API and op wiring.

The op `pfld_loss(pred, target, angles, angles_target, attributes, attribute_weights, degrees,
weight_floor, compute_grad) -> (weighted, l2, grad_pred, grad_angles)` computes both losses and
the gradients of `weighted` on the device with no host synchronisation: the class weights come
from the batch's attribute frequencies inside the kernel. l2's gradient, 2(ŷ − y)/B, is left to
the backward, which needs it only when l2 itself is trained.
"""

import torch

from . import _backends, _eager, _validate, reference
from ._fused import grad_dtype, loss_dtype

_OPS = torch.ops.landmark_kernels
_PFLD = _OPS.pfld_loss.default  # looked up once: torch.ops attribute access costs microseconds
_MAX_CLASSES = 1024  # csrc/pfld_loss.h kPfldMaxClasses


def _batch_tensor(name, value, pred, *, dim, same_dtype, rows=True):
    _validate.tensor(name, value, dim=dim)
    if rows and value.shape[0] != pred.shape[0]:
        raise ValueError(f"{name} must have the batch size of pred ({pred.shape[0]}) as its first "
                         f"dimension, got shape {tuple(value.shape)}")
    _validate.same_device_dtype(name, value, "pred", pred, dtype=same_dtype)


def check_pfld(pred, target, angles, angles_target, attributes, attribute_weights, degrees,
               weight_floor, compute_grad, *, same_dtype=True):
    """Validate the raw op's arguments as the C++ kernels do (csrc/pfld_loss.h); also run by the
    fake and Triton kernels and the public function (same_dtype=False under autocast)."""
    _validate.tensor("pred", pred)
    if pred.dim() < 2:
        raise ValueError(f"pred must have at least 2 dimensions (B, ...), got shape "
                         f"{tuple(pred.shape)}")
    _validate.tensor("target", target)
    _validate.same_shape("target", target, "pred", pred)
    _validate.same_device_dtype("target", target, "pred", pred, dtype=same_dtype)
    _batch_tensor("angles", angles, pred, dim=2, same_dtype=same_dtype)
    _validate.tensor("angles_target", angles_target)
    _validate.same_shape("angles_target", angles_target, "angles", angles)
    _validate.same_device_dtype("angles_target", angles_target, "pred", pred, dtype=same_dtype)
    _batch_tensor("attributes", attributes, pred, dim=2, same_dtype=same_dtype)
    if attributes.shape[1] > _MAX_CLASSES:
        raise ValueError(f"attributes may have at most {_MAX_CLASSES} classes, got "
                         f"{attributes.shape[1]}")
    if attribute_weights is not None:
        _batch_tensor("attribute_weights", attribute_weights, pred, dim=1, same_dtype=same_dtype,
                      rows=False)
        if attribute_weights.shape[0] != attributes.shape[1]:
            raise ValueError(f"attribute_weights must be (C,) = ({attributes.shape[1]},), one "
                             f"weight per attribute class, got {tuple(attribute_weights.shape)}")
    for name, flag in (("degrees", degrees), ("compute_grad", compute_grad)):
        if type(flag) is not bool:
            raise TypeError(f"{name} must be a bool, got {flag!r}")
    _validate.non_negative("weight_floor", weight_floor)


def _fast(pred, target, angles, angles_target, attributes, attribute_weights, degrees,
          weight_floor, backend):
    """(weighted, l2) from the C++ op (eager mode, a C++ backend, tensors in pred's dtype), or
    None. Its checks are the kernel's TORCH_CHECKs (csrc/pfld_loss.h), which repeat every Python
    check: a call they reject returns None, and the checked path raises the Python error naming
    the argument — or the same error again."""
    if (_backends.fast_path(backend, pred) is None
            or type(degrees) is not bool or not (type(weight_floor) is float or
                                                 type(weight_floor) is int)
            or (attribute_weights is not None and (type(attribute_weights) is not torch.Tensor
                                                   or attribute_weights.dtype != pred.dtype))):
        return None
    for t in (target, angles, angles_target, attributes):  # a loop: a generator costs more
        if type(t) is not torch.Tensor or t.dtype != pred.dtype:
            return None
    compute_grad = torch.is_grad_enabled() and (pred.requires_grad or angles.requires_grad)
    try:
        weighted, l2, _, _ = _PFLD(pred, target, angles, angles_target, attributes,
                                   attribute_weights, degrees, weight_floor, compute_grad)
    except (RuntimeError, TypeError, ValueError):
        return None
    return weighted, l2


def pfld_loss(pred, target, angles, angles_target, attributes, *, attribute_weights=None,
              degrees=False, weight_floor=0.0, backend="auto"):
    """PFLD loss (Guo et al. 2019, eq. 2, as PFLD-pytorch computes it) → (weighted, l2).

    weighted = mean_b [Σ_k (1 − cos(θ̂_bk − θ_bk)) · max(Σ_c w_c·a_bc, weight_floor) · D_b] and
    l2 = mean_b D_b (PFLD-pytorch returns both), D_b = Σ ‖ŷ_b − y_b‖² over sample b's landmarks.

    Args:
        pred, target: landmarks (B, ...), e.g. (B,N,2) or PFLD-pytorch's flat (B,2N).
        angles, angles_target: Euler angles (B,K), K = 3 (yaw, pitch, roll). Radians by
            default; degrees=True converts (PFLD-pytorch feeds degrees to cos, a known bug).
            The difference is periodic: wrapped into half a turn, a 360° error is no error.
        attributes: (B,C), 1 where sample b has class c (PFLD-pytorch: WFLW's attribute columns
            1:6, without pose); any real or bool dtype.
        attribute_weights: (C,) or None: PFLD-pytorch's 1/mean_b(a_bc), or B where no sample
            has class c, computed on the device (lk.reference.pfld_attribute_weights).
        weight_floor: lower bound of the per-sample attribute weight Σ_c w_c·a_bc. 0 (default)
            is upstream's: a face with none of the classes gets weight 0 and does not train the
            landmarks through `weighted` (use l2, or a floor such as 1, to train clean faces).
        backend: "auto", "cuda", "triton", "cpu" or "torch".

    Returns (weighted, l2) in fp32 (fp64 for fp64 pred), both 0 for an empty batch. Gradients
    flow to pred (from both) and to angles (from weighted), not to targets or attributes.
    """
    losses = _fast(pred, target, angles, angles_target, attributes, attribute_weights, degrees,
                   weight_floor, backend)
    if losses is not None:
        return losses
    _validate.tensor("pred", pred)
    same_dtype = not _validate.autocast_enabled(pred.device)
    if isinstance(attributes, torch.Tensor) and not attributes.is_floating_point():
        attributes = attributes.to(pred.dtype)  # 0/1 (bool, int) are exact in every float dtype
    if same_dtype:
        angles_target, attributes, attribute_weights = (
            t.to(pred.dtype) if isinstance(t, torch.Tensor) and t.dtype in _validate.FLOAT_DTYPES
            else t for t in (angles_target, attributes, attribute_weights))
    compute_grad = torch.is_grad_enabled() and (
        pred.requires_grad or (isinstance(angles, torch.Tensor) and angles.requires_grad))
    args = (pred, target, angles, angles_target, attributes, attribute_weights, degrees,
            weight_floor, compute_grad)
    check_pfld(*args, same_dtype=same_dtype)
    backend = _backends.resolve(backend, pred.device)
    if backend == "torch":
        return reference.pfld_loss(pred, target, angles, angles_target, attributes,
                                   attribute_weights=attribute_weights, degrees=degrees,
                                   weight_floor=float(weight_floor))
    args = (*args[:7], float(weight_floor), compute_grad)
    if backend == "triton":  # autograd registered in Python: the eager fast path saves most of it
        weighted, l2, *_ = _eager.call(_OPS.pfld_loss_triton.default, args,
                                       setup_context=_setup_context, backward=_backward)
    else:  # autograd in C++ (csrc/autograd.cpp)
        weighted, l2, *_ = _PFLD(*args)
    return weighted, l2


def _fake(*args):
    check_pfld(*args)
    pred, angles, compute_grad = args[0], args[2], args[-1]
    acc = loss_dtype(pred.dtype)
    return (pred.new_empty((), dtype=acc), pred.new_empty((), dtype=acc),
            pred.new_empty(pred.shape if compute_grad else (0,), dtype=grad_dtype(pred.dtype)),
            pred.new_empty(angles.shape if compute_grad else (0,), dtype=acc))


def _setup_context(ctx, inputs, output):
    grads = output[2:]
    ctx.mark_non_differentiable(*grads)
    ctx.set_materialize_grads(False)  # an untrained l2 adds nothing (not 0·(ŷ − y): ∞·0 is NaN)
    ctx.save_for_backward(*grads, inputs[0], inputs[1])
    ctx.angles_dtype = inputs[2].dtype
    ctx.compute_grad = inputs[-1]


def _backward(ctx, grad_weighted, grad_l2, *_):
    grad_pred, grad_angles, pred, target = ctx.saved_tensors
    if not ctx.compute_grad:
        raise RuntimeError("pfld_loss was computed with compute_grad=False, so it has no "
                           "gradient buffers; call it with compute_grad=True to backpropagate")
    if torch.is_grad_enabled() and not torch.compiler.is_compiling():
        raise RuntimeError("landmark_kernels losses do not support double backward "
                           "(create_graph=True); use backend='torch' for that")
    # ∂/∂pred = g_weighted·grad_pred + g_l2·2(ŷ − y)/B; ∂/∂angles = g_weighted·grad_angles.
    grad_p = grad_a = None
    if grad_weighted is not None:
        grad_p = grad_pred.to(grad_weighted.dtype) * grad_weighted
        grad_a = (grad_angles * grad_weighted).to(ctx.angles_dtype)
    if grad_l2 is not None:
        acc = grad_l2.dtype
        grad_l2_p = (pred.to(acc) - target.to(acc)) * (grad_l2 * 2.0 / pred.shape[0])
        grad_p = grad_l2_p if grad_p is None else grad_p + grad_l2_p
    if grad_p is not None:
        grad_p = grad_p.to(pred.dtype)
    return grad_p, None, grad_a, None, None, None, None, None, None


def _triton_impl(*args):
    check_pfld(*args)
    if args[0].device.type == "cpu" and not _backends.TRITON_INTERPRET:
        return _OPS.pfld_loss.default(*args)  # no Triton here: the C++ kernel stands in
    from .triton_kernels.pfld_loss import pfld_loss as triton_pfld_loss
    return triton_pfld_loss(*args)


torch.library.impl("landmark_kernels::pfld_loss_triton", ("cpu", "cuda"))(_triton_impl)
# The C++ op's autograd is registered in C++ (csrc/autograd.cpp, the same rule as _backward).
torch.library.register_autograd("landmark_kernels::pfld_loss_triton", _backward,
                                setup_context=_setup_context)
for _qualname in ("landmark_kernels::pfld_loss", "landmark_kernels::pfld_loss_triton"):
    torch.library.register_fake(_qualname)(_fake)
    for _device_type in ("cpu", "cuda"):
        torch.library.register_autocast(_qualname, _device_type, torch.float32)
