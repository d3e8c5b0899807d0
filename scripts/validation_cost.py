"""Host cost of the argument validation per call, in µs (issue 12): the shared checks alone
(`check_*` of each op, the functions the public calls, fake kernels and Triton ops run), and the
public call against the raw op on a tiny input (the difference is validation plus wiring).

    .venv/bin/python scripts/validation_cost.py [--repeat N]

Numbers only (no thresholds): they depend on the machine and its load.
"""

import argparse
import timeit

import torch

import landmark_kernels as lk
from landmark_kernels import awing, awing_coords, coord_losses, graph_aggregate, pfld
from landmark_kernels.graph import check_graph_for


def cases():
    hm, tw = torch.rand(2, 3, 8, 8), torch.rand(2, 3)
    coords, sigma = torch.rand(2, 3, 2) * 7, torch.full((3,), 1.5)
    p, t, w = torch.rand(2, 9, 2), torch.rand(2, 9, 2), torch.rand(2, 9)
    ang, ang_t, attr = torch.rand(2, 3), torch.rand(2, 3), torch.ones(2, 4)
    graph = lk.LandmarkGraph.from_edges([[i, (i + 1) % 9] for i in range(9)], 9)
    h, logits = torch.rand(2, 9, 4), torch.rand(graph.num_edges)
    ops = torch.ops.landmark_kernels
    aw = (2.1, 14.0, 1.0, 0.5, 10.0, 0.2, 3, 1, False)
    return {
        "awing_loss": (lambda: awing.check_op_args(hm, hm, tw, *aw),
                       lambda: lk.awing_loss(hm, hm, target_weight=tw, backend="cpu"),
                       lambda: ops.awing_loss.default(hm, hm, tw, *aw)),
        "awing_loss_from_coords": (
            lambda: awing_coords.check_op_args(hm, coords, sigma, tw, *aw),
            lambda: lk.awing_loss_from_coords(hm, coords, 1.5, target_weight=tw, backend="cpu"),
            lambda: ops.awing_loss_from_coords.default(hm, coords, sigma, tw, *aw)),
        "wing_loss": (lambda: coord_losses.check_wing(p, t, w, 10.0, 2.0, 3, False),
                      lambda: lk.wing_loss(p, t, target_weight=w, backend="cpu"),
                      lambda: ops.wing_loss.default(p, t, w, 10.0, 2.0, 3, False)),
        "soft_wing_loss": (
            lambda: coord_losses.check_soft_wing(p, t, w, 2.0, 20.0, 0.5, 3, False),
            lambda: lk.soft_wing_loss(p, t, target_weight=w, backend="cpu"),
            lambda: ops.soft_wing_loss.default(p, t, w, 2.0, 20.0, 0.5, 3, False)),
        "acr_loss": (lambda: coord_losses.check_acr(p, t, w, 1.0, 1, False),
                     lambda: lk.acr_loss(p, t, w, backend="cpu"),
                     lambda: ops.acr_loss.default(p, t, w, 1.0, 1, False)),
        "pfld_loss": (
            lambda: pfld.check_pfld(p, t, ang, ang_t, attr, None, False, 0.0, False),
            lambda: lk.pfld_loss(p, t, ang, ang_t, attr, backend="cpu"),
            lambda: ops.pfld_loss.default(p, t, ang, ang_t, attr, None, False, 0.0, False)),
        "graph_relational_aggregate": (
            lambda: (check_graph_for(graph, h, "h_self"),
                     graph_aggregate.check_op_args(h, h, logits, None, *graph.csr_tensors())),
            lambda: lk.graph_relational_aggregate(h, h, logits, graph, backend="cpu"),
            lambda: ops.graph_relational_aggregate.default(h, h, logits, None,
                                                           *graph.csr_tensors(), False)),
    }


def best_us(fn, repeat):
    number = 200
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; best of "
          f"{args.repeat} x 200 calls, no grad, tiny inputs")
    print(f"{'op':28s} {'checks us':>10s} {'public us':>10s} {'raw op us':>10s} "
          f"{'public-raw':>10s}")
    with torch.no_grad():
        for name, (check, public, raw) in cases().items():
            c, pub, r = (best_us(f, args.repeat) for f in (check, public, raw))
            print(f"{name:28s} {c:10.1f} {pub:10.1f} {r:10.1f} {pub - r:10.1f}")


if __name__ == "__main__":
    main()
