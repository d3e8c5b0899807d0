#pragma once
// What the CPU and CUDA coordinate-loss kernels (Wing, SoftWing, ACR) share on the host:
// argument checks, the problem layout, and the op bodies (CoordOps) over a backend's family.
// Python mirror of the checks: landmark_kernels/coord_losses.py (`check_*`).
#include <ATen/ATen.h>

#include <optional>
#include <tuple>

#include "common.h"
#include "coord_loss_math.h"

namespace landmark_kernels {

// Range of the scale hyper-parameters (ω, ε, ω1, ω2; λ may also be 0): wide enough for pixel and
// normalised coordinates, narrow enough that ω/ε and the slopes stay finite in fp32.
constexpr double kCoordParamMin = 1e-8;
constexpr double kCoordParamMax = 1e8;

inline void check_coord_param(double v, const char* name, bool zero_ok = false) {
  TORCH_CHECK(std::isfinite(v) && ((zero_ok && v == 0.0) || v >= kCoordParamMin) &&
                  v <= kCoordParamMax,
              name, " must be ", zero_ok ? "0 or " : "", "in [", kCoordParamMin, ", ",
              kCoordParamMax, "], got ", v);
}

inline void check_wing_args(double omega, double epsilon) {
  check_coord_param(omega, "omega");
  check_coord_param(epsilon, "epsilon");
}

inline void check_soft_wing_args(double omega1, double omega2, double epsilon) {
  check_coord_param(omega1, "omega1");
  check_coord_param(omega2, "omega2");
  check_coord_param(epsilon, "epsilon");
}

inline void check_acr_args(double lam) { check_coord_param(lam, "lam", /*zero_ok=*/true); }

struct CoordProblem {
  at::Tensor pred, target;  // contiguous (B,N,D)
  at::Tensor weight, phi;   // contiguous (B,N[,1]) or (B,N,D), or undefined
  int64_t batch, landmarks, dims, numel;
  bool weight_per_landmark, phi_per_landmark;
  double divisor;  // of the reduction: numel (mean), B (batchmean), else 1; 1 when that is 0
};

// A per-element tensor (target_weight, phi) of shape (B,N), (B,N,1) or (B,N,D), like pred;
// returns true when it holds one value per landmark.
inline bool check_per_landmark_or_element(const at::Tensor& t, const char* name,
                                          const at::Tensor& pred) {
  check_like(t, name, pred, "pred");
  const bool per_landmark = (t.dim() == 2 || (t.dim() == 3 && t.size(2) == 1)) &&
                            t.size(0) == pred.size(0) && t.size(1) == pred.size(1);
  TORCH_CHECK(per_landmark || t.sizes() == pred.sizes(), name, " must be (B,N) = (",
              pred.size(0), ", ", pred.size(1), "), (B,N,1) or (B,N,D) = ", pred.sizes(),
              " for pred of shape ", pred.sizes(), ", got ", t.sizes());
  return per_landmark;
}

inline CoordProblem prepare_coord(const at::Tensor& pred, const at::Tensor& target,
                                  const std::optional<at::Tensor>& target_weight,
                                  const std::optional<at::Tensor>& phi, int64_t reduction) {
  TORCH_CHECK(pred.dim() == 3, "pred must be (B,N,D), got ", pred.sizes());
  check_floating(pred, "pred");
  check_like(target, "target", pred, "pred");
  TORCH_CHECK(target.sizes() == pred.sizes(), "target must have the shape of pred ",
              pred.sizes(), ", got ", target.sizes());
  check_reduction(reduction, kBatchMean);

  CoordProblem p;
  p.pred = pred.contiguous();
  p.target = target.contiguous();
  p.batch = pred.size(0);
  p.landmarks = pred.size(1);
  p.dims = pred.size(2);
  p.numel = pred.numel();
  p.weight_per_landmark = p.phi_per_landmark = false;
  if (target_weight.has_value()) {
    p.weight_per_landmark = check_per_landmark_or_element(*target_weight, "target_weight", pred);
    p.weight = target_weight->contiguous();
  }
  if (phi.has_value()) {
    p.phi_per_landmark = check_per_landmark_or_element(*phi, "phi", pred);
    p.phi = phi->contiguous();
  }
  const int64_t divisor = reduction_divisor(reduction, pred);
  p.divisor = divisor > 0 ? double(divisor) : 1.0;
  return p;
}

// The three ops of one backend, whose kernel family is
//   Family::run(problem, reduction, compute_grad, check_phi, make) -> (loss, grad),
// make(T{}) building the element functor for the compute type T.
template <typename Family>
struct CoordOps {
  static std::tuple<at::Tensor, at::Tensor> wing(const at::Tensor& pred, const at::Tensor& target,
                                                 const std::optional<at::Tensor>& target_weight,
                                                 double omega, double epsilon, int64_t reduction,
                                                 bool compute_grad) {
    check_wing_args(omega, epsilon);
    const CoordProblem p = prepare_coord(pred, target, target_weight, std::nullopt, reduction);
    return Family::run(p, reduction, compute_grad, false, [&](auto t) {
      return WingFn<decltype(t)>::make(omega, epsilon);
    });
  }

  static std::tuple<at::Tensor, at::Tensor> soft_wing(
      const at::Tensor& pred, const at::Tensor& target,
      const std::optional<at::Tensor>& target_weight, double omega1, double omega2,
      double epsilon, int64_t reduction, bool compute_grad) {
    check_soft_wing_args(omega1, omega2, epsilon);
    const CoordProblem p = prepare_coord(pred, target, target_weight, std::nullopt, reduction);
    return Family::run(p, reduction, compute_grad, false, [&](auto t) {
      return SoftWingFn<decltype(t)>::make(omega1, omega2, epsilon);
    });
  }

  static std::tuple<at::Tensor, at::Tensor> acr(const at::Tensor& pred, const at::Tensor& target,
                                                const at::Tensor& phi, double lam,
                                                int64_t reduction, bool compute_grad) {
    check_acr_args(lam);
    const CoordProblem p = prepare_coord(pred, target, std::nullopt, phi, reduction);
    return Family::run(p, reduction, compute_grad, true,
                       [&](auto t) { return AcrFn<decltype(t)>::make(lam); });
  }
};

}  // namespace landmark_kernels
