// unet/image.cpp — construction, validation and conversions of the host image types.
#include "unet/image.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_set>

#include "core/error.h"

namespace unet {

std::string to_string(SampleFormat f) {
  switch (f) {
    case SampleFormat::U8: return "8-bit unsigned";
    case SampleFormat::U16: return "16-bit unsigned";
    case SampleFormat::U32: return "32-bit unsigned";
    case SampleFormat::F32: return "32-bit float";
  }
  return "unknown";
}

double sample_max(SampleFormat f) {
  switch (f) {
    case SampleFormat::U8: return 255.0;
    case SampleFormat::U16: return 65535.0;
    case SampleFormat::U32: return 4294967295.0;
    case SampleFormat::F32: return 1.0;
  }
  return 1.0;
}

Image make_image(int width, int height, int channels, SampleFormat format) {
  UNET_CHECK(width > 0 && height > 0, ShapeError, "image size must be positive, got ", width, "x",
             height);
  UNET_CHECK(channels == 1 || channels == 3 || channels == 4, ShapeError,
             "images have 1, 3 or 4 channels, got ", channels);
  Image im;
  im.width = width;
  im.height = height;
  im.channels = channels;
  im.format = format;
  im.pixels.assign(static_cast<size_t>(width) * height * channels, 0.0f);
  return im;
}

LabelImage make_label_image(int width, int height) {
  UNET_CHECK(width > 0 && height > 0, ShapeError, "label image size must be positive, got ", width,
             "x", height);
  LabelImage l;
  l.width = width;
  l.height = height;
  l.labels.assign(static_cast<size_t>(width) * height, 0);
  return l;
}

void validate(const Image& image, const char* what) {
  UNET_CHECK(image.width > 0 && image.height > 0, ShapeError, what,
             ": image size must be positive, got ", image.width, "x", image.height);
  UNET_CHECK(image.channels == 1 || image.channels == 3 || image.channels == 4, ShapeError, what,
             ": images have 1, 3 or 4 channels, got ", image.channels);
  UNET_CHECK(image.pixels.size() ==
                 static_cast<size_t>(image.width) * image.height * image.channels,
             ShapeError, what, ": ", image.width, "x", image.height, "x", image.channels,
             " needs ", static_cast<size_t>(image.width) * image.height * image.channels,
             " values, the image holds ", image.pixels.size());
}

void validate(const LabelImage& labels, const char* what) {
  UNET_CHECK(labels.width > 0 && labels.height > 0, ShapeError, what,
             ": label image size must be positive, got ", labels.width, "x", labels.height);
  UNET_CHECK(labels.labels.size() == static_cast<size_t>(labels.width) * labels.height,
             ShapeError, what, ": ", labels.width, "x", labels.height, " needs ",
             static_cast<size_t>(labels.width) * labels.height, " labels, the image holds ",
             labels.labels.size());
}

float normalisation_scale(SampleFormat format) {
  return format == SampleFormat::F32 ? 1.0f : static_cast<float>(1.0 / sample_max(format));
}

Image normalised(const Image& image) {
  validate(image, "normalised");
  Image out = image;
  out.format = SampleFormat::F32;
  if (image.format == SampleFormat::F32) return out;
  const float scale = normalisation_scale(image.format);
  for (float& v : out.pixels) v *= scale;
  return out;
}

Image to_grey(const Image& image) {
  validate(image, "to_grey");
  if (image.channels == 1) return image;
  Image out = make_image(image.width, image.height, 1, image.format);
  const int64_t n = image.pixel_count();
  for (int64_t i = 0; i < n; ++i) {
    const float* p = &image.pixels[i * image.channels];
    float v = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
    if (image.format != SampleFormat::F32) v = std::round(v);  // stay on the integer grid
    out.pixels[i] = v;
  }
  return out;
}

std::vector<float> to_planar(const Image& image) {
  validate(image, "to_planar");
  const int64_t n = image.pixel_count();
  std::vector<float> out(image.pixels.size());
  for (int c = 0; c < image.channels; ++c)
    for (int64_t i = 0; i < n; ++i) out[c * n + i] = image.pixels[i * image.channels + c];
  return out;
}

Image to_u8(const Image& image, float lo, float hi) {
  validate(image, "to_u8");
  UNET_CHECK(hi > lo, ValueError, "to_u8: the range [lo, hi] must not be empty, got [", lo, ", ",
             hi, "]");
  Image out = image;
  out.format = SampleFormat::U8;
  for (float& v : out.pixels) {
    float t = image.format == SampleFormat::F32
                  ? (v - lo) / (hi - lo)
                  : static_cast<float>(v / sample_max(image.format));
    if (!(t > 0.0f)) t = 0.0f;  // also maps NaN to 0
    v = std::round(std::min(t, 1.0f) * 255.0f);
  }
  return out;
}

LabelImage labels_from_values(const Image& image) {
  validate(image, "labels_from_values");
  UNET_CHECK(image.channels == 1, ShapeError,
             "label images must have one channel, got ", image.channels);
  LabelImage out = make_label_image(image.width, image.height);
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    const double v = image.pixels[i];
    UNET_CHECK(v >= 0.0 && v <= std::numeric_limits<int32_t>::max() && v == std::floor(v),
               ValueError, "label values must be non-negative integers <= 2^31-1, got ", v,
               " at pixel (", i % image.width, ", ", i / image.width, ")");
    out.labels[i] = static_cast<int32_t>(v);
  }
  return out;
}

Image values_from_labels(const LabelImage& labels) {
  validate(labels, "values_from_labels");
  const int32_t max_id = *std::max_element(labels.labels.begin(), labels.labels.end());
  UNET_CHECK(*std::min_element(labels.labels.begin(), labels.labels.end()) >= 0, ValueError,
             "values_from_labels: label ids must be non-negative");
  Image out = make_image(labels.width, labels.height, 1,
                         max_id <= 65535 ? SampleFormat::U16 : SampleFormat::U32);
  for (size_t i = 0; i < labels.labels.size(); ++i)
    out.pixels[i] = static_cast<float>(labels.labels[i]);
  UNET_CHECK(max_id < (1 << 24), ValueError,
             "values_from_labels: ids above 2^24 do not survive float32 pixels, got ", max_id);
  return out;
}

std::vector<uint8_t> foreground_mask(const LabelImage& labels) {
  validate(labels, "foreground_mask");
  std::vector<uint8_t> m(labels.labels.size());
  for (size_t i = 0; i < m.size(); ++i) m[i] = labels.labels[i] > 0 ? 1 : 0;
  return m;
}

int count_objects(const LabelImage& labels) {
  validate(labels, "count_objects");
  std::unordered_set<int32_t> ids;
  for (int32_t v : labels.labels)
    if (v > 0) ids.insert(v);
  return static_cast<int>(ids.size());
}

}  // namespace unet
