// tests/test_crop_concat.cpp — centre-crop + channel concatenation: hand example, gradient check
// in double (both inputs), CUDA (simulator) vs CPU forward and backward, and the refusals.
#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "kernels/crop_concat.h"
#include "test_util.h"

using namespace unet;
using namespace unet::test;
using Catch::Contains;

TEST_CASE("crop_concat: hand example", "[crop_concat]") {
  // skip: 1 channel 4×4 holding 0..15; up: 1 channel 2×2 holding 100..103. The centred crop is
  // rows 1..2, columns 1..2 of skip: {5, 6, 9, 10}.
  std::vector<float> s(16);
  for (int i = 0; i < 16; ++i) s[i] = static_cast<float>(i);
  Tensor skip = Tensor::from_vector(s, Shape{1, 1, 4, 4}).set_requires_grad(true);
  Tensor up = Tensor::from_vector(std::vector<float>{100, 101, 102, 103}, Shape{1, 1, 2, 2})
                  .set_requires_grad(true);
  Tensor out = crop_concat(skip, up);
  REQUIRE(out.shape() == Shape{1, 2, 2, 2});
  REQUIRE(out.to_vector() == std::vector<float>{5, 6, 9, 10, 100, 101, 102, 103});
  out.backward(Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}, Shape{1, 2, 2, 2}));
  REQUIRE(skip.grad().to_vector() ==
          std::vector<float>{0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0});
  REQUIRE(up.grad().to_vector() == std::vector<float>{5, 6, 7, 8});
}

TEST_CASE("crop_concat: gradient check in double for both inputs", "[crop_concat]") {
  // skip [2, 3, 7, 9] -> crop to up's 3×5 at offset (2, 2); up [2, 2, 3, 5].
  const CropConcatParams p{2, 3, 7, 9, 2, 3, 5, 2, 2};
  const int64_t n_skip = 2 * 3 * 7 * 9, n_up = 2 * 2 * 3 * 5, n_out = 2 * 5 * 3 * 5;
  const std::vector<double> skip = random_values<double>(n_skip, 1);
  const std::vector<double> up = random_values<double>(n_up, 2);
  const std::vector<double> dy = random_values<double>(n_out, 3);
  std::vector<double> dskip(n_skip, std::nan("")), dup(n_up, std::nan(""));
  cpu::crop_concat_backward(p, dy.data(), dskip.data(), dup.data());
  auto f_skip = [&](const std::vector<double>& s) {
    std::vector<double> out(n_out);
    cpu::crop_concat_forward(p, s.data(), up.data(), out.data());
    return out;
  };
  auto f_up = [&](const std::vector<double>& u) {
    std::vector<double> out(n_out);
    cpu::crop_concat_forward(p, skip.data(), u.data(), out.data());
    return out;
  };
  check_gradient(f_skip, skip, dy, dskip, "d(skip)");
  check_gradient(f_up, up, dy, dup, "d(up)");
}

TEST_CASE("crop_concat: CUDA matches CPU exactly", "[crop_concat][cuda]") {
  const Device dev = cuda_device();
  // {N, Cs, Hs, Ws, Cu, Hu, Wu, oy, ox}: odd channels, no crop, asymmetric crops, batch 1 and 3.
  for (CropConcatParams p : {CropConcatParams{1, 3, 9, 11, 17, 5, 7, 2, 2},
                             CropConcatParams{3, 17, 13, 6, 3, 13, 4, 0, 1},
                             CropConcatParams{2, 1, 20, 20, 1, 12, 2, 4, 9}}) {
    const Shape s_shape{p.batch, p.skip_channels, p.skip_height, p.skip_width};
    const Shape u_shape{p.batch, p.up_channels, p.height, p.width};
    const Shape o_shape{p.batch, p.skip_channels + p.up_channels, p.height, p.width};
    const Tensor skip = random_tensor(s_shape, 4), up = random_tensor(u_shape, 5);
    const Tensor dy = random_tensor(o_shape, 6);
    Tensor out_ref = poisoned(o_shape, Device::cpu());
    Tensor ds_ref = poisoned(s_shape, Device::cpu()), du_ref = poisoned(u_shape, Device::cpu());
    cpu::crop_concat_forward(p, skip.data<float>(), up.data<float>(), out_ref.data<float>());
    cpu::crop_concat_backward(p, dy.data<float>(), ds_ref.data<float>(), du_ref.data<float>());

    const Tensor skip_d = skip.to(dev), up_d = up.to(dev), dy_d = dy.to(dev);
    Tensor out = poisoned(o_shape, dev), ds = poisoned(s_shape, dev), du = poisoned(u_shape, dev);
    cuda::crop_concat_forward(p, skip_d.data<float>(), up_d.data<float>(), out.data<float>());
    cuda::crop_concat_backward(p, dy_d.data<float>(), ds.data<float>(), du.data<float>());
    // Pure copies: exact.
    require_close(out, out_ref, 0, 0, "out");
    require_close(ds, ds_ref, 0, 0, "d(skip)");
    require_close(du, du_ref, 0, 0, "d(up)");
  }
}

TEST_CASE("crop_concat: CUDA autograd, gradient only where required", "[crop_concat][cuda]") {
  const Device dev = cuda_device();
  const Tensor skip = random_tensor(Shape{3, 3, 10, 12}, 7), up = random_tensor(Shape{3, 5, 6, 6}, 8);
  const Tensor dy = random_tensor(Shape{3, 8, 6, 6}, 9);
  Tensor sc = skip.clone().set_requires_grad(true);
  crop_concat(sc, up).backward(dy);
  Tensor sg = skip.to(dev).set_requires_grad(true);
  Tensor ug = up.to(dev);  // no gradient wanted
  crop_concat(sg, ug).backward(dy.to(dev));
  require_close(sg.grad().to_host(), sc.grad(), 0, 0, "d(skip)");
  REQUIRE_FALSE(ug.grad().defined());
}

TEST_CASE("crop_concat: invalid input is refused", "[crop_concat]") {
  const Tensor up = Tensor::zeros(Shape{1, 2, 4, 4});
  REQUIRE_THROWS_AS(crop_concat(Tensor::zeros(Shape{1, 2, 3, 6}), up), ShapeError);
  REQUIRE_THROWS_WITH(crop_concat(Tensor::zeros(Shape{1, 2, 3, 6}), up),
                      Contains("[1, 2, 3, 6]") && Contains("[1, 2, 4, 4]") && Contains("smaller"));
  REQUIRE_THROWS_WITH(crop_concat(Tensor::zeros(Shape{1, 2, 7, 6}), up),
                      Contains("[1, 2, 7, 6]") && Contains("[1, 2, 4, 4]") && Contains("centred"));
  REQUIRE_THROWS_WITH(crop_concat(Tensor::zeros(Shape{1, 2, 6, 9}), up),
                      Contains("width") && Contains("centred"));
  REQUIRE_THROWS_WITH(crop_concat(Tensor::zeros(Shape{2, 2, 6, 6}), up), Contains("batch"));
  REQUIRE_THROWS_AS(crop_concat(Tensor::zeros(Shape{2, 6, 6}), up), ShapeError);
  REQUIRE_THROWS_AS(crop_concat(Tensor::zeros(Shape{1, 0, 6, 6}), up), ShapeError);
  REQUIRE_THROWS_AS(crop_concat(Tensor::zeros(Shape{1, 2, 6, 6}, DType::Int32), up), DTypeError);
  REQUIRE_THROWS_AS(crop_concat(Tensor::zeros(Shape{1, 2, 6, 6}), Tensor()), ValueError);
  if (cuda_available())
    REQUIRE_THROWS_AS(crop_concat(Tensor::zeros(Shape{1, 2, 6, 6}, DType::Float32, cuda_device()), up),
                      DeviceError);
}
