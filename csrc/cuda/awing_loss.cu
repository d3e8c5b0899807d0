// AWing loss + weighted loss map on CUDA (SPEC §1): the same semantics as cpu/awing_loss.cpp.
//
// Stage 1 (awing_tiles_kernel): each block walks 32×64-pixel tiles of the (B·K) heatmaps. With
// the loss map on, it stages the weighted target of the tile plus a halo of r = k/2 in shared
// memory, dilates it there (row max, then column max) and never materialises the map. Each
// thread then handles four consecutive pixels of two tile rows with awing_pixel, writes grad
// (and the per-pixel loss for "none") and keeps a running sum; the block's sum goes, by a
// fixed-order shuffle tree, to partials[blockIdx.x].
// Stage 2 (finish_sum_kernel, block_reduce.cuh): one block adds the partials in a fixed order
// and writes the 0-dim loss. No atomics anywhere, so the same inputs give bitwise-same outputs
// on every run.
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

#include "../awing_loss.h"
#include "block_reduce.cuh"

namespace landmark_kernels {
namespace {

// 64 columns: a whole row of the usual 64×64 heatmap, i.e. 256 contiguous bytes in fp32, and a
// r = 1 halo costs only (34·66)/(32·64) − 1 ≈ 10 % extra loads. 32 rows keep the fp32 shared
// tile under 48 KiB up to k = 31. 256 threads = 16 four-pixel groups × 16 rows, two passes.
constexpr int kTileH = 32;
constexpr int kTileW = 64;
constexpr int kThreads = 256;
constexpr int kVec = 4;
constexpr int kGroupsPerRow = kTileW / kVec;
constexpr int kRowsPerPass = kThreads / kGroupsPerRow;
static_assert(kTileW % kVec == 0 && kThreads % kGroupsPerRow == 0 && kTileH % kRowsPerPass == 0,
              "the thread layout must cover the tile exactly");
// Fixed (device-independent) cap on stage-1 blocks, so the partials and the order in which
// they are added depend on the problem size only; larger problems loop over tiles.
constexpr int64_t kMaxBlocks = 65536;
constexpr size_t kDefaultSharedBytes = 48 * 1024;

// Four consecutive values; 16-byte loads for fp32 (two for fp64, one 8-byte load for fp16/bf16).
template <typename T>
struct alignas(sizeof(T) * kVec < 16 ? sizeof(T) * kVec : 16) Vec4 {
  T v[kVec];
};

template <typename scalar_t>
struct AWingArgs {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* pred;
  const scalar_t* target;
  const scalar_t* weight;  // nullptr, (B,K) per channel, or per pixel
  acc_t* loss_map;         // per-pixel loss for reduction "none", else nullptr
  stored_grad_t<scalar_t>* grad;  // nullptr unless compute_grad (fp32 for fp16 pred)
  acc_t* partials;         // one sum per block, nullptr for reduction "none"
  int64_t height, width, tiles_x, tiles_y, num_tiles;
  int radius;  // map_kernel / 2
  bool weight_per_pixel;
  bool vectorized;  // width % 4 == 0 and every per-pixel pointer aligned for Vec4
};

struct Tile {
  int64_t plane, y0, x0;
};

__device__ __forceinline__ Tile tile_at(int64_t t, int64_t tiles_x, int64_t tiles_y) {
  const int64_t rest = t / tiles_x;
  return {rest / tiles_y, (rest % tiles_y) * kTileH, (t % tiles_x) * kTileW};
}

// The NaN-propagating max of the CPU kernel and of max_pool2d (the reference's dilation).
template <typename T>
__device__ __forceinline__ T max_like_cpu(T a, T b) {
  return (a > b || a != a) ? a : b;
}

template <typename T>
__device__ __forceinline__ Vec4<T> broadcast(T x) {
  Vec4<T> out;
#pragma unroll
  for (int k = 0; k < kVec; ++k) out.v[k] = x;
  return out;
}

// The n ≤ 4 pixels at idx (n == 4 on the vectorised path), converted to the compute type.
template <typename T, typename scalar_t>
__device__ __forceinline__ Vec4<T> load4(const scalar_t* p, int64_t idx, int n, bool vectorized) {
  Vec4<T> out;
  if (vectorized) {
    const Vec4<scalar_t> raw = *reinterpret_cast<const Vec4<scalar_t>*>(p + idx);
#pragma unroll
    for (int k = 0; k < kVec; ++k) out.v[k] = T(raw.v[k]);
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) out.v[k] = k < n ? T(p[idx + k]) : T(0);
  }
  return out;
}

template <typename scalar_t, typename T>
__device__ __forceinline__ void store4(scalar_t* p, int64_t idx, int n, bool vectorized,
                                       const Vec4<T>& x) {
  if (vectorized) {
    Vec4<scalar_t> raw;
#pragma unroll
    for (int k = 0; k < kVec; ++k) raw.v[k] = scalar_t(x.v[k]);
    *reinterpret_cast<Vec4<scalar_t>*>(p + idx) = raw;
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k)
      if (k < n) p[idx + k] = scalar_t(x.v[k]);
  }
}

// Weighted target of the tile and its halo, (kTileH + 2r) × (kTileW + 2r), −inf outside the
// image: the max_pool2d padding, so out-of-bounds neighbours never win the max.
template <typename scalar_t, typename T>
__device__ void load_halo(const AWingArgs<scalar_t>& a, const Tile& tile, T w_channel, T* ys) {
  const int r = a.radius;
  const int sw = kTileW + 2 * r;
  const int count = (kTileH + 2 * r) * sw;
  const int64_t base = tile.plane * a.height * a.width;
  for (int e = threadIdx.x; e < count; e += kThreads) {
    const int row = e / sw;
    const int64_t gy = tile.y0 - r + row;
    const int64_t gx = tile.x0 - r + (e - row * sw);
    T y = T(-INFINITY);
    if (gy >= 0 && gy < a.height && gx >= 0 && gx < a.width) {
      const int64_t idx = base + gy * a.width + gx;
      y = T(a.target[idx]) * (a.weight_per_pixel ? T(a.weight[idx]) : w_channel);
    }
    ys[e] = y;
  }
}

// First pass of the separable dilation: rm[row][j] = max of ys[row][j .. j + 2r], for every
// halo row and every tile column (rows of rm are kTileW wide so the second pass can read Vec4).
template <typename T>
__device__ void row_max(const T* ys, T* rm, int r) {
  const int sw = kTileW + 2 * r;
  const int count = (kTileH + 2 * r) * kTileW;
  for (int e = threadIdx.x; e < count; e += kThreads) {
    const int row = e / kTileW;
    const T* src = ys + row * sw + (e % kTileW);
    T m = T(-INFINITY);
    for (int d = 0; d <= 2 * r; ++d) m = max_like_cpu(m, src[d]);
    rm[e] = m;
  }
}

// Second pass, for 4 pixels of tile row i from column j0: max over rm rows i .. i + 2r, then
// the map factor W·M + 1.
template <typename T>
__device__ __forceinline__ Vec4<T> map_factors(const T* rm, int i, int j0, int r,
                                               const AWingConsts<T>& c) {
  Vec4<T> m = broadcast(T(-INFINITY));
  for (int d = 0; d <= 2 * r; ++d) {
    const Vec4<T> row = *reinterpret_cast<const Vec4<T>*>(rm + (i + d) * kTileW + j0);
#pragma unroll
    for (int k = 0; k < kVec; ++k) m.v[k] = max_like_cpu(m.v[k], row.v[k]);
  }
#pragma unroll
  for (int k = 0; k < kVec; ++k) m.v[k] = awing_map_factor(m.v[k], c);
  return m;
}

// Loss of the n pixels at idx; writes their grad and per-pixel loss, returns their loss sum.
// The target is read again rather than taken from the shared tile: δ needs the unweighted
// target (below), and the second read hits L1/L2.
template <typename scalar_t, typename T>
__device__ __forceinline__ T awing_pixels(const AWingArgs<scalar_t>& a, const AWingConsts<T>& c,
                                          int64_t idx, int n, T w_channel,
                                          const Vec4<T>& factor) {
  const bool vec = a.vectorized;
  const Vec4<T> pred = load4<T>(a.pred, idx, n, vec);
  const Vec4<T> target = load4<T>(a.target, idx, n, vec);
  const Vec4<T> w = a.weight_per_pixel ? load4<T>(a.weight, idx, n, vec) : broadcast(w_channel);
  Vec4<T> loss, grad;
  T sum = T(0);
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    T g = T(0), l = T(0);
    if (k < n) {
      // As the CPU kernel: δ from (pred − target)·w, exact when pred ≈ target where the
      // gradient ∝ δ^(α−y−1) magnifies rounding (and exactly 0 at δ = 0 even under FMA).
      const T y = target.v[k] * w.v[k];
      l = factor.v[k] * awing_pixel((pred.v[k] - target.v[k]) * w.v[k], y, c, &g);
      g = factor.v[k] * w.v[k] * g * c.grad_scale;
      sum += l;
    }
    loss.v[k] = l;
    grad.v[k] = g;
  }
  if (a.loss_map != nullptr) store4(a.loss_map, idx, n, vec, loss);
  if (a.grad != nullptr) store4(a.grad, idx, n, vec, grad);  // Vec4<float> for fp16 pred
  return sum;
}

template <typename scalar_t, bool kUseMap>
__global__ void __launch_bounds__(kThreads)
    awing_tiles_kernel(const AWingArgs<scalar_t> a,
                       const AWingConsts<at::opmath_type<scalar_t>> c) {
  using T = at::opmath_type<scalar_t>;
  // Dynamic shared memory (map only): rm first, so its Vec4 rows are 16-byte aligned, then ys.
  extern __shared__ __align__(16) unsigned char smem[];
  T* rm = reinterpret_cast<T*>(smem);
  T* ys = rm + (kTileH + 2 * a.radius) * kTileW;
  const int r = a.radius;
  const int j0 = (threadIdx.x % kGroupsPerRow) * kVec;  // this thread's first tile column
  T sum = T(0);

  for (int64_t t = blockIdx.x; t < a.num_tiles; t += gridDim.x) {
    const Tile tile = tile_at(t, a.tiles_x, a.tiles_y);
    const T w_channel =
        a.weight != nullptr && !a.weight_per_pixel ? T(a.weight[tile.plane]) : T(1);
    if constexpr (kUseMap) {
      load_halo(a, tile, w_channel, ys);
      __syncthreads();
      row_max(ys, rm, r);
      __syncthreads();
    }
    const int64_t gx = tile.x0 + j0;
    for (int i = threadIdx.x / kGroupsPerRow; i < kTileH; i += kRowsPerPass) {
      const int64_t gy = tile.y0 + i;
      if (gy >= a.height || gx >= a.width) continue;
      const int n = a.width - gx < kVec ? static_cast<int>(a.width - gx) : kVec;
      const int64_t idx = (tile.plane * a.height + gy) * a.width + gx;
      if constexpr (kUseMap) {
        sum += awing_pixels(a, c, idx, n, w_channel, map_factors(rm, i, j0, r, c));
      } else {
        sum += awing_pixels(a, c, idx, n, w_channel, broadcast(T(1)));
      }
    }
    if constexpr (kUseMap) __syncthreads();  // the next tile overwrites ys and rm
  }

  if (a.partials != nullptr) {
    const T total = block_sum<kThreads>(sum);
    if (threadIdx.x == 0) a.partials[blockIdx.x] = total;
  }
}

bool aligned_for(const void* p, size_t alignment) {
  return p == nullptr || reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

template <typename scalar_t>
void launch_awing(const AWingProblem& p, int64_t map_kernel, int64_t reduction,
                  const at::Tensor& loss, const at::Tensor& grad) {
  using T = at::opmath_type<scalar_t>;
  const int64_t numel = p.planes * p.height * p.width;
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
  a.tiles_x = (p.width + kTileW - 1) / kTileW;
  a.tiles_y = (p.height + kTileH - 1) / kTileH;
  a.num_tiles = p.planes * a.tiles_y * a.tiles_x;
  a.radius = use_map ? static_cast<int>(map_kernel / 2) : 0;
  a.weight_per_pixel = p.weight_per_pixel;
  // Vec4 accesses need every row start aligned (width % 4) and every per-pixel base pointer
  // aligned (a contiguous() view can start at an odd storage offset).
  const size_t vec_align = alignof(Vec4<scalar_t>);
  a.vectorized = p.width % kVec == 0 && aligned_for(a.pred, vec_align) &&
                 aligned_for(a.target, vec_align) &&
                 aligned_for(a.loss_map, alignof(Vec4<T>)) &&
                 aligned_for(a.grad, alignof(Vec4<stored_grad_t<scalar_t>>)) &&
                 (!p.weight_per_pixel || aligned_for(a.weight, vec_align));

  const int blocks = static_cast<int>(std::min(a.num_tiles, kMaxBlocks));
  at::Tensor partials;
  if (reduction != kNone) {
    partials = at::empty({blocks}, p.pred.options().dtype(c10::CppTypeToScalarType<T>::value));
    a.partials = partials.mutable_data_ptr<T>();
  } else {
    a.partials = nullptr;
  }

  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  if (use_map) {
    const int r = a.radius;
    const size_t smem =
        size_t(kTileH + 2 * r) * size_t(kTileW + (kTileW + 2 * r)) * sizeof(T);
    auto kernel = awing_tiles_kernel<scalar_t, true>;
    // Above the default 48 KiB (only fp64 with map_kernel ≥ 13: the largest size below it,
    // fp64 k = 11, leaves > 2 KiB for the static warp sums) the kernel must opt in.
    if (smem > kDefaultSharedBytes) {
      const size_t limit = at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin;
      TORCH_CHECK(smem <= limit, "awing_loss: map_kernel ", map_kernel, " in ",
                  p.pred.scalar_type(), " needs ", smem,
                  " bytes of shared memory per block, this GPU allows ", limit);
      C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(smem)));
    }
    kernel<<<blocks, kThreads, smem, stream>>>(a, c);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  } else {
    awing_tiles_kernel<scalar_t, false><<<blocks, kThreads, 0, stream>>>(a, c);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  if (reduction != kNone) {
    const double divisor = reduction == kMean ? double(numel) : 1.0;
    finish_sum_kernel<T><<<1, kReduceThreads, 0, stream>>>(a.partials, blocks, divisor,
                                                           loss.mutable_data_ptr<T>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

std::tuple<at::Tensor, at::Tensor> awing_loss_cuda(
    const at::Tensor& pred, const at::Tensor& target,
    const std::optional<at::Tensor>& target_weight, double alpha, double omega, double epsilon,
    double theta, double map_weight, double map_threshold, int64_t map_kernel,
    int64_t reduction, bool compute_grad) {
  // Checks first: they name the argument when a tensor is not on pred's (CUDA) device.
  const AWingProblem p = prepare_awing(pred, target, target_weight, alpha, omega, epsilon, theta,
                                       map_weight, map_threshold, map_kernel, reduction);
  const c10::cuda::CUDAGuard guard(pred.device());
  at::Tensor loss, grad;
  std::tie(loss, grad) = allocate_loss_outputs(pred, reduction, compute_grad);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, pred.scalar_type(), "awing_loss_cuda",
      [&] { launch_awing<scalar_t>(p, map_kernel, reduction, loss, grad); });
  return {loss, grad};
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CUDA, m) { m.impl("awing_loss", &awing_loss_cuda); }

}  // namespace landmark_kernels
