// unet/augment.h — random augmentation parameters (Philox: a pure function of seed and sample
// index, so the CPU twin and the CUDA kernel warp with the very same field) and the host-side
// warp of Image / LabelImage / weight maps. The warp itself is kernels/elastic_warp.h.
//
// Paper recipe: elastic deformation from a 3×3 grid of displacement vectors drawn from a
// Gaussian with σ = 10 px, bicubic per-pixel displacement, bicubic image resampling, nearest
// neighbour for labels and weights, mirrored borders; plus shift, rotation, flips and grey-value
// variation, composed in the same single resampling.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/elastic_warp.h"
#include "unet/image.h"

namespace unet {

struct AugmentOptions {
  float elastic_sigma = 10.0f;         // px, standard deviation of each grid displacement
  float max_rotation_degrees = 180.0f; // uniform in [-max, max] (180: any angle)
  float max_shift = 0.0f;              // px, uniform in [-max, max] per axis
  bool flips = true;                   // flip x and y, each with probability 1/2
  float contrast_range = 0.1f;         // contrast uniform in [1 - r, 1 + r]
  float brightness_range = 0.1f;       // added, uniform in [-r, r] (images in [0, 1])
  float gamma_range = 0.2f;            // gamma = exp(uniform in [-r, r])
};

// Where the output window lies: sizes, and the window centre in input pixel coordinates
// (default: the input's centre). A training tile with context is cut by making the input a
// mirror-padded image and the output the network's input tile.
struct WarpGeometry {
  int in_width = 0, in_height = 0, out_width = 0, out_height = 0, channels = 1;
  float centre_x = -1.0f, centre_y = -1.0f;  // < 0: centre of the input
};

// Deterministic warp without elastic deformation or grey change: rotation (radians,
// counter-clockwise in image coordinates with y down), flips about the window centre, shift
// in px. Multiples of 90° are exact (cos/sin snapped), so such rotations resample on the grid.
ElasticWarpParams make_warp_params(const WarpGeometry& geometry, double rotation = 0.0,
                                   bool flip_x = false, bool flip_y = false, float shift_x = 0.0f,
                                   float shift_y = 0.0f);

// Random parameters of sample `sample_index` of a run with `seed`. Throws ValueError for
// negative ranges or invalid geometry.
ElasticWarpParams draw_warp_params(const AugmentOptions& options, const WarpGeometry& geometry,
                                   uint64_t seed, uint64_t sample_index);

struct WarpedSample {
  Image image;                 // F32, values of normalised(input) warped + grey transform
  LabelImage labels;           // empty when no labels were given
  std::vector<float> weights;  // empty when no weights were given
};

// CPU warp of host images (the image is normalised to [0, 1] first). labels / weights may be
// null; if given they must match the image's size (ShapeError otherwise). The params' input
// size and channels must match the image (ValueError otherwise).
WarpedSample warp_sample(const ElasticWarpParams& params, const Image& image,
                         const LabelImage* labels = nullptr,
                         const std::vector<float>* weights = nullptr);

// The same warp on tensors of either device (CPU twin or CUDA kernel, chosen by the device):
// image float32 whose last two dims are (H, W) and whose leading dims hold the channels
// ([C, H, W] or [1, C, H, W]; values should be in [0, 1] for the grey transform); labels int32
// and weights float32 with H·W elements ([H, W] or [1, 1, H, W]); either may be undefined.
// Outputs keep the leading dims with (H, W) replaced by the output size, on the same device.
// Throws ShapeError / DTypeError / DeviceError naming the offending argument.
struct WarpedTensors {
  Tensor image, labels, weights;
};
WarpedTensors warp_tensors(const ElasticWarpParams& params, const Tensor& image,
                           const Tensor& labels = Tensor(), const Tensor& weights = Tensor());

}  // namespace unet
