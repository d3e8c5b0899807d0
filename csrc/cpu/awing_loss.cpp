// AWing loss + weighted loss map on the CPU: one pass per heatmap, parallel over heatmaps.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "../awing_loss.h"

namespace landmark_kernels {
namespace {

// Grey dilation (k×k max, −inf padding) of one H×W plane, separable: rows then columns.
template <typename T>
void dilate_plane(const T* src, T* row_max, T* out, int64_t h, int64_t w, int64_t radius) {
  for (int64_t r = 0; r < h; ++r) {
    for (int64_t c = 0; c < w; ++c) {
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t j = std::max<int64_t>(c - radius, 0); j <= std::min(c + radius, w - 1); ++j)
        m = std::max(m, src[r * w + j]);
      row_max[r * w + c] = m;
    }
  }
  for (int64_t r = 0; r < h; ++r) {
    T* dst = out + r * w;
    std::fill(dst, dst + w, -std::numeric_limits<T>::infinity());
    for (int64_t i = std::max<int64_t>(r - radius, 0); i <= std::min(r + radius, h - 1); ++i)
      for (int64_t c = 0; c < w; ++c) dst[c] = std::max(dst[c], row_max[i * w + c]);
  }
}

template <typename scalar_t>
void awing_planes(const AWingProblem& p, int64_t map_kernel, int64_t reduction,
                  const at::Tensor& loss, const at::Tensor& grad) {
  using T = at::opmath_type<scalar_t>;
  const int64_t hw = p.height * p.width;
  const AWingConsts<T> c{T(p.consts.alpha),      T(p.consts.omega),
                         T(p.consts.theta),      T(p.consts.inv_epsilon),
                         T(p.consts.map_weight), T(p.consts.map_threshold)};
  const bool use_map = p.consts.map_weight != 0.0;
  const scalar_t* pred = p.pred.const_data_ptr<scalar_t>();
  const scalar_t* target = p.target.const_data_ptr<scalar_t>();
  const scalar_t* weight = p.weight.defined() ? p.weight.const_data_ptr<scalar_t>() : nullptr;
  scalar_t* loss_map = reduction == kNone ? loss.mutable_data_ptr<scalar_t>() : nullptr;
  scalar_t* grad_out = grad.numel() ? grad.mutable_data_ptr<scalar_t>() : nullptr;
  // Stage one of the deterministic reduction: one double per plane, whatever the thread count.
  std::vector<double> plane_sums(p.planes, 0.0);

  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(hw, 1));
  at::parallel_for(0, p.planes, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> scratch(3 * hw);
    T* y = scratch.data();       // weighted target
    T* factor = y + hw;          // weighted loss map factor
    T* row_max = factor + hw;
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t base = plane * hw;
      const T w_channel = weight && !p.weight_per_pixel ? T(weight[plane]) : T(1);
      const scalar_t* w_pixel = weight && p.weight_per_pixel ? weight + base : nullptr;
      for (int64_t i = 0; i < hw; ++i)
        y[i] = T(target[base + i]) * (w_pixel ? T(w_pixel[i]) : w_channel);
      if (use_map) {
        dilate_plane(y, row_max, factor, p.height, p.width, map_kernel / 2);
        for (int64_t i = 0; i < hw; ++i) factor[i] = awing_map_factor(factor[i], c);
      } else {
        std::fill(factor, factor + hw, T(1));
      }
      double sum = 0.0;
      for (int64_t i = 0; i < hw; ++i) {
        const T w = w_pixel ? T(w_pixel[i]) : w_channel;
        T g;
        const T l = factor[i] * awing_pixel(T(pred[base + i]) * w - y[i], y[i], c, &g);
        sum += double(l);
        if (loss_map) loss_map[base + i] = scalar_t(l);
        if (grad_out) grad_out[base + i] = scalar_t(factor[i] * w * g);
      }
      plane_sums[plane] = sum;
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
