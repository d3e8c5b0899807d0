"""SDFL sparse graph-relational aggregation (docs/graph.md): functional API and op wiring.

Unlike the fused losses (_fused.py), this op has a full backward op of its own
(`graph_relational_aggregate_backward`: gradients for h_self, h_neigh, logits and bias), which
the autograd rule registered here calls on the same backend.
"""

import torch

from . import _backends, _validate, reference
from .graph import check_csr_values, check_graph_for

_OPS = torch.ops.landmark_kernels
_FORWARD = "landmark_kernels::graph_relational_aggregate"
_BACKWARD = "landmark_kernels::graph_relational_aggregate_backward"
_INDEX_NAMES = ("rowptr", "col", "t_rowptr", "t_col", "perm")


def graph_relational_aggregate(h_self, h_neigh, logits, graph, bias=None, *, transposed=False,
                               backend="auto"):
    """Sparse softmax aggregation over a landmark graph: the core of SDFL's graph layers.

    a = softmax of the logits over each node's edges (exactly the official softmax of the dense
    matrix with −9e15 off the mask); out[b,i] = Σ_{edges i→j} a_ij·(j = i ? h_self[b,j] :
    h_neigh[b,j]) + bias. With transposed=True node i gathers column i instead (a still
    normalised per row): the official DynamicGConv; the default is SemGraphConv.

    Args:
        h_self, h_neigh: (B,N,F) features (x·W0 and x·W1), same dtype and device; any strides.
        logits: (E,) edge logits shared by the batch (SemGraphConv.e, flattened) or (B,E) per
            sample (DynamicGConv), in the graph's row-major edge order; h_self's dtype.
        graph: a LandmarkGraph with N nodes on the features' device; every node needs at least
            one edge (self-loops guarantee it).
        bias: None or (F,).
        transposed: False (SemGraphConv) or True (DynamicGConv).
        backend: "auto", "cuda", "triton", "cpu" or "torch" (see available_backends).

    Returns out (B,N,F), contiguous, in h_self's dtype (fp16/bf16 computed in fp32). Gradients
    flow to h_self, h_neigh, logits and bias; the backward is deterministic (no float atomics).
    """
    _validate.tensor("h_self", h_self, dim=3)
    # Under autocast the op's rule casts every input to fp32, so mixed dtypes are fine there.
    same_dtype = not _validate.autocast_enabled(h_self.device)
    _validate.tensor("h_neigh", h_neigh)
    _validate.same_shape("h_neigh", h_neigh, "h_self", h_self)
    _validate.same_device_dtype("h_neigh", h_neigh, "h_self", h_self, dtype=same_dtype)
    _validate.tensor("logits", logits, dims=(1, 2))
    _validate.same_device_dtype("logits", logits, "h_self", h_self, dtype=same_dtype)
    if bias is not None:
        _validate.tensor("bias", bias, dim=1)
        _validate.same_device_dtype("bias", bias, "h_self", h_self, dtype=same_dtype)
    _check_graph(graph, h_self)
    if not isinstance(transposed, bool):
        raise TypeError(f"transposed must be a bool, got {type(transposed).__name__}")
    check_op_args(h_self, h_neigh, logits, bias, *graph.csr_tensors(), same_dtype=same_dtype)
    backend = _backends.resolve(backend, h_self.device)
    if backend == "torch":
        return _backends.reference_call(h_self.device, reference.graph_relational_aggregate,
                                        h_self, h_neigh, logits, graph, bias,
                                        transposed=transposed)
    op = _OPS.graph_relational_aggregate_triton if backend == "triton" else \
        _OPS.graph_relational_aggregate
    return op(h_self, h_neigh, logits, bias, *graph.csr_tensors(), transposed)


def _check_graph(graph, h_self):
    check_graph_for(graph, h_self, "h_self")
    if graph.has_empty_rows:
        raise ValueError("graph has nodes without any edge, where the softmax over a node's "
                         "edges is undefined: build it with self_loops=True")


def check_op_args(h_self, h_neigh, logits, bias, rowptr, col, t_rowptr, t_col, perm, *,
                  same_dtype=True):
    """The checks of the C++ ops (csrc/graph_ops.h), for the fake and Triton implementations:
    shapes, dtypes and devices (no values, which would need a host sync on CUDA).
    same_dtype=False under autocast, whose rule casts the features, logits and bias later."""
    for name, t in zip(("h_self", "h_neigh", "logits") + _INDEX_NAMES,
                       (h_self, h_neigh, logits, rowptr, col, t_rowptr, t_col, perm)):
        _validate.is_tensor(name, t)
    if h_self.dim() != 3 or not h_self.is_floating_point():
        raise ValueError(f"h_self must be a floating (B,N,F) tensor, got {h_self.dtype} "
                         f"{tuple(h_self.shape)}")
    for name, t in (("h_neigh", h_neigh), ("logits", logits)) + \
            ((("bias", bias),) if bias is not None else ()):
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating tensor, got {t.dtype}")
        _validate.same_device_dtype(name, t, "h_self", h_self, dtype=same_dtype)
    _validate.same_shape("h_neigh", h_neigh, "h_self", h_self)
    batch, nodes, features = h_self.shape
    edges = col.shape[0] if col.dim() == 1 else -1
    for name, t, size in zip(_INDEX_NAMES, (rowptr, col, t_rowptr, t_col, perm),
                             (nodes + 1, edges, nodes + 1, edges, edges)):
        if t.dtype != torch.int64 or t.dim() != 1 or t.shape[0] != size:
            raise ValueError(f"{name} must be an int64 tensor of shape ({size},), got {t.dtype} "
                             f"{tuple(t.shape)}")
        if t.device != h_self.device:
            raise ValueError(f"{name} is on {t.device} but h_self is on {h_self.device}")
    if tuple(logits.shape) not in ((edges,), (batch, edges)):
        raise ValueError(f"logits must be (E,) = ({edges},) or (B,E) = ({batch}, {edges}), got "
                         f"{tuple(logits.shape)}")
    if bias is not None and tuple(bias.shape) != (features,):
        raise ValueError(f"bias must be (F,) = ({features},), got {tuple(bias.shape)}")


def _fake_forward(h_self, h_neigh, logits, bias, rowptr, col, t_rowptr, t_col, perm,
                  transposed):
    check_op_args(h_self, h_neigh, logits, bias, rowptr, col, t_rowptr, t_col, perm)
    return torch.empty_like(h_self, memory_format=torch.contiguous_format)


def _check_backward_args(grad_out, h_self, h_neigh, logits, *graph_tensors):
    _validate.is_tensor("grad_out", grad_out)
    check_op_args(h_self, h_neigh, logits, None, *graph_tensors)
    _validate.same_device_dtype("grad_out", grad_out, "h_self", h_self)
    _validate.same_shape("grad_out", grad_out, "h_self", h_self)


def _fake_backward(grad_out, h_self, h_neigh, logits, rowptr, col, t_rowptr, t_col, perm,
                   transposed, bias_grad):
    _check_backward_args(grad_out, h_self, h_neigh, logits, rowptr, col, t_rowptr, t_col, perm)
    like = lambda t: torch.empty_like(t, memory_format=torch.contiguous_format)  # noqa: E731
    return (like(h_self), like(h_self), like(logits),
            h_self.new_empty(h_self.shape[2] if bias_grad else 0))


def _setup_context(ctx, inputs, output):
    h_self, h_neigh, logits, bias, rowptr, col, t_rowptr, t_col, perm, transposed = inputs
    ctx.save_for_backward(h_self, h_neigh, logits, rowptr, col, t_rowptr, t_col, perm)
    ctx.transposed = transposed
    ctx.has_bias = bias is not None


def _autograd_for(backward_op):
    def backward(ctx, grad_out):
        if torch.is_grad_enabled() and not torch.compiler.is_compiling():
            raise RuntimeError("graph_relational_aggregate does not support double backward "
                               "(create_graph=True); use backend='torch' for that")
        needs = ctx.needs_input_grad
        bias_grad = ctx.has_bias and needs[3]
        grads = backward_op(grad_out, *ctx.saved_tensors, ctx.transposed, bias_grad)
        return tuple(g if need else None for g, need in zip(grads[:3], needs)) + \
            (grads[3] if bias_grad else None,) + (None,) * 6
    return backward


def _triton_forward(*args):
    check_op_args(*args[:9])
    if args[0].device.type == "cpu":
        check_csr_values(args[0].shape[1], *args[4:9])
        if not _backends.TRITON_INTERPRET:
            # No Triton on CPU tensors without the interpreter: the C++ kernel (same contract)
            # stands in, so the op stays usable (opcheck, torch.compile) on any machine.
            return _OPS.graph_relational_aggregate.default(*args)
    from .triton_kernels.graph_aggregate import aggregate_forward
    return aggregate_forward(*args)


def _triton_backward(*args):
    _check_backward_args(*args[:9])
    if args[1].device.type == "cpu":
        check_csr_values(args[1].shape[1], *args[4:9])
        if not _backends.TRITON_INTERPRET:
            return _OPS.graph_relational_aggregate_backward.default(*args)
    from .triton_kernels.graph_aggregate import aggregate_backward
    return aggregate_backward(*args)


torch.library.impl(_FORWARD + "_triton", ("cpu", "cuda"))(_triton_forward)
torch.library.impl(_BACKWARD + "_triton", ("cpu", "cuda"))(_triton_backward)
for _suffix, _bwd in (("", _OPS.graph_relational_aggregate_backward),
                      ("_triton", _OPS.graph_relational_aggregate_backward_triton)):
    torch.library.register_fake(_FORWARD + _suffix)(_fake_forward)
    torch.library.register_fake(_BACKWARD + _suffix)(_fake_backward)
    torch.library.register_autograd(_FORWARD + _suffix, _autograd_for(_bwd),
                                    setup_context=_setup_context)
    for _device_type in ("cpu", "cuda"):
        torch.library.register_autocast(_FORWARD + _suffix, _device_type, torch.float32)
