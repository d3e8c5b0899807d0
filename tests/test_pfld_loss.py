"""PFLD loss (docs/coordinate_losses.md): PFLD-pytorch's numbers, then every backend against
reference.py."""

import math

import numpy as np
import pytest
import torch

import landmark_kernels as lk
from landmark_kernels import reference

from conftest import assert_close, backend_params, is_interpreted

ALL = backend_params() + [pytest.param("cpu", "torch", id="torch-cpu")]


def make_inputs(batch, device, dtype=torch.float32, *, landmarks=(98, 2), classes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(batch, *landmarks, generator=g, dtype=torch.float64)
    pred = target + 0.05 * torch.randn(batch, *landmarks, generator=g, dtype=torch.float64)
    angles_target = 0.5 * torch.randn(batch, 3, generator=g, dtype=torch.float64)
    angles = angles_target + 0.3 * torch.randn(batch, 3, generator=g, dtype=torch.float64)
    attributes = (torch.rand(batch, classes, generator=g) < 0.3).to(torch.float64)
    if classes > 1 and batch > 1:
        attributes[:, -1] = 0  # a class no sample has: weight B
        attributes[0] = 0      # a clean face: weight 0 unless weight_floor
    conv = lambda t: t.to(device, dtype)  # noqa: E731
    return (conv(pred).requires_grad_(), conv(target), conv(angles).requires_grad_(),
            conv(angles_target), conv(attributes))


def pfld_pytorch(attribute_gt, landmark_gt, euler_angle_gt, angle, landmarks, train_batchsize):
    """PFLD-pytorch's PFLDLoss.forward (pfld/loss.py), verbatim but for the .cuda() call."""
    weight_angle = torch.sum(1 - torch.cos(angle - euler_angle_gt), axis=1)
    attributes_w_n = attribute_gt[:, 1:6].float()
    mat_ratio = torch.mean(attributes_w_n, axis=0)
    mat_ratio = torch.Tensor([1.0 / (x) if x > 0 else train_batchsize for x in mat_ratio])
    weight_attribute = torch.sum(attributes_w_n.mul(mat_ratio), axis=1)
    l2_distant = torch.sum((landmark_gt - landmarks) * (landmark_gt - landmarks), axis=1)
    return torch.mean(weight_angle * weight_attribute * l2_distant), torch.mean(l2_distant)


def grads(weighted, l2, pred, angles, mix=(1.0, 0.5)):
    return torch.autograd.grad(mix[0] * weighted + mix[1] * l2, (pred, angles))


@pytest.mark.parametrize("device,backend", ALL)
def test_matches_pfld_pytorch(device, backend):
    pred, target, angles, angles_target, attributes = make_inputs(8, device, landmarks=(196,))
    attribute_gt = torch.cat([torch.ones(8, 1, device=device), attributes], dim=1)  # pose column
    expected = pfld_pytorch(attribute_gt.cpu(), target.cpu(), angles_target.cpu(),
                            angles.detach().cpu(), pred.detach().cpu(), 8)
    weighted, l2 = lk.pfld_loss(pred, target, angles, angles_target, attributes, backend=backend)
    assert_close(weighted.detach().cpu(), expected[0], what="weighted")
    assert_close(l2.detach().cpu(), expected[1], what="l2")


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("batch", [1, 3, 64, 200])
@pytest.mark.parametrize("options", [{}, dict(degrees=True), dict(weight_floor=1.0),
                                     dict(attribute_weights=True)],
                         ids=["default", "degrees", "floor", "given-weights"])
def test_matches_reference(device, backend, batch, options):
    if is_interpreted(device, backend) and batch > 64:
        pytest.skip("the Triton interpreter runs small shapes only; the GPU run covers this one")
    pred, target, angles, angles_target, attributes = make_inputs(batch, device)
    if options.get("attribute_weights"):
        options = dict(attribute_weights=torch.tensor([1.0, 2.0, 0.5, 3.0, 0.0], device=device))
    if options.get("degrees"):
        angles = (angles.detach() * 57.29577951308232).requires_grad_()
        angles_target = angles_target * 57.29577951308232
    out = lk.pfld_loss(pred, target, angles, angles_target, attributes, backend=backend,
                       **options)
    g = grads(*out, pred, angles)
    p64, a64 = pred.detach().double().requires_grad_(), angles.detach().double().requires_grad_()
    ref = reference.pfld_loss(p64, target.double(), a64, angles_target.double(),
                              attributes.double(), **{k: v.double() if torch.is_tensor(v) else v
                                                      for k, v in options.items()})
    ref_g = grads(*ref, p64, a64)
    for name, x, y in zip(("weighted", "l2", "grad pred", "grad angles"), (*out, *g),
                          (*ref, *ref_g)):
        assert_close(x.detach(), y.detach(), what=name)


@pytest.mark.parametrize("device,backend", ALL)
def test_angles_are_periodic(device, backend):
    """A full-turn error is no error: θ̂ = θ + 360° (or 2π) gives the loss of θ̂ = θ (0)."""
    pred, target, angles, angles_target, attributes = make_inputs(4, device)
    attributes[:, 0] = 1
    for degrees, turn, unit in ((False, 2 * math.pi, 1.0), (True, 360.0, 180 / math.pi)):
        angles_unit, angles_target_unit = angles.detach() * unit, angles_target * unit
        weighted, l2 = lk.pfld_loss(pred, target, angles_target_unit + turn, angles_target_unit,
                                    attributes, degrees=degrees, backend=backend)
        assert abs(weighted.item()) < 1e-4 * l2.item()
        shifted = lk.pfld_loss(pred, target, angles_unit + turn, angles_target_unit, attributes,
                               degrees=degrees, backend=backend)[0]
        plain = lk.pfld_loss(pred, target, angles_unit, angles_target_unit, attributes,
                             degrees=degrees, backend=backend)[0]
        assert shifted.item() == pytest.approx(plain.item(), rel=1e-4)


@pytest.mark.parametrize("device,backend", ALL)
def test_degrees_convert(device, backend):
    pred, target, angles, angles_target, attributes = make_inputs(4, device)
    radians = lk.pfld_loss(pred, target, angles, angles_target, attributes, backend=backend)
    degrees = lk.pfld_loss(pred, target, angles * (180 / math.pi), angles_target * (180 / math.pi),
                           attributes, degrees=True, backend=backend)
    assert_close(degrees[0].detach(), radians[0].detach(), what="weighted")


@pytest.mark.parametrize("device,backend", ALL)
def test_clean_faces_and_weight_floor(device, backend):
    """Upstream: a face with none of the classes has weight 0, so its landmarks get no gradient
    from `weighted`; weight_floor=1 trains it."""
    pred, target, angles, angles_target, attributes = make_inputs(4, device)
    assert attributes[0].sum() == 0
    (grad,) = torch.autograd.grad(
        lk.pfld_loss(pred, target, angles, angles_target, attributes, backend=backend)[0], pred)
    assert torch.all(grad[0] == 0) and torch.any(grad[1:] != 0)
    (grad,) = torch.autograd.grad(lk.pfld_loss(pred, target, angles, angles_target, attributes,
                                               weight_floor=1.0, backend=backend)[0], pred)
    assert torch.any(grad[0] != 0)


@pytest.mark.parametrize("device,backend", ALL)
def test_untrained_l2_adds_nothing_to_an_infinite_error(device, backend):
    """Training `weighted` alone: an infinite landmark error gets the reference's infinite
    gradient, not ∞ + 0·∞ = NaN from l2's (unused) gradient."""
    pred, target, angles, angles_target, attributes = make_inputs(4, device)
    pred = pred.detach().clone()
    pred[1, 0, 0] = math.inf
    pred.requires_grad_()
    attributes = torch.ones_like(attributes)  # W_b > 0 for every face
    (grad,) = torch.autograd.grad(lk.pfld_loss(pred, target, angles, angles_target, attributes,
                                               backend=backend)[0], pred)
    (expected,) = torch.autograd.grad(reference.pfld_loss(pred, target, angles, angles_target,
                                                          attributes)[0], pred)
    assert grad[1, 0, 0] == math.inf and expected[1, 0, 0] == math.inf
    torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device,backend", ALL)
def test_attribute_dtypes_and_class_weights(device, backend):
    """Attributes may be bool/int; the default weights are 1/frequency, or B for an absent
    class (PFLD-pytorch), computed on the device."""
    pred, target, angles, angles_target, attributes = make_inputs(6, device)
    as_float = lk.pfld_loss(pred, target, angles, angles_target, attributes, backend=backend)
    as_bool = lk.pfld_loss(pred, target, angles, angles_target, attributes.bool(),
                           backend=backend)
    assert torch.equal(as_float[0], as_bool[0])
    attrs = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(reference.pfld_attribute_weights(attrs),
                               torch.tensor([4 / 3, 4.0, 4.0], dtype=torch.float64))


@pytest.mark.parametrize("device,backend", ALL)
def test_gradcheck_fp64(device, backend):
    pred, target, angles, angles_target, attributes = make_inputs(3, device, torch.float64,
                                                                  landmarks=(4, 2))
    for kw in ({}, dict(weight_floor=0.5, degrees=True)):
        assert torch.autograd.gradcheck(
            lambda p, a: lk.pfld_loss(p, target, a, angles_target, attributes, backend=backend,
                                      **kw), (pred, angles))


@pytest.mark.parametrize("device,backend", backend_params())
def test_opcheck(device, backend):
    op = torch.ops.landmark_kernels.pfld_loss_triton if backend == "triton" else \
        torch.ops.landmark_kernels.pfld_loss
    for dtype in (torch.float32, torch.float16):
        pred, target, angles, angles_target, attributes = make_inputs(3, device, dtype,
                                                                      landmarks=(4, 2))
        weights = torch.rand(5, device=device, dtype=dtype)
        for w, degrees, floor in ((None, False, 0.0), (weights, True, 0.5)):
            torch.library.opcheck(op, (pred, target, angles, angles_target, attributes, w,
                                       degrees, floor, True))
        torch.library.opcheck(op, (pred.detach(), target, angles.detach(), angles_target,
                                   attributes, None, False, 0.0, False))


@pytest.mark.parametrize("device,backend", ALL)
def test_torch_compile_fullgraph(device, backend):
    torch._dynamo.reset()
    fn = torch.compile(lambda *a: lk.pfld_loss(*a, backend=backend), fullgraph=True,
                       dynamic=True)
    for batch in (3, 5):
        inputs = make_inputs(batch, device, landmarks=(7, 2))
        out = fn(*inputs)
        g = grads(*out, inputs[0], inputs[2])
        eager = lk.pfld_loss(*inputs, backend=backend)
        eager_g = grads(*eager, inputs[0], inputs[2])
        for x, y in zip((*out, *g), (*eager, *eager_g)):
            assert_close(x.detach(), y.detach())


@pytest.mark.parametrize("device,backend", ALL)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(device, backend, dtype):
    pred, target, angles, angles_target, attributes = make_inputs(6, device, dtype)
    out = lk.pfld_loss(pred, target, angles, angles_target, attributes, backend=backend)
    assert out[0].dtype == torch.float32
    g = grads(*out, pred, angles)
    assert g[0].dtype == dtype and g[1].dtype == dtype
    p64, a64 = pred.detach().double().requires_grad_(), angles.detach().double().requires_grad_()
    ref = reference.pfld_loss(p64, target.double(), a64, angles_target.double(),
                              attributes.double())
    ref_g = grads(*ref, p64, a64)
    for x, y in zip((*out, *g), (*ref, *ref_g)):
        assert_close(x.detach(), y, dtype=dtype)


@pytest.mark.parametrize("device,backend", ALL)
def test_autocast(device, backend):
    pred, target, angles, angles_target, attributes = make_inputs(4, device)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        out = lk.pfld_loss(pred.bfloat16(), target, angles, angles_target, attributes,
                           backend=backend)
    assert out[0].dtype == torch.float32 and torch.isfinite(out[0])


@pytest.mark.parametrize("device,backend", ALL)
def test_empty_batch(device, backend):
    pred, target, angles, angles_target, attributes = make_inputs(0, device)
    weighted, l2 = lk.pfld_loss(pred, target, angles, angles_target, attributes, backend=backend)
    (weighted + l2).backward()
    assert weighted.item() == 0.0 and l2.item() == 0.0 and pred.grad.shape == pred.shape


@pytest.mark.parametrize("device,backend", backend_params())
def test_bitwise_deterministic(device, backend):
    batch = 40 if is_interpreted(device, backend) else 400
    inputs = make_inputs(batch, device)
    first = lk.pfld_loss(*inputs, backend=backend)
    first_g = grads(*first, inputs[0], inputs[2])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        second = lk.pfld_loss(*inputs, backend=backend)
        second_g = grads(*second, inputs[0], inputs[2])
    finally:
        torch.set_num_threads(threads)
    for x, y in zip((*first, *first_g), (*second, *second_g)):
        assert torch.equal(x, y)


@pytest.mark.parametrize("device,backend", backend_params())
def test_no_gradient_to_targets(device, backend):
    pred, target, angles, angles_target, attributes = make_inputs(3, device)
    target.requires_grad_()
    angles_target.requires_grad_()
    sum(lk.pfld_loss(pred, target, angles, angles_target, attributes, backend=backend)).backward()
    assert pred.grad is not None and angles.grad is not None
    assert target.grad is None and angles_target.grad is None


@pytest.mark.parametrize("device,backend", backend_params())
def test_double_backward_raises(device, backend):
    pred, target, angles, angles_target, attributes = make_inputs(3, device)
    weighted, _ = lk.pfld_loss(pred, target, angles, angles_target, attributes, backend=backend)
    with pytest.raises(RuntimeError, match="do not support double backward"):
        torch.autograd.grad(weighted, pred, create_graph=True)


def test_numpy_scalar_floor():
    inputs = make_inputs(3, "cpu")
    a = lk.pfld_loss(*inputs, weight_floor=np.float32(0.5))[0]
    b = lk.pfld_loss(*inputs, weight_floor=0.5)[0]
    assert torch.equal(a, b)


BAD = [
    (dict(pred=torch.rand(4)), ValueError, "pred must have at least 2 dimensions"),
    (dict(pred=torch.ones(4, 6, dtype=torch.int32)), TypeError, "pred must be a floating"),
    (dict(target=torch.rand(4, 5)), ValueError, "target must have the shape of pred"),
    (dict(angles=torch.rand(3, 3)), ValueError, "angles must have the batch size of pred"),
    (dict(angles=torch.rand(4)), ValueError, "angles must have 2 dimensions"),
    (dict(angles_target=torch.rand(4, 2)), ValueError, "angles_target must have the shape"),
    (dict(attributes=torch.rand(5, 5)), ValueError, "attributes must have the batch size"),
    (dict(attributes=torch.rand(4, 2000)), ValueError, "at most 1024 classes"),
    (dict(attribute_weights=torch.rand(3)), ValueError, r"attribute_weights must be \(C,\)"),
    (dict(weight_floor=-1.0), ValueError, "weight_floor must be >= 0"),
    (dict(weight_floor=float("nan")), ValueError, "weight_floor must be"),
    (dict(degrees=1), TypeError, "degrees must be a bool"),
    (dict(target=torch.rand(4, 6, device="meta")), ValueError, "target is on meta"),
]


@pytest.mark.parametrize("kwargs,error,match", BAD)
def test_bad_input_raises_naming_the_argument(kwargs, error, match):
    args = dict(pred=torch.rand(4, 6), target=torch.rand(4, 6), angles=torch.rand(4, 3),
                angles_target=torch.rand(4, 3), attributes=torch.rand(4, 5))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        lk.pfld_loss(args.pop("pred"), args.pop("target"), args.pop("angles"),
                     args.pop("angles_target"), args.pop("attributes"), **args)


@pytest.mark.parametrize("backend", ["cpu", "triton"])
@pytest.mark.parametrize("kwargs,error,match", [b for b in BAD if "degrees" not in b[0]])
def test_raw_op_checks_its_arguments(backend, kwargs, error, match):
    op = torch.ops.landmark_kernels.pfld_loss_triton if backend == "triton" else \
        torch.ops.landmark_kernels.pfld_loss
    args = dict(pred=torch.rand(4, 6), target=torch.rand(4, 6), angles=torch.rand(4, 3),
                angles_target=torch.rand(4, 3), attributes=torch.rand(4, 5),
                attribute_weights=None, degrees=False, weight_floor=0.0)
    args.update(kwargs)
    with pytest.raises((RuntimeError, ValueError, TypeError), match=list(kwargs)[0]):
        op(*args.values(), True)  # C++ TORCH_CHECK or the Python check: both name it
