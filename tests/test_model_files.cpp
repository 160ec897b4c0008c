// tests/test_model_files.cpp — named models: the search folders ($UNETCORE_MODEL_PATH, extra
// folders), lookup by name or path and its errors, loading with metadata, the weights-only
// export of a training checkpoint, and the model shipped in models/.
#include <algorithm>
#include <cstdlib>
#include <optional>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"
#include "unet/inference.h"
#include "unet/model_files.h"
#include "unet/safetensors.h"
#include "unet/trainer.h"

using namespace unet;
namespace fs = std::filesystem;

namespace {

UNetConfig tiny_config() {
  UNetConfig c;
  c.base_channels = 2;
  c.depth = 1;
  c.init_seed = 5;
  return c;
}

// Sets an environment variable for a scope and restores the old value.
struct EnvGuard {
  std::string name;
  std::optional<std::string> saved;
  EnvGuard(const char* n, const std::string& value) : name(n) {
    if (const char* old = std::getenv(n)) saved = old;
    setenv(n, value.c_str(), 1);
  }
  ~EnvGuard() {
    if (saved) setenv(name.c_str(), saved->c_str(), 1);
    else unsetenv(name.c_str());
  }
};

}  // namespace

TEST_CASE("Models are found by path or by name in the search folders, with errors that list them", "[models]") {
  const test::TempDir a("unet_models_a"), b("unet_models_b");
  UNet model(tiny_config(), Device::cpu());
  save_model(model, a.file("alpha.safetensors"), {{"note", "in a"}});
  save_model(model, b.file("alpha.safetensors"), {{"note", "in b"}});
  save_model(model, b.file("beta.safetensors"));
  const EnvGuard env("UNETCORE_MODEL_PATH", a.path.string() + ":/no/such/folder:" + b.path.string());
  const auto dirs = model_search_dirs();
  REQUIRE(dirs.size() >= 2);
  CHECK(dirs[0] == a.path.string());  // $UNETCORE_MODEL_PATH first, in order; missing folders dropped
  CHECK(dirs[1] == b.path.string());
  CHECK(find_model("alpha") == a.file("alpha.safetensors"));  // the first folder wins
  CHECK(find_model("beta") == b.file("beta.safetensors"));
  CHECK(find_model(b.file("alpha.safetensors")) == b.file("alpha.safetensors"));  // a path is a path
  const auto names = available_models();
  CHECK(std::count(names.begin(), names.end(), "alpha") == 1);
  CHECK(std::count(names.begin(), names.end(), "beta") == 1);
  CHECK_THROWS_AS(find_model("gamma"), IOError);
  CHECK_THROWS_WITH(find_model("gamma"), Catch::Contains("no model named 'gamma'") && Catch::Contains("alpha") &&
                                             Catch::Contains(b.path.string()));
  CHECK_THROWS_WITH(find_model("../alpha"), Catch::Contains("no such model file"));
  const ModelFile f = open_model("alpha", Device::cpu());
  CHECK(f.path == a.file("alpha.safetensors"));
  CHECK(f.metadata.at("note") == "in a");
  CHECK(f.model->config().base_channels == 2);
  // Extra folders come after $UNETCORE_MODEL_PATH.
  const test::TempDir c("unet_models_c");
  save_model(model, c.file("gamma.safetensors"));
  CHECK(find_model("gamma", {c.path.string()}) == c.file("gamma.safetensors"));
}

TEST_CASE("export_model keeps what inference needs and drops the training state", "[models]") {
  const test::TempDir dir("unet_export");
  UNetConfig config = tiny_config();
  config.dropout = 0;
  UNet model(config, Device::cpu());
  Sample s;
  s.name = "x";
  s.image = make_image(40, 40, 1, SampleFormat::F32);
  s.labels = make_label_image(40, 40);
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 40; ++x) {
      s.image.at(x, y) = ((x / 5 + y / 7) % 2) ? 0.8f : 0.2f;
      s.labels.at(x, y) = ((x / 5 + y / 7) % 2) ? 1 + x / 10 : 0;
    }
  TrainOptions options;
  options.tile = config.geometry().valid_input_at_least(20);
  options.weight_average = 0.9;  // the checkpoint then holds weights, iterate and momentum
  Trainer trainer(model, {make_training_slice(s)}, options);
  for (int i = 0; i < 3; ++i) trainer.step();
  const std::string ckpt = dir.file("ckpt.safetensors"), out = dir.file("model.safetensors");
  trainer.save_checkpoint(ckpt, {{"kept", "yes"}});
  export_model(ckpt, out, {{"unetcore.card", R"({"name": "tiny"})"}, {"kept", "replaced"}});

  const SafetensorsFile exported = load_safetensors(out), full = load_safetensors(ckpt);
  const auto params = model.named_parameters();
  REQUIRE(exported.tensors.size() == params.size());  // no velocity.*, no iterate.*
  REQUIRE(full.tensors.size() == 3 * params.size());
  for (const auto& p : params) CHECK(exported.at(p.name).to_vector() == full.at(p.name).to_vector());
  CHECK(fs::file_size(out) * 2 < fs::file_size(ckpt));
  CHECK(exported.metadata.at("unetcore.model") == full.metadata.at("unetcore.model"));
  CHECK(exported.metadata.at("unetcore.training") == full.metadata.at("unetcore.training"));
  CHECK(exported.metadata.at("kept") == "replaced");
  CHECK(read_safetensors_metadata(out) == exported.metadata);
  // The exported model segments exactly like the checkpoint it came from.
  const Tensor image = test::random_tensor(Shape{1, 23, 17}, 3, Device::cpu(), 0.0, 1.0);
  CHECK(segment_image(*load_model(out, Device::cpu()), image).to_vector() ==
        segment_image(*load_model(ckpt, Device::cpu()), image).to_vector());
  CHECK_THROWS_AS(export_model(dir.file("missing.safetensors"), dir.file("x.safetensors")), IOError);
}

TEST_CASE("The shipped model isbi2012-em loads by name and describes itself", "[models]") {
  const ModelFile f = open_model("isbi2012-em", Device::cpu());
  CHECK(fs::path(f.path).parent_path() == fs::path(UNET_SOURCE_DIR) / "models");
  CHECK(f.model->config().base_channels == 16);  // the CPU configuration of train_em
  CHECK(f.model->config().depth == 4);
  const auto card = nlohmann::json::parse(f.metadata.at("unetcore.card"));
  for (const char* key : {"name", "summary", "provisional", "commit", "seed", "command", "train", "validation",
                          "scores"})
    CHECK(card.contains(key));
  CHECK(card["name"] == "isbi2012-em");
  CHECK(card["scores"].contains("rand_error"));
  // Weights only: the file holds exactly the parameters.
  CHECK(load_safetensors(f.path).tensors.size() == f.model->named_parameters().size());
}
