// tests/test_tensor_core.cpp — the warp-level matrix instructions of kernels/tensor_core.cuh:
// the TF32 and BF16 roundings bit for bit (ties, NaN, infinities, subnormals), the mma.sync
// fragment layouts per lane, ldmatrix with and without .trans, and cp.async with its groups. In
// the simulator build they check the simulator (kernels/sim/tensor_core.cpp) against a second,
// independent statement of the PTX ISA (tests/kernels/tensor_core_probe.cu); in the GPU build
// the same tests check that statement against the hardware. The negative tests (a missing wait,
// an unrounded TF32 operand) only mean something in the simulator: a GPU gives no guarantee.
#include <bit>
#include <cmath>
#include <cstring>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/precision.h"
#include "test_util.h"
#include "tests/kernels/tensor_core_probe.h"

using namespace unet;
using namespace unet::test;

namespace {

struct RoundingCase {
  uint32_t in;
  uint32_t tf32;   // expected bits; 0xFFFFFFFF: "a NaN" (PTX does not fix NaN payloads)
  uint32_t bf16;   // expected 16 bits in the low half; 0xFFFFFFFF: a NaN
  const char* why;
};
constexpr uint32_t kNaN = 0xFFFFFFFFu;

// Expected values worked out by hand from the formats (TF32: 10 stored mantissa bits, ulp at 1 is
// 2^-10 = bit 13; BF16: 7 bits, ulp at 1 is bit 16), not from the code under test.
const RoundingCase kRounding[] = {
    {0x3F800000u, 0x3F800000u, 0x3F80u, "1 is exact"},
    {0x80000000u, 0x80000000u, 0x8000u, "-0 keeps its sign"},
    {0x3F801000u, 0x3F802000u, 0x3F80u, "1 + 2^-11: a TF32 tie, away from zero (even would stay)"},
    {0xBF801000u, 0xBF802000u, 0xBF80u, "-(1 + 2^-11): a TF32 tie, away from zero"},
    {0x3F800FFFu, 0x3F800000u, 0x3F80u, "just below the TF32 tie"},
    {0x3F801001u, 0x3F802000u, 0x3F80u, "just above the TF32 tie"},
    {0x3F808000u, 0x3F808000u, 0x3F80u, "1 + 2^-8: a BF16 tie to the even 1"},
    {0x3F818000u, 0x3F818000u, 0x3F82u, "1 + 3·2^-8: a BF16 tie from an odd value, up to even"},
    {0xBF818000u, 0xBF818000u, 0xBF82u, "negative BF16 tie from an odd value"},
    {0x3F808001u, 0x3F808000u, 0x3F81u, "just above the BF16 tie"},
    {0x7F800000u, 0x7F800000u, 0x7F80u, "+Inf"},
    {0xFF800000u, 0xFF800000u, 0xFF80u, "-Inf"},
    {0x7FC00000u, kNaN, kNaN, "quiet NaN"},
    {0x7F800001u, kNaN, kNaN, "NaN whose payload is only in bits that rounding drops: not Inf"},
    {0xFFFFFFFFu, kNaN, kNaN, "negative NaN with every payload bit"},
    {0x7F7FFFFFu, 0x7F800000u, 0x7F80u, "the largest float rounds past the largest TF32/BF16: Inf"},
    {0x7F7FEFFFu, 0x7F7FE000u, 0x7F80u, "just below the TF32 overflow tie stays finite"},
    {0x00000001u, 0x00000000u, 0x0000u, "the smallest subnormal rounds to 0"},
    {0x00001000u, 0x00002000u, 0x0000u, "subnormal TF32 tie: away from zero"},
    {0x00008000u, 0x00008000u, 0x0000u, "subnormal BF16 tie to even 0"},
    {0x00018000u, 0x00018000u, 0x0002u, "subnormal BF16 tie from odd: up"},
    {0x80001000u, 0x80002000u, 0x8000u, "negative subnormal TF32 tie"},
    {0x007FF000u, 0x00800000u, 0x0080u, "the largest subnormals round up into the smallest normal"},
};

bool is_nan_bits32(uint32_t b) { return (b & 0x7F800000u) == 0x7F800000u && (b & 0x007FFFFFu) != 0; }
bool is_nan_bits16(uint32_t b) { return (b & 0x7F80u) == 0x7F80u && (b & 0x007Fu) != 0; }

// Round to the nearest multiple of 2^(e − mantissa_bits) by exact arithmetic in double: an
// independent implementation for random values (finite, |x| ≥ the smallest normal).
double round_nearest(double x, int mantissa_bits, bool ties_away) {
  int e = 0;
  std::frexp(x, &e);  // x = f · 2^e, 0.5 ≤ |f| < 1
  const double ulp = std::ldexp(1.0, e - 1 - mantissa_bits);
  const double lo = std::floor(x / ulp) * ulp, hi = lo + ulp;
  const double dlo = x - lo, dhi = hi - x;
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  if (ties_away) return x > 0 ? hi : lo;
  return std::fmod(std::fabs(lo / ulp), 2.0) == 0.0 ? lo : hi;
}

std::vector<float> rounded_values(int64_t n, uint64_t seed, Precision p) {
  std::vector<float> v = random_values<float>(n, seed);
  for (float& x : v) x = round_operand(x, p);
  return v;
}

// Compares an mma result with the double reference; the bound is a few FP32 ulps of the terms'
// magnitude (the products of TF32/BF16 values are exact, only the FP32 accumulation rounds: at
// most K + 1 roundings of 2^-24 relative each; 2^-20 covers K = 16 with room).
void check_mma(const std::vector<float>& d, const std::vector<float>& a, const std::vector<float>& b,
               const std::vector<float>& c, int k_dim, const char* what) {
  for (int row = 0; row < 16; ++row) {
    for (int col = 0; col < 8; ++col) {
      double ref = c[row * 8 + col], mag = std::fabs(ref);
      for (int k = 0; k < k_dim; ++k) {
        ref += static_cast<double>(a[row * k_dim + k]) * b[k * 8 + col];
        mag += std::fabs(static_cast<double>(a[row * k_dim + k]) * b[k * 8 + col]);
      }
      const double err = std::fabs(d[row * 8 + col] - ref);
      INFO(what << ": D(" << row << ", " << col << ") = " << d[row * 8 + col] << ", expected " << ref);
      REQUIRE(err <= 0x1p-20 * mag);
    }
  }
}

}  // namespace

TEST_CASE("TF32 and BF16 rounding twins are bit-exact on ties, NaN, infinities and subnormals", "[tensor_core]") {
  for (const RoundingCase& r : kRounding) {
    INFO(r.why << ": input 0x" << std::hex << r.in);
    const float x = std::bit_cast<float>(r.in);
    const uint32_t t = tf32_round_bits(x), b = bf16_round_bits(x);
    if (r.tf32 == kNaN) CHECK(is_nan_bits32(t));
    else CHECK(t == r.tf32);
    if (r.bf16 == kNaN) CHECK(is_nan_bits16(b));
    else CHECK(b == r.bf16);
  }
  // Random normal values against rounding in exact double arithmetic.
  const std::vector<float> v = random_values<float>(20000, 71, -1e3, 1e3);
  for (float x : v) {
    if (std::fabs(x) < 1e-30f) continue;
    INFO("x = " << x);
    REQUIRE(static_cast<double>(tf32_round(x)) == round_nearest(x, 10, true));
    REQUIRE(static_cast<double>(bf16_round(x)) == round_nearest(x, 7, false));
  }
}

TEST_CASE("TF32 and BF16 conversions on the CUDA device equal the host twins bit for bit", "[tensor_core][cuda]") {
  const Device dev = cuda_device();
  std::vector<float> x;
  for (const RoundingCase& r : kRounding) x.push_back(std::bit_cast<float>(r.in));
  for (float v : random_values<float>(1000, 72, -4.0, 4.0)) x.push_back(v);
  const int n = static_cast<int>(x.size());
  const Tensor xd = Tensor::from_vector(x, Shape{n}, dev);
  Tensor tf = Tensor::full(Shape{n}, 0.0f, dev), bf = Tensor::full(Shape{n}, 0.0f, dev);
  probe::convert(xd.data<float>(), n, reinterpret_cast<uint32_t*>(tf.data<float>()),
                 reinterpret_cast<uint32_t*>(bf.data<float>()));
  const std::vector<float> tv = tf.to_vector(), bv = bf.to_vector();
  for (int i = 0; i < n; ++i) {
    const uint32_t t = std::bit_cast<uint32_t>(tv[i]), b = std::bit_cast<uint32_t>(bv[i]);
    INFO("input 0x" << std::hex << std::bit_cast<uint32_t>(x[i]) << ": device tf32 0x" << t << ", bf16x2 0x" << b);
    const bool nan = std::isnan(x[i]);
    if (nan) {
      CHECK(is_nan_bits32(t));
      CHECK(is_nan_bits16(b & 0xFFFFu));
      CHECK(is_nan_bits16(b >> 16));
    } else {
      CHECK(t == tf32_round_bits(x[i]));
      CHECK((b & 0xFFFFu) == bf16_round_bits(x[i]));   // the first source in the low half
      CHECK((b >> 16) == bf16_round_bits(-x[i]));
    }
  }
}

TEST_CASE("mma.sync m16n8k8 TF32 fragments sit in the lanes the PTX ISA names", "[tensor_core][cuda]") {
  const Device dev = cuda_device();
  for (uint64_t seed : {1u, 2u, 3u}) {
    const std::vector<float> a = rounded_values(16 * 8, seed, Precision::TF32),
                             b = rounded_values(8 * 8, seed + 10, Precision::TF32), c = random_values<float>(16 * 8, seed + 20);
    const Tensor ad = Tensor::from_vector(a, Shape{16, 8}, dev), bd = Tensor::from_vector(b, Shape{8, 8}, dev),
                 cd = Tensor::from_vector(c, Shape{16, 8}, dev);
    Tensor d = poisoned(Shape{16, 8}, dev);
    probe::mma_tf32(ad.data<float>(), bd.data<float>(), cd.data<float>(), d.data<float>());
    check_mma(d.to_vector(), a, b, c, 8, "tf32");
  }
}

TEST_CASE("mma.sync m16n8k16 BF16 fragments sit in the lanes the PTX ISA names", "[tensor_core][cuda]") {
  const Device dev = cuda_device();
  for (uint64_t seed : {4u, 5u, 6u}) {
    const std::vector<float> a = rounded_values(16 * 16, seed, Precision::BF16),
                             b = rounded_values(16 * 8, seed + 10, Precision::BF16), c = random_values<float>(16 * 8, seed + 20);
    const Tensor ad = Tensor::from_vector(a, Shape{16, 16}, dev), bd = Tensor::from_vector(b, Shape{16, 8}, dev),
                 cd = Tensor::from_vector(c, Shape{16, 8}, dev);
    Tensor d = poisoned(Shape{16, 8}, dev);
    probe::mma_bf16(ad.data<float>(), bd.data<float>(), cd.data<float>(), d.data<float>());
    check_mma(d.to_vector(), a, b, c, 16, "bf16");
  }
}

TEST_CASE("the simulator refuses a TF32 mma operand that was not rounded", "[tensor_core][cuda]") {
  if (!cuda_rt::is_simulated()) return;  // the hardware takes any bits (what it does with them is not ours to rely on)
  const Device dev = cuda_device();
  const Tensor a = Tensor::full(Shape{16, 8}, 1.0f + 0x1p-20f, dev), b = Tensor::full(Shape{8, 8}, 1.0f, dev),
               c = Tensor::full(Shape{16, 8}, 0.0f, dev);
  Tensor d = poisoned(Shape{16, 8}, dev);
  CHECK_THROWS_WITH(probe::mma_tf32(a.data<float>(), b.data<float>(), c.data<float>(), d.data<float>(), false),
                    Catch::Contains("not a TF32 value") && Catch::Contains("tensor_core_probe.cu"));
}

TEST_CASE("ldmatrix x1, x2, x4, with and without trans, hands each lane the words the PTX ISA names", "[tensor_core][cuda]") {
  const Device dev = cuda_device();
  std::vector<int> perm(32);
  for (int l = 0; l < 32; ++l) perm[l] = (l * 13 + 5) % 32;  // rows handed out of order
  std::vector<uint16_t> rows(32 * 8);
  for (int i = 0; i < 32 * 8; ++i) rows[i] = static_cast<uint16_t>(0x1000 + i);  // value = its own position
  // Two uint16 per float slot: the probe reads the buffer as uint16.
  std::vector<float> rows_f(32 * 4);
  std::memcpy(rows_f.data(), rows.data(), rows.size() * 2);
  std::vector<float> perm_f(32);
  std::memcpy(perm_f.data(), perm.data(), 32 * 4);
  const Tensor rd = Tensor::from_vector(rows_f, Shape{32 * 4}, dev), pd = Tensor::from_vector(perm_f, Shape{32}, dev);
  const auto value = [&](int row, int col) { return static_cast<uint32_t>(rows[row * 8 + col]); };
  for (int n : {1, 2, 4}) {
    for (bool trans : {false, true}) {
      Tensor out = poisoned(Shape{32 * n}, dev);
      probe::ldmatrix(reinterpret_cast<const uint16_t*>(rd.data<float>()), reinterpret_cast<const int*>(pd.data<float>()),
                      n, trans, reinterpret_cast<uint32_t*>(out.data<float>()));
      const std::vector<float> got = out.to_vector();
      for (int lane = 0; lane < 32; ++lane) {
        for (int m = 0; m < n; ++m) {
          // Matrix m's row r comes from lane 8m + r's address, i.e. source row perm[8m + r].
          const auto src = [&](int r) { return perm[8 * m + r]; };
          const int g = lane / 4, t = lane % 4;
          const uint32_t want = trans ? value(src(2 * t), g) | value(src(2 * t + 1), g) << 16
                                      : value(src(g), 2 * t) | value(src(g), 2 * t + 1) << 16;
          INFO("ldmatrix.x" << n << (trans ? ".trans" : "") << " lane " << lane << " matrix " << m);
          REQUIRE(std::bit_cast<uint32_t>(got[lane * n + m]) == want);
        }
      }
    }
  }
}

TEST_CASE("cp.async lands 4, 8 and 16 bytes, zero-fills, and honours wait_group", "[tensor_core][cuda]") {
  const Device dev = cuda_device();
  for (int bytes : {4, 8, 16}) {
    const int words = bytes / 4;
    std::vector<float> src(64 * 4);
    for (size_t i = 0; i < src.size(); ++i) src[i] = 1.0f + static_cast<float>(i);
    const Tensor sd = Tensor::from_vector(src, Shape{64 * 4}, dev);
    const auto expected = [&](int w) { return (w / words) % 32 % 5 == 4 ? 0.0f : src[w]; };  // chunk t zero-filled
    for (probe::CopyWait wait : {probe::CopyWait::All, probe::CopyWait::AllButNewest}) {
      Tensor dst = poisoned(Shape{64 * 4}, dev);
      probe::cp_async_copy(reinterpret_cast<const uint32_t*>(sd.data<float>()), bytes, wait,
                           reinterpret_cast<uint32_t*>(dst.data<float>()));
      const std::vector<float> got = dst.to_vector();
      const int landed = wait == probe::CopyWait::All ? 64 * words : 32 * words;
      for (int w = 0; w < landed; ++w) {
        INFO(bytes << "-byte copies, word " << w);
        REQUIRE(got[w] == expected(w));
      }
      if (wait == probe::CopyWait::AllButNewest && cuda_rt::is_simulated()) {
        // The newest group was not waited for: in the simulator it has not landed.
        for (int w = 32 * words; w < 64 * words; ++w) REQUIRE(std::bit_cast<uint32_t>(got[w]) == 0x7FFFFFFFu);
      }
    }
  }
}

TEST_CASE("the simulator catches a cp.async that is read without a wait", "[tensor_core][cuda]") {
  if (!cuda_rt::is_simulated()) return;  // on a GPU this is a race whose outcome proves nothing
  const Device dev = cuda_device();
  const Tensor sd = Tensor::full(Shape{64 * 4}, 3.0f, dev);
  Tensor dst = Tensor::full(Shape{64 * 4}, 0.0f, dev);
  probe::cp_async_copy(reinterpret_cast<const uint32_t*>(sd.data<float>()), 16, probe::CopyWait::None,
                       reinterpret_cast<uint32_t*>(dst.data<float>()));
  const std::vector<float> got = dst.to_vector();
  for (float v : got) REQUIRE(std::isnan(v));  // every copy still in flight: poison, not 3
}
