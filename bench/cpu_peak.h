// bench/cpu_peak.h — the FP32 multiply-add peak of this CPU at the vector width our kernels run,
// measured, not looked up: the "% of peak" of bench/step and bench/bench_ops, and the FMA kernels
// bench/cpu_arith times per core.
//
// Why measured: an estimate from a table (cores × "cpu MHz" × FLOP/cycle of the width) was wrong
// on every axis we met. /proc/cpuinfo's "cpu MHz" is the nominal clock, not the one the cores run
// at (AMD EPYC, 2026-12-03: 2.6 GHz listed, 3.6 GHz retired); and 512-bit FMA does not double the
// FLOP rate everywhere — AMD Zen 4 runs a 512-bit FMA as two 256-bit halves (the same FLOP/s at
// either width), and some Intel parts have one 512-bit FMA unit. Timing the FMA of the level in
// use on all the benchmark's threads at once takes all of that into account, and vCPUs that are
// hyper-threads of one core too.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/cpu_info.h"
#include "kernels/cpu_dispatch.h"

namespace unet::bench {

// Independent accumulators, enough to cover the FMA latency on two vector ports: 24 of the 32
// zmm registers; 12 of the 16 ymm (and xmm) registers, so nothing spills.
constexpr int kFmaChainsZmm = 24;
constexpr int kFmaChainsYmm = 12;

#ifdef UNET_BENCH_X86
// Each kernel runs `n` rounds of its independent multiply-adds on ones and returns the sum of the
// accumulators' lane 0 (exactly chains × n while below 2^24), which callers may check. The
// operand goes through an empty asm each round, so the compiler can neither fold the loop nor
// hoist anything out of it.
__attribute__((target("avx2,fma"))) inline double fma_ymm(int64_t n) {
  __m256 acc[kFmaChainsYmm];
  for (auto& a : acc) a = _mm256_setzero_ps();
  __m256 x = _mm256_set1_ps(1.0f);
  const __m256 y = _mm256_set1_ps(1.0f);
  for (int64_t it = 0; it < n; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kFmaChainsYmm; ++i) acc[i] = _mm256_fmadd_ps(x, y, acc[i]);
    asm volatile("" : "+v"(x));
  }
  double s = 0;
  for (auto& a : acc) s += _mm256_cvtss_f32(a);
  return s;
}

__attribute__((target("avx512f"))) inline double fma_zmm(int64_t n) {
  __m512 acc[kFmaChainsZmm];
  for (auto& a : acc) a = _mm512_setzero_ps();
  __m512 x = _mm512_set1_ps(1.0f);
  const __m512 y = _mm512_set1_ps(1.0f);
  for (int64_t it = 0; it < n; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kFmaChainsZmm; ++i) acc[i] = _mm512_fmadd_ps(x, y, acc[i]);
    asm volatile("" : "+v"(x));
  }
  double s = 0;
  for (auto& a : acc) s += _mm512_cvtss_f32(a);
  return s;
}

// The scalar level's code is the x86-64 baseline, SSE2: a 4-lane multiply and a 4-lane add.
inline double mul_add_xmm(int64_t n) {
  __m128 acc[kFmaChainsYmm];
  for (auto& a : acc) a = _mm_setzero_ps();
  __m128 x = _mm_set1_ps(1.0f);
  const __m128 y = _mm_set1_ps(1.0f);
  for (int64_t it = 0; it < n; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kFmaChainsYmm; ++i) acc[i] = _mm_add_ps(_mm_mul_ps(x, y), acc[i]);
    asm volatile("" : "+x"(x));
  }
  double s = 0;
  for (auto& a : acc) s += _mm_cvtss_f32(a);
  return s;
}
#endif

struct CpuPeak {
  double gflops = 0;
  std::string how;  // how it was found, for the benchmark's header line
};

// The FP32 peak of `threads` threads at `isa`: each thread runs the level's multiply-add loop
// (~10 ms), all at once; the best of `rounds` wall times counts (a round the host slowed is not
// the peak). Off x86-64 there is no kernel here, so the peak is left unknown (0) and said so.
inline CpuPeak measure_cpu_peak(int threads, cpu::CpuIsa isa, int rounds = 5) {
  CpuPeak peak;
#ifdef UNET_BENCH_X86
  threads = std::max(threads, 1);
  double (*kernel)(int64_t) = mul_add_xmm;
  double flops_per_round = kFmaChainsYmm * 8.0;  // 4 lanes × (multiply + add)
  const char* what = "SSE2 multiply + add (scalar level)";
  if (isa == cpu::CpuIsa::Avx512) {
    kernel = fma_zmm;
    flops_per_round = kFmaChainsZmm * 32.0;  // 16 lanes × 2
    what = "512-bit FMA (avx512 level)";
  } else if (isa == cpu::CpuIsa::Avx2) {
    kernel = fma_ymm;
    flops_per_round = kFmaChainsYmm * 16.0;  // 8 lanes × 2
    what = "256-bit FMA (avx2 level)";
  }
  constexpr int64_t kIterations = 1500000;  // ~10 ms at 3–4 GHz, two vector instructions a cycle
  double best = 1e300;
  (void)kernel(kIterations / 10);  // wakes the vector units to their running clock
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back([&] { (void)kernel(kIterations); });  // (the loops' asm keeps them)
    for (auto& th : pool) th.join();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  peak.gflops = threads * flops_per_round * static_cast<double>(kIterations) / best / 1e9;
  std::ostringstream how;
  how << "measured: " << what << " on " << threads << " thread" << (threads == 1 ? "" : "s") << " at once, best of "
      << rounds;
  peak.how = how.str();
#else
  (void)threads;
  (void)rounds;
  peak.how = std::string("not measured off x86-64 (") + cpu::cpu_isa_name(isa) + " level): pass --peak-gflops";
#endif
  return peak;
}

}  // namespace unet::bench
