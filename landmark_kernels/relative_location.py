"""SDFL relative-location loss (docs/graph.md): Δ = L·P with L = I − D⁻¹A, then a coordinate loss.

The sparse product runs in the op `graph_laplacian(x, rowptr, col, t_rowptr, t_col, transpose)`,
whose backward is the same op in the other orientation (Lᵀ); the base loss is lk.soft_wing_loss,
lk.wing_loss (fused ops) or L1.
"""

import torch

from . import _backends, _validate, coord_losses, reference
from .coord_losses import soft_wing_loss, wing_loss
from .graph import check_csr_values, check_graph_for

_OPS = torch.ops.landmark_kernels
_LAPLACIAN = "landmark_kernels::graph_laplacian"
BASES = ("soft_wing", "wing", "l1")


def relative_location_loss(pred, target, graph, *, base="soft_wing", reduction="batchmean",
                           backend="auto", **base_kwargs):
    """Relative-location loss of SDFL (Lin et al., TIP 2021): base(L·pred, L·target).

    L = I − D⁻¹A on the graph's directed, unweighted edges (D the out-degrees): Δ_i = p_i − the
    mean of the p_j with i → j, and a node without out-edges keeps Δ_i = p_i. The official code
    uses D⁻¹A − I, the opposite sign: the same loss for every base here (each depends on |Δ̂ − Δ|).

    Args:
        pred, target: coordinates (B,N,D), same device (and dtype).
        graph: a LandmarkGraph with N nodes on pred's device: the official directed edge list,
            e.g. LandmarkGraph.preset("wflw98", symmetric=False, self_loops=False).
        base: "soft_wing" (default), "wing" or "l1" (|Δ̂ − Δ| per coordinate).
        reduction: "batchmean" (default: sum over N and D, mean over B), "mean", "sum", "none".
        backend: "auto", "cuda", "triton", "cpu" or "torch", for the sparse product and the base
            loss.
        base_kwargs: keywords of the base loss (omega1, omega2, epsilon for SoftWing; omega,
            epsilon for Wing; target_weight (B,N), (B,N,1) or (B,N,D), weighting Δ).

    Returns the loss in fp32 (fp64 for fp64 pred), as the base losses. Gradients flow to pred.
    """
    _validate.tensor("pred", pred, dim=3)
    _validate.tensor("target", target)
    _validate.same_shape("target", target, "pred", pred)
    # Under autocast the ops run in fp32 and accept mixed dtypes (as the coordinate losses).
    _validate.same_device_dtype("target", target, "pred", pred,
                                dtype=not _validate.autocast_enabled(pred.device))
    _validate.choice("base", base, BASES)
    _validate.choice("reduction", reduction, reference.COORD_REDUCTIONS)
    check_graph_for(graph, pred, "pred")
    _check_base_kwargs(base, base_kwargs, pred)
    backend = _backends.resolve(backend, pred.device)
    if backend == "torch":
        return _backends.reference_call(pred.device, reference.relative_location_loss, pred,
                                        target, graph, base=base, reduction=reduction,
                                        **base_kwargs)
    delta_pred = graph_laplacian(pred, graph, backend=backend)
    delta_target = graph_laplacian(target.detach(), graph, backend=backend)
    if base == "l1":
        return reference.l1_coord_loss(delta_pred, delta_target, reduction=reduction,
                                       **base_kwargs)
    loss = soft_wing_loss if base == "soft_wing" else wing_loss
    return loss(delta_pred, delta_target, reduction=reduction, backend=backend, **base_kwargs)


_BASE_PARAMS = {"soft_wing": ("omega1", "omega2", "epsilon"), "wing": ("omega", "epsilon"),
                "l1": ()}


def _check_base_kwargs(base, base_kwargs, pred):
    """The base loss's keywords, checked here for every backend (the reference path would
    otherwise meet a bad epsilon as a ZeroDivisionError or a NaN)."""
    allowed = _BASE_PARAMS[base] + ("target_weight",)
    unknown = sorted(set(base_kwargs) - set(allowed))
    if unknown:
        takes = "no keywords but target_weight" if base == "l1" else \
            f"the keywords {', '.join(allowed)}"
        raise TypeError(f"base {base!r} takes {takes}, got {unknown}")
    for name in _BASE_PARAMS[base]:
        if name in base_kwargs:
            coord_losses._param(name, base_kwargs[name])
    if base_kwargs.get("target_weight") is not None:
        coord_losses._check_per_landmark_or_element("target_weight", base_kwargs["target_weight"],
                                                    pred, same_dtype=False)


def graph_laplacian(x, graph, *, transpose=False, backend="auto"):
    """Δ = L·x (transpose=True: Lᵀ·x), L = I − D⁻¹A on `graph`'s directed edges; x (B,N,D).
    Differentiable (the backward of L is Lᵀ). Returns a new tensor of x's shape and dtype."""
    _validate.tensor("x", x, dim=3)
    check_graph_for(graph, x, "x")
    backend = _backends.resolve(backend, x.device)
    if backend == "torch":
        return _backends.reference_call(x.device, reference.graph_laplacian, x, graph,
                                        transpose=transpose)
    op = _OPS.graph_laplacian_triton if backend == "triton" else _OPS.graph_laplacian
    return op(x, graph.rowptr, graph.col, graph.t_rowptr, graph.t_col, bool(transpose))


def check_op_args(x, rowptr, col, t_rowptr, t_col, transpose):
    """The checks of the C++ op (csrc/graph_ops.h), for the fake and Triton implementations."""
    for name, t in (("x", x), ("rowptr", rowptr), ("col", col), ("t_rowptr", t_rowptr),
                    ("t_col", t_col)):
        _validate.is_tensor(name, t)
    if x.dim() != 3 or not x.is_floating_point():
        raise ValueError(f"x must be a floating (B,N,D) tensor, got {x.dtype} {tuple(x.shape)}")
    nodes = x.shape[1]
    edges = col.shape[0] if col.dim() == 1 else -1
    for name, t, size in (("rowptr", rowptr, nodes + 1), ("col", col, edges),
                          ("t_rowptr", t_rowptr, nodes + 1), ("t_col", t_col, edges)):
        if t.dtype != torch.int64 or t.dim() != 1 or t.shape[0] != size:
            raise ValueError(f"{name} must be an int64 tensor of shape ({size},), got {t.dtype} "
                             f"{tuple(t.shape)}")
        if t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}")


def _fake(x, rowptr, col, t_rowptr, t_col, transpose):
    check_op_args(x, rowptr, col, t_rowptr, t_col, transpose)
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _triton(x, rowptr, col, t_rowptr, t_col, transpose):
    check_op_args(x, rowptr, col, t_rowptr, t_col, transpose)
    if x.device.type == "cpu":
        check_csr_values(x.shape[1], rowptr, col, t_rowptr, t_col)
        if not _backends.TRITON_INTERPRET:  # the C++ kernel stands in (see graph_aggregate.py)
            return _OPS.graph_laplacian.default(x, rowptr, col, t_rowptr, t_col, transpose)
    from .triton_kernels.graph_laplacian import graph_laplacian as triton_laplacian
    return triton_laplacian(x, rowptr, col, t_rowptr, t_col, transpose)


def _setup_context(ctx, inputs, output):
    _, rowptr, col, t_rowptr, t_col, transpose = inputs
    ctx.save_for_backward(rowptr, col, t_rowptr, t_col)
    ctx.transpose = transpose


def _autograd_for(op):
    def backward(ctx, grad):
        # L is linear: the backward of L·x is Lᵀ·grad, the same op the other way round (itself
        # differentiable, so double backward works too).
        return (op(grad, *ctx.saved_tensors, not ctx.transpose),) + (None,) * 5
    return backward


torch.library.impl(_LAPLACIAN + "_triton", ("cpu", "cuda"))(_triton)
for _suffix, _op in (("", _OPS.graph_laplacian), ("_triton", _OPS.graph_laplacian_triton)):
    torch.library.register_fake(_LAPLACIAN + _suffix)(_fake)
    torch.library.register_autograd(_LAPLACIAN + _suffix, _autograd_for(_op),
                                    setup_context=_setup_context)
    for _device_type in ("cpu", "cuda"):
        torch.library.register_autocast(_LAPLACIAN + _suffix, _device_type, torch.float32)
