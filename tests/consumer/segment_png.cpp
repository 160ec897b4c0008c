// tests/consumer/segment_png.cpp — the user's guide's C++ example (docs/guide.md, "From C++"):
// load a trained model, segment a PNG, write the probability of "cell" as a float TIFF.
//   segment_png MODEL IMAGE OUT.tif        (MODEL: a model file, or the name of a shipped model)
// Built against the installed library by CTest (install_and_consume), which checks that it
// writes the same bytes as the segment program.
#include <algorithm>
#include <cstdio>

#include "unet/image_io.h"
#include "unet/inference.h"
#include "unet/model_files.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s MODEL IMAGE OUT.tif\n", argv[0]);
    return 2;
  }
  try {
    using namespace unet;
    const ModelFile file = open_model(argv[1], Device::cpu());   // weights + configuration
    const Image image = to_grey(normalised(read_image(argv[2])));  // one channel, values in [0, 1]
    const Tensor probs = segment_image(*file.model, image_tensor(image));  // [classes, H, W]
    const Image cell = foreground_probability(probs);            // class 1: cell interior
    write_tiff(argv[3], cell);
    const auto inside = std::count_if(cell.pixels.begin(), cell.pixels.end(), [](float p) { return p > 0.5f; });
    std::printf("%s: %.1f %% of the pixels are cell interior\n", argv[2], 100.0 * inside / cell.pixels.size());
    return 0;
  } catch (const unet::Error& e) {  // every library error says what was wrong and what is allowed
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
