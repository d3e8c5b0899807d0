"""AWing + weighted loss map (docs/awing.md): every backend against reference.py and the
reference values."""

import pytest
import torch

import landmark_kernels as lk
from landmark_kernels import reference

from conftest import assert_close, backend_params, is_interpreted

SHAPES = [(1, 1, 1, 1), (3, 5, 17, 33), (2, 99, 64, 64)]
SMALL_SHAPES = SHAPES[:2]


def make_inputs(shape, device, dtype=torch.float32, seed=0):
    """Heatmap-like target in [0,1] (many pixels above the 0.2 map threshold), pred = target +
    noise, with some pixels exactly on target (δ = 0)."""
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g, dtype=torch.float64) ** 3
    pred = target + 0.4 * torch.randn(shape, generator=g, dtype=torch.float64)
    pred.view(-1)[::7] = target.view(-1)[::7]
    return (pred.to(device, dtype).requires_grad_(), target.to(device, dtype))


def make_weight(kind, shape, device, dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    if kind == "none":
        return None
    w = torch.rand(shape[:2] if kind == "channel" else shape, generator=g, dtype=torch.float64)
    w.view(-1)[::3] = 0.0  # masked channels/pixels
    return w.to(device, dtype)


def native_op(backend):
    """The registered op behind a native backend."""
    ops = torch.ops.landmark_kernels
    return ops.awing_loss_triton if backend == "triton" else ops.awing_loss


def loss_and_grad(pred, target, **kw):
    loss = lk.awing_loss(pred, target, **kw)
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    return loss.detach(), grad


def reference_loss_and_grad(pred, target, target_weight=None, **kw):
    p64 = pred.detach().double().requires_grad_()
    tw = None if target_weight is None else target_weight.double()
    return loss_and_grad(p64, target.double(), target_weight=tw, backend="torch", **kw)


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("pred_value,target_value,expected", [
    (1.0, 0.0, 8.495946),    # mmpose's unit test
    (0.0, 1.0, 10.259383),
    (0.25, 0.0, 0.741731),
    (0.5, 1.0, 5.360458),    # δ = θ: the linear branch
])
def test_published_values(device, backend, pred_value, target_value, expected):
    pred = torch.full((2, 3, 4, 5), pred_value, device=device)
    target = torch.full((2, 3, 4, 5), target_value, device=device)
    loss = lk.awing_loss(pred, target, weight_map=False, backend=backend)
    assert loss.item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weight_kind", ["none", "channel", "pixel"])
@pytest.mark.parametrize("weight_map", [True, False])
def test_matches_reference(device, backend, shape, reduction, weight_kind, weight_map):
    if is_interpreted(device, backend) and shape not in SMALL_SHAPES:
        pytest.skip("the Triton interpreter runs small shapes only; the GPU run covers this one")
    pred, target = make_inputs(shape, device)
    tw = make_weight(weight_kind, shape, device)
    kw = dict(reduction=reduction, weight_map=weight_map, target_weight=tw)
    loss, grad = loss_and_grad(pred, target, backend=backend, **kw)
    ref_loss, ref_grad = reference_loss_and_grad(pred, target, **kw)
    assert loss.dtype == torch.float32 and loss.shape == ref_loss.shape
    assert_close(loss, ref_loss, what="loss")
    scale = pred.numel() if reduction == "mean" else 1  # compare mean's grads at unit scale
    assert_close(grad * scale, ref_grad * scale, what="grad")


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("map_kernel,map_threshold,map_weight", [(1, 0.2, 10.0), (5, 0.5, 3.0),
                                                                  (31, 0.1, 10.0)])
def test_map_parameters(device, backend, map_kernel, map_threshold, map_weight):
    pred, target = make_inputs((2, 3, 9, 40), device)
    kw = dict(map_kernel=map_kernel, map_threshold=map_threshold, map_weight=map_weight,
              reduction="none")
    loss, grad = loss_and_grad(pred, target, backend=backend, **kw)
    ref_loss, ref_grad = reference_loss_and_grad(pred, target, **kw)
    assert_close(loss, ref_loss, what="loss")
    assert_close(grad, ref_grad, what="grad")


def test_weight_map_is_grey_dilation():
    """The map matches scipy-style grey dilation: a single hot pixel lights its 3×3 block."""
    target = torch.zeros(1, 1, 5, 6, dtype=torch.float64)
    target[0, 0, 0, 3] = 0.9
    factor = reference.weighted_loss_map(target)
    expected = torch.ones_like(target)
    expected[0, 0, 0:2, 2:5] = 11.0
    torch.testing.assert_close(factor, expected)


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(device, backend, dtype):
    pred, target = make_inputs((2, 3, 16, 20), device, dtype)
    tw = make_weight("channel", pred.shape, device, dtype)
    loss, grad = loss_and_grad(pred, target, backend=backend, target_weight=tw, reduction="sum")
    ref_loss, ref_grad = reference_loss_and_grad(pred, target, target_weight=tw, reduction="sum")
    assert loss.dtype == torch.float32 and grad.dtype == dtype
    assert_close(loss, ref_loss, dtype=dtype, what="loss")
    assert_close(grad, ref_grad, dtype=dtype, what="grad")


@pytest.mark.parametrize("device,backend", backend_params())
def test_half_precision_sum_does_not_overflow(device, backend):
    """The loss is returned in fp32: 1024 pixels × 112.85 would be inf in fp16."""
    pred = torch.zeros(1, 4, 16, 16, device=device, dtype=torch.float16)
    loss = lk.awing_loss(pred, torch.ones_like(pred), reduction="sum", backend=backend)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(1024 * 11 * 10.259383, rel=1e-5)


@pytest.mark.parametrize("device,backend", backend_params())
def test_half_precision_mean_gradient_does_not_underflow(device, backend):
    """The 1/N of "mean" is applied in fp32 in the backward: fp16 grads keep their value."""
    pred, target = make_inputs((4, 8, 32, 32), device, torch.float16)
    loss = lk.awing_loss(pred, target, backend=backend)
    (grad,) = torch.autograd.grad(loss * 1024.0, pred)  # a loss scale, as GradScaler does
    _, ref_grad = reference_loss_and_grad(pred, target)
    assert_close(grad, ref_grad * 1024.0, dtype=torch.float16, what="grad")


@pytest.mark.parametrize("device,backend", backend_params(("cpu", "cuda")) + [
    pytest.param("cpu", "torch", id="torch-cpu")])
@pytest.mark.parametrize("weight_kind", ["none", "pixel"])
def test_gradcheck_fp64(device, backend, weight_kind):
    pred, target = make_inputs((2, 3, 5, 7), device, torch.float64)
    tw = make_weight(weight_kind, pred.shape, device, torch.float64)
    # Keep every pixel off the kinks (δ = 0 and δ = θ) where finite differences are meaningless.
    pred = (target + 0.05 + 0.3 * torch.rand_like(target)).requires_grad_()
    for reduction in ("mean", "none"):
        assert torch.autograd.gradcheck(
            lambda p: lk.awing_loss(p, target, target_weight=tw, reduction=reduction,
                                    backend=backend), (pred,))


@pytest.mark.parametrize("device,backend", backend_params())
def test_gradient_at_zero_error_is_zero(device, backend):
    """δ = 0 gives a zero gradient, never NaN, also for targets above 1.1 (α−y−1 < 0)."""
    target = torch.tensor([0.0, 0.3, 1.0, 1.5, 2.0], device=device).reshape(1, 1, 1, 5)
    pred = target.clone().requires_grad_()
    loss, grad = loss_and_grad(pred, target, backend=backend, reduction="sum")
    assert loss.item() == 0.0
    assert torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize("device,backend", backend_params())
def test_no_gradient_to_target(device, backend):
    pred, target = make_inputs((1, 2, 6, 6), device)
    target.requires_grad_()
    lk.awing_loss(pred, target, backend=backend).backward()
    assert pred.grad is not None and target.grad is None


@pytest.mark.parametrize("device,backend", backend_params())
def test_no_gradient_buffer_without_grad(device, backend):
    """When pred does not require grad, the kernel writes no gradient (empty buffer)."""
    pred, target = make_inputs((1, 2, 6, 6), device)
    op = native_op(backend)
    args = (None, 2.1, 14.0, 1.0, 0.5, 10.0, 0.2, 3, 1)
    loss, grad = op(pred.detach(), target, *args, False)
    assert grad.numel() == 0
    with torch.no_grad():
        assert lk.awing_loss(pred, target, backend=backend).item() == pytest.approx(loss.item())


@pytest.mark.parametrize("device,backend", backend_params())
def test_non_contiguous_and_channels_last(device, backend):
    pred, target = make_inputs((2, 3, 10, 12), device)
    ref_loss, ref_grad = reference_loss_and_grad(pred, target, reduction="none")
    for transform in (lambda t: t.contiguous(memory_format=torch.channels_last),
                      lambda t: t.transpose(2, 3).contiguous().transpose(2, 3)):
        p = transform(pred.detach()).requires_grad_()
        loss, grad = loss_and_grad(p, transform(target), backend=backend, reduction="none")
        assert_close(loss, ref_loss, what="loss")
        assert_close(grad, ref_grad, what="grad")


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("reduction,expected", [("mean", 0.0), ("sum", 0.0)])
def test_empty_batch(device, backend, reduction, expected):
    pred = torch.zeros(0, 5, 8, 8, device=device, requires_grad=True)
    loss = lk.awing_loss(pred, torch.zeros_like(pred), reduction=reduction, backend=backend)
    loss.backward()
    assert loss.item() == expected and pred.grad.shape == pred.shape


@pytest.mark.parametrize("device,backend", backend_params())
def test_bitwise_deterministic(device, backend):
    pred, target = make_inputs((3, 7, 33, 31), device)
    first = loss_and_grad(pred, target, backend=backend)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # the CPU reduction must not depend on the thread count
        second = loss_and_grad(pred, target, backend=backend)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.parametrize("device,backend", backend_params())
def test_autocast_runs_in_fp32(device, backend):
    pred, target = make_inputs((2, 3, 8, 8), device, torch.bfloat16)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        loss = lk.awing_loss(pred, target, backend=backend)
    assert loss.dtype == torch.float32
    ref = reference.awing_loss(pred.detach().float(), target.float())
    assert_close(loss.detach(), ref, what="loss")


@pytest.mark.parametrize("device,backend", backend_params())
def test_opcheck(device, backend):
    op = native_op(backend)
    pred, target = make_inputs((2, 3, 5, 6), device)
    weight = make_weight("channel", pred.shape, device)
    for reduction in (0, 1, 2):
        for tw in (None, weight):
            torch.library.opcheck(op, (pred, target, tw, 2.1, 14.0, 1.0, 0.5, 10.0, 0.2, 3,
                                       reduction, True))
    torch.library.opcheck(op, (pred.detach(), target, None, 2.1, 14.0, 1.0, 0.5, 0.0, 0.2, 1,
                               1, False))


@pytest.mark.parametrize("device,backend", backend_params())
def test_torch_compile_fullgraph(device, backend):
    torch._dynamo.reset()
    fn = torch.compile(lambda p, t, w: lk.awing_loss(p, t, target_weight=w, backend=backend),
                       fullgraph=True, dynamic=True)
    for shape in ((2, 3, 8, 9), (3, 2, 11, 7)):  # a second shape exercises dynamic=True
        pred, target = make_inputs(shape, device)
        tw = make_weight("channel", shape, device)
        loss = fn(pred, target, tw)
        (grad,) = torch.autograd.grad(loss, pred)
        eager_loss, eager_grad = loss_and_grad(pred, target, target_weight=tw, backend=backend)
        assert torch.equal(loss.detach(), eager_loss) and torch.equal(grad, eager_grad)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(pred=torch.rand(2, 3, 4)), ValueError, "pred must have 4 dimensions"),
    (dict(pred=torch.ones(1, 1, 2, 2, dtype=torch.int64)), TypeError, "pred must be a floating"),
    (dict(target=torch.rand(1, 1, 2, 3)), ValueError, "target must have the shape of pred"),
    (dict(target=torch.rand(1, 1, 2, 2, dtype=torch.float64)), TypeError, "target has dtype"),
    (dict(target=torch.rand(1, 1, 2, 2, device="meta")), ValueError, "target is on meta"),
    (dict(theta=0.0), ValueError, "theta must be > 0"),
    (dict(epsilon=-1.0), ValueError, "epsilon must be > "),
    (dict(omega=float("nan")), ValueError, "omega must be a finite"),
    (dict(alpha=float("inf")), ValueError, "alpha must be a finite"),
    (dict(map_kernel=4), ValueError, "map_kernel must be an odd integer"),
    (dict(map_kernel=33), ValueError, "map_kernel must be an odd integer"),
    (dict(reduction="batchmean"), ValueError, "reduction must be one of"),
    (dict(target_weight=torch.rand(1, 2)), ValueError, "target_weight must be"),
    (dict(target_weight=torch.ones(1, 1, dtype=torch.int32)), TypeError, "target_weight must be a floating"),
    (dict(backend="cuda"), RuntimeError, "backend 'cuda' is not available for cpu"),
    (dict(backend="fast"), ValueError, "backend must be 'auto' or one of"),
])
def test_bad_input_raises_naming_the_argument(kwargs, error, match):
    args = dict(pred=torch.rand(1, 1, 2, 2), target=torch.rand(1, 1, 2, 2))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        lk.awing_loss(args.pop("pred"), args.pop("target"), **args)


def test_native_op_checks_its_arguments_too():
    """A direct torch.ops call with a bad argument gets a clear error, not a crash."""
    p = torch.rand(1, 1, 2, 2)
    op = torch.ops.landmark_kernels.awing_loss
    with pytest.raises(RuntimeError, match="map_kernel must be an odd integer"):
        op(p, p, None, 2.1, 14.0, 1.0, 0.5, 10.0, 0.2, 2, 1, False)
    with pytest.raises(RuntimeError, match="target_weight must be"):
        op(p, p, torch.rand(3), 2.1, 14.0, 1.0, 0.5, 10.0, 0.2, 3, 1, False)
    with pytest.raises(RuntimeError, match="reduction must be"):
        op(p, p, None, 2.1, 14.0, 1.0, 0.5, 10.0, 0.2, 3, 7, False)


def test_module_matches_mmpose_semantics():
    pred, target = make_inputs((2, 3, 8, 8), "cpu")
    tw = torch.rand(2, 3, 1)
    module = lk.nn.AdaptiveWingLoss(use_target_weight=True, loss_weight=2.0)
    loss = module(pred, target, tw)
    expected = 2.0 * reference.awing_loss(pred, target, weight_map=False,
                                          target_weight=tw.squeeze(-1))
    assert_close(loss.detach(), expected.detach(), what="loss")
    assert lk.nn.AdaptiveWingLoss()(pred, target, tw).item() == pytest.approx(
        reference.awing_loss(pred, target, weight_map=False).item(),
        rel=1e-5)  # target_weight ignored by default, no map: mmpose's numbers
    with pytest.raises(ValueError, match="target_weight is required"):
        module(pred, target)


def test_available_backends():
    assert lk.available_backends("cpu")[0] == "cpu"
    assert "torch" in lk.available_backends("cpu") and "cuda" not in lk.available_backends("cpu")
    assert lk.available_backends("meta") == ("torch",)


def test_triton_op_without_gpu_or_interpreter():
    """On a machine with no GPU and no TRITON_INTERPRET, the Triton op still works on CPU
    tensors (its CPU default is the C++ kernel): opcheck and torch.compile pass. A fresh process,
    since the interpreter flag is read at import."""
    import os
    import subprocess
    import sys
    import textwrap
    script = textwrap.dedent("""
        import torch, landmark_kernels as lk
        op = torch.ops.landmark_kernels.awing_loss_triton
        pred, target = torch.rand(2, 3, 6, 7, requires_grad=True), torch.rand(2, 3, 6, 7)
        torch.library.opcheck(op, (pred, target, None, 2.1, 14.0, 1.0, 0.5, 10.0, 0.2, 3, 1, True))
        fn = torch.compile(lambda p, t: op(p, t, None, 2.1, 14.0, 1.0, 0.5, 10.0, 0.2, 3, 1,
                                           True)[0], fullgraph=True)
        expected = lk.awing_loss(pred, target, backend="cpu")
        assert torch.equal(fn(pred, target), expected)
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.parametrize("device,backend", backend_params())
def test_retain_graph_backward_twice(device, backend):
    """A kept graph (retain_graph) finds its stored gradient intact: the in-place scaling of the
    backward is used only when the graph is freed."""
    pred, target = make_inputs((2, 3, 6, 7), device)
    loss = lk.awing_loss(pred, target, backend=backend)
    (first,) = torch.autograd.grad(loss * 3.0, pred, retain_graph=True)
    (second,) = torch.autograd.grad(loss * 3.0, pred)
    _, ref_grad = reference_loss_and_grad(pred, target)
    assert torch.equal(first, second)
    assert_close(first * pred.numel(), 3.0 * ref_grad * pred.numel(), what="grad")


@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                          reason="no CUDA GPU on this machine"))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_scale_grad(device, dtype):
    op = torch.ops.landmark_kernels.scale_grad_
    grad = torch.randn(3, 5, 7, device=device, dtype=dtype)
    expected = grad.clone()
    op(grad, torch.tensor(1.0, device=device))
    assert torch.equal(grad, expected)  # grad_output 1: untouched
    op(grad, torch.tensor(-2.5, device=device))
    assert torch.equal(grad, (expected.float() * -2.5).to(dtype))
    scale = torch.rand(3, 5, 7, device=device)
    op(grad, scale)
    assert torch.equal(grad, ((expected.float() * -2.5).to(dtype).float() * scale).to(dtype))
    torch.library.opcheck(op, (grad.clone(), torch.tensor(0.5, device=device)))
    with pytest.raises(RuntimeError, match="scale must have one element or the shape of grad"):
        op(grad, torch.ones(2, device=device))


@pytest.mark.parametrize("device,backend", backend_params())
def test_double_backward_raises(device, backend):
    pred, target = make_inputs((1, 2, 5, 5), device)
    loss = lk.awing_loss(pred, target, backend=backend)
    with pytest.raises(RuntimeError, match="do not support double backward"):
        torch.autograd.grad(loss, pred, create_graph=True)
