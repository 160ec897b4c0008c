// layers/conv.cpp — Conv2d and UpConv2d: initialisation and forward.
#include "layers/conv.h"

#include <cmath>

#include "core/error.h"
#include "kernels/random.h"
#include "kernels/upconv2d.h"

namespace unet {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, Padding padding,
               bool fuse_relu, InitSeed init, Device device)
    : in_channels_(in_channels), options_{padding, fuse_relu} {
  UNET_CHECK(in_channels > 0 && out_channels > 0, ValueError, "Conv2d: channel counts must be > 0, got ",
             in_channels, " -> ", out_channels);
  UNET_CHECK(kernel > 0 && kernel % 2 == 1, ValueError, "Conv2d: kernel size must be odd and > 0, got ", kernel);
  const float stddev = std::sqrt(2.0f / static_cast<float>(in_channels * kernel * kernel));
  weight = random_normal(Shape{out_channels, in_channels, kernel, kernel}, 0.0f, stddev, init.seed,
                         init.offset, device);
  bias = Tensor::zeros(Shape{out_channels}, DType::Float32, device);
  register_parameter("weight", weight);
  register_parameter("bias", bias);
}

Tensor Conv2d::forward(const Tensor& x) const {
  check_rank(x, 4, "Conv2d::forward", "x");
  UNET_CHECK(x.dim(1) == in_channels_, ShapeError, "Conv2d::forward: input ", x.shape().str(), " has ",
             x.dim(1), " channels, the layer expects ", in_channels_);
  return conv2d(x, weight, bias, options_);
}

Tensor Conv2d::forward_concat(const Tensor& skip, const Tensor& up) const {
  check_rank(skip, 4, "Conv2d::forward_concat", "skip");
  check_rank(up, 4, "Conv2d::forward_concat", "up");
  UNET_CHECK(skip.dim(1) + up.dim(1) == in_channels_, ShapeError, "Conv2d::forward_concat: skip ", skip.shape().str(),
             " and up ", up.shape().str(), " have ", skip.dim(1) + up.dim(1), " channels together, the layer expects ",
             in_channels_);
  return conv2d_concat(skip, up, weight, bias, options_);
}

void Conv2d::set_precision(Precision p) {
  check_precision(p, weight.device(), "Conv2d::set_precision");
  options_.precision = p;
}

void UpConv2d::set_precision(Precision p) {
  check_precision(p, weight.device(), "UpConv2d::set_precision");
  precision_ = p;
}

UpConv2d::UpConv2d(int64_t in_channels, int64_t out_channels, InitSeed init, Device device)
    : in_channels_(in_channels) {
  UNET_CHECK(in_channels > 0 && out_channels > 0, ValueError, "UpConv2d: channel counts must be > 0, got ",
             in_channels, " -> ", out_channels);
  // Stride 2 with a 2×2 kernel: each output pixel sees exactly one tap per input channel.
  const float stddev = std::sqrt(2.0f / static_cast<float>(in_channels));
  weight = random_normal(Shape{in_channels, out_channels, 2, 2}, 0.0f, stddev, init.seed, init.offset, device);
  bias = Tensor::zeros(Shape{out_channels}, DType::Float32, device);
  register_parameter("weight", weight);
  register_parameter("bias", bias);
}

Tensor UpConv2d::forward(const Tensor& x) const {
  check_rank(x, 4, "UpConv2d::forward", "x");
  UNET_CHECK(x.dim(1) == in_channels_, ShapeError, "UpConv2d::forward: input ", x.shape().str(), " has ",
             x.dim(1), " channels, the layer expects ", in_channels_);
  return upconv2d(x, weight, bias, precision_);
}

}  // namespace unet
