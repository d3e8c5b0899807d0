#pragma once
// Run-time choice of an AVX2+FMA build of a hot CPU loop: LK_TARGET_AVX2 compiles a function for
// AVX2+FMA (8 float lanes instead of SSE2's 4), has_avx2() says whether this CPU runs it. The
// loop body is an always-inline template, instantiated once per target, so the library still
// runs on x86-64 CPUs without AVX2.
// The loop bodies: inlined into each target's wrapper, so compiled for that target.
#define LK_ALWAYS_INLINE inline __attribute__((always_inline))

#if defined(__x86_64__) && defined(__GNUC__)
#define LK_HAS_AVX2_TARGET 1
#define LK_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define LK_HAS_AVX2_TARGET 0
#define LK_TARGET_AVX2
#endif

namespace landmark_kernels {

inline bool has_avx2() {
#if LK_HAS_AVX2_TARGET
  static const bool value = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return value;
#else
  return false;
#endif
}

}  // namespace landmark_kernels
