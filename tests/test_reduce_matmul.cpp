// tests/test_reduce_matmul.cpp — sum/mean and matmul: CUDA vs CPU with derived tolerances, exact
// small-integer GEMM, gradient checks in double, autograd and bad input.
#include "core/autograd.h"
#include "core/error.h"
#include "kernels/matmul.h"
#include "kernels/reduce.h"
#include "test_util.h"

using namespace unet;
using namespace unet::test;

TEST_CASE("sum and mean on CUDA match the double-accumulated CPU reference", "[reduce][cuda]") {
  for (int64_t n : {1, 31, 1000003}) {
    const auto v = random_values(n, 21, 0.0, 1.0);  // positive: |sum| = sum|x|, relative error meaningful
    Tensor x = Tensor::from_vector(v, Shape{n}, cuda_device());
    const float ref = cpu::sum(v.data(), n);
    // The CUDA sum is a float tree: per-thread serial sums of up to n/(1024·256) terms, then
    // 256-wide and 1024-wide trees. Its error is at most ~(n/262144 + 18)·eps relative; the random
    // walk bound reduction_rtol(n) is far below that worst case and holds for random data.
    const double rtol = reduction_rtol(n) + 20 * kEps32;
    require_close(std::vector<float>{sum(x).item()}, std::vector<float>{ref}, 0.0, rtol, "sum");
    require_close(std::vector<float>{mean(x).item()}, std::vector<float>{ref / n}, 0.0, rtol + kEps32, "mean");
    // Deterministic: same input, same bits.
    CHECK(sum(x).item() == sum(x).item());
  }
}

TEST_CASE("sum_of_squares: one pass, the double reference on the CPU, the same tree on CUDA", "[reduce][cuda]") {
  for (int64_t n : {1, 31, 1000003}) {
    const auto v = random_values(n, 22, -2.0, 2.0);
    double ref = 0.0;
    for (float x : v) ref += static_cast<double>(x) * x;
    const Tensor cpu_x = Tensor::from_vector(v, Shape{n});
    // The CPU accumulates in double and rounds once.
    CHECK(sum_of_squares(cpu_x).item() == static_cast<float>(ref));
    const Tensor cuda_x = Tensor::from_vector(v, Shape{n}, cuda_device());
    // The squares are positive, so the float tree's bound of the sum test above holds, plus one
    // rounding per square.
    const double rtol = reduction_rtol(n) + 21 * kEps32;
    require_close(std::vector<float>{sum_of_squares(cuda_x).item()}, std::vector<float>{static_cast<float>(ref)}, 0.0,
                  rtol, "sum_of_squares");
    CHECK(sum_of_squares(cuda_x).item() == sum_of_squares(cuda_x).item());
  }
  // Not the sum: a value whose square differs from itself.
  CHECK(sum_of_squares(Tensor::from_vector(std::vector<float>{3.0f}, Shape{1})).item() == 9.0f);
  CHECK(sum_of_squares(Tensor::from_vector(std::vector<float>{-3.0f}, Shape{1}, cuda_device())).item() == 9.0f);
  // No gradient rule: a tensor that requires one is refused.
  Tensor w = random_tensor(Shape{4}, 3, Device::cpu()).set_requires_grad(true);
  CHECK_THROWS_AS(sum_of_squares(w), ValueError);
}

TEST_CASE("sum/mean backward broadcasts the gradient", "[reduce][autograd][cuda]") {
  for (Device dev : {Device::cpu(), cuda_device()}) {
    Tensor x = random_tensor(Shape{2, 3, 5}, 4, dev).set_requires_grad(true);
    mean(x).backward();
    require_close(x.grad().to_vector(), std::vector<float>(30, 1.0f / 30.0f), 0.0, kEps32, "d mean");
    x.zero_grad();
    sum(x).backward();
    require_close(x.grad().to_vector(), std::vector<float>(30, 1.0f), 0.0, 0.0, "d sum");
  }
  const auto v = random_values<double>(9, 5);
  const std::vector<double> dy{0.7};
  std::vector<double> dx(9);
  cpu::broadcast_scalar(dy.data(), 1.0, dx.data(), 9);
  check_gradient([](const std::vector<double>& x) { return std::vector<double>{cpu::sum(x.data(), 9)}; },
                 v, dy, dx, "sum");
}

TEST_CASE("GEMM on CUDA matches the CPU reference for every transpose and awkward sizes", "[matmul][cuda]") {
  struct Case { int64_t m, n, k; };
  // Tiles of the CUDA kernel: 64×128 for m <= 64 (m = 64 exactly, n over two tiles), 128×128
  // above (m = 65; m and n over two tiles each); K slices of 8 (k = 1, 7, 9, 65, 129).
  for (Case c : {Case{1, 1, 1}, Case{17, 33, 65}, Case{70, 5, 129}, Case{3, 130, 7}, Case{64, 257, 9},
                 Case{65, 9, 20}, Case{200, 300, 45}}) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      const auto a = random_values(c.m * c.k, 31 + t), b = random_values(c.k * c.n, 41 + t);
      const auto c0 = random_values(c.m * c.n, 51 + t);
      for (float beta : {0.0f, 0.5f}) {
        GemmParams p = dense_gemm(c.m, c.n, c.k, ta, tb, 1.25f, beta);
        std::vector<float> ref = c0;
        cpu::gemm(p, a.data(), b.data(), ref.data());
        Device dev = cuda_device();
        Tensor da = Tensor::from_vector(a, Shape{c.m * c.k}, dev);
        Tensor db = Tensor::from_vector(b, Shape{c.k * c.n}, dev);
        // beta == 0: C must be write-only, so start from NaN poison; else from c0.
        Tensor dc = beta == 0.0f ? poisoned(Shape{c.m * c.n}, dev) : Tensor::from_vector(c0, Shape{c.m * c.n}, dev);
        cuda::gemm(p, da.data<float>(), db.data<float>(), dc.data<float>());
        // Inputs in [-1,1): each output is a k-term dot product with |terms| < 1; both sides
        // round differently, so the error scales with sqrt(k)·eps·(sum of |terms|) <= sqrt(k)·k·eps.
        const double atol = reduction_rtol(c.k) * static_cast<double>(c.k);
        require_close(dc.to_vector(), ref, atol, reduction_rtol(c.k), "gemm");
      }
    }
  }
}

TEST_CASE("GEMM on small integers is exact on both backends", "[matmul][cuda]") {
  const int64_t m = 19, n = 23, k = 37;
  std::vector<float> a(m * k), b(k * n);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(static_cast<int>(i * 7 % 11) - 5);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(static_cast<int>(i * 5 % 9) - 4);
  std::vector<float> naive(m * n, 0.0f);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t q = 0; q < k; ++q) naive[i * n + j] += a[i * k + q] * b[q * n + j];
  Tensor cpu_c = matmul(Tensor::from_vector(a, Shape{m, k}), Tensor::from_vector(b, Shape{k, n}));
  Tensor dev_c = matmul(Tensor::from_vector(a, Shape{m, k}, cuda_device()),
                        Tensor::from_vector(b, Shape{k, n}, cuda_device()));
  // |products| <= 20, sums <= 740 < 2^24: every partial sum is an exact float.
  CHECK(cpu_c.to_vector() == naive);
  CHECK(dev_c.to_vector() == naive);
}

TEST_CASE("matmul gradients: central differences in double and autograd on both backends", "[matmul][gradcheck][autograd][cuda]") {
  const int64_t m = 4, n = 5, k = 3;
  const auto a = random_values<double>(m * k, 61), b = random_values<double>(k * n, 62);
  const auto dy = random_values<double>(m * n, 63);
  std::vector<double> da(m * k), db(k * n);
  cpu::gemm(dense_gemm(m, k, n, false, true), dy.data(), b.data(), da.data());
  cpu::gemm(dense_gemm(k, n, m, true, false), a.data(), dy.data(), db.data());
  check_gradient([&](const std::vector<double>& x) {
    std::vector<double> y(m * n); cpu::gemm(dense_gemm(m, n, k), x.data(), b.data(), y.data()); return y; },
    a, dy, da, "matmul dA");
  check_gradient([&](const std::vector<double>& x) {
    std::vector<double> y(m * n); cpu::gemm(dense_gemm(m, n, k), a.data(), x.data(), y.data()); return y; },
    b, dy, db, "matmul dB");

  for (Device dev : {Device::cpu(), cuda_device()}) {
    Tensor ta = Tensor::from_vector(std::vector<float>(a.begin(), a.end()), Shape{m, k}, dev).set_requires_grad(true);
    Tensor tb = Tensor::from_vector(std::vector<float>(b.begin(), b.end()), Shape{k, n}, dev).set_requires_grad(true);
    Tensor tdy = Tensor::from_vector(std::vector<float>(dy.begin(), dy.end()), Shape{m, n}, dev);
    matmul(ta, tb).backward(tdy);
    // float32 vs double reference over reductions of length 5 (dA) and 4 (dB), terms < 1.
    require_close(ta.grad().to_vector(), da, 1e-6, 1e-5, "autograd dA on " + dev.str());
    require_close(tb.grad().to_vector(), db, 1e-6, 1e-5, "autograd dB on " + dev.str());
  }
}

TEST_CASE("reductions and matmul reject bad input", "[reduce][matmul][errors]") {
  CHECK_THROWS_AS(sum(Tensor::zeros(Shape{0})), ShapeError);
  CHECK_THROWS_AS(mean(Tensor::zeros(Shape{3}, DType::Int32)), DTypeError);
  CHECK_THROWS_AS(matmul(Tensor::zeros(Shape{2, 3}), Tensor::zeros(Shape{2, 3})), ShapeError);
  CHECK_THROWS_WITH(matmul(Tensor::zeros(Shape{2, 3}), Tensor::zeros(Shape{2, 3})),
                    Catch::Contains("[2, 3]"));
  CHECK_THROWS_AS(matmul(Tensor::zeros(Shape{2, 3, 1}), Tensor::zeros(Shape{3, 2})), ShapeError);
  CHECK_THROWS_AS(matmul(Tensor::zeros(Shape{2, 3}), Tensor::zeros(Shape{3, 2}, DType::Float32, cuda_device())),
                  DeviceError);
}
