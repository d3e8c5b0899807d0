#pragma once
// What the CPU and CUDA AWing kernels share on the host: argument checks and output allocation.
#include <ATen/ATen.h>

#include <optional>
#include <tuple>

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

struct AWingProblem {
  at::Tensor pred, target, weight;  // contiguous (B,K,H,W); weight (B,K), (B,K,H,W) or undefined
  int64_t planes, height, width;
  bool weight_per_pixel;
  AWingConsts<double> consts;
};

inline AWingProblem prepare_awing(const at::Tensor& pred, const at::Tensor& target,
                                  const std::optional<at::Tensor>& target_weight, double alpha,
                                  double omega, double epsilon, double theta, double map_weight,
                                  double map_threshold, int64_t map_kernel, int64_t reduction) {
  TORCH_CHECK(pred.dim() == 4, "pred must have 4 dimensions (B,K,H,W), got ", pred.sizes());
  check_floating(pred, "pred");
  check_like(target, "target", pred, "pred");
  TORCH_CHECK(target.sizes() == pred.sizes(), "target must have the shape of pred ", pred.sizes(),
              ", got ", target.sizes());
  check_awing_params(alpha, omega, epsilon, theta, map_weight, map_threshold, map_kernel,
                     reduction);

  AWingProblem p;
  p.pred = pred.contiguous();
  p.target = target.contiguous();
  p.planes = pred.size(0) * pred.size(1);
  p.height = pred.size(2);
  p.width = pred.size(3);
  p.weight_per_pixel = false;
  if (target_weight.has_value()) {
    const at::Tensor& w = *target_weight;
    check_like(w, "target_weight", pred, "pred");
    const bool per_channel = w.dim() == 2 && w.size(0) == pred.size(0) && w.size(1) == pred.size(1);
    TORCH_CHECK(per_channel || w.sizes() == pred.sizes(), "target_weight must be (B,K) = (",
                pred.size(0), ",", pred.size(1), ") or the shape of pred, got ", w.sizes());
    p.weight = w.contiguous();
    p.weight_per_pixel = !per_channel;
  }
  p.consts = {alpha,      omega,         theta,
              1.0 / epsilon, map_weight, map_threshold,
              stored_grad_scale(reduction, pred)};
  return p;
}

}  // namespace landmark_kernels
