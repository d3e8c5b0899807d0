"""SDFL graph-relational aggregation on the WFLW-98 top-3 graph (470 edges), fwd+bwd (gradients
for h_self, h_neigh, logits and bias): each backend vs the dense eager reference (the official
formulation), torch.compile of it, and the memory floor: one copy that reads h_self, h_neigh and
grad_out and writes out, grad_h_self and grad_h_neigh (24 bytes per feature in fp32)."""

import torch

import landmark_kernels as lk
from landmark_kernels import reference

from .harness import median_ms


def shapes(device):
    """(B, F): the issue's GPU table; B=32, F=256 on the CPU."""
    if device.type == "cuda":
        return [(b, f) for b in (32, 128) for f in (128, 256, 1024)]
    return [(32, 256)]


def _fwd_bwd(fn, inputs, grad_out):
    def run():
        fn(*inputs).backward(grad_out)
        for t in inputs:
            t.grad = None
    return run


def run(device, backends):
    graph = lk.LandmarkGraph.preset("wflw98_top3").to(device)
    rows = []
    for batch, features in shapes(device):
        g = torch.Generator(device=device).manual_seed(0)

        def rand(*shape):
            return torch.randn(*shape, device=device, generator=g).requires_grad_()
        for transposed, per_sample in ((False, False), (True, True)):
            if device.type == "cuda" and transposed:
                continue  # the GPU table is SemGraphConv's; DynamicGConv has the same traffic
            inputs = (rand(batch, 98, features), rand(batch, 98, features),
                      rand(*((batch,) if per_sample else ()), graph.num_edges), rand(features))
            grad_out = torch.randn(batch, 98, features, device=device, generator=g)
            kind = "DynamicGConv" if transposed else "SemGraphConv"
            case = f"{kind} B={batch} N=98 F={features} fp32"
            floor = torch.empty(3, batch, 98, features, device=device)
            detached = [t.detach() for t in inputs[:2]] + [grad_out]

            def dense(hs, hn, lg, bias, t=transposed):
                return reference.graph_relational_aggregate(hs, hn, lg, graph, bias,
                                                            transposed=t)
            variants = {
                "floor (copy)": lambda: torch.stack(detached, out=floor),
                "eager reference": _fwd_bwd(dense, inputs, grad_out),
                "torch.compile(reference)": _fwd_bwd(torch.compile(dense), inputs, grad_out),
            }
            for backend in backends:
                variants[f"lk backend={backend}"] = _fwd_bwd(
                    lambda hs, hn, lg, bias, b=backend, t=transposed: lk.graph_relational_aggregate(
                        hs, hn, lg, graph, bias, transposed=t, backend=b), inputs, grad_out)
            for name, fn in variants.items():
                rows.append(dict(case=case, variant=name, ms=median_ms(fn, device)))
    return rows
