#pragma once
// What the CPU and CUDA graph kernels share on the device side (docs/graph.md): the CSR view of a
// landmark graph, range-guarded traversal, and the sparse softmax over a node's edges.
//
// Index values are validated on the host for CPU tensors (graph_ops.h); on CUDA that would need
// a host sync, so every index read here is range-checked instead: a corrupt graph passed
// straight to torch.ops gives wrong numbers, never an out-of-bounds access.
#include <cmath>
#include <cstdint>

#include "macros.h"

namespace landmark_kernels {

struct CsrView {
  const int64_t* rowptr;    // (N+1) CSR: edges of row i are rowptr[i] .. rowptr[i+1]
  const int64_t* col;       // (E) column of each edge; edge ids are row-major positions
  const int64_t* t_rowptr;  // (N+1) transposed CSR: edges of column j
  const int64_t* t_col;     // (E) row of each edge of the transposed CSR
  const int64_t* perm;      // (E) transposed position -> row-major edge id
  int64_t nodes, edges;
};

// [begin, end) of node i's list in `ptr`, clamped to [0, edges].
LK_HD void list_range(const int64_t* ptr, int64_t i, int64_t edges, int64_t* begin,
                      int64_t* end) {
  int64_t b = ptr[i], e = ptr[i + 1];
  b = b < 0 ? 0 : (b > edges ? edges : b);
  e = e < b ? b : (e > edges ? edges : e);
  *begin = b;
  *end = e;
}

// Entry t of a node's gather list: in the CSR (by_rows: the node is the edge's row, `other` its
// column) or in the transposed CSR (the node is the column, `other` the row).
struct ListEntry {
  int64_t other, edge;
  bool valid;
};

LK_HD ListEntry list_entry(const CsrView& g, bool by_rows, int64_t t) {
  const int64_t other = by_rows ? g.col[t] : g.t_col[t];
  const int64_t edge = by_rows ? t : g.perm[t];
  return {other, edge, other >= 0 && other < g.nodes && edge >= 0 && edge < g.edges};
}

// The softmax over the edges of row r (docs/graph.md: softmax of the dense row with −9e15 off the
// mask, i.e. over the row's edges only): max and 1/Σ exp(e − max). An empty row has no weights.
template <typename T>
LK_HD T exp_of(T x) {
  using std::exp;  // float and double overloads, host and device
  return exp(x);
}

template <typename T>
struct RowSoftmax {
  T max, inv_sum;
  LK_HD T weight(T logit) const { return exp_of(logit - max) * inv_sum; }
};

template <typename T, typename scalar_t>
LK_HD RowSoftmax<T> row_softmax(const scalar_t* logits, const CsrView& g, int64_t r) {
  int64_t begin, end;
  list_range(g.rowptr, r, g.edges, &begin, &end);
  T m = T(-INFINITY);
  for (int64_t k = begin; k < end; ++k) {
    const T e = T(logits[k]);
    m = e > m ? e : m;
  }
  T sum = T(0);
  for (int64_t k = begin; k < end; ++k) sum += exp_of(T(logits[k]) - m);
  return {m, end > begin ? T(1) / sum : T(0)};
}

// Out-degree of node i (0 when its CSR range is empty or out of bounds).
LK_HD int64_t out_degree(const CsrView& g, int64_t i) {
  int64_t begin, end;
  list_range(g.rowptr, i, g.edges, &begin, &end);
  return end - begin;
}

// One entry of Δ = L·x (transpose = false) or Lᵀ·x, L = I − D⁻¹A (docs/graph.md, relative-location
// loss): A the directed edges, D the out-degrees, and a node without out-edges has the row e_i
// (Δ_i = x_i). x_col points at x[b, 0, d]; node n's value is x_col[n·node_stride].
//   (L·x)_i  = x_i − (1/d_i)·Σ_{i→j} x_j
//   (Lᵀ·x)_j = x_j − Σ_{i→j} x_i / d_i
template <typename T, typename scalar_t>
LK_HD T laplacian_entry(const CsrView& g, const scalar_t* x_col, int64_t node_stride, int64_t i,
                        bool transpose) {
  int64_t begin, end;
  list_range(transpose ? g.t_rowptr : g.rowptr, i, g.edges, &begin, &end);
  T sum = T(0);
  for (int64_t t = begin; t < end; ++t) {
    const int64_t other = transpose ? g.t_col[t] : g.col[t];
    if (other < 0 || other >= g.nodes) continue;
    const T x = T(x_col[other * node_stride]);
    sum += transpose ? x / T(out_degree(g, other)) : x;
  }
  const T own = T(x_col[i * node_stride]);
  if (transpose) return own - sum;
  return end > begin ? own - sum / T(end - begin) : own;
}

}  // namespace landmark_kernels
