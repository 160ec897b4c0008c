// unet/instances.cpp — threshold + components + clean-up, and the CTC result masks.
#include "unet/instances.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <queue>
#include <regex>
#include <tuple>
#include <unordered_map>

#include "core/error.h"
#include "unet/image_io.h"
#include "unet/weight_map.h"

namespace unet {

std::string InstanceOptions::to_json() const {
  // Floats as the decimals people typed (0.95, not 0.949999988079071); they read back to the same floats.
  auto decimal = [](float v) { return std::round(static_cast<double>(v) * 1e6) / 1e6; };
  return nlohmann::ordered_json{{"threshold", decimal(threshold)},
                                {"min_size", min_size},
                                {"fill_holes", fill_holes},
                                {"restore_border", decimal(restore_border)},
                                {"core_threshold", decimal(core_threshold)},
                                {"connectivity", connectivity == Connectivity::Four ? 4 : 8}}
      .dump();
}

InstanceOptions InstanceOptions::of_model(const std::map<std::string, std::string>& metadata) {
  const auto saved = metadata.find("unetcore.instances");
  return saved == metadata.end() ? InstanceOptions{} : from_json(saved->second);
}

InstanceOptions InstanceOptions::from_json(const std::string& text) {
  InstanceOptions o;
  try {
    const auto j = nlohmann::json::parse(text);
    o.threshold = j.value("threshold", o.threshold);
    o.min_size = j.value("min_size", o.min_size);
    o.fill_holes = j.value("fill_holes", o.fill_holes);
    o.restore_border = j.value("restore_border", o.restore_border);
    o.core_threshold = j.value("core_threshold", o.core_threshold);
    const int c = j.value("connectivity", 4);
    UNET_CHECK(c == 4 || c == 8, ValueError, "instance options: connectivity must be 4 or 8, got ", c);
    o.connectivity = c == 4 ? Connectivity::Four : Connectivity::Eight;
  } catch (const nlohmann::json::exception& e) {
    UNET_THROW(ValueError, "instance options: not valid JSON (", e.what(), "): ", text);
  }
  o.validate();
  return o;
}

void InstanceOptions::validate() const {
  UNET_CHECK(threshold >= 0.0f && threshold < 1.0f, ValueError,
             "instance options: threshold must lie in [0, 1) (foreground = probability > threshold), got ", threshold);
  UNET_CHECK(min_size >= 0, ValueError, "instance options: min_size must be >= 0 pixels (0 keeps every object), got ",
             min_size);
  UNET_CHECK(restore_border >= 0.0f && std::isfinite(restore_border), ValueError,
             "instance options: restore_border must be a distance >= 0 px (0 = off), got ", restore_border);
  UNET_CHECK(core_threshold == 0.0f || (core_threshold > threshold && core_threshold < 1.0f), ValueError,
             "instance options: core_threshold must be 0 (off) or lie in (threshold, 1) = (", threshold,
             ", 1): seeds are cores inside the foreground; got ", core_threshold);
}

LabelImage renumber(const LabelImage& instances) {
  validate(instances, "renumber");
  LabelImage out = instances;
  std::unordered_map<int32_t, int32_t> id;
  for (int32_t& v : out.labels) {
    if (v <= 0) { v = 0; continue; }
    auto [it, fresh] = id.try_emplace(v, static_cast<int32_t>(id.size()) + 1);
    v = it->second;
  }
  return out;
}

LabelImage remove_small_objects(const LabelImage& instances, int64_t min_size) {
  validate(instances, "remove_small_objects");
  UNET_CHECK(min_size >= 0, ValueError, "remove_small_objects: min_size must be >= 0, got ", min_size);
  std::unordered_map<int32_t, int64_t> area;
  for (int32_t v : instances.labels)
    if (v > 0) ++area[v];
  LabelImage out = instances;
  for (int32_t& v : out.labels)
    if (v > 0 && area[v] < min_size) v = 0;
  return renumber(out);
}

LabelImage fill_holes(const LabelImage& instances, Connectivity connectivity) {
  validate(instances, "fill_holes");
  const int w = instances.width, h = instances.height;
  // The background's components under the complementary connectivity: a 4-connected object is
  // enclosed by 8-connected background and the other way round.
  std::vector<uint8_t> background(instances.labels.size());
  for (size_t i = 0; i < background.size(); ++i) background[i] = instances.labels[i] > 0 ? 0 : 1;
  int regions = 0;
  const LabelImage bg = connected_components(
      background, w, h, connectivity == Connectivity::Four ? Connectivity::Eight : Connectivity::Four, regions);
  // Per background region: the one object around it (0 = none yet, -1 = open: touches the image
  // edge or more than one object).
  std::vector<int32_t> owner(static_cast<size_t>(regions) + 1, 0);
  auto note = [&](int32_t region, int32_t object) {
    int32_t& o = owner[region];
    if (o == -1) return;
    o = (o == 0 || o == object) ? object : -1;
  };
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int32_t region = bg.at(x, y);
      if (region == 0) continue;
      if (x == 0 || y == 0 || x == w - 1 || y == h - 1) owner[region] = -1;
      const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
      for (int k = 0; k < 4; ++k) {
        const int nx = x + dx[k], ny = y + dy[k];
        if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
        const int32_t object = instances.at(nx, ny);
        if (object > 0) note(region, object);
      }
    }
  LabelImage out = instances;
  for (size_t i = 0; i < out.labels.size(); ++i) {
    const int32_t region = bg.labels[i];
    if (region > 0 && owner[region] > 0) out.labels[i] = owner[region];
  }
  return renumber(out);
}

LabelImage restore_separation_border(const LabelImage& instances, float radius) {
  validate(instances, "restore_separation_border");
  UNET_CHECK(radius >= 0.0f && std::isfinite(radius), ValueError,
             "restore_separation_border: radius must be >= 0, got ", radius);
  if (radius == 0.0f) return renumber(instances);
  const float reach = 2.0f * radius;  // the far side of a gap carved with this radius
  const BorderDistances d = border_distances(instances, reach);
  LabelImage out = instances;
  for (size_t i = 0; i < out.labels.size(); ++i)
    if (out.labels[i] <= 0 && d.d1[i] <= radius && d.d2[i] <= reach) out.labels[i] = d.nearest[i];
  return renumber(out);
}

LabelImage grow_from_seeds(const Image& probability, const std::vector<uint8_t>& foreground, const LabelImage& seeds,
                           Connectivity connectivity) {
  validate(probability, "grow_from_seeds");
  validate(seeds, "grow_from_seeds");
  const int w = seeds.width, h = seeds.height;
  const size_t count = seeds.labels.size();
  UNET_CHECK(probability.channels == 1 && probability.width == w && probability.height == h &&
                 foreground.size() == count,
             ShapeError, "grow_from_seeds: the probability map (", probability.width, "x", probability.height, "x",
             probability.channels, "), the foreground (", foreground.size(), " pixels) and the seeds (", w, "x", h,
             ") must be one-channel images of one size");
  LabelImage out = seeds;
  // Highest probability first; among equals the pixel reached first (a counter): one fixed order.
  using Entry = std::tuple<float, int64_t, int32_t>;  // probability, -arrival, pixel
  std::priority_queue<Entry> queue;
  int64_t arrivals = 0;
  const int dx[8] = {1, -1, 0, 0, 1, 1, -1, -1}, dy[8] = {0, 0, 1, -1, 1, -1, 1, -1};
  const int neighbours = connectivity == Connectivity::Four ? 4 : 8;
  auto claim_neighbours = [&](int32_t i) {
    const int x = static_cast<int>(i % w), y = static_cast<int>(i / w);
    for (int k = 0; k < neighbours; ++k) {
      const int nx = x + dx[k], ny = y + dy[k];
      if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
      const int32_t j = ny * w + nx;
      if (!foreground[j] || out.labels[j] > 0) continue;
      out.labels[j] = out.labels[i];  // claimed on arrival: the first object to reach a pixel keeps it
      queue.emplace(probability.pixels[j], -arrivals++, j);
    }
  };
  std::vector<int32_t> seed_pixels;  // listed first: claiming marks pixels that are not seeds
  for (size_t i = 0; i < count; ++i) {
    if (out.labels[i] <= 0) { out.labels[i] = 0; continue; }
    UNET_CHECK(foreground[i], ValueError, "grow_from_seeds: seed ", out.labels[i], " has pixel (", i % w, ", ", i / w,
               ") outside the foreground; seeds must lie inside it");
    seed_pixels.push_back(static_cast<int32_t>(i));
  }
  for (int32_t i : seed_pixels) claim_neighbours(i);
  while (!queue.empty()) {
    const int32_t i = std::get<2>(queue.top());
    queue.pop();
    claim_neighbours(i);
  }
  // Foreground that no seed reached: its own components, numbered after the seeds.
  std::vector<uint8_t> rest(count);
  for (size_t i = 0; i < count; ++i) rest[i] = foreground[i] && out.labels[i] == 0 ? 1 : 0;
  const LabelImage orphans = connected_components(rest, w, h, connectivity);
  const int32_t top = *std::max_element(out.labels.begin(), out.labels.end());
  for (size_t i = 0; i < count; ++i)
    if (orphans.labels[i] > 0) out.labels[i] = top + orphans.labels[i];
  return renumber(out);
}

LabelImage instances_from_probability(const Image& probability, const InstanceOptions& options) {
  validate(probability, "instances_from_probability");
  UNET_CHECK(probability.channels == 1, ShapeError,
             "instances_from_probability: the probability map must have one channel, got ", probability.channels);
  options.validate();
  const Image p = normalised(probability);
  std::vector<uint8_t> mask(p.pixels.size());
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = p.pixels[i] > options.threshold ? 1 : 0;
  LabelImage objects;
  if (options.core_threshold > 0.0f) {
    std::vector<uint8_t> cores(p.pixels.size());
    for (size_t i = 0; i < cores.size(); ++i) cores[i] = p.pixels[i] > options.core_threshold ? 1 : 0;
    objects = grow_from_seeds(p, mask, connected_components(cores, p.width, p.height, options.connectivity),
                              options.connectivity);
  } else {
    objects = connected_components(mask, p.width, p.height, options.connectivity);
  }
  if (options.min_size > 0) objects = remove_small_objects(objects, options.min_size);
  if (options.fill_holes) objects = fill_holes(objects, options.connectivity);
  if (options.restore_border > 0.0f) objects = restore_separation_border(objects, options.restore_border);
  return objects;
}

void write_instance_mask(const std::string& path, const LabelImage& instances) {
  validate(instances, "write_instance_mask");
  const int32_t top = *std::max_element(instances.labels.begin(), instances.labels.end());
  UNET_CHECK(top <= 65535, ValueError, path, ": a CTC mask is 16-bit, but the largest id is ", top,
             " (renumber() gives ids 1..n; more than 65535 objects do not fit)");
  Image values = values_from_labels(instances);
  values.format = SampleFormat::U16;
  write_tiff(path, values);
}

std::string instance_mask_name(const std::string& frame_stem) {
  static const std::regex frame(R"(t(\d+))");
  std::smatch m;
  if (std::regex_match(frame_stem, m, frame)) return "mask" + m[1].str() + ".tif";
  return frame_stem + "_mask.tif";
}

}  // namespace unet
