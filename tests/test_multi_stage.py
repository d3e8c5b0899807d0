"""Multi-stage supervision in one launch: awing_loss / awing_loss_from_coords with pred
(S,B,K,H,W) or a list of S stages against one target (the raw ops awing_loss_stages and
awing_loss_from_coords_stages) equal the weighted sum of single-stage calls, values and grads."""

import pytest
import torch

import landmark_kernels as lk
from landmark_kernels import reference

from conftest import assert_close, backend_params, is_interpreted

import test_awing_loss as heat
import test_awing_loss_from_coords as coord

SHAPE = (2, 3, 7, 6)
STAGES = 3
WEIGHTS = (0.5, 2.0, -1.0)
OPS = torch.ops.landmark_kernels
RAW = (2.1, 14.0, 1.0, 0.5, 10.0, 0.2, 3)  # alpha .. map_kernel
CPU_BACKENDS = [b for d, b in (p.values for p in backend_params()) if d == "cpu"]


def stage_preds(device, dtype=torch.float32, make=heat.make_inputs, shape=SHAPE):
    """STAGES leaf tensors (B,K,H,W), each its own noise around the common target."""
    return [make(shape, device, dtype, seed=s)[0].detach().requires_grad_()
            for s in range(STAGES)]


def heat_case(device, dtype=torch.float32, shape=SHAPE):
    """(loss function, its target arguments) for the heatmap target."""
    return lk.awing_loss, (heat.make_inputs(shape, device, dtype)[1],)


def coord_case(device, dtype=torch.float32, shape=SHAPE):
    return lk.awing_loss_from_coords, (coord.make_inputs(shape, device, dtype)[1], 1.5)


CASES = {"heatmap": (heat_case, heat.make_inputs), "coords": (coord_case, coord.make_inputs)}


def weighted_sum_of_single_calls(fn, preds, target_args, stage_weights, **kw):
    """Σ_s w_s·fn(pred_s) (reduction "none": the stack of the weighted maps) and its grads."""
    weights = stage_weights or (1.0,) * len(preds)
    losses = [w * fn(p, *target_args, **kw) for w, p in zip(weights, preds)]
    loss = torch.stack(losses) if losses[0].dim() else sum(losses)
    grads = torch.autograd.grad(loss.sum(), preds)
    return loss.detach(), grads


def multi_stage(fn, preds, target_args, layout, stage_weights, **kw):
    pred = torch.stack(preds) if layout == "stacked" else preds
    loss = fn(pred, *target_args, stage_weights=stage_weights, **kw)
    grads = torch.autograd.grad(loss.sum(), preds)
    return loss.detach(), grads


# Every combination of layout, reduction, options and stage weights on the fast backends; in
# the Triton interpreter (minutes per hundred calls) a pairwise subset: every pair of values of
# two of these factors appears in some combination.
_FACTORS = [(layout, reduction, options, weights)
            for layout in ("stacked", "list") for reduction in ("mean", "sum", "none")
            for options in ("plain", "map+channel", "map+pixel") for weights in (None, WEIGHTS)]
_PAIRWISE = [("stacked", "mean", "plain", None), ("list", "mean", "map+channel", WEIGHTS),
             ("stacked", "mean", "map+pixel", WEIGHTS), ("list", "sum", "plain", WEIGHTS),
             ("stacked", "sum", "map+channel", None), ("list", "sum", "map+pixel", None),
             ("stacked", "none", "plain", WEIGHTS), ("list", "none", "map+channel", None),
             ("stacked", "none", "map+pixel", None), ("list", "none", "map+pixel", WEIGHTS),
             ("stacked", "sum", "map+channel", WEIGHTS), ("list", "mean", "plain", None)]


def _combinations():
    for param in backend_params() + [pytest.param("cpu", "torch", id="torch-cpu")]:
        device, backend = param.values
        factors = _PAIRWISE if is_interpreted(device, backend) else _FACTORS
        for case in ("heatmap", "coords"):
            for layout, reduction, options, weights in factors:
                if case == "coords" and options == "map+pixel":
                    continue  # awing_loss_from_coords takes a per-channel target_weight only
                yield pytest.param(device, backend, case, layout, reduction, options, weights,
                                   marks=param.marks, id="-".join((
                                       param.id, case, layout, reduction, options,
                                       "weighted" if weights else "unweighted")))


@pytest.mark.parametrize("device,backend,case,layout,reduction,options,stage_weights",
                         list(_combinations()))
def test_equals_sum_of_single_stage_calls(device, backend, case, layout, reduction, options,
                                          stage_weights):
    make_case, make = CASES[case]
    fn, target_args = make_case(device)
    preds = stage_preds(device, make=make)
    weight_kind = options.split("+")[1] if "+" in options else "none"
    kw = dict(reduction=reduction, weight_map=options != "plain", backend=backend,
              target_weight=heat.make_weight(weight_kind, SHAPE, device))
    loss, grads = multi_stage(fn, preds, target_args, layout, stage_weights, **kw)
    ref_loss, ref_grads = weighted_sum_of_single_calls(fn, preds, target_args, stage_weights,
                                                       **kw)
    expected_shape = (STAGES,) + SHAPE if reduction == "none" else ()
    assert loss.shape == expected_shape and loss.dtype == torch.float32
    assert_close(loss, ref_loss, what="loss")
    scale = torch.Size(SHAPE).numel() if reduction == "mean" else 1
    for g, ref in zip(grads, ref_grads):
        assert_close(g * scale, ref * scale, what="grad")


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("case", ["heatmap", "coords"])
def test_one_stage_is_the_single_stage_op(device, backend, case):
    """S = 1 with weight 1 runs the single-stage kernel: bitwise the same loss and grad."""
    make_case, make = CASES[case]
    fn, target_args = make_case(device)
    (pred,) = stage_preds(device, make=make)[:1]
    for reduction in ("mean", "none"):
        loss = fn(pred[None], *target_args, reduction=reduction, backend=backend)
        (grad,) = torch.autograd.grad(loss.sum(), pred)
        single = fn(pred, *target_args, reduction=reduction, backend=backend)
        (single_grad,) = torch.autograd.grad(single.sum(), pred)
        assert torch.equal(loss.reshape(single.shape), single.detach())
        assert torch.equal(grad, single_grad)


@pytest.mark.parametrize("device,backend", backend_params())
def test_deterministic(device, backend):
    fn, target_args = heat_case(device)
    pred = torch.stack(stage_preds(device))
    first = multi_stage(fn, list(pred.detach().requires_grad_()), target_args, "list", WEIGHTS,
                        backend=backend)
    for _ in range(2):
        again = multi_stage(fn, list(pred.detach().requires_grad_()), target_args, "list",
                            WEIGHTS, backend=backend)
        assert torch.equal(first[0], again[0])
        assert all(torch.equal(a, b) for a, b in zip(first[1], again[1]))


@pytest.mark.parametrize("backend", ["cpu", "torch"])
@pytest.mark.parametrize("case", ["heatmap", "coords"])
def test_gradcheck_fp64(backend, case):
    make_case, make = CASES[case]
    fn, target_args = make_case("cpu", torch.float64, shape=(1, 2, 4, 5))
    target = reference.render_gaussian_heatmaps(target_args[0], 4, 5, 1.5) \
        if case == "coords" else target_args[0]
    # Every pixel off the kinks (δ = 0 and δ = θ), where finite differences are meaningless.
    pred = (target + 0.05 + 0.3 * torch.rand((STAGES,) + target.shape, dtype=torch.float64))
    pred.requires_grad_()
    for reduction in ("mean", "none"):
        assert torch.autograd.gradcheck(
            lambda p: fn(p, *target_args, reduction=reduction, stage_weights=WEIGHTS,
                         backend=backend), (pred,))
        stages = tuple(s.clone().requires_grad_() for s in pred.detach().unbind(0))
        assert torch.autograd.gradcheck(  # the list layout: a gradient to each stage
            lambda *p: fn(list(p), *target_args, reduction=reduction, backend=backend), stages)


def stages_op(case, backend):
    name = "awing_loss_stages" if case == "heatmap" else "awing_loss_from_coords_stages"
    return getattr(OPS, name + ("_triton" if backend == "triton" else ""))


def raw_target_args(case, device, dtype=torch.float32):
    if case == "heatmap":
        return (heat.make_inputs(SHAPE, device, dtype)[1],)
    coords = coord.make_inputs(SHAPE, device, dtype)[1].to(
        torch.float64 if dtype == torch.float64 else torch.float32)
    return (coords, torch.full((SHAPE[1],), 1.5, dtype=coords.dtype, device=device))


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("case", ["heatmap", "coords"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_opcheck(device, backend, case, dtype):
    op = stages_op(case, backend)
    pred = torch.stack(stage_preds(device, dtype)).detach().requires_grad_()
    targets = raw_target_args(case, device, dtype)
    tw = heat.make_weight("channel", SHAPE, device, dtype)
    for reduction in (0, 1, 2):
        for weights in ([1.0] * STAGES, list(WEIGHTS)):
            torch.library.opcheck(op, (pred, *targets, tw, weights, *RAW, reduction, True))
    torch.library.opcheck(op, (pred.detach(), *targets, None, list(WEIGHTS), 2.1, 14.0, 1.0,
                               0.5, 0.0, 0.2, 1, 1, False))


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("case", ["heatmap", "coords"])
@pytest.mark.parametrize("layout", ["stacked", "list"])
def test_torch_compile_fullgraph(device, backend, case, layout):
    torch._dynamo.reset()
    make_case, make = CASES[case]
    fn, target_args = make_case(device)

    def loss_fn(preds, *args):
        pred = torch.stack(preds) if layout == "stacked" else preds
        return fn(pred, *args, stage_weights=WEIGHTS, backend=backend)

    compiled = torch.compile(loss_fn, fullgraph=True, dynamic=True)
    preds = stage_preds(device, make=make)
    loss = compiled(preds, *target_args)
    grads = torch.autograd.grad(loss, preds)
    eager_loss, eager_grads = multi_stage(fn, preds, target_args, layout, WEIGHTS,
                                          backend=backend)
    assert_close(loss.detach(), eager_loss, what="loss")
    for g, ref in zip(grads, eager_grads):
        assert_close(g, ref, what="grad")


@pytest.mark.parametrize("device,backend", backend_params())
@pytest.mark.parametrize("case", ["heatmap", "coords"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(device, backend, case, dtype):
    make_case, make = CASES[case]
    fn, target_args = make_case(device, dtype)
    target_args = tuple(a.float() if isinstance(a, torch.Tensor) and case == "coords" else a
                        for a in target_args)
    preds = stage_preds(device, dtype, make=make)
    kw = dict(reduction="sum", target_weight=heat.make_weight("channel", SHAPE, device, dtype))
    loss, grads = multi_stage(fn, preds, target_args, "stacked", WEIGHTS, backend=backend, **kw)
    preds64 = [p.detach().double().requires_grad_() for p in preds]
    args64 = tuple(a.double() if isinstance(a, torch.Tensor) else a for a in target_args)
    kw["target_weight"] = kw["target_weight"].double()
    ref_loss, ref_grads = weighted_sum_of_single_calls(fn, preds64, args64, WEIGHTS,
                                                       backend="torch", **kw)
    assert loss.dtype == torch.float32
    assert_close(loss, ref_loss, dtype=dtype, what="loss")
    for g, ref in zip(grads, ref_grads):
        assert g.dtype == dtype
        assert_close(g, ref, dtype=dtype, what="grad")


@pytest.mark.parametrize("backend", ["cpu", "triton", "torch"])
@pytest.mark.parametrize("case", ["heatmap", "coords"])
def test_bad_input_raises_naming_the_argument(backend, case):
    if backend not in lk.available_backends("cpu"):
        pytest.skip(f"backend {backend!r} is not available on cpu here")
    fn, target_args = CASES[case][0]("cpu")
    pred = torch.rand((STAGES,) + SHAPE)
    bad = [
        (torch.rand((0,) + SHAPE), {}, "at least one stage"),
        ([], {}, "at least one stage"),
        (torch.rand((17,) + SHAPE), {}, "at most 16 stages"),
        (pred, dict(stage_weights=(1.0, 2.0)), "stage_weights must have one weight per stage"),
        (list(pred), dict(stage_weights=(1.0,) * 4), "one weight per stage"),
        (pred, dict(stage_weights=(1.0, float("nan"), 1.0)), "stage_weights must be (a )?finite"),
        (pred[0], dict(stage_weights=(1.0,)), "stage_weights needs a multi-stage pred"),
        ([pred[0], pred[1, :, :2]], {}, r"every stage of pred must have the shape"),
        ([pred[0], pred[1].double()], {}, r"every stage of pred must have the shape, dtype"),
        (torch.rand(STAGES, 2, 2, 7, 6), {}, "must be|must have the shape"),
    ]
    for p, kw, match in bad:
        with pytest.raises(ValueError, match=match):
            fn(p, *target_args, backend=backend, **kw)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("case", ["heatmap", "coords"])
def test_raw_op_checks(backend, case):
    """The raw ops check what the kernels rely on (C++ TORCH_CHECK; the Triton op and the fake
    kernel in Python), naming the argument."""
    op = stages_op(case, backend)
    targets = raw_target_args(case, "cpu")
    pred = torch.rand((STAGES,) + SHAPE)
    tail = (*RAW, 1, True)
    bad = [
        ((pred[0], *targets, None, [1.0]), "pred must have 5 dimensions"),
        ((pred[:0], *targets, None, []), "pred must hold 1 to 16 stages"),
        ((pred, *targets, None, [1.0, 1.0]), "stage_weights must have one weight per stage"),
        ((pred, *targets, None, [1.0, float("inf"), 1.0]), "stage_weights must be (a )?finite"),
        ((pred[:, :1], *targets, None, [1.0] * STAGES), "must be|must have the shape"),
    ]
    for args, match in bad:
        with pytest.raises((ValueError, RuntimeError), match=match):
            op(*args, *tail)
        # A meta pred reaches the fake kernel, which runs the same checks.
        meta = tuple(a.to("meta") if isinstance(a, torch.Tensor) else a for a in args)
        with pytest.raises((ValueError, RuntimeError), match=match):
            op(*meta, *tail)
