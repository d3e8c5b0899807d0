"""SDFL graph ops on the WFLW-98 graphs, fp32.

graph: the graph-relational aggregation on the top-3 graph (470 edges), forward and backward
(gradients for h_self, h_neigh, logits and bias): ours on each backend; the dense eager
reference and torch.compile of it; the official SDFL layers' dense N×N (per-sample logits:
B×N×N) softmax and matmuls; the floor: a copy that reads h_self, h_neigh and grad_out and writes
out, grad_h_self and grad_h_neigh (24 bytes per feature).

relative_location: the relative-location loss (SoftWing on L·P) on the directed WFLW-98 edge
list, against the official dense Laplacian matmul + SoftWing; floor: the trivial loss.
"""

import torch

import landmark_kernels as lk
from landmark_kernels import reference

from . import public_code
from .coord_losses import coord_case, coord_inputs
from .coord_losses import shapes as coord_shapes
from .harness import Case, Impl, compiled, ours


def shapes(device, size):
    """(B, F, transposed) triples."""
    if size == "smoke":
        return [(2, 8, False), (3, 4, True)]
    if size == "quick":
        return [(32, 256, False)]
    if device.type == "cpu":
        return [(32, f, t) for f in (128, 256) for t in (False, True)]
    return [(b, f, t) for b, f in ((32, 256), (128, 256), (128, 1024)) for t in (False, True)]


def graph(device, size):
    top3 = lk.LandmarkGraph.preset("wflw98_top3").to(device)
    mask = top3.dense_mask()
    result = []

    def one(batch, features, transposed):  # per shape: the closures bind its own tensors
        cases = []
        g = torch.Generator(device=device).manual_seed(0)

        def rand(*shape):
            return torch.randn(*shape, device=device, generator=g).requires_grad_()
        # DynamicGConv predicts its logits per sample; SemGraphConv learns one set.
        hs, hn = rand(batch, 98, features), rand(batch, 98, features)
        logits = rand(*((batch,) if transposed else ()), top3.num_edges)
        bias = rand(features)
        grad_out = torch.randn(batch, 98, features, device=device, generator=g)
        floor_out = torch.empty(3, batch, 98, features, device=device)
        copied = [hs.detach(), hn.detach(), grad_out]

        def dense(h_self, h_neigh, lg, b, t=transposed):
            return reference.graph_relational_aggregate(h_self, h_neigh, lg, top3, b,
                                                        transposed=t)
        impls = ours("lk.graph_relational_aggregate", lambda b, t=transposed:
                     lk.graph_relational_aggregate(hs, hn, logits, top3, bias, transposed=t,
                                                   backend=b), device) + [
            Impl("eager reference (dense)", "baseline", lambda: dense(hs, hn, logits, bias)),
            *compiled("reference", dense, lambda f: f(hs, hn, logits, bias), size),
            Impl("official SDFL layer (dense softmax + matmuls)", "baseline",
                 lambda t=transposed: public_code.sdfl_dense_aggregate(
                     hs, hn, logits, mask, transposed=t) + bias),
            Impl("floor: copy 24 B/feature", "floor",
                 lambda: torch.stack(copied, out=floor_out)),
        ]
        kind = "DynamicGConv" if transposed else "SemGraphConv"
        cases.append(Case("graph", f"{kind} B={batch} N=98 F={features}", impls,
                          leaves=(hs, hn, logits, bias), grad_out=grad_out,
                          bytes=24 * hs.numel()))
        return cases

    for item in shapes(device, size):
        result += one(*item)
    return result


def relative_location(device, size):
    edges = lk.LandmarkGraph.preset("wflw98", symmetric=False, self_loops=False).to(device)
    adj = edges.dense_mask().float()
    result = []

    def one(batch, _):  # per shape: the closures bind its own tensors
        cases = []
        pred, target, _ = coord_inputs(batch, 98, device, 256.0)
        impls = ours("lk.relative_location_loss", lambda b: lk.relative_location_loss(
            pred, target, edges, backend=b), device) + [
            Impl("eager reference", "baseline",
                 lambda: reference.relative_location_loss(pred, target, edges)),
            *compiled("reference", reference.relative_location_loss,
                      lambda f: f(pred, target, edges), size),
            Impl("official SDFL (dense Laplacian matmul + SoftWing)", "baseline",
                 lambda: public_code.sdfl_relative_location(pred, target, adj)),
        ]
        cases.append(coord_case("relative_location", batch, 98, pred, target, impls))
        return cases

    for item in coord_shapes(device, size):
        result += one(*item)
    return result
