// unet/training_run.cpp — the training front-end: device choice, the loop with its budget,
// events, checkpoints, the log, the loss curve and the final validation.
#include "unet/training_run.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "unet/atomic_file.h"
#include "unet/image_io.h"
#include "unet/visualize.h"

namespace unet {
namespace {

namespace fs = std::filesystem;

// Wall time with pauses left out (validations during training do not count in the budget).
class Stopwatch {
 public:
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count() - excluded_; }
  void exclude(double s) { excluded_ += s; }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point start_ = Clock::now();
  double excluded_ = 0.0;
};

// Moving average of the loss with bias correction (as Adam's moments): the first steps of an
// untrained network have losses 10-20x the later ones, and a plain EMA seeded with them would
// take hundreds of steps to forget them.
class SmoothedLoss {
 public:
  double add(double loss) {
    ema_ = 0.98 * ema_ + 0.02 * loss;
    weight_ = 0.98 * weight_ + 0.02;
    return ema_ / weight_;
  }

 private:
  double ema_ = 0.0, weight_ = 0.0;
};

nlohmann::json parsed(const std::string& json) { return nlohmann::json::parse(json); }

// Rank 0's clock and any rank's stop request, known to every rank: the time budget, the
// cool-down's progress and a stop must be decided alike everywhere, or the ranks part ways.
struct Agreed {
  double seconds = 0.0;
  bool stop = false;
};
Agreed agree(Communicator& comm, double seconds, bool stop) {
  if (comm.size() == 1) return {seconds, stop};
  double values[2] = {comm.is_root() ? seconds : 0.0, stop ? 1.0 : 0.0};
  comm.sum(values, 2);
  return {values[0], values[1] > 0.0};
}

}  // namespace

DeviceChoice choose_device(const std::string& request) {
  DeviceChoice c;
  c.device = resolve_device(request);
  if (request != "auto")
    c.reason = "requested with --device";
  else if (c.device.is_cuda())
    c.reason = "a GPU is present (" + cuda_description() + ")";
  else
    c.reason = cuda_rt::is_simulated() ? "this build's CUDA device is the simulator (a test tool, far too slow to train)"
                                       : "no GPU is available (" + cuda_description() + ")";
  c.paper_configuration = c.device.is_cuda() && !cuda_rt::is_simulated();
  return c;
}

RunDefaults run_defaults(bool paper_configuration) {
  if (paper_configuration) return {64, 572, 4000, 0.0};
  return {16, 316, 100000, 15.0};
}

double mean_pixel_weight(const std::vector<TrainingSlice>& slices) {
  UNET_CHECK(!slices.empty(), ValueError, "mean_pixel_weight: no training slices");
  double weight_sum = 0.0, pixel_count = 0.0;
  for (const TrainingSlice& s : slices) {
    for (float w : s.weights.to_vector()) weight_sum += w;
    pixel_count += static_cast<double>(s.weights.numel());
  }
  return weight_sum / pixel_count;
}

TrainingRun::TrainingRun(const UNetConfig& config, Device device, std::vector<TrainingSlice> train,
                         std::shared_ptr<const Validation> validation, TrainOptions options, RunOptions run,
                         Communicator& comm)
    : validation_(std::move(validation)), run_(std::move(run)), comm_(comm) {
  UNET_CHECK(run_.iterations > 0, ValueError, "TrainingRun: iterations (the run's step limit) must be > 0, got ",
             run_.iterations);
  UNET_CHECK(run_.minutes >= 0.0, ValueError, "TrainingRun: minutes must be >= 0 (0 = no time budget), got ",
             run_.minutes);
  UNET_CHECK(run_.checkpoint_every >= 0 && run_.validate_every >= 0, ValueError,
             "TrainingRun: checkpoint_every and validate_every must be >= 0 (0 = only at the end), got ",
             run_.checkpoint_every, " and ", run_.validate_every);
  options.total_steps = run_.iterations;  // the cool-down's notion of the run's length
  model_ = std::make_unique<UNet>(config, device);
  model_->set_precision(run_.precision);
  trainer_ = std::make_unique<Trainer>(*model_, std::move(train), options, comm_);
  if (!run_.resume.empty()) trainer_->resume(run_.resume);
  // The output folder is touched only once everything above has been accepted, so a run refused
  // for its inputs leaves no trace there. Rank 0 writes for the job.
  if (!run_.out_dir.empty() && comm_.is_root()) {
    fs::create_directories(fs::path(run_.out_dir) / "val");
    if (run_.resume.empty()) fs::remove(fs::path(run_.out_dir) / "log.jsonl");
    // A killed run may have left half-written files that this one never writes again (resumed
    // with no steps left, it draws no loss curve): the folder is this run's now.
    for (const fs::path& folder : {fs::path(run_.out_dir), fs::path(run_.out_dir) / "val"})
      remove_stale_temporaries_in(folder.string());
  }
}

std::string TrainingRun::model_path() const {
  return run_.out_dir.empty() ? std::string() : (fs::path(run_.out_dir) / "model.safetensors").string();
}

void TrainingRun::log(const std::string& json_line) const {
  if (run_.out_dir.empty() || !comm_.is_root()) return;
  std::ofstream out(fs::path(run_.out_dir) / "log.jsonl", std::ios::app);
  out << json_line << "\n";
  out.close();  // the line reaches the file here, where a full disk shows
  UNET_CHECK(out.good(), IOError, (fs::path(run_.out_dir) / "log.jsonl").string(), ": cannot append to the log: ",
             describe_errno(errno));
}

TrainSummary TrainingRun::train(const RunObserver& observer) {
  TrainSummary summary;
  std::vector<double> steps;
  Stopwatch clock;
  SmoothedLoss smoothed;
  const double budget = run_.minutes * 60.0;
  const bool writes = !run_.out_dir.empty() && comm_.is_root();
  while (trainer_->steps_done() < run_.iterations) {
    // How far the run is, for the cool-down: in steps, or in the time budget when that ends it first.
    double progress = static_cast<double>(trainer_->steps_done()) / static_cast<double>(run_.iterations);
    if (budget > 0) progress = std::max(progress, agree(comm_, clock.seconds(), false).seconds / budget);
    const StepResult r = trainer_->step(progress);
    steps.push_back(static_cast<double>(r.step));
    summary.losses.push_back(r.loss);
    const StepEvent event{r.step, r.loss, smoothed.add(r.loss), clock.seconds(), r.grad_norm, r.clipped};
    nlohmann::json line{{"step", r.step}, {"loss", r.loss}, {"grad_norm", r.grad_norm}, {"seconds", event.seconds}};
    if (r.clipped) line["clipped"] = true;
    if (const GradientReducer::Stats* c = trainer_->communication()) {  // a job of several ranks
      line["gradient_sums_started_ms"] = 1e3 * c->overlapped_seconds;  // before the backward pass ended
      line["gradient_sums_waited_ms"] = 1e3 * c->exposed_seconds;      // after it
    }
    log(line.dump());
    if (observer.step) observer.step(event);
    if (run_.checkpoint_every > 0 && r.step % run_.checkpoint_every == 0 && writes) save_checkpoint(observer);
    // (The last step is validated by validate() anyway.) Rank 0 validates; the others wait.
    const bool validate_now =
        validation_ && run_.validate_every > 0 && r.step % run_.validate_every == 0 && r.step < run_.iterations;
    if (validate_now && !comm_.is_root()) comm_.barrier();
    if (validate_now && comm_.is_root()) {
      if (observer.validation_begins) observer.validation_begins(r.step);
      const double t0 = clock.seconds();
      ValidationEvent done;
      done.step = r.step;
      {
        const auto averaged = trainer_->averaged_weights();
        done.report = validation_->run(*model_, false, "", observer.validation_progress);
      }
      done.seconds = clock.seconds() - t0;
      log(nlohmann::json{{"step", r.step}, {"val", parsed(done.report.json)}}.dump());
      if (observer.validation_done) observer.validation_done(done);
      clock.exclude(done.seconds);
      comm_.barrier();
    }
    const Agreed now = agree(comm_, clock.seconds(), observer.stop_requested && observer.stop_requested());
    if (budget > 0 && now.seconds > budget) {
      summary.stopped_by_time = true;
      break;
    }
    if (now.stop) {
      summary.stopped_by_request = true;
      break;
    }
  }
  summary.seconds = clock.seconds();
  summary.steps = static_cast<int64_t>(steps.size());
  summary.last_step = trainer_->steps_done();
  if (writes) {
    save_checkpoint(observer);
    if (!steps.empty()) {
      PlotSeries raw{steps, summary.losses, 170, 190, 230}, avg{steps, {}, 20, 60, 180};
      SmoothedLoss s;
      for (double l : summary.losses) avg.y.push_back(s.add(l));
      write_png((fs::path(run_.out_dir) / "loss.png").string(), line_plot({raw, avg}, 800, 400, true));
    }
  }
  return summary;
}

void TrainingRun::save_checkpoint(const RunObserver& observer) {
  trainer_->save_checkpoint(model_path(), run_.checkpoint_metadata);
  if (observer.checkpoint_saved) observer.checkpoint_saved(trainer_->steps_done(), model_path());
}

void TrainingRun::update_checkpoint_metadata(const std::string& key, const std::string& value) {
  UNET_CHECK(!key.empty(), ValueError, "TrainingRun::update_checkpoint_metadata: the key is empty");
  run_.checkpoint_metadata[key] = value;
  if (!run_.out_dir.empty() && comm_.is_root()) trainer_->save_checkpoint(model_path(), run_.checkpoint_metadata);
}

ValidationPair TrainingRun::validate_pair(const std::string& key, const std::string& write_dir,
                                          const RunObserver& observer) {
  ValidationPair pair;
  pair.plain = validation_->run(*model_, false, run_.tta ? "" : write_dir, observer.validation_progress);
  log(nlohmann::json{{"step", trainer_->steps_done()}, {key, parsed(pair.plain.json)}}.dump());
  if (run_.tta) {
    pair.tta = validation_->run(*model_, true, write_dir, observer.validation_progress);
    log(nlohmann::json{{"step", trainer_->steps_done()}, {key + "_tta", parsed(pair.tta->json)}}.dump());
  }
  return pair;
}

FinalValidation TrainingRun::validate(const RunObserver& observer) {
  UNET_CHECK(validation_ != nullptr, ValueError, "TrainingRun::validate: this run has no validation set");
  FinalValidation result;
  if (!comm_.is_root()) return result;
  // With weight averaging the last SGD iterate is scored too, so every run shows what the
  // averaging changed; the average is what is saved, written and put into metrics.json.
  if (trainer_->averaging()) result.iterate = validate_pair("val_iterate", "", observer);
  const auto averaged = trainer_->averaged_weights();
  const std::string val_dir = run_.out_dir.empty() ? "" : (fs::path(run_.out_dir) / "val").string();
  result.model = validate_pair("val", val_dir, observer);
  if (!run_.out_dir.empty())
    write_file_atomically((fs::path(run_.out_dir) / "metrics.json").string(), result.model.best().json + "\n");
  return result;
}

}  // namespace unet
