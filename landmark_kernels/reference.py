"""Pure-PyTorch definitions of every op (SPEC.md in executable form).

Each function here is the `backend="torch"` path and the ground truth that the C++, CUDA and
Triton kernels are tested against. They favour clarity over speed, use plain autograd, and are
written so that autograd itself never produces NaN where the SPEC defines a gradient.
"""

import torch
import torch.nn.functional as F

REDUCTIONS = ("none", "mean", "sum")


def weighted_loss_map(target, *, map_weight=10.0, map_threshold=0.2, map_kernel=3):
    """AWing weighted loss map factor W·M + 1 (AWing paper §4.3), shape of `target` (B,K,H,W).

    M = 1 where the map_kernel×map_kernel grey dilation of the target exceeds map_threshold
    (strict). The dilation is a max pool with −inf padding, i.e. scipy's grey_dilation.
    """
    dilated = F.max_pool2d(target, map_kernel, stride=1, padding=map_kernel // 2)
    return map_weight * (dilated > map_threshold).to(target.dtype) + 1.0


def _upcast(pred, *others):
    """Compute in fp32 (fp64 stays fp64), as the kernels do; constants (targets) are detached."""
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    return (pred.to(dtype),) + tuple(None if t is None else t.detach().to(dtype) for t in others)


def _apply_target_weight(pred, target, target_weight):
    """mmpose semantics: the loss sees (pred·w, target·w); w is (B,K) or (B,K,H,W)."""
    if target_weight is None:
        return pred, target
    w = target_weight
    if w.dim() == 2:
        w = w[:, :, None, None]
    return pred * w, target * w


def _reduce(loss, reduction):
    if reduction == "mean":  # an empty batch gives 0, not nan
        return loss.sum() / max(loss.numel(), 1)
    if reduction == "sum":
        return loss.sum()
    return loss


def awing_loss(pred, target, *, alpha=2.1, omega=14.0, epsilon=1.0, theta=0.5,
               weight_map=True, map_weight=10.0, map_threshold=0.2, map_kernel=3,
               target_weight=None, reduction="mean"):
    """Adaptive Wing loss (Wang et al., ICCV 2019, eq. 6) with the weighted loss map (§4.3).

    pred, target: (B,K,H,W). target_weight: None, (B,K) or (B,K,H,W). The map is built from
    the weighted target. No gradient flows to target or target_weight. Returns a scalar for
    "mean"/"sum", a (B,K,H,W) per-pixel loss for "none", in fp32 (fp64 for fp64 pred).
    """
    pred, target, target_weight = _upcast(pred, target.detach(), target_weight)
    pred, target = _apply_target_weight(pred, target, target_weight)
    delta = (target - pred).abs()
    exponent = alpha - target
    # Small errors, eq. 6 first branch. The power is taken on a safe base so that autograd does
    # not form 0·inf = NaN at δ = 0, where the SPEC defines the gradient as 0.
    is_small = delta < theta
    safe_delta = torch.where(delta > 0, delta, torch.ones_like(delta))
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


def graph_laplacian(x, graph):
    """Δ = L·x with L = I − D⁻¹A, dense (SPEC §6, relative-location loss).

    x: (B,N,D); A: the graph's directed edges, unweighted; D: out-degrees. A node without
    out-edges keeps Δ_i = x_i. Computed in fp32 (fp64 for fp64), returned in x's dtype.
    """
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    adj = graph.dense_mask().to(dtype)
    degree = adj.sum(dim=1, keepdim=True)
    laplacian = torch.eye(graph.num_nodes, dtype=dtype, device=x.device) - \
        adj / degree.clamp(min=1)
    return torch.matmul(laplacian, x.to(dtype)).to(x.dtype)
