// Δ = L·x and Lᵀ·x, L = I − D⁻¹A (SDFL relative-location loss, docs/graph.md), on CUDA: one thread
// per
// output entry (b, i, d), a gather over node i's list (graph_csr.h laplacian_entry), so no
// atomics; the backward of one orientation is the other.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../graph_ops.h"

namespace landmark_kernels {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    laplacian_kernel(const scalar_t* x, scalar_t* out, CsrView g, int64_t numel, int64_t dims,
                     bool transpose) {
  using T = at::opmath_type<scalar_t>;
  const int64_t e = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (e >= numel) return;
  const int64_t d = e % dims, u = e / dims;
  const int64_t b = u / g.nodes, i = u % g.nodes;
  out[e] = scalar_t(laplacian_entry<T>(g, x + b * g.nodes * dims + d, dims, i, transpose));
}

at::Tensor graph_laplacian_cuda(const at::Tensor& x_in, const at::Tensor& rowptr,
                                const at::Tensor& col, const at::Tensor& t_rowptr,
                                const at::Tensor& t_col, bool transpose) {
  const at::Tensor x = check_laplacian_input(x_in);
  const GraphArgs graph =
      check_graph(rowptr, col, t_rowptr, t_col, std::nullopt, x.size(1), x.device());
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty_like(x);
  const int64_t numel = x.numel();
  if (numel == 0) return out;
  const int64_t blocks = (numel + kThreads - 1) / kThreads;
  TORCH_CHECK(blocks <= INT32_MAX, "graph_laplacian: x too large");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "graph_laplacian_cuda", [&] {
    laplacian_kernel<scalar_t><<<static_cast<int>(blocks), kThreads, 0,
                                 at::cuda::getCurrentCUDAStream()>>>(
        x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), graph.view(), numel,
        x.size(2), transpose);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CUDA, m) { m.impl("graph_laplacian", &graph_laplacian_cuda); }

}  // namespace landmark_kernels
