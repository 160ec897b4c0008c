// unet/model.cpp — U-Net construction and forward pass.
#include "unet/model.h"

#include <cmath>

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
  UNET_CHECK(in_channels >= 1, ValueError, "UNetConfig: in_channels must be >= 1, got ", in_channels);
  UNET_CHECK(num_classes >= 2, ValueError, "UNetConfig: num_classes must be >= 2, got ", num_classes);
  UNET_CHECK(base_channels >= 1, ValueError, "UNetConfig: base_channels must be >= 1, got ", base_channels);
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

UNetConfig UNetConfig::from_json(const std::string& text) {
  UNetConfig c;
  try {
    const auto j = nlohmann::json::parse(text);
    c.in_channels = j.at("in_channels").get<int64_t>();
    c.num_classes = j.at("num_classes").get<int64_t>();
    c.base_channels = j.at("base_channels").get<int64_t>();
    c.depth = j.at("depth").get<int>();
    const std::string pad = j.at("padding").get<std::string>();
    UNET_CHECK(pad == "valid" || pad == "same", ValueError, "UNetConfig: padding must be 'valid' or 'same', got '", pad, "'");
    c.padding = pad == "valid" ? Padding::Valid : Padding::Same;
    c.dropout = j.value("dropout", 0.5f);
    c.input_mean = j.value("input_mean", 0.0f);  // older checkpoints: no standardisation
    c.input_std = j.value("input_std", 1.0f);
    c.init_seed = j.value("init_seed", uint64_t{0});
    const std::string head = j.value("head_init", std::string("he"));  // older checkpoints: He
    UNET_CHECK(head == "he" || head == "zero", ValueError, "UNetConfig: head_init must be 'he' or 'zero', got '", head, "'");
    c.head_init = head == "he" ? HeadInit::He : HeadInit::Zero;
  } catch (const nlohmann::json::exception& e) {
    UNET_THROW(ValueError, "UNetConfig::from_json: bad model configuration (", e.what(), "): ", text);
  }
  c.validate();
  return c;
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
