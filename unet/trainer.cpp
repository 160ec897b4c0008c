// unet/trainer.cpp — training step, batch construction and checkpoints.
#include "unet/trainer.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/error.h"
#include "core/philox.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "unet/inference.h"
#include "unet/safetensors.h"

namespace unet {
namespace {

// Philox sub-streams of one step: which slice and where (kPlacement), the augmentation.
constexpr uint64_t kPlacementStream = 1;
// Where a tile goes when the first place holds no weight: sub-streams kRedrawStream + k.
constexpr uint64_t kRedrawStream = 0x5EED0000ull;
constexpr int kMaxRedraws = 64;
constexpr uint64_t kAugmentSeed = 0x9E3779B97F4A7C15ull;  // augmentation draws from seed ^ this

const char* reduction_name(LossReduction r) {
  return r == LossReduction::Sum ? "sum" : r == LossReduction::WeightedMean ? "weighted_mean" : "pixel_mean";
}

std::string options_json(const TrainOptions& o, int64_t steps_done, int ranks) {
  nlohmann::ordered_json j = {{"step", steps_done}, {"tile", o.tile}, {"batch", o.batch}, {"ranks", ranks},
                              {"micro_batch", o.micro_batch},
                              {"learning_rate", o.sgd.learning_rate}, {"momentum", o.sgd.momentum},
                              {"weight_decay", o.sgd.weight_decay}, {"seed", o.seed},
                              {"augment", o.augment}, {"warmup_steps", o.warmup_steps},
                              {"cooldown", o.cooldown}, {"total_steps", o.total_steps},
                              {"weight_average", o.weight_average}, {"max_grad_norm", o.max_grad_norm},
                              {"reduction", reduction_name(o.reduction)}};
  return j.dump();
}

// The model configuration a checkpoint carries; IOError naming the file if it is missing or
// invalid, or if the file cannot hold the parameters it describes (checked before a model of
// that size is built, so a garbled configuration cannot ask for unbounded memory).
UNetConfig checkpoint_config(const SafetensorsFile& f, const std::string& path) {
  const auto it = f.metadata.find("unetcore.model");
  UNET_CHECK(it != f.metadata.end(), IOError, "'", path,
             "' holds no unetcore model configuration (metadata key unetcore.model); is it a unetcore checkpoint?");
  UNetConfig config;
  try {
    config = UNetConfig::from_json(it->second);
  } catch (const ValueError& e) {
    UNET_THROW(IOError, "'", path, "': the model configuration in its metadata is invalid: ", e.what());
  }
  int64_t values = 0;
  for (const auto& [name, t] : f.tensors)
    if (t.dtype() == DType::Float32) values += t.numel();
  UNET_CHECK(config.parameter_count() <= values, IOError, "'", path, "': its model configuration needs ",
             config.parameter_count(), " parameters but the file holds only ", values, " float values");
  return config;
}

// Copies the checkpoint tensor `name` into `target`; IOError naming the file if it is absent or
// of another shape.
void load_parameter(const SafetensorsFile& f, const std::string& path, const std::string& name, Tensor& target) {
  const Tensor* t = f.find(name);
  UNET_CHECK(t != nullptr, IOError, "'", path, "' has no tensor '", name, "' although its configuration needs it");
  UNET_CHECK(t->shape() == target.shape() && t->dtype() == target.dtype(), IOError, "'", path, "': tensor '", name,
             "' is ", t->shape().str(), ", the model needs ", target.shape().str());
  target.copy_from(*t);
}

// The training state in a checkpoint's metadata (unetcore.training), as JSON.
nlohmann::json checkpoint_training(const SafetensorsFile& f, const std::string& path) {
  const auto it = f.metadata.find("unetcore.training");
  UNET_CHECK(it != f.metadata.end(), ValueError, "'", path,
             "' holds a model but no training state (metadata key unetcore.training): it was saved for inference, "
             "not to resume from");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    UNET_THROW(IOError, "'", path, "': its training state is not valid JSON (", e.what(), ")");
  }
  UNET_CHECK(j.is_object(), IOError, "'", path, "': its training state is not a JSON object");
  return j;
}

// A field of the training state: `fallback` when absent (older checkpoints), IOError naming the
// file when it has another type.
template <typename T>
T training_field(const nlohmann::json& j, const char* key, const std::string& path, std::optional<T> fallback = {}) {
  const auto it = j.find(key);
  if (it == j.end()) {
    UNET_CHECK(fallback.has_value(), IOError, "'", path, "': its training state has no '", key, "'");
    return *fallback;
  }
  bool ok = false;
  if constexpr (std::is_same_v<T, std::string>) ok = it->is_string();
  else if constexpr (std::is_unsigned_v<T>) ok = it->is_number_unsigned();
  else ok = it->is_number_integer() && it->get<int64_t>() >= 0;
  UNET_CHECK(ok, IOError, "'", path, "': its training state's '", key, "' is ", it->dump(), ", not what was saved");
  return it->get<T>();
}

}  // namespace

TrainingSlice make_training_slice(const Sample& sample, const WeightMapOptions& weight_options,
                                  const std::vector<uint8_t>* annotated) {
  validate(sample.image, "training image");
  validate(sample.labels, "training labels");
  UNET_CHECK(sample.image.width == sample.labels.width && sample.image.height == sample.labels.height,
             ShapeError, "training sample '", sample.name, "': image ", sample.image.width, "x",
             sample.image.height, " and labels ", sample.labels.width, "x", sample.labels.height, " differ");
  TrainingSlice s;
  s.name = sample.name;
  const Image img = normalised(sample.image);
  s.image = Tensor::from_vector(to_planar(img), Shape{img.channels, img.height, img.width});
  std::vector<int32_t> classes(sample.labels.labels.size());
  for (size_t i = 0; i < classes.size(); ++i) classes[i] = sample.labels.labels[i] > 0 ? 1 : 0;
  s.classes = Tensor::from_vector(classes, Shape{img.height, img.width});
  s.weights = Tensor::from_vector(weight_map(sample.labels, weight_options, annotated), Shape{img.height, img.width});
  return s;
}

InputStatistics input_statistics(const std::vector<TrainingSlice>& slices) {
  UNET_CHECK(!slices.empty(), ValueError, "input_statistics: no training slices");
  double sum = 0.0, sum_squares = 0.0, count = 0.0;
  for (const auto& s : slices) {
    for (float v : s.image.to_vector()) {
      sum += v;
      sum_squares += static_cast<double>(v) * v;
    }
    count += static_cast<double>(s.image.numel());
  }
  const double mean = sum / count, variance = std::max(0.0, sum_squares / count - mean * mean);
  UNET_CHECK(variance > 1e-12, ValueError, "input_statistics: the ", slices.size(),
             " training images are constant (every value ", mean, "): there is no spread to standardise by");
  return {static_cast<float>(mean), static_cast<float>(std::sqrt(variance))};
}

Trainer::Trainer(UNet& model, std::vector<TrainingSlice> slices, TrainOptions options, Communicator& comm)
    : comm_(comm), model_(model), slices_(std::move(slices)), options_(options) {
  UNET_CHECK(!slices_.empty(), ValueError, "Trainer: no training slices");
  UNET_CHECK(options_.batch >= 1, ValueError, "Trainer: batch must be >= 1, got ", options_.batch);
  UNET_CHECK(options_.micro_batch >= 0 && (options_.micro_batch == 0 || options_.batch % options_.micro_batch == 0),
             ValueError, "Trainer: micro_batch (tiles per pass) must divide the batch of ", options_.batch,
             " (0 = the whole batch in one pass), got ", options_.micro_batch);
  UNET_CHECK(options_.warmup_steps >= 0, ValueError, "Trainer: warmup_steps must be >= 0 (0 = no warm-up), got ",
             options_.warmup_steps);
  UNET_CHECK(options_.cooldown >= 0.0 && options_.cooldown <= 1.0, ValueError,
             "Trainer: cooldown is the fraction of the run over which the learning rate falls to 0, "
             "in [0, 1] (0 = none), got ", options_.cooldown);
  UNET_CHECK(options_.weight_average >= 0.0 && options_.weight_average < 1.0, ValueError,
             "Trainer: weight_average is the decay of the weights' moving average, in [0, 1) "
             "(0 = none; 0.999 averages over about 1000 steps), got ", options_.weight_average);
  UNET_CHECK(options_.total_steps >= 0, ValueError, "Trainer: total_steps must be >= 0 (0 = not known), got ",
             options_.total_steps);
  UNET_CHECK(std::isfinite(options_.max_grad_norm) && options_.max_grad_norm >= 0.0, ValueError,
             "Trainer: max_grad_norm is the largest L2 norm a step's gradient may have before it is scaled "
             "down, finite and >= 0 (0 = no clipping), got ", options_.max_grad_norm);
  model.config().geometry().require_valid_input(options_.tile, "training tile size");
  for (const auto& s : slices_) {
    check_rank(s.image, 3, "Trainer", "slice image");
    UNET_CHECK(s.image.dim(0) == model.config().in_channels, ShapeError, "Trainer: slice '", s.name,
               "' has ", s.image.dim(0), " channels, the model expects ", model.config().in_channels);
  }
  velocities_.resize(model_.parameters().size());
  // Summed-area tables of the weights, to see on the host whether a tile's window holds any.
  for (const auto& s : slices_) {
    const int64_t h = s.weights.dim(0), w = s.weights.dim(1);
    const std::vector<float> weights = s.weights.to_vector();
    std::vector<double> table(static_cast<size_t>((h + 1) * (w + 1)), 0.0);
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        table[(y + 1) * (w + 1) + x + 1] = weights[y * w + x] + table[y * (w + 1) + x + 1] +
                                           table[(y + 1) * (w + 1) + x] - table[y * (w + 1) + x];
    weight_tables_.push_back(std::move(table));
  }
  // The slices live on the device the network runs on, so augmentation happens there too.
  for (const auto& s : slices_)
    device_slices_.push_back({s.image.to(model.device()), s.classes.to(model.device()), s.weights.to(model.device())});
  if (!comm_.is_single_process()) reducer_ = std::make_unique<GradientReducer>(model_.parameters(), comm_);
}

Trainer::~Trainer() = default;

Trainer::Batch Trainer::make_batch(int64_t step) const { return draw(step, comm_.rank() * options_.batch, options_.batch); }

Trainer::Batch Trainer::draw(int64_t step, int64_t first, int64_t count) const {
  const UNetGeometry g = model_.config().geometry();
  const int64_t tile = options_.tile, out = g.output_size(tile), border = (tile - out) / 2;
  const int64_t channels = model_.config().in_channels;
  const Device device = model_.device();
  Batch batch;
  batch.input = Tensor::empty(Shape{count, channels, tile, tile}, DType::Float32, device);
  batch.classes = Tensor::empty(Shape{count, out, out}, DType::Int32, device);
  batch.weights = Tensor::empty(Shape{count, out, out}, DType::Float32, device);
  Tensor image = Tensor::empty(Shape{channels, tile, tile}, DType::Float32, device);
  Tensor classes = Tensor::empty(Shape{out, out}, DType::Int32, device);
  Tensor weights = Tensor::empty(Shape{out, out}, DType::Float32, device);
  for (int64_t b = 0; b < count; ++b) {
    const uint64_t sample = static_cast<uint64_t>(step) * static_cast<uint64_t>(global_batch()) + first + b;
    Philox4 r = philox_block(options_.seed, sample, kPlacementStream);
    const size_t index = r.v[0] % device_slices_.size();
    const DeviceSlice& s = device_slices_[index];
    const int64_t h = s.image.dim(1), w = s.image.dim(2);
    // The output window starts anywhere in the image; context beyond the edges is mirrored by
    // the warp, which samples the whole slice (the paper's mirror padding).
    int64_t top = static_cast<int64_t>(r.v[1] % static_cast<uint32_t>(h));
    int64_t left = static_cast<int64_t>(r.v[2] % static_cast<uint32_t>(w));
    // A window without weight (an unannotated stretch of a partially annotated slice) would teach
    // nothing: draw another place in the same slice. Where every weight is positive the first
    // draw always stands. The test looks at the window's central square of side out/√2, which
    // any rotation about the centre keeps inside the window (the elastic field may still move
    // some of it out). 1e-3: the table's differences may round a zero window to ±1e-12.
    const int64_t inset = static_cast<int64_t>(std::floor(0.5 * (1.0 - 1.0 / std::sqrt(2.0)) * out));
    for (int k = 1; k <= kMaxRedraws && window_weight(index, top + inset, left + inset, out - 2 * inset) < 1e-3; ++k) {
      r = philox_block(options_.seed, sample, kRedrawStream + static_cast<uint64_t>(k));
      top = static_cast<int64_t>(r.v[1] % static_cast<uint32_t>(h));
      left = static_cast<int64_t>(r.v[2] % static_cast<uint32_t>(w));
    }
    WarpGeometry geometry;
    geometry.in_width = static_cast<int>(w);
    geometry.in_height = static_cast<int>(h);
    geometry.out_width = geometry.out_height = static_cast<int>(tile);
    geometry.channels = static_cast<int>(channels);
    geometry.centre_x = static_cast<float>(left) + static_cast<float>(out - 1) / 2.0f;
    geometry.centre_y = static_cast<float>(top) + static_cast<float>(out - 1) / 2.0f;
    const ElasticWarpParams image_warp =
        options_.augment ? draw_warp_params(options_.augmentation, geometry, options_.seed ^ kAugmentSeed, sample)
                         : make_warp_params(geometry);
    // Labels and weights are needed only under the network's output: the same field, sampled
    // on the centre window of the tile.
    ElasticWarpParams label_warp = image_warp;
    label_warp.field_width = label_warp.field_height = static_cast<int>(tile);
    label_warp.out_offset_x = label_warp.out_offset_y = static_cast<int>(border);
    label_warp.out_width = label_warp.out_height = static_cast<int>(out);
    label_warp.contrast = 1.0f;
    label_warp.brightness = 0.0f;
    label_warp.gamma = 1.0f;
    if (device.is_cpu()) {
      cpu::elastic_warp(image_warp, s.image.data<float>(), image.data<float>(), nullptr, nullptr, nullptr, nullptr);
      cpu::elastic_warp(label_warp, nullptr, nullptr, s.classes.data<int32_t>(), classes.data<int32_t>(),
                        s.weights.data<float>(), weights.data<float>());
    } else {
      cuda::elastic_warp(image_warp, s.image.data<float>(), image.data<float>(), nullptr, nullptr, nullptr, nullptr);
      cuda::elastic_warp(label_warp, nullptr, nullptr, s.classes.data<int32_t>(), classes.data<int32_t>(),
                         s.weights.data<float>(), weights.data<float>());
    }
    batch.input.set_batch_entry(b, image);
    batch.classes.set_batch_entry(b, classes);
    batch.weights.set_batch_entry(b, weights);
  }
  return batch;
}

double Trainer::window_weight(size_t slice, int64_t top, int64_t left, int64_t size) const {
  const std::vector<double>& t = weight_tables_[slice];
  const int64_t h = slices_[slice].weights.dim(0), w = slices_[slice].weights.dim(1);
  top = std::min(top, h);
  left = std::min(left, w);
  const int64_t y1 = std::min(h, top + size), x1 = std::min(w, left + size);
  auto at = [&](int64_t y, int64_t x) { return t[y * (w + 1) + x]; };
  return at(y1, x1) - at(top, x1) - at(y1, left) + at(top, left);
}

SgdOptions Trainer::sgd_options_at(int64_t step, std::optional<double> progress) const {
  SgdOptions o = options_.sgd;
  if (step < options_.warmup_steps)
    o.learning_rate *= static_cast<float>(step + 1) / static_cast<float>(options_.warmup_steps);
  if (options_.cooldown > 0.0) {
    if (!progress) {
      UNET_CHECK(options_.total_steps > 0, ValueError,
                 "Trainer: a cool-down needs the run's progress: set TrainOptions::total_steps or pass "
                 "the progress to step()");
      progress = static_cast<double>(step) / static_cast<double>(options_.total_steps);
    }
    UNET_CHECK(std::isfinite(*progress) && *progress >= 0.0, ValueError,
               "Trainer: the run's progress must be a finite number >= 0, got ", *progress);
    const double remaining = std::max(0.0, 1.0 - *progress);
    o.learning_rate *= static_cast<float>(std::min(1.0, remaining / options_.cooldown));
  }
  return o;
}

StepResult Trainer::step(std::optional<double> progress) {
  UNET_CHECK(!holds_average_, ValueError,
             "Trainer::step: the model holds the averaged weights (an AveragedWeights scope is alive); "
             "end the scope before training on");
  const int64_t step = steps_done_;
  const SgdOptions sgd = sgd_options_at(step, progress);  // first: a bad progress fails before any work
  model_.set_training(true);
  model_.zero_grad();
  const bool one_pass = comm_.is_single_process() && options_.micro_batch == 0;
  const float value = one_pass ? one_pass_gradients(step) : accumulated_gradients(step);
  UNET_CHECK(std::isfinite(value), NumericError, "the loss became ", value, " at step ", step + 1,
             " (learning rate ", sgd.learning_rate,
             " may be too high); the weights were left as they were before this step");
  const double norm = gradient_norm(model_.parameters());
  // A finite loss can still have gradients past float32's range (its squares overflow first).
  UNET_CHECK(std::isfinite(norm), NumericError, "the gradient's norm became ", norm, " at step ", step + 1,
             " (loss ", value, "; learning rate ", sgd.learning_rate,
             " may be too high); the weights were left as they were before this step");
  const bool clipped = options_.max_grad_norm > 0.0 && norm > options_.max_grad_norm;
  // At the end of a cool-down the rate is 0: nothing moves (sgd_step refuses a zero rate so that
  // a forgotten one shows, which a configured rate of 0 still is).
  const bool cooled_down = sgd.learning_rate == 0.0f && options_.sgd.learning_rate > 0.0f;
  if (!cooled_down) {
    NoGradGuard no_grad;
    SgdOptions update = sgd;
    if (clipped) update.gradient_scale = static_cast<float>(options_.max_grad_norm / norm);
    if (averaging()) {
      update.average_decay = static_cast<float>(
          std::min(options_.weight_average, (1.0 + static_cast<double>(step)) / (10.0 + static_cast<double>(step))));
    }
    sgd_step(model_.parameters(), velocities_, update, averaging() ? &averages_ : nullptr);
  }
  ++steps_done_;
  return {steps_done_, value, static_cast<float>(norm), clipped};
}

double gradient_norm(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  // The tensors' sums of squares are added on their device and read once: on a GPU, reading
  // each (item()) would wait for the device 46 times a step.
  Tensor squares;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined() || g.numel() == 0) continue;
    const Tensor s = sum_of_squares(g);
    squares = squares.defined() ? add(squares, s) : s;
  }
  return squares.defined() ? std::sqrt(static_cast<double>(squares.item())) : 0.0;
}

namespace {
uint64_t dropout_seed(uint64_t seed, int64_t step) { return seed ^ (static_cast<uint64_t>(step) << 20); }
}  // namespace

float Trainer::one_pass_gradients(int64_t step) {
  const Batch batch = make_batch(step);
  const Tensor logits = model_.forward(batch.input, dropout_seed(options_.seed, step));
  const Tensor loss = weighted_cross_entropy(logits, batch.classes, batch.weights, options_.reduction);
  const float value = loss.item();
  if (std::isfinite(value)) loss.backward();  // (step() reports a NaN or infinite loss)
  return value;
}

float Trainer::accumulated_gradients(int64_t step) {
  const int64_t per_pass = options_.micro_batch > 0 ? options_.micro_batch : options_.batch;
  const int64_t passes = options_.batch / per_pass, first = comm_.rank() * options_.batch;
  std::vector<Batch> parts;
  for (int64_t p = 0; p < passes; ++p) parts.push_back(draw(step, first + p * per_pass, per_pass));
  // The global batch's normaliser is known from the weight maps before any pass, so every pass
  // can be scaled by it: the passes' and the ranks' gradients then add up to the global one.
  double normaliser = 1.0;  // LossReduction::Sum
  if (options_.reduction != LossReduction::Sum) {
    normaliser = 0.0;
    for (const Batch& part : parts) {
      if (options_.reduction == LossReduction::PixelMean) {
        normaliser += static_cast<double>(part.weights.numel());
      } else {
        for (float w : part.weights.to_vector()) normaliser += w;
      }
    }
    comm_.sum(&normaliser, 1);
  }
  // A weighted mean over weights that are all 0 is defined as 0, and so is its gradient.
  const float scale = normaliser > 0.0 ? static_cast<float>(1.0 / normaliser) : 0.0f;
  const Tensor seed = Tensor::full(Shape{}, scale, model_.device());
  double loss_sum = 0.0;
  for (int64_t p = 0; p < passes; ++p) {
    const Tensor logits = model_.forward(parts[p].input, dropout_seed(options_.seed, step), first + p * per_pass);
    const Tensor loss = weighted_cross_entropy(logits, parts[p].classes, parts[p].weights, LossReduction::Sum);
    loss_sum += static_cast<double>(loss.item());
    if (reducer_ && p == passes - 1) {
      loss.backward(seed, reducer_->hook());  // the sums start while the last pass runs back
      reducer_->finish();
    } else {
      loss.backward(seed);
    }
  }
  comm_.sum(&loss_sum, 1);  // every rank sees the same loss, and so stops together on a NaN
  return static_cast<float>(normaliser > 0.0 ? loss_sum / normaliser : 0.0);
}

void Trainer::save_checkpoint(const std::string& path, const std::map<std::string, std::string>& extra) const {
  std::vector<std::pair<std::string, Tensor>> tensors;
  const auto params = model_.named_parameters();
  // The parameters' own names hold the model to use (the average when averaging); the iterate
  // that training continues from goes under "iterate.".
  const bool averaged = averaging() && !averages_.empty();
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& model_weights = averaged && !holds_average_ ? averages_[i] : *params[i].tensor;
    tensors.emplace_back(params[i].name, model_weights);
  }
  if (averaged)
    for (size_t i = 0; i < params.size(); ++i)
      tensors.emplace_back("iterate." + params[i].name, holds_average_ ? averages_[i] : *params[i].tensor);
  for (size_t i = 0; i < params.size(); ++i)
    if (velocities_[i].defined()) tensors.emplace_back("velocity." + params[i].name, velocities_[i]);
  std::map<std::string, std::string> meta = extra;
  meta["format"] = "pt";
  meta["unetcore.model"] = model_.config().to_json();
  meta["unetcore.training"] = options_json(options_, steps_done_, comm_.size());
  save_safetensors(path, tensors, meta);
}

void Trainer::resume(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  // The weights come from the checkpoint, so only the architecture must match (not how this
  // model was initialised); what makes the continuation the same run is checked below.
  const std::string saved = checkpoint_config(f, path).architecture_json();
  UNET_CHECK(saved == model_.config().architecture_json(), ValueError, "checkpoint '", path,
             "' was trained with model ", saved, " but this model is ", model_.config().architecture_json());
  const nlohmann::json training = checkpoint_training(f, path);
  // The seed draws every step's tile, augmentation and dropout; the loss normalisation sets the
  // step size (the pixel mean's steps are larger by the mean weight): continuing with another
  // of either would change the run, not resume it.
  const uint64_t saved_seed = training_field<uint64_t>(training, "seed", path);
  UNET_CHECK(saved_seed == options_.seed, ValueError, "checkpoint '", path, "' was trained with seed ", saved_seed,
             " but this run uses seed ", options_.seed, " (train_em --seed)");
  // The batch and tile sizes fix what each step samples (sample = step·batch + entry, placed for
  // the tile): another of either would draw other data from the same step on.
  const int64_t saved_batch = training_field<int64_t>(training, "batch", path, 1);
  UNET_CHECK(saved_batch == options_.batch, ValueError, "checkpoint '", path, "' was trained with batch ", saved_batch,
             " but this run uses batch ", options_.batch, " (train_em --batch)");
  const int64_t saved_tile = training_field<int64_t>(training, "tile", path, options_.tile);
  UNET_CHECK(saved_tile == options_.tile, ValueError, "checkpoint '", path, "' was trained with tile ", saved_tile,
             " but this run uses tile ", options_.tile, " (train_em --tile)");
  // The rank count fixes which rank draws which tiles, and the order the gradients are summed in.
  const int64_t saved_ranks = training_field<int64_t>(training, "ranks", path, 1);
  UNET_CHECK(saved_ranks == comm_.size(), ValueError, "checkpoint '", path, "' was trained on ", saved_ranks,
             saved_ranks == 1 ? " process" : " ranks", " but this run has ", comm_.size(), comm_.size() == 1 ? " process" : " ranks",
             ": a resumed run continues exactly only on as many ranks as wrote the checkpoint (start it with mpirun -np ",
             saved_ranks, " or srun -n ", saved_ranks, ")");
  const std::string saved_reduction = training_field<std::string>(training, "reduction", path, "weighted_mean");
  UNET_CHECK(saved_reduction == reduction_name(options_.reduction), ValueError, "checkpoint '", path,
             "' was trained with the loss reduction '", saved_reduction, "' but this run uses '",
             reduction_name(options_.reduction), "' (train_em --loss-mean)");
  const int64_t saved_step = training_field<int64_t>(training, "step", path);
  UNET_CHECK(!holds_average_, ValueError, "Trainer::resume: an AveragedWeights scope is alive; end it first");
  const auto params = model_.named_parameters();
  // A checkpoint written with averaging holds the iterate under "iterate." and the average under
  // the plain names; one without holds the iterate under the plain names (the average then
  // starts from it). Everything is read into new tensors first, so a bad file changes nothing.
  std::vector<Tensor> weights(params.size()), averages(averaging() ? params.size() : 0), velocities(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& name = params[i].name;
    weights[i] = Tensor::empty(params[i].tensor->shape(), DType::Float32, model_.device());
    load_parameter(f, path, f.find("iterate." + name) ? "iterate." + name : name, weights[i]);
    if (averaging()) {
      averages[i] = Tensor::empty(params[i].tensor->shape(), DType::Float32, model_.device());
      load_parameter(f, path, name, averages[i]);
    }
    if (f.find("velocity." + name)) {
      velocities[i] = Tensor::empty(params[i].tensor->shape(), DType::Float32, model_.device());
      load_parameter(f, path, "velocity." + name, velocities[i]);
    }
  }
  for (size_t i = 0; i < params.size(); ++i) params[i].tensor->copy_from(weights[i]);
  averages_ = std::move(averages);
  velocities_ = std::move(velocities);
  steps_done_ = saved_step;
}

Trainer::AveragedWeights::AveragedWeights(Trainer& trainer) : trainer_(trainer) {
  UNET_CHECK(!trainer_.holds_average_, ValueError, "Trainer::averaged_weights: a scope is already alive");
  trainer_.swap_average();
  trainer_.holds_average_ = true;
}

Trainer::AveragedWeights::~AveragedWeights() {
  trainer_.swap_average();
  trainer_.holds_average_ = false;
}

void Trainer::swap_average() {
  if (averages_.empty()) return;  // not averaging, or no step taken yet: the average is the model
  NoGradGuard no_grad;
  auto params = model_.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    if (!averages_[i].defined()) continue;
    const Tensor iterate = params[i].clone();
    params[i].copy_from(averages_[i]);
    averages_[i].copy_from(iterate);
  }
}

void save_model(UNet& model, const std::string& path, const std::map<std::string, std::string>& extra) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& p : model.named_parameters()) tensors.emplace_back(p.name, *p.tensor);
  std::map<std::string, std::string> meta = extra;
  meta["format"] = "pt";
  meta["unetcore.model"] = model.config().to_json();
  save_safetensors(path, tensors, meta);
}

std::unique_ptr<UNet> load_model(const std::string& path, Device device) {
  const SafetensorsFile f = load_safetensors(path);
  auto model = std::make_unique<UNet>(checkpoint_config(f, path), device);
  for (const auto& p : model->named_parameters()) load_parameter(f, path, p.name, *p.tensor);
  return model;
}

}  // namespace unet
