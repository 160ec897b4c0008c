// tests/test_model.cpp — the U-Net: parameter count and names of the paper configuration, the
// 572 -> 388 size relation, CPU vs CUDA agreement of a small model, bad configurations.
#include "core/autograd.h"
#include "core/error.h"
#include "kernels/reduce.h"
#include "test_util.h"
#include "unet/model.h"

using namespace unet;

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
  UNetConfig cfg;
  cfg.base_channels = 4;
  cfg.depth = 2;
  cfg.dropout = 0.0f;
  cfg.init_seed = 5;
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
