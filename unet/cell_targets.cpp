// unet/cell_targets.cpp — separation borders, trusted regions, cell training slices.
#include "unet/cell_targets.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"

namespace unet {

void CellTargetOptions::validate() const {
  UNET_CHECK(border_radius >= 0.0f && std::isfinite(border_radius), ValueError,
             "cell targets: border_radius must be a distance >= 0 px (0 = no separation border), got ", border_radius);
  UNET_CHECK(trusted_margin >= 0.0f && std::isfinite(trusted_margin), ValueError,
             "cell targets: trusted_margin must be a distance >= 0 px, got ", trusted_margin);
}

LabelImage separate_instances(const LabelImage& instances, float radius) {
  validate(instances, "separate_instances");
  UNET_CHECK(radius >= 0.0f && std::isfinite(radius), ValueError,
             "separate_instances: radius must be a distance >= 0 px, got ", radius);
  LabelImage out = instances;
  if (radius < 1.0f) return out;  // no other pixel is that close
  const int w = instances.width, h = instances.height, r = static_cast<int>(std::floor(radius));
  const float r2 = radius * radius;
  // Window offsets within the radius, nearest first, so the scan of a pixel stops early.
  std::vector<std::pair<int, int>> offsets;
  for (int dy = -r; dy <= r; ++dy)
    for (int dx = -r; dx <= r; ++dx)
      if ((dx != 0 || dy != 0) && static_cast<float>(dx * dx + dy * dy) <= r2) offsets.push_back({dx, dy});
  std::sort(offsets.begin(), offsets.end(), [](auto a, auto b) {
    return a.first * a.first + a.second * a.second < b.first * b.first + b.second * b.second;
  });
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int32_t id = instances.at(x, y);
      if (id <= 0) continue;
      for (const auto& [dx, dy] : offsets) {
        const int nx = x + dx, ny = y + dy;
        if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
        const int32_t other = instances.at(nx, ny);
        if (other > 0 && other != id) {
          out.at(x, y) = 0;
          break;
        }
      }
    }
  return out;
}

std::vector<std::pair<int32_t, int32_t>> touching_pairs(const LabelImage& instances) {
  validate(instances, "touching_pairs");
  std::set<std::pair<int32_t, int32_t>> pairs;
  auto meet = [&](int32_t a, int32_t b) {
    if (a > 0 && b > 0 && a != b) pairs.insert({std::min(a, b), std::max(a, b)});
  };
  for (int y = 0; y < instances.height; ++y)
    for (int x = 0; x < instances.width; ++x) {
      if (x + 1 < instances.width) meet(instances.at(x, y), instances.at(x + 1, y));
      if (y + 1 < instances.height) meet(instances.at(x, y), instances.at(x, y + 1));
    }
  return {pairs.begin(), pairs.end()};
}

std::vector<uint8_t> trusted_region(const LabelImage& instances, float margin) {
  return annotation_near_objects(instances, margin);
}

TrainingSlice make_cell_training_slice(const Sample& sample, const CellTargetOptions& options, bool partial) {
  options.validate();
  validate(sample.labels, "make_cell_training_slice");
  UNET_CHECK(!(partial && options.partial == PartialAnnotation::Exclude), ValueError, "make_cell_training_slice: '",
             sample.name, "' is partially annotated and partial frames are to be excluded: leave it out of training");
  Sample separated = sample;
  separated.labels = separate_instances(sample.labels, options.border_radius);
  if (partial && options.partial == PartialAnnotation::Mask) {
    // The region is taken around the cells as labelled (before carving): the carved border pixels
    // of a labelled cell are trusted background.
    const std::vector<uint8_t> trusted = trusted_region(sample.labels, options.trusted_margin);
    return make_training_slice(separated, options.weights, &trusted);
  }
  return make_training_slice(separated, options.weights);
}

std::vector<bool> find_partial_annotations(const std::vector<LabelImage>& frames, double fraction) {
  UNET_CHECK(fraction > 0.0 && fraction < 1.0, ValueError,
             "find_partial_annotations: fraction must lie in (0, 1), got ", fraction);
  std::vector<bool> partial(frames.size(), false);
  if (frames.size() < 3) return partial;
  std::vector<double> covered;
  for (const LabelImage& l : frames) {
    validate(l, "find_partial_annotations");
    const auto fg = std::count_if(l.labels.begin(), l.labels.end(), [](int32_t v) { return v > 0; });
    covered.push_back(static_cast<double>(fg) / static_cast<double>(l.labels.size()));
  }
  std::vector<double> sorted = covered;
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
  const double median = sorted[sorted.size() / 2];
  for (size_t i = 0; i < frames.size(); ++i) partial[i] = covered[i] < fraction * median;
  return partial;
}

}  // namespace unet
