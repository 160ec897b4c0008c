// examples/evaluate.cpp — scores probability maps against ground truth with the challenges'
// measures (unet/metrics.h) and prints a table and a JSON object.
//
//   evaluate --pred DIR --truth DIR [--json FILE] [--no-warping]
//
// Files are paired by name stem (pred/07.tif <-> truth/07.png). Predictions: float TIFF in
// [0, 1] or 8/16-bit PNG/TIFF (scaled to [0, 1]); 1 = cell interior. Ground truth: a binary
// mask (255 = interior, 0 = membrane; instances = 4-connected components) or an instance label
// image (CTC man_seg, ids > 0).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "core/error.h"
#include "program.h"
#include "unet/atomic_file.h"
#include "unet/dataset.h"
#include "unet/image_io.h"
#include "unet/metrics.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  CLI::App app{"Score probability maps against ground truth (ISBI 2012 / CTC measures)"};
  std::string pred_dir, truth_dir, json_path;
  bool no_warping = false;
  app.add_option("--pred", pred_dir, "folder of probability maps (float TIFF or PNG)")->required();
  app.add_option("--truth", truth_dir, "folder of ground-truth masks or instance labels")->required();
  app.add_option("--json", json_path, "also write the JSON object to this file");
  app.add_flag("--no-warping", no_warping, "skip the (slow) warping error");
  return unet::examples::run_program("evaluate", app, argc, argv, [&] {
    std::map<std::string, std::string> truth_by_stem;
    for (const auto& p : unet::list_image_files(truth_dir)) truth_by_stem[fs::path(p).stem().string()] = p;
    std::vector<unet::Image> maps;
    std::vector<unet::LabelImage> truth;
    std::vector<std::string> names;
    for (const auto& p : unet::list_image_files(pred_dir)) {
      const std::string stem = fs::path(p).stem().string();
      const auto it = truth_by_stem.find(stem);
      if (it == truth_by_stem.end()) {  // a note, not an error: stderr is for the one error line
        std::printf("skipping %s: no ground truth named %s.* in %s\n", p.c_str(), stem.c_str(), truth_dir.c_str());
        continue;
      }
      maps.push_back(unet::read_image(p));
      truth.push_back(unet::labels_from_image(unet::read_image(it->second), unet::LabelKind::Auto, it->second));
      if (maps.back().width != truth.back().width || maps.back().height != truth.back().height) {
        throw unet::ShapeError(p + " is " + std::to_string(maps.back().width) + "x" + std::to_string(maps.back().height) +
                               " but its ground truth " + it->second + " is " + std::to_string(truth.back().width) + "x" +
                               std::to_string(truth.back().height) + "; a prediction must have its ground truth's size");
      }
      names.push_back(stem);
    }
    if (maps.empty()) {
      throw unet::IOError("no prediction in " + pred_dir + " has a ground truth of the same name in " + truth_dir);
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
    if (!json_path.empty()) unet::write_file_atomically(json_path, text + "\n");
    return 0;
  });
}
