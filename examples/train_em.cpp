// examples/train_em.cpp — trains a U-Net on the ISBI 2012 EM data that the repository ships,
// then segments the validation slices and scores them with the challenge's measures.
//
//   train_em [--data DIR] [--out DIR] [--device auto|cpu|cuda] [--iterations N] [--minutes M]
//            [--base-channels C] [--tile S] [--seed K] [--lr LR] [--resume CKPT] ...
//
// Writes OUT/model.safetensors (weights — the moving average of the iterates by default —, the
// SGD iterate, momentum, configuration, training state),
// OUT/metrics.json (the keys of examples/evaluate), OUT/val/NN.tif (float probability of
// "cell interior"), OUT/val/NN_overlay.png, OUT/loss.png, OUT/log.jsonl.
// The training run itself is unet::TrainingRun (unet/training_run.h), shared with train_cells.
#include <CLI/CLI.hpp>
#include <filesystem>

#include "core/error.h"
#include "training_cli.h"
#include "unet/dataset.h"
#include "unet/training_run.h"
#include "unet/validation.h"

namespace fs = std::filesystem;
using namespace unet;

namespace {

std::string default_data_dir() {
  if (fs::exists("data/isbi2012/train/images")) return "data/isbi2012";
  return std::string(UNET_SOURCE_DIR) + "/data/isbi2012";
}

}  // namespace

int main(int argc, char** argv) {
  examples::TrainingArgs a;
  a.out = "out/train_em";
  std::string data_arg;
  int first_val = 20;
  CLI::App app{"Train a U-Net on ISBI 2012 EM slices, then segment and score the validation slices"};
  app.add_option("--data", data_arg, "dataset folder with train/images and train/labels (default: the shipped ISBI 2012)");
  examples::add_training_options(app, a, "train_em", "slices");
  app.add_option("--first-val", first_val, "slices before this index train, the rest validate")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    examples::TrainingSetup setup = examples::setup_training("train_em", a);

    // ---- data -------------------------------------------------------------------------------
    const std::string data = data_arg.empty() ? default_data_dir() : data_arg;
    const auto samples = load_folder_dataset(data + "/train/images", data + "/train/labels", LabelKind::BinaryMask);
    UNET_CHECK(first_val > 0 && first_val < static_cast<int>(samples.size()), ValueError,
               "--first-val ", first_val, " must leave training and validation slices (the data has ",
               samples.size(), ")");
    std::vector<TrainingSlice> train;
    for (int i = 0; i < first_val; ++i) train.push_back(make_training_slice(samples[i]));
    auto validation = std::make_shared<IsbiValidation>(std::vector<Sample>(samples.begin() + first_val, samples.end()));
    const auto& val = validation->samples();
    std::printf("train_em: %zu training slices (%s..%s), %zu validation slices (%s..%s) from %s\n",
                train.size(), samples.front().name.c_str(), samples[first_val - 1].name.c_str(), val.size(),
                val.front().name.c_str(), val.back().name.c_str(), data.c_str());
    std::printf("train_em: mean pixel weight of the training slices %.3f (w0 = 10, sigma = 5, balanced classes)\n",
                mean_pixel_weight(train));
    examples::apply_input_norm("train_em", a, "slices", train, setup.config);

    // ---- training and validation ------------------------------------------------------------
    const std::string& out = a.out;
    return examples::train_and_report(
        "train_em", setup, std::move(train), validation,
        out + "/metrics.json, " + out + "/val/*.tif (probability maps), " + out +
            "/val/*_overlay.png (red: predicted membrane, green: disagreement with the truth), " + out +
            "/loss.png, " + (fs::path(out) / "model.safetensors").string());
  } catch (const Error& e) {
    return examples::fail("train_em", e);  // (under mpirun: ends every rank)
  }
}
