// unet/inference.cpp — overlap-tile segmentation and test-time augmentation.
#include "unet/inference.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/error.h"
#include "kernels/elastic_warp.h"
#include "kernels/softmax_xent.h"

namespace unet {
namespace {

// Counter-clockwise quarter turn of a [C, H, W] CPU tensor: out(i, j) = in(j, W-1-i).
Tensor rot90(const Tensor& x) {
  const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2);
  Tensor out = Tensor::empty(Shape{c, w, h});
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t i = 0; i < w; ++i)
      for (int64_t j = 0; j < h; ++j) dst[(ch * w + i) * h + j] = src[(ch * h + j) * w + (w - 1 - i)];
  return out;
}

Tensor hflip(const Tensor& x) {
  const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2);
  Tensor out = Tensor::empty(x.shape());
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t row = 0; row < c * h; ++row)
    for (int64_t j = 0; j < w; ++j) dst[row * w + j] = src[row * w + (w - 1 - j)];
  return out;
}

// The 8 dihedral transforms: t % 4 quarter turns, then a horizontal flip when t >= 4.
Tensor dihedral(Tensor x, int t) {
  for (int r = 0; r < t % 4; ++r) x = rot90(x);
  return t >= 4 ? hflip(x) : x;
}
Tensor dihedral_inverse(Tensor x, int t) {
  if (t >= 4) x = hflip(x);
  for (int r = 0; r < (4 - t % 4) % 4; ++r) x = rot90(x);
  return x;
}

int64_t default_tile(const UNetGeometry& g, int64_t h, int64_t w) {
  // Big tiles waste less work on overlapping context; 572 is the paper's (and fits any GPU).
  const int64_t wanted = g.input_for_output(std::max(h, w));
  const int64_t cap = g.valid_input_at_most(572);
  return std::min(wanted, cap > 0 ? cap : wanted);
}

// Plain overlap-tile pass over one orientation of the image.
Tensor segment_tiles(UNet& model, const Tensor& image, int64_t tile) {
  const UNetGeometry g = model.config().geometry();
  const int64_t out = g.output_size(tile), border = (tile - out) / 2;
  const int64_t h = image.dim(1), w = image.dim(2), k = model.config().num_classes;
  Tensor probs = Tensor::empty(Shape{k, h, w});
  float* dst = probs.data<float>();
  for (int64_t top = 0; top < h; top += out)
    for (int64_t left = 0; left < w; left += out) {
      const Tensor window = mirrored_window(image, top - border, left - border, tile, tile);
      const Tensor x = window.view(Shape{1, window.dim(0), tile, tile}).to(model.device());
      const Tensor p = softmax(model.forward(x)).to_host();  // [1, K, out, out]
      const float* src = p.data<float>();
      const int64_t rows = std::min(out, h - top), cols = std::min(out, w - left);
      for (int64_t c = 0; c < k; ++c)
        for (int64_t i = 0; i < rows; ++i)
          std::copy_n(src + (c * out + i) * out, cols, dst + (c * h + top + i) * w + left);
    }
  return probs;
}

}  // namespace

Tensor mirrored_window(const Tensor& image, int64_t top, int64_t left, int64_t rows, int64_t cols) {
  check_float(image, "mirrored_window", "image");
  check_rank(image, 3, "mirrored_window", "image");
  check_not_empty(image, "mirrored_window", "image");
  UNET_CHECK(image.device().is_cpu(), DeviceError, "mirrored_window: image must be on the CPU, got ", image.str());
  const int64_t c = image.dim(0), h = image.dim(1), w = image.dim(2);
  Tensor out = Tensor::empty(Shape{c, rows, cols});
  const float* src = image.data<float>();
  float* dst = out.data<float>();
  std::vector<int64_t> col_index(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) col_index[j] = mirror_index(static_cast<int>(left + j), static_cast<int>(w));
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t i = 0; i < rows; ++i) {
      const float* row = src + (ch * h + mirror_index(static_cast<int>(top + i), static_cast<int>(h))) * w;
      float* out_row = dst + (ch * rows + i) * cols;
      for (int64_t j = 0; j < cols; ++j) out_row[j] = row[col_index[j]];
    }
  return out;
}

Tensor image_tensor(const Image& image) {
  const Image values = normalised(image);
  return Tensor::from_vector(to_planar(values), Shape{values.channels, values.height, values.width});
}

Image foreground_probability(const Tensor& probabilities) {
  check_float(probabilities, "foreground_probability", "probabilities");
  check_rank(probabilities, 3, "foreground_probability", "probabilities");
  UNET_CHECK(probabilities.device().is_cpu(), DeviceError, "foreground_probability: probabilities must be on the CPU, got ",
             probabilities.str());
  UNET_CHECK(probabilities.dim(0) >= 2, ShapeError, "foreground_probability: ", probabilities.shape().str(),
             " holds ", probabilities.dim(0), " class(es); the foreground is class 1 of at least two");
  Image image = make_image(static_cast<int>(probabilities.dim(2)), static_cast<int>(probabilities.dim(1)), 1,
                           SampleFormat::F32);
  const float* p = probabilities.data<float>() + probabilities.dim(1) * probabilities.dim(2);
  std::copy_n(p, image.pixels.size(), image.pixels.begin());
  return image;
}

Tensor segment_image(UNet& model, const Tensor& image, const SegmentOptions& options) {
  check_float(image, "segment_image", "image");
  check_rank(image, 3, "segment_image", "image");
  check_not_empty(image, "segment_image", "image");
  UNET_CHECK(image.device().is_cpu(), DeviceError, "segment_image: pass the image on the CPU, got ", image.str());
  UNET_CHECK(image.dim(0) == model.config().in_channels, ShapeError, "segment_image: image ",
             image.shape().str(), " has ", image.dim(0), " channels, the model expects ",
             model.config().in_channels);
  const UNetGeometry g = model.config().geometry();
  const int64_t tile = options.tile > 0 ? options.tile : default_tile(g, image.dim(1), image.dim(2));
  g.require_valid_input(tile, "tile size");

  NoGradGuard no_grad;
  const bool was_training = model.training();
  model.set_training(false);
  Tensor result;
  try {
    if (!options.tta) {
      result = segment_tiles(model, image, tile);
    } else {
      for (int t = 0; t < 8; ++t) {
        const Tensor p = dihedral_inverse(segment_tiles(model, dihedral(image, t), tile), t);
        if (!result.defined()) {
          result = p;
        } else {
          float* acc = result.data<float>();
          const float* src = p.data<float>();
          for (int64_t i = 0; i < result.numel(); ++i) acc[i] += src[i];
        }
      }
      float* acc = result.data<float>();
      for (int64_t i = 0; i < result.numel(); ++i) acc[i] *= 0.125f;
    }
  } catch (...) {
    model.set_training(was_training);
    throw;
  }
  model.set_training(was_training);
  return result;
}

}  // namespace unet
