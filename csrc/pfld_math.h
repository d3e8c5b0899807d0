#pragma once
// Per-sample maths of the PFLD loss (docs/coordinate_losses.md), shared by the CPU and CUDA
// kernels.
#include <cmath>

#include "macros.h"

namespace landmark_kernels {

// The angle term of one Euler angle: 1 − cos(d) for the difference d = θ̂ − θ in the unit whose
// full turn is `period` (2π or 360), wrapped into [−period/2, period/2) first (a full-turn
// error is no error, and cos gets a small argument). Writes ∂/∂θ̂ = sin(d)·(2π/period).
template <typename T>
LK_HD T pfld_angle_term(T d, T period, T* slope) {
  using std::cos;
  using std::floor;
  using std::sin;
  const T wrapped = d - period * floor(d / period + T(0.5));
  const T to_radians = T(6.283185307179586) / period;
  const T x = wrapped * to_radians;
  *slope = sin(x) * to_radians;
  return T(1) - cos(x);
}

// PFLD-pytorch's class weight from the batch frequency of the class: 1/freq, or the batch size
// where no sample has the class.
template <typename T>
LK_HD T pfld_class_weight(T freq, T batch) {
  return freq > T(0) ? T(1) / freq : batch;
}

}  // namespace landmark_kernels
