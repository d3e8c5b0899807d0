"""Coordinate losses Wing, SoftWing and ACR (docs/coordinate_losses.md): functional API and op
wiring.

The three are one kernel family per backend (csrc/coord_loss_math.h, triton_kernels/
coord_loss.py), each a fused op `(pred, target, ..., reduction, compute_grad) -> (loss, grad)`:
one launch writes the loss partials and the gradient, a deterministic second stage reduces.
"""

import torch

from . import _backends, _eager, _validate, reference
from ._fused import REDUCTION_CODES, register_fused_loss

_OPS = torch.ops.landmark_kernels
# csrc/coord_loss.h kCoordParamMin/Max: wide enough for pixel and normalised coordinates, narrow
# enough that ω/ε and the slopes stay finite in fp32.
PARAM_MIN, PARAM_MAX = 1e-8, 1e8
_CODES = tuple(REDUCTION_CODES.values())


def _param(name, value, *, zero_ok=False):
    return _validate.real_in_range(name, value, PARAM_MIN, PARAM_MAX, zero_ok=zero_ok)


def _check_per_landmark_or_element(name, value, pred, same_dtype):
    """target_weight / phi: (B,N), (B,N,1) or (B,N,D) like pred; the error names both shapes."""
    _validate.tensor(name, value)
    b, n, d = pred.shape
    if value.shape not in ((b, n), (b, n, 1), (b, n, d)):
        raise ValueError(f"{name} must be (B,N) = {(b, n)}, (B,N,1) or (B,N,D) = {(b, n, d)} "
                         f"for pred of shape {tuple(pred.shape)}, got {tuple(value.shape)}")
    _validate.same_device_dtype(name, value, "pred", pred, dtype=same_dtype)


def _check_common(pred, target, aux_name, aux, reduction, compute_grad, same_dtype):
    _validate.tensor("pred", pred, dim=3)
    _validate.tensor("target", target)
    _validate.same_shape("target", target, "pred", pred)
    _validate.same_device_dtype("target", target, "pred", pred, dtype=same_dtype)
    if aux is not None:
        _check_per_landmark_or_element(aux_name, aux, pred, same_dtype)
    _validate.code("reduction", reduction, _CODES)
    if type(compute_grad) is not bool:
        raise TypeError(f"compute_grad must be a bool, got {compute_grad!r}")


# Checks of the raw ops' arguments, as the C++ kernels' TORCH_CHECKs (csrc/coord_loss.h): run by
# the fake kernels, the Triton op and the public functions (same_dtype=False under autocast,
# whose rule for the ops casts mixed dtypes to fp32 later).
def check_wing(pred, target, target_weight, omega, epsilon, reduction, compute_grad, *,
               same_dtype=True):
    _check_common(pred, target, "target_weight", target_weight, reduction, compute_grad,
                  same_dtype)
    _param("omega", omega)
    _param("epsilon", epsilon)


def check_soft_wing(pred, target, target_weight, omega1, omega2, epsilon, reduction,
                    compute_grad, *, same_dtype=True):
    _check_common(pred, target, "target_weight", target_weight, reduction, compute_grad,
                  same_dtype)
    _param("omega1", omega1)
    _param("omega2", omega2)
    _param("epsilon", epsilon)


def check_acr(pred, target, phi, lam, reduction, compute_grad, *, same_dtype=True):
    _validate.tensor("pred", pred, dim=3)
    if not isinstance(phi, torch.Tensor):
        raise TypeError(f"phi must be a torch.Tensor, got {type(phi).__name__}")
    _check_common(pred, target, "phi", phi, reduction, compute_grad, same_dtype)
    _param("lam", lam, zero_ok=True)


def _fast(name, backend, pred, target, aux, reduction, params):
    """The loss from the C++ op (eager mode, a C++ backend, plain arguments), or None. Its
    checks are the C++ kernel's TORCH_CHECKs (csrc/coord_loss.h), which repeat every Python
    check: a call they reject returns None, and the checked path (_call) raises the Python
    error naming the argument — or the same error again. Written for the microsecond: no
    generator, no per-parameter conversion (the op takes a Python int as a float)."""
    if (_backends.fast_path(backend, pred) is None
            or (aux is not None and (type(aux) is not torch.Tensor or aux.dtype != pred.dtype))):
        return None
    for value in params:
        if type(value) is not float and type(value) is not int:
            return None
    try:
        return _NATIVE_OPS[name, False](pred, target, aux, *params, REDUCTION_CODES[reduction],
                                        pred.requires_grad and torch.is_grad_enabled())[0]
    except (KeyError, RuntimeError, TypeError, ValueError):  # KeyError: not a reduction name
        return None


def _call(name, backend, check, pred, target, aux, reduction, *params):
    """Checks the public call, then runs the op behind `backend` (not "torch") and returns the
    loss. aux (target_weight/phi) goes to pred's dtype unless autocast casts everything."""
    _validate.tensor("pred", pred, dim=3)
    same_dtype = not _validate.autocast_enabled(pred.device)
    if isinstance(aux, torch.Tensor) and same_dtype and aux.dtype in _validate.FLOAT_DTYPES:
        aux = aux.to(pred.dtype)
    args = (pred, target, aux, *params, REDUCTION_CODES[reduction],
            pred.requires_grad and torch.is_grad_enabled())
    check(*args, same_dtype=same_dtype)
    backend = _backends.resolve(backend, pred.device)
    if backend == "torch":
        return None, aux, backend
    op = _NATIVE_OPS[name, backend == "triton"]
    args = (*args[:3], *map(float, params), *args[-2:])
    if backend == "triton":  # autograd registered in Python: the eager fast path saves most of it
        return _eager.fused_loss(op, args), aux, backend
    return op(*args)[0], aux, backend  # autograd in C++ (csrc/autograd.cpp)


# The OpOverloads, looked up once: torch.ops attribute access costs microseconds per call.
_NATIVE_OPS = {(name, triton): getattr(_OPS, name + ("_triton" if triton else "")).default
               for name in ("wing_loss", "soft_wing_loss", "acr_loss") for triton in (False, True)}


def _reduction(reduction):
    return _validate.choice("reduction", reduction, reference.COORD_REDUCTIONS)


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
    loss = _fast("wing_loss", backend, pred, target, target_weight, reduction, (omega, epsilon))
    if loss is not None:
        return loss
    loss, target_weight, backend = _call("wing_loss", backend, check_wing, pred, target,
                                         target_weight, _reduction(reduction), omega, epsilon)
    if backend == "torch":
        return reference.wing_loss(pred, target, omega=float(omega), epsilon=float(epsilon),
                                   target_weight=target_weight, reduction=reduction)
    return loss


def soft_wing_loss(pred, target, *, omega1=2.0, omega2=20.0, epsilon=0.5, target_weight=None,
                   reduction="batchmean", backend="auto"):
    """SoftWing loss (Lin et al., SDFL, TIP 2021, eq. 12; mmpose SoftWingLoss): δ < ω1: δ, else
    ω2·ln(1 + δ/ε) + B, B = ω1 − ω2·ln(1 + ω1/ε).

    Defaults ω1=2, ω2=20, ε=0.5 (mmpose), in pixels: on coordinates normalised to [0,1] every
    error is below ω1 = 2 and SoftWing silently becomes plain L1 — scale the three
    hyper-parameters with the coordinates (lk.nn.SoftWingLoss(coord_scale=...) does it).
    Shapes, target_weight, reduction, backend and the returned dtype as `wing_loss`.
    """
    loss = _fast("soft_wing_loss", backend, pred, target, target_weight, reduction,
                 (omega1, omega2, epsilon))
    if loss is not None:
        return loss
    loss, target_weight, backend = _call("soft_wing_loss", backend, check_soft_wing, pred,
                                         target, target_weight, _reduction(reduction), omega1,
                                         omega2, epsilon)
    if backend == "torch":
        return reference.soft_wing_loss(pred, target, omega1=float(omega1),
                                        omega2=float(omega2), epsilon=float(epsilon),
                                        target_weight=target_weight, reduction=reduction)
    return loss


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
    loss = _fast("acr_loss", backend, pred, target, phi, reduction, (lam,))
    if loss is not None:
        return loss
    loss, phi, backend = _call("acr_loss", backend, check_acr, pred, target, phi,
                               _reduction(reduction), lam)
    if backend == "torch":
        return reference.acr_loss(pred, target, phi, lam=float(lam), reduction=reduction)
    return loss


def _triton(name):
    def kernel():  # imported lazily: triton is optional
        from .triton_kernels import coord_loss
        return getattr(coord_loss, name)
    return kernel


# The C++ ops' autograd is registered in C++ (csrc/autograd.cpp): their host path is the cost.
register_fused_loss("wing_loss", check=check_wing, triton_kernel=_triton("wing_loss"),
                    native_autograd_in_cpp=True)
register_fused_loss("soft_wing_loss", check=check_soft_wing,
                    triton_kernel=_triton("soft_wing_loss"), native_autograd_in_cpp=True)
register_fused_loss("acr_loss", check=check_acr, triton_kernel=_triton("acr_loss"),
                    native_autograd_in_cpp=True)
