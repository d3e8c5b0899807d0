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
// P by Estrin's scheme: its pairs evaluate side by side (in Horner's form it is 7 dependent
// FMAs, and the loops that use it are bound by that latency).
LK_HD float log1p_reduced(float f) {
  const float f2 = f * f, f4 = f2 * f2;
  const float p = (0.33333331f + f * -0.25000820f) + f2 * (0.20001227f + f * -0.16623357f) +
                  f4 * ((0.14201759f + f * -0.13160183f) + f2 * (0.12761575f + f * -0.07634493f));
  return f + f2 * (-0.5f + f * p);
}

constexpr float kLn2 = 0.693147180559945f;

// ln(x) for x > 0, subnormals included: k·ln2 + ln(1 + (m − 1)); m − 1 is exact (Sterbenz).
LK_HD float log(float x) {
  const bool subnormal = x < 1.17549435e-38f;
  const Split s = split_exponent(subnormal ? x * 8388608.0f : x);  // 2^23
  return (s.k - (subnormal ? 23.0f : 0.0f)) * kLn2 + log1p_reduced(s.m - 1.0f);
}

// e^(z − n·ln2) for n = round(z/ln2): Cody–Waite, ln 2 in two parts so that r = z − n·ln2 is
// exact to float precision, then the degree-7 Taylor polynomial of e^r (|r| ≤ ln2/2) by
// Estrin's scheme.
LK_HD float exp_reduced(float z, float n) {
  const float r = (z - n * 0.693145752f) - n * 1.42860677e-6f;
  const float r2 = r * r, r4 = r2 * r2;
  return (1.0f + r) + r2 * (0.5f + r * (1.0f / 6)) +
         r4 * ((1.0f / 24 + r * (1.0f / 120)) + r2 * (1.0f / 720 + r * (1.0f / 5040)));
}

// e^z, with gradual underflow: results below 2^−126 are subnormal, as std::exp's (the AWing
// gradient divides such a t by an equally tiny x); 0 below −103.98, ∞ above 88.72.
LK_HD float exp(float z) {
  const float clamped = z < -103.98f ? -103.98f : (z > 88.72f ? 88.72f : z);
  // Round to nearest by adding and removing 1.5·2^23 (std::nearbyint does not vectorise on SSE2).
  const float n = (clamped * 1.44269504f + 12582912.0f) - 12582912.0f;
  const float p = exp_reduced(clamped, n);
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

// The same three for ACR's ranges, where they need fewer selects (exact to < 1.1, 1.8 and 1.6 ulp
// over every float of their domains, checked here).

// ln(x) for x in (0, 1], subnormals included, with no select: x·2^23 is always normal there.
LK_HD float log_unit(float x) {
  const Split s = split_exponent(x * 8388608.0f);  // 2^23
  return (s.k - 23.0f) * kLn2 + log1p_reduced(s.m - 1.0f);
}

// e^z for z in [−103.9, 0] (e·ln x for x in (0, 1], e in [0, 1]), with gradual underflow and
// none of exp's clamps: n ∈ [−150, 0], so 2^(n+64) is a normal float and one product by 2^−64
// rounds into the subnormals where it must. n + 2^22 sits in the low bits of the rounding sum,
// so 2^(n+64) is that sum's bits plus 191, shifted into the exponent field.
LK_HD float exp_nonpositive(float z) {
  const float shifted = z * 1.44269504f + 12582912.0f;  // 1.5·2^23 + n
  const float n = shifted - 12582912.0f;
  const float p = exp_reduced(z, n);
  return p * bit_cast<float>((bit_cast<int32_t>(shifted) + 191) << 23) * 5.42101086e-20f;
}

// ln(1 + t) for t in [0, 1]: 1 + t is in [1, 2], so the reduced argument is t itself below
// √2 − 1 and (t − 1)/2 above, with k = 1.
LK_HD float log1p_unit(float t) {
  const bool high = t > 0.41421356f;
  return (high ? kLn2 : 0.0f) + log1p_reduced(high ? (t - 1.0f) * 0.5f : t);
}

}  // namespace landmark_kernels::vec_math
