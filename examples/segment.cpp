// examples/segment.cpp — overlap-tile inference with a trained model.
//
//   segment --model M --input IMAGE_OR_DIR --out DIR [--tile S] [--tta] [--device auto|cpu|cuda]
//
// For every input image writes DIR/<name>.tif (float32 probability of each non-background
// class; for two classes, the foreground probability) and DIR/<name>_overlay.png.
#include <CLI/CLI.hpp>
#include <filesystem>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "program.h"
#include "progress.h"
#include "unet/dataset.h"
#include "unet/image_io.h"
#include "unet/inference.h"
#include "unet/trainer.h"
#include "unet/visualize.h"

namespace fs = std::filesystem;
using namespace unet;

int main(int argc, char** argv) {
  std::string model_path, input, out, device_name = "auto", precision = "auto";
  int64_t tile = 0;
  bool tta = false;
  CLI::App app{"Segment images with a trained U-Net (overlap-tile, mirrored borders)"};
  app.add_option("--model", model_path, "model written by train_em (safetensors)")->required();
  app.add_option("--input", input, "an image file or a folder of images")->required();
  app.add_option("--out", out, "output folder")->required();
  app.add_option("--tile", tile, "input tile size (default: the largest valid size up to 572 that the image needs)");
  app.add_flag("--tta", tta, "average over the 8 flips/rotations");
  app.add_option("--device", device_name, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--precision", precision,
                 "convolution arithmetic: auto (tf32 on a GPU, fp32 on the CPU), fp32, tf32 or bf16; "
                 "the CPU computes in fp32 only")
      ->capture_default_str();
  return examples::run_program("segment", app, argc, argv, [&] {
    Device device = Device::cpu();
    if (device_name == "auto") {
      if (cuda_available() && !cuda_rt::is_simulated()) device = Device::cuda();
    } else {
      device = parse_device(device_name);
    }
    auto model = load_model(model_path, device);
    model->set_precision(choose_precision(precision, device));
    std::vector<std::string> files;
    if (fs::is_directory(input))
      files = list_image_files(input);
    else
      files.push_back(input);
    fs::create_directories(out);
    std::printf("segment: %zu image(s) on %s with %s (base %lld, depth %d), convolutions in %s\n", files.size(),
                device.str().c_str(), model_path.c_str(), static_cast<long long>(model->config().base_channels),
                model->config().depth, precision_name(model->precision()));
    examples::Progress progress("segment", static_cast<int64_t>(files.size()));
    for (size_t i = 0; i < files.size(); ++i) {
      Image img = normalised(read_image(files[i]));
      if (model->config().in_channels == 1 && img.channels != 1) img = to_grey(img);
      const Tensor x = Tensor::from_vector(to_planar(img), Shape{img.channels, img.height, img.width});
      const Tensor probs = segment_image(*model, x, {tile, tta});
      const int64_t k = probs.dim(0), plane = probs.dim(1) * probs.dim(2);
      Image fg = make_image(img.width, img.height, static_cast<int>(k == 2 ? 1 : k - 1), SampleFormat::F32);
      for (int64_t c = 1; c < k; ++c)
        for (int64_t p = 0; p < plane; ++p) fg.pixels[p * fg.channels + (c - 1)] = probs.data<float>()[c * plane + p];
      const std::string stem = fs::path(files[i]).stem().string();
      write_tiff((fs::path(out) / (stem + ".tif")).string(), fg);
      if (fg.channels == 1 && img.channels == 1)
        write_png((fs::path(out) / (stem + "_overlay.png")).string(), segmentation_overlay(img, fg));
      progress.update(static_cast<int64_t>(i + 1), stem);
    }
    progress.finish();
    std::printf("segment: wrote %zu probability map(s) and overlay(s) to %s\n", files.size(), out.c_str());
    return 0;
  });
}
