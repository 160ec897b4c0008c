// tests/test_metrics.cpp — the challenge measures: perfect scores on identical inputs, the
// behaviour the measures are designed for (thick membrane vs merging gap), and small cases
// computed by hand.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/error.h"
#include "unet/connected_components.h"
#include "unet/dataset.h"
#include "unet/image_io.h"
#include "unet/metrics.h"

using namespace unet;
using Catch::Detail::Approx;

namespace {

LabelImage labels_of(int w, int h, std::vector<int32_t> v) {
  LabelImage l = make_label_image(w, h);
  l.labels = std::move(v);
  return l;
}

Image probability_of(const LabelImage& l) {
  Image p = make_image(l.width, l.height);
  for (size_t i = 0; i < p.pixels.size(); ++i) p.pixels[i] = l.labels[i] > 0 ? 1.0f : 0.0f;
  return p;
}

// Two 6x6 cells separated by a one-pixel membrane column, in a 15x8 image framed by membrane.
LabelImage two_cells() {
  LabelImage l = make_label_image(15, 8);
  for (int y = 1; y < 7; ++y)
    for (int x = 1; x < 14; ++x) l.at(x, y) = x < 7 ? 1 : x > 7 ? 2 : 0;
  return l;
}

std::vector<LabelImage> isbi_truth(int n) {
  const std::string root = std::string(UNET_SOURCE_DIR) + "/data/isbi2012/train/labels/";
  std::vector<LabelImage> out;
  for (int i = 0; i < n; ++i) {
    const std::string p = root + (i < 10 ? "0" : "") + std::to_string(i) + ".png";
    out.push_back(labels_from_image(read_image(p), LabelKind::BinaryMask, p));
  }
  return out;
}

}  // namespace

TEST_CASE("measures: identical inputs score perfectly", "[data][metrics]") {
  const auto truth = isbi_truth(2);
  std::vector<Image> maps;
  for (const auto& t : truth) maps.push_back(probability_of(t));
  const MeasureResult r = evaluate_segmentation(maps, truth);
  REQUIRE(r.pixel_error == 0.0);
  REQUIRE(r.rand_error == Approx(0.0).margin(1e-12));
  REQUIRE(r.vinfo_error == Approx(0.0).margin(1e-12));
  REQUIRE(r.warping_error == 0.0);
  REQUIRE(r.warping_error_classic == 0.0);
  REQUIRE(r.iou == 1.0);
  REQUIRE(r.seg == 1.0);
  REQUIRE(r.pixels == 2 * 512 * 512);
}

TEST_CASE("measures: a thickened membrane costs pixel error, some Rand error, no topology", "[data][metrics]") {
  const auto truth = isbi_truth(2);
  std::vector<Image> maps;
  for (const auto& t : truth) {
    Image p = probability_of(t);
    // Membrane grows by one pixel into every cell (4-neighbour dilation of the membrane).
    for (int y = 0; y < t.height; ++y)
      for (int x = 0; x < t.width; ++x) {
        if (t.at(x, y) == 0) continue;
        const bool near = (x > 0 && t.at(x - 1, y) == 0) || (x + 1 < t.width && t.at(x + 1, y) == 0) ||
                          (y > 0 && t.at(x, y - 1) == 0) || (y + 1 < t.height && t.at(x, y + 1) == 0);
        if (near) p.at(x, y) = 0.0f;
      }
    maps.push_back(p);
  }
  const MeasureResult r = evaluate_segmentation(maps, truth);
  INFO("pixel " << r.pixel_error << " rand " << r.rand_error << " vinfo " << r.vinfo_error
                << " warping " << r.warping_error);
  // Measured: pixel 0.043, Rand 0.051, warping 0.0002. The foreground-restricted Rand score
  // counts the lost rim as singletons (F ~ 2(1-f)^2 / (1 + (1-f)^2) for a lost fraction f), so
  // it does move; it moves far less than for one merge of two cells (next tests).
  REQUIRE(r.pixel_error > 0.03);
  REQUIRE(r.rand_error < 0.1);
  REQUIRE(r.warping_error < 1e-3);  // shrinking cells keeps the topology (only tiny cells vanish)
}

TEST_CASE("measures: thick membrane vs merging gap on two cells", "[data][metrics]") {
  const LabelImage truth = two_cells();
  Image thick = probability_of(truth);
  for (int y = 1; y < 7; ++y) thick.at(6, y) = 0.0f;  // membrane 2 px instead of 1
  Image gap = probability_of(truth);
  gap.at(7, 4) = 1.0f;
  const MeasureResult t = evaluate_segmentation({thick}, {truth});
  const MeasureResult g = evaluate_segmentation({gap}, {truth});
  REQUIRE(t.pixel_error > 5 * g.pixel_error);
  REQUIRE(g.rand_error > 4 * t.rand_error);
  // Warping at th = 0.5 (index 5): the minimum over thresholds would land on th = 1.0, where
  // "everything membrane" erodes both cells to points without a split or merge (see docs).
  REQUIRE(t.warping.values[5] == 0.0);
  REQUIRE(g.warping.values[5] > 0.0);
  REQUIRE(g.warping_error == 0.0);
  REQUIRE(g.warping.best_threshold == 1.0f);
}

TEST_CASE("measures: a one-pixel gap that merges two cells", "[data][metrics]") {
  const LabelImage truth = two_cells();
  Image pred = probability_of(truth);
  pred.at(7, 4) = 1.0f;  // the gap: the membrane column is open at one pixel
  EvaluateOptions o;
  o.thresholds = {0.5f};  // see the previous test for why not the minimum over all thresholds
  const MeasureResult r = evaluate_segmentation({pred}, {truth}, o);
  INFO("pixel " << r.pixel_error << " rand " << r.rand_error << " warping " << r.warping_error);
  // Pixel error: one false positive among 72 interior pixels: 1 - 144/145.
  REQUIRE(r.pixel_error == Approx(1.0 - 144.0 / 145.0));
  // Rand: two objects of 36 merged into one of 72: F = 2*72 / (72 + 72^2/36... ) = 2/3.
  REQUIRE(r.rand_error == Approx(1.0 - 2.0 * (36.0 * 36 * 2) / (36.0 * 36 * 2 + 72.0 * 72)));
  REQUIRE(r.rand_error > 0.3);
  // Warping: the single mismatch joins two objects: one merge pixel out of 120.
  REQUIRE(r.warping_error == Approx(1.0 / 120.0));
  REQUIRE(r.warping_error_classic == Approx(1.0 / 120.0));
  // SEG: each truth cell has 36 of its 36 pixels inside the merged object of 73: J = 36/73,
  // which covers more than half of each cell.
  REQUIRE(r.seg == Approx(36.0 / 73.0));
}

TEST_CASE("measures: a shifted membrane is no topological error", "[data][metrics]") {
  const LabelImage truth = two_cells();
  LabelImage shifted = make_label_image(15, 8);
  for (int y = 1; y < 7; ++y)
    for (int x = 1; x < 14; ++x) shifted.at(x, y) = x < 8 ? 1 : x > 8 ? 2 : 0;
  const MeasureResult r = evaluate_segmentation({probability_of(shifted)}, {truth});
  REQUIRE(r.pixel_error > 0.0);
  REQUIRE(r.warping_error == 0.0);
  REQUIRE(r.warping_error_classic == 0.0);
}

TEST_CASE("measures: a membrane across one cell is a split", "[data][metrics]") {
  LabelImage truth = make_label_image(9, 9);
  for (int y = 1; y < 8; ++y)
    for (int x = 1; x < 8; ++x) truth.at(x, y) = 1;
  Image pred = probability_of(truth);
  for (int x = 1; x < 8; ++x) pred.at(x, 4) = 0.2f;  // a predicted membrane line
  const std::vector<uint8_t> gt = foreground_mask(truth);
  std::vector<uint8_t> p(gt.size());
  std::vector<float> conf(gt.size());
  for (size_t i = 0; i < p.size(); ++i) {
    p[i] = pred.pixels[i] > 0.5f;
    conf[i] = std::fabs(pred.pixels[i] - 0.5f);
  }
  const WarpingCounts c = warp_and_classify(gt, p, conf, 9, 9);
  REQUIRE(c.mismatches == 1);  // the line is carved in from both ends until its last pixel
  REQUIRE(c.splits == 1);
  REQUIRE(c.merges == 0);
  REQUIRE(c.flips == 6);
}

TEST_CASE("measures: simple points by the topological numbers", "[data][metrics]") {
  // Bits clockwise from the top-left corner: 0 TL, 1 T, 2 TR, 3 R, 4 BR, 5 B, 6 BL, 7 L.
  REQUIRE_FALSE(is_simple_point(0x00));        // isolated: object added / deleted
  REQUIRE_FALSE(is_simple_point(0xFF));        // interior: a hole
  REQUIRE(is_simple_point(0x02));              // one 4-neighbour
  REQUIRE(is_simple_point(0x03));              // top + top-left
  REQUIRE_FALSE(is_simple_point(0x01));        // only a corner: not 4-connected to x
  REQUIRE_FALSE(is_simple_point(0x22));        // top and bottom: a bridge
  REQUIRE(is_simple_point(0x0E));              // T, TR, R
  REQUIRE_FALSE(is_simple_point(0x0A));        // T and R without the corner: joins them
  REQUIRE(is_simple_point(0xFF & ~0x02));      // all but the top: removing x opens no hole
}

TEST_CASE("measures: Rand and V_info by hand", "[data][metrics]") {
  // Truth [1 1 2 2], prediction [1 1 1 0]: n = 4, a = (2, 2), b = (3) + one singleton,
  // cells (1,1) = 2, (2,1) = 1 + the singleton.
  const LabelImage truth = labels_of(4, 1, {1, 1, 2, 2});
  const LabelImage pred = labels_of(4, 1, {1, 1, 1, 0});
  const ContingencyStats s = contingency_stats(truth, pred);
  REQUIRE(s.n == 4);
  REQUIRE(s.sum_a2 == 8);
  REQUIRE(s.sum_b2 == 10);
  REQUIRE(s.sum_ab2 == 6);
  REQUIRE(rand_f_score(s) == Approx(12.0 / 18.0));
  // H(A) = ln 2, H(B) = ln 4 - (3/4) ln 3, H(AB) = ln 4 - (1/2) ln 2.
  const double ha = std::log(2.0), hb = std::log(4.0) - 0.75 * std::log(3.0);
  const double hab = std::log(4.0) - 0.5 * std::log(2.0);
  REQUIRE(vinfo_f_score(s) == Approx(2.0 * (ha + hb - hab) / (ha + hb)));
  // Background pixels of the truth do not count at all.
  const ContingencyStats s2 = contingency_stats(labels_of(5, 1, {1, 1, 2, 2, 0}),
                                                labels_of(5, 1, {1, 1, 1, 0, 1}));
  REQUIRE(rand_f_score(s2) == Approx(rand_f_score(s)));
}

TEST_CASE("measures: SEG and pixel F1 by hand", "[data][metrics]") {
  // Truth: R1 = 4 pixels, R2 = 2 pixels. Prediction S covers 3 of R1 and 2 outside; S2 covers
  // 1 of R2 (not more than half). SEG = (3 / (4 + 5 - 3) + 0) / 2 = 0.25.
  const LabelImage truth = labels_of(10, 1, {1, 1, 1, 1, 0, 0, 0, 2, 2, 0});
  const LabelImage pred = labels_of(10, 1, {0, 5, 5, 5, 5, 5, 0, 7, 0, 0});
  const SegCounts c = seg_counts(truth, pred);
  REQUIRE(c.objects == 2);
  REQUIRE(c.sum_jaccard == Approx(0.5));
  // Pixel F1 at 0.5: TP = 4, FP = 2, FN = 2 -> F1 = 8 / 12.
  Image p = make_image(10, 1);
  p.pixels = {0.2f, 0.6f, 0.7f, 0.8f, 0.9f, 0.55f, 0.1f, 0.6f, 0.4f, 0.0f};
  EvaluateOptions o;
  o.thresholds = {0.5f};
  const MeasureResult r = evaluate_segmentation({p}, {truth}, o);
  REQUIRE(r.pixel_error == Approx(1.0 - 8.0 / 12.0));
  REQUIRE(r.iou == Approx(4.0 / 8.0));
  REQUIRE(r.seg == Approx(0.25));
}

TEST_CASE("measures: bad input is refused with typed errors", "[data][metrics]") {
  const LabelImage truth = two_cells();
  REQUIRE_THROWS_AS(evaluate_segmentation({}, {}), ValueError);
  REQUIRE_THROWS_AS(evaluate_segmentation({make_image(3, 3)}, {truth}), ShapeError);
  REQUIRE_THROWS_AS(evaluate_segmentation({probability_of(truth)}, {truth, truth}), ShapeError);
  EvaluateOptions o;
  o.thresholds = {1.5f};
  REQUIRE_THROWS_AS(evaluate_segmentation({probability_of(truth)}, {truth}, o), ValueError);
}
