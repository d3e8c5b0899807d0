"""SDFL relative-location loss (SPEC §6): the sparse Δ = (I − D⁻¹A)·P op on every backend
against the dense reference, and the loss with each base."""

import pytest
import torch

import landmark_kernels as lk
from landmark_kernels import reference
from landmark_kernels.graph import PRESETS

from conftest import assert_close_to_scale as assert_close
from conftest import backend_params, is_interpreted

ALL_BACKENDS = backend_params() + [pytest.param("cpu", "torch", id="torch-cpu")]


def directed(name):
    return lk.LandmarkGraph.preset(name, symmetric=False, self_loops=False)


def tiny_graph():
    """0 -> 1, 0 -> 2, 1 -> 0, 1 -> 3; nodes 2 and 3 have no out-edges."""
    return lk.LandmarkGraph.from_edges([[0, 1], [0, 2], [1, 0], [1, 3]], 4, symmetric=False,
                                       self_loops=False)


def graphs_for(device, backend):
    names = ["cofw29"] if is_interpreted(device, backend) else sorted(PRESETS)
    graphs = {name: directed(name) for name in names}
    graphs["tiny"] = tiny_graph()
    return {k: g.to(device) for k, g in graphs.items()}


def coords(batch, nodes, device="cpu", dtype=torch.float32, seed=0, dims=2):
    g = torch.Generator().manual_seed(seed)
    return (64 * torch.rand(batch, nodes, dims, generator=g, dtype=torch.float64)).to(device,
                                                                                      dtype)


def perturbed(target, scale=3.0, seed=1):
    """A prediction off the target by noise: its Δ differs from the target's (a constant shift
    would not: L·1 = 0 wherever a node has out-edges)."""
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64)
    return (target.double() + scale * noise.to(target.device)).to(target.dtype).requires_grad_()


def test_laplacian_by_hand():
    """Δ_0 = p0 − (p1 + p2)/2, Δ_1 = p1 − (p0 + p3)/2; nodes without out-edges keep p_i."""
    p = torch.tensor([[[0.0, 0.0], [2.0, 4.0], [6.0, 2.0], [4.0, 8.0]]])
    expected = torch.tensor([[[-4.0, -3.0], [0.0, 0.0], [6.0, 2.0], [4.0, 8.0]]])
    for backend in ("torch", "cpu"):
        assert torch.equal(lk.relative_location.graph_laplacian(p, tiny_graph(), backend=backend),
                           expected)


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("transpose", [False, True])
def test_laplacian_matches_dense(device, backend, transpose):
    for name, graph in graphs_for(device, backend).items():
        x = coords(3, graph.num_nodes, device, dims=3 if name == "tiny" else 2)
        actual = lk.relative_location.graph_laplacian(x, graph, transpose=transpose,
                                                      backend=backend)
        expected = reference.graph_laplacian(x.double(), graph, transpose=transpose)
        assert actual.dtype == x.dtype
        assert_close(actual, expected, what=name)


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("base", ["soft_wing", "wing", "l1"])
@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum", "none"])
def test_loss_matches_reference(device, backend, base, reduction):
    for name, graph in graphs_for(device, backend).items():
        target = coords(4, graph.num_nodes, device)
        pred = perturbed(target)
        loss = lk.relative_location_loss(pred, target, graph, base=base, reduction=reduction,
                                         backend=backend)
        (grad,) = torch.autograd.grad(loss.sum(), pred)
        pred64 = pred.detach().double().requires_grad_()
        ref = reference.relative_location_loss(pred64, target.double(), graph, base=base,
                                               reduction=reduction)
        (ref_grad,) = torch.autograd.grad(ref.sum(), pred64)
        assert loss.dtype == torch.float32 and loss.shape == ref.shape
        assert_close(loss.detach(), ref.detach(), what=f"{name} loss")
        assert_close(grad, ref_grad, what=f"{name} grad")


def official_laplacian_loss(pred, target, edges, num_nodes, base):
    """The official formulation: Δ = (D⁻¹A − I)·P on the directed edge list."""
    adj = torch.zeros(num_nodes, num_nodes, dtype=pred.dtype)
    adj[edges[:, 0], edges[:, 1]] = 1.0
    degree = adj.sum(1, keepdim=True)
    lap = torch.where(degree > 0, adj / degree.clamp(min=1), adj) - torch.eye(num_nodes)
    return base(lap @ pred, lap @ target)


@pytest.mark.parametrize("base", ["soft_wing", "wing", "l1"])
def test_official_sign_gives_the_same_loss(base):
    graph = directed("300w68")  # nodes 33, 42, 54 have no out-edges
    target = coords(2, 68, dtype=torch.float64)
    pred = target + torch.randn(target.shape, dtype=torch.float64,
                                generator=torch.Generator().manual_seed(2))
    fn = {"soft_wing": reference.soft_wing_loss, "wing": reference.wing_loss,
          "l1": reference.l1_coord_loss}[base]
    expected = official_laplacian_loss(pred, target, graph.edges, 68, fn)
    actual = lk.relative_location_loss(pred, target, graph, base=base)
    assert_close(actual, expected, dtype=torch.float64, what="loss")


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
def test_gradcheck_fp64(device, backend):
    graph = tiny_graph().to(device)
    x = coords(2, 4, device, torch.float64).requires_grad_()
    fast = is_interpreted(device, backend)  # fewer evaluations under the slow interpreter
    for transpose in (False, True):
        assert torch.autograd.gradcheck(
            lambda t: lk.relative_location.graph_laplacian(t, graph, transpose=transpose,
                                                           backend=backend), (x,), fast_mode=fast)
    # The laplacian is linear: its backward is differentiable too.
    assert torch.autograd.gradgradcheck(
        lambda t: lk.relative_location.graph_laplacian(t, graph, backend=backend), (x,),
        fast_mode=fast)
    target = coords(2, 4, device, torch.float64, seed=3)
    assert torch.autograd.gradcheck(
        lambda t: lk.relative_location_loss(t, target, graph, base="l1", backend=backend), (x,),
        fast_mode=fast)


def laplacian_op(backend):
    ops = torch.ops.landmark_kernels
    return ops.graph_laplacian_triton if backend == "triton" else ops.graph_laplacian


@pytest.mark.parametrize("device,backend", backend_params())
def test_opcheck(device, backend):
    graph = tiny_graph().to(device)
    x = coords(3, 4, device).requires_grad_()
    for transpose in (False, True):
        torch.library.opcheck(laplacian_op(backend), (x, graph.rowptr, graph.col, graph.t_rowptr,
                                                      graph.t_col, transpose))


@pytest.mark.parametrize("device,backend", backend_params())
def test_torch_compile_fullgraph(device, backend):
    torch._dynamo.reset()
    graph = directed("cofw29").to(device)
    fn = torch.compile(lambda p, t: lk.relative_location_loss(p, t, graph, backend=backend),
                       fullgraph=True, dynamic=True)
    for batch in (2, 5):
        target = coords(batch, 29, device)
        pred = perturbed(target)
        loss = fn(pred, target)
        (grad,) = torch.autograd.grad(loss, pred)
        eager = lk.relative_location_loss(pred, target, graph, backend=backend)
        (eager_grad,) = torch.autograd.grad(eager, pred)
        assert_close(loss.detach(), eager.detach(), what="loss")
        assert_close(grad, eager_grad, what="grad")


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(device, backend, dtype):
    graph = directed("cofw29").to(device)
    # Coordinates in [0, 4]: bf16 resolves them to 1/64, well below the errors (noise 3), so
    # no error's sign (hence SoftWing gradient) is decided by rounding.
    target = (coords(2, 29, device) / 16).to(dtype)
    pred = perturbed(target)
    loss = lk.relative_location_loss(pred, target, graph, backend=backend)
    (grad,) = torch.autograd.grad(loss, pred)
    pred64 = pred.detach().double().requires_grad_()
    ref = reference.relative_location_loss(pred64, target.double(), graph)
    (ref_grad,) = torch.autograd.grad(ref, pred64)
    assert loss.dtype == torch.float32 and grad.dtype == dtype
    assert_close(loss.detach(), ref.detach(), dtype=dtype, what="loss")
    assert_close(grad, ref_grad, dtype=dtype, what="grad")


@pytest.mark.parametrize("device,backend", backend_params())
def test_autocast_runs_in_fp32(device, backend):
    """Under autocast: fp32 loss, mixed dtypes accepted (bf16 prediction, fp32 target)."""
    graph = directed("cofw29").to(device)
    target = coords(2, 29, device) / 16
    pred = perturbed(target.to(torch.bfloat16))
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        loss = lk.relative_location_loss(pred, target, graph, backend=backend)
    (grad,) = torch.autograd.grad(loss, pred)
    ref = reference.relative_location_loss(pred.detach().float(), target, graph)
    assert loss.dtype == torch.float32 and grad.dtype == torch.bfloat16
    assert_close(loss.detach(), ref, what="loss")


@pytest.mark.parametrize("device,backend", backend_params())
def test_bitwise_deterministic(device, backend):
    graph = graphs_for(device, backend)["cofw29"]
    target = coords(3 if is_interpreted(device, backend) else 16, 29, device)
    pred = perturbed(target)
    runs = []
    for _ in range(2):
        loss = lk.relative_location_loss(pred, target, graph, base="wing", backend=backend)
        runs.append((loss.detach(), *torch.autograd.grad(loss, pred)))
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_module():
    graph = directed("wflw98")
    target = coords(3, 98)
    pred = perturbed(target)
    weight = torch.rand(3, 98, 1)
    module = lk.nn.RelativeLocationLoss(graph, base="wing", use_target_weight=True,
                                        loss_weight=0.5, omega=5.0)
    loss = module(pred, target, weight)
    expected = 0.5 * reference.relative_location_loss(pred, target, graph, base="wing",
                                                      omega=5.0, target_weight=weight)
    assert_close(loss.detach(), expected.detach(), what="module loss")
    # mmpose 1.x passes target_weights=
    assert torch.equal(module(pred, target, target_weights=weight), loss)
    assert module.to("meta").graph.device.type == "meta"
    assert "base='wing'" in repr(module) and not module.state_dict()
    with pytest.raises(ValueError, match="target_weight is required"):
        lk.nn.RelativeLocationLoss(graph, use_target_weight=True)(pred, target)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(pred=torch.rand(2, 29)), ValueError, "pred must have 3 dimensions"),
    (dict(target=torch.rand(2, 29, 3)), ValueError, "target must have the shape of pred"),
    (dict(target=torch.rand(2, 29, 2, dtype=torch.float64)), TypeError, "target has dtype"),
    (dict(graph=lk.LandmarkGraph.preset("300w68")), ValueError, "graph has 68 nodes but pred"),
    (dict(graph=None), TypeError, "graph must be a LandmarkGraph"),
    (dict(graph=directed("cofw29").to("meta")), ValueError, "graph is on meta"),
    (dict(base="l2"), ValueError, "base must be one of"),
    (dict(reduction="avg"), ValueError, "reduction must be one of"),
    (dict(base="l1", omega=2.0), TypeError, "base 'l1' takes no keywords"),
    (dict(omega1=-1.0), ValueError, "omega1 must be"),
    (dict(backend="fast"), ValueError, "backend must be 'auto' or one of"),
])
def test_bad_input_raises_naming_the_argument(kwargs, error, match):
    args = dict(pred=torch.rand(2, 29, 2), target=torch.rand(2, 29, 2), graph=directed("cofw29"))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        lk.relative_location_loss(args.pop("pred"), args.pop("target"), args.pop("graph"), **args)


@pytest.mark.parametrize("backend", ["cpu", "triton"])
def test_native_op_checks_the_graph(backend):
    graph = tiny_graph()
    x = coords(1, 4)
    op = laplacian_op(backend)
    error = RuntimeError if backend == "cpu" else ValueError
    bad_col = graph.col.clone()
    bad_col[0] = 9
    with pytest.raises(error, match=r"col must hold node indices in \[0, 4\)"):
        op(x, graph.rowptr, bad_col, graph.t_rowptr, graph.t_col, False)
    with pytest.raises(error, match="t_rowptr and t_col must describe the edges"):
        op(x, graph.rowptr, graph.col, graph.t_rowptr, torch.tensor([0, 1, 0, 1]), False)
    with pytest.raises(error, match="rowptr must"):
        op(x, graph.rowptr[:-1], graph.col, graph.t_rowptr, graph.t_col, False)
    with pytest.raises(error, match="x must"):
        op(x[0], graph.rowptr, graph.col, graph.t_rowptr, graph.t_col, False)
    meta = graph.to("meta")
    with pytest.raises(ValueError, match="t_col must be an int64 tensor"):
        op(x.to("meta"), meta.rowptr, meta.col, meta.t_rowptr, meta.t_col.int(), False)
