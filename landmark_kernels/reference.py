"""Pure-PyTorch definitions of every op (the formulas of docs/ in executable form).

Each function here is the `backend="torch"` path and the ground truth that the C++, CUDA and
Triton kernels are tested against. They favour clarity over speed, use plain autograd, and are
written so that autograd itself never produces NaN where the docs define a gradient.
"""

import math

import torch
import torch.nn.functional as F

from ._stages import is_multi_stage, stage_sum

REDUCTIONS = ("none", "mean", "sum")


def weighted_loss_map(target, *, map_weight=10.0, map_threshold=0.2, map_kernel=3):
    """AWing weighted loss map factor W·M + 1 (AWing paper §4.3), shape of `target` (B,K,H,W).

    M = 1 where the map_kernel×map_kernel grey dilation of the target exceeds map_threshold
    (strict). The dilation is a max pool with −inf padding, i.e. scipy's grey_dilation; like
    max_pool2d, a NaN in the window makes the dilated value NaN, hence M = 0 there.
    """
    if target.numel() == 0:  # max_pool2d rejects empty planes; an empty map is all ones
        return torch.ones_like(target)
    dilated = F.max_pool2d(target, map_kernel, stride=1, padding=map_kernel // 2)
    return map_weight * (dilated > map_threshold).to(target.dtype) + 1.0


def _upcast(pred, *others):
    """Compute in fp32 (fp64 stays fp64), as the kernels do; constants (targets) are detached."""
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    return (pred.to(dtype),) + tuple(None if t is None else t.detach().to(dtype) for t in others)


def _weighted_difference(pred, target, target_weight):
    """mmpose semantics: the loss sees (pred·w, target·w), w (B,K[,H,W]) or (B,N[,D]). Returns
    (pred·w − target·w, target·w), the difference formed as (pred − target)·w: exact where
    pred ≈ target, where the AWing gradient ∝ δ^(α−y−1) magnifies any rounding of δ."""
    if target_weight is None:
        return pred - target, target
    w = target_weight
    while w.dim() < pred.dim():
        w = w.unsqueeze(-1)
    return (pred - target) * w, target * w


def _reduce(loss, reduction):
    """Sum in a fixed order, whatever the thread count: rows of 4096 (each summed by one
    thread), then the row sums (one thread below 32768 rows, i.e. 1.3e8 elements)."""
    if reduction == "none":
        return loss
    flat = loss.reshape(-1)
    rows = F.pad(flat, (0, (-flat.numel()) % 4096)).view(-1, 4096)
    total = rows.sum(dim=1).sum()
    if reduction == "mean":  # an empty batch gives 0, not nan
        return total / max(loss.numel(), 1)
    return total


def awing_loss(pred, target, *, alpha=2.1, omega=14.0, epsilon=1.0, theta=0.5,
               weight_map=True, map_weight=10.0, map_threshold=0.2, map_kernel=3,
               target_weight=None, reduction="mean"):
    """Adaptive Wing loss (Wang et al., ICCV 2019, eq. 6) with the weighted loss map (§4.3).

    pred, target: (B,K,H,W). target_weight: None, (B,K) or (B,K,H,W). The map is built from
    the weighted target. No gradient flows to target or target_weight. Returns a scalar for
    "mean"/"sum", a (B,K,H,W) per-pixel loss for "none", in fp32 (fp64 for fp64 pred).
    """
    pred, target, target_weight = _upcast(pred, target.detach(), target_weight)
    diff, target = _weighted_difference(pred, target, target_weight)
    # δ = |diff| with a NaN-propagating derivative (torch's abs has derivative sign(NaN) = 0):
    # NaN in gives NaN loss and gradient in every backend.
    sign = torch.where(diff > 0, 1.0, torch.where(diff < 0, -1.0, diff * 0))
    delta = diff * sign
    exponent = alpha - target
    # Small errors, eq. 6 first branch. The power is taken on a safe base wherever the branch is
    # not used, so that autograd does not form 0·inf = NaN at δ = 0 (where the gradient is
    # defined as 0) or inf/inf = NaN at δ = inf (where it is the slope A of the other branch).
    is_small = delta < theta
    safe_delta = torch.where(is_small & (delta > 0), delta, torch.ones_like(delta))
    small = omega * torch.log1p(torch.pow(safe_delta / epsilon, exponent))
    small = torch.where(delta > 0, small,
                        omega * torch.log1p(torch.pow(torch.zeros_like(delta), exponent)))
    # Large errors: linear with slope A and offset C so that the loss is C¹ at δ = θ.
    theta_pow = torch.pow(torch.full_like(target, theta / epsilon), exponent)
    a = omega * exponent * (theta_pow / (theta / epsilon)) / (epsilon * (1 + theta_pow))
    c = theta * a - omega * torch.log1p(theta_pow)
    loss = torch.where(is_small, small, a * delta - c)
    if weight_map:
        loss = loss * weighted_loss_map(target, map_weight=map_weight,
                                        map_threshold=map_threshold, map_kernel=map_kernel)
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------------------------------
# Coordinate losses (SPEC §2–§5): pred, target (B,N,D), D = 2 usually.

COORD_REDUCTIONS = ("none", "mean", "sum", "batchmean")


def _coord_delta(pred, target, target_weight=None):
    """δ = |(pred − target)·w| (mmpose's loss(pred·w, target·w), formed without the rounding of
    pred·w − target·w), w (B,N), (B,N,1) or (B,N,D). Its derivative is sign(diff), except NaN
    at NaN (torch's abs has sign(NaN) = 0): NaN in gives NaN loss and gradient."""
    pred, target, target_weight = _upcast(pred, target, target_weight)
    diff, _ = _weighted_difference(pred, target, target_weight)
    sign = torch.where(diff > 0, 1.0, torch.where(diff < 0, -1.0, diff * 0))
    return diff * sign


def _reduce_coord(loss, reduction):
    """"batchmean" = sum over all but the batch dim, mean over the batch (mmpose: mean(sum(l,
    dim=[1,2]), dim=0)); an empty batch gives 0. Fixed summation order, as `_reduce`."""
    if reduction == "batchmean":
        return _reduce(loss, "sum") / max(loss.shape[0], 1)
    return _reduce(loss, reduction)


def wing_loss(pred, target, *, omega=10.0, epsilon=2.0, target_weight=None,
              reduction="batchmean"):
    """Wing loss (Feng et al., CVPR 2018, eq. 5): δ < ω: ω·ln(1 + δ/ε); else δ − C with
    C = ω − ω·ln(1 + ω/ε), δ = |pred − target|·w.

    pred, target: (B,N,D); target_weight None, (B,N), (B,N,1) or (B,N,D). Reduction
    "batchmean" (default, mmpose), "mean", "sum" or "none". fp32 result (fp64 for fp64 pred);
    no gradient to target or target_weight; the gradient at δ = 0 is 0. NaN in pred or target
    gives NaN loss and gradient at that element, ±inf the formula's limit.
    """
    delta = _coord_delta(pred, target, target_weight)
    c = omega - omega * math.log1p(omega / epsilon)
    loss = torch.where(delta < omega, omega * torch.log1p(delta / epsilon), delta - c)
    return _reduce_coord(loss, reduction)


def soft_wing_loss(pred, target, *, omega1=2.0, omega2=20.0, epsilon=0.5, target_weight=None,
                   reduction="batchmean"):
    """SoftWing loss (Lin et al., SDFL, TIP 2021, eq. 12; mmpose SoftWingLoss): δ < ω1: δ; else
    ω2·ln(1 + δ/ε) + B with B = ω1 − ω2·ln(1 + ω1/ε). Shapes, target_weight and reductions as
    `wing_loss`; the gradient at δ = 0 is 0.
    """
    delta = _coord_delta(pred, target, target_weight)
    b = omega1 - omega2 * math.log1p(omega1 / epsilon)
    loss = torch.where(delta < omega1, delta, omega2 * torch.log1p(delta / epsilon) + b)
    return _reduce_coord(loss, reduction)


def acr_loss(pred, target, phi, *, lam=1.0, reduction="mean"):
    """ACR loss (Fard & Mahoor 2022, eq. 6) without the official ×100 (a loss weight).

    Per coordinate, Δ = |target − pred| and Φ ∈ [0,1]: Δ ≤ 1: λ·ln(1 + Δ^(2−Φ)); Δ > 1:
    Δ² + Φ·ln2 − 1 (the official constant: continuous at Δ = 1 only where λ = Φ).
    pred, target (B,N,D); phi (B,N,D), (B,N) or (B,N,1) (per landmark). Reduction "mean"
    (default), "sum", "batchmean" or "none". Elements whose Φ is outside [0,1] (or NaN) give NaN.
    The gradient at Δ = 0 is 0, also for Φ = 1 (where the loss is λ·ln(1+Δ), a kink).
    """
    delta = _coord_delta(pred, target)
    phi = _upcast(pred, phi)[1]
    phi = phi[..., None] if phi.dim() == 2 else phi  # per landmark: (B,N) → (B,N,1)
    # The power only on Δ ≤ 1, so that the unselected branch never puts inf into the gradient
    # (Δ^(2−Φ) has a finite derivative at 0 because 2 − Φ ≥ 1). A where, not clamp(max=1):
    # clamp's gradient is 0 at Δ = 1 itself, which belongs to this branch.
    is_small = delta <= 1.0
    small = lam * torch.log1p(torch.where(is_small, delta, 1.0) ** (2.0 - phi))
    loss = torch.where(is_small, small, delta * delta + phi * math.log(2.0) - 1.0)
    # NaN value and gradient outside Φ's domain: loud, and GradScaler skips such a step.
    return _reduce_coord(loss * torch.where((phi >= 0) & (phi <= 1), 1.0, torch.nan), reduction)


def pfld_attribute_weights(attributes):
    """PFLD-pytorch's class weights: 1/mean_b(a_bc), or the batch size B for a class that no
    sample of the batch has. attributes (B,C) → (C,), on the device, no host synchronisation."""
    batch = attributes.shape[0]
    freq = attributes.mean(dim=0) if batch > 0 else attributes.sum(dim=0)
    return torch.where(freq > 0, 1.0 / torch.where(freq > 0, freq, 1.0), float(batch))


def pfld_loss(pred, target, angles, angles_target, attributes, *, attribute_weights=None,
              degrees=False, weight_floor=0.0):
    """PFLD loss (Guo et al. 2019, eq. 2 as PFLD-pytorch computes it) → (weighted, l2).

    weighted = mean_b [Σ_k (1 − cos(θ̂_bk − θ_bk)) · max(Σ_c w_c·a_bc, weight_floor) · D_b],
    l2 = mean_b D_b, with D_b = Σ ‖ŷ_b − y_b‖² over all landmark coordinates of sample b.
    pred, target (B, ...) (e.g. (B,N,2) or PFLD-pytorch's (B,2N)); angles, angles_target (B,K)
    (K = 3 Euler angles), radians unless degrees=True; attributes (B,C) 0/1 (the classes to
    weight, e.g. WFLW's columns 1:6); attribute_weights (C,) or None for
    `pfld_attribute_weights`. Angle differences are wrapped into [−π, π) (periodic: a 360°
    error is no error). Gradients flow to pred and angles. Empty batch: both 0.
    """
    pred, target, angles_target, attributes, attribute_weights = _upcast(
        pred, target, angles_target, attributes, attribute_weights)
    batch = pred.shape[0]
    diff = (pred - target).flatten(1)
    d2 = (diff * diff).sum(dim=1)
    period = 360.0 if degrees else 2 * math.pi
    d = angles.to(pred.dtype) - angles_target
    d = d - period * torch.round(d / period)  # round's derivative is 0: d's gradient stays 1
    angle_weight = (1.0 - torch.cos(d * (2 * math.pi / period))).sum(dim=1)
    if attribute_weights is None:
        attribute_weights = pfld_attribute_weights(attributes)
    attribute_weight = (attributes * attribute_weights).sum(dim=1).clamp(min=weight_floor)
    scale = 1.0 / max(batch, 1)
    return (_reduce(angle_weight * attribute_weight * d2, "sum") * scale,
            _reduce(d2, "sum") * scale)
# --- SDFL graph ops (SPEC §6) -------------------------------------------------------------------

def graph_relational_aggregate(h_self, h_neigh, logits, graph, bias=None, *, transposed=False):
    """Dense SDFL aggregation: the official SemGraphConv (row) / DynamicGConv (transposed).

    h_self, h_neigh: (B,N,F) (= x·W0, x·W1); logits: (E,) shared or (B,E) per sample, in the
    graph's row-major edge order; bias: None or (F,). A = softmax over each row of the dense
    (N,N) matrix holding the logits on the mask and −9e15 off it (exactly the official code);
    row: out_i = Σ_j A_ij·(j = i ? h_self_j : h_neigh_j); transposed: Aᵀ in place of A (node i
    gathers column i). Computed in fp32 (fp64 for fp64), returned in h_self's dtype; plain
    autograd, gradients to all four tensors. A node without any edge gets the dense formula's
    uniform 1/N row (the fused op rejects such graphs).
    """
    dtype = torch.float64 if h_self.dtype == torch.float64 else torch.float32
    out_dtype = h_self.dtype
    h_self, h_neigh, logits = h_self.to(dtype), h_neigh.to(dtype), logits.to(dtype)
    n = graph.num_nodes
    rows = logits.shape[0] if logits.dim() == 2 else 1
    adj = torch.full((rows, n, n), -9e15, dtype=dtype, device=h_self.device)
    adj[:, graph.row, graph.col] = logits.reshape(rows, -1)
    adj = torch.softmax(adj, dim=-1)
    if transposed:
        adj = adj.transpose(1, 2)
    eye = torch.eye(n, dtype=dtype, device=h_self.device)
    out = torch.matmul(adj * eye, h_self) + torch.matmul(adj * (1 - eye), h_neigh)
    if bias is not None:
        out = out + bias.to(dtype)
    return out.to(out_dtype)


def graph_laplacian(x, graph, *, transpose=False):
    """Δ = L·x (transpose: Lᵀ·x) with L = I − D⁻¹A, dense (SPEC §6, relative-location loss).

    x: (B,N,D); A: the graph's directed edges, unweighted; D: out-degrees. A node without
    out-edges has the row e_i of I (Δ_i = x_i). Computed in fp32 (fp64 for fp64), returned in
    x's dtype.
    """
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    adj = graph.dense_mask().to(dtype)
    degree = adj.sum(dim=1, keepdim=True)
    laplacian = torch.eye(graph.num_nodes, dtype=dtype, device=x.device) - \
        adj / degree.clamp(min=1)
    if transpose:
        laplacian = laplacian.T
    return torch.matmul(laplacian, x.to(dtype)).to(x.dtype)


def l1_coord_loss(pred, target, *, target_weight=None, reduction="batchmean"):
    """|pred − target|·w per coordinate, reduced as `wing_loss`; fp32 (fp64 for fp64)."""
    return _reduce_coord(_coord_delta(pred, target, target_weight), reduction)


def relative_location_loss(pred, target, graph, *, base="soft_wing", reduction="batchmean",
                           **base_kwargs):
    """SDFL relative-location loss: base(L·pred, L·target), L = I − D⁻¹A on the graph's
    directed edges (graph_laplacian); base "soft_wing", "wing" or "l1" with its keywords.
    The official code's D⁻¹A − I flips the sign of both Δ: the same loss."""
    loss = {"soft_wing": soft_wing_loss, "wing": wing_loss, "l1": l1_coord_loss}[base]
    return loss(graph_laplacian(pred, graph), graph_laplacian(target.detach(), graph),
                reduction=reduction, **base_kwargs)
def _sigma_per_channel(sigma, channels, like):
    """sigma as a (K,) tensor of `like`'s dtype and device (a number applies to every channel)."""
    sigma = torch.as_tensor(sigma, dtype=like.dtype, device=like.device)
    return sigma.expand(channels) if sigma.dim() == 0 else sigma


def render_gaussian_heatmaps(coords, height, width, sigma, *, dtype=None):
    """Gaussian target heatmaps y = exp(−((x−cx)² + (y−cy)²)/(2σ²)) (AWing/HRNet targets).

    coords: (B,K,2) landmark positions (x, y) in heatmap pixels, pixel centres at integers: pixel
    (row i, column j) sits at (x, y) = (j, i). sigma: a number or (K,). A landmark with a NaN
    coordinate (missing) renders as an all-zero heatmap; one far outside the map renders its
    in-map tail. Returns (B,K,height,width) in `dtype` (default coords' dtype).
    """
    sigma = _sigma_per_channel(sigma, coords.shape[1], coords)
    xs = torch.arange(width, dtype=coords.dtype, device=coords.device)
    ys = torch.arange(height, dtype=coords.dtype, device=coords.device)
    cx, cy = coords[..., 0, None, None], coords[..., 1, None, None]
    d2 = (xs - cx) ** 2 + (ys[:, None] - cy) ** 2
    heat = torch.exp(-d2 / (2 * sigma[:, None, None] ** 2))
    missing = torch.isnan(coords).any(dim=-1)[..., None, None]
    heat = torch.where(missing, torch.zeros_like(heat), heat)
    return heat.to(dtype or coords.dtype)


def awing_loss_from_coords(pred, coords, sigma, *, stage_weights=None, **awing_keywords):
    """awing_loss(pred, render_gaussian_heatmaps(coords, H, W, sigma), **awing_keywords), the
    target rendered in fp32 (fp64 for fp64 pred). pred (B,K,H,W), coords (B,K,2), sigma a number
    or (K,). Multi-stage: pred (S,B,K,H,W) or a list of S (B,K,H,W) gives
    Σ_s stage_weights[s]·loss(pred[s]) (weights default to 1)."""
    if is_multi_stage(pred):
        return stage_sum(lambda p: awing_loss_from_coords(p, coords, sigma, **awing_keywords),
                         pred, stage_weights)
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    target = render_gaussian_heatmaps(coords.detach().to(dtype), pred.shape[-2], pred.shape[-1],
                                      sigma)
    return awing_loss(pred, target, **awing_keywords)
