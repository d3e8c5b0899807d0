#pragma once
// LK_HD marks the element-wise maths that the CPU and CUDA kernels share.
#if defined(__CUDACC__)
#define LK_HD __host__ __device__ __forceinline__
#else
#define LK_HD inline __attribute__((always_inline))
#endif
