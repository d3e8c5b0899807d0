#pragma once
// What the CPU and CUDA AWing kernels share on the host: argument checks and output allocation.
#include <ATen/ATen.h>

#include <optional>
#include <tuple>
#include <vector>

#include "awing_math.h"
#include "common.h"

namespace landmark_kernels {

// Largest map_kernel accepted everywhere: the CUDA tile keeps a (tile + k − 1)² halo in shared
// memory.
constexpr int64_t kMaxMapKernel = 31;

// The hyper-parameters and codes of both AWing ops (awing_loss, awing_loss_from_coords).
inline void check_awing_params(double alpha, double omega, double epsilon, double theta,
                               double map_weight, double map_threshold, int64_t map_kernel,
                               int64_t reduction) {
  check_positive(alpha, "alpha");
  check_positive(omega, "omega");
  check_positive(epsilon, "epsilon");
  check_positive(theta, "theta");
  TORCH_CHECK(std::isfinite(map_weight) && map_weight >= 0,
              "map_weight must be a finite number >= 0, got ", map_weight);
  check_finite(map_threshold, "map_threshold");
  TORCH_CHECK(map_kernel >= 1 && map_kernel % 2 == 1 && map_kernel <= kMaxMapKernel,
              "map_kernel must be an odd integer in [1, ", kMaxMapKernel, "], got ", map_kernel);
  check_reduction(reduction);
}

// Multi-stage ops (awing_loss_stages, awing_loss_from_coords_stages): pred (S,B,K,H,W), S stage
// outputs against one target, read once per pixel. The CUDA kernels keep the S stage weights in
// their (__grid_constant__) arguments, which bounds S.
constexpr int64_t kMaxStages = 16;

// The stages of a multi-stage op's pred (S,B,K,H,W) and their weights; returns the shape of one
// stage (B,K,H,W). A single-stage op passes no weights and a (B,K,H,W) pred.
inline at::IntArrayRef check_stages(const at::Tensor& pred, at::ArrayRef<double> stage_weights,
                                    bool multi_stage) {
  if (!multi_stage) {
    TORCH_CHECK(pred.dim() == 4, "pred must have 4 dimensions (B,K,H,W), got ", pred.sizes());
    return pred.sizes();
  }
  TORCH_CHECK(pred.dim() == 5, "pred must have 5 dimensions (S,B,K,H,W), got ", pred.sizes());
  const int64_t stages = pred.size(0);
  TORCH_CHECK(stages >= 1 && stages <= kMaxStages, "pred must hold 1 to ", kMaxStages,
              " stages (S,B,K,H,W), got S = ", stages);
  TORCH_CHECK(int64_t(stage_weights.size()) == stages,
              "stage_weights must have one weight per stage (", stages, "), got ",
              stage_weights.size());
  for (double w : stage_weights) check_finite(w, "stage_weights");
  return pred.sizes().slice(1);
}

// The stage count and their weights (one stage of weight 1 for a single-stage op).
struct StageSet {
  int64_t stages;
  std::vector<double> weights;
};

inline StageSet stage_set(const at::Tensor& pred, at::ArrayRef<double> stage_weights,
                          bool multi_stage) {
  if (!multi_stage) return {1, {1.0}};
  return {pred.size(0), stage_weights.vec()};
}

// One stage of pred: what a stage's reduction divides by (stored_grad_scale).
inline at::Tensor first_stage(const at::Tensor& pred, bool multi_stage) {
  return multi_stage ? pred.select(0, 0) : pred;
}

struct AWingProblem {
  // pred contiguous (S,B,K,H,W) (a single-stage op's (B,K,H,W) is S = 1); target (B,K,H,W) and
  // weight ((B,K), (B,K,H,W) or undefined) contiguous.
  at::Tensor pred, target, weight;
  int64_t planes, height, width;
  bool weight_per_pixel;
  StageSet stages;
  AWingConsts<double> consts;
};

// pred (B,K,H,W), or (S,B,K,H,W) with S stage_weights when multi_stage.
inline AWingProblem prepare_awing(const at::Tensor& pred, const at::Tensor& target,
                                  const std::optional<at::Tensor>& target_weight,
                                  at::ArrayRef<double> stage_weights, bool multi_stage,
                                  double alpha, double omega, double epsilon, double theta,
                                  double map_weight, double map_threshold, int64_t map_kernel,
                                  int64_t reduction) {
  const at::IntArrayRef shape = check_stages(pred, stage_weights, multi_stage);
  check_floating(pred, "pred");
  check_like(target, "target", pred, "pred");
  TORCH_CHECK(target.sizes() == shape, "target must have the shape of ",
              multi_stage ? "one stage of pred " : "pred ", shape, ", got ", target.sizes());
  check_awing_params(alpha, omega, epsilon, theta, map_weight, map_threshold, map_kernel,
                     reduction);

  AWingProblem p;
  p.pred = pred.contiguous();
  p.target = target.contiguous();
  p.planes = shape[0] * shape[1];
  p.height = shape[2];
  p.width = shape[3];
  p.weight_per_pixel = false;
  if (target_weight.has_value()) {
    const at::Tensor& w = *target_weight;
    check_like(w, "target_weight", pred, "pred");
    const bool per_channel = w.dim() == 2 && w.size(0) == shape[0] && w.size(1) == shape[1];
    TORCH_CHECK(per_channel || w.sizes() == shape, "target_weight must be (B,K) = (", shape[0],
                ",", shape[1], ") or the shape of ", multi_stage ? "one stage of pred" : "pred",
                ", got ", w.sizes());
    p.weight = w.contiguous();
    p.weight_per_pixel = !per_channel;
  }
  p.stages = stage_set(pred, stage_weights, multi_stage);
  p.consts = {alpha,      omega,         theta,
              1.0 / epsilon, map_weight, map_threshold,
              stored_grad_scale(reduction, first_stage(pred, multi_stage))};  // per stage
  return p;
}

// The entry points of the single- and multi-stage schemas over one backend's
//   Run(pred, target, target_weight, stage_weights, multi_stage, alpha, omega, epsilon, theta,
//       map_weight, map_threshold, map_kernel, reduction, compute_grad) -> (loss, grad).
template <auto Run>
struct AWingEntries {
  static std::tuple<at::Tensor, at::Tensor> single(
      const at::Tensor& pred, const at::Tensor& target,
      const std::optional<at::Tensor>& target_weight, double alpha, double omega,
      double epsilon, double theta, double map_weight, double map_threshold, int64_t map_kernel,
      int64_t reduction, bool compute_grad) {
    return Run(pred, target, target_weight, {}, false, alpha, omega, epsilon, theta, map_weight,
               map_threshold, map_kernel, reduction, compute_grad);
  }
  static std::tuple<at::Tensor, at::Tensor> stages(
      const at::Tensor& pred, const at::Tensor& target,
      const std::optional<at::Tensor>& target_weight, at::ArrayRef<double> stage_weights,
      double alpha, double omega, double epsilon, double theta, double map_weight,
      double map_threshold, int64_t map_kernel, int64_t reduction, bool compute_grad) {
    return Run(pred, target, target_weight, stage_weights, true, alpha, omega, epsilon, theta,
               map_weight, map_threshold, map_kernel, reduction, compute_grad);
  }
};

}  // namespace landmark_kernels
