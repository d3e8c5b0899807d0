"""AWing under hostile and unusual inputs: raw-op argument checks, fake kernels, fp16 ranges,
functional outputs, autocast with mixed dtypes, NaN/inf, extreme hyper-parameters, precision of
the reference, determinism of the reference, and the mmpose drop-in."""

import numpy as np
import pytest
import torch

import landmark_kernels as lk
from landmark_kernels import reference

from conftest import assert_close, backend_params
from test_awing_loss import loss_and_grad, make_inputs, native_op

# The raw op's arguments after (pred, target, target_weight): α ω ε θ W threshold k reduction
# compute_grad (csrc/registration.cpp).
RAW = (2.1, 14.0, 1.0, 0.5, 10.0, 0.2, 3, 1, True)


def raw_args(**changes):
    names = ("alpha", "omega", "epsilon", "theta", "map_weight", "map_threshold", "map_kernel",
             "reduction", "compute_grad")
    values = dict(zip(names, RAW))
    values.update(changes)
    return tuple(values[n] for n in names)


CPU_OPS = [pytest.param(native_op(b), id=b) for d, b in
           (p.values for p in backend_params()) if d == "cpu"]


@pytest.mark.parametrize("op", CPU_OPS)
@pytest.mark.parametrize("pred,target,weight,changes,error,match", [
    ((2, 3, 8, 8), (2, 3, 8, 8), (0,), {}, ValueError, "target_weight must"),
    ((2, 3, 8, 8), (1, 1, 2, 2), None, {}, ValueError, "target must have the shape of pred"),
    ((2, 3, 8, 8), (2, 3, 8, 8), (1, 1), {}, ValueError, "target_weight must"),
    ((2, 3, 8, 8), (2, 3, 8, 8), (2, 3, 1), {}, ValueError, "target_weight must"),
    ((2, 3, 8, 8), (2, 3, 8, 8), (6,), {}, ValueError, "target_weight must"),
    ((2, 3, 8, 8), (2, 3, 8, 8), (), {}, ValueError, "target_weight must"),
    ((2, 3, 8), (2, 3, 8), None, {}, ValueError, "pred must have 4 dimensions"),
] + [((1, 1, 4, 4), (1, 1, 4, 4), None, {"map_kernel": k}, ValueError, "map_kernel must be")
     for k in (0, -1, 2, 33, 1001)]
  + [((1, 1, 4, 4), (1, 1, 4, 4), None, {"reduction": r}, ValueError, "reduction must be")
     for r in (-1, 3, 99)])
def test_raw_op_checks_shapes_and_codes(op, pred, target, weight, changes, error, match):
    """Every raw op, whichever backend serves it, rejects what its kernels would read out of
    bounds or loop on (the Triton op used to crash or read garbage here)."""
    weight = None if weight is None else torch.rand(weight)
    with pytest.raises((error, RuntimeError), match=match):
        op(torch.rand(pred), torch.rand(target), weight, *raw_args(**changes))


@pytest.mark.parametrize("op", CPU_OPS)
@pytest.mark.parametrize("dtype", [torch.int32, torch.bool])
def test_raw_op_rejects_integer_pred(op, dtype):
    pred = torch.ones(1, 1, 2, 2, dtype=dtype)
    with pytest.raises((TypeError, RuntimeError), match="pred must be a floating"):
        op(pred, pred, None, *raw_args())


@pytest.mark.parametrize("op", [native_op("cpu"), native_op("triton")], ids=["cpu", "triton"])
@pytest.mark.parametrize("meta", ["target", "target_weight"])
def test_meta_tensor_among_cpu_inputs_raises(op, meta):
    """A meta input dispatches the op to its fake kernel, which must check devices as the real
    kernels do instead of returning uninitialised memory."""
    pred = torch.rand(1, 2, 4, 4, requires_grad=True)
    target = torch.rand(1, 2, 4, 4, device="meta" if meta == "target" else "cpu")
    weight = torch.rand(1, 2, device="meta") if meta == "target_weight" else None
    with pytest.raises(ValueError, match=f"{meta} is on meta but pred is on cpu"):
        op(pred, target, weight, *raw_args())


ALL = backend_params() + [pytest.param("cpu", "torch", id="torch-cpu")]


def _fp16_reference_grad(pred, target, grad_output, **kw):
    """The reference's fp16 gradient: fp64 maths, rounded once to fp16."""
    p = pred.detach().double().requires_grad_()
    loss = reference.awing_loss(p, target.double(), **kw)
    (g,) = torch.autograd.grad(loss * grad_output, p)
    return g.to(torch.float16)


@pytest.mark.parametrize("device,backend", ALL)
@pytest.mark.parametrize("case", ["one_ulp_above_target_3", "omega_1e4", "map_weight_1e4"])
@pytest.mark.parametrize("grad_output", [1.0, 65536.0])  # 65536: a GradScaler's initial scale
def test_fp16_mean_gradient_is_finite_where_true_gradient_is(device, backend, case, grad_output):
    if case == "one_ulp_above_target_3":
        target = torch.full((2, 1, 8, 8), 3.0, dtype=torch.float16, device=device)
        pred = torch.nextafter(target, torch.full_like(target, 4.0))
        kw = {}
    else:
        pred, target = make_inputs((4, 17, 64, 64) if backend != "triton" else (2, 3, 16, 16),
                                   device, torch.float16)
        kw = {"omega": 1e4} if case == "omega_1e4" else {"map_weight": 1e4}
    pred = pred.detach().requires_grad_()
    loss = lk.awing_loss(pred, target, backend=backend, **kw)
    (grad,) = torch.autograd.grad(loss * grad_output, pred)
    expected = _fp16_reference_grad(pred, target, grad_output, **kw)
    finite = torch.isfinite(expected)
    assert torch.isfinite(grad[finite]).all(), "inf/NaN where the true fp16 gradient is finite"
    assert_close(grad, expected, dtype=torch.float16, what="grad")  # inf only where true


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reduction", [0, 1, 2])
def test_opcheck_every_dtype_and_reduction(device, backend, dtype, reduction):
    pred, target = make_inputs((2, 3, 5, 6), device, dtype)
    torch.library.opcheck(native_op(backend), (pred, target, None) + raw_args(
        reduction=reduction))


@pytest.mark.parametrize("device,backend", backend_params())
def test_raw_op_outputs_never_change(device, backend):
    """The op is functional: a caller holding its gradient output sees it unchanged after the
    backward, which then multiplies out of place."""
    pred, target = make_inputs((2, 3, 6, 7), device)
    loss, grad = native_op(backend)(pred, target, None, *raw_args())
    kept = grad.clone()
    (grad_pred,) = torch.autograd.grad(loss * 3.0, pred)
    assert torch.equal(grad, kept)
    assert_close(grad_pred, 3.0 * kept, what="grad")


class _OpLog(torch.utils._python_dispatch.TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("device,backend", backend_params())
def test_public_backward_reuses_the_private_buffer(device, backend):
    """The public function drops the gradient output, so its backward scales that buffer in
    place (and skips it for grad_output 1) instead of writing a new one."""
    pred, target = make_inputs((2, 3, 6, 7), device)
    loss = lk.awing_loss(pred, target, backend=backend)
    with _OpLog() as log:
        loss.backward(torch.tensor(2.0, device=device))
    assert "landmark_kernels.scale_grad_" in log.ops and "aten.mul" not in log.ops
    loss, _ = native_op(backend)(pred, target, None, *raw_args())
    with _OpLog() as log:
        loss.backward(torch.tensor(2.0, device=device))
    assert "landmark_kernels.scale_grad_" not in log.ops and "aten.mul" in log.ops


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("weighted", [False, True])
def test_autocast_with_mixed_dtypes(device, backend, weighted):
    """The usual AMP pattern: a bf16 prediction from a layer, fp32 targets and weights."""
    pred, target = make_inputs((2, 3, 8, 8), device)
    weight = torch.rand(2, 3, device=device) if weighted else None
    layer = torch.nn.Linear(8, 8).to(device)
    with torch.autocast(device, dtype=torch.bfloat16):
        out = layer(pred)
        assert out.dtype == torch.bfloat16
        loss = lk.awing_loss(out, target, target_weight=weight, backend=backend)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(layer.weight.grad).all()
    expected = reference.awing_loss(out.detach().float(), target, target_weight=weight)
    assert_close(loss.detach(), expected, what="loss")


@pytest.mark.parametrize("device,backend", ALL)
@pytest.mark.parametrize("shape", [(2, 0, 8, 8), (2, 3, 0, 8), (2, 3, 8, 0)])
def test_empty_channels_or_planes_with_the_map(device, backend, shape):
    pred = torch.zeros(shape, device=device, requires_grad=True)
    loss = lk.awing_loss(pred, torch.zeros_like(pred), backend=backend)
    loss.backward()
    assert loss.item() == 0.0 and pred.grad.shape == pred.shape


@pytest.mark.parametrize("device,backend", ALL)
def test_tiny_error_keeps_its_large_gradient(device, backend):
    """α = 1, y = 0: the gradient is ω for any δ > 0; (δ/ε)^α is subnormal for these δ, which
    the CPU kernel's exp used to flush to 0 (gradient 0)."""
    pred = torch.tensor([1e-40, 1e-38], device=device).reshape(1, 1, 1, 2).requires_grad_()
    loss = lk.awing_loss(pred, torch.zeros_like(pred), alpha=1.0, weight_map=False,
                         reduction="sum", backend=backend)
    (grad,) = torch.autograd.grad(loss, pred)
    # 1e-4: the subnormal t = (δ/ε)^α carries ~5 significant digits at 1e-40.
    torch.testing.assert_close(grad.flatten(), torch.tensor([14.0, 14.0], device=device),
                               rtol=1e-4, atol=0)


def test_reference_forms_the_weighted_difference_exactly():
    """(pred − target)·w, not pred·w − target·w: near δ = 0 the gradient ∝ δ^(α−y−1) turns the
    rounding of pred·w − y into a large error."""
    target = torch.full((1, 1, 1, 1), 1.9)
    pred = (target + 1e-6).requires_grad_()
    w = torch.full((1, 1), 0.7)
    fp32 = loss_and_grad(pred, target, target_weight=w, backend="torch", weight_map=False)[1]
    p64 = pred.detach().double().requires_grad_()
    fp64 = loss_and_grad(p64, target.double(), target_weight=w.double(), backend="torch",
                         weight_map=False)[1]
    assert fp32.item() == pytest.approx(fp64.item(), rel=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reference_is_deterministic_across_thread_counts(dtype, reduction):
    pred, target = make_inputs((4, 17, 32, 32), "cpu", dtype)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(loss_and_grad(pred, target, backend="torch", reduction=reduction))
    finally:
        torch.set_num_threads(threads)
    for loss, grad in results[1:]:
        assert torch.equal(loss, results[0][0]) and torch.equal(grad, results[0][1])


@pytest.mark.parametrize("device,backend", backend_params())
def test_fp64_keeps_fp64_hyper_parameters(device, backend):
    """θ = 0.2 is not an fp32 number: an fp64 run must use it as given (the Triton kernel used
    to receive its scalars as fp32)."""
    pred, target = make_inputs((2, 3, 8, 8), device, torch.float64)
    kw = dict(theta=0.2, alpha=2.3, omega=13.7, epsilon=0.9, map_threshold=0.3, map_weight=7.1,
              reduction="sum")
    loss = lk.awing_loss(pred, target, backend=backend, **kw)
    expected = reference.awing_loss(pred, target, **kw)
    torch.testing.assert_close(loss, expected, rtol=1e-13, atol=0)


@pytest.mark.parametrize("device,backend", ALL)
def test_nan_and_inf_inputs(device, backend):
    """NaN in, NaN out (loss and gradient of that pixel; its neighbours' map factor is 1, as
    max_pool2d's); pred = ±inf: loss inf, gradient ±A (the slope of the linear branch)."""
    pred, target = make_inputs((1, 2, 5, 6), device)
    pred, target = pred.detach().clone(), target.clone()
    pred[0, 0, 1, 1] = float("nan")
    target[0, 1, 2, 2] = float("nan")
    pred[0, 0, 3, 4], pred[0, 1, 0, 5] = float("inf"), -float("inf")
    pred.requires_grad_()
    loss, grad = loss_and_grad(pred, target, backend=backend, reduction="none")
    p64 = pred.detach().double().requires_grad_()
    ref_loss, ref_grad = loss_and_grad(p64, target.double(), backend="torch", reduction="none")
    nan = torch.zeros_like(target, dtype=torch.bool)
    nan[0, 0, 1, 1] = nan[0, 1, 2, 2] = True
    assert torch.isnan(loss[nan]).all() and torch.isnan(grad[nan]).all()
    assert not torch.isnan(loss[~nan]).any() and not torch.isnan(grad[~nan]).any()
    assert loss[0, 0, 3, 4] == float("inf") and loss[0, 1, 0, 5] == float("inf")
    assert grad[0, 0, 3, 4] > 0 > grad[0, 1, 0, 5]
    torch.testing.assert_close(loss.double(), ref_loss, rtol=1e-5, atol=1e-6, equal_nan=True)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-5, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("kwargs,match", [
    (dict(epsilon=1e-20), "overflow fp32"),
    (dict(epsilon=1e-300), "epsilon must be"),
    (dict(alpha=1e308), "alpha must be a finite number"),
    (dict(alpha=300.0, theta=2.0), "overflow fp32"),
    (dict(theta=1e300), "theta must be a finite number"),
    (dict(omega=1e38, epsilon=0.1), "overflows fp32"),
    (dict(alpha=0.0), "alpha must be > 0"),
    (dict(alpha=-1.0), "alpha must be > 0"),
    (dict(map_weight=-1.0), "map_weight must be >= 0"),
    (dict(map_kernel=3.0), "map_kernel must be an odd integer"),
    (dict(alpha=True), "alpha must be a finite number"),
])
def test_hyper_parameters_the_fp32_maths_cannot_honour(kwargs, match):
    p = torch.rand(1, 1, 4, 4)
    with pytest.raises(ValueError, match=match):
        lk.awing_loss(p, p, **kwargs)


@pytest.mark.parametrize("device,backend", ALL)
def test_numpy_scalars_are_numbers(device, backend):
    pred, target = make_inputs((1, 2, 6, 6), device)
    loss = lk.awing_loss(pred, target, alpha=np.float32(2.1), omega=np.float64(14),
                         theta=np.float16(0.5), map_kernel=np.int64(3), map_weight=np.int32(10),
                         backend=backend)
    expected = lk.awing_loss(pred, target, alpha=float(np.float32(2.1)), backend=backend)
    assert torch.equal(loss, expected)


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 1), (2, 3, 1, 1)])
def test_one_weight_rule_for_function_and_module(shape):
    pred, target = make_inputs((2, 3, 6, 6), "cpu")
    w = torch.rand(shape)
    expected = reference.awing_loss(pred, target, target_weight=w.reshape(2, 3))
    assert_close(lk.awing_loss(pred, target, target_weight=w).detach(), expected.detach())
    module = lk.nn.AdaptiveWingLoss(use_target_weight=True, weight_map=True)
    assert_close(module(pred, target, w).detach(), expected.detach())
    assert_close(module(pred, target, target_weights=w).detach(), expected.detach())


def test_module_repr_shows_hyper_parameters():
    text = repr(lk.nn.AdaptiveWingLoss(omega=12.0, use_target_weight=True, weight_map=True))
    for part in ("alpha=2.1", "omega=12.0", "use_target_weight=True", "weight_map=True",
                 "map_kernel=3", "backend='auto'"):
        assert part in text


def test_mmengine_registry_builds_our_modules():
    """mmpose's MODELS is an mmengine Registry: a config dict builds our module from it."""
    import mmengine

    from landmark_kernels import mmpose as integration
    registry = integration.register_modules(mmengine.Registry("models"))
    loss = registry.build(dict(type="LKAdaptiveWingLoss", use_target_weight=True, omega=12.0))
    assert isinstance(loss, lk.nn.AdaptiveWingLoss) and loss.omega == 12.0
    integration.register_modules(registry)  # importing twice is harmless
    # Every public module, and nothing private (e.g. a shared base class).
    names = set(integration.modules())
    assert {"LKWingLoss", "LKPFLDLoss", "LKRelativeLocationLoss", "LKCoordConv"} <= names
    assert not [name for name in names if name.startswith("LK_")]
