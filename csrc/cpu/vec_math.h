#pragma once
// Branch-free float log/exp that the compiler vectorises inside `#pragma omp simd` loops
// (libm's scalar calls would keep the AWing loop scalar). Accurate to a few ulp on the ranges
// the losses use; inputs outside them are masked by the caller's selects.
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

// ln(x) for x > 0 (subnormals included): x = m·2^k with m in [√½, √2), then
// ln(m) = 2·atanh(s), s = (m−1)/(m+1), |s| < 0.172, summed to s⁹ (error < 1e-9).
LK_HD float log(float x) {
  const bool subnormal = x < 1.17549435e-38f;
  x = subnormal ? x * 8388608.0f : x;  // 2^23
  const int32_t bits = bit_cast<int32_t>(x);
  int32_t k = ((bits >> 23) & 0xff) - 127 - (subnormal ? 23 : 0);
  float m = bit_cast<float>((bits & 0x007fffff) | 0x3f800000);
  const bool high = m > 1.41421356f;
  m = high ? 0.5f * m : m;
  k += high ? 1 : 0;
  const float s = (m - 1.0f) / (m + 1.0f);
  const float s2 = s * s;
  const float series = 1.0f + s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 + s2 * (1.0f / 9))));
  return 2.0f * s * series + float(k) * 0.693147180559945f;
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

// ln(1+t) for t ≥ 0, accurate for small t: ln(u)·t/(u−1) with u = fl(1+t) cancels the
// rounding of 1+t (Goldberg's trick).
LK_HD float log1p(float t) {
  const float u = 1.0f + t;
  const float d = u - 1.0f;
  return d == 0.0f ? t : (t == INFINITY ? INFINITY : vec_math::log(u) * (t / d));
}

}  // namespace landmark_kernels::vec_math
