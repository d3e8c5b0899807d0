"""Tests shared by the coordinate losses (Wing, SoftWing, ACR): one kernel family, one suite.

Each tests/test_<op>.py defines a `case` fixture returning its `CoordCase` and star-imports the
`test_*` functions below, which pytest then collects there, parametrised over the backends.
"""

import dataclasses
import math
from typing import Callable

import numpy as np
import pytest
import torch

import landmark_kernels as lk
from landmark_kernels import reference

from conftest import assert_close, backend_params, is_interpreted

CODES = {"none": 0, "mean": 1, "sum": 2, "batchmean": 3}
SHAPES = [(1, 1, 1), (1, 1, 3), (3, 7, 3), (4, 98, 2), (64, 98, 2)]
SMALL_SHAPES = SHAPES[:4]
ALL_BACKENDS = backend_params() + [pytest.param("cpu", "torch", id="torch-cpu")]


@dataclasses.dataclass
class CoordCase:
    name: str                    # the op: landmark_kernels::<name>, lk.<name>
    params: dict                 # hyper-parameters, in the order of the op schema
    error_scale: float           # |pred − target| spans the loss's branches at this scale
    kinks: tuple                 # δ where the loss is not differentiable besides 0
    aux: str = "target_weight"   # the optional per-element tensor: target_weight or phi
    default_reduction: str = "batchmean"
    public: Callable = None
    ref: Callable = None

    def __post_init__(self):
        self.public = getattr(lk, self.name)
        self.ref = getattr(reference, self.name)

    @property
    def aux_kinds(self):
        return ("element", "landmark", "landmark1") if self.aux == "phi" else \
            ("none", "element", "landmark", "landmark1")

    def call(self, pred, target, aux=None, *, fn=None, **kw):
        """The public function (or `fn`, e.g. the reference) with this op's aux convention."""
        fn = fn or self.public
        kw = {**self.params, **kw}
        if self.aux == "phi":
            return fn(pred, target, aux, **kw)
        return fn(pred, target, target_weight=aux, **kw)

    def op(self, backend):
        ops = torch.ops.landmark_kernels
        return getattr(ops, self.name + "_triton" if backend == "triton" else self.name)

    def op_args(self, pred, target, aux, reduction, compute_grad, **params):
        return (pred, target, aux, *{**self.params, **params}.values(), reduction, compute_grad)


def make_inputs(case, shape, device, dtype=torch.float32, seed=0):
    """pred = target + errors over all branches (|error| up to ~2.5 error_scale), some exact."""
    g = torch.Generator().manual_seed(seed)
    target = 50 * torch.rand(shape, generator=g, dtype=torch.float64)
    err = case.error_scale * torch.randn(shape, generator=g, dtype=torch.float64)
    err.view(-1)[::5] = 0.0  # δ = 0: the subgradient
    pred = target + err
    return pred.to(device, dtype).requires_grad_(), target.to(device, dtype)


def make_aux(case, kind, shape, device, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    if kind == "none":
        return None
    b, n, d = shape
    size = {"element": (b, n, d), "landmark": (b, n), "landmark1": (b, n, 1)}[kind]
    aux = torch.rand(size, generator=g, dtype=torch.float64)
    if case.aux == "phi":
        aux.view(-1)[::4] = 1.0  # Φ = 1: exponent 1, a kink at 0
        aux.view(-1)[1::4] = 0.0
    else:
        aux.view(-1)[::3] = 0.0  # invisible landmarks
    return aux.to(device, dtype)


def loss_and_grad(case, pred, target, aux=None, **kw):
    loss = case.call(pred, target, aux, **kw)
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    return loss.detach(), grad


def reference_loss_and_grad(case, pred, target, aux=None, **kw):
    p64 = pred.detach().double().requires_grad_()
    aux = None if aux is None else aux.double()
    return loss_and_grad(case, p64, target.double(), aux, backend="torch", **kw)


def grad_unit(reduction, pred):
    """Compare gradients at unit scale: mean/batchmean divide by numel / B."""
    return {"mean": max(pred.numel(), 1), "batchmean": max(pred.shape[0], 1)}.get(reduction, 1)


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum", "none"])
def test_matches_reference(case, device, backend, shape, reduction):
    if is_interpreted(device, backend) and shape not in SMALL_SHAPES:
        pytest.skip("the Triton interpreter runs small shapes only; the GPU run covers this one")
    for kind in case.aux_kinds:
        pred, target = make_inputs(case, shape, device)
        aux = make_aux(case, kind, shape, device)
        loss, grad = loss_and_grad(case, pred, target, aux, reduction=reduction, backend=backend)
        ref_loss, ref_grad = reference_loss_and_grad(case, pred, target, aux, reduction=reduction)
        assert loss.dtype == torch.float32 and loss.shape == ref_loss.shape
        assert_close(loss, ref_loss, what=f"loss ({kind})")
        unit = grad_unit(reduction, pred)
        assert grad.dtype == pred.dtype
        assert_close(grad * unit, ref_grad * unit, what=f"grad ({kind})")


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
def test_default_reduction(case, device, backend):
    pred, target = make_inputs(case, (3, 4, 2), device)
    aux = make_aux(case, case.aux_kinds[0], (3, 4, 2), device)
    loss = case.call(pred, target, aux, backend=backend)
    per_element = case.call(pred, target, aux, backend=backend, reduction="none")
    divisor = {"batchmean": 3, "mean": 24}[case.default_reduction]
    assert_close(loss, per_element.sum() / divisor, what="loss")


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
def test_gradcheck_fp64(case, device, backend):
    shape = (2, 3, 2)
    pred, target = make_inputs(case, shape, device, torch.float64)
    # Every error off the kinks (0 and the branch thresholds), where finite differences fail.
    g = torch.Generator().manual_seed(3)
    err = case.error_scale * (0.1 + 2 * torch.rand(shape, generator=g, dtype=torch.float64))
    err = err * torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0).double()
    for kink in case.kinks:
        err = torch.where((err.abs() - kink).abs() < 1e-3, err * 1.1, err)
    pred = (target + err.to(device)).requires_grad_()
    for kind in case.aux_kinds[:2]:
        aux = make_aux(case, kind, shape, device, torch.float64)
        for reduction in ("batchmean", "none"):
            assert torch.autograd.gradcheck(
                lambda p: case.call(p, target, aux, reduction=reduction, backend=backend),
                (pred,))


@pytest.mark.parametrize("device,backend", backend_params())
def test_opcheck(case, device, backend):
    op = case.op(backend)
    shape = (2, 3, 2)
    for dtype in (torch.float32, torch.float16):
        pred, target = make_inputs(case, shape, device, dtype)
        for kind in case.aux_kinds[:2]:
            aux = make_aux(case, kind, shape, device, dtype)
            for reduction in (0, 1, 2, 3):
                torch.library.opcheck(op, case.op_args(pred, target, aux, reduction, True))
    torch.library.opcheck(op, case.op_args(pred.detach(), target, aux, 1, False))


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
def test_torch_compile_fullgraph(case, device, backend):
    torch._dynamo.reset()
    fn = torch.compile(lambda p, t, a: case.call(p, t, a, backend=backend), fullgraph=True,
                       dynamic=True)
    for shape in ((2, 5, 2), (3, 4, 2)):  # a second shape exercises dynamic=True
        pred, target = make_inputs(case, shape, device)
        aux = make_aux(case, "landmark", shape, device)
        loss = fn(pred, target, aux)
        (grad,) = torch.autograd.grad(loss, pred)
        eager_loss, eager_grad = loss_and_grad(case, pred, target, aux, backend=backend)
        assert_close(loss.detach(), eager_loss, what="loss")
        assert_close(grad, eager_grad, what="grad")


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["batchmean", "mean"])
def test_half_precision(case, device, backend, dtype, reduction):
    shape = (4, 9, 2)
    pred, target = make_inputs(case, shape, device, dtype)
    aux = make_aux(case, "landmark", shape, device, dtype)
    loss, grad = loss_and_grad(case, pred, target, aux, backend=backend, reduction=reduction)
    ref_loss, ref_grad = reference_loss_and_grad(case, pred, target, aux, reduction=reduction)
    assert loss.dtype == torch.float32 and grad.dtype == dtype
    assert_close(loss, ref_loss, dtype=dtype, what="loss")
    unit = grad_unit(reduction, pred)
    assert_close(grad.float() * unit, ref_grad * unit, dtype=dtype, what="grad")


@pytest.mark.parametrize("device,backend", backend_params())
def test_fp16_gradient_finite_under_a_loss_scale(case, device, backend):
    """fp16 "mean" over many elements, times a GradScaler-sized grad_output: the exact gradient
    is stored in fp32, so nothing overflows or flushes before the one final rounding."""
    shape = (8, 98, 2) if is_interpreted(device, backend) else (256, 98, 2)
    pred, target = make_inputs(case, shape, device, torch.float16)
    loss = case.call(pred, target, None if case.aux != "phi" else
                     make_aux(case, "element", shape, device, torch.float16),
                     backend=backend, reduction="mean")
    (grad,) = torch.autograd.grad(loss * 65536.0, pred)
    assert torch.isfinite(grad).all()
    ref = (grad.float() != 0).float().mean()
    assert ref > 0.5  # most of the scaled gradient survives in fp16


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
def test_gradient_at_zero_error_is_zero(case, device, backend):
    target = torch.tensor([[[0.0, 1.5], [2.0, -3.0]]], device=device)
    pred = target.clone().requires_grad_()
    aux = torch.tensor([[[1.0, 0.5], [0.0, 1.0]]], device=device) if case.aux == "phi" else None
    loss, grad = loss_and_grad(case, pred, target, aux, backend=backend, reduction="sum")
    assert loss.item() == 0.0
    assert torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
def test_nan_propagates_to_its_element(case, device, backend):
    """NaN in pred or target gives NaN loss and gradient at that element only (all backends)."""
    pred, target = make_inputs(case, (2, 3, 2), device)
    pred = pred.detach().clone()
    pred[0, 1, 0] = float("nan")
    target = target.clone()
    target[1, 2, 1] = float("nan")
    pred.requires_grad_()
    aux = make_aux(case, "element", (2, 3, 2), device) if case.aux == "phi" else None
    loss, grad = loss_and_grad(case, pred, target, aux, backend=backend, reduction="none")
    nan = torch.zeros_like(loss, dtype=torch.bool)
    nan[0, 1, 0] = nan[1, 2, 1] = True
    assert torch.equal(loss.isnan(), nan) and torch.equal(grad.isnan(), nan)


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum"])
@pytest.mark.parametrize("shape", [(0, 98, 2), (4, 0, 2)], ids=["B=0", "N=0"])
def test_empty(case, device, backend, reduction, shape):
    pred = torch.zeros(shape, device=device, requires_grad=True)
    aux = torch.zeros(shape, device=device) if case.aux == "phi" else None
    loss = case.call(pred, torch.zeros_like(pred), aux, reduction=reduction, backend=backend)
    loss.backward()
    assert loss.item() == 0.0 and pred.grad.shape == pred.shape


@pytest.mark.parametrize("device,backend", backend_params())
def test_bitwise_deterministic(case, device, backend):
    # More than one chunk / program, so that the two-stage reductions are exercised.
    shape = (90, 98, 2) if is_interpreted(device, backend) else (300, 98, 2)
    pred, target = make_inputs(case, shape, device)
    aux = make_aux(case, "landmark", shape, device)
    first = loss_and_grad(case, pred, target, aux, backend=backend, reduction="mean")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # the CPU reduction must not depend on the thread count
        second = loss_and_grad(case, pred, target, aux, backend=backend, reduction="mean")
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    ref_loss, _ = reference_loss_and_grad(case, pred, target, aux, reduction="mean")
    assert_close(first[0], ref_loss, what="loss")


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
def test_autocast_mixed_dtypes(case, device, backend):
    """The AMP pattern: a bf16 prediction from a Linear layer, fp32 target (and aux)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 16, generator=g).to(device)
    linear = torch.nn.Linear(16, 10).to(device)
    target = (3 * torch.randn(4, 5, 2, generator=g)).to(device)
    aux = make_aux(case, "landmark", (4, 5, 2), device)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        pred = linear(x).view(4, 5, 2)
        assert pred.dtype == torch.bfloat16
        loss = case.call(pred, target, aux, backend=backend)
    assert loss.dtype == torch.float32
    loss.backward()
    assert linear.weight.grad is not None and torch.isfinite(linear.weight.grad).all()
    ref = case.call(pred.detach().float(), target, aux, fn=case.ref)
    assert_close(loss.detach(), ref, what="loss")


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
def test_non_contiguous(case, device, backend):
    pred, target = make_inputs(case, (3, 5, 2), device)
    aux = make_aux(case, "element", (3, 5, 2), device)
    ref_loss, ref_grad = reference_loss_and_grad(case, pred, target, aux, reduction="none")
    t = lambda x: x.transpose(0, 1).contiguous().transpose(0, 1)  # noqa: E731
    p = t(pred.detach()).requires_grad_()
    loss, grad = loss_and_grad(case, p, t(target), t(aux), backend=backend, reduction="none")
    assert not p.is_contiguous()
    assert_close(loss, ref_loss, what="loss")
    assert_close(grad, ref_grad, what="grad")


@pytest.mark.parametrize("device,backend", backend_params())
def test_no_gradient_to_target_or_aux(case, device, backend):
    pred, target = make_inputs(case, (2, 3, 2), device)
    aux = make_aux(case, "element", (2, 3, 2), device)
    target.requires_grad_()
    aux.requires_grad_()
    case.call(pred, target, aux, backend=backend).backward()
    assert pred.grad is not None and target.grad is None and aux.grad is None


@pytest.mark.parametrize("device,backend", backend_params())
def test_no_gradient_buffer_without_grad(case, device, backend):
    pred, target = make_inputs(case, (2, 3, 2), device)
    aux = make_aux(case, "element", (2, 3, 2), device)
    loss, grad = case.op(backend)(*case.op_args(pred.detach(), target, aux, 1, False))
    assert grad.numel() == 0
    with torch.no_grad():
        assert case.call(pred, target, aux, backend=backend, reduction="mean").item() == \
            pytest.approx(loss.item(), rel=1e-6)


@pytest.mark.parametrize("device,backend", backend_params())
def test_retain_graph_and_double_backward(case, device, backend):
    pred, target = make_inputs(case, (2, 3, 2), device)
    loss = case.call(pred, target, make_aux(case, "element", (2, 3, 2), device),
                     backend=backend)
    (first,) = torch.autograd.grad(loss * 3.0, pred, retain_graph=True)
    (second,) = torch.autograd.grad(loss * 3.0, pred, retain_graph=True)
    assert torch.equal(first, second)
    with pytest.raises(RuntimeError, match="do not support double backward"):
        torch.autograd.grad(loss, pred, create_graph=True)


@pytest.mark.parametrize("device,backend", backend_params())
def test_gradient_buffer_is_never_aliased(case, device, backend):
    """The backward hands the stored gradient on as it is when grad_output is 1: accumulating
    into pred.grad, or editing it, must never change what a kept graph gives next time."""
    pred, target = make_inputs(case, (2, 3, 2), device)
    aux = make_aux(case, "element", (2, 3, 2), device)
    loss = case.call(pred, target, aux, backend=backend)
    loss.backward(retain_graph=True)
    once = pred.grad.clone()
    pred.grad.mul_(0.5)
    loss.backward(retain_graph=True)
    assert torch.equal(pred.grad, 1.5 * once)
    pred.grad = None
    loss.backward()
    assert torch.equal(pred.grad, once)


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
def test_numpy_scalars_accepted(case, device, backend):
    pred, target = make_inputs(case, (2, 3, 2), device)
    aux = make_aux(case, "element", (2, 3, 2), device)
    expected = case.call(pred, target, aux, backend=backend)
    params = {k: (np.float32(v) if i % 2 == 0 else np.int64(round(v)) if v == round(v) else
                  np.float64(v)) for i, (k, v) in enumerate(case.params.items())}
    got = case.call(pred, target, aux, backend=backend, **params)
    assert_close(got.detach(), expected.detach(), what="loss")


def bad_public_inputs(case):
    """(kwargs, error, message) for the public function: every check names the argument."""
    rows = [
        (dict(pred=torch.rand(2, 3)), ValueError, "pred must have 3 dimensions"),
        (dict(pred=torch.ones(1, 2, 2, dtype=torch.int64)), TypeError, "pred must be a floating"),
        (dict(target=torch.rand(1, 2, 3)), ValueError, "target must have the shape of pred"),
        (dict(target=torch.rand(1, 2, 2, dtype=torch.float64)), TypeError, "target has dtype"),
        (dict(target=torch.rand(1, 2, 2, device="meta")), ValueError, "target is on meta"),
        (dict(aux=torch.rand(1, 3)), ValueError,
         rf"{case.aux} must be \(B,N\) = \(1, 2\), \(B,N,1\) or \(B,N,D\) = \(1, 2, 2\) for pred "
         r"of shape \(1, 2, 2\), got \(1, 3\)"),
        (dict(aux=torch.rand(1, 2, 3)), ValueError, f"{case.aux} must be"),
        (dict(aux=torch.rand(2)), ValueError, f"{case.aux} must be"),
        (dict(aux=torch.ones(1, 2, dtype=torch.int32)), TypeError, f"{case.aux} must be a float"),
        (dict(reduction="avg"), ValueError, "reduction must be one of"),
        (dict(backend="cuda"), RuntimeError, "backend 'cuda' is not available for cpu"),
        (dict(backend="fast"), ValueError, "backend must be 'auto' or one of"),
    ]
    for name, value in case.params.items():
        zero_ok = name == "lam"
        for bad in (float("nan"), float("inf"), -1.0, 1e9, True, "1") + (() if zero_ok else (0.0,)):
            rows.append((dict(**{name: bad}), ValueError, f"{name} must be"))
    return rows


def test_bad_input_raises_naming_the_argument(case):
    for kwargs, error, match in bad_public_inputs(case):
        args = dict(pred=torch.rand(1, 2, 2), target=torch.rand(1, 2, 2),
                    aux=torch.rand(1, 2, 2) if case.aux == "phi" else None)
        args.update(kwargs)
        with pytest.raises(error, match=match):
            case.call(args.pop("pred"), args.pop("target"), args.pop("aux"), **args)


def bad_op_inputs(case):
    """(op args overrides, message) that every raw op rejects, C++ and Python checks alike."""
    p = torch.rand(2, 3, 2)
    rows = [
        (dict(pred=torch.rand(2, 3)), "pred must"),
        (dict(pred=torch.ones(2, 3, 2, dtype=torch.int32)), "pred must be a floating"),
        (dict(target=torch.rand(1, 1, 2)), "target must have the shape of pred"),
        (dict(target=p.double()), "target has dtype"),
        (dict(aux=torch.rand(0)), f"{case.aux} must be"),
        (dict(aux=torch.tensor(1.0)), f"{case.aux} must be"),
        (dict(aux=torch.rand(2, 3, 3)), f"{case.aux} must be"),
        (dict(aux=torch.rand(3, 2)), f"{case.aux} must be"),
        (dict(aux=torch.rand(2, 3).double()), f"{case.aux} has dtype"),
        (dict(reduction=-1), "reduction must be"),
        (dict(reduction=4), "reduction must be"),
        (dict(reduction=99), "reduction must be"),
    ]
    for name in case.params:
        rows.append(({name: float("nan")}, f"{name} must be"))
        rows.append(({name: -1.0}, f"{name} must be"))
        rows.append(({name: 1e300}, f"{name} must be"))
    return rows


@pytest.mark.parametrize("backend", ["cpu", "triton"])
def test_raw_op_checks_its_arguments(case, backend):
    """A direct torch.ops call gets a clear error naming the argument, never a crash or a read
    out of bounds: TORCH_CHECK in the C++ op, the Python check in the Triton op (also without
    the interpreter, where the C++ kernel stands in)."""
    op = case.op(backend)
    for overrides, match in bad_op_inputs(case):
        args = dict(pred=torch.rand(2, 3, 2), target=torch.rand(2, 3, 2),
                    aux=torch.rand(2, 3, 2), reduction=1)
        params = {k: overrides.pop(k) for k in list(overrides) if k in case.params}
        args.update(overrides)
        with pytest.raises((RuntimeError, ValueError, TypeError), match=match):
            op(*case.op_args(args["pred"], args["target"], args["aux"], args["reduction"],
                             True, **params))


@pytest.mark.parametrize("backend", ["cpu", "triton"])
def test_fake_kernel_checks_its_arguments(case, backend):
    """A meta tensor among the arguments dispatches to the fake kernel: it checks devices and
    shapes as the real kernels do instead of returning uninitialised memory."""
    op = case.op(backend)
    p = torch.rand(2, 3, 2)
    with pytest.raises(ValueError, match="target is on meta but pred is on cpu"):
        op(*case.op_args(p, torch.rand(2, 3, 2, device="meta"), torch.rand(2, 3, 2), 1, True))
    with pytest.raises(ValueError, match=f"{case.aux} is on meta but pred is on cpu"):
        op(*case.op_args(p, p, torch.rand(2, 3, 2, device="meta"), 1, True))
    m = torch.rand(2, 3, 2, device="meta")
    with pytest.raises(ValueError, match=f"{case.aux} must be"):
        op(*case.op_args(m, m, torch.rand(5, device="meta"), 1, True))
    loss, grad = op(*case.op_args(m, m, m, 0, True))
    assert loss.shape == m.shape and loss.dtype == torch.float32 and grad.shape == m.shape


@pytest.mark.parametrize("device,backend", ALL_BACKENDS)
def test_reductions_agree(case, device, backend):
    pred, target = make_inputs(case, (3, 5, 2), device)
    aux = make_aux(case, "landmark", (3, 5, 2), device)
    losses = {r: case.call(pred, target, aux, backend=backend, reduction=r).detach()
              for r in ("none", "sum", "mean", "batchmean")}
    total = losses["none"].double().sum()
    assert_close(losses["sum"], total, what="sum")
    assert_close(losses["mean"], total / 30, what="mean")
    assert_close(losses["batchmean"], total / 3, what="batchmean")
    assert math.isfinite(total.item())
