// layers/conv.h — the parameterised layers of the U-Net: Conv2d (k×k, stride 1, valid or same,
// optional fused ReLU) and UpConv2d (2×2 transposed convolution, stride 2). Both are initialised
// as in the paper: weights ~ N(0, 2/N) with N the number of incoming connections of one output
// neuron (He et al.), biases 0. Initialisation draws from Philox with (seed, offset), so a model
// built on the CPU and one built on CUDA with the same seed hold the same weights.
#pragma once

#include <cstdint>

#include "kernels/conv2d.h"
#include "layers/module.h"

namespace unet {

struct InitSeed {
  uint64_t seed = 0;
  uint64_t offset = 0;  // stream position; each layer takes a distinct range
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, Padding padding, bool fuse_relu,
         InitSeed init, Device device);
  Tensor forward(const Tensor& x) const;
  // forward(crop_concat(skip, up)) without the concatenated tensor (conv2d_concat): the U-Net
  // decoder's first convolution.
  Tensor forward_concat(const Tensor& skip, const Tensor& up) const;
  // The arithmetic of forward and backward (core/precision.h); fp32 until set. Throws
  // ValueError for tf32/bf16 when the weights are on the CPU.
  void set_precision(Precision p);
  Precision precision() const { return options_.precision; }

  Tensor weight;  // [out, in, k, k]
  Tensor bias;    // [out]

 private:
  int64_t in_channels_;
  Conv2dOptions options_;
};

class UpConv2d : public Module {
 public:
  UpConv2d(int64_t in_channels, int64_t out_channels, InitSeed init, Device device);
  Tensor forward(const Tensor& x) const;
  void set_precision(Precision p);  // as Conv2d::set_precision
  Precision precision() const { return precision_; }

  Tensor weight;  // [in, out, 2, 2] (PyTorch's ConvTranspose2d layout)
  Tensor bias;    // [out]

 private:
  int64_t in_channels_;
  Precision precision_ = Precision::FP32;
};

}  // namespace unet
