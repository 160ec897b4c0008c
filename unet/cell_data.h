// unet/cell_data.h — a Cell Tracking Challenge data set prepared for training: its sequences
// (<set>/<SS>/tTTT.tif with <set>/<SS>_GT/SEG/man_segTTT.tif), which annotated frames train and
// which validate, and which are only partially annotated.
//
// The validation split, in order of precedence: a whole sequence (the challenge's way: train on
// 01, score on 02); named frames ("TTT" in a training sequence, or "SS/TTT"); otherwise, with two
// or more annotated sequences, the last one; with one, its last ⌈fraction · n⌉ fully annotated
// frames (at least one, and at least one frame left to train on).
#pragma once

#include <string>
#include <vector>

#include "unet/cell_targets.h"
#include "unet/dataset.h"
#include "unet/trainer.h"

namespace unet {

struct CellFrame {
  std::string sequence;  // "01"
  Sample sample;         // sample.name = the frame number "TTT" as in the file names
  bool partial = false;  // only some cells are annotated
  std::string id() const { return sequence + "/" + sample.name; }
};

struct CellSplitOptions {
  std::vector<std::string> train_sequences;     // empty: every annotated sequence not validating
  std::string validation_sequence;              // a whole sequence validates
  std::vector<std::string> validation_frames;   // "TTT" or "SS/TTT"
  double validation_fraction = 0.2;             // for the default split of a single sequence
  // Partially annotated frames: found by find_partial_annotations per sequence (detect_partial),
  // and/or named ("TTT" or "SS/TTT").
  bool detect_partial = true;
  std::vector<std::string> partial_frames;
};

struct CellDataSplit {
  std::vector<CellFrame> train, validation;
};

// The sequences of a CTC data set folder that have segmentation ground truth (SS with both
// SS/ and SS_GT/SEG/), sorted. IOError when the folder is missing or holds none.
std::vector<std::string> ctc_sequences(const std::string& dataset_dir);

// Loads the annotated frames (load_ctc_dataset) and splits them. Throws ValueError naming what is
// wrong: an unknown sequence or frame, a frame both named for validation and not annotated, an
// empty training or validation side.
CellDataSplit load_cell_split(const std::string& dataset_dir, const CellSplitOptions& options = {});

// The training slices of the frames (make_cell_training_slice); partial frames are masked, or
// left out under PartialAnnotation::Exclude. A masked frame's class weights w_c are those of the
// fully annotated frames together (its own would be the mask's frequencies). ValueError when
// nothing is left to train on.
std::vector<TrainingSlice> make_cell_training_slices(const std::vector<CellFrame>& frames,
                                                     const CellTargetOptions& options);

}  // namespace unet
