"""nn.Module wrappers with mmpose-compatible constructor arguments and forward signatures."""

import torch

from .awing import awing_loss
from .awing_coords import awing_loss_from_coords


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
    loss without a target heatmap. output may also hold several stages ((S,B,K,H,W) or a list)
    when coords are given: the sum of the per-stage losses.
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
        if target_weight is not None and target_weights is not None:
            raise ValueError("pass target_weight or target_weights (mmpose 1.x), not both")
        target_weight = target_weights if target_weight is None else target_weight
        if not self.use_target_weight:
            target_weight = None
        elif target_weight is None:
            raise ValueError("target_weight is required when use_target_weight=True")
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
