"""nn.Module wrappers with mmpose-compatible constructor arguments and forward signatures."""

import math

import torch

from .awing import awing_loss
from .graph import LandmarkGraph
from .graph_aggregate import graph_relational_aggregate
from .relative_location import relative_location_loss

_GRAPH_BUFFERS = ("rowptr", "col", "row", "t_rowptr", "t_col", "perm")


def _register_graph(module, graph):
    """Keep `graph` in non-persistent buffers (module.to(device) moves it; state dicts stay as
    the official ones)."""
    if not isinstance(graph, LandmarkGraph):
        raise TypeError(f"graph must be a LandmarkGraph, got {type(graph).__name__}")
    module.num_nodes, module._has_empty_rows = graph.num_nodes, graph.has_empty_rows
    for name in _GRAPH_BUFFERS:
        module.register_buffer(name, getattr(graph, name), persistent=False)


def _graph_of(module):
    """The module's LandmarkGraph, on the device of its buffers."""
    return LandmarkGraph(*(getattr(module, name) for name in _GRAPH_BUFFERS), module.num_nodes,
                         module._has_empty_rows)


class AdaptiveWingLoss(torch.nn.Module):
    """mmpose's `AdaptiveWingLoss`, with the AWing paper's weighted loss map one keyword away.

    Args (mmpose, same defaults, same numbers): alpha=2.1, omega=14, epsilon=1, theta=0.5,
    use_target_weight=False, loss_weight=1. Extra keywords: weight_map=False (True: the paper's
    weighted loss map W·M + 1, §4.3, which mmpose does not apply), map_weight=10,
    map_threshold=0.2, map_kernel=3, reduction="mean", backend="auto".
    forward(output, target, target_weight=None): heatmaps (B,K,H,W); target_weight (B,K),
    (B,K,1) or (B,K,H,W), used when use_target_weight (mmpose 1.x's keyword `target_weights`
    is accepted too).
    """

    def __init__(self, alpha=2.1, omega=14.0, epsilon=1.0, theta=0.5, use_target_weight=False,
                 loss_weight=1.0, *, weight_map=False, map_weight=10.0, map_threshold=0.2,
                 map_kernel=3, reduction="mean", backend="auto"):
        super().__init__()
        self.alpha, self.omega, self.epsilon, self.theta = alpha, omega, epsilon, theta
        self.use_target_weight = use_target_weight
        self.loss_weight = loss_weight
        self.weight_map, self.map_weight = weight_map, map_weight
        self.map_threshold, self.map_kernel = map_threshold, map_kernel
        self.reduction, self.backend = reduction, backend

    def forward(self, output, target, target_weight=None, *, target_weights=None):
        if target_weight is not None and target_weights is not None:
            raise ValueError("pass target_weight or target_weights (mmpose 1.x), not both")
        target_weight = target_weights if target_weight is None else target_weight
        if not self.use_target_weight:
            target_weight = None
        elif target_weight is None:
            raise ValueError("target_weight is required when use_target_weight=True")
        loss = awing_loss(output, target, alpha=self.alpha, omega=self.omega,
                          epsilon=self.epsilon, theta=self.theta, weight_map=self.weight_map,
                          map_weight=self.map_weight, map_threshold=self.map_threshold,
                          map_kernel=self.map_kernel, target_weight=target_weight,
                          reduction=self.reduction, backend=self.backend)
        return loss * self.loss_weight

    def extra_repr(self):
        text = (f"alpha={self.alpha}, omega={self.omega}, epsilon={self.epsilon}, "
                f"theta={self.theta}, use_target_weight={self.use_target_weight}, "
                f"loss_weight={self.loss_weight}, weight_map={self.weight_map}")
        if self.weight_map:
            text += (f", map_weight={self.map_weight}, map_threshold={self.map_threshold}, "
                     f"map_kernel={self.map_kernel}")
        return text + f", reduction={self.reduction!r}, backend={self.backend!r}"

class GraphRelationalConv(torch.nn.Module):
    """SDFL graph-relational convolution: the official SemGraphConv, or DynamicGConv when
    dynamic=True, with the fused sparse aggregation (lk.graph_relational_aggregate).

    Args: in_features, out_features; graph: a LandmarkGraph (e.g. LandmarkGraph.preset(
    "wflw98_top3")), copied into non-persistent buffers so that .to(device) moves it;
    dynamic: False = SemGraphConv (learned logits e (1,E), shared by the batch, row
    orientation); True = DynamicGConv (forward takes per-sample logits (B,E), transposed
    orientation); bias=True; backend="auto".

    Parameters as the official layers, so their state dicts load unchanged: W (2,in,out) xavier-
    uniform with gain 1.414, e (1,E) = 1 (not dynamic), bias (out,) uniform in ±1/√out.
    forward(x) or forward(x, logits) when dynamic: x (B,N,in) -> (B,N,out). x·W0 and x·W1 are
    one GEMM (x·[W0 W1]); the softmax, gather, diagonal split and bias are the fused op.
    """

    def __init__(self, in_features, out_features, graph, dynamic=False, bias=True, *,
                 backend="auto"):
        super().__init__()
        _register_graph(self, graph)
        self.in_features, self.out_features = in_features, out_features
        self.dynamic, self.backend = dynamic, backend
        self.W = torch.nn.Parameter(torch.zeros(2, in_features, out_features))
        torch.nn.init.xavier_uniform_(self.W, gain=1.414)
        if dynamic:
            self.register_parameter("e", None)
        else:
            self.e = torch.nn.Parameter(torch.ones(1, graph.num_edges))
        if bias:
            self.bias = torch.nn.Parameter(torch.empty(out_features))
            stdv = 1.0 / math.sqrt(out_features)
            self.bias.data.uniform_(-stdv, stdv)
        else:
            self.register_parameter("bias", None)

    @property
    def graph(self):
        """The layer's LandmarkGraph, on the device of its buffers."""
        return _graph_of(self)

    def forward(self, x, logits=None):
        if self.dynamic and logits is None:
            raise ValueError("logits (B,E) are required when dynamic=True")
        if not self.dynamic and logits is not None:
            raise ValueError("logits are learned (self.e) when dynamic=False; do not pass them")
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must be (B,N,{self.in_features}), got {tuple(x.shape)}")
        weight = self.W.permute(1, 0, 2).reshape(self.in_features, 2 * self.out_features)
        h_self, h_neigh = torch.matmul(x, weight).unflatten(-1, (2, self.out_features)).unbind(-2)
        return graph_relational_aggregate(
            h_self, h_neigh, logits if self.dynamic else self.e.reshape(-1), self.graph,
            self.bias, transposed=self.dynamic, backend=self.backend)

    def extra_repr(self):
        return (f"{self.in_features} -> {self.out_features}, nodes={self.num_nodes}, "
                f"edges={self.col.shape[0]}, dynamic={self.dynamic}")


class RelativeLocationLoss(torch.nn.Module):
    """SDFL relative-location loss (lk.relative_location_loss): base(L·output, L·target),
    L = I − D⁻¹A on the graph's directed edges.

    Args: graph: a LandmarkGraph, the official directed edge list (e.g. LandmarkGraph.preset(
    "wflw98", symmetric=False, self_loops=False)), kept in non-persistent buffers so that
    .to(device) moves it; base="soft_wing" ("wing", "l1"); use_target_weight=False,
    loss_weight=1 (mmpose). Keywords: reduction="batchmean", backend="auto", and the base
    loss's own (omega1, omega2, epsilon for SoftWing; omega, epsilon for Wing).
    forward(output, target, target_weight=None): coordinates (B,N,D); target_weight (B,N),
    (B,N,1) or (B,N,D) weights Δ when use_target_weight.
    """

    def __init__(self, graph, base="soft_wing", use_target_weight=False, loss_weight=1.0, *,
                 reduction="batchmean", backend="auto", **base_kwargs):
        super().__init__()
        _register_graph(self, graph)
        self.base, self.use_target_weight, self.loss_weight = base, use_target_weight, loss_weight
        self.reduction, self.backend, self.base_kwargs = reduction, backend, base_kwargs

    @property
    def graph(self):
        """The loss's LandmarkGraph, on the device of its buffers."""
        return _graph_of(self)

    def forward(self, output, target, target_weight=None):
        if self.use_target_weight and target_weight is None:
            raise ValueError("target_weight is required when use_target_weight=True")
        weight = dict(target_weight=target_weight) if self.use_target_weight else {}
        loss = relative_location_loss(output, target, self.graph, base=self.base,
                                      reduction=self.reduction, backend=self.backend,
                                      **weight, **self.base_kwargs)
        return loss * self.loss_weight

    def extra_repr(self):
        return (f"base={self.base!r}, nodes={self.num_nodes}, edges={self.col.shape[0]}, "
                f"use_target_weight={self.use_target_weight}, loss_weight={self.loss_weight}, "
                f"reduction={self.reduction!r}, backend={self.backend!r}")
