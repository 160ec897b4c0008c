// unet/metrics.h — segmentation measures as the ISBI 2012 and Cell Tracking challenges compute
// them. The ISBI measures follow the challenge's own code (Fiji Trainable_Segmentation:
// metrics/RandError.java, VariationOfInformation.java, PixelError.java,
// utils/WatershedTransform2D.java) and the challenge paper (Arganda-Carreras et al., Frontiers in
// Neuroanatomy 9:142, 2015); docs/measures.md has the definitions, special cases included.
//   pixel error            1 - best pixel F1 of interior, counts pooled over the slices
//   Rand error             1 - best foreground-restricted Rand F-score, counts pooled over slices
//   V_info error           1 - best foreground-restricted information F-score, averaged per slice
//   V_rand / V_info        the challenge's final measures: the same two F-scores after the
//     (thinned) error      predicted membrane is thinned to 1-pixel lines by a 4-connected
//                          watershed, both averaged per slice
//   V_info pooled error    the V_info F-score of the counts pooled over the slices (this
//                          library's definition before issue 16; not a challenge measure)
//   warping error          Jain et al. 2010: the ground truth is warped toward the prediction by
//                          simple-point flips, most confident first; then the remaining split +
//                          merge pixels / all pixels (leaderboard) or all remaining mismatches
//   IoU                    foreground Jaccard index at one threshold (0.5)
//   SEG                    CTC: mean Jaccard of each ground-truth object with the predicted
//                          object covering more than half of it (0 if none)
// Predictions are probability maps in [0, 1] (1 = interior); a pixel is predicted interior when
// its 32-bit value, compared in double precision, exceeds the threshold (as the Java compares a
// float pixel with a double threshold); predicted objects are 4-connected components.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "unet/image.h"

namespace unet {

// The thresholds the challenge's Java visits: for (double th = min; th <= max; th += step).
// threshold_sweep(0, 1, 0.1) gives 11 values, among them 0.30000000000000004 and, last,
// 0.9999999999999999 (not 1.0: a pixel of value 1.0f is interior there). Throws ValueError
// unless 0 <= min <= max <= 1 and step > 0 (the Java refuses the same ranges).
std::vector<double> threshold_sweep(double min, double max, double step);

struct EvaluateOptions {
  std::vector<double> thresholds = threshold_sweep(0.0, 1.0, 0.1);
  double iou_threshold = 0.5;
  bool warping = true;  // the warping error is the costly measure; false skips it (reported NaN)
};

// One measure at every threshold, its best value and where it was found.
struct MeasureCurve {
  std::vector<double> values;  // per threshold, same order as EvaluateOptions::thresholds;
                               // NaN where the challenge's score is undefined (0/0)
  double best = 0.0;           // min for errors, max for scores
  double best_threshold = 0.0;
};

struct MeasureResult {
  double pixel_error = 0, rand_error = 0, vinfo_error = 0;
  double vrand_thinned_error = 0, vinfo_thinned_error = 0;  // the challenge's final measures
  double vinfo_error_pooled = 0;
  double warping_error = 0, warping_error_classic = 0;
  double iou = 0, seg = 0;
  std::vector<double> thresholds;
  MeasureCurve pixel, rand, vinfo, vrand_thinned, vinfo_thinned, vinfo_pooled;  // per threshold
  MeasureCurve warping, warping_classic, seg_curve;
  int64_t pixels = 0;  // pixels scored (all slices)
  int slices = 0;
  // Slices whose ground truth has no foreground: the challenge's code divides by n = 0 there,
  // which scores the slice 0 in every per-slice average and zeroes the pooled Rand F-score.
  int slices_without_foreground = 0;
};

// Scores probability maps against instance ground truth (0 = membrane / background). Integer
// maps (U8/U16) are normalised to [0, 1] first; each map must be single-channel and of its
// truth's size (ShapeError naming the slice otherwise); thresholds must lie in [0, 1].
// Slices × thresholds run in parallel (parallel_for). Each challenge measure is the Java's
// maximal score over the thresholds (the maximum starts at 0 and skips NaN; error = 1 - score).
MeasureResult evaluate_segmentation(const std::vector<Image>& probability_maps,
                                    const std::vector<LabelImage>& truth,
                                    const EvaluateOptions& options = {});

// The measures as a JSON object (what examples/evaluate prints and train_em writes to
// metrics.json): pixel_error, rand_error, vinfo_error, vrand_thinned_error, vinfo_thinned_error,
// warping_error, warping_error_classic, iou, seg, vinfo_error_pooled, best_threshold (per
// measure), slices, pixels, slices_without_foreground, thresholds, per_threshold. Undefined
// values (NaN) become null.
std::string measures_to_json(const MeasureResult& result, const EvaluateOptions& options = {},
                             const std::vector<std::string>& slice_names = {}, int indent = 2);

// ---- building blocks, exposed for tests and for training-time monitoring ----------------------

// Contingency statistics of ground truth objects A (ids > 0; pixels with id 0 are not counted)
// against predicted objects B (ids > 0; 0 = predicted membrane, each pixel a singleton). In
// pixel counts, so they pool over slices by addition (objects of different slices are
// different objects).
struct ContingencyStats {
  double n = 0;                                // ground-truth foreground pixels
  double singletons = 0;                       // z: predicted membrane inside that foreground
  double sum_a2 = 0, sum_b2 = 0, sum_ab2 = 0;  // Σa_i², Σb_j² + z, Σc_ij² + z
  double sum_a_log_a = 0, sum_b_log_b = 0, sum_ab_log_ab = 0;  // Σ x·ln x of the same cells
  int64_t objects_a = 0;  // ground-truth objects
  int64_t blocks_b = 0;   // predicted objects meeting the ground-truth foreground + singletons
  int64_t slices_without_foreground = 0;  // 1 for a slice with n = 0
  ContingencyStats& operator+=(const ContingencyStats& o);
};
ContingencyStats contingency_stats(const LabelImage& truth, const LabelImage& prediction);

// Foreground-restricted Rand F-score as the Java's ClassificationStatistics computes it from
// tp = Σc² + z, fp = Σb² + z - tp, fn = Σa² - tp: precision 1 when fp = 0, recall 1 when fn = 0,
// F = 2pr / (p + r), 0 when p + r = 0. 0 when any slice had n = 0 (the Java's counts are NaN
// there and its F-score stays at its initial 0).
double rand_f_score(const ContingencyStats& s);
// Foreground-restricted information-theoretic F-score: precision I/H(A), recall I/H(B),
// F = 2pr / (p + r) = 2I / (H(A) + H(B)), with the Java's special cases: H(A) = 0 (at most one
// ground-truth object, also n = 0) gives p = 0, r = 1; H(B) = 0 (one predicted block) gives p = 1,
// r = 0 (it wins when both hold); either way F = 0. NaN when I = 0 with both entropies positive.
// Capped at 1 (rounding can exceed it by 1e-16).
double vinfo_f_score(const ContingencyStats& s);

// The challenge's border thinning (WatershedTransform2D on the inverted binary proposal,
// 4-connectivity). `objects` are the predicted objects, the 4-connected components of the
// predicted interior (0 = predicted membrane), i.e. the watershed's basins. The membrane is
// flooded from them breadth-first: the queue starts with the membrane pixels next to a basin in
// column-major order (the Java's pixel list), neighbours are visited left, up, right, down; a
// membrane pixel whose visit meets two different basins becomes a dam (0), one that meets a dam
// before any basin stays a dam unless a basin follows in the same visit. Without any object the
// whole image is one region (1). Returns the regions (ids > 0) and the dams (0).
LabelImage thin_borders(const LabelImage& objects);

// Warping: the result of flipping simple points of `truth_fg` toward `prediction_fg`, most
// confident first (confidence = |probability - threshold|), and the classification of the
// remaining mismatches by their topological numbers (foreground 4-, background 8-adjacency;
// outside the image counts as background).
struct WarpingCounts {
  int64_t mismatches = 0;  // remaining after warping (the classic warping error's numerator)
  int64_t splits = 0, merges = 0;
  int64_t additions = 0, deletions = 0, holes = 0;  // object added/deleted, hole created/filled
  int64_t flips = 0;       // simple points flipped
};
WarpingCounts warp_and_classify(const std::vector<uint8_t>& truth_fg,
                                const std::vector<uint8_t>& prediction_fg,
                                const std::vector<float>& confidence, int width, int height,
                                std::vector<uint8_t>* warped = nullptr);
// True when flipping the centre of a 3×3 binary patch changes no topology. `ring` holds the 8
// neighbours clockwise from the top-left corner as bits 0..7 (1 = foreground).
bool is_simple_point(uint8_t ring);

// CTC SEG of one slice: (Σ J over ground-truth objects, number of ground-truth objects).
struct SegCounts {
  double sum_jaccard = 0;
  int64_t objects = 0;
  int64_t matched = 0;  // ground-truth objects with a predicted object covering more than half
};
SegCounts seg_counts(const LabelImage& truth, const LabelImage& prediction);

// Threshold a probability map into predicted objects (4-connected components of value > th,
// the value compared in double precision).
LabelImage objects_from_probability(const Image& probability, double threshold);

}  // namespace unet
