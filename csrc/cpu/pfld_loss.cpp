// PFLD loss on the CPU (docs/coordinate_losses.md): per-sample squared distances (parallel over
// samples, each
// writing its part of the gradient), then class weights, angle terms and the two batch means in
// a fixed order, so that results do not depend on the thread count.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../pfld_loss.h"

namespace landmark_kernels {
namespace {

// D_b = Σ (ŷ − y)² over the `n` elements of one sample; writes 2(ŷ − y)/B when asked.
template <bool kWriteGrad, typename T, typename scalar_t, typename grad_t>
T sample_distance(const scalar_t* pred, const scalar_t* target, int64_t n, T grad_scale,
                  grad_t* grad) {
  T sum = T(0);
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    const T diff = T(pred[i]) - T(target[i]);
    sum += diff * diff;
    if constexpr (kWriteGrad) grad[i] = grad_t(grad_scale * diff);
  }
  return sum;
}

template <typename scalar_t>
void pfld_cpu(const PfldProblem& p, double weight_floor, const at::Tensor& weighted,
              const at::Tensor& l2, const at::Tensor& grad_pred, const at::Tensor& sample_weight,
              const at::Tensor& grad_angles) {
  using T = at::opmath_type<scalar_t>;
  using grad_t = stored_grad_t<scalar_t>;
  const int64_t B = p.batch, M = p.row, K = p.num_angles, C = p.num_classes;
  T* out_weighted = weighted.mutable_data_ptr<T>();
  T* out_l2 = l2.mutable_data_ptr<T>();
  if (B == 0) {  // the empty batch: both means are 0
    *out_weighted = *out_l2 = T(0);
    return;
  }
  const scalar_t* pred = p.pred.const_data_ptr<scalar_t>();
  const scalar_t* target = p.target.const_data_ptr<scalar_t>();
  const scalar_t* angles = p.angles.const_data_ptr<scalar_t>();
  const scalar_t* angles_target = p.angles_target.const_data_ptr<scalar_t>();
  const scalar_t* attributes = p.attributes.const_data_ptr<scalar_t>();
  grad_t* gp = grad_pred.numel() > 0 ? grad_pred.mutable_data_ptr<grad_t>() : nullptr;
  T* ga = grad_angles.numel() > 0 ? grad_angles.mutable_data_ptr<T>() : nullptr;
  T* sw = sample_weight.mutable_data_ptr<T>();
  const T inv_batch = T(1.0 / double(B));

  // Stage 1: D_b per sample, kept in sample_weight until stage 3 replaces it by W_b.
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(M, 1));
  at::parallel_for(0, B, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      sw[b] = gp ? sample_distance<true>(pred + b * M, target + b * M, M, T(2) * inv_batch,
                                         gp + b * M)
                 : sample_distance<false>(pred + b * M, target + b * M, M, T(0), gp);
    }
  });

  // Stage 2: class weights, given or from the batch frequencies (summed in sample order).
  std::vector<T> class_weight(C);
  for (int64_t c = 0; c < C; ++c) {
    if (p.weights.defined()) {
      class_weight[c] = T(p.weights.const_data_ptr<scalar_t>()[c]);
      continue;
    }
    T count = T(0);
    for (int64_t b = 0; b < B; ++b) count += T(attributes[b * C + c]);
    class_weight[c] = pfld_class_weight(count * inv_batch, T(B));
  }

  // Stage 3: per-sample weights and the two means, in sample order.
  const T period = T(p.period);
  const T min_weight = T(weight_floor);
  double total_weighted = 0.0, total_l2 = 0.0;
  for (int64_t b = 0; b < B; ++b) {
    const T d2 = sw[b];
    T attr = T(0);
    for (int64_t c = 0; c < C; ++c) attr += class_weight[c] * T(attributes[b * C + c]);
    attr = attr < min_weight ? min_weight : attr;  // NaN stays NaN, as clamp(min=)
    T angle = T(0);
    for (int64_t k = 0; k < K; ++k) {
      T slope;
      angle += pfld_angle_term(T(angles[b * K + k]) - T(angles_target[b * K + k]), period, &slope);
      if (ga) ga[b * K + k] = slope * attr * d2 * inv_batch;
    }
    sw[b] = angle * attr;
    total_weighted += double(sw[b] * d2);
    total_l2 += double(d2);
  }
  *out_weighted = T(total_weighted / double(B));
  *out_l2 = T(total_l2 / double(B));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> pfld_loss_cpu(
    const at::Tensor& pred, const at::Tensor& target, const at::Tensor& angles,
    const at::Tensor& angles_target, const at::Tensor& attributes,
    const std::optional<at::Tensor>& attribute_weights, bool degrees, double weight_floor,
    bool compute_grad) {
  const PfldProblem p = prepare_pfld(pred, target, angles, angles_target, attributes,
                                     attribute_weights, degrees, weight_floor);
  auto [weighted, l2, grad_pred, sample_weight, grad_angles] =
      allocate_pfld_outputs(p, compute_grad);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "pfld_loss_cpu",
                                  [&] {
    pfld_cpu<scalar_t>(p, weight_floor, weighted, l2, grad_pred, sample_weight, grad_angles);
  });
  return {weighted, l2, grad_pred, sample_weight, grad_angles};
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CPU, m) { m.impl("pfld_loss", &pfld_loss_cpu); }

}  // namespace landmark_kernels
