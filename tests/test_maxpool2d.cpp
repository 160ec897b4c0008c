// tests/test_maxpool2d.cpp — 2×2 / stride-2 max-pool: hand example with ties and NaN, gradient
// check in double, CUDA (simulator) vs CPU forward and backward, and the odd-size refusal.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/autograd.h"
#include "core/error.h"
#include "kernels/maxpool2d.h"
#include "test_util.h"

using namespace unet;
using namespace unet::test;
using Catch::Contains;

namespace {

// A random permutation of 0..n-1 scaled by `gap` and shifted to be centred on 0: distinct values,
// so no window has a tie and a finite-difference step below gap/2 never changes an argmax.
template <typename T>
std::vector<T> distinct_values(int64_t n, uint64_t seed, double gap = 0.01) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::vector<uint32_t> key(order.size());
  for (size_t i = 0; i < key.size(); ++i) key[i] = philox_uint32(seed, i);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return key[a] < key[b]; });
  std::vector<T> v(order.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<T>((order[i] - n / 2) * gap);
  return v;
}

}  // namespace

TEST_CASE("max_pool2d: hand example, ties go to the first maximum, NaN propagates", "[maxpool2d]") {
  // One 2×6 plane = three windows:
  //   [1 5 | 7 7 | 0   NaN]
  //   [3 2 | 7 1 | NaN 9  ]
  // window 0: max 5 at position 1; window 1: 7 at positions 0, 1, 2 -> the first (0);
  // window 2: first NaN (position 1) wins.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector(std::vector<float>{1, 5, 7, 7, 0, nan, 3, 2, 7, 1, nan, 9},
                                 Shape{1, 1, 2, 6})
                 .set_requires_grad(true);
  Tensor y = max_pool2d(x);
  REQUIRE(y.shape() == Shape{1, 1, 1, 3});
  const std::vector<float> out = y.to_vector();
  REQUIRE(out[0] == 5.0f);
  REQUIRE(out[1] == 7.0f);
  REQUIRE(std::isnan(out[2]));
  y.backward(Tensor::from_vector(std::vector<float>{10, 20, 30}, Shape{1, 1, 1, 3}));
  REQUIRE(x.grad().to_vector() == std::vector<float>{0, 10, 20, 0, 0, 30, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("max_pool2d: gradient check in double", "[maxpool2d]") {
  const Pool2dParams p{2, 3, 4, 6};
  const int64_t n_in = 2 * 3 * 4 * 6, n_out = n_in / 4;
  const std::vector<double> x = distinct_values<double>(n_in, 5);
  const std::vector<double> dy = random_values<double>(n_out, 6);
  std::vector<int32_t> arg(static_cast<size_t>(n_out));
  auto f = [&](const std::vector<double>& xx) {
    std::vector<double> y(static_cast<size_t>(n_out));
    cpu::maxpool2d_forward(p, xx.data(), y.data(), arg.data());
    return y;
  };
  f(x);
  std::vector<double> dx(static_cast<size_t>(n_in), std::nan(""));
  cpu::maxpool2d_backward(p, dy.data(), arg.data(), dx.data());
  check_gradient(f, x, dy, dx, "max_pool2d");
}

TEST_CASE("max_pool2d: float CPU rows (AVX2 or AVX-512 where available) follow the scalar rule exactly, ties and NaN included",
          "[maxpool2d]") {
  // Widths with whole 16- and 8-output vectors (AVX-512 runs 16, then one 8 on AVX2), tails of
  // 1..7 and rows shorter than one vector, at the CPU's level (test_cpu_isa.cpp forces the
  // others for the convolutions; UNET_CPU_ISA=avx2 runs this at AVX2). Values
  // are small integers (ties in most windows) with NaNs sprinkled in; the reference applies the
  // rule directly: the first maximum in window order wins, and the first NaN beats any number.
  for (Pool2dParams p : {Pool2dParams{2, 3, 4, 32}, Pool2dParams{1, 2, 6, 46}, Pool2dParams{1, 1, 2, 14},
                         Pool2dParams{1, 4, 2, 130}, Pool2dParams{1, 2, 4, 54}}) {
    INFO("width " << p.width);
    const int64_t oh = p.height / 2, ow = p.width / 2, n_in = p.batch * p.channels * p.height * p.width;
    std::vector<float> x = random_values<float>(n_in, 41 + p.width, -2.5, 2.5);
    for (size_t i = 0; i < x.size(); ++i) x[i] = philox_uint32(43, i) % 11 == 0 ? NAN : std::round(x[i]);
    const std::vector<float> dy = random_values<float>(n_in / 4, 44);
    std::vector<float> y(static_cast<size_t>(n_in / 4), -7.0f), dx(static_cast<size_t>(n_in), -7.0f);
    std::vector<int32_t> arg(y.size(), -1);
    cpu::maxpool2d_forward(p, x.data(), y.data(), arg.data());
    cpu::maxpool2d_backward(p, dy.data(), arg.data(), dx.data());
    for (int64_t plane = 0; plane < p.batch * p.channels; ++plane)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          const int64_t o = (plane * oh + oy) * ow + ox;
          int64_t at[4];
          for (int k = 0; k < 4; ++k) at[k] = (plane * p.height + 2 * oy + k / 2) * p.width + 2 * ox + k % 2;
          int best = 0;
          for (int k = 1; k < 4; ++k) {
            const float v = x[at[k]], m = x[at[best]];
            if (v > m || (std::isnan(v) && !std::isnan(m))) best = k;
          }
          INFO("output " << o);
          REQUIRE(arg[o] == best);
          REQUIRE((y[o] == x[at[best]] || (std::isnan(y[o]) && std::isnan(x[at[best]]))));
          for (int k = 0; k < 4; ++k) REQUIRE(dx[at[k]] == (k == best ? dy[o] : 0.0f));
        }
  }
}

TEST_CASE("max_pool2d: CUDA matches CPU exactly", "[maxpool2d][cuda]") {
  const Device dev = cuda_device();
  for (Pool2dParams p : {Pool2dParams{1, 3, 6, 10}, Pool2dParams{3, 17, 14, 22},
                         Pool2dParams{2, 1, 2, 2}, Pool2dParams{1, 5, 38, 2}}) {
    const Shape in{p.batch, p.channels, p.height, p.width};
    const Shape out{p.batch, p.channels, p.height / 2, p.width / 2};
    const Tensor x = Tensor::from_vector(distinct_values<float>(in.numel(), 7 + p.channels), in);
    const Tensor dy = random_tensor(out, 8 + p.channels);
    Tensor y_ref = poisoned(out, Device::cpu()), dx_ref = poisoned(in, Device::cpu());
    Tensor arg_ref = Tensor::from_vector(std::vector<int32_t>(out.numel(), -1), out);
    cpu::maxpool2d_forward(p, x.data<float>(), y_ref.data<float>(), arg_ref.data<int32_t>());
    cpu::maxpool2d_backward(p, dy.data<float>(), arg_ref.data<int32_t>(), dx_ref.data<float>());

    const Tensor xd = x.to(dev), dyd = dy.to(dev);
    Tensor y = poisoned(out, dev), dx = poisoned(in, dev);
    Tensor arg = Tensor::from_vector(std::vector<int32_t>(out.numel(), -1), out, dev);
    cuda::maxpool2d_forward(p, xd.data<float>(), y.data<float>(), arg.data<int32_t>());
    cuda::maxpool2d_backward(p, dyd.data<float>(), arg.data<int32_t>(), dx.data<float>());
    // Max and gather copy values without arithmetic: exact.
    require_close(y, y_ref, 0, 0, "y");
    REQUIRE(arg.to_int_vector() == arg_ref.to_int_vector());
    require_close(dx, dx_ref, 0, 0, "dx");
  }
}

TEST_CASE("max_pool2d: CUDA through autograd matches CPU", "[maxpool2d][cuda]") {
  const Shape in{3, 3, 10, 14}, out{3, 3, 5, 7};
  const Tensor x = Tensor::from_vector(distinct_values<float>(in.numel(), 9), in);
  const Tensor dy = random_tensor(out, 10);
  Tensor xc = x.clone().set_requires_grad(true);
  max_pool2d(xc).backward(dy);
  Tensor xg = x.to(cuda_device()).set_requires_grad(true);
  max_pool2d(xg).backward(dy.to(cuda_device()));
  require_close(xg.grad().to_host(), xc.grad(), 0, 0, "dx");
}

TEST_CASE("max_pool2d: invalid input is refused", "[maxpool2d]") {
  REQUIRE_THROWS_AS(max_pool2d(Tensor::zeros(Shape{1, 2, 7, 8})), ShapeError);
  REQUIRE_THROWS_WITH(max_pool2d(Tensor::zeros(Shape{1, 2, 7, 8})),
                      Contains("height 7 is odd") && Contains("6 or 8"));
  REQUIRE_THROWS_WITH(max_pool2d(Tensor::zeros(Shape{1, 2, 8, 5})),
                      Contains("width 5 is odd") && Contains("4 or 6"));
  REQUIRE_THROWS_AS(max_pool2d(Tensor::zeros(Shape{2, 8, 8})), ShapeError);
  REQUIRE_THROWS_AS(max_pool2d(Tensor::zeros(Shape{1, 0, 8, 8})), ShapeError);
  REQUIRE_THROWS_AS(max_pool2d(Tensor::zeros(Shape{1, 1, 2, 2}, DType::Int32)), DTypeError);
  REQUIRE_THROWS_AS(max_pool2d(Tensor()), ValueError);
}
