// unet/connected_components.h — labelling connected components of binary masks: how binary
// ground truth becomes instances and how the measures find predicted objects.
#pragma once

#include <cstdint>
#include <vector>

#include "unet/image.h"

namespace unet {

enum class Connectivity { Four = 4, Eight = 8 };

// Labels the pixels where mask != 0 with 1..n in raster order of each component's first pixel;
// mask == 0 stays 0. Throws ShapeError when mask.size() != width * height.
LabelImage connected_components(const std::vector<uint8_t>& mask, int width, int height,
                                Connectivity connectivity = Connectivity::Four);
// Same, returning the component count through n_components.
LabelImage connected_components(const std::vector<uint8_t>& mask, int width, int height,
                                Connectivity connectivity, int& n_components);

// Re-labels an instance image so that every 4-connected piece of one id gets its own id
// (CTC ids with detached fragments); ids 1..n in raster order.
LabelImage split_disconnected(const LabelImage& labels);

}  // namespace unet
