"""nn.Module wrappers with mmpose-compatible constructor arguments and forward signatures."""

import torch

from .awing import awing_loss


class AdaptiveWingLoss(torch.nn.Module):
    """mmpose `AdaptiveWingLoss` plus the AWing weighted loss map (on by default).

    Args (mmpose): alpha=2.1, omega=14, epsilon=1, theta=0.5, use_target_weight=False,
    loss_weight=1. Extra: weight_map=True, map_weight=10, map_threshold=0.2, map_kernel=3,
    reduction="mean", backend="auto". forward(output, target, target_weight=None), heatmaps
    (B,K,H,W); target_weight (B,K) or (B,K,1) or (B,K,H,W) is used when use_target_weight.
    """

    def __init__(self, alpha=2.1, omega=14.0, epsilon=1.0, theta=0.5, use_target_weight=False,
                 loss_weight=1.0, *, weight_map=True, map_weight=10.0, map_threshold=0.2,
                 map_kernel=3, reduction="mean", backend="auto"):
        super().__init__()
        self.alpha, self.omega, self.epsilon, self.theta = alpha, omega, epsilon, theta
        self.use_target_weight = use_target_weight
        self.loss_weight = loss_weight
        self.weight_map, self.map_weight = weight_map, map_weight
        self.map_threshold, self.map_kernel = map_threshold, map_kernel
        self.reduction, self.backend = reduction, backend

    def forward(self, output, target, target_weight=None):
        if self.use_target_weight:
            if target_weight is None:
                raise ValueError("target_weight is required when use_target_weight=True")
            if target_weight.dim() == 3:  # mmpose passes (B,K,1)
                target_weight = target_weight.squeeze(-1)
        else:
            target_weight = None
        loss = awing_loss(output, target, alpha=self.alpha, omega=self.omega,
                          epsilon=self.epsilon, theta=self.theta, weight_map=self.weight_map,
                          map_weight=self.map_weight, map_threshold=self.map_threshold,
                          map_kernel=self.map_kernel, target_weight=target_weight,
                          reduction=self.reduction, backend=self.backend)
        return loss * self.loss_weight
