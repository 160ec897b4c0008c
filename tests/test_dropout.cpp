// tests/test_dropout.cpp — Philox inverted dropout: the mask is the documented function of
// (seed, offset + i), identical on CPU and CUDA bit for bit, keeps a binomially plausible
// fraction, the gradient uses the same mask, inference is the identity; refusals.
#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "core/philox.h"
#include "kernels/dropout.h"
#include "test_util.h"

using namespace unet;
using namespace unet::test;
using Catch::Contains;

TEST_CASE("dropout: mask is philox_uniform01(seed, offset + i) >= p, kept values scaled", "[dropout]") {
  const float p = 0.3f;
  const Tensor x = random_tensor(Shape{2, 3, 7, 5}, 1);
  const std::vector<float> xv = x.to_vector();
  for (uint64_t offset : {0, 1, 2, 3, 6, 1001}) {
    const std::vector<float> y = dropout(x, p, 42, offset, true).to_vector();
    const float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < y.size(); ++i) {
      const bool keep = philox_uniform01(42, offset + i) >= p;
      REQUIRE(y[i] == (keep ? xv[i] * scale : 0.0f));
    }
  }
}

TEST_CASE("dropout: the offset continues one stream", "[dropout]") {
  // Element i of a call at offset k is element k + i of a call at offset 0 on a longer tensor.
  const Tensor big = Tensor::full(Shape{100}, 1.0f), small = Tensor::full(Shape{37}, 1.0f);
  const std::vector<float> yb = dropout(big, 0.5f, 7, 0, true).to_vector();
  const std::vector<float> ys = dropout(small, 0.5f, 7, 13, true).to_vector();
  for (size_t i = 0; i < ys.size(); ++i) REQUIRE(ys[i] == yb[13 + i]);
}

TEST_CASE("dropout: keep fraction within a binomial bound", "[dropout]") {
  // Kept count K ~ Binomial(n, 1-p) for independent uniforms: mean n(1-p), standard deviation
  // sqrt(n p (1-p)) = 144.9 for n = 1e5, p = 0.3. |K - mean| <= 6 sd fails with probability
  // < 2e-9 for a fair generator, so a failure means a biased mask.
  const int64_t n = 100000;
  const double p = 0.3;
  const std::vector<float> y = dropout(Tensor::full(Shape{n}, 1.0f), 0.3f, 123, 0, true).to_vector();
  int64_t kept = 0;
  for (float v : y) kept += v != 0.0f;
  const double mean = n * (1 - p), sd = std::sqrt(n * p * (1 - p));
  REQUIRE(std::fabs(static_cast<double>(kept) - mean) <= 6 * sd);
}

TEST_CASE("dropout: gradient uses the same mask, gradient check in double", "[dropout]") {
  const float p = 0.25f;
  Tensor x = random_tensor(Shape{3, 3, 4, 5}, 2).set_requires_grad(true);
  const Tensor dy = random_tensor(x.shape(), 3);
  Tensor y = dropout(x, p, 9, 4, true);
  y.backward(dy);
  const std::vector<float> yv = y.to_vector(), dxv = x.grad().to_vector(), dyv = dy.to_vector();
  // x has no zeros, so y != 0 exactly where the mask keeps; dx must be dy·scale there, 0 elsewhere.
  const float scale = 1.0f / (1.0f - p);
  for (size_t i = 0; i < yv.size(); ++i) REQUIRE(dxv[i] == (yv[i] != 0.0f ? dyv[i] * scale : 0.0f));

  const DropoutParams params{p, 1.0f / (1.0f - p), 9, 4};
  const int64_t n = 60;
  const std::vector<double> x0 = random_values<double>(n, 4), dyd = random_values<double>(n, 5);
  auto f = [&](const std::vector<double>& xx) {
    std::vector<double> out(static_cast<size_t>(n));
    cpu::dropout_apply(params, xx.data(), out.data(), n);
    return out;
  };
  std::vector<double> dx(static_cast<size_t>(n));
  cpu::dropout_apply(params, dyd.data(), dx.data(), n);
  check_gradient(f, x0, dyd, dx, "dropout");
}

TEST_CASE("dropout: inference and p = 0 are the identity", "[dropout]") {
  Tensor x = random_tensor(Shape{1, 2, 3, 3}, 6).set_requires_grad(true);
  REQUIRE(dropout(x, 0.5f, 1, 0, false).impl() == x.impl());
  REQUIRE(dropout(x, 0.0f, 1, 0, true).impl() == x.impl());
}

TEST_CASE("dropout: CUDA mask and gradient identical to CPU bit for bit", "[dropout][cuda]") {
  const Device dev = cuda_device();
  for (uint64_t offset : {0, 3, 5}) {
    for (Shape s : {Shape{1, 3, 17, 19}, Shape{3, 17, 5, 3}, Shape{1}}) {
      const Tensor x = random_tensor(s, 7 + offset);
      const DropoutParams params{0.37f, 1.0f / (1.0f - 0.37f), 2024, offset};
      Tensor y_ref = poisoned(s, Device::cpu()), y = poisoned(s, dev);
      const Tensor xd = x.to(dev);
      cpu::dropout_apply(params, x.data<float>(), y_ref.data<float>(), x.numel());
      cuda::dropout_apply(params, xd.data<float>(), y.data<float>(), x.numel());
      // Same mask, same single multiply by the same float: exact.
      require_close(y, y_ref, 0, 0, "dropout");
    }
  }
  Tensor xc = random_tensor(Shape{3, 3, 9, 11}, 8).set_requires_grad(true);
  Tensor xg = xc.detach().to(dev).set_requires_grad(true);
  const Tensor dy = random_tensor(xc.shape(), 9);
  Tensor yc = dropout(xc, 0.5f, 77, 12, true), yg = dropout(xg, 0.5f, 77, 12, true);
  yc.backward(dy);
  yg.backward(dy.to(dev));
  require_close(yg.to_host(), yc, 0, 0, "y");
  require_close(xg.grad().to_host(), xc.grad(), 0, 0, "dx");
}

TEST_CASE("dropout: invalid input is refused", "[dropout]") {
  const Tensor x = Tensor::full(Shape{4}, 1.0f);
  REQUIRE_THROWS_WITH(dropout(x, 1.0f, 0, 0, true), Contains("[0, 1)"));
  REQUIRE_THROWS_AS(dropout(x, -0.1f, 0, 0, true), ValueError);
  REQUIRE_THROWS_AS(dropout(x, NAN, 0, 0, true), ValueError);
  REQUIRE_THROWS_AS(dropout(x, 1.5f, 0, 0, false), ValueError);  // refused even in inference
  REQUIRE_THROWS_AS(dropout(Tensor::zeros(Shape{4}, DType::Int32), 0.5f, 0, 0, true), DTypeError);
  REQUIRE_THROWS_AS(dropout(Tensor(), 0.5f, 0, 0, true), ValueError);
}
