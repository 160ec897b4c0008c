// unet/model.cpp — U-Net construction and forward pass.
#include "unet/model.h"

#include <cmath>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "kernels/dropout.h"
#include "kernels/elementwise.h"
#include "kernels/maxpool2d.h"

namespace unet {
namespace {

// Each layer draws its initial weights from its own range of the Philox stream.
InitSeed next_layer(InitSeed& init) {
  InitSeed mine = init;
  init.offset += uint64_t{1} << 32;
  return mine;
}

}  // namespace

UNetGeometry UNetConfig::geometry() const {
  UNetGeometry g;
  g.depth = depth;
  g.padding = padding;
  return g;
}

void UNetConfig::validate() const {
  UNET_CHECK(in_channels >= 1 && in_channels <= kMaxChannels, ValueError, "UNetConfig: in_channels must be in 1..",
             kMaxChannels, ", got ", in_channels);
  UNET_CHECK(num_classes >= 2 && num_classes <= kMaxChannels, ValueError, "UNetConfig: num_classes must be in 2..",
             kMaxChannels, ", got ", num_classes);
  UNET_CHECK(base_channels >= 1 && base_channels <= kMaxChannels, ValueError,
             "UNetConfig: base_channels must be in 1..", kMaxChannels, ", got ", base_channels);
  UNET_CHECK(depth >= 1 && depth <= 6, ValueError, "UNetConfig: depth must be in 1..6, got ", depth);
  UNET_CHECK(dropout >= 0.0f && dropout < 1.0f, ValueError, "UNetConfig: dropout must be in [0, 1), got ", dropout);
  UNET_CHECK(std::isfinite(input_mean), ValueError, "UNetConfig: input_mean must be finite, got ", input_mean);
  UNET_CHECK(std::isfinite(input_std) && input_std > 0.0f, ValueError,
             "UNetConfig: input_std must be finite and > 0 (1 = no scaling), got ", input_std);
}

namespace {
nlohmann::ordered_json architecture(const UNetConfig& c) {
  return {{"in_channels", c.in_channels}, {"num_classes", c.num_classes}, {"base_channels", c.base_channels},
          {"depth", c.depth}, {"padding", c.padding == Padding::Valid ? "valid" : "same"}, {"dropout", c.dropout},
          {"input_mean", c.input_mean}, {"input_std", c.input_std}};
}
}  // namespace

std::string UNetConfig::architecture_json() const { return architecture(*this).dump(); }

std::string UNetConfig::to_json() const {
  nlohmann::ordered_json j = architecture(*this);
  j["init_seed"] = init_seed;
  j["head_init"] = head_init == HeadInit::He ? "he" : "zero";
  return j.dump();
}

namespace {

// A field of the configuration: absent -> `fallback` (older checkpoints), or of the right JSON
// type and range; anything else is a ValueError naming the field (the text comes from files).
int64_t integer_field(const nlohmann::json& j, const char* key, int64_t lo, int64_t hi, std::optional<int64_t> fallback = {}) {
  const auto it = j.find(key);
  if (it == j.end()) {
    UNET_CHECK(fallback.has_value(), ValueError, "UNetConfig: the field '", key, "' is missing");
    return *fallback;
  }
  UNET_CHECK(it->is_number_integer(), ValueError, "UNetConfig: '", key, "' must be an integer, got ", it->dump());
  // Non-negative integers are stored unsigned, and may exceed int64_t.
  const bool fits = !it->is_number_unsigned() || it->get<uint64_t>() <= static_cast<uint64_t>(hi);
  UNET_CHECK(fits && it->get<int64_t>() >= lo && it->get<int64_t>() <= hi, ValueError, "UNetConfig: '", key,
             "' must be in ", lo, "..", hi, ", got ", it->dump());
  return it->get<int64_t>();
}

float float_field(const nlohmann::json& j, const char* key, float fallback) {
  const auto it = j.find(key);
  if (it == j.end()) return fallback;
  UNET_CHECK(it->is_number(), ValueError, "UNetConfig: '", key, "' must be a number, got ", it->dump());
  const double v = it->get<double>();
  UNET_CHECK(std::isfinite(v) && std::fabs(v) <= 3.0e38, ValueError, "UNetConfig: '", key,
             "' must be a finite float, got ", it->dump());
  return static_cast<float>(v);
}

std::string string_field(const nlohmann::json& j, const char* key, std::optional<std::string> fallback = {}) {
  const auto it = j.find(key);
  if (it == j.end()) {
    UNET_CHECK(fallback.has_value(), ValueError, "UNetConfig: the field '", key, "' is missing");
    return *fallback;
  }
  UNET_CHECK(it->is_string(), ValueError, "UNetConfig: '", key, "' must be a string, got ", it->dump());
  return it->get<std::string>();
}

}  // namespace

UNetConfig UNetConfig::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    UNET_THROW(ValueError, "UNetConfig::from_json: the model configuration is not valid JSON (", e.what(), ")");
  }
  UNET_CHECK(j.is_object(), ValueError, "UNetConfig::from_json: the model configuration is not a JSON object: ",
             j.dump().substr(0, 200));
  UNetConfig c;
  c.in_channels = integer_field(j, "in_channels", 1, kMaxChannels);
  c.num_classes = integer_field(j, "num_classes", 2, kMaxChannels);
  c.base_channels = integer_field(j, "base_channels", 1, kMaxChannels);
  c.depth = static_cast<int>(integer_field(j, "depth", 1, 6));
  const std::string pad = string_field(j, "padding");
  UNET_CHECK(pad == "valid" || pad == "same", ValueError, "UNetConfig: padding must be 'valid' or 'same', got '", pad, "'");
  c.padding = pad == "valid" ? Padding::Valid : Padding::Same;
  c.dropout = float_field(j, "dropout", 0.5f);
  c.input_mean = float_field(j, "input_mean", 0.0f);  // older checkpoints: no standardisation
  c.input_std = float_field(j, "input_std", 1.0f);
  const auto seed = j.find("init_seed");
  if (seed != j.end()) {
    UNET_CHECK(seed->is_number_unsigned(), ValueError, "UNetConfig: 'init_seed' must be a non-negative integer, got ",
               seed->dump());
    c.init_seed = seed->get<uint64_t>();
  }
  const std::string head = string_field(j, "head_init", "he");  // older checkpoints: He
  UNET_CHECK(head == "he" || head == "zero", ValueError, "UNetConfig: head_init must be 'he' or 'zero', got '", head, "'");
  c.head_init = head == "he" ? HeadInit::He : HeadInit::Zero;
  c.validate();
  return c;
}

int64_t UNetConfig::parameter_count() const {
  validate();
  // A k x k convolution from a to b channels holds a·b·k² weights and b biases; an up-convolution
  // (2 x 2) likewise. The levels double the channels on the way down and halve them on the way up.
  const auto conv = [](int64_t a, int64_t b, int64_t k) { return a * b * k * k + b; };
  int64_t count = 0, in = in_channels, channels = base_channels;
  for (int level = 0; level <= depth; ++level) {
    count += conv(in, channels, 3) + conv(channels, channels, 3);
    in = channels;
    channels *= 2;
  }
  channels = in;
  for (int level = 0; level < depth; ++level) {
    const int64_t out = channels / 2;
    count += conv(channels, out, 2) + conv(2 * out, out, 3) + conv(out, out, 3);
    channels = out;
  }
  return count + conv(channels, num_classes, 1);
}

UNet::DoubleConv::DoubleConv(int64_t in, int64_t out, Padding padding, InitSeed& init, Device device)
    : conv1(in, out, 3, padding, /*fuse_relu=*/true, next_layer(init), device),
      conv2(out, out, 3, padding, /*fuse_relu=*/true, next_layer(init), device) {
  register_module("conv1", conv1);
  register_module("conv2", conv2);
}

UNet::UpLevel::UpLevel(int64_t in, int64_t out, Padding padding, InitSeed& init, Device device)
    : upconv(in, out, next_layer(init), device), convs(2 * out, out, padding, init, device) {
  register_module("upconv", upconv);
  register_module("", convs);
}

UNet::UNet(const UNetConfig& config, Device device) : config_(config), device_(device) {
  config.validate();
  InitSeed init{config.init_seed, 0};
  int64_t channels = config.base_channels, in = config.in_channels;
  for (int level = 0; level <= config.depth; ++level) {
    down_.push_back(std::make_unique<DoubleConv>(in, channels, config.padding, init, device));
    register_module("down" + std::to_string(level), *down_.back());
    in = channels;
    channels *= 2;
  }
  channels = in;  // channels at the bottom
  for (int level = 0; level < config.depth; ++level) {
    up_.push_back(std::make_unique<UpLevel>(channels, channels / 2, config.padding, init, device));
    register_module("up" + std::to_string(level), *up_.back());
    channels /= 2;
  }
  head_ = std::make_unique<Conv2d>(channels, config.num_classes, 1, Padding::Valid, false, next_layer(init), device);
  register_module("head", *head_);
  if (config.head_init == HeadInit::Zero) head_->weight.copy_from(Tensor::zeros(head_->weight.shape(), DType::Float32, device));
}

Tensor UNet::maybe_dropout(const Tensor& x, uint64_t seed, uint64_t stream, int64_t first_entry) {
  if (config_.dropout <= 0.0f || !training()) return x;
  // Distinct stream offsets for the two dropout sites so their masks are independent; entry n of
  // the whole batch starts n entries into its site's stream.
  const uint64_t entry_offset = static_cast<uint64_t>(first_entry) * static_cast<uint64_t>(x.numel() / x.dim(0));
  return dropout(x, config_.dropout, seed, (stream << 40) + entry_offset, /*training=*/true);
}

void UNet::set_precision(Precision p) {
  check_precision(p, device_, "UNet::set_precision");
  for (auto& level : down_) {
    level->conv1.set_precision(p);
    level->conv2.set_precision(p);
  }
  for (auto& level : up_) {
    level->upconv.set_precision(p);
    level->convs.conv1.set_precision(p);
    level->convs.conv2.set_precision(p);
  }
  head_->set_precision(p);
  precision_ = p;
}

Tensor UNet::forward(const Tensor& x, uint64_t dropout_seed, int64_t first_entry) {
  check_rank(x, 4, "UNet::forward", "x");
  UNET_CHECK(x.dim(1) == config_.in_channels, ShapeError, "UNet::forward: input ", x.shape().str(),
             " has ", x.dim(1), " channels, the model expects ", config_.in_channels);
  UNET_CHECK(x.device() == device_, DeviceError, "UNet::forward: input is on ", x.device().str(),
             ", the model on ", device_.str());
  const UNetGeometry g = config_.geometry();
  g.require_valid_input(x.dim(2), "input height");
  g.require_valid_input(x.dim(3), "input width");
  UNET_CHECK(first_entry >= 0, ValueError, "UNet::forward: first_entry (x's first entry in the whole batch) must be >= 0, got ",
             first_entry);

  std::vector<Tensor> skips;
  Tensor h = x;
  if (config_.input_mean != 0.0f || config_.input_std != 1.0f)
    h = affine(x, 1.0f / config_.input_std, -config_.input_mean / config_.input_std);
  for (int level = 0; level < config_.depth; ++level) {
    h = down_[level]->forward(h);
    if (level == config_.depth - 1) h = maybe_dropout(h, dropout_seed, 1, first_entry);
    skips.push_back(h);
    h = max_pool2d(h);
  }
  h = maybe_dropout(down_.back()->forward(h), dropout_seed, 2, first_entry);
  for (int i = 0; i < config_.depth; ++i) {
    // conv1(crop_concat(skip, up)), read in place: the concatenated map is never materialised.
    const Tensor up = up_[i]->upconv.forward(h);
    const DoubleConv& convs = up_[i]->convs;
    h = convs.conv2.forward(convs.conv1.forward_concat(skips[config_.depth - 1 - i], up));
  }
  return head_->forward(h);
}

}  // namespace unet
