// unet/training_settings.cpp — settings to a TrainingPlan, and train_em's dataset folder split.
#include "unet/training_settings.h"

#include "core/error.h"
#include "core/precision.h"

namespace unet {

TrainingPlan plan_training(const TrainingSettings& s) {
  UNET_CHECK(s.loss_mean == "weights" || s.loss_mean == "pixels", ValueError,
             "training: loss_mean must be 'weights' or 'pixels', got '", s.loss_mean, "'");
  UNET_CHECK(s.head_init == "zero" || s.head_init == "he", ValueError,
             "training: head_init must be 'zero' or 'he', got '", s.head_init, "'");
  UNET_CHECK(s.input_norm == "none" || s.input_norm == "data", ValueError,
             "training: input_norm must be 'none' or 'data', got '", s.input_norm, "'");
  TrainingPlan p;
  p.device = choose_device(s.device);
  const RunDefaults d = run_defaults(p.device.paper_configuration);
  p.config.base_channels = s.base_channels > 0 ? s.base_channels : d.base_channels;
  p.config.init_seed = s.seed;
  p.config.head_init = s.head_init == "zero" ? HeadInit::Zero : HeadInit::He;
  p.config.dropout = static_cast<float>(s.dropout);
  TrainOptions& o = p.options;
  o.tile = s.tile > 0 ? s.tile : d.tile;
  o.seed = s.seed;
  o.batch = s.batch;
  o.micro_batch = s.micro_batch;
  o.sgd.learning_rate = static_cast<float>(s.lr);
  o.reduction = s.loss_mean == "pixels" ? LossReduction::PixelMean : LossReduction::WeightedMean;
  o.warmup_steps = s.warmup;
  o.cooldown = s.cooldown;
  o.weight_average = s.weight_average;
  o.max_grad_norm = s.clip_grad_norm;
  o.augment = s.augment;
  RunOptions& r = p.run;
  r.out_dir = s.out;
  r.iterations = s.iterations > 0 ? s.iterations : d.iterations;
  r.minutes = s.minutes >= 0 ? s.minutes : d.minutes;
  r.checkpoint_every = s.checkpoint_every;
  r.validate_every = s.val_every;
  r.tta = s.tta;
  r.resume = s.resume;
  r.precision = choose_precision(s.precision, p.device.device);
  o.total_steps = r.iterations;
  return p;
}

std::optional<InputStatistics> standardise_input(const TrainingSettings& settings,
                                                 const std::vector<TrainingSlice>& train, UNetConfig& config) {
  if (settings.input_norm != "data") return std::nullopt;
  const InputStatistics stats = input_statistics(train);
  config.input_mean = stats.mean;
  config.input_std = stats.std;
  return stats;
}

FolderSplit split_folder_dataset(const std::string& dir, int64_t first_val) {
  std::vector<Sample> samples = load_folder_dataset(dir + "/train/images", dir + "/train/labels", LabelKind::BinaryMask);
  UNET_CHECK(first_val > 0 && first_val < static_cast<int64_t>(samples.size()), ValueError,
             "the first validation slice ", first_val, " (first_val; train_em's --first-val) must leave training and "
             "validation slices: ", dir, " has ", samples.size(),
             samples.size() < 2 ? " (at least 2 are needed)" : detail::message(", so it must be 1 to ", samples.size() - 1));
  FolderSplit split;
  split.validation.assign(std::make_move_iterator(samples.begin() + first_val), std::make_move_iterator(samples.end()));
  samples.resize(static_cast<size_t>(first_val));
  split.train = std::move(samples);
  return split;
}

}  // namespace unet
