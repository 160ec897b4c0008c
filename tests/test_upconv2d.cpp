// tests/test_upconv2d.cpp — up-convolution (transposed conv 2×2, stride 2): exact small-integer
// results against a naive loop, gradient checks in double, the adjoint identity, autograd vs raw
// launchers, CUDA (simulator or GPU) vs CPU on awkward sizes, and bad input.
#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "kernels/conv2d.h"
#include "kernels/patch_gemm_cpu.h"
#include "kernels/upconv2d.h"
#include "test_util.h"

using namespace unet;
using namespace unet::test;

namespace {

std::string str(const Upconv2dParams& p) {
  return "N" + std::to_string(p.n) + " Cin" + std::to_string(p.c_in) + " Cout" + std::to_string(p.c_out) + " " +
         std::to_string(p.h) + "x" + std::to_string(p.w);
}
Shape x_shape(const Upconv2dParams& p) { return {p.n, p.c_in, p.h, p.w}; }
Shape w_shape(const Upconv2dParams& p) { return {p.c_in, p.c_out, 2, 2}; }
Shape y_shape(const Upconv2dParams& p) { return {p.n, p.c_out, 2 * p.h, 2 * p.w}; }

// The definition, scattered from each input pixel, in double: the independent reference.
std::vector<double> naive_upconv(const Upconv2dParams& p, const std::vector<double>& x, const std::vector<double>& w,
                                 const std::vector<double>& b) {
  std::vector<double> y(static_cast<size_t>(y_shape(p).numel()), 0.0);
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t o = 0; o < p.c_out; ++o)
      for (int64_t r = 0; r < 2 * p.h; ++r)
        for (int64_t s = 0; s < 2 * p.w; ++s) y[((n * p.c_out + o) * 2 * p.h + r) * 2 * p.w + s] = b.empty() ? 0 : b[o];
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c_in; ++c)
      for (int64_t i = 0; i < p.h; ++i)
        for (int64_t j = 0; j < p.w; ++j)
          for (int64_t o = 0; o < p.c_out; ++o)
            for (int64_t a = 0; a < 2; ++a)
              for (int64_t bb = 0; bb < 2; ++bb)
                y[((n * p.c_out + o) * 2 * p.h + 2 * i + a) * 2 * p.w + 2 * j + bb] +=
                    x[((n * p.c_in + c) * p.h + i) * p.w + j] * w[((c * p.c_out + o) * 2 + a) * 2 + bb];
  return y;
}

std::vector<float> small_integers(int64_t n, uint64_t seed, int range) {
  std::vector<float> v = random_values<float>(n, seed, -range - 0.5, range + 0.5);
  for (float& f : v) f = std::round(f);
  return v;
}

// Float32 tolerance for a length-K sum of terms bounded by 1 in another order (see
// test_conv2d.cpp): atol = reduction_rtol(K)·sqrt(K), rtol = reduction_rtol(K).
double sum_atol(int64_t k) { return reduction_rtol(k) * std::sqrt(static_cast<double>(k)); }

}  // namespace

TEST_CASE("upconv2d matches a naive loop exactly on small integers", "[upconv2d]") {
  const Upconv2dParams p{2, 5, 3, 4, 7};
  const auto xs = small_integers(x_shape(p).numel(), 71, 3), ws = small_integers(w_shape(p).numel(), 72, 2),
             bs = small_integers(p.c_out, 73, 4);
  // |terms| <= 6, 5 terms per output: integer partial sums, exact in float32 in any order.
  const auto ref = naive_upconv(p, to_double(xs), to_double(ws), to_double(bs));
  const Tensor y = upconv2d(Tensor::from_vector(xs, x_shape(p)), Tensor::from_vector(ws, w_shape(p)),
                            Tensor::from_vector(bs, Shape{p.c_out}));
  REQUIRE(y.shape() == y_shape(p));
  require_close(y.to_vector(), ref, 0.0, 0.0, "cpu exact");
}

TEST_CASE("upconv2d float CPU passes (patch GEMM and Eigen paths) match naive loops exactly", "[upconv2d]") {
  // Sizes off the engine's tiles: Cout·4 not a multiple of its 6 rows or 16 columns, pixel counts
  // over several 256-pixel slices (and weight-gradient slots), batch 3.
  struct Restore { ~Restore() { cpu::set_patch_gemm_enabled(true); } } restore;
  for (bool engine : {true, false}) {
    cpu::set_patch_gemm_enabled(engine);
    for (const Upconv2dParams& p : {Upconv2dParams{3, 7, 5, 19, 23}, Upconv2dParams{1, 13, 40, 9, 30}}) {
      INFO(str(p) << (engine ? " patch GEMM" : " Eigen") << " (engine available: " << cpu::patch_gemm_available() << ")");
      const auto xs = small_integers(x_shape(p).numel(), 81, 3), ws = small_integers(w_shape(p).numel(), 82, 2),
                 bs = small_integers(p.c_out, 83, 4), gs = small_integers(y_shape(p).numel(), 84, 3);
      // |terms| <= 9 and at most 3·19·23 of them per sum: integer partial sums below 2^24, exact in
      // float32 in any order.
      std::vector<double> dx_ref(xs.size(), 0.0), dw_ref(ws.size(), 0.0);
      for (int64_t n = 0; n < p.n; ++n)
        for (int64_t c = 0; c < p.c_in; ++c)
          for (int64_t i = 0; i < p.h; ++i)
            for (int64_t j = 0; j < p.w; ++j)
              for (int64_t o = 0; o < p.c_out; ++o)
                for (int64_t a = 0; a < 2; ++a)
                  for (int64_t b = 0; b < 2; ++b) {
                    const int64_t xi = ((n * p.c_in + c) * p.h + i) * p.w + j, wi = ((c * p.c_out + o) * 2 + a) * 2 + b;
                    const double g = gs[((n * p.c_out + o) * 2 * p.h + 2 * i + a) * 2 * p.w + 2 * j + b];
                    dx_ref[xi] += ws[wi] * g;
                    dw_ref[wi] += xs[xi] * g;
                  }
      std::vector<float> y(gs.size(), NAN), dx(xs.size(), NAN), dw(ws.size(), NAN);
      cpu::upconv2d_forward(p, xs.data(), ws.data(), bs.data(), y.data());
      require_close(y, naive_upconv(p, to_double(xs), to_double(ws), to_double(bs)), 0.0, 0.0, "forward");
      cpu::upconv2d_backward_data(p, gs.data(), ws.data(), dx.data());
      require_close(dx, dx_ref, 0.0, 0.0, "data gradient");
      cpu::upconv2d_backward_weight(p, xs.data(), gs.data(), dw.data());
      require_close(dw, dw_ref, 0.0, 0.0, "weight gradient");
    }
  }
}

TEST_CASE("upconv2d backward passes match central differences (double)", "[upconv2d]") {
  for (const Upconv2dParams& p : {Upconv2dParams{2, 3, 2, 3, 4}, Upconv2dParams{1, 1, 3, 2, 5}}) {
    INFO(str(p));
    const auto x = random_values<double>(x_shape(p).numel(), 81), w = random_values<double>(w_shape(p).numel(), 82),
               b = random_values<double>(p.c_out, 83), dy = random_values<double>(y_shape(p).numel(), 84);
    auto forward = [&](const std::vector<double>& xx, const std::vector<double>& ww, const std::vector<double>& bb) {
      std::vector<double> y(dy.size());
      cpu::upconv2d_forward(p, xx.data(), ww.data(), bb.data(), y.data());
      return y;
    };
    std::vector<double> dx(x.size()), dw(w.size()), db(b.size());
    cpu::upconv2d_backward_data(p, dy.data(), w.data(), dx.data());
    cpu::upconv2d_backward_weight(p, x.data(), dy.data(), dw.data());
    cpu::channel_sum(dy.data(), p.n, p.c_out, 4 * p.h * p.w, db.data());
    check_gradient([&](const std::vector<double>& v) { return forward(v, w, b); }, x, dy, dx, "dx");
    check_gradient([&](const std::vector<double>& v) { return forward(x, v, b); }, w, dy, dw, "dw");
    check_gradient([&](const std::vector<double>& v) { return forward(x, w, v); }, b, dy, db, "db");
    require_close(forward(x, w, b), naive_upconv(p, x, w, b), 1e-12, 1e-12, "forward vs naive");  // double rounding
  }
}

TEST_CASE("upconv2d data gradient is the adjoint of the forward", "[upconv2d]") {
  for (const Upconv2dParams& p : {Upconv2dParams{2, 4, 3, 5, 3}, Upconv2dParams{1, 7, 2, 4, 6}}) {
    INFO(str(p));
    const auto x = random_values<double>(x_shape(p).numel(), 91), w = random_values<double>(w_shape(p).numel(), 92),
               y = random_values<double>(y_shape(p).numel(), 93);
    std::vector<double> ax(y.size()), aty(x.size());
    cpu::upconv2d_forward(p, x.data(), w.data(), static_cast<const double*>(nullptr), ax.data());
    cpu::upconv2d_backward_data(p, y.data(), w.data(), aty.data());
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < y.size(); ++i) lhs += ax[i] * y[i];
    for (size_t i = 0; i < x.size(); ++i) rhs += x[i] * aty[i];
    REQUIRE(std::fabs(lhs - rhs) <= 1e-12 * (std::fabs(lhs) + 1.0));  // same double sum, reordered
  }
}

TEST_CASE("upconv2d autograd agrees with the raw CPU backward", "[upconv2d]") {
  const Upconv2dParams p{2, 3, 4, 5, 3};
  Tensor x = random_tensor(x_shape(p), 101).set_requires_grad(true);
  Tensor w = random_tensor(w_shape(p), 102).set_requires_grad(true);
  Tensor b = random_tensor(Shape{p.c_out}, 103).set_requires_grad(true);
  const Tensor dy = random_tensor(y_shape(p), 104);
  upconv2d(x, w, b).backward(dy);
  std::vector<float> dx(x.numel()), dw(w.numel()), db(p.c_out);
  cpu::upconv2d_backward_data(p, dy.data<float>(), w.data<float>(), dx.data());
  cpu::upconv2d_backward_weight(p, x.data<float>(), dy.data<float>(), dw.data());
  cpu::channel_sum(dy.data<float>(), p.n, p.c_out, 4 * p.h * p.w, db.data());
  require_close(x.grad().to_vector(), dx, 0.0, 0.0, "dx");  // same launchers, same inputs: identical
  require_close(w.grad().to_vector(), dw, 0.0, 0.0, "dw");
  require_close(b.grad().to_vector(), db, 0.0, 0.0, "db");
}

TEST_CASE("upconv2d rejects bad input with typed errors", "[upconv2d]") {
  const Tensor x = random_tensor(Shape{1, 3, 4, 4}, 1), w = random_tensor(Shape{3, 5, 2, 2}, 2),
               b = random_tensor(Shape{5}, 3);
  CHECK_NOTHROW(upconv2d(x, w, b));
  CHECK_NOTHROW(upconv2d(x, w, Tensor()));
  CHECK_THROWS_AS(upconv2d(random_tensor(Shape{3, 4, 4}, 1), w, b), ShapeError);     // rank 3
  CHECK_THROWS_AS(upconv2d(x, random_tensor(Shape{5, 3, 2, 2}, 2), b), ShapeError);  // [Cout, Cin] layout
  CHECK_THROWS_AS(upconv2d(x, random_tensor(Shape{3, 5, 3, 3}, 2), b), ShapeError);  // not 2×2
  CHECK_THROWS_AS(upconv2d(x, w, random_tensor(Shape{3}, 3)), ShapeError);           // bias size
  CHECK_THROWS_AS(upconv2d(Tensor::zeros(Shape{1, 3, 0, 4}), w, b), ShapeError);     // empty
  CHECK_THROWS_AS(upconv2d(Tensor::zeros(Shape{1, 3, 4, 4}, DType::Int32), w, b), DTypeError);
  CHECK_THROWS_AS(upconv2d(x, Tensor::zeros(Shape{3, 5, 2, 2}, DType::Int32), b), DTypeError);
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("upconv2d CUDA rejects tensors on different devices", "[upconv2d][cuda]") {
  const Tensor x = random_tensor(Shape{1, 3, 4, 4}, 1, cuda_device()), w = random_tensor(Shape{3, 5, 2, 2}, 2);
  try {
    upconv2d(x, w, Tensor());
    FAIL("expected DeviceError");
  } catch (const DeviceError& e) {
    const std::string m = e.what();
    CHECK(m.find("cpu") != std::string::npos);
    CHECK(m.find("cuda") != std::string::npos);
  }
}

TEST_CASE("upconv2d CUDA launchers refuse tensors beyond their 32-bit indices", "[upconv2d][cuda]") {
  // Output 2 × 32 × 8192 × 4096 = 2^31 elements: refused before anything is read (null pointers).
  const Upconv2dParams p{2, 64, 4096, 2048, 32};
  CHECK_THROWS_WITH(cuda::upconv2d_forward(p, nullptr, nullptr, nullptr, nullptr),
                    Catch::Contains("2^31") && Catch::Contains("split the batch"));
  CHECK_THROWS_AS(cuda::upconv2d_backward_data(p, nullptr, nullptr, nullptr), ValueError);
  CHECK_THROWS_AS(cuda::upconv2d_backward_weight(p, nullptr, nullptr, nullptr), ValueError);
}

TEST_CASE("upconv2d CUDA matches the naive loop exactly on small integers", "[upconv2d][cuda]") {
  const Upconv2dParams p{3, 5, 17, 5, 3};
  const auto xs = small_integers(x_shape(p).numel(), 71, 3), ws = small_integers(w_shape(p).numel(), 72, 2),
             bs = small_integers(p.c_out, 73, 4);
  const auto ref = naive_upconv(p, to_double(xs), to_double(ws), to_double(bs));
  const Device d = cuda_device();
  Tensor y = poisoned(y_shape(p), d);
  cuda::upconv2d_forward(p, Tensor::from_vector(xs, x_shape(p), d).data<float>(),
                         Tensor::from_vector(ws, w_shape(p), d).data<float>(),
                         Tensor::from_vector(bs, Shape{p.c_out}, d).data<float>(), y.data<float>());
  require_close(y.to_vector(), ref, 0.0, 0.0, "cuda exact");  // integer sums: exact
}

TEST_CASE("upconv2d CUDA forward and backward match the CPU", "[upconv2d][cuda]") {
  const Device d = cuda_device();
  // The last case splits the forward (K = Cin = 520) and the data gradient (K = 4·Cout = 520)
  // over K across two images: the bias is added by the splits' sum, after the shuffle.
  for (const Upconv2dParams& p : {Upconv2dParams{1, 3, 17, 5, 7}, Upconv2dParams{3, 17, 3, 6, 9},
                                  Upconv2dParams{1, 17, 20, 13, 11}, Upconv2dParams{3, 70, 5, 3, 3},
                                  Upconv2dParams{2, 520, 3, 4, 130}}) {
    INFO(str(p));
    const cuda::PassSplits splits = cuda::upconv2d_splits(p);
    INFO("splits: forward " << splits.forward << ", data " << splits.data << ", weight " << splits.weight);
    if (p.c_in >= 512) CHECK(splits.forward > 1);
    if (4 * p.c_out >= 512) CHECK(splits.data > 1);
    const Tensor x = random_tensor(x_shape(p), 111), w = random_tensor(w_shape(p), 112),
                 b = random_tensor(Shape{p.c_out}, 113), g = random_tensor(y_shape(p), 114);
    const Tensor xd = x.to(d), wd = w.to(d), bd = b.to(d), gd = g.to(d);

    Tensor y_ref = Tensor::empty(y_shape(p)), y = poisoned(y_shape(p), d);
    cpu::upconv2d_forward(p, x.data<float>(), w.data<float>(), b.data<float>(), y_ref.data<float>());
    cuda::upconv2d_forward(p, xd.data<float>(), wd.data<float>(), bd.data<float>(), y.data<float>());
    require_close(y.to_vector(), y_ref.to_vector(), sum_atol(p.c_in), reduction_rtol(p.c_in), "forward");  // K = Cin

    Tensor dx_ref = Tensor::empty(x_shape(p)), dx = poisoned(x_shape(p), d);
    cpu::upconv2d_backward_data(p, g.data<float>(), w.data<float>(), dx_ref.data<float>());
    cuda::upconv2d_backward_data(p, gd.data<float>(), wd.data<float>(), dx.data<float>());
    const int64_t kd = 4 * p.c_out;  // data-gradient reduction length
    require_close(dx.to_vector(), dx_ref.to_vector(), sum_atol(kd), reduction_rtol(kd), "dx");

    Tensor dw_ref = Tensor::empty(w_shape(p)), dw = poisoned(w_shape(p), d);
    cpu::upconv2d_backward_weight(p, x.data<float>(), g.data<float>(), dw_ref.data<float>());
    cuda::upconv2d_backward_weight(p, xd.data<float>(), gd.data<float>(), dw.data<float>());
    const int64_t kw = p.n * p.h * p.w;  // weight-gradient reduction length
    require_close(dw.to_vector(), dw_ref.to_vector(), sum_atol(kw), reduction_rtol(kw), "dw");

    Tensor db_ref = Tensor::empty(Shape{p.c_out}), db = poisoned(Shape{p.c_out}, d);
    cpu::channel_sum(g.data<float>(), p.n, p.c_out, 4 * p.h * p.w, db_ref.data<float>());
    cuda::channel_sum(gd.data<float>(), p.n, p.c_out, 4 * p.h * p.w, db.data<float>());
    const int64_t kb = 4 * kw;  // bias-gradient reduction length
    require_close(db.to_vector(), db_ref.to_vector(), sum_atol(kb), reduction_rtol(kb), "db");
  }
}

TEST_CASE("upconv2d CUDA autograd matches the CPU autograd", "[upconv2d][cuda]") {
  const Upconv2dParams p{3, 17, 3, 5, 6};
  Tensor grads[2][3];
  for (int run = 0; run < 2; ++run) {
    const Device dev = run == 0 ? Device::cpu() : cuda_device();
    Tensor x = random_tensor(x_shape(p), 121, dev).set_requires_grad(true);
    Tensor w = random_tensor(w_shape(p), 122, dev).set_requires_grad(true);
    Tensor b = random_tensor(Shape{p.c_out}, 123, dev).set_requires_grad(true);
    upconv2d(x, w, b).backward(random_tensor(y_shape(p), 124, dev));
    grads[run][0] = x.grad().to_host();
    grads[run][1] = w.grad().to_host();
    grads[run][2] = b.grad().to_host();
  }
  const int64_t kd = 4 * p.c_out, kw = p.n * p.h * p.w;  // reduction lengths of dx, dw (db: 4·kw)
  require_close(grads[1][0], grads[0][0], sum_atol(kd), reduction_rtol(kd), "dx");
  require_close(grads[1][1], grads[0][1], sum_atol(kw), reduction_rtol(kw), "dw");
  require_close(grads[1][2], grads[0][2], sum_atol(4 * kw), reduction_rtol(4 * kw), "db");
}
