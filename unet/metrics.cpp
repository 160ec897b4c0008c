// unet/metrics.cpp — the contingency table and its two F-scores (Rand, information), pixel
// F1, IoU, SEG, and the evaluation over slices × thresholds. The warping error's core lives in
// metrics_warping.cpp, the challenge's border thinning in metrics_thinning.cpp. The special
// cases follow the challenge's Java line by line; docs/measures.md quotes where each comes from.
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

void check_pair(const LabelImage& truth, const LabelImage& prediction, const char* what) {
  validate(truth, what);
  validate(prediction, what);
  UNET_CHECK(truth.width == prediction.width && truth.height == prediction.height, ShapeError,
             what, ": truth is ", truth.width, "x", truth.height, ", prediction is ",
             prediction.width, "x", prediction.height, "; they must have the same size");
}

// Dense ids 1..K for the positive ids of a label image (0 and negatives stay 0): a lookup table
// when the ids are small (components, ISBI masks), a hash map otherwise (any instance ids).
std::vector<int32_t> dense_ids(const LabelImage& image, int32_t& count) {
  int32_t max_id = 0;
  for (int32_t v : image.labels) max_id = std::max(max_id, v);
  std::vector<int32_t> out(image.labels.size(), 0);
  count = 0;
  if (static_cast<int64_t>(max_id) <= 4 * static_cast<int64_t>(image.labels.size()) + 1024) {
    std::vector<int32_t> table(static_cast<size_t>(max_id) + 1, 0);
    for (size_t i = 0; i < out.size(); ++i) {
      const int32_t v = image.labels[i];
      if (v <= 0) continue;
      if (table[v] == 0) table[v] = ++count;
      out[i] = table[v];
    }
  } else {
    std::unordered_map<int32_t, int32_t> table;
    for (size_t i = 0; i < out.size(); ++i) {
      const int32_t v = image.labels[i];
      if (v <= 0) continue;
      auto [it, fresh] = table.try_emplace(v, count + 1);
      if (fresh) ++count;
      out[i] = it->second;
    }
  }
  return out;
}

// Pixel counts of (truth object, predicted object) pairs in an open-addressing table (linear
// probing, load at most 1/2): a slice adds ~10^5 pixels to ~10^3 distinct pairs, which
// std::unordered_map did in about half of the evaluation's time.
class PairCounts {
 public:
  void add(uint64_t key) {  // key != 0
    if (2 * (used_ + 1) > keys_.size()) grow();
    size_t slot = index(key);
    while (keys_[slot] != 0 && keys_[slot] != key) slot = (slot + 1) & (keys_.size() - 1);
    if (keys_[slot] == 0) { keys_[slot] = key; ++used_; }
    ++counts_[slot];
  }
  template <typename F> void for_each(F f) const {
    for (size_t s = 0; s < keys_.size(); ++s)
      if (keys_[s] != 0) f(keys_[s], counts_[s]);
  }

 private:
  size_t index(uint64_t key) const {  // Fibonacci hashing: the top bits of key * 2^64/phi
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> (64 - bits_));
  }
  void grow() {
    std::vector<uint64_t> keys = std::move(keys_);
    std::vector<int64_t> counts = std::move(counts_);
    bits_ = keys.empty() ? 10 : bits_ + 1;
    keys_.assign(size_t{1} << bits_, 0);
    counts_.assign(size_t{1} << bits_, 0);
    for (size_t s = 0; s < keys.size(); ++s) {
      if (keys[s] == 0) continue;
      size_t slot = index(keys[s]);
      while (keys_[slot] != 0) slot = (slot + 1) & (keys_.size() - 1);
      keys_[slot] = keys[s];
      counts_[slot] = counts[s];
    }
  }
  std::vector<uint64_t> keys_;
  std::vector<int64_t> counts_;
  size_t used_ = 0;
  int bits_ = 0;
};

// Everything the Rand, information and SEG measures need from one truth/prediction pair.
struct OverlapTable {
  std::vector<int64_t> truth_size;       // per truth object (index 1..A)
  std::vector<int64_t> predicted_size;   // per predicted object, all pixels (SEG's |S|)
  std::vector<int64_t> predicted_in_fg;  // per predicted object, inside the truth foreground
  PairCounts pairs;                      // key (truth << 32) | predicted, both >= 1
  int64_t n = 0, singletons = 0;
};

OverlapTable overlap_table(const LabelImage& truth, const LabelImage& prediction) {
  int32_t a_count = 0, b_count = 0;
  const std::vector<int32_t> t = dense_ids(truth, a_count), p = dense_ids(prediction, b_count);
  OverlapTable o;
  o.truth_size.assign(static_cast<size_t>(a_count) + 1, 0);
  o.predicted_size.assign(static_cast<size_t>(b_count) + 1, 0);
  o.predicted_in_fg.assign(static_cast<size_t>(b_count) + 1, 0);
  for (size_t i = 0; i < t.size(); ++i) {
    ++o.predicted_size[p[i]];
    if (t[i] == 0) continue;  // only ground-truth foreground counts
    ++o.n;
    ++o.truth_size[t[i]];
    if (p[i] == 0) { ++o.singletons; continue; }  // predicted membrane: each pixel its own object
    ++o.predicted_in_fg[p[i]];
    o.pairs.add((static_cast<uint64_t>(t[i]) << 32) | static_cast<uint32_t>(p[i]));
  }
  return o;
}

ContingencyStats contingency_of(const OverlapTable& o) {
  ContingencyStats s;
  s.n = static_cast<double>(o.n);
  s.singletons = static_cast<double>(o.singletons);
  for (size_t k = 1; k < o.truth_size.size(); ++k) {
    const double c = static_cast<double>(o.truth_size[k]);
    s.sum_a2 += c * c;
    s.sum_a_log_a += xlogx(c);
    s.objects_a += o.truth_size[k] > 0 ? 1 : 0;
  }
  for (size_t k = 1; k < o.predicted_in_fg.size(); ++k) {
    const double c = static_cast<double>(o.predicted_in_fg[k]);
    s.sum_b2 += c * c;
    s.sum_b_log_b += xlogx(c);
    s.blocks_b += o.predicted_in_fg[k] > 0 ? 1 : 0;
  }
  o.pairs.for_each([&](uint64_t, int64_t count) {
    const double c = static_cast<double>(count);
    s.sum_ab2 += c * c;
    s.sum_ab_log_ab += xlogx(c);
  });
  s.sum_b2 += s.singletons;  // 1² per singleton; 1·ln 1 = 0 for the entropies
  s.sum_ab2 += s.singletons;
  s.blocks_b += o.singletons;
  s.slices_without_foreground = o.n == 0 ? 1 : 0;
  return s;
}

SegCounts seg_of(const OverlapTable& o) {
  SegCounts c;
  c.objects = static_cast<int64_t>(o.truth_size.size()) - 1;
  // For each truth object R the predicted object S with |R∩S| > |R|/2 (at most one) gives
  // J = |R∩S| / |R∪S|; every other object 0.
  o.pairs.for_each([&](uint64_t key, int64_t inter) {
    const int64_t r = o.truth_size[key >> 32];
    const int64_t s = o.predicted_size[key & 0xffffffffu];
    if (2 * inter > r) {
      c.sum_jaccard += static_cast<double>(inter) / static_cast<double>(r + s - inter);
      ++c.matched;
    }
  });
  return c;
}

// The Java's ClassificationStatistics F-score (metrics/ClassificationStatistics.java): a
// precision or recall with nothing to divide is 1, an F-score whose precision and recall are
// both 0 stays at its initial 0 — and so does one whose counts are NaN.
double classification_f_score(double tp, double fp, double fn) {
  const double precision = fp == 0 ? 1.0 : tp / (tp + fp);
  const double recall = fn == 0 ? 1.0 : tp / (tp + fn);
  return precision + recall > 0 ? 2.0 * precision * recall / (precision + recall) : 0.0;
}

// Everything one (slice, threshold) contributes.
struct SliceScore {
  int64_t tp = 0, fp = 0, fn = 0;
  ContingencyStats table;    // predicted objects: 4-connected components of the thresholded map
  ContingencyStats thinned;  // predicted objects after border thinning
  SegCounts seg;
  WarpingCounts warp;
};

// The Java's "maximal score over thresholds" (e.g. RandError.getMaximalVRandAfterThinning): the
// maximum starts at 0 and takes the first strictly larger score, so NaN scores never win and a
// measure whose every score is 0 or NaN reports error 1 at the first threshold. The curve holds
// errors, 1 - score.
void best_score(MeasureCurve& curve, const std::vector<double>& scores,
                const std::vector<double>& thresholds) {
  double best = 0.0, best_th = thresholds.front();
  curve.values.clear();
  for (size_t t = 0; t < scores.size(); ++t) {
    curve.values.push_back(1.0 - scores[t]);
    if (scores[t] > best) {
      best = scores[t];
      best_th = thresholds[t];
    }
  }
  curve.best = 1.0 - best;
  curve.best_threshold = best_th;
}

// Best of a curve that is not one of the challenge's F-scores (warping: min, SEG: max).
void best_value(MeasureCurve& curve, const std::vector<double>& thresholds, bool lower_is_better) {
  curve.best = std::numeric_limits<double>::quiet_NaN();
  curve.best_threshold = thresholds.front();
  for (size_t t = 0; t < curve.values.size(); ++t) {
    const double v = curve.values[t];
    if (std::isnan(v)) continue;
    if (std::isnan(curve.best) || (lower_is_better ? v < curve.best : v > curve.best)) {
      curve.best = v;
      curve.best_threshold = thresholds[t];
    }
  }
}

}  // namespace

std::vector<double> threshold_sweep(double min, double max, double step) {
  UNET_CHECK(min >= 0.0 && min <= max && max <= 1.0, ValueError, "threshold_sweep: need 0 <= min <= max <= 1, got min ",
             min, ", max ", max);
  UNET_CHECK(step > 0.0 && (max - min) / step < 1e6, ValueError, "threshold_sweep: step must be positive and give at most a million thresholds, got ",
             step);
  std::vector<double> out;
  for (double th = min; th <= max; th += step) out.push_back(th);  // the Java's loop, rounding included
  return out;
}

ContingencyStats& ContingencyStats::operator+=(const ContingencyStats& o) {
  n += o.n;
  singletons += o.singletons;
  sum_a2 += o.sum_a2;
  sum_b2 += o.sum_b2;
  sum_ab2 += o.sum_ab2;
  sum_a_log_a += o.sum_a_log_a;
  sum_b_log_b += o.sum_b_log_b;
  sum_ab_log_ab += o.sum_ab_log_ab;
  objects_a += o.objects_a;
  blocks_b += o.blocks_b;
  slices_without_foreground += o.slices_without_foreground;
  return *this;
}

ContingencyStats contingency_stats(const LabelImage& truth, const LabelImage& prediction) {
  check_pair(truth, prediction, "contingency_stats");
  return contingency_of(overlap_table(truth, prediction));
}

double rand_f_score(const ContingencyStats& s) {
  // RandError.getForegroundRestrictedRandIndexStatsN2 divides the table by n; with n = 0 its
  // tp, fp, fn are NaN (and their sum over slices too), which ClassificationStatistics scores 0.
  if (s.slices_without_foreground > 0 || s.n == 0) return 0.0;
  const double tp = s.sum_ab2;
  return classification_f_score(tp, s.sum_b2 - tp, s.sum_a2 - tp);
}

double vinfo_f_score(const ContingencyStats& s) {
  // VariationOfInformation.foregroundRestrictedFscore. In probabilities p = count / n its sums
  // are Σ p ln p = (Σ c ln c) / n - ln n over the cells of A, of B (singletons included) and of
  // the joint table, so H = ln n - (Σ c ln c) / n for each.
  double precision = 0.0, recall = 1.0;  // the Java's H(A) = 0 case, n = 0 included
  if (s.n > 0) {
    const double ln_n = std::log(s.n);
    const double h_a = ln_n - s.sum_a_log_a / s.n;
    const double h_b = ln_n - s.sum_b_log_b / s.n;
    const double h_ab = ln_n - s.sum_ab_log_ab / s.n;
    const double h_a_given_b = h_ab - h_b, h_b_given_a = h_ab - h_a;
    precision = (h_a - h_a_given_b) / h_a;
    recall = (h_b - h_b_given_a) / h_b;
    // The Java tests its entropies for == 0; a marginal with one block is exactly 0 there
    // (1·ln 1), which the counts say without rounding: one ground-truth object, one predicted
    // block (an object covering the whole foreground, or the single pixel of n = 1).
    if (s.objects_a <= 1) { precision = 0.0; recall = 1.0; }
    if (s.blocks_b == 1) { precision = 1.0; recall = 0.0; }
  }
  // NaN when both are 0 (I = 0). Rounding can push a perfect score 1e-16 above 1 (the entropies
  // are sums in different orders); the score is capped at 1 so that errors are never negative.
  return std::min(2.0 * precision * recall / (precision + recall), 1.0);  // min keeps NaN
}

SegCounts seg_counts(const LabelImage& truth, const LabelImage& prediction) {
  check_pair(truth, prediction, "seg_counts");
  return seg_of(overlap_table(truth, prediction));
}

LabelImage objects_from_probability(const Image& probability, double threshold) {
  validate(probability, "objects_from_probability");
  std::vector<uint8_t> mask(probability.pixels.size());
  for (size_t i = 0; i < mask.size(); ++i)
    mask[i] = static_cast<double>(probability.pixels[i]) > threshold ? 1 : 0;
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
  for (double th : options.thresholds)
    UNET_CHECK(th >= 0.0 && th <= 1.0, ValueError, "thresholds must lie in [0, 1], got ", th);
  UNET_CHECK(options.iou_threshold >= 0.0 && options.iou_threshold <= 1.0, ValueError,
             "the IoU threshold must lie in [0, 1], got ", options.iou_threshold);
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
  std::vector<double> ths = options.thresholds;
  ths.push_back(options.iou_threshold);
  const int n_th = static_cast<int>(ths.size());
  const int n_sl = static_cast<int>(maps.size());
  std::vector<SliceScore> scores(static_cast<size_t>(n_th) * n_sl);
  parallel_for(0, static_cast<int64_t>(scores.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int s = static_cast<int>(k / n_th), t = static_cast<int>(k % n_th);
      const double th = ths[t];
      const Image& p = maps[s];
      const LabelImage& gt = truth[s];
      SliceScore& out = scores[k];
      std::vector<uint8_t> pred(p.pixels.size()), gt_fg(p.pixels.size());
      for (size_t i = 0; i < pred.size(); ++i) {
        // A float pixel against a double threshold, as the Java's getPixelValue(x, y) > th.
        pred[i] = static_cast<double>(p.pixels[i]) > th ? 1 : 0;
        gt_fg[i] = gt.labels[i] > 0 ? 1 : 0;
        out.tp += (pred[i] && gt_fg[i]) ? 1 : 0;
        out.fp += (pred[i] && !gt_fg[i]) ? 1 : 0;
        out.fn += (!pred[i] && gt_fg[i]) ? 1 : 0;
      }
      if (t == n_th - 1) continue;  // the IoU column needs only the pixel counts
      const LabelImage objects = connected_components(pred, p.width, p.height, Connectivity::Four);
      const OverlapTable table = overlap_table(gt, objects);
      out.table = contingency_of(table);
      out.seg = seg_of(table);
      out.thinned = contingency_of(overlap_table(gt, thin_borders(objects)));
      if (options.warping) {
        std::vector<float> confidence(pred.size());
        for (size_t i = 0; i < pred.size(); ++i)
          confidence[i] = static_cast<float>(std::fabs(static_cast<double>(p.pixels[i]) - th));
        out.warp = warp_and_classify(gt_fg, pred, confidence, p.width, p.height);
      }
    }
  });

  MeasureResult r;
  r.thresholds = options.thresholds;
  r.slices = n_sl;
  for (const auto& m : maps) r.pixels += m.pixel_count();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> pixel_f, rand_f, vinfo_f, vrand_thin_f, vinfo_thin_f, vinfo_pooled_f;
  for (int t = 0; t + 1 < n_th; ++t) {
    int64_t tp = 0, fp = 0, fn = 0;
    ContingencyStats pooled;
    SegCounts seg;
    WarpingCounts warp;
    double vinfo_sum = 0, vrand_thin_sum = 0, vinfo_thin_sum = 0;  // per-slice averages
    for (int s = 0; s < n_sl; ++s) {
      const SliceScore& x = scores[static_cast<size_t>(s) * n_th + t];
      tp += x.tp; fp += x.fp; fn += x.fn;
      pooled += x.table;
      vinfo_sum += vinfo_f_score(x.table);
      vrand_thin_sum += rand_f_score(x.thinned);
      vinfo_thin_sum += vinfo_f_score(x.thinned);
      seg.sum_jaccard += x.seg.sum_jaccard;
      seg.objects += x.seg.objects;
      warp.mismatches += x.warp.mismatches;
      warp.splits += x.warp.splits;
      warp.merges += x.warp.merges;
    }
    pixel_f.push_back(classification_f_score(double(tp), double(fp), double(fn)));
    rand_f.push_back(rand_f_score(pooled));
    vinfo_f.push_back(vinfo_sum / n_sl);
    vrand_thin_f.push_back(vrand_thin_sum / n_sl);
    vinfo_thin_f.push_back(vinfo_thin_sum / n_sl);
    vinfo_pooled_f.push_back(vinfo_f_score(pooled));
    r.seg_curve.values.push_back(seg.objects ? seg.sum_jaccard / seg.objects : 1.0);
    const double px = static_cast<double>(r.pixels);
    r.warping.values.push_back(options.warping ? (warp.splits + warp.merges) / px : nan);
    r.warping_classic.values.push_back(options.warping ? warp.mismatches / px : nan);
    if (t == 0) r.slices_without_foreground = static_cast<int>(pooled.slices_without_foreground);
  }
  best_score(r.pixel, pixel_f, r.thresholds);
  best_score(r.rand, rand_f, r.thresholds);
  best_score(r.vinfo, vinfo_f, r.thresholds);
  best_score(r.vrand_thinned, vrand_thin_f, r.thresholds);
  best_score(r.vinfo_thinned, vinfo_thin_f, r.thresholds);
  best_score(r.vinfo_pooled, vinfo_pooled_f, r.thresholds);
  best_value(r.seg_curve, r.thresholds, false);
  best_value(r.warping, r.thresholds, true);
  best_value(r.warping_classic, r.thresholds, true);
  int64_t tp = 0, fp = 0, fn = 0;
  for (int s = 0; s < n_sl; ++s) {
    const SliceScore& x = scores[static_cast<size_t>(s) * n_th + (n_th - 1)];
    tp += x.tp; fp += x.fp; fn += x.fn;
  }
  r.iou = (tp + fp + fn) > 0 ? double(tp) / double(tp + fp + fn) : 1.0;
  r.pixel_error = r.pixel.best;
  r.rand_error = r.rand.best;
  r.vinfo_error = r.vinfo.best;
  r.vrand_thinned_error = r.vrand_thinned.best;
  r.vinfo_thinned_error = r.vinfo_thinned.best;
  r.vinfo_error_pooled = r.vinfo_pooled.best;
  r.warping_error = r.warping.best;
  r.warping_error_classic = r.warping_classic.best;
  r.seg = r.seg_curve.best;
  return r;
}

}  // namespace unet
