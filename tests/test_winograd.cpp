// tests/test_winograd.cpp — the CPU Winograd F(2×2, 3×3) engine (kernels/winograd3x3_cpu.h) on
// random non-integer data: against a double loop with a derived tolerance, on every padding it is
// called with (0 valid, 1 same, 2 the data gradient's "full" convolution), at edge sizes (one
// output, one-row and one-column strips, odd sizes, 8-tile rows), with outputs poisoned
// beforehand; bits independent of the thread count. (test_conv2d.cpp checks it exactly on small
// integers through conv2d, in every engine mode.)
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/parallel.h"
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
};

}  // namespace

TEST_CASE("Winograd 3x3 engine matches a double loop on random data", "[conv2d][winograd]") {
  if (!cpu::winograd3x3_available()) {
    skip_test("this CPU has no AVX2 + FMA (or UNET_CPU_ISA=scalar): the Winograd engine does not run here");
    return;
  }
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

TEST_CASE("Winograd 3x3 engine has the same bits for any thread count", "[conv2d][winograd]") {
  if (!cpu::winograd3x3_available()) {
    skip_test("this CPU has no AVX2 + FMA (or UNET_CPU_ISA=scalar): the Winograd engine does not run here");
    return;
  }
  // The thread count changes the output-channel chunks; each output's sums must not change.
  test::ThreadCountGuard restore_threads;
  for (const WinogradCase& k : kCases) {
    INFO(k.str());
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
