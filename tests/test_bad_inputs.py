"""The validation audit (issue 12): every op and every argument, fed the bad inputs one at a time,
through the public function and through the raw torch.ops ops (the C++ CPU kernel and the
Triton op): each must raise ValueError/TypeError/RuntimeError naming the argument — never crash,
never return a result computed from out-of-bounds reads.

The table is generated: an op's valid arguments (`SPECS`) × mutations of one argument at a time
(`TENSOR_BAD`, the per-parameter `bad` values); `ACCEPTED` lists the few mutations an API accepts
on purpose (with the reason), and each of those is checked to *work*. test_valid_call_runs proves
every base call valid, so a raise below comes from the mutation alone.
"""

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

import landmark_kernels as lk


ERRORS = (ValueError, TypeError, RuntimeError)
NAN, INF = float("nan"), float("inf")
OPS = torch.ops.landmark_kernels
HAS_TRITON_CPU = "triton" in lk.available_backends("cpu")


def rand(*shape, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def graph4(**kw):
    """4 nodes, directed 0→1→2→0, node 3 only its self-loop (E = 7)."""
    return lk.LandmarkGraph.from_edges([[0, 1], [1, 2], [2, 0]], 4, symmetric=False, **kw)


# One argument's bad values. Scalars: "pos" (finite, > 0), "nonneg", "finite".
_SCALAR_BAD = {
    "pos": (NAN, INF, -INF, 0.0, -1.0, np.float64(NAN), "1", None),
    "nonneg": (NAN, INF, -INF, -1.0, "1", None),
    "finite": (NAN, INF, -INF, "1", None),
}
# Tensors: one argument changed at a time; `None` is tried only for required tensors.
TENSOR_BAD = {
    "rank-1": lambda t: t[0],
    "rank+1": lambda t: t[None],
    "size": lambda t: torch.cat([t, t[..., :1]], -1),
    "int32": lambda t: (t * 4).to(torch.int32),
    "int64": lambda t: (t * 4).to(torch.int64),
    "bool": lambda t: t > 0.5,
    "float64": lambda t: t.double(),  # the others are fp32: a dtype mismatch
    "meta": lambda t: t.to("meta"),   # mixed devices: meta among cpu tensors
    "list": lambda t: t.tolist(),
    "None": lambda t: None,
}


@dataclass
class Spec:
    """An op: how to call it, its valid arguments in call order, which go by position."""
    call: object
    args: object            # () -> dict of valid arguments, in call order
    positional: int         # how many leading arguments go by position (all for raw ops)
    scalars: dict = field(default_factory=dict)  # name -> extra bad values (or a _SCALAR_BAD key)
    optional: tuple = ()    # tensors that may be None
    tensors: tuple = None   # tensors to mutate (default: every tensor argument)

    def invoke(self, args):
        values = list(args.values())
        return self.call(*values[:self.positional], **dict(list(args.items())[self.positional:]))


def _awing_args(backend):
    return lambda: dict(pred=rand(2, 3, 6, 5), target=rand(2, 3, 6, 5, seed=1),
                        target_weight=rand(2, 3, seed=2), alpha=2.1, omega=14.0, epsilon=1.0,
                        theta=0.5, map_weight=10.0, map_threshold=0.2, map_kernel=3,
                        reduction="mean", backend=backend)


def _coords_args(backend):
    return lambda: dict(pred=rand(2, 3, 6, 5), coords=rand(2, 3, 2) * 5, sigma=1.5,
                        target_weight=rand(2, 3, seed=2), alpha=2.1, omega=14.0, epsilon=1.0,
                        theta=0.5, map_weight=10.0, map_threshold=0.2, map_kernel=3,
                        reduction="mean", backend=backend)


_AWING_SCALARS = dict(alpha="pos", omega="pos", epsilon="pos", theta="pos", map_weight="nonneg",
                      map_threshold="finite",
                      map_kernel=(0, -1, 2, 4, 33, 3.0, True, "3", None),
                      reduction=("avg", "batchmean", None, 1),
                      backend=("fast", None, "cuda"))
_COORD_SCALARS = dict(reduction=("avg", None, 1), backend=("fast", None, "cuda"))


def _public_specs(backend):
    coord = lambda: dict(pred=rand(2, 5, 2), target=rand(2, 5, 2, seed=1),  # noqa: E731
                         target_weight=rand(2, 5, seed=2))
    return {
        "awing_loss": Spec(lk.awing_loss, _awing_args(backend), 2, dict(
            _AWING_SCALARS, stage_weights=((1.0, 2.0), (NAN,), "ab")),
            optional=("target_weight",)),
        "awing_loss_from_coords": Spec(lk.awing_loss_from_coords, _coords_args(backend), 3, dict(
            _AWING_SCALARS, sigma="pos"), optional=("target_weight",)),
        "render_gaussian_heatmaps": Spec(lk.render_gaussian_heatmaps, lambda: dict(
            coords=rand(2, 3, 2) * 5, height=6, width=5, sigma=1.5), 4, dict(
            height=(0, -1, 2.5, True, None, "6"), width=(0, -1, 2.5, True, None, "5"),
            sigma="pos", dtype=(torch.int32, torch.bool, "float32"))),
        "decode_heatmaps": Spec(lk.decode_heatmaps, lambda: dict(heatmaps=rand(2, 3, 6, 5)), 1,
                                dict(refine=("half", 1, True))),
        "wing_loss": Spec(lk.wing_loss, lambda: dict(coord(), omega=10.0, epsilon=2.0,
                                                     reduction="batchmean", backend=backend), 2,
                          dict(_COORD_SCALARS, omega="pos", epsilon="pos"),
                          optional=("target_weight",)),
        "soft_wing_loss": Spec(lk.soft_wing_loss, lambda: dict(
            coord(), omega1=2.0, omega2=20.0, epsilon=0.5, reduction="batchmean",
            backend=backend), 2, dict(_COORD_SCALARS, omega1="pos", omega2="pos",
                                      epsilon="pos"), optional=("target_weight",)),
        "acr_loss": Spec(lk.acr_loss, lambda: dict(
            pred=rand(2, 5, 2), target=rand(2, 5, 2, seed=1), phi=rand(2, 5, seed=2), lam=1.0,
            reduction="mean", backend=backend), 3, dict(_COORD_SCALARS, lam="nonneg")),
        "pfld_loss": Spec(lk.pfld_loss, lambda: dict(
            pred=rand(2, 5, 2), target=rand(2, 5, 2, seed=1), angles=rand(2, 3, seed=2),
            angles_target=rand(2, 3, seed=3), attributes=(rand(2, 4, seed=4) > 0.5).float(),
            attribute_weights=rand(4, seed=5) + 0.5, degrees=False, weight_floor=0.0,
            backend=backend), 5, dict(degrees=(1, None, "yes"), weight_floor="nonneg",
                                      backend=("fast", None)),
            optional=("attribute_weights",)),
        "graph_relational_aggregate": Spec(lk.graph_relational_aggregate, lambda: dict(
            h_self=rand(2, 4, 3), h_neigh=rand(2, 4, 3, seed=1), logits=rand(7, seed=2),
            graph=graph4(), bias=rand(3, seed=3), transposed=False, backend=backend), 5, dict(
            transposed=(1, None, "no"), backend=("fast", None),
            graph=(None, "graph", graph4().to("meta"),
                   # 7 edges on 4 nodes, node 3 without any: its softmax is undefined
                   lk.LandmarkGraph.from_edges([[0, 1], [1, 2], [2, 0], [0, 2], [1, 0], [2, 1],
                                                [0, 0]], 4, symmetric=False, self_loops=False),
                   lk.LandmarkGraph.from_edges([[0, 1]], 5))), optional=("bias",)),
        "relative_location_loss": Spec(lk.relative_location_loss, lambda: dict(
            pred=rand(2, 4, 2), target=rand(2, 4, 2, seed=1),
            graph=graph4(self_loops=False), base="soft_wing", reduction="batchmean",
            backend=backend, epsilon=0.5), 3, dict(
            graph=(None, graph4().to("meta"), lk.LandmarkGraph.from_edges([[0, 1]], 5)),
            base=("l2", None), reduction=("avg", None), backend=("fast", None),
            epsilon="pos")),
    }


# Mutations a public API accepts on purpose: (op, argument, mutation) -> why.
ACCEPTED = {
    **{(op, "pred", "rank+1"): "(S,B,K,H,W): the multi-stage form"
       for op in ("awing_loss", "awing_loss_from_coords")},
    **{(op, "target_weight", m): "cast to pred's dtype / (B,K,1) is mmpose's per-heatmap form"
       for op in ("awing_loss", "awing_loss_from_coords", "wing_loss", "soft_wing_loss")
       for m in ("float64",)},
    ("awing_loss_from_coords", "coords", "float64"): "cast to the compute dtype",
    ("render_gaussian_heatmaps", "coords", "float64"): "any floating dtype (fp64 output)",
    ("render_gaussian_heatmaps", "coords", "meta"): "all inputs on meta: shape inference",
    ("decode_heatmaps", "heatmaps", "meta"): "all inputs on meta: shape inference",
    ("awing_loss_from_coords", "pred", "size"): "any H x W: the target is rendered at pred's",
    ("awing_loss_from_coords", "pred", "float64"): "coords are cast to the compute dtype",
    ("decode_heatmaps", "heatmaps", "float64"): "any floating dtype",
    ("decode_heatmaps", "heatmaps", "size"): "any H x W",
    ("acr_loss", "phi", "float64"): "cast to pred's dtype",
    **{("pfld_loss", a, "float64"): "cast to pred's dtype"
       for a in ("angles_target", "attributes", "attribute_weights")},
    **{("pfld_loss", "attributes", m): "0/1 flags in any dtype"
       for m in ("int32", "int64", "bool")},
}


def _is_tensor_spec(value):
    return isinstance(value, torch.Tensor)


def _cases(specs, *, raw):
    """(op, argument, label, args) for every bad input of every op in specs."""
    out = []
    for op, spec in specs.items():
        base = spec.args()
        tensors = spec.tensors or tuple(k for k, v in base.items() if _is_tensor_spec(v))
        for name in tensors:
            for label, mutate in TENSOR_BAD.items():
                if label == "None" and name in spec.optional:
                    continue
                if label in ("rank-1", "size") and base[name].dim() == 0:
                    continue
                out.append((op, name, label, mutate))
        for name, bads in spec.scalars.items():
            bads = _SCALAR_BAD[bads] if isinstance(bads, str) else bads
            for bad in bads:
                out.append((op, name, repr(bad), lambda _, bad=bad: bad))
    return [pytest.param(*c, id=f"{c[0]}-{c[1]}-{c[2]}") for c in out
            if raw or (c[0], c[1], c[2]) not in ACCEPTED]


def _expect_error(spec, name, mutate, match=None):
    args = spec.args()
    args[name] = mutate(args.get(name))
    if name == "stage_weights":  # only read for a multi-stage pred (S = 1 here)
        args["pred"] = args["pred"][None]
    with pytest.raises(ERRORS) as info:
        spec.invoke(args)
    message = str(info.value)
    names = ALIASES.get(name, (name,))
    assert any(n in message for n in names), f"the error names none of {names}: {message}"


PUBLIC_BACKENDS = ["cpu", "torch"] + (["triton"] if HAS_TRITON_CPU else [])


@pytest.mark.parametrize("backend", PUBLIC_BACKENDS)
@pytest.mark.parametrize("op,name,label,mutate", _cases(_public_specs("cpu"), raw=False))
def test_public_bad_input_raises_naming_the_argument(backend, op, name, label, mutate):
    spec = _public_specs(backend)[op]
    if "backend" not in spec.args() and backend != "cpu":
        pytest.skip(f"{op} has no backend argument: tried once, with backend cpu")
    if name == "backend" and label == "'cuda'" and torch.cuda.is_available():
        pytest.skip("cuda is a valid backend on this machine")
    _expect_error(spec, name, mutate)


@pytest.mark.parametrize("op,name,label", [pytest.param(*k, id="-".join(k)) for k in ACCEPTED])
def test_accepted_variants_work(op, name, label):
    """What the table skips as accepted is accepted: the call returns finite values."""
    spec = _public_specs("cpu")[op]
    args = spec.args()
    args[name] = TENSOR_BAD[label](args[name])
    out = spec.invoke(args)
    for t in (out if isinstance(out, tuple) else (out,)):
        assert t.device.type == "meta" if label == "meta" else torch.isfinite(t).all()


@pytest.mark.parametrize("backend", PUBLIC_BACKENDS)
@pytest.mark.parametrize("op", list(_public_specs("cpu")))
def test_valid_call_runs(backend, op):
    spec = _public_specs(backend)[op]
    out = spec.invoke(spec.args())
    for t in (out if isinstance(out, tuple) else (out,)):
        assert torch.isfinite(t).all()


# ---- raw ops: C++ CPU kernels and the Triton ops (TRITON_INTERPRET on this machine) ----------

def _fused_raw(args_fn):
    """A public args() turned into the raw fused op's: reduction as a code, compute_grad."""
    def raw():
        a = args_fn()
        a.pop("backend")
        a["reduction"] = {"none": 0, "mean": 1, "sum": 2, "batchmean": 3}[a["reduction"]]
        a["compute_grad"] = True
        return a
    return raw


def _raw_graph():
    g = graph4()
    return dict(zip(("rowptr", "col", "t_rowptr", "t_col", "perm"), g.csr_tensors()))


_INDEX_BAD = {  # values a corrupt graph may hold, on top of TENSOR_BAD's shapes and dtypes
    "rowptr": (lambda t: t.flip(0), lambda t: torch.cat([t[:-1], t[-1:] + 1]),
               lambda t: torch.cat([t[:1] - 1, t[1:]])),
    "col": (lambda t: torch.cat([t[:1] * 0 + 4, t[1:]]), lambda t: torch.cat([t[:1] * 0 - 1,
                                                                              t[1:]])),
    "t_rowptr": (lambda t: t.flip(0), lambda t: torch.cat([t[:-1], t[-1:] + 1])),
    "t_col": (lambda t: torch.cat([t[:1] * 0 + 4, t[1:]]), lambda t: t.flip(0)),
    "perm": (lambda t: torch.cat([t[:1] * 0 + 7, t[1:]]), lambda t: torch.cat([t[1:2], t[1:]]),
             lambda t: t.flip(0)),
}
_INDEX_MUTATIONS = ("rank-1", "rank+1", "size", "int32", "float64", "meta", "list", "None")


# A schema `bool` takes what torch.ops converts to one (1, 2.5, None: Python truthiness, the
# dispatcher's rule, not a kernel's read); a string is refused, naming the argument.
BOOL_BAD = ("yes", "true")


def _raw_specs(triton):
    suffix = "_triton" if triton else ""
    op = lambda name: getattr(OPS, name + suffix).default  # noqa: E731
    fused_scalars = lambda codes, **kw: dict(  # noqa: E731
        kw, reduction=tuple(c for c in (-1, 3, 4, 99) if c not in codes) + (1.0, "mean", None),
        compute_grad=BOOL_BAD)
    awing_scalars = dict(alpha="pos", omega="pos", epsilon="pos", theta="pos",
                         map_weight="nonneg", map_threshold="finite",
                         map_kernel=(0, -1, 2, 4, 33, 3.0, None))

    def coords_raw():
        a = _fused_raw(_coords_args("cpu"))()
        a["sigma"] = torch.full((3,), 1.5)
        return a

    def agg_raw():
        return dict(h_self=rand(2, 4, 3), h_neigh=rand(2, 4, 3, seed=1), logits=rand(7, seed=2),
                    bias=rand(3, seed=3), **_raw_graph(), transposed=False)

    def agg_bwd_raw():
        a = agg_raw()
        a.pop("bias")
        return dict(grad_out=rand(2, 4, 3, seed=4), **a, bias_grad=True)

    def laplacian_raw():
        g = _raw_graph()
        g.pop("perm")
        return dict(x=rand(2, 4, 2), **g, transpose=False)

    coord = lambda **kw: lambda: dict(  # noqa: E731
        pred=rand(2, 5, 2), target=rand(2, 5, 2, seed=1), **kw)
    specs = {
        "awing_loss": Spec(op("awing_loss"), _fused_raw(_awing_args("cpu")), 99,
                           fused_scalars((0, 1, 2), **awing_scalars), optional=("target_weight",)),
        "awing_loss_from_coords": Spec(op("awing_loss_from_coords"), coords_raw, 99,
                                       fused_scalars((0, 1, 2), **awing_scalars),
                                       optional=("target_weight",)),
        "wing_loss": Spec(op("wing_loss"), lambda: dict(
            coord(target_weight=rand(2, 5, seed=2))(), omega=10.0, epsilon=2.0, reduction=3,
            compute_grad=True), 99, fused_scalars((0, 1, 2, 3), omega="pos", epsilon="pos"),
            optional=("target_weight",)),
        "soft_wing_loss": Spec(op("soft_wing_loss"), lambda: dict(
            coord(target_weight=rand(2, 5, seed=2))(), omega1=2.0, omega2=20.0, epsilon=0.5,
            reduction=3, compute_grad=True), 99, fused_scalars(
            (0, 1, 2, 3), omega1="pos", omega2="pos", epsilon="pos"),
            optional=("target_weight",)),
        "acr_loss": Spec(op("acr_loss"), lambda: dict(
            coord(phi=rand(2, 5, seed=2))(), lam=1.0, reduction=1, compute_grad=True), 99,
            fused_scalars((0, 1, 2, 3), lam="nonneg")),
        "pfld_loss": Spec(op("pfld_loss"), lambda: dict(
            pred=rand(2, 5, 2), target=rand(2, 5, 2, seed=1), angles=rand(2, 3, seed=2),
            angles_target=rand(2, 3, seed=3), attributes=(rand(2, 4, seed=4) > 0.5).float(),
            attribute_weights=rand(4, seed=5) + 0.5, degrees=False, weight_floor=0.0,
            compute_grad=True), 99, dict(degrees=BOOL_BAD, weight_floor="nonneg",
                                         compute_grad=BOOL_BAD),
            optional=("attribute_weights",)),
        "graph_relational_aggregate": Spec(op("graph_relational_aggregate"), agg_raw, 99,
                                           dict(transposed=BOOL_BAD), optional=("bias",)),
        "graph_relational_aggregate_backward": Spec(
            op("graph_relational_aggregate_backward"), agg_bwd_raw, 99,
            dict(transposed=BOOL_BAD, bias_grad=BOOL_BAD)),
        "graph_laplacian": Spec(op("graph_laplacian"), laplacian_raw, 99,
                                dict(transpose=BOOL_BAD)),
    }
    if not triton:
        specs["scale_grad_"] = Spec(OPS.scale_grad_.default, lambda: dict(
            grad=rand(2, 3), scale=torch.tensor(2.0)), 99, tensors=("grad", "scale"))
    return specs


# A raw op takes exactly the schema's dtypes: fp64 features with fp32 others is a mismatch, and
# the index tensors must be int64. What a raw op accepts on purpose:
RAW_ACCEPTED = {
    ("scale_grad_", "scale", "rank+1"): "a one-element scale of any rank",
    ("scale_grad_", "scale", "float64"): "the scale is read in fp32/fp64 whatever its dtype",
    ("scale_grad_", "grad", "float64"): "any floating grad (the loss dtype may differ)",
    ("scale_grad_", "grad", "rank-1"): "a one-element scale scales any grad",
    ("scale_grad_", "grad", "rank+1"): "a one-element scale scales any grad",
    ("scale_grad_", "grad", "size"): "a one-element scale scales any grad",
    ("graph_laplacian", "x", "float64"): "x is the only floating input",
    ("awing_loss_from_coords", "pred", "size"): "any H x W: the target is rendered at pred's",
    ("graph_laplacian", "x", "size"): "any D",
}


def _raw_cases():
    cases = []
    for triton in (False, True):
        specs = _raw_specs(triton)
        for p in _cases(specs, raw=True):
            op, name, label, mutate = p.values
            if (op, name, label) in RAW_ACCEPTED:
                continue
            if name in _INDEX_BAD and label not in _INDEX_MUTATIONS:
                continue  # bool/int64 indices: int64 is right, bool is covered by int32
            cases.append((triton, op, name, label, mutate))
        for op in ("graph_relational_aggregate", "graph_relational_aggregate_backward",
                   "graph_laplacian"):
            for name, mutations in _INDEX_BAD.items():
                if op == "graph_laplacian" and name == "perm":
                    continue
                for i, mutate in enumerate(mutations):
                    cases.append((triton, op, name, f"value{i}", mutate))
    return [pytest.param(*c, id=f"{'triton' if c[0] else 'cpu'}-{c[1]}-{c[2]}-{c[3]}",
                         marks=pytest.mark.skipif(c[0] and not HAS_TRITON_CPU,
                                                  reason="no Triton (interpreter) here"))
            for c in cases]


# An error may name the argument the bad one contradicts: a corrupt transposed CSR, C classes
# of attributes against C attribute weights.
ALIASES = {"t_col": ("t_col", "t_rowptr"), "attributes": ("attributes", "attribute_weights")}


@pytest.mark.parametrize("triton,op,name,label,mutate", _raw_cases())
def test_raw_op_bad_input_raises_naming_the_argument(triton, op, name, label, mutate):
    spec = _raw_specs(triton)[op]
    args = spec.args()
    args[name] = mutate(args[name])
    with pytest.raises(ERRORS) as info:
        spec.invoke(args)
    message = str(info.value)
    names = ALIASES.get(name, (name,))
    # A size/rank change of the first tensor may be reported by the tensor checked against it.
    if label in ("size", "rank-1", "rank+1") and name in ("pred", "h_self", "x", "grad_out"):
        names = names + tuple(k for k, v in args.items() if isinstance(v, torch.Tensor))
    assert any(n in message for n in names), f"the error names none of {names}: {message}"


@pytest.mark.parametrize("triton", [False] + ([True] if HAS_TRITON_CPU else []))
@pytest.mark.parametrize("op", list(_raw_specs(False)))
def test_raw_valid_call_runs(triton, op):
    specs = _raw_specs(triton)
    if op not in specs:
        pytest.skip(f"{op} has no Triton twin")
    spec = specs[op]
    args = spec.args()
    spec.invoke(args)


@pytest.mark.parametrize("op,name,label", [pytest.param(*k, id="-".join(k))
                                           for k in RAW_ACCEPTED])
def test_raw_accepted_variants_work(op, name, label):
    spec = _raw_specs(False)[op]
    args = spec.args()
    args[name] = TENSOR_BAD[label](args[name])
    spec.invoke(args)


# ---- values that only some backends can check without a host synchronisation ---------------

@pytest.mark.parametrize("phi", [1.5, -0.5, NAN])
def test_acr_phi_out_of_range(phi):
    """Φ outside [0,1]: the cpu backend raises naming phi; triton and torch (no host sync on a
    GPU) return NaN for those elements — value and gradient — as acr_loss documents."""
    pred, target = rand(2, 5, 2, seed=0), rand(2, 5, 2, seed=1) + 0.5
    bad = rand(2, 5, seed=2)
    bad[0, 1] = phi
    with pytest.raises(RuntimeError, match="phi must be in"):
        lk.acr_loss(pred, target, bad, backend="cpu")
    for backend in ["torch"] + (["triton"] if HAS_TRITON_CPU else []):
        p = pred.clone().requires_grad_()
        loss = lk.acr_loss(p, target, bad, backend=backend, reduction="none")
        loss.sum().backward()
        assert torch.isnan(loss[0, 1]).all() and torch.isnan(p.grad[0, 1]).all(), backend
        assert torch.isfinite(loss[1]).all() and torch.isfinite(p.grad[1]).all(), backend


def test_awing_constants_overflowing_fp32_raise():
    """(θ/ε)^α beyond fp32 is caught in Python, naming the parameters (the C++ op, given such
    constants directly, computes inf/NaN: its own check is finiteness and sign)."""
    pred = rand(1, 1, 4, 4)
    with pytest.raises(ValueError, match="alpha"):
        lk.awing_loss(pred, pred, alpha=200.0, theta=10.0, epsilon=1e-3)


@pytest.mark.parametrize("sigma", [torch.tensor([1.0, 0.0, 1.0]), torch.tensor([1.0, NAN, 1.0]),
                                   torch.tensor([1.0, -2.0, 1.0]), torch.tensor([1.0, INF, 1.0]),
                                   [1.0, 0.0, 1.0], [1.0, 1.0]])
def test_sigma_values_are_checked(sigma):
    with pytest.raises(ValueError, match="sigma"):
        lk.awing_loss_from_coords(rand(2, 3, 6, 5), rand(2, 3, 2), sigma)
    with pytest.raises(ValueError, match="sigma"):
        lk.render_gaussian_heatmaps(rand(2, 3, 2), 6, 5, sigma)


def test_empty_heatmap_decode_raises():
    with pytest.raises(ValueError, match="heatmaps"):
        lk.decode_heatmaps(torch.rand(1, 2, 0, 5))


def test_case_count_per_op(capsys):
    """Prints the number of bad-input cases per op (the issue's closing note)."""
    counts = {}
    for p in _cases(_public_specs("cpu"), raw=False):
        counts.setdefault(p.values[0], [0, 0])[0] += len(PUBLIC_BACKENDS) \
            if "backend" in _public_specs("cpu")[p.values[0]].args() else 1
    for p in _raw_cases():
        counts.setdefault(p.values[1], [0, 0])[1] += 1
    with capsys.disabled():
        print("\nbad-input cases per op (public calls x backends, raw cpu+triton op calls):")
        for op, (public, raw) in sorted(counts.items()):
            print(f"  {op:40s} public {public:4d}  raw {raw:4d}")
    assert all(public + raw >= 10 for public, raw in counts.values())


@pytest.mark.parametrize("fn,extra", [(lk.awing_loss, (rand(1, 2, 4, 4),)),
                                      (lk.awing_loss_from_coords, (rand(1, 2, 2), 1.0))],
                         ids=["awing_loss", "awing_loss_from_coords"])
def test_stage_weights_with_a_single_stage_pred_raises(fn, extra):
    with pytest.raises(ValueError, match="stage_weights"):
        fn(rand(1, 2, 4, 4), *extra, stage_weights=(1.0, 2.0))
