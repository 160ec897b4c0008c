// unet/weight_map.cpp — eq. 2 of the U-Net paper with per-cell windowed distance transforms.
//
// Every cell gets an exact EDT inside its bounding box grown by the cut-off radius R; a pixel
// farther than R from a cell cannot have it as d1 or d2 of a non-negligible term (d1 + d2 > R
// makes the term smaller than border_tolerance), so the result equals the all-cells computation
// up to that tolerance, at a cost of about (cells × window area) instead of cells × image.
#include "unet/weight_map.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "core/error.h"
#include "unet/distance_transform.h"

namespace unet {
namespace {

struct Box {
  int x0, y0, x1, y1;  // inclusive
};

std::unordered_map<int32_t, Box> bounding_boxes(const LabelImage& l) {
  std::unordered_map<int32_t, Box> boxes;
  for (int y = 0; y < l.height; ++y)
    for (int x = 0; x < l.width; ++x) {
      const int32_t id = l.at(x, y);
      if (id <= 0) continue;
      auto [it, fresh] = boxes.try_emplace(id, Box{x, y, x, y});
      if (!fresh) {
        Box& b = it->second;
        b.x0 = std::min(b.x0, x); b.x1 = std::max(b.x1, x);
        b.y0 = std::min(b.y0, y); b.y1 = std::max(b.y1, y);
      }
    }
  return boxes;
}

}  // namespace

BorderDistances border_distances(const LabelImage& instances, float max_distance) {
  validate(instances, "border_distances");
  UNET_CHECK(max_distance > 0, ValueError, "border_distances: max_distance must be > 0, got ",
             max_distance);
  const float inf = std::numeric_limits<float>::infinity();
  const size_t n = instances.labels.size();
  BorderDistances d{std::vector<float>(n, inf), std::vector<float>(n, inf), std::vector<int32_t>(n, 0)};
  const int r = static_cast<int>(std::ceil(max_distance));
  const float max_sq = max_distance * max_distance;
  auto boxes = bounding_boxes(instances);
  // Fixed order (by id) so ties resolve the same way on every run.
  std::vector<int32_t> ids;
  for (const auto& [id, box] : boxes) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  std::vector<uint8_t> src;
  for (int32_t id : ids) {
    const Box& b = boxes[id];
    const int x0 = std::max(0, b.x0 - r), x1 = std::min(instances.width - 1, b.x1 + r);
    const int y0 = std::max(0, b.y0 - r), y1 = std::min(instances.height - 1, b.y1 + r);
    const int w = x1 - x0 + 1, h = y1 - y0 + 1;
    src.assign(static_cast<size_t>(w) * h, 0);
    for (int y = b.y0; y <= b.y1; ++y)
      for (int x = b.x0; x <= b.x1; ++x)
        if (instances.at(x, y) == id) src[static_cast<size_t>(y - y0) * w + (x - x0)] = 1;
    const std::vector<float> sq = squared_distance_transform(src, w, h);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const float s = sq[static_cast<size_t>(y) * w + x];
        if (s > max_sq) continue;
        const float dist = std::sqrt(s);
        const size_t i = static_cast<size_t>(y + y0) * instances.width + (x + x0);
        if (dist < d.d1[i]) { d.d2[i] = d.d1[i]; d.d1[i] = dist; d.nearest[i] = id; }
        else if (dist < d.d2[i]) d.d2[i] = dist;
      }
  }
  return d;
}

std::vector<float> weight_map(const LabelImage& instances, const WeightMapOptions& options,
                              const std::vector<uint8_t>* annotated) {
  validate(instances, "weight_map");
  UNET_CHECK(options.w0 >= 0, ValueError, "weight_map: w0 must be >= 0, got ", options.w0);
  UNET_CHECK(options.sigma > 0, ValueError, "weight_map: sigma must be > 0, got ", options.sigma);
  UNET_CHECK(options.border_tolerance > 0, ValueError,
             "weight_map: border_tolerance must be > 0, got ", options.border_tolerance);
  const size_t n = instances.labels.size();
  UNET_CHECK(!annotated || annotated->size() == n, ShapeError, "weight_map: annotation mask holds ",
             annotated ? annotated->size() : 0, " values, the label image ", n);
  auto is_annotated = [&](size_t i) { return !annotated || (*annotated)[i] != 0; };

  std::array<double, 2> wc = {1.0, 1.0};
  if (options.class_weights) {
    wc = {(*options.class_weights)[0], (*options.class_weights)[1]};
  } else if (options.balance_classes) {
    std::array<int64_t, 2> count = {0, 0};
    for (size_t i = 0; i < n; ++i)
      if (is_annotated(i)) ++count[instances.labels[i] > 0 ? 1 : 0];
    const double total = static_cast<double>(count[0] + count[1]);
    for (int k = 0; k < 2; ++k) wc[k] = count[k] > 0 ? total / (2.0 * count[k]) : 1.0;
  }

  std::vector<float> w(n, 0.0f);
  for (size_t i = 0; i < n; ++i)
    if (is_annotated(i)) w[i] = static_cast<float>(wc[instances.labels[i] > 0 ? 1 : 0]);
  if (options.w0 == 0) return w;
  // d1 + d2 <= R keeps the term above the tolerance; R = σ sqrt(2 ln(w0 / tol)).
  const double ratio = std::max(1.0, static_cast<double>(options.w0) / options.border_tolerance);
  const float radius = static_cast<float>(options.sigma * std::sqrt(2.0 * std::log(ratio)));
  if (radius <= 0) return w;
  const BorderDistances d = border_distances(instances, radius);
  const double two_sigma2 = 2.0 * options.sigma * options.sigma;
  for (size_t i = 0; i < n; ++i) {
    if (!is_annotated(i) || instances.labels[i] > 0 || !std::isfinite(d.d2[i])) continue;
    const double s = static_cast<double>(d.d1[i]) + d.d2[i];
    w[i] += static_cast<float>(options.w0 * std::exp(-s * s / two_sigma2));
  }
  return w;
}

std::array<float, 2> dataset_class_weights(const std::vector<LabelImage>& labels) {
  UNET_CHECK(!labels.empty(), ValueError, "dataset_class_weights: no label images given");
  std::array<int64_t, 2> count = {0, 0};
  for (const auto& l : labels) {
    validate(l, "dataset_class_weights");
    for (int32_t v : l.labels) ++count[v > 0 ? 1 : 0];
  }
  const double total = static_cast<double>(count[0] + count[1]);
  std::array<float, 2> w{};
  for (int k = 0; k < 2; ++k) w[k] = count[k] > 0 ? static_cast<float>(total / (2.0 * count[k])) : 1.0f;
  return w;
}

std::vector<uint8_t> annotation_near_objects(const LabelImage& instances, float margin) {
  validate(instances, "annotation_near_objects");
  UNET_CHECK(margin >= 0, ValueError, "annotation_near_objects: margin must be >= 0, got ", margin);
  const std::vector<float> sq =
      squared_distance_transform(foreground_mask(instances), instances.width, instances.height);
  std::vector<uint8_t> out(sq.size());
  for (size_t i = 0; i < sq.size(); ++i) out[i] = sq[i] <= margin * margin ? 1 : 0;
  return out;
}

Image heat_map(const std::vector<float>& values, int width, int height, float max_value) {
  UNET_CHECK(width > 0 && height > 0 && values.size() == static_cast<size_t>(width) * height,
             ShapeError, "heat_map: ", values.size(), " values for ", width, "x", height);
  if (max_value <= 0)
    for (float v : values)
      if (std::isfinite(v)) max_value = std::max(max_value, v);
  if (max_value <= 0) max_value = 1;
  static const float stops[5][3] = {{0, 0, 0}, {90, 20, 130}, {220, 40, 60}, {250, 200, 40}, {255, 255, 255}};
  Image out = make_image(width, height, 3, SampleFormat::U8);
  for (size_t i = 0; i < values.size(); ++i) {
    float t = std::isfinite(values[i]) ? std::clamp(values[i] / max_value, 0.0f, 1.0f) : 1.0f;
    const float pos = t * 4.0f;
    const int k = std::min(3, static_cast<int>(pos));
    const float f = pos - k;
    for (int c = 0; c < 3; ++c)
      out.pixels[i * 3 + c] = std::round(stops[k][c] + f * (stops[k + 1][c] - stops[k][c]));
  }
  return out;
}

}  // namespace unet
