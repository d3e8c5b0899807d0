"""AWing from coordinates (docs/awing.md): every backend equals awing_loss(pred, render(coords))."""

import pytest
import torch

import landmark_kernels as lk
from landmark_kernels import reference

from conftest import assert_close, backend_params, is_interpreted

SHAPES = [(1, 1, 1, 1), (3, 5, 17, 33), (2, 99, 64, 64)]
SMALL_SHAPES = SHAPES[:2]
CPU_BACKENDS = [b for d, b in (p.values for p in backend_params()) if d == "cpu"]


def native_op(backend):
    ops = torch.ops.landmark_kernels
    return ops.awing_loss_from_coords_triton if backend == "triton" else ops.awing_loss_from_coords


def make_inputs(shape, device, dtype=torch.float32, seed=0, sigma=1.5):
    """Coordinates inside and up to 4 px outside the map, one missing landmark (NaN), and pred =
    the rendered target + noise, some pixels of the missing landmark exactly on target."""
    g = torch.Generator().manual_seed(seed)
    b, k, h, w = shape
    u = torch.rand(b, k, 2, generator=g, dtype=torch.float64)
    coords = torch.stack((-4 + u[..., 0] * (w + 7), -4 + u[..., 1] * (h + 7)), dim=-1)
    if b * k > 1:
        coords[0, -1, 1] = float("nan")
    target = reference.render_gaussian_heatmaps(coords, h, w, sigma)
    # |δ| ≥ 0.02: the gradient ∝ δ^(α−y−1) turns the one-ulp difference between two fp32
    # renderings of the target (any two implementations) into 1e-5·(0.02/|δ|) relative error.
    noise = 0.3 * torch.randn(shape, generator=g, dtype=torch.float64)
    pred = target + torch.where(noise < 0, noise - 0.02, noise + 0.02)
    # δ = 0 exactly only where every backend's target is exact (0 for the missing landmark):
    # elsewhere an fp32 target one ulp off turns the gradient ∝ δ^(α−y−1) at δ = 0 into ~0.1.
    exact = torch.zeros_like(target, dtype=torch.bool)
    exact.view(-1)[::7] = True
    exact &= target == 0
    pred[exact] = target[exact]
    return pred.to(device, dtype).requires_grad_(), coords.to(device, torch.float32)


def make_weight(kind, shape, device, dtype=torch.float32):
    if kind == "none":
        return None
    g = torch.Generator().manual_seed(1)
    w = torch.rand(shape[:2], generator=g, dtype=torch.float64)
    w.view(-1)[::3] = 0.0
    if kind == "signed":
        w.view(-1)[1::4] *= -1.0
    return w.to(device, dtype)


def sigma_of(kind, channels):
    return 1.5 if kind == "scalar" else torch.linspace(0.7, 3.0, channels, dtype=torch.float64)


def loss_and_grad(fn, pred, *args, **kw):
    loss = fn(pred, *args, **kw)
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    return loss.detach(), grad


def reference_loss_and_grad(pred, coords, sigma, target_weight=None, **kw):
    """The rendered path in fp64: awing_loss(pred, render_gaussian_heatmaps(coords)) ."""
    p64 = pred.detach().double().requires_grad_()
    tw = None if target_weight is None else target_weight.double()
    target = reference.render_gaussian_heatmaps(coords.double(), *pred.shape[-2:], sigma)
    return loss_and_grad(lk.awing_loss, p64, target, target_weight=tw, backend="torch", **kw)


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weight_kind", ["none", "channel", "signed"])
@pytest.mark.parametrize("weight_map", [True, False])
@pytest.mark.parametrize("sigma_kind", ["scalar", "channel"])
def test_matches_rendered_path(device, backend, shape, reduction, weight_kind, weight_map,
                               sigma_kind):
    if is_interpreted(device, backend) and shape not in SMALL_SHAPES:
        pytest.skip("the Triton interpreter runs small shapes only; the GPU run covers this one")
    sigma = sigma_of(sigma_kind, shape[1])
    pred, coords = make_inputs(shape, device, sigma=sigma)
    kw = dict(reduction=reduction, weight_map=weight_map,
              target_weight=make_weight(weight_kind, shape, device))
    loss, grad = loss_and_grad(lk.awing_loss_from_coords, pred, coords, sigma, backend=backend,
                               **kw)
    ref_loss, ref_grad = reference_loss_and_grad(pred, coords, sigma, **kw)
    assert loss.dtype == torch.float32 and loss.shape == ref_loss.shape
    assert_close(loss, ref_loss, what="loss")
    assert_close(grad, ref_grad, what="grad")


@pytest.mark.parametrize("device,backend", backend_params(("cpu", "cuda", "triton")))
@pytest.mark.parametrize("map_kernel,map_threshold", [(1, 0.2), (5, 0.05), (7, 0.5), (3, -1.0)])
def test_map_parameters(device, backend, map_kernel, map_threshold):
    pred, coords = make_inputs((2, 3, 12, 10), device, sigma=2.0)
    kw = dict(map_kernel=map_kernel, map_threshold=map_threshold, map_weight=4.0,
              reduction="none")
    loss, grad = loss_and_grad(lk.awing_loss_from_coords, pred, coords, 2.0, backend=backend,
                               **kw)
    ref_loss, ref_grad = reference_loss_and_grad(pred, coords, 2.0, **kw)
    assert_close(loss, ref_loss, what="loss")
    assert_close(grad, ref_grad, what="grad")


@pytest.mark.parametrize("device,backend", backend_params())
def test_equals_rendered_path_same_backend(device, backend):
    """The issue's contract, literally: the public rendered path on the same backend."""
    pred, coords = make_inputs((2, 4, 16, 12), device)
    tw = make_weight("channel", pred.shape, device)
    loss, grad = loss_and_grad(lk.awing_loss_from_coords, pred, coords, 1.5, target_weight=tw,
                               backend=backend)
    target = lk.render_gaussian_heatmaps(coords, 16, 12, 1.5)
    ref_loss, ref_grad = loss_and_grad(lk.awing_loss, pred, target, target_weight=tw,
                                       backend=backend)
    assert_close(loss, ref_loss, what="loss")
    assert_close(grad, ref_grad, what="grad")


@pytest.mark.parametrize("device,backend", backend_params())
def test_missing_landmarks_masked(device, backend):
    """NaN coordinates with target_weight 0 contribute nothing, as in the rendered path."""
    pred, coords = make_inputs((2, 3, 9, 8), device)
    coords[1, 0] = float("nan")
    tw = torch.ones(2, 3, device=device)
    tw[0, 2] = tw[1, 0] = 0.0
    loss, grad = loss_and_grad(lk.awing_loss_from_coords, pred, coords, 1.5, target_weight=tw,
                               backend=backend, reduction="none")
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    assert (loss[0, 2] == 0).all() and (loss[1, 0] == 0).all() and (grad[1, 0] == 0).all()
    ref_loss, ref_grad = reference_loss_and_grad(pred, coords, 1.5, target_weight=tw,
                                                 reduction="none")
    assert_close(loss, ref_loss, what="loss")
    assert_close(grad, ref_grad, what="grad")


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("sigma_kind", ["scalar", "channel"])
def test_gradcheck_fp64(device, backend, sigma_kind):
    sigma = sigma_of(sigma_kind, 3)
    pred, coords = make_inputs((2, 3, 6, 5), device, dtype=torch.float64, sigma=sigma)
    tw = make_weight("channel", pred.shape, device, torch.float64)
    fn = lambda p: lk.awing_loss_from_coords(p, coords.double(), sigma, target_weight=tw,  # noqa: E731
                                             backend=backend)
    assert torch.autograd.gradcheck(fn, (pred,), eps=1e-6, atol=1e-6)
    assert_close(fn(pred), reference.awing_loss_from_coords(pred, coords.double(), sigma,
                                                           target_weight=tw),
                 dtype=torch.float64)


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(device, backend, dtype):
    pred, coords = make_inputs((2, 3, 16, 12), device)
    pred = pred.detach().to(dtype).requires_grad_()
    loss, grad = loss_and_grad(lk.awing_loss_from_coords, pred, coords, 1.5, backend=backend)
    ref_loss, ref_grad = reference_loss_and_grad(pred, coords, 1.5)
    assert loss.dtype == torch.float32 and grad.dtype == dtype
    assert_close(loss, ref_loss, dtype=dtype, what="loss")
    assert_close(grad.float(), ref_grad, dtype=dtype, what="grad")


@pytest.mark.parametrize("device,backend", backend_params())
def test_bitwise_deterministic(device, backend):
    pred, coords = make_inputs((3, 5, 17, 33), device)
    first = loss_and_grad(lk.awing_loss_from_coords, pred, coords, 1.5, backend=backend)
    second = loss_and_grad(lk.awing_loss_from_coords, pred, coords, 1.5, backend=backend)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.parametrize("device,backend", backend_params())
def test_opcheck(device, backend):
    op = native_op(backend)
    pred, coords = make_inputs((2, 3, 5, 6), device)
    sigma = torch.tensor([1.0, 1.5, 2.0], device=device)
    weight = make_weight("channel", pred.shape, device)
    for reduction in (0, 1, 2):
        for tw in (None, weight):
            torch.library.opcheck(op, (pred, coords, sigma, tw, 2.1, 14.0, 1.0, 0.5, 10.0, 0.2,
                                       3, reduction, True))
    torch.library.opcheck(op, (pred.detach(), coords, sigma, None, 2.1, 14.0, 1.0, 0.5, 0.0,
                               0.2, 1, 1, False))


@pytest.mark.parametrize("device,backend", backend_params())
def test_torch_compile_fullgraph(device, backend):
    torch._dynamo.reset()
    fn = torch.compile(lambda p, c, w: lk.awing_loss_from_coords(p, c, 1.5, target_weight=w,
                                                                 backend=backend),
                       fullgraph=True, dynamic=True)
    for shape in ((2, 3, 8, 9), (3, 2, 11, 7)):
        pred, coords = make_inputs(shape, device)
        tw = make_weight("channel", shape, device)
        loss = fn(pred, coords, tw)
        (grad,) = torch.autograd.grad(loss, pred)
        eager = loss_and_grad(lk.awing_loss_from_coords, pred, coords, 1.5, target_weight=tw,
                              backend=backend)
        assert torch.equal(loss.detach(), eager[0]) and torch.equal(grad, eager[1])


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("stacked", [True, False])
def test_multi_stage(device, backend, stacked):
    """(S,B,K,H,W) or a list of S stages: the sum of the per-stage losses, grads to each."""
    preds = [make_inputs((2, 3, 7, 6), device, seed=s)[0] for s in range(3)]
    _, coords = make_inputs((2, 3, 7, 6), device)
    pred = torch.stack(preds) if stacked else preds
    loss = lk.awing_loss_from_coords(pred, coords, 1.5, backend=backend)
    grads = torch.autograd.grad(loss, preds)
    for p, g in zip(preds, grads):
        ref_loss, ref_grad = loss_and_grad(lk.awing_loss_from_coords, p, coords, 1.5,
                                           backend=backend)
        assert_close(g, ref_grad, what="grad")
    expected = sum(lk.awing_loss_from_coords(p, coords, 1.5, backend=backend) for p in preds)
    assert_close(loss.detach(), expected.detach(), what="loss")
    assert_close(reference.awing_loss_from_coords(pred, coords, 1.5).detach(),
                 expected.detach(), what="reference")


def test_reference_multi_stage_weights():
    preds = [make_inputs((1, 2, 5, 5), "cpu", seed=s)[0] for s in range(2)]
    _, coords = make_inputs((1, 2, 5, 5), "cpu")
    loss = reference.awing_loss_from_coords(preds, coords, 1.5, stage_weights=(0.5, 2.0))
    expected = sum(w * reference.awing_loss_from_coords(p, coords, 1.5)
                   for w, p in zip((0.5, 2.0), preds))
    assert_close(loss.detach(), expected.detach())


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(pred=torch.rand(2, 3, 4)), ValueError, "pred must have 4 dimensions"),
    (dict(coords=torch.rand(1, 1, 3)), ValueError, "coords must be"),
    (dict(coords=torch.rand(1, 2, 2)), ValueError, "coords must be"),
    (dict(coords=torch.ones(1, 1, 2, dtype=torch.int64)), TypeError, "coords must be a floating"),
    (dict(coords=torch.rand(1, 1, 2, device="meta")), ValueError, "coords is on meta"),
    (dict(sigma=0.0), ValueError, "sigma must be > 0"),
    (dict(sigma=float("nan")), ValueError, "sigma must be a finite"),
    (dict(sigma=torch.tensor([1.0, 2.0])), ValueError, "sigma must be"),
    (dict(sigma=torch.tensor([-1.0])), ValueError, "sigma must be finite and > 0"),
    (dict(theta=0.0), ValueError, "theta must be > 0"),
    (dict(map_kernel=4), ValueError, "map_kernel must be an odd integer"),
    (dict(reduction="batchmean"), ValueError, "reduction must be one of"),
    (dict(target_weight=torch.rand(1, 2)), ValueError, "target_weight must be"),
    (dict(target_weight=torch.rand(1, 1, 2, 2)), ValueError, "target_weight must"),
    (dict(backend="cuda"), RuntimeError, "backend 'cuda' is not available for cpu"),
])
def test_bad_input_raises_naming_the_argument(kwargs, error, match):
    args = dict(pred=torch.rand(1, 1, 2, 2), coords=torch.rand(1, 1, 2), sigma=1.0)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        lk.awing_loss_from_coords(args.pop("pred"), args.pop("coords"), args.pop("sigma"),
                                  **args)


RAW = (2.1, 14.0, 1.0, 0.5, 10.0, 0.2, 3, 1, True)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("pred,coords,sigma,weight,cdtype,match", [
    ((2, 3, 4, 4), (2, 3, 2), (3,), (2, 3, 4, 4), torch.float32, "target_weight must"),
    ((2, 3, 4, 4), (2, 3, 2), (3,), (3,), torch.float32, "target_weight must"),
    ((2, 3, 4, 4), (2, 3), (3,), None, torch.float32, "coords must"),
    ((2, 3, 4, 4), (2, 2, 2), (3,), None, torch.float32, "coords must"),
    ((2, 3, 4, 4), (2, 3, 2), (2,), None, torch.float32, "sigma must be"),
    ((2, 3, 4, 4), (2, 3, 2), (), None, torch.float32, "sigma must"),
    ((2, 3, 4, 4), (2, 3, 2), (3,), None, torch.float16, "coords must have dtype"),
    ((2, 3, 4), (2, 3, 2), (3,), None, torch.float32, "pred must have 4 dimensions"),
])
def test_raw_op_checks(backend, pred, coords, sigma, weight, cdtype, match):
    op = native_op(backend)
    weight = None if weight is None else torch.rand(weight)
    with pytest.raises((ValueError, TypeError, RuntimeError), match=match):
        op(torch.rand(pred), torch.rand(coords, dtype=cdtype), torch.ones(sigma), weight, *RAW)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_raw_op_checks_hyper_parameters(backend):
    op = native_op(backend)
    args = (torch.rand(1, 1, 4, 4), torch.rand(1, 1, 2), torch.ones(1), None)
    for changes, match in (({6: 4}, "map_kernel must be"), ({7: 3}, "reduction must be"),
                           ({0: -1.0}, "alpha must be")):
        raw = list(RAW)
        for i, v in changes.items():
            raw[i] = v
        with pytest.raises((ValueError, RuntimeError), match=match):
            op(*args, *raw)
    with pytest.raises((ValueError, RuntimeError), match="coords is on meta"):
        op(args[0], args[1].to("meta"), args[2], None, *RAW)
    # A meta pred reaches the fake kernel, which runs the same checks.
    with pytest.raises((ValueError, RuntimeError), match="sigma must be"):
        op(args[0].to("meta"), args[1].to("meta"), torch.ones(2, device="meta"), None, *RAW)


def test_module_accepts_coordinates():
    pred, coords = make_inputs((2, 3, 8, 8), "cpu")
    tw = torch.ones(2, 3, 1)
    module = lk.nn.AdaptiveWingLoss(use_target_weight=True, weight_map=True, loss_weight=2.0)
    loss = module(pred, coords=coords, sigma=1.5, target_weight=tw)
    expected = 2.0 * lk.awing_loss_from_coords(pred, coords, 1.5, target_weight=tw)
    assert torch.equal(loss, expected)
    with pytest.raises(ValueError, match="target or coords"):
        module(pred, torch.rand(2, 3, 8, 8), target_weight=tw, coords=coords, sigma=1.5)
    with pytest.raises(ValueError, match="sigma"):
        module(pred, coords=coords, target_weight=tw)


@pytest.mark.parametrize("device,backend", backend_params())
def test_multi_stage_heatmap_target(device, backend):
    """lk.awing_loss accepts stages too: Σ stage_weights[s]·awing_loss(pred[s], target)."""
    preds = [make_inputs((2, 3, 7, 6), device, seed=s)[0] for s in range(2)]
    target = reference.render_gaussian_heatmaps(make_inputs((2, 3, 7, 6), device)[1], 7, 6, 1.5)
    loss = lk.awing_loss(torch.stack(preds), target, stage_weights=(0.5, 2.0), backend=backend)
    grads = torch.autograd.grad(loss, preds)
    for w, p, g in zip((0.5, 2.0), preds, grads):
        assert_close(g, w * loss_and_grad(lk.awing_loss, p, target, backend=backend)[1])
    with pytest.raises(ValueError, match="stage_weights must have one weight per stage"):
        lk.awing_loss(preds, target, stage_weights=(1.0,), backend=backend)
