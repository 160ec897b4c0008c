// tests/test_cpu_isa.cpp — the CPU instruction-set levels (kernels/cpu_dispatch.h,
// kernels/cpu_simd.h): level names and their refusals; forcing a level with set_cpu_isa /
// CpuIsaScope and with UNET_CPU_ISA (a bad value or a level the CPU lacks is a ValueError saying
// what is allowed); and the SIMD convolution engines (direct 3×3, Winograd, patch GEMM, the
// up-convolution) at every level this CPU has — against the definition in double within each
// engine's derived tolerance, and AVX-512 against AVX2 bit for bit, since the levels keep every
// output's summation order. A level this CPU lacks is reported by CTest as skipped, not passed.
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "conv_reference.h"
#include "core/error.h"
#include "kernels/conv2d.h"
#include "kernels/conv3x3_direct_cpu.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/maxpool2d.h"
#include "kernels/patch_gemm_cpu.h"
#include "kernels/upconv2d.h"
#include "kernels/winograd3x3_cpu.h"
#include "test_util.h"

using namespace unet;
using namespace unet::test;
using Catch::Contains;

// The expression throws a ValueError whose message matches.
#define CHECK_VALUE_ERROR(expr, matcher) \
  do {                                   \
    CHECK_THROWS_AS(expr, ValueError);   \
    CHECK_THROWS_WITH(expr, matcher);    \
  } while (0)
using cpu::CpuIsa;

namespace {

constexpr CpuIsa kLevels[] = {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512};

// Restores UNET_CPU_ISA and forgets any forced level at scope exit.
struct RestoreCpuIsa {
  std::optional<std::string> saved;
  RestoreCpuIsa() {
    if (const char* v = std::getenv("UNET_CPU_ISA")) saved = v;
  }
  ~RestoreCpuIsa() {
    if (saved) setenv("UNET_CPU_ISA", saved->c_str(), 1);
    else unsetenv("UNET_CPU_ISA");
    cpu::reset_cpu_isa();
  }
};

// Runs the test body only where the CPU has `isa`; says clearly otherwise.
bool require_level(CpuIsa isa) {
  if (cpu::cpu_isa_supported(isa)) return true;
  skip_test(std::string("this CPU has no ") + cpu::cpu_isa_name(isa) + " (it runs up to " +
            cpu::cpu_isa_name(cpu::cpu_isa_detected()) + "): the " + cpu::cpu_isa_name(isa) + " engines were not tested");
  return false;
}

}  // namespace

TEST_CASE("CPU ISA level names parse and unknown names are refused with the allowed list", "[cpu_isa]") {
  for (CpuIsa isa : kLevels) CHECK(cpu::parse_cpu_isa(cpu::cpu_isa_name(isa)) == isa);
  CHECK(cpu::cpu_isa_float_lanes(CpuIsa::Scalar) == 1);
  CHECK(cpu::cpu_isa_float_lanes(CpuIsa::Avx2) == 8);
  CHECK(cpu::cpu_isa_float_lanes(CpuIsa::Avx512) == 16);
  for (const char* bad : {"avx512f", "AVX2", "", "sse4", "avx2 "})
    CHECK_VALUE_ERROR(cpu::parse_cpu_isa(bad), Contains("use scalar, avx2 or avx512"));
}

TEST_CASE("set_cpu_isa and CpuIsaScope force each level this CPU has and refuse the others", "[cpu_isa]") {
  RestoreCpuIsa restore;
  unsetenv("UNET_CPU_ISA");
  cpu::reset_cpu_isa();
  const CpuIsa detected = cpu::cpu_isa_detected();
  CHECK(cpu::cpu_isa() == detected);
  for (CpuIsa isa : kLevels) {
    INFO(cpu::cpu_isa_name(isa));
    if (!cpu::cpu_isa_supported(isa)) {
      CHECK(static_cast<int>(isa) > static_cast<int>(detected));
      CHECK_VALUE_ERROR(cpu::set_cpu_isa(isa), Contains("runs at most"));
      CHECK(cpu::cpu_isa() == detected);  // a refused level changes nothing
      continue;
    }
    {
      cpu::CpuIsaScope scope(isa);
      CHECK(cpu::cpu_isa() == isa);
      // The SIMD engines run from avx2 up; at scalar every convolution takes the portable path.
      CHECK(cpu::winograd3x3_available() == (isa != CpuIsa::Scalar));
      CHECK(cpu::patch_gemm_available() == (isa != CpuIsa::Scalar));
      CHECK(cpu::conv3x3_direct_available() == (isa != CpuIsa::Scalar));
      {
        cpu::CpuIsaScope inner(CpuIsa::Scalar);
        CHECK(cpu::cpu_isa() == CpuIsa::Scalar);
      }
      CHECK(cpu::cpu_isa() == isa);  // the inner scope restored the outer level
    }
    CHECK(cpu::cpu_isa() == detected);
  }
}

TEST_CASE("UNET_CPU_ISA chooses the level and a bad value is an error naming what is allowed", "[cpu_isa]") {
  RestoreCpuIsa restore;
  for (CpuIsa isa : kLevels) {
    INFO(cpu::cpu_isa_name(isa));
    setenv("UNET_CPU_ISA", cpu::cpu_isa_name(isa), 1);
    cpu::reset_cpu_isa();
    if (cpu::cpu_isa_supported(isa))
      CHECK(cpu::cpu_isa() == isa);
    else
      CHECK_VALUE_ERROR(cpu::cpu_isa(), Contains("UNET_CPU_ISA asks for") && Contains("runs at most"));
  }
  setenv("UNET_CPU_ISA", "avx3", 1);
  cpu::reset_cpu_isa();
  CHECK_VALUE_ERROR(cpu::cpu_isa(), Contains("'avx3'") && Contains("use scalar, avx2 or avx512"));
  CHECK_THROWS_AS(cpu::cpu_isa(), ValueError);  // still refused on the next call, not silently defaulted
  cpu::set_cpu_isa(CpuIsa::Scalar);             // an explicit level wins over the environment
  CHECK(cpu::cpu_isa() == CpuIsa::Scalar);
  setenv("UNET_CPU_ISA", "", 1);  // empty: the detected level
  cpu::reset_cpu_isa();
  CHECK(cpu::cpu_isa() == cpu::cpu_isa_detected());
}

namespace {

struct EngineCase {
  int64_t n, c_in, h, w, c_out, k;
  Padding padding;
  bool relu;
  Conv2dParams params() const { return conv2d_params(n, c_in, h, w, c_out, k, padding, relu); }
  std::string str() const {
    return "N" + std::to_string(n) + " " + std::to_string(c_in) + "x" + std::to_string(h) + "x" + std::to_string(w) +
           " -> " + std::to_string(c_out) + " k" + std::to_string(k) + (padding == Padding::Same ? " same" : " valid") +
           (relu ? " relu" : "");
  }
};

// Shapes against the engines' blocking on both levels: output channels not a multiple of the
// register tile's rows (6, 16) and above the patch GEMM's 192-row chunk, widths below, at and
// above the direct kernel's pixel blocks (24, 48) and the 16-wide panels, odd output sizes (one-
// column Winograd tiles), several 256-tap slices, batch 2, both paddings, k = 5; for the AVX-512
// weight gradient of valid 3×3 layers (2-channel register blocks, 4 pixels a step) input channels
// of both remainders modulo 2, 1 and 16 channels, output rows of every length modulo 4.
const EngineCase kEngineCases[] = {
    {2, 3, 19, 53, 23, 3, Padding::Valid, true},   // direct (3·23 ≤ 256): 51 columns = 2 AVX2 / 1 AVX-512 block + tail
    {1, 8, 12, 50, 16, 3, Padding::Same, false},   // direct at 8→16 (128 channel pairs: its limit beside Winograd), same padding
    {1, 16, 12, 50, 16, 3, Padding::Same, false},  // 16→16: Winograd since 2026-12-03 (was direct), same padding
    {2, 24, 17, 29, 40, 3, Padding::Valid, true},  // Winograd: odd output, several tile blocks
    {1, 40, 9, 70, 33, 3, Padding::Same, false},   // Winograd, same padding, 33 rows (not a multiple of 6 or 16)
    {1, 70, 6, 6, 19, 3, Padding::Valid, false},   // a long reduction over few tiles
    {1, 8, 12, 13, 200, 5, Padding::Same, true},   // patch GEMM: 200 rows > 192, k = 5
    {2, 33, 5, 40, 17, 3, Padding::Same, false},   // 297 taps: two 256-tap slices in the weight gradient
    {2, 5, 40, 23, 18, 3, Padding::Valid, false},  // AVX-512 weight gradient: 2-channel groups + a 1-channel one, slices across images
    {1, 1, 21, 30, 16, 3, Padding::Valid, false},  // 1 input channel (the first layer), rows of 28 = 7 steps of 4
    {2, 16, 9, 28, 20, 3, Padding::Valid, true},   // 16 channels: 8 groups, 20 rows (a partial panel), rows of 26
};

// Which engines conv2d may take: the default choice, Winograd F(2×2, 3×3) for every 3×3, the
// patch GEMM for all; for the bit comparison also Winograd F(4×4, 3×3) for every 3×3.
// The weight gradient follows: per layer by default, Winograd's for every 3×3 in the Winograd modes,
// with the same output tile (F(4×4) there too in the bit comparison's F(4×4) mode).
struct EngineMode {
  const char* name;
  bool direct, winograd;
  int tile = 0;  // Winograd's output tile; 0: chosen per layer
  void apply() const {
    cpu::set_conv3x3_direct_enabled(direct);
    cpu::set_winograd3x3_enabled(winograd);
    cpu::set_winograd3x3_tile(tile);
    cpu::set_winograd3x3_weight_grad_tile(tile);
    cpu::set_winograd3x3_weight_grad(direct ? cpu::WinogradWeightGrad::Auto : cpu::WinogradWeightGrad::On);
  }
};
const EngineMode kModes[] = {{"default engines", true, true}, {"Winograd F(2x2) for every 3x3", false, true, 2},
                             {"patch GEMM for every layer", false, false}};
const EngineMode kBitModes[] = {{"default engines", true, true}, {"Winograd F(2x2) for every 3x3", false, true, 2},
                                {"Winograd F(4x4) for every 3x3", false, true, 4}, {"patch GEMM for every layer", false, false}};
struct RestoreEngines {
  ~RestoreEngines() { EngineMode{"", true, true}.apply(); }
};

struct Inputs {
  std::vector<float> x, w, b, g;
};
Inputs make_inputs(const EngineCase& c, uint64_t seed) {
  const Conv2dParams p = c.params();
  return {random_values<float>(p.n * p.c_in * p.h * p.w, seed, -1.0, 1.0),
          random_values<float>(p.c_out * p.c_in * p.k * p.k, seed + 1, -1.0, 1.0),
          random_values<float>(p.c_out, seed + 2, -1.0, 1.0),
          random_values<float>(p.n * p.c_out * p.h_out * p.w_out, seed + 3, -1.0, 1.0)};
}

struct Outputs {
  std::vector<float> y, dx, dw;
};
// Forward, data and weight gradient at the level in use, into outputs poisoned with NaN.
Outputs run_conv(const EngineCase& c, const Inputs& in) {
  const Conv2dParams p = c.params();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Outputs out{std::vector<float>(in.g.size(), nan), std::vector<float>(in.x.size(), nan),
              std::vector<float>(in.w.size(), nan)};
  cpu::conv2d_forward<float>(p, in.x.data(), in.w.data(), in.b.data(), out.y.data());
  cpu::conv2d_backward_data<float>(p, in.g.data(), in.w.data(), out.dx.data());
  cpu::conv2d_backward_weight<float>(p, in.x.data(), in.g.data(), out.dw.data());
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Whether conv2d runs this (c_in → c_out) 3×3 product on Winograd F(2×2, 3×3) in this mode (the
// data gradient is the product c_out → c_in); conv2d_cpu.cpp's rule: direct up to 256 channel
// pairs. The cases are too small for the default's F(4×4, 3×3) (tested in test_winograd.cpp).
bool on_winograd(const EngineMode& m, int64_t k, int64_t c_in, int64_t c_out) {
  return k == 3 && m.winograd && !(m.direct && c_in * c_out <= 256);
}

// Tolerance of a product with reduction length `terms`: a plain dot product (direct, patch GEMM)
// has conv_atol / reduction_rtol; on Winograd an output sums 16·C transformed products whose
// magnitudes the transforms grow by at most 4 (derivation in tests/test_winograd.cpp), i.e. 4×
// the bound of a 16·C-term sum, C the channels summed.
void check_against_reference(const std::vector<float>& got, const std::vector<double>& ref, bool winograd,
                             int64_t channels, int64_t terms, const std::string& what) {
  if (winograd) {
    const double rtol = 4 * reduction_rtol(16 * channels);
    require_close(got, ref, rtol * std::sqrt(16.0 * static_cast<double>(channels)), rtol, what + " (Winograd bound)");
  } else {
    require_close(got, ref, conv_atol(terms), reduction_rtol(terms), what);
  }
}

void check_level_against_reference(CpuIsa isa) {
  RestoreEngines restore;
  cpu::CpuIsaScope level(isa);
  for (const EngineMode& mode : kModes) {
    mode.apply();
    for (const EngineCase& c : kEngineCases) {
      INFO(cpu::cpu_isa_name(isa) << ", " << mode.name << ": " << c.str());
      const Conv2dParams p = c.params();
      // The Winograd tolerance below is F(2×2, 3×3)'s: the cases stay below F(4×4, 3×3)'s sizes.
      REQUIRE(cpu::winograd3x3_tile(p.h_out, p.w_out, p.c_out) == 2);
      REQUIRE(cpu::winograd3x3_tile(p.h, p.w, p.c_in) == 2);
      REQUIRE(cpu::winograd3x3_weight_grad_tile(p.h_out, p.w_out) == 2);
      const Inputs in = make_inputs(c, 101);
      const Outputs got = run_conv(c, in);
      check_against_reference(got.y, naive_conv(p, to_double(in.x), to_double(in.w), to_double(in.b)),
                              on_winograd(mode, c.k, c.c_in, c.c_out), c.c_in, c.c_in * c.k * c.k, "forward");
      Conv2dParams linear = p;
      linear.relu = false;  // the raw gradient launchers are those of the linear product
      std::vector<double> dx, dw;
      naive_conv_gradients(linear, to_double(in.x), to_double(in.w), to_double(in.g), dx, dw);
      check_against_reference(got.dx, dx, on_winograd(mode, c.k, c.c_out, c.c_in), c.c_out, c.c_out * c.k * c.k,
                              "data gradient");
      // On Winograd a weight sums 16·T transformed products over the T tiles (the same growth).
      const int64_t tiles = p.n * ((p.h_out + 1) / 2) * ((p.w_out + 1) / 2);
      const bool winograd_dw = c.k == 3 && cpu::winograd3x3_weight_grad_used(p.c_in, p.c_out, p.h_out, p.w_out);
      check_against_reference(got.dw, dw, winograd_dw, tiles, p.n * p.h_out * p.w_out, "weight gradient");
    }
  }
}

}  // namespace

TEST_CASE("CPU convolution engines at the scalar level match the definition in double", "[cpu_isa][conv2d]") {
  check_level_against_reference(CpuIsa::Scalar);
}

TEST_CASE("CPU convolution engines at the AVX2 level match the definition in double", "[cpu_isa][conv2d]") {
  if (!require_level(CpuIsa::Avx2)) return;
  check_level_against_reference(CpuIsa::Avx2);
}

TEST_CASE("CPU convolution engines at the AVX-512 level match the definition in double", "[cpu_isa][conv2d]") {
  if (!require_level(CpuIsa::Avx512)) return;
  check_level_against_reference(CpuIsa::Avx512);
}

TEST_CASE("CPU convolution and up-convolution engines give the same bits at AVX-512 as at AVX2",
          "[cpu_isa][conv2d][upconv2d]") {
  if (!require_level(CpuIsa::Avx512)) return;
  RestoreEngines restore;
  for (const EngineMode& mode : kBitModes) {
    mode.apply();
    for (const EngineCase& c : kEngineCases) {
      INFO(mode.name << ": " << c.str());
      const Inputs in = make_inputs(c, 202);
      Outputs at[2];
      for (int i = 0; i < 2; ++i) {
        cpu::CpuIsaScope level(i == 0 ? CpuIsa::Avx2 : CpuIsa::Avx512);
        at[i] = run_conv(c, in);
      }
      CHECK(same_bits(at[0].y, at[1].y));
      CHECK(same_bits(at[0].dx, at[1].dx));
      CHECK(same_bits(at[0].dw, at[1].dw));
    }
  }
  // Up-convolutions (1×1 products on the patch GEMM): 17 and 40 output channels (68 and 160 rows).
  for (const Upconv2dParams& p : {Upconv2dParams{2, 9, 7, 11, 17}, Upconv2dParams{1, 64, 13, 6, 40}}) {
    INFO("upconv " << p.c_in << " -> " << p.c_out << " at " << p.h << "x" << p.w);
    const auto x = random_values<float>(p.n * p.c_in * p.h * p.w, 301), w = random_values<float>(p.c_in * p.c_out * 4, 302);
    const auto b = random_values<float>(p.c_out, 303), g = random_values<float>(p.n * p.c_out * 4 * p.h * p.w, 304);
    std::vector<float> y[2], dx[2], dw[2];
    for (int i = 0; i < 2; ++i) {
      cpu::CpuIsaScope level(i == 0 ? CpuIsa::Avx2 : CpuIsa::Avx512);
      y[i].assign(g.size(), std::nanf("")), dx[i].assign(x.size(), std::nanf("")), dw[i].assign(w.size(), std::nanf(""));
      cpu::upconv2d_forward<float>(p, x.data(), w.data(), b.data(), y[i].data());
      cpu::upconv2d_backward_data<float>(p, g.data(), w.data(), dx[i].data());
      cpu::upconv2d_backward_weight<float>(p, x.data(), g.data(), dw[i].data());
    }
    CHECK(same_bits(y[0], y[1]));
    CHECK(same_bits(dx[0], dx[1]));
    CHECK(same_bits(dw[0], dw[1]));
  }
}
