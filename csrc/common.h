#pragma once
// Host-side helpers every op shares: argument checks and the reduction codes of the schemas.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>

namespace landmark_kernels {

// The `int reduction` argument of the loss schemas (Python: _fused.REDUCTION_CODES).
enum Reduction : int64_t { kNone = 0, kMean = 1, kSum = 2, kBatchMean = 3 };

inline void check_reduction(int64_t reduction) {
  TORCH_CHECK(reduction >= kNone && reduction <= kSum,
              "reduction must be 0 (none), 1 (mean) or 2 (sum), got ", reduction);
}

// The factor the kernels fold into the stored gradient, so that the backward has nothing left to
// do when grad_output is 1: the mean's 1/N — except in fp16, where 1/N (N ~ 1e7 for heatmaps)
// would flush the stored values to zero; there the backward applies it in fp32.
// Python mirror: landmark_kernels/_fused.py, stored_grad_scale.
inline double stored_grad_scale(int64_t reduction, int64_t numel, at::ScalarType dtype) {
  return reduction == kMean && dtype != at::kHalf && numel > 0 ? 1.0 / double(numel) : 1.0;
}

inline void check_floating(const at::Tensor& t, const char* name) {
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), name, " must be a floating tensor, got ",
              t.scalar_type());
}

inline void check_like(const at::Tensor& t, const char* name, const at::Tensor& ref,
                       const char* ref_name) {
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

}  // namespace landmark_kernels
