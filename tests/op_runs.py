"""One forward+backward of every op, shared by the reliability tests (AMP, determinism, long runs,
torch.compile, CUDA graphs): `OPS[name](device, dtype, batch)` -> (fn, inputs), where
fn(*inputs, backend=...) returns one tensor to backpropagate and inputs are the leaves (the
first ones require grad). `run(name, ...)` returns (output, grads), detached."""

import torch

import landmark_kernels as lk


def _rand(shape, device, dtype, seed, scale=1.0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return (shift + scale * torch.rand(shape, generator=g, dtype=torch.float64)).to(device, dtype)


def _leaf(t):
    return t.detach().requires_grad_()


_GRAPH = lk.LandmarkGraph.from_edges([[i, (i + 1) % 9] for i in range(9)] + [[0, 4]], 9)
_DIRECTED = lk.LandmarkGraph.from_edges([[i, (i + 2) % 9] for i in range(9)], 9,
                                        symmetric=False, self_loops=False)


def awing(device, dtype, batch, size=9):
    target = _rand((batch, 3, size, size), device, dtype, 1) ** 2
    pred = _leaf(target + _rand(target.shape, device, dtype, 2, 0.6, -0.3))
    weight = _rand((batch, 3), device, dtype, 3, 1.0, 0.5)
    return (lambda p, t, w, backend="auto": lk.awing_loss(p, t, target_weight=w,
                                                          backend=backend)), (pred, target, weight)


def awing_coords(device, dtype, batch, size=9):
    pred = _leaf(_rand((batch, 3, size, size), device, dtype, 1))
    coords = _rand((batch, 3, 2), device, torch.float32 if dtype != torch.float64 else dtype, 2,
                   size - 1.0)
    return (lambda p, c, backend="auto": lk.awing_loss_from_coords(
        p, c, 1.5, backend=backend)), (pred, coords)


def coord(name, **kw):
    def make(device, dtype, batch, landmarks=9):
        target = _rand((batch, landmarks, 2), device, dtype, 1, 8.0)
        pred = _leaf(target + _rand(target.shape, device, dtype, 2, 6.0, -3.0))
        aux = _rand((batch, landmarks), device, dtype, 3)
        if name == "acr_loss":
            return (lambda p, t, a, backend="auto": lk.acr_loss(p, t, a, backend=backend)), \
                (pred, target, aux)
        fn = getattr(lk, name)
        return (lambda p, t, a, backend="auto": fn(p, t, target_weight=a, backend=backend,
                                                   **kw)), (pred, target, aux)
    return make


def pfld(device, dtype, batch, landmarks=9):
    target = _rand((batch, landmarks, 2), device, dtype, 1)
    pred = _leaf(target + _rand(target.shape, device, dtype, 2, 0.2, -0.1))
    angles = _leaf(_rand((batch, 3), device, dtype, 3, 2.0, -1.0))
    angles_target = _rand((batch, 3), device, dtype, 4, 2.0, -1.0)
    attrs = (_rand((batch, 4), device, torch.float32, 5) > 0.5).to(dtype)

    def fn(p, a, t, at, attr, backend="auto"):
        weighted, l2 = lk.pfld_loss(p, t, a, at, attr, backend=backend)
        return weighted + l2
    return fn, (pred, angles, target, angles_target, attrs)


def aggregate(device, dtype, batch, features=8):
    graph = _GRAPH.to(device)
    h_self = _leaf(_rand((batch, 9, features), device, dtype, 1, 2.0, -1.0))
    h_neigh = _leaf(_rand((batch, 9, features), device, dtype, 2, 2.0, -1.0))
    logits = _leaf(_rand((graph.num_edges,), device, dtype, 3, 2.0, -1.0))
    bias = _leaf(_rand((features,), device, dtype, 4))
    return (lambda hs, hn, lg, b, backend="auto": lk.graph_relational_aggregate(
        hs, hn, lg, graph, b, backend=backend)), (h_self, h_neigh, logits, bias)


def relative(device, dtype, batch, landmarks=9):
    graph = _DIRECTED.to(device)
    target = _rand((batch, landmarks, 2), device, dtype, 1, 8.0)
    pred = _leaf(target + _rand(target.shape, device, dtype, 2, 6.0, -3.0))
    return (lambda p, t, backend="auto": lk.relative_location_loss(p, t, graph,
                                                                    backend=backend)), \
        (pred, target)


OPS = {
    "awing_loss": awing,
    "awing_loss_from_coords": awing_coords,
    "wing_loss": coord("wing_loss"),
    "soft_wing_loss": coord("soft_wing_loss"),
    "acr_loss": coord("acr_loss"),
    "pfld_loss": pfld,
    "graph_relational_aggregate": aggregate,
    "relative_location_loss": relative,
}


def run(name, device, dtype, batch, backend="auto", fn=None, **size):
    """(output, grads of (output·g).sum() for the leaves that require grad), detached; `fn`
    replaces the op's function (e.g. a compiled one: it takes the same inputs)."""
    made, inputs = OPS[name](device, dtype, batch, **size)
    fn = fn or made
    out = fn(*inputs, backend=backend)
    wrt = [t for t in inputs if t.requires_grad]
    g = torch.linspace(0.5, 1.5, out.numel(), dtype=torch.float64).reshape(out.shape)
    grads = torch.autograd.grad(out, wrt, g.to(out.device, out.dtype))
    return out.detach(), [x.detach() for x in grads]
