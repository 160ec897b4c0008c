// unet/metrics_json.cpp — the measures as JSON, shared by examples/evaluate and train_em so both
// write the same keys.
#include <cmath>
#include <nlohmann/json.hpp>

#include "unet/metrics.h"

namespace unet {
namespace {
nlohmann::ordered_json number(double v) { return std::isnan(v) ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(v); }
}  // namespace

std::string measures_to_json(const MeasureResult& r, const EvaluateOptions& options,
                             const std::vector<std::string>& slice_names, int indent) {
  nlohmann::ordered_json j;
  j["pixel_error"] = number(r.pixel_error);
  j["rand_error"] = number(r.rand_error);
  j["vinfo_error"] = number(r.vinfo_error);
  j["warping_error"] = number(r.warping_error);
  j["warping_error_classic"] = number(r.warping_error_classic);
  j["iou"] = number(r.iou);
  j["seg"] = number(r.seg);
  const auto warping_threshold = [&](double t) { return options.warping ? nlohmann::ordered_json(t) : nlohmann::ordered_json(nullptr); };
  j["best_threshold"] = {{"pixel_error", r.pixel.best_threshold},
                         {"rand_error", r.rand.best_threshold},
                         {"vinfo_error", r.vinfo.best_threshold},
                         {"warping_error", warping_threshold(r.warping.best_threshold)},
                         {"warping_error_classic", warping_threshold(r.warping_classic.best_threshold)},
                         {"iou", options.iou_threshold},
                         {"seg", r.seg_curve.best_threshold}};
  if (!slice_names.empty()) j["slices"] = slice_names;
  j["pixels"] = r.pixels;
  j["thresholds"] = r.thresholds;
  nlohmann::ordered_json per;
  const auto curve = [&](const char* key, const MeasureCurve& c) {
    per[key] = nlohmann::ordered_json::array();
    for (double v : c.values) per[key].push_back(number(v));
  };
  curve("pixel_error", r.pixel);
  curve("rand_error", r.rand);
  curve("vinfo_error", r.vinfo);
  curve("warping_error", r.warping);
  curve("warping_error_classic", r.warping_classic);
  curve("seg", r.seg_curve);
  j["per_threshold"] = per;
  return j.dump(indent);
}

}  // namespace unet
