// unet/image_io.h — reading and writing image files: PNG/JPEG/BMP through stb_image (8- and
// 16-bit grey, RGB), TIFF through libtiff (8/16/32-bit unsigned, 32-bit float, multi-page
// stacks, LZW or uncompressed). The file type is recognised by its first bytes, not its name.
//
// Every failure throws IOError naming the file and what is wrong (missing, truncated, corrupt,
// unsupported bit depth / layout, too large): a reader never crashes, hangs or allocates more
// than ImageLimits allow, whatever the bytes (fuzzed: tests/fuzz/, docs/reliability.md). Writers
// write a temporary file, fsync it and rename it into place (unet/atomic_file.h), so a reader
// never sees half a file and a failed write leaves the previous file as it was.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "unet/image.h"

namespace unet {

// What a file may claim, checked before any pixel memory is allocated: a garbled or hostile
// header (a PNG claiming 10^12 pixels in 100 bytes) is refused with IOError instead of
// exhausting memory. PNG headers are also held to what their compressed data can hold (deflate
// expands at most 1032-fold). The defaults take any image that fits a workstation's memory as
// float; raise them for larger ones, lower them to bound a service's memory.
struct ImageLimits {
  int64_t max_side = int64_t{1} << 16;          // pixels per side
  int64_t max_values = int64_t{1} << 30;        // width · height · channels of one image or page (4 GiB as float)
  int64_t max_stack_values = int64_t{1} << 32;  // every page of a TIFF stack together (16 GiB as float)
};
ImageLimits image_limits();
// Process-wide; set it before reading (not while other threads read). ValueError unless every
// limit is positive.
void set_image_limits(const ImageLimits& limits);

enum class TiffCompression { None, LZW };

// The first (or only) image of a file. Formats: PNG (8/16-bit, grey, grey+alpha, RGB, RGBA),
// JPEG, BMP, TIFF (first page). Grey+alpha is returned as grey (alpha dropped).
Image read_image(const std::string& path);
// Every page of a TIFF stack (one entry for PNG/JPEG/BMP). All pages keep their own size.
std::vector<Image> read_image_stack(const std::string& path);
// Number of pages (1 for non-TIFF files) without decoding the pixels.
int count_pages(const std::string& path);

// PNG: U8 images are written 8-bit, U16 16-bit (1 or 3 channels). Other formats throw
// ValueError: convert with to_u8() for viewing or write a TIFF to keep the values.
void write_png(const std::string& path, const Image& image);
// TIFF: U8/U16/U32 unsigned or F32 float samples as the image's format says; 1 or 3 channels.
void write_tiff(const std::string& path, const Image& image,
                TiffCompression compression = TiffCompression::LZW);
// Multi-page TIFF, one page per image (pages may differ in size and format).
void write_tiff_stack(const std::string& path, const std::vector<Image>& pages,
                      TiffCompression compression = TiffCompression::LZW);
// By extension: .png -> write_png, .tif/.tiff -> write_tiff; anything else throws ValueError.
void write_image(const std::string& path, const Image& image);

// A probability map (F32, values in [0, 1]): .tif/.tiff -> 32-bit float TIFF (exact),
// .png -> 8-bit PNG for viewing (to_u8: 0..1 -> 0..255). Other extensions throw ValueError.
void write_probability_map(const std::string& path, const Image& probability);

// True for the extensions the readers handle: .png .tif .tiff .jpg .jpeg .bmp (any case).
bool is_image_file(const std::string& path);

}  // namespace unet
