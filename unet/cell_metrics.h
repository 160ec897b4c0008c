// unet/cell_metrics.h — scoring instance segmentations of cells as the Cell Tracking Challenge
// does (SEG), with the pixel IoU the U-Net paper reports beside it:
//   SEG        for every ground-truth object R, the predicted object S covering more than half
//              of it (|R∩S| > ½|R|; at most one can) gives J = |R∩S| / |R∪S|, otherwise J = 0;
//              SEG is the mean J over all ground-truth objects of all frames (extra predicted
//              objects cost nothing). Objects are ids: the pixels of one id need not be connected.
//   pixel IoU  TP / (TP + FP + FN) of the foreground (id > 0 on either side), pooled over frames;
//              frames flagged partial (only some cells annotated) are left out of it, because
//              their unannotated cells would count as false positives. SEG needs no such care:
//              it only visits annotated objects.
// Per frame and overall; as JSON for examples/evaluate and train_cells' metrics.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "unet/image.h"

namespace unet {

struct CellFrameScore {
  std::string name;
  int64_t objects = 0;    // ground-truth objects
  int64_t matched = 0;    // of them, covered more than half by one predicted object
  int64_t predicted = 0;  // predicted objects
  double sum_jaccard = 0.0;
  int64_t tp = 0, fp = 0, fn = 0;  // foreground pixels
  bool partial = false;  // partially annotated: not part of the pooled pixel IoU
  double seg() const;    // sum_jaccard / objects (1 when the frame has no object: nothing to find)
  double iou() const;    // tp / (tp + fp + fn) (1 when both are empty)
};

struct CellScores {
  std::vector<CellFrameScore> frames;
  int64_t objects = 0, matched = 0, predicted = 0;
  double seg = 1.0;  // over all ground-truth objects of all frames
  double iou = 1.0;  // pooled over the frames not flagged partial
};

// One frame: ShapeError when the sizes differ.
CellFrameScore score_cell_frame(const LabelImage& predicted, const LabelImage& truth, const std::string& name = "",
                                bool partial = false);
// Pools frames (ValueError for none).
CellScores combine_cell_scores(std::vector<CellFrameScore> frames);
// Every frame, then pooled. `names` and `partial` may be empty (frames "0", "1", ...; none partial).
CellScores score_cells(const std::vector<LabelImage>& predicted, const std::vector<LabelImage>& truth,
                       const std::vector<std::string>& names = {}, const std::vector<bool>& partial = {});

// A result folder in the challenge's layout (maskTTT.tif) against its ground truth (man_segTTT.tif;
// `truth_dir` is the SEG folder or the <SS>_GT folder above it), paired by frame number (mask054
// with man_seg054, also across digit counts). A ground-truth frame without a mask is left out
// (a validation subset) or, with missing_as_empty, scored as an empty segmentation (its objects
// score 0, as for an incomplete submission); either way `notes` names it. Masks without ground
// truth are not scored (the challenge annotates only some frames). ValueError when no frame pairs. Partially annotated frames are found by their labelled
// area (find_partial_annotations, when detect_partial) and/or named ("TTT"). Throws IOError for
// a missing folder, a folder without man_seg files, or an unreadable file; ShapeError for a mask
// of another size than its truth.
struct ResultFolderOptions {
  bool missing_as_empty = false;
  bool detect_partial = true;
  std::vector<std::string> partial_frames;
};
CellScores score_result_folder(const std::string& results_dir, const std::string& truth_dir,
                               const ResultFolderOptions& options = {}, std::vector<std::string>* notes = nullptr);

// {"seg", "iou", "objects", "matched", "predicted", "frames": [{"name", "seg", "iou", "objects",
// "matched", "predicted", "partial"}, ...]} plus the extra members given (e.g. the instance
// options) as a JSON object text.
std::string cell_scores_to_json(const CellScores& scores, int indent = 2, const std::string& extra_json = "");

}  // namespace unet
