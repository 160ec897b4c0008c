// unet/cell_validation.cpp — segment, instances, SEG; the challenge's result files.
#include "unet/cell_validation.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "unet/cell_metrics.h"
#include "unet/image_io.h"
#include "unet/inference.h"
#include "unet/visualize.h"

namespace unet {

Image cell_probability(UNet& model, const CellFrame& frame, bool tta) {
  SegmentOptions options;
  options.tta = tta;
  return foreground_probability(segment_image(model, image_tensor(frame.sample.image), options));
}

CellValidation::CellValidation(std::vector<CellFrame> frames, InstanceOptions instances)
    : frames_(std::move(frames)), instances_(instances) {
  UNET_CHECK(!frames_.empty(), ValueError, "CellValidation: no validation frames");
  instances_.validate();
}

void CellValidation::set_instance_options(const InstanceOptions& options, std::string choice_json) {
  options.validate();
  // Checked here rather than when a report is built, after a whole validation pass.
  UNET_CHECK(choice_json.empty() || nlohmann::json::accept(choice_json), ValueError,
             "CellValidation::set_instance_options: the choice must be a JSON text or empty, got: ", choice_json);
  instances_ = options;
  choice_json_ = std::move(choice_json);
}

std::string CellValidation::describe() const {
  std::string names;
  int64_t cells = 0;
  for (const CellFrame& f : frames_) {
    names += (names.empty() ? "" : ", ") + f.id() + (f.partial ? " (partial)" : "");
    cells += count_objects(f.sample.labels);
  }
  const char* frames = frames_.size() == 1 ? " frame, " : " frames, ";
  return (frames_.size() == 1 ? "validation frame " : "validation frames ") + names + " (" +
         std::to_string(frames_.size()) + frames + std::to_string(cells) + " cells)";
}

ValidationReport CellValidation::run(UNet& model, bool tta, const std::string& write_dir,
                                     const ItemProgress& progress) const {
  namespace fs = std::filesystem;
  std::vector<CellFrameScore> scores;
  const auto total = static_cast<int64_t>(frames_.size());
  if (progress) progress(0, total, "");
  for (size_t i = 0; i < frames_.size(); ++i) {
    const CellFrame& f = frames_[i];
    const Image prob = cell_probability(model, f, tta);
    const LabelImage objects = instances_from_probability(prob, instances_);
    if (!write_dir.empty()) {
      const fs::path dir(write_dir), results = dir / (f.sequence + "_RES");
      fs::create_directories(results);
      write_instance_mask((results / instance_mask_name("t" + f.sample.name)).string(), objects);
      const std::string stem = f.sequence + "_" + f.sample.name;
      write_tiff((dir / (stem + ".tif")).string(), prob);
      write_png((dir / (stem + "_overlay.png")).string(), instance_overlay(f.sample.image, objects, &f.sample.labels));
    }
    scores.push_back(score_cell_frame(objects, f.sample.labels, f.id(), f.partial));
    if (progress) progress(static_cast<int64_t>(i + 1), total, f.id());
  }
  const CellScores s = combine_cell_scores(std::move(scores));
  ValidationReport report;
  report.measures = {{"SEG", s.seg, 4, true},
                     {"pixel IoU", s.iou, 4, true},
                     {"cells", static_cast<double>(s.objects), 0, false},
                     {"matched", static_cast<double>(s.matched), 0, false},
                     {"predicted", static_cast<double>(s.predicted), 0, false}};
  const std::string choice = choice_json_.empty() ? "" : ", \"instance_choice\": " + choice_json_;
  report.json = cell_scores_to_json(s, 2, "{\"instances\": " + instances_.to_json() + choice + "}");
  return report;
}

}  // namespace unet
