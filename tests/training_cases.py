"""Small training problems, one per loss family, shared by tests/test_training_contract.py and
the DDP worker it launches (tests/ddp_contract_worker.py).

Each case is a tiny model whose output feeds a landmark_kernels loss, with a deterministic
batch; `loss(model, batch, reduction, backend)` is what a training step backpropagates.
"""

import torch

import landmark_kernels as lk

BATCH = 4  # global batch of every case: even, so two processes get equal halves


class Case:
    """name; reductions the loss takes; make_model() -> module; batch(size, seed) -> dict of
    tensors (dim 0 = batch); loss(model, batch, reduction, backend) -> scalar."""

    def __init__(self, name, reductions, make_model, make_batch, loss):
        self.name, self.reductions = name, reductions
        self.make_model, self._make_batch, self._loss = make_model, make_batch, loss

    def batch(self, size=BATCH, seed=0):
        return self._make_batch(torch.Generator().manual_seed(seed), size)

    def loss(self, model, batch, reduction, backend):
        return self._loss(model, batch, reduction, backend)

    def __repr__(self):
        return self.name


K, H, W, N = 3, 8, 8, 98


def _heatmap_model():
    torch.manual_seed(0)
    return torch.nn.Conv2d(2, K, 3, padding=1)


def _heatmap_batch(gen, size):
    coords = torch.rand(size, K, 2, generator=gen) * (W - 1)
    return dict(x=torch.randn(size, 2, H, W, generator=gen), coords=coords,
                target=lk.render_gaussian_heatmaps(coords, H, W, 1.0))


def _coord_model():
    torch.manual_seed(0)
    return torch.nn.Linear(5, N * 2)


def _coord_batch(gen, size):
    return dict(x=torch.randn(size, 5, generator=gen),
                target=torch.randn(size, N, 2, generator=gen) * 3)


class _GraphModel(torch.nn.Module):
    """Per-landmark features -> GraphRelationalConv (WFLW-98 top-3) -> coordinates."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Linear(5, N * 4)
        self.conv = lk.nn.GraphRelationalConv(4, 2, lk.LandmarkGraph.preset("wflw98_top3"))

    def forward(self, x, backend):
        self.conv.backend = backend
        return self.conv(self.embed(x).unflatten(-1, (N, 4)))


_RELATIVE_GRAPH = lk.LandmarkGraph.preset("wflw98", symmetric=False, self_loops=False)

CASES = [
    Case("awing", ("mean", "sum"), _heatmap_model, _heatmap_batch,
         lambda m, b, r, be: lk.awing_loss(m(b["x"]), b["target"], reduction=r, backend=be)),
    Case("awing_from_coords", ("mean", "sum"), _heatmap_model, _heatmap_batch,
         lambda m, b, r, be: lk.awing_loss_from_coords(m(b["x"]), b["coords"], 1.0,
                                                       reduction=r, backend=be)),
    Case("wing", ("batchmean", "mean", "sum"), _coord_model, _coord_batch,
         lambda m, b, r, be: lk.wing_loss(m(b["x"]).unflatten(-1, (N, 2)), b["target"],
                                          reduction=r, backend=be)),
    Case("soft_wing", ("batchmean", "mean", "sum"), _coord_model, _coord_batch,
         lambda m, b, r, be: lk.soft_wing_loss(m(b["x"]).unflatten(-1, (N, 2)), b["target"],
                                               reduction=r, backend=be)),
    Case("graph_relative", ("batchmean", "mean", "sum"), _GraphModel, _coord_batch,
         lambda m, b, r, be: lk.relative_location_loss(
             m(b["x"], be), b["target"], _RELATIVE_GRAPH.to(b["x"].device), reduction=r,
             backend=be)),
]


def cheap(case, device, backend):
    """False where the Triton interpreter (Triton on CPU tensors) would run the 98-node graph
    aggregation: tens of seconds per call; tests/test_graph_relational_aggregate.py covers
    that kernel on small graphs."""
    return not (case.name == "graph_relative" and backend == "triton" and device == "cpu")


def micro_batch_scale(reduction, micro, total):
    """The factor that makes micro-batch losses sum to the whole batch's loss: a mean over the
    batch ("mean" over B·…, "batchmean" over B) divides by the micro-batch's own size, so
    scale by micro/total; "sum" needs none."""
    return micro / total if reduction in ("mean", "batchmean") else 1.0


def split(batch, start, stop):
    return {k: v[start:stop] for k, v in batch.items()}


def to(batch, device):
    return {k: v.to(device) for k, v in batch.items()}


def grads(model):
    return {name: p.grad.detach().cpu().clone() for name, p in model.named_parameters()}
