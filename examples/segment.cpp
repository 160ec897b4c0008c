// examples/segment.cpp — overlap-tile inference with a trained model.
//
//   segment --model M --input IMAGE_OR_DIR --out DIR [--tile S] [--tta] [--device auto|cpu|cuda]
//           [--instances [--threshold T] [--min-size N] [--fill-holes on|off] [--restore-border R]]
//
// For every input image writes DIR/<name>.tif (float32 probability of each non-background
// class; for two classes, the foreground probability) and DIR/<name>_overlay.png. With
// --instances it writes the objects instead, in the Cell Tracking Challenge's result layout:
// DIR/maskTTT.tif for an input tTTT.tif (DIR/<name>_mask.tif otherwise; 16-bit, 0 = background)
// and DIR/overlays/<name>.png. The instance options default to those the model was trained with
// (train_cells keeps them in the checkpoint), else to unet::InstanceOptions'.
// Under mpirun/srun with N ranks, rank r segments the folder's images r, r + N, r + 2N, … (in
// the folder's order) and writes their outputs: the files are those of a single process.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <optional>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "job_cli.h"
#include "progress.h"
#include "unet/dataset.h"
#include "unet/image_io.h"
#include "unet/inference.h"
#include "unet/instances.h"
#include "unet/safetensors.h"
#include "unet/trainer.h"
#include "unet/visualize.h"

namespace fs = std::filesystem;
using namespace unet;

namespace {

// --instances: the options (the model's own, then the flags given) and the files of one image.
struct InstanceFlags {
  bool on = false;
  std::optional<float> threshold, restore_border;
  std::optional<int64_t> min_size;
  std::optional<std::string> fill_holes;  // on | off

  InstanceOptions resolve(const std::string& model_path) const {
    InstanceOptions o;
    const SafetensorsFile f = load_safetensors(model_path);
    const auto saved = f.metadata.find("unetcore.instances");
    if (saved != f.metadata.end()) o = InstanceOptions::from_json(saved->second);
    if (threshold) o.threshold = *threshold;
    if (restore_border) o.restore_border = *restore_border;
    if (min_size) o.min_size = *min_size;
    if (fill_holes) o.fill_holes = *fill_holes == "on";
    o.validate();
    return o;
  }
};

void write_instances(const fs::path& out, const std::string& stem, const Image& grey, const Image& probability,
                     const InstanceOptions& options) {
  const LabelImage objects = instances_from_probability(probability, options);
  write_instance_mask((out / instance_mask_name(stem)).string(), objects);
  fs::create_directories(out / "overlays");
  write_png((out / "overlays" / (stem + ".png")).string(), instance_overlay(grey, objects));
}

}  // namespace

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
  InstanceFlags inst;
  app.add_flag("--instances", inst.on,
               "write objects (maskTTT.tif, the Cell Tracking Challenge's result layout) instead of probabilities");
  app.add_option("--threshold", inst.threshold, "instances: foreground = probability > threshold (default: the model's, else 0.5)");
  app.add_option("--min-size", inst.min_size, "instances: remove objects of fewer pixels (default: the model's, else 0)");
  app.add_option("--fill-holes", inst.fill_holes, "instances: fill holes inside objects, on or off (default: the model's, else off)")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--restore-border", inst.restore_border,
                 "instances: give gaps up to twice this wide back to the nearest object (default: the model's, else 0)");
  CLI11_PARSE(app, argc, argv);
  try {
    Communicator& job = examples::join_job();  // first: under MPI it picks this rank's GPU
    Device device = Device::cpu();
    if (device_name == "auto") {
      if (cuda_available() && !cuda_rt::is_simulated()) device = Device::cuda();
    } else {
      device = parse_device(device_name);
    }
    auto model = load_model(model_path, device);
    model->set_precision(choose_precision(precision, device));
    std::vector<std::string> all_files, files;
    if (fs::is_directory(input))
      all_files = list_image_files(input);
    else
      all_files.push_back(input);
    for (size_t i = static_cast<size_t>(job.rank()); i < all_files.size(); i += static_cast<size_t>(job.size()))
      files.push_back(all_files[i]);
    if (job.is_root()) fs::create_directories(out);
    job.barrier();
    UNET_CHECK(!inst.on || model->config().num_classes == 2, ValueError, "--instances needs a two-class model "
               "(background, cell); ", model_path, " has ", model->config().num_classes, " classes");
    const std::optional<InstanceOptions> instance_options =
        inst.on ? std::optional<InstanceOptions>(inst.resolve(model_path)) : std::nullopt;
    std::printf("segment: %zu image(s) on %s with %s (base %lld, depth %d), convolutions in %s\n", all_files.size(),
                device.str().c_str(), model_path.c_str(), static_cast<long long>(model->config().base_channels),
                model->config().depth, precision_name(model->precision()));
    if (job.size() > 1)
      std::printf("segment: job of %s; every rank segments every %d-th image (rank 0: %zu)\n", job.describe().c_str(),
                  job.size(), files.size());
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
      if (instance_options) {
        write_instances(out, stem, img, fg, *instance_options);
        progress.update(static_cast<int64_t>(i + 1), stem);
        continue;
      }
      write_tiff((fs::path(out) / (stem + ".tif")).string(), fg);
      if (fg.channels == 1 && img.channels == 1)
        write_png((fs::path(out) / (stem + "_overlay.png")).string(), segmentation_overlay(img, fg));
      progress.update(static_cast<int64_t>(i + 1), stem);
    }
    progress.finish();
    // (No collective here: the other ranks may rightly take longer than any time limit.)
    const char* share = job.size() > 1 ? " (rank 0's share; every rank writes its own)" : "";
    if (instance_options)
      std::printf("segment: wrote %zu instance mask(s) (threshold %g, objects under %lld px removed, holes %s) to %s%s\n",
                  files.size(), instance_options->threshold, static_cast<long long>(instance_options->min_size),
                  instance_options->fill_holes ? "filled" : "kept", out.c_str(), share);
    else
      std::printf("segment: wrote %zu probability map(s) and overlay(s) to %s%s\n", files.size(), out.c_str(), share);
    return 0;
  } catch (const Error& e) {
    return examples::fail("segment", e);  // (under mpirun: ends every rank)
  }
}
