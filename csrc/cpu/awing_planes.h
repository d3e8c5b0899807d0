#pragma once
// The per-heatmap loops of the CPU AWing kernels (awing_loss.cpp, awing_loss_from_coords.cpp):
// the grey dilation of a plane and the vectorised loss/gradient loop over it.
#include <ATen/OpMathType.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../awing_loss.h"  // StageSet
#include "../awing_math.h"
#include "../common.h"
#include "cpu_math.h"  // CpuMath
#include "isa.h"

namespace landmark_kernels {

// A NaN-propagating max, as max_pool2d (the reference's dilation): a NaN target makes its
// neighbours' dilated value NaN, whose map factor is 1 (NaN > threshold is false).
template <typename T>
inline T max_of(T a, T b) {
  return (a > b || a != a) ? a : b;
}

// Grey dilation (k×k max, −inf padding) of one H×W plane, separable: rows then columns. Each
// inner loop is a shifted element-wise max over a row, so it vectorises.
template <typename T>
inline void dilate_plane(const T* src, T* row_max, T* out, int64_t h, int64_t w, int64_t radius) {
  for (int64_t r = 0; r < h; ++r) {
    const T* s = src + r * w;
    T* dst = row_max + r * w;
    std::copy(s, s + w, dst);
    for (int64_t d = 1; d <= radius && d < w; ++d) {
      for (int64_t c = 0; c < w - d; ++c) dst[c] = max_of(dst[c], s[c + d]);
      for (int64_t c = d; c < w; ++c) dst[c] = max_of(dst[c], s[c - d]);
    }
  }
  for (int64_t r = 0; r < h; ++r) {
    T* dst = out + r * w;
    std::copy(row_max + r * w, row_max + (r + 1) * w, dst);
    for (int64_t i = std::max<int64_t>(r - radius, 0); i <= std::min(r + radius, h - 1); ++i) {
      const T* s = row_max + i * w;
      for (int64_t c = 0; c < w; ++c) dst[c] = max_of(dst[c], s[c]);
    }
  }
}

// The per-pixel loop of one plane; the output writes are compile-time so the loop vectorises.
// Sums run in T over chunks of kChunk pixels (a T reduction vectorises, a double one does not),
// then in double across chunks.
constexpr int64_t kChunk = 1024;

// pred·w − target·w is formed as (pred − target)·w: exactly 0 at δ = 0 even when the compiler
// contracts it into an FMA. The loss map (reduction "none") holds the loss times map_scale (a
// stage's weight); the returned sum does not.
template <bool kWriteLoss, bool kWriteGrad, typename T, typename scalar_t, typename target_t>
LK_ALWAYS_INLINE double plane_loss(const scalar_t* pred, const target_t* target, const T* y,
                                   const T* w, const T* factor, int64_t n,
                                   const AWingConsts<T>& c, T map_scale, T* loss_map,
                                   stored_grad_t<scalar_t>* grad) {
  double total = 0.0;
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t stop = std::min(start + kChunk, n);
    T sum = T(0);
#pragma omp simd reduction(+ : sum)
    for (int64_t i = start; i < stop; ++i) {
      T g;
      const T diff = (T(pred[i]) - T(target[i])) * w[i];
      const T l = factor[i] * awing_pixel<CpuMath<T>>(diff, y[i], c, &g);
      sum += l;
      if constexpr (kWriteLoss) loss_map[i] = l * map_scale;
      if constexpr (kWriteGrad)
        grad[i] = stored_grad_t<scalar_t>(factor[i] * w[i] * g * c.grad_scale);
    }
    total += double(sum);
  }
  return total;
}

// The same loop compiled for AVX-512 and for AVX2+FMA, picked at run time (isa.h).
template <bool kWriteLoss, bool kWriteGrad, typename T, typename scalar_t, typename target_t>
LK_TARGET_AVX512 double plane_loss_avx512(const scalar_t* pred, const target_t* target,
                                          const T* y, const T* w, const T* factor, int64_t n,
                                          const AWingConsts<T>& c, T map_scale, T* loss_map,
                                          stored_grad_t<scalar_t>* grad) {
  return plane_loss<kWriteLoss, kWriteGrad>(pred, target, y, w, factor, n, c, map_scale,
                                            loss_map, grad);
}

template <bool kWriteLoss, bool kWriteGrad, typename T, typename scalar_t, typename target_t>
LK_TARGET_AVX2 double plane_loss_avx2(const scalar_t* pred, const target_t* target, const T* y,
                                      const T* w, const T* factor, int64_t n,
                                      const AWingConsts<T>& c, T map_scale, T* loss_map,
                                      stored_grad_t<scalar_t>* grad) {
  return plane_loss<kWriteLoss, kWriteGrad>(pred, target, y, w, factor, n, c, map_scale,
                                            loss_map, grad);
}

template <bool kWriteLoss, bool kWriteGrad, typename T, typename scalar_t, typename target_t>
inline double plane_loss_dispatch(const scalar_t* pred, const target_t* target, const T* y,
                                  const T* w, const T* factor, int64_t n,
                                  const AWingConsts<T>& c, T map_scale, T* loss_map,
                                  stored_grad_t<scalar_t>* grad) {
  switch (cpu_isa()) {
    case Isa::kAvx512:
      return plane_loss_avx512<kWriteLoss, kWriteGrad>(pred, target, y, w, factor, n, c,
                                                       map_scale, loss_map, grad);
    case Isa::kAvx2:
      return plane_loss_avx2<kWriteLoss, kWriteGrad>(pred, target, y, w, factor, n, c,
                                                     map_scale, loss_map, grad);
    default:
      return plane_loss<kWriteLoss, kWriteGrad>(pred, target, y, w, factor, n, c, map_scale,
                                                loss_map, grad);
  }
}

// plane_loss for whichever outputs exist (loss_map / grad nullptr when not written); returns
// the plane's loss sum.
template <typename T, typename scalar_t, typename target_t>
double plane_loss_any(const scalar_t* pred, const target_t* target, const T* y, const T* w,
                      const T* factor, int64_t n, const AWingConsts<T>& c, T map_scale,
                      T* loss_map, stored_grad_t<scalar_t>* grad) {
  const auto run = [&](auto write_loss, auto write_grad) {
    return plane_loss_dispatch<decltype(write_loss)::value, decltype(write_grad)::value>(
        pred, target, y, w, factor, n, c, map_scale, loss_map, grad);
  };
  using Yes = std::true_type;
  using No = std::false_type;
  return loss_map ? (grad ? run(Yes{}, Yes{}) : run(Yes{}, No{}))
                  : (grad ? run(No{}, Yes{}) : run(No{}, No{}));
}

// The loss constants of each stage: the stored gradient carries the stage's weight.
template <typename T>
std::vector<AWingConsts<T>> stage_consts(const AWingConsts<double>& consts,
                                         const StageSet& stages) {
  std::vector<AWingConsts<T>> out;
  for (double weight : stages.weights) {
    AWingConsts<double> c = consts;
    c.grad_scale *= weight;
    out.push_back(c.template to<T>());
  }
  return out;
}

// Every stage of one plane against its target, computed once (y, w, factor): stage s reads its
// pred plane at pred + s·stage_stride and writes its grad (and loss map) plane there. Returns
// Σ_s w_s·(the stage's loss sum over the plane).
template <typename T, typename scalar_t, typename target_t>
double stages_plane_loss(const scalar_t* pred, const target_t* target, const T* y, const T* w,
                         const T* factor, int64_t n, const StageSet& stages,
                         const std::vector<AWingConsts<T>>& consts, int64_t stage_stride,
                         T* loss_map, stored_grad_t<scalar_t>* grad) {
  double total = 0.0;
  for (int64_t s = 0; s < stages.stages; ++s) {
    const int64_t off = s * stage_stride;
    const double weight = stages.weights[s];
    const double sum = plane_loss_any(pred + off, target, y, w, factor, n, consts[s], T(weight),
                                      loss_map ? loss_map + off : nullptr,
                                      grad ? grad + off : nullptr);
    total += weight * sum;
  }
  return total;
}

}  // namespace landmark_kernels
