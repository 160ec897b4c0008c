// unet/validation.cpp — the ISBI 2012 validation: probability maps, overlays, the EM measures.
#include "unet/validation.h"

#include <filesystem>

#include "core/error.h"
#include "unet/image_io.h"
#include "unet/inference.h"
#include "unet/metrics.h"
#include "unet/visualize.h"

namespace unet {

IsbiValidation::IsbiValidation(std::vector<Sample> samples) : samples_(std::move(samples)) {
  UNET_CHECK(!samples_.empty(), ValueError, "IsbiValidation: no validation samples");
  for (const Sample& s : samples_) {
    validate(s.image, "validation image");
    UNET_CHECK(s.labels.width == s.image.width && s.labels.height == s.image.height, ShapeError,
               "IsbiValidation: sample '", s.name, "' has a ", s.image.width, "x", s.image.height, " image but ",
               s.labels.width, "x", s.labels.height, " labels; validation needs ground truth of the image's size");
  }
}

std::string IsbiValidation::describe() const {
  int64_t pixels = 0;
  for (const Sample& s : samples_) pixels += s.image.pixel_count();
  return "validation slices " + samples_.front().name + ".." + samples_.back().name + " (" +
         std::to_string(samples_.size()) + " slices, " + std::to_string(pixels) + " pixels)";
}

ValidationReport IsbiValidation::run(UNet& model, bool tta, const std::string& write_dir,
                                     const ItemProgress& progress) const {
  namespace fs = std::filesystem;
  std::vector<Image> maps;
  std::vector<LabelImage> truths;
  const auto total = static_cast<int64_t>(samples_.size());
  if (progress) progress(0, total, "");
  for (size_t i = 0; i < samples_.size(); ++i) {
    const Sample& s = samples_[i];
    const Image prob = foreground_probability(segment_image(model, image_tensor(s.image), {0, tta, {}}));
    if (!write_dir.empty()) {
      write_tiff((fs::path(write_dir) / (s.name + ".tif")).string(), prob);
      write_png((fs::path(write_dir) / (s.name + "_overlay.png")).string(),
                segmentation_overlay(normalised(s.image), prob, &s.labels));
    }
    maps.push_back(prob);
    truths.push_back(s.labels);
    if (progress) progress(static_cast<int64_t>(i + 1), total, s.name);
  }
  const MeasureResult m = evaluate_segmentation(maps, truths);
  ValidationReport report;
  report.measures = {{"pixel error", m.pixel_error, 4, true},
                     {"Rand error", m.rand_error, 4, true},
                     {"V_info error", m.vinfo_error, 4, true},
                     {"V_rand error (thinned)", m.vrand_thinned_error, 4, true},
                     {"V_info error (thinned)", m.vinfo_thinned_error, 4, true},
                     {"warping error", m.warping_error, 6, false},
                     {"IoU", m.iou, 4, false}};
  report.json = measures_to_json(m);
  return report;
}

}  // namespace unet
