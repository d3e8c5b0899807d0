"""Train a small stacked hourglass on synthetic faces with the Adaptive Wing loss.

    python examples/train_heatmap.py [--steps 20] [--loss ours|reference] [--target heatmap|coords]
    torchrun --nproc_per_node=2 examples/train_heatmap.py ...

The network (2 stacks, 16 channels, CoordConv stem as in AWing) maps a 64×64 synthetic face to
one 32×32 heatmap per landmark (68 or 98) per stack. Every stack is supervised (multi-stage
loss: the sum over stacks) with AWing times the weighted loss map (AWing §4.3):
  --target heatmap  Gaussian targets rendered by lk.render_gaussian_heatmaps, loss
                    lk.nn.AdaptiveWingLoss(weight_map=True);
  --target coords   no target heatmaps at all: the same module given coords and sigma runs
                    lk.awing_loss_from_coords, which renders the Gaussians inside the kernel.
  --loss reference  the same maths in eager PyTorch (landmark_kernels.reference), for the
                    comparison of step time and loss curve.
Prints per step the loss, the NME of the last stack's decoded heatmaps (lk.metrics.nme,
inter-ocular) and the step time.
"""

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faces  # noqa: E402
import training  # noqa: E402

import landmark_kernels as lk  # noqa: E402

STRIDE = 2  # image pixels per heatmap pixel


def _norm(channels):
    return nn.GroupNorm(4, channels)  # not BatchNorm: DDP and single-process give one gradient


class Residual(nn.Module):
    """Pre-activation residual block (the hourglass's unit)."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(_norm(channels), nn.ReLU(), nn.Conv2d(channels, channels, 3,
                                                                        padding=1),
                                  _norm(channels), nn.ReLU(), nn.Conv2d(channels, channels, 3,
                                                                        padding=1))

    def forward(self, x):
        return x + self.body(x)


class Hourglass(nn.Module):
    """Newell et al.'s hourglass: a skip branch, and a pooled branch with a smaller hourglass."""

    def __init__(self, depth, channels):
        super().__init__()
        self.skip = Residual(channels)
        self.down = Residual(channels)
        self.inner = Hourglass(depth - 1, channels) if depth > 1 else Residual(channels)
        self.up = Residual(channels)

    def forward(self, x):
        low = self.down(nn.functional.max_pool2d(x, 2))
        low = self.up(self.inner(low))
        return self.skip(x) + nn.functional.interpolate(low, scale_factor=2, mode="nearest")


class StackedHourglass(nn.Module):
    """Stem (CoordConv with r, stride 2) then `stacks` hourglasses; forward returns the list of
    every stack's heatmaps (B,K,H/2,W/2), the input of the multi-stage loss."""

    def __init__(self, num_landmarks, stacks=2, channels=16, depth=2):
        super().__init__()
        self.stem = nn.Sequential(
            lk.nn.CoordConv(3, channels, with_r=True, kernel_size=3, stride=STRIDE, padding=1),
            Residual(channels))
        self.hourglasses = nn.ModuleList(Hourglass(depth, channels) for _ in range(stacks))
        self.heads = nn.ModuleList(nn.Conv2d(channels, num_landmarks, 1) for _ in range(stacks))
        self.remaps = nn.ModuleList(nn.Conv2d(num_landmarks, channels, 1)
                                    for _ in range(stacks - 1))

    def forward(self, images):
        x = self.stem(images)
        outputs = []
        for i, (hourglass, head) in enumerate(zip(self.hourglasses, self.heads)):
            features = hourglass(x)
            outputs.append(head(features))
            if i < len(self.remaps):  # intermediate supervision: the next stack sees the heatmaps
                x = x + features + self.remaps[i](outputs[-1])
        return outputs


def parse_args(argv=None):
    parser = training.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--loss", default="ours", choices=("ours", "reference"))
    parser.add_argument("--target", default="heatmap", choices=("heatmap", "coords"))
    parser.add_argument("--landmarks", type=int, default=68, choices=(68, 98))
    parser.add_argument("--size", type=int, default=64, help="image size (heatmaps: size/2)")
    parser.add_argument("--sigma", type=float, default=1.5, help="Gaussian sigma, heatmap px")
    parser.add_argument("--stacks", type=int, default=2)
    parser.add_argument("--channels", type=int, default=16)
    return parser.parse_args(argv)


def make_loss(args):
    """loss(outputs: list of (B,K,h,w), target heatmaps or None, coords (B,K,2) in heatmap px)."""
    if args.loss == "ours":
        awing = lk.nn.AdaptiveWingLoss(weight_map=True, backend=args.backend)
        if args.target == "heatmap":
            return lambda outputs, target, coords: awing(outputs, target)
        return lambda outputs, target, coords: awing(outputs, coords=coords, sigma=args.sigma)
    # The reference: plain PyTorch autograd, one stage at a time, same arguments.
    if args.target == "heatmap":
        return lambda outputs, target, coords: sum(
            lk.reference.awing_loss(o, target, weight_map=True) for o in outputs)
    return lambda outputs, target, coords: lk.reference.awing_loss_from_coords(
        outputs, coords, args.sigma, weight_map=True)


def main(argv=None):
    args = parse_args(argv)
    ctx = training.setup(args)
    model = training.wrap(StackedHourglass(args.landmarks, args.stacks, args.channels), ctx)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = make_loss(args)
    hm_size = args.size // STRIDE
    layout = faces.LAYOUT_NAMES[args.landmarks]

    def step_fn(step):
        images, shapes = faces.global_batch(args.seed, step, args.batch, args.landmarks,
                                            args.size)
        images = training.shard(images, ctx).to(ctx.dtype)
        # Image pixel centres are at integers; heatmap pixel j covers image pixels 2j, 2j+1.
        coords = training.shard((shapes - (STRIDE - 1) / 2) / STRIDE, ctx).to(ctx.dtype)
        target = None
        if args.target == "heatmap":
            target = lk.render_gaussian_heatmaps(coords, hm_size, hm_size, args.sigma)
        outputs = model(images)
        loss = loss_fn(outputs, target, coords)
        nme = lk.metrics.nme(lk.decode_heatmaps(outputs[-1]), coords, layout=layout).mean()
        return loss, {"nme": nme}

    title = f"train_heatmap (--loss {args.loss}, --target {args.target})"
    return training.train(args, ctx, model, optimizer, step_fn, title=title)


if __name__ == "__main__":
    main()
