// AWing loss + weighted loss map on the CPU: one pass per heatmap, parallel over heatmaps.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "../awing_loss.h"
#include "cpu_math.h"

namespace landmark_kernels {
namespace {

// A NaN-propagating max, as max_pool2d (the reference's dilation): a NaN target makes its
// neighbours' dilated value NaN, whose map factor is 1 (NaN > threshold is false).
template <typename T>
LK_HD T max_of(T a, T b) {
  return (a > b || a != a) ? a : b;
}

// Grey dilation (k×k max, −inf padding) of one H×W plane, separable: rows then columns. Each
// inner loop is a shifted element-wise max over a row, so it vectorises.
template <typename T>
void dilate_plane(const T* src, T* row_max, T* out, int64_t h, int64_t w, int64_t radius) {
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
// contracts it into an FMA.
template <bool kWriteLoss, bool kWriteGrad, typename T, typename scalar_t>
LK_HD double plane_loss(const scalar_t* pred, const scalar_t* target, const T* y, const T* w,
                        const T* factor, int64_t n, const AWingConsts<T>& c, T* loss_map,
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
      if constexpr (kWriteLoss) loss_map[i] = l;
      if constexpr (kWriteGrad)
        grad[i] = stored_grad_t<scalar_t>(factor[i] * w[i] * g * c.grad_scale);
    }
    total += double(sum);
  }
  return total;
}

// The same loop compiled for AVX2+FMA (8 lanes instead of SSE2's 4, ~2x here), picked at run
// time so that the library still runs on x86-64 CPUs without AVX2.
#if defined(__x86_64__) && defined(__GNUC__)
template <bool kWriteLoss, bool kWriteGrad, typename T, typename scalar_t>
__attribute__((target("avx2,fma"))) double plane_loss_avx2(
    const scalar_t* pred, const scalar_t* target, const T* y, const T* w, const T* factor,
    int64_t n, const AWingConsts<T>& c, T* loss_map, stored_grad_t<scalar_t>* grad) {
  return plane_loss<kWriteLoss, kWriteGrad>(pred, target, y, w, factor, n, c, loss_map, grad);
}
const bool kHasAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif

template <bool kWriteLoss, bool kWriteGrad, typename T, typename scalar_t>
double plane_loss_dispatch(const scalar_t* pred, const scalar_t* target, const T* y, const T* w,
                           const T* factor, int64_t n, const AWingConsts<T>& c,
                           T* loss_map, stored_grad_t<scalar_t>* grad) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx2)
    return plane_loss_avx2<kWriteLoss, kWriteGrad>(pred, target, y, w, factor, n, c, loss_map,
                                                   grad);
#endif
  return plane_loss<kWriteLoss, kWriteGrad>(pred, target, y, w, factor, n, c, loss_map, grad);
}

template <typename scalar_t>
void awing_planes(const AWingProblem& p, int64_t map_kernel, int64_t reduction,
                  const at::Tensor& loss, const at::Tensor& grad) {
  using T = at::opmath_type<scalar_t>;
  const int64_t hw = p.height * p.width;
  const AWingConsts<T> c = p.consts.template to<T>();
  const bool use_map = p.consts.map_weight != 0.0;
  const scalar_t* pred = p.pred.const_data_ptr<scalar_t>();
  const scalar_t* target = p.target.const_data_ptr<scalar_t>();
  const scalar_t* weight = p.weight.defined() ? p.weight.const_data_ptr<scalar_t>() : nullptr;
  T* loss_map = reduction == kNone ? loss.mutable_data_ptr<T>() : nullptr;
  stored_grad_t<scalar_t>* grad_out =
      grad.numel() ? grad.mutable_data_ptr<stored_grad_t<scalar_t>>() : nullptr;
  // Stage one of the deterministic reduction: one double per plane, whatever the thread count.
  std::vector<double> plane_sums(p.planes, 0.0);

  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(hw, 1));
  at::parallel_for(0, p.planes, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> scratch(4 * hw);
    T* y = scratch.data();  // weighted target
    T* w = y + hw;          // target weight per pixel
    T* factor = w + hw;     // weighted loss map factor
    T* row_max = factor + hw;
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t base = plane * hw;
      if (weight && p.weight_per_pixel) {
        for (int64_t i = 0; i < hw; ++i) w[i] = T(weight[base + i]);
      } else {
        std::fill(w, w + hw, weight ? T(weight[plane]) : T(1));
      }
      for (int64_t i = 0; i < hw; ++i) y[i] = T(target[base + i]) * w[i];
      if (use_map) {
        dilate_plane(y, row_max, factor, p.height, p.width, map_kernel / 2);
        for (int64_t i = 0; i < hw; ++i) factor[i] = awing_map_factor(factor[i], c);
      } else {
        std::fill(factor, factor + hw, T(1));
      }
      const auto run = [&](auto write_loss, auto write_grad) {
        return plane_loss_dispatch<decltype(write_loss)::value, decltype(write_grad)::value>(
            pred + base, target + base, y, w, factor, hw, c, loss_map + (loss_map ? base : 0),
            grad_out + (grad_out ? base : 0));
      };
      using Yes = std::true_type;
      using No = std::false_type;
      plane_sums[plane] = loss_map ? (grad_out ? run(Yes{}, Yes{}) : run(Yes{}, No{}))
                                   : (grad_out ? run(No{}, Yes{}) : run(No{}, No{}));
    }
  });
  if (reduction != kNone) {
    double total = 0.0;  // stage two: fixed order
    for (double s : plane_sums) total += s;
    const int64_t n = p.planes * hw;
    if (reduction == kMean) total = n > 0 ? total / double(n) : 0.0;
    loss.fill_(total);
  }
}

std::tuple<at::Tensor, at::Tensor> awing_loss_cpu(
    const at::Tensor& pred, const at::Tensor& target,
    const std::optional<at::Tensor>& target_weight, double alpha, double omega, double epsilon,
    double theta, double map_weight, double map_threshold, int64_t map_kernel,
    int64_t reduction, bool compute_grad) {
  const AWingProblem p = prepare_awing(pred, target, target_weight, alpha, omega, epsilon, theta,
                                       map_weight, map_threshold, map_kernel, reduction);
  auto [loss, grad] = allocate_loss_outputs(pred, reduction, compute_grad);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "awing_loss_cpu",
                                  [&] { awing_planes<scalar_t>(p, map_kernel, reduction, loss, grad); });
  return {loss, grad};
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CPU, m) { m.impl("awing_loss", &awing_loss_cpu); }

}  // namespace landmark_kernels
