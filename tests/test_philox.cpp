// tests/test_philox.cpp — Philox 4x32-10 against the published known-answer vectors (Random123's
// kat_vectors), and CPU vs CUDA random streams: identical bits for the same seed and offset.
#include "core/philox.h"
#include "kernels/random.h"
#include "test_util.h"

using namespace unet;

TEST_CASE("Philox 4x32-10 matches the Random123 known-answer vectors", "[core][philox]") {
  const Philox4 zero = philox4x32_10(0, 0, 0, 0, 0, 0);
  CHECK(zero.v[0] == 0x6627e8d5u);
  CHECK(zero.v[1] == 0xe169c58du);
  CHECK(zero.v[2] == 0xbc57ac4cu);
  CHECK(zero.v[3] == 0x9b00dbd8u);
  const Philox4 ones = philox4x32_10(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu,
                                     0xffffffffu, 0xffffffffu);
  CHECK(ones.v[0] == 0x408f276du);
  CHECK(ones.v[1] == 0x41c83b0eu);
  CHECK(ones.v[2] == 0xa20bc7c6u);
  CHECK(ones.v[3] == 0x6d5451fdu);
  const Philox4 pi = philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u,
                                   0xa4093822u, 0x299f31d0u);
  CHECK(pi.v[0] == 0xd16cfe09u);
  CHECK(pi.v[1] == 0x94fdccebu);
  CHECK(pi.v[2] == 0x5001e420u);
  CHECK(pi.v[3] == 0x24126ea1u);
}

TEST_CASE("Philox uniforms lie in [0,1) and have the right mean", "[core][philox]") {
  double sum = 0.0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const float u = philox_uniform01(123, i);
    REQUIRE(u >= 0.0f);
    REQUIRE(u < 1.0f);
    sum += u;
  }
  // Mean of n uniforms has standard deviation sqrt(1/12/n) = 0.0009; 5 sigma = 0.0046.
  CHECK(std::fabs(sum / n - 0.5) < 0.0046);
}

TEST_CASE("CPU and CUDA random streams agree for the same seed and offset", "[core][philox][cuda]") {
  for (int64_t n : {1, 31, 1000003}) {
    const Shape shape{n};
    const Tensor u_cpu = random_uniform(shape, 99, 5, Device::cpu());
    const Tensor u_dev = random_uniform(shape, 99, 5, test::cuda_device());
    CHECK(u_cpu.to_vector() == u_dev.to_vector());  // exact: integer math + exact scaling
  }
  const Tensor n_cpu = random_normal(Shape{4097}, 0.0f, 2.0f, 11, 0, Device::cpu());
  const Tensor n_dev = random_normal(Shape{4097}, 0.0f, 2.0f, 11, 0, test::cuda_device());
  // Box–Muller goes through logf/sqrtf/cosf, which CUDA and glibc round differently (each within
  // 1-2 ulp); the result (|z| up to ~10 for std 2) may differ by a few ulps: 1e-5 abs + 1e-5 rel.
  test::require_close(n_dev, n_cpu, 1e-5, 1e-5, "normal CPU vs CUDA");
  // Different offsets give different numbers.
  CHECK(random_uniform(Shape{8}, 99, 0, Device::cpu()).to_vector() != random_uniform(Shape{8}, 99, 8, Device::cpu()).to_vector());
}
