// kernels/cpu_dispatch.cpp — see cpu_dispatch.h: CPU feature detection, UNET_CPU_ISA and the
// forced level.
#include "kernels/cpu_dispatch.h"

#include <cstdlib>

#include "core/error.h"

namespace unet::cpu {
namespace {

constexpr int kUnset = -1;
std::atomic<int> forced_level{kUnset};    // set_cpu_isa()
std::atomic<int> resolved_level{kUnset};  // UNET_CPU_ISA or the detected level, once known

CpuIsa detect() {
#ifdef UNET_X86_DISPATCH
  // __builtin_cpu_supports also checks that the OS saves the vector registers (XGETBV).
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  return avx512 ? CpuIsa::Avx512 : avx2 ? CpuIsa::Avx2 : CpuIsa::Scalar;
#else
  return CpuIsa::Scalar;
#endif
}

void require_supported(CpuIsa isa, const char* who) {
  if (!cpu_isa_supported(isa))
    throw ValueError(detail::message(who, " asks for ", cpu_isa_name(isa), " but this CPU runs at most ",
                                     cpu_isa_name(cpu_isa_detected()),
                                     " (levels: scalar < avx2 = AVX2+FMA < avx512 = AVX-512 F/BW/DQ/VL)"));
}

// The level from UNET_CPU_ISA, or the detected one when it is unset or empty.
CpuIsa from_environment() {
  const char* value = std::getenv("UNET_CPU_ISA");
  if (value == nullptr || *value == '\0') return cpu_isa_detected();
  const CpuIsa isa = parse_cpu_isa(value);
  require_supported(isa, "UNET_CPU_ISA");
  return isa;
}

}  // namespace

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Scalar: return "scalar";
    case CpuIsa::Avx2: return "avx2";
    case CpuIsa::Avx512: return "avx512";
  }
  return "unknown";
}

CpuIsa parse_cpu_isa(std::string_view name) {
  for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512})
    if (name == cpu_isa_name(isa)) return isa;
  throw ValueError(detail::message("unknown CPU instruction set level '", std::string(name),
                                   "': use scalar, avx2 or avx512 (this CPU runs up to ",
                                   cpu_isa_name(cpu_isa_detected()), ")"));
}

int cpu_isa_float_lanes(CpuIsa isa) { return isa == CpuIsa::Avx512 ? 16 : isa == CpuIsa::Avx2 ? 8 : 1; }

CpuIsa cpu_isa_detected() {
  static const CpuIsa detected = detect();
  return detected;
}

bool cpu_isa_supported(CpuIsa isa) { return static_cast<int>(isa) <= static_cast<int>(cpu_isa_detected()); }

CpuIsa cpu_isa() {
  const int forced = forced_level.load(std::memory_order_relaxed);
  if (forced != kUnset) return static_cast<CpuIsa>(forced);
  int level = resolved_level.load(std::memory_order_relaxed);
  if (level == kUnset) {
    level = static_cast<int>(from_environment());  // throws on a bad value, every call until fixed
    resolved_level.store(level, std::memory_order_relaxed);
  }
  return static_cast<CpuIsa>(level);
}

void set_cpu_isa(CpuIsa isa) {
  require_supported(isa, "set_cpu_isa");
  forced_level.store(static_cast<int>(isa), std::memory_order_relaxed);
}

void reset_cpu_isa() {
  forced_level.store(kUnset, std::memory_order_relaxed);
  resolved_level.store(kUnset, std::memory_order_relaxed);  // read UNET_CPU_ISA again
}

CpuIsaScope::CpuIsaScope(CpuIsa isa) : saved_(forced_level.load(std::memory_order_relaxed)) { set_cpu_isa(isa); }
CpuIsaScope::~CpuIsaScope() { forced_level.store(saved_, std::memory_order_relaxed); }

}  // namespace unet::cpu
