// examples/train_em.cpp — trains a U-Net on the ISBI 2012 EM data that the repository ships,
// then segments the validation slices and scores them with the challenge's measures.
//
//   train_em [--data DIR] [--out DIR] [--device auto|cpu|cuda] [--iterations N] [--minutes M]
//            [--base-channels C] [--tile S] [--seed K] [--lr LR] [--resume CKPT] ...
//
// Writes OUT/model.safetensors (weights — the moving average of the iterates by default —, the
// SGD iterate, momentum, configuration, training state),
// OUT/metrics.json (the keys of examples/evaluate), OUT/val/NN.tif (float probability of
// "cell interior"), OUT/val/NN_overlay.png, OUT/loss.png, OUT/log.jsonl.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/parallel.h"
#include "unet/atomic_file.h"
#include "program.h"
#include "progress.h"
#include "unet/dataset.h"
#include "unet/image_io.h"
#include "unet/inference.h"
#include "unet/metrics.h"
#include "unet/trainer.h"
#include "unet/visualize.h"

namespace fs = std::filesystem;
using namespace unet;

namespace {

struct Args {
  std::string data, out = "out/train_em", device = "auto", resume;
  int64_t iterations = 0, base_channels = 0, tile = 0, checkpoint_every = 500, val_every = 0, warmup = 0, batch = 1;
  double minutes = -1, lr = 0.001, dropout = 0.5, cooldown = 0.0, weight_average = 0.998;
  std::string loss_mean = "weights", head_init = "zero", input_norm = "none";
  uint64_t seed = 1;
  int threads = 0, first_val = 20;
  bool no_augment = false, no_tta = false;
};

std::string default_data_dir() {
  if (fs::exists("data/isbi2012/train/images")) return "data/isbi2012";
  return std::string(UNET_SOURCE_DIR) + "/data/isbi2012";
}

Image probability_image(const Tensor& probs) {  // channel 1 of [K, H, W]
  Image img = make_image(static_cast<int>(probs.dim(2)), static_cast<int>(probs.dim(1)), 1, SampleFormat::F32);
  const float* p = probs.data<float>() + probs.dim(1) * probs.dim(2);
  std::copy_n(p, img.pixels.size(), img.pixels.begin());
  return img;
}

void append_jsonl(const fs::path& path, const nlohmann::json& j) {
  std::ofstream out(path, std::ios::app);
  out << j.dump() << "\n";
  out.close();
  if (!out) UNET_THROW(IOError, "cannot append to '", path.string(), "': ", std::strerror(errno));
}

// Segments the validation slices (overlap-tile, optional 8-fold TTA) and scores them. With
// `write_dir` set, also writes each probability map (float TIFF) and overlay (PNG) there.
MeasureResult score_validation(UNet& model, const std::vector<Sample>& val, bool tta,
                               const fs::path* write_dir) {
  std::vector<Image> maps;
  std::vector<LabelImage> truths;
  examples::Progress vp("segment", static_cast<int64_t>(val.size()));
  for (size_t i = 0; i < val.size(); ++i) {
    const Image grey = normalised(val[i].image);
    const Tensor image = Tensor::from_vector(to_planar(grey), Shape{grey.channels, grey.height, grey.width});
    const Image prob = probability_image(segment_image(model, image, {0, tta}));
    if (write_dir) {
      write_tiff((*write_dir / (val[i].name + ".tif")).string(), prob);
      write_png((*write_dir / (val[i].name + "_overlay.png")).string(),
                segmentation_overlay(grey, prob, &val[i].labels));
    }
    maps.push_back(prob);
    truths.push_back(val[i].labels);
    vp.update(static_cast<int64_t>(i + 1), val[i].name);
  }
  vp.finish();
  return evaluate_segmentation(maps, truths);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"Train a U-Net on ISBI 2012 EM slices, then segment and score the validation slices"};
  app.add_option("--data", a.data, "dataset folder with train/images and train/labels (default: the shipped ISBI 2012)");
  app.add_option("--out", a.out, "output folder")->capture_default_str();
  app.add_option("--device", a.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--iterations", a.iterations,
                 "training steps (default: 4000 on a GPU; on the CPU 100000, i.e. the time budget ends training)");
  app.add_option("--minutes", a.minutes, "stop training after this wall time (default: 15 on the CPU, none on a GPU; 0 = none)");
  app.add_option("--base-channels", a.base_channels, "channels of the first level (default: 64 on a GPU, 16 on the CPU)");
  app.add_option("--tile", a.tile, "input tile size (default: 572 on a GPU, 316 on the CPU)");
  app.add_option("--batch", a.batch, "tiles per step (the paper: 1 large tile)")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--seed", a.seed, "seed of initialisation, sampling, augmentation and dropout")->capture_default_str();
  app.add_option("--lr", a.lr, "SGD learning rate (momentum 0.99)")->capture_default_str();
  app.add_option("--warmup", a.warmup, "ramp the learning rate linearly over the first N steps (0: none)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--cooldown", a.cooldown,
                 "let the learning rate fall linearly to 0 over this last fraction of the run, counted in "
                 "steps or in this invocation's --minutes budget, whichever ends the run first (0: none, the paper)")
      ->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app.add_option("--weight-average", a.weight_average,
                 "decay of the moving average of the weights that is scored and saved as the model "
                 "(0: none, the paper: the last SGD iterate)")
      ->check(CLI::Range(0.0, 0.9999))->capture_default_str();
  app.add_option("--loss-mean", a.loss_mean,
                 "normalise the weighted loss by the sum of the weights or by the pixel count "
                 "(PyTorch's (w * ce).mean(): steps larger by the mean weight)")
      ->check(CLI::IsMember({"weights", "pixels"}))->capture_default_str();
  app.add_option("--head-init", a.head_init,
                 "initial weights of the final 1x1 classifier: zero (every pixel starts at p = 1/2) "
                 "or he (the paper's sqrt(2/N), like every other layer)")
      ->check(CLI::IsMember({"zero", "he"}))->capture_default_str();
  app.add_option("--input-norm", a.input_norm,
                 "what the network sees: none = the image in [0, 1] (the paper); data = the image standardised "
                 "with the training slices' mean and deviation, (x - mean) / std, kept in the saved model")
      ->check(CLI::IsMember({"data", "none"}))->capture_default_str();
  app.add_option("--dropout", a.dropout,
                 "dropout probability at the end of the contracting path (the paper's 0.5; 0 disables)")
      ->check(CLI::Range(0.0, 0.95))->capture_default_str();
  app.add_option("--resume", a.resume, "continue from a checkpoint written by train_em");
  app.add_option("--checkpoint-every", a.checkpoint_every, "write OUT/model.safetensors every N steps (0: only at the end)")->capture_default_str();
  app.add_option("--val-every", a.val_every, "score the validation slices every N steps (0: only at the end)")->capture_default_str();
  app.add_option("--first-val", a.first_val, "slices before this index train, the rest validate")->capture_default_str();
  app.add_option("--threads", a.threads, "CPU threads (default: all cores)");
  app.add_flag("--no-augment", a.no_augment, "train without augmentation");
  app.add_flag("--no-tta", a.no_tta,
               "score the final validation only on plain predictions (default: also on the average over the "
               "8 flips/rotations, the paper's test-time averaging; its maps are the ones written)");
  return examples::run_program("train_em", app, argc, argv, [&] {
    if (a.threads > 0) set_num_threads(a.threads);
    // ---- device and configuration ----------------------------------------------------------
    Device device = Device::cpu();
    std::string why;
    if (a.device == "auto") {
      if (cuda_available() && !cuda_rt::is_simulated()) {
        device = Device::cuda();
        why = "a GPU is present (" + cuda_description() + ")";
      } else {
        why = cuda_rt::is_simulated() ? "this build's CUDA device is the simulator (a test tool, far too slow to train)"
                                      : "no GPU is available (" + cuda_description() + ")";
      }
    } else {
      device = parse_device(a.device);
      why = "requested with --device";
    }
    const bool gpu_config = device.is_cuda() && !cuda_rt::is_simulated();
    UNetConfig config;
    config.base_channels = a.base_channels > 0 ? a.base_channels : (gpu_config ? 64 : 16);
    config.init_seed = a.seed;
    config.head_init = a.head_init == "zero" ? HeadInit::Zero : HeadInit::He;
    config.dropout = static_cast<float>(a.dropout);
    TrainOptions options;
    options.tile = a.tile > 0 ? a.tile : (gpu_config ? 572 : 316);
    options.seed = a.seed;
    options.batch = a.batch;
    options.sgd.learning_rate = static_cast<float>(a.lr);
    options.reduction = a.loss_mean == "pixels" ? LossReduction::PixelMean : LossReduction::WeightedMean;
    options.warmup_steps = a.warmup;
    options.cooldown = a.cooldown;
    options.weight_average = a.weight_average;
    options.augment = !a.no_augment;
    // On the CPU the 15-minute budget is the limit (a faster machine or build trains more steps);
    // the step count only bounds runs without a budget.
    const int64_t iterations = a.iterations > 0 ? a.iterations : (gpu_config ? 4000 : 100000);
    const double minutes = a.minutes >= 0 ? a.minutes : (gpu_config ? 0.0 : 15.0);
    options.total_steps = iterations;
    std::string schedule;  // how the rate moves, in words
    if (options.warmup_steps > 0) schedule += ", warm-up over " + std::to_string(options.warmup_steps) + " steps";
    if (options.cooldown > 0) {
      char buf[64];
      std::snprintf(buf, sizeof buf, ", falling to 0 over the last %g %% of the run", 100.0 * options.cooldown);
      schedule += buf;
    }
    if (schedule.empty()) schedule = ", constant";
    char averaging_buf[96];
    std::snprintf(averaging_buf, sizeof averaging_buf, "weights averaged with decay %g (scored and saved)",
                  options.weight_average);
    const std::string averaging = options.weight_average > 0 ? averaging_buf : "no weight averaging";
    std::printf("train_em: device %s — %s\n", device.str().c_str(), why.c_str());
    std::printf("train_em: %s configuration: base %lld channels, depth %d, tile %lld -> %lld, "
                "%lld steps%s, batch %lld, lr %g%s, momentum %g, loss normalised by the %s, %s head, dropout %g, %s, "
                "%d CPU threads\n",
                gpu_config ? "paper (GPU)" : "CPU", static_cast<long long>(config.base_channels), config.depth,
                static_cast<long long>(options.tile), static_cast<long long>(config.geometry().output_size(options.tile)),
                static_cast<long long>(iterations),
                minutes > 0 ? (" or " + std::to_string(static_cast<int>(minutes)) + " minutes, whichever comes first").c_str() : "",
                static_cast<long long>(options.batch),
                options.sgd.learning_rate, schedule.c_str(), options.sgd.momentum,
                a.loss_mean == "pixels" ? "pixel count" : "sum of the weights",
                a.head_init == "zero" ? "zero-initialised" : "He-initialised", config.dropout, averaging.c_str(),
                num_threads());

    // ---- data -------------------------------------------------------------------------------
    const std::string data = a.data.empty() ? default_data_dir() : a.data;
    const auto samples = load_folder_dataset(data + "/train/images", data + "/train/labels", LabelKind::BinaryMask);
    UNET_CHECK(a.first_val > 0 && a.first_val < static_cast<int>(samples.size()), ValueError,
               "--first-val ", a.first_val, " must leave training and validation slices (the data has ",
               samples.size(), ")");
    std::vector<TrainingSlice> train;
    std::vector<Sample> val(samples.begin() + a.first_val, samples.end());
    double weight_sum = 0.0, pixel_count = 0.0;
    for (int i = 0; i < a.first_val; ++i) {
      train.push_back(make_training_slice(samples[i]));
      for (float w : train.back().weights.to_vector()) weight_sum += w;
      pixel_count += static_cast<double>(train.back().weights.numel());
    }
    std::printf("train_em: %zu training slices (%s..%s), %zu validation slices (%s..%s) from %s\n",
                train.size(), samples.front().name.c_str(), samples[a.first_val - 1].name.c_str(), val.size(),
                val.front().name.c_str(), val.back().name.c_str(), data.c_str());
    std::printf("train_em: mean pixel weight of the training slices %.3f (w0 = 10, sigma = 5, balanced classes)\n",
                weight_sum / pixel_count);
    if (a.input_norm == "data") {
      const InputStatistics stats = input_statistics(train);
      config.input_mean = stats.mean;
      config.input_std = stats.std;
      std::printf("train_em: input standardised with the training slices' mean %.4f and deviation %.4f "
                  "(x -> (x - mean) / std)\n", stats.mean, stats.std);
    } else {
      std::printf("train_em: input in [0, 1], not standardised (--input-norm data would)\n");
    }

    // ---- training ---------------------------------------------------------------------------
    const fs::path model_path = fs::path(a.out) / "model.safetensors", log_path = fs::path(a.out) / "log.jsonl";
    UNet model(config, device);
    Trainer trainer(model, train, options);
    if (!a.resume.empty()) {
      trainer.resume(a.resume);
      std::printf("train_em: resumed from %s at step %lld\n", a.resume.c_str(), static_cast<long long>(trainer.steps_done()));
    }
    // The output folder is touched only once the inputs have been accepted.
    fs::create_directories(fs::path(a.out) / "val");
    if (a.resume.empty()) fs::remove(log_path);
    // Any failure from here on (a diverging loss, no memory, a full disk) says what is left.
    examples::failure_note() = a.resume.empty() ? "no checkpoint was written before"
                                                : "the last good checkpoint is " + a.resume + " (step " +
                                                      std::to_string(trainer.steps_done()) + ")";
    const auto save_checkpoint = [&] {
      trainer.save_checkpoint(model_path.string());
      examples::failure_note() = "the last good checkpoint is " + model_path.string() + " (step " +
                                 std::to_string(trainer.steps_done()) + ")";
    };
    std::printf("train_em: %lld parameters\n", static_cast<long long>(model.parameter_count()));
    std::vector<double> steps, losses;
    examples::Progress progress("train", iterations);
    if (minutes > 0) progress.set_time_limit(minutes * 60.0);
    // Moving average of the loss with bias correction (as Adam's moments): the first steps of
    // an untrained network have losses 10-20x the later ones, and a plain EMA seeded with them
    // would take hundreds of steps to forget them.
    double ema = 0.0, ema_weight = 0.0;
    bool stopped_by_time = false;
    while (trainer.steps_done() < iterations) {
      // How far the run is: in steps, or in the time budget when that ends it first.
      double run_progress = static_cast<double>(trainer.steps_done()) / static_cast<double>(iterations);
      if (minutes > 0) run_progress = std::max(run_progress, progress.elapsed() / (minutes * 60.0));
      const StepResult r = trainer.step(run_progress);
      steps.push_back(static_cast<double>(r.step));
      losses.push_back(r.loss);
      ema = 0.98 * ema + 0.02 * r.loss;
      ema_weight = 0.98 * ema_weight + 0.02;
      const double smoothed = ema / ema_weight;
      append_jsonl(log_path, {{"step", r.step}, {"loss", r.loss}, {"seconds", progress.elapsed()}});
      char detail[64];
      std::snprintf(detail, sizeof detail, "loss %.4f (avg %.4f)", r.loss, smoothed);
      progress.update(r.step, detail);
      if (a.checkpoint_every > 0 && r.step % a.checkpoint_every == 0) save_checkpoint();
      // (The last step is scored below anyway.)
      if (a.val_every > 0 && r.step % a.val_every == 0 && r.step < iterations) {
        progress.finish();
        const double t0 = progress.elapsed();
        const MeasureResult m = [&] {
          const auto scope = trainer.averaged_weights();
          return score_validation(model, val, false, nullptr);
        }();
        const double spent = progress.elapsed() - t0;
        append_jsonl(log_path, {{"step", r.step}, {"val", nlohmann::json::parse(measures_to_json(m))}});
        std::printf("train_em: step %lld: validation pixel error %.4f, Rand error %.4f, V_info error %.4f "
                    "(%.1f s, not counted in --minutes)\n",
                    static_cast<long long>(r.step), m.pixel_error, m.rand_error, m.vinfo_error, spent);
        progress.exclude_seconds(spent);
      }
      if (minutes > 0 && progress.elapsed() > minutes * 60.0) {
        stopped_by_time = true;
        break;
      }
    }
    progress.update(trainer.steps_done(), "done", true);
    progress.finish();
    const double train_seconds = progress.elapsed();
    save_checkpoint();
    std::printf("train_em: %lld steps in %s (%.3f s/step)%s; model written to %s\n",
                static_cast<long long>(steps.size()), examples::Progress::format_seconds(train_seconds).c_str(),
                steps.empty() ? 0.0 : train_seconds / steps.size(),
                stopped_by_time ? " — stopped by the time budget" : "", model_path.c_str());
    if (!losses.empty()) {
      PlotSeries raw{steps, losses, 170, 190, 230}, avg{steps, {}, 20, 60, 180};
      double e = 0.0, w = 0.0;
      for (double l : losses) {
        e = 0.98 * e + 0.02 * l;
        w = 0.98 * w + 0.02;
        avg.y.push_back(e / w);
      }
      write_png((fs::path(a.out) / "loss.png").string(), line_plot({raw, avg}, 800, 400, true));
    }

    // ---- validation -------------------------------------------------------------------------
    // Plain predictions first; then, unless --no-tta, the average over the 8 flips/rotations,
    // whose maps, overlays and metrics.json are the ones written.
    const fs::path val_dir = fs::path(a.out) / "val";
    auto print_scores = [&](const std::string& what, const MeasureResult& m) {
      std::printf("\nvalidation slices %s..%s (%d slices, %lld pixels), %s:\n", val.front().name.c_str(),
                  val.back().name.c_str(), m.slices, static_cast<long long>(m.pixels), what.c_str());
      std::printf("  pixel error    %.4f\n  Rand error     %.4f\n  V_info error   %.4f\n"
                  "  warping error  %.6f\n  IoU            %.4f\n",
                  m.pixel_error, m.rand_error, m.vinfo_error, m.warping_error, m.iou);
    };
    // The model's current weights on plain and (unless --no-tta) 8-fold averaged predictions,
    // logged as `key` and `key`_tta; maps and overlays go to write_dir (the TTA ones when both).
    struct Scores { MeasureResult plain; std::optional<MeasureResult> tta; };
    auto score = [&](const std::string& key, const fs::path* write_dir) {
      Scores s;
      s.plain = score_validation(model, val, false, a.no_tta ? write_dir : nullptr);
      append_jsonl(log_path, {{"step", trainer.steps_done()}, {key, nlohmann::json::parse(measures_to_json(s.plain))}});
      if (!a.no_tta) {
        s.tta = score_validation(model, val, true, write_dir);
        append_jsonl(log_path, {{"step", trainer.steps_done()}, {key + "_tta", nlohmann::json::parse(measures_to_json(*s.tta))}});
      }
      return s;
    };
    auto print_both = [&](const std::string& weights, const Scores& s, const char* tta_note) {
      print_scores(weights + "plain predictions", s.plain);
      if (s.tta) print_scores(weights + "averaged over the 8 flips/rotations" + tta_note, *s.tta);
    };
    // With weight averaging the last SGD iterate is scored too, so every run shows what the
    // averaging changed; the average is what is saved, written and put into metrics.json.
    std::optional<Scores> iterate;
    if (trainer.averaging()) iterate = score("val_iterate", nullptr);
    const auto averaged = trainer.averaged_weights();
    const Scores final_scores = score("val", &val_dir);
    write_file_atomically((fs::path(a.out) / "metrics.json").string(),
                          measures_to_json(final_scores.tta ? *final_scores.tta : final_scores.plain) + "\n");
    if (iterate) print_both("the last SGD iterate (weights not averaged), ", *iterate, "");
    print_both(trainer.averaging() ? "averaged weights, " : "", final_scores, " (metrics.json)");
    std::printf("\nwritten: %s/metrics.json, %s/val/*.tif (probability maps), %s/val/*_overlay.png "
                "(red: predicted membrane, green: disagreement with the truth), %s/loss.png, %s\n",
                a.out.c_str(), a.out.c_str(), a.out.c_str(), a.out.c_str(), model_path.c_str());
    return 0;
  });
}
