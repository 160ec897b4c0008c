// examples/training_cli.h — what train_em and train_cells share on the command line: the
// training flags, the configuration they resolve to (printed), and driving a unet::TrainingRun
// with a progress display, the summary and the final scores. The training itself is the
// library's (unet/training_run.h); this header only talks. Header-only like progress.h, because
// every examples/*.cpp is one program.
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "job_cli.h"
#include "program.h"
#include "progress.h"
#include "unet/training_run.h"
#include "unet/training_settings.h"

namespace unet::examples {

// The settings (unet/training_settings.h) plus what only a process decides.
struct TrainingArgs : TrainingSettings {
  int threads = 0;
};

// The flags both programs take (their defaults are whatever `a` holds). `items` names what is
// trained on and validated ("slices", "frames").
inline void add_training_options(CLI::App& app, TrainingArgs& a, const std::string& program, const std::string& items) {
  app.add_option("--out", a.out, "output folder")->capture_default_str();
  app.add_option("--device", a.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--precision", a.precision,
                 "convolution arithmetic: auto (tf32 on a GPU, fp32 on the CPU), fp32, tf32 or bf16; "
                 "the CPU computes in fp32 only")
      ->capture_default_str();
  app.add_option("--iterations", a.iterations,
                 "training steps (default: 4000 on a GPU; on the CPU 100000, i.e. the time budget ends training)");
  app.add_option("--minutes", a.minutes, "stop training after this wall time (default: 15 on the CPU, none on a GPU; 0 = none)");
  app.add_option("--base-channels", a.base_channels, "channels of the first level (default: 64 on a GPU, 16 on the CPU)");
  app.add_option("--tile", a.tile, "input tile size (default: 572 on a GPU, 316 on the CPU)");
  app.add_option("--batch", a.batch, "tiles per step, per rank under mpirun/srun (the paper: 1 large tile)")
      ->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--micro-batch", a.micro_batch,
                 "tiles per forward/backward pass, accumulating the batch's gradients over passes (less memory; "
                 "0: the whole batch in one pass)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
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
  app.add_option("--clip-grad-norm", a.clip_grad_norm,
                 "scale a step's gradient down to this L2 norm when it is larger, before it enters the momentum "
                 "(0: no clipping, the paper); log.jsonl has every step's norm")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
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
                 "with the training " + items + "' mean and deviation, (x - mean) / std, kept in the saved model")
      ->check(CLI::IsMember({"data", "none"}))->capture_default_str();
  app.add_option("--dropout", a.dropout,
                 "dropout probability at the end of the contracting path (the paper's 0.5; 0 disables)")
      ->check(CLI::Range(0.0, 0.95))->capture_default_str();
  app.add_option("--resume", a.resume, "continue from a checkpoint written by " + program);
  app.add_option("--checkpoint-every", a.checkpoint_every, "write OUT/model.safetensors every N steps (0: only at the end)")->capture_default_str();
  app.add_option("--val-every", a.val_every, "score the validation " + items + " every N steps (0: only at the end)")->capture_default_str();
  app.add_option("--threads", a.threads, "CPU threads (default: all cores)");
  app.add_flag_callback("--no-augment", [&a] { a.augment = false; }, "train without augmentation");
  app.add_flag_callback("--no-tta", [&a] { a.tta = false; },
               "score the final validation only on plain predictions (default: also on the average over the "
               "8 flips/rotations, the paper's test-time averaging; its maps are the ones written)");
}

// Everything the flags decide before the data is read.
struct TrainingSetup {
  Communicator* job = nullptr;  // the ranks training together (one process without a launcher)
  DeviceChoice device;
  UNetConfig config;
  TrainOptions options;
  RunOptions run;
};

// Joins the job (job_cli.h), applies --threads, chooses the device and its configuration, and
// prints them.
inline TrainingSetup setup_training(const char* program, const TrainingArgs& a) {
  TrainingSetup s;
  s.job = &join_job();  // first: under MPI it picks this rank's GPU before anything is allocated
  if (a.threads > 0) set_num_threads(a.threads);
  TrainingPlan plan = plan_training(a);
  s.device = plan.device;
  s.config = plan.config;
  s.options = plan.options;
  s.run = plan.run;
  const TrainOptions& o = s.options;
  const RunOptions& r = s.run;

  std::string schedule;  // how the rate moves, in words
  if (o.warmup_steps > 0) schedule += ", warm-up over " + std::to_string(o.warmup_steps) + " steps";
  if (o.cooldown > 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, ", falling to 0 over the last %g %% of the run", 100.0 * o.cooldown);
    schedule += buf;
  }
  if (schedule.empty()) schedule = ", constant";
  char averaging_buf[96];
  std::snprintf(averaging_buf, sizeof averaging_buf, "weights averaged with decay %g (scored and saved)", o.weight_average);
  const std::string averaging = o.weight_average > 0 ? averaging_buf : "no weight averaging";
  char clipping[64] = "";
  if (o.max_grad_norm > 0) std::snprintf(clipping, sizeof clipping, ", gradient norm clipped at %g", o.max_grad_norm);
  std::string batch = std::to_string(o.batch);
  if (s.job->size() > 1)
    batch += " per rank x " + std::to_string(s.job->size()) + " ranks = " + std::to_string(o.batch * s.job->size()) +
             " tiles per step (the learning rate applies to their mean gradient)";
  if (o.micro_batch > 0 && o.micro_batch < o.batch) batch += " in passes of " + std::to_string(o.micro_batch);
  if (s.job->size() > 1) std::printf("%s: job of %s\n", program, s.job->describe().c_str());
  std::printf("%s: device %s — %s\n", program, s.device.device.str().c_str(), s.device.reason.c_str());
  std::printf("%s: %s configuration: base %lld channels, depth %d, tile %lld -> %lld, "
              "%lld steps%s, batch %s, lr %g%s, momentum %g%s, loss normalised by the %s, %s head, dropout %g, %s, "
              "%d CPU threads\n",
              program, s.device.paper_configuration ? "paper (GPU)" : "CPU", static_cast<long long>(s.config.base_channels),
              s.config.depth, static_cast<long long>(o.tile), static_cast<long long>(s.config.geometry().output_size(o.tile)),
              static_cast<long long>(r.iterations),
              r.minutes > 0 ? (" or " + std::to_string(static_cast<int>(r.minutes)) + " minutes, whichever comes first").c_str() : "",
              batch.c_str(), o.sgd.learning_rate, schedule.c_str(), o.sgd.momentum, clipping,
              a.loss_mean == "pixels" ? "pixel count" : "sum of the weights",
              a.head_init == "zero" ? "zero-initialised" : "He-initialised", s.config.dropout, averaging.c_str(),
              num_threads());
  std::printf("%s: convolutions in %s%s\n", program, precision_name(r.precision),
              s.device.device.is_cuda() ? "" : " (the CPU backend's only precision)");
  return s;
}

// --input-norm: with "data" the training images' mean and deviation go into the configuration.
inline void apply_input_norm(const char* program, const TrainingArgs& a, const std::string& items,
                             const std::vector<TrainingSlice>& train, UNetConfig& config) {
  if (const auto stats = standardise_input(a, train, config))
    std::printf("%s: input standardised with the training %s' mean %.4f and deviation %.4f "
                "(x -> (x - mean) / std)\n", program, items.c_str(), stats->mean, stats->std);
  else
    std::printf("%s: input in [0, 1], not standardised (--input-norm data would)\n", program);
}

// Builds the run, calls `accepted` (the program's own outputs: the run has accepted every input,
// so a refused run leaves the output folder untouched), trains with a progress bar, prints the
// summary and the final validation, and ends with `written` (what the run wrote, in words).
// `trained` runs on rank 0 between training and the final validation (train_cells chooses its
// instance options there). Returns 0; failures are exceptions, which examples/program.h turns into one line and an exit
// status (3 for a NaN/Inf loss).
inline int train_and_report(const char* program, TrainingSetup setup, std::vector<TrainingSlice> train,
                            std::shared_ptr<const Validation> validation, const std::string& written,
                            const std::function<void()>& accepted = {},
                            const std::function<void(TrainingRun&)>& trained = {}) {
  TrainingRun run(setup.config, setup.device.device, std::move(train), validation, setup.options, setup.run,
                  *setup.job);
  if (accepted) accepted();
  if (run.resumed())
    std::printf("%s: resumed from %s at step %lld\n", program, setup.run.resume.c_str(),
                static_cast<long long>(run.trainer().steps_done()));
  std::printf("%s: %lld parameters\n", program, static_cast<long long>(run.model().parameter_count()));

  Progress progress("train", setup.run.iterations);
  if (setup.run.minutes > 0) progress.set_time_limit(setup.run.minutes * 60.0);
  std::optional<Progress> items;
  RunObserver observer;
  observer.step = [&](const StepEvent& e) {
    char detail[64];
    std::snprintf(detail, sizeof detail, "loss %.4f (avg %.4f)", e.loss, e.smoothed_loss);
    progress.update(e.step, detail);
  };
  observer.validation_begins = [&](int64_t) { progress.finish(); };
  observer.validation_progress = [&](int64_t done, int64_t total, const std::string& name) {
    if (done == 0) {
      items.emplace("segment", total);
      return;
    }
    items->update(done, name);
    if (done == total) items->finish();
  };
  observer.validation_done = [&](const ValidationEvent& e) {
    std::string line;
    for (const Measure& m : e.report.measures) {
      if (!m.headline) continue;
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s%s %.*f", line.empty() ? "" : ", ", m.name.c_str(), m.decimals, m.value);
      line += buf;
    }
    std::printf("%s: step %lld: validation %s (%.1f s, not counted in --minutes)\n", program,
                static_cast<long long>(e.step), line.c_str(), e.seconds);
    progress.exclude_seconds(e.seconds);
  };

  // A failure from here on (a diverging loss, no memory, a full disk) ends the program through
  // examples/program.h, whose one error line then says which checkpoint is left.
  failure_note() = run.resumed() ? "the last good checkpoint is " + setup.run.resume + " (step " +
                                       std::to_string(run.trainer().steps_done()) + ")"
                                 : "no checkpoint was written before";
  observer.checkpoint_saved = [](int64_t step, const std::string& path) {
    failure_note() = "the last good checkpoint is " + path + " (step " + std::to_string(step) + ")";
  };
  const TrainSummary summary = run.train(observer);
  progress.update(summary.last_step, "done", true);
  progress.finish();
  std::printf("%s: %lld steps in %s (%.3f s/step)%s; model written to %s\n", program,
              static_cast<long long>(summary.steps), Progress::format_seconds(summary.seconds).c_str(),
              summary.steps == 0 ? 0.0 : summary.seconds / static_cast<double>(summary.steps),
              summary.stopped_by_time ? " — stopped by the time budget" : "", run.model_path().c_str());
  if (const GradientReducer::Stats* c = run.trainer().communication())
    std::printf("%s: gradient sums of the last step: %.1f MB in %lld buckets, started %.1f ms before the end of the "
                "backward pass, %.1f ms waited for after it\n",
                program, c->bytes / 1e6, static_cast<long long>(c->buckets), 1e3 * c->overlapped_seconds,
                1e3 * c->exposed_seconds);
  if (!validation || !setup.job->is_root()) return 0;  // rank 0 validates
  if (trained) trained(run);

  // Plain predictions first; then, unless --no-tta, the average over the 8 flips/rotations,
  // whose outputs and metrics.json are the ones written.
  const FinalValidation scores = run.validate(observer);
  auto print_report = [&](const std::string& what, const ValidationReport& r) {
    std::printf("\n%s, %s:\n", validation->describe().c_str(), what.c_str());
    int width = 0;  // the values line up one space after the longest name
    for (const Measure& m : r.measures) width = std::max(width, static_cast<int>(m.name.size()) + 1);
    for (const Measure& m : r.measures)
      std::printf("  %-*s%.*f\n", width, m.name.c_str(), m.decimals, m.value);
  };
  auto print_pair = [&](const std::string& weights, const ValidationPair& p, const char* tta_note) {
    print_report(weights + "plain predictions", p.plain);
    if (p.tta) print_report(weights + "averaged over the 8 flips/rotations" + tta_note, *p.tta);
  };
  if (scores.iterate) print_pair("the last SGD iterate (weights not averaged), ", *scores.iterate, "");
  print_pair(run.trainer().averaging() ? "averaged weights, " : "", scores.model, " (metrics.json)");
  std::printf("\nwritten: %s\n", written.c_str());
  return 0;
}

}  // namespace unet::examples
