// unet/image_io_tiff.cpp — the libtiff half of unet/image_io.h: reading pages and stacks,
// writing (multi-page) TIFFs. libtiff errors are captured per handle (TIFFOpenExt with an error
// handler) so nothing is printed; allocations are capped so a garbled header cannot ask for
// absurd memory.
#include <tiffio.h>

#include <algorithm>
#include <cstdlib>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "unet/image_io.h"
#include "unet/image_io_detail.h"

namespace unet {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxValues = int64_t{1} << 30;  // refuse absurd sizes from garbled headers

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

// The directories (IFDs) that hold pages, in file order: every directory but thumbnails
// (reduced-resolution copies) and transparency masks, which some writers add after an image.
std::vector<tdir_t> page_directories(TiffHandle& h) {
  std::vector<tdir_t> pages;
  tdir_t dir = 0;
  do {
    uint32_t kind = 0;
    TIFFGetFieldDefaulted(h.tif, TIFFTAG_SUBFILETYPE, &kind);
    if ((kind & (FILETYPE_REDUCEDIMAGE | FILETYPE_MASK)) == 0) pages.push_back(dir);
    UNET_CHECK(++dir < 100000, IOError, h.path, ": more than 100000 directories (corrupt IFD chain?)");
  } while (TIFFReadDirectory(h.tif));
  UNET_CHECK(h.errors.first.empty(), IOError, h.path, ": corrupt TIFF directory", h.why());
  UNET_CHECK(!pages.empty(), IOError, h.path, ": holds only thumbnails or masks, no full-size image");
  return pages;
}

// ImageJ writes stacks over 4 GB with one directory and the other pages' pixels after the
// first's ("images=N" in its description). libtiff sees one page; reading it alone would drop
// the rest without a word, so such files are refused. Returns the page count ImageJ declares
// (0 when the file is not ImageJ's). Call with the first directory current.
int imagej_declared_pages(TiffHandle& h) {
  const char* description = nullptr;
  if (!TIFFGetField(h.tif, TIFFTAG_IMAGEDESCRIPTION, &description) || !description) return 0;
  const std::string text(description);
  if (text.rfind("ImageJ=", 0) != 0) return 0;
  const size_t at = text.find("\nimages=");
  return at == std::string::npos ? 0 : std::atoi(text.c_str() + at + 8);
}

std::vector<tdir_t> checked_page_directories(TiffHandle& h) {
  const int declared = imagej_declared_pages(h);
  const std::vector<tdir_t> pages = page_directories(h);
  UNET_CHECK(declared <= static_cast<int>(pages.size()), IOError, h.path, ": ImageJ says it holds ", declared,
             " images but the file has ", pages.size(), " TIFF page(s) (ImageJ's format for stacks over 4 GB, "
             "which stores the other pages without directories); not supported: save it as separate files "
             "or as a BigTIFF (File > Save As > Tiff with the bigtiff option in Fiji)");
  return pages;
}

}  // namespace

namespace io_detail {

std::vector<Image> read_tiff(const std::string& path, bool single) {
  TiffHandle h(path, "r");
  const std::vector<tdir_t> dirs = checked_page_directories(h);
  UNET_CHECK(!single || dirs.size() == 1, IOError, path, ": a stack of ", dirs.size(),
             " pages where one image was expected (read_image_stack reads every page; "
             "segment and evaluate take stacks)");
  std::vector<Image> pages;
  for (size_t i = 0; i < dirs.size(); ++i) {
    UNET_CHECK(TIFFSetDirectory(h.tif, dirs[i]), IOError, path, ": cannot reach page ", i, h.why());
    pages.push_back(read_tiff_page(h, static_cast<int>(i)));
  }
  return pages;
}

}  // namespace io_detail

namespace {

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

int count_pages(const std::string& path) {
  if (io_detail::sniff(io_detail::read_bytes(path, 8)) != io_detail::FileKind::TIFF) return 1;
  TiffHandle h(path, "r");
  return static_cast<int>(checked_page_directories(h).size());
}

void write_tiff_stack(const std::string& path, const std::vector<Image>& pages,
                      TiffCompression compression) {
  UNET_CHECK(!pages.empty(), ValueError, path, ": a TIFF stack needs at least one page");
  for (const Image& p : pages) {
    validate(p, "write_tiff");
    UNET_CHECK(p.channels == 1 || p.channels == 3, ValueError, path,
               ": TIFF pages must have 1 or 3 channels, got ", p.channels);
  }
  const std::string tmp = io_detail::temp_path_for(path);
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
  io_detail::commit_temp(tmp, path);
}

void write_tiff(const std::string& path, const Image& image, TiffCompression compression) {
  write_tiff_stack(path, {image}, compression);
}

}  // namespace unet
