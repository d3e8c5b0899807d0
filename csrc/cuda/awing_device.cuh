#pragma once
// Device helpers shared by the AWing CUDA kernels (awing_loss.cu, awing_loss_from_coords.cu):
// the fp32 fast-maths policy of awing_pixel (awing_math.h), the 4-wide vector loads/stores and
// the per-row loss of every stage (stages_row).
#include <ATen/OpMathType.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../awing_loss.h"  // kMaxStages
#include "../awing_math.h"
#include "../common.h"       // stored_grad_t

namespace landmark_kernels {

constexpr int kVec = 4;

// Four consecutive values; 16-byte accesses for fp32 (two for fp64, one 8-byte access for
// fp16/bf16).
template <typename T>
struct alignas(sizeof(T) * kVec < 16 ? sizeof(T) * kVec : 16) Vec4 {
  T v[kVec];
};

// fp32 maths on the hardware's lg2/ex2/rcp (one MUFU instruction each, flushing subnormals)
// instead of the accurate library calls (~40 instructions each). Error: t = ex2(e·lg2 xs) with
// lg2 within 2^−22.6 absolute (xs in [½, 2]) or 2 ulp, so |Δt/t| ≤ ln2·(|e·lg2 xs|·2^−23 +
// e·2^−22.6) ≈ 2e-6 for the heatmap range (|lg2 xs| ≤ 10, e ≤ 2.1); log1p below 1/16 is its
// series to t⁵ (error < t⁶/6), above it lg2(1+t) (relative error ≤ 2^−24/t + 2^−22.6/lg2(1+t)
// ≈ 2e-6); rcp is within 1 ulp for divisors in [1, 2^126], which the Python checks guarantee
// ((θ/ε)^α ≤ 2^126). Together: within 1e-5 relative of the fp64 reference
// (tests/test_awing_loss.py). xs = δ/ε below 2^−126 (fp32's normal range) counts as 2^−126,
// which keeps t/xs exact where it matters (α − y = 1) and changes the loss by < 1e-37.
// fp64 keeps StdMath.
struct FastMath {
  __device__ __forceinline__ static float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
  }
  __device__ __forceinline__ static float lg2(float x) {
    float y;
    asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
  }
  __device__ __forceinline__ static void powers(float xs, float e, float* t, float* t_over_xs) {
    const float lx = lg2(fmaxf(xs, 1.17549435e-38f));
    *t = ex2(e * lx);
    *t_over_xs = ex2((e - 1.0f) * lx);  // not t / xs: no quotient of two tiny numbers
  }
  __device__ __forceinline__ static float log1p(float t) {
    const float series = t * (1.0f - t * (0.5f - t * (1.0f / 3 - t * (0.25f - t * 0.2f))));
    return t < 0.0625f ? series : 0.693147181f * lg2(1.0f + t);
  }
  __device__ __forceinline__ static float div(float a, float b) {
    float r;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(b));
    return a * r;
  }
};
template <typename T>
using DeviceMath = std::conditional_t<std::is_same_v<T, float>, FastMath, StdMath>;

// exp for the Gaussian targets of awing_loss_from_coords: ex2 (one MUFU) in fp32, exp in fp64.
struct FastExp {
  __device__ __forceinline__ static float exp(float x) {
    return FastMath::ex2(x * 1.44269504f);
  }
  __device__ __forceinline__ static double exp(double x) { return ::exp(x); }
};

template <typename T>
__device__ __forceinline__ Vec4<T> broadcast(T x) {
  Vec4<T> out;
#pragma unroll
  for (int k = 0; k < kVec; ++k) out.v[k] = x;
  return out;
}

// The n ≤ 4 values at idx, converted to the compute type, `fill` for the other 4 − n (n == 4
// on the vectorised path, n == 0 loads nothing).
template <bool kVectorized, typename T, typename scalar_t>
__device__ __forceinline__ Vec4<T> load4(const scalar_t* p, int64_t idx, int n, T fill) {
  Vec4<T> out = broadcast(fill);
  if constexpr (kVectorized) {
    if (n == kVec) {
      const Vec4<scalar_t> raw = *reinterpret_cast<const Vec4<scalar_t>*>(p + idx);
#pragma unroll
      for (int k = 0; k < kVec; ++k) out.v[k] = T(raw.v[k]);
    }
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k)
      if (k < n) out.v[k] = T(p[idx + k]);
  }
  return out;
}

// Writes a Vec4 as 16- or 8-byte vector stores. Assigning the struct lets the compiler split it
// into four scalar stores when registers are tight; st.global.v4/v2 cannot be split.
template <typename S>
__device__ __forceinline__ void store_words(S* dst, const Vec4<S>& x) {
  if constexpr (sizeof(Vec4<S>) % 16 == 0) {
    uint4 w[sizeof(Vec4<S>) / 16];
    memcpy(w, &x, sizeof(w));
#pragma unroll
    for (int i = 0; i < int(sizeof(w) / 16); ++i)
      asm volatile("st.global.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(reinterpret_cast<uint4*>(dst) + i),
                   "r"(w[i].x), "r"(w[i].y), "r"(w[i].z), "r"(w[i].w) : "memory");
  } else {
    static_assert(sizeof(Vec4<S>) == 8, "fp16/bf16 Vec4: one 8-byte store");
    uint2 w;
    memcpy(&w, &x, sizeof(w));
    asm volatile("st.global.v2.u32 [%0], {%1, %2};" ::"l"(dst), "r"(w.x), "r"(w.y) : "memory");
  }
}

template <bool kVectorized, typename scalar_t, typename T>
__device__ __forceinline__ void store4(scalar_t* p, int64_t idx, int n, const Vec4<T>& x) {
  if constexpr (kVectorized) {
    Vec4<scalar_t> raw;
#pragma unroll
    for (int k = 0; k < kVec; ++k) raw.v[k] = scalar_t(x.v[k]);
    store_words(p + idx, raw);
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k)
      if (k < n) p[idx + k] = scalar_t(x.v[k]);
  }
}

// What the kernels of the multi-stage ops add to their arguments: pred, grad and the loss map
// are (S,B,K,H,W), stage s at s·numel elements, scaled by weight[s]. The kernels take their
// arguments as __grid_constant__, so that weight[s] is read from the constant bank with a
// run-time index (a by-value array would be copied to local memory).
template <typename T>
struct StageArgs {
  int64_t numel;  // elements of one stage, B·K·H·W
  int count;      // S (1 for the single-stage op)
  T weight[kMaxStages];
};

// Loss of one stage's four pixels at idx (n of them inside) against the target and weights of
// the row, times the map factor (and the stage weight ws when kWeighted); writes their grad
// (and, kStoreLoss, the per-pixel loss), returns their loss sum.
template <bool kVectorized, bool kStoreLoss, bool kWeighted, typename scalar_t, typename T>
__device__ __forceinline__ T stage_row(const scalar_t* pred_ptr, stored_grad_t<scalar_t>* grad_ptr,
                                       T* loss_ptr, int64_t idx, int n, const Vec4<T>& target,
                                       const Vec4<T>& w, const Vec4<T>& factor,
                                       const AWingConsts<T>& c, T ws) {
  const Vec4<T> pred = load4<kVectorized>(pred_ptr, idx, n, T(0));
  const T grad_scale = kWeighted ? c.grad_scale * ws : c.grad_scale;
  Vec4<T> loss, grad;
  T sum = T(0);
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    // δ from (pred − target)·w as the CPU kernel: exact when pred ≈ target, where the gradient
    // ∝ δ^(α−y−1) magnifies rounding (and exactly 0 at δ = 0 even under FMA).
    T g;
    T l = factor.v[k] * awing_pixel<DeviceMath<T>>((pred.v[k] - target.v[k]) * w.v[k],
                                                   target.v[k] * w.v[k], c, &g);
    if constexpr (kWeighted) l *= ws;
    loss.v[k] = l;
    grad.v[k] = factor.v[k] * w.v[k] * g * grad_scale;
    sum += k < n ? l : T(0);
  }
  if constexpr (kStoreLoss) store4<kVectorized>(loss_ptr, idx, n, loss);
  if (grad_ptr != nullptr) store4<kVectorized>(grad_ptr, idx, n, grad);  // fp32 for fp16 pred
  return sum;
}

// stage_row for every stage against one row's target, read (or rendered) once: the single-
// stage op (!kMultiStage) has no loop and no stage weight.
template <bool kVectorized, bool kStoreLoss, bool kMultiStage, typename scalar_t, typename T>
__device__ __forceinline__ T stages_row(const scalar_t* pred, stored_grad_t<scalar_t>* grad,
                                        T* loss_map, const StageArgs<T>& st, int64_t idx, int n,
                                        const Vec4<T>& target, const Vec4<T>& w,
                                        const Vec4<T>& factor, const AWingConsts<T>& c) {
  if constexpr (!kMultiStage) {
    return stage_row<kVectorized, kStoreLoss, false>(pred, grad, loss_map, idx, n, target, w,
                                                     factor, c, T(1));
  } else {
    T sum = T(0);
    for (int s = 0; s < st.count; ++s) {
      const int64_t at = idx + s * st.numel;
      sum += stage_row<kVectorized, kStoreLoss, true>(pred, grad, loss_map, at, n, target, w,
                                                      factor, c, st.weight[s]);
    }
    return sum;
  }
}

// The StageArgs of a problem (its stage set, its stage size).
template <typename T>
inline StageArgs<T> stage_args(const StageSet& stages, int64_t stage_numel) {
  StageArgs<T> st{};
  st.numel = stage_numel;
  st.count = static_cast<int>(stages.stages);
  for (int64_t s = 0; s < stages.stages; ++s) st.weight[s] = T(stages.weights[s]);
  return st;
}

// Blocks of 256 threads per SM the multi-stage kernels are compiled for: 4 (64 registers, 50 %
// occupancy). The stage loop keeps a row's target, weights and map factors (and, in the AWing
// kernel, the rolling window of row maxima) live across the stages: under the single-stage
// kernels' 40-register cap that spilled 64-108 bytes per thread (scripts/kernel_report.py).
constexpr int kStageMinBlocksPerSm = 4;

// Whether a problem needs the stage loop: several stages, or one with a weight other than 1.
inline bool needs_stage_loop(const StageSet& stages) {
  return stages.stages > 1 || stages.weights[0] != 1.0;
}

inline bool aligned_for(const void* p, size_t alignment) {
  return p == nullptr || reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

}  // namespace landmark_kernels
