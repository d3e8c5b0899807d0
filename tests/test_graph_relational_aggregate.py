"""SDFL sparse graph-relational aggregation (docs/graph.md): every backend against the dense
official formulation (reference.py), for values and all four gradients."""

import pytest
import torch

import landmark_kernels as lk
from landmark_kernels import reference

from conftest import assert_close_to_scale as assert_close
from conftest import backend_params, is_interpreted

ALL_BACKENDS = backend_params() + [pytest.param("cpu", "torch", id="torch-cpu")]


def small_graph():
    """6 nodes, directed (so the two orientations differ), self-loops; node 5 is isolated (its
    self-loop only) and node 4 has an in-edge but no other out-edge."""
    return lk.LandmarkGraph.from_edges([[0, 1], [1, 2], [2, 0], [3, 1], [0, 4], [2, 3]], 6,
                                       symmetric=False)


def graphs_for(device, backend):
    graphs = {"small": small_graph(), "line": lk.LandmarkGraph.from_edges([[0, 1]], 2)}
    if not is_interpreted(device, backend):
        graphs["wflw98_top3"] = lk.LandmarkGraph.preset("wflw98_top3")
    return {k: g.to(device) for k, g in graphs.items()}


def make_inputs(graph, batch, features, *, per_sample=False, bias=True, dtype=torch.float32,
                device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    n, e = graph.num_nodes, graph.num_edges

    def rand(*shape, scale=1.0):
        t = scale * torch.randn(*shape, generator=g, dtype=torch.float64)
        return t.to(device, dtype).requires_grad_()
    logits = rand(*((batch, e) if per_sample else (e,)), scale=2.0)
    return (rand(batch, n, features), rand(batch, n, features), logits,
            rand(features) if bias else None)


def run(inputs, graph, transposed, backend, grad_out=None):
    """out and the gradients of (out · grad_out).sum() w.r.t. every input (None for no bias)."""
    out = lk.graph_relational_aggregate(*inputs[:3], graph, inputs[3], transposed=transposed,
                                        backend=backend)
    if grad_out is None:
        grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(7),
                               dtype=torch.float64).to(out.device, out.dtype)
    wrt = [t for t in inputs if t is not None]
    grads = torch.autograd.grad(out, wrt, grad_out)
    return (out.detach(),) + grads


def reference_run(inputs, graph, transposed, grad_out_dtype):
    """The same in fp64 through the dense reference (grad_out drawn identically)."""
    inputs64 = [None if t is None else t.detach().double().requires_grad_() for t in inputs]
    grad_out = torch.randn(inputs[0].shape, generator=torch.Generator().manual_seed(7),
                           dtype=torch.float64).to(inputs[0].device, grad_out_dtype).double()
    return run(inputs64, graph, transposed, "torch", grad_out)


NAMES = ("out", "grad_h_self", "grad_h_neigh", "grad_logits", "grad_bias")


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("transposed", [False, True], ids=["row", "transposed"])
@pytest.mark.parametrize("per_sample", [False, True], ids=["shared", "per_sample"])
@pytest.mark.parametrize("features", [1, 5, 64])
def test_matches_dense_reference(device, backend, transposed, per_sample, features):
    for name, graph in graphs_for(device, backend).items():
        inputs = make_inputs(graph, 3, features, per_sample=per_sample, device=device)
        actual = run(inputs, graph, transposed, backend)
        expected = reference_run(inputs, graph, transposed, torch.float32)
        for what, a, e in zip(NAMES, actual, expected):
            assert a.dtype == torch.float32 and a.shape == e.shape, what
            assert_close(a, e, what=f"{name} {what}")


@pytest.mark.parametrize("device,backend", backend_params())
def test_without_bias_and_odd_sizes(device, backend):
    graph = small_graph().to(device)
    for batch, features in ((1, 33), (4, 3)):
        inputs = make_inputs(graph, batch, features, bias=False, device=device, seed=features)
        actual = run(inputs, graph, True, backend)
        expected = reference_run(inputs, graph, True, torch.float32)
        assert len(actual) == 4
        for what, a, e in zip(NAMES, actual, expected):
            assert_close(a, e, what=what)


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
def test_single_node_graph(device, backend):
    """N = 1: the self-loop gets weight 1, out = h_self + bias, and its logit gradient is 0."""
    graph = lk.LandmarkGraph.from_edges([], 1).to(device)
    inputs = make_inputs(graph, 2, 4, device=device)
    out, g_self, g_neigh, g_logits, g_bias = run(inputs, graph, False, backend,
                                                 torch.ones(2, 1, 4, device=device))
    assert_close(out, inputs[0].detach() + inputs[3].detach(), what="out")
    assert torch.equal(g_self, torch.ones_like(g_self))
    assert torch.equal(g_neigh, torch.zeros_like(g_neigh))
    assert torch.equal(g_logits, torch.zeros_like(g_logits))
    assert torch.equal(g_bias, torch.full_like(g_bias, 2.0))


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
def test_isolated_node_keeps_its_own_features(device, backend):
    graph = small_graph().to(device)
    h_self, h_neigh, logits, bias = make_inputs(graph, 2, 3, device=device)
    for transposed in (False, True):
        out = lk.graph_relational_aggregate(h_self, h_neigh, logits, graph, bias,
                                            transposed=transposed, backend=backend)
        assert_close(out[:, 5], (h_self[:, 5] + bias).detach(), what="isolated node")


def official_sem_graph_conv(x, W, e, mask, bias):
    """SemGraphConv.forward of the official SDFL code, transcribed (e is (1,E))."""
    h0, h1 = torch.matmul(x, W[0]), torch.matmul(x, W[1])
    adj = -9e15 * torch.ones(mask.shape, dtype=x.dtype)
    adj[mask] = e
    adj = torch.softmax(adj, dim=1)
    M = torch.eye(adj.size(0), dtype=x.dtype)
    output = torch.matmul(adj * M, h0) + torch.matmul(adj * (1 - M), h1)
    return output + bias.view(1, 1, -1)


def official_dynamic_gconv(x, W, adj_weight, mask, bias):
    """DynamicGConv.forward of the official SDFL code, transcribed (adj_weight is (B,E))."""
    n = mask.shape[0]
    h0, h1 = torch.matmul(x, W[0]), torch.matmul(x, W[1])
    adj = -9e15 * torch.ones(x.size(0), n, n, dtype=x.dtype)
    adj[:, mask] = adj_weight
    adj = torch.softmax(adj.view(-1, n), dim=1).view(-1, n, n).transpose(1, 2)
    M = torch.eye(n, dtype=x.dtype)
    output = torch.matmul(adj * M, h0) + torch.matmul(adj * (1 - M), h1)
    return output + bias.view(1, 1, -1)


@pytest.mark.parametrize("backend", ["torch", "cpu"])
@pytest.mark.parametrize("dynamic", [False, True])
def test_layer_matches_the_official_layers(backend, dynamic):
    """GraphRelationalConv = the official SemGraphConv / DynamicGConv, parameters loaded as
    they are (the official e and adj_weight index edges in mask.nonzero() order)."""
    graph = lk.LandmarkGraph.preset("wflw98_top3")
    torch.manual_seed(0)
    layer = lk.nn.GraphRelationalConv(16, 8, graph, dynamic=dynamic, backend=backend).double()
    x = torch.randn(3, 98, 16, dtype=torch.float64)
    mask = graph.dense_mask()
    if dynamic:
        logits = torch.randn(3, graph.num_edges, dtype=torch.float64)
        out = layer(x, logits)
        expected = official_dynamic_gconv(x, layer.W, logits, mask, layer.bias)
    else:
        with torch.no_grad():
            layer.e.normal_()
        out = layer(x)
        expected = official_sem_graph_conv(x, layer.W, layer.e, mask, layer.bias)
    assert_close(out.detach(), expected.detach(), dtype=torch.float64, what="layer output")
    assert set(layer.state_dict()) == ({"W", "bias"} if dynamic else {"W", "e", "bias"})


def test_layer_initialisation_is_the_official_one():
    graph = lk.LandmarkGraph.preset("300w68")
    torch.manual_seed(0)
    layer = lk.nn.GraphRelationalConv(256, 128, graph)
    assert layer.W.shape == (2, 256, 128) and layer.e.shape == (1, graph.num_edges)
    assert torch.equal(layer.e, torch.ones_like(layer.e))
    # xavier_uniform_ on (2, in, out): fan_in = in·out, fan_out = 2·out; gain 1.414.
    bound = 1.414 * (6.0 / (256 * 128 + 2 * 128)) ** 0.5
    assert layer.W.abs().max() <= bound and layer.W.abs().max() > 0.95 * bound
    assert layer.bias.abs().max() <= 128 ** -0.5 and layer.bias.abs().max() > 0.9 * 128 ** -0.5
    assert lk.nn.GraphRelationalConv(4, 3, graph, bias=False).bias is None


def test_layer_gradients_and_device_move():
    graph = lk.LandmarkGraph.preset("cofw29")
    layer = lk.nn.GraphRelationalConv(6, 5, graph)
    x = torch.randn(2, 29, 6, requires_grad=True)
    layer(x).square().sum().backward()
    ref_layer = lk.nn.GraphRelationalConv(6, 5, graph, backend="torch")
    ref_layer.load_state_dict(layer.state_dict())
    x_ref = x.detach().clone().requires_grad_()
    ref_layer(x_ref).square().sum().backward()
    for p, q in zip(layer.parameters(), ref_layer.parameters()):
        assert_close(p.grad, q.grad, what="parameter grad")
    assert_close(x.grad, x_ref.grad, what="input grad")
    assert layer.to("meta").graph.device.type == "meta"
    with pytest.raises(ValueError, match="logits are learned"):
        ref_layer(x, torch.zeros(2, graph.num_edges))
    with pytest.raises(ValueError, match=r"logits \(B,E\) are required"):
        lk.nn.GraphRelationalConv(6, 5, graph, dynamic=True)(x)


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
@pytest.mark.parametrize("transposed", [False, True], ids=["row", "transposed"])
@pytest.mark.parametrize("per_sample", [False, True], ids=["shared", "per_sample"])
def test_gradcheck_fp64(device, backend, transposed, per_sample):
    graph = small_graph().to(device)
    inputs = make_inputs(graph, 2, 3, per_sample=per_sample, dtype=torch.float64, device=device)
    # fast_mode (random projections, fewer evaluations) under the slow Triton interpreter.
    assert torch.autograd.gradcheck(
        lambda hs, hn, lg, b: lk.graph_relational_aggregate(hs, hn, lg, graph, b,
                                                            transposed=transposed,
                                                            backend=backend), inputs,
        fast_mode=is_interpreted(device, backend))


def native_ops(backend):
    ops = torch.ops.landmark_kernels
    if backend == "triton":
        return ops.graph_relational_aggregate_triton, ops.graph_relational_aggregate_backward_triton
    return ops.graph_relational_aggregate, ops.graph_relational_aggregate_backward


@pytest.mark.parametrize("device,backend", backend_params())
def test_opcheck(device, backend):
    forward, backward = native_ops(backend)
    graph = small_graph().to(device)
    for per_sample in (False, True):
        hs, hn, lg, bias = make_inputs(graph, 2, 5, per_sample=per_sample, device=device)
        for transposed in (False, True):
            for b in (bias, None):
                torch.library.opcheck(forward, (hs, hn, lg, b, *graph.csr_tensors(),
                                                transposed))
            grad_out = torch.randn_like(hs)
            torch.library.opcheck(backward, (grad_out, hs.detach(), hn.detach(), lg.detach(),
                                             *graph.csr_tensors(), transposed, True))


@pytest.mark.parametrize("device,backend", backend_params())
def test_torch_compile_fullgraph(device, backend):
    torch._dynamo.reset()
    graph = small_graph().to(device)
    fn = torch.compile(lambda hs, hn, lg, b: lk.graph_relational_aggregate(
        hs, hn, lg, graph, b, transposed=True, backend=backend), fullgraph=True, dynamic=True)
    for batch, features in ((2, 5), (3, 7)):  # a second shape exercises dynamic=True
        inputs = make_inputs(graph, batch, features, per_sample=True, device=device)
        out = fn(*inputs)
        grads = torch.autograd.grad(out.square().sum(), inputs)
        eager = lk.graph_relational_aggregate(*inputs[:3], graph, inputs[3], transposed=True,
                                              backend=backend)
        eager_grads = torch.autograd.grad(eager.square().sum(), inputs)
        assert torch.equal(out, eager)
        for g, e in zip(grads, eager_grads):
            assert_close(g, e, what="compiled grad")


@pytest.mark.parametrize("device,backend", backend_params())
def test_torch_compile_layer(device, backend):
    torch._dynamo.reset()
    graph = lk.LandmarkGraph.preset("cofw29")
    layer = lk.nn.GraphRelationalConv(6, 4, graph, backend=backend).to(device)
    compiled = torch.compile(layer, fullgraph=True, dynamic=True)
    x = torch.randn(2, 29, 6, device=device)
    assert_close(compiled(x).detach(), layer(x).detach(), what="compiled layer")


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(device, backend, dtype):
    graph = small_graph().to(device)
    inputs = make_inputs(graph, 3, 16, per_sample=True, dtype=dtype, device=device)
    actual = run(inputs, graph, False, backend)
    expected = reference_run(inputs, graph, False, dtype)
    for what, a, e in zip(NAMES, actual, expected):
        assert a.dtype == dtype
        assert_close(a, e, dtype=dtype, what=what)


@pytest.mark.parametrize("device,backend", backend_params())
def test_autocast_runs_in_fp32(device, backend):
    """Under autocast the op runs in fp32, also with mixed dtypes (bf16 features from an
    autocast matmul, fp32 logits and bias parameters), and gradients keep each input's dtype."""
    graph = small_graph().to(device)
    h_self, h_neigh, _, _ = make_inputs(graph, 2, 8, device=device, dtype=torch.bfloat16)
    _, _, logits, bias = make_inputs(graph, 2, 8, device=device)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        out = lk.graph_relational_aggregate(h_self, h_neigh, logits, graph, bias,
                                            backend=backend)
    assert out.dtype == torch.float32
    expected = reference.graph_relational_aggregate(
        *[t.detach().float() for t in (h_self, h_neigh, logits)], graph, bias.detach())
    assert_close(out.detach(), expected, what="autocast out")
    grads = torch.autograd.grad(out.sum(), (h_self, h_neigh, logits, bias))
    assert [g.dtype for g in grads] == [torch.bfloat16, torch.bfloat16, torch.float32,
                                        torch.float32]


@pytest.mark.parametrize("device,backend", backend_params())
def test_nan_propagates_only_along_edges(device, backend):
    """A NaN feature reaches exactly the outputs that gather it (and no kernel crashes)."""
    graph = small_graph().to(device)
    h_self, h_neigh, logits, bias = (t.detach() for t in make_inputs(graph, 1, 4, device=device))
    h_neigh[0, 1, 2] = float("nan")
    out = lk.graph_relational_aggregate(h_self, h_neigh, logits, graph, bias, backend=backend)
    # Row orientation: node i gathers h_neigh[1] when i -> 1 is an edge (i != 1): nodes 0, 3.
    nan_rows = out[0].isnan().any(dim=1).nonzero().flatten().tolist()
    assert nan_rows == [0, 3]
    assert out[0, 0].isnan().tolist() == [False, False, True, False]


@pytest.mark.parametrize("device,backend", backend_params())
def test_bitwise_deterministic(device, backend):
    graph = graphs_for(device, backend)["wflw98_top3" if not is_interpreted(device, backend)
                                        else "small"]
    inputs = make_inputs(graph, 9, 40, device=device)
    first = run(inputs, graph, False, backend)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # the CPU reductions must not depend on the thread count
        second = run(inputs, graph, False, backend)
    finally:
        torch.set_num_threads(threads)
    for what, a, b in zip(NAMES, first, second):
        assert torch.equal(a, b), what


@pytest.mark.parametrize("device,backend", backend_params())
def test_strided_inputs(device, backend):
    """h_self, h_neigh as the layer makes them (views of one GEMM output, row stride 2F),
    stride-0 batch broadcasts, a transposed view, and a non-contiguous grad_out."""
    graph = small_graph().to(device)
    hs, hn, lg, bias = make_inputs(graph, 3, 4, device=device)
    both = torch.cat([hs.detach(), hn.detach()], dim=-1).requires_grad_()
    views = [both[..., :4], both[..., 4:],
             hs.detach()[:1].expand(3, 6, 4),
             hn.detach().transpose(0, 1).contiguous().transpose(0, 1)]
    for h_self, h_neigh in (views[:2], views[2:]):
        inputs = (h_self, h_neigh, lg, bias)
        out = lk.graph_relational_aggregate(*inputs[:3], graph, bias, backend=backend)
        expected = reference.graph_relational_aggregate(*inputs[:3], graph, bias)
        assert out.is_contiguous()
        assert_close(out.detach(), expected.detach(), what="strided out")
    grad_out = torch.randn(4, 6, 3, device=device).transpose(0, 2)  # (3,6,4), non-contiguous
    out = lk.graph_relational_aggregate(views[0], views[1], lg, graph, bias, backend=backend)
    (grad,) = torch.autograd.grad(out, both, grad_out)
    ref = reference.graph_relational_aggregate(views[0], views[1], lg, graph, bias)
    (ref_grad,) = torch.autograd.grad(ref, both, grad_out)
    assert_close(grad, ref_grad, what="strided grad")


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
def test_empty_batch(device, backend):
    graph = small_graph().to(device)
    hs, hn, lg, bias = make_inputs(graph, 0, 4, device=device)
    out = lk.graph_relational_aggregate(hs, hn, lg, graph, bias, backend=backend)
    assert out.shape == (0, 6, 4)
    grads = torch.autograd.grad(out.sum(), (hs, hn, lg, bias))
    assert [g.shape for g in grads] == [hs.shape, hn.shape, lg.shape, bias.shape]
    assert not lg.shape[0] or torch.equal(grads[2], torch.zeros_like(lg))
    assert torch.equal(grads[3], torch.zeros_like(bias))


@pytest.mark.parametrize("device,backend", backend_params())
def test_double_backward_raises(device, backend):
    graph = small_graph().to(device)
    inputs = make_inputs(graph, 2, 3, device=device)
    out = lk.graph_relational_aggregate(*inputs[:3], graph, inputs[3], backend=backend)
    with pytest.raises(RuntimeError, match="does not support double backward"):
        torch.autograd.grad(out.sum(), inputs[0], create_graph=True)


def _args(**overrides):
    graph = small_graph()
    args = dict(h_self=torch.rand(2, 6, 3), h_neigh=torch.rand(2, 6, 3),
                logits=torch.rand(graph.num_edges), graph=graph, bias=None)
    args.update(overrides)
    return args


@pytest.mark.parametrize("overrides,error,match", [
    (dict(h_self=torch.rand(6, 3)), ValueError, "h_self must have 3 dimensions"),
    (dict(h_self=torch.ones(2, 6, 3, dtype=torch.long)), TypeError, "h_self must be a floating"),
    (dict(h_neigh=torch.rand(2, 6, 4)), ValueError, "h_neigh must have the shape of h_self"),
    (dict(h_neigh=torch.rand(2, 6, 3, dtype=torch.float64)), TypeError, "h_neigh has dtype"),
    (dict(h_neigh=torch.rand(2, 6, 3, device="meta")), ValueError, "h_neigh is on meta"),
    (dict(logits=torch.rand(5)), ValueError, r"logits must be \(E,\) = \(12,\)"),
    (dict(logits=torch.rand(3, 12)), ValueError, r"or \(B,E\) = \(2, 12\)"),
    (dict(logits=torch.rand(2, 2, 12)), ValueError, "logits must have 1 or 2 dimensions"),
    (dict(logits=torch.rand(12, dtype=torch.float16)), TypeError, "logits has dtype"),
    (dict(bias=torch.rand(4)), ValueError, r"bias must be \(F,\) = \(3,\)"),
    (dict(bias=torch.rand(3, 1)), ValueError, "bias must have 1 dimensions"),
    (dict(graph="wflw98"), TypeError, "graph must be a LandmarkGraph"),
    (dict(graph=lk.LandmarkGraph.preset("cofw29")), ValueError, "graph has 29 nodes but"),
    (dict(graph=small_graph().to("meta")), ValueError, "graph is on meta"),
    (dict(graph=lk.LandmarkGraph.from_edges([[0, 1]], 6, self_loops=False)), ValueError,
     "graph has nodes without any edge"),
    (dict(transposed=1), TypeError, "transposed must be a bool"),
    (dict(backend="cuda"), RuntimeError, "backend 'cuda' is not available for cpu"),
    (dict(backend="fast"), ValueError, "backend must be 'auto' or one of"),
])
def test_bad_input_raises_naming_the_argument(overrides, error, match):
    args = _args(**overrides)
    with pytest.raises(error, match=match):
        lk.graph_relational_aggregate(args.pop("h_self"), args.pop("h_neigh"),
                                      args.pop("logits"), args.pop("graph"), args.pop("bias"),
                                      **args)


def corrupt(tensors, name, value):
    tensors = dict(zip(("rowptr", "col", "t_rowptr", "t_col", "perm"),
                       (t.clone() for t in tensors)))
    tensors[name] = value(tensors[name])
    return tuple(tensors.values())


def _set(i, v):
    def f(t):
        t[i] = v
        return t
    return f


CORRUPTIONS = [
    ("col", _set(0, 6), "col must hold node indices in"),
    ("t_col", _set(3, -1), "t_col must hold node indices in"),
    ("rowptr", _set(-1, 11), "rowptr must start at 0 and end at E"),
    ("rowptr", _set(2, 0), "rowptr must be non-decreasing"),
    ("perm", _set(0, 1), "perm must be a permutation"),
    ("perm", lambda t: t.flip(0), "t_rowptr, t_col and perm must describe"),
    ("col", lambda t: t.int(), "col must be an int64 tensor"),
    ("rowptr", lambda t: t[:-1], r"rowptr must (have shape|be an int64 tensor of shape)"),
]


@pytest.mark.parametrize("name,change,match", CORRUPTIONS)
@pytest.mark.parametrize("backend", ["cpu", "triton"])
def test_native_ops_check_the_graph(name, change, match, backend):
    """A direct torch.ops call with a corrupt graph gets a clear error, never a bad read: C++
    TORCH_CHECKs for the CPU op, Python checks for the Triton op on CPU tensors."""
    graph = small_graph()
    hs, hn, lg, _ = make_inputs(graph, 2, 3)
    csr = corrupt(graph.csr_tensors(), name, change)
    forward, backward = native_ops(backend)
    error = RuntimeError if backend == "cpu" else ValueError
    with pytest.raises(error, match=match):
        forward(hs.detach(), hn.detach(), lg.detach(), None, *csr, False)
    with pytest.raises(error, match=match):
        backward(torch.ones_like(hs), hs.detach(), hn.detach(), lg.detach(), *csr, True, False)


@pytest.mark.parametrize("backend", ["cpu", "triton"])
def test_fake_kernels_check_their_arguments(backend):
    """Meta tensors reach the fake kernels, which run the same checks as the C++ ops."""
    graph = small_graph().to("meta")
    hs, hn = torch.empty(2, 6, 3, device="meta"), torch.empty(2, 6, 3, device="meta")
    forward, backward = native_ops(backend)
    assert forward(hs, hn, torch.empty(12, device="meta"), None, *graph.csr_tensors(),
                   False).shape == (2, 6, 3)
    with pytest.raises(ValueError, match=r"logits must be \(E,\) = \(12,\)"):
        forward(hs, hn, torch.empty(5, device="meta"), None, *graph.csr_tensors(), False)
    with pytest.raises(ValueError, match="perm must be an int64 tensor of shape"):
        forward(hs, hn, torch.empty(12, device="meta"), None, *graph.csr_tensors()[:4],
                torch.empty(12, device="meta", dtype=torch.int32), False)
    with pytest.raises(ValueError, match="grad_out must have the shape of h_self"):
        backward(hs[:1], hs, hn, torch.empty(12, device="meta"), *graph.csr_tensors(), False,
                 True)


def test_native_op_checks_feature_arguments():
    graph = small_graph()
    hs, hn, lg = (t.detach() for t in make_inputs(graph, 2, 3)[:3])
    forward, backward = native_ops("cpu")
    with pytest.raises(RuntimeError, match=r"logits must be \(E,\)"):
        forward(hs, hn, lg[:5], None, *graph.csr_tensors(), False)
    with pytest.raises(RuntimeError, match=r"bias must be \(F,\)"):
        forward(hs, hn, lg, torch.rand(7), *graph.csr_tensors(), False)
    with pytest.raises(RuntimeError, match="h_neigh has dtype"):
        forward(hs, hn.double(), lg, None, *graph.csr_tensors(), False)
    with pytest.raises(RuntimeError, match="grad_out must have the shape of h_self"):
        backward(hs[:1], hs, hn, lg, *graph.csr_tensors(), False, False)
