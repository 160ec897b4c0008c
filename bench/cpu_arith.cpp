// bench/cpu_arith.cpp — how fast one core of this CPU does each kind of vector multiply-add the
// convolutions could be built on: FP32 FMA (256- and 512-bit), the AVX512_BF16 dot product
// (VDPBF16PS: bf16 pairs, FP32 accumulation — what a bf16 convolution path would run on a CPU
// without AMX), AVX512_FP16 FMA (half-precision accumulation) and AVX512_VNNI's int8 dot product.
// Each kernel keeps independent accumulators in registers — 24 of the 32 zmm registers, 12 of the
// 16 ymm registers AVX2 has — enough to cover these instructions' latency on two vector ports, so
// the rate is the instruction's throughput;
// FLOPs count 2 per multiply-add (a bf16 pair is 2, an int8 quadruple 4). AMX is reported
// (CPUID and the OS's permission), not timed.
//
// This is the measurement behind the bf16 decision of issue 17: a bf16 path only pays where its
// dot product runs at more FLOP/s than FP32 FMA (docs/kernels-conv.md, "bf16 on the CPU"). A
// second table times both inside a 16x16 register tile with its loads and broadcasts
// (bench/cpu_arith_tiles.h), where the instruction rate has to survive to matter.
//
//   build/bench/cpu_arith [--iterations 20000000] [--rounds 3] [--json out.json]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/cpu_info.h"
#include "bench/cpu_arith_tiles.h"
#include "bench/cpu_peak.h"

#ifdef UNET_BENCH_X86  // (bench/cpu_info.h)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace {

constexpr int kAccumulators = unet::bench::kFmaChainsZmm;     // 512-bit kernels: 24
constexpr int kAccumulatorsYmm = unet::bench::kFmaChainsYmm;  // AVX2 has 16 vector registers: 12

// One kernel: runs `iterations` rounds of `accumulators` independent instructions with the
// operands set to one (1.0, or int8 1) and returns the sum of the accumulators' lane 0, which
// validate() compares with the exact count for a short run.
struct Kernel {
  const char* name;
  const char* needs;          // the CPU flag (lscpu) it needs
  int accumulators;           // instructions per loop iteration
  double flops_per_instr;     // 2 per multiply-add, over all lanes
  double expected_per_iter;   // lane 0's increase per iteration, summed over the accumulators
  bool (*supported)();
  double (*run)(int64_t iterations);
};

#ifdef UNET_BENCH_X86
// fp32 FMA at both widths: bench/cpu_peak.h (fma_ymm, fma_zmm), the kernels the benchmarks' peak
// is measured with. The others keep their operand in a register the same way.
using unet::bench::fma_ymm;
using unet::bench::fma_zmm;

// Each 32-bit lane of the operands holds two bf16 ones (0x3f80): a lane adds 1·1 + 1·1 = 2.
__attribute__((target("avx512f,avx512bf16"))) double dpbf16_zmm(int64_t n) {
  __m512 acc[kAccumulators];
  for (auto& a : acc) a = _mm512_setzero_ps();
  __m512i x = _mm512_set1_epi32(0x3f803f80);
  const __m512i y = _mm512_set1_epi32(0x3f803f80);
  for (int64_t it = 0; it < n; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)x, (__m512bh)y);
    asm volatile("" : "+v"(x));
  }
  double s = 0;
  for (auto& a : acc) s += _mm512_cvtss_f32(a);
  return s;
}

// Half-precision FMA, 32 lanes; the accumulators are fp16 too (no mixed-precision form exists),
// so validation uses a short run (exact below 2048).
__attribute__((target("avx512f,avx512fp16"))) double fma_ph_zmm(int64_t n) {
  __m512h acc[kAccumulators];
  for (auto& a : acc) a = _mm512_setzero_ph();
  __m512h x = _mm512_set1_ph(static_cast<_Float16>(1.0f));
  const __m512h y = _mm512_set1_ph(static_cast<_Float16>(1.0f));
  for (int64_t it = 0; it < n; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_fmadd_ph(x, y, acc[i]);
    asm volatile("" : "+v"(x));
  }
  double s = 0;
  for (auto& a : acc) s += static_cast<float>(_mm512_cvtsh_h(a));
  return s;
}

// u8 × s8 quadruples summed into int32 lanes: a lane adds 4.
__attribute__((target("avx512f,avx512vnni"))) double dpbusd_zmm(int64_t n) {
  __m512i acc[kAccumulators];
  for (auto& a : acc) a = _mm512_setzero_si512();
  __m512i x = _mm512_set1_epi8(1);
  const __m512i y = _mm512_set1_epi8(1);
  for (int64_t it = 0; it < n; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], x, y);
    asm volatile("" : "+v"(x));
  }
  double s = 0;
  for (auto& a : acc) s += _mm_cvtsi128_si32(_mm512_castsi512_si128(a));
  return s;
}

bool has_avx2_fma() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
bool has_avx512f() { return __builtin_cpu_supports("avx512f"); }
bool has_avx512bf16() { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16"); }
bool has_avx512fp16() { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512fp16"); }
bool has_avx512vnni() { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni"); }

// AMX: CPUID.(7,0):EDX bits 22 (AMX-BF16), 24 (AMX-TILE); the OS enables the tile state in
// XCR0 (bits 17, 18) and Linux grants it per process (arch_prctl ARCH_REQ_XCOMP_PERM).
std::string amx_state() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return "CPUID leaf 7 missing";
  const bool tile = d & (1u << 24), bf16 = d & (1u << 22);
  if (!tile) return "not reported by CPUID (no AMX-TILE)";
  std::string s = std::string("AMX-TILE") + (bf16 ? " and AMX-BF16" : "") + " reported by CPUID";
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  const long granted = syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata);
  return s + (granted == 0 ? "; the OS grants the tile state" : "; the OS refuses the tile state");
}
#endif

std::vector<Kernel> kernels() {
#ifdef UNET_BENCH_X86
  const int k = kAccumulators;
  return {
      {"fp32 FMA, 256-bit", "avx2 fma", kAccumulatorsYmm, 16, kAccumulatorsYmm * 1.0, has_avx2_fma, fma_ymm},
      {"fp32 FMA, 512-bit", "avx512f", k, 32, k * 1.0, has_avx512f, fma_zmm},
      {"bf16 dot (VDPBF16PS), fp32 sum", "avx512_bf16", k, 64, k * 2.0, has_avx512bf16, dpbf16_zmm},
      {"fp16 FMA (VFMADDPH), fp16 sum", "avx512_fp16", k, 64, k * 1.0, has_avx512fp16, fma_ph_zmm},
      {"int8 dot (VPDPBUSD), int32 sum", "avx512_vnni", k, 128, k * 4.0, has_avx512vnni, dpbusd_zmm},
  };
#else
  return {};
#endif
}

double seconds_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Vector multiply-add throughput of one core: fp32 FMA against bf16, fp16 and int8 dot products"};
  int64_t iterations = 20000000;
  int rounds = 3;
  std::string json_path;
  app.add_option("--iterations", iterations, "loop iterations per timing (24 instructions each, 12 at 256 bits)")->check(CLI::Range(int64_t{1000}, int64_t{1} << 40));
  app.add_option("--rounds", rounds, "timings per kernel, alternated; the fastest counts")->check(CLI::Range(1, 100));
  app.add_option("--json", json_path, "write the results here");
  CLI11_PARSE(app, argc, argv);

  const unet::bench::CpuInfo info = unet::bench::cpu_info();
  std::printf("cpu_arith: CPU %s; vector flags: %s; one thread\n", info.model.c_str(), info.vector_flags.c_str());
#ifdef UNET_BENCH_X86
  const std::string amx = amx_state();
#else
  const std::string amx = "not an x86-64 build";
#endif
  std::printf("cpu_arith: AMX: %s\n", amx.c_str());

  // Validate: a short run must give the exact count (fp16 stays below 2048).
  std::vector<Kernel> ks = kernels();
  std::vector<bool> usable;
  for (const Kernel& k : ks) {
    bool ok = k.supported();
    if (ok) {
      const int64_t n = 3;
      const double got = k.run(n), want = k.expected_per_iter * static_cast<double>(n);
      if (got != want) {
        std::fprintf(stderr, "cpu_arith: %s computed %g, expected %g\n", k.name, got, want);
        return 1;
      }
    }
    usable.push_back(ok);
  }

  std::vector<double> best(ks.size(), 1e300);
  for (int r = 0; r < rounds; ++r)
    for (size_t i = 0; i < ks.size(); ++i)
      if (usable[i]) best[i] = std::min(best[i], seconds_of([&] { (void)ks[i].run(iterations); }));

  double fp32_zmm = 0;
  for (size_t i = 0; i < ks.size(); ++i)
    if (usable[i] && std::string(ks[i].name) == "fp32 FMA, 512-bit") fp32_zmm = ks[i].flops_per_instr * ks[i].accumulators * iterations / best[i];
  std::printf("\n%-34s %-12s %12s %12s %12s\n", "instruction", "needs", "G instr/s", "GFLOP/s", "vs fp32 512");
  nlohmann::json j;
  j["cpu_model"] = info.model;
  j["vector_flags"] = info.vector_flags;
  j["amx"] = amx;
  j["iterations"] = iterations;
  j["rounds"] = rounds;
  for (size_t i = 0; i < ks.size(); ++i) {
    nlohmann::json row{{"instruction", ks[i].name}, {"needs", ks[i].needs}, {"supported", static_cast<bool>(usable[i])}};
    if (!usable[i]) {
      std::printf("%-34s %-12s %12s\n", ks[i].name, ks[i].needs, "not on this CPU");
    } else {
      const double instr = static_cast<double>(ks[i].accumulators) * iterations / best[i];
      const double gflops = instr * ks[i].flops_per_instr / 1e9;
      const double ratio = fp32_zmm > 0 ? gflops * 1e9 / fp32_zmm : 0.0;
      std::printf("%-34s %-12s %12.2f %12.1f %12.2f\n", ks[i].name, ks[i].needs, instr / 1e9, gflops, ratio);
      row["g_instr_per_s"] = instr / 1e9;
      row["gflops"] = gflops;
      if (fp32_zmm > 0) row["vs_fp32_512"] = ratio;
    }
    j["kernels"].push_back(row);
  }
  std::printf("\nGFLOP/s count 2 per multiply-add over all lanes; 'vs fp32 512' is the FLOP rate against 512-bit fp32 FMA.\n");

  // The same comparison inside a 16x16 register tile (bench/cpu_arith_tiles.h), checked exactly
  // against the reference first.
#ifdef UNET_BENCH_X86
  if (has_avx512f()) {
    using namespace unet::bench;
    const TileOperands ops = make_tile_operands();
    const std::vector<float> want = reference_tile(ops);
    struct Tile { const char* name; bool usable; std::vector<float> (*run)(const TileOperands&, int64_t); };
    const Tile tiles[] = {{"fp32 FMA tile", true, tile_fp32}, {"bf16 VDPBF16PS tile", has_avx512bf16(), tile_bf16}};
    const int64_t repeats = std::max<int64_t>(1, iterations / 100);  // 2 * 16 * 16 * 128 FLOPs each
    double tile_best[2] = {1e300, 1e300};
    for (int i = 0; i < 2; ++i)
      if (tiles[i].usable && tiles[i].run(ops, 1) != want) {
        std::fprintf(stderr, "cpu_arith: the %s computed a wrong product\n", tiles[i].name);
        return 1;
      }
    for (int r = 0; r < rounds; ++r)
      for (int i = 0; i < 2; ++i)
        if (tiles[i].usable) tile_best[i] = std::min(tile_best[i], seconds_of([&] { (void)tiles[i].run(ops, repeats); }));
    const double flops = 2.0 * kTile * kTile * kTileK * static_cast<double>(repeats);
    std::printf("\n%-34s %12s %12s\n", "16x16 register tile, K = 128 in L1", "GFLOP/s", "vs fp32 tile");
    for (int i = 0; i < 2; ++i) {
      nlohmann::json row{{"tile", tiles[i].name}, {"supported", tiles[i].usable}};
      if (!tiles[i].usable) {
        std::printf("%-34s %12s\n", tiles[i].name, "not on this CPU");
      } else {
        const double gflops = flops / tile_best[i] / 1e9, ratio = tile_best[0] / tile_best[i];
        std::printf("%-34s %12.1f %12.2f\n", tiles[i].name, gflops, ratio);
        row["gflops"] = gflops;
        row["vs_fp32_tile"] = ratio;
      }
      j["tiles"].push_back(row);
    }
  }
#endif
  if (!json_path.empty()) std::ofstream(json_path) << j.dump(2) << "\n";
  return 0;
}
