// unet/cell_targets.h — training targets from instance labels, as in the paper's cell experiments:
//   * separation borders: where two instances touch, the pixels of each within `border_radius`
//     of the other become background, so touching cells are separate objects in the target
//     (a gap of 2·r px between two straight touching edges); restore_separation_border
//     (unet/instances.h) gives the pixels back after inference;
//   * the eq. 2 weight map on the separated instances: d1/d2 are distances to the nearest and
//     second-nearest *instance*, so the carved gaps carry the large weights (w0 = 10, σ = 5 px)
//     and w_c balances the classes;
//   * partial annotation (a frame that labels only some of its cells): only a trusted region —
//     the labelled cells and the background within `trusted_margin` px of them — counts in the
//     loss (weight 0 elsewhere), or the frame is left out of training altogether.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "unet/dataset.h"
#include "unet/trainer.h"
#include "unet/weight_map.h"

namespace unet {

enum class PartialAnnotation {
  Mask,     // weight 0 outside the trusted region (default)
  Exclude,  // the frame does not train
  Ignore,   // treated as fully annotated: unlabelled cells are taught as background (for comparison)
};

struct CellTargetOptions {
  float border_radius = 1.0f;  // separation border (px); 0 = none
  WeightMapOptions weights;    // eq. 2: w0 = 10, σ = 5, class-balanced
  float trusted_margin = 1.0f; // background trusted around the labelled cells of a partial frame
  PartialAnnotation partial = PartialAnnotation::Mask;
  void validate() const;       // ValueError naming the bad field
};

// Pixels of an instance within `radius` (Euclidean, px) of a pixel of another instance become
// background (0). Every pair of instances is then separated under 4-connectivity when radius >= 1
// (a pixel 4-adjacent to another instance is at distance 1). Ids are kept. Throws ValueError for
// a negative or non-finite radius.
LabelImage separate_instances(const LabelImage& instances, float radius);

// The pairs of distinct instances (a < b) that touch: some pixel of a is 4-adjacent to a pixel of b.
std::vector<std::pair<int32_t, int32_t>> touching_pairs(const LabelImage& instances);

// The loss's trusted region of a partially annotated frame: 1 on the labelled instances and on
// the background within `margin` px of them (annotation_near_objects).
std::vector<uint8_t> trusted_region(const LabelImage& instances, float margin);

// Image normalised to [0, 1]; classes = separated instances > 0; weights = eq. 2 on the separated
// instances, restricted to the trusted region when `partial` (PartialAnnotation::Mask; a partial
// frame with Exclude is refused: leave it out instead).
TrainingSlice make_cell_training_slice(const Sample& sample, const CellTargetOptions& options, bool partial = false);

// Frames that look partially annotated: labelled foreground below `fraction` of the median
// labelled foreground of the frames (DIC-HeLa's man_seg067 labels 8.6 % of its pixels, the other
// frames 39-53 %). Needs at least 3 frames to have a median to compare with; with fewer, nothing
// is flagged. Returns one flag per frame.
std::vector<bool> find_partial_annotations(const std::vector<LabelImage>& frames, double fraction = 1.0 / 3.0);

}  // namespace unet
