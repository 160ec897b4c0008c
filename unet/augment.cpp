// unet/augment.cpp — drawing augmentation parameters and composing the affine map.
#include "unet/augment.h"

#include <cmath>

#include "core/error.h"
#include "core/philox.h"

namespace unet {
namespace {

void check_geometry(const WarpGeometry& g) {
  UNET_CHECK(g.in_width > 0 && g.in_height > 0 && g.out_width > 0 && g.out_height > 0, ValueError,
             "warp geometry: sizes must be positive, got input ", g.in_width, "x", g.in_height,
             ", output ", g.out_width, "x", g.out_height);
  UNET_CHECK(g.channels >= 1, ValueError, "warp geometry: channels must be >= 1, got ", g.channels);
}

// cos/sin with values within 1e-12 of 0 or ±1 snapped, so quarter turns are exact.
double snap(double v) {
  if (std::fabs(v) < 1e-12) return 0.0;
  if (std::fabs(v - 1.0) < 1e-12) return 1.0;
  if (std::fabs(v + 1.0) < 1e-12) return -1.0;
  return v;
}

// Stream positions: normals use blocks 0..17; uniforms start at word 128 (block 32), apart.
constexpr uint64_t kUniformBase = 128;

}  // namespace

ElasticWarpParams make_warp_params(const WarpGeometry& g, double rotation, bool flip_x,
                                   bool flip_y, float shift_x, float shift_y) {
  check_geometry(g);
  UNET_CHECK(std::isfinite(rotation) && std::isfinite(shift_x) && std::isfinite(shift_y),
             ValueError, "make_warp_params: rotation and shift must be finite");
  ElasticWarpParams p;
  p.in_width = g.in_width;
  p.in_height = g.in_height;
  p.out_width = g.out_width;
  p.out_height = g.out_height;
  p.channels = g.channels;
  // src = R · F · (q - c_out) + c_window + shift
  const double c = snap(std::cos(rotation)), s = snap(std::sin(rotation));
  const double fx = flip_x ? -1.0 : 1.0, fy = flip_y ? -1.0 : 1.0;
  const double m00 = c * fx, m01 = -s * fy, m10 = s * fx, m11 = c * fy;
  const double cox = (g.out_width - 1) / 2.0, coy = (g.out_height - 1) / 2.0;
  const double cwx = g.centre_x >= 0 ? g.centre_x : (g.in_width - 1) / 2.0;
  const double cwy = g.centre_y >= 0 ? g.centre_y : (g.in_height - 1) / 2.0;
  p.affine[0] = static_cast<float>(m00);
  p.affine[1] = static_cast<float>(m01);
  p.affine[2] = static_cast<float>(cwx + shift_x - (m00 * cox + m01 * coy));
  p.affine[3] = static_cast<float>(m10);
  p.affine[4] = static_cast<float>(m11);
  p.affine[5] = static_cast<float>(cwy + shift_y - (m10 * cox + m11 * coy));
  return p;
}

ElasticWarpParams draw_warp_params(const AugmentOptions& o, const WarpGeometry& g, uint64_t seed,
                                   uint64_t sample_index) {
  UNET_CHECK(o.elastic_sigma >= 0 && o.max_rotation_degrees >= 0 && o.max_shift >= 0 &&
                 o.contrast_range >= 0 && o.contrast_range < 1 && o.brightness_range >= 0 &&
                 o.gamma_range >= 0,
             ValueError, "augment options: ranges must be >= 0 (contrast_range < 1), got sigma ",
             o.elastic_sigma, ", rotation ", o.max_rotation_degrees, ", shift ", o.max_shift,
             ", contrast ", o.contrast_range, ", brightness ", o.brightness_range, ", gamma ",
             o.gamma_range);
  auto uniform = [&](int k) { return philox_uniform01(seed, kUniformBase + k, sample_index); };
  auto symmetric = [&](int k, double range) { return range * (2.0 * uniform(k) - 1.0); };
  const double rotation = symmetric(0, o.max_rotation_degrees) * M_PI / 180.0;
  const bool flip_x = o.flips && uniform(1) < 0.5f, flip_y = o.flips && uniform(2) < 0.5f;
  ElasticWarpParams p = make_warp_params(g, rotation, flip_x, flip_y,
                                         static_cast<float>(symmetric(3, o.max_shift)),
                                         static_cast<float>(symmetric(4, o.max_shift)));
  for (int k = 0; k < 9; ++k) {
    p.grid_dx[k] = o.elastic_sigma * philox_normal(seed, k, sample_index);
    p.grid_dy[k] = o.elastic_sigma * philox_normal(seed, 9 + k, sample_index);
  }
  p.contrast = static_cast<float>(1.0 + symmetric(5, o.contrast_range));
  p.brightness = static_cast<float>(symmetric(6, o.brightness_range));
  p.gamma = static_cast<float>(std::exp(symmetric(7, o.gamma_range)));
  return p;
}

WarpedSample warp_sample(const ElasticWarpParams& params, const Image& image,
                         const LabelImage* labels, const std::vector<float>* weights) {
  validate(image, "warp_sample");
  UNET_CHECK(params.in_width == image.width && params.in_height == image.height &&
                 params.channels == image.channels,
             ValueError, "warp_sample: params expect a ", params.in_width, "x", params.in_height,
             "x", params.channels, " input, the image is ", image.width, "x", image.height, "x",
             image.channels);
  if (labels) {
    validate(*labels, "warp_sample labels");
    UNET_CHECK(labels->width == image.width && labels->height == image.height, ShapeError,
               "warp_sample: labels are ", labels->width, "x", labels->height, ", the image is ",
               image.width, "x", image.height);
  }
  UNET_CHECK(!weights || weights->size() == static_cast<size_t>(image.pixel_count()), ShapeError,
             "warp_sample: weight map holds ", weights ? weights->size() : 0, " values, the image ",
             image.pixel_count());
  const std::vector<float> planar_in = to_planar(normalised(image));
  std::vector<float> planar_out(static_cast<size_t>(params.out_width) * params.out_height *
                                params.channels);
  WarpedSample out;
  if (labels) out.labels = make_label_image(params.out_width, params.out_height);
  if (weights) out.weights.resize(static_cast<size_t>(params.out_width) * params.out_height);
  cpu::elastic_warp(params, planar_in.data(), planar_out.data(),
                    labels ? labels->labels.data() : nullptr, labels ? out.labels.labels.data() : nullptr,
                    weights ? weights->data() : nullptr, weights ? out.weights.data() : nullptr);
  out.image = make_image(params.out_width, params.out_height, params.channels, SampleFormat::F32);
  const int64_t plane = static_cast<int64_t>(params.out_width) * params.out_height;
  for (int c = 0; c < params.channels; ++c)
    for (int64_t i = 0; i < plane; ++i) out.image.pixels[i * params.channels + c] = planar_out[c * plane + i];
  return out;
}

namespace {

// Shape with the last two dims replaced by (h, w).
Shape with_plane(const Shape& s, int64_t h, int64_t w) {
  std::vector<int64_t> dims;
  for (int i = 0; i < s.rank(); ++i) dims.push_back(s[i]);
  dims[dims.size() - 2] = h;
  dims[dims.size() - 1] = w;
  return Shape(dims);
}

void check_plane_tensor(const Tensor& t, const ElasticWarpParams& p, const char* arg,
                        const Device& device) {
  UNET_CHECK(t.rank() >= 2 && t.dim(t.rank() - 2) == p.in_height && t.dim(t.rank() - 1) == p.in_width &&
                 t.numel() == static_cast<int64_t>(p.in_width) * p.in_height,
             ShapeError, "warp_tensors: ", arg, " must be [H, W] (or with leading 1s) with H x W = ",
             p.in_height, "x", p.in_width, ", got ", t.str());
  UNET_CHECK(t.device() == device, DeviceError, "warp_tensors: ", arg, " is on ", t.device().str(),
             ", the image on ", device.str());
}

}  // namespace

WarpedTensors warp_tensors(const ElasticWarpParams& params, const Tensor& image,
                           const Tensor& labels, const Tensor& weights) {
  check_defined(image, "warp_tensors", "image");
  check_float(image, "warp_tensors", "image");
  UNET_CHECK(image.rank() >= 2 && image.dim(image.rank() - 2) == params.in_height &&
                 image.dim(image.rank() - 1) == params.in_width,
             ShapeError, "warp_tensors: image must end in (H, W) = (", params.in_height, ", ",
             params.in_width, "), got ", image.str());
  const int64_t channels = image.numel() / (static_cast<int64_t>(params.in_width) * params.in_height);
  UNET_CHECK(channels == params.channels, ShapeError, "warp_tensors: params expect ", params.channels,
             " channels, the image ", image.str(), " holds ", channels);
  const Device device = image.device();
  WarpedTensors out;
  out.image = Tensor::empty(with_plane(image.shape(), params.out_height, params.out_width),
                            DType::Float32, device);
  if (labels.defined()) {
    check_int(labels, "warp_tensors", "labels");
    check_plane_tensor(labels, params, "labels", device);
    out.labels = Tensor::empty(with_plane(labels.shape(), params.out_height, params.out_width),
                               DType::Int32, device);
  }
  if (weights.defined()) {
    check_float(weights, "warp_tensors", "weights");
    check_plane_tensor(weights, params, "weights", device);
    out.weights = Tensor::empty(with_plane(weights.shape(), params.out_height, params.out_width),
                                DType::Float32, device);
  }
  const float* img_in = image.data<float>();
  float* img_out = out.image.data<float>();
  const int32_t* lab_in = labels.defined() ? labels.data<int32_t>() : nullptr;
  int32_t* lab_out = labels.defined() ? out.labels.data<int32_t>() : nullptr;
  const float* w_in = weights.defined() ? weights.data<float>() : nullptr;
  float* w_out = weights.defined() ? out.weights.data<float>() : nullptr;
  if (device.is_cpu())
    cpu::elastic_warp(params, img_in, img_out, lab_in, lab_out, w_in, w_out);
  else
    cuda::elastic_warp(params, img_in, img_out, lab_in, lab_out, w_in, w_out);
  return out;
}

}  // namespace unet
