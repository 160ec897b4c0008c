// tests/test_weight_map.cpp — the exact EDT against brute force, and the paper's weight map
// (eq. 2) on touching and nearly touching disks against hand-computed values.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/philox.h"
#include "unet/distance_transform.h"
#include "unet/weight_map.h"

using namespace unet;
using Catch::Detail::Approx;

namespace {

// Two disks of radius 10 on the row y = 25, with `gap` background pixels between them on
// that row (gap = 1: cells touching across a one-pixel membrane).
LabelImage two_disks(int gap) {
  LabelImage l = make_label_image(100, 50);
  const int ca = 30, cb = 30 + 2 * 10 + 1 + gap;
  for (int y = 0; y < 50; ++y)
    for (int x = 0; x < 100; ++x) {
      if ((x - ca) * (x - ca) + (y - 25) * (y - 25) <= 100) l.at(x, y) = 1;
      if ((x - cb) * (x - cb) + (y - 25) * (y - 25) <= 100) l.at(x, y) = 2;
    }
  return l;
}

double border_term(double d1, double d2) { return 10.0 * std::exp(-(d1 + d2) * (d1 + d2) / 50.0); }

}  // namespace

TEST_CASE("EDT: Felzenszwalb-Huttenlocher equals brute force", "[data][weight_map]") {
  const int w = 37, h = 23;
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<uint8_t> src(w * h);
    for (size_t i = 0; i < src.size(); ++i)
      src[i] = philox_uniform01(11, trial * 10000 + i) < 0.03f * (trial + 1);
    if (trial == 3) std::fill(src.begin(), src.end(), 0);  // no source: +infinity
    const auto d = squared_distance_transform(src, w, h);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        double best = std::numeric_limits<double>::infinity();
        for (int v = 0; v < h; ++v)
          for (int u = 0; u < w; ++u)
            if (src[v * w + u]) best = std::min(best, double((x - u) * (x - u) + (y - v) * (y - v)));
        REQUIRE(d[y * w + x] == static_cast<float>(best));
      }
  }
}

TEST_CASE("weight map: gaps between touching and nearly touching disks", "[data][weight_map]") {
  WeightMapOptions plain;
  plain.balance_classes = false;  // w_c = 1: the values are 1 + border term
  for (int gap : {1, 2, 3, 5}) {
    const LabelImage l = two_disks(gap);
    const auto w = weight_map(l, plain);
    // On the centre row every gap pixel has d1 + d2 = gap + 1 (distance 1 to a disk's edge
    // pixel on the row counts the pixel itself).
    const int first = 41;
    for (int k = 0; k < gap; ++k) {
      INFO("gap " << gap << " pixel " << k);
      REQUIRE(w[25 * 100 + first + k] == Approx(1.0 + border_term(gap + 1, 0)).epsilon(1e-5));
    }
    // Inside a cell: w_c only.
    REQUIRE(w[25 * 100 + 30] == 1.0f);
  }
  // Touching case one row off the centre: the nearest pixels of both disks are diagonal
  // neighbours (40,25) and (42,25): d1 = d2 = sqrt 2.
  const auto w1 = weight_map(two_disks(1), plain);
  REQUIRE(w1[24 * 100 + 41] == Approx(1.0 + border_term(std::sqrt(2.0), std::sqrt(2.0))).epsilon(1e-5));
  // Left of disk A on the centre row: d1 = 20 - x, d2 = distance to B's edge pixel (42 - x).
  REQUIRE(w1[25 * 100 + 17] == Approx(1.0 + border_term(3, 25)).epsilon(1e-4));
  // The paper's touching value: 10·exp(-4/50) ≈ 9.23 on top of w_c.
  REQUIRE(w1[25 * 100 + 41] == Approx(1.0 + 9.2312).epsilon(1e-4));
}

TEST_CASE("weight map: class balance and ignored pixels", "[data][weight_map]") {
  const LabelImage l = two_disks(3);
  int64_t fg = 0;
  for (int32_t v : l.labels) fg += v > 0;
  const double n = static_cast<double>(l.labels.size()), bg = n - fg;
  const auto w = weight_map(l);
  REQUIRE(w[25 * 100 + 30] == Approx(n / (2 * fg)));
  REQUIRE(w[0] == Approx(n / (2 * bg)));  // far corner: no border term
  REQUIRE(w[25 * 100 + 42] == Approx(n / (2 * bg) + border_term(4, 0)).epsilon(1e-5));
  WeightMapOptions fixed;
  fixed.class_weights = std::array<float, 2>{2.0f, 0.5f};
  REQUIRE(weight_map(l, fixed)[25 * 100 + 30] == 0.5f);
  // Data-set frequencies: one all-background image doubles the background count.
  const auto cw = dataset_class_weights({l, make_label_image(100, 50)});
  REQUIRE(cw[1] == Approx(2 * n / (2 * fg)));
  REQUIRE(cw[0] == Approx(2 * n / (2 * (bg + n))));
  REQUIRE_THROWS_AS(dataset_class_weights({}), ValueError);
  // Partial annotation: pixels outside the annotation weigh 0.
  const auto annotated = annotation_near_objects(l, 3.0f);
  REQUIRE(annotated[0] == 0);
  REQUIRE(annotated[25 * 100 + 17] == 1);  // 3 px left of disk A
  const auto wp = weight_map(l, {}, &annotated);
  REQUIRE(wp[0] == 0.0f);
  REQUIRE(wp[25 * 100 + 42] > 1.0f);
  std::vector<uint8_t> wrong(10);
  REQUIRE_THROWS_AS(weight_map(l, {}, &wrong), ShapeError);
  WeightMapOptions bad;
  bad.sigma = 0;
  REQUIRE_THROWS_AS(weight_map(l, bad), ValueError);
}

TEST_CASE("weight map: windowed distances equal brute force over all cells", "[data][weight_map]") {
  // Random rectangles (overlaps simply overwrite) on a small image.
  LabelImage l = make_label_image(48, 40);
  for (int id = 1; id <= 7; ++id) {
    const int x0 = philox_uint32(5, id * 4) % 40, y0 = philox_uint32(5, id * 4 + 1) % 32;
    const int bw = 2 + philox_uint32(5, id * 4 + 2) % 8, bh = 2 + philox_uint32(5, id * 4 + 3) % 8;
    for (int y = y0; y < std::min(40, y0 + bh); ++y)
      for (int x = x0; x < std::min(48, x0 + bw); ++x) l.at(x, y) = id;
  }
  WeightMapOptions o;
  o.balance_classes = false;
  o.border_tolerance = 1e-6f;
  const auto w = weight_map(l, o);
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 48; ++x) {
      if (l.at(x, y) > 0) continue;
      std::vector<double> per_id(8, std::numeric_limits<double>::infinity());
      for (int v = 0; v < 40; ++v)
        for (int u = 0; u < 48; ++u)
          if (l.at(u, v) > 0)
            per_id[l.at(u, v)] = std::min(per_id[l.at(u, v)], std::hypot(double(x - u), double(y - v)));
      std::sort(per_id.begin(), per_id.end());
      const double expected = std::isfinite(per_id[1]) ? 1.0 + border_term(per_id[0], per_id[1]) : 1.0;
      INFO("pixel " << x << "," << y);
      REQUIRE(w[y * 48 + x] == Approx(expected).margin(2e-6));
    }
}
