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
  // Key, curve, value: one list so that the scores, their best thresholds and the per-threshold
  // curves cannot name the measures differently.
  struct Measure { const char* key; const MeasureCurve* curve; double value; };
  const Measure measures[] = {
      {"pixel_error", &r.pixel, r.pixel_error},
      {"rand_error", &r.rand, r.rand_error},
      {"vinfo_error", &r.vinfo, r.vinfo_error},
      {"vrand_thinned_error", &r.vrand_thinned, r.vrand_thinned_error},
      {"vinfo_thinned_error", &r.vinfo_thinned, r.vinfo_thinned_error},
      {"warping_error", &r.warping, r.warping_error},
      {"warping_error_classic", &r.warping_classic, r.warping_error_classic},
      {"iou", nullptr, r.iou},
      {"seg", &r.seg_curve, r.seg},
      {"vinfo_error_pooled", &r.vinfo_pooled, r.vinfo_error_pooled},
  };
  nlohmann::ordered_json j, best, per;
  for (const Measure& m : measures) {
    j[m.key] = number(m.value);
    if (!m.curve) {
      best[m.key] = options.iou_threshold;
      continue;
    }
    best[m.key] = std::isnan(m.curve->best) ? nlohmann::ordered_json(nullptr)
                                            : nlohmann::ordered_json(m.curve->best_threshold);
    per[m.key] = nlohmann::ordered_json::array();
    for (double v : m.curve->values) per[m.key].push_back(number(v));
  }
  j["best_threshold"] = best;
  if (!slice_names.empty()) j["slices"] = slice_names;
  j["pixels"] = r.pixels;
  j["slices_without_foreground"] = r.slices_without_foreground;
  j["thresholds"] = r.thresholds;
  j["per_threshold"] = per;
  return j.dump(indent);
}

}  // namespace unet
