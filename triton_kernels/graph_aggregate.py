"""SDFL sparse graph-relational aggregation (docs/graph.md) in Triton: forward and backward.

Same contract as the C++ ops `landmark_kernels::graph_relational_aggregate[_backward]`
(csrc/registration.cpp) and the same traversal as csrc/graph_csr.h: a node's gather list is its
CSR row (`by_rows`) or its transposed-CSR column; every edge is weighted by the softmax over its
own CSR row; every index read is range-guarded (a corrupt graph on CUDA gives wrong numbers,
never an out-of-bounds access).

The softmax weights a (S,E), S = B for per-sample logits else 1, are computed once per call
(_edge_weights_kernel: per CSR row and block of samples), so the gather kernels' edge loops
hold no exponentials and no per-edge walk of the neighbour's row (the transposed lists).

Forward: one program per (sample b, node o, F tile). Backward, with no float atomics:
  1. per (group of UNITS (b, s) units, F tile): grad_h_self, grad_h_neigh of each s by
     gathering grad_out over the opposite list, the edge scores da = <grad_out[b,o], x_s> of the
     tile (one partial per tile), and the tile's bias partial sum over the group;
  2. per (CSR row r, block of samples): the softmax backward de = a·(da − Σ_row a·da); per-sample
     logits get de, shared logits a partial sum over the block;
  3. fixed-order column sums of the partials (bias; shared logits).
"""

import torch
import triton
import triton.language as tl

_MAX_BLOCK_F = 256
_UNITS = 8          # (b, s) units per backward program: the bias partials are 1/8 of grad_out
_MAX_BLOCK_B = 128
_BLOCK_C = 128


@triton.jit
def _list_range(ptr, i, E):
    begin = tl.minimum(tl.maximum(tl.load(ptr + i), 0), E)
    end = tl.minimum(tl.maximum(tl.load(ptr + i + 1), begin), E)
    return begin, end


@triton.jit
def _list_entry(col_ptr, t_col_ptr, perm_ptr, t, N, E, BY_ROWS: tl.constexpr):
    """(other node, edge id, valid) of entry t of a CSR row (BY_ROWS) or transposed column."""
    if BY_ROWS:
        other = tl.load(col_ptr + t)
        edge = t
    else:
        other = tl.load(t_col_ptr + t)
        edge = tl.load(perm_ptr + t)
    valid = (other >= 0) & (other < N) & (edge >= 0) & (edge < E)
    return tl.where(valid, other, 0), tl.where(valid, edge, 0), valid


@triton.jit
def _edge_weights_kernel(lg_ptr, w_ptr, rowptr_ptr, S, E, lg_sb, CT: tl.constexpr,
                         BLOCK_B: tl.constexpr):
    """w[b, k] = softmax over CSR row r of the logits, for the edges k of row r (program 0)
    and the samples b of a block (program 1); w is (S, E) in the compute type."""
    r = tl.program_id(0)
    b = (tl.program_id(1) * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)
    bmask = b < S
    begin, end = _list_range(rowptr_ptr, r, E)
    m = tl.full([BLOCK_B], float("-inf"), CT)
    for k in range(begin, end):
        m = tl.maximum(m, tl.load(lg_ptr + b * lg_sb + k, mask=bmask, other=0.0).to(CT))
    s = tl.zeros([BLOCK_B], CT)
    for k in range(begin, end):
        s += tl.exp(tl.load(lg_ptr + b * lg_sb + k, mask=bmask, other=0.0).to(CT) - m)
    inv = 1.0 / s
    for k in range(begin, end):
        a = tl.exp(tl.load(lg_ptr + b * lg_sb + k, mask=bmask, other=0.0).to(CT) - m) * inv
        tl.store(w_ptr + b * E + k, a, mask=bmask)


@triton.jit
def _forward_kernel(hs_ptr, hn_ptr, w_ptr, bias_ptr, out_ptr,
                    rowptr_ptr, col_ptr, t_rowptr_ptr, t_col_ptr, perm_ptr,
                    N, F, E, hs_sb, hs_sn, hn_sb, hn_sn, w_sb,
                    HAS_BIAS: tl.constexpr, BY_ROWS: tl.constexpr, CT: tl.constexpr,
                    BLOCK_F: tl.constexpr):
    u = tl.program_id(0)
    b = (u // N).to(tl.int64)
    o = u % N
    f = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
    fmask = f < F
    w = w_ptr + b * w_sb
    if HAS_BIAS:
        acc = tl.load(bias_ptr + f, mask=fmask, other=0.0).to(CT)
    else:
        acc = tl.zeros([BLOCK_F], CT)
    if BY_ROWS:
        begin, end = _list_range(rowptr_ptr, o, E)
    else:  # the edge other -> o is normalised over other's row (DynamicGConv): in w already
        begin, end = _list_range(t_rowptr_ptr, o, E)
    for t in range(begin, end):
        other, edge, valid = _list_entry(col_ptr, t_col_ptr, perm_ptr, t, N, E, BY_ROWS)
        a = tl.where(valid, tl.load(w + edge), 0.0)
        is_self = other == o
        # Two masked loads, of which only one reads memory: the self edge takes h_self.
        x = tl.load(hs_ptr + b * hs_sb + o * hs_sn + f, mask=fmask & is_self, other=0.0) + \
            tl.load(hn_ptr + b * hn_sb + other * hn_sn + f, mask=fmask & (other != o),
                    other=0.0)
        acc += a * x.to(CT)
    tl.store(out_ptr + (b * N + o) * F + f, acc.to(out_ptr.dtype.element_ty), mask=fmask)


@triton.jit
def _backward_nodes_kernel(go_ptr, hs_ptr, hn_ptr, w_ptr, gs_ptr, gn_ptr, da_ptr, bias_part_ptr,
                           rowptr_ptr, col_ptr, t_rowptr_ptr, t_col_ptr, perm_ptr,
                           B, N, F, E, go_sb, go_sn, hs_sb, hs_sn, hn_sb, hn_sn, w_sb,
                           BIAS: tl.constexpr, BY_ROWS: tl.constexpr, CT: tl.constexpr,
                           UNITS: tl.constexpr, BLOCK_F: tl.constexpr):
    group = tl.program_id(0)
    tile = tl.program_id(1)
    f = tile * BLOCK_F + tl.arange(0, BLOCK_F)
    fmask = f < F
    da_tile = da_ptr + tile.to(tl.int64) * B * E
    bias_acc = tl.zeros([BLOCK_F], CT)
    for i in range(UNITS):
        u = group * UNITS + i
        if u < B * N:
            b = (u // N).to(tl.int64)
            s = u % N
            w = w_ptr + b * w_sb
            x_self = tl.load(hs_ptr + b * hs_sb + s * hs_sn + f, mask=fmask, other=0.0).to(CT)
            x_neigh = tl.load(hn_ptr + b * hn_sb + s * hn_sn + f, mask=fmask, other=0.0).to(CT)
            acc_self = tl.zeros([BLOCK_F], CT)
            acc_neigh = tl.zeros([BLOCK_F], CT)
            if BY_ROWS:
                begin, end = _list_range(rowptr_ptr, s, E)
            else:  # the edge s -> other (row orientation) is normalised over other's row: in w
                begin, end = _list_range(t_rowptr_ptr, s, E)
            for t in range(begin, end):
                other, edge, valid = _list_entry(col_ptr, t_col_ptr, perm_ptr, t, N, E, BY_ROWS)
                a = tl.where(valid, tl.load(w + edge), 0.0)
                g = tl.load(go_ptr + b * go_sb + other * go_sn + f, mask=fmask & valid,
                            other=0.0).to(CT)
                is_self = other == s
                x = tl.where(is_self, x_self, x_neigh)
                tl.store(da_tile + b * E + edge, tl.sum(g * x, axis=0), mask=valid)
                acc_self += tl.where(is_self, a, 0.0) * g
                acc_neigh += tl.where(is_self, 0.0, a) * g
            row = (b * N + s) * F + f
            tl.store(gs_ptr + row, acc_self.to(gs_ptr.dtype.element_ty), mask=fmask)
            tl.store(gn_ptr + row, acc_neigh.to(gn_ptr.dtype.element_ty), mask=fmask)
            if BIAS:
                bias_acc += tl.load(go_ptr + b * go_sb + s * go_sn + f, mask=fmask,
                                    other=0.0).to(CT)
    if BIAS:
        tl.store(bias_part_ptr + group.to(tl.int64) * F + f, bias_acc, mask=fmask)


@triton.jit
def _da_of(da_ptr, b, bmask, k, B, E, N_TILES: tl.constexpr, CT: tl.constexpr):
    """da[b, k] summed over the F tiles, in tile order (vector over the samples b)."""
    total = tl.zeros(b.shape, CT)
    for tile in range(N_TILES):
        total += tl.load(da_ptr + tile * B * E + b * E + k, mask=bmask, other=0.0)
    return total


@triton.jit
def _backward_rows_kernel(w_ptr, da_ptr, gl_ptr, part_ptr, rowptr_ptr, B, E, w_sb,
                          PER_SAMPLE: tl.constexpr, N_TILES: tl.constexpr, CT: tl.constexpr,
                          BLOCK_B: tl.constexpr):
    r = tl.program_id(0)
    block = tl.program_id(1)
    b = block * BLOCK_B + tl.arange(0, BLOCK_B)
    bmask = b < B
    b64 = b.to(tl.int64)
    begin, end = _list_range(rowptr_ptr, r, E)
    # The softmax weights of row r per sample (broadcast over b when shared: w_sb = 0).
    row_dot = tl.zeros([BLOCK_B], CT)
    for k in range(begin, end):
        a = tl.load(w_ptr + b64 * w_sb + k, mask=bmask, other=0.0)
        row_dot += a * _da_of(da_ptr, b64, bmask, k, B, E, N_TILES, CT)
    for k in range(begin, end):
        a = tl.load(w_ptr + b64 * w_sb + k, mask=bmask, other=0.0)
        de = a * (_da_of(da_ptr, b64, bmask, k, B, E, N_TILES, CT) - row_dot)
        if PER_SAMPLE:
            tl.store(gl_ptr + b64 * E + k, de.to(gl_ptr.dtype.element_ty), mask=bmask)
        else:
            tl.store(part_ptr + block * E + k, tl.sum(tl.where(bmask, de, 0.0), axis=0))


@triton.jit
def _column_sum_kernel(src_ptr, dst_ptr, R, C, CT: tl.constexpr, BLOCK_C: tl.constexpr):
    """dst[c] = Σ_r src[r, c], rows added in order: deterministic."""
    c = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = c < C
    acc = tl.zeros([BLOCK_C], CT)
    for r in range(R):
        acc += tl.load(src_ptr + r * C + c, mask=cmask, other=0.0)
    tl.store(dst_ptr + c, acc.to(dst_ptr.dtype.element_ty), mask=cmask)


def _compute_types(dtype):
    """fp16/bf16/fp32 compute in fp32; fp64 stays fp64 (gradcheck under the interpreter)."""
    return (torch.float64, tl.float64) if dtype == torch.float64 else (torch.float32, tl.float32)


def _unit_inner_stride(h):
    return h if h.shape[2] <= 1 or h.stride(2) == 1 else h.contiguous()


def _edge_weights(logits, rowptr, nodes, ct, acc_dtype):
    """(w, w_sb): the softmax weight of every edge over its CSR row, (S, E) with S = B for
    per-sample logits (w_sb = E) else 1 (w_sb = 0: shared across the batch)."""
    edges = logits.shape[-1]
    samples = logits.shape[0] if logits.dim() == 2 else 1
    w = torch.zeros((samples, edges), dtype=acc_dtype, device=logits.device)
    if samples and edges and nodes:
        block_b = min(triton.next_power_of_2(samples), _MAX_BLOCK_B)
        _edge_weights_kernel[(nodes, triton.cdiv(samples, block_b))](
            logits, w, rowptr, samples, edges, edges if logits.dim() == 2 else 0, CT=ct,
            BLOCK_B=block_b)
    return w, edges if logits.dim() == 2 else 0


def _block_f(features):
    return min(triton.next_power_of_2(max(features, 1)), _MAX_BLOCK_F)


def _num_warps(block_f):
    """Four features a thread: 16-byte loads and stores in fp32 (BLOCK_F=256: 2 warps)."""
    return max(1, block_f // 128)


def aggregate_forward(h_self, h_neigh, logits, bias, rowptr, col, t_rowptr, t_col, perm,
                      transposed):
    """Triton body of `landmark_kernels::graph_relational_aggregate_triton` (arguments checked
    by the caller). Returns out (B,N,F), contiguous, in h_self's dtype."""
    h_self, h_neigh = _unit_inner_stride(h_self), _unit_inner_stride(h_neigh)
    logits = logits.contiguous()
    batch, nodes, features = h_self.shape
    edges = col.shape[0]
    out = torch.empty((batch, nodes, features), dtype=h_self.dtype, device=h_self.device)
    if out.numel() == 0:
        return out
    acc_dtype, ct = _compute_types(h_self.dtype)
    w, w_sb = _edge_weights(logits, rowptr, nodes, ct, acc_dtype)
    block_f = _block_f(features)
    _forward_kernel[(batch * nodes, triton.cdiv(features, block_f))](
        h_self, h_neigh, w, bias.contiguous() if bias is not None else h_self, out,
        rowptr, col, t_rowptr, t_col, perm, nodes, features, edges,
        h_self.stride(0), h_self.stride(1), h_neigh.stride(0), h_neigh.stride(1), w_sb,
        HAS_BIAS=bias is not None, BY_ROWS=not transposed, CT=ct, BLOCK_F=block_f,
        num_warps=_num_warps(block_f))
    return out


def aggregate_backward(grad_out, h_self, h_neigh, logits, rowptr, col, t_rowptr, t_col, perm,
                       transposed, bias_grad):
    """Triton body of `landmark_kernels::graph_relational_aggregate_backward_triton`: returns
    (grad_h_self, grad_h_neigh, grad_logits, grad_bias), grad_bias empty unless bias_grad."""
    grad_out = _unit_inner_stride(grad_out)
    h_self, h_neigh = _unit_inner_stride(h_self), _unit_inner_stride(h_neigh)
    logits = logits.contiguous()
    batch, nodes, features = h_self.shape
    edges = col.shape[0]
    per_sample = logits.dim() == 2
    device, dtype = h_self.device, h_self.dtype
    acc_dtype, ct = _compute_types(dtype)
    grad_self = torch.empty((batch, nodes, features), dtype=dtype, device=device)
    grad_neigh = torch.empty_like(grad_self)
    grad_logits = torch.empty(logits.shape, dtype=dtype, device=device)
    grad_bias = torch.empty(features if bias_grad else 0, dtype=dtype, device=device)
    if batch == 0 or features == 0:
        grad_logits.zero_()
        grad_bias.zero_()
        return grad_self, grad_neigh, grad_logits, grad_bias

    block_f = _block_f(features)
    tiles = triton.cdiv(features, block_f)
    groups = triton.cdiv(batch * nodes, _UNITS)
    da = torch.zeros((tiles, batch, edges), dtype=acc_dtype, device=device)
    bias_part = torch.empty((groups, features) if bias_grad else (0,), dtype=acc_dtype,
                            device=device)
    w, w_sb = _edge_weights(logits, rowptr, nodes, ct, acc_dtype)
    _backward_nodes_kernel[(groups, tiles)](
        grad_out, h_self, h_neigh, w, grad_self, grad_neigh, da, bias_part,
        rowptr, col, t_rowptr, t_col, perm, batch, nodes, features, edges,
        grad_out.stride(0), grad_out.stride(1), h_self.stride(0), h_self.stride(1),
        h_neigh.stride(0), h_neigh.stride(1), w_sb,
        BIAS=bias_grad, BY_ROWS=transposed, CT=ct, UNITS=_UNITS, BLOCK_F=block_f,
        num_warps=_num_warps(block_f))

    block_b = min(triton.next_power_of_2(batch), _MAX_BLOCK_B)
    b_blocks = triton.cdiv(batch, block_b)
    logit_part = torch.empty((0,) if per_sample else (b_blocks, edges), dtype=acc_dtype,
                             device=device)
    _backward_rows_kernel[(nodes, b_blocks)](
        w, da, grad_logits, logit_part, rowptr, batch, edges, w_sb,
        PER_SAMPLE=per_sample, N_TILES=tiles, CT=ct, BLOCK_B=block_b)
    if not per_sample and edges:
        _column_sum_kernel[(triton.cdiv(edges, _BLOCK_C),)](
            logit_part, grad_logits, b_blocks, edges, CT=ct, BLOCK_C=_BLOCK_C)
    if bias_grad:
        _column_sum_kernel[(triton.cdiv(features, _BLOCK_C),)](
            bias_part, grad_bias, groups, features, CT=ct, BLOCK_C=_BLOCK_C)
    return grad_self, grad_neigh, grad_logits, grad_bias
