// AWing loss + weighted loss map against Gaussian targets rendered from coordinates, on the CPU
// (docs/awing.md): per heatmap, the target is the product of a row and a column Gaussian and the
// k×k dilation is analytic (gaussian_target.h), both into per-thread scratch that stays in
// cache; the loss loop is the AWing op's (awing_planes.h). No target tensor is read. The
// multi-stage op renders each heatmap once and runs every stage's loss loop against it.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../awing_loss_from_coords.h"
#include "awing_planes.h"

namespace landmark_kernels {
namespace {

// The weighted target y = w·gy·gx, the unweighted one (δ = (pred − target)·w) and the map
// factor of one plane.
template <typename T>
void render_plane(T cx, T cy, T sigma, T w, const AWingConsts<T>& c, int64_t h, int64_t wd,
                  int64_t radius, bool use_map, T* axis, T* target, T* y, T* factor) {
  landmark_centre(&cx, &cy);
  const T k = T(-0.5) / (sigma * sigma);
  T* gx = axis;
  T* gy = gx + wd;
  T* mx = gy + h;
  T* my = mx + wd;
  const bool farthest = w < T(0);
  for (int64_t j = 0; j < wd; ++j) {
    gx[j] = gaussian_factor<StdFns>(T(j), cx, k);
    mx[j] = dilated_factor<StdFns>(T(j), cx, k, radius, wd, farthest);
  }
  for (int64_t i = 0; i < h; ++i) {
    gy[i] = gaussian_factor<StdFns>(T(i), cy, k);
    my[i] = dilated_factor<StdFns>(T(i), cy, k, radius, h, farthest);
  }
  for (int64_t i = 0; i < h; ++i) {
    for (int64_t j = 0; j < wd; ++j) {
      target[i * wd + j] = gy[i] * gx[j];
      y[i * wd + j] = target[i * wd + j] * w;
      factor[i * wd + j] = use_map ? awing_map_factor(w * my[i] * mx[j], c) : T(1);
    }
  }
}

template <typename scalar_t>
void coords_planes(const AWingCoordsProblem& p, int64_t map_kernel, int64_t reduction,
                   const at::Tensor& loss, const at::Tensor& grad) {
  using T = at::opmath_type<scalar_t>;
  const int64_t hw = p.height * p.width;
  const AWingConsts<T> c = p.consts.template to<T>();
  const std::vector<AWingConsts<T>> consts = stage_consts<T>(p.consts, p.stages);
  const int64_t stage_stride = p.planes * hw;
  const bool use_map = p.consts.map_weight != 0.0;
  const scalar_t* pred = p.pred.const_data_ptr<scalar_t>();
  const T* coords = p.coords.const_data_ptr<T>();
  const T* sigma = p.sigma.const_data_ptr<T>();
  const scalar_t* weight = p.weight.defined() ? p.weight.const_data_ptr<scalar_t>() : nullptr;
  T* loss_map = reduction == kNone ? loss.mutable_data_ptr<T>() : nullptr;
  stored_grad_t<scalar_t>* grad_out =
      grad.numel() ? grad.mutable_data_ptr<stored_grad_t<scalar_t>>() : nullptr;
  std::vector<double> plane_sums(p.planes, 0.0);  // deterministic: one sum per plane

  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(hw, 1));
  at::parallel_for(0, p.planes, grain, [&](int64_t begin, int64_t end) {
    std::vector<T> scratch(4 * hw + 2 * (p.height + p.width));
    T* target = scratch.data();
    T* y = target + hw;
    T* w = y + hw;
    T* factor = w + hw;
    T* axis = factor + hw;
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t base = plane * hw;
      const T wp = weight ? T(weight[plane]) : T(1);
      std::fill(w, w + hw, wp);
      render_plane(coords[2 * plane], coords[2 * plane + 1], sigma[plane % p.channels], wp, c,
                   p.height, p.width, map_kernel / 2, use_map, axis, target, y, factor);
      plane_sums[plane] = stages_plane_loss(pred + base, target, y, w, factor, hw, p.stages,
                                            consts, stage_stride,
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

std::tuple<at::Tensor, at::Tensor> run_coords_cpu(
    const at::Tensor& pred, const at::Tensor& coords, const at::Tensor& sigma,
    const std::optional<at::Tensor>& target_weight, at::ArrayRef<double> stage_weights,
    bool multi_stage, double alpha, double omega, double epsilon, double theta,
    double map_weight, double map_threshold, int64_t map_kernel, int64_t reduction,
    bool compute_grad) {
  const AWingCoordsProblem p =
      prepare_awing_coords(pred, coords, sigma, target_weight, stage_weights, multi_stage, alpha,
                           omega, epsilon, theta, map_weight, map_threshold, map_kernel,
                           reduction);
  auto [loss, grad] = allocate_loss_outputs(pred, reduction, compute_grad);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, pred.scalar_type(), "awing_loss_from_coords_cpu",
      [&] { coords_planes<scalar_t>(p, map_kernel, reduction, loss, grad); });
  return {loss, grad};
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CPU, m) {
  m.impl("awing_loss_from_coords", &AWingCoordsEntries<run_coords_cpu>::single);
  m.impl("awing_loss_from_coords_stages", &AWingCoordsEntries<run_coords_cpu>::stages);
}

}  // namespace landmark_kernels
