#pragma once
// Adaptive Wing loss of one pixel, shared by the CPU and CUDA kernels (docs/awing.md).
#include <cmath>

#include "macros.h"

namespace landmark_kernels {

// Math policies: how awing_pixel (and ACR, coord_loss_math.h) take powers, logarithms and
// quotients.
//   powers(xs, e, &t, &t_over_xs): t = xs^e and t/xs = xs^(e−1), for xs > 0;
//   log1p(t), t ≥ 0; div(a, b), b ≥ 1; pow_unit(x, e) = x^e for x in (0, 1], e in [0, 1];
//   log1p_unit(t), t in [0, 1].
// ExpLogMath is the accurate path (CPU, and fp64 everywhere): t = exp(e·ln xs), one division.
// The CUDA kernel's fp32 path uses the hardware's lg2/ex2 instead (FastMath in awing_loss.cu).
template <typename Fns>
struct ExpLogMath {
  template <typename T>
  LK_HD static void powers(T xs, T e, T* t, T* t_over_xs) {
    *t = Fns::exp(e * Fns::log(xs));
    *t_over_xs = *t / xs;
  }
  template <typename T>
  LK_HD static T log1p(T t) { return Fns::log1p(t); }
  template <typename T>
  LK_HD static T div(T a, T b) { return a / b; }
  // x^e for x in (0, 1], e in [0, 1], and ln(1 + t) for t in [0, 1] (ACR's ranges), where Fns
  // may have cheaper forms (the CPU's need fewer selects there).
  template <typename T>
  LK_HD static T pow_unit(T x, T e) { return Fns::exp_nonpositive(e * Fns::log_unit(x)); }
  template <typename T>
  LK_HD static T log1p_unit(T t) { return Fns::log1p_unit(t); }
};

struct StdFns {
  template <typename T>
  LK_HD static T log(T x) { using std::log; return log(x); }
  template <typename T>
  LK_HD static T exp(T x) { using std::exp; return exp(x); }
  template <typename T>
  LK_HD static T log1p(T x) { using std::log1p; return log1p(x); }
  // No cheaper forms on ACR's ranges here: the general functions above.
  template <typename T>
  LK_HD static T log_unit(T x) { return StdFns::log(x); }
  template <typename T>
  LK_HD static T exp_nonpositive(T x) { return StdFns::exp(x); }
  template <typename T>
  LK_HD static T log1p_unit(T x) { return StdFns::log1p(x); }
};
using StdMath = ExpLogMath<StdFns>;

template <typename T>
struct AWingConsts {
  T alpha, omega, theta, inv_epsilon, map_weight, map_threshold;
  T grad_scale;  // folded into the stored gradient: see stored_grad_scale (common.h)

  template <typename U>
  AWingConsts<U> to() const {
    return {U(alpha), U(omega), U(theta), U(inv_epsilon), U(map_weight), U(map_threshold),
            U(grad_scale)};
  }
};

// Loss of one pixel and its derivative w.r.t. pred, for diff = pred − target, y = target.
//
// Both branches of eq. 6 are written through x = min(δ, θ) and t = (x/ε)^(α−y):
//   g = ω(α−y)·t / (x(1+t))   is |∂loss/∂δ| of the log branch at x, which at x = θ is the
//                              slope A of the linear branch;
//   loss = ω·ln(1+t) + g·(δ − x)   equals ω·ln(1+(δ/ε)^(α−y)) for δ < θ and A·δ − C for δ ≥ θ
//                              (C = θA − ω·ln(1+(θ/ε)^(α−y))).
// g is formed as ω(α−y)·(t/xs)·(1/ε)/(1+t) with xs = x/ε, so that a policy may take t/xs as a
// power of its own (no quotient of two subnormal numbers). The same transcendentals whatever
// the branch, so the loop has no divergence. At δ = 0 the gradient is defined as 0 (the naive
// form is 0·∞ when α−y−1 < 0). Written with selects, no branches, so CPU loops vectorise.
template <typename Math = StdMath, typename T>
LK_HD T awing_pixel(T diff, T y, const AWingConsts<T>& c, T* grad) {
  const T delta = diff < T(0) ? -diff : diff;
  const T x = delta < c.theta ? delta : c.theta;
  const T e = c.alpha - y;
  const bool at_zero = !(x > T(0));
  T t, t_over_xs;
  Math::powers((at_zero ? T(1) : x) * c.inv_epsilon, e, &t, &t_over_xs);
  // 0^e: 0 for e > 0, 1 for e = 0, ∞ for e < 0 (as torch.pow).
  const T zero_pow = e > T(0) ? T(0) : (e == T(0) ? T(1) : T(INFINITY));
  t = at_zero ? zero_pow : t;
  const T g = at_zero ? T(0) : Math::div(c.omega * e * t_over_xs * c.inv_epsilon, T(1) + t);
  // diff·0 is 0 at δ = 0 and NaN for a NaN input, which propagates (NaN in, NaN out).
  *grad = diff > T(0) ? g : (diff < T(0) ? -g : diff * T(0));
  return c.omega * Math::log1p(t) + g * (delta - x);
}

// Weighted loss map factor W·M + 1 (AWing §4.3) from the dilated (k×k max) target.
template <typename T>
LK_HD T awing_map_factor(T dilated, const AWingConsts<T>& c) {
  return dilated > c.map_threshold ? c.map_weight + T(1) : T(1);
}

}  // namespace landmark_kernels
