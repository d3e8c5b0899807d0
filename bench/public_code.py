"""How the public code computes each loss: the baselines of the benchmark.

mmpose's losses are used when `import mmpose` works; otherwise (and for the other projects)
these are restatements written from the public formulas and code, kept as those projects write
them (the same tensor operations, including their host loops), so that timing them times what
a user of that code pays. They are benchmark baselines only, not part of the package.
"""

import math

import numpy as np
import torch

try:  # the official AWing loader's dilation; without scipy that pipeline is not timed
    from scipy.ndimage import grey_dilation
except ImportError:
    grey_dilation = None

try:  # mmpose's own modules when installed (it needs mmcv/mmengine)
    from mmpose.models.losses import AdaptiveWingLoss, SoftWingLoss, WingLoss
    MMPOSE = "mmpose"
except Exception:  # noqa: BLE001 (any import failure: use the restatements below)
    AdaptiveWingLoss = SoftWingLoss = WingLoss = None
    MMPOSE = "mmpose-style (restated)"


def awing_pixels(pred, target, alpha=2.1, omega=14.0, epsilon=1.0, theta=0.5):
    """Per-pixel AWing (paper eq. 6) as mmpose's AdaptiveWingLoss.criterion writes it."""
    delta = (target - pred).abs()
    a = omega * (1 / (1 + torch.pow(theta / epsilon, alpha - target))) * (alpha - target) * \
        torch.pow(theta / epsilon, alpha - target - 1) * (1 / epsilon)
    c = theta * a - omega * torch.log(1 + torch.pow(theta / epsilon, alpha - target))
    return torch.where(delta < theta,
                       omega * torch.log(1 + torch.pow(delta / epsilon, alpha - target)),
                       a * delta - c)


def mmpose_awing(pred, target):
    """mmpose AdaptiveWingLoss: mean of the per-pixel loss, no weighted loss map."""
    if AdaptiveWingLoss is not None:
        return AdaptiveWingLoss()(pred, target)
    return torch.mean(awing_pixels(pred, target))


def official_awing_with_map(pred, target, weight_map, map_weight=10.0):
    """The official AWing training loss: the per-pixel loss times (W·M + 1), mean; M is the
    loader-made map of `official_weight_map`, already on pred's device."""
    return torch.mean(awing_pixels(pred, target) * (weight_map * map_weight + 1))


def official_weight_map(heatmaps):
    """The official AWing data loader's weight map (utils.generate_weight_map): per heatmap, a
    3×3 scipy grey dilation on the CPU, M = 1 where it exceeds 0.2. heatmaps: (B,K,H,W) NumPy."""
    weight_map = np.zeros_like(heatmaps)
    for i in range(heatmaps.shape[0]):
        for j in range(heatmaps.shape[1]):
            dilate = grey_dilation(heatmaps[i, j], size=(3, 3))
            valid = np.where(dilate > 0.2)
            weight_map[i, j, valid[0], valid[1]] = 1
    return weight_map


def mmpose_unbiased_heatmaps(keypoints, height, width, sigma):
    """mmpose codecs generate_unbiased_gaussian_heatmaps for one sample, in the loader (NumPy,
    a loop over the keypoints): keypoints (K,2) → (K,H,W) float32."""
    heatmaps = np.zeros((keypoints.shape[0], height, width), dtype=np.float32)
    radius = sigma * 3
    x = np.arange(0, width, 1, dtype=np.float32)
    y = np.arange(0, height, 1, dtype=np.float32)[:, None]
    for k in range(keypoints.shape[0]):
        mu = keypoints[k]
        left, top = mu - radius
        right, bottom = mu + radius + 1
        if left >= width or top >= height or right < 0 or bottom < 0:
            continue
        heatmaps[k] = np.exp(-((x - mu[0]) ** 2 + (y - mu[1]) ** 2) / (2 * sigma ** 2))
    return heatmaps


def mmpose_wing(pred, target, omega=10.0, epsilon=2.0):
    """mmpose WingLoss.criterion: mean over the batch of the per-sample sum."""
    if WingLoss is not None:
        return WingLoss()(pred, target)
    c = omega * (1.0 - math.log(1.0 + omega / epsilon))
    delta = (target - pred).abs()
    losses = torch.where(delta < omega, omega * torch.log(1.0 + delta / epsilon), delta - c)
    return torch.mean(torch.sum(losses, dim=[1, 2]), dim=0)


def mmpose_soft_wing(pred, target, omega1=2.0, omega2=20.0, epsilon=0.5):
    """mmpose SoftWingLoss.criterion (SDFL eq. 12)."""
    if SoftWingLoss is not None:
        return SoftWingLoss()(pred, target)
    b = omega1 - omega2 * math.log(1.0 + omega1 / epsilon)
    delta = (target - pred).abs()
    losses = torch.where(delta < omega1, delta, omega2 * torch.log(1.0 + delta / epsilon) + b)
    return torch.mean(torch.sum(losses, dim=[1, 2]), dim=0)


def official_acr(pred, target, phi, lam=1.0):
    """The official ACR loss (TensorFlow, ACRLoss.acr_loss) restated op for op in PyTorch: 0/1
    masks for the two branches, a mean over all elements for each, the factor 100."""
    low = (torch.abs(pred - target) <= 1.0).float()
    high = (torch.abs(pred - target) > 1.0).float()
    c = phi * math.log(2.0) - 1.0
    loss_high = 100 * torch.mean(high * (torch.square(pred - target) + c))
    small = torch.pow(torch.abs(pred - target), 2.0 - phi)
    loss_low = 100 * torch.mean(low * (lam * torch.log(1.0 + small)))
    return loss_low + loss_high


def pfld_pytorch_loss(attribute_gt, landmark_gt, euler_angle_gt, angle, landmarks,
                      train_batchsize):
    """PFLD-pytorch PFLDLoss.forward, as written: a Python loop over the 5 attribute ratios
    (each `x > 0` a host synchronisation) and a new tensor copied to the device per call.
    attribute_gt (B,6) (column 0, pose, unused), landmarks (B,2N), angles (B,3)."""
    weight_angle = torch.sum(1 - torch.cos(angle - euler_angle_gt), axis=1)
    attributes_w_n = attribute_gt[:, 1:6].float()
    mat_ratio = torch.mean(attributes_w_n, axis=0)
    mat_ratio = torch.Tensor([1.0 / x if x > 0 else train_batchsize
                              for x in mat_ratio]).to(landmarks.device)
    weight_attribute = torch.sum(attributes_w_n.mul(mat_ratio), axis=1)
    l2_distant = torch.sum((landmark_gt - landmarks) * (landmark_gt - landmarks), axis=1)
    return torch.mean(weight_angle * weight_attribute * l2_distant), torch.mean(l2_distant)


def sdfl_dense_aggregate(h0, h1, e, mask, transposed=False):
    """The official SDFL layers' aggregation after their two matmuls (SemGraphConv; transposed:
    DynamicGConv with per-sample logits): a dense N×N (or B×N×N) matrix holding e on the mask
    and −9e15 elsewhere, softmax over rows, then two dense matmuls."""
    rows = e.shape[0] if e.dim() == 2 else 1
    adj = -9e15 * torch.ones(rows, *mask.shape, device=h0.device)
    adj[:, mask] = e.reshape(rows, -1)
    adj = torch.softmax(adj, dim=2)
    if transposed:
        adj = adj.transpose(1, 2)
    m = torch.eye(mask.shape[0], device=h0.device)
    return torch.matmul(adj * m, h0) + torch.matmul(adj * (1 - m), h1)


def sdfl_relative_location(pred, target, adj):
    """The official SDFL relative-location loss: Δ = (D⁻¹A − I)·P for prediction and target by
    dense matmuls, then SoftWing (mmpose's formula). adj: dense directed (N,N) 0/1."""
    lap = adj / adj.sum(dim=1, keepdim=True).clamp(min=1) - torch.eye(adj.shape[0],
                                                                     device=adj.device)
    return mmpose_soft_wing(torch.matmul(lap, pred), torch.matmul(lap, target))
