// unet/image.h — the data side's host image types: Image (grey or RGB samples as read from a
// file) and LabelImage (integer instance labels), plus the conversions between them.
//
// Layout: row-major, interleaved channels: pixels[(y * width + x) * channels + c].
// Image keeps the values as read (0..255, 0..65535, or float) and remembers the sample format,
// so a 16-bit file written back stays 16-bit; normalised() maps to [0, 1] for the network.
// Training code turns these into Tensors with Tensor::from_vector(pixels, Shape{1,C,H,W}) after
// to_planar() (the network is NCHW).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace unet {

// How the samples were stored in the file (and how they will be written back).
enum class SampleFormat : uint8_t { U8, U16, U32, F32 };

std::string to_string(SampleFormat f);
// Largest value of an integer format (255, 65535, 4294967295); 1 for F32 (already [0, 1]).
double sample_max(SampleFormat f);

struct Image {
  int width = 0;
  int height = 0;
  int channels = 1;  // 1 (grey) or 3 (RGB); 4 (RGBA) only as read, see to_grey()
  SampleFormat format = SampleFormat::F32;
  std::vector<float> pixels;

  int64_t pixel_count() const { return static_cast<int64_t>(width) * height; }
  float at(int x, int y, int c = 0) const {
    return pixels[(static_cast<size_t>(y) * width + x) * channels + c];
  }
  float& at(int x, int y, int c = 0) {
    return pixels[(static_cast<size_t>(y) * width + x) * channels + c];
  }
};

struct LabelImage {
  int width = 0;
  int height = 0;
  std::vector<int32_t> labels;  // 0 = background / membrane, >0 = object id (need not be consecutive)

  int64_t pixel_count() const { return static_cast<int64_t>(width) * height; }
  int32_t at(int x, int y) const { return labels[static_cast<size_t>(y) * width + x]; }
  int32_t& at(int x, int y) { return labels[static_cast<size_t>(y) * width + x]; }
};

// A zero-filled image / label image; throws ShapeError for non-positive sizes or channel counts
// other than 1, 3, 4.
Image make_image(int width, int height, int channels = 1, SampleFormat format = SampleFormat::F32);
LabelImage make_label_image(int width, int height);

// Throws ShapeError when the pixel vector does not match width * height * channels (or sizes
// are not positive). Every public function of the data side calls this on its inputs.
void validate(const Image& image, const char* what);
void validate(const LabelImage& labels, const char* what);

// Values divided by sample_max(format): integer images land in [0, 1]; F32 images are copied
// unchanged. The result has format F32.
Image normalised(const Image& image);
// The factor normalised() multiplies the samples of an integer format by: float(1 / sample_max);
// 1 for F32. Code that normalises samples held elsewhere (a NumPy array) uses it to get the
// same bits.
float normalisation_scale(SampleFormat format);
// Luminance (ITU-R 601: 0.299 R + 0.587 G + 0.114 B) of RGB(A); grey images are copied.
Image to_grey(const Image& image);
// Channel-planar copy of the pixels (all of channel 0, then channel 1, ...), the NCHW order.
std::vector<float> to_planar(const Image& image);
// 8-bit image for viewing: F32 values in [lo, hi] map to 0..255 (clamped), integer formats are
// scaled by 255 / sample_max.
Image to_u8(const Image& image, float lo = 0.0f, float hi = 1.0f);

// Label image from a grey image's integer values (0 stays background). Throws ValueError for
// negative, fractional or > INT32_MAX values and ShapeError for more than one channel.
LabelImage labels_from_values(const Image& image);
// Grey U16 (ids up to 65535) or U32 image holding the ids, for writing instance labels.
Image values_from_labels(const LabelImage& labels);
// 1 where label > 0, else 0.
std::vector<uint8_t> foreground_mask(const LabelImage& labels);
// Number of distinct non-zero ids.
int count_objects(const LabelImage& labels);

}  // namespace unet
