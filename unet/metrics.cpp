// unet/metrics.cpp — pixel/Rand/V_info/IoU/SEG and the evaluation over slices × thresholds.
// The warping error's core lives in metrics_warping.cpp.
#include "unet/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "core/error.h"
#include "core/parallel.h"
#include "unet/connected_components.h"

namespace unet {
namespace {

double xlogx(double c) { return c > 0 ? c * std::log(c) : 0.0; }

int64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<int64_t>(a) << 32) | static_cast<uint32_t>(b);
}

void check_pair(const LabelImage& truth, const LabelImage& prediction, const char* what) {
  validate(truth, what);
  validate(prediction, what);
  UNET_CHECK(truth.width == prediction.width && truth.height == prediction.height, ShapeError,
             what, ": truth is ", truth.width, "x", truth.height, ", prediction is ",
             prediction.width, "x", prediction.height, "; they must have the same size");
}

// Everything one (slice, threshold) contributes; pooled by addition.
struct SliceScore {
  int64_t tp = 0, fp = 0, fn = 0;
  ContingencyStats table;
  SegCounts seg;
  WarpingCounts warp;
};

}  // namespace

ContingencyStats& ContingencyStats::operator+=(const ContingencyStats& o) {
  n += o.n;
  sum_a2 += o.sum_a2;
  sum_b2 += o.sum_b2;
  sum_ab2 += o.sum_ab2;
  sum_a_log_a += o.sum_a_log_a;
  sum_b_log_b += o.sum_b_log_b;
  sum_ab_log_ab += o.sum_ab_log_ab;
  return *this;
}

ContingencyStats contingency_stats(const LabelImage& truth, const LabelImage& prediction) {
  check_pair(truth, prediction, "contingency_stats");
  std::unordered_map<int64_t, int64_t> cells;
  std::unordered_map<int32_t, int64_t> a, b;
  int64_t singletons = 0, n = 0;
  for (size_t i = 0; i < truth.labels.size(); ++i) {
    const int32_t t = truth.labels[i];
    if (t <= 0) continue;  // only ground-truth foreground counts
    ++n;
    ++a[t];
    const int32_t p = prediction.labels[i];
    if (p <= 0) { ++singletons; continue; }  // predicted membrane: each pixel its own object
    ++b[p];
    ++cells[pair_key(t, p)];
  }
  ContingencyStats s;
  s.n = static_cast<double>(n);
  for (const auto& [id, c] : a) { s.sum_a2 += double(c) * c; s.sum_a_log_a += xlogx(double(c)); }
  for (const auto& [id, c] : b) { s.sum_b2 += double(c) * c; s.sum_b_log_b += xlogx(double(c)); }
  for (const auto& [key, c] : cells) { s.sum_ab2 += double(c) * c; s.sum_ab_log_ab += xlogx(double(c)); }
  s.sum_b2 += static_cast<double>(singletons);   // 1² per singleton; 1·ln 1 = 0 for the entropies
  s.sum_ab2 += static_cast<double>(singletons);
  return s;
}

double rand_f_score(const ContingencyStats& s) {
  if (s.n == 0) return 1.0;
  return 2.0 * s.sum_ab2 / (s.sum_a2 + s.sum_b2);
}

double vinfo_f_score(const ContingencyStats& s) {
  if (s.n == 0) return 1.0;
  // H = ln n - (1/n) Σ c ln c for each marginal / the joint table.
  const double ln_n = std::log(s.n);
  const double h_a = ln_n - s.sum_a_log_a / s.n;
  const double h_b = ln_n - s.sum_b_log_b / s.n;
  const double h_ab = ln_n - s.sum_ab_log_ab / s.n;
  const double denom = h_a + h_b;
  if (denom <= 1e-12) return 1.0;  // one object on both sides, identical
  const double mutual = h_a + h_b - h_ab;
  return std::clamp(2.0 * mutual / denom, 0.0, 1.0);
}

SegCounts seg_counts(const LabelImage& truth, const LabelImage& prediction) {
  check_pair(truth, prediction, "seg_counts");
  std::unordered_map<int32_t, int64_t> r_size, s_size;
  std::unordered_map<int64_t, int64_t> overlap;
  for (size_t i = 0; i < truth.labels.size(); ++i) {
    const int32_t t = truth.labels[i], p = prediction.labels[i];
    if (t > 0) ++r_size[t];
    if (p > 0) ++s_size[p];
    if (t > 0 && p > 0) ++overlap[pair_key(t, p)];
  }
  std::unordered_map<int32_t, double> best;  // per truth object: its Jaccard (0 if unmatched)
  for (const auto& [key, inter] : overlap) {
    const int32_t t = static_cast<int32_t>(key >> 32);
    const int32_t p = static_cast<int32_t>(key & 0xffffffff);
    const int64_t r = r_size[t];
    if (2 * inter > r) best[t] = double(inter) / double(r + s_size[p] - inter);
  }
  SegCounts c;
  c.objects = static_cast<int64_t>(r_size.size());
  for (const auto& [t, j] : best) c.sum_jaccard += j;
  c.matched = static_cast<int64_t>(best.size());
  return c;
}

LabelImage objects_from_probability(const Image& probability, float threshold) {
  validate(probability, "objects_from_probability");
  std::vector<uint8_t> mask(probability.pixels.size());
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = probability.pixels[i] > threshold ? 1 : 0;
  return connected_components(mask, probability.width, probability.height, Connectivity::Four);
}

MeasureResult evaluate_segmentation(const std::vector<Image>& probability_maps,
                                    const std::vector<LabelImage>& truth,
                                    const EvaluateOptions& options) {
  UNET_CHECK(!probability_maps.empty(), ValueError, "evaluate_segmentation: no slices given");
  UNET_CHECK(probability_maps.size() == truth.size(), ShapeError,
             "evaluate_segmentation: ", probability_maps.size(), " probability maps but ",
             truth.size(), " ground-truth images");
  UNET_CHECK(!options.thresholds.empty(), ValueError, "evaluate_segmentation: no thresholds");
  for (float th : options.thresholds)
    UNET_CHECK(th >= 0.0f && th <= 1.0f, ValueError, "thresholds must lie in [0, 1], got ", th);
  std::vector<Image> maps(probability_maps.size());
  for (size_t s = 0; s < maps.size(); ++s) {
    const std::string what = "slice " + std::to_string(s);
    validate(probability_maps[s], what.c_str());
    validate(truth[s], what.c_str());
    UNET_CHECK(probability_maps[s].channels == 1, ShapeError, what,
               ": probability maps must have one channel, got ", probability_maps[s].channels);
    UNET_CHECK(probability_maps[s].width == truth[s].width &&
                   probability_maps[s].height == truth[s].height,
               ShapeError, what, ": probability map is ", probability_maps[s].width, "x",
               probability_maps[s].height, ", ground truth is ", truth[s].width, "x",
               truth[s].height);
    maps[s] = normalised(probability_maps[s]);
  }
  // The IoU threshold rides along as an extra column when it is not one of the thresholds.
  std::vector<float> ths = options.thresholds;
  ths.push_back(options.iou_threshold);
  const int n_th = static_cast<int>(ths.size());
  const int n_sl = static_cast<int>(maps.size());
  std::vector<SliceScore> scores(static_cast<size_t>(n_th) * n_sl);
  parallel_for(0, static_cast<int64_t>(scores.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int s = static_cast<int>(k / n_th), t = static_cast<int>(k % n_th);
      const float th = ths[t];
      const Image& p = maps[s];
      const LabelImage& gt = truth[s];
      SliceScore& out = scores[k];
      std::vector<uint8_t> pred(p.pixels.size()), gt_fg(p.pixels.size());
      for (size_t i = 0; i < pred.size(); ++i) {
        pred[i] = p.pixels[i] > th ? 1 : 0;
        gt_fg[i] = gt.labels[i] > 0 ? 1 : 0;
        out.tp += (pred[i] && gt_fg[i]) ? 1 : 0;
        out.fp += (pred[i] && !gt_fg[i]) ? 1 : 0;
        out.fn += (!pred[i] && gt_fg[i]) ? 1 : 0;
      }
      if (t == n_th - 1) continue;  // the IoU column needs only the pixel counts
      const LabelImage objects = connected_components(pred, p.width, p.height, Connectivity::Four);
      out.table = contingency_stats(gt, objects);
      out.seg = seg_counts(gt, objects);
      if (options.warping) {
        std::vector<float> confidence(pred.size());
        for (size_t i = 0; i < pred.size(); ++i) confidence[i] = std::fabs(p.pixels[i] - th);
        out.warp = warp_and_classify(gt_fg, pred, confidence, p.width, p.height);
      }
    }
  });

  MeasureResult r;
  r.thresholds = options.thresholds;
  r.slices = n_sl;
  for (const auto& m : maps) r.pixels += m.pixel_count();
  auto finish = [&](MeasureCurve& curve, bool lower_is_better) {
    curve.best = lower_is_better ? std::numeric_limits<double>::infinity()
                                 : -std::numeric_limits<double>::infinity();
    for (size_t t = 0; t < curve.values.size(); ++t) {
      const double v = curve.values[t];
      if (lower_is_better ? v < curve.best : v > curve.best) {
        curve.best = v;
        curve.best_threshold = r.thresholds[t];
      }
    }
    if (std::isinf(curve.best)) curve.best = std::numeric_limits<double>::quiet_NaN();
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int t = 0; t + 1 < n_th; ++t) {
    SliceScore sum;
    for (int s = 0; s < n_sl; ++s) {
      const SliceScore& x = scores[static_cast<size_t>(s) * n_th + t];
      sum.tp += x.tp; sum.fp += x.fp; sum.fn += x.fn;
      sum.table += x.table;
      sum.seg.sum_jaccard += x.seg.sum_jaccard;
      sum.seg.objects += x.seg.objects;
      sum.warp.mismatches += x.warp.mismatches;
      sum.warp.splits += x.warp.splits;
      sum.warp.merges += x.warp.merges;
    }
    const double denom = 2.0 * sum.tp + sum.fp + sum.fn;
    const double f1 = denom > 0 ? 2.0 * sum.tp / denom : 1.0;  // nothing to find, nothing found
    r.pixel.values.push_back(1.0 - f1);
    r.rand.values.push_back(1.0 - rand_f_score(sum.table));
    r.vinfo.values.push_back(1.0 - vinfo_f_score(sum.table));
    r.seg_curve.values.push_back(sum.seg.objects ? sum.seg.sum_jaccard / sum.seg.objects : 1.0);
    const double px = static_cast<double>(r.pixels);
    r.warping.values.push_back(options.warping ? (sum.warp.splits + sum.warp.merges) / px : nan);
    r.warping_classic.values.push_back(options.warping ? sum.warp.mismatches / px : nan);
  }
  finish(r.pixel, true);
  finish(r.rand, true);
  finish(r.vinfo, true);
  finish(r.seg_curve, false);
  if (options.warping) {
    finish(r.warping, true);
    finish(r.warping_classic, true);
  } else {
    r.warping.best = r.warping_classic.best = nan;
  }
  int64_t tp = 0, fp = 0, fn = 0;
  for (int s = 0; s < n_sl; ++s) {
    const SliceScore& x = scores[static_cast<size_t>(s) * n_th + (n_th - 1)];
    tp += x.tp; fp += x.fp; fn += x.fn;
  }
  r.iou = (tp + fp + fn) > 0 ? double(tp) / double(tp + fp + fn) : 1.0;
  r.pixel_error = r.pixel.best;
  r.rand_error = r.rand.best;
  r.vinfo_error = r.vinfo.best;
  r.warping_error = r.warping.best;
  r.warping_error_classic = r.warping_classic.best;
  r.seg = r.seg_curve.best;
  return r;
}

}  // namespace unet
