#pragma once
// Branch-free float log/exp that the compiler vectorises inside `#pragma omp simd` loops
// (libm's scalar calls would keep the AWing loop scalar), and with no division: a vdivps costs
// as much as a dozen multiply-adds. Accurate to a few ulp on the ranges the losses use; inputs
// outside them are masked by the caller's selects.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../macros.h"

namespace landmark_kernels::vec_math {

// bit_cast is C++20; torch before 2.13 builds extensions as C++17. memcpy compiles to the
// same register move and vectorises.
template <typename To, typename From>
LK_HD To bit_cast(From from) {
  static_assert(sizeof(To) == sizeof(From));
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}

// x > 0 (normal) as 2^k·m with m in [√½, √2): subtracting √½'s bits puts m's range at the
// bottom of an exponent field, so k is one arithmetic shift and m the mantissa put back.
// Returned by value (k as a float, as the callers use it): an out-parameter keeps GCC from
// vectorising the loops.
struct Split {
  float m, k;
};
LK_HD Split split_exponent(float x) {
  const int32_t bits = bit_cast<int32_t>(x) - 0x3f3504f3;
  return {bit_cast<float>((bits & 0x007fffff) + 0x3f3504f3), float(bits >> 23)};
}

// ln(1 + f) for f in [√½ − 1, √2 − 1], as f − f²/2 + f³·P(f) with P of degree 7, fitted by us
// (weighted least squares toward minimax; relative error < 8.1e-8, under 0.9 ulp in float).
// Multiplications and adds only: a division would cost as much as the whole polynomial.
LK_HD float log1p_reduced(float f) {
  const float p = 0.33333331f + f * (-0.25000820f + f * (0.20001227f + f * (-0.16623357f +
                  f * (0.14201759f + f * (-0.13160183f + f * (0.12761575f + f * -0.07634493f))))));
  return f + f * f * (-0.5f + f * p);
}

constexpr float kLn2 = 0.693147180559945f;

// ln(x) for x > 0, subnormals included: k·ln2 + ln(1 + (m − 1)); m − 1 is exact (Sterbenz).
LK_HD float log(float x) {
  const bool subnormal = x < 1.17549435e-38f;
  const Split s = split_exponent(subnormal ? x * 8388608.0f : x);  // 2^23
  return (s.k - (subnormal ? 23.0f : 0.0f)) * kLn2 + log1p_reduced(s.m - 1.0f);
}

// e^z, with gradual underflow: results below 2^−126 are subnormal, as std::exp's (the AWing
// gradient divides such a t by an equally tiny x); 0 below −103.98, ∞ above 88.72.
LK_HD float exp(float z) {
  const float clamped = z < -103.98f ? -103.98f : (z > 88.72f ? 88.72f : z);
  // Round to nearest by adding and removing 1.5·2^23 (std::nearbyint does not vectorise on SSE2).
  const float n = (clamped * 1.44269504f + 12582912.0f) - 12582912.0f;
  // Cody–Waite: ln 2 in two parts so r = z − n·ln2 is exact to float precision.
  const float r = (clamped - n * 0.693145752f) - n * 1.42860677e-6f;
  const float p =
      1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 +
      r * (1.0f / 720 + r * (1.0f / 5040)))))));
  // 2^n in two normal factors (n ∈ [−150, 128] does not fit one exponent field): p·2^half is
  // exact, and the second product rounds once, into the subnormals where it must.
  const int32_t ni = int32_t(n);
  const int32_t half = ni / 2;
  const float result = p * bit_cast<float>((half + 127) << 23) *
                       bit_cast<float>((ni - half + 127) << 23);
  return z < -103.98f ? 0.0f : (z > 88.72f ? INFINITY : result);
}

// ln(1+t) for t ≥ 0 (∞ and NaN pass through), accurate for small t with no division: while
// 1 + t < √2 (k = 0) the reduced argument is t itself, not the rounded (1 + t) − 1; above, that
// rounding is under 2^−24 of ln(1 + t) ≥ ln√2 and is dropped.
LK_HD float log1p(float t) {
  const Split s = split_exponent(1.0f + t);
  const float r = s.k * kLn2 + log1p_reduced(s.k == 0.0f ? t : s.m - 1.0f);
  return t < INFINITY ? r : t;  // one comparison: `t == ∞ || t != t` stops GCC vectorising
}

}  // namespace landmark_kernels::vec_math
