// kernels/cpu_dispatch.h — how the CPU kernels use AVX2 on a portable build: functions marked
// UNET_AVX2_FMA are compiled for AVX2 + FMA through a target attribute (on any x86-64 GCC/Clang
// build, not only -march=native), and called only when cpu_has_avx2_fma() says the running CPU
// has both. Nothing shared with other files is compiled for AVX2, so the library still runs on
// CPUs without it. UNET_X86_DISPATCH is defined where this is possible.
#pragma once

#include <atomic>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define UNET_X86_DISPATCH 1
#define UNET_AVX2_FMA __attribute__((target("avx2,fma")))
#endif

namespace unet::cpu {

// True when this CPU runs AVX2 and FMA code (checked once).
inline bool cpu_has_avx2_fma() {
#ifdef UNET_X86_DISPATCH
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported;
#else
  return false;
#endif
}

// An AVX2 engine's on/off switch: tests and benchmarks turn an engine off to reach the paths other
// CPUs take. available() = this CPU runs it and it is switched on.
class EngineSwitch {
 public:
  void set(bool on) { on_.store(on, std::memory_order_relaxed); }
  bool available() const { return cpu_has_avx2_fma() && on_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> on_{true};
};

}  // namespace unet::cpu
