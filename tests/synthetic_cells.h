// tests/synthetic_cells.h — generated cell images with known instances, for the cell pipeline's
// tests and its CTest smoke run (tests/tools/make_synthetic_ctc.cpp): ellipses placed in pairs
// that overlap, split where their normalised radii meet, so every pair touches along a curve
// (pairs are kept apart from each other, so fewer pairs than asked fit in a crowded image);
// ids are not consecutive (first_id + k·id_step), as in the Cell Tracking Challenge's man_seg
// files. The image shows cells brighter than the ground with a dark rim on every cell's edge
// (also between touching cells), plus noise; 8-bit, or 16-bit over a 12-bit range like many
// microscope cameras.
#pragma once

#include <cstdint>
#include <vector>

#include "unet/dataset.h"

namespace unet::test {

struct SyntheticCellsOptions {
  int width = 120, height = 100;
  int pairs = 4;                      // up to 2·pairs cells, each pair overlapping
  float min_axis = 8.0f, max_axis = 15.0f;
  SampleFormat format = SampleFormat::U8;  // U8, or U16 with values up to 4095
  int32_t first_id = 3, id_step = 7;
  uint64_t seed = 1;
};

Sample synthetic_cells(const SyntheticCellsOptions& options);

// The sample with only the ids for which keep(k) is true labelled (k = 0, 1, ... in id order):
// a partially annotated frame.
Sample keep_labels(const Sample& sample, const std::vector<bool>& keep);

}  // namespace unet::test
