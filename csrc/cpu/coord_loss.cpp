// Wing, SoftWing and ACR on the CPU (docs/coordinate_losses.md): one kernel family over the
// per-element loss
// functor of coord_loss_math.h. The B·N·D elements are cut into fixed chunks of kChunk; each
// chunk writes its gradient (and per-element loss for "none") and one partial sum; the partials
// are added in chunk order, so the result does not depend on the thread count.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "../coord_loss.h"
#include "acr_avx512.h"
#include "cpu_math.h"
#include "isa.h"

namespace landmark_kernels {
namespace {

// 512: the threads' shares of a batch of 64 faces (12.5 Ki elements, 25 chunks) differ by one
// chunk, 4% of a share (1024 left ACR's two threads 7 and 6 chunks).
constexpr int64_t kChunk = 512;
// Chunks per task, from the cost of the element loss: problems up to 16 Ki elements of Wing or
// SoftWing (B = 64, N = 98, D = 2 is 12.5 Ki) run on the calling thread, where waking the pool
// would cost more than the work; ACR (a log, an exp and a log1p per element) splits above 4 Ki:
// a second thread costs ~2 µs to start and join, the work of ~2 Ki elements (~1 ns each with
// the AVX-512 loop; measured faster from 5 Ki on, 1.3 µs at B = 24).
template <typename Fn>
constexpr int64_t kGrainChunks = 32;
template <typename T>
constexpr int64_t kGrainChunks<AcrFn<T>> = 8;

// Values of a target_weight/phi tensor for the elements [start, start + n), as T: the tensor's
// own memory where it holds them so (one T per element), else `buffer`, filled by converting
// one to one or by expanding one value per landmark (D consecutive elements).
template <typename T, typename scalar_t>
const T* chunk_values(const scalar_t* src, bool per_landmark, int64_t dims, int64_t start,
                      int64_t n, T* buffer) {
  if (!per_landmark) {
    if constexpr (std::is_same_v<T, scalar_t>) return src + start;
    for (int64_t i = 0; i < n; ++i) buffer[i] = T(src[start + i]);
    return buffer;
  }
  int64_t landmark = start / dims, d = start % dims;
  for (int64_t i = 0; i < n; ++i) {
    buffer[i] = T(src[landmark]);
    if (++d == dims) {
      d = 0;
      ++landmark;
    }
  }
  return buffer;
}

// How many values of phi lie outside [0, 1] (NaN included).
template <typename scalar_t>
int64_t count_bad_phi(const at::Tensor& phi) {
  using T = at::opmath_type<scalar_t>;
  const scalar_t* values = phi.const_data_ptr<scalar_t>();
  int64_t bad = 0;
  for (int64_t i = 0; i < phi.numel(); ++i) {
    const T v = T(values[i]);
    bad += !(v >= T(0) && v <= T(1));
  }
  return bad;
}

// The element loop of one chunk; every write goes to a buffer (scratch when the output is not
// wanted) so the loop has no conditions and vectorises. Sums in T within the chunk.
template <typename Fn, typename T, typename scalar_t, typename grad_t>
LK_ALWAYS_INLINE T chunk_loss(const Fn& fn, const scalar_t* pred, const scalar_t* target,
                              const T* w, const T* phi, int64_t n, T grad_scale, T* loss,
                              grad_t* grad) {
  const Fn f = fn;  // a local copy: the stores below could alias `fn`, which would be reloaded
  T sum = T(0);
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    T g;
    // (pred − target)·w, not pred·w − target·w: exactly 0 at δ = 0, no cancellation near it.
    const T l = coord_element<CpuMath<T>>(f, (T(pred[i]) - T(target[i])) * w[i], phi[i], &g);
    sum += l;
    loss[i] = l;
    grad[i] = grad_t(g * w[i] * grad_scale);
  }
  return sum;
}

// The same loop compiled for AVX-512 and for AVX2+FMA, picked at run time (isa.h).
template <typename Fn, typename T, typename scalar_t, typename grad_t>
LK_TARGET_AVX512 T chunk_loss_avx512(const Fn& fn, const scalar_t* pred, const scalar_t* target,
                                     const T* w, const T* phi, int64_t n, T grad_scale, T* loss,
                                     grad_t* grad) {
  return chunk_loss(fn, pred, target, w, phi, n, grad_scale, loss, grad);
}

template <typename Fn, typename T, typename scalar_t, typename grad_t>
LK_TARGET_AVX2 T chunk_loss_avx2(const Fn& fn, const scalar_t* pred, const scalar_t* target,
                                 const T* w, const T* phi, int64_t n, T grad_scale, T* loss,
                                 grad_t* grad) {
  return chunk_loss(fn, pred, target, w, phi, n, grad_scale, loss, grad);
}

// w == nullptr: no weight (the generic loops read `ones` instead).
template <typename Fn, typename T, typename scalar_t, typename grad_t>
T chunk_loss_dispatch(const Fn& fn, const scalar_t* pred, const scalar_t* target, const T* w,
                      const T* ones, const T* phi, int64_t n, T grad_scale, T* loss,
                      grad_t* grad) {
#if LK_HAS_ISA_TARGETS
  // fp32 ACR (which takes no weight) has a loop of its own on AVX-512 (acr_avx512.h).
  if constexpr (std::is_same_v<Fn, AcrFn<float>> && std::is_same_v<scalar_t, float> &&
                std::is_same_v<grad_t, float>) {
    if (cpu_isa() == Isa::kAvx512 && w == nullptr) {
      return acr_avx512::chunk_loss(fn, pred, target, phi, n, grad_scale, loss, grad);
    }
  }
#endif
  if (w == nullptr) w = ones;
  switch (cpu_isa()) {
    case Isa::kAvx512:
      return chunk_loss_avx512(fn, pred, target, w, phi, n, grad_scale, loss, grad);
    case Isa::kAvx2:
      return chunk_loss_avx2(fn, pred, target, w, phi, n, grad_scale, loss, grad);
    default:
      return chunk_loss(fn, pred, target, w, phi, n, grad_scale, loss, grad);
  }
}

// The family: `fn` is the element loss (WingFn, SoftWingFn, AcrFn) for T; check_phi: raise when
// a phi value is outside [0, 1] (ACR's domain). Such a value makes its element NaN, so only a
// NaN total pays for the scan that tells the two apart.
template <typename scalar_t, typename Fn>
void coord_family(const CoordProblem& p, const Fn& fn, bool check_phi, int64_t reduction,
                  const at::Tensor& loss, const at::Tensor& grad) {
  using T = at::opmath_type<scalar_t>;
  using grad_t = stored_grad_t<scalar_t>;
  // The element loop writes T: rounding to bf16 has a NaN branch that would keep the loop from
  // vectorising, so bf16 gradients go through a T scratch and a separate conversion.
  constexpr bool kGradViaScratch = std::is_same_v<grad_t, at::BFloat16>;
  using loop_grad_t = std::conditional_t<kGradViaScratch, T, grad_t>;
  const int64_t chunks = (p.numel + kChunk - 1) / kChunk;
  const T grad_scale = T(1.0 / p.divisor);
  const scalar_t* pred = p.pred.const_data_ptr<scalar_t>();
  const scalar_t* target = p.target.const_data_ptr<scalar_t>();
  const scalar_t* weight = p.weight.defined() ? p.weight.const_data_ptr<scalar_t>() : nullptr;
  const scalar_t* phi = p.phi.defined() ? p.phi.const_data_ptr<scalar_t>() : nullptr;
  T* loss_all = reduction == kNone ? loss.mutable_data_ptr<T>() : nullptr;
  grad_t* grad_all = grad.numel() > 0 ? grad.mutable_data_ptr<grad_t>() : nullptr;
  std::vector<double> sums(chunks, 0.0);  // stage one of the deterministic reduction

  at::parallel_for(0, chunks, kGrainChunks<Fn>, [&](int64_t begin, int64_t end) {
    T ones[kChunk], w_chunk[kChunk], phi_chunk[kChunk], loss_scratch[kChunk];
    loop_grad_t grad_scratch[kChunk];
    std::fill(ones, ones + kChunk, T(1));
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      const int64_t start = chunk * kChunk;
      const int64_t n = std::min(kChunk, p.numel - start);
      const T* w = weight == nullptr ? nullptr : chunk_values(weight, p.weight_per_landmark,
                                                              p.dims, start, n, w_chunk);
      const T* phi_values = phi == nullptr ? ones  // Wing/SoftWing ignore phi
                                           : chunk_values(phi, p.phi_per_landmark, p.dims,
                                                          start, n, phi_chunk);
      loop_grad_t* grad_out = grad_scratch;
      if constexpr (!kGradViaScratch) grad_out = grad_all ? grad_all + start : grad_scratch;
      sums[chunk] = double(chunk_loss_dispatch(fn, pred + start, target + start, w, ones,
                                               phi_values, n, grad_scale,
                                               loss_all ? loss_all + start : loss_scratch,
                                               grad_out));
      if constexpr (kGradViaScratch) {
        if (grad_all) std::copy(grad_scratch, grad_scratch + n, grad_all + start);
      }
    }
  });
  double total = 0.0;  // stage two: fixed order
  for (double s : sums) total += s;
  if (check_phi && total != total) {
    const int64_t bad = count_bad_phi<scalar_t>(p.phi);
    TORCH_CHECK(bad == 0, "phi must be in [0, 1]: ", bad, " of its values are not");
  }
  if (reduction != kNone) *loss.mutable_data_ptr<T>() = T(total / p.divisor);
}

struct CpuFamily {
  // Allocates the outputs and runs the family for pred's dtype.
  template <typename MakeFn>
  static std::tuple<at::Tensor, at::Tensor> run(const CoordProblem& p, int64_t reduction,
                                                bool compute_grad, bool check_phi,
                                                const MakeFn& make) {
    auto [loss, grad] = allocate_loss_outputs(p.pred, reduction, compute_grad);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.pred.scalar_type(),
                                    "coord_loss_cpu", [&] {
      coord_family<scalar_t>(p, make(at::opmath_type<scalar_t>{}), check_phi, reduction, loss,
                             grad);
    });
    return {loss, grad};
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CPU, m) {
  m.impl("wing_loss", &CoordOps<CpuFamily>::wing);
  m.impl("soft_wing_loss", &CoordOps<CpuFamily>::soft_wing);
  m.impl("acr_loss", &CoordOps<CpuFamily>::acr);
}

}  // namespace landmark_kernels
