// unet/model.h — the U-Net of Ronneberger et al. (2015): a contracting path of `depth` levels
// (two 3×3 convolutions + ReLU, then 2×2 max-pool), a bottom level, and an expansive path that
// up-convolves, concatenates the centre-cropped skip tensor of the same level and applies two
// 3×3 convolutions + ReLU; a final 1×1 convolution maps to the class scores (logits).
// Dropout (as in the authors' Caffe model) acts on the deepest contracting level and the bottom.
//
// Parameter names: down{l}.conv{1,2}.{weight,bias} (l = depth is the bottom),
// up{l}.upconv.{weight,bias}, up{l}.conv{1,2}.{weight,bias} (l counts from the bottom, 0-based),
// head.{weight,bias}. The paper configuration (in 1, classes 2, base 64, depth 4) has
// 31,030,658 parameters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layers/conv.h"
#include "layers/module.h"
#include "unet/geometry.h"

namespace unet {

// How the final 1×1 classifier starts. He (the paper): like every other layer, std sqrt(2/N).
// Zero: all zeros, so every pixel starts at p = 1/K and the first loss is ln K whatever the seed.
// With He, the initial logits' spread depends heavily on the seed (rms 1 to 11 over seeds 1–6
// for the CPU configuration on an ISBI tile) and the first SGD steps with momentum 0.99 are
// correspondingly violent; zero starts every seed alike (docs/results.md).
enum class HeadInit { He, Zero };

struct UNetConfig {
  int64_t in_channels = 1;
  int64_t num_classes = 2;
  int64_t base_channels = 64;  // channels of the first level; doubled at every down-step
  int depth = 4;               // max-pool down-steps
  Padding padding = Padding::Valid;
  float dropout = 0.5f;        // probability of dropping; 0 disables
  uint64_t init_seed = 0;      // Philox seed of the He initialisation
  HeadInit head_init = HeadInit::He;
  // Input standardisation, the network's first operation: x -> (x - input_mean) / input_std,
  // one mean and deviation for all input channels. The defaults (0, 1) leave the input as it is
  // (the paper). Centred, unit-variance inputs are what He initialisation assumes; images in
  // [0, 1] are not (the EM slices: mean 0.49, deviation 0.17). On ISBI it did not train faster
  // (docs/results.md), so train_em leaves it off unless asked. It is part of the model: a
  // checkpoint carries it and inference applies it.
  float input_mean = 0.0f;
  float input_std = 1.0f;

  UNetGeometry geometry() const;
  void validate() const;                   // throws ValueError naming the bad field
  std::string to_json() const;             // stored in checkpoints' metadata
  // The fields that decide the parameters' names and shapes and the forward pass: to_json()
  // without how the weights were initialised (init_seed, head_init).
  std::string architecture_json() const;
  static UNetConfig from_json(const std::string& text);
};

class UNet : public Module {
 public:
  UNet(const UNetConfig& config, Device device);

  // x: [N, in_channels, S, S'] with S, S' valid input sizes -> logits [N, classes, out, out'].
  // `dropout_seed` selects the dropout masks (training mode only): pass a fresh value per step.
  // `first_entry`: x holds entries first_entry .. first_entry + N - 1 of a larger batch, and each
  // gets the dropout masks it would get there (so a batch split over passes or processes is
  // masked as the whole batch in one pass).
  Tensor forward(const Tensor& x, uint64_t dropout_seed = 0, int64_t first_entry = 0);

  const UNetConfig& config() const { return config_; }
  Device device() const { return device_; }

  // The arithmetic of every convolution and up-convolution, forward and backward
  // (core/precision.h). A model starts in fp32, the exact path; tf32 and bf16 run the tensor
  // cores of a CUDA device (ValueError on the CPU, which computes in fp32 only). Not part of the
  // architecture: checkpoints do not store it, and a model trained in one precision runs in any.
  // The example programs choose default_precision(device) (tf32 on a GPU) unless told otherwise.
  void set_precision(Precision p);
  Precision precision() const { return precision_; }

 private:
  struct DoubleConv : Module {
    DoubleConv(int64_t in, int64_t out, Padding padding, InitSeed& init, Device device);
    Tensor forward(const Tensor& x) const { return conv2.forward(conv1.forward(x)); }
    Conv2d conv1, conv2;
  };
  struct UpLevel : Module {
    UpLevel(int64_t in, int64_t out, Padding padding, InitSeed& init, Device device);
    UpConv2d upconv;
    DoubleConv convs;
  };

  Tensor maybe_dropout(const Tensor& x, uint64_t seed, uint64_t stream, int64_t first_entry);

  UNetConfig config_;
  Device device_;
  Precision precision_ = Precision::FP32;
  std::vector<std::unique_ptr<DoubleConv>> down_;  // depth + 1 entries, the last is the bottom
  std::vector<std::unique_ptr<UpLevel>> up_;        // depth entries, from the bottom up
  std::unique_ptr<Conv2d> head_;
};

}  // namespace unet
