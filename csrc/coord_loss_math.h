#pragma once
// Per-element coordinate losses (docs/coordinate_losses.md), shared by the CPU and CUDA kernel
// families.
//
// Each loss is a functor of δ = |diff| ≥ 0 (and Φ for ACR) returning ℓ(δ) and writing the slope
// dℓ/dδ, with its transcendentals from a Math policy (awing_math.h: log1p, pow_unit,
// log1p_unit); `coord_element` turns that into the loss and ∂ℓ/∂diff of one element. The
// kernels are written once over the functor type, so Wing, SoftWing and ACR share every loop,
// reduction and launch. Everything is select-based (no branches) so that the CPU loops vectorise.
#include <cmath>

#include "awing_math.h"  // the Math policies (StdMath, ExpLogMath)
#include "macros.h"

namespace landmark_kernels {

// Wing (Feng et al. 2018, eq. 5): δ < ω: ω·ln(1 + δ/ε); else δ − C, C = ω − ω·ln(1 + ω/ε).
// Written through x = min(δ, ω) as ω·ln(1 + x/ε) + (δ − x): one log1p whatever the branch.
template <typename T>
struct WingFn {
  T omega, epsilon, inv_epsilon;

  static WingFn make(double omega, double epsilon) {
    return {T(omega), T(epsilon), T(1.0 / epsilon)};
  }
  template <typename Math>
  LK_HD T operator()(T delta, T /*phi*/, T* slope) const {
    const bool small = delta < omega;
    const T x = small ? delta : omega;
    *slope = small ? omega / (epsilon + delta) : T(1);
    return omega * Math::log1p(x * inv_epsilon) + (delta - x);
  }
};

// SoftWing (Lin et al. 2021, eq. 12): δ < ω1: δ; else ω2·ln(1 + δ/ε) + B, B = ω1 − ω2·ln(1 + ω1/ε).
// The log branch is evaluated as ω1 + ω2·ln(1 + (δ − ω1)/(ε + ω1)): the same value without the
// cancellation of ω2·ln(1 + δ/ε) against B near δ = ω1.
template <typename T>
struct SoftWingFn {
  T omega1, omega2, epsilon, inv_epsilon_omega1;  // 1/(ε + ω1)

  static SoftWingFn make(double omega1, double omega2, double epsilon) {
    return {T(omega1), T(omega2), T(epsilon), T(1.0 / (epsilon + omega1))};
  }
  template <typename Math>
  LK_HD T operator()(T delta, T /*phi*/, T* slope) const {
    const bool small = delta < omega1;
    const T excess = small ? T(0) : delta - omega1;
    *slope = small ? T(1) : omega2 / (epsilon + delta);
    return small ? delta : omega1 + omega2 * Math::log1p(excess * inv_epsilon_omega1);
  }
};

// ACR (Fard & Mahoor 2022, eq. 6): Δ ≤ 1: λ·ln(1 + Δ^(2−Φ)); Δ > 1: Δ² + Φ·ln2 − 1.
// With x = min(Δ, 1) and u = x^(1−Φ), t = x^(2−Φ) = u·x and the slope of the log branch is
// λ(2−Φ)·u/(1+t): one power gives both, and u is taken directly (not as t/x), so the slope
// stays exact for tiny x, where t may underflow while u ≈ 1 (Φ ≈ 1).
// Φ outside [0,1] (or NaN) gives NaN: the domain of the loss (the CPU kernel also raises).
template <typename T>
struct AcrFn {
  T lam, ln2;

  static AcrFn make(double lam) { return {T(lam), T(0.6931471805599453)}; }
  template <typename Math>
  LK_HD T operator()(T delta, T phi, T* slope) const {
    const bool small = delta <= T(1);
    const T x = small ? delta : T(1);
    const T e = T(1) - phi;  // 1 − Φ ∈ [0, 1]
    const T zero_pow = e == T(0) ? T(1) : T(0);  // x^e at x = 0: 1 for Φ = 1, else 0
    const T u = x > T(0) ? Math::pow_unit(x > T(0) ? x : T(1), e) : zero_pow;
    const T t = u * x;
    // Bitwise & (no short circuit): the loop stays branch-free, so it vectorises.
    const bool valid = (phi >= T(0)) & (phi <= T(1));
    const T log_slope = lam * (T(1) + e) * u / (T(1) + t);
    const T s = small ? log_slope : T(2) * delta;
    *slope = valid ? s : T(NAN);
    const T log_loss = lam * Math::log1p_unit(t);
    const T loss = small ? log_loss : delta * delta + phi * ln2 - T(1);
    return valid ? loss : T(NAN);
  }
};

// Loss of one element and ∂loss/∂diff into *grad, for diff = (pred − target)·w. At diff = 0 the
// gradient is the subgradient 0 (Wing's and ACR-with-Φ=1's kinks); NaN in diff or in the slope
// gives NaN (slope·diff·0 is NaN then, else 0); ±∞ gives the formula's limit.
template <typename Math = StdMath, typename Fn, typename T>
LK_HD T coord_element(const Fn& fn, T diff, T phi, T* grad) {
  const T delta = diff < T(0) ? -diff : diff;
  T slope;
  const T loss = fn.template operator()<Math>(delta, phi, &slope);
  *grad = diff > T(0) ? slope : (diff < T(0) ? -slope : slope * (diff * T(0)));
  return delta != delta ? delta : loss;
}

}  // namespace landmark_kernels
