// unet/instance_choice.cpp — the grid of instance options scored with SEG on known frames.
#include "unet/instance_choice.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "unet/cell_metrics.h"

namespace unet {

InstanceSearch InstanceSearch::standard() {
  return {{0.5f, 0.4f, 0.6f, 0.3f, 0.7f, 0.2f, 0.8f, 0.9f}, {0.0f, 0.8f, 0.9f, 0.95f, 0.98f, 0.99f}};
}

InstanceChoice choose_instance_options(const std::vector<Image>& probabilities, const std::vector<LabelImage>& truths,
                                       const std::vector<bool>& partial, const InstanceOptions& base,
                                       const InstanceSearch& search) {
  UNET_CHECK(!probabilities.empty(), ValueError, "choose_instance_options: no frames to choose on");
  UNET_CHECK(truths.size() == probabilities.size() && (partial.empty() || partial.size() == probabilities.size()),
             ValueError, "choose_instance_options: ", probabilities.size(), " probability maps but ", truths.size(),
             " ground truths and ", partial.size(), " partial flags (give one per frame, or no flags)");
  // The base's own threshold and core level may be replaced by the search: check the rest here,
  // and each combination below.
  InstanceOptions fixed = base;
  fixed.core_threshold = 0.0f;
  fixed.validate();
  const std::vector<float> thresholds = search.thresholds.empty() ? std::vector<float>{base.threshold} : search.thresholds;
  const std::vector<float> cores =
      search.core_thresholds.empty() ? std::vector<float>{base.core_threshold} : search.core_thresholds;
  for (float t : thresholds)
    UNET_CHECK(t >= 0.0f && t < 1.0f, ValueError, "choose_instance_options: thresholds must lie in [0, 1), got ", t);
  for (float c : cores)
    UNET_CHECK(c == 0.0f || (c > 0.0f && c < 1.0f), ValueError,
               "choose_instance_options: core thresholds must be 0 (plain components) or in (0, 1), got ", c);

  InstanceChoice choice;
  for (float t : thresholds)
    for (float c : cores) {
      if (c != 0.0f && c <= t) continue;  // a core must lie inside the foreground
      InstanceOptions o = base;
      o.threshold = t;
      o.core_threshold = c;
      o.validate();
      std::vector<LabelImage> objects;
      for (const Image& p : probabilities) objects.push_back(instances_from_probability(p, o));
      const CellScores s = score_cells(objects, truths, {}, partial);
      choice.trials.push_back({o, s.seg, s.iou, s.objects, s.matched, s.predicted});
    }
  UNET_CHECK(!choice.trials.empty(), ValueError,
             "choose_instance_options: no core threshold lies above any threshold (nothing to try)");
  // Strictly greater: the first of equal scores stays.
  for (size_t i = 1; i < choice.trials.size(); ++i)
    if (choice.trials[i].seg > choice.trials[choice.best].seg) choice.best = i;
  choice.chosen = choice.trials[choice.best].options;
  return choice;
}

std::string InstanceChoice::to_json(const std::string& frames) const {
  auto decimal = [](double v, double scale) { return std::round(v * scale) / scale; };
  nlohmann::ordered_json trials_json = nlohmann::ordered_json::array();
  for (const InstanceTrial& t : trials)
    trials_json.push_back({{"threshold", decimal(t.options.threshold, 1e6)},
                           {"core_threshold", decimal(t.options.core_threshold, 1e6)},
                           {"seg", decimal(t.seg, 1e6)},
                           {"iou", decimal(t.iou, 1e6)},
                           {"objects", t.objects},
                           {"matched", t.matched},
                           {"predicted", t.predicted}});
  return nlohmann::ordered_json{{"chosen_on", frames},
                                {"chosen", nlohmann::ordered_json::parse(chosen.to_json())},
                                {"trials", trials_json}}
      .dump();
}

}  // namespace unet
