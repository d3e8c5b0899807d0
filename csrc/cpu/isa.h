#pragma once
// Run-time choice of the instruction set of a hot CPU loop. The loop body is an always-inline
// template, instantiated once per target by a thin wrapper marked LK_TARGET_AVX512 or
// LK_TARGET_AVX2, and cpu_isa() says which wrapper this CPU runs: the library still runs on
// any x86-64 CPU (and elsewhere) while using 16 float lanes where the CPU has them.
//
// The element-wise losses are bound by instruction throughput (a log or exp is ~25 vector
// instructions per lane group): AVX-512 halves the instructions per element, ~1.5x faster on
// an AMD EPYC (Zen 4) even though it splits 512-bit operations in two.
#include <cstdlib>
#include <cstring>

// The loop bodies: inlined into each target's wrapper, so compiled for that target.
#define LK_ALWAYS_INLINE inline __attribute__((always_inline))

#if defined(__x86_64__) && defined(__GNUC__)
#define LK_HAS_ISA_TARGETS 1
#define LK_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define LK_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#else
#define LK_HAS_ISA_TARGETS 0
#define LK_TARGET_AVX2
#define LK_TARGET_AVX512
#endif

namespace landmark_kernels {

enum class Isa { kBase = 0, kAvx2 = 1, kAvx512 = 2 };

// The widest instruction set this CPU runs, capped by ATEN_CPU_CAPABILITY ("default", "avx2"
// or "avx512"), PyTorch's own switch for its kernels: set before import, it runs (and lets the
// tests check) each variant on one machine. Decided once per process.
inline Isa cpu_isa() {
#if LK_HAS_ISA_TARGETS
  static const Isa value = [] {
    Isa best = Isa::kBase;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::kAvx2;
    if (best == Isa::kAvx2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw")) {
      best = Isa::kAvx512;
    }
    const char* cap = std::getenv("ATEN_CPU_CAPABILITY");
    Isa limit = Isa::kAvx512;
    if (cap != nullptr && std::strcmp(cap, "default") == 0) limit = Isa::kBase;
    if (cap != nullptr && std::strcmp(cap, "avx2") == 0) limit = Isa::kAvx2;
    return best < limit ? best : limit;
  }();
  return value;
#else
  return Isa::kBase;
#endif
}

inline bool has_avx2() { return cpu_isa() >= Isa::kAvx2; }

}  // namespace landmark_kernels
