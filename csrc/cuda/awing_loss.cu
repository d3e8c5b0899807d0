// AWing loss + weighted loss map on CUDA (docs/awing.md): the same semantics as cpu/awing_loss.cpp.
//
// Stage 1 (awing_tiles_kernel): each block walks 64×64-pixel tiles of the (B·K) heatmaps. A
// thread owns four consecutive columns of a strip of four rows. It walks its strip top to
// bottom, from r rows above to r rows below (r = k/2): for each row it loads the weighted target
// (16-byte loads), takes the row max over ±r columns with warp shuffles (the 16 threads of a tile
// row hold its 64 columns; the two at the tile's edges load the r columns beyond it), and keeps
// the last 2r + 1 row maxima in registers, whose column max is the k×k grey dilation of the row
// r above. No shared memory, no barrier, the map never materialised. For each of its rows the
// thread then computes awing_pixel on four pixels, writes grad (and the per-pixel loss for
// "none") with 16-byte stores and keeps a running sum; the block's sum goes, by a fixed-order
// shuffle tree, to partials[blockIdx.x].
// Stage 2 (finish_sum_kernel): one block adds the partials in a fixed order and writes the
// 0-dim loss. No atomics anywhere, so the same inputs give bitwise-same outputs on every run.
// Multi-stage (awing_loss_stages, kMultiStage): the target, weights and map of a row are built
// once and every stage's pred row is read and its gradient row written against them
// (stages_row, awing_device.cuh); the single-stage op is the same kernel without the loop.
//
// The kernel is instantiated for no map and for r = 1 (k = 3, the paper's map), where every loop
// of a tile unrolls; other kernel sizes take a runtime-radius path that reads the k×k window
// from global memory (L1). scripts/kernel_report.py reads the compiled code of these kernels
// (instructions per pixel, registers, occupancy, access widths).
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

#include "../awing_loss.h"
#include "awing_device.cuh"
#include "block_reduce.cuh"

namespace landmark_kernels {
namespace {

// 64 columns: a whole row of the usual 64×64 heatmap (256 contiguous bytes in fp32); 16 threads
// of four columns cover it. 16 strips of four rows make a 64×64 tile for 256 threads; a strip
// re-reads 2r rows of its neighbours (from L1), 1.5× the target reads at r = 1.
constexpr int kTileW = 64;
constexpr int kGroupsPerRow = kTileW / kVec;  // threads per tile row: a half warp
constexpr int kStripRows = 4;
constexpr int kThreads = 256;
constexpr int kTileH = kThreads / kGroupsPerRow * kStripRows;
static_assert(kGroupsPerRow == 16, "a tile row is a half warp (shuffles of width 16)");
// 6 blocks of 256 threads per SM: 75 % occupancy, which caps the kernel at 40 registers.
constexpr int kMinBlocksPerSm = 6;
// Fixed (device-independent) cap on stage-1 blocks, so the partials and the order in which
// they are added depend on the problem size only; larger problems loop over tiles.
constexpr int64_t kMaxBlocks = 65536;
constexpr int kNoMap = 0;
constexpr int kRuntimeRadius = -1;


template <typename scalar_t>
struct AWingArgs {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* pred;
  const scalar_t* target;
  const scalar_t* weight;          // nullptr, (B,K) per channel, or per pixel
  acc_t* loss_map;                 // per-pixel loss for reduction "none", else nullptr
  stored_grad_t<scalar_t>* grad;   // nullptr unless compute_grad (fp32 for fp16 pred)
  acc_t* partials;                 // one sum per block, nullptr for reduction "none"
  int64_t height, width;
  uint32_t tiles_x, tiles_y, num_tiles;  // 32-bit: a tile index never needs 64-bit division
  int radius;                      // map_kernel / 2 (the runtime-radius instantiation reads it)
  bool weight_per_pixel;
  StageArgs<acc_t> stages;         // pred, grad, loss_map: stage s at s·stages.numel
};


// The NaN-propagating max of the CPU kernel and of max_pool2d (the reference's dilation): one
// max.NaN instruction in fp32 (sm_80+).
template <typename T>
__device__ __forceinline__ T nan_max(T a, T b) {
  return (a > b || a != a) ? a : b;
}
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
template <>
__device__ __forceinline__ float nan_max(float a, float b) {
  float m;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(m) : "f"(a), "f"(b));
  return m;
}
#endif


// Where a thread works: the plane and its base offset, its four columns gx..gx+3 (n of them
// inside the image) and the first row of its strip.
struct Place {
  int64_t plane, base, gx, y0;
  int n;
};

template <typename scalar_t>
__device__ __forceinline__ Place place_of(const AWingArgs<scalar_t>& a, uint32_t t) {
  const uint32_t rest = t / a.tiles_x;
  const int group = threadIdx.x % kGroupsPerRow, strip = threadIdx.x / kGroupsPerRow;
  Place p;
  p.plane = rest / a.tiles_y;
  p.base = p.plane * a.height * a.width;
  p.gx = int64_t(t % a.tiles_x) * kTileW + group * kVec;
  p.y0 = int64_t(rest % a.tiles_y) * kTileH + strip * kStripRows;
  p.n = p.gx < a.width ? int(min(int64_t(kVec), a.width - p.gx)) : 0;
  return p;
}

// Weighted target of a thread's four pixels in row gy, −inf outside the image: the max_pool2d
// padding, so out-of-bounds neighbours never win the max.
template <bool kVectorized, typename scalar_t, typename T>
__device__ __forceinline__ Vec4<T> weighted_target(const AWingArgs<scalar_t>& a, const Place& p,
                                                   int64_t gy, T w_channel) {
  const bool row_in = gy >= 0 && gy < a.height;
  const int n = row_in ? p.n : 0;
  const int64_t idx = p.base + gy * a.width + p.gx;
  Vec4<T> y = load4<kVectorized>(a.target, idx, n, T(-INFINITY));
  const Vec4<T> w = a.weight_per_pixel ? load4<kVectorized>(a.weight, idx, n, T(1))
                                       : broadcast(w_channel);
#pragma unroll
  for (int k = 0; k < kVec; ++k) y.v[k] *= w.v[k];  // −inf·w stays −inf for w > 0
  if (a.weight != nullptr) {  // −inf·0 = NaN outside the image: restore the padding
#pragma unroll
    for (int k = 0; k < kVec; ++k) y.v[k] = k < n ? y.v[k] : T(-INFINITY);
  }
  return y;
}

// One weighted target outside the thread's columns (halo), −inf outside the image.
template <typename scalar_t, typename T>
__device__ __forceinline__ T weighted_target_at(const AWingArgs<scalar_t>& a, const Place& p,
                                                int64_t gy, int64_t gx, T w_channel) {
  if (gy < 0 || gy >= a.height || gx < 0 || gx >= a.width) return T(-INFINITY);
  const int64_t idx = p.base + gy * a.width + gx;
  return T(a.target[idx]) * (a.weight_per_pixel ? T(a.weight[idx]) : w_channel);
}

// Row max over ±kRadius columns (kRadius ≤ 4) of the four values y: the neighbours' values come
// by shuffle from the adjacent threads of the tile row; the threads at the tile's edges load
// the kRadius columns beyond it.
template <int kRadius, typename scalar_t, typename T>
__device__ __forceinline__ Vec4<T> row_max(const AWingArgs<scalar_t>& a, const Place& p,
                                           int64_t gy, const Vec4<T>& y, T w_channel) {
  static_assert(kRadius >= 1 && kRadius <= kVec, "neighbours from the adjacent threads only");
  const int group = threadIdx.x % kGroupsPerRow;
  T window[kVec + 2 * kRadius];
#pragma unroll
  for (int d = 0; d < kRadius; ++d) {
    const T left = __shfl_up_sync(0xffffffffu, y.v[kVec - kRadius + d], 1, kGroupsPerRow);
    const T right = __shfl_down_sync(0xffffffffu, y.v[d], 1, kGroupsPerRow);
    window[d] = group > 0 ? left : weighted_target_at(a, p, gy, p.gx - kRadius + d, w_channel);
    window[kRadius + kVec + d] =
        group < kGroupsPerRow - 1 ? right
                                  : weighted_target_at(a, p, gy, p.gx + kVec + d, w_channel);
  }
#pragma unroll
  for (int k = 0; k < kVec; ++k) window[kRadius + k] = y.v[k];
  Vec4<T> m;
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    m.v[k] = window[k];
#pragma unroll
    for (int d = 1; d <= 2 * kRadius; ++d) m.v[k] = nan_max(m.v[k], window[k + d]);
  }
  return m;
}

// The k×k dilation of the weighted target at row gy read straight from global memory (L1):
// the runtime-radius path for the kernel sizes without their own instantiation.
template <typename scalar_t, typename T>
__device__ Vec4<T> dilation_at(const AWingArgs<scalar_t>& a, const Place& p, int64_t gy,
                               T w_channel) {
  const int r = a.radius;
  Vec4<T> m = broadcast(T(-INFINITY));
  for (int dy = -r; dy <= r; ++dy)
    for (int dx = -r; dx <= r; ++dx)
#pragma unroll
      for (int k = 0; k < kVec; ++k)
        m.v[k] = nan_max(m.v[k], weighted_target_at(a, p, gy + dy, p.gx + k + dx, w_channel));
  return m;
}

// Loss of the thread's pixels in row gy, for every stage, given their map factors; writes their
// grad and per-pixel loss, returns their loss sum. The target and weight are read here once (the
// target again, from L1: δ needs the unweighted target), pred once per stage.
template <bool kVectorized, bool kStoreLoss, bool kMultiStage, typename scalar_t, typename T>
__device__ __forceinline__ T awing_row(const AWingArgs<scalar_t>& a, const AWingConsts<T>& c,
                                       const Place& p, int64_t gy, T w_channel,
                                       const Vec4<T>& dilated, bool use_map) {
  const int n = gy < a.height ? p.n : 0;
  if (n == 0) return T(0);
  const int64_t idx = p.base + gy * a.width + p.gx;
  const Vec4<T> target = load4<kVectorized>(a.target, idx, n, T(0));
  const Vec4<T> w = a.weight_per_pixel ? load4<kVectorized>(a.weight, idx, n, T(0))
                                       : broadcast(w_channel);
  Vec4<T> factor;
#pragma unroll
  for (int k = 0; k < kVec; ++k) factor.v[k] = use_map ? awing_map_factor(dilated.v[k], c) : T(1);
  return stages_row<kVectorized, kStoreLoss, kMultiStage>(a.pred, a.grad, a.loss_map, a.stages,
                                                          idx, n, target, w, factor, c);
}

// kStoreLoss: reduction "none" (the per-pixel loss map is written, no partial sums).
// kMultiStage: the stage loop of the multi-stage op.
template <typename scalar_t, int kRadius, bool kVectorized, bool kStoreLoss, bool kMultiStage>
__global__ void
__launch_bounds__(kThreads, kMultiStage ? kStageMinBlocksPerSm : kMinBlocksPerSm)
    awing_tiles_kernel(const __grid_constant__ AWingArgs<scalar_t> a,
                       const AWingConsts<at::opmath_type<scalar_t>> c) {
  using T = at::opmath_type<scalar_t>;
  T sum = T(0);
  for (uint32_t t = blockIdx.x; t < a.num_tiles; t += gridDim.x) {
    const Place p = place_of(a, t);
    const T w_channel =
        a.weight != nullptr && !a.weight_per_pixel ? T(a.weight[p.plane]) : T(1);
    if constexpr (kRadius == kNoMap) {
#pragma unroll
      for (int i = 0; i < kStripRows; ++i)
        sum += awing_row<kVectorized, kStoreLoss, kMultiStage>(a, c, p, p.y0 + i, w_channel,
                                                               Vec4<T>{}, false);
    } else if constexpr (kRadius == kRuntimeRadius) {
      for (int i = 0; i < kStripRows; ++i)
        sum += awing_row<kVectorized, kStoreLoss, kMultiStage>(
            a, c, p, p.y0 + i, w_channel, dilation_at(a, p, p.y0 + i, w_channel), true);
    } else {
      // The row maxima of rows y0 − r .. y0 + kStripRows − 1 + r; window[j] holds row
      // y − r + j for the output row y, once j = 2r has been loaded.
      Vec4<T> window[2 * kRadius + 1];
#pragma unroll 1  // unrolled, the rows' loads and maths would not fit in 40 registers
      for (int j = 0; j < kStripRows + 2 * kRadius; ++j) {
        const int64_t gy = p.y0 - kRadius + j;
#pragma unroll
        for (int d = 0; d < 2 * kRadius; ++d) window[d] = window[d + 1];
        window[2 * kRadius] =
            row_max<kRadius>(a, p, gy, weighted_target<kVectorized>(a, p, gy, w_channel),
                             w_channel);
        if (j < 2 * kRadius) continue;
        Vec4<T> dilated = window[0];
#pragma unroll
        for (int d = 1; d <= 2 * kRadius; ++d)
#pragma unroll
          for (int k = 0; k < kVec; ++k) dilated.v[k] = nan_max(dilated.v[k], window[d].v[k]);
        sum += awing_row<kVectorized, kStoreLoss, kMultiStage>(a, c, p, gy - kRadius, w_channel,
                                                               dilated, true);
      }
    }
  }
  if constexpr (!kStoreLoss) {
    const T total = block_sum<kThreads>(sum);
    if (threadIdx.x == 0) a.partials[blockIdx.x] = total;
  }
}

template <typename scalar_t, bool kVectorized, bool kStoreLoss, bool kMultiStage>
void launch_tiles(const AWingArgs<scalar_t>& a, const AWingConsts<at::opmath_type<scalar_t>>& c,
                  bool use_map, int blocks, cudaStream_t stream) {
  if (!use_map) {
    awing_tiles_kernel<scalar_t, kNoMap, kVectorized, kStoreLoss, kMultiStage>
        <<<blocks, kThreads, 0, stream>>>(a, c);
  } else if (a.radius == 1) {
    awing_tiles_kernel<scalar_t, 1, kVectorized, kStoreLoss, kMultiStage>
        <<<blocks, kThreads, 0, stream>>>(a, c);
  } else {
    awing_tiles_kernel<scalar_t, kRuntimeRadius, kVectorized, kStoreLoss, kMultiStage>
        <<<blocks, kThreads, 0, stream>>>(a, c);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, bool kVectorized, bool kStoreLoss>
void launch_stages(const AWingArgs<scalar_t>& a, const AWingConsts<at::opmath_type<scalar_t>>& c,
                   bool use_map, bool multi_stage, int blocks, cudaStream_t stream) {
  if (multi_stage) {
    launch_tiles<scalar_t, kVectorized, kStoreLoss, true>(a, c, use_map, blocks, stream);
  } else {
    launch_tiles<scalar_t, kVectorized, kStoreLoss, false>(a, c, use_map, blocks, stream);
  }
}

template <typename scalar_t>
void launch_awing(const AWingProblem& p, int64_t map_kernel, int64_t reduction,
                  const at::Tensor& loss, const at::Tensor& grad) {
  using T = at::opmath_type<scalar_t>;
  const int64_t numel = p.planes * p.height * p.width;  // one stage's
  if (numel == 0) {  // nothing to launch; the empty sum is 0 (mean too, as the CPU kernel)
    if (reduction != kNone) loss.zero_();
    return;
  }
  const AWingConsts<T> c = p.consts.template to<T>();
  const bool use_map = p.consts.map_weight != 0.0;

  AWingArgs<scalar_t> a;
  a.pred = p.pred.const_data_ptr<scalar_t>();
  a.target = p.target.const_data_ptr<scalar_t>();
  a.weight = p.weight.defined() ? p.weight.const_data_ptr<scalar_t>() : nullptr;
  a.loss_map = reduction == kNone ? loss.mutable_data_ptr<T>() : nullptr;
  a.grad = grad.numel() > 0 ? grad.mutable_data_ptr<stored_grad_t<scalar_t>>() : nullptr;
  a.height = p.height;
  a.width = p.width;
  const int64_t tiles_x = (p.width + kTileW - 1) / kTileW;
  const int64_t tiles_y = (p.height + kTileH - 1) / kTileH;
  const int64_t num_tiles = p.planes * tiles_y * tiles_x;
  TORCH_CHECK(num_tiles < (int64_t(1) << 32), "awing_loss: pred has ", num_tiles,
              " tiles of 64×64 pixels; at most 2^32 are supported");
  a.tiles_x = uint32_t(tiles_x);
  a.tiles_y = uint32_t(tiles_y);
  a.num_tiles = uint32_t(num_tiles);
  a.radius = use_map ? static_cast<int>(map_kernel / 2) : 0;
  a.weight_per_pixel = p.weight_per_pixel;
  a.stages = stage_args<T>(p.stages, numel);
  const bool multi_stage = needs_stage_loop(p.stages);
  // Vec4 accesses need every row start aligned (width % 4) and every per-pixel base pointer
  // aligned (a contiguous() view can start at an odd storage offset).
  const size_t vec_align = alignof(Vec4<scalar_t>);
  const bool vectorized = p.width % kVec == 0 && aligned_for(a.pred, vec_align) &&
                          aligned_for(a.target, vec_align) &&
                          aligned_for(a.loss_map, alignof(Vec4<T>)) &&
                          aligned_for(a.grad, alignof(Vec4<stored_grad_t<scalar_t>>)) &&
                          (!p.weight_per_pixel || aligned_for(a.weight, vec_align));

  const int blocks = static_cast<int>(std::min(num_tiles, kMaxBlocks));
  at::Tensor partials;
  if (reduction != kNone) {
    partials = at::empty({blocks}, p.pred.options().dtype(c10::CppTypeToScalarType<T>::value));
    a.partials = partials.mutable_data_ptr<T>();
  } else {
    a.partials = nullptr;
  }

  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
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

std::tuple<at::Tensor, at::Tensor> run_awing_cuda(
    const at::Tensor& pred, const at::Tensor& target,
    const std::optional<at::Tensor>& target_weight, at::ArrayRef<double> stage_weights,
    bool multi_stage, double alpha, double omega, double epsilon, double theta,
    double map_weight, double map_threshold, int64_t map_kernel, int64_t reduction,
    bool compute_grad) {
  // Checks first: they name the argument when a tensor is not on pred's (CUDA) device.
  const AWingProblem p = prepare_awing(pred, target, target_weight, stage_weights, multi_stage,
                                       alpha, omega, epsilon, theta, map_weight, map_threshold,
                                       map_kernel, reduction);
  const c10::cuda::CUDAGuard guard(pred.device());
  at::Tensor loss, grad;
  std::tie(loss, grad) = allocate_loss_outputs(pred, reduction, compute_grad);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, pred.scalar_type(), "awing_loss_cuda",
      [&] { launch_awing<scalar_t>(p, map_kernel, reduction, loss, grad); });
  return {loss, grad};
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CUDA, m) {
  m.impl("awing_loss", &AWingEntries<run_awing_cuda>::single);
  m.impl("awing_loss_stages", &AWingEntries<run_awing_cuda>::stages);
}

}  // namespace landmark_kernels
