// examples/evaluate.cpp — scores probability maps against ground truth with the challenges'
// measures (unet/metrics.h) and prints a table and a JSON object; or, for a Cell Tracking
// Challenge result folder (maskTTT.tif instances), scores it with SEG (unet/cell_metrics.h).
//
//   evaluate --pred DIR --truth DIR [--json FILE] [--no-warping]
//   evaluate --cells --pred <SS>_RES --truth <SS>_GT[/SEG] [--json FILE] [--partial auto|none|TTT,...]
//
// Files are paired by name stem (pred/07.tif <-> truth/07.png); a multi-page TIFF stack is scored
// page by page against a ground-truth stack of as many pages (pred/vol.tif <-> truth/vol.tif).
// Predictions: float TIFF in [0, 1] or 8/16-bit PNG/TIFF (scaled to [0, 1]); 1 = cell interior.
// Ground truth: a binary mask (255 = interior, 0 = membrane; instances = 4-connected components)
// or an instance label image (CTC man_seg, ids > 0).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "unet/cell_metrics.h"
#include "unet/dataset.h"
#include "unet/image_io.h"
#include "unet/metrics.h"

namespace fs = std::filesystem;

namespace {

void write_json(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << text << "\n";
    if (!out) throw unet::IOError(path + ": cannot write");
  }
  fs::rename(tmp, path);
}

// A CTC result folder is one whose images are all maskTTT.tif.
bool looks_like_ctc_results(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  bool any = false;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || !unet::is_image_file(name)) continue;
    if (name.rfind("mask", 0) != 0) return false;
    any = true;
  }
  return any;
}

// The cell scoring: instances against man_seg ground truth, SEG and pixel IoU per frame and overall.
int evaluate_cells(const std::string& pred_dir, const std::string& truth_dir, const std::string& json_path,
                   const std::string& partial, bool missing_as_empty) {
  unet::ResultFolderOptions options;
  options.missing_as_empty = missing_as_empty;
  options.detect_partial = partial == "auto";
  if (partial != "auto" && partial != "none") {
    std::stringstream list(partial);
    for (std::string item; std::getline(list, item, ',');)
      if (!item.empty()) options.partial_frames.push_back(item);
  }
  std::vector<std::string> notes;
  const unet::CellScores s = unet::score_result_folder(pred_dir, truth_dir, options, &notes);
  for (const auto& n : notes) std::cerr << "note: " << n << "\n";
  std::printf("instances of %s against %s (the Cell Tracking Challenge's SEG)\n", pred_dir.c_str(), truth_dir.c_str());
  std::printf("%-8s %8s %8s %10s %8s %10s\n", "frame", "cells", "matched", "predicted", "SEG", "pixel IoU");
  for (const auto& f : s.frames)
    std::printf("%-8s %8lld %8lld %10lld %8.4f %10.4f%s\n", f.name.c_str(), static_cast<long long>(f.objects),
                static_cast<long long>(f.matched), static_cast<long long>(f.predicted), f.seg(), f.iou(),
                f.partial ? "  (partially annotated: not in the pooled IoU)" : "");
  std::printf("%-8s %8lld %8lld %10lld %8.4f %10.4f\n", "all", static_cast<long long>(s.objects),
              static_cast<long long>(s.matched), static_cast<long long>(s.predicted), s.seg, s.iou);
  const std::string text = unet::cell_scores_to_json(s);
  std::cout << text << "\n";
  if (!json_path.empty()) write_json(json_path, text);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Score probability maps against ground truth (ISBI 2012 / CTC measures)"};
  std::string pred_dir, truth_dir, json_path;
  bool no_warping = false, cells = false, missing_as_empty = false;
  std::string partial = "auto";
  app.add_option("--pred", pred_dir, "folder of probability maps (float TIFF or PNG), or of maskTTT.tif instances")->required();
  app.add_option("--truth", truth_dir, "folder of ground-truth masks or instance labels (for --cells: <SS>_GT or its SEG folder)")->required();
  app.add_option("--json", json_path, "also write the JSON object to this file");
  app.add_flag("--no-warping", no_warping, "skip the (slow) warping error");
  app.add_flag("--cells", cells,
               "score instances (maskTTT.tif) against man_segTTT.tif with the Cell Tracking Challenge's SEG and the "
               "pixel IoU (the default when every image in --pred is a maskTTT.tif)");
  app.add_option("--partial", partial,
                 "--cells: partially annotated frames, left out of the pooled pixel IoU: auto (labelled area under a "
                 "third of the median), none, or a list such as 067")->capture_default_str();
  app.add_flag("--missing-as-empty", missing_as_empty,
               "--cells: score an annotated frame without a mask as an empty segmentation (default: leave it out)");
  CLI11_PARSE(app, argc, argv);

  try {
    if (cells || looks_like_ctc_results(pred_dir)) return evaluate_cells(pred_dir, truth_dir, json_path, partial, missing_as_empty);
    std::map<std::string, std::string> truth_by_stem;
    for (const auto& p : unet::list_image_files(truth_dir)) truth_by_stem[fs::path(p).stem().string()] = p;
    std::vector<unet::Image> maps;
    std::vector<unet::LabelImage> truth;
    std::vector<std::string> names;
    for (const auto& p : unet::list_image_files(pred_dir)) {
      const std::string stem = fs::path(p).stem().string();
      const auto it = truth_by_stem.find(stem);
      if (it == truth_by_stem.end()) {
        std::cerr << "skipping " << p << ": no ground truth named " << stem << ".* in " << truth_dir << "\n";
        continue;
      }
      std::vector<unet::Image> pred_pages = unet::read_image_stack(p), truth_pages = unet::read_image_stack(it->second);
      if (pred_pages.size() != truth_pages.size())
        throw unet::ShapeError(p + " has " + std::to_string(pred_pages.size()) + " page(s) but its ground truth " +
                               it->second + " has " + std::to_string(truth_pages.size()) + "; every page is scored");
      const int n = static_cast<int>(pred_pages.size());
      for (int i = 0; i < n; ++i) {
        const std::string where = n == 1 ? it->second : it->second + " page " + std::to_string(i);
        maps.push_back(std::move(pred_pages[i]));
        truth.push_back(unet::labels_from_image(truth_pages[i], unet::LabelKind::Auto, where));
        names.push_back(n == 1 ? stem : unet::page_name(stem, i, n));
      }
      truth_by_stem.erase(it);
    }
    if (!truth_by_stem.empty()) {
      std::string unscored;
      int listed = 0;
      for (const auto& [stem, p] : truth_by_stem)
        if (listed++ < 5) unscored += (unscored.empty() ? "" : ", ") + stem;
      std::cerr << "note: " << truth_by_stem.size() << " ground-truth file(s) in " << truth_dir
                << " have no prediction and are not scored (" << unscored << (listed > 5 ? ", ..." : "") << ")\n";
    }
    if (maps.empty()) {
      std::cerr << "error: no prediction in " << pred_dir << " has a ground truth of the same name in "
                << truth_dir << "\n";
      return 1;
    }
    unet::EvaluateOptions options;
    options.warping = !no_warping;
    const auto t0 = std::chrono::steady_clock::now();
    const unet::MeasureResult r = unet::evaluate_segmentation(maps, truth, options);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    std::printf("%zu slices, %lld pixels, scored in %.2f s\n", maps.size(),
                static_cast<long long>(r.pixels), seconds);
    std::printf("%-24s %12s %10s\n", "measure (error)", "value", "best th");
    auto row = [](const char* name, double v, double th) {
      std::printf("%-24s %12.6f %10.1f\n", name, v, th);
    };
    row("pixel_error", r.pixel_error, r.pixel.best_threshold);
    row("rand_error", r.rand_error, r.rand.best_threshold);
    row("vinfo_error", r.vinfo_error, r.vinfo.best_threshold);
    row("vrand_thinned_error", r.vrand_thinned_error, r.vrand_thinned.best_threshold);
    row("vinfo_thinned_error", r.vinfo_thinned_error, r.vinfo_thinned.best_threshold);
    row("warping_error", r.warping_error, r.warping.best_threshold);
    row("warping_error_classic", r.warping_error_classic, r.warping_classic.best_threshold);
    row("iou", r.iou, options.iou_threshold);
    row("seg", r.seg, r.seg_curve.best_threshold);
    row("vinfo_error_pooled", r.vinfo_error_pooled, r.vinfo_pooled.best_threshold);
    std::printf("The ISBI 2012 challenge's final measures are V_rand and V_info after border thinning: "
                "scores %.6f and %.6f (1 - the thinned errors). vinfo_error_pooled pools all slices into "
                "one table (not a challenge measure; what this program reported as V_info before issue 16).\n",
                1.0 - r.vrand_thinned_error, 1.0 - r.vinfo_thinned_error);
    if (r.slices_without_foreground > 0)
      std::printf("warning: %d ground-truth slice(s) have no foreground; the challenge's code scores such a "
                  "slice 0 in every per-slice average and sets the pooled Rand F-score to 0\n",
                  r.slices_without_foreground);

    const std::string text = unet::measures_to_json(r, options, names);
    std::cout << text << "\n";
    if (!json_path.empty()) write_json(json_path, text);
  } catch (const unet::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
