"""The training-loop contract of docs/training.md, for AWing, AWing from coordinates, Wing,
SoftWing and graph aggregation + the relative-location loss, on every backend here:

- gradient accumulation over micro-batches gives the whole batch's gradient, with the scaling
  the docs state for each reduction;
- under DDP (2 processes, gloo), a loss computed outside or inside the wrapped module
  all-reduces to the single-process gradient;
- torch.amp.GradScaler: scaled backward + unscale_ gives the plain gradient, and a non-finite
  gradient makes it skip the step;
- nothing is cached across calls: changing batch size, shapes, graph or target between calls
  gives the reference results, and a returned gradient is never changed by a later call.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import landmark_kernels as lk
import training_cases as tc
from conftest import assert_close, assert_close_to_scale, backend_params, is_interpreted

HERE = Path(__file__).resolve().parent
CASES = {case.name: case for case in tc.CASES}
BACKENDS = backend_params(("cpu", "cuda", "triton", "torch"))
CASE_REDUCTIONS = [pytest.param(c.name, r, id=f"{c.name}-{r}") for c in tc.CASES
                   for r in c.reductions]


def _with_backends(params):
    """params × every (device, backend), minus the combinations training_cases.cheap rules
    out (the graph cases in the Triton interpreter)."""
    return [pytest.param(*p.values, *b.values, id=f"{p.id}-{b.id}", marks=b.marks)
            for p in params for b in BACKENDS if tc.cheap(CASES[p.values[0]], *b.values)]


CASE_PARAMS = _with_backends([pytest.param(c.name, id=c.name) for c in tc.CASES])


def _step_grads(case, device, backend, reduction, batch, scale=1.0, *, model):
    """One backward of case.loss · scale (accumulating into model's .grad); returns the
    scaled loss."""
    loss = case.loss(model, tc.to(batch, device), reduction, backend) * scale
    loss.backward()
    return loss.detach()


def _model(case, device):
    return case.make_model().to(device)


@pytest.mark.parametrize("name,reduction,device,backend", _with_backends(CASE_REDUCTIONS))
def test_gradient_accumulation_gives_the_full_batch_gradient(name, reduction, device,
                                                             backend):
    case = CASES[name]
    batch = case.batch()
    full = _model(case, device)
    full_loss = _step_grads(case, device, backend, reduction, batch, model=full)
    accumulated = _model(case, device)
    total = 0.0
    # Unequal micro-batches (3 + 1): a missing or wrong 1/N scaling cannot cancel out.
    for start, stop in ((0, 3), (3, tc.BATCH)):
        scale = tc.micro_batch_scale(reduction, stop - start, tc.BATCH)
        total = total + _step_grads(case, device, backend, reduction,
                                    tc.split(batch, start, stop), scale, model=accumulated)
    assert_close(total, full_loss, what="accumulated loss")
    expected = tc.grads(full)
    for key, grad in tc.grads(accumulated).items():
        assert_close_to_scale(grad, expected[key], what=f"{name} {reduction} grad of {key}")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    """Gradients of every case trained under DDP on 2 CPU processes (gloo), for the CPU
    backends here; one torch.distributed.run launch for all."""
    backends = [b for b in ("cpu", "torch", "triton") if b in lk.available_backends("cpu")]
    out = tmp_path_factory.mktemp("ddp") / "grads.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           str(HERE / "ddp_contract_worker.py"), str(out), ",".join(backends)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return torch.load(out), backends


@pytest.mark.parametrize("where", ["outside", "inside"])
@pytest.mark.parametrize("name,reduction", CASE_REDUCTIONS)
def test_ddp_loss_inside_or_outside_the_module_gives_the_single_process_gradient(
        ddp_results, name, reduction, where):
    results, backends = ddp_results
    case = CASES[name]
    for backend in (b for b in backends if tc.cheap(case, "cpu", b)):
        single = _model(case, "cpu")
        _step_grads(case, "cpu", backend, reduction, case.batch(), model=single)
        expected = tc.grads(single)
        got = results[name, reduction, backend, where]
        assert got.keys() == expected.keys()
        for key, grad in got.items():
            assert_close_to_scale(grad, expected[key],
                                  what=f"{name} {reduction} {backend} {where}: grad of {key}")


@pytest.mark.parametrize("name,device,backend", CASE_PARAMS)
def test_grad_scaler_gives_the_plain_gradient_and_step(name, device, backend):
    case = CASES[name]
    batch, reduction = case.batch(), case.reductions[0]
    plain = _model(case, device)
    _step_grads(case, device, backend, reduction, batch, model=plain)
    plain_opt = torch.optim.SGD(plain.parameters(), lr=0.1)
    expected = tc.grads(plain)
    plain_opt.step()

    scaled = _model(case, device)
    opt = torch.optim.SGD(scaled.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler(device, init_scale=2.0 ** 12)
    loss = case.loss(scaled, tc.to(batch, device), reduction, backend)
    scaler.scale(loss).backward()
    raw = tc.grads(scaled)
    scaler.unscale_(opt)
    for key, grad in tc.grads(scaled).items():
        # 2^12 is a power of two: scaling and unscaling are exact.
        assert_close(raw[key], expected[key] * 2.0 ** 12, what=f"scaled grad of {key}")
        assert_close(grad, expected[key], what=f"unscaled grad of {key}")
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == 2.0 ** 12  # finite gradients: the scale is kept
    for (key, p), q in zip(scaled.named_parameters(), plain.parameters()):
        assert_close(p.detach(), q.detach(), what=f"parameter {key} after the step")


@pytest.mark.parametrize("name,device,backend", CASE_PARAMS)
def test_grad_scaler_skips_the_step_of_a_nan_target(name, device, backend):
    """A NaN target gives a NaN gradient (documented), which GradScaler must see and skip."""
    case = CASES[name]
    batch = case.batch()
    # A NaN coordinate renders as a missing landmark (no NaN): for AWing from coordinates, a
    # NaN input pixel (hence NaN predictions) stands in.
    key = "x" if name == "awing_from_coords" else "target"
    batch[key] = batch[key].clone()
    batch[key].view(-1)[0] = float("nan")
    model = _model(case, device)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler(device, init_scale=2.0 ** 12)
    scaler.scale(case.loss(model, tc.to(batch, device), case.reductions[0], backend)).backward()
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() < 2.0 ** 12
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p.detach(), q), "the step with a NaN gradient was not skipped"


@pytest.mark.parametrize("device,backend", BACKENDS)
def test_grad_scaler_under_autocast(device, backend):
    """bf16 autocast (the CPU's; fp16 on CUDA): the ops run in fp32, GradScaler unscales to the
    fp32 gradient within bf16/fp16 rounding of the model's own layers."""
    case = CASES["awing"]
    batch = tc.to(case.batch(), device)
    plain = _model(case, device)
    case.loss(plain, batch, "mean", backend).backward()
    model = _model(case, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler(device, init_scale=2.0 ** 12)
    dtype = torch.float16 if device == "cuda" else torch.bfloat16
    with torch.autocast(device, dtype=dtype):
        loss = case.loss(model, batch, "mean", backend)
    assert loss.dtype == torch.float32
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    expected = tc.grads(plain)
    for key, grad in tc.grads(model).items():
        assert_close_to_scale(grad, expected[key], dtype=dtype, what=f"grad of {key}")


def _reference_loss(name, pred, batch, reduction):
    if name == "awing":
        return lk.reference.awing_loss(pred, batch["target"], reduction=reduction)
    if name == "awing_from_coords":
        return lk.reference.awing_loss_from_coords(pred, batch["coords"], 1.0,
                                                   reduction=reduction)
    return getattr(lk.reference, name + "_loss")(pred, batch["target"], reduction=reduction)


_FUNCTIONAL = {"awing": lambda p, b, r, be: lk.awing_loss(p, b["target"], reduction=r,
                                                            backend=be),
               "awing_from_coords": lambda p, b, r, be: lk.awing_loss_from_coords(
                   p, b["coords"], 1.0, reduction=r, backend=be),
               "wing": lambda p, b, r, be: lk.wing_loss(p, b["target"], reduction=r,
                                                        backend=be),
               "soft_wing": lambda p, b, r, be: lk.soft_wing_loss(p, b["target"], reduction=r,
                                                                  backend=be)}


def _varying_inputs(name, device):
    """(pred leaf, batch) for batch sizes 4, 1, 6 and, for heatmaps, three map sizes."""
    out = []
    for i, (size, h, w) in enumerate(((3, 6, 6), (1, 5, 9), (4, 7, 4))):
        gen = torch.Generator().manual_seed(10 + i)
        if name.startswith("awing"):
            coords = torch.rand(size, 2 + i, 2, generator=gen) * torch.tensor([w - 1, h - 1])
            batch = dict(coords=coords, target=lk.render_gaussian_heatmaps(coords, h, w, 1.0))
            pred = torch.rand(size, 2 + i, h, w, generator=gen)
        else:
            batch = dict(target=torch.randn(size, 5 + i, 2, generator=gen) * 3)
            pred = torch.randn(size, 5 + i, 2, generator=gen) * 3
        out.append((pred.to(device).requires_grad_(), tc.to(batch, device)))
    return out


@pytest.mark.parametrize("name", list(_FUNCTIONAL))
@pytest.mark.parametrize("device,backend", BACKENDS)
def test_nothing_is_cached_across_calls(name, device, backend):
    fn = _FUNCTIONAL[name]
    reduction = "sum"
    inputs = _varying_inputs(name, device)
    kept = []
    # Calls with changing batch size, shape and target, each checked against the reference;
    # the gradients of earlier calls (left in each leaf's .grad) must survive the later calls.
    for pred, batch in inputs + inputs[:1]:
        pred.grad = None
        fn(pred, batch, reduction, backend).backward()
        ref_pred = pred.detach().clone().requires_grad_()
        ref = _reference_loss(name, ref_pred, batch, reduction)
        ref.backward()
        assert_close(fn(pred.detach(), batch, reduction, backend), ref.detach(), what="loss")
        assert_close_to_scale(pred.grad, ref_pred.grad, what="gradient")
        kept.append((pred.grad, pred.grad.clone()))
    for grad, copy in kept:
        assert torch.equal(grad, copy), "a later call changed an earlier call's gradient"
    # Backward through a kept graph three times accumulates three gradients into the leaf.
    pred, batch = inputs[0]
    pred.grad = None
    loss = fn(pred, batch, reduction, backend)
    once = torch.autograd.grad(fn(pred, batch, reduction, backend), pred)[0]
    for _ in range(3):
        loss.backward(retain_graph=True)
    assert_close_to_scale(pred.grad, 3 * once, what="gradient after 3 backwards")
    # Two losses alive at once, backpropagated in the opposite order of their forwards.
    (p1, b1), (p2, b2) = inputs[1], inputs[2]
    p1.grad = p2.grad = None
    l1, l2 = fn(p1, b1, reduction, backend), fn(p2, b2, reduction, backend)
    l2.backward()
    l1.backward()
    assert_close_to_scale(p1.grad, torch.autograd.grad(fn(p1, b1, reduction, backend), p1)[0],
                          what="first gradient")
    assert_close_to_scale(p2.grad, torch.autograd.grad(fn(p2, b2, reduction, backend), p2)[0],
                          what="second gradient")


@pytest.mark.parametrize("device,backend",
                         [b for b in BACKENDS if not is_interpreted(*b.values)])
def test_graph_ops_hold_no_state_across_graphs_and_batches(device, backend):
    """The aggregation and the relative-location loss on two different graphs (WFLW-98 top-3,
    300-W 68) and batch sizes, alternating, each against the dense reference (not in the
    Triton interpreter: see training_cases.cheap)."""
    graphs = [lk.LandmarkGraph.preset("wflw98_top3").to(device),
              lk.LandmarkGraph.preset("300w68").to(device)]
    for i, (graph, size) in enumerate(((graphs[0], 3), (graphs[1], 1), (graphs[0], 5),
                                       (graphs[1], 2))):
        gen = torch.Generator().manual_seed(i)
        n, f = graph.num_nodes, 3
        tensors = [torch.randn(size, n, f, generator=gen), torch.randn(size, n, f, generator=gen),
                   torch.randn(graph.num_edges, generator=gen), torch.randn(f, generator=gen)]
        ours = [t.to(device).requires_grad_() for t in tensors]
        refs = [t.to(device).requires_grad_() for t in tensors]
        out = lk.graph_relational_aggregate(*ours[:3], graph, ours[3], backend=backend)
        ref = lk.reference.graph_relational_aggregate(*refs[:3], graph, refs[3])
        assert_close_to_scale(out, ref, what="aggregation")
        target = torch.randn(size, n, f, generator=gen).to(device)
        directed = lk.LandmarkGraph.preset("wflw98" if n == 98 else "300w68", symmetric=False,
                                           self_loops=False).to(device)
        loss = lk.relative_location_loss(out, target, directed, backend=backend)
        ref_loss = lk.reference.relative_location_loss(ref, target, directed)
        assert_close(loss, ref_loss, what="relative-location loss")
        loss.backward()
        ref_loss.backward()
        for name, a, b in zip(("h_self", "h_neigh", "logits", "bias"), ours, refs):
            assert_close_to_scale(a.grad, b.grad, what=f"gradient of {name}")
