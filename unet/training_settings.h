// unet/training_settings.h — what a person asks of a training run, in the terms of train_em's and
// train_cells' flags (and unetcore.train's arguments), resolved into the pieces of a
// unet::TrainingRun: the device and its configuration's defaults, the model configuration, the
// step options and the run options. One place, so the programs and the Python module train alike
// for the same settings; the programs print what was resolved, the library never does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "unet/dataset.h"
#include "unet/training_run.h"

namespace unet {

// 0, a negative `minutes` and "auto" take the device configuration's default (run_defaults).
struct TrainingSettings {
  std::string out;                 // RunOptions::out_dir (empty: write nothing)
  std::string device = "auto";     // choose_device
  std::string precision = "auto";  // choose_precision
  std::string resume;              // a checkpoint to continue from
  int64_t iterations = 0, base_channels = 0, tile = 0;
  double minutes = -1;
  int64_t batch = 1, micro_batch = 0, warmup = 0;
  int64_t checkpoint_every = 500, val_every = 0;
  uint64_t seed = 1;  // initialisation, sampling, augmentation and dropout
  double lr = 0.001, dropout = 0.5, cooldown = 0.0, weight_average = 0.998;
  double clip_grad_norm = 0.0;        // TrainOptions::max_grad_norm (0: no clipping)
  std::string loss_mean = "weights";  // weights | pixels
  std::string head_init = "zero";     // zero | he
  std::string input_norm = "none";    // none | data (standardise_input)
  bool augment = true;
  bool tta = true;                    // the final validation also on 8-fold averaged predictions
};

struct TrainingPlan {
  DeviceChoice device;
  UNetConfig config;
  TrainOptions options;
  RunOptions run;
};

// Resolves the settings. Throws ValueError for a loss_mean, head_init or input_norm outside the
// values above, DeviceError for a device that is not there; the numeric ranges are checked where
// they are used (UNetConfig, Trainer, TrainingRun), with their messages.
TrainingPlan plan_training(const TrainingSettings& settings);

// input_norm "data": the training slices' mean and deviation go into `config` (and so into the
// saved model) and are returned; "none": nothing changes and nothing is returned.
std::optional<InputStatistics> standardise_input(const TrainingSettings& settings,
                                                 const std::vector<TrainingSlice>& train, UNetConfig& config);

// A dataset folder laid out as train_em reads it: DIR/train/images and DIR/train/labels (binary
// masks, non-zero = cell), paired by name; the samples before `first_val` train, the rest
// validate. Throws IOError/ShapeError as load_folder_dataset, ValueError when the split leaves
// either side empty.
struct FolderSplit {
  std::vector<Sample> train, validation;
};
FolderSplit split_folder_dataset(const std::string& dir, int64_t first_val);

}  // namespace unet
