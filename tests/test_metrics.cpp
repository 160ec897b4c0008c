// tests/test_metrics.cpp — the challenge measures: perfect scores on identical inputs, the
// behaviour the measures are designed for (thick membrane vs merging gap), small cases computed
// by hand from the challenge's Java (per-slice against pooled, singletons, the entropy-zero and
// empty-slice special cases, the threshold list, the border thinning). The same measures on real
// ISBI crops against an independent port of the Java: tests/isbi_challenge_reference.py (CTest).
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
  REQUIRE(r.vrand_thinned_error == Approx(0.0).margin(1e-12));
  REQUIRE(r.vinfo_thinned_error == Approx(0.0).margin(1e-12));
  REQUIRE(r.vinfo_error_pooled == Approx(0.0).margin(1e-12));
  for (double e : {r.vinfo_error, r.vinfo_thinned_error, r.vinfo_error_pooled}) REQUIRE(e >= 0.0);
  REQUIRE(r.slices_without_foreground == 0);
  REQUIRE(r.warping_error == 0.0);
  REQUIRE(r.warping_error_classic == 0.0);
  REQUIRE(r.iou == 1.0);
  REQUIRE(r.seg == 1.0);
  REQUIRE(r.pixels == 2 * 512 * 512);
  // A 0/1 map gives the same binary image at every threshold: the first maximum is reported.
  for (const MeasureCurve* c : {&r.pixel, &r.rand, &r.vinfo, &r.vrand_thinned, &r.vinfo_thinned})
    REQUIRE(c->best_threshold == 0.0);
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
                << " thinned V_rand " << r.vrand_thinned_error << " V_info " << r.vinfo_thinned_error
                << " warping " << r.warping_error);
  // Measured: pixel 0.043, Rand 0.051, warping 0.0002. The foreground-restricted Rand score
  // counts the lost rim as singletons (F ~ 2(1-f)^2 / (1 + (1-f)^2) for a lost fraction f), so
  // it does move; it moves far less than for one merge of two cells (next tests).
  REQUIRE(r.pixel_error > 0.03);
  REQUIRE(r.rand_error < 0.1);
  // Thinning gives the rim back to the cells (only cells too small to survive the thickening are
  // lost): what the challenge's final measures were made for.
  REQUIRE(r.vrand_thinned_error < 0.1 * r.rand_error);
  REQUIRE(r.vinfo_thinned_error < 0.1 * r.vinfo_error);
  REQUIRE(r.warping_error < 1e-3);  // shrinking cells keeps the topology (only tiny cells vanish)
}

TEST_CASE("measures: thick membrane vs merging gap on two cells", "[data][metrics]") {
  const LabelImage truth = two_cells();
  Image thick = probability_of(truth);
  for (int y = 1; y < 7; ++y) thick.at(6, y) = 0.0f;  // membrane 2 px instead of 1
  Image gap = probability_of(truth);
  for (float& v : gap.pixels) v *= 0.9f;  // a confident but not saturated network
  gap.at(7, 4) = 0.9f;
  const MeasureResult t = evaluate_segmentation({thick}, {truth});
  const MeasureResult g = evaluate_segmentation({gap}, {truth});
  REQUIRE(t.pixel_error > 5 * g.pixel_error);
  REQUIRE(g.rand_error > 4 * t.rand_error);
  // Warping at th = 0.5 (index 5): the minimum over thresholds lands where "everything membrane"
  // erodes both cells to points without a split or merge (see docs): 0.9f = 0.8999999762 is not
  // above the Java's 0.8999999999999999 (index 9). A saturated map (1.0f) stays interior even at
  // the last threshold, 0.9999999999999999.
  REQUIRE(t.warping.values[5] == 0.0);
  REQUIRE(g.warping.values[5] > 0.0);
  REQUIRE(g.warping_error == 0.0);
  REQUIRE(g.warping.best_threshold == g.thresholds[9]);
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
  REQUIRE(s.singletons == 1);
  REQUIRE(s.objects_a == 2);
  REQUIRE(s.blocks_b == 2);  // the predicted object and the singleton
  REQUIRE(s.sum_a2 == 8);
  REQUIRE(s.sum_b2 == 10);
  REQUIRE(s.sum_ab2 == 6);
  // tp = 6, fp = 10 - 6, fn = 8 - 6: precision 6/10, recall 6/8, F = 12/18.
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
  o.thresholds = {1.5};
  REQUIRE_THROWS_AS(evaluate_segmentation({probability_of(truth)}, {truth}, o), ValueError);
  o.thresholds = {0.5};
  o.iou_threshold = -0.1;
  REQUIRE_THROWS_AS(evaluate_segmentation({probability_of(truth)}, {truth}, o), ValueError);
  REQUIRE_THROWS_AS(threshold_sweep(-0.1, 1.0, 0.1), ValueError);
  REQUIRE_THROWS_AS(threshold_sweep(0.5, 0.4, 0.1), ValueError);
  REQUIRE_THROWS_AS(threshold_sweep(0.0, 1.1, 0.1), ValueError);
  REQUIRE_THROWS_AS(threshold_sweep(0.0, 1.0, 0.0), ValueError);
  REQUIRE_THROWS_AS(thin_borders(LabelImage{2, 2, {1, 0, 0}}), ShapeError);
}

TEST_CASE("measures: the thresholds are the Java loop's doubles, compared with float pixels", "[data][metrics]") {
  // for (double th = 0.0; th <= 1.0; th += 0.1): the sum drifts below the decimal values.
  const std::vector<double> th = threshold_sweep(0.0, 1.0, 0.1);
  REQUIRE(th.size() == 11);
  REQUIRE(th[3] == 0.1 + 0.1 + 0.1);  // 0.30000000000000004
  REQUIRE(th[3] > 0.3);
  REQUIRE(th[8] < 0.8);
  REQUIRE(th[10] < 1.0);              // 0.9999999999999999: the last threshold is not 1
  REQUIRE(th[10] == 1.0 - 0x1p-53);
  REQUIRE(EvaluateOptions{}.thresholds == th);
  REQUIRE(threshold_sweep(0.0, 0.0, 0.1) == std::vector<double>{0.0});  // the script's binary case
  // A float pixel is interior when its value, as a double, exceeds the double threshold:
  // 0.3f = 0.30000001192... is above 0.30000000000000004, 1.0f above 0.9999999999999999 (a float
  // comparison with 0.3f or 1.0f would call both membrane); 0.7f = 0.69999998807... is not above
  // 0.7, 0.1f is above 0.1.
  Image p = make_image(5, 1);
  p.pixels = {0.3f, 1.0f, 0.7f, 0.8f, 0.1f};
  const auto interior = [&](double threshold) {
    std::vector<int> out;
    for (int32_t v : objects_from_probability(p, threshold).labels) out.push_back(v > 0 ? 1 : 0);
    return out;
  };
  REQUIRE(interior(th[1]) == std::vector<int>{1, 1, 1, 1, 1});   // 0.1f = 0.10000000149 > 0.1
  REQUIRE(interior(th[3]) == std::vector<int>{1, 1, 1, 1, 0});
  REQUIRE(interior(th[7]) == std::vector<int>{0, 1, 0, 1, 0});
  REQUIRE(interior(th[8]) == std::vector<int>{0, 1, 0, 1, 0});   // 0.8f > 0.7999999999999999
  REQUIRE(interior(th[10]) == std::vector<int>{0, 1, 0, 0, 0});
  // Through the whole evaluation: the last threshold keeps a p = 1 map interior (F1 = 1 there).
  const LabelImage truth = labels_of(3, 1, {1, 1, 1});
  Image ones = make_image(3, 1);
  ones.pixels = {1.0f, 1.0f, 1.0f};
  EvaluateOptions last;
  last.thresholds = {th[10]};
  REQUIRE(evaluate_segmentation({ones}, {truth}, last).pixel_error == 0.0);
}

TEST_CASE("measures: V_info is averaged per slice, Rand is pooled, as the challenge does", "[data][metrics]") {
  // Two 5x1 slices with two 2-pixel cells each. Slice 1 predicts them exactly; slice 2 merges
  // them (no membrane predicted).
  const LabelImage truth = labels_of(5, 1, {1, 1, 0, 2, 2});
  Image exact = make_image(5, 1), merged = make_image(5, 1);
  exact.pixels = {1, 1, 0, 1, 1};
  merged.pixels = {1, 1, 1, 1, 1};
  EvaluateOptions o;
  o.thresholds = {0.5};
  o.warping = false;
  const MeasureResult r = evaluate_segmentation({exact, merged}, {truth, truth}, o);
  // V_info per slice: slice 1 F = 1; slice 2 has one predicted block, H(B) = 0: the Java's
  // precision 1, recall 0, F = 0. Mean 0.5.
  REQUIRE(r.vinfo_error == Approx(0.5).margin(1e-15));
  // Pooled into one table: A = 4 objects of 2 (H = 2 ln 2), B = 2 + 2 + 4 pixels (H = 1.5 ln 2),
  // 4 cells of 2 (H = 2 ln 2): I = 1.5 ln 2, F = 3 / 3.5 = 6/7: a smaller error, 1/7.
  REQUIRE(r.vinfo_error_pooled == Approx(1.0 / 7.0).epsilon(1e-14));
  // Rand pooled (RandError sums tp, fp, fn over slices): tp = 8 + 8, fp = (8 + 16) - 16,
  // fn = 16 - 16: precision 2/3, recall 1, F = 4/5. Averaging per slice would give (1 + 2/3) / 2.
  REQUIRE(r.rand_error == Approx(0.2).epsilon(1e-14));
  // The thinned measures are per slice (the official script asks for the per-slice average).
  // Thinning changes nothing here (the one membrane pixel separates two basins: a dam).
  REQUIRE(r.vrand_thinned_error == Approx(1.0 / 6.0).epsilon(1e-14));
  REQUIRE(r.vinfo_thinned_error == Approx(0.5).margin(1e-15));
}

TEST_CASE("measures: an all-membrane prediction, before and after thinning", "[data][metrics]") {
  const LabelImage truth = two_cells();  // two cells of 36 pixels: n = 72, Σa² = 2592
  EvaluateOptions o;
  o.thresholds = {0.5};
  o.warping = false;
  const MeasureResult r = evaluate_segmentation({make_image(15, 8)}, {truth}, o);
  // Every truth pixel is a singleton: tp = 72, fp = 0 (precision 1), fn = 2592 - 72 (recall
  // 1/36): F = 2/37.
  REQUIRE(r.rand_error == Approx(1.0 - 2.0 / 37.0).epsilon(1e-14));
  // H(A) = ln 2, H(B) = H(AB) = ln 72: I = ln 2, F = 2 ln 2 / (ln 2 + ln 72).
  REQUIRE(r.vinfo_error == Approx(1.0 - 2.0 * std::log(2.0) / (std::log(2.0) + std::log(72.0))).epsilon(1e-14));
  // Thinned: without any predicted object the watershed makes the image one region. Then
  // Σb² = 72², Σc² = Σa²: precision 1/2, recall 1, V_rand = 2/3; one block: H(B) = 0, V_info = 0.
  REQUIRE(r.vrand_thinned_error == Approx(1.0 / 3.0).epsilon(1e-14));
  REQUIRE(r.vinfo_thinned_error == 1.0);
}

TEST_CASE("measures: a slice with one ground-truth region scores V_info 0, as in the Java", "[data][metrics]") {
  // H(A) = 0: VariationOfInformation sets precision 0, recall 1, so even a perfect prediction
  // of a single cell has F = 0 (error 1); Rand is perfect.
  LabelImage truth = make_label_image(5, 5);
  for (int y = 1; y < 4; ++y)
    for (int x = 1; x < 4; ++x) truth.at(x, y) = 1;
  EvaluateOptions o;
  o.thresholds = {0.5};
  o.warping = false;
  const MeasureResult r = evaluate_segmentation({probability_of(truth)}, {truth}, o);
  REQUIRE(r.rand_error == 0.0);
  REQUIRE(r.vrand_thinned_error == 0.0);
  REQUIRE(r.vinfo_error == 1.0);
  REQUIRE(r.vinfo_thinned_error == 1.0);
}

TEST_CASE("measures: the information F-score's entropy-zero and empty special cases", "[data][metrics]") {
  // H(A) = H(B) = 0 (one object each, identical): the Java's H(B) = 0 branch wins, F = 0.
  REQUIRE(vinfo_f_score(contingency_stats(labels_of(4, 1, {1, 1, 1, 1}), labels_of(4, 1, {3, 3, 3, 3}))) == 0.0);
  // H(A) = 0, H(B) > 0: precision 0, recall 1.
  REQUIRE(vinfo_f_score(contingency_stats(labels_of(4, 1, {1, 1, 1, 1}), labels_of(4, 1, {1, 1, 2, 0}))) == 0.0);
  // H(B) = 0, H(A) > 0: precision 1, recall 0.
  REQUIRE(vinfo_f_score(contingency_stats(labels_of(4, 1, {1, 1, 2, 2}), labels_of(4, 1, {5, 5, 5, 5}))) == 0.0);
  // A single truth pixel predicted as membrane: n = 1, one singleton, H(B) = ln 1 = 0.
  REQUIRE(vinfo_f_score(contingency_stats(labels_of(2, 1, {0, 7}), labels_of(2, 1, {1, 0}))) == 0.0);
  // Both entropies positive but independent partitions (I = 0): precision = recall = 0, and the
  // Java's 2pr / (p + r) is 0/0 = NaN, which its maximum over thresholds never takes.
  const ContingencyStats independent =
      contingency_stats(labels_of(4, 1, {1, 2, 1, 2}), labels_of(4, 1, {1, 1, 2, 2}));
  REQUIRE(std::isnan(vinfo_f_score(independent)));
  // No truth foreground (n = 0): the Java divides by 0; V_info takes the H(A) = 0 branch (F = 0)
  // and Rand's NaN counts leave its F-score at 0 — also when pooled with a normal slice.
  const ContingencyStats empty = contingency_stats(labels_of(3, 1, {0, 0, 0}), labels_of(3, 1, {1, 0, 2}));
  REQUIRE(empty.slices_without_foreground == 1);
  REQUIRE(vinfo_f_score(empty) == 0.0);
  REQUIRE(rand_f_score(empty) == 0.0);
  ContingencyStats pooled = contingency_stats(labels_of(2, 1, {1, 1}), labels_of(2, 1, {1, 1}));
  REQUIRE(rand_f_score(pooled) == 1.0);
  pooled += empty;
  REQUIRE(rand_f_score(pooled) == 0.0);
}

TEST_CASE("measures: a slice without truth foreground, and a score that is NaN at a threshold", "[data][metrics]") {
  const LabelImage truth = two_cells();
  EvaluateOptions o;
  o.thresholds = {0.5};
  o.warping = false;
  const MeasureResult r = evaluate_segmentation({probability_of(truth), make_image(15, 8)},
                                                {truth, make_label_image(15, 8)}, o);
  REQUIRE(r.slices_without_foreground == 1);
  REQUIRE(r.rand_error == 1.0);           // the pooled Rand F-score is 0 (NaN counts in the Java)
  REQUIRE(r.vinfo_error == Approx(0.5));  // (1 + 0) / 2
  REQUIRE(r.vrand_thinned_error == Approx(0.5));
  REQUIRE(r.pixel_error == 0.0);          // the pixel error does not divide by n
  // Instance truth whose two ids each have a pixel in both predicted rows: I = 0, NaN at the
  // only threshold: the curve holds NaN (null in JSON), the maximum stays 0 (error 1).
  const LabelImage ids = labels_of(2, 3, {1, 2, 0, 0, 1, 2});
  Image rows = make_image(2, 3);
  rows.pixels = {1, 1, 0, 0, 1, 1};
  const MeasureResult nan = evaluate_segmentation({rows}, {ids}, o);
  REQUIRE(std::isnan(nan.vinfo.values[0]));
  REQUIRE(nan.vinfo_error == 1.0);
  REQUIRE(nan.vinfo.best_threshold == 0.5);
  const std::string json = measures_to_json(nan, o);
  REQUIRE(json.find("\"vinfo_error\": [\n      null") != std::string::npos);
  for (const char* key : {"pixel_error", "rand_error", "vinfo_error", "vrand_thinned_error", "vinfo_thinned_error",
                          "warping_error", "iou", "seg", "vinfo_error_pooled", "slices_without_foreground"})
    REQUIRE(json.find(std::string("\"") + key + "\":") != std::string::npos);
}

TEST_CASE("measures: border thinning floods membrane from the objects as the Java's watershed", "[data][metrics]") {
  // A 2-pixel band between two objects: the column-major queue reaches the left column first,
  // which joins object 1; the right column meets both objects: a dam. Across the band the dam
  // falls on the second line in both orientations.
  const LabelImage band = labels_of(7, 2, {1, 1, 0, 0, 2, 2, 2,  //
                                           1, 1, 0, 0, 2, 2, 2});
  REQUIRE(thin_borders(band).labels == std::vector<int32_t>{1, 1, 1, 0, 2, 2, 2,  //
                                                            1, 1, 1, 0, 2, 2, 2});
  const LabelImage band_t = labels_of(2, 6, {1, 1, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2});
  REQUIRE(thin_borders(band_t).labels == std::vector<int32_t>{1, 1, 1, 1, 0, 0, 2, 2, 2, 2, 2, 2});
  // A 3-pixel band: each object takes its side, the middle is the dam.
  REQUIRE(thin_borders(labels_of(7, 1, {1, 1, 0, 0, 0, 2, 2})).labels ==
          std::vector<int32_t>{1, 1, 1, 0, 2, 2, 2});
  // Membrane that separates nothing (a blob inside one object, a frame) is absorbed.
  const LabelImage blob = labels_of(4, 4, {0, 0, 0, 0,  //
                                           0, 3, 0, 3,  //
                                           0, 3, 3, 3,  //
                                           0, 0, 0, 0});
  REQUIRE(thin_borders(blob).labels == std::vector<int32_t>(16, 3));
  // The flag: a pixel that meets a dam first becomes a dam, and a basin met later in the same
  // visit claims it. Traced by hand, (x, y), neighbours left, up, right, down:
  //   pass 1 (column-major) queues (0,1), (1,0), (1,1), (2,1): each has an object neighbour.
  //   (0,1): up 1 -> 1; down 2 != 1 -> dam.      (1,0): left 1 -> 1; right (2,0) -> queued.
  //   (1,1): left dam -> dam (flag); up 1 -> 1 (flag); down 2 != 1 -> dam.
  //   (2,1): left dam -> dam (flag); down 2 -> 2 (flag).      (2,0): left 1 -> 1; down 2 -> dam.
  const LabelImage corner = labels_of(3, 3, {1, 0, 0,  //
                                             0, 0, 0,  //
                                             2, 2, 2});
  REQUIRE(thin_borders(corner).labels == std::vector<int32_t>{1, 1, 0,  //
                                                              0, 0, 2,  //
                                                              2, 2, 2});
  // The queue order decides: the Java's pixel list is column-major. Traced by hand; object 1 is
  // the column x = 2, rows 0-1, object 2 the pixel (1, 2):
  //   pass 1 queues (0,2), (1,0), (1,1), (2,2) (x outer, y inner).
  //   (0,2): up (0,1) -> queued; right 2 -> 2.   (1,0): left (0,0) -> queued; right 1 -> 1.
  //   (1,1): up 1 -> 1; down 2 -> dam.   (2,2): left 2 -> 2; up 1 -> dam.
  //   (0,1): right dam -> dam (flag); down 2 -> 2.   (0,0): right 1 -> 1; down 2 -> dam.
  // A raster-order queue would start with (1,0) and end with all of row 0 in object 1.
  const LabelImage order = labels_of(3, 3, {0, 0, 1,  //
                                            0, 0, 1,  //
                                            0, 2, 0});
  REQUIRE(thin_borders(order).labels == std::vector<int32_t>{0, 1, 1,  //
                                                             2, 0, 1,  //
                                                             2, 2, 0});
  // No object at all: one region.
  REQUIRE(thin_borders(make_label_image(3, 2)).labels == std::vector<int32_t>(6, 1));
}

TEST_CASE("measures: a thick predicted membrane costs Rand but not the thinned measures", "[data][metrics]") {
  const LabelImage truth = two_cells();  // cells x 1..6 and 8..13, membrane column 7, a frame
  Image thick = probability_of(truth);
  for (int y = 1; y < 7; ++y) thick.at(6, y) = thick.at(8, y) = 0.0f;  // membrane 3 px wide
  EvaluateOptions o;
  o.thresholds = {0.5};
  o.warping = false;
  const MeasureResult r = evaluate_segmentation({thick}, {truth}, o);
  // 12 singletons: tp = 2·30² + 12, fp = 0, fn = 2·36² - tp.
  const double tp = 2.0 * 900 + 12, fn = 2.0 * 1296 - tp;
  REQUIRE(r.rand_error == Approx(1.0 - 2.0 * (tp / (tp + fn)) / (1.0 + tp / (tp + fn))).epsilon(1e-14));
  // Thinning hands columns 6 and 8 back to their cells (the dam is column 7, the truth's membrane).
  REQUIRE(r.vrand_thinned_error == Approx(0.0).margin(1e-15));
  REQUIRE(r.vinfo_thinned_error == Approx(0.0).margin(1e-15));
}
