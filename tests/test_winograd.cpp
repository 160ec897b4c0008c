// tests/test_winograd.cpp — the CPU Winograd engine (kernels/winograd3x3_cpu.h), both output
// tiles, F(2×2, 3×3) and F(4×4, 3×3), on random non-integer data: against a double loop with a
// derived tolerance, on every padding it is called with (0 valid, 1 same, 2 the data gradient's
// "full" convolution), at edge sizes (one output, one-row and one-column strips, odd sizes, 8-tile
// rows, tiles cut by the output's edge), with outputs poisoned beforehand; bits independent of the
// thread count. The weight gradient (both tiles) likewise against a double loop within its own
// derived bound (F(2×2, 3×3) also exactly on small integers), with the same bits at 1, 2 and 3
// threads and at every level. (test_conv2d.cpp checks F(2×2, 3×3) exactly on small integers through conv2d, in
// every engine mode; F(4×4, 3×3)'s ⅙ and 1/24 are not exact in float32.)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/winograd3x3_cpu.h"
#include "test_util.h"  // Catch2

using namespace unet;
using namespace unet::test;

namespace {

struct WinogradCase {
  int64_t n, c_in, h, w, c_out, pad;
  bool relu;
  int64_t h_out() const { return h + 2 * pad - 2; }
  int64_t w_out() const { return w + 2 * pad - 2; }
  std::string str() const {
    std::ostringstream s;
    s << "n " << n << ", " << c_in << "x" << h << "x" << w << " -> " << c_out << ", pad " << pad << (relu ? ", relu" : "");
    return s.str();
  }
};

// The definition, in double: y[b][o][i][j] = act(bias[o] + Σ w[o][c][u][v] · x[b][c][i+u-pad][j+v-pad]).
std::vector<double> naive(const WinogradCase& k, const std::vector<float>& x, const std::vector<float>& w,
                          const std::vector<float>& bias) {
  std::vector<double> y(static_cast<size_t>(k.n * k.c_out * k.h_out() * k.w_out()));
  for (int64_t b = 0; b < k.n; ++b)
    for (int64_t o = 0; o < k.c_out; ++o)
      for (int64_t i = 0; i < k.h_out(); ++i)
        for (int64_t j = 0; j < k.w_out(); ++j) {
          double s = bias[static_cast<size_t>(o)];
          for (int64_t c = 0; c < k.c_in; ++c)
            for (int64_t u = 0; u < 3; ++u)
              for (int64_t v = 0; v < 3; ++v) {
                const int64_t ih = i + u - k.pad, iw = j + v - k.pad;
                if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
                s += double(w[static_cast<size_t>(((o * k.c_in + c) * 3 + u) * 3 + v)]) *
                     x[static_cast<size_t>(((b * k.c_in + c) * k.h + ih) * k.w + iw)];
              }
          y[static_cast<size_t>(((b * k.c_out + o) * k.h_out() + i) * k.w_out() + j)] = k.relu ? std::max(s, 0.0) : s;
        }
  return y;
}

std::vector<float> run(const WinogradCase& k, const std::vector<float>& x, const std::vector<float>& w,
                       const std::vector<float>& bias) {
  std::vector<float> y(static_cast<size_t>(k.n * k.c_out * k.h_out() * k.w_out()), std::numeric_limits<float>::quiet_NaN());
  cpu::winograd3x3(k.n, k.c_in, k.h, k.w, k.c_out, k.pad, x.data(), w.data(), bias.data(), k.relu, y.data());
  return y;
}

const WinogradCase kCases[] = {
    {1, 1, 3, 3, 1, 0, false},    // a single output: one tile with one used position
    {2, 3, 4, 40, 7, 0, true},    // one tile row of 19 tiles: two 8-tile groups and a scalar tile
    {1, 5, 1, 1, 3, 2, false},    // a 1×1 input, "full" convolution: 3×3 outputs
    {1, 7, 1, 37, 9, 1, true},    // a one-row strip (same padding)
    {1, 9, 35, 2, 4, 1, false},   // a two-column strip
    {1, 24, 9, 17, 50, 0, true},  // 8 tiles per row ending in a one-column tile, odd rows
    {2, 40, 21, 33, 29, 1, false},// odd sizes, several tile blocks, output channels not a multiple of 6
    {1, 70, 30, 30, 13, 2, true}, // "full" convolution, many blocks
    {1, 300, 6, 6, 7, 1, false},  // a long reduction, output-channel chunks
    {2, 17, 31, 45, 20, 0, true}, // 29×43 outputs: 4×4 tiles cut to 1 row and 3 columns at the edges
};

// Restores the per-layer tile choice at scope exit.
struct RestoreTile {
  ~RestoreTile() { cpu::set_winograd3x3_tile(0); }
};

TEST_CASE("Winograd chooses 4x4 output tiles from 28x28 outputs and 16 output channels", "[conv2d][winograd]") {
  RestoreTile restore;
  cpu::set_winograd3x3_tile(0);
  // The CPU configuration's 16-channel Winograd passes (up0.conv1's forward at 134², down1.conv1's
  // data gradient at 156²) measured faster with F(4×4) once its transforms ran 16 tiles at a time.
  CHECK(cpu::winograd3x3_tile(134, 134, 16) == 4);
  CHECK(cpu::winograd3x3_tile(156, 156, 16) == 4);
  CHECK(cpu::winograd3x3_tile(28, 28, 32) == 4);
  CHECK(cpu::winograd3x3_tile(28, 28, 15) == 2);  // below the channel floor
  CHECK(cpu::winograd3x3_tile(27, 200, 64) == 2);  // a side below 28
  CHECK(cpu::winograd3x3_tile(200, 27, 64) == 2);
  cpu::set_winograd3x3_tile(2);
  CHECK(cpu::winograd3x3_tile(134, 134, 16) == 2);  // a forced tile wins
}

// The transforms' matrices (Lavin & Gray), as elementwise absolute values for the error bounds.
const double kB2[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
const double kG2[4][3] = {{1, 0, 0}, {.5, .5, .5}, {.5, -.5, .5}, {0, 0, 1}};
const double kA2[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
const double kB4[6][6] = {{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                          {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
const double kG4[6][3] = {{.25, 0, 0}, {-1. / 6, -1. / 6, -1. / 6}, {-1. / 6, 1. / 6, -1. / 6},
                          {1. / 24, 1. / 12, 1. / 6}, {1. / 24, -1. / 12, 1. / 6}, {0, 0, 1}};
const double kA4[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
// |Bᵀ[i][r]|, |G[i][u]|, |Aᵀ[a][i]| of F(m×m, 3×3).
double abs_bt(int m, int i, int r) { return std::fabs(m == 2 ? kB2[i][r] : kB4[i][r]); }
double abs_g(int m, int i, int u) { return std::fabs(m == 2 ? kG2[i][u] : kG4[i][u]); }
double abs_at(int m, int a, int i) { return std::fabs(m == 2 ? kA2[a][i] : kA4[a][i]); }

// A rounding-error bound for every output of F(m×m, 3×3), derived from the algorithm and computed
// from the data: with |X| the elementwise absolute value, an output's terms pass through
// U = G g Gᵀ (≤ 3 roundings each), V = Bᵀ d B (≤ 6), the product (1), the sum over C channels
// (a length-C reduction: random-walk growth √C) and Aᵀ M A (≤ 8), each rounding error at most
// eps times the magnitude its operands can reach, which is bounded elementwise by
//   S = |Aᵀ| (Σ_c (|G| |g_c| |Gᵀ|) ⊙ (|Bᵀ| |d_c| |B|)) |A|.
// So |y − y_exact| ≤ eps·(18 + √C)·S, times the safety factor 4 that reduction_rtol uses. S
// carries F(4×4, 3×3)'s growth (|Bᵀ| row sums up to 10, |Aᵀ| up to 19) where a plain dot-product
// bound would not.
std::vector<double> winograd_error_bound(const WinogradCase& k, int m, const std::vector<float>& x,
                                         const std::vector<float>& w) {
  const int n = m + 2;
  auto bt = [&](int i, int r) { return abs_bt(m, i, r); };
  auto g = [&](int i, int u) { return abs_g(m, i, u); };
  auto at = [&](int a, int i) { return abs_at(m, a, i); };
  const int64_t ho = k.h_out(), wo = k.w_out(), th = (ho + m - 1) / m, tw = (wo + m - 1) / m;
  // |U| for every (o, c): |G| |g| |Gᵀ|.
  std::vector<double> u(static_cast<size_t>(k.c_out * k.c_in * n * n), 0.0);
  for (int64_t o = 0; o < k.c_out; ++o)
    for (int64_t c = 0; c < k.c_in; ++c)
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
          double s = 0;
          for (int p = 0; p < 3; ++p)
            for (int q = 0; q < 3; ++q) s += g(i, p) * std::fabs(w[static_cast<size_t>(((o * k.c_in + c) * 3 + p) * 3 + q)]) * g(j, q);
          u[static_cast<size_t>(((o * k.c_in + c) * n + i) * n + j)] = s;
        }
  const double eps = std::numeric_limits<float>::epsilon();
  const double gamma = 4 * eps * (18 + std::sqrt(static_cast<double>(k.c_in)));
  std::vector<double> bound(static_cast<size_t>(k.n * k.c_out * ho * wo));
  std::vector<double> v(static_cast<size_t>(k.c_in * n * n));
  for (int64_t b = 0; b < k.n; ++b)
    for (int64_t ty = 0; ty < th; ++ty)
      for (int64_t tx = 0; tx < tw; ++tx) {
        for (int64_t c = 0; c < k.c_in; ++c)  // |V| = |Bᵀ| |d| |B| of the window (zeros outside)
          for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j) {
              double s = 0;
              for (int r = 0; r < n; ++r)
                for (int q = 0; q < n; ++q) {
                  const int64_t ih = m * ty + r - k.pad, iw = m * tx + q - k.pad;
                  if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
                  s += bt(i, r) * std::fabs(x[static_cast<size_t>(((b * k.c_in + c) * k.h + ih) * k.w + iw)]) * bt(j, q);
                }
              v[static_cast<size_t>((c * n + i) * n + j)] = s;
            }
        for (int64_t o = 0; o < k.c_out; ++o) {
          std::vector<double> mm(static_cast<size_t>(n * n), 0.0);
          for (int64_t c = 0; c < k.c_in; ++c)
            for (int xi = 0; xi < n * n; ++xi) mm[xi] += u[static_cast<size_t>((o * k.c_in + c) * n * n + xi)] * v[static_cast<size_t>(c * n * n + xi)];
          for (int a = 0; a < m && m * ty + a < ho; ++a)
            for (int bb = 0; bb < m && m * tx + bb < wo; ++bb) {
              double s = 0;
              for (int i = 0; i < n; ++i)
                for (int j = 0; j < n; ++j) s += at(a, i) * mm[static_cast<size_t>(i * n + j)] * at(bb, j);
              bound[static_cast<size_t>(((b * k.c_out + o) * ho + m * ty + a) * wo + m * tx + bb)] = gamma * s + 1e-30;
            }
        }
      }
  return bound;
}

}  // namespace

TEST_CASE("Winograd 3x3 engine matches a double loop on random data", "[conv2d][winograd]") {
  if (!cpu::winograd3x3_available()) {
    skip_test("this CPU has no AVX2 + FMA (or UNET_CPU_ISA=scalar): the Winograd engine does not run here");
    return;
  }
  RestoreTile restore;
  cpu::set_winograd3x3_tile(2);  // the tolerance below is F(2×2, 3×3)'s; the bound test covers both
  for (const WinogradCase& k : kCases) {
    INFO(k.str());
    const auto x = random_values<float>(k.n * k.c_in * k.h * k.w, 71, -1.0, 1.0);
    const auto w = random_values<float>(k.c_out * k.c_in * 9, 72, -1.0, 1.0);
    const auto bias = random_values<float>(k.c_out, 73, -1.0, 1.0);
    // Tolerance: y is a sum over 16·c_in transformed products (the output transform adds 9 of
    // the 16 positions' sums), and the transforms grow magnitudes by at most 4 (a V entry sums
    // 4 inputs, a U entry is at most 2.25× the largest weight, and each output adds ±9 M
    // values): the float32 error is that of a 16·c_in-term reduction of values up to 4× those
    // of the direct sum, i.e. 4× the conv tests' bound for that length.
    const int64_t terms = 16 * k.c_in;
    const double rtol = 4 * reduction_rtol(terms), atol = rtol * std::sqrt(static_cast<double>(terms));
    require_close(run(k, x, w, bias), naive(k, x, w, bias), atol, rtol, "winograd forward");
  }
}

TEST_CASE("Winograd with 4x4 and 2x2 output tiles stays within its derived rounding bound", "[conv2d][winograd]") {
  if (!cpu::winograd3x3_available()) {
    skip_test("this CPU has no AVX2 + FMA (or UNET_CPU_ISA=scalar): the Winograd engine does not run here");
    return;
  }
  RestoreTile restore;
  for (int m : {2, 4}) {
    cpu::set_winograd3x3_tile(m);
    double worst = 0;  // largest error / bound: the bound must hold, and it should not be vacuous
    for (const WinogradCase& k : kCases) {
      INFO("tile " << m << ", " << k.str());
      const auto x = random_values<float>(k.n * k.c_in * k.h * k.w, 91, -1.0, 1.0);
      const auto w = random_values<float>(k.c_out * k.c_in * 9, 92, -1.0, 1.0);
      const auto bias = random_values<float>(k.c_out, 93, -1.0, 1.0);
      const std::vector<float> got = run(k, x, w, bias);
      const std::vector<double> ref = naive(k, x, w, bias), bound = winograd_error_bound(k, m, x, w);
      for (size_t i = 0; i < got.size(); ++i) {
        const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
        INFO("output " << i << ": got " << got[i] << ", exact " << ref[i] << ", bound " << bound[i]);
        REQUIRE(err <= bound[i]);  // NaN fails too
        worst = std::max(worst, err / bound[i]);
      }
    }
    INFO("tile " << m << ": worst error / bound " << worst);
    CHECK(worst > 1e-4);  // rounding does show (a bound 10⁴× too loose would check nothing)
  }
}

// Every length of a tile row's last F(4×4) group (1 … 16 tiles, with a cut last tile): the input
// transform takes the windows 4 columns on by shifting the first ones a lane and reading the
// group's last two columns (cpu_simd.h shift_in), and the GEMMs write whole register tiles into
// M whose rows past c_out (7, 17: no multiple of 6 or 16) and columns past the group are dropped.
// Poisoned outputs (run: NaN), every padding, the derived bound.
TEST_CASE("Winograd F(4x4) covers every group length and partial output-channel panel", "[conv2d][winograd]") {
  if (!cpu::winograd3x3_available()) {
    skip_test("this CPU has no AVX2 + FMA (or UNET_CPU_ISA=scalar): the Winograd engine does not run here");
    return;
  }
  RestoreTile restore;
  cpu::set_winograd3x3_tile(4);
  for (int64_t tiles = 1; tiles <= 17; ++tiles)
    for (int64_t pad : {0, 1, 2}) {
      const int64_t w_out = 4 * tiles - (tiles % 4), h_out = 5 + tiles % 3;
      const WinogradCase k{1 + tiles % 2, 3 + tiles % 5, h_out + 2 - 2 * pad, w_out + 2 - 2 * pad, tiles % 2 ? 7 : 17, pad,
                           tiles % 3 == 0};
      if (k.h <= 0 || k.w <= 0) continue;
      INFO(k.str());
      const auto x = random_values<float>(k.n * k.c_in * k.h * k.w, 101 + tiles, -1.0, 1.0);
      const auto w = random_values<float>(k.c_out * k.c_in * 9, 102, -1.0, 1.0);
      const auto bias = random_values<float>(k.c_out, 103, -1.0, 1.0);
      const std::vector<float> got = run(k, x, w, bias);
      const std::vector<double> ref = naive(k, x, w, bias), bound = winograd_error_bound(k, 4, x, w);
      for (size_t i = 0; i < got.size(); ++i) {
        INFO("output " << i << ": got " << got[i] << ", exact " << ref[i] << ", bound " << bound[i]);
        REQUIRE(std::fabs(static_cast<double>(got[i]) - ref[i]) <= bound[i]);  // NaN (an unwritten output) fails too
      }
    }
}

TEST_CASE("Winograd 3x3 engine has the same bits for any thread count", "[conv2d][winograd]") {
  if (!cpu::winograd3x3_available()) {
    skip_test("this CPU has no AVX2 + FMA (or UNET_CPU_ISA=scalar): the Winograd engine does not run here");
    return;
  }
  // The thread count changes the output-channel chunks; each output's sums must not change.
  test::ThreadCountGuard restore_threads;
  RestoreTile restore_tile;
  for (int m : {2, 4})
  for (const WinogradCase& k : kCases) {
    cpu::set_winograd3x3_tile(m);
    INFO("tile " << m << ", " << k.str());
    const auto x = random_values<float>(k.n * k.c_in * k.h * k.w, 81, -1.0, 1.0);
    const auto w = random_values<float>(k.c_out * k.c_in * 9, 82, -1.0, 1.0);
    const auto bias = random_values<float>(k.c_out, 83, -1.0, 1.0);
    std::vector<std::vector<float>> results;
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      results.push_back(run(k, x, w, bias));
    }
    CHECK(results[0] == results[1]);
    CHECK(results[0] == results[2]);
  }
}

TEST_CASE("Winograd data gradient reads the weights flipped in place: the bits of the forward on a flipped copy",
          "[conv2d][winograd]") {
  if (!cpu::winograd3x3_available()) {
    skip_test("this CPU has no AVX2 + FMA (or UNET_CPU_ISA=scalar): the Winograd engine does not run here");
    return;
  }
  // winograd3x3_backward_data gathers w[o][c][2-u][2-v] inside the weight transform; the loads
  // feed the same arithmetic as the forward's on an explicit copy, so the bits must agree, for
  // both tiles, at every level, with output channels that leave a register tile partly empty.
  RestoreTile restore_tile;
  for (int m : {2, 4})
    for (const WinogradCase& k : kCases) {
      if (k.pad > 1) continue;  // the forward layers: valid and same padding
      cpu::set_winograd3x3_tile(m);
      INFO("tile " << m << ", forward " << k.str());
      const auto w = random_values<float>(k.c_out * k.c_in * 9, 141, -1.0, 1.0);
      const auto g = random_values<float>(k.n * k.c_out * k.h_out() * k.w_out(), 142, -1.0, 1.0);
      std::vector<float> wt(w.size());  // wt[c][o][u][v] = w[o][c][2-u][2-v]
      for (int64_t o = 0; o < k.c_out; ++o)
        for (int64_t c = 0; c < k.c_in; ++c)
          for (int64_t t = 0; t < 9; ++t)
            wt[static_cast<size_t>((c * k.c_out + o) * 9 + 8 - t)] = w[static_cast<size_t>((o * k.c_in + c) * 9 + t)];
      const size_t dx_size = static_cast<size_t>(k.n * k.c_in * k.h * k.w);
      for (cpu::CpuIsa isa : {cpu::CpuIsa::Avx2, cpu::CpuIsa::Avx512}) {
        if (!cpu::cpu_isa_supported(isa)) continue;
        cpu::CpuIsaScope level(isa);
        INFO("level " << cpu::cpu_isa_name(isa));
        std::vector<float> expected(dx_size, std::numeric_limits<float>::quiet_NaN()), got = expected;
        cpu::winograd3x3(k.n, k.c_out, k.h_out(), k.w_out(), k.c_in, 2 - k.pad, g.data(), wt.data(), nullptr, false,
                         expected.data());
        cpu::winograd3x3_backward_data(k.n, k.c_in, k.h, k.w, k.c_out, k.pad, g.data(), w.data(), got.data());
        CHECK(std::memcmp(expected.data(), got.data(), dx_size * sizeof(float)) == 0);
      }
    }
}

// ---- the weight gradient, F(2×2, 3×3) and F(4×4, 3×3) --------------------------------------------
namespace {

// The definition, in double: dw[o][c][u][v] = Σ_{b,i,j} g[b][o][i][j] · x[b][c][i+u-pad][j+v-pad].
std::vector<double> naive_weight_grad(const WinogradCase& k, const std::vector<float>& x, const std::vector<float>& g) {
  std::vector<double> dw(static_cast<size_t>(k.c_out * k.c_in * 9), 0.0);
  for (int64_t b = 0; b < k.n; ++b)
    for (int64_t o = 0; o < k.c_out; ++o)
      for (int64_t i = 0; i < k.h_out(); ++i)
        for (int64_t j = 0; j < k.w_out(); ++j) {
          const double gv = g[static_cast<size_t>(((b * k.c_out + o) * k.h_out() + i) * k.w_out() + j)];
          for (int64_t c = 0; c < k.c_in; ++c)
            for (int64_t u = 0; u < 3; ++u)
              for (int64_t v = 0; v < 3; ++v) {
                const int64_t ih = i + u - k.pad, iw = j + v - k.pad;
                if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
                dw[static_cast<size_t>(((o * k.c_in + c) * 3 + u) * 3 + v)] +=
                    gv * x[static_cast<size_t>(((b * k.c_in + c) * k.h + ih) * k.w + iw)];
              }
        }
  return dw;
}

// Restores the per-layer weight-gradient tile choice at scope exit.
struct RestoreGradTile {
  ~RestoreGradTile() { cpu::set_winograd3x3_weight_grad_tile(0); }
};

// With m×m output tiles (forced); dw poisoned with NaN beforehand: it must be overwritten.
std::vector<float> run_weight_grad(const WinogradCase& k, int m, const std::vector<float>& x,
                                   const std::vector<float>& g, int64_t slots = 8) {
  RestoreGradTile restore;
  cpu::set_winograd3x3_weight_grad_tile(m);
  std::vector<float> dw(static_cast<size_t>(k.c_out * k.c_in * 9), std::numeric_limits<float>::quiet_NaN());
  cpu::winograd3x3_weight_grad(k.n, k.c_in, k.h, k.w, k.c_out, k.pad, x.data(), g.data(), slots, dw.data());
  return dw;
}

// A rounding-error bound for every weight gradient of F(m×m, 3×3), derived as the forward's: a
// term passes through V = Bᵀ d B, Ŷ = A dY Aᵀ, the product (1), the sum over the T tiles of the
// batch (random-walk growth √T, plus the ≤ 8 slot additions) and Gᵀ dU G, each rounding at most
// eps times the magnitude its operands can reach, bounded elementwise by
//   S = |Gᵀ| (Σ_tiles (|A| |dY| |Aᵀ|) ⊙ (|Bᵀ| |d| |B|)) |G|,
// so |dw − dw_exact| ≤ 4·eps·(r + √T)·S (4: reduction_rtol's safety factor), r the roundings
// outside the sum: F(2×2) ≤ 6 + 2 + 1 + 8 + 4 = 21; F(4×4) ≤ 6 (Bᵀ: 3 per side) + 4 (A: 2 per
// side) + 1 + 8 + 12 (Gᵀ … G: 4 per side plus ⅙, 1/12, 1/24 not exact in float, 2 per side) = 31.
// S carries F(4×4)'s growth (|Bᵀ| row sums up to 10, |A| up to 15, |G| up to ½).
std::vector<double> weight_grad_error_bound(const WinogradCase& k, int m, const std::vector<float>& x,
                                            const std::vector<float>& g) {
  const int n = m + 2, np = n * n;
  const int64_t ho = k.h_out(), wo = k.w_out(), th = (ho + m - 1) / m, tw = (wo + m - 1) / m;
  std::vector<double> s(static_cast<size_t>(k.c_out * k.c_in * np), 0.0), yh(static_cast<size_t>(k.c_out * np)),
      v(static_cast<size_t>(k.c_in * np));
  for (int64_t b = 0; b < k.n; ++b)
    for (int64_t ty = 0; ty < th; ++ty)
      for (int64_t tx = 0; tx < tw; ++tx) {
        for (int64_t c = 0; c < k.c_in; ++c)
          for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j) {
              double sum = 0;
              for (int r = 0; r < n; ++r)
                for (int q = 0; q < n; ++q) {
                  const int64_t ih = m * ty + r - k.pad, iw = m * tx + q - k.pad;
                  if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
                  sum += abs_bt(m, i, r) * std::fabs(x[static_cast<size_t>(((b * k.c_in + c) * k.h + ih) * k.w + iw)]) *
                         abs_bt(m, j, q);
                }
              v[static_cast<size_t>(c * np + i * n + j)] = sum;
            }
        for (int64_t o = 0; o < k.c_out; ++o)
          for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j) {
              double sum = 0;
              for (int r = 0; r < m && m * ty + r < ho; ++r)
                for (int q = 0; q < m && m * tx + q < wo; ++q)
                  sum += abs_at(m, r, i) *
                         std::fabs(g[static_cast<size_t>(((b * k.c_out + o) * ho + m * ty + r) * wo + m * tx + q)]) *
                         abs_at(m, q, j);
              yh[static_cast<size_t>(o * np + i * n + j)] = sum;
            }
        for (int64_t o = 0; o < k.c_out; ++o)
          for (int64_t c = 0; c < k.c_in; ++c)
            for (int xi = 0; xi < np; ++xi)
              s[static_cast<size_t>((o * k.c_in + c) * np + xi)] +=
                  yh[static_cast<size_t>(o * np + xi)] * v[static_cast<size_t>(c * np + xi)];
      }
  const double eps = std::numeric_limits<float>::epsilon();
  const double gamma = 4 * eps * ((m == 2 ? 21 : 31) + std::sqrt(static_cast<double>(k.n * th * tw)));
  std::vector<double> bound(static_cast<size_t>(k.c_out * k.c_in * 9));
  for (int64_t pair = 0; pair < k.c_out * k.c_in; ++pair)
    for (int u = 0; u < 3; ++u)
      for (int w = 0; w < 3; ++w) {
        double sum = 0;
        for (int i = 0; i < n; ++i)
          for (int j = 0; j < n; ++j)
            sum += abs_g(m, i, u) * s[static_cast<size_t>(pair * np + i * n + j)] * abs_g(m, j, w);
        bound[static_cast<size_t>(pair * 9 + u * 3 + w)] = gamma * sum + 1e-30;
      }
  return bound;
}

// Edge sizes for the weight gradient: odd outputs (partial tiles), both paddings it is called
// with (0 and 1), one image and several, channel counts not multiples of 6, 8 or 16, tiny planes,
// units spanning several tile rows or part of one, more tiles than one unit holds, more channels
// than one chunk.
const WinogradCase kGradCases[] = {
    {1, 1, 3, 3, 1, 0, false},     // one output
    {1, 1, 3, 3, 1, 1, false},     // 3×3 outputs from a 3×3 image
    {2, 3, 4, 40, 7, 0, false},    // one tile row of 19 tiles
    {1, 5, 1, 1, 3, 1, false},     // a 1×1 image, same padding: one partial tile
    {1, 7, 1, 37, 9, 1, false},    // a one-row strip
    {1, 9, 35, 2, 4, 1, false},    // a two-column strip
    {3, 24, 9, 17, 50, 0, false},  // odd rows and columns, 3 images
    {2, 40, 21, 33, 29, 1, false}, // several units per image
    {1, 17, 60, 61, 20, 0, false}, // many tiles (several units, several slots)
    {2, 150, 6, 7, 130, 1, false}, // two chunks of input and of output channels
    {1, 130, 4, 240, 100, 0, false},  // tile rows wider than a unit: units are parts of one row
    {1, 64, 3, 301, 40, 1, false},    // the same with partial tiles at the right and bottom edges
    // F(4×4): outputs at every remainder mod 4 in both directions, both paddings, batch 2,
    // channel counts not multiples of 16
    {2, 33, 7, 8, 35, 0, false},   // 5×6 outputs: remainders 1 and 2
    {1, 17, 9, 10, 19, 1, false},  // 9×10: 1 and 2, same padding
    {2, 20, 13, 14, 18, 1, false}, // 13×14: 1 and 2 (rows) / 3×4 tiles
    {1, 34, 14, 13, 33, 0, false}, // 12×11: 0 and 3
    {2, 19, 11, 6, 37, 1, false},  // 11×6: 3 and 2
    {1, 48, 30, 31, 40, 0, false}, // 28×29: 0 and 1, F(4×4)'s default size
    {2, 36, 31, 30, 50, 1, false}, // 31×30: 3 and 2, several units and slots
};

}  // namespace

TEST_CASE("Winograd weight gradient stays within its derived rounding bound on random data", "[conv2d][winograd]") {
  if (!cpu::winograd3x3_available()) {
    skip_test("this CPU has no AVX2 + FMA (or UNET_CPU_ISA=scalar): the Winograd engine does not run here");
    return;
  }
  for (int m : {2, 4}) {
    double worst = 0;  // largest error / bound: the bound must hold, and it should not be vacuous
    for (const WinogradCase& k : kGradCases) {
      INFO("F(" << m << "x" << m << "), " << k.str());
      const auto x = random_values<float>(k.n * k.c_in * k.h * k.w, 111, -1.0, 1.0);
      const auto g = random_values<float>(k.n * k.c_out * k.h_out() * k.w_out(), 112, -1.0, 1.0);
      const std::vector<float> got = run_weight_grad(k, m, x, g);
      const std::vector<double> ref = naive_weight_grad(k, x, g), bound = weight_grad_error_bound(k, m, x, g);
      for (size_t i = 0; i < got.size(); ++i) {
        const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
        INFO("weight " << i << ": got " << got[i] << ", exact " << ref[i] << ", bound " << bound[i]);
        REQUIRE(err <= bound[i]);  // NaN (not overwritten) fails too
        worst = std::max(worst, err / bound[i]);
      }
    }
    INFO("F(" << m << "x" << m << "): worst error / bound " << worst);
    CHECK(worst > 1e-3);  // rounding does show (a bound 10³× too loose would check little)
  }
}

TEST_CASE("Winograd weight gradient chooses 4x4 tiles from 28x28 outputs, and a forced tile wins", "[conv2d][winograd]") {
  RestoreGradTile restore;
  cpu::set_winograd3x3_weight_grad_tile(0);
  CHECK(cpu::winograd3x3_weight_grad_tile(28, 28) == 4);
  CHECK(cpu::winograd3x3_weight_grad_tile(152, 152) == 4);
  CHECK(cpu::winograd3x3_weight_grad_tile(27, 200) == 2);
  CHECK(cpu::winograd3x3_weight_grad_tile(200, 27) == 2);
  cpu::set_winograd3x3_weight_grad_tile(2);
  CHECK(cpu::winograd3x3_weight_grad_tile(152, 152) == 2);
  cpu::set_winograd3x3_weight_grad_tile(4);
  CHECK(cpu::winograd3x3_weight_grad_tile(12, 12) == 4);
  CHECK_THROWS_AS(cpu::set_winograd3x3_weight_grad_tile(3), ValueError);
}

TEST_CASE("Winograd weight gradient takes the layers where it measured faster", "[conv2d][winograd]") {
  if (!cpu::winograd3x3_available()) {
    CHECK_FALSE(cpu::winograd3x3_weight_grad_used(64, 64, 72, 72));
    return;
  }
  RestoreGradTile restore;
  struct RestoreMode {
    ~RestoreMode() { cpu::set_winograd3x3_weight_grad(cpu::WinogradWeightGrad::Auto); }
  } restore_mode;
  cpu::set_winograd3x3_weight_grad_tile(0);
  cpu::set_winograd3x3_weight_grad(cpu::WinogradWeightGrad::Auto);
  CHECK(cpu::winograd3x3_weight_grad_used(32, 32, 12, 12));   // 32 channels: any size (F(2×2) here)
  CHECK(cpu::winograd3x3_weight_grad_used(256, 64, 568, 568));
  CHECK(cpu::winograd3x3_weight_grad_used(16, 16, 28, 28));   // 16 channels: on F(4×4) tiles only
  CHECK(cpu::winograd3x3_weight_grad_used(16, 32, 154, 154));
  CHECK_FALSE(cpu::winograd3x3_weight_grad_used(16, 16, 27, 312));
  CHECK_FALSE(cpu::winograd3x3_weight_grad_used(32, 16, 134, 26));
  CHECK_FALSE(cpu::winograd3x3_weight_grad_used(1, 16, 314, 314));  // the first layer stays on the patch GEMM
  CHECK_FALSE(cpu::winograd3x3_weight_grad_used(15, 64, 100, 100));
  cpu::set_winograd3x3_weight_grad_tile(2);  // a forced F(2×2) keeps 16 channels off it
  CHECK_FALSE(cpu::winograd3x3_weight_grad_used(16, 16, 152, 152));
  cpu::set_winograd3x3_weight_grad(cpu::WinogradWeightGrad::On);
  CHECK(cpu::winograd3x3_weight_grad_used(1, 16, 314, 314));
  cpu::set_winograd3x3_weight_grad(cpu::WinogradWeightGrad::Off);
  CHECK_FALSE(cpu::winograd3x3_weight_grad_used(64, 64, 72, 72));
}

TEST_CASE("Winograd weight gradient is exact on small integers", "[conv2d][winograd]") {
  if (!cpu::winograd3x3_available()) {
    skip_test("this CPU has no AVX2 + FMA (or UNET_CPU_ISA=scalar): the Winograd engine does not run here");
    return;
  }
  // Entries 0, ±1, ±½ and integer products far below 2^24: every step is exact in float32.
  for (const WinogradCase& k : kGradCases) {
    INFO(k.str());
    auto ints = [](int64_t n, uint64_t seed) {
      std::vector<float> v = random_values<float>(n, seed, -3.5, 3.5);
      for (float& f : v) f = std::round(f);
      return v;
    };
    const auto x = ints(k.n * k.c_in * k.h * k.w, 121), g = ints(k.n * k.c_out * k.h_out() * k.w_out(), 122);
    const std::vector<float> got = run_weight_grad(k, 2, x, g);  // F(4×4)'s ⅙ and 1/24 are not exact
    const std::vector<double> ref = naive_weight_grad(k, x, g);
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("weight " << i);
      REQUIRE(static_cast<double>(got[i]) == ref[i]);
    }
  }
}

TEST_CASE("Winograd weight gradient has the same bits for any thread count and at every level", "[conv2d][winograd]") {
  if (!cpu::winograd3x3_available()) {
    skip_test("this CPU has no AVX2 + FMA (or UNET_CPU_ISA=scalar): the Winograd engine does not run here");
    return;
  }
  test::ThreadCountGuard restore_threads;
  for (const WinogradCase& k : kGradCases) {
    INFO(k.str());
    const auto x = random_values<float>(k.n * k.c_in * k.h * k.w, 131, -1.0, 1.0);
    const auto g = random_values<float>(k.n * k.c_out * k.h_out() * k.w_out(), 132, -1.0, 1.0);
    for (int m : {2, 4}) {
      INFO("F(" << m << "x" << m << ")");
      std::vector<std::vector<float>> results;
      for (cpu::CpuIsa isa : {cpu::CpuIsa::Avx2, cpu::CpuIsa::Avx512}) {
        if (!cpu::cpu_isa_supported(isa)) continue;  // (AVX-512 against AVX2 where the CPU has both)
        cpu::CpuIsaScope level(isa);
        for (int threads : {1, 2, 3}) {
          set_num_threads(threads);
          results.push_back(run_weight_grad(k, m, x, g));
        }
      }
      for (size_t i = 1; i < results.size(); ++i) {
        INFO("run " << i);
        CHECK(std::memcmp(results[0].data(), results[i].data(), results[0].size() * sizeof(float)) == 0);
      }
    }
  }
}
