// tests/fuzz/fuzz_safetensors.cpp — checkpoint files: load_safetensors (header length, JSON
// header, dtypes, shapes, byte ranges, metadata), load_model (the model configuration in the
// metadata, the parameters it needs) and Trainer::resume into a tiny model (the training state).
// Contract: a file loads, or IOError names it; resume may also refuse a valid checkpoint of
// another run with ValueError. Seeds: corpus/safetensors (checkpoints of a tiny model, with and
// without training state, momentum and weight average).
#include "fuzz.h"
#include "unet/safetensors.h"
#include "unet/trainer.h"

using namespace unet;

namespace {

// A depth-1, one-channel U-Net and a trainer over one 92 x 92 slice: the configuration the seed
// checkpoints were written with (tests/fuzz/make_seeds.cpp), so resume reaches its later checks.
struct TinyRun {
  UNetConfig config;
  std::unique_ptr<UNet> model;
  std::unique_ptr<Trainer> trainer;
  TinyRun() {
    config.base_channels = 1;
    config.depth = 1;
    model = std::make_unique<UNet>(config, Device::cpu());
    TrainingSlice s;
    s.name = "slice";
    s.image = Tensor::zeros(Shape{1, 92, 92});
    s.classes = Tensor::zeros(Shape{92, 92}, DType::Int32);
    s.weights = Tensor::full(Shape{92, 92}, 1.0f);
    TrainOptions options;
    options.tile = 92;
    options.weight_average = 0.9;
    trainer = std::make_unique<Trainer>(*model, std::vector<TrainingSlice>{s}, options);
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return 0; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static TinyRun run;
  const std::string path = fuzz::input_file(data, size, "model.safetensors");
  fuzz::expect_clean(path, [&] { load_safetensors(path); });
  fuzz::expect_clean(path, [&] { load_model(path, Device::cpu()); });
  fuzz::expect_clean(path, [&] {
    try {
      run.trainer->resume(path);
    } catch (const ValueError&) {  // a valid checkpoint of another model or run
    }
  });
  return 0;
}
