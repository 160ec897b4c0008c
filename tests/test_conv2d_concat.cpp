// tests/test_conv2d_concat.cpp — conv2d_concat, the U-Net decoder's first convolution fused with
// the crop-and-concatenate before it: the same function and gradients as conv2d(crop_concat(...))
// on both devices (bit for bit: the fused CUDA kernels gather the same values in the same order,
// so every precision and split must give the same bits), the CPU reference's gradients by central
// differences in double, the raw CUDA launchers into poisoned outputs, edge sizes (no crop, odd
// channel counts, 1×1 and 5×5 and same padding through the concatenating path), bad input.
#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "kernels/conv2d.h"
#include "kernels/crop_concat.h"
#include "conv_reference.h"
#include "test_util.h"

using namespace unet;
using namespace unet::test;

namespace {

struct ConcatCase {
  int64_t n, skip_channels, skip_h, skip_w, up_channels, h, w, c_out, k;
  Padding padding;
  bool relu;
  std::string str() const {
    return "N" + std::to_string(n) + " skip " + std::to_string(skip_channels) + "x" + std::to_string(skip_h) + "x" +
           std::to_string(skip_w) + " up " + std::to_string(up_channels) + "x" + std::to_string(h) + "x" +
           std::to_string(w) + " Cout" + std::to_string(c_out) + " k" + std::to_string(k) +
           (padding == Padding::Same ? " same" : " valid") + (relu ? " relu" : "");
  }
  Shape skip_shape() const { return {n, skip_channels, skip_h, skip_w}; }
  Shape up_shape() const { return {n, up_channels, h, w}; }
  Shape w_shape() const { return {c_out, skip_channels + up_channels, k, k}; }
  CropConcatParams crop() const {
    return {n, skip_channels, skip_h, skip_w, up_channels, h, w, (skip_h - h) / 2, (skip_w - w) / 2};
  }
  Conv2dParams params(Precision p = Precision::FP32) const {
    return conv2d_params(n, skip_channels + up_channels, h, w, c_out, k, padding, relu, p);
  }
  Shape y_shape() const { const auto p = params(); return {n, c_out, p.h_out, p.w_out}; }
};

const std::vector<ConcatCase> kCases = {
    {2, 3, 13, 14, 4, 9, 8, 5, 3, Padding::Valid, true},    // the U-Net's case: valid 3×3, ReLU, a crop (2, 3)
    {1, 5, 7, 6, 2, 7, 6, 3, 3, Padding::Valid, false},     // no crop (offset 0)
    {1, 2, 9, 9, 3, 5, 5, 4, 1, Padding::Valid, true},      // 1×1: the concatenating path
    {1, 3, 10, 8, 2, 6, 6, 3, 5, Padding::Same, false},     // 5×5 same padding: the concatenating path
};

// y, dskip, dup, dw, db of one forward + backward with autograd, fused or through crop_concat.
struct Results {
  Tensor y, dskip, dup, dw, db;
};
Results run(const ConcatCase& cs, Device d, bool fused, Precision precision, uint64_t seed) {
  // Blocks of the skip's size full of NaN in the caching allocator: the gradients allocated in
  // the backward get them, so an element the op forgets to write (dskip's border) shows.
  for (int i = 0; i < 8; ++i) poisoned(cs.skip_shape(), d);
  Tensor skip = random_tensor(cs.skip_shape(), seed, d).set_requires_grad(true);
  Tensor up = random_tensor(cs.up_shape(), seed + 1, d).set_requires_grad(true);
  Tensor w = random_tensor(cs.w_shape(), seed + 2, d).set_requires_grad(true);
  Tensor b = random_tensor(Shape{cs.c_out}, seed + 3, d).set_requires_grad(true);
  const Conv2dOptions o{cs.padding, cs.relu, precision};
  const Tensor y = fused ? conv2d_concat(skip, up, w, b, o) : conv2d(crop_concat(skip, up), w, b, o);
  y.backward(random_tensor(cs.y_shape(), seed + 4, d));
  return {y.to_host(), skip.grad().to_host(), up.grad().to_host(), w.grad().to_host(), b.grad().to_host()};
}

void require_same(const Results& a, const Results& b) {
  require_close(a.y, b.y, 0.0, 0.0, "y");
  require_close(a.dskip, b.dskip, 0.0, 0.0, "dskip");
  require_close(a.dup, b.dup, 0.0, 0.0, "dup");
  require_close(a.dw, b.dw, 0.0, 0.0, "dw");
  require_close(a.db, b.db, 0.0, 0.0, "db");
}

}  // namespace

TEST_CASE("conv2d_concat on the CPU is conv2d of crop_concat, value and gradients bit for bit", "[conv2d][concat]") {
  for (const ConcatCase& cs : kCases) {
    INFO(cs.str());
    require_same(run(cs, Device::cpu(), true, Precision::FP32, 11), run(cs, Device::cpu(), false, Precision::FP32, 11));
  }
}

TEST_CASE("conv2d_concat CPU reference gradients match central differences (double)", "[conv2d][concat]") {
  for (const ConcatCase& cs : kCases) {
    INFO(cs.str());
    const Conv2dParams p = cs.params();
    Conv2dParams linear = p;
    linear.relu = false;
    const CropConcatParams c = cs.crop();
    const auto skip = random_values<double>(cs.skip_shape().numel(), 31), up = random_values<double>(cs.up_shape().numel(), 32),
               w = random_values<double>(cs.w_shape().numel(), 33), b = random_values<double>(cs.c_out, 34),
               dy = random_values<double>(cs.y_shape().numel(), 35);
    auto forward = [&](const std::vector<double>& s, const std::vector<double>& u, const std::vector<double>& ww) {
      std::vector<double> y(dy.size());
      cpu::conv2d_concat_forward(p, c, s.data(), u.data(), ww.data(), b.data(), y.data());
      return y;
    };
    // The ReLU's kink must stay far from every finite-difference step: these seeds keep every
    // pre-activation at least 1e-3 away from 0.
    std::vector<double> pre(dy.size());
    cpu::conv2d_concat_forward(linear, c, skip.data(), up.data(), w.data(), b.data(), pre.data());
    double closest = 1e300;
    for (double v : pre) closest = std::min(closest, std::fabs(v));
    REQUIRE(closest > 1e-3);
    std::vector<double> g = dy;  // the launchers take dy · [y > 0] with a fused ReLU
    if (cs.relu)
      for (size_t i = 0; i < g.size(); ++i) g[i] = pre[i] > 0 ? dy[i] : 0.0;
    std::vector<double> dskip(skip.size()), dup(up.size()), dw(w.size());
    cpu::conv2d_concat_backward_data(p, c, g.data(), w.data(), dskip.data(), dup.data());
    cpu::conv2d_concat_backward_weight(p, c, skip.data(), up.data(), g.data(), dw.data());
    check_gradient([&](const std::vector<double>& v) { return forward(v, up, w); }, skip, dy, dskip, "dskip");
    check_gradient([&](const std::vector<double>& v) { return forward(skip, v, w); }, up, dy, dup, "dup");
    check_gradient([&](const std::vector<double>& v) { return forward(skip, up, v); }, w, dy, dw, "dw");
  }
}

TEST_CASE("conv2d_concat CUDA is conv2d of crop_concat bit for bit at every precision", "[conv2d][concat][cuda]") {
  // The kCases plus the deep levels' shape: 80 + 60 channels give K = 1260, so the fused forward
  // and data gradient split over K (two images), through the same sums as the unfused kernels.
  std::vector<ConcatCase> cases = kCases;
  cases.push_back({2, 80, 9, 12, 60, 5, 6, 70, 3, Padding::Valid, true});
  for (const ConcatCase& cs : cases) {
    for (Precision prec : {Precision::FP32, Precision::TF32, Precision::BF16}) {
      INFO(cs.str() << " " << precision_name(prec));
      require_same(run(cs, cuda_device(), true, prec, 41), run(cs, cuda_device(), false, prec, 41));
    }
  }
  const cuda::PassSplits s = cuda::conv2d_splits(cases.back().params(Precision::TF32));
  CHECK((s.forward > 1 && s.data > 1));  // the last case exercises the splits it was added for
}

TEST_CASE("conv2d_concat CUDA launchers write every element and match the CPU reference", "[conv2d][concat][cuda]") {
  const Device d = cuda_device();
  for (const ConcatCase& cs : {kCases[0], kCases[1], ConcatCase{2, 80, 9, 12, 60, 5, 6, 70, 3, Padding::Valid, true}}) {
    INFO(cs.str());
    const Conv2dParams p = cs.params();
    const CropConcatParams c = cs.crop();
    const Tensor skip = random_tensor(cs.skip_shape(), 51), up = random_tensor(cs.up_shape(), 52),
                 w = random_tensor(cs.w_shape(), 53), b = random_tensor(Shape{cs.c_out}, 54), g = random_tensor(cs.y_shape(), 55);
    const Tensor skip_d = skip.to(d), up_d = up.to(d), w_d = w.to(d), b_d = b.to(d), g_d = g.to(d);

    Tensor y_ref = Tensor::empty(cs.y_shape()), y = poisoned(cs.y_shape(), d);
    cpu::conv2d_concat_forward(p, c, skip.data<float>(), up.data<float>(), w.data<float>(), b.data<float>(), y_ref.data<float>());
    cuda::conv2d_concat_forward(p, c, skip_d.data<float>(), up_d.data<float>(), w_d.data<float>(), b_d.data<float>(), y.data<float>());
    const int64_t kf = p.c_in * 9;  // the forward's reduction length
    require_close(y.to_vector(), y_ref.to_vector(), conv_atol(kf), reduction_rtol(kf), "forward");

    // dskip poisoned whole: the border from crop_concat_zero_border, the window from the GEMM.
    Tensor ds_ref = Tensor::empty(cs.skip_shape()), du_ref = Tensor::empty(cs.up_shape());
    Tensor ds = poisoned(cs.skip_shape(), d), du = poisoned(cs.up_shape(), d);
    cpu::conv2d_concat_backward_data(p, c, g.data<float>(), w.data<float>(), ds_ref.data<float>(), du_ref.data<float>());
    cuda::crop_concat_zero_border(c, ds.data<float>());
    cuda::conv2d_concat_backward_data(p, c, g_d.data<float>(), w_d.data<float>(), ds.data<float>(), du.data<float>());
    const int64_t kd = p.c_out * 9;
    require_close(ds.to_vector(), ds_ref.to_vector(), conv_atol(kd), reduction_rtol(kd), "dskip");
    require_close(du.to_vector(), du_ref.to_vector(), conv_atol(kd), reduction_rtol(kd), "dup");
    // Either part alone (the other input needs no gradient).
    Tensor du_only = poisoned(cs.up_shape(), d);
    cuda::conv2d_concat_backward_data(p, c, g_d.data<float>(), w_d.data<float>(), nullptr, du_only.data<float>());
    require_close(du_only.to_vector(), du.to_vector(), 0.0, 0.0, "dup without dskip");

    Tensor dw_ref = Tensor::empty(cs.w_shape()), dw = poisoned(cs.w_shape(), d);
    cpu::conv2d_concat_backward_weight(p, c, skip.data<float>(), up.data<float>(), g.data<float>(), dw_ref.data<float>());
    cuda::conv2d_concat_backward_weight(p, c, skip_d.data<float>(), up_d.data<float>(), g_d.data<float>(), dw.data<float>());
    const int64_t kw = p.n * p.h_out * p.w_out;
    require_close(dw.to_vector(), dw_ref.to_vector(), conv_atol(kw), reduction_rtol(kw), "dw");
  }
}

TEST_CASE("conv2d_concat refuses bad input with typed errors naming it", "[conv2d][concat]") {
  const Tensor skip = random_tensor(Shape{1, 3, 9, 9}, 61), up = random_tensor(Shape{1, 2, 5, 5}, 62);
  const Tensor w = random_tensor(Shape{4, 5, 3, 3}, 63), b = random_tensor(Shape{4}, 64);
  CHECK_NOTHROW(conv2d_concat(skip, up, w, b));
  // w expects 5 channels; skip + up have 3 + 3.
  CHECK_THROWS_AS(conv2d_concat(skip, random_tensor(Shape{1, 3, 5, 5}, 65), w, b), ShapeError);
  // An odd size difference cannot be centred; a skip smaller than up cannot be cropped.
  CHECK_THROWS_WITH(conv2d_concat(skip, random_tensor(Shape{1, 2, 6, 5}, 66), w, b),
                    Catch::Contains("conv2d_concat") && Catch::Contains("odd"));
  CHECK_THROWS_AS(conv2d_concat(random_tensor(Shape{1, 3, 4, 4}, 67), up, w, b), ShapeError);
  CHECK_THROWS_AS(conv2d_concat(skip, random_tensor(Shape{2, 2, 5, 5}, 68), w, b), ShapeError);  // batch
  CHECK_THROWS_AS(conv2d_concat(skip, up, w, random_tensor(Shape{3}, 69)), ShapeError);          // bias size
  // Devices: skip and up, and w against them.
  CHECK_THROWS_AS(conv2d_concat(skip, up.to(cuda_device()), w, b), DeviceError);
  CHECK_THROWS_WITH(conv2d_concat(skip.to(cuda_device()), up.to(cuda_device()), w, b),
                    Catch::Contains("cpu") && Catch::Contains("cuda"));
  // The fused CUDA launchers are valid 3×3 only; the tensor-level op concatenates for the rest.
  const ConcatCase cs = kCases[2];  // 1×1
  Tensor y = Tensor::empty(cs.y_shape(), DType::Float32, cuda_device());
  CHECK_THROWS_AS(cuda::conv2d_concat_forward(cs.params(), cs.crop(), nullptr, nullptr, nullptr, nullptr, y.data<float>()),
                  ValueError);
}
