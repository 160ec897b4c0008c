// unet/training_run.h — one training run from start to finish, the front-end that train_em,
// train_cells and the Python module drive: the device and its configuration, the training loop
// under a step limit and a wall-time budget, progress events, checkpoints and resume, validation
// during and after training, and the run's files.
//
// A run is (model configuration, device, training slices, a Validation, TrainOptions for each
// step, RunOptions for the run). The library never prints: every event goes to a RunObserver,
// and programs decide what to show. Files written under RunOptions::out_dir (none when empty):
//   model.safetensors  the checkpoint (every checkpoint_every steps and at the end; the weight
//                      average as the model, the SGD iterate and momentum to resume from)
//   log.jsonl          one line per step {"step", "loss", "grad_norm", "seconds"} ("clipped":
//                      true when the gradient was scaled down to TrainOptions::max_grad_norm;
//                      under a job of several ranks also "gradient_sums_started_ms": how long before the end of the
//                      backward pass the first gradient sum started, "gradient_sums_waited_ms":
//                      the wait for the sums after it) and per validation
//                      {"step", "<key>": measures}; keys val (weights saved as the model), val_tta
//                      (8-fold averaged predictions), val_iterate[_tta] (the last SGD iterate)
//   loss.png           the loss per step and its moving average (log scale)
//   metrics.json       the final validation (8-fold averaged unless tta is off)
//   val/               the final validation's per-image outputs (Validation::run)
// Checkpoints, images and metrics.json are written atomically (unet/atomic_file.h): a run killed
// or failing at any moment leaves the previous checkpoint or the new one, complete. The folder
// is created only after the inputs (and a checkpoint to resume from) have been accepted.
// Wall time counts training only: validations during the run are left out of the budget.
//
// Data-parallel runs (docs/scale-out.md): every rank of the job constructs the same TrainingRun
// with the job's Communicator and calls train(); they train one model (unet/trainer.h). Rank 0
// alone writes the files above and validates (the others wait for it); the time budget, the
// cool-down's progress and stop requests follow rank 0's clock and any rank's request, so every
// rank stops after the same step.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/device.h"
#include "unet/model.h"
#include "unet/trainer.h"
#include "unet/validation.h"

namespace unet {

// The device a run trains on and why. "auto" takes a real GPU when one is present (the
// simulator build's CUDA device is a test tool, far too slow to train); "cpu", "cuda", "cuda:N"
// are taken as asked. paper_configuration: a real GPU, where the paper's network fits.
struct DeviceChoice {
  Device device = Device::cpu();
  bool paper_configuration = false;
  std::string reason;  // e.g. "a GPU is present (...)", "requested with --device"
};
DeviceChoice choose_device(const std::string& request);

// The defaults of the two configurations. Paper (GPU): base 64 channels, 572 tiles, 4000 steps,
// no time budget. CPU: base 16, 316 tiles, a 15-minute budget (100000 steps only bound it, so a
// faster machine or build trains more steps).
struct RunDefaults {
  int64_t base_channels = 16;
  int64_t tile = 316;
  int64_t iterations = 100000;
  double minutes = 15.0;
};
RunDefaults run_defaults(bool paper_configuration);

// Mean eq. 2 weight over every pixel of the slices (printed by the programs: how much the
// border term adds to the class-balanced mean of 1). Throws ValueError for no slices.
double mean_pixel_weight(const std::vector<TrainingSlice>& slices);

struct RunOptions {
  std::string out_dir;            // where the run's files go (see the top); empty: write nothing
  int64_t iterations = 0;         // step limit of the run (counted from step 0, so a resumed run
                                  // takes iterations - the saved step more); must be > 0
  double minutes = 0.0;           // wall-time budget of this invocation; 0 = none
  int64_t checkpoint_every = 500; // 0: only at the end
  int64_t validate_every = 0;     // validate on plain predictions every N steps; 0: only at the end
  bool tta = true;                // the final validation also on 8-fold averaged predictions
  std::string resume;             // checkpoint to continue from; empty: a fresh run
  Precision precision = Precision::FP32;  // the convolutions' arithmetic (UNet::set_precision)
  // Extra string metadata every checkpoint carries (e.g. train_cells' post-processing).
  std::map<std::string, std::string> checkpoint_metadata;
};

struct StepEvent {
  int64_t step = 0;             // 1-based
  float loss = 0.0f;
  double smoothed_loss = 0.0;   // bias-corrected moving average (weight 0.02 per step)
  double seconds = 0.0;         // training wall time so far (validations left out)
  float grad_norm = 0.0f;       // the step's gradient norm before clipping (StepResult)
  bool clipped = false;         // scaled down to TrainOptions::max_grad_norm
};

struct ValidationEvent {
  int64_t step = 0;
  ValidationReport report;
  double seconds = 0.0;  // what it took (not counted in the budget)
};

// What a program (or a Python callback) hears. Every member is optional.
struct RunObserver {
  std::function<void(const StepEvent&)> step;
  std::function<void(int64_t step)> validation_begins;
  ItemProgress validation_progress;
  std::function<void(const ValidationEvent&)> validation_done;  // validations during training
  std::function<bool()> stop_requested;                         // polled after every step
  // After every checkpoint written (and renamed into place): what a failure later leaves behind.
  std::function<void(int64_t step, const std::string& path)> checkpoint_saved;
};

struct TrainSummary {
  int64_t steps = 0;          // taken in this invocation
  int64_t last_step = 0;      // the step counter at the end (includes resumed steps)
  double seconds = 0.0;       // training wall time
  bool stopped_by_time = false;
  bool stopped_by_request = false;
  std::vector<double> losses; // of this invocation's steps
};

// The final validation: plain and (unless RunOptions::tta is off) 8-fold averaged predictions
// of the weights saved as the model, and the same for the last SGD iterate when the model is a
// weight average.
struct ValidationPair {
  ValidationReport plain;
  std::optional<ValidationReport> tta;
  const ValidationReport& best() const { return tta ? *tta : plain; }  // what metrics.json holds
};
struct FinalValidation {
  std::optional<ValidationPair> iterate;  // only with weight averaging
  ValidationPair model;
};

class TrainingRun {
 public:
  // Builds the model (initialised from config.init_seed) and its trainer; with RunOptions::resume
  // restores the checkpoint (Trainer::resume's checks), otherwise starts a fresh log. `validation`
  // may be null (nothing is validated). `comm`: the job's ranks (world() under mpirun/srun).
  // Throws ValueError for bad options.
  TrainingRun(const UNetConfig& config, Device device, std::vector<TrainingSlice> train,
              std::shared_ptr<const Validation> validation, TrainOptions options, RunOptions run,
              Communicator& comm = single_process());

  UNet& model() { return *model_; }
  Trainer& trainer() { return *trainer_; }
  const RunOptions& options() const { return run_; }
  bool resumed() const { return !run_.resume.empty(); }
  std::string model_path() const;  // out_dir/model.safetensors ("" without out_dir)

  // Trains until the step limit, the time budget or a stop request; then writes the checkpoint
  // and loss.png. A NaN or infinite loss throws NumericError, an allocation that fails
  // OutOfMemoryError, a save that fails IOError; the last checkpoint written stays as it was.
  TrainSummary train(const RunObserver& observer = {});
  // Sets one entry of the checkpoint's metadata after training (train_cells: the instance options
  // chosen on the training frames) and, on rank 0 of a run with out_dir, writes the checkpoint
  // again with it (atomically). Throws ValueError for an empty key, IOError when the save fails.
  void update_checkpoint_metadata(const std::string& key, const std::string& value);
  // The final validation (FinalValidation above), logged, with val/ and metrics.json written.
  // Throws ValueError when the run has no validation. Rank 0's work: on the other ranks of a job
  // it returns at once with an empty result.
  FinalValidation validate(const RunObserver& observer = {});

 private:
  void save_checkpoint(const RunObserver& observer);
  ValidationPair validate_pair(const std::string& key, const std::string& write_dir, const RunObserver& observer);
  void log(const std::string& json_line) const;

  std::unique_ptr<UNet> model_;
  std::unique_ptr<Trainer> trainer_;
  std::shared_ptr<const Validation> validation_;
  RunOptions run_;
  Communicator& comm_;
};

}  // namespace unet
