"""Reliability of every op in long training jobs (issue 12): autocast, the fp16 AWing gradient
overflow under a GradScaler, bitwise determinism (repeated runs, CPU thread counts), long runs
without host-memory growth, torch.compile(dynamic=True) without recompilation when the batch
changes, and the GPU-only checks (CUDA-graph capture and replay, mode="reduce-overhead", inputs
above 2^31 elements), which skip saying "no CUDA GPU on this machine" where there is none."""

import gc

import pytest
import torch
import torch._dynamo
import torch._dynamo.testing

import landmark_kernels as lk

from conftest import assert_close_to_scale
from op_runs import OPS, run

NO_GPU = "no CUDA GPU on this machine"
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
CPU_BACKENDS = [b for b in lk.available_backends("cpu")]
GPU_BACKENDS = [b for b in lk.available_backends("cuda")] if torch.cuda.is_available() else []


# ---- AMP -----------------------------------------------------------------------------------

def _autocast_case(name, device, low, backend):
    """The op under autocast(low) with pred in `low` (as a layer under autocast returns it) and
    the rest fp32, against the op on the same values all in fp32, no autocast."""
    fn, inputs = OPS[name](device, torch.float32, 2)
    mixed = [t.detach().to(low).requires_grad_(t.requires_grad) if i == 0 else t
             for i, t in enumerate(inputs)]
    with torch.autocast(device, dtype=low):
        out = fn(*mixed, backend=backend)
    grads = torch.autograd.grad(out.sum(), [t for t in mixed if t.requires_grad])
    fp32 = [t.detach().to(torch.float32).requires_grad_(t.requires_grad) for t in mixed]
    ref = fn(*fp32, backend="torch")
    ref_grads = torch.autograd.grad(ref.sum(), [t for t in fp32 if t.requires_grad])
    assert torch.isfinite(out).all()
    # The ops run in fp32 under autocast: the loss within fp32's tolerance of the fp32 result
    # (aggregation: output in fp32 too), gradients rounded once to each input's dtype.
    assert out.dtype == torch.float32
    assert_close_to_scale(out.float(), ref.float(), dtype=torch.float32, what="value")
    for g, r, t in zip(grads, ref_grads, [t for t in mixed if t.requires_grad]):
        assert g.dtype == t.dtype
        assert_close_to_scale(g.float(), r.to(t.dtype).float(), dtype=t.dtype, what="grad")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("name", list(OPS))
def test_autocast_cpu_bf16(name, backend):
    _autocast_case(name, "cpu", torch.bfloat16, backend)


@needs_gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS or ["cuda"])
@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("name", list(OPS))
def test_autocast_cuda(name, low, backend):
    _autocast_case(name, "cuda", low, backend)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_render_and_decode_under_autocast(backend):
    coords = torch.tensor([[[3.0, 4.0], [1.5, 2.25]]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hm = lk.render_gaussian_heatmaps(coords, 8, 8, 1.5)
        back = lk.decode_heatmaps(hm, refine="dark")
    assert hm.dtype == torch.float32 and (back - coords).abs().max() < 0.05


def _fp16_overflow_inputs(device):
    """Weighted targets above 1.1 (y·w = 2: AWing's exponent α − y < 1) and |δ| ≈ 1e-3: the exact
    per-pixel gradient ~1e3 fits fp16, the same times a GradScaler's 2^16 does not."""
    target = torch.ones(2, 3, 8, 8, device=device)
    weight = torch.full((2, 3), 2.0, device=device)
    delta = torch.linspace(-3e-3, 3e-3, target.numel(), device=device).reshape(target.shape)
    return target, weight, delta


@pytest.mark.parametrize("device,backend", [("cpu", b) for b in CPU_BACKENDS if b != "torch"] +
                         [pytest.param("cuda", b, marks=needs_gpu) for b in
                          (GPU_BACKENDS or ["cuda"]) if b != "torch"])
def test_fp16_awing_gradient_overflow_is_gradscaler_compatible(device, backend):
    """Documented behaviour (README, _fused.grad_dtype): the gradient is computed and stored in
    fp32 and rounded once to fp16: finite (and accurate) wherever the scaled true gradient fits
    fp16, ±inf exactly where it does not. A GradScaler then sees inf, skips the step and lowers
    its scale until the scaled gradient fits: training goes on, never on a NaN update."""
    target, weight, delta = _fp16_overflow_inputs(device)
    pred = (target + delta).half()
    exact = pred.detach().double().requires_grad_()
    true = torch.autograd.grad(lk.awing_loss(exact, target.double(), target_weight=weight.double(),
                                             reduction="sum", backend="torch"), exact)[0]
    assert true.abs().max() > 500 and true.abs().max() < 65504 / 4  # the case
    for scale in (1.0, 2.0 ** 16):
        p = pred.clone().requires_grad_()
        loss = lk.awing_loss(p, target.half(), target_weight=weight.half(), reduction="sum",
                             backend=backend)
        (grad,) = torch.autograd.grad(loss * scale, p)
        expected = (true * scale).half()  # inf where the scaled gradient overflows fp16
        assert torch.equal(torch.isinf(grad), torch.isinf(expected)), scale
        assert not torch.isnan(grad).any()
        finite = torch.isfinite(expected)
        torch.testing.assert_close(grad[finite].double(), expected[finite].double(), rtol=2e-3,
                                   atol=0)
    # A GradScaler loop: a fp32 parameter feeding fp16 heatmaps through autocast.
    layer = torch.nn.Linear(8, 8, bias=True).to(device)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(8))
        layer.bias.zero_()
    opt = torch.optim.SGD(layer.parameters(), lr=1e-6)
    scaler = torch.amp.GradScaler(device, init_scale=2.0 ** 16)
    steps_taken = 0
    x = (target + delta).float()
    for _ in range(20):
        opt.zero_grad()
        with torch.autocast(device, dtype=torch.float16):
            heat = layer(x)
            assert heat.dtype == torch.float16
            loss = lk.awing_loss(heat, target, target_weight=weight, reduction="sum",
                                 backend=backend)
        scaler.scale(loss).backward()
        before = layer.weight.detach().clone()
        scaler.step(opt)
        scaler.update()
        steps_taken += not torch.equal(before, layer.weight.detach())
        assert torch.isfinite(layer.weight).all()
    assert scaler.get_scale() < 2.0 ** 16, "the scale never had to come down: not the case"
    assert steps_taken > 0, "the scaler never found a finite gradient"


# ---- determinism ---------------------------------------------------------------------------

def _bitwise(a, b):
    bits = lambda t: t.contiguous().reshape(-1).view(torch.uint8)  # noqa: E731  (NaN == NaN)
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(bits(a), bits(b))


def _same_bits(run_a, run_b):
    (out_a, grads_a), (out_b, grads_b) = run_a, run_b
    assert _bitwise(out_a.contiguous(), out_b.contiguous()), "value"
    for i, (x, y) in enumerate(zip(grads_a, grads_b)):
        assert _bitwise(x.contiguous(), y.contiguous()), f"grad {i}"


# Shapes above the CPU kernels' parallel grain, so that 2 threads really split the work.
_LARGE = {"awing_loss": dict(size=64), "awing_loss_from_coords": dict(size=64),
          "wing_loss": dict(landmarks=4096), "soft_wing_loss": dict(landmarks=4096),
          "acr_loss": dict(landmarks=4096), "pfld_loss": dict(landmarks=4096),
          "graph_relational_aggregate": dict(features=512),
          "relative_location_loss": dict(landmarks=9)}


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name", list(OPS))
def test_repeated_runs_are_bitwise_identical(name, dtype, backend):
    batch = 2 if backend == "triton" else 16
    first = run(name, "cpu", dtype, batch, backend)
    for _ in range(2):
        _same_bits(first, run(name, "cpu", dtype, batch, backend))


@pytest.mark.parametrize("backend", [b for b in CPU_BACKENDS if b != "triton"])
@pytest.mark.parametrize("name", list(OPS))
def test_bitwise_identical_across_cpu_thread_counts(name, backend):
    """The CPU kernels reduce over fixed chunks whatever the thread count: 1, 2 and 3 threads give
    the same bits (the torch backend too: ATen's CPU reductions are thread-count independent)."""
    threads = torch.get_num_threads()
    size = _LARGE[name] if name != "relative_location_loss" else {}
    batch = 64
    try:
        runs = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            runs.append(run(name, "cpu", torch.float32, batch, backend, **size))
    finally:
        torch.set_num_threads(threads)
    _same_bits(runs[0], runs[1])
    _same_bits(runs[0], runs[2])


@needs_gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS or ["cuda"])
@pytest.mark.parametrize("name", list(OPS))
def test_repeated_runs_are_bitwise_identical_cuda(name, backend):
    first = run(name, "cuda", torch.float32, 64, backend, **_LARGE[name])
    for _ in range(3):
        _same_bits(first, run(name, "cuda", torch.float32, 64, backend, **_LARGE[name]))


# ---- long runs -----------------------------------------------------------------------------

def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/statm"), reason="needs Linux")
@pytest.mark.parametrize("name", list(OPS))
def test_long_run_does_not_grow_host_memory(name):
    """2000 forward+backward calls of a tiny shape (cpu kernels): resident memory after a
    warm-up grows by less than 4 MiB (a 1 KiB leak per call would show 2 MiB)."""
    fn, inputs = OPS[name]("cpu", torch.float32, 2)
    wrt = [t for t in inputs if t.requires_grad]

    def step():
        torch.autograd.grad(fn(*inputs, backend="cpu").sum(), wrt)
    for _ in range(300):
        step()
    gc.collect()
    before = _rss_bytes()
    for _ in range(2000):
        step()
    gc.collect()
    growth = _rss_bytes() - before
    assert growth < 4 * 2**20, f"{name}: RSS grew by {growth / 2**20:.1f} MiB over 2000 calls"


@needs_gpu
@pytest.mark.parametrize("name", list(OPS))
def test_long_run_does_not_grow_device_memory(name):
    fn, inputs = OPS[name]("cuda", torch.float32, 2)
    wrt = [t for t in inputs if t.requires_grad]
    for _ in range(100):
        torch.autograd.grad(fn(*inputs).sum(), wrt)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    for _ in range(2000):
        torch.autograd.grad(fn(*inputs).sum(), wrt)
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= before


@pytest.mark.parametrize("backend", [b for b in CPU_BACKENDS if b != "triton"])
@pytest.mark.parametrize("name", list(OPS))
def test_compile_dynamic_does_not_recompile_for_a_new_batch(name, backend):
    """torch.compile(dynamic=True): after the first batch size, batches 6, 7 and 10 compile
    nothing new (aot_eager: the op's fake kernel traced with a symbolic batch, and its autograd),
    and the results equal eager. (The batch sizes differ from every other dimension of the
    inputs: a batch equal to another size, e.g. B = D = 2, is "duck-sized" by dynamo into one
    symbol and recompiles once when they part: torch's rule, not the ops'.)"""
    torch._dynamo.reset()
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    fn, _ = OPS[name]("cpu", torch.float32, 5)
    compiled_fn = torch.compile(fn, backend=counter, dynamic=True, fullgraph=True)
    first = None
    for batch in (5, 6, 7, 10):
        compiled = run(name, "cpu", torch.float32, batch, backend, fn=compiled_fn)
        first = first or counter.frame_count
        eager = run(name, "cpu", torch.float32, batch, backend, fn=fn)
        assert_close_to_scale(compiled[0], eager[0], what="value")
        for a, b in zip(compiled[1], eager[1]):
            assert_close_to_scale(a, b, what="grad")
    assert counter.frame_count == first, \
        f"recompiled: {counter.frame_count - first} new graphs for 3 new batch sizes"
    torch._dynamo.reset()


# ---- GPU only ------------------------------------------------------------------------------

@needs_gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS or ["cuda"])
@pytest.mark.parametrize("name", list(OPS))
def test_cudagraph_capture_and_replay(name, backend):
    """Forward+backward captured in a CUDA graph (no host sync, no illegal allocation) and
    replayed on new input values: loss and gradients equal eager."""
    fn, inputs = OPS[name]("cuda", torch.float32, 4)
    wrt = [t for t in inputs if t.requires_grad]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up on a side stream, as torch.cuda.graph requires
        for _ in range(3):
            out = fn(*inputs, backend=backend)
            out.sum().backward()
    torch.cuda.current_stream().wait_stream(stream)
    for t in wrt:
        t.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = fn(*inputs, backend=backend)
        static_out.sum().backward()
    fresh_fn, fresh = OPS[name]("cuda", torch.float32, 4)
    with torch.no_grad():
        for t, f in zip(inputs, fresh):
            t.copy_(f * 1.25 if t.requires_grad else f)
    graph.replay()
    torch.cuda.synchronize()
    eager_in = [t.detach().clone().requires_grad_(t.requires_grad) for t in inputs]
    eager_out = fn(*eager_in, backend=backend)
    eager_grads = torch.autograd.grad(eager_out.sum(), [t for t in eager_in if t.requires_grad])
    assert torch.equal(static_out, eager_out.detach())
    for t, g in zip(wrt, eager_grads):
        assert torch.equal(t.grad, g)


@needs_gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS or ["cuda"])
@pytest.mark.parametrize("name", list(OPS))
def test_compile_reduce_overhead(name, backend):
    torch._dynamo.reset()
    fn, _ = OPS[name]("cuda", torch.float32, 4)
    compiled_fn = torch.compile(fn, mode="reduce-overhead")
    eager = run(name, "cuda", torch.float32, 4, backend, fn=fn)
    for _ in range(3):  # warm-up, record, replay
        compiled = run(name, "cuda", torch.float32, 4, backend, fn=compiled_fn)
    assert_close_to_scale(compiled[0], eager[0], what="value")
    for a, b in zip(compiled[1], eager[1]):
        assert_close_to_scale(a, b, what="grad")
    torch._dynamo.reset()


_BIG = 2**31 + 2**20  # elements: int32 indexing would wrap


def _free_gpu_bytes():
    return torch.cuda.mem_get_info()[0] if torch.cuda.is_available() else 0


@pytest.mark.skipif(_free_gpu_bytes() < 32 * 2**30,
                    reason=NO_GPU if not torch.cuda.is_available() else
                    "needs 32 GiB of free GPU memory (inputs above 2^31 elements)")
@pytest.mark.parametrize("backend", GPU_BACKENDS or ["cuda"])
@pytest.mark.parametrize("name", ["awing_loss", "wing_loss"])
def test_more_than_2_31_elements(name, backend):
    """fp16 inputs of more than 2^31 elements, all with the same error: the summed loss is
    numel times the one-element loss, and the gradient at and past element 2^31 equals the
    first one (int64 indexing; an int32 index would wrap and leave those unwritten)."""
    if name == "awing_loss":
        side = 4 * 1024
        pred = torch.full((_BIG // side**2 + 1, 1, side, side), 0.25, dtype=torch.float16,
                          device="cuda")
        target = torch.zeros_like(pred)
        fn = lambda p: lk.awing_loss(p, target, weight_map=False, reduction="sum",  # noqa
                                     backend=backend)
        single = lk.awing_loss(torch.full((1, 1, 1, 1), 0.25, dtype=torch.float64),
                               torch.zeros(1, 1, 1, 1, dtype=torch.float64), weight_map=False,
                               backend="torch")
    else:
        pred = torch.full((_BIG // 2, 1, 2), 3.0, dtype=torch.float16, device="cuda")
        target = torch.zeros_like(pred)
        fn = lambda p: lk.wing_loss(p, target, reduction="sum", backend=backend)  # noqa: E731
        single = lk.wing_loss(torch.full((1, 1, 1), 3.0, dtype=torch.float64),
                              torch.zeros(1, 1, 1, dtype=torch.float64), reduction="sum")
    assert pred.numel() > 2**31
    pred.requires_grad_()
    loss = fn(pred)
    (grad,) = torch.autograd.grad(loss, pred)
    assert loss.item() == pytest.approx(single.item() * pred.numel(), rel=1e-3)
    flat = grad.view(-1)
    assert torch.equal(flat[-4:], flat[:4]) and flat[0] != 0
    assert torch.equal(flat[2**31 - 2: 2**31 + 2], flat[:4])
    del pred, target, grad, flat
    torch.cuda.empty_cache()
