"""Δ = L·x and Lᵀ·x, L = I − D⁻¹A (SDFL relative-location loss, docs/graph.md), in Triton.

Same contract as the C++ op `landmark_kernels::graph_laplacian` and the same formula as
csrc/graph_csr.h `laplacian_entry`: one program per (sample b, node i), a vector over the D
coordinates (one warp: D is 2 or 3), a gather over node i's CSR row (L) or transposed-CSR
column (Lᵀ); a node without out-edges keeps Δ_i = x_i. Every index read is range-guarded.
"""

import torch
import triton
import triton.language as tl


@triton.jit
def _degree(rowptr_ptr, r, E):
    begin = tl.minimum(tl.maximum(tl.load(rowptr_ptr + r), 0), E)
    end = tl.minimum(tl.maximum(tl.load(rowptr_ptr + r + 1), begin), E)
    return begin, end


@triton.jit
def _laplacian_kernel(x_ptr, out_ptr, rowptr_ptr, col_ptr, t_rowptr_ptr, t_col_ptr, N, D, E,
                      TRANSPOSE: tl.constexpr, CT: tl.constexpr, BLOCK_D: tl.constexpr):
    u = tl.program_id(0).to(tl.int64)
    b = u // N
    i = u % N
    d = tl.arange(0, BLOCK_D)
    dmask = d < D
    x_b = x_ptr + b * N * D + d
    if TRANSPOSE:
        begin, end = _degree(t_rowptr_ptr, i, E)
    else:
        begin, end = _degree(rowptr_ptr, i, E)
    acc = tl.zeros([BLOCK_D], CT)
    for t in range(begin, end):
        if TRANSPOSE:
            other = tl.load(t_col_ptr + t)
        else:
            other = tl.load(col_ptr + t)
        valid = (other >= 0) & (other < N)
        other = tl.where(valid, other, 0)
        x = tl.load(x_b + other * D, mask=dmask & valid, other=0.0).to(CT)
        if TRANSPOSE:  # the edge other -> i is normalised by other's out-degree
            r0, r1 = _degree(rowptr_ptr, other, E)
            x = x / tl.maximum(r1 - r0, 1).to(CT)
        acc += x
    own = tl.load(x_b + i * D, mask=dmask, other=0.0).to(CT)
    if TRANSPOSE:
        delta = own - acc
    else:
        delta = tl.where(end > begin, own - acc / tl.maximum(end - begin, 1).to(CT), own)
    tl.store(out_ptr + u * D + d, delta.to(out_ptr.dtype.element_ty), mask=dmask)


def graph_laplacian(x, rowptr, col, t_rowptr, t_col, transpose):
    """Triton body of `landmark_kernels::graph_laplacian_triton` (arguments checked by the
    caller): L·x, or Lᵀ·x for transpose=True, x (B,N,D); returns a new (B,N,D) tensor."""
    x = x.contiguous()
    out = torch.empty_like(x)
    batch, nodes, dims = x.shape
    if out.numel() == 0:
        return out
    ct = tl.float64 if x.dtype == torch.float64 else tl.float32
    _laplacian_kernel[(batch * nodes,)](
        x, out, rowptr, col, t_rowptr, t_col, nodes, dims, col.shape[0],
        TRANSPOSE=bool(transpose), CT=ct, BLOCK_D=triton.next_power_of_2(dims), num_warps=1)
    return out
