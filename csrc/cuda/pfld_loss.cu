// PFLD loss on CUDA (docs/coordinate_losses.md): the same semantics as cpu/pfld_loss.cpp, no host
// synchronisation.
//
// Stage 1: every block computes the class weights into shared memory (given, or from the batch's
// attribute frequencies by fixed-order block sums: B·C loads per block, cheaper than a launch);
// then one warp per sample takes its factor W_b (pfld_math.h), D_b = Σ (ŷ − y)² over its landmarks
// (a fixed shuffle tree) with the gradient W_b·2(ŷ − y)/B in the same pass, and ∂weighted/∂angles,
// and leaves W_b·D_b and D_b in a scratch. Stage 2, one block: both batch means by fixed-order
// block sums. A batch of up to kOneBlockMax elements (e.g. 64 faces × 98 × 2) runs both stages in
// one block: one launch. No atomics: bitwise-reproducible results.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>

#include "../pfld_loss.h"
#include "block_reduce.cuh"

namespace landmark_kernels {
namespace {

constexpr int kSampleThreads = 256;  // 8 samples per block in stage 1
constexpr int64_t kOneBlockMax = 32768;

template <typename scalar_t>
struct PfldArgs {
  using T = at::opmath_type<scalar_t>;
  const scalar_t* pred;
  const scalar_t* target;
  const scalar_t* angles;
  const scalar_t* angles_target;
  const scalar_t* attributes;
  const scalar_t* weights;        // nullptr: from the batch frequencies
  stored_grad_t<scalar_t>* grad;  // nullptr unless compute_grad
  T* grad_angles;                 // nullptr unless compute_grad
  T* partials;                    // W_b·D_b at [b], D_b at [batch + b]
  T* weighted;
  T* l2;
  int64_t batch, row, num_angles, num_classes;
  T inv_batch, period, weight_floor;
};

// The class weights into `class_weight` (C values of shared memory), by a block of kBlock threads.
template <int kBlock, typename scalar_t>
__device__ void class_weights(const PfldArgs<scalar_t>& a,
                              at::opmath_type<scalar_t>* class_weight) {
  using T = at::opmath_type<scalar_t>;
  const T batch = T(a.batch);
  for (int64_t c = 0; c < a.num_classes; ++c) {
    if (a.weights != nullptr) {
      if (threadIdx.x == 0) class_weight[c] = T(a.weights[c]);
      continue;
    }
    T count = T(0);
    for (int64_t b = threadIdx.x; b < a.batch; b += kBlock)
      count += T(a.attributes[b * a.num_classes + c]);
    count = block_sum<kBlock>(count);
    if (threadIdx.x == 0) class_weight[c] = pfld_class_weight(count * a.inv_batch, batch);
  }
  __syncthreads();
}

// Stage 1 for the samples of warp `warp` of `warps`.
template <typename scalar_t>
__device__ void sample_terms(const PfldArgs<scalar_t>& a,
                             const at::opmath_type<scalar_t>* class_weight, int64_t warp,
                             int64_t warps) {
  using T = at::opmath_type<scalar_t>;
  const int lane = threadIdx.x % 32;
  for (int64_t b = warp; b < a.batch; b += warps) {
    // Every lane needs W_b (for the gradient); lane 0 writes the angle slopes.
    T* slopes = lane == 0 && a.grad_angles != nullptr ? a.grad_angles + b * a.num_angles : nullptr;
    const T w = pfld_sample_weight(class_weight, a.attributes + b * a.num_classes,
                                   a.angles + b * a.num_angles, a.angles_target + b * a.num_angles,
                                   a.num_classes, a.num_angles, a.period, a.weight_floor, slopes);
    const T grad_scale = T(2) * w * a.inv_batch;
    T sum = T(0);
    for (int64_t i = lane; i < a.row; i += 32) {
      const int64_t idx = b * a.row + i;
      const T diff = T(a.pred[idx]) - T(a.target[idx]);
      sum += diff * diff;
      if (a.grad != nullptr) a.grad[idx] = stored_grad_t<scalar_t>(grad_scale * diff);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, o);
    if (lane == 0) {
      for (int64_t k = 0; slopes != nullptr && k < a.num_angles; ++k) {
        slopes[k] *= sum * a.inv_batch;
      }
      a.partials[b] = w * sum;
      a.partials[a.batch + b] = sum;
    }
  }
}

// Stage 2, by one block of kReduceThreads threads.
template <typename scalar_t>
__device__ void batch_means(const PfldArgs<scalar_t>& a) {
  using T = at::opmath_type<scalar_t>;
  T weighted = T(0), l2 = T(0);
  for (int64_t b = threadIdx.x; b < a.batch; b += kReduceThreads) {
    weighted += a.partials[b];
    l2 += a.partials[a.batch + b];
  }
  weighted = block_sum<kReduceThreads>(weighted);
  l2 = block_sum<kReduceThreads>(l2);
  if (threadIdx.x == 0) {
    *a.weighted = weighted / T(a.batch);
    *a.l2 = l2 / T(a.batch);
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kSampleThreads) samples_kernel(const PfldArgs<scalar_t> a) {
  extern __shared__ __align__(sizeof(double)) unsigned char smem[];
  auto* class_weight = reinterpret_cast<at::opmath_type<scalar_t>*>(smem);
  class_weights<kSampleThreads>(a, class_weight);
  sample_terms(a, class_weight, (int64_t(blockIdx.x) * kSampleThreads + threadIdx.x) / 32,
               int64_t(gridDim.x) * (kSampleThreads / 32));
}

template <typename scalar_t>
__global__ void __launch_bounds__(kReduceThreads) means_kernel(const PfldArgs<scalar_t> a) {
  batch_means(a);
}

// Both stages in one block: its 32 warps take the samples, then the block the batch.
template <typename scalar_t>
__global__ void __launch_bounds__(kReduceThreads) one_block_kernel(const PfldArgs<scalar_t> a) {
  extern __shared__ __align__(sizeof(double)) unsigned char smem[];
  auto* class_weight = reinterpret_cast<at::opmath_type<scalar_t>*>(smem);
  class_weights<kReduceThreads>(a, class_weight);
  sample_terms(a, class_weight, threadIdx.x / 32, kReduceThreads / 32);
  __syncthreads();  // stage 2 reads every sample's partials
  batch_means(a);
}

template <typename scalar_t>
void launch_pfld(const PfldProblem& p, double weight_floor, const at::Tensor& weighted,
                 const at::Tensor& l2, const at::Tensor& grad_pred,
                 const at::Tensor& grad_angles) {
  using T = at::opmath_type<scalar_t>;
  if (p.batch == 0) {  // the empty batch: both means are 0
    weighted.zero_();
    l2.zero_();
    return;
  }
  const at::Tensor partials = at::empty({2 * p.batch}, weighted.options());
  PfldArgs<scalar_t> a;
  a.pred = p.pred.const_data_ptr<scalar_t>();
  a.target = p.target.const_data_ptr<scalar_t>();
  a.angles = p.angles.const_data_ptr<scalar_t>();
  a.angles_target = p.angles_target.const_data_ptr<scalar_t>();
  a.attributes = p.attributes.const_data_ptr<scalar_t>();
  a.weights = p.weights.defined() ? p.weights.const_data_ptr<scalar_t>() : nullptr;
  a.grad = grad_pred.numel() > 0 ? grad_pred.mutable_data_ptr<stored_grad_t<scalar_t>>()
                                 : nullptr;
  a.grad_angles = grad_angles.numel() > 0 ? grad_angles.mutable_data_ptr<T>() : nullptr;
  a.partials = partials.mutable_data_ptr<T>();
  a.weighted = weighted.mutable_data_ptr<T>();
  a.l2 = l2.mutable_data_ptr<T>();
  a.batch = p.batch;
  a.row = p.row;
  a.num_angles = p.num_angles;
  a.num_classes = p.num_classes;
  a.inv_batch = T(1.0 / double(p.batch));
  a.period = T(p.period);
  a.weight_floor = T(weight_floor);

  const size_t smem = size_t(p.num_classes) * sizeof(T);  // ≤ 8 KiB (kPfldMaxClasses fp64)
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  if (p.batch * p.row <= kOneBlockMax) {
    one_block_kernel<scalar_t><<<1, kReduceThreads, smem, stream>>>(a);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
  constexpr int64_t kSamplesPerBlock = kSampleThreads / 32;
  const int64_t blocks = std::min<int64_t>((p.batch + kSamplesPerBlock - 1) / kSamplesPerBlock,
                                           65535);
  samples_kernel<scalar_t><<<static_cast<int>(blocks), kSampleThreads, smem, stream>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  means_kernel<scalar_t><<<1, kReduceThreads, 0, stream>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> pfld_loss_cuda(
    const at::Tensor& pred, const at::Tensor& target, const at::Tensor& angles,
    const at::Tensor& angles_target, const at::Tensor& attributes,
    const std::optional<at::Tensor>& attribute_weights, bool degrees, double weight_floor,
    bool compute_grad) {
  // Checks first: they name the argument when a tensor is not on pred's (CUDA) device.
  const PfldProblem p = prepare_pfld(pred, target, angles, angles_target, attributes,
                                     attribute_weights, degrees, weight_floor);
  const c10::cuda::CUDAGuard guard(pred.device());
  at::Tensor weighted, l2, grad_pred, grad_angles;
  std::tie(weighted, l2, grad_pred, grad_angles) = allocate_pfld_outputs(p, compute_grad);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, pred.scalar_type(), "pfld_loss_cuda",
                                  [&] {
    launch_pfld<scalar_t>(p, weight_floor, weighted, l2, grad_pred, grad_angles);
  });
  return {weighted, l2, grad_pred, grad_angles};
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CUDA, m) { m.impl("pfld_loss", &pfld_loss_cuda); }

}  // namespace landmark_kernels
