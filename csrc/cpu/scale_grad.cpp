// scale_grad_ on the CPU: the backward of the fused losses.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../scale_grad.h"

namespace landmark_kernels {
namespace {

void scale_grad_cpu(const at::Tensor& grad, const at::Tensor& scale) {
  if (!check_scale_grad(grad, scale)) return scale_grad_elementwise(grad, scale);
  const double s = scale.item<double>();  // a CPU scalar: no device to wait for
  if (s == 1.0) return;                   // the common grad_output: nothing to do
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "scale_grad_cpu",
                                  [&] {
    using T = at::opmath_type<scalar_t>;
    scalar_t* data = grad.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, grad.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) data[i] = scalar_t(T(data[i]) * T(s));
    });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CPU, m) { m.impl("scale_grad_", &scale_grad_cpu); }

}  // namespace landmark_kernels
