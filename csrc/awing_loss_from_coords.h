#pragma once
// What the CPU and CUDA awing_loss_from_coords kernels share on the host: argument checks.
#include <ATen/ATen.h>
#include <ATen/OpMathType.h>

#include <optional>

#include "awing_loss.h"
#include "gaussian_target.h"

namespace landmark_kernels {

struct AWingCoordsProblem {
  // Contiguous; pred (S,B,K,H,W) (S = 1 for the single-stage op), weight (B,K) or undefined.
  at::Tensor pred, coords, sigma, weight;
  int64_t planes, channels, height, width;
  StageSet stages;
  AWingConsts<double> consts;
};

// pred (B,K,H,W) floating, or (S,B,K,H,W) with S stage_weights when multi_stage; coords (B,K,2)
// and sigma (K,) in the compute dtype (fp32, fp64 for fp64 pred: coordinates need more
// precision than fp16 has); target_weight (B,K) as pred.
inline AWingCoordsProblem prepare_awing_coords(
    const at::Tensor& pred, const at::Tensor& coords, const at::Tensor& sigma,
    const std::optional<at::Tensor>& target_weight, at::ArrayRef<double> stage_weights,
    bool multi_stage, double alpha, double omega, double epsilon, double theta,
    double map_weight, double map_threshold, int64_t map_kernel, int64_t reduction) {
  const at::IntArrayRef shape = check_stages(pred, stage_weights, multi_stage);
  check_floating(pred, "pred");
  const at::ScalarType compute = at::toOpMathType(pred.scalar_type());
  check_defined(coords, "coords");
  TORCH_CHECK(coords.device() == pred.device(), "coords is on ", coords.device(),
              " but pred is on ", pred.device());
  TORCH_CHECK(coords.scalar_type() == compute, "coords must have dtype ", compute,
              " (the compute dtype of pred ", pred.scalar_type(), "), got ", coords.scalar_type());
  TORCH_CHECK(coords.dim() == 3 && coords.size(0) == shape[0] && coords.size(1) == shape[1] &&
                  coords.size(2) == 2,
              "coords must be (B,K,2) = (", shape[0], ",", shape[1], ",2), got ", coords.sizes());
  check_like(sigma, "sigma", coords, "coords");
  TORCH_CHECK(sigma.dim() == 1 && sigma.size(0) == shape[1], "sigma must be (K,) = (", shape[1],
              ",), got ", sigma.sizes());
  check_awing_params(alpha, omega, epsilon, theta, map_weight, map_threshold, map_kernel,
                     reduction);
  AWingCoordsProblem p;
  p.pred = pred.contiguous();
  p.coords = coords.contiguous();
  p.sigma = sigma.contiguous();
  p.planes = shape[0] * shape[1];
  p.channels = shape[1];
  p.height = shape[2];
  p.width = shape[3];
  if (target_weight.has_value()) {
    const at::Tensor& w = *target_weight;
    check_like(w, "target_weight", pred, "pred");
    TORCH_CHECK(w.dim() == 2 && w.size(0) == shape[0] && w.size(1) == shape[1],
                "target_weight must be (B,K) = (", shape[0], ",", shape[1], "), got ", w.sizes());
    p.weight = w.contiguous();
  }
  p.stages = stage_set(pred, stage_weights, multi_stage);
  p.consts = {alpha,         omega,      theta,
              1.0 / epsilon, map_weight, map_threshold,
              stored_grad_scale(reduction, first_stage(pred, multi_stage))};  // per stage
  return p;
}

// The entry points of the single- and multi-stage schemas over one backend's
//   Run(pred, coords, sigma, target_weight, stage_weights, multi_stage, alpha, omega, epsilon,
//       theta, map_weight, map_threshold, map_kernel, reduction, compute_grad) -> (loss, grad).
template <auto Run>
struct AWingCoordsEntries {
  static std::tuple<at::Tensor, at::Tensor> single(
      const at::Tensor& pred, const at::Tensor& coords, const at::Tensor& sigma,
      const std::optional<at::Tensor>& target_weight, double alpha, double omega,
      double epsilon, double theta, double map_weight, double map_threshold, int64_t map_kernel,
      int64_t reduction, bool compute_grad) {
    return Run(pred, coords, sigma, target_weight, {}, false, alpha, omega, epsilon, theta,
               map_weight, map_threshold, map_kernel, reduction, compute_grad);
  }
  static std::tuple<at::Tensor, at::Tensor> stages(
      const at::Tensor& pred, const at::Tensor& coords, const at::Tensor& sigma,
      const std::optional<at::Tensor>& target_weight, at::ArrayRef<double> stage_weights,
      double alpha, double omega, double epsilon, double theta, double map_weight,
      double map_threshold, int64_t map_kernel, int64_t reduction, bool compute_grad) {
    return Run(pred, coords, sigma, target_weight, stage_weights, true, alpha, omega, epsilon,
               theta, map_weight, map_threshold, map_kernel, reduction, compute_grad);
  }
};

}  // namespace landmark_kernels
