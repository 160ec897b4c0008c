// tests/test_elementwise.cpp — add, mul, affine (and scale), relu: CPU reference vs CUDA (simulator or GPU) on
// awkward sizes with poisoned outputs, gradient checks in double, autograd wiring, bad input.
#include "core/autograd.h"
#include "core/error.h"
#include "kernels/elementwise.h"
#include "test_util.h"

using namespace unet;
using namespace unet::test;

namespace {
// Elementwise float ops are exactly rounded (one IEEE operation per element) on both backends —
// affine is one explicit fma on both, so no compiler contraction can make them differ — so CUDA
// must match the CPU bit for bit. We still allow 0 atol / 0 rtol through require_close for a readable report.
constexpr double kExact = 0.0;

void run_raw_cuda_vs_cpu(int64_t n) {
  const auto a = random_values(n, 1), b = random_values(n, 2);
  Device dev = cuda_device();
  Tensor da = Tensor::from_vector(a, Shape{n}, dev), db = Tensor::from_vector(b, Shape{n}, dev);
  std::vector<float> ref(static_cast<size_t>(n));
  Tensor out = poisoned(Shape{n}, dev);

  cpu::add(a.data(), b.data(), ref.data(), n);
  cuda::add(da.data<float>(), db.data<float>(), out.data<float>(), n);
  require_close(out.to_vector(), ref, kExact, kExact, "add n=" + std::to_string(n));

  out.fill(NAN);
  cpu::mul(a.data(), b.data(), ref.data(), n);
  cuda::mul(da.data<float>(), db.data<float>(), out.data<float>(), n);
  require_close(out.to_vector(), ref, kExact, kExact, "mul");

  out.fill(NAN);
  cpu::affine(a.data(), 0.37f, -2.9f, ref.data(), n);
  cuda::affine(da.data<float>(), 0.37f, -2.9f, out.data<float>(), n);
  require_close(out.to_vector(), ref, kExact, kExact, "affine");

  out.fill(NAN);
  cpu::relu_forward(a.data(), ref.data(), n);
  cuda::relu_forward(da.data<float>(), out.data<float>(), n);
  require_close(out.to_vector(), ref, kExact, kExact, "relu forward");

  out.fill(NAN);
  cpu::relu_backward(a.data(), b.data(), ref.data(), n);
  cuda::relu_backward(da.data<float>(), db.data<float>(), out.data<float>(), n);
  require_close(out.to_vector(), ref, kExact, kExact, "relu backward");
}
}  // namespace

TEST_CASE("Elementwise CUDA kernels match the CPU reference on awkward sizes", "[elementwise][cuda]") {
  for (int64_t n : {1, 31, 1000003}) run_raw_cuda_vs_cpu(n);
}

TEST_CASE("Elementwise gradients match central differences (double, CPU)", "[elementwise][gradcheck]") {
  const int64_t n = 37;
  const auto a = random_values_away_from_zero<double>(n, 3), b = random_values<double>(n, 4);
  const auto dy = random_values<double>(n, 5);
  std::vector<double> dx(n), tmp(n);

  // mul: d/da <dy, a*b> = dy*b
  cpu::mul(dy.data(), b.data(), dx.data(), n);
  check_gradient([&](const std::vector<double>& x) {
    std::vector<double> y(n); cpu::mul(x.data(), b.data(), y.data(), n); return y; }, a, dy, dx, "mul");
  // relu (inputs kept 0.05 away from the kink, step 1e-6)
  cpu::relu_backward(a.data(), dy.data(), dx.data(), n);
  check_gradient([&](const std::vector<double>& x) {
    std::vector<double> y(n); cpu::relu_forward(x.data(), y.data(), n); return y; }, a, dy, dx, "relu");
  // affine: d/dx <dy, 1.7 x - 0.3> = 1.7 dy
  cpu::affine(dy.data(), 1.7, 0.0, dx.data(), n);
  check_gradient([&](const std::vector<double>& x) {
    std::vector<double> y(n); cpu::affine(x.data(), 1.7, -0.3, y.data(), n); return y; }, a, dy, dx, "affine");
  // add: d/da = dy
  check_gradient([&](const std::vector<double>& x) {
    std::vector<double> y(n); cpu::add(x.data(), b.data(), y.data(), n); return y; }, a, dy, dy, "add");
}

TEST_CASE("Elementwise autograd: backward through a small graph on CPU and CUDA agree", "[elementwise][autograd][cuda]") {
  const Shape shape{3, 5, 7};
  const auto av = random_values_away_from_zero(shape.numel(), 10), bv = random_values(shape.numel(), 11);
  std::vector<std::vector<float>> grads_a, grads_b;
  for (Device dev : {Device::cpu(), cuda_device()}) {
    Tensor a = Tensor::from_vector(av, shape, dev).set_requires_grad(true);
    Tensor b = Tensor::from_vector(bv, shape, dev).set_requires_grad(true);
    // y = relu(a*b + a) * 2 ; a is used twice, so its gradients must be summed.
    Tensor y = scale(relu(add(mul(a, b), a)), 2.0f);
    y.backward(Tensor::full(shape, 1.0f, dev));
    grads_a.push_back(a.grad().to_vector());
    grads_b.push_back(b.grad().to_vector());
  }
  // Expected: mask = [a*b + a > 0]; da = 2·mask·(b + 1); db = 2·mask·a.
  std::vector<float> ea(av.size()), eb(av.size());
  for (size_t i = 0; i < av.size(); ++i) {
    const bool on = av[i] * bv[i] + av[i] > 0.0f;
    ea[i] = on ? 2.0f * (bv[i] + 1.0f) : 0.0f;
    eb[i] = on ? 2.0f * av[i] : 0.0f;
  }
  // One rounding per operation and at most one sum of two terms: 2 ulps relative.
  for (int d = 0; d < 2; ++d) {
    require_close(grads_a[d], ea, 0.0, 2 * kEps32, "da");
    require_close(grads_b[d], eb, 0.0, 2 * kEps32, "db");
  }
}

TEST_CASE("Elementwise ops reject bad input", "[elementwise][errors]") {
  Tensor a = Tensor::zeros(Shape{2, 3}), b = Tensor::zeros(Shape{3, 2});
  CHECK_THROWS_AS(add(a, b), ShapeError);
  CHECK_THROWS_WITH(mul(a, b), Catch::Contains("[2, 3]") && Catch::Contains("[3, 2]"));
  CHECK_THROWS_AS(add(a, Tensor::zeros(Shape{2, 3}, DType::Float32, cuda_device())), DeviceError);
  CHECK_THROWS_AS(relu(Tensor::zeros(Shape{4}, DType::Int32)), DTypeError);
  CHECK_THROWS_AS(add(a, Tensor()), ValueError);
  CHECK_THROWS_WITH(affine(a, NAN, 0.0f), Catch::Contains("finite"));
  CHECK_THROWS_AS(affine(a, 1.0f, INFINITY), ValueError);
  CHECK_THROWS_AS(affine(Tensor::zeros(Shape{4}, DType::Int32), 1.0f, 0.0f), DTypeError);
}

TEST_CASE("affine: values and gradient at the tensor level on CPU and CUDA", "[elementwise][autograd][cuda]") {
  const Shape shape{2, 3, 11};
  const auto xv = random_values(shape.numel(), 20), gv = random_values(shape.numel(), 21);
  const float factor = 1.0f / 0.1665f, offset = -0.4865f / 0.1665f;  // an input standardisation
  for (Device dev : {Device::cpu(), cuda_device()}) {
    Tensor x = Tensor::from_vector(xv, shape, dev).set_requires_grad(true);
    Tensor y = affine(x, factor, offset);
    y.backward(Tensor::from_vector(gv, shape, dev));
    const auto yv = y.to_vector(), dx = x.grad().to_vector();
    for (size_t i = 0; i < xv.size(); ++i) {
      INFO(dev.str() << " element " << i);
      REQUIRE(yv[i] == std::fma(xv[i], factor, offset));  // one rounding, both backends
      REQUIRE(dx[i] == gv[i] * factor);                   // x·0 offset: exactly the product
    }
  }
}
