// unet/geometry.cpp — U-Net size arithmetic (see geometry.h).
#include "unet/geometry.h"

#include "core/error.h"

namespace unet {
namespace {
constexpr int64_t kConvShrink = 2;  // a valid 3×3 convolution removes one pixel per side
}

int64_t UNetGeometry::output_size(int64_t input) const {
  UNET_CHECK(depth >= 0 && depth <= 8, ValueError, "U-Net depth must be in 0..8, got ", depth);
  UNET_CHECK(convs_per_level >= 1, ValueError, "convs_per_level must be >= 1, got ", convs_per_level);
  const int64_t shrink = padding == Padding::Valid ? kConvShrink * convs_per_level : 0;
  int64_t s = input;
  if (s <= 0) return -1;
  for (int level = 0; level < depth; ++level) {
    s -= shrink;
    if (s <= 0 || s % 2 != 0) return -1;
    s /= 2;
  }
  s -= shrink;
  if (s <= 0) return -1;
  for (int level = 0; level < depth; ++level) {
    s = 2 * s - shrink;
    if (s <= 0) return -1;
  }
  return s;
}

int64_t UNetGeometry::valid_input_at_most(int64_t s) const {
  for (int64_t t = s; t >= 1; --t)
    if (is_valid_input(t)) return t;
  return -1;
}

int64_t UNetGeometry::valid_input_at_least(int64_t s) const {
  for (int64_t t = s < 1 ? 1 : s;; ++t)
    if (is_valid_input(t)) return t;
}

void UNetGeometry::require_valid_input(int64_t input, const std::string& what) const {
  if (is_valid_input(input)) return;
  const int64_t below = valid_input_at_most(input), above = valid_input_at_least(input);
  if (below > 0)
    UNET_THROW(ShapeError, what, " ", input, " is not valid for a depth-", depth,
               " U-Net (every 2x2 max-pool must see an even size); nearest valid sizes: ", below,
               " and ", above);
  UNET_THROW(ShapeError, what, " ", input, " is too small for a depth-", depth,
             " U-Net; the smallest valid size is ", above);
}

int64_t UNetGeometry::input_for_output(int64_t output) const {
  for (int64_t t = valid_input_at_least(1);; t = valid_input_at_least(t + 1))
    if (output_size(t) >= output) return t;
}

int64_t UNetGeometry::context_border() const {
  const int64_t in = valid_input_at_least(1);
  return (in - output_size(in)) / 2;
}

std::vector<int64_t> UNetGeometry::skip_sizes(int64_t input) const {
  require_valid_input(input);
  const int64_t shrink = padding == Padding::Valid ? kConvShrink * convs_per_level : 0;
  std::vector<int64_t> sizes;
  int64_t s = input;
  for (int level = 0; level < depth; ++level) {
    s -= shrink;
    sizes.push_back(s);
    s /= 2;
  }
  return sizes;
}

}  // namespace unet
