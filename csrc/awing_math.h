#pragma once
// Adaptive Wing loss of one pixel, shared by the CPU and CUDA kernels (SPEC §1).
#include <cmath>

#include "macros.h"

namespace landmark_kernels {

template <typename T>
struct AWingConsts {
  T alpha, omega, theta, inv_epsilon, map_weight, map_threshold;
};

// Loss of one pixel and its derivative w.r.t. pred, for diff = pred − target, y = target.
//
// Both branches of eq. 6 are written through x = min(δ, θ) and t = (x/ε)^(α−y):
//   g = ω(α−y)·t / (x(1+t))   is |∂loss/∂δ| of the log branch at x, which at x = θ is the
//                              slope A of the linear branch;
//   loss = ω·ln(1+t) + g·(δ − x)   equals ω·ln(1+(δ/ε)^(α−y)) for δ < θ and A·δ − C for δ ≥ θ
//                              (C = θA − ω·ln(1+(θ/ε)^(α−y))).
// One log, one exp and one log1p per pixel whatever the branch, so the loop has no divergence.
// At δ = 0 the gradient is defined as 0 (the naive form is 0·∞ when α−y−1 < 0).
template <typename T>
LK_HD T awing_pixel(T diff, T y, const AWingConsts<T>& c, T* grad) {
  using std::exp;
  using std::fabs;
  using std::log;
  using std::log1p;
  const T delta = fabs(diff);
  const T x = delta < c.theta ? delta : c.theta;
  const T e = c.alpha - y;
  T t, g;
  if (x > T(0)) {
    t = exp(e * log(x * c.inv_epsilon));
    g = c.omega * e * t / (x * (T(1) + t));
  } else {
    // 0^e: 0 for e > 0, 1 for e = 0, ∞ for e < 0 (as torch.pow).
    t = e > T(0) ? T(0) : (e == T(0) ? T(1) : T(INFINITY));
    g = T(0);
  }
  *grad = diff > T(0) ? g : (diff < T(0) ? -g : T(0));
  return c.omega * log1p(t) + g * (delta - x);
}

// Weighted loss map factor W·M + 1 (AWing §4.3) from the dilated (k×k max) target.
template <typename T>
LK_HD T awing_map_factor(T dilated, const AWingConsts<T>& c) {
  return dilated > c.map_threshold ? c.map_weight + T(1) : T(1);
}

}  // namespace landmark_kernels
