"""Landmark graphs (docs/graph.md): a fixed sparsity pattern over N landmarks, stored CSR.

Edges are kept in row-major order (row, then column): the order of `mask.nonzero()`, so the
logits of the official SDFL layers (`SemGraphConv.e`, `DynamicGConv`'s `adj_weight`) index the
same edges here. The transposed CSR (edges grouped by column) and the permutation between the
two orders are built once, so that the kernels can gather along either direction without float
atomics.
"""

import importlib.resources

import torch

# name -> (file in landmark_kernels/data, number of landmarks); provenance in data/README.md.
PRESETS = {
    "wflw98_top3": ("sdfl_wflw98_top3.txt", 98),
    "wflw98": ("sdfl_wflw98.txt", 98),
    "300w68": ("sdfl_300w68.txt", 68),
    "cofw29": ("sdfl_cofw29.txt", 29),
}


def check_graph_for(graph, x, name):
    """Raise unless `graph` is a LandmarkGraph with x.shape[1] nodes on x's device."""
    if not isinstance(graph, LandmarkGraph):
        raise TypeError(f"graph must be a LandmarkGraph, got {type(graph).__name__}")
    if graph.num_nodes != x.shape[1]:
        raise ValueError(f"graph has {graph.num_nodes} nodes but {name} has N = {x.shape[1]} "
                         f"(shape {tuple(x.shape)})")
    if graph.device != x.device:
        raise ValueError(f"graph is on {graph.device} but {name} is on {x.device}: move it "
                         "with graph.to(device)")


def check_csr_values(num_nodes, rowptr, col, t_rowptr, t_col, perm=None):
    """The index values of a graph's CSR tensors on the CPU, as the C++ ops check them
    (csrc/graph_ops.h): pointers from 0 to E, non-decreasing; node indices in [0, N); the
    transposed CSR (and perm, when given) list the same edges. Raises ValueError naming the
    argument. The Triton ops run it on CPU tensors (on CUDA it would need a host sync)."""
    edges = col.shape[0]
    for ptr_name, ptr, idx_name, idx in (("rowptr", rowptr, "col", col),
                                         ("t_rowptr", t_rowptr, "t_col", t_col)):
        if ptr[0] != 0 or ptr[-1] != edges:
            raise ValueError(f"{ptr_name} must start at 0 and end at E = {edges}, got "
                             f"{ptr[0].item()} and {ptr[-1].item()}")
        if bool((ptr[1:] < ptr[:-1]).any()):
            raise ValueError(f"{ptr_name} must be non-decreasing")
        if edges and (idx.min() < 0 or idx.max() >= num_nodes):
            raise ValueError(f"{idx_name} must hold node indices in [0, {num_nodes})")
    nodes = torch.arange(num_nodes, device=col.device)
    keys = nodes.repeat_interleave(rowptr.diff()) * num_nodes + col
    t_keys = t_col * num_nodes + nodes.repeat_interleave(t_rowptr.diff())
    if perm is None:
        if not torch.equal(keys.sort().values, t_keys.sort().values):
            raise ValueError("t_rowptr and t_col must describe the edges of rowptr and col, "
                             "transposed")
        return
    if edges and (perm.min() < 0 or perm.max() >= edges or
                  torch.bincount(perm, minlength=edges).ne(1).any()):
        raise ValueError(f"perm must be a permutation of [0, {edges})")
    if not torch.equal(keys[perm], t_keys):
        raise ValueError("t_rowptr, t_col and perm must describe the edges of rowptr and col")


def _check_num_nodes(num_nodes):
    if not isinstance(num_nodes, int) or isinstance(num_nodes, bool) or num_nodes < 1:
        raise ValueError(f"num_nodes must be an integer >= 1, got {num_nodes!r}")
    return num_nodes


class LandmarkGraph:
    """A directed graph over `num_nodes` landmarks in CSR form (all tensors int64).

    Attributes:
        num_nodes, num_edges: N and E.
        rowptr (N+1,), col (E,): CSR; the edges of node i are col[rowptr[i]:rowptr[i+1]],
            sorted, and edge k is the k-th non-zero of the dense mask in row-major order.
        row (E,): the row of each edge (COO), for the dense reference.
        t_rowptr (N+1,), t_col (E,), perm (E,): the transposed CSR, i.e. the edges grouped by
            column j (t_col holds their rows, ascending), and perm maps a position of the
            transposed CSR to the edge's row-major index.
        has_empty_rows: whether some node has no out-edge (not allowed by the aggregation op,
            whose softmax runs over each node's edges; fine for the relative-location loss).

    Build with `from_edges`, `from_edge_file`, `from_correlation` or `preset`; move with `.to`.
    """

    def __init__(self, rowptr, col, row, t_rowptr, t_col, perm, num_nodes, has_empty_rows):
        # Internal: use the from_* constructors, which build consistent, validated arrays.
        self.rowptr, self.col, self.row = rowptr, col, row
        self.t_rowptr, self.t_col, self.perm = t_rowptr, t_col, perm
        self.num_nodes = num_nodes
        self.has_empty_rows = has_empty_rows

    @property
    def num_edges(self):
        return self.col.shape[0]

    @property
    def device(self):
        return self.col.device

    @property
    def edges(self):
        """(E, 2) int64: (row, col) of every edge, in row-major order."""
        return torch.stack([self.row, self.col], dim=1)

    def csr_tensors(self):
        """(rowptr, col, t_rowptr, t_col, perm): the arguments the native ops take."""
        return self.rowptr, self.col, self.t_rowptr, self.t_col, self.perm

    def dense_mask(self):
        """(N, N) bool adjacency mask: mask[i, j] is True for every edge i -> j."""
        mask = torch.zeros(self.num_nodes, self.num_nodes, dtype=torch.bool, device=self.device)
        mask[self.row, self.col] = True
        return mask

    def to(self, device):
        """The same graph with its tensors on `device`."""
        move = lambda t: t.to(device)  # noqa: E731
        return LandmarkGraph(move(self.rowptr), move(self.col), move(self.row),
                             move(self.t_rowptr), move(self.t_col), move(self.perm),
                             self.num_nodes, self.has_empty_rows)

    def __repr__(self):
        return (f"LandmarkGraph(num_nodes={self.num_nodes}, num_edges={self.num_edges}, "
                f"device={self.device})")

    @classmethod
    def from_edges(cls, edges, num_nodes, *, symmetric=True, self_loops=True):
        """Graph from an (E, 2) list of directed edges (i, j), 0-based.

        symmetric: add j -> i for every i -> j (the official max(A, Aᵀ)); self_loops: add
        i -> i for every node (the official + I). Duplicate edges count once. The defaults
        are the official GCN recipe; the relative-location loss uses neither.
        """
        num_nodes = _check_num_nodes(num_nodes)
        edges = torch.as_tensor(edges)
        if edges.numel() == 0:  # also [], which torch reads as float
            edges = torch.zeros(0, 2, dtype=torch.int64)
        if edges.is_floating_point() or edges.is_complex() or edges.dtype == torch.bool:
            raise TypeError(f"edges must hold integers, got {edges.dtype}")
        if edges.dim() != 2 or edges.shape[1] != 2:
            raise ValueError(f"edges must have shape (E, 2), got {tuple(edges.shape)}")
        edges = edges.to("cpu", torch.int64)
        if edges.numel() and (edges.min() < 0 or edges.max() >= num_nodes):
            bad = edges[((edges < 0) | (edges >= num_nodes)).any(dim=1)][0].tolist()
            raise ValueError(f"edges must hold node indices in [0, {num_nodes}), got the edge "
                             f"{tuple(bad)}")
        src, dst = edges[:, 0], edges[:, 1]
        if symmetric:
            src, dst = torch.cat([src, dst]), torch.cat([dst, src])
        if self_loops:
            nodes = torch.arange(num_nodes)
            src, dst = torch.cat([src, nodes]), torch.cat([dst, nodes])
        return cls._from_pairs(src, dst, num_nodes)

    @classmethod
    def _from_pairs(cls, src, dst, num_nodes):
        # Row-major order = ascending key row·N + col; unique() sorts and drops duplicates.
        keys = torch.unique(src * num_nodes + dst)
        row, col = keys // num_nodes, keys % num_nodes
        counts = torch.bincount(row, minlength=num_nodes)
        rowptr = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
        # The transposed order sorts by (col, row); perm[t] = row-major index of that edge.
        perm = torch.argsort(col * num_nodes + row)
        t_col = row[perm]
        t_counts = torch.bincount(col, minlength=num_nodes)
        t_rowptr = torch.cat([torch.zeros(1, dtype=torch.int64), t_counts.cumsum(0)])
        return cls(rowptr, col, row, t_rowptr, t_col, perm, num_nodes,
                   bool((counts == 0).any()))

    @classmethod
    def from_edge_file(cls, path, num_nodes, *, symmetric=True, self_loops=True):
        """Graph from a text file of edges, one `i j [w]` a line (the SDFL face_graph format;
        a third column, the weight, is ignored). Options as `from_edges`."""
        edges = []
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                if not fields or fields[0].startswith("#"):
                    continue
                try:
                    pair = [float(x) for x in fields[:2]]
                except ValueError:
                    pair = []
                if len(pair) != 2 or any(not v.is_integer() for v in pair):
                    raise ValueError(f"{path}:{lineno}: expected 'i j [w]' with integer node "
                                     f"indices, got {line.strip()!r}")
                edges.append([int(v) for v in pair])
        return cls.from_edges(torch.tensor(edges, dtype=torch.int64).reshape(-1, 2), num_nodes,
                              symmetric=symmetric, self_loops=self_loops)

    @classmethod
    def preset(cls, name, *, symmetric=True, self_loops=True):
        """An official SDFL graph shipped with the package: "wflw98_top3" (WFLW, each node's 3
        most correlated landmarks: 470 edges with the default options), "wflw98", "300w68",
        "cofw29" (hand-made). Options as `from_edges`; see landmark_kernels/data/README.md."""
        if name not in PRESETS:
            raise ValueError(f"name must be one of {', '.join(map(repr, PRESETS))}, got {name!r}")
        filename, num_nodes = PRESETS[name]
        resource = importlib.resources.files("landmark_kernels") / "data" / filename
        with importlib.resources.as_file(resource) as path:
            return cls.from_edge_file(path, num_nodes, symmetric=symmetric,
                                      self_loops=self_loops)

    @classmethod
    def from_correlation(cls, shapes, k, *, symmetric=True, self_loops=True):
        """Graph linking each landmark to the k landmarks whose positions correlate most with
        its own over training shapes (S, N, 2), as SDFL built its top-k graphs.

        C = (|Cx| + |Cy|) / 2, Cx and Cy the Pearson correlation matrices of the x and y
        coordinates across the S shapes; each row keeps its top k+1 entries, itself included
        (ties broken by the lower index), which gives the k edges i -> j. A coordinate that
        never varies has no defined correlation: it counts as 0. Options as `from_edges`.
        """
        if not isinstance(shapes, torch.Tensor) or not shapes.is_floating_point():
            raise TypeError("shapes must be a floating torch.Tensor of shape (S, N, 2)")
        if shapes.dim() != 3 or shapes.shape[2] != 2 or shapes.shape[0] < 2:
            raise ValueError(f"shapes must have shape (S, N, 2) with S >= 2, got "
                             f"{tuple(shapes.shape)}")
        num_nodes = shapes.shape[1]
        if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < num_nodes:
            raise ValueError(f"k must be an integer in [0, {num_nodes - 1}], got {k!r}")
        coords = shapes.detach().to("cpu", torch.float64)
        centred = coords - coords.mean(dim=0)
        cov = torch.einsum("snc,smc->cnm", centred, centred)  # per coordinate, N x N
        std = cov.diagonal(dim1=1, dim2=2).sqrt()
        corr = (cov / (std[:, :, None] * std[:, None, :])).nan_to_num(0.0, 0.0, 0.0)
        score = corr.abs().mean(dim=0)
        score.fill_diagonal_(float("inf"))  # self first, whatever the ties
        order = torch.sort(score, dim=1, descending=True, stable=True).indices[:, :k + 1]
        src = torch.arange(num_nodes).repeat_interleave(k)
        dst = order[:, 1:].reshape(-1)
        return cls.from_edges(torch.stack([src, dst], dim=1), num_nodes, symmetric=symmetric,
                              self_loops=self_loops)
