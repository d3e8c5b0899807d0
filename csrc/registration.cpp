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
  // Coordinate losses (docs/coordinate_losses.md), pred/target (B,N,D); target_weight and phi
  // (B,N), (B,N,1)
  // or (B,N,D). reduction 3 is "batchmean" (sum / B). Their grad is exact (the reduction's
  // divisor folded in), stored in fp32 for fp16 pred, else in pred's dtype.
  m.def(
      "wing_loss(Tensor pred, Tensor target, Tensor? target_weight, float omega, float epsilon, "
      "int reduction, bool compute_grad) -> (Tensor, Tensor)");
  m.def(
      "wing_loss_triton(Tensor pred, Tensor target, Tensor? target_weight, float omega, "
      "float epsilon, int reduction, bool compute_grad) -> (Tensor, Tensor)");
  m.def(
      "soft_wing_loss(Tensor pred, Tensor target, Tensor? target_weight, float omega1, "
      "float omega2, float epsilon, int reduction, bool compute_grad) -> (Tensor, Tensor)");
  m.def(
      "soft_wing_loss_triton(Tensor pred, Tensor target, Tensor? target_weight, float omega1, "
      "float omega2, float epsilon, int reduction, bool compute_grad) -> (Tensor, Tensor)");
  m.def(
      "acr_loss(Tensor pred, Tensor target, Tensor phi, float lam, int reduction, "
      "bool compute_grad) -> (Tensor, Tensor)");
  m.def(
      "acr_loss_triton(Tensor pred, Tensor target, Tensor phi, float lam, int reduction, "
      "bool compute_grad) -> (Tensor, Tensor)");
  // PFLD loss (docs/coordinate_losses.md) -> (weighted, l2, grad_pred, grad_angles): two 0-dim
  // losses; when compute_grad, grad_pred = ∂weighted/∂pred and grad_angles = ∂weighted/∂angles,
  // else empty (pfld_loss.h). ∂l2/∂pred = 2(ŷ − y)/B is left to the backward, which needs it
  // only when l2 itself is trained.
  m.def(
      "pfld_loss(Tensor pred, Tensor target, Tensor angles, Tensor angles_target, "
      "Tensor attributes, Tensor? attribute_weights, bool degrees, float weight_floor, "
      "bool compute_grad) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "pfld_loss_triton(Tensor pred, Tensor target, Tensor angles, Tensor angles_target, "
      "Tensor attributes, Tensor? attribute_weights, bool degrees, float weight_floor, "
      "bool compute_grad) -> (Tensor, Tensor, Tensor, Tensor)");
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
  // Multi-stage supervision (stacked hourglass): pred (S,B,K,H,W), 1 ≤ S ≤ 16, against one
  // target (heatmap or coordinates), which is read (or rendered) once per pixel for all stages;
  // the other arguments are the single-stage op's. loss = Σ_s stage_weights[s]·loss_s, each
  // stage reduced as the single-stage op; for reduction 0 the (S,B,K,H,W) maps
  // stage_weights[s]·loss_s. grad (S,B,K,H,W): each stage's, its weight folded in.
  m.def(
      "awing_loss_stages(Tensor pred, Tensor target, Tensor? target_weight, "
      "float[] stage_weights, float alpha, float omega, float epsilon, float theta, "
      "float map_weight, float map_threshold, int map_kernel, int reduction, "
      "bool compute_grad) -> (Tensor, Tensor)");
  m.def(
      "awing_loss_stages_triton(Tensor pred, Tensor target, Tensor? target_weight, "
      "float[] stage_weights, float alpha, float omega, float epsilon, float theta, "
      "float map_weight, float map_threshold, int map_kernel, int reduction, "
      "bool compute_grad) -> (Tensor, Tensor)");
  m.def(
      "awing_loss_from_coords_stages(Tensor pred, Tensor coords, Tensor sigma, "
      "Tensor? target_weight, float[] stage_weights, float alpha, float omega, float epsilon, "
      "float theta, float map_weight, float map_threshold, int map_kernel, int reduction, "
      "bool compute_grad) -> (Tensor, Tensor)");
  m.def(
      "awing_loss_from_coords_stages_triton(Tensor pred, Tensor coords, Tensor sigma, "
      "Tensor? target_weight, float[] stage_weights, float alpha, float omega, float epsilon, "
      "float theta, float map_weight, float map_threshold, int map_kernel, int reduction, "
      "bool compute_grad) -> (Tensor, Tensor)");
  // The backward of the fused losses: grad *= scale in place, in fp32; scale is 0-dim or grad's
  // shape. A 0-dim scale equal to 1 leaves grad untouched, decided on the device (no host sync).
  m.def("scale_grad_(Tensor(a!) grad, Tensor scale) -> ()");
  // SDFL graph-relational aggregation (docs/graph.md): out (B,N,F) from h_self, h_neigh (B,N,F),
  // logits (E,) or (B,E) and bias (F,). The graph travels as int64 tensors: its CSR (rowptr,
  // col), the transposed CSR (t_rowptr, t_col) and perm (transposed position -> edge id). The
  // backward returns (grad_h_self, grad_h_neigh, grad_logits, grad_bias), the last one empty
  // unless bias_grad.
  m.def(
      "graph_relational_aggregate(Tensor h_self, Tensor h_neigh, Tensor logits, Tensor? bias, "
      "Tensor rowptr, Tensor col, Tensor t_rowptr, Tensor t_col, Tensor perm, bool transposed) "
      "-> Tensor");
  m.def(
      "graph_relational_aggregate_triton(Tensor h_self, Tensor h_neigh, Tensor logits, "
      "Tensor? bias, Tensor rowptr, Tensor col, Tensor t_rowptr, Tensor t_col, Tensor perm, "
      "bool transposed) -> Tensor");
  m.def(
      "graph_relational_aggregate_backward(Tensor grad_out, Tensor h_self, Tensor h_neigh, "
      "Tensor logits, Tensor rowptr, Tensor col, Tensor t_rowptr, Tensor t_col, Tensor perm, "
      "bool transposed, bool bias_grad) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "graph_relational_aggregate_backward_triton(Tensor grad_out, Tensor h_self, "
      "Tensor h_neigh, Tensor logits, Tensor rowptr, Tensor col, Tensor t_rowptr, Tensor t_col, "
      "Tensor perm, bool transposed, bool bias_grad) -> (Tensor, Tensor, Tensor, Tensor)");
  // Δ = L·x (transpose: Lᵀ·x), L = I − D⁻¹A on the graph's directed edges, x (B,N,D): the
  // relative-location loss (docs/graph.md). Each orientation is the other's backward.
  m.def(
      "graph_laplacian(Tensor x, Tensor rowptr, Tensor col, Tensor t_rowptr, Tensor t_col, "
      "bool transpose) -> Tensor");
  m.def(
      "graph_laplacian_triton(Tensor x, Tensor rowptr, Tensor col, Tensor t_rowptr, "
      "Tensor t_col, bool transpose) -> Tensor");
}
