// unet/cell_validation.h — the cell experiments' validation: every frame is segmented, turned
// into instances (unet/instances.h) and scored with the Cell Tracking Challenge's SEG and the
// pixel IoU (unet/cell_metrics.h). Written per frame into the validation folder:
//   <SS>_RES/maskTTT.tif    the instances in the challenge's result layout (16-bit, 0 = background)
//   <SS>_TTT.tif            the probability of "cell" (float)
//   <SS>_TTT_overlay.png    the instances in colour over the image, the ground truth outlined in white
#pragma once

#include <vector>

#include "unet/cell_data.h"
#include "unet/instances.h"
#include "unet/validation.h"

namespace unet {

// The probability of "cell" of one frame (overlap-tile; `tta`: averaged over the 8 flips and
// rotations): what the validation turns into instances, and what the instance options are
// chosen on (unet/instance_choice.h).
Image cell_probability(UNet& model, const CellFrame& frame, bool tta);

class CellValidation : public Validation {
 public:
  // Throws ValueError for no frames or bad instance options.
  CellValidation(std::vector<CellFrame> frames, InstanceOptions instances);
  std::string describe() const override;  // "validation frames 01/039, 01/054 (2 frames, 26 cells)"
  ValidationReport run(UNet& model, bool tta, const std::string& write_dir,
                       const ItemProgress& progress = {}) const override;
  const std::vector<CellFrame>& frames() const { return frames_; }
  const InstanceOptions& instance_options() const { return instances_; }
  // Options chosen after the validation was made (train_cells chooses them on its training
  // frames once the model is trained: unet/instance_choice.h); `choice_json`, when not empty, is
  // kept beside them in the report's JSON as "instance_choice". Throws ValueError for bad options.
  void set_instance_options(const InstanceOptions& options, std::string choice_json = "");

 private:
  std::vector<CellFrame> frames_;
  InstanceOptions instances_;
  std::string choice_json_;
};

}  // namespace unet
