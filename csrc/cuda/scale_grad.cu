// scale_grad_ on CUDA: the backward of the fused losses. The scale lives on the device; reading
// it on the host would stall the stream, so every block reads it and returns at once when it is
// 1 (the usual grad_output), which makes the common backward a single near-empty launch.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>

#include "../scale_grad.h"

namespace landmark_kernels {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t, typename scale_t>
__global__ void __launch_bounds__(kThreads)
    scale_kernel(scalar_t* grad, const scale_t* scale, int64_t n) {
  using T = at::opmath_type<scalar_t>;
  const T s = static_cast<T>(*scale);
  if (s == T(1)) return;
  const int64_t stride = int64_t(gridDim.x) * kThreads;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += stride)
    grad[i] = static_cast<scalar_t>(static_cast<T>(grad[i]) * s);
}

void scale_grad_cuda(const at::Tensor& grad, const at::Tensor& scale) {
  if (!check_scale_grad(grad, scale)) return scale_grad_elementwise(grad, scale);
  const int64_t n = grad.numel();
  if (n == 0) return;
  const c10::cuda::CUDAGuard guard(grad.device());
  // A grid-stride loop over a few waves: when s == 1 only these blocks start and exit.
  const int64_t waves = 4 * at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const int blocks = static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, waves));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "scale_grad_cuda",
                                  [&] {
    using scalar_g = scalar_t;
    AT_DISPATCH_FLOATING_TYPES(scale.scalar_type(), "scale_grad_cuda_scale", [&] {
      scale_kernel<scalar_g, scalar_t><<<blocks, kThreads, 0, stream>>>(
          grad.mutable_data_ptr<scalar_g>(), scale.const_data_ptr<scalar_t>(), n);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CUDA, m) { m.impl("scale_grad_", &scale_grad_cuda); }

}  // namespace landmark_kernels
