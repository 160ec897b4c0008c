// examples/segment.cpp — overlap-tile inference with a trained model.
//
//   segment --input IMAGE_OR_DIR --out DIR [--model NAME_OR_FILE] [--tile S] [--tta] [--device auto|cpu|cuda]
//           [--instances [--threshold T] [--min-size N] [--fill-holes on|off] [--restore-border R] [--core-threshold C]]
//
// For every input file writes DIR/<name>.tif: the float32 probability of the foreground class,
// one page per page of the input (a multi-page TIFF stack gives a stack of the same length), and
// a picture to look at: DIR/<name>_overlay.png for a single image, DIR/<name>_overlay.tif (RGB
// pages) for a stack. A model with more than two classes gives DIR/<name>_class<k>.tif for
// every class k >= 1 instead. The model is a file or the name of a shipped model (default
// isbi2012-em, models/README.md).
// With --instances it writes the objects instead, in the Cell Tracking Challenge's result layout:
// DIR/maskTTT.tif for an input tTTT.tif (DIR/<name>_mask.tif otherwise, one file per page of a
// stack; 16-bit, 0 = background) and DIR/overlays/<name>.png. The instance options default to
// those the model was trained with (train_cells keeps them in the checkpoint), else to
// unet::InstanceOptions'.
// Under mpirun/srun with N ranks, rank r segments the folder's files r, r + N, r + 2N, … (in the
// folder's order; a stack is one file) and writes their outputs: the files are those of a single
// process.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/precision.h"
#include "job_cli.h"
#include "program.h"
#include "progress.h"
#include "unet/dataset.h"
#include "unet/image_io.h"
#include "unet/inference.h"
#include "unet/instances.h"
#include "unet/model_files.h"
#include "unet/visualize.h"

namespace fs = std::filesystem;
using namespace unet;

namespace {

// --instances: the options (the model's own, then the flags given) and the files of one image.
struct InstanceFlags {
  bool on = false;
  std::optional<float> threshold, restore_border, core_threshold;
  std::optional<int64_t> min_size;
  std::optional<std::string> fill_holes;  // on | off

  InstanceOptions resolve(const std::map<std::string, std::string>& model_metadata) const {
    InstanceOptions o = InstanceOptions::of_model(model_metadata);
    if (threshold) o.threshold = *threshold;
    if (restore_border) o.restore_border = *restore_border;
    if (core_threshold) o.core_threshold = *core_threshold;
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

void write_pages(const fs::path& path, const std::vector<Image>& pages) {
  if (pages.size() == 1)
    write_tiff(path.string(), pages.front());
  else
    write_tiff_stack(path.string(), pages);
}

// One line about the model for people: its card's summary, and a warning if it is provisional.
std::string describe(const ModelFile& file) {
  const auto it = file.metadata.find("unetcore.card");
  if (it == file.metadata.end()) return "";
  const auto card = nlohmann::json::parse(it->second, nullptr, false);
  if (!card.is_object()) return "";
  std::string text;
  if (card.contains("summary") && card["summary"].is_string()) text += "\nsegment: model: " + card["summary"].get<std::string>();
  if (card.value("provisional", false))
    text += "\nsegment: note: this model is PROVISIONAL (trained briefly, for tests and docs); see models/README.md";
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_name = "isbi2012-em", input, out, device_name = "auto", precision = "auto";
  int64_t tile = 0;
  bool tta = false;
  CLI::App app{"Segment images and stacks with a trained U-Net (overlap-tile, mirrored borders)"};
  app.add_option("--model", model_name, "a model file, or the name of a shipped model")->capture_default_str();
  app.add_option("--input", input, "an image file (PNG, TIFF, JPEG, BMP; multi-page TIFF stacks too) or a folder of them")
      ->required();
  app.add_option("--out", out, "output folder")->required();
  app.add_option("--tile", tile, "input tile size (default: the largest valid size up to 572 that the image needs)");
  app.add_flag("--tta", tta, "average over the 8 flips/rotations (8x the time, a little more accurate)");
  app.add_option("--device", device_name, "auto (a GPU if there is one), cpu, cuda or cuda:N")->capture_default_str();
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
  app.add_option("--core-threshold", inst.core_threshold,
                 "instances: grow objects from the components of probability > this into the foreground, most probable "
                 "pixels first; 0 = plain components (default: the model's, else 0)");
  app.add_flag_callback("--list-models", [] {
    for (const auto& name : available_models()) std::printf("%s  (%s)\n", name.c_str(), find_model(name).c_str());
    std::exit(0);
  }, "print the shipped models and where they are, then exit");
  return examples::run_program("segment", app, argc, argv, [&] {
    Communicator& job = examples::join_job();  // first: under MPI it picks this rank's GPU
    const Device device = resolve_device(device_name);
    const ModelFile file = open_model(model_name, device);
    UNet& model = *file.model;
    model.set_precision(choose_precision(precision, device));
    const int64_t classes = model.config().num_classes;
    UNET_CHECK(!inst.on || classes == 2, ValueError, "--instances needs a two-class model (background, cell); ",
               file.path, " has ", classes, " classes");
    const std::optional<InstanceOptions> instance_options =
        inst.on ? std::optional<InstanceOptions>(inst.resolve(file.metadata)) : std::nullopt;
    const std::vector<std::string> all_files = fs::is_directory(input) ? list_image_files(input) : std::vector{input};
    // Two inputs of the same stem (a.png, a.tif) would write the same outputs: refuse up front.
    std::map<std::string, std::string> by_stem;
    for (const auto& f : all_files) {
      const std::string stem = fs::path(f).stem().string();
      UNET_CHECK(!by_stem.count(stem), ValueError, "two inputs would write the same outputs ", stem, ".tif: ",
                 by_stem[stem], " and ", f, "; rename one");
      by_stem[stem] = f;
    }
    std::vector<std::string> files;  // this rank's share
    for (size_t i = static_cast<size_t>(job.rank()); i < all_files.size(); i += static_cast<size_t>(job.size()))
      files.push_back(all_files[i]);
    int64_t total_pages = 0;
    for (const auto& f : files) total_pages += count_pages(f);
    if (job.is_root()) fs::create_directories(out);
    job.barrier();
    std::printf("segment: %zu file(s) on %s with %s (base %lld, depth %d, %lld classes), convolutions in %s%s\n",
                all_files.size(), device.str().c_str(), file.path.c_str(),
                static_cast<long long>(model.config().base_channels), model.config().depth,
                static_cast<long long>(classes), precision_name(model.precision()), describe(file).c_str());
    if (job.size() > 1)
      std::printf("segment: job of %s; every rank segments every %d-th file (rank 0: %zu)\n", job.describe().c_str(),
                  job.size(), files.size());
    examples::Progress progress("segment", total_pages);
    int64_t pages_done = 0;
    for (const auto& path : files) {
      const std::string stem = fs::path(path).stem().string();
      std::vector<Image> pages = read_image_stack(path);
      std::vector<std::vector<Image>> maps(static_cast<size_t>(classes));  // [class][page]
      std::vector<Image> overlays;
      for (size_t i = 0; i < pages.size(); ++i) {
        Image img = normalised(pages[i]);
        if (model.config().in_channels == 1 && img.channels != 1) {
          if (i == 0) std::printf("segment: %s has %d channels; segmenting its grey values\n", path.c_str(), img.channels);
          img = to_grey(img);  // of the normalised values, as unetcore.to_grey
        }
        const Tensor x = image_tensor(img);
        SegmentOptions options{tile, tta, {}};
        const std::string name = pages.size() == 1 ? stem : page_name(stem, static_cast<int>(i), static_cast<int>(pages.size()));
        options.progress = [&](int64_t done, int64_t total) {
          progress.update(pages_done, name + " tile " + std::to_string(done) + "/" + std::to_string(total));
          return true;
        };
        const Tensor probs = segment_image(model, x, options);
        for (int64_t c = 1; c < classes; ++c) maps[c].push_back(class_probability(probs, c));
        if (instance_options)
          write_instances(out, name, img, maps[1].back(), *instance_options);
        else if (classes == 2 && img.channels == 1)
          overlays.push_back(segmentation_overlay(img, maps[1].back()));
        progress.update(++pages_done, name);
      }
      if (instance_options) continue;
      if (classes == 2) {
        write_pages(fs::path(out) / (stem + ".tif"), maps[1]);
        if (overlays.size() == 1)
          write_png((fs::path(out) / (stem + "_overlay.png")).string(), overlays.front());
        else if (!overlays.empty())
          write_tiff_stack((fs::path(out) / (stem + "_overlay.tif")).string(), overlays);
      } else {
        for (int64_t c = 1; c < classes; ++c)
          write_pages(fs::path(out) / (stem + "_class" + std::to_string(c) + ".tif"), maps[c]);
      }
    }
    progress.finish();
    // (No collective here: the other ranks may rightly take longer than any time limit.)
    const char* share = job.size() > 1 ? " (rank 0's share; every rank writes its own)" : "";
    char grown[64] = "";
    if (instance_options && instance_options->core_threshold > 0)
      std::snprintf(grown, sizeof grown, ", grown from cores > %g", instance_options->core_threshold);
    if (instance_options)
      std::printf("segment: wrote the instance masks of %lld page(s) (threshold %g%s, objects under %lld px removed, "
                  "holes %s) to %s%s\n",
                  static_cast<long long>(total_pages), instance_options->threshold, grown,
                  static_cast<long long>(instance_options->min_size), instance_options->fill_holes ? "filled" : "kept",
                  out.c_str(), share);
    else
      std::printf("segment: wrote the probability maps of %lld page(s) in %zu file(s) to %s%s\n",
                  static_cast<long long>(total_pages), files.size(), out.c_str(), share);
    return 0;
  });  // (a failure under mpirun ends every rank: program.h)
}
