// unet/trainer.h — the training loop of the paper: SGD with momentum (0.99), one large tile per
// step (batch configurable), the pixel-weighted softmax cross-entropy with precomputed weight
// maps, random tiles cut from mirror-padded images and augmented on the device the network runs
// on (elastic deformation + shift/rotation/flip + grey values).
//
// A tile whose output window holds no weight (an unannotated stretch of a partially annotated
// slice) is moved to another place in the same slice (up to 64 draws); where every weight is
// positive, as for fully annotated data, the first draw always stands.
//
// Reproducibility: every random choice of step i (which slice, where the tile is, the
// augmentation, the dropout masks) is a pure function of (seed, i) through Philox, so a run
// resumed from a checkpoint written after step i continues exactly as the uninterrupted run.
//
// Data parallelism (core/communicator.h): with N ranks, step i takes a global batch of N · batch
// tiles, entry e of it being tile i · N · batch + e of the Philox sequence (rank r draws entries
// r · batch … (r + 1) · batch - 1, with the dropout masks those entries get in one pass), so one
// process is the N = 1 case and draws exactly what it always drew. The loss is that of the
// global batch, normalised as TrainOptions::reduction says over all its tiles (the weighted mean
// divides by the sum of the weights of all N · batch tiles): the learning rate means what it
// means for one process with --batch N · batch. Every rank sums the parameters' gradients over
// the ranks (core/gradient_reducer.h, overlapped with the backward pass) and takes the same SGD
// step, so the weights stay identical on every rank.
// Checkpoints (safetensors) hold the weights, the momentum buffers ("velocity.<name>") and, in
// the metadata, the model configuration, the step and the training options. With weight
// averaging, the tensors under the parameters' own names are the averaged weights (the model to
// use: what load_model, segment and a PyTorch state dict get) and "iterate.<name>" holds the SGD
// iterate that training continues from.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/communicator.h"
#include "core/gradient_reducer.h"
#include "core/tensor.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "unet/augment.h"
#include "unet/dataset.h"
#include "unet/model.h"
#include "unet/weight_map.h"

namespace unet {

// One training image on the host, ready to cut tiles from.
struct TrainingSlice {
  std::string name;
  Tensor image;    // float32 [C, H, W], normalised to [0, 1]
  Tensor classes;  // int32 [H, W]: 1 = object interior (cell), 0 = border / background
  Tensor weights;  // float32 [H, W]: the paper's eq. 2 weight map
};

// Image normalised to [0, 1], classes = labels > 0, weights from the instance labels. `annotated`
// (one entry per pixel, 0 = not annotated) gives weight 0 outside the annotation (weight_map).
TrainingSlice make_training_slice(const Sample& sample, const WeightMapOptions& weight_options = {},
                                  const std::vector<uint8_t>* annotated = nullptr);

// Mean and standard deviation of the slices' image values (every pixel of every channel, summed
// in double): the UNetConfig::input_mean / input_std that standardise what the network sees.
// Throws ValueError for no slices or constant images (nothing to scale by).
struct InputStatistics {
  float mean = 0.0f;
  float std = 1.0f;
};
InputStatistics input_statistics(const std::vector<TrainingSlice>& slices);

struct TrainOptions {
  int64_t tile = 572;  // input tile size, valid for the model
  int64_t batch = 1;
  SgdOptions sgd{0.001f, 0.99f, 0.0f};
  // Linear learning-rate warm-up: step i (0-based) of the first warmup_steps uses
  // lr · (i + 1) / warmup_steps, then lr. 0 = none (the paper).
  int64_t warmup_steps = 0;
  // Learning-rate cool-down: over the last `cooldown` fraction of the run the rate falls
  // linearly to 0, lr · min(1, (1 − p) / cooldown) at progress p ∈ [0, 1]. 0 = none (the paper).
  // Ending on a small rate settles the weights the noisy large-rate phase leaves bouncing.
  // The progress of step i is i / total_steps, or what the caller passes to step() when
  // something else ends the run (train_em's wall-time budget). A step at rate 0 (progress >= 1)
  // computes the loss and changes nothing.
  double cooldown = 0.0;
  int64_t total_steps = 0;  // the run's length in steps, for the cool-down (0 = not known)
  // Weight averaging: an exponential moving average of the weights after every step, with decay
  // min(weight_average, (1 + i) / (10 + i)) at step i (the short horizon at the start keeps the
  // random initial weights from lingering for 1 / (1 − decay) steps). 0 = none (the paper).
  // Constant-rate SGD with momentum 0.99 leaves the weights bouncing around a minimum; their
  // average sits nearer its centre. It changes nothing about the steps themselves.
  double weight_average = 0.0;
  // Gradient-norm clipping: when the L2 norm of the step's whole gradient (every parameter, after
  // the sums over ranks and micro-batches) exceeds this, the gradient is scaled down to this norm
  // before it enters the momentum (SgdOptions::gradient_scale). 0 = off (the paper). With momentum
  // 0.99 one outsized gradient is applied for ~100 steps; clipping bounds what a single tile can
  // do to the weights (docs/cells.md: DIC-HeLa's border-weighted tiles). StepResult::grad_norm
  // reports the norm before clipping whether or not clipping is on.
  double max_grad_norm = 0.0;
  LossReduction reduction = LossReduction::WeightedMean;
  // Tiles per forward/backward pass (0: the whole batch in one pass, normalised by the loss
  // itself). Smaller passes need less memory and accumulate their gradients, each normalised by
  // the whole batch's normaliser; the step is the same up to the order of the float sums over
  // the batch. batch must be a multiple of it. With micro_batch 1, one process with
  // batch N takes, bit for bit, the steps of N ranks with batch 1 (two-rank sums are a + b; with
  // more ranks MPI/NCCL order the sums their own way).
  int64_t micro_batch = 0;
  uint64_t seed = 1;
  bool augment = true;
  AugmentOptions augmentation;  // the paper's defaults
};

struct StepResult {
  int64_t step = 0;  // 1-based index of the step just taken
  float loss = 0.0f;
  float grad_norm = 0.0f;  // L2 norm of the step's gradient over all parameters, before clipping
  bool clipped = false;    // the gradient was scaled down to TrainOptions::max_grad_norm
};

class Trainer {
 public:
  // `comm`: the ranks that train this model together (world() for a job started by mpirun or
  // srun); every rank constructs its Trainer with the same model configuration and options.
  Trainer(UNet& model, std::vector<TrainingSlice> slices, TrainOptions options,
          Communicator& comm = single_process());
  ~Trainer();

  // One SGD step. `progress` ∈ [0, 1] is how far the run is, for the cool-down; without it,
  // steps_done() / total_steps. Throws NumericError naming the step if the loss or the gradient's
  // norm is NaN or infinite (the weights are left as they were before the step).
  StepResult step(std::optional<double> progress = std::nullopt);
  int64_t steps_done() const { return steps_done_; }
  const TrainOptions& options() const { return options_; }

  // This rank's (input tiles, classes, weights) of step `step`, on the model's device:
  // [batch, C, T, T], [batch, O, O], [batch, O, O]. Exposed for tests and the example's gallery.
  struct Batch { Tensor input, classes, weights; };
  Batch make_batch(int64_t step) const;
  int64_t global_batch() const { return options_.batch * comm_.size(); }
  const Communicator& communicator() const { return comm_; }
  // How the last step's gradient sums went (null for a single process).
  const GradientReducer::Stats* communication() const { return reducer_ ? &reducer_->last_step() : nullptr; }
  // The optimiser settings of step `step` (0-based) at run progress `progress`: the warm-up and
  // the cool-down applied to TrainOptions::sgd. Without a progress: step / total_steps.
  SgdOptions sgd_options_at(int64_t step, std::optional<double> progress = std::nullopt) const;

  // While the returned scope lives, the model holds the averaged weights (to evaluate or save
  // them); the SGD iterate comes back when it ends. Without averaging the model is unchanged.
  // step() refuses to run inside the scope.
  class [[nodiscard]] AveragedWeights {
   public:
    explicit AveragedWeights(Trainer& trainer);
    ~AveragedWeights();
    AveragedWeights(const AveragedWeights&) = delete;
    AveragedWeights& operator=(const AveragedWeights&) = delete;
   private:
    Trainer& trainer_;
  };
  AveragedWeights averaged_weights() { return AveragedWeights(*this); }
  bool averaging() const { return options_.weight_average > 0.0; }

  void save_checkpoint(const std::string& path, const std::map<std::string, std::string>& extra = {}) const;
  // Restores weights, momentum, the weight average and the step counter from a checkpoint of the
  // same configuration, seed, batch, tile, loss reduction and number of ranks.
  void resume(const std::string& path);

 private:
  // Entries [first, first + count) of step `step`'s global batch.
  Batch draw(int64_t step, int64_t first, int64_t count) const;
  // The gradients of this rank's tiles, in one pass with the loss's own normalisation (one
  // process, no micro-batches: what the trainer always did), or in passes normalised by the
  // global batch and summed over the ranks. Return the step's loss.
  float one_pass_gradients(int64_t step);
  float accumulated_gradients(int64_t step);
  Communicator& comm_;
  std::unique_ptr<GradientReducer> reducer_;  // with more than one rank
  UNet& model_;
  std::vector<TrainingSlice> slices_;
  TrainOptions options_;
  struct DeviceSlice { Tensor image, classes, weights; };
  std::vector<DeviceSlice> device_slices_;
  std::vector<std::vector<double>> weight_tables_;  // summed-area tables of the slices' weights
  // The weight inside the size×size window at (top, left) of a slice, clipped to the slice.
  double window_weight(size_t slice, int64_t top, int64_t left, int64_t size) const;
  std::vector<Tensor> velocities_;
  std::vector<Tensor> averages_;  // empty unless averaging
  bool holds_average_ = false;    // an AveragedWeights scope is alive
  void swap_average();            // exchanges the model's weights with averages_
  int64_t steps_done_ = 0;
};

// L2 norm of the parameters' gradients taken together (a parameter without a gradient counts 0):
// what TrainOptions::max_grad_norm compares with. The sums of squares are reduced and added on
// the parameters' device (float32), then read once.
double gradient_norm(const std::vector<Tensor>& params);

// Loads a model saved by Trainer::save_checkpoint (or save_model) onto `device`.
std::unique_ptr<UNet> load_model(const std::string& path, Device device);
void save_model(UNet& model, const std::string& path, const std::map<std::string, std::string>& extra = {});

}  // namespace unet
