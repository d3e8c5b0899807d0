"""nn.Module wrappers with mmpose-compatible constructor arguments and forward signatures."""

import torch

from .awing import awing_loss


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
