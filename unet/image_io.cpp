// unet/image_io.cpp — stb_image / stb_image_write behind the unet::Image types, file sniffing,
// atomic writes, and the public entry points (the libtiff half is image_io_tiff.cpp).
// This is the one translation unit that instantiates stb (STB_*_IMPLEMENTATION).
//
// stb's failure reason goes into the IOError. 16-bit PNG writing uses stb's zlib compressor and
// a small chunk writer because stb_image_write only writes 8-bit PNGs.
#include "unet/image_io.h"

#include <algorithm>
#include <cctype>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

// stb is third-party code: its own warnings are not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_MAX_DIMENSIONS (1 << 16)
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#pragma GCC diagnostic pop

#include "core/error.h"
#include "unet/atomic_file.h"
#include "unet/image_io_detail.h"

namespace unet {
namespace {
ImageLimits& limits_setting() {
  static ImageLimits limits;
  return limits;
}
}  // namespace

ImageLimits image_limits() { return limits_setting(); }

void set_image_limits(const ImageLimits& limits) {
  UNET_CHECK(limits.max_side > 0 && limits.max_values > 0 && limits.max_stack_values > 0, ValueError,
             "set_image_limits: every limit must be positive, got max_side ", limits.max_side, ", max_values ",
             limits.max_values, ", max_stack_values ", limits.max_stack_values);
  limits_setting() = limits;
}

namespace io_detail {

namespace fs = std::filesystem;

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::vector<unsigned char> read_bytes(const std::string& path, size_t limit) {
  std::error_code ec;
  UNET_CHECK(fs::exists(path, ec), IOError, path, ": no such file");
  UNET_CHECK(fs::is_regular_file(path, ec), IOError, path, ": not a regular file");
  const uintmax_t size = fs::file_size(path, ec);
  UNET_CHECK(!ec, IOError, path, ": cannot tell its size (", ec.message(), ")");
  UNET_CHECK(size > 0, IOError, path, ": file is empty");
  std::ifstream in(path, std::ios::binary);
  UNET_CHECK(in.good(), IOError, path, ": cannot open for reading");
  std::vector<unsigned char> bytes(static_cast<size_t>(std::min<uintmax_t>(size, limit)));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  UNET_CHECK(in.gcount() == static_cast<std::streamsize>(bytes.size()), IOError, path,
             ": could only read ", in.gcount(), " of its ", bytes.size(), " bytes");
  return bytes;
}

FileKind sniff(const std::vector<unsigned char>& b) {
  auto starts = [&](std::initializer_list<int> magic) {
    if (b.size() < magic.size()) return false;
    size_t i = 0;
    for (int m : magic)
      if (b[i++] != m) return false;
    return true;
  };
  if (starts({0x89, 'P', 'N', 'G'})) return FileKind::PNG;
  if (starts({'I', 'I', 42, 0}) || starts({'M', 'M', 0, 42}) || starts({'I', 'I', 43, 0}) ||
      starts({'M', 'M', 0, 43}))
    return FileKind::TIFF;
  if (starts({0xFF, 0xD8, 0xFF})) return FileKind::JPEG;
  if (starts({'B', 'M'})) return FileKind::BMP;
  return FileKind::Unknown;
}

void check_claimed_size(const std::string& where, int64_t width, int64_t height, int64_t channels) {
  const ImageLimits& l = limits_setting();
  UNET_CHECK(width > 0 && height > 0 && width <= l.max_side && height <= l.max_side, IOError, where,
             ": the file claims an image of ", width, "x", height, " pixels; supported are 1 to ", l.max_side,
             " per side (unet::set_image_limits)");
  UNET_CHECK(width * height * channels <= l.max_values, IOError, where, ": the file claims ", width, "x", height,
             "x", channels, " = ", width * height * channels, " values, more than the limit of ", l.max_values,
             " per image (unet::set_image_limits)");
}

}  // namespace io_detail

namespace {

using namespace io_detail;
namespace fs = std::filesystem;

// ---- stb (PNG / JPEG / BMP) --------------------------------------------------------------------
uint32_t get_u32_be(const unsigned char* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// A PNG's pixels come from its IDAT chunks, which deflate compresses at most 1032-fold: a
// header that claims more rows than that could fill is refused before stb allocates the image.
// stb also allocates room for an IDAT chunk's claimed length before reading it (up to 2^31
// bytes), so a chunk that claims more bytes than the file has left is refused first: then stb's
// buffer for the compressed data stays within twice the file's size.
void check_png_data_holds_claim(const std::string& path, const std::vector<unsigned char>& bytes, int64_t width,
                                int64_t height) {
  if (bytes.size() < 33) return;  // stb has already read IHDR; let it report what is wrong
  const int bit_depth = bytes[24], colour = bytes[25];
  const int samples = colour == 2 ? 3 : colour == 4 ? 2 : colour == 6 ? 4 : 1;  // 0 grey, 3 palette
  const int64_t row_bytes = (width * samples * bit_depth + 7) / 8;
  uint64_t compressed = 0;
  for (size_t at = 8; at + 8 <= bytes.size();) {  // stb reads chunks up to IEND
    const uint32_t length = get_u32_be(&bytes[at]);
    if (std::memcmp(&bytes[at + 4], "IEND", 4) == 0) break;
    if (std::memcmp(&bytes[at + 4], "IDAT", 4) == 0) {
      UNET_CHECK(length <= bytes.size() - at - 8, IOError, path, ": truncated or corrupt PNG: the IDAT chunk at byte ",
                 at, " claims ", length, " bytes, the file has ", bytes.size() - at - 8, " left");
      // stb 2.27 copies an IDAT chunk into its buffer, which does not exist before the first
      // non-empty chunk: an empty first chunk passes a null pointer to memcpy (undefined
      // behaviour, found by fuzzing). Encoders do not write one.
      UNET_CHECK(length > 0 || compressed > 0, IOError, path, ": unsupported PNG: the first IDAT chunk (byte ", at,
                 ") is empty");
      compressed += length;
    }
    at += uint64_t{length} + 12;
  }
  const double most = 1032.0 * static_cast<double>(compressed) + 1024.0;
  UNET_CHECK(static_cast<double>(row_bytes) * static_cast<double>(height) <= most, IOError, path,
             ": the PNG header claims ", width, "x", height, " pixels but its ", compressed,
             " bytes of compressed data can hold at most ", static_cast<int64_t>(most),
             " bytes of pixels (truncated or corrupt file)");
}

// Debian's stb_image (v2.27) builds a JPEG Huffman table (DHT segment) from 16 code counts without
// checking that they add up to at most 256, the size of its tables: a file that claims more
// writes past them (UBSan: index out of bounds in stbi__build_huffman, then a write past the
// table's `values` — memory corruption), and stbi_info already parses the DHT segments before
// the frame header. Newer stb refuses such a table ("bad DHT header"); stb is a system header we do
// not patch, so the bytes are checked before stb sees them: every table stb could build must
// declare at most 256 codes.
// stb takes a DHT wherever it reads 0xC4 as a marker, i.e. after a 0xFF. Up to the first scan
// (SOS) this walks the segments as stb does — stb consumes exactly a segment's length of every
// segment it accepts, and skips bytes between segments — so the bytes inside APP segments (EXIF,
// ICC profiles) are not mistaken for markers. From the first scan on, how far stb's entropy
// decoder reads depends on the data, so every 0xFF 0xC4 in the rest of the file is checked; a
// valid JPEG has none there except real DHT markers (0xFF in entropy-coded data is 0xFF 0x00).
void check_jpeg_huffman_tables(const std::string& path, const std::vector<unsigned char>& b) {
  const auto byte = [&](size_t i) -> int { return i < b.size() ? b[i] : 0; };  // stb reads 0 past the end
  const auto check_dht = [&](size_t marker) {  // marker: the index of the 0xC4
    int64_t left = (byte(marker + 1) << 8 | byte(marker + 2)) - 2;
    for (size_t at = marker + 3; left > 0 && at < b.size();) {
      const int q = byte(at);
      if (q >> 4 > 1 || (q & 15) > 3) return;  // stb refuses the segment before building a table
      int codes = 0;
      for (size_t i = 1; i <= 16; ++i) codes += byte(at + i);
      UNET_CHECK(codes <= 256, IOError, path, ": corrupt JPEG: the Huffman table at byte ", at,
                 " (DHT segment) declares ", codes, " codes, at most 256 are possible");
      at += 17 + static_cast<size_t>(codes);
      left -= 17 + codes;
    }
  };
  size_t at = 0;
  while (at < b.size() && b[at] == 0xFF) ++at;
  if (at == 0 || byte(at) != 0xD8) return;  // no SOI: stb does not take it for a JPEG
  ++at;
  for (;;) {  // the segments before the first scan
    while (at < b.size() && b[at] != 0xFF) ++at;
    while (at < b.size() && b[at] == 0xFF) ++at;
    if (at >= b.size()) return;
    const int marker = b[at];
    if (marker == 0xDA) break;
    if (marker == 0xC4) check_dht(at);
    const int length = byte(at + 1) << 8 | byte(at + 2);
    if (length < 2 || marker == 0xD8 || marker == 0xD9 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01)
      return;  // stb stops at a segment without a length
    at += 1 + static_cast<size_t>(length);
  }
  for (size_t i = at; i < b.size(); ++i)  // the scans and whatever follows them
    if (b[i] == 0xC4 && b[i - 1] == 0xFF) check_dht(i);
}

Image read_stb(const std::string& path, const std::vector<unsigned char>& bytes) {
  UNET_CHECK(bytes.size() <= INT32_MAX, IOError, path, ": ", bytes.size(),
             " bytes; PNG, JPEG and BMP files are read up to 2 GiB (TIFF has no such limit)");
  if (!bytes.empty() && bytes[0] == 0xFF) check_jpeg_huffman_tables(path, bytes);
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(bytes.data(), len, &w, &h, &comp))
    UNET_THROW(IOError, path, ": corrupt or unsupported image header (", stbi_failure_reason(),
               ")");
  check_claimed_size(path, w, h, comp);
  if (sniff(bytes) == FileKind::PNG) check_png_data_holds_claim(path, bytes, w, h);
  const bool sixteen = stbi_is_16_bit_from_memory(bytes.data(), len) != 0;
  // Grey+alpha -> grey; RGBA kept as read.
  const int want = comp == 2 ? 1 : comp;
  Image im;
  if (sixteen) {
    std::unique_ptr<stbi_us, void (*)(void*)> data(
        stbi_load_16_from_memory(bytes.data(), len, &w, &h, &comp, want), stbi_image_free);
    if (!data) UNET_THROW(IOError, path, ": cannot decode (", stbi_failure_reason(), ")");
    im = make_image(w, h, want, SampleFormat::U16);
    for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = data.get()[i];
  } else {
    std::unique_ptr<stbi_uc, void (*)(void*)> data(
        stbi_load_from_memory(bytes.data(), len, &w, &h, &comp, want), stbi_image_free);
    if (!data) UNET_THROW(IOError, path, ": cannot decode (", stbi_failure_reason(), ")");
    im = make_image(w, h, want, SampleFormat::U8);
    for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = data.get()[i];
  }
  return im;
}

// ---- writing -----------------------------------------------------------------------------------
void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  write_file_atomically(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

uint32_t crc32(const unsigned char* data, size_t n, uint32_t crc = 0) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_u32_be(std::vector<unsigned char>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
}

void put_chunk(std::vector<unsigned char>& out, const char* type, const unsigned char* data,
               size_t n) {
  put_u32_be(out, static_cast<uint32_t>(n));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  if (n) out.insert(out.end(), data, data + n);
  put_u32_be(out, crc32(&out[start], n + 4));
}

// 16-bit PNG: filter type 0 on every row, big-endian samples, zlib stream from stb.
std::vector<unsigned char> encode_png16(const Image& im) {
  const size_t row_bytes = static_cast<size_t>(im.width) * im.channels * 2;
  std::vector<unsigned char> raw;
  raw.reserve((row_bytes + 1) * im.height);
  for (int y = 0; y < im.height; ++y) {
    raw.push_back(0);
    for (int i = 0; i < im.width * im.channels; ++i) {
      const float f = im.pixels[static_cast<size_t>(y) * im.width * im.channels + i];
      const uint16_t v = static_cast<uint16_t>(std::clamp(f, 0.0f, 65535.0f) + 0.5f);
      raw.push_back(static_cast<unsigned char>(v >> 8));
      raw.push_back(static_cast<unsigned char>(v & 0xFF));
    }
  }
  int zlen = 0;
  std::unique_ptr<unsigned char, void (*)(void*)> z(
      stbi_zlib_compress(raw.data(), static_cast<int>(raw.size()), &zlen, 8), free);
  UNET_CHECK(z != nullptr, IOError, "PNG compression failed");
  std::vector<unsigned char> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<unsigned char> ihdr;
  put_u32_be(ihdr, static_cast<uint32_t>(im.width));
  put_u32_be(ihdr, static_cast<uint32_t>(im.height));
  ihdr.push_back(16);
  ihdr.push_back(im.channels == 1 ? 0 : im.channels == 3 ? 2 : 6);
  ihdr.push_back(0);
  ihdr.push_back(0);
  ihdr.push_back(0);
  put_chunk(out, "IHDR", ihdr.data(), ihdr.size());
  put_chunk(out, "IDAT", z.get(), static_cast<size_t>(zlen));
  put_chunk(out, "IEND", nullptr, 0);
  return out;
}

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<unsigned char>*>(context);
  auto* p = static_cast<unsigned char*>(data);
  out->insert(out->end(), p, p + size);
}

}  // namespace

namespace {

// TIFF: `single` as read_tiff; other formats hold one image.
std::vector<Image> read_file(const std::string& path, bool single) {
  switch (sniff(read_bytes(path, 8))) {  // libtiff reads the file itself: no need to load it here
    case FileKind::TIFF: return read_tiff(path, single);
    case FileKind::PNG:
    case FileKind::JPEG:
    case FileKind::BMP: return {read_stb(path, read_bytes(path))};
    default:
      UNET_THROW(IOError, path, ": not a PNG, TIFF, JPEG or BMP file (unrecognised first bytes)");
  }
}

}  // namespace

Image read_image(const std::string& path) { return std::move(read_file(path, true).front()); }

std::vector<Image> read_image_stack(const std::string& path) { return read_file(path, false); }

void write_png(const std::string& path, const Image& image) {
  validate(image, "write_png");
  UNET_CHECK(image.format == SampleFormat::U8 || image.format == SampleFormat::U16, ValueError,
             path, ": PNG holds 8- or 16-bit samples, the image is ", to_string(image.format),
             "; convert with to_u8() for viewing or write a TIFF to keep the values");
  std::vector<unsigned char> bytes;
  if (image.format == SampleFormat::U16) {
    bytes = encode_png16(image);
  } else {
    std::vector<unsigned char> data(image.pixels.size());
    for (size_t i = 0; i < data.size(); ++i)
      data[i] = static_cast<unsigned char>(std::clamp(image.pixels[i], 0.0f, 255.0f) + 0.5f);
    if (!stbi_write_png_to_func(append_bytes, &bytes, image.width, image.height, image.channels,
                                data.data(), image.width * image.channels))
      UNET_THROW(IOError, path, ": PNG encoding failed");
  }
  write_bytes(path, bytes);
}

void write_image(const std::string& path, const Image& image) {
  const std::string ext = lower_extension(path);
  if (ext == ".png") return write_png(path, image);
  if (ext == ".tif" || ext == ".tiff") return write_tiff(path, image);
  UNET_THROW(ValueError, path, ": cannot tell the format from the extension '", ext,
             "'; use .png or .tif/.tiff");
}

void write_probability_map(const std::string& path, const Image& probability) {
  validate(probability, "write_probability_map");
  const std::string ext = lower_extension(path);
  if (ext == ".png") return write_png(path, to_u8(probability));
  UNET_CHECK(ext == ".tif" || ext == ".tiff", ValueError, path,
             ": probability maps are written as .tif (32-bit float) or .png (8-bit view), got '",
             ext, "'");
  Image f = normalised(probability);
  write_tiff(path, f);
}

bool is_image_file(const std::string& path) {
  const std::string ext = lower_extension(path);
  return ext == ".png" || ext == ".tif" || ext == ".tiff" || ext == ".jpg" || ext == ".jpeg" ||
         ext == ".bmp";
}

}  // namespace unet
