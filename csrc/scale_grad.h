#pragma once
// What the CPU and CUDA scale_grad_ kernels share: checks, and the ATen path for a full scale.
#include <ATen/ATen.h>

namespace landmark_kernels {

// True when scale is one number (the kernels' fast path); false for a per-element scale, which
// `scale_grad_elementwise` handles.
inline bool check_scale_grad(const at::Tensor& grad, const at::Tensor& scale) {
  TORCH_CHECK(at::isFloatingType(grad.scalar_type()) && at::isFloatingType(scale.scalar_type()),
              "scale_grad_: grad and scale must be floating tensors");
  TORCH_CHECK(grad.is_contiguous(), "scale_grad_: grad must be contiguous");
  TORCH_CHECK(scale.device() == grad.device(), "scale_grad_: scale is on ", scale.device(),
              " but grad is on ", grad.device());
  TORCH_CHECK(scale.numel() == 1 || scale.sizes() == grad.sizes(),
              "scale_grad_: scale must have one element or the shape of grad ", grad.sizes(),
              ", got ", scale.sizes());
  return scale.numel() == 1;
}

// grad *= scale element by element, in fp32 (fp64 for fp64), rounded once to grad's dtype.
inline void scale_grad_elementwise(const at::Tensor& grad, const at::Tensor& scale) {
  const auto opmath = at::toOpMathType(grad.scalar_type());
  grad.copy_(grad.to(opmath) * scale.to(opmath));
}

}  // namespace landmark_kernels
