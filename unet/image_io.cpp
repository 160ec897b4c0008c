// unet/image_io.cpp — stb_image / stb_image_write / libtiff behind the unet::Image types.
// This is the one translation unit that instantiates stb (STB_*_IMPLEMENTATION).
//
// libtiff errors are captured per handle (TIFFOpenExt with an error handler) so nothing is
// printed; stb's failure reason goes into the IOError. 16-bit PNG writing uses stb's zlib
// compressor and a small chunk writer because stb_image_write only writes 8-bit PNGs.
#include "unet/image_io.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>

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
#include <tiffio.h>

#include "core/error.h"

namespace unet {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxValues = int64_t{1} << 30;  // refuse absurd sizes from garbled headers

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::error_code ec;
  UNET_CHECK(fs::exists(path, ec), IOError, path, ": no such file");
  UNET_CHECK(fs::is_regular_file(path, ec), IOError, path, ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  UNET_CHECK(in.good(), IOError, path, ": cannot open for reading");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  UNET_CHECK(!bytes.empty(), IOError, path, ": file is empty");
  return bytes;
}

enum class FileKind { PNG, TIFF, JPEG, BMP, Unknown };

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

// ---- stb (PNG / JPEG / BMP) --------------------------------------------------------------------
Image read_stb(const std::string& path, const std::vector<unsigned char>& bytes) {
  const int len = static_cast<int>(std::min<size_t>(bytes.size(), INT32_MAX));
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(bytes.data(), len, &w, &h, &comp))
    UNET_THROW(IOError, path, ": corrupt or unsupported image header (", stbi_failure_reason(),
               ")");
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

// ---- libtiff -------------------------------------------------------------------------------------
struct TiffErrors {
  std::string first;  // first error libtiff reported for this handle
};

int capture_tiff_error(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  auto* errors = static_cast<TiffErrors*>(user);
  if (errors && errors->first.empty()) {
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    errors->first = std::string(module ? module : "libtiff") + ": " + buf;
  }
  return 1;  // handled: libtiff must not print
}

int ignore_tiff_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

struct TiffHandle {
  TIFF* tif = nullptr;
  TiffErrors errors;
  std::string path;
  TiffHandle(const std::string& p, const char* mode) : path(p) {
    TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
    TIFFOpenOptionsSetErrorHandlerExtR(opts, capture_tiff_error, &errors);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, ignore_tiff_warning, nullptr);
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, tmsize_t{1} << 32);
    tif = TIFFOpenExt(p.c_str(), mode, opts);
    TIFFOpenOptionsFree(opts);
    if (!tif)
      UNET_THROW(IOError, p, ": cannot open as TIFF",
                 errors.first.empty() ? std::string() : " (" + errors.first + ")");
  }
  ~TiffHandle() {
    if (tif) TIFFClose(tif);
  }
  TiffHandle(const TiffHandle&) = delete;
  TiffHandle& operator=(const TiffHandle&) = delete;
  std::string why() const { return errors.first.empty() ? "" : " (" + errors.first + ")"; }
};

Image read_tiff_page(TiffHandle& h, int page) {
  TIFF* tif = h.tif;
  const std::string where = h.path + " page " + std::to_string(page);
  uint32_t w = 0, hgt = 0;
  uint16_t bits = 0, spp = 0, sample_format = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
  if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &hgt))
    UNET_THROW(IOError, where, ": TIFF has no image size", h.why());
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &sample_format);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
  UNET_CHECK(w > 0 && hgt > 0 && static_cast<int64_t>(w) * hgt * std::max<int>(spp, 1) <= kMaxValues,
             IOError, where, ": unsupported image size ", w, "x", hgt, "x", spp);
  UNET_CHECK(spp == 1 || spp == 2 || spp == 3 || spp == 4, IOError, where, ": ", spp,
             " samples per pixel; supported are 1 (grey), 2 (grey+alpha), 3 (RGB), 4 (RGBA)");
  UNET_CHECK(spp == 1 || planar == PLANARCONFIG_CONTIG, IOError, where,
             ": planar (separate) channel layout is not supported, only interleaved");
  UNET_CHECK(!TIFFIsTiled(tif), IOError, where, ": tiled TIFFs are not supported, only strips");
  SampleFormat fmt;
  if (sample_format == SAMPLEFORMAT_IEEEFP && bits == 32) {
    fmt = SampleFormat::F32;
  } else if ((sample_format == SAMPLEFORMAT_UINT || sample_format == SAMPLEFORMAT_VOID) &&
             (bits == 8 || bits == 16 || bits == 32)) {
    fmt = bits == 8 ? SampleFormat::U8 : bits == 16 ? SampleFormat::U16 : SampleFormat::U32;
  } else {
    UNET_THROW(IOError, where, ": unsupported bit depth / sample format (", bits,
               "-bit, sample format ", sample_format,
               "); supported: 8/16/32-bit unsigned integer, 32-bit float");
  }
  const int out_channels = spp == 2 ? 1 : spp;
  Image im = make_image(static_cast<int>(w), static_cast<int>(hgt), out_channels, fmt);
  const tmsize_t line_bytes = TIFFScanlineSize(tif);
  const tmsize_t want_bytes = static_cast<tmsize_t>(w) * spp * (bits / 8);
  UNET_CHECK(line_bytes == want_bytes, IOError, where, ": scanline holds ", line_bytes,
             " bytes, expected ", want_bytes);
  std::vector<unsigned char> line(static_cast<size_t>(line_bytes));
  for (uint32_t y = 0; y < hgt; ++y) {
    if (TIFFReadScanline(tif, line.data(), y, 0) < 0)
      UNET_THROW(IOError, where, ": cannot read row ", y, " (truncated or corrupt)", h.why());
    float* dst = &im.pixels[static_cast<size_t>(y) * w * out_channels];
    for (uint32_t x = 0; x < w; ++x) {
      for (int c = 0; c < out_channels; ++c) {
        const size_t s = static_cast<size_t>(x) * spp + c;
        float v;
        switch (fmt) {
          case SampleFormat::U8: v = line[s]; break;
          case SampleFormat::U16: { uint16_t t; std::memcpy(&t, &line[s * 2], 2); v = t; break; }
          case SampleFormat::U32: { uint32_t t; std::memcpy(&t, &line[s * 4], 4); v = static_cast<float>(t); break; }
          default: { std::memcpy(&v, &line[s * 4], 4); break; }
        }
        dst[static_cast<size_t>(x) * out_channels + c] = v;
      }
    }
  }
  // libtiff reports some decode problems only through the error handler.
  UNET_CHECK(h.errors.first.empty(), IOError, where, ": corrupt TIFF data", h.why());
  uint16_t photometric = PHOTOMETRIC_MINISBLACK;
  TIFFGetFieldDefaulted(tif, TIFFTAG_PHOTOMETRIC, &photometric);
  if (photometric == PHOTOMETRIC_MINISWHITE && fmt != SampleFormat::F32) {
    const float top = static_cast<float>(sample_max(fmt));
    for (float& v : im.pixels) v = top - v;
  }
  return im;
}

std::vector<Image> read_tiff(const std::string& path, bool first_only) {
  TiffHandle h(path, "r");
  std::vector<Image> pages;
  int page = 0;
  do {
    pages.push_back(read_tiff_page(h, page++));
    if (first_only) break;
    UNET_CHECK(page < 100000, IOError, path, ": more than 100000 pages (corrupt IFD chain?)");
  } while (TIFFReadDirectory(h.tif));
  UNET_CHECK(h.errors.first.empty(), IOError, path, ": corrupt TIFF directory", h.why());
  return pages;
}

// ---- writing -----------------------------------------------------------------------------------
std::string temp_path_for(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  std::random_device rd;
  return path + ".tmp-" + std::to_string(rd()) + "-" + std::to_string(counter++);
}

// Moves the finished temporary file into place (removes it on failure).
void commit_temp(const std::string& tmp, const std::string& path) {
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    UNET_THROW(IOError, path, ": cannot move the written file into place (", ec.message(), ")");
  }
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  const std::string tmp = temp_path_for(path);
  {
    std::ofstream out(tmp, std::ios::binary);
    UNET_CHECK(out.good(), IOError, path, ": cannot open for writing (", tmp, ")");
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      UNET_THROW(IOError, path, ": write failed (disk full?)");
    }
  }
  commit_temp(tmp, path);
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

void write_tiff_page(TiffHandle& h, const Image& im, TiffCompression compression, int page,
                     int pages) {
  TIFF* tif = h.tif;
  const int bits = im.format == SampleFormat::U8 ? 8 : im.format == SampleFormat::U16 ? 16 : 32;
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(im.width));
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(im.height));
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, static_cast<uint16_t>(im.channels));
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, static_cast<uint16_t>(bits));
  TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, static_cast<uint16_t>(
      im.format == SampleFormat::F32 ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT));
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, static_cast<uint16_t>(
      im.channels == 1 ? PHOTOMETRIC_MINISBLACK : PHOTOMETRIC_RGB));
  TIFFSetField(tif, TIFFTAG_PLANARCONFIG, static_cast<uint16_t>(PLANARCONFIG_CONTIG));
  TIFFSetField(tif, TIFFTAG_COMPRESSION, static_cast<uint16_t>(
      compression == TiffCompression::LZW ? COMPRESSION_LZW : COMPRESSION_NONE));
  if (compression == TiffCompression::LZW)
    TIFFSetField(tif, TIFFTAG_PREDICTOR, static_cast<uint16_t>(PREDICTOR_NONE));
  TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, TIFFDefaultStripSize(tif, 0));
  if (pages > 1) {
    TIFFSetField(tif, TIFFTAG_SUBFILETYPE, static_cast<uint32_t>(FILETYPE_PAGE));
    TIFFSetField(tif, TIFFTAG_PAGENUMBER, static_cast<uint16_t>(page), static_cast<uint16_t>(pages));
  }
  const size_t n = static_cast<size_t>(im.width) * im.channels;
  std::vector<unsigned char> line(n * bits / 8);
  for (int y = 0; y < im.height; ++y) {
    const float* src = &im.pixels[static_cast<size_t>(y) * n];
    for (size_t i = 0; i < n; ++i) {
      switch (im.format) {
        case SampleFormat::U8:
          line[i] = static_cast<uint8_t>(std::clamp(src[i], 0.0f, 255.0f) + 0.5f);
          break;
        case SampleFormat::U16: {
          const uint16_t v = static_cast<uint16_t>(std::clamp(src[i], 0.0f, 65535.0f) + 0.5f);
          std::memcpy(&line[i * 2], &v, 2);
          break;
        }
        case SampleFormat::U32: {
          const uint32_t v = static_cast<uint32_t>(std::clamp(static_cast<double>(src[i]), 0.0, 4294967295.0) + 0.5);
          std::memcpy(&line[i * 4], &v, 4);
          break;
        }
        case SampleFormat::F32: std::memcpy(&line[i * 4], &src[i], 4); break;
      }
    }
    if (TIFFWriteScanline(tif, line.data(), static_cast<uint32_t>(y), 0) < 0)
      UNET_THROW(IOError, h.path, ": cannot write TIFF row ", y, h.why());
  }
  if (!TIFFWriteDirectory(tif)) UNET_THROW(IOError, h.path, ": cannot write TIFF directory", h.why());
}

}  // namespace

Image read_image(const std::string& path) {
  const auto bytes = read_bytes(path);
  switch (sniff(bytes)) {
    case FileKind::TIFF: return read_tiff(path, true).front();
    case FileKind::PNG:
    case FileKind::JPEG:
    case FileKind::BMP: return read_stb(path, bytes);
    default:
      UNET_THROW(IOError, path, ": not a PNG, TIFF, JPEG or BMP file (unrecognised first bytes)");
  }
}

std::vector<Image> read_image_stack(const std::string& path) {
  const auto bytes = read_bytes(path);
  if (sniff(bytes) == FileKind::TIFF) return read_tiff(path, false);
  return {read_image(path)};
}

int count_pages(const std::string& path) {
  const auto bytes = read_bytes(path);
  if (sniff(bytes) != FileKind::TIFF) return 1;
  TiffHandle h(path, "r");
  const int n = TIFFNumberOfDirectories(h.tif);
  UNET_CHECK(n > 0 && h.errors.first.empty(), IOError, path, ": corrupt TIFF directory chain",
             h.why());
  return n;
}

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

void write_tiff_stack(const std::string& path, const std::vector<Image>& pages,
                      TiffCompression compression) {
  UNET_CHECK(!pages.empty(), ValueError, path, ": a TIFF stack needs at least one page");
  for (const Image& p : pages) {
    validate(p, "write_tiff");
    UNET_CHECK(p.channels == 1 || p.channels == 3, ValueError, path,
               ": TIFF pages must have 1 or 3 channels, got ", p.channels);
  }
  const std::string tmp = temp_path_for(path);
  try {
    TiffHandle h(tmp, "w");
    h.path = path;
    for (size_t i = 0; i < pages.size(); ++i)
      write_tiff_page(h, pages[i], compression, static_cast<int>(i), static_cast<int>(pages.size()));
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  commit_temp(tmp, path);
}

void write_tiff(const std::string& path, const Image& image, TiffCompression compression) {
  write_tiff_stack(path, {image}, compression);
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
