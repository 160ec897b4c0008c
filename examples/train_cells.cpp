// examples/train_cells.cpp — the U-Net paper's cell experiment on a Cell Tracking Challenge data
// set: trains on the annotated frames (touching cells separated by a carved border, eq. 2
// weights, partially annotated frames masked or excluded), then segments the validation frames
// into instances, writes them in the challenge's result layout and scores them with SEG. The
// threshold and core level of the instances are chosen on the training frames after training
// (unet/instance_choice.h) unless given.
//
//   train_cells --data <set> [--train 01,02] [--val-seq 02 | --val-frames 039,054] [--out DIR]
//               [--border R] [--partial auto|none|TTT,...] [--partial-mode mask|exclude|ignore]
//               [--min-size auto|N] [--no-fill-holes] [--threshold auto|X] [--core-threshold auto|X]
//               ... (and every train_em training flag)
//
// <set> holds <SS>/tTTT.tif and <SS>_GT/SEG/man_segTTT.tif (8- or 16-bit frames of any size).
// Writes OUT/model.safetensors (with the instance options segment --instances uses),
// OUT/metrics.json (SEG, pixel IoU, per frame), OUT/val/<SS>_RES/maskTTT.tif, OUT/val/<SS>_TTT.tif
// (probability), OUT/val/<SS>_TTT_overlay.png, OUT/targets/<SS>_TTT.png (the training targets'
// weight maps), OUT/loss.png, OUT/log.jsonl. The training run is unet::TrainingRun, shared with
// train_em.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "training_cli.h"
#include "unet/cell_data.h"
#include "unet/cell_targets.h"
#include "unet/cell_validation.h"
#include "unet/image_io.h"
#include "unet/instance_choice.h"
#include "unet/training_run.h"
#include "unet/weight_map.h"

namespace fs = std::filesystem;
using namespace unet;

namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::string item;
  for (char c : text + ",") {
    if (c == ',') {
      if (!item.empty()) items.push_back(item);
      item.clear();
    } else if (c != ' ') {
      item += c;
    }
  }
  return items;
}

std::string frame_list(const std::vector<CellFrame>& frames) {
  std::string s;
  for (const CellFrame& f : frames) s += (s.empty() ? "" : ", ") + f.id();
  return s;
}

// A quarter of the 5th-percentile cell area of the training frames: specks far smaller than any
// real cell, whatever the data set's scale (DIC-HeLa cells cover ~10000 px, PhC-C2DL-PSC ~150).
int64_t automatic_min_size(const std::vector<CellFrame>& frames) {
  std::vector<int64_t> areas;
  for (const CellFrame& f : frames) {
    std::map<int32_t, int64_t> area;
    for (int32_t v : f.sample.labels.labels)
      if (v > 0) ++area[v];
    for (const auto& [id, a] : area) areas.push_back(a);
  }
  if (areas.empty()) return 0;
  std::sort(areas.begin(), areas.end());
  return areas[areas.size() / 20] / 4;
}

std::string format_number(double v) {  // 0.95, not 0.950000
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

// "auto" (nullopt: chosen on the training frames after training) or a number in [0, 0.999].
std::optional<double> auto_or_number(const std::string& text, const char* flag) {
  constexpr double low = 0.0, high = 0.999;
  if (text == "auto") return std::nullopt;
  double v = 0.0;
  size_t used = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  UNET_CHECK(used == text.size() && used > 0 && v >= low && v <= high, ValueError, flag,
             " must be 'auto' or a number in [", low, ", ", high, "], got '", text, "'");
  return v;
}

// The same as a CLI11 check, so a bad value is refused before any data is read.
CLI::Validator auto_or_number_check(const char* flag) {
  return CLI::Validator(
      [flag](std::string& text) {
        try {
          auto_or_number(text, flag);
        } catch (const std::exception& e) {
          return std::string(e.what());
        }
        return std::string();
      },
      "auto|NUMBER");
}

}  // namespace

int main(int argc, char** argv) {
  examples::TrainingArgs a;
  a.out = "out/train_cells";
  a.input_norm = "data";
  // Standardised DIC/phase-contrast frames give gradients of norm 20-150 in the first steps; with
  // momentum 0.99 the unclipped steps kill ReLU channels until the network outputs a constant
  // (docs/cells.md, "Gradient clipping"). 1 bounds every step and keeps them alive.
  a.clip_grad_norm = 1.0;
  std::string data, train_seqs, val_seq, val_frames, partial = "auto", partial_mode = "mask", min_size = "auto";
  std::string threshold_text = "auto", cores_text = "auto";
  double border = 1.0, trusted_margin = -1.0, w0 = 10.0, sigma = 5.0, restore = 0.0;
  bool no_fill_holes = false;
  CLI::App app{"Train a U-Net on a Cell Tracking Challenge data set, then segment the validation frames into "
               "instances and score them with SEG"};
  app.add_option("--data", data, "the data set folder: <SS>/tTTT.tif and <SS>_GT/SEG/man_segTTT.tif")->required();
  app.add_option("--train", train_seqs, "training sequences, e.g. 01,02 (default: every annotated sequence that does not validate)");
  app.add_option("--val-seq", val_seq, "a whole sequence validates (the challenge's way: train on 01, score on 02)");
  app.add_option("--val-frames", val_frames,
                 "frames that validate instead of training, e.g. 039,054 or 01/039 (default: with one annotated "
                 "sequence its last 20 % of fully annotated frames, with several the last sequence)");
  app.add_option("--partial", partial,
                 "partially annotated frames: auto (frames whose labelled area is under a third of the median), "
                 "none, or a list such as 067,01/080")->capture_default_str();
  app.add_option("--partial-mode", partial_mode,
                 "what a partial frame teaches: mask (only its labelled cells and the background within "
                 "--trusted-margin px of them), exclude (nothing: the frame is left out), ignore (everything, "
                 "unlabelled cells as background)")
      ->check(CLI::IsMember({"mask", "exclude", "ignore"}))->capture_default_str();
  app.add_option("--trusted-margin", trusted_margin, "background trusted around a partial frame's cells, px (default: --border)");
  app.add_option("--border", border,
                 "separation border: pixels of a cell within this distance of another cell become background "
                 "(a gap of twice this between touching cells; 0 = none)")
      ->check(CLI::Range(0.0, 20.0))->capture_default_str();
  app.add_option("--w0", w0, "weight of the separation border term of eq. 2")->check(CLI::Range(0.0, 1000.0))->capture_default_str();
  app.add_option("--sigma", sigma, "width of the border term of eq. 2, px")->check(CLI::Range(0.1, 100.0))->capture_default_str();
  app.add_option("--threshold", threshold_text,
                 "instances: foreground = probability > threshold, or auto: chosen with the core threshold on the "
                 "training frames after training (of 0.2-0.9)")
      ->check(auto_or_number_check("--threshold"))->capture_default_str();
  app.add_option("--min-size", min_size,
                 "instances: remove objects smaller than this many pixels (auto: a quarter of the 5th-percentile "
                 "cell area of the training frames)")->capture_default_str();
  app.add_flag("--no-fill-holes", no_fill_holes, "instances: keep holes inside objects (default: filled)");
  app.add_option("--restore-border", restore,
                 "instances: give the pixels of gaps up to twice this wide back to the nearest object (0: off)")
      ->check(CLI::Range(0.0, 20.0))->capture_default_str();
  app.add_option("--core-threshold", cores_text,
                 "instances: grow objects from the components of probability > this (cells' cores, which touching "
                 "cells do not share) into the foreground, most probable pixels first (0: plain components; else "
                 "above --threshold), or auto: the level of 0, 0.8, 0.9, 0.95, 0.98, 0.99 with the best SEG on the "
                 "training frames after training (docs/cells.md)")
      ->check(auto_or_number_check("--core-threshold"))->capture_default_str();
  examples::add_training_options(app, a, "train_cells", "frames");
  return examples::run_program("train_cells", app, argc, argv, [&] {
    examples::TrainingSetup setup = examples::setup_training("train_cells", a);

    // ---- data -------------------------------------------------------------------------------
    CellSplitOptions split_options;
    split_options.train_sequences = split_list(train_seqs);
    split_options.validation_sequence = val_seq;
    split_options.validation_frames = split_list(val_frames);
    split_options.detect_partial = partial == "auto";
    if (partial != "auto" && partial != "none") split_options.partial_frames = split_list(partial);
    CellDataSplit split = load_cell_split(data, split_options);
    std::printf("train_cells: %zu training frame%s (%s), %zu validation frame%s (%s) from %s\n", split.train.size(),
                split.train.size() == 1 ? "" : "s", frame_list(split.train).c_str(), split.validation.size(),
                split.validation.size() == 1 ? "" : "s", frame_list(split.validation).c_str(), data.c_str());
    int max_width = 0, max_height = 0;
    bool sixteen_bit = false;
    for (const auto* side : {&split.train, &split.validation})
      for (const CellFrame& f : *side) {
        max_width = std::max(max_width, f.sample.image.width);
        max_height = std::max(max_height, f.sample.image.height);
        sixteen_bit = sixteen_bit || f.sample.image.format == SampleFormat::U16;
      }
    std::printf("train_cells: frames up to %dx%d, %s\n", max_width, max_height,
                sixteen_bit ? "16-bit (scaled by 65535, then standardised if --input-norm data)" : "8-bit");

    CellTargetOptions targets;
    targets.border_radius = static_cast<float>(border);
    targets.trusted_margin = static_cast<float>(trusted_margin >= 0 ? trusted_margin : border);
    targets.weights.w0 = static_cast<float>(w0);
    targets.weights.sigma = static_cast<float>(sigma);
    targets.partial = partial_mode == "mask" ? PartialAnnotation::Mask
                      : partial_mode == "exclude" ? PartialAnnotation::Exclude
                                                  : PartialAnnotation::Ignore;
    std::vector<std::string> partial_names;
    for (const CellFrame& f : split.train)
      if (f.partial) partial_names.push_back(f.id());
    if (partial_names.empty()) {
      std::printf("train_cells: every training frame is fully annotated (--partial %s)\n", partial.c_str());
    } else {
      std::string names;
      for (const auto& n : partial_names) names += (names.empty() ? "" : ", ") + n;
      char how[160];
      if (targets.partial == PartialAnnotation::Mask)
        std::snprintf(how, sizeof how, "masked: only the labelled cells and the background within %g px of them count in the loss",
                      targets.trusted_margin);
      else
        std::snprintf(how, sizeof how, "%s", targets.partial == PartialAnnotation::Exclude
                                                 ? "excluded from training"
                                                 : "trained as if complete (unlabelled cells taught as background)");
      std::printf("train_cells: partially annotated training frames %s (%s) — %s\n", names.c_str(),
                  split_options.detect_partial ? "found by their labelled area" : "named with --partial", how);
    }
    size_t cells = 0, pairs = 0;
    for (const CellFrame& f : split.train) {
      cells += static_cast<size_t>(count_objects(f.sample.labels));
      pairs += touching_pairs(f.sample.labels).size();
    }
    std::vector<TrainingSlice> train = make_cell_training_slices(split.train, targets);
    std::printf("train_cells: %zu cells in the training frames, %zu touching pairs separated by a border of "
                "radius %g px; eq. 2 weights w0 %g, sigma %g, class-balanced: mean pixel weight %.3f\n",
                cells, pairs, border, w0, sigma, mean_pixel_weight(train));

    const std::optional<double> threshold = auto_or_number(threshold_text, "--threshold");
    const std::optional<double> cores = auto_or_number(cores_text, "--core-threshold");
    InstanceOptions instances;
    // Until the choice after training, checkpoints and --val-every validations use 0.5 and 0.95 —
    // or, for a core level given, the largest threshold tried below it (cores lie inside the
    // foreground; none below it: refused, as nothing could be tried).
    instances.threshold = static_cast<float>(threshold.value_or(0.5));
    if (!threshold && cores && *cores > 0 && *cores <= 0.5) {
      float below = 0.0f;
      for (float t : InstanceSearch::standard().thresholds)
        if (t < *cores) below = std::max(below, t);
      UNET_CHECK(below > 0.0f, ValueError, "--core-threshold ", *cores, " with --threshold auto: no threshold tried (",
                 "0.2-0.9) lies below it; give a core level above 0.2, or a --threshold");
      instances.threshold = below;
    }
    instances.fill_holes = !no_fill_holes;
    instances.restore_border = static_cast<float>(restore);
    // (0.95 only where it lies above a threshold given: cores are inside the foreground.)
    instances.core_threshold = static_cast<float>(cores.value_or(instances.threshold < 0.95f ? 0.95 : 0.0));
    if (min_size == "auto") {
      instances.min_size = automatic_min_size(split.train);
    } else {
      try {
        instances.min_size = std::stoll(min_size);
      } catch (const std::exception&) {
        UNET_THROW(ValueError, "--min-size must be 'auto' or a number of pixels, got '", min_size, "'");
      }
    }
    instances.validate();
    char restored[64] = "";
    if (restore > 0) std::snprintf(restored, sizeof restored, ", gaps up to %g px given back", 2 * restore);
    const std::string threshold_words = threshold ? format_number(*threshold) : "a threshold";
    std::string grown;
    if (!cores) grown = " grown from cores of probability > a level";
    else if (*cores > 0) grown = " grown from cores of probability > " + format_number(*cores);
    std::printf("train_cells: instances = 4-connected components of probability > %s%s, objects under %lld px "
                "removed, holes %s%s\n", threshold_words.c_str(), grown.c_str(), static_cast<long long>(instances.min_size),
                instances.fill_holes ? "filled" : "kept", restored);
    if (!threshold || !cores)
      std::printf("train_cells: %s chosen after training by SEG on the training frames (until then %g and %g)\n",
                  !threshold && !cores ? "threshold and core level" : threshold ? "core level" : "threshold",
                  instances.threshold, instances.core_threshold);
    examples::apply_input_norm("train_cells", a, "frames", train, setup.config);

    // The training weight maps, written once the run has accepted its inputs (under mpirun, by rank 0).
    std::vector<std::pair<std::string, Image>> target_pictures;
    if (!a.out.empty() && setup.job->is_root()) {
      for (const TrainingSlice& s : train) {
        std::string stem = s.name;
        std::replace(stem.begin(), stem.end(), '/', '_');
        target_pictures.emplace_back(stem + ".png", heat_map(s.weights.to_vector(), static_cast<int>(s.weights.dim(1)),
                                                             static_cast<int>(s.weights.dim(0))));
      }
    }
    const auto write_targets = [&] {
      if (target_pictures.empty()) return;
      const fs::path dir = fs::path(a.out) / "targets";
      fs::create_directories(dir);
      for (const auto& [name, picture] : target_pictures) write_png((dir / name).string(), picture);
    };
    setup.run.checkpoint_metadata["unetcore.instances"] = instances.to_json();
    setup.run.checkpoint_metadata["unetcore.cell_targets"] =
        nlohmann::ordered_json{{"border_radius", border}, {"w0", w0}, {"sigma", sigma}, {"partial", partial_mode},
                               {"trusted_margin", targets.trusted_margin}}
            .dump();

    // ---- training and validation ------------------------------------------------------------
    auto validation = std::make_shared<CellValidation>(std::move(split.validation), instances);
    // After training, on rank 0: the options left on auto are chosen by SEG on the training frames
    // (with the weights the model is saved with, on the predictions the final validation uses),
    // then kept in the model file and used by the final validation.
    const auto choose_instances = [&](TrainingRun& run) {
      if (threshold && cores) return;
      InstanceSearch search;
      if (!threshold) search.thresholds = InstanceSearch::standard().thresholds;
      if (!cores) search.core_thresholds = InstanceSearch::standard().core_thresholds;
      std::vector<Image> probabilities;
      std::vector<LabelImage> truths;
      std::vector<bool> partial_flags;
      {
        examples::Progress progress("choose", static_cast<int64_t>(split.train.size()));
        const auto averaged = run.trainer().averaged_weights();
        for (const CellFrame& f : split.train) {
          probabilities.push_back(cell_probability(run.model(), f, run.options().tta));
          truths.push_back(f.sample.labels);
          partial_flags.push_back(f.partial);
          progress.update(static_cast<int64_t>(probabilities.size()), f.id());
        }
        progress.finish();
      }
      const InstanceChoice choice = choose_instance_options(probabilities, truths, partial_flags, instances, search);
      const std::string on = std::to_string(split.train.size()) + " training frames" +
                             (run.options().tta ? ", averaged over the 8 flips/rotations" : "");
      std::printf("train_cells: instance options tried on the %s:\n  %9s %14s %8s %9s\n", on.c_str(), "threshold",
                  "core threshold", "SEG", "matched");
      for (size_t i = 0; i < choice.trials.size(); ++i) {
        const InstanceTrial& t = choice.trials[i];
        std::printf("  %9g %14s %8.4f %4lld/%-4lld%s\n", t.options.threshold,
                    t.options.core_threshold > 0 ? format_number(t.options.core_threshold).c_str() : "- (plain)", t.seg,
                    static_cast<long long>(t.matched), static_cast<long long>(t.objects), i == choice.best ? "  <- chosen" : "");
      }
      validation->set_instance_options(choice.chosen, choice.to_json(on));
      run.update_checkpoint_metadata("unetcore.instances", choice.chosen.to_json());
    };
    const std::string& out = a.out;
    return examples::train_and_report(
        "train_cells", setup, std::move(train), validation,
        out + "/metrics.json (SEG, pixel IoU, per frame), " + out + "/val/<SS>_RES/maskTTT.tif (instances, the "
        "challenge's layout), " + out + "/val/*_overlay.png (instances in colour, the truth outlined in white), " + out +
            "/val/*.tif (probabilities), " + out + "/targets/*.png (training weight maps), " + out + "/loss.png, " +
            (fs::path(out) / "model.safetensors").string(),
        write_targets, choose_instances);
  });  // (a failure under mpirun ends every rank: program.h)
}
