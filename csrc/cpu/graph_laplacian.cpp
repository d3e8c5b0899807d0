// Δ = L·x and Lᵀ·x, L = I − D⁻¹A (SDFL relative-location loss, docs/graph.md), on the CPU. Each
// output
// entry is a gather over one node's list (graph_csr.h laplacian_entry): no atomics, and the
// backward of one orientation is the other.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../graph_ops.h"

namespace landmark_kernels {
namespace {

at::Tensor graph_laplacian_cpu(const at::Tensor& x_in, const at::Tensor& rowptr,
                               const at::Tensor& col, const at::Tensor& t_rowptr,
                               const at::Tensor& t_col, bool transpose) {
  const at::Tensor x = check_laplacian_input(x_in);
  const GraphArgs graph =
      check_graph(rowptr, col, t_rowptr, t_col, std::nullopt, x.size(1), x.device());
  at::Tensor out = at::empty_like(x);
  const int64_t nodes = x.size(1), dims = x.size(2);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "graph_laplacian_cpu",
                                  [&] {
    using T = at::opmath_type<scalar_t>;
    const CsrView g = graph.view();
    const scalar_t* x_data = x.const_data_ptr<scalar_t>();
    scalar_t* out_data = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, x.size(0) * nodes, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t u = begin; u < end; ++u) {
        const int64_t b = u / nodes, i = u % nodes;
        for (int64_t d = 0; d < dims; ++d)
          out_data[u * dims + d] = scalar_t(
              laplacian_entry<T>(g, x_data + b * nodes * dims + d, dims, i, transpose));
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CPU, m) { m.impl("graph_laplacian", &graph_laplacian_cpu); }

}  // namespace landmark_kernels
