// unet/image_io_tiff.cpp — the libtiff half of unet/image_io.h: reading pages and stacks,
// writing (multi-page) TIFFs. libtiff errors are captured per handle (TIFFOpenExt with an error
// handler) so nothing is printed; allocations are capped so a garbled header cannot ask for
// absurd memory.
#include <tiffio.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "unet/atomic_file.h"
#include "unet/image_io.h"
#include "unet/image_io_detail.h"

namespace unet {
namespace {

namespace fs = std::filesystem;

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
    // libtiff's own buffers (a strip, a line) are no larger than a page's samples.
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, std::max<tmsize_t>(tmsize_t{16} << 20, image_limits().max_values * 4));
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

// At most how many bytes of samples one byte of a strip can decode to, per compression: none 1,
// PackBits 64 (2 bytes repeat 128), Deflate 1032, LZW 4096 (a 9-bit code stands for at most 4096
// bytes); others (JPEG, ZSTD, LZMA, WebP...) are held to 2^16, far beyond what images reach.
double max_expansion(uint16_t compression) {
  switch (compression) {
    case COMPRESSION_NONE: return 1.0;
    case COMPRESSION_PACKBITS: return 64.0;
    case COMPRESSION_ADOBE_DEFLATE:
    case COMPRESSION_DEFLATE: return 1032.0;
    case COMPRESSION_LZW: return 4096.0;
    default: return 65536.0;
  }
}

Image read_tiff_page(TiffHandle& h, int page, uint64_t file_size) {
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
  io_detail::check_claimed_size(where, w, hgt, spp);
  // A page's samples come from strips inside the file: a header that claims more than the whole
  // file could decode to is refused before the image is allocated.
  uint16_t compression = COMPRESSION_NONE;
  TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
  const double sample_bytes = static_cast<double>(w) * hgt * spp * (bits / 8);
  const double most = static_cast<double>(file_size) * max_expansion(compression) + 4096.0;
  UNET_CHECK(sample_bytes <= most, IOError, where, ": the TIFF header claims ", w, "x", hgt, "x", spp, " samples of ",
             bits, " bits, but a ", file_size, "-byte file with compression ", compression, " decodes to at most ",
             static_cast<int64_t>(most), " bytes (truncated or corrupt file)");
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
  std::error_code ec;
  const uint64_t file_size = fs::file_size(path, ec);
  UNET_CHECK(!ec, IOError, path, ": cannot read the file size (", ec.message(), ")");
  TiffHandle h(path, "r");
  const std::vector<tdir_t> dirs = checked_page_directories(h);
  UNET_CHECK(!single || dirs.size() == 1, IOError, path, ": a stack of ", dirs.size(),
             " pages where one image was expected (read_image_stack reads every page; "
             "segment and evaluate take stacks)");
  std::vector<Image> pages;
  int64_t values = 0;
  for (size_t i = 0; i < dirs.size(); ++i) {
    UNET_CHECK(TIFFSetDirectory(h.tif, dirs[i]), IOError, path, ": cannot reach page ", i, h.why());
    pages.push_back(read_tiff_page(h, static_cast<int>(i), file_size));
    values += static_cast<int64_t>(pages.back().pixels.size());
    UNET_CHECK(values <= image_limits().max_stack_values, IOError, path, ": the first ", i + 1,
               " pages hold more than the limit of ", image_limits().max_stack_values,
               " values per stack (unet::set_image_limits)");
  }
  return pages;
}

}  // namespace io_detail

namespace {

// Why libtiff's last write failed: the system's errno (a full disk...) when it set one.
std::string write_failure() { return errno != 0 ? describe_errno(errno) : std::string("libtiff refused"); }

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
    errno = 0;
    if (TIFFWriteScanline(tif, line.data(), static_cast<uint32_t>(y), 0) < 0)
      UNET_THROW(IOError, h.path, ": cannot write TIFF row ", y, ": ", write_failure(), h.why());
  }
  errno = 0;
  if (!TIFFWriteDirectory(tif)) UNET_THROW(IOError, h.path, ": cannot write TIFF directory: ", write_failure(), h.why());
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
  remove_stale_temporaries(path);  // libtiff writes the temporary itself, so AtomicFile cannot
  const std::string tmp = temporary_path_for(path);
  try {
    TiffHandle h(tmp, "w");
    h.path = path;
    for (size_t i = 0; i < pages.size(); ++i)
      write_tiff_page(h, pages[i], compression, static_cast<int>(i), static_cast<int>(pages.size()));
    // What libtiff still buffers goes out here, where a failure can be reported, not in TIFFClose.
    errno = 0;
    if (!TIFFFlush(h.tif)) UNET_THROW(IOError, path, ": cannot write the TIFF: ", write_failure(), h.why());
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  commit_temporary(tmp, path);
}

void write_tiff(const std::string& path, const Image& image, TiffCompression compression) {
  write_tiff_stack(path, {image}, compression);
}

}  // namespace unet
