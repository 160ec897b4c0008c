// tests/fuzz/fuzz_labels.cpp — label images as the data sets read them: a Cell Tracking Challenge
// man_segTTT.tif (16-bit instance ids) or a binary mask, through read_image and
// labels_from_image under each LabelKind, then the paper's weight map of the instances (what
// training computes from them). Contract: labels, or IOError naming the file. Seeds: corpus/labels.
#include "fuzz.h"
#include "unet/dataset.h"
#include "unet/weight_map.h"

using namespace unet;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::use_fuzzing_image_limits();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::input_file(data, size, "SEG/man_seg000.tif");
  for (LabelKind kind : {LabelKind::Instances, LabelKind::Auto, LabelKind::BinaryMask}) {
    fuzz::expect_clean(path, [&] {
      const LabelImage labels = labels_from_image(read_image(path), kind, path);
      validate(labels, "decoded labels");
      // The weight map's work grows with the objects near each pixel: held to small images here
      // so that an input runs in milliseconds (tests/test_weight_map.cpp covers its values).
      if (labels.pixel_count() <= 64 * 64) {
        const std::vector<float> w = weight_map(labels);
        if (w.size() != labels.labels.size()) std::abort();
      }
    });
  }
  return 0;
}
