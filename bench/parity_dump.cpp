// bench/parity_dump.cpp — the unetcore side of the PyTorch parity check (bench/pytorch_parity.py):
// builds a small U-Net from a seed, draws a random input, labels and pixel weights, runs forward,
// the weighted-mean cross-entropy and backward on the CPU with dropout off, and writes one
// safetensors file holding everything PyTorch needs to redo the computation and everything it is
// compared against:
//   <param names>            the weights (unetcore names, ConvTranspose2d layout for up-convs)
//   input [N,C,T,T], labels [N,O,O] (int32), weights [N,O,O]
//   logits [N,K,O,O], loss [1], grad.<param name> for every parameter
// The configuration goes into the metadata ("unetcore.model", plus "batch" and "tile").
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/softmax_xent.h"
#include "unet/model.h"
#include "unet/safetensors.h"

using namespace unet;

int main(int argc, char** argv) {
  std::string out = "parity";
  int64_t base = 8, classes = 3, in_channels = 1, batch = 2, tile_at_least = 100;
  int depth = 3, threads = 0;
  uint64_t seed = 7;
  // The model's input standardisation is on, so the parity covers it (these are the ISBI slices'
  // values, what `train_em --input-norm data` uses).
  float input_mean = 0.4865f, input_std = 0.1665f;
  CLI::App app{"Write unetcore's forward/loss/backward of a small U-Net for the PyTorch parity check"};
  app.add_option("--out", out, "output folder (writes OUT/parity.safetensors)")->capture_default_str();
  app.add_option("--base-channels", base, "channels of the first level")->capture_default_str();
  app.add_option("--depth", depth, "max-pool down-steps")->capture_default_str();
  app.add_option("--classes", classes, "output classes")->capture_default_str();
  app.add_option("--in-channels", in_channels, "input channels")->capture_default_str();
  app.add_option("--batch", batch, "batch size")->capture_default_str();
  app.add_option("--tile-at-least", tile_at_least, "the tile is the smallest valid input of at least this size")
      ->capture_default_str();
  app.add_option("--input-mean", input_mean, "the model's input standardisation: mean")->capture_default_str();
  app.add_option("--input-std", input_std, "the model's input standardisation: deviation")->capture_default_str();
  app.add_option("--seed", seed, "seed of the initialisation and the random data")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads (default: all cores)");
  CLI11_PARSE(app, argc, argv);

  try {
    if (threads > 0) set_num_threads(threads);
    UNetConfig config;
    config.in_channels = in_channels;
    config.num_classes = classes;
    config.base_channels = base;
    config.depth = depth;
    config.dropout = 0.0f;  // dropout masks are not reproducible across libraries: compare without
    config.init_seed = seed;
    config.input_mean = input_mean;
    config.input_std = input_std;
    const UNetGeometry g = config.geometry();
    const int64_t tile = g.valid_input_at_least(tile_at_least);
    const int64_t o = g.output_size(tile);

    UNet model(config, Device::cpu());
    // Random data from the standard library, independent of unetcore's own RNG under test.
    std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int32_t> label(0, static_cast<int32_t>(classes - 1));
    std::uniform_real_distribution<float> weight(0.25f, 4.0f);
    std::vector<float> x(static_cast<size_t>(batch * in_channels * tile * tile)), w(static_cast<size_t>(batch * o * o));
    std::vector<int32_t> l(w.size());
    for (float& v : x) v = normal(rng);
    for (size_t i = 0; i < w.size(); ++i) {
      l[i] = label(rng);
      w[i] = weight(rng);
    }
    const Tensor input = Tensor::from_vector(x, Shape{batch, in_channels, tile, tile});
    const Tensor labels = Tensor::from_vector(l, Shape{batch, o, o});
    const Tensor weights = Tensor::from_vector(w, Shape{batch, o, o});

    model.zero_grad();
    const Tensor logits = model.forward(input);
    const Tensor loss = weighted_cross_entropy(logits, labels, weights, LossReduction::WeightedMean);
    loss.backward();

    std::vector<std::pair<std::string, Tensor>> tensors;
    const auto params = model.named_parameters();
    for (const auto& p : params) tensors.emplace_back(p.name, *p.tensor);
    tensors.emplace_back("input", input);
    tensors.emplace_back("labels", labels);
    tensors.emplace_back("weights", weights);
    tensors.emplace_back("logits", logits.detach());
    tensors.emplace_back("loss", Tensor::from_vector(std::vector<float>{loss.item()}, Shape{1}));
    for (const auto& p : params) {
      const Tensor grad = p.tensor->grad();
      UNET_CHECK(grad.defined(), ValueError, "no gradient reached ", p.name);
      tensors.emplace_back("grad." + p.name, grad);
    }
    std::filesystem::create_directories(out);
    const std::string path = out + "/parity.safetensors";
    save_safetensors(path, tensors,
                     {{"unetcore.model", config.to_json()}, {"batch", std::to_string(batch)}, {"tile", std::to_string(tile)}});
    std::printf("parity_dump: base %lld, depth %d, %lld classes, batch %lld, tile %lld -> %lld, loss %.9g; "
                "%zu parameter tensors written to %s\n",
                static_cast<long long>(base), depth, static_cast<long long>(classes), static_cast<long long>(batch),
                static_cast<long long>(tile), static_cast<long long>(o), loss.item(), params.size(), path.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "parity_dump: %s\n", e.what());
    return 1;
  }
  return 0;
}
