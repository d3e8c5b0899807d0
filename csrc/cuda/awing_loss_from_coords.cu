// AWing loss + weighted loss map against Gaussian targets rendered from coordinates, on CUDA
// (docs/awing.md): the semantics of cpu/awing_loss_from_coords.cpp, the tiling of awing_loss.cu.
//
// Stage 1 (coords_tiles_kernel): blocks walk 64×64-pixel tiles of the (B·K) heatmaps; a thread
// owns four consecutive columns of a strip of four rows. Per tile it takes the column factors
// of the Gaussian and of its k×k dilation for its four columns (gaussian_target.h), then per
// row the two row factors: two exponentials per row and per column, 1 per pixel in all, and no
// target or halo to read. Per pixel: target = gy·gx, map factor from w·my·mx, awing_pixel
// (awing_math.h, FastMath in fp32), grad (and the loss for "none") written with 16-byte
// stores, a running sum; the block's sum goes by a fixed-order tree to partials[blockIdx.x].
// Stage 2 (finish_sum_kernel): one block adds the partials in a fixed order. No atomics.
// Multi-stage (awing_loss_from_coords_stages, kMultiStage): each row's target and map factors
// are rendered once and every stage's pred row is read and its gradient row written against
// them (stages_row, awing_device.cuh); the single-stage op is the same kernel without the loop.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>

#include "../awing_loss_from_coords.h"
#include "awing_device.cuh"
#include "block_reduce.cuh"

namespace landmark_kernels {
namespace {

constexpr int kTileW = 64;
constexpr int kGroupsPerRow = kTileW / kVec;
constexpr int kStripRows = 4;
constexpr int kThreads = 256;
constexpr int kTileH = kThreads / kGroupsPerRow * kStripRows;
constexpr int kMinBlocksPerSm = 6;  // 75 % occupancy: at most 40 registers
constexpr int64_t kMaxBlocks = 65536;

template <typename T>
using DeviceExp = std::conditional_t<std::is_same_v<T, float>, FastExp, StdFns>;

template <typename scalar_t>
struct CoordsArgs {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* pred;
  const acc_t* coords;             // (B,K,2)
  const acc_t* sigma;              // (K,)
  const scalar_t* weight;          // (B,K) or nullptr
  acc_t* loss_map;                 // reduction "none", else nullptr
  stored_grad_t<scalar_t>* grad;   // nullptr unless compute_grad
  acc_t* partials;                 // one per block, nullptr for "none"
  int64_t channels, height, width;
  uint32_t tiles_x, tiles_y, num_tiles;
  int radius;                      // map_kernel / 2
  StageArgs<acc_t> stages;         // pred, grad, loss_map: stage s at s·stages.numel
};

// kMultiStage: the stage loop of the multi-stage op.
template <typename scalar_t, bool kUseMap, bool kVectorized, bool kStoreLoss, bool kMultiStage>
__global__ void
__launch_bounds__(kThreads, kMultiStage ? kStageMinBlocksPerSm : kMinBlocksPerSm)
    coords_tiles_kernel(const __grid_constant__ CoordsArgs<scalar_t> a,
                        const AWingConsts<at::opmath_type<scalar_t>> c) {
  using T = at::opmath_type<scalar_t>;
  using Exp = DeviceExp<T>;
  const int group = threadIdx.x % kGroupsPerRow, strip = threadIdx.x / kGroupsPerRow;
  T sum = T(0);
  for (uint32_t t = blockIdx.x; t < a.num_tiles; t += gridDim.x) {
    const uint32_t rest = t / a.tiles_x;
    const int64_t plane = rest / a.tiles_y;
    const int64_t x0 = int64_t(t % a.tiles_x) * kTileW + group * kVec;
    const int64_t y0 = int64_t(rest % a.tiles_y) * kTileH + strip * kStripRows;
    const int n = x0 < a.width ? int(min(int64_t(kVec), a.width - x0)) : 0;
    if (n == 0) continue;
    const T w = a.weight != nullptr ? T(a.weight[plane]) : T(1);
    T cx = a.coords[2 * plane], cy = a.coords[2 * plane + 1];
    landmark_centre(&cx, &cy);
    const T s = a.sigma[plane % a.channels];
    const T k = T(-0.5) / (s * s);
    const bool farthest = w < T(0);
    Vec4<T> gx, mx;
#pragma unroll
    for (int q = 0; q < kVec; ++q) {
      gx.v[q] = gaussian_factor<Exp>(T(x0 + q), cx, k);
      if constexpr (kUseMap)
        mx.v[q] = w * dilated_factor<Exp>(T(x0 + q), cx, k, a.radius, a.width, farthest);
    }
    const int64_t base = plane * a.height * a.width;
#pragma unroll 1  // unrolled, the four rows spill 148 bytes under the 40-register cap
    for (int i = 0; i < kStripRows; ++i) {
      const int64_t gy_row = y0 + i;
      if (gy_row >= a.height) break;
      const T gy = gaussian_factor<Exp>(T(gy_row), cy, k);
      T my = T(0);
      if constexpr (kUseMap) my = dilated_factor<Exp>(T(gy_row), cy, k, a.radius, a.height, farthest);
      const int64_t idx = base + gy_row * a.width + x0;
      Vec4<T> target, factor;
#pragma unroll
      for (int q = 0; q < kVec; ++q) {
        target.v[q] = gy * gx.v[q];
        factor.v[q] = kUseMap ? awing_map_factor(my * mx.v[q], c) : T(1);
      }
      sum += stages_row<kVectorized, kStoreLoss, kMultiStage>(
          a.pred, a.grad, a.loss_map, a.stages, idx, n, target, broadcast(w), factor, c);
    }
  }
  if constexpr (!kStoreLoss) {
    const T total = block_sum<kThreads>(sum);
    if (threadIdx.x == 0) a.partials[blockIdx.x] = total;
  }
}

template <typename scalar_t, bool kVectorized, bool kStoreLoss, bool kMultiStage>
void launch_tiles(const CoordsArgs<scalar_t>& a, const AWingConsts<at::opmath_type<scalar_t>>& c,
                  bool use_map, int blocks, cudaStream_t stream) {
  if (use_map) {
    coords_tiles_kernel<scalar_t, true, kVectorized, kStoreLoss, kMultiStage>
        <<<blocks, kThreads, 0, stream>>>(a, c);
  } else {
    coords_tiles_kernel<scalar_t, false, kVectorized, kStoreLoss, kMultiStage>
        <<<blocks, kThreads, 0, stream>>>(a, c);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, bool kVectorized, bool kStoreLoss>
void launch_stages(const CoordsArgs<scalar_t>& a, const AWingConsts<at::opmath_type<scalar_t>>& c,
                   bool use_map, bool multi_stage, int blocks, cudaStream_t stream) {
  if (multi_stage) {
    launch_tiles<scalar_t, kVectorized, kStoreLoss, true>(a, c, use_map, blocks, stream);
  } else {
    launch_tiles<scalar_t, kVectorized, kStoreLoss, false>(a, c, use_map, blocks, stream);
  }
}

template <typename scalar_t>
void launch_coords(const AWingCoordsProblem& p, int64_t map_kernel, int64_t reduction,
                   const at::Tensor& loss, const at::Tensor& grad) {
  using T = at::opmath_type<scalar_t>;
  const int64_t numel = p.planes * p.height * p.width;  // one stage's
  if (numel == 0) {
    if (reduction != kNone) loss.zero_();
    return;
  }
  const AWingConsts<T> c = p.consts.template to<T>();
  CoordsArgs<scalar_t> a;
  a.pred = p.pred.const_data_ptr<scalar_t>();
  a.coords = p.coords.const_data_ptr<T>();
  a.sigma = p.sigma.const_data_ptr<T>();
  a.weight = p.weight.defined() ? p.weight.const_data_ptr<scalar_t>() : nullptr;
  a.loss_map = reduction == kNone ? loss.mutable_data_ptr<T>() : nullptr;
  a.grad = grad.numel() > 0 ? grad.mutable_data_ptr<stored_grad_t<scalar_t>>() : nullptr;
  a.channels = p.channels;
  a.height = p.height;
  a.width = p.width;
  const int64_t tiles_x = (p.width + kTileW - 1) / kTileW;
  const int64_t tiles_y = (p.height + kTileH - 1) / kTileH;
  const int64_t num_tiles = p.planes * tiles_y * tiles_x;
  TORCH_CHECK(num_tiles < (int64_t(1) << 32), "awing_loss_from_coords: pred has ", num_tiles,
              " tiles of 64×64 pixels; at most 2^32 are supported");
  a.tiles_x = uint32_t(tiles_x);
  a.tiles_y = uint32_t(tiles_y);
  a.num_tiles = uint32_t(num_tiles);
  a.radius = static_cast<int>(map_kernel / 2);
  a.stages = stage_args<T>(p.stages, numel);
  const bool multi_stage = needs_stage_loop(p.stages);
  const bool vectorized = p.width % kVec == 0 && aligned_for(a.pred, alignof(Vec4<scalar_t>)) &&
                          aligned_for(a.loss_map, alignof(Vec4<T>)) &&
                          aligned_for(a.grad, alignof(Vec4<stored_grad_t<scalar_t>>));
  const int blocks = static_cast<int>(std::min(num_tiles, kMaxBlocks));
  at::Tensor partials;
  a.partials = nullptr;
  if (reduction != kNone) {
    partials = at::empty({blocks}, p.pred.options().dtype(c10::CppTypeToScalarType<T>::value));
    a.partials = partials.mutable_data_ptr<T>();
  }
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const bool use_map = p.consts.map_weight != 0.0;
  const bool store_loss = reduction == kNone;
  if (vectorized && store_loss) {
    launch_stages<scalar_t, true, true>(a, c, use_map, multi_stage, blocks, stream);
  } else if (vectorized) {
    launch_stages<scalar_t, true, false>(a, c, use_map, multi_stage, blocks, stream);
  } else if (store_loss) {
    launch_stages<scalar_t, false, true>(a, c, use_map, multi_stage, blocks, stream);
  } else {
    launch_stages<scalar_t, false, false>(a, c, use_map, multi_stage, blocks, stream);
  }
  if (reduction != kNone) {
    const double divisor = reduction == kMean ? double(numel) : 1.0;
    finish_sum_kernel<T><<<1, kReduceThreads, 0, stream>>>(a.partials, blocks, divisor,
                                                           loss.mutable_data_ptr<T>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

std::tuple<at::Tensor, at::Tensor> run_coords_cuda(
    const at::Tensor& pred, const at::Tensor& coords, const at::Tensor& sigma,
    const std::optional<at::Tensor>& target_weight, at::ArrayRef<double> stage_weights,
    bool multi_stage, double alpha, double omega, double epsilon, double theta,
    double map_weight, double map_threshold, int64_t map_kernel, int64_t reduction,
    bool compute_grad) {
  const AWingCoordsProblem p =
      prepare_awing_coords(pred, coords, sigma, target_weight, stage_weights, multi_stage, alpha,
                           omega, epsilon, theta, map_weight, map_threshold, map_kernel,
                           reduction);
  const c10::cuda::CUDAGuard guard(pred.device());
  at::Tensor loss, grad;
  std::tie(loss, grad) = allocate_loss_outputs(pred, reduction, compute_grad);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, pred.scalar_type(), "awing_loss_from_coords_cuda",
      [&] { launch_coords<scalar_t>(p, map_kernel, reduction, loss, grad); });
  return {loss, grad};
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CUDA, m) {
  m.impl("awing_loss_from_coords", &AWingCoordsEntries<run_coords_cuda>::single);
  m.impl("awing_loss_from_coords_stages", &AWingCoordsEntries<run_coords_cuda>::stages);
}

}  // namespace landmark_kernels
