// unet/metrics.h — segmentation measures as the ISBI 2012 and Cell Tracking challenges compute
// them (docs/data.md has the definitions):
//   pixel error      1 - best F1 of interior pixels over thresholds
//   Rand error       1 - best foreground-restricted Rand F-score (predicted membrane inside the
//                    ground-truth foreground counts as singletons)
//   V_info error     1 - best information-theoretic F-score 2I / (H(A) + H(B)), same table
//   warping error    Jain et al. 2010: the ground truth is warped toward the prediction by
//                    simple-point flips, most confident first; then the remaining split + merge
//                    pixels / all pixels (leaderboard) or all remaining mismatches (classic)
//   IoU              foreground Jaccard index at one threshold (0.5)
//   SEG              CTC: mean Jaccard of each ground-truth object with the predicted object
//                    covering more than half of it (0 if none)
// Predictions are probability maps in [0, 1] (1 = interior), thresholded at th (foreground =
// value > th); predicted objects are 4-connected components. Counts are pooled over slices.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "unet/image.h"

namespace unet {

struct EvaluateOptions {
  std::vector<float> thresholds = {0.0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f,
                                   0.6f, 0.7f, 0.8f, 0.9f, 1.0f};
  float iou_threshold = 0.5f;
  bool warping = true;  // the warping error is the costly measure; false skips it (reported NaN)
};

// One measure at every threshold, its best value and where it was found.
struct MeasureCurve {
  std::vector<double> values;  // per threshold, same order as EvaluateOptions::thresholds
  double best = 0.0;           // min for errors, max for scores
  float best_threshold = 0.0f;
};

struct MeasureResult {
  double pixel_error = 0, rand_error = 0, vinfo_error = 0;
  double warping_error = 0, warping_error_classic = 0;
  double iou = 0, seg = 0;
  std::vector<float> thresholds;
  MeasureCurve pixel, rand, vinfo, warping, warping_classic, seg_curve;  // per-threshold detail
  int64_t pixels = 0;  // pixels scored (all slices)
  int slices = 0;
};

// Scores probability maps against instance ground truth (0 = membrane / background). Integer
// maps (U8/U16) are normalised to [0, 1] first; each map must be single-channel and of its
// truth's size (ShapeError naming the slice otherwise); thresholds must lie in [0, 1].
// Slices × thresholds run in parallel (parallel_for).
MeasureResult evaluate_segmentation(const std::vector<Image>& probability_maps,
                                    const std::vector<LabelImage>& truth,
                                    const EvaluateOptions& options = {});

// The measures as a JSON object (what examples/evaluate prints and train_em writes to
// metrics.json): pixel_error, rand_error, vinfo_error, warping_error, warping_error_classic, iou,
// seg, best_threshold (per measure), slices, pixels, thresholds, per_threshold. Undefined values
// (NaN) become null.
std::string measures_to_json(const MeasureResult& result, const EvaluateOptions& options = {},
                             const std::vector<std::string>& slice_names = {}, int indent = 2);

// ---- building blocks, exposed for tests and for training-time monitoring ----------------------

// Contingency statistics of ground truth objects A (ids > 0; pixels with id 0 are not counted)
// against predicted objects B (ids > 0; 0 = predicted membrane = singletons). In pixel counts,
// so they pool over slices by addition.
struct ContingencyStats {
  double n = 0;                       // ground-truth foreground pixels
  double sum_a2 = 0, sum_b2 = 0, sum_ab2 = 0;  // Σa_i², Σb_j² + z, Σc_ij² + z (z = singletons)
  double sum_a_log_a = 0, sum_b_log_b = 0, sum_ab_log_ab = 0;  // Σ c·ln c of the same cells
  ContingencyStats& operator+=(const ContingencyStats& o);
};
ContingencyStats contingency_stats(const LabelImage& truth, const LabelImage& prediction);
double rand_f_score(const ContingencyStats& s);   // 2 Σc² / (Σa² + Σb²); 1 if n == 0
double vinfo_f_score(const ContingencyStats& s);  // 2I / (H(A) + H(B)); 1 if both are 0

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

// Threshold a probability map into predicted objects (4-connected components of value > th).
LabelImage objects_from_probability(const Image& probability, float threshold);

}  // namespace unet
