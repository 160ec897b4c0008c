// unet/weight_map.h — the U-Net paper's per-pixel loss weights (eq. 2):
//   w(x) = w_c(x) + w0 · exp(-(d1(x) + d2(x))² / (2σ²))
// w_c balances the class frequencies (background/membrane vs cell); d1, d2 are the Euclidean
// distances from a background pixel to the nearest and the second-nearest cell (exact distance
// transforms, Felzenszwalb–Huttenlocher). The border term applies to background pixels (label
// 0): it is what makes the thin gaps between touching cells expensive to get wrong. Pixels
// outside the annotation of partially annotated data get weight 0 (ignored by the loss).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "unet/image.h"

namespace unet {

struct WeightMapOptions {
  float w0 = 10.0f;    // paper value
  float sigma = 5.0f;  // paper value (≈ 5 px)
  // w_c: true = from this image's class frequencies, w_c(k) = N / (2 · n_k) over annotated
  // pixels (mean 1 over the image); false = 1 everywhere. Ignored when class_weights is set.
  bool balance_classes = true;
  // Fixed {background, foreground} weights, e.g. frequencies measured over a whole data set.
  std::optional<std::array<float, 2>> class_weights;
  // The border term is dropped where it is below this value (it decays as a Gaussian in
  // d1 + d2); this bounds the work per cell to a window of radius σ·sqrt(2 ln(w0 / tolerance)).
  float border_tolerance = 1e-4f;
};

// Weight map of an instance label image (0 = background). `annotated`, if given, has one entry
// per pixel: 0 = not annotated (weight 0, not counted in the class frequencies). Throws
// ShapeError for a mask of the wrong size, ValueError for w0 < 0, σ <= 0 or tolerance <= 0.
std::vector<float> weight_map(const LabelImage& instances, const WeightMapOptions& options = {},
                              const std::vector<uint8_t>* annotated = nullptr);

// {background, foreground} class weights N / (2 · n_k) over a whole data set (all pixels of all
// label images), to pass as WeightMapOptions::class_weights so every sample uses the same w_c.
// Throws ValueError for an empty list.
std::array<float, 2> dataset_class_weights(const std::vector<LabelImage>& labels);

// d1, d2 for every pixel: the distance to the nearest and second-nearest object (0 inside an
// object for d1), +infinity where fewer than one / two objects lie within max_distance; nearest:
// the id of the object at d1 (0 where none; on ties the smaller id).
struct BorderDistances {
  std::vector<float> d1, d2;
  std::vector<int32_t> nearest;
};
BorderDistances border_distances(const LabelImage& instances, float max_distance);

// The annotation of partially annotated data (e.g. CTC frames where only some cells carry an
// id): the labelled objects and the background within `margin` pixels of them.
std::vector<uint8_t> annotation_near_objects(const LabelImage& instances, float margin);

// RGB 8-bit heat map (black → purple → red → yellow → white) of values in [0, max_value]
// (max_value <= 0: the largest value), for looking at weight maps.
Image heat_map(const std::vector<float>& values, int width, int height, float max_value = 0.0f);

}  // namespace unet
