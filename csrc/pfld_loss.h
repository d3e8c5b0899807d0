#pragma once
// What the CPU and CUDA PFLD kernels share on the host: argument checks and output allocation.
// Python mirror of the checks: landmark_kernels/pfld.py (check_pfld).
#include <ATen/ATen.h>

#include <optional>
#include <tuple>

#include "common.h"
#include "pfld_math.h"

namespace landmark_kernels {

// The per-block (CUDA) class weights live in shared memory.
constexpr int64_t kPfldMaxClasses = 1024;

struct PfldProblem {
  at::Tensor pred, target, angles, angles_target, attributes, weights;  // contiguous
  int64_t batch, row, num_angles, num_classes;  // row: elements per sample (N·D)
  double period;                                // 360 (degrees) or 2π
};

inline PfldProblem prepare_pfld(const at::Tensor& pred, const at::Tensor& target,
                                const at::Tensor& angles, const at::Tensor& angles_target,
                                const at::Tensor& attributes,
                                const std::optional<at::Tensor>& attribute_weights, bool degrees,
                                double weight_floor) {
  TORCH_CHECK(pred.dim() >= 2, "pred must have at least 2 dimensions (B, ...), got ",
              pred.sizes());
  check_floating(pred, "pred");
  check_like(target, "target", pred, "pred");
  TORCH_CHECK(target.sizes() == pred.sizes(), "target must have the shape of pred ", pred.sizes(),
              ", got ", target.sizes());
  check_like(angles, "angles", pred, "pred");
  TORCH_CHECK(angles.dim() == 2 && angles.size(0) == pred.size(0),
              "angles must be (B,K) with B = ", pred.size(0), ", got ", angles.sizes());
  check_like(angles_target, "angles_target", pred, "pred");
  TORCH_CHECK(angles_target.sizes() == angles.sizes(), "angles_target must have the shape of "
              "angles ", angles.sizes(), ", got ", angles_target.sizes());
  check_like(attributes, "attributes", pred, "pred");
  TORCH_CHECK(attributes.dim() == 2 && attributes.size(0) == pred.size(0) &&
                  attributes.size(1) <= kPfldMaxClasses,
              "attributes must be (B,C) with B = ", pred.size(0), " and C <= ", kPfldMaxClasses,
              ", got ", attributes.sizes());
  if (attribute_weights.has_value()) {
    check_like(*attribute_weights, "attribute_weights", pred, "pred");
    TORCH_CHECK(attribute_weights->dim() == 1 &&
                    attribute_weights->size(0) == attributes.size(1),
                "attribute_weights must be (C,) = (", attributes.size(1), "), got ",
                attribute_weights->sizes());
  }
  TORCH_CHECK(std::isfinite(weight_floor) && weight_floor >= 0,
              "weight_floor must be a finite number >= 0, got ", weight_floor);

  PfldProblem p;
  p.pred = pred.contiguous();
  p.target = target.contiguous();
  p.angles = angles.contiguous();
  p.angles_target = angles_target.contiguous();
  p.attributes = attributes.contiguous();
  if (attribute_weights.has_value()) p.weights = attribute_weights->contiguous();
  p.batch = pred.size(0);
  p.row = p.batch > 0 ? pred.numel() / p.batch : 0;
  p.num_angles = angles.size(1);
  p.num_classes = attributes.size(1);
  p.period = degrees ? 360.0 : 6.283185307179586;
  return p;
}

// (weighted, l2, grad_pred, grad_angles): the two losses 0-dim in the accumulation dtype. When
// compute_grad, grad_pred = ∂weighted/∂pred = W_b·2(ŷ − y)/B (stored_grad_dtype), W_b sample b's
// factor in `weighted`, and grad_angles = ∂weighted/∂angles (accumulation dtype); else both are
// empty. The backward of the common loss, `weighted`, is then a hand-over.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> allocate_pfld_outputs(
    const PfldProblem& p, bool compute_grad) {
  const auto acc = p.pred.options().dtype(at::toOpMathType(p.pred.scalar_type()));
  const auto grad_options = p.pred.options().dtype(stored_grad_dtype(p.pred.scalar_type()));
  return {at::empty({}, acc), at::empty({}, acc),
          compute_grad ? at::empty(p.pred.sizes(), grad_options) : at::empty({0}, grad_options),
          compute_grad ? at::empty(p.angles.sizes(), acc) : at::empty({0}, acc)};
}

}  // namespace landmark_kernels
