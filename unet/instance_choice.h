// unet/instance_choice.h — choosing the instance options (unet/instances.h) on frames whose
// ground truth is known: every combination of a few thresholds and core thresholds is applied to
// the frames' probability maps and scored with SEG (unet/cell_metrics.h); the best one wins.
// train_cells runs it on its training frames after training, so the core level that separates
// touching cells follows what this model learnt instead of a constant (docs/cells.md has the
// measurements: the best level moved between 0.95 and 0.99 from one seed to the next).
#pragma once

#include <string>
#include <vector>

#include "unet/image.h"
#include "unet/instances.h"

namespace unet {

struct InstanceSearch {
  // Foreground thresholds tried, each in [0, 1). Empty: only the base options' threshold.
  std::vector<float> thresholds;
  // Core thresholds tried, 0 (plain components) or in (threshold, 1); a level not above a
  // threshold is skipped for it. Empty: only the base options' core threshold.
  std::vector<float> core_thresholds;
  // What train_cells tries with --threshold auto / --core-threshold auto, simplest first (a tie
  // keeps the first): thresholds 0.5 and its neighbours up to 0.9 (PhC-C2DL-PSC's halo,
  // predicted as cell, asked for the top of first grids of 0.3-0.7 and 0.2-0.8); plain
  // components, then core levels 0.8, 0.9, 0.95, 0.98, 0.99 from loose to strict.
  static InstanceSearch standard();
};

struct InstanceTrial {
  InstanceOptions options;
  double seg = 0.0;         // over every ground-truth object of the frames
  double iou = 0.0;         // pixel IoU pooled over the frames not flagged partial
  int64_t objects = 0, matched = 0, predicted = 0;
};

struct InstanceChoice {
  InstanceOptions chosen;
  std::vector<InstanceTrial> trials;  // thresholds outer, core thresholds inner, in the order given
  size_t best = 0;                    // index of the chosen trial
  // {"chosen_on": `frames`, "chosen": options, "trials": [{"threshold", "core_threshold", "seg",
  // "iou", "objects", "matched", "predicted"}, ...]}: what metrics.json keeps of the choice.
  std::string to_json(const std::string& frames) const;
};

// Tries every (threshold, core threshold) of `search` on top of `base` (its min_size,
// fill_holes, restore_border, connectivity stay) and picks the highest SEG; a tie goes to the
// trial tried first, so list the simpler options first. `partial[i]` flags a partially
// annotated frame (left out of the pixel IoU; SEG only visits annotated objects); it may be
// empty. Throws ValueError for no frames, counts that differ, or a threshold out of range, and
// ShapeError for a probability map of another size than its truth.
InstanceChoice choose_instance_options(const std::vector<Image>& probabilities, const std::vector<LabelImage>& truths,
                                       const std::vector<bool>& partial, const InstanceOptions& base,
                                       const InstanceSearch& search);

}  // namespace unet
