// tests/test_conv2d.cpp — conv2d: exact small-integer results against a naive loop, gradient
// checks in double (data, weights, bias; with and without fused ReLU), the adjoint identity,
// autograd vs raw launchers, CUDA (simulator or GPU) vs CPU on awkward sizes, and bad input.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "core/parallel.h"
#include "kernels/conv2d.h"
#include "kernels/conv3x3_direct_cpu.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/elementwise.h"
#include "kernels/patch_gemm_cpu.h"
#include "kernels/reduce.h"
#include "kernels/split_k_plan.h"
#include "kernels/winograd3x3_cpu.h"
#include "conv_reference.h"
#include "test_util.h"

using namespace unet;
using namespace unet::test;

namespace {

struct Case {
  int64_t n, c_in, c_out, h, w, k;
  Padding padding;
  bool relu;
  std::string str() const {
    return "N" + std::to_string(n) + " Cin" + std::to_string(c_in) + " Cout" + std::to_string(c_out) + " " +
           std::to_string(h) + "x" + std::to_string(w) + " k" + std::to_string(k) +
           (padding == Padding::Same ? " same" : " valid") + (relu ? " relu" : "");
  }
  Conv2dParams params() const { return conv2d_params(n, c_in, h, w, c_out, k, padding, relu); }
  Shape x_shape() const { return {n, c_in, h, w}; }
  Shape w_shape() const { return {c_out, c_in, k, k}; }
  Shape y_shape() const { const auto p = params(); return {n, c_out, p.h_out, p.w_out}; }
};

const std::vector<Case> kGradCases = {
    {2, 3, 4, 6, 5, 3, Padding::Valid, false}, {2, 3, 4, 6, 5, 3, Padding::Valid, true},
    {1, 2, 3, 5, 7, 3, Padding::Same, false},  {1, 2, 3, 5, 7, 3, Padding::Same, true},
    {2, 3, 2, 4, 3, 1, Padding::Valid, true},  {1, 2, 2, 6, 6, 5, Padding::Same, false},
};

}  // namespace

TEST_CASE("conv2d matches a naive loop exactly on small integers", "[conv2d]") {
  for (const Case& cs : {Case{2, 3, 5, 7, 9, 3, Padding::Valid, false}, Case{1, 4, 3, 6, 5, 3, Padding::Same, true},
                         Case{3, 2, 4, 5, 4, 1, Padding::Valid, false}, Case{1, 3, 2, 7, 6, 5, Padding::Same, false}}) {
    INFO(cs.str());
    const auto xs = small_integers(cs.x_shape().numel(), 11, 3), ws = small_integers(cs.w_shape().numel(), 12, 2),
               bs = small_integers(cs.c_out, 13, 4);
    // Products <= 6 in magnitude, <= 75 terms: every partial sum is an integer far below 2^24,
    // so float32 arithmetic is exact in any order and the comparison has zero tolerance.
    const auto ref = naive_conv(cs.params(), to_double(xs), to_double(ws), to_double(bs));
    const Tensor y = conv2d(Tensor::from_vector(xs, cs.x_shape()), Tensor::from_vector(ws, cs.w_shape()),
                            Tensor::from_vector(bs, Shape{cs.c_out}), {cs.padding, cs.relu});
    REQUIRE(y.shape() == cs.y_shape());
    require_close(y.to_vector(), ref, 0.0, 0.0, "cpu exact");
  }
}

TEST_CASE("conv2d backward passes match central differences (double)", "[conv2d]") {
  for (const Case& cs : kGradCases) {
    INFO(cs.str());
    const Conv2dParams p = cs.params();
    const auto x = random_values<double>(cs.x_shape().numel(), 21), w = random_values<double>(cs.w_shape().numel(), 22),
               b = random_values<double>(cs.c_out, 23), dy = random_values<double>(cs.y_shape().numel(), 24);
    auto forward = [&](const std::vector<double>& xx, const std::vector<double>& ww, const std::vector<double>& bb) {
      std::vector<double> y(dy.size());
      cpu::conv2d_forward(p, xx.data(), ww.data(), bb.data(), y.data());
      return y;
    };
    // The ReLU's kink must stay far from every finite-difference step (h = 1e-6, |w|, |x| < 1):
    // these seeds give pre-activations at least 1e-3 away from 0.
    Conv2dParams linear = p;
    linear.relu = false;
    std::vector<double> pre(dy.size());
    cpu::conv2d_forward(linear, x.data(), w.data(), b.data(), pre.data());
    double closest = 1e300;
    for (double v : pre) closest = std::min(closest, std::fabs(v));
    REQUIRE(closest > 1e-3);
    // The launchers take g = dy · [y > 0] when the ReLU is fused.
    std::vector<double> g = dy;
    if (cs.relu)
      for (size_t i = 0; i < g.size(); ++i) g[i] = pre[i] > 0 ? dy[i] : 0.0;

    std::vector<double> dx(x.size()), dw(w.size()), db(b.size());
    cpu::conv2d_backward_data(p, g.data(), w.data(), dx.data());
    cpu::conv2d_backward_weight(p, x.data(), g.data(), dw.data());
    cpu::channel_sum(g.data(), p.n, p.c_out, p.h_out * p.w_out, db.data());
    check_gradient([&](const std::vector<double>& v) { return forward(v, w, b); }, x, dy, dx, "dx");
    check_gradient([&](const std::vector<double>& v) { return forward(x, v, b); }, w, dy, dw, "dw");
    check_gradient([&](const std::vector<double>& v) { return forward(x, w, v); }, b, dy, db, "db");
    // Forward itself against the direct definition (double: only rounding, 1e-12).
    require_close(forward(x, w, b), naive_conv(p, x, w, b), 1e-12, 1e-12, "forward vs naive");
  }
}

TEST_CASE("conv2d data gradient is the adjoint of the forward", "[conv2d]") {
  for (const Case& cs : {Case{2, 3, 5, 9, 8, 3, Padding::Valid, false}, Case{1, 4, 2, 7, 5, 3, Padding::Same, false},
                         Case{2, 3, 3, 6, 7, 5, Padding::Same, false}, Case{1, 5, 4, 4, 3, 1, Padding::Valid, false}}) {
    INFO(cs.str());
    const Conv2dParams p = cs.params();
    const auto x = random_values<double>(cs.x_shape().numel(), 31), w = random_values<double>(cs.w_shape().numel(), 32),
               y = random_values<double>(cs.y_shape().numel(), 33);
    std::vector<double> ax(y.size()), aty(x.size());
    cpu::conv2d_forward(p, x.data(), w.data(), static_cast<const double*>(nullptr), ax.data());
    cpu::conv2d_backward_data(p, y.data(), w.data(), aty.data());
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < y.size(); ++i) lhs += ax[i] * y[i];
    for (size_t i = 0; i < x.size(); ++i) rhs += x[i] * aty[i];
    // Both sides are the same sum of a few thousand double products: 1e-12 relative is ample.
    REQUIRE(std::fabs(lhs - rhs) <= 1e-12 * (std::fabs(lhs) + 1.0));
  }
}

TEST_CASE("conv2d autograd agrees with the raw CPU backward", "[conv2d]") {
  for (bool relu : {false, true}) {
    const Case cs{2, 3, 4, 8, 7, 3, Padding::Same, relu};
    INFO(cs.str());
    const Conv2dParams p = cs.params();
    Tensor x = random_tensor(cs.x_shape(), 41).set_requires_grad(true);
    Tensor w = random_tensor(cs.w_shape(), 42).set_requires_grad(true);
    Tensor b = random_tensor(Shape{cs.c_out}, 43).set_requires_grad(true);
    const Tensor dy = random_tensor(cs.y_shape(), 44);
    const Tensor y = conv2d(x, w, b, {cs.padding, relu});
    y.backward(dy);

    std::vector<float> g = dy.to_vector(), yv = y.to_vector();
    if (relu)
      for (size_t i = 0; i < g.size(); ++i) g[i] = yv[i] > 0 ? g[i] : 0.0f;
    std::vector<float> dx(x.numel()), dw(w.numel()), db(cs.c_out);
    cpu::conv2d_backward_data(p, g.data(), w.to_vector().data(), dx.data());
    cpu::conv2d_backward_weight(p, x.to_vector().data(), g.data(), dw.data());
    cpu::channel_sum(g.data(), p.n, p.c_out, p.h_out * p.w_out, db.data());
    // Same launchers on the same inputs: bit-identical.
    require_close(x.grad().to_vector(), dx, 0.0, 0.0, "dx");
    require_close(w.grad().to_vector(), dw, 0.0, 0.0, "dw");
    require_close(b.grad().to_vector(), db, 0.0, 0.0, "db");
  }
  SECTION("a scalar loss through sum() and no bias") {
    Tensor x = random_tensor(Shape{1, 2, 5, 5}, 45).set_requires_grad(true);
    Tensor w = random_tensor(Shape{3, 2, 3, 3}, 46).set_requires_grad(true);
    sum(conv2d(x, w, Tensor())).backward();
    // dL/dw[o,c,u,v] = Σ over the 3×3 output of x[c, i+u, j+v]: same for every o.
    const auto dw = w.grad().to_vector(), xv = x.to_vector();
    for (int64_t o = 0; o < 3; ++o)
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t u = 0; u < 3; ++u)
          for (int64_t v = 0; v < 3; ++v) {
            double s = 0;
            for (int i = 0; i < 3; ++i)
              for (int j = 0; j < 3; ++j) s += xv[(c * 5 + i + u) * 5 + j + v];
            REQUIRE(std::fabs(dw[((o * 2 + c) * 3 + u) * 3 + v] - s) <= 1e-5);  // 9 float terms < 1
          }
  }
}

TEST_CASE("conv2d large-weight CPU path (bands in series, GEMM split over channels) is correct", "[conv2d]") {
  // More than 2^20 weights selects the CPU path the small tests do not reach.
  const Case cs{2, 1000, 130, 4, 5, 3, Padding::Valid, false};
  const Conv2dParams p = cs.params();
  const auto x = random_values<float>(cs.x_shape().numel(), 131), w = random_values<float>(cs.w_shape().numel(), 132),
             g = random_values<float>(cs.y_shape().numel(), 133), w2 = random_values<float>(cs.w_shape().numel(), 134);
  std::vector<float> y(g.size()), dw(w.size());
  cpu::conv2d_forward(p, x.data(), w.data(), static_cast<const float*>(nullptr), y.data());
  const int64_t kf = cs.c_in * 9;  // forward reduction length
  require_close(y, naive_conv(p, to_double(x), to_double(w), {}), conv_atol(kf), reduction_rtol(kf), "forward");
  // The forward is linear in w, so <dw, w2> = <g, conv(x; w2)> for any w2 (checked in double).
  cpu::conv2d_backward_weight(p, x.data(), g.data(), dw.data());
  const auto yw2 = naive_conv(p, to_double(x), to_double(w2), {});
  double lhs = 0, rhs = 0, scale = 0;
  for (size_t i = 0; i < dw.size(); ++i) lhs += double(dw[i]) * w2[i], scale += std::fabs(double(dw[i]) * w2[i]);
  for (size_t i = 0; i < g.size(); ++i) rhs += g[i] * yw2[i];
  // dw entries are float sums of n·pixels = 24 terms: relative error ~reduction_rtol(24) each.
  REQUIRE(std::fabs(lhs - rhs) <= reduction_rtol(24) * scale);
  // Data gradient (the col2im path): <dx, x> = <g, conv(x; w)> = <g, y>, y from the naive loop.
  std::vector<float> dx(x.size());
  cpu::conv2d_backward_data(p, g.data(), w.data(), dx.data());
  const auto y_ref = naive_conv(p, to_double(x), to_double(w), {});
  double l2 = 0, r2 = 0, s2 = 0;
  for (size_t i = 0; i < dx.size(); ++i) l2 += double(dx[i]) * x[i], s2 += std::fabs(double(dx[i]) * x[i]);
  for (size_t i = 0; i < g.size(); ++i) r2 += g[i] * y_ref[i];
  // dx entries are float sums of Cout·k·k = 1170 terms.
  REQUIRE(std::fabs(l2 - r2) <= reduction_rtol(1170) * s2);
}

TEST_CASE("conv2d rejects bad input with typed errors", "[conv2d]") {
  const Tensor x = random_tensor(Shape{1, 3, 8, 8}, 1), w = random_tensor(Shape{4, 3, 3, 3}, 2),
               b = random_tensor(Shape{4}, 3);
  CHECK_THROWS_AS(conv2d(random_tensor(Shape{3, 8, 8}, 1), w, b), ShapeError);            // rank 3 input
  CHECK_THROWS_AS(conv2d(x, random_tensor(Shape{4, 2, 3, 3}, 2), b), ShapeError);         // channel mismatch
  CHECK_THROWS_AS(conv2d(x, random_tensor(Shape{4, 3, 2, 2}, 2), b), ShapeError);         // even kernel
  CHECK_THROWS_AS(conv2d(x, random_tensor(Shape{4, 3, 3, 5}, 2), b), ShapeError);         // non-square
  CHECK_THROWS_AS(conv2d(x, w, random_tensor(Shape{5}, 3)), ShapeError);                  // bias size
  CHECK_THROWS_AS(conv2d(Tensor::zeros(Shape{0, 3, 8, 8}), w, b), ShapeError);            // empty
  CHECK_THROWS_AS(conv2d(Tensor::zeros(Shape{1, 3, 8, 8}, DType::Int32), w, b), DTypeError);
  CHECK_THROWS_AS(conv2d(x, w, Tensor::zeros(Shape{4}, DType::Int32)), DTypeError);
  try {  // valid padding on a too-small input names the size, kernel and padding
    conv2d(random_tensor(Shape{1, 3, 2, 8}, 1), w, b);
    FAIL("expected ShapeError");
  } catch (const ShapeError& e) {
    const std::string m = e.what();
    CHECK(m.find("2x8") != std::string::npos);
    CHECK(m.find("3x3") != std::string::npos);
    CHECK(m.find("valid") != std::string::npos);
  }
  CHECK_NOTHROW(conv2d(random_tensor(Shape{1, 3, 2, 8}, 1), w, b, {Padding::Same, false}));
}

// ---------------------------------------------------------------------------------------------
// CUDA (simulator in the sim build) against the CPU reference.

TEST_CASE("conv2d CUDA rejects tensors on different devices", "[conv2d][cuda]") {
  const Tensor x = random_tensor(Shape{1, 3, 8, 8}, 1), w = random_tensor(Shape{4, 3, 3, 3}, 2, cuda_device());
  try {
    conv2d(x, w, Tensor());
    FAIL("expected DeviceError");
  } catch (const DeviceError& e) {
    const std::string m = e.what();
    CHECK(m.find("cpu") != std::string::npos);
    CHECK(m.find("cuda") != std::string::npos);
  }
}

TEST_CASE("conv2d CUDA launchers refuse tensors beyond their 32-bit indices", "[conv2d][cuda]") {
  // 2 × 64 × 4096 × 4096 = 2^31 input elements: refused before anything is read (null pointers).
  const Conv2dParams p = conv2d_params(2, 64, 4096, 4096, 64, 3, Padding::Same, false);
  CHECK_THROWS_WITH(cuda::conv2d_forward(p, nullptr, nullptr, nullptr, nullptr),
                    Catch::Contains("2^31") && Catch::Contains("split the batch"));
  CHECK_THROWS_AS(cuda::conv2d_backward_data(p, nullptr, nullptr, nullptr), ValueError);
  CHECK_THROWS_AS(cuda::conv2d_backward_weight(p, nullptr, nullptr, nullptr), ValueError);
}

TEST_CASE("conv2d CUDA matches the naive loop exactly on small integers", "[conv2d][cuda]") {
  const Case cs{3, 3, 5, 9, 10, 3, Padding::Same, true};
  const auto xs = small_integers(cs.x_shape().numel(), 11, 3), ws = small_integers(cs.w_shape().numel(), 12, 2),
             bs = small_integers(cs.c_out, 13, 4);
  const auto ref = naive_conv(cs.params(), to_double(xs), to_double(ws), to_double(bs));
  const Device d = cuda_device();
  Tensor y = poisoned(cs.y_shape(), d);
  cuda::conv2d_forward(cs.params(), Tensor::from_vector(xs, cs.x_shape(), d).data<float>(),
                       Tensor::from_vector(ws, cs.w_shape(), d).data<float>(),
                       Tensor::from_vector(bs, Shape{cs.c_out}, d).data<float>(), y.data<float>());
  require_close(y.to_vector(), ref, 0.0, 0.0, "cuda exact");  // integer sums < 2^24: exact
}

TEST_CASE("conv2d CUDA forward and backward match the CPU", "[conv2d][cuda]") {
  const Device d = cuda_device();
  for (const Case& cs : {Case{1, 3, 17, 13, 11, 3, Padding::Valid, false}, Case{3, 17, 3, 9, 14, 3, Padding::Same, true},
                         Case{3, 17, 17, 7, 5, 1, Padding::Valid, true}, Case{1, 3, 17, 10, 9, 5, Padding::Same, false},
                         Case{1, 17, 70, 11, 13, 3, Padding::Valid, true},
                         // The tiled kernel's shapes (kernels/implicit_gemm.cuh): C with more
                         // than 128 rows and columns (two 128×128 tiles each way, both partial),
                         // C with at most 64 rows and more than 128 columns (64×128 tiles), and
                         // a weight gradient long enough to be split over K (3 splits).
                         Case{2, 9, 130, 12, 13, 3, Padding::Same, true},
                         Case{2, 4, 6, 24, 25, 3, Padding::Valid, false},
                         // Forward and data gradient split over K too (the deep levels' case:
                         // few tiles, long K), two images, ReLU and bias in the split's sum, and
                         // the generic-k gathers (5×5).
                         Case{2, 70, 60, 7, 6, 3, Padding::Same, true}, Case{1, 30, 25, 8, 9, 5, Padding::Same, true}}) {
    INFO(cs.str());
    const Conv2dParams p = cs.params();
    const cuda::PassSplits splits = cuda::conv2d_splits(p);
    INFO("splits: forward " << splits.forward << ", data " << splits.data << ", weight " << splits.weight);
    if (cs.c_in * cs.k * cs.k >= 512) CHECK(splits.forward > 1);  // the cases meant to split do
    if (cs.c_out * cs.k * cs.k >= 512) CHECK(splits.data > 1);
    const int64_t pixels = p.h_out * p.w_out;
    const Tensor x = random_tensor(cs.x_shape(), 51), w = random_tensor(cs.w_shape(), 52),
                 b = random_tensor(Shape{cs.c_out}, 53), g = random_tensor(cs.y_shape(), 54);
    const Tensor xd = x.to(d), wd = w.to(d), bd = b.to(d), gd = g.to(d);

    Tensor y_ref = Tensor::empty(cs.y_shape()), y = poisoned(cs.y_shape(), d);
    cpu::conv2d_forward(p, x.data<float>(), w.data<float>(), b.data<float>(), y_ref.data<float>());
    cuda::conv2d_forward(p, xd.data<float>(), wd.data<float>(), bd.data<float>(), y.data<float>());
    const int64_t kf = cs.c_in * cs.k * cs.k;  // forward reduction length
    require_close(y.to_vector(), y_ref.to_vector(), conv_atol(kf), reduction_rtol(kf), "forward");

    Tensor dx_ref = Tensor::empty(cs.x_shape()), dx = poisoned(cs.x_shape(), d);
    cpu::conv2d_backward_data(p, g.data<float>(), w.data<float>(), dx_ref.data<float>());
    cuda::conv2d_backward_data(p, gd.data<float>(), wd.data<float>(), dx.data<float>());
    const int64_t kd = cs.c_out * cs.k * cs.k;  // data-gradient reduction length
    require_close(dx.to_vector(), dx_ref.to_vector(), conv_atol(kd), reduction_rtol(kd), "dx");

    Tensor dw_ref = Tensor::empty(cs.w_shape()), dw = poisoned(cs.w_shape(), d);
    cpu::conv2d_backward_weight(p, x.data<float>(), g.data<float>(), dw_ref.data<float>());
    cuda::conv2d_backward_weight(p, xd.data<float>(), gd.data<float>(), dw.data<float>());
    const int64_t kw = cs.n * pixels;  // weight-gradient reduction length
    require_close(dw.to_vector(), dw_ref.to_vector(), conv_atol(kw), reduction_rtol(kw), "dw");

    Tensor db_ref = Tensor::empty(Shape{cs.c_out}), db = poisoned(Shape{cs.c_out}, d);
    cpu::channel_sum(g.data<float>(), p.n, p.c_out, pixels, db_ref.data<float>());
    cuda::channel_sum(gd.data<float>(), p.n, p.c_out, pixels, db.data<float>());
    require_close(db.to_vector(), db_ref.to_vector(), conv_atol(kw), reduction_rtol(kw), "db");
  }
}

TEST_CASE("the split-K plan fills the GPU on the deep levels, never leaves a split empty, and is pinned", "[conv2d]") {
  using cuda::igemm::plan_split_k;
  namespace igemm = cuda::igemm;
  // The paper configuration's passes, as bench/time_model.py's twin (split_plan) computes them:
  // the static predictions in docs/benchmarks.md are of these splits. (tile m, tile n, K slice,
  // m, n, images, K.)
  const auto splits = [](int64_t tm, int64_t tn, int64_t ks, int64_t m, int64_t n, int64_t g, int64_t k) {
    return plan_split_k(tm, tn, ks, m, n, g, k).splits;
  };
  CHECK(splits(128, 128, 32, 1024, 784, 1, 9216) == 7);    // bottom.conv2 forward, tf32: 56 tiles
  CHECK(splits(128, 128, 32, 512, 1024, 1, 9216) == 8);    // bottom.conv1 data gradient: 32 tiles
  CHECK(splits(64, 128, 32, 64, 576, 1, 568 * 568) == 79);  // down0.conv2 weight gradient
  CHECK(splits(128, 128, 32, 2048, 784, 1, 1024) == 2);    // up3 up-convolution forward
  CHECK(splits(128, 128, 8, 1024, 784, 1, 9216) == 7);     // bottom.conv2 forward, fp32 (K slices of 8)
  CHECK(splits(64, 128, 32, 64, 390 * 390, 1, 1152) == 1); // up0.conv1 forward: 1189 tiles fill the GPU
  CHECK(splits(64, 128, 8, 2, 64, 1, 388 * 388) == 262);   // the 1×1 head's weight gradient: one tile
  CHECK(splits(128, 128, 32, 1024, 784, 4, 9216) == 4);    // a batch of 4 has 4× the tiles
  // Invariants over many shapes: every split has terms (none empty), splits cover K exactly,
  // chunks are whole K slices and at least kMinTermsPerSplit long, and the grid's z and the
  // partials stay within their limits.
  uint64_t state = 12345;
  const auto next = [&](int64_t lo, int64_t hi) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + static_cast<int64_t>((state >> 33) % static_cast<uint64_t>(hi - lo + 1));
  };
  for (int i = 0; i < 2000; ++i) {
    const int64_t tm = next(0, 1) ? 128 : 64, ks = next(0, 1) ? 32 : 8, m = next(1, 2048), n = next(1, 200000),
                  g = next(1, 64), k = next(1, 400000);
    const igemm::SplitPlan plan = plan_split_k(tm, 128, ks, m, n, g, k);
    INFO("m " << m << " n " << n << " groups " << g << " K " << k << ": " << plan.splits << " splits of " << plan.chunk);
    REQUIRE(plan.splits >= 1);
    REQUIRE(plan.chunk * plan.splits >= k);
    REQUIRE(plan.chunk * (plan.splits - 1) < k);
    if (plan.splits > 1) {
      REQUIRE(plan.chunk % ks == 0);
      REQUIRE(plan.chunk >= igemm::kMinTermsPerSplit);
      REQUIRE(plan.splits * g <= 65535);
      REQUIRE(plan.splits * g * m * n <= igemm::kMaxPartialFloats);
    }
  }
}

TEST_CASE("conv2d CUDA autograd (fused ReLU) matches the CPU autograd", "[conv2d][cuda]") {
  const Case cs{3, 3, 17, 9, 8, 3, Padding::Valid, true};
  const Device d = cuda_device();
  Tensor grads[2][3];
  for (int run = 0; run < 2; ++run) {
    const Device dev = run == 0 ? Device::cpu() : d;
    Tensor x = random_tensor(cs.x_shape(), 61, dev).set_requires_grad(true);
    Tensor w = random_tensor(cs.w_shape(), 62, dev).set_requires_grad(true);
    Tensor b = random_tensor(Shape{cs.c_out}, 63, dev).set_requires_grad(true);
    conv2d(x, w, b, {cs.padding, true}).backward(random_tensor(cs.y_shape(), 64, dev));
    grads[run][0] = x.grad().to_host();
    grads[run][1] = w.grad().to_host();
    grads[run][2] = b.grad().to_host();
  }
  const int64_t kd = cs.c_out * 9, kw = cs.n * 7 * 6;  // reduction lengths of dx and dw/db
  require_close(grads[1][0], grads[0][0], conv_atol(kd), reduction_rtol(kd), "dx");
  require_close(grads[1][1], grads[0][1], conv_atol(kw), reduction_rtol(kw), "dw");
  require_close(grads[1][2], grads[0][2], conv_atol(kw), reduction_rtol(kw), "db");
}

// The CPU float32 convolution paths: the direct AVX2 3×3 kernels, Winograd F(2×2, 3×3) and the
// packed patch-GEMM engine (where the CPU has AVX2 + FMA), and im2col + Eigen GEMM, which other
// CPUs take. Each mode switches the engines it does not want off; the destructor switches all
// back on. With the direct kernels off, Winograd runs every 3×3 layer; with Winograd off too, the
// patch GEMM does.
struct CpuConvMode {
  bool direct, winograd, patch_gemm;
  std::string str() const {
    return std::string("direct kernels ") + (direct ? "on" : "off") + ", Winograd " + (winograd ? "on" : "off") +
           ", patch GEMM " + (patch_gemm ? "on" : "off");
  }
  void apply() const {
    cpu::set_conv3x3_direct_enabled(direct);
    cpu::set_winograd3x3_enabled(winograd);
    cpu::set_patch_gemm_enabled(patch_gemm);
    // F(2×2, 3×3), whose transforms are exact on small integers; F(4×4, 3×3)'s ⅙ and 1/24 are
    // not (tests/test_winograd.cpp checks it against its derived bound instead).
    cpu::set_winograd3x3_tile(winograd ? 2 : 0);
    cpu::set_winograd3x3_weight_grad_tile(winograd ? 2 : 0);
    // With Winograd on, its weight gradient runs every 3×3 layer too (exact on small integers
    // like its forward, with F(2×2, 3×3)); with Winograd off, the patch GEMM's does.
    cpu::set_winograd3x3_weight_grad(winograd ? cpu::WinogradWeightGrad::On : cpu::WinogradWeightGrad::Auto);
  }
};
const CpuConvMode kCpuConvModes[] = {{true, true, true}, {false, true, true}, {false, false, true}, {false, false, false}};
struct RestoreCpuConv {
  ~RestoreCpuConv() {
    CpuConvMode{true, true, true}.apply();
    cpu::set_winograd3x3_weight_grad(cpu::WinogradWeightGrad::Auto);
    cpu::set_winograd3x3_weight_grad_tile(0);
  }
};

TEST_CASE("conv2d CPU float paths (direct AVX2 kernels, patch GEMM, im2col + GEMM) match naive loops exactly",
          "[conv2d]") {
  RestoreCpuConv restore;
  for (const CpuConvMode& mode : kCpuConvModes) {
    mode.apply();
    INFO(mode.str() << "; direct available: " << cpu::conv3x3_direct_available() << ", Winograd available: "
                    << cpu::winograd3x3_available() << ", patch GEMM available: " << cpu::patch_gemm_available());
    // Direct-kernel layers: channel counts below its limit, output channels not a multiple of its
    // 4-channel block, widths below, at and above its 24-pixel block, both paddings, batch 2.
    // Patch-GEMM layers: output channels not a multiple of its 6-row tile and above its 192-row
    // chunk, reductions over several 256-tap slices, widths of 1 and below its 16-pixel panel
    // (panels spanning rows), k = 5. Winograd layers (its transforms are exact on these small
    // integers too): odd output sizes (a last tile row or column of one), tile rows of 8 tiles
    // ending in a one-column tile (w 17 -> 15), several tile blocks, output-channel chunks.
    for (const Case& cs : {Case{2, 1, 16, 30, 29, 3, Padding::Valid, true}, Case{1, 3, 5, 9, 26, 3, Padding::Same, false},
                           Case{2, 16, 16, 12, 51, 3, Padding::Valid, true}, Case{1, 17, 6, 7, 4, 3, Padding::Same, true},
                           Case{1, 2, 3, 3, 3, 3, Padding::Valid, false},
                           // Tall enough for several row bands per image (and several per slot
                           // of the weight gradient), batch 2.
                           Case{2, 16, 13, 150, 51, 3, Padding::Same, false},
                           Case{2, 40, 29, 11, 37, 3, Padding::Valid, true}, Case{1, 33, 200, 7, 5, 3, Padding::Same, false},
                           Case{2, 35, 70, 9, 1, 3, Padding::Same, true}, Case{1, 12, 100, 13, 9, 5, Padding::Same, false},
                           Case{2, 66, 17, 60, 23, 3, Padding::Valid, false}, Case{1, 24, 50, 9, 17, 3, Padding::Valid, true}}) {
      INFO(cs.str());
      const Conv2dParams p = cs.params();
      const auto xs = small_integers(cs.x_shape().numel(), 21, 3), ws = small_integers(cs.w_shape().numel(), 22, 2),
                 bs = small_integers(cs.c_out, 23, 4), gs = small_integers(cs.y_shape().numel(), 24, 3);
      // Products <= 6 in magnitude, <= 100·25 terms: every partial sum is an integer far below 2^24, so
      // float32 is exact in any order and both comparisons have zero tolerance.
      std::vector<float> y(gs.size()), dx(xs.size());
      cpu::conv2d_forward(p, xs.data(), ws.data(), bs.data(), y.data());
      require_close(y, naive_conv(p, to_double(xs), to_double(ws), to_double(bs)), 0.0, 0.0, "forward");
      // Naive gradients in one pass over (output pixel, tap): dx[c, i+u-pad, j+v-pad] += w[o, c, u, v]
      // · g[o, i, j] and dw[o, c, u, v] += g[o, i, j] · x[c, i+u-pad, j+v-pad]. For dw at most
      // 2·150·51 products <= 9 in magnitude, so every partial sum is an integer below 2^24: exact.
      std::vector<double> dx_ref(xs.size(), 0.0), dw_ref(ws.size(), 0.0);
      for (int64_t n = 0; n < p.n; ++n)
        for (int64_t o = 0; o < p.c_out; ++o)
          for (int64_t i = 0; i < p.h_out; ++i)
            for (int64_t j = 0; j < p.w_out; ++j)
              for (int64_t c = 0; c < p.c_in; ++c)
                for (int64_t u = 0; u < p.k; ++u)
                  for (int64_t v = 0; v < p.k; ++v) {
                    const int64_t ih = i + u - p.pad, iw = j + v - p.pad;
                    if (ih < 0 || ih >= p.h || iw < 0 || iw >= p.w) continue;
                    const double g = gs[((n * p.c_out + o) * p.h_out + i) * p.w_out + j];
                    const int64_t xi = ((n * p.c_in + c) * p.h + ih) * p.w + iw, wi = ((o * p.c_in + c) * p.k + u) * p.k + v;
                    dx_ref[xi] += double(ws[wi]) * g;
                    dw_ref[wi] += double(xs[xi]) * g;
                  }
      std::fill(dx.begin(), dx.end(), std::numeric_limits<float>::quiet_NaN());  // must be overwritten
      cpu::conv2d_backward_data(p, gs.data(), ws.data(), dx.data());
      require_close(dx, dx_ref, 0.0, 0.0, "data gradient");
      std::vector<float> dw(ws.size(), std::numeric_limits<float>::quiet_NaN());
      cpu::conv2d_backward_weight(p, xs.data(), gs.data(), dw.data());
      require_close(dw, dw_ref, 0.0, 0.0, "weight gradient");
    }
  }
}

// Without padding the direct kernel reads x in place: a pixel block's loads run past a row's
// end into the next row (lanes it discards) and must never pass the end of x. Here x ends at a
// page boundary followed by an inaccessible page (a read past it faults), NaNs in column 0 of
// some rows may reach only the outputs that read them (not through the discarded lanes of the row
// above), and the widths leave the last pixel block partly or almost wholly past the row (w_out 1,
// 24, 47, 49 against blocks of 24 and 48) or x too short for any band to read in place.
TEST_CASE("conv3x3_direct reads unpadded input in place without reading past its end", "[conv2d]") {
  const long page = sysconf(_SC_PAGESIZE);
  for (const cpu::CpuIsa isa : {cpu::CpuIsa::Avx2, cpu::CpuIsa::Avx512}) {
    if (!cpu::cpu_isa_supported(isa)) continue;
    cpu::CpuIsaScope level(isa);
    if (!cpu::conv3x3_direct_available()) continue;
    for (const Case& cs : {Case{2, 3, 5, 40, 51, 3, Padding::Valid, true}, Case{1, 1, 16, 70, 26, 3, Padding::Valid, false},
                           Case{3, 16, 16, 20, 49, 3, Padding::Valid, false}, Case{1, 2, 9, 5, 3, 3, Padding::Valid, true}}) {
      INFO(cs.str() << " at " << cpu::cpu_isa_name(isa));
      const Conv2dParams p = cs.params();
      std::vector<float> xs = small_integers(cs.x_shape().numel(), 31, 3);
      const auto ws = small_integers(cs.w_shape().numel(), 32, 2), bs = small_integers(cs.c_out, 33, 4);
      for (int64_t r = 1; r < p.n * p.c_in * p.h; r += 7) xs[static_cast<size_t>(r * p.w)] = NAN;
      const size_t bytes = xs.size() * sizeof(float), pages = (bytes + page - 1) / page + 1;
      void* map = mmap(nullptr, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      REQUIRE(map != MAP_FAILED);
      char* guard = static_cast<char*>(map) + (pages - 1) * page;
      REQUIRE(mprotect(guard, page, PROT_NONE) == 0);
      float* x = reinterpret_cast<float*>(guard - bytes);  // ends where the guard page begins
      std::memcpy(x, xs.data(), bytes);
      std::vector<float> y(cs.y_shape().numel(), -7.0f);
      cpu::conv3x3_direct(p.n, p.c_in, p.h, p.w, p.c_out, 0, x, ws.data(), bs.data(), p.relu, y.data());
      munmap(map, pages * page);
      const auto ref = naive_conv(p, to_double(xs), to_double(ws), to_double(bs));
      for (size_t i = 0; i < y.size(); ++i) {
        INFO("output " << i);
        if (std::isnan(ref[i]))
          REQUIRE(std::isnan(y[i]));
        else
          REQUIRE(double(y[i]) == ref[i]);  // small integers: exact in any order
      }
    }
  }
}

TEST_CASE("conv2d CPU fused ReLU gradient + bias sum equals the two passes bit for bit", "[conv2d]") {
  // Pixel counts with whole 8-lane blocks, tails, and only a tail; y has exact zeros (masked:
  // the ReLU's gradient at 0 is 0) and negative values.
  for (int64_t pixels : {int64_t{37}, int64_t{8}, int64_t{3}, int64_t{1000}}) {
    INFO("pixels " << pixels);
    const int64_t n = 2, channels = 5, count = n * channels * pixels;
    std::vector<float> y = random_values<float>(count, 51, -1.0, 1.0);
    for (int64_t i = 0; i < count; i += 7) y[static_cast<size_t>(i)] = 0.0f;
    const std::vector<float> dy = random_values<float>(count, 52, -1.0, 1.0);
    std::vector<float> g1(y.size(), NAN), g2(y.size(), NAN), db1(channels, NAN), db2(channels, NAN);
    cpu::relu_backward(y.data(), dy.data(), g1.data(), count);
    cpu::channel_sum(g1.data(), n, channels, pixels, db1.data());
    cpu::relu_backward_channel_sum(y.data(), dy.data(), n, channels, pixels, g2.data(), db2.data());
    REQUIRE(g2 == g1);
    REQUIRE(db2 == db1);
    // And the sums themselves, against a plain double loop: both accumulate in double, so they
    // agree to float rounding of the result.
    for (int64_t c = 0; c < channels; ++c) {
      double ref = 0.0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < pixels; ++j) {
          const size_t at = static_cast<size_t>((i * channels + c) * pixels + j);
          ref += y[at] > 0.0f ? dy[at] : 0.0;
        }
      REQUIRE(std::fabs(db2[c] - ref) <= 1e-6 * (1.0 + std::fabs(ref)));
    }
  }
}

TEST_CASE("conv2d CUDA fused ReLU gradient + bias sum equals the two passes bit for bit and the CPU", "[conv2d][cuda]") {
  // Pixel counts below one chunk, across chunk boundaries (4096 elements a chunk) and spanning
  // images within a chunk; NaN-poisoned outputs; y with exact zeros.
  const Device d = cuda_device();
  for (int64_t pixels : {int64_t{3}, int64_t{37}, int64_t{1000}, int64_t{5000}}) {
    INFO("pixels " << pixels);
    const int64_t n = 3, channels = 5, count = n * channels * pixels;
    std::vector<float> y = random_values<float>(count, 61, -1.0, 1.0);
    for (int64_t i = 0; i < count; i += 7) y[static_cast<size_t>(i)] = 0.0f;
    const Shape shape{n, channels, pixels};
    const Tensor yd = Tensor::from_vector(y, shape, d), dyd = random_tensor(shape, 62, d);
    Tensor g1 = poisoned(shape, d), g2 = poisoned(shape, d), db1 = poisoned(Shape{channels}, d),
           db2 = poisoned(Shape{channels}, d);
    cuda::relu_backward(yd.data<float>(), dyd.data<float>(), g1.data<float>(), count);
    cuda::channel_sum(g1.data<float>(), n, channels, pixels, db1.data<float>());
    cuda::relu_backward_channel_sum(yd.data<float>(), dyd.data<float>(), n, channels, pixels, g2.data<float>(),
                                    db2.data<float>());
    REQUIRE(g2.to_vector() == g1.to_vector());
    REQUIRE(db2.to_vector() == db1.to_vector());
    std::vector<float> g_ref(static_cast<size_t>(count)), db_ref(static_cast<size_t>(channels));
    const std::vector<float> dy = dyd.to_vector();
    cpu::relu_backward_channel_sum(y.data(), dy.data(), n, channels, pixels, g_ref.data(), db_ref.data());
    REQUIRE(g2.to_vector() == g_ref);
    const int64_t k = n * pixels;  // the sum's length
    require_close(db2.to_vector(), db_ref, conv_atol(k), reduction_rtol(k), "db against the CPU");
  }
}

TEST_CASE("conv2d CPU weight gradient has the same bits for any thread count", "[conv2d]") {
  // Random non-integer data, so a different summation order would show in the last bits; the
  // slots of the patch GEMM and of the im2col path must not depend on the threads.
  test::ThreadCountGuard restore_threads;
  RestoreCpuConv restore_paths;
  for (const Case& cs : {Case{2, 16, 13, 150, 51, 3, Padding::Same, false}, Case{1, 48, 40, 40, 37, 3, Padding::Valid, false},
                         Case{2, 40, 36, 70, 45, 3, Padding::Valid, false}}) {
    INFO(cs.str());
    const Conv2dParams p = cs.params();
    const auto xs = random_values<float>(cs.x_shape().numel(), 31, -1.0, 1.0);
    const auto gs = random_values<float>(cs.y_shape().numel(), 32, -1.0, 1.0);
    for (const CpuConvMode& mode : kCpuConvModes) {
      mode.apply();
      INFO(mode.str());
      std::vector<std::vector<float>> results;
      for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        std::vector<float> dw(static_cast<size_t>(cs.w_shape().numel()), std::numeric_limits<float>::quiet_NaN());
        cpu::conv2d_backward_weight(p, xs.data(), gs.data(), dw.data());
        results.push_back(dw);
      }
      CHECK(results[0] == results[1]);
      CHECK(results[0] == results[2]);
    }
  }
}
