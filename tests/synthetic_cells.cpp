// tests/synthetic_cells.cpp — see synthetic_cells.h.
#include "synthetic_cells.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/philox.h"

namespace unet::test {
namespace {

struct Ellipse {
  float cx, cy, a, b, angle;
  // Normalised radius: < 1 inside.
  float rho(float x, float y) const {
    const float dx = x - cx, dy = y - cy, c = std::cos(angle), s = std::sin(angle);
    const float u = (c * dx + s * dy) / a, v = (-s * dx + c * dy) / b;
    return std::sqrt(u * u + v * v);
  }
};

}  // namespace

Sample synthetic_cells(const SyntheticCellsOptions& o) {
  auto uniform = [&](uint64_t i) { return philox_uniform01(o.seed, i); };
  std::vector<Ellipse> cells;
  struct Disc { float x, y, r; };
  std::vector<Disc> placed;  // a disc around each pair; pairs do not meet (no slivers between pairs)
  uint64_t draw = 0;
  for (int p = 0, attempts = 0; p < o.pairs && attempts < 1000; ++attempts) {
    Ellipse first;
    first.a = o.min_axis + (o.max_axis - o.min_axis) * uniform(draw++);
    first.b = o.min_axis + (o.max_axis - o.min_axis) * uniform(draw++);
    first.angle = 3.14159265f * uniform(draw++);
    first.cx = first.a + (o.width - 2 * first.a) * uniform(draw++);
    first.cy = first.a + (o.height - 2 * first.a) * uniform(draw++);
    Ellipse second = first;
    second.a = o.min_axis + (o.max_axis - o.min_axis) * uniform(draw++);
    second.b = o.min_axis + (o.max_axis - o.min_axis) * uniform(draw++);
    second.angle = 3.14159265f * uniform(draw++);
    // The second centre at 0.85 × the smaller semi-axes' sum from the first: closer than the
    // radii in any direction add up to, so the ellipses overlap.
    const float direction = 6.2831853f * uniform(draw++);
    const float distance = 0.85f * (std::min(first.a, first.b) + std::min(second.a, second.b));
    second.cx = std::clamp(first.cx + distance * std::cos(direction), 0.0f, static_cast<float>(o.width - 1));
    second.cy = std::clamp(first.cy + distance * std::sin(direction), 0.0f, static_cast<float>(o.height - 1));
    const Disc disc{(first.cx + second.cx) / 2, (first.cy + second.cy) / 2,
                    std::hypot(first.cx - second.cx, first.cy - second.cy) / 2 + std::max({first.a, first.b, second.a, second.b})};
    const bool free = std::none_of(placed.begin(), placed.end(), [&](const Disc& d) {
      return std::hypot(d.x - disc.x, d.y - disc.y) < d.r + disc.r;
    });
    if (!free) continue;
    placed.push_back(disc);
    cells.push_back(first);
    cells.push_back(second);
    ++p;
  }
  Sample s;
  s.name = "synthetic" + std::to_string(o.seed);
  s.labels = make_label_image(o.width, o.height);
  for (int y = 0; y < o.height; ++y)
    for (int x = 0; x < o.width; ++x) {
      float best = 1.0f;
      for (size_t k = 0; k < cells.size(); ++k) {
        const float r = cells[k].rho(static_cast<float>(x), static_cast<float>(y));
        if (r < best) {
          best = r;
          s.labels.at(x, y) = o.first_id + static_cast<int32_t>(k) * o.id_step;
        }
      }
    }
  const float top = o.format == SampleFormat::U16 ? 4095.0f : 255.0f;
  s.image = make_image(o.width, o.height, 1, o.format);
  for (int y = 0; y < o.height; ++y)
    for (int x = 0; x < o.width; ++x) {
      const int32_t id = s.labels.at(x, y);
      bool rim = false;
      if (id > 0)
        for (auto [dx, dy] : {std::pair{1, 0}, {-1, 0}, {0, 1}, {0, -1}}) {
          const int nx = std::clamp(x + dx, 0, o.width - 1), ny = std::clamp(y + dy, 0, o.height - 1);
          rim = rim || s.labels.at(nx, ny) != id;
        }
      const float base = id == 0 ? 0.35f : rim ? 0.1f : 0.7f;
      const float noise = 0.1f * (philox_uniform01(o.seed + 7777, static_cast<uint64_t>(y) * o.width + x) - 0.5f);
      s.image.at(x, y) = std::round(std::clamp(base + noise, 0.0f, 1.0f) * top);
    }
  return s;
}

Sample keep_labels(const Sample& sample, const std::vector<bool>& keep) {
  std::set<int32_t> ids(sample.labels.labels.begin(), sample.labels.labels.end());
  ids.erase(0);
  std::set<int32_t> kept;
  size_t k = 0;
  for (int32_t id : ids) {
    if (k < keep.size() && keep[k]) kept.insert(id);
    ++k;
  }
  Sample out = sample;
  for (int32_t& v : out.labels.labels)
    if (!kept.count(v)) v = 0;
  return out;
}

}  // namespace unet::test
