// unet/cell_metrics.cpp — SEG and pixel IoU per frame and pooled (SEG's matching is
// seg_counts of unet/metrics.h, shared with the probability-map evaluation).
#include "unet/cell_metrics.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.h"
#include "unet/cell_targets.h"
#include "unet/dataset.h"
#include "unet/image_io.h"
#include "unet/metrics.h"

namespace unet {

double CellFrameScore::seg() const { return objects > 0 ? sum_jaccard / static_cast<double>(objects) : 1.0; }

double CellFrameScore::iou() const {
  const int64_t all = tp + fp + fn;
  return all > 0 ? static_cast<double>(tp) / static_cast<double>(all) : 1.0;
}

CellFrameScore score_cell_frame(const LabelImage& predicted, const LabelImage& truth, const std::string& name,
                                bool partial) {
  const SegCounts seg = seg_counts(truth, predicted);  // validates both and their sizes
  CellFrameScore f;
  f.name = name;
  f.partial = partial;
  f.objects = seg.objects;
  f.matched = seg.matched;
  f.sum_jaccard = seg.sum_jaccard;
  f.predicted = count_objects(predicted);
  for (size_t i = 0; i < truth.labels.size(); ++i) {
    const bool t = truth.labels[i] > 0, p = predicted.labels[i] > 0;
    f.tp += t && p;
    f.fp += !t && p;
    f.fn += t && !p;
  }
  return f;
}

CellScores combine_cell_scores(std::vector<CellFrameScore> frames) {
  UNET_CHECK(!frames.empty(), ValueError, "combine_cell_scores: no frames");
  CellScores s;
  double sum_jaccard = 0.0;
  int64_t tp = 0, fp = 0, fn = 0;
  for (const CellFrameScore& f : frames) {
    s.objects += f.objects;
    s.matched += f.matched;
    s.predicted += f.predicted;
    sum_jaccard += f.sum_jaccard;
    if (f.partial) continue;
    tp += f.tp;
    fp += f.fp;
    fn += f.fn;
  }
  s.seg = s.objects > 0 ? sum_jaccard / static_cast<double>(s.objects) : 1.0;
  s.iou = tp + fp + fn > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fp + fn) : 1.0;
  s.frames = std::move(frames);
  return s;
}

CellScores score_cells(const std::vector<LabelImage>& predicted, const std::vector<LabelImage>& truth,
                       const std::vector<std::string>& names, const std::vector<bool>& partial) {
  UNET_CHECK(predicted.size() == truth.size(), ShapeError, "score_cells: ", predicted.size(),
             " predicted frames but ", truth.size(), " ground-truth frames");
  UNET_CHECK(names.empty() || names.size() == truth.size(), ShapeError, "score_cells: ", names.size(),
             " names for ", truth.size(), " frames");
  UNET_CHECK(partial.empty() || partial.size() == truth.size(), ShapeError, "score_cells: ", partial.size(),
             " partial flags for ", truth.size(), " frames");
  std::vector<CellFrameScore> frames;
  for (size_t i = 0; i < truth.size(); ++i)
    frames.push_back(score_cell_frame(predicted[i], truth[i], names.empty() ? std::to_string(i) : names[i],
                                      !partial.empty() && partial[i]));
  return combine_cell_scores(std::move(frames));
}

namespace {

namespace fs = std::filesystem;

// Files of `dir` named <prefix><digits>.tif/.tiff, by frame number.
std::map<long, fs::path> numbered_files(const fs::path& dir, const std::string& prefix) {
  const std::regex name(prefix + R"((\d+)\.tiff?)");
  std::map<long, fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string file = entry.path().filename().string();
    if (entry.is_regular_file() && std::regex_match(file, m, name)) files[std::stol(m[1].str())] = entry.path();
  }
  return files;
}

}  // namespace

CellScores score_result_folder(const std::string& results_dir, const std::string& truth_dir,
                               const ResultFolderOptions& options, std::vector<std::string>* notes) {
  std::error_code ec;
  UNET_CHECK(fs::is_directory(results_dir, ec), IOError, results_dir, ": result folder does not exist");
  UNET_CHECK(fs::is_directory(truth_dir, ec), IOError, truth_dir, ": ground-truth folder does not exist");
  fs::path seg_dir(truth_dir);
  if (fs::is_directory(seg_dir / "SEG", ec)) seg_dir /= "SEG";
  const auto truths = numbered_files(seg_dir, "man_seg");
  UNET_CHECK(!truths.empty(), IOError, seg_dir.string(),
             ": no man_segTTT.tif files (the challenge's ground truth: <SS>_GT/SEG/man_segTTT.tif)");
  const auto masks = numbered_files(results_dir, "mask");
  std::vector<LabelImage> truth, predicted;
  std::vector<std::string> names;
  std::vector<LabelImage> all_truth;  // every annotated frame: partial annotation is judged among them all
  std::vector<size_t> scored;
  for (const auto& [frame, path] : truths) {
    const std::string name = path.stem().string().substr(std::string("man_seg").size());
    all_truth.push_back(labels_from_image(read_image(path.string()), LabelKind::Instances, path.string()));
    const auto mask = masks.find(frame);
    if (mask == masks.end() && !options.missing_as_empty) {
      if (notes) notes->push_back("no mask" + name + ".tif in " + results_dir + ": frame " + name + " not scored");
      continue;
    }
    scored.push_back(all_truth.size() - 1);
    names.push_back(name);
    truth.push_back(all_truth.back());
    if (mask == masks.end()) {
      predicted.push_back(make_label_image(truth.back().width, truth.back().height));
      if (notes) notes->push_back("no mask" + name + ".tif in " + results_dir + ": frame " + name +
                                  " scored as an empty segmentation");
      continue;
    }
    predicted.push_back(labels_from_image(read_image(mask->second.string()), LabelKind::Instances, mask->second.string()));
    UNET_CHECK(predicted.back().width == truth.back().width && predicted.back().height == truth.back().height,
               ShapeError, mask->second.string(), " is ", predicted.back().width, "x", predicted.back().height, " but ",
               path.string(), " is ", truth.back().width, "x", truth.back().height);
  }
  UNET_CHECK(!truth.empty(), ValueError, results_dir, ": no maskTTT.tif matches a man_segTTT.tif of ", seg_dir.string());
  const std::vector<bool> found =
      options.detect_partial ? find_partial_annotations(all_truth) : std::vector<bool>(all_truth.size());
  std::vector<bool> partial;
  for (size_t i : scored) partial.push_back(found[i]);
  for (const std::string& named : options.partial_frames) {
    bool hit = false;
    for (size_t i = 0; i < names.size(); ++i) {
      try {
        if (std::stol(named) == std::stol(names[i])) partial[i] = hit = true;
      } catch (const std::exception&) {
        UNET_THROW(ValueError, "partially annotated frame '", named, "': expected a frame number such as 067");
      }
    }
    UNET_CHECK(hit, ValueError, "partially annotated frame '", named, "' has no ground truth in ", seg_dir.string());
  }
  return score_cells(predicted, truth, names, partial);
}

std::string cell_scores_to_json(const CellScores& s, int indent, const std::string& extra_json) {
  nlohmann::ordered_json j;
  j["seg"] = s.seg;
  j["iou"] = s.iou;
  j["objects"] = s.objects;
  j["matched"] = s.matched;
  j["predicted"] = s.predicted;
  j["frames"] = nlohmann::ordered_json::array();
  for (const CellFrameScore& f : s.frames)
    j["frames"].push_back({{"name", f.name}, {"seg", f.seg()}, {"iou", f.iou()}, {"objects", f.objects},
                           {"matched", f.matched}, {"predicted", f.predicted}, {"partial", f.partial}});
  if (!extra_json.empty()) {
    const auto extra = nlohmann::ordered_json::parse(extra_json);
    UNET_CHECK(extra.is_object(), ValueError, "cell_scores_to_json: the extra members must be a JSON object, got ",
               extra_json);
    for (const auto& [key, value] : extra.items()) j[key] = value;
  }
  return j.dump(indent);
}

}  // namespace unet
