// bench/cpu_info.h — the CPU a benchmark ran on, as lscpu names it, and the vector flags that
// decide which code runs (ours and PyTorch's). Shared by bench/step and bench/cpu_arith; and
// UNET_BENCH_X86, set where the benchmarks' own x86 vector kernels (cpu_peak.h, cpu_arith*) build.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define UNET_BENCH_X86 1
#endif

#include <cstdio>
#include <fstream>
#include <string>

namespace unet::bench {

struct CpuInfo {
  std::string model, vector_flags;
};

inline CpuInfo cpu_info() {
  CpuInfo info;
  std::ifstream in("/proc/cpuinfo");
  std::string line, flags;
  while (std::getline(in, line)) {
    if (info.model.empty() && line.rfind("model name", 0) == 0) info.model = line.substr(line.find(':') + 2);
    if (flags.empty() && line.rfind("flags", 0) == 0) flags = line.substr(line.find(':') + 1) + " ";
  }
  if (FILE* p = popen("lscpu 2>/dev/null", "r")) {  // lscpu's name where it has one (same text on Linux)
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) {
      std::string l(buf);
      if (l.rfind("Model name:", 0) == 0) {
        const size_t at = l.find_first_not_of(" ", 11);
        info.model = l.substr(at, l.find_last_not_of("\n") + 1 - at);
      }
    }
    pclose(p);
  }
  for (const char* f : {"avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni", "avx512_bf16",
                        "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"})
    if (flags.find(std::string(" ") + f + " ") != std::string::npos) info.vector_flags += (info.vector_flags.empty() ? "" : " ") + std::string(f);
  return info;
}

}  // namespace unet::bench
