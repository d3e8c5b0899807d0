#pragma once
// Per-sample maths of the PFLD loss (docs/coordinate_losses.md), shared by the CPU and CUDA
// kernels.
#include <cmath>
#include <cstdint>

#include "macros.h"

namespace landmark_kernels {

// The angle term of one Euler angle: 1 − cos(d) for the difference d = θ̂ − θ in the unit whose
// full turn is `period` (2π or 360), wrapped into [−period/2, period/2) first (a full-turn
// error is no error). Writes ∂/∂θ̂ = sin(d)·(2π/period). Both through h = d/2 in radians,
// h ∈ [−π/2, π/2): 1 − cos d = 2·sin²h has no cancellation for small errors, and
// sin d = 2·sin h·cos h.
template <typename T>
LK_HD T pfld_angle_term(T d, T period, T* slope) {
  using std::cos;
  using std::floor;
  using std::sin;
  const T wrapped = d - period * floor(d / period + T(0.5));
  const T to_radians = T(6.283185307179586) / period;
  const T h = T(0.5) * wrapped * to_radians;
  const T s = sin(h), c = cos(h);
  *slope = T(2) * s * c * to_radians;
  return T(2) * s * s;
}

// PFLD-pytorch's class weight from the batch frequency of the class: 1/freq, or the batch size
// where no sample has the class.
template <typename T>
LK_HD T pfld_class_weight(T freq, T batch) {
  return freq > T(0) ? T(1) / freq : batch;
}

// Sample b's factor in `weighted`, W_b = A_b·Σ_k (1 − cos d_k): the attribute weight
// A_b = max(Σ_c w_c·a_bc, weight_floor) (NaN stays NaN, as clamp(min=)) times the angle terms.
// Writes ∂W_b/∂θ̂_bk = A_b·sin(d_k)·(2π/period) to slopes[k] when slopes is not null.
template <typename T, typename scalar_t>
LK_HD T pfld_sample_weight(const T* class_weight, const scalar_t* attributes,
                           const scalar_t* angles, const scalar_t* angles_target,
                           int64_t num_classes, int64_t num_angles, T period, T weight_floor,
                           T* slopes) {
  T attr = T(0);
  for (int64_t c = 0; c < num_classes; ++c) attr += class_weight[c] * T(attributes[c]);
  attr = attr < weight_floor ? weight_floor : attr;
  T angle = T(0);
  for (int64_t k = 0; k < num_angles; ++k) {
    T slope;
    angle += pfld_angle_term(T(angles[k]) - T(angles_target[k]), period, &slope);
    if (slopes != nullptr) slopes[k] = slope * attr;
  }
  return angle * attr;
}

}  // namespace landmark_kernels
