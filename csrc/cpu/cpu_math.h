#pragma once
// The Math policy of the CPU kernels: ExpLogMath over vectorisable log/exp (vec_math.h) for
// float arithmetic (fp32/fp16/bf16 inputs), libm for fp64. Plugged into the shared element-wise
// maths (awing_math.h, coord_loss_math.h) as their `Math` parameter.
#include <type_traits>

#include "../awing_math.h"  // ExpLogMath, StdMath
#include "vec_math.h"

namespace landmark_kernels {

struct VecFns {
  LK_HD static float log(float x) { return vec_math::log(x); }
  LK_HD static float exp(float x) { return vec_math::exp(x); }
  LK_HD static float log1p(float x) { return vec_math::log1p(x); }
  LK_HD static float log_unit(float x) { return vec_math::log_unit(x); }
  LK_HD static float exp_nonpositive(float x) { return vec_math::exp_nonpositive(x); }
  LK_HD static float log1p_unit(float x) { return vec_math::log1p_unit(x); }
};

template <typename T>
using CpuMath = std::conditional_t<std::is_same_v<T, float>, ExpLogMath<VecFns>, StdMath>;

}  // namespace landmark_kernels
