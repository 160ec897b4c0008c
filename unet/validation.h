// unet/validation.h — what a training run scores its model on: a set of held-out images with
// ground truth, segmented with the model and scored by a task's own measures. The interface the
// training front-end (unet/training_run.h) calls, and its ISBI 2012 implementation: probability
// maps scored with the EM challenge's measures (pixel, Rand, V_info, warping error, IoU). The
// cell implementation (instances scored with the Cell Tracking Challenge's SEG) lives in
// unet/cell_validation.h.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "unet/dataset.h"
#include "unet/model.h"

namespace unet {

// One number of a validation, as a program prints it: "<name> <value with `decimals` digits>".
// Headline measures are the ones a one-line progress report shows.
struct Measure {
  std::string name;
  double value = 0.0;
  int decimals = 4;
  bool headline = false;
};

struct ValidationReport {
  std::vector<Measure> measures;  // in the order a program prints them
  std::string json;               // every measure as a JSON object (what metrics.json holds)
};

// Called with (0, total, "") before the first image and (i, total, name) after image i.
using ItemProgress = std::function<void(int64_t done, int64_t total, const std::string& item)>;

class Validation {
 public:
  virtual ~Validation() = default;
  // What is scored, for a heading: e.g. "validation slices 20..24 (5 slices, 1310720 pixels)".
  virtual std::string describe() const = 0;
  // Segments every image with `model` (overlap-tile; `tta`: averaged over the 8 flips and
  // rotations) and scores it. With a non-empty `write_dir` the per-image outputs (probability
  // maps, overlays, instance masks) are written there.
  virtual ValidationReport run(UNet& model, bool tta, const std::string& write_dir,
                               const ItemProgress& progress = {}) const = 0;
};

// ISBI 2012: probability maps of "cell interior" scored against (binary or instance) ground
// truth with evaluate_segmentation (unet/metrics.h). Writes <name>.tif (float probability) and
// <name>_overlay.png (red: predicted membrane, green: disagreement with the truth) per slice.
class IsbiValidation : public Validation {
 public:
  // Throws ValueError for no samples, ShapeError for a sample without labels of its size.
  explicit IsbiValidation(std::vector<Sample> samples);
  std::string describe() const override;
  ValidationReport run(UNet& model, bool tta, const std::string& write_dir,
                       const ItemProgress& progress = {}) const override;
  const std::vector<Sample>& samples() const { return samples_; }

 private:
  std::vector<Sample> samples_;
};

}  // namespace unet
