// Every schema of the library, in one block. Kernels register per device in cpu/ and cuda/;
// fake (meta), autograd and autocast rules are registered from Python (landmark_kernels/).
#include <torch/library.h>

TORCH_LIBRARY(landmark_kernels, m) {
  // Fused loss ops return (loss, grad): loss is per element for reduction 0 (none), else a 0-dim
  // tensor; grad, when compute_grad (else an empty tensor), is ∂loss/∂pred for grad_output = 1
  // (for fp16 "mean" without the 1/N: common.h stored_grad_scale). The backward scales it.
  m.def(
      "awing_loss(Tensor pred, Tensor target, Tensor? target_weight, float alpha, float omega, "
      "float epsilon, float theta, float map_weight, float map_threshold, int map_kernel, "
      "int reduction, bool compute_grad) -> (Tensor, Tensor)");
  m.def(
      "awing_loss_triton(Tensor pred, Tensor target, Tensor? target_weight, float alpha, "
      "float omega, float epsilon, float theta, float map_weight, float map_threshold, "
      "int map_kernel, int reduction, bool compute_grad) -> (Tensor, Tensor)");
  // AWing against Gaussian targets rendered in the kernel from coords (B,K,2) with sigma (K,),
  // both in the compute dtype (fp32; fp64 for fp64 pred); target_weight (B,K).
  m.def(
      "awing_loss_from_coords(Tensor pred, Tensor coords, Tensor sigma, Tensor? target_weight, "
      "float alpha, float omega, float epsilon, float theta, float map_weight, "
      "float map_threshold, int map_kernel, int reduction, bool compute_grad) -> (Tensor, Tensor)");
  m.def(
      "awing_loss_from_coords_triton(Tensor pred, Tensor coords, Tensor sigma, "
      "Tensor? target_weight, float alpha, float omega, float epsilon, float theta, "
      "float map_weight, float map_threshold, int map_kernel, int reduction, "
      "bool compute_grad) -> (Tensor, Tensor)");
  // The backward of the fused losses: grad *= scale in place, in fp32; scale is 0-dim or grad's
  // shape. A 0-dim scale equal to 1 leaves grad untouched, decided on the device (no host sync).
  m.def("scale_grad_(Tensor(a!) grad, Tensor scale) -> ()");
}
