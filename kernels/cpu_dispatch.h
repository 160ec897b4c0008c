// kernels/cpu_dispatch.h — which vector instruction set the CPU kernels run, chosen at run time.
//
// The SIMD engines (Winograd, the patch GEMM, the direct 3×3 kernels, pooling, the fused ReLU
// gradient) are compiled on every x86-64 GCC/Clang build once per level — AVX2 + FMA (256-bit)
// and AVX-512 F/BW/DQ/VL (512-bit) — from one source (kernels/cpu_simd.h says how), and each
// call runs the code of cpu_isa(): the best level this CPU has, unless a lower one is forced by
//   - the environment variable UNET_CPU_ISA=scalar|avx2|avx512 (read once, at the first kernel
//     call; an unknown name or a level the CPU lacks is a ValueError naming what it runs), or
//   - set_cpu_isa() / CpuIsaScope, for tests and benchmarks.
// Scalar means no SIMD engine: the portable paths (im2col + Eigen GEMM, plain loops) that a CPU
// without AVX2 takes. Nothing outside the per-level code is compiled for AVX2 or AVX-512, so the
// library runs on any x86-64 CPU. UNET_X86_DISPATCH is defined where this is possible.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define UNET_X86_DISPATCH 1
#endif

namespace unet::cpu {

// Ordered: a level includes the ones below it.
enum class CpuIsa : int { Scalar = 0, Avx2 = 1, Avx512 = 2 };

// "scalar", "avx2", "avx512".
const char* cpu_isa_name(CpuIsa isa);
// The inverse of cpu_isa_name; anything else is a ValueError listing the names.
CpuIsa parse_cpu_isa(std::string_view name);
// Vector width in float32 lanes of a level's widest engine code (1, 8, 16).
int cpu_isa_float_lanes(CpuIsa isa);

// The best level this CPU and operating system run: avx512 needs AVX-512 F, BW, DQ and VL (and
// AVX2 + FMA), avx2 needs AVX2 and FMA. Checked once.
CpuIsa cpu_isa_detected();
// Whether this CPU runs `isa` (every level up to cpu_isa_detected()).
bool cpu_isa_supported(CpuIsa isa);

// The level the kernels use now: set_cpu_isa()'s, else UNET_CPU_ISA's, else cpu_isa_detected().
// Throws ValueError when UNET_CPU_ISA is set to an unknown name or a level this CPU lacks.
CpuIsa cpu_isa();
// Forces a level for every later kernel call (ValueError if this CPU lacks it). Not meant to be
// changed while kernels run on other threads.
void set_cpu_isa(CpuIsa isa);
// Forgets set_cpu_isa() and reads UNET_CPU_ISA again at the next call: back to its level or the
// detected one.
void reset_cpu_isa();

// Forces a level for its lifetime, then restores the one before (tests, benchmarks).
class CpuIsaScope {
 public:
  explicit CpuIsaScope(CpuIsa isa);
  ~CpuIsaScope();
  CpuIsaScope(const CpuIsaScope&) = delete;
  CpuIsaScope& operator=(const CpuIsaScope&) = delete;

 private:
  int saved_;  // the forced level before, or -1
};

// An engine's on/off switch: tests and benchmarks turn an engine off to reach the paths other
// CPUs take. available() = the level in use has SIMD engines and this one is switched on.
class EngineSwitch {
 public:
  void set(bool on) { on_.store(on, std::memory_order_relaxed); }
  bool available() const { return cpu_isa() >= CpuIsa::Avx2 && on_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> on_{true};
};

}  // namespace unet::cpu
