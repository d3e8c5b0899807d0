"""Coordinate losses Wing, SoftWing and ACR (SPEC §2–§4): functional API and op wiring.

The three are one kernel family per backend (csrc/coord_loss_math.h, triton_kernels/
coord_loss.py), each a fused op `(pred, target, ..., reduction, compute_grad) -> (loss, grad)`:
one launch writes the loss partials and the gradient, a deterministic second stage reduces.
"""

import torch

from . import _backends, _validate, reference
from ._fused import REDUCTION_CODES
from ._fused_next import register_fused_loss

_OPS = torch.ops.landmark_kernels
# csrc/coord_loss.h kCoordParamMin/Max: wide enough for pixel and normalised coordinates, narrow
# enough that ω/ε and the slopes stay finite in fp32.
PARAM_MIN, PARAM_MAX = 1e-8, 1e8
_AUTOCAST_DEVICES = ("cpu", "cuda")


def _param(name, value, *, zero_ok=False):
    return _validate.real_in_range(name, value, PARAM_MIN, PARAM_MAX, zero_ok=zero_ok)


def _check_per_landmark_or_element(name, value, pred, *, same_dtype):
    """target_weight / phi: (B,N), (B,N,1) or (B,N,D) like pred; the error names both shapes."""
    _validate.tensor(name, value)
    b, n, d = pred.shape
    if tuple(value.shape) not in ((b, n), (b, n, 1), (b, n, d)):
        raise ValueError(f"{name} must be (B,N) = {(b, n)}, (B,N,1) or (B,N,D) = {(b, n, d)} "
                         f"for pred of shape {tuple(pred.shape)}, got {tuple(value.shape)}")
    _validate.same_device_dtype(name, value, "pred", pred, dtype=False)
    if same_dtype:
        _validate.same_device_dtype(name, value, "pred", pred)


def _autocast_on(pred):
    return pred.device.type in _AUTOCAST_DEVICES and torch.is_autocast_enabled(pred.device.type)


def _check_tensors(pred, target, target_weight=None, phi=None, *, public=False):
    """The raw ops need one dtype for all; the public functions convert target_weight/phi to
    pred's dtype and, under autocast, accept the dtypes that autocast makes equal."""
    _validate.tensor("pred", pred, dim=3)
    _validate.tensor("target", target)
    _validate.same_shape("target", target, "pred", pred)
    _validate.same_device_dtype("target", target, "pred", pred, dtype=not public)
    if public:
        _validate.dtype_compatible("target", target, "pred", pred)
    for name, value in (("target_weight", target_weight), ("phi", phi)):
        if value is not None:
            _check_per_landmark_or_element(name, value, pred, same_dtype=not public)


def _check_reduction_code(reduction):
    if reduction not in REDUCTION_CODES.values() or isinstance(reduction, bool):
        raise ValueError(f"reduction must be one of {sorted(REDUCTION_CODES.values())} "
                         f"(codes of {tuple(REDUCTION_CODES)}), got {reduction!r}")


# Checks of the raw ops' arguments (what the C++ kernels TORCH_CHECK): run by the fake kernels
# and by the Triton op before its kernel.
def check_wing(pred, target, target_weight, omega, epsilon, reduction, compute_grad):
    _check_tensors(pred, target, target_weight)
    _param("omega", omega)
    _param("epsilon", epsilon)
    _check_reduction_code(reduction)


def check_soft_wing(pred, target, target_weight, omega1, omega2, epsilon, reduction,
                    compute_grad):
    _check_tensors(pred, target, target_weight)
    _param("omega1", omega1)
    _param("omega2", omega2)
    _param("epsilon", epsilon)
    _check_reduction_code(reduction)


def check_acr(pred, target, phi, lam, reduction, compute_grad):
    _check_tensors(pred, target, phi=phi)
    _param("lam", lam, zero_ok=True)
    _check_reduction_code(reduction)


def _prepare(pred, target, aux_name=None, aux=None):
    """Public-level checks; returns aux (target_weight or phi) in pred's dtype, except under
    autocast, whose rule for the op casts everything but fp64 to fp32."""
    _check_tensors(pred, target, **({aux_name: aux} if aux is not None else {}), public=True)
    if aux is not None and aux.dtype != pred.dtype and not (
            _autocast_on(pred) and pred.dtype != torch.float64):
        aux = aux.to(pred.dtype)
    return aux


def _reduction_code(reduction):
    _validate.choice("reduction", reduction, reference.COORD_REDUCTIONS)
    return REDUCTION_CODES[reduction]


def _wants_grad(pred):
    return pred.requires_grad and torch.is_grad_enabled()


def wing_loss(pred, target, *, omega=10.0, epsilon=2.0, target_weight=None,
              reduction="batchmean", backend="auto"):
    """Wing loss (Feng et al., CVPR 2018, eq. 5): δ < ω: ω·ln(1 + δ/ε), else δ − C.

    Args:
        pred, target: coordinates (B,N,D), same device (and dtype, except under autocast).
        omega, epsilon: ω=10, ε=2 (mmpose defaults), in the units of the coordinates — pixels.
            For coordinates normalised to [0,1] scale both (e.g. by 1/input size): with the
            pixel defaults every normalised error is in the log branch.
        target_weight: None, (B,N), (B,N,1) or (B,N,D): the loss sees (pred·w, target·w) (mmpose).
        reduction: "batchmean" (default, mmpose: sum over N and D, mean over B), "mean" (over
            all elements), "sum" or "none" (per element).
        backend: "auto", "cuda", "triton", "cpu" or "torch" (see available_backends).

    Returns the loss in fp32 (fp64 for fp64 pred). Gradients flow to pred only; at δ = 0 the
    gradient is 0. NaN in pred/target gives NaN there; empty batches give 0.
    """
    target_weight = _prepare(pred, target, "target_weight", target_weight)
    omega, epsilon = _param("omega", omega), _param("epsilon", epsilon)
    code = _reduction_code(reduction)
    backend = _backends.resolve(backend, pred.device)
    if backend == "torch":
        return reference.wing_loss(pred, target, omega=omega, epsilon=epsilon,
                                   target_weight=target_weight, reduction=reduction)
    op = _OPS.wing_loss_triton if backend == "triton" else _OPS.wing_loss
    return op.default(pred, target, target_weight, omega, epsilon, code, _wants_grad(pred))[0]


def soft_wing_loss(pred, target, *, omega1=2.0, omega2=20.0, epsilon=0.5, target_weight=None,
                   reduction="batchmean", backend="auto"):
    """SoftWing loss (Lin et al., SDFL, TIP 2021, eq. 12; mmpose SoftWingLoss): δ < ω1: δ, else
    ω2·ln(1 + δ/ε) + B, B = ω1 − ω2·ln(1 + ω1/ε).

    Defaults ω1=2, ω2=20, ε=0.5 (mmpose), in pixels: on coordinates normalised to [0,1] every
    error is below ω1 = 2 and SoftWing silently becomes plain L1 — scale the three
    hyper-parameters with the coordinates (lk.nn.SoftWingLoss(coord_scale=...) does it).
    Shapes, target_weight, reduction, backend and the returned dtype as `wing_loss`.
    """
    target_weight = _prepare(pred, target, "target_weight", target_weight)
    omega1, omega2 = _param("omega1", omega1), _param("omega2", omega2)
    epsilon = _param("epsilon", epsilon)
    code = _reduction_code(reduction)
    backend = _backends.resolve(backend, pred.device)
    if backend == "torch":
        return reference.soft_wing_loss(pred, target, omega1=omega1, omega2=omega2,
                                        epsilon=epsilon, target_weight=target_weight,
                                        reduction=reduction)
    op = _OPS.soft_wing_loss_triton if backend == "triton" else _OPS.soft_wing_loss
    return op.default(pred, target, target_weight, omega1, omega2, epsilon, code,
                      _wants_grad(pred))[0]


def acr_loss(pred, target, phi, *, lam=1.0, reduction="mean", backend="auto"):
    """ACR loss (Fard & Mahoor 2022, eq. 6), without the official ×100 (a loss weight).

    Per coordinate, Δ = |target − pred|: Δ ≤ 1: λ·ln(1 + Δ^(2−Φ)); Δ > 1: Δ² + Φ·ln2 − 1 (the
    official constant; the loss jumps by (λ − Φ)·ln2 at Δ = 1).

    Args:
        pred, target: (B,N,D). phi: Φ in [0,1], (B,N,D) per coordinate or (B,N) / (B,N,1) per
            landmark; e.g. `ShapeModel.phi(target, variance)`.
        lam: λ ≥ 0, default 1. reduction: "mean" (default), "sum", "batchmean" or "none".

    Φ outside [0,1]: the cpu backend raises; the others (where a check would need a host
    synchronisation) return NaN for those elements, value and gradient. The gradient at Δ = 0
    is 0, also for Φ = 1 (where the loss is λ·ln(1+Δ)). Returns fp32 (fp64 for fp64 pred).
    """
    phi = _prepare(pred, target, "phi", phi)
    lam = _param("lam", lam, zero_ok=True)
    code = _reduction_code(reduction)
    backend = _backends.resolve(backend, pred.device)
    if backend == "torch":
        return reference.acr_loss(pred, target, phi, lam=lam, reduction=reduction)
    op = _OPS.acr_loss_triton if backend == "triton" else _OPS.acr_loss
    return op.default(pred, target, phi, lam, code, _wants_grad(pred))[0]


def _triton(name):
    def kernel(*args):
        from triton_kernels import coord_loss
        return getattr(coord_loss, name)(*args)
    return kernel


register_fused_loss("wing_loss", check=check_wing, triton_kernel=_triton("wing_loss"))
register_fused_loss("soft_wing_loss", check=check_soft_wing,
                    triton_kernel=_triton("soft_wing_loss"))
register_fused_loss("acr_loss", check=check_acr, triton_kernel=_triton("acr_loss"))
