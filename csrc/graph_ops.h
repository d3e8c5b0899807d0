#pragma once
// What the CPU and CUDA graph ops share on the host (docs/graph.md): checks of the graph's CSR
// tensors
// and of the aggregation's arguments.
#include <ATen/ATen.h>

#include <algorithm>
#include <optional>
#include <tuple>
#include <vector>

#include "common.h"
#include "graph_csr.h"

namespace landmark_kernels {

struct GraphArgs {
  at::Tensor rowptr, col, t_rowptr, t_col, perm;  // contiguous int64
  int64_t nodes, edges;
  CsrView view() const {
    return {rowptr.const_data_ptr<int64_t>(), col.const_data_ptr<int64_t>(),
            t_rowptr.const_data_ptr<int64_t>(), t_col.const_data_ptr<int64_t>(),
            perm.numel() ? perm.const_data_ptr<int64_t>() : nullptr, nodes, edges};
  }
};

inline at::Tensor check_index(const at::Tensor& t, const char* name, int64_t size,
                              const at::Device& device) {
  check_defined(t, name);
  TORCH_CHECK(t.scalar_type() == at::kLong, name, " must be an int64 tensor, got ",
              t.scalar_type());
  TORCH_CHECK(t.dim() == 1 && t.size(0) == size, name, " must have shape (", size, "), got ",
              t.sizes());
  TORCH_CHECK(t.device() == device, name, " is on ", t.device(), " but the features are on ",
              device);
  return t.contiguous();
}

// The values of a CSR (ptr, idx): ptr starts at 0, never decreases, ends at E; idx in [0, N).
inline void check_csr_values(const int64_t* ptr, const int64_t* idx, int64_t nodes,
                             int64_t edges, const char* ptr_name, const char* idx_name) {
  TORCH_CHECK(ptr[0] == 0 && ptr[nodes] == edges, ptr_name, " must start at 0 and end at E = ",
              edges, ", got ", ptr[0], " and ", ptr[nodes]);
  for (int64_t i = 0; i < nodes; ++i)
    TORCH_CHECK(ptr[i] <= ptr[i + 1], ptr_name, " must be non-decreasing, got ", ptr[i],
                " then ", ptr[i + 1], " at node ", i);
  for (int64_t k = 0; k < edges; ++k)
    TORCH_CHECK(idx[k] >= 0 && idx[k] < nodes, idx_name, " must hold node indices in [0, ",
                nodes, "), got ", idx[k]);
}

// Host checks of the graph's CSR tensors. For CPU tensors also their values, including that the
// transposed CSR and perm describe the same edges (O(N + E)); on CUDA reading them would need a
// host sync, and the kernels range-guard every index instead (graph_csr.h).
inline GraphArgs check_graph(const at::Tensor& rowptr, const at::Tensor& col,
                             const at::Tensor& t_rowptr, const at::Tensor& t_col,
                             const std::optional<at::Tensor>& perm, int64_t nodes,
                             const at::Device& device) {
  check_defined(col, "col");
  TORCH_CHECK(col.dim() == 1, "col must be 1-D (E), got ", col.sizes());
  const int64_t edges = col.size(0);
  GraphArgs g;
  g.nodes = nodes;
  g.edges = edges;
  g.rowptr = check_index(rowptr, "rowptr", nodes + 1, device);
  g.col = check_index(col, "col", edges, device);
  g.t_rowptr = check_index(t_rowptr, "t_rowptr", nodes + 1, device);
  g.t_col = check_index(t_col, "t_col", edges, device);
  g.perm = perm.has_value() ? check_index(*perm, "perm", edges, device)
                            : at::empty({0}, col.options());
  if (device.is_cpu()) {
    const CsrView v = g.view();
    check_csr_values(v.rowptr, v.col, nodes, edges, "rowptr", "col");
    check_csr_values(v.t_rowptr, v.t_col, nodes, edges, "t_rowptr", "t_col");
    // Edge (i, j) as the key i·N + j, from each side.
    std::vector<int64_t> csr_keys(edges), t_keys(edges);
    for (int64_t i = 0; i < nodes; ++i)
      for (int64_t k = v.rowptr[i]; k < v.rowptr[i + 1]; ++k)
        csr_keys[k] = i * nodes + v.col[k];
    for (int64_t j = 0; j < nodes; ++j)
      for (int64_t t = v.t_rowptr[j]; t < v.t_rowptr[j + 1]; ++t)
        t_keys[t] = v.t_col[t] * nodes + j;
    if (v.perm != nullptr) {
      std::vector<char> seen(edges, 0);
      for (int64_t t = 0; t < edges; ++t) {
        const int64_t k = v.perm[t];
        TORCH_CHECK(k >= 0 && k < edges && !seen[k], "perm must be a permutation of [0, ",
                    edges, "), got ", k, " at position ", t);
        seen[k] = 1;
      }
      for (int64_t t = 0; t < edges; ++t) {
        const int64_t k = v.perm[t];
        TORCH_CHECK(csr_keys[k] == t_keys[t], "t_rowptr, t_col and perm must describe the "
                    "edges of rowptr and col: transposed position ", t, " is (",
                    t_keys[t] / nodes, ", ", t_keys[t] % nodes, ") but edge ", k, " is (",
                    csr_keys[k] / nodes, ", ", csr_keys[k] % nodes, ")");
      }
    } else {
      std::sort(csr_keys.begin(), csr_keys.end());
      std::sort(t_keys.begin(), t_keys.end());
      TORCH_CHECK(csr_keys == t_keys,
                  "t_rowptr and t_col must describe the edges of rowptr and col, transposed");
    }
  }
  return g;
}

// h (B,N,F) with unit stride along F, as the kernels index it: b·stride_b + n·stride_n + f.
inline at::Tensor unit_inner_stride(const at::Tensor& h) {
  return h.size(2) <= 1 || h.stride(2) == 1 ? h : h.contiguous();
}

struct AggregateProblem {
  at::Tensor h_self, h_neigh, logits, bias;  // h: unit stride along F; logits, bias contiguous
  int64_t batch, nodes, features;
  bool per_sample;  // logits (B,E), else (E,) shared across the batch
  GraphArgs graph;
};

inline AggregateProblem prepare_aggregate(const at::Tensor& h_self, const at::Tensor& h_neigh,
                                          const at::Tensor& logits,
                                          const std::optional<at::Tensor>& bias,
                                          const at::Tensor& rowptr, const at::Tensor& col,
                                          const at::Tensor& t_rowptr, const at::Tensor& t_col,
                                          const at::Tensor& perm) {
  TORCH_CHECK(h_self.dim() == 3, "h_self must be (B,N,F), got ", h_self.sizes());
  check_floating(h_self, "h_self");
  check_like(h_neigh, "h_neigh", h_self, "h_self");
  TORCH_CHECK(h_neigh.sizes() == h_self.sizes(), "h_neigh must have the shape of h_self ",
              h_self.sizes(), ", got ", h_neigh.sizes());
  check_like(logits, "logits", h_self, "h_self");
  AggregateProblem p;
  p.batch = h_self.size(0);
  p.nodes = h_self.size(1);
  p.features = h_self.size(2);
  TORCH_CHECK(p.nodes >= 1, "h_self must have at least one node, got ", h_self.sizes());
  p.graph = check_graph(rowptr, col, t_rowptr, t_col, perm, p.nodes, h_self.device());
  const int64_t edges = p.graph.edges;
  p.per_sample = logits.dim() == 2;
  TORCH_CHECK((logits.dim() == 1 && logits.size(0) == edges) ||
                  (p.per_sample && logits.size(0) == p.batch && logits.size(1) == edges),
              "logits must be (E,) = (", edges, ") or (B,E) = (", p.batch, ",", edges,
              "), got ", logits.sizes());
  if (bias.has_value()) {
    check_like(*bias, "bias", h_self, "h_self");
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == p.features, "bias must be (F,) = (",
                p.features, "), got ", bias->sizes());
    p.bias = bias->contiguous();
  }
  p.h_self = unit_inner_stride(h_self);
  p.h_neigh = unit_inner_stride(h_neigh);
  p.logits = logits.contiguous();
  return p;
}

// x (B,N,D) of the Laplacian op, contiguous.
inline at::Tensor check_laplacian_input(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 3, "x must be (B,N,D), got ", x.sizes());
  check_floating(x, "x");
  TORCH_CHECK(x.size(1) >= 1, "x must have at least one node, got ", x.sizes());
  return x.contiguous();
}

inline void check_aggregate_grad(const at::Tensor& grad_out, const at::Tensor& h_self) {
  check_like(grad_out, "grad_out", h_self, "h_self");
  TORCH_CHECK(grad_out.sizes() == h_self.sizes(), "grad_out must have the shape of h_self ",
              h_self.sizes(), ", got ", grad_out.sizes());
}

// (grad_h_self, grad_h_neigh, grad_logits, grad_bias): contiguous, in the inputs' dtype;
// grad_bias is empty unless requested.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> allocate_aggregate_grads(
    const AggregateProblem& p, bool bias_grad) {
  const auto options = p.h_self.options();
  return {at::empty({p.batch, p.nodes, p.features}, options),
          at::empty({p.batch, p.nodes, p.features}, options),
          at::empty(p.logits.sizes(), options),
          at::empty({bias_grad ? p.features : 0}, options)};
}

}  // namespace landmark_kernels
