// tests/fuzz/fuzz_tiff.cpp — TIFF through read_image, read_image_stack and count_pages (libtiff).
// Seeds: corpus/tiff (8/16/32-bit unsigned, 32-bit float, grey and RGB, multi-page stacks, and
// every compression Debian's libtiff enables: none, LZW, Deflate, PackBits, JPEG, LZMA, ZSTD,
// WebP..., with and without predictors; big-endian, BigTIFF, tiled and planar files, which are
// refused).
#include "fuzz.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  unet::fuzz::use_fuzzing_image_limits();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  unet::fuzz::fuzz_image_readers(data, size, "input.tif");
  return 0;
}
