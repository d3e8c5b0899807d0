#pragma once
// Host-side helpers every op shares: argument checks and the reduction codes of the schemas.
#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <cmath>
#include <tuple>
#include <type_traits>

namespace landmark_kernels {

// The `int reduction` argument of the loss schemas (Python: _fused.REDUCTION_CODES).
// kBatchMean divides the sum by the batch size pred.size(0) (mmpose's coordinate losses).
enum Reduction : int64_t { kNone = 0, kMean = 1, kSum = 2, kBatchMean = 3 };

// `largest` is the last code the op accepts (kSum for ops without "batchmean").
inline void check_reduction(int64_t reduction, int64_t largest = kSum) {
  TORCH_CHECK(reduction >= kNone && reduction <= largest,
              "reduction must be 0 (none), 1 (mean), 2 (sum)",
              largest >= kBatchMean ? " or 3 (batchmean)" : "", ", got ", reduction);
}

// What a reduced loss is divided by: numel for "mean", the batch for "batchmean", else 1.
inline int64_t reduction_divisor(int64_t reduction, const at::Tensor& pred) {
  if (reduction == kMean) return pred.numel();
  if (reduction == kBatchMean) return pred.dim() > 0 ? pred.size(0) : 1;
  return 1;
}

// The factor the kernels fold into the stored gradient, so that it is the exact ∂loss/∂pred
// for grad_output = 1 and the backward has nothing to do in the common case: 1/divisor.
// Python mirror: landmark_kernels/_fused.py, stored_grad_scale.
inline double stored_grad_scale(int64_t reduction, const at::Tensor& pred) {
  const int64_t divisor = reduction_divisor(reduction, pred);
  return divisor > 0 ? 1.0 / double(divisor) : 1.0;
}

// The stored gradient's dtype: pred's, except fp32 for fp16, whose range would overflow or flush
// the exact gradient (Python: _fused.grad_dtype).
template <typename scalar_t>
using stored_grad_t = std::conditional_t<std::is_same_v<scalar_t, c10::Half>, float, scalar_t>;

inline at::ScalarType stored_grad_dtype(at::ScalarType pred_dtype) {
  return pred_dtype == at::kHalf ? at::kFloat : pred_dtype;
}

// A None passed to a Tensor argument reaches the kernel as an undefined tensor.
inline void check_defined(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.defined(), name, " must be a tensor, got None");
}

inline void check_floating(const at::Tensor& t, const char* name) {
  check_defined(t, name);
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), name, " must be a floating tensor, got ",
              t.scalar_type());
}

inline void check_like(const at::Tensor& t, const char* name, const at::Tensor& ref,
                       const char* ref_name) {
  check_defined(t, name);
  TORCH_CHECK(t.device() == ref.device(), name, " is on ", t.device(), " but ", ref_name,
              " is on ", ref.device());
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), name, " has dtype ", t.scalar_type(),
              " but ", ref_name, " has ", ref.scalar_type());
}

inline void check_positive(double v, const char* name) {
  TORCH_CHECK(std::isfinite(v) && v > 0, name, " must be a finite number > 0, got ", v);
}

inline void check_finite(double v, const char* name) {
  TORCH_CHECK(std::isfinite(v), name, " must be finite, got ", v);
}

// Loss holds the per-pixel map for "none", else a 0-dim tensor, in the accumulation dtype
// (fp32, fp64 for fp64 input: an fp16 sum over a batch of heatmaps would overflow); grad has
// stored_grad_dtype (pred's; fp32 for fp16) and is empty unless requested.
// Python mirror (also the fake kernel): _fused.fused_outputs_like.
inline std::tuple<at::Tensor, at::Tensor> allocate_loss_outputs(const at::Tensor& pred,
                                                                int64_t reduction,
                                                                bool compute_grad) {
  const auto loss_options = pred.options().dtype(at::toOpMathType(pred.scalar_type()));
  at::Tensor loss = reduction == kNone ? at::empty(pred.sizes(), loss_options)
                                       : at::empty({}, loss_options);
  at::Tensor grad = compute_grad ? at::empty(pred.sizes(), pred.options().dtype(
                                                  stored_grad_dtype(pred.scalar_type())))
                                 : at::empty({0}, pred.options());
  return {loss, grad};
}

}  // namespace landmark_kernels
