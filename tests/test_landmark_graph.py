"""LandmarkGraph (docs/graph.md): the official SDFL graphs, CSR layout, and the constructors."""

import importlib.resources

import pytest
import torch

import landmark_kernels as lk
from landmark_kernels.graph import PRESETS


def official_mask(name, symmetric=True, self_loops=True):
    """The official recipe (utils/graph_utils.py), densely: max(A, Aᵀ) + I from the file."""
    filename, n = PRESETS[name]
    text = (importlib.resources.files("landmark_kernels") / "data" / filename).read_text()
    mask = torch.zeros(n, n, dtype=torch.bool)
    for line in text.splitlines():
        i, j = (int(float(v)) for v in line.split()[:2])
        mask[i, j] = True
    if symmetric:
        mask = mask | mask.T
    if self_loops:
        mask = mask | torch.eye(n, dtype=torch.bool)
    return mask


def assert_consistent(graph, mask):
    """CSR in row-major order (= mask.nonzero()), the transposed CSR and perm agree with it."""
    n = graph.num_nodes
    nz = mask.nonzero()
    assert graph.num_edges == nz.shape[0]
    assert torch.equal(graph.edges, nz)
    assert torch.equal(graph.rowptr, torch.cat([torch.zeros(1, dtype=torch.long),
                                                mask.sum(1).cumsum(0)]))
    assert torch.equal(graph.dense_mask(), mask)
    t_nz = mask.T.nonzero()  # (column, row) in column-major order
    assert torch.equal(graph.t_rowptr, torch.cat([torch.zeros(1, dtype=torch.long),
                                                  mask.sum(0).cumsum(0)]))
    assert torch.equal(graph.t_col, t_nz[:, 1])
    assert torch.equal(graph.edges[graph.perm], t_nz.flip(1))
    assert graph.has_empty_rows == bool((mask.sum(1) == 0).any())
    for t in (graph.rowptr, graph.col, graph.row, graph.t_rowptr, graph.t_col, graph.perm):
        assert t.dtype == torch.int64 and t.is_contiguous()
    assert graph.rowptr.shape == (n + 1,)


def test_wflw98_top3_has_470_edges():
    """The official recipe on the WFLW top-3 file gives 470 non-zeros."""
    graph = lk.LandmarkGraph.preset("wflw98_top3")
    assert (graph.num_nodes, graph.num_edges) == (98, 470)
    assert not graph.has_empty_rows
    assert_consistent(graph, official_mask("wflw98_top3"))


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("symmetric,self_loops", [(True, True), (False, False), (True, False),
                                                  (False, True)])
def test_presets_match_the_official_recipe(name, symmetric, self_loops):
    graph = lk.LandmarkGraph.preset(name, symmetric=symmetric, self_loops=self_loops)
    assert_consistent(graph, official_mask(name, symmetric, self_loops))


def test_directed_graphs_as_the_data_readme_says():
    counts = {"wflw98_top3": 294, "wflw98": 145, "300w68": 99, "cofw29": 52}
    for name, edges in counts.items():
        assert lk.LandmarkGraph.preset(name, symmetric=False, self_loops=False).num_edges == edges
    g = lk.LandmarkGraph.preset("300w68", symmetric=False, self_loops=False)
    assert g.has_empty_rows
    assert (g.rowptr.diff() == 0).nonzero().flatten().tolist() == [33, 42, 54]


def test_package_data_ships_with_provenance():
    data = importlib.resources.files("landmark_kernels") / "data"
    readme = (data / "README.md").read_text()
    assert "BeierZhu/Sturcture-Coherency-Face-Alignment" in readme
    for filename, _ in PRESETS.values():
        assert (data / filename).is_file() and filename in readme


def test_from_edges_symmetrises_adds_self_loops_and_drops_duplicates():
    edges = [[0, 2], [0, 2], [2, 1], [3, 3]]
    g = lk.LandmarkGraph.from_edges(edges, 5)
    expected = torch.zeros(5, 5, dtype=torch.bool)
    for i, j in edges:
        expected[i, j] = expected[j, i] = True
    expected |= torch.eye(5, dtype=torch.bool)
    assert_consistent(g, expected)
    directed = lk.LandmarkGraph.from_edges(torch.tensor(edges, dtype=torch.int32), 5,
                                           symmetric=False, self_loops=False)
    assert directed.edges.tolist() == [[0, 2], [2, 1], [3, 3]]
    assert directed.has_empty_rows  # nodes 1 and 4
    assert_consistent(directed, directed.dense_mask())


def test_from_edges_empty_and_isolated_nodes():
    g = lk.LandmarkGraph.from_edges(torch.zeros(0, 2, dtype=torch.long), 3)
    assert g.edges.tolist() == [[0, 0], [1, 1], [2, 2]]
    g = lk.LandmarkGraph.from_edges([], 1, self_loops=False)
    assert g.num_edges == 0 and g.has_empty_rows


def test_from_edge_file(tmp_path):
    path = tmp_path / "graph.txt"
    path.write_text("# a comment\n0 1 0.5\n\n1 2\n2.0 0 1\n")
    g = lk.LandmarkGraph.from_edge_file(path, 4, symmetric=False, self_loops=False)
    assert g.edges.tolist() == [[0, 1], [1, 2], [2, 0]]
    path.write_text("0 1 1\n1 x 1\n")
    with pytest.raises(ValueError, match=r"graph.txt:2: expected 'i j \[w\]'"):
        lk.LandmarkGraph.from_edge_file(path, 4)
    path.write_text("0 1.5\n")
    with pytest.raises(ValueError, match="integer node indices"):
        lk.LandmarkGraph.from_edge_file(path, 4)


def test_to_device_keeps_the_graph():
    g = lk.LandmarkGraph.preset("cofw29")
    moved = g.to("meta")
    assert moved.device.type == "meta" and moved.num_edges == g.num_edges
    assert moved.num_nodes == 29 and moved.has_empty_rows == g.has_empty_rows
    back = g.to("cpu")
    assert torch.equal(back.col, g.col) and torch.equal(back.perm, g.perm)
    assert "num_nodes=29" in repr(g) and "num_edges=133" in repr(g)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_to_cuda():
    g = lk.LandmarkGraph.preset("wflw98_top3").to("cuda")
    assert g.device.type == "cuda" and g.rowptr.is_cuda and g.perm.is_cuda


def correlated_shapes(groups, samples=400, seed=0):
    """Shapes whose landmarks move in groups: each group follows its own random (x, y) offset
    (sign-flipped for the last member: correlation −1 counts as much as +1), plus small noise.
    Within a group |corr| ≈ 1, across groups ≈ 0."""
    g = torch.Generator().manual_seed(seed)
    n = sum(groups)
    base = torch.rand(n, 2, generator=g, dtype=torch.float64) * 100
    shapes = base.expand(samples, n, 2).clone()
    start = 0
    for size in groups:
        offset = torch.randn(samples, 1, 2, generator=g, dtype=torch.float64) * 5
        sign = torch.ones(size, 1, dtype=torch.float64)
        sign[-1] = -1
        shapes[:, start:start + size] += offset * sign
        start += size
    return shapes + 0.05 * torch.randn(shapes.shape, generator=g, dtype=torch.float64)


def test_from_correlation_finds_the_correlated_groups():
    shapes = correlated_shapes([3, 3, 3])
    g = lk.LandmarkGraph.from_correlation(shapes.float(), 2, symmetric=False, self_loops=False)
    expected = {(i, j) for i in range(9) for j in range(9) if i != j and i // 3 == j // 3}
    assert set(map(tuple, g.edges.tolist())) == expected
    # The default options then give the official recipe: symmetric, with self-loops.
    full = lk.LandmarkGraph.from_correlation(shapes, 2)
    assert full.num_edges == 9 * 3 and not full.has_empty_rows


def test_from_correlation_uses_mean_of_absolute_x_and_y_correlations():
    """Node 1 correlates with node 0 in x only (C = 1/2), node 2 in x and y (C = 1): with
    k = 1, node 0 picks node 2; node 3 is constant (no correlation: counts as 0)."""
    g = torch.Generator().manual_seed(3)
    s = 300
    x, y = torch.randn(s, generator=g), torch.randn(s, generator=g)
    shapes = torch.zeros(s, 4, 2, dtype=torch.float64)
    shapes[:, 0] = torch.stack([x, y], dim=1)
    shapes[:, 1, 0], shapes[:, 1, 1] = -2 * x, torch.randn(s, generator=g)
    shapes[:, 2] = torch.stack([x + 0.01 * torch.randn(s, generator=g), y], dim=1)
    shapes[:, 3] = 7.0
    graph = lk.LandmarkGraph.from_correlation(shapes, 1, symmetric=False, self_loops=False)
    assert graph.col[graph.rowptr[0]].item() == 2
    assert graph.col[graph.rowptr[1]].item() == 0  # C(1,0) = (1+c)/2 > C(1,2) = (.9999+c)/2
    assert graph.col[graph.rowptr[3]].item() == 0  # all 0: ties broken by the lower index
    assert graph.num_edges == 4


@pytest.mark.parametrize("call,error,match", [
    (lambda: lk.LandmarkGraph.from_edges([[0, 5]], 5), ValueError, r"node indices in \[0, 5\)"),
    (lambda: lk.LandmarkGraph.from_edges([[-1, 0]], 5), ValueError, r"got the edge \(-1, 0\)"),
    (lambda: lk.LandmarkGraph.from_edges([[0.0, 1.0]], 5), TypeError, "edges must hold integers"),
    (lambda: lk.LandmarkGraph.from_edges([0, 1, 2], 5), ValueError, r"edges must have shape"),
    (lambda: lk.LandmarkGraph.from_edges([[0, 1]], 0), ValueError, "num_nodes must be"),
    (lambda: lk.LandmarkGraph.from_edges([[0, 1]], 2.0), ValueError, "num_nodes must be"),
    (lambda: lk.LandmarkGraph.preset("wflw"), ValueError, "name must be one of"),
    (lambda: lk.LandmarkGraph.from_correlation(torch.rand(5, 4, 3), 1), ValueError,
     r"shapes must have shape \(S, N, 2\)"),
    (lambda: lk.LandmarkGraph.from_correlation(torch.rand(5, 4, 2), 4), ValueError,
     r"k must be an integer in \[0, 3\]"),
    (lambda: lk.LandmarkGraph.from_correlation(torch.ones(5, 4, 2, dtype=torch.long), 1),
     TypeError, "shapes must be a floating"),
])
def test_bad_input_raises_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
