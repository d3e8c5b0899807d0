"""Train a coordinate regressor with an SDFL graph head on synthetic WFLW-98 faces.

    python examples/train_graph.py [--steps 20]
    torchrun --nproc_per_node=2 examples/train_graph.py ...

A small CNN turns the 64×64 face into a 16×16 feature map; one attention map per landmark pools
it into per-landmark features and a first guess of the position (soft-argmax). Two
lk.nn.GraphRelationalConv layers on the WFLW-98 top-3 graph (LandmarkGraph.preset(
"wflw98_top3")) refine the guess from the landmark and its graph neighbours. The coordinates are
trained in image pixels with lk.nn.SoftWingLoss plus lk.nn.RelativeLocationLoss (SoftWing on
L·P, L = I − D⁻¹A, the official directed WFLW graph), the SDFL recipe; prints per step the
loss, the NME (lk.metrics.nme, inter-ocular) and the step time.
"""

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faces  # noqa: E402
import training  # noqa: E402

import landmark_kernels as lk  # noqa: E402

NUM_LANDMARKS = 98  # the graph presets are per data set: WFLW's 98 points


class GraphRegressor(nn.Module):
    """Image (B,3,S,S) -> landmark coordinates (B,98,2) in pixels."""

    def __init__(self, size, channels=32, features=16, backend="auto"):
        super().__init__()
        self.size = size

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GroupNorm(4, cout),
                    nn.ReLU()]
        self.backbone = nn.Sequential(*block(3, channels // 2), *block(channels // 2, channels),
                                      nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())
        # No bias: a per-map constant does not change a softmax (its gradient is 0).
        self.attention = nn.Conv2d(channels, NUM_LANDMARKS, 1, bias=False)
        graph = lk.LandmarkGraph.preset("wflw98_top3")
        self.gc1 = lk.nn.GraphRelationalConv(channels + 2, features, graph, backend=backend)
        self.gc2 = lk.nn.GraphRelationalConv(features, 2, graph, backend=backend)

    def forward(self, images):
        fmap = self.backbone(images)                                     # (B,C,h,w)
        b, c, h, w = fmap.shape
        attention = self.attention(fmap).flatten(2).softmax(-1)          # (B,N,h·w)
        pooled = attention @ fmap.flatten(2).transpose(1, 2)             # (B,N,C)
        # Soft-argmax of each attention map: a first guess in [0, 1] units of the image.
        ys, xs = torch.meshgrid(torch.arange(h, dtype=fmap.dtype, device=fmap.device),
                                torch.arange(w, dtype=fmap.dtype, device=fmap.device),
                                indexing="ij")
        grid = torch.stack(((xs.flatten() + 0.5) / w, (ys.flatten() + 0.5) / h), dim=-1)
        guess = attention @ grid                                         # (B,N,2)
        x = torch.relu(self.gc1(torch.cat((pooled, guess), dim=-1)))
        offset = self.gc2(x)
        # Pixel centres at integers: a unit coordinate u is pixel u·S − 0.5.
        return (guess + 0.1 * offset) * self.size - 0.5


def parse_args(argv=None):
    parser = training.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="image size (default 64)")
    parser.add_argument("--relative-weight", type=float, default=1.0,
                        help="weight of the relative-location loss (default 1)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    ctx = training.setup(args)
    model = training.wrap(GraphRegressor(args.size, backend=args.backend), ctx)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    # Pixel coordinates: SoftWing's defaults (ω1=2, ω2=20, ε=0.5) are pixels. Both losses
    # reduce by "batchmean" (sum over landmarks and x/y, mean over the batch).
    soft_wing = lk.nn.SoftWingLoss(backend=args.backend).to(ctx.device)
    relative = lk.nn.RelativeLocationLoss(
        lk.LandmarkGraph.preset("wflw98", symmetric=False, self_loops=False),
        loss_weight=args.relative_weight, backend=args.backend).to(ctx.device)

    def step_fn(step):
        images, shapes = faces.global_batch(args.seed, step, args.batch, NUM_LANDMARKS,
                                            args.size)
        images = training.shard(images, ctx).to(ctx.dtype)
        target = training.shard(shapes, ctx).to(ctx.dtype)
        pred = model(images)
        loss = soft_wing(pred, target) + relative(pred, target)
        return loss, {"nme": lk.metrics.nme(pred.detach(), target, layout="wflw98").mean()}

    return training.train(args, ctx, model, optimizer, step_fn, title="train_graph")


if __name__ == "__main__":
    main()
