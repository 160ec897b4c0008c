// tests/fuzz/fuzz_png.cpp — PNG (and the other stb formats, JPEG and BMP) through read_image,
// read_image_stack and count_pages. Seeds: corpus/png (8/16-bit grey, grey+alpha, RGB, RGBA,
// palette, interlaced; a JPEG, a BMP).
#include "fuzz.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  unet::fuzz::use_fuzzing_image_limits();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  unet::fuzz::fuzz_image_readers(data, size, "input.png");
  return 0;
}
