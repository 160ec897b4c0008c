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

// The input tile size a call uses for an H×W image (validated).
int64_t tile_for(const UNetConfig& config, int64_t h, int64_t w, const SegmentOptions& options) {
  const UNetGeometry g = config.geometry();
  const int64_t tile = options.tile > 0 ? options.tile : default_tile(g, h, w);
  g.require_valid_input(tile, "tile size");
  return tile;
}

int64_t tiles_per_pass(const UNetConfig& config, int64_t h, int64_t w, int64_t tile) {
  const int64_t out = config.geometry().output_size(tile);
  return ((h + out - 1) / out) * ((w + out - 1) / out);  // a quarter turn swaps h and w: same count
}

// Plain overlap-tile pass over one orientation of the image into dst ([K, H, W] floats).
void segment_tiles(UNet& model, const Tensor& image, int64_t tile, float* dst, ProgressCounter& progress) {
  const UNetGeometry g = model.config().geometry();
  const int64_t out = g.output_size(tile), border = (tile - out) / 2;
  const int64_t h = image.dim(1), w = image.dim(2), k = model.config().num_classes;
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
      progress.advance();
    }
}

// One image [C, H, W] into dst ([K, H, W] floats), with or without the 8-fold average.
void segment_into(UNet& model, const Tensor& image, int64_t tile, bool tta, float* dst, ProgressCounter& progress) {
  segment_tiles(model, image, tile, dst, progress);  // the identity transform first
  if (!tta) return;
  const int64_t n = model.config().num_classes * image.dim(1) * image.dim(2);
  for (int t = 1; t < 8; ++t) {
    const Tensor turned = dihedral(image, t);
    Tensor p = Tensor::empty(Shape{model.config().num_classes, turned.dim(1), turned.dim(2)});
    segment_tiles(model, turned, tile, p.data<float>(), progress);
    const Tensor back = dihedral_inverse(p, t);
    const float* src = back.data<float>();
    for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
  }
  for (int64_t i = 0; i < n; ++i) dst[i] *= 0.125f;
}

// Eval mode (no dropout) and no graph for the length of a call; the model's mode comes back.
class InferenceMode {
 public:
  explicit InferenceMode(UNet& model) : model_(model), was_training_(model.training()) { model.set_training(false); }
  ~InferenceMode() { model_.set_training(was_training_); }
  InferenceMode(const InferenceMode&) = delete;
  InferenceMode& operator=(const InferenceMode&) = delete;

 private:
  NoGradGuard no_grad_;
  UNet& model_;
  bool was_training_;
};

void check_image(const UNet& model, const Tensor& image, int rank, const char* op) {
  check_float(image, op, "image");
  check_rank(image, rank, op, "image");
  check_not_empty(image, op, "image");
  UNET_CHECK(image.device().is_cpu(), DeviceError, op, ": pass the image on the CPU, got ", image.str());
  const int64_t channels = image.dim(rank - 3);
  UNET_CHECK(channels == model.config().in_channels, ShapeError, op, ": image ", image.shape().str(), " has ",
             channels, " channels, the model expects ", model.config().in_channels);
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

Image class_probability(const Tensor& probabilities, int64_t k) {
  check_float(probabilities, "class_probability", "probabilities");
  check_rank(probabilities, 3, "class_probability", "probabilities");
  UNET_CHECK(probabilities.device().is_cpu(), DeviceError, "class_probability: probabilities must be on the CPU, got ",
             probabilities.str());
  UNET_CHECK(k >= 0 && k < probabilities.dim(0), ShapeError, "class_probability: ", probabilities.shape().str(),
             " holds ", probabilities.dim(0), " class(es), no class ", k);
  Image image = make_image(static_cast<int>(probabilities.dim(2)), static_cast<int>(probabilities.dim(1)), 1,
                           SampleFormat::F32);
  const float* p = probabilities.data<float>() + k * probabilities.dim(1) * probabilities.dim(2);
  std::copy_n(p, image.pixels.size(), image.pixels.begin());
  return image;
}

Image foreground_probability(const Tensor& probabilities) {
  check_rank(probabilities, 3, "foreground_probability", "probabilities");
  UNET_CHECK(probabilities.dim(0) >= 2, ShapeError, "foreground_probability: ", probabilities.shape().str(),
             " holds ", probabilities.dim(0), " class(es); the foreground is class 1 of at least two");
  return class_probability(probabilities, 1);
}

Tensor segment_image(UNet& model, const Tensor& image, const SegmentOptions& options) {
  check_image(model, image, 3, "segment_image");
  const int64_t h = image.dim(1), w = image.dim(2);
  const int64_t tile = tile_for(model.config(), h, w, options);
  ProgressCounter progress(options.progress, tiles_per_pass(model.config(), h, w, tile) * (options.tta ? 8 : 1),
                           "segment_image", "tiles");
  InferenceMode mode(model);
  Tensor result = Tensor::empty(Shape{model.config().num_classes, h, w});
  segment_into(model, image, tile, options.tta, result.data<float>(), progress);
  return result;
}

Tensor segment_stack(UNet& model, const Tensor& stack, const SegmentOptions& options) {
  check_image(model, stack, 4, "segment_stack");
  const int64_t pages = stack.dim(0), h = stack.dim(2), w = stack.dim(3);
  const int64_t tile = tile_for(model.config(), h, w, options);
  ProgressCounter progress(options.progress,
                           pages * tiles_per_pass(model.config(), h, w, tile) * (options.tta ? 8 : 1),
                           "segment_stack", "tiles");
  InferenceMode mode(model);
  Tensor result = Tensor::empty(Shape{pages, model.config().num_classes, h, w});
  for (int64_t i = 0; i < pages; ++i)
    segment_into(model, stack.entry(i), tile, options.tta, result.entry(i).data<float>(), progress);
  return result;
}

int64_t segment_tile_count(const UNetConfig& config, int64_t height, int64_t width, const SegmentOptions& options) {
  const int64_t tile = tile_for(config, height, width, options);
  return tiles_per_pass(config, height, width, tile) * (options.tta ? 8 : 1);
}

}  // namespace unet
