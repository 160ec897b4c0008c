// examples/data_demo.cpp — pictures of the data side for people to look at:
//   weight_map.png       heat map of the paper's weight map (eq. 2) for one ISBI slice
//   weight_map.tif       the same values as 32-bit float TIFF
//   augment_gallery.png  the original tile and augmented samples (top: image, bottom: labels)
//
//   data_demo [--data DIR] [--slice N] [--out DIR] [--samples N] [--tile N] [--seed S]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "core/error.h"
#include "program.h"
#include "unet/augment.h"
#include "unet/dataset.h"
#include "unet/image_io.h"
#include "unet/weight_map.h"

namespace fs = std::filesystem;

namespace {

// Pastes a grey F32 tile (values in [0, 1]) or a label tile (membrane black, cells white)
// into an RGB canvas.
void paste(unet::Image& canvas, const unet::Image& tile, int ox, int oy) {
  for (int y = 0; y < tile.height; ++y)
    for (int x = 0; x < tile.width; ++x)
      for (int c = 0; c < 3; ++c)
        canvas.at(ox + x, oy + y, c) = std::round(std::clamp(tile.at(x, y), 0.0f, 1.0f) * 255.0f);
}

unet::Image label_tile(const unet::LabelImage& l) {
  unet::Image t = unet::make_image(l.width, l.height);
  for (size_t i = 0; i < t.pixels.size(); ++i) t.pixels[i] = l.labels[i] > 0 ? 1.0f : 0.0f;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Write the weight-map heat map and a gallery of augmented samples"};
  std::string data = std::string(UNET_SOURCE_DIR) + "/data/isbi2012/train";
  std::string out_dir = "data_demo_out";
  int slice = 0, samples = 5, tile = 256;
  uint64_t seed = 2015;
  app.add_option("--data", data, "folder with images/ and labels/ (ISBI 2012 layout)");
  app.add_option("--slice", slice, "which sample to use")->check(CLI::NonNegativeNumber);
  app.add_option("--out", out_dir, "output folder");
  app.add_option("--samples", samples, "augmented samples in the gallery")->check(CLI::Range(1, 16));
  app.add_option("--tile", tile, "tile size in the gallery")->check(CLI::Range(16, 1024));
  app.add_option("--seed", seed, "Philox seed of the augmentation");
  return unet::examples::run_program("data_demo", app, argc, argv, [&] {
    const auto set = unet::load_folder_dataset(data + "/images", data + "/labels");
    if (slice >= static_cast<int>(set.size())) {
      throw unet::ValueError("--slice " + std::to_string(slice) + " is out of range: the data set has " +
                             std::to_string(set.size()) + " samples (0.." + std::to_string(set.size() - 1) + ")");
    }
    const unet::Sample& s = set[slice];
    fs::create_directories(out_dir);

    const std::vector<float> w = unet::weight_map(s.labels);
    const float w_max = *std::max_element(w.begin(), w.end());
    unet::write_png(out_dir + "/weight_map.png", unet::heat_map(w, s.labels.width, s.labels.height));
    unet::Image wimg = unet::make_image(s.labels.width, s.labels.height);
    wimg.pixels = w;
    unet::write_tiff(out_dir + "/weight_map.tif", wimg);
    std::printf("weight map of %s: %d cells, weights %.3f .. %.3f -> %s/weight_map.png\n",
                s.image_path.c_str(), unet::count_objects(s.labels),
                *std::min_element(w.begin(), w.end()), w_max, out_dir.c_str());

    // Gallery: column 0 = the unaugmented centre tile, then `samples` augmented ones.
    const unet::WarpGeometry g{s.image.width, s.image.height, tile, tile, s.image.channels};
    unet::Image canvas = unet::make_image(tile * (samples + 1), tile * 2, 3, unet::SampleFormat::U8);
    for (int k = 0; k <= samples; ++k) {
      const unet::ElasticWarpParams p =
          k == 0 ? unet::make_warp_params(g) : unet::draw_warp_params(unet::AugmentOptions{}, g, seed, k);
      const unet::WarpedSample a = unet::warp_sample(p, s.image, &s.labels);
      paste(canvas, unet::to_grey(a.image), k * tile, 0);
      paste(canvas, label_tile(a.labels), k * tile, tile);
    }
    unet::write_png(out_dir + "/augment_gallery.png", canvas);
    std::printf("gallery of %d augmented samples (seed %llu) -> %s/augment_gallery.png\n", samples,
                static_cast<unsigned long long>(seed), out_dir.c_str());
    return 0;
  });
}
