#pragma once
// Deterministic reductions shared by the CUDA kernels: a fixed-order block sum, and the one-block
// second stage that adds per-block partials. No atomics, so the same inputs give the same bits.
#include <cuda_runtime.h>

namespace landmark_kernels {

// Sum over the block, valid in thread 0: warp shuffles, then warp 0 adds the warp sums; the
// order is fixed by the thread ids, hence deterministic. Every thread must call it.
template <int kBlock, typename T>
__device__ T block_sum(T v) {
  static_assert(kBlock % 32 == 0 && kBlock <= 1024, "block of whole warps, at most 32 warps");
  constexpr int kWarps = kBlock / 32;
  __shared__ T warp_sums[kWarps];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kWarps ? warp_sums[lane] : T(0);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  }
  __syncthreads();  // warp_sums is reused by the next call
  return v;
}

constexpr int kReduceThreads = 1024;

// Stage 2: one block adds the stage-1 partials in a fixed order (in double) and writes the 0-dim
// loss, divided by `divisor` (the reduction's: numel for mean, 1 for sum, ...).
template <typename T>
__global__ void __launch_bounds__(kReduceThreads)
    finish_sum_kernel(const T* partials, int n, double divisor, T* out) {
  double s = 0.0;
  for (int i = threadIdx.x; i < n; i += kReduceThreads) s += double(partials[i]);
  s = block_sum<kReduceThreads>(s);
  if (threadIdx.x == 0) *out = static_cast<T>(s / divisor);
}

}  // namespace landmark_kernels
