// AWing loss + weighted loss map on the CPU: one pass per heatmap, parallel over heatmaps. The
// multi-stage op (awing_loss_stages) builds each heatmap's weighted target and map once and runs
// the loss loop of every stage against it; the single-stage op is its S = 1 case.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "../awing_loss.h"
#include "awing_planes.h"

namespace landmark_kernels {
namespace {

template <typename scalar_t>
void awing_planes(const AWingProblem& p, int64_t map_kernel, int64_t reduction,
                  const at::Tensor& loss, const at::Tensor& grad) {
  using T = at::opmath_type<scalar_t>;
  const int64_t hw = p.height * p.width;
  const AWingConsts<T> c = p.consts.template to<T>();
  const std::vector<AWingConsts<T>> consts = stage_consts<T>(p.consts, p.stages);
  const int64_t stage_stride = p.planes * hw;
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
      plane_sums[plane] = stages_plane_loss(pred + base, target + base, y, w, factor, hw,
                                            p.stages, consts, stage_stride,
                                            loss_map ? loss_map + base : nullptr,
                                            grad_out ? grad_out + base : nullptr);
    }
  });
  if (reduction != kNone) {
    double total = 0.0;  // stage two: fixed order
    for (double s : plane_sums) total += s;
    const int64_t n = p.planes * hw;  // one stage's pixels: each stage is reduced on its own
    if (reduction == kMean) total = n > 0 ? total / double(n) : 0.0;
    loss.fill_(total);
  }
}

std::tuple<at::Tensor, at::Tensor> run_awing_cpu(
    const at::Tensor& pred, const at::Tensor& target,
    const std::optional<at::Tensor>& target_weight, at::ArrayRef<double> stage_weights,
    bool multi_stage, double alpha, double omega, double epsilon, double theta,
    double map_weight, double map_threshold, int64_t map_kernel, int64_t reduction,
    bool compute_grad) {
  const AWingProblem p = prepare_awing(pred, target, target_weight, stage_weights, multi_stage,
                                       alpha, omega, epsilon, theta, map_weight, map_threshold,
                                       map_kernel, reduction);
  auto [loss, grad] = allocate_loss_outputs(pred, reduction, compute_grad);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "awing_loss_cpu",
                                  [&] { awing_planes<scalar_t>(p, map_kernel, reduction, loss, grad); });
  return {loss, grad};
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CPU, m) {
  m.impl("awing_loss", &AWingEntries<run_awing_cpu>::single);
  m.impl("awing_loss_stages", &AWingEntries<run_awing_cpu>::stages);
}

}  // namespace landmark_kernels
