"""nn.Module wrappers with mmpose-compatible constructor arguments and forward signatures."""

import math

import torch

from .awing import awing_loss
from .awing_coords import awing_loss_from_coords
from .coord_losses import acr_loss, soft_wing_loss, wing_loss
from .graph import LandmarkGraph
from .graph_aggregate import graph_relational_aggregate
from .pfld import pfld_loss
from .relative_location import relative_location_loss
from .shape_model import acr_variance_schedule


def _target_weight(use_target_weight, target_weight, target_weights):
    """mmpose 0.x passes `target_weight`, 1.x `target_weights`: accept either (not both); None
    unless use_target_weight, which requires one."""
    if target_weight is not None and target_weights is not None:
        raise ValueError("pass target_weight or target_weights (mmpose 1.x), not both")
    target_weight = target_weights if target_weight is None else target_weight
    if not use_target_weight:
        return None
    if target_weight is None:
        raise ValueError("target_weight is required when use_target_weight=True")
    return target_weight


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
    is accepted too). With coords=(B,K,2) and sigma (a number or (K,)) in place of target,
    the Gaussian target is rendered inside the kernel (lk.awing_loss_from_coords): the same
    loss without a target heatmap. output may also hold several stages ((S,B,K,H,W) or a list),
    with a target or coords: the sum of the per-stage losses, in one kernel launch.
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

    def forward(self, output, target=None, target_weight=None, *, target_weights=None,
                coords=None, sigma=None):
        target_weight = _target_weight(self.use_target_weight, target_weight, target_weights)
        if (target is None) == (coords is None):
            raise ValueError("pass either target or coords (with sigma), not both or neither")
        kw = dict(alpha=self.alpha, omega=self.omega, epsilon=self.epsilon, theta=self.theta,
                  weight_map=self.weight_map, map_weight=self.map_weight,
                  map_threshold=self.map_threshold, map_kernel=self.map_kernel,
                  target_weight=target_weight, reduction=self.reduction, backend=self.backend)
        if coords is None:
            loss = awing_loss(output, target, **kw)
        elif sigma is None:
            raise ValueError("sigma is required with coords")
        else:
            loss = awing_loss_from_coords(output, coords, sigma, **kw)
        return loss * self.loss_weight

    def extra_repr(self):
        text = (f"alpha={self.alpha}, omega={self.omega}, epsilon={self.epsilon}, "
                f"theta={self.theta}, use_target_weight={self.use_target_weight}, "
                f"loss_weight={self.loss_weight}, weight_map={self.weight_map}")
        if self.weight_map:
            text += (f", map_weight={self.map_weight}, map_threshold={self.map_threshold}, "
                     f"map_kernel={self.map_kernel}")
        return text + f", reduction={self.reduction!r}, backend={self.backend!r}"


class _CoordLoss(torch.nn.Module):
    """mmpose's coordinate-loss interface: forward(output, target, target_weight=None), pred and
    target (B,N,D); target_weight (B,N), (B,N,1) or (B,N,D), used when use_target_weight
    (mmpose 1.x's keyword `target_weights` is accepted too); returns loss · loss_weight."""

    def __init__(self, use_target_weight, loss_weight, coord_scale, reduction, backend):
        super().__init__()
        if not coord_scale > 0:
            raise ValueError(f"coord_scale must be > 0, got {coord_scale!r}")
        self.use_target_weight, self.loss_weight = use_target_weight, loss_weight
        self.coord_scale, self.reduction, self.backend = coord_scale, reduction, backend

    def forward(self, output, target, target_weight=None, *, target_weights=None):
        target_weight = _target_weight(self.use_target_weight, target_weight, target_weights)
        # The loss of the coordinates times coord_scale (pixels) with the pixel hyper-
        # parameters equals coord_scale × the loss with hyper-parameters / coord_scale: no
        # scaled copies of pred and target.
        s = self.coord_scale
        return self._loss(output, target, target_weight, s) * (self.loss_weight * s)

    def extra_repr(self):
        return (", ".join(f"{k}={getattr(self, k)!r}" for k in self._HYPER)
                + f", use_target_weight={self.use_target_weight}, "
                f"loss_weight={self.loss_weight}, coord_scale={self.coord_scale}, "
                f"reduction={self.reduction!r}, backend={self.backend!r}")


class WingLoss(_CoordLoss):
    """mmpose's `WingLoss` (Feng et al. 2018): same arguments, defaults and numbers.

    Args (mmpose): omega=10, epsilon=2, use_target_weight=False, loss_weight=1. Extra keywords:
    coord_scale=1, reduction="batchmean" (mmpose's: sum over N and D, mean over B), backend.

    ω and ε are in pixels. mmpose's regression heads train on coordinates normalised to [0,1],
    where every error is far below ω and the log branch's ε = 2 makes Wing nearly linear; set
    coord_scale to the pixels per unit of your labels (e.g. the input size, 256) and the loss
    is the pixel-space Wing loss of your coordinates, so one config serves pixel and normalised
    labels. The value is then in pixel units (coord_scale × the normalised-unit value).
    """

    _HYPER = ("omega", "epsilon")

    def __init__(self, omega=10.0, epsilon=2.0, use_target_weight=False, loss_weight=1.0, *,
                 coord_scale=1.0, reduction="batchmean", backend="auto"):
        super().__init__(use_target_weight, loss_weight, coord_scale, reduction, backend)
        self.omega, self.epsilon = omega, epsilon

    def _loss(self, output, target, target_weight, s):
        return wing_loss(output, target, omega=self.omega / s, epsilon=self.epsilon / s,
                         target_weight=target_weight, reduction=self.reduction,
                         backend=self.backend)


class SoftWingLoss(_CoordLoss):
    """mmpose's `SoftWingLoss` (SDFL, Lin et al. 2021): same arguments, defaults and numbers.

    Args (mmpose): omega1=2, omega2=20, epsilon=0.5, use_target_weight=False, loss_weight=1.
    Extra keywords: coord_scale=1, reduction="batchmean", backend.

    ω1, ω2 and ε are in pixels: on coordinates normalised to [0,1] every error is below ω1 = 2,
    so SoftWing silently degenerates into plain L1 (as users of mmpose and of the SDFL code
    found). Set coord_scale to the pixels per unit of your labels (e.g. 256) to get the pixel-
    space loss (value in pixel units).
    """

    _HYPER = ("omega1", "omega2", "epsilon")

    def __init__(self, omega1=2.0, omega2=20.0, epsilon=0.5, use_target_weight=False,
                 loss_weight=1.0, *, coord_scale=1.0, reduction="batchmean", backend="auto"):
        super().__init__(use_target_weight, loss_weight, coord_scale, reduction, backend)
        self.omega1, self.omega2, self.epsilon = omega1, omega2, epsilon

    def _loss(self, output, target, target_weight, s):
        return soft_wing_loss(output, target, omega1=self.omega1 / s, omega2=self.omega2 / s,
                              epsilon=self.epsilon / s, target_weight=target_weight,
                              reduction=self.reduction, backend=self.backend)


class ACRLoss(torch.nn.Module):
    """ACR loss (Fard & Mahoor 2022) with its Φ computed on the device.

    Args: lam=1 (λ), use_target_weight=False, loss_weight=1 (the official code's factor is 100:
    loss_weight=100 reproduces it). Keywords: shape_model (a ShapeModel fitted to the training
    shapes; Φ = shape_model.phi(target, variance) when forward gets no phi), variance=0.9 (or
    set_epoch(epoch) for the paper's schedule, acr_variance_schedule), reduction="mean", backend.
    forward(output, target, target_weight=None, *, phi=None, target_weights=None): (B,N,D);
    with use_target_weight the loss sees (output·w, target·w) as mmpose's losses, Φ still from
    the unweighted target.
    """

    def __init__(self, lam=1.0, use_target_weight=False, loss_weight=1.0, *, shape_model=None,
                 variance=0.9, reduction="mean", backend="auto"):
        super().__init__()
        self.lam, self.use_target_weight, self.loss_weight = lam, use_target_weight, loss_weight
        self.shape_model, self.variance = shape_model, variance
        self.reduction, self.backend = reduction, backend

    def set_epoch(self, epoch):
        """Use the paper's variance for `epoch` (0.80 … 0.97, see acr_variance_schedule)."""
        self.variance = acr_variance_schedule(epoch)

    def forward(self, output, target, target_weight=None, *, phi=None, target_weights=None):
        target_weight = _target_weight(self.use_target_weight, target_weight, target_weights)
        if phi is None:
            if self.shape_model is None:
                raise ValueError("ACRLoss needs phi, or a shape_model to compute it from target")
            phi = self.shape_model.phi(target.detach(), self.variance)
        if target_weight is not None:
            w = target_weight if target_weight.dim() == 3 else target_weight[..., None]
            output, target = output * w, target * w
        loss = acr_loss(output, target, phi, lam=self.lam, reduction=self.reduction,
                        backend=self.backend)
        return loss * self.loss_weight

    def extra_repr(self):
        return (f"lam={self.lam}, use_target_weight={self.use_target_weight}, "
                f"loss_weight={self.loss_weight}, shape_model={self.shape_model}, "
                f"variance={self.variance}, reduction={self.reduction!r}, "
                f"backend={self.backend!r}")


class PFLDLoss(torch.nn.Module):
    """PFLD loss (Guo et al. 2019) as PFLD-pytorch's `PFLDLoss`, on the device.

    Args: attribute_weights=None (PFLD-pytorch's 1/frequency, B for an absent class),
    degrees=False (True converts degree angles; PFLD-pytorch feeds degrees to cos),
    weight_floor=0 (upstream: faces with no attribute get weight 0; e.g. 1 trains them),
    loss_weight=1 (multiplies both outputs), backend.
    forward(landmarks, landmarks_target, angles, angles_target, attributes) → (weighted, l2),
    i.e. PFLD-pytorch's forward(attribute_gt[:, 1:6], landmark_gt, euler_angle_gt, angle,
    landmarks, train_batchsize) reordered, without train_batchsize: the weight of a class
    absent from the batch is the batch's own size (upstream uses the configured batch size,
    which differs only on a smaller last batch); see lk.pfld_loss.
    """

    def __init__(self, attribute_weights=None, degrees=False, weight_floor=0.0, loss_weight=1.0,
                 *, backend="auto"):
        super().__init__()
        self.attribute_weights, self.degrees = attribute_weights, degrees
        self.weight_floor, self.loss_weight, self.backend = weight_floor, loss_weight, backend

    def forward(self, landmarks, landmarks_target, angles, angles_target, attributes):
        weighted, l2 = pfld_loss(landmarks, landmarks_target, angles, angles_target, attributes,
                                 attribute_weights=self.attribute_weights, degrees=self.degrees,
                                 weight_floor=self.weight_floor, backend=self.backend)
        return weighted * self.loss_weight, l2 * self.loss_weight

    def extra_repr(self):
        return (f"attribute_weights={self.attribute_weights}, degrees={self.degrees}, "
                f"weight_floor={self.weight_floor}, loss_weight={self.loss_weight}, "
                f"backend={self.backend!r}")


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
    forward(output, target, target_weight=None, *, target_weights=None): coordinates (B,N,D);
    target_weight (or mmpose 1.x's target_weights) (B,N),
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

    def forward(self, output, target, target_weight=None, *, target_weights=None):
        target_weight = _target_weight(self.use_target_weight, target_weight, target_weights)
        weight = {} if target_weight is None else dict(target_weight=target_weight)
        loss = relative_location_loss(output, target, self.graph, base=self.base,
                                      reduction=self.reduction, backend=self.backend,
                                      **weight, **self.base_kwargs)
        return loss * self.loss_weight

    def extra_repr(self):
        return (f"base={self.base!r}, nodes={self.num_nodes}, edges={self.col.shape[0]}, "
                f"use_target_weight={self.use_target_weight}, loss_weight={self.loss_weight}, "
                f"reduction={self.reduction!r}, backend={self.backend!r}")


class CoordConv(torch.nn.Module):
    """AWing's CoordConv (Wang et al. 2019, §4.4; Liu et al. 2018's AddCoords) followed by a conv.

    forward(x, boundary=None): x (B,C,H,W). Appends to x the channels
      x-coordinate and y-coordinate, each in [−1, 1] across the map (x along W, y along H);
      r = sqrt(x² + y²) when with_r (AWing: with_r=True, in the hourglass's first layer);
      with with_boundary (AWing: True after the first stack), the x and y channels again, kept
      where the given boundary heatmap (B,1,H,W) exceeds boundary_threshold (AWing: 0.05) and 0
      elsewhere, so the network sees coordinates along the facial boundary only.
    The result, C + 2 (+1) (+2) channels, goes through
    Conv2d(in_channels + extra, out_channels, **conv_kwargs). Pure PyTorch.
    """

    def __init__(self, in_channels, out_channels, *, with_r=False, with_boundary=False,
                 boundary_threshold=0.05, **conv_kwargs):
        super().__init__()
        self.with_r, self.with_boundary = with_r, with_boundary
        self.boundary_threshold = boundary_threshold
        extra = 2 + int(with_r) + 2 * int(with_boundary)
        self.conv = torch.nn.Conv2d(in_channels + extra, out_channels, **conv_kwargs)

    def add_coords(self, x, boundary=None):
        """x with the coordinate channels appended (before the convolution)."""
        if x.dim() != 4:
            raise ValueError(f"x must be (B,C,H,W), got shape {tuple(x.shape)}")
        b, _, h, w = x.shape
        xs = torch.linspace(-1.0, 1.0, w, dtype=x.dtype, device=x.device) if w > 1 else \
            torch.zeros(w, dtype=x.dtype, device=x.device)
        ys = torch.linspace(-1.0, 1.0, h, dtype=x.dtype, device=x.device) if h > 1 else \
            torch.zeros(h, dtype=x.dtype, device=x.device)
        xx = xs.expand(b, 1, h, w)
        yy = ys[:, None].expand(b, 1, h, w)
        extra = [xx, yy]
        if self.with_r:
            extra.append(torch.sqrt(xx * xx + yy * yy))
        if self.with_boundary:
            if boundary is None or boundary.shape != (b, 1, h, w):
                raise ValueError(f"boundary must be (B,1,H,W) = ({b}, 1, {h}, {w}) with "
                                 f"with_boundary=True, got "
                                 f"{None if boundary is None else tuple(boundary.shape)}")
            keep = boundary.detach() > self.boundary_threshold
            zero = torch.zeros((), dtype=x.dtype, device=x.device)
            extra += [torch.where(keep, xx, zero), torch.where(keep, yy, zero)]
        return torch.cat([x] + extra, dim=1)

    def forward(self, x, boundary=None):
        return self.conv(self.add_coords(x, boundary))

    def extra_repr(self):
        return (f"with_r={self.with_r}, with_boundary={self.with_boundary}, "
                f"boundary_threshold={self.boundary_threshold}")
