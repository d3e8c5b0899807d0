// PFLD loss on the CPU (docs/coordinate_losses.md): the class weights, then per sample (in
// parallel) its factor W_b, the squared distance D_b with the gradient W_b·2(ŷ − y)/B and the
// angle gradients, then the two batch means in sample order, so that results do not depend on
// the thread count.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../pfld_loss.h"

namespace landmark_kernels {
namespace {

// D_b = Σ (ŷ − y)² over the `n` elements of one sample; writes grad_scale·(ŷ − y) when asked.
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
              const at::Tensor& l2, const at::Tensor& grad_pred, const at::Tensor& grad_angles) {
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
  const T inv_batch = T(1.0 / double(B));

  // The class weights, given or from the batch frequencies (summed in sample order).
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

  // Per sample: W_b first, so that the gradient of `weighted` is written in the same pass as D_b.
  std::vector<T> sample_weighted(B), distance(B);  // W_b·D_b and D_b
  const T period = T(p.period), min_weight = T(weight_floor);
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(M, 1));
  at::parallel_for(0, B, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      T* slopes = ga ? ga + b * K : nullptr;
      const T w = pfld_sample_weight(class_weight.data(), attributes + b * C, angles + b * K,
                                     angles_target + b * K, C, K, period, min_weight, slopes);
      const T d2 = gp ? sample_distance<true>(pred + b * M, target + b * M, M,
                                              T(2) * w * inv_batch, gp + b * M)
                      : sample_distance<false>(pred + b * M, target + b * M, M, T(0), gp);
      for (int64_t k = 0; slopes && k < K; ++k) slopes[k] *= d2 * inv_batch;
      sample_weighted[b] = w * d2;
      distance[b] = d2;
    }
  });

  double total_weighted = 0.0, total_l2 = 0.0;  // in sample order
  for (int64_t b = 0; b < B; ++b) {
    total_weighted += double(sample_weighted[b]);
    total_l2 += double(distance[b]);
  }
  *out_weighted = T(total_weighted / double(B));
  *out_l2 = T(total_l2 / double(B));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> pfld_loss_cpu(
    const at::Tensor& pred, const at::Tensor& target, const at::Tensor& angles,
    const at::Tensor& angles_target, const at::Tensor& attributes,
    const std::optional<at::Tensor>& attribute_weights, bool degrees, double weight_floor,
    bool compute_grad) {
  const PfldProblem p = prepare_pfld(pred, target, angles, angles_target, attributes,
                                     attribute_weights, degrees, weight_floor);
  auto [weighted, l2, grad_pred, grad_angles] = allocate_pfld_outputs(p, compute_grad);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "pfld_loss_cpu",
                                  [&] {
    pfld_cpu<scalar_t>(p, weight_floor, weighted, l2, grad_pred, grad_angles);
  });
  return {weighted, l2, grad_pred, grad_angles};
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CPU, m) { m.impl("pfld_loss", &pfld_loss_cpu); }

}  // namespace landmark_kernels
