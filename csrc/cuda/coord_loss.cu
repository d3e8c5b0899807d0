// Wing, SoftWing and ACR on CUDA (docs/coordinate_losses.md): one kernel family over the
// per-element loss
// functor of coord_loss_math.h, the same semantics as cpu/coord_loss.cpp.
//
// These tensors are small (B·N·D ≈ 10²–10⁵ elements): the cost is launches, so a problem of up
// to kOneBlockMax elements (a batch of 64 faces × 98 landmarks × 2) runs in ONE block that writes
// the gradient and the reduced loss: one launch in all. Larger problems run a fixed grid (its
// size depends on numel only) writing per-block partials, then finish_sum_kernel adds them in
// a fixed order. No atomics: bitwise-reproducible results.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>

#include "../coord_loss.h"
#include "block_reduce.cuh"

namespace landmark_kernels {
namespace {

constexpr int kThreads = 512;
constexpr int64_t kOneBlockMax = 16384;
constexpr int64_t kElemsPerThread = 4;  // grid size for larger problems: numel / (512·4) blocks
constexpr int64_t kMaxBlocks = 2048;

template <typename scalar_t>
struct CoordArgs {
  using T = at::opmath_type<scalar_t>;
  const scalar_t* pred;
  const scalar_t* target;
  const scalar_t* weight;  // nullptr, per landmark or per element
  const scalar_t* phi;     // nullptr (Wing, SoftWing), per landmark or per element
  T* loss_elems;           // per-element loss for reduction "none", else nullptr
  stored_grad_t<scalar_t>* grad;  // nullptr unless compute_grad
  T* partials;             // one sum per block (multi-block reductions), else nullptr
  T* loss_total;           // the reduced loss (one-block reductions), else nullptr
  int64_t numel, dims;
  bool weight_per_landmark, phi_per_landmark;
  T grad_scale;
  double divisor;
};

template <typename scalar_t, typename Fn>
__global__ void __launch_bounds__(kThreads)
    coord_loss_kernel(const CoordArgs<scalar_t> a, const Fn fn) {
  using T = at::opmath_type<scalar_t>;
  using grad_t = stored_grad_t<scalar_t>;
  T sum = T(0);
  const int64_t stride = int64_t(gridDim.x) * kThreads;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < a.numel; i += stride) {
    const T w = a.weight == nullptr ? T(1)
                                    : T(a.weight[a.weight_per_landmark ? i / a.dims : i]);
    const T phi = a.phi == nullptr ? T(0) : T(a.phi[a.phi_per_landmark ? i / a.dims : i]);
    T g;
    // (pred − target)·w, as the CPU kernel: exactly 0 at δ = 0, no cancellation near it.
    const T l = coord_element(fn, (T(a.pred[i]) - T(a.target[i])) * w, phi, &g);
    if (a.grad != nullptr) a.grad[i] = grad_t(g * w * a.grad_scale);
    if (a.loss_elems != nullptr) a.loss_elems[i] = l;
    sum += l;
  }
  if (a.partials != nullptr || a.loss_total != nullptr) {
    const T total = block_sum<kThreads>(sum);
    if (threadIdx.x == 0) {
      if (a.loss_total != nullptr) {
        *a.loss_total = static_cast<T>(double(total) / a.divisor);
      } else {
        a.partials[blockIdx.x] = total;
      }
    }
  }
}

template <typename scalar_t, typename Fn>
void launch_coord(const CoordProblem& p, const Fn& fn, int64_t reduction, const at::Tensor& loss,
                  const at::Tensor& grad) {
  using T = at::opmath_type<scalar_t>;
  if (p.numel == 0) {  // nothing to launch; the empty sum is 0 (mean too, as the CPU kernel)
    if (reduction != kNone) loss.zero_();
    return;
  }
  CoordArgs<scalar_t> a;
  a.pred = p.pred.const_data_ptr<scalar_t>();
  a.target = p.target.const_data_ptr<scalar_t>();
  a.weight = p.weight.defined() ? p.weight.const_data_ptr<scalar_t>() : nullptr;
  a.phi = p.phi.defined() ? p.phi.const_data_ptr<scalar_t>() : nullptr;
  a.loss_elems = reduction == kNone ? loss.mutable_data_ptr<T>() : nullptr;
  a.grad = grad.numel() > 0 ? grad.mutable_data_ptr<stored_grad_t<scalar_t>>() : nullptr;
  a.numel = p.numel;
  a.dims = p.dims;
  a.weight_per_landmark = p.weight_per_landmark;
  a.phi_per_landmark = p.phi_per_landmark;
  a.grad_scale = T(1.0 / p.divisor);
  a.divisor = p.divisor;

  const int64_t blocks = p.numel <= kOneBlockMax
      ? 1 : std::min((p.numel + kThreads * kElemsPerThread - 1) / (kThreads * kElemsPerThread),
                     kMaxBlocks);
  const bool reduce = reduction != kNone;
  at::Tensor partials;
  a.partials = a.loss_total = nullptr;
  if (reduce && blocks == 1) {
    a.loss_total = loss.mutable_data_ptr<T>();
  } else if (reduce) {
    partials = at::empty({blocks}, loss.options());
    a.partials = partials.mutable_data_ptr<T>();
  }
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  coord_loss_kernel<scalar_t><<<static_cast<int>(blocks), kThreads, 0, stream>>>(a, fn);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (a.partials != nullptr) {
    finish_sum_kernel<T><<<1, kReduceThreads, 0, stream>>>(a.partials, static_cast<int>(blocks),
                                                           p.divisor, loss.mutable_data_ptr<T>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

struct CudaFamily {
  // Φ outside [0, 1] gives NaN here: a check would need a host synchronisation.
  template <typename MakeFn>
  static std::tuple<at::Tensor, at::Tensor> run(const CoordProblem& p, int64_t reduction,
                                                bool compute_grad, bool /*check_phi*/,
                                                const MakeFn& make) {
    const c10::cuda::CUDAGuard guard(p.pred.device());
    at::Tensor loss, grad;
    std::tie(loss, grad) = allocate_loss_outputs(p.pred, reduction, compute_grad);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.pred.scalar_type(),
                                    "coord_loss_cuda", [&] {
      launch_coord<scalar_t>(p, make(at::opmath_type<scalar_t>{}), reduction, loss, grad);
    });
    return {loss, grad};
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CUDA, m) {
  m.impl("wing_loss", &CoordOps<CudaFamily>::wing);
  m.impl("soft_wing_loss", &CoordOps<CudaFamily>::soft_wing);
  m.impl("acr_loss", &CoordOps<CudaFamily>::acr);
}

}  // namespace landmark_kernels
