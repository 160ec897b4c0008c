// tests/test_conv_precision.cpp — the tensor-core convolutions and up-convolutions (precision
// tf32 and bf16, kernels/implicit_gemm_tc.cuh) against the CPU in double, every pass, on shapes
// that do not divide the tiles, into NaN-poisoned outputs. Two bounds per output element, both
// rigorous (first order in the unit round-offs), with K the reduction length of that output, S
// the number of split-K partials (at most K / 256 + 1) and M = Σ_k |a_k·b_k| + |bias|:
//
//  1. Against the reference computed in double from the operands rounded by the host twins of the
//     GPU's conversions (core/precision.h) — exactly the products the tensor cores must form. Only
//     the FP32 accumulation may differ, and any order of adding K products, S partials and a bias
//     in FP32 errs by at most (K + S + 1)·2^-24·M:
//         |y − ref_rounded| ≤ (K + S + 2)·2^-24·M.
//     A kernel that does not round, rounds the wrong way, or multiplies a wrong operand fails it
//     (the rounding alone moves results by ~u·M ≫ K·2^-24·M).
//  2. Against the reference from the operands as given (what the user asked for): each product
//     of two operands rounded with relative errors |δ| ≤ u has relative error ≤ 2u + u², so
//         |y − ref| ≤ (2u + u²)·Σ|a·b| + (K + S + 2)·2^-24·(1 + u)²·M,
//     with u = 2^-11 (tf32) or 2^-8 (bf16). This is the accuracy a user of the precision gets.
#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "core/precision.h"
#include "kernels/conv2d.h"
#include "kernels/upconv2d.h"
#include "unet/model.h"
#include "test_util.h"

using namespace unet;
using namespace unet::test;

namespace {

enum class Pass { Forward, Data, Weight };
const char* pass_name(Pass p) { return p == Pass::Forward ? "forward" : p == Pass::Data ? "data gradient" : "weight gradient"; }

std::vector<double> as_double(const std::vector<float>& v, Precision round_to, bool absolute) {
  std::vector<double> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double x = round_operand(v[i], round_to);
    r[i] = absolute ? std::fabs(x) : x;
  }
  return r;
}

// Checks y against both bounds of the header. `run(a, b, bias)` computes the pass in double on
// the CPU from operand vectors (bias may be empty); k is the reduction length.
template <class Run>
void check_bounds(const std::vector<float>& y, const std::vector<float>& a, const std::vector<float>& b,
                  const std::vector<float>& bias, int64_t k, Precision p, Run run, const std::string& what,
                  bool relu = false) {
  const auto bias_d = [&](Precision r, bool absolute) { return bias.empty() ? std::vector<double>{} : as_double(bias, r, absolute); };
  const std::vector<double> exact = run(as_double(a, p, false), as_double(b, p, false), bias_d(Precision::FP32, false));
  const std::vector<double> given = run(as_double(a, Precision::FP32, false), as_double(b, Precision::FP32, false),
                                        bias_d(Precision::FP32, false));
  const std::vector<double> mag = run(as_double(a, p, true), as_double(b, p, true), bias_d(Precision::FP32, true));
  const std::vector<double> mag_given = run(as_double(a, Precision::FP32, true), as_double(b, Precision::FP32, true),
                                            bias_d(Precision::FP32, true));
  REQUIRE(y.size() == exact.size());
  const double u = unit_roundoff(p), acc = static_cast<double>(k + k / 256 + 3) * 0x1p-24;
  const auto act = [&](double v) { return relu && v < 0 ? 0.0 : v; };
  size_t bad1 = 0, bad2 = 0, worst = 0;
  double worst_ratio = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double e1 = std::fabs(y[i] - act(exact[i])), t1 = acc * mag[i];
    const double e2 = std::fabs(y[i] - act(given[i])), t2 = (2 * u + u * u) * mag_given[i] + acc * (1 + u) * (1 + u) * mag[i];
    if (!(e1 <= t1)) ++bad1;  // NaN fails
    if (!(e2 <= t2)) ++bad2;
    const double r = std::isnan(e1) ? 1e300 : e1 / (t1 > 0 ? t1 : 1e-300);
    if (r > worst_ratio) { worst_ratio = r; worst = i; }
  }
  INFO(what << " (" << precision_name(p) << ", K = " << k << "): " << bad1 << " of " << y.size()
            << " elements beyond the rounded-operand bound, " << bad2 << " beyond the user bound; worst at " << worst
            << ": got " << y[worst] << ", rounded-operand reference " << act(exact[worst]) << ", bound "
            << acc * mag[worst]);
  CHECK(bad1 == 0);
  CHECK(bad2 == 0);
}

struct ConvCase {
  int64_t n, c_in, c_out, h, w, k;
  Padding padding;
  bool relu;
  Conv2dParams params(Precision p) const { return conv2d_params(n, c_in, h, w, c_out, k, padding, relu, p); }
  std::string str() const {
    return "N" + std::to_string(n) + " Cin" + std::to_string(c_in) + " Cout" + std::to_string(c_out) + " " +
           std::to_string(h) + "x" + std::to_string(w) + " k" + std::to_string(k) + (padding == Padding::Same ? " same" : " valid") +
           (relu ? " relu" : "");
  }
};

Tensor on(const std::vector<float>& v, const Shape& s) { return Tensor::from_vector(v, s, cuda_device()); }

}  // namespace

TEST_CASE("tensor-core conv2d forward, data and weight gradient stay within the tf32 and bf16 bounds", "[conv2d][cuda][precision]") {
  for (const ConvCase& cs : {
           ConvCase{1, 3, 17, 13, 11, 3, Padding::Valid, true},    // K = 27: one partial slice
           ConvCase{2, 17, 70, 11, 9, 3, Padding::Same, true},     // 70 rows: the 128-row tile, K = 153
           ConvCase{1, 9, 130, 12, 13, 3, Padding::Same, false},   // two row tiles, two column tiles
           ConvCase{2, 4, 6, 24, 25, 3, Padding::Valid, false},    // 64-row tile; split-K weight gradient
           ConvCase{1, 5, 7, 9, 10, 1, Padding::Valid, false},     // 1×1 (the head's kind)
           ConvCase{1, 3, 5, 10, 9, 5, Padding::Same, true},      // 5×5, padding 2
           ConvCase{2, 70, 60, 7, 6, 3, Padding::Same, true}}) {   // forward and data gradient split over K
    for (Precision prec : {Precision::TF32, Precision::BF16}) {
      INFO(cs.str() << " " << precision_name(prec));
      const Conv2dParams p = cs.params(prec), p_ref = cs.params(Precision::FP32);
      const cuda::PassSplits splits = cuda::conv2d_splits(p);
      INFO("splits: forward " << splits.forward << ", data " << splits.data << ", weight " << splits.weight);
      if (cs.c_in == 70) CHECK((splits.forward > 1 && splits.data > 1));
      Conv2dParams p_lin = p_ref;
      p_lin.relu = false;  // the references are pre-activation; check_bounds applies the ReLU
      const Shape xs{cs.n, cs.c_in, cs.h, cs.w}, ws{cs.c_out, cs.c_in, cs.k, cs.k}, ys{cs.n, cs.c_out, p.h_out, p.w_out};
      const std::vector<float> x = random_values<float>(xs.numel(), 101), w = random_values<float>(ws.numel(), 102),
                               b = random_values<float>(cs.c_out, 103), g = random_values<float>(ys.numel(), 104);
      const Tensor xd = on(x, xs), wd = on(w, ws), bd = on(b, Shape{cs.c_out}), gd = on(g, ys);

      Tensor y = poisoned(ys, cuda_device());
      cuda::conv2d_forward(p, xd.data<float>(), wd.data<float>(), bd.data<float>(), y.data<float>());
      check_bounds(y.to_vector(), x, w, b, cs.c_in * cs.k * cs.k, prec,
                   [&](const std::vector<double>& xa, const std::vector<double>& wa, const std::vector<double>& ba) {
                     std::vector<double> out(static_cast<size_t>(ys.numel()));
                     cpu::conv2d_forward<double>(p_lin, xa.data(), wa.data(), ba.data(), out.data());
                     return out;
                   }, pass_name(Pass::Forward), cs.relu);

      Tensor dx = poisoned(xs, cuda_device());
      cuda::conv2d_backward_data(p, gd.data<float>(), wd.data<float>(), dx.data<float>());
      check_bounds(dx.to_vector(), g, w, {}, cs.c_out * cs.k * cs.k, prec,
                   [&](const std::vector<double>& ga, const std::vector<double>& wa, const std::vector<double>&) {
                     std::vector<double> out(static_cast<size_t>(xs.numel()));
                     cpu::conv2d_backward_data<double>(p_ref, ga.data(), wa.data(), out.data());
                     return out;
                   }, pass_name(Pass::Data));

      Tensor dw = poisoned(ws, cuda_device());
      cuda::conv2d_backward_weight(p, xd.data<float>(), gd.data<float>(), dw.data<float>());
      check_bounds(dw.to_vector(), x, g, {}, cs.n * p.h_out * p.w_out, prec,
                   [&](const std::vector<double>& xa, const std::vector<double>& ga, const std::vector<double>&) {
                     std::vector<double> out(static_cast<size_t>(ws.numel()));
                     cpu::conv2d_backward_weight<double>(p_ref, xa.data(), ga.data(), out.data());
                     return out;
                   }, pass_name(Pass::Weight));
    }
  }
}

TEST_CASE("tensor-core upconv2d forward, data and weight gradient stay within the tf32 and bf16 bounds", "[upconv2d][cuda][precision]") {
  for (const Upconv2dParams& shape : {Upconv2dParams{1, 7, 5, 4, 3}, Upconv2dParams{2, 17, 9, 6, 70},
                                      Upconv2dParams{1, 40, 7, 9, 12},
                                      Upconv2dParams{2, 520, 3, 2, 130}}) {  // forward and data gradient split
    for (Precision prec : {Precision::TF32, Precision::BF16}) {
      Upconv2dParams p = shape, p_ref = shape;
      p.precision = prec;
      INFO("N" << p.n << " Cin" << p.c_in << " " << p.h << "x" << p.w << " Cout" << p.c_out << " " << precision_name(prec));
      const Shape xs{p.n, p.c_in, p.h, p.w}, ws{p.c_in, p.c_out, 2, 2}, ys{p.n, p.c_out, 2 * p.h, 2 * p.w};
      const std::vector<float> x = random_values<float>(xs.numel(), 111), w = random_values<float>(ws.numel(), 112),
                               b = random_values<float>(p.c_out, 113), g = random_values<float>(ys.numel(), 114);
      const Tensor xd = on(x, xs), wd = on(w, ws), bd = on(b, Shape{p.c_out}), gd = on(g, ys);

      Tensor y = poisoned(ys, cuda_device());
      cuda::upconv2d_forward(p, xd.data<float>(), wd.data<float>(), bd.data<float>(), y.data<float>());
      check_bounds(y.to_vector(), x, w, b, p.c_in, prec,
                   [&](const std::vector<double>& xa, const std::vector<double>& wa, const std::vector<double>& ba) {
                     std::vector<double> out(static_cast<size_t>(ys.numel()));
                     cpu::upconv2d_forward<double>(p_ref, xa.data(), wa.data(), ba.data(), out.data());
                     return out;
                   }, pass_name(Pass::Forward));

      Tensor dx = poisoned(xs, cuda_device());
      cuda::upconv2d_backward_data(p, gd.data<float>(), wd.data<float>(), dx.data<float>());
      check_bounds(dx.to_vector(), g, w, {}, 4 * p.c_out, prec,
                   [&](const std::vector<double>& ga, const std::vector<double>& wa, const std::vector<double>&) {
                     std::vector<double> out(static_cast<size_t>(xs.numel()));
                     cpu::upconv2d_backward_data<double>(p_ref, ga.data(), wa.data(), out.data());
                     return out;
                   }, pass_name(Pass::Data));

      Tensor dw = poisoned(ws, cuda_device());
      cuda::upconv2d_backward_weight(p, xd.data<float>(), gd.data<float>(), dw.data<float>());
      check_bounds(dw.to_vector(), x, g, {}, p.n * p.h * p.w, prec,
                   [&](const std::vector<double>& xa, const std::vector<double>& ga, const std::vector<double>&) {
                     std::vector<double> out(static_cast<size_t>(ws.numel()));
                     cpu::upconv2d_backward_weight<double>(p_ref, xa.data(), ga.data(), out.data());
                     return out;
                   }, pass_name(Pass::Weight));
    }
  }
}

TEST_CASE("conv2d and upconv2d autograd carry the precision into both gradients", "[conv2d][upconv2d][cuda][precision]") {
  const Device d = cuda_device();
  const ConvCase cs{2, 5, 9, 8, 7, 3, Padding::Valid, true};
  const Conv2dParams p = cs.params(Precision::BF16);
  const Shape xs{cs.n, cs.c_in, cs.h, cs.w}, ws{cs.c_out, cs.c_in, 3, 3}, ys{cs.n, cs.c_out, p.h_out, p.w_out};
  Tensor x = random_tensor(xs, 121, d).set_requires_grad(true), w = random_tensor(ws, 122, d).set_requires_grad(true);
  const Tensor b = random_tensor(Shape{cs.c_out}, 123, d), dy = random_tensor(ys, 124, d);
  const Tensor y = conv2d(x, w, b, {cs.padding, true, Precision::BF16});
  y.backward(dy);
  // The same kernels called directly, on the gradient masked by the ReLU as the node does.
  std::vector<float> gm = dy.to_vector();
  const std::vector<float> yv = y.to_vector();
  for (size_t i = 0; i < gm.size(); ++i) gm[i] = yv[i] > 0 ? gm[i] : 0.0f;
  const Tensor g = Tensor::from_vector(gm, ys, d);
  Tensor dx = Tensor::empty(xs, DType::Float32, d), dw = Tensor::empty(ws, DType::Float32, d);
  cuda::conv2d_backward_data(p, g.data<float>(), w.data<float>(), dx.data<float>());
  cuda::conv2d_backward_weight(p, x.data<float>(), g.data<float>(), dw.data<float>());
  require_close(x.grad().to_vector(), dx.to_vector(), 0.0, 0.0, "dx: the bf16 kernel, bit for bit");
  require_close(w.grad().to_vector(), dw.to_vector(), 0.0, 0.0, "dw: the bf16 kernel, bit for bit");
  // ... and not the fp32 one (bf16 operands move the results by far more than FP32 rounding).
  Conv2dParams p32 = p;
  p32.precision = Precision::FP32;
  cuda::conv2d_backward_weight(p32, x.data<float>(), g.data<float>(), dw.data<float>());
  CHECK(w.grad().to_vector() != dw.to_vector());

  Tensor ux = random_tensor(Shape{1, 6, 3, 4}, 125, d).set_requires_grad(true);
  Tensor uw = random_tensor(Shape{6, 5, 2, 2}, 126, d).set_requires_grad(true);
  const Tensor ug = random_tensor(Shape{1, 5, 6, 8}, 127, d);
  upconv2d(ux, uw, Tensor(), Precision::TF32).backward(ug);
  Upconv2dParams up{1, 6, 3, 4, 5, Precision::TF32};
  Tensor udx = Tensor::empty(Shape{1, 6, 3, 4}, DType::Float32, d), udw = Tensor::empty(Shape{6, 5, 2, 2}, DType::Float32, d);
  cuda::upconv2d_backward_data(up, ug.data<float>(), uw.data<float>(), udx.data<float>());
  cuda::upconv2d_backward_weight(up, ux.data<float>(), ug.data<float>(), udw.data<float>());
  require_close(ux.grad().to_vector(), udx.to_vector(), 0.0, 0.0, "upconv dx: the tf32 kernel");
  require_close(uw.grad().to_vector(), udw.to_vector(), 0.0, 0.0, "upconv dw: the tf32 kernel");
}

TEST_CASE("tf32 and bf16 are refused on CPU tensors, with a message that says the CPU computes in fp32", "[conv2d][upconv2d][precision]") {
  const Tensor x = random_tensor(Shape{1, 2, 5, 5}, 131), w = random_tensor(Shape{3, 2, 3, 3}, 132);
  for (Precision p : {Precision::TF32, Precision::BF16}) {
    CHECK_THROWS_WITH(conv2d(x, w, Tensor(), {Padding::Valid, false, p}),
                      Catch::Contains(precision_name(p)) && Catch::Contains("fp32 only"));
    CHECK_THROWS_AS(upconv2d(x, random_tensor(Shape{2, 3, 2, 2}, 133), Tensor(), p), ValueError);
  }
  CHECK_NOTHROW(conv2d(x, w, Tensor(), {Padding::Valid, false, Precision::FP32}));
  CHECK(parse_precision("bf16") == Precision::BF16);
  CHECK_THROWS_WITH(parse_precision("fp16"), Catch::Contains("fp32, tf32, bf16"));
}

TEST_CASE("UNet::set_precision reaches every convolution and is refused on the CPU", "[model][cuda][precision]") {
  UNetConfig cfg;
  cfg.base_channels = 4;
  cfg.depth = 1;
  cfg.dropout = 0.0f;
  cfg.init_seed = 3;
  int64_t tile = 16;
  while (cfg.geometry().output_size(tile) <= 0) ++tile;
  UNet cpu_model(cfg, Device::cpu());
  CHECK_THROWS_WITH(cpu_model.set_precision(Precision::BF16), Catch::Contains("fp32 only"));
  CHECK(cpu_model.precision() == Precision::FP32);

  UNet model(cfg, cuda_device());
  const Tensor x = random_tensor(Shape{1, 1, tile, tile}, 141, cuda_device(), 0.0, 1.0);
  NoGradGuard no_grad;
  const std::vector<float> y32 = model.forward(x).to_vector();
  for (Precision p : {Precision::TF32, Precision::BF16}) {
    model.set_precision(p);
    CHECK(model.precision() == p);
    const std::vector<float> y = model.forward(x).to_vector();
    // Every layer's operands are rounded now: the logits move, but by about u relative.
    double diff = 0, scale = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      diff = std::max(diff, std::fabs(static_cast<double>(y[i]) - y32[i]));
      scale = std::max(scale, std::fabs(static_cast<double>(y32[i])));
    }
    INFO(precision_name(p) << ": largest change " << diff << " of logits up to " << scale);
    CHECK(diff > 0);
    CHECK(diff < 64 * unit_roundoff(p) * scale);
  }
  model.set_precision(Precision::FP32);
  CHECK(model.forward(x).to_vector() == y32);  // back to the exact path, bit for bit
}
