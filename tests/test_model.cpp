// tests/test_model.cpp — the U-Net: parameter count and names of the paper configuration, the
// 572 -> 388 size relation, CPU vs CUDA agreement of a small model, bad configurations.
#include "core/autograd.h"
#include "core/error.h"
#include "kernels/reduce.h"
#include "test_util.h"
#include "unet/model.h"

using namespace unet;

namespace {
// Two levels of four channels without dropout: cheap to run, deterministic in training mode.
UNetConfig small_config(uint64_t init_seed) {
  UNetConfig c;
  c.base_channels = 4;
  c.depth = 2;
  c.dropout = 0.0f;
  c.init_seed = init_seed;
  return c;
}
}  // namespace

TEST_CASE("The paper configuration has 31,030,658 parameters", "[model]") {
  UNetConfig paper;  // in 1, classes 2, base 64, depth 4, valid
  UNet model(paper, Device::cpu());
  CHECK(model.parameter_count() == 31030658);
  const auto params = model.named_parameters();
  CHECK(params.size() == 23 * 2);  // 23 convolutions (incl. 4 up-convolutions), weight + bias
  CHECK(params.front().name == "down0.conv1.weight");
  CHECK(params.back().name == "head.bias");
  CHECK(model.named_parameters()[2].name == "down0.conv2.weight");
  // He initialisation: std sqrt(2 / (9 * 64)) for a 3×3 convolution over 64 channels.
  const auto w = params[2].tensor->to_vector();
  double sq = 0.0;
  for (float v : w) sq += static_cast<double>(v) * v;
  const double std_measured = std::sqrt(sq / w.size()), expected = std::sqrt(2.0 / 576.0);
  // 36864 samples: the std estimate has relative error ~1/sqrt(2n) = 0.4%; allow 3%.
  CHECK(std::fabs(std_measured / expected - 1.0) < 0.03);
}

TEST_CASE("A 572 tile gives a 388 output with the paper's layout", "[model]") {
  UNetConfig cfg;
  cfg.base_channels = 2;  // the paper's geometry, thin channels: cheap to run
  UNet model(cfg, Device::cpu());
  NoGradGuard no_grad;
  const Tensor x = test::random_tensor(Shape{1, 1, 572, 572}, 3);
  const Tensor y = model.forward(x);
  CHECK(y.shape() == Shape{1, 2, 388, 388});
  CHECK_THROWS_AS(model.forward(test::random_tensor(Shape{1, 1, 570, 572}, 3)), ShapeError);
  CHECK_THROWS_WITH(model.forward(test::random_tensor(Shape{1, 1, 570, 572}, 3)),
                    Catch::Contains("556") && Catch::Contains("572"));
  CHECK_THROWS_AS(model.forward(test::random_tensor(Shape{1, 3, 572, 572}, 3)), ShapeError);
}

TEST_CASE("A small U-Net gives the same logits and gradients on CPU and CUDA", "[model][cuda]") {
  UNetConfig cfg = small_config(5);
  cfg.input_mean = 0.3f;  // the standardisation runs on each device too
  cfg.input_std = 0.2f;
  const int64_t tile = cfg.geometry().valid_input_at_least(44);
  const Tensor x = test::random_tensor(Shape{1, 1, tile, tile}, 8);
  std::vector<std::vector<float>> logits, grads;
  for (Device dev : {Device::cpu(), test::cuda_device()}) {
    UNet model(cfg, dev);
    const Tensor y = model.forward(x.to(dev));
    logits.push_back(y.to_vector());
    sum(y).backward();
    grads.push_back(model.named_parameters()[0].tensor->grad().to_vector());
  }
  // Same Philox weights on both devices; float32 convolutions with reductions up to 9·16 = 144
  // terms per layer, through ~10 layers: errors compound to a few hundred ulps at most.
  test::require_close(logits[1], logits[0], 1e-4, 1e-4, "logits CPU vs CUDA");
  test::require_close(grads[1], grads[0], 1e-3, 1e-3, "first-layer weight gradient CPU vs CUDA");
}

TEST_CASE("Bad U-Net configurations are refused", "[model][errors]") {
  UNetConfig c;
  c.num_classes = 1;
  CHECK_THROWS_AS(UNet(c, Device::cpu()), ValueError);
  c = UNetConfig{};
  c.dropout = 1.0f;
  CHECK_THROWS_AS(c.validate(), ValueError);
  CHECK_THROWS_AS(UNetConfig::from_json("{\"in_channels\": 1}"), ValueError);
  UNetConfig d;
  d.base_channels = 8;
  CHECK(UNetConfig::from_json(d.to_json()).base_channels == 8);
  for (float bad_std : {0.0f, -0.5f, NAN, INFINITY}) {
    UNetConfig e;
    e.input_std = bad_std;
    CHECK_THROWS_WITH(e.validate(), Catch::Contains("input_std"));
  }
  UNetConfig f;
  f.input_mean = NAN;
  CHECK_THROWS_WITH(UNet(f, Device::cpu()), Catch::Contains("input_mean"));
}

TEST_CASE("Input standardisation: the model sees (x - mean) / std, and its checkpoint says so", "[model]") {
  const UNetConfig plain = small_config(11);
  UNetConfig standardised = plain;
  standardised.input_mean = 0.4865f;
  standardised.input_std = 0.1665f;
  UNet a(plain, Device::cpu()), b(standardised, Device::cpu());  // the same weights
  const int64_t tile = plain.geometry().valid_input_at_least(44);
  const Tensor x = test::random_tensor(Shape{1, 1, tile, tile}, 12, Device::cpu(), 0.0, 1.0);
  std::vector<float> xs = x.to_vector();
  for (float& v : xs) v = static_cast<float>((static_cast<double>(v) - 0.4865) / 0.1665);
  const Tensor ya = a.forward(Tensor::from_vector(xs, x.shape())), yb = b.forward(x);
  // The standardised input differs from the double-rounded one by an ulp or two (the model
  // multiplies by 1/std in float); through 7 layers with 36-term sums that stays ~1e-5.
  test::require_close(yb.to_vector(), ya.to_vector(), 1e-5, 1e-4, "standardising model vs plain model on (x-m)/s");
  // Without the standardisation the same weights give clearly different logits.
  NoGradGuard no_grad;
  const auto y_raw = a.forward(x).to_vector(), y_std = yb.to_vector();
  double diff = 0.0;
  for (size_t i = 0; i < y_raw.size(); ++i) diff = std::max(diff, std::fabs(static_cast<double>(y_raw[i]) - y_std[i]));
  CHECK(diff > 1e-2);

  // Part of the architecture (it changes the forward pass): it round-trips, a checkpoint from
  // before the fields existed loads as no standardisation, and resuming across a change is refused.
  const UNetConfig back = UNetConfig::from_json(standardised.to_json());
  CHECK(back.input_mean == standardised.input_mean);
  CHECK(back.input_std == standardised.input_std);
  const UNetConfig old = UNetConfig::from_json(
      R"({"in_channels":1,"num_classes":2,"base_channels":4,"depth":4,"padding":"valid"})");
  CHECK(old.input_mean == 0.0f);
  CHECK(old.input_std == 1.0f);
  CHECK(plain.architecture_json() != standardised.architecture_json());
}

TEST_CASE("A zero-initialised head starts every pixel at p = 1/K, other layers unchanged", "[model]") {
  UNetConfig he;
  he.base_channels = 4;
  he.init_seed = 3;
  UNetConfig zero = he;
  zero.head_init = HeadInit::Zero;
  UNet a(he, Device::cpu()), b(zero, Device::cpu());
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i + 2 < pa.size(); ++i)  // all but head.weight, head.bias: the same draws
    CHECK(pa[i].tensor->to_vector() == pb[i].tensor->to_vector());
  for (float v : pb[pb.size() - 2].tensor->to_vector()) REQUIRE(v == 0.0f);
  // The He head is not zero (so the test above means something).
  double sq = 0.0;
  for (float v : pa[pa.size() - 2].tensor->to_vector()) sq += static_cast<double>(v) * v;
  CHECK(sq > 0.0);
  NoGradGuard no_grad;
  const Tensor x = test::random_tensor(Shape{1, 1, 188, 188}, 9, Device::cpu(), 0.0, 1.0);
  for (float v : b.forward(x).to_vector()) REQUIRE(v == 0.0f);  // bias is zero too

  // The configuration round-trips; a checkpoint from before the field existed loads as He.
  CHECK(UNetConfig::from_json(zero.to_json()).head_init == HeadInit::Zero);
  CHECK(UNetConfig::from_json(
            R"({"in_channels":1,"num_classes":2,"base_channels":4,"depth":4,"padding":"valid"})")
            .head_init == HeadInit::He);
  CHECK_THROWS_AS(UNetConfig::from_json(
                      R"({"in_channels":1,"num_classes":2,"base_channels":4,"depth":4,"padding":"valid","head_init":"ones"})"),
                  ValueError);
}
