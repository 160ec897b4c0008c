// examples/export_model.cpp — turns a training checkpoint into a model file: the weights that
// inference uses (the averaged weights when training averaged them) and the configuration,
// without momentum and SGD iterate (unet/model_files.h, export_model).
//
//   export_model --checkpoint out/train_em/model.safetensors --out my-model.safetensors [--card card.json]
//
// --card attaches a JSON object describing the model ("unetcore.card": how it was trained, on
// what, its scores; scripts/train-model writes one, models/README.md lists the fields).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "unet/model_files.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::string checkpoint, out, card_path;
  CLI::App app{"Write the weights of a training checkpoint as a model file for inference"};
  app.add_option("--checkpoint", checkpoint, "checkpoint written by train_em")->required();
  app.add_option("--out", out, "model file to write (.safetensors)")->required();
  app.add_option("--card", card_path, "JSON file describing the model, stored as the metadata entry unetcore.card");
  CLI11_PARSE(app, argc, argv);
  try {
    std::map<std::string, std::string> metadata;
    if (!card_path.empty()) {
      std::ifstream in(card_path);
      UNET_CHECK(in.good(), unet::IOError, card_path, ": cannot open the model card");
      const auto card = nlohmann::json::parse(in, nullptr, false);
      UNET_CHECK(card.is_object(), unet::IOError, card_path, ": the model card must be a JSON object");
      metadata["unetcore.card"] = card.dump();
    }
    unet::export_model(checkpoint, out, metadata);
    std::printf("export_model: %s (%.1f MB) -> %s (%.1f MB, weights and configuration only)\n", checkpoint.c_str(),
                fs::file_size(checkpoint) / 1e6, out.c_str(), fs::file_size(out) / 1e6);
    return 0;
  } catch (const unet::Error& e) {
    std::fprintf(stderr, "export_model: error: %s\n", e.what());
    return 1;
  }
}
