// tests/fuzz/make_seeds.cpp — writes the seed corpus of the fuzz targets: small, valid (and a few
// deliberately unsupported) files of every kind each reader meets, so that fuzzing starts from
// every format, bit depth, layout and codec instead of having to discover them.
//
//   fuzz_make_seeds tests/fuzz/corpus      (writes corpus/<target>/seed-*; crash inputs untouched)
//
// TIFFs are written with libtiff itself, one per codec this libtiff enables (TIFFIsCODECConfigured),
// so the seeds cover what Debian's libtiff can decode, not only what unetcore writes.
#include <tiffio.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

#include "unet/image_io.h"
#include "unet/model.h"
#include "unet/safetensors.h"
#include "unet/trainer.h"

namespace fs = std::filesystem;
using namespace unet;

namespace {

fs::path root;
int written = 0;

void put(const std::string& target, const std::string& name, const std::vector<unsigned char>& bytes) {
  fs::create_directories(root / target);
  std::ofstream out(root / target / ("seed-" + name), std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ++written;
}

std::vector<unsigned char> slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// ---- TIFF through libtiff ----------------------------------------------------------------------
struct TiffPage {
  uint32_t width = 16, height = 12;
  uint16_t channels = 1, bits = 8, format = SAMPLEFORMAT_UINT, compression = COMPRESSION_NONE;
  uint16_t predictor = PREDICTOR_NONE, planar = PLANARCONFIG_CONTIG, photometric = PHOTOMETRIC_MINISBLACK;
  uint32_t tile = 0;      // > 0: tiled (unetcore refuses tiles)
  uint32_t rows_per_strip = 4;
};

// A smooth pattern with some structure, so codecs and predictors have something to do.
double pattern(uint32_t x, uint32_t y, uint16_t c) { return ((x * 7 + y * 13 + c * 29) % 64) / 63.0; }

void fill_sample(unsigned char* dst, const TiffPage& p, double v) {
  if (p.format == SAMPLEFORMAT_IEEEFP) {
    const float f = static_cast<float>(v);
    std::memcpy(dst, &f, 4);
  } else if (p.bits == 8) {
    *dst = static_cast<unsigned char>(v * 255);
  } else if (p.bits == 16) {
    const uint16_t u = static_cast<uint16_t>(v * 65535);
    std::memcpy(dst, &u, 2);
  } else if (p.bits == 32) {
    const uint32_t u = static_cast<uint32_t>(v * 4e9);
    std::memcpy(dst, &u, 4);
  } else {  // 1-bit: packed by the caller's row layout (one byte per 8 pixels)
    *dst = v > 0.5 ? 0xFF : 0x00;
  }
}

bool write_tiff_pages(const fs::path& path, const char* mode, const std::vector<TiffPage>& pages) {
  TIFF* tif = TIFFOpen(path.c_str(), mode);
  if (!tif) return false;
  bool ok = true;
  for (size_t i = 0; i < pages.size() && ok; ++i) {
    const TiffPage& p = pages[i];
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, p.width);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, p.height);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, p.channels);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, p.bits);
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, p.format);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, p.photometric);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, p.planar);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, p.compression);
    if (p.channels == 2 || p.channels == 4) {
      const uint16_t extra = EXTRASAMPLE_UNASSALPHA;
      TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, &extra);
    }
    if (p.predictor != PREDICTOR_NONE) TIFFSetField(tif, TIFFTAG_PREDICTOR, p.predictor);
    if (p.compression == COMPRESSION_JPEG) TIFFSetField(tif, TIFFTAG_JPEGQUALITY, 75);
    if (pages.size() > 1) {
      TIFFSetField(tif, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
      TIFFSetField(tif, TIFFTAG_PAGENUMBER, static_cast<uint16_t>(i), static_cast<uint16_t>(pages.size()));
    }
    const uint16_t per_plane = p.planar == PLANARCONFIG_SEPARATE ? 1 : p.channels;
    const uint16_t planes = p.planar == PLANARCONFIG_SEPARATE ? p.channels : 1;
    const size_t sample_bytes = p.bits / 8;
    if (p.tile > 0) {
      TIFFSetField(tif, TIFFTAG_TILEWIDTH, p.tile);
      TIFFSetField(tif, TIFFTAG_TILELENGTH, p.tile);
      std::vector<unsigned char> buf(static_cast<size_t>(TIFFTileSize(tif)));
      for (uint32_t ty = 0; ty < p.height && ok; ty += p.tile)
        for (uint32_t tx = 0; tx < p.width && ok; tx += p.tile) {
          for (uint32_t y = 0; y < p.tile; ++y)
            for (uint32_t x = 0; x < p.tile; ++x)
              for (uint16_t c = 0; c < per_plane; ++c)
                fill_sample(&buf[((y * p.tile + x) * per_plane + c) * sample_bytes], p, pattern(tx + x, ty + y, c));
          ok = TIFFWriteTile(tif, buf.data(), tx, ty, 0, 0) >= 0;
        }
    } else {
      TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, p.compression == COMPRESSION_JPEG ? 8 : p.rows_per_strip);
      std::vector<unsigned char> row(static_cast<size_t>(TIFFScanlineSize(tif)));
      for (uint16_t plane = 0; plane < planes && ok; ++plane)
        for (uint32_t y = 0; y < p.height && ok; ++y) {
          if (p.bits == 1) {
            for (size_t b = 0; b < row.size(); ++b) row[b] = ((y + b) % 3 == 0) ? 0xF0 : 0x0F;
          } else {
            for (uint32_t x = 0; x < p.width; ++x)
              for (uint16_t c = 0; c < per_plane; ++c)
                fill_sample(&row[(x * per_plane + c) * sample_bytes], p, pattern(x, y, plane + c));
          }
          ok = TIFFWriteScanline(tif, row.data(), y, plane) >= 0;
        }
    }
    ok = ok && TIFFWriteDirectory(tif);
  }
  TIFFClose(tif);
  return ok;
}

void tiff_seed(const std::string& target, const std::string& name, const std::vector<TiffPage>& pages,
               const char* mode = "w") {
  const fs::path tmp = root / ("." + name + ".tif");
  if (write_tiff_pages(tmp, mode, pages)) put(target, name + ".tif", slurp(tmp));
  else std::fprintf(stderr, "make_seeds: libtiff could not write %s (skipped)\n", name.c_str());
  fs::remove(tmp);
}

void tiff_seeds() {
  TIFFSetWarningHandler(nullptr);
  struct Codec { uint16_t id; const char* name; };
  const Codec codecs[] = {{COMPRESSION_NONE, "none"},     {COMPRESSION_LZW, "lzw"},
                          {COMPRESSION_ADOBE_DEFLATE, "deflate"}, {COMPRESSION_PACKBITS, "packbits"},
                          {COMPRESSION_JPEG, "jpeg"},     {COMPRESSION_LZMA, "lzma"},
                          {COMPRESSION_ZSTD, "zstd"},     {COMPRESSION_WEBP, "webp"},
                          {COMPRESSION_LERC, "lerc"},     {COMPRESSION_CCITTFAX4, "g4"}};
  // (JBIG and NeXT: this libtiff decodes them but cannot write them; seeds from elsewhere welcome.)
  for (const Codec& c : codecs) {
    if (!TIFFIsCODECConfigured(c.id)) {
      std::printf("make_seeds: this libtiff has no %s codec\n", c.name);
      continue;
    }
    const std::string n = c.name;
    TiffPage p;
    p.compression = c.id;
    if (c.id == COMPRESSION_CCITTFAX4) {  // bilevel only: refused (1-bit)
      p.bits = 1;
      p.photometric = PHOTOMETRIC_MINISWHITE;
      tiff_seed("tiff", n + "-1bit", {p});
      continue;
    }
    if (c.id != COMPRESSION_WEBP) tiff_seed("tiff", n + "-u8", {p});  // WebP: RGB(A) only
    TiffPage rgb = p;
    rgb.channels = 3;
    rgb.photometric = PHOTOMETRIC_RGB;
    tiff_seed("tiff", n + "-rgb8", {rgb});
    if (c.id == COMPRESSION_JPEG || c.id == COMPRESSION_WEBP) continue;  // 8-bit codecs
    TiffPage u16 = p;
    u16.bits = 16;
    tiff_seed("tiff", n + "-u16", {u16});
    TiffPage f32 = p;
    f32.bits = 32;
    f32.format = SAMPLEFORMAT_IEEEFP;
    tiff_seed("tiff", n + "-f32", {f32});
    if (c.id == COMPRESSION_LZW || c.id == COMPRESSION_ADOBE_DEFLATE || c.id == COMPRESSION_ZSTD ||
        c.id == COMPRESSION_LZMA) {
      u16.predictor = PREDICTOR_HORIZONTAL;
      tiff_seed("tiff", n + "-u16-predictor", {u16});
      f32.predictor = PREDICTOR_FLOATINGPOINT;
      tiff_seed("tiff", n + "-f32-predictor", {f32});
    }
  }
  // Layouts: a stack of pages of different sizes and formats, unsigned 32-bit, grey+alpha, RGBA,
  // min-is-white, big-endian, BigTIFF, one row per strip; tiled and planar (both refused).
  TiffPage a, b, c;
  b.width = 9, b.height = 7, b.bits = 16, b.compression = COMPRESSION_LZW;
  c.channels = 3, c.photometric = PHOTOMETRIC_RGB, c.compression = COMPRESSION_ADOBE_DEFLATE;
  tiff_seed("tiff", "stack-3-pages", {a, b, c});
  TiffPage u32;
  u32.bits = 32;
  tiff_seed("tiff", "u32", {u32});
  TiffPage ga;
  ga.channels = 2;
  tiff_seed("tiff", "grey-alpha", {ga});
  TiffPage rgba;
  rgba.channels = 4, rgba.photometric = PHOTOMETRIC_RGB;
  tiff_seed("tiff", "rgba", {rgba});
  TiffPage white;
  white.photometric = PHOTOMETRIC_MINISWHITE;
  tiff_seed("tiff", "min-is-white", {white});
  tiff_seed("tiff", "big-endian-u16-lzw", {b}, "wb");
  tiff_seed("tiff", "bigtiff", {b}, "w8");
  TiffPage strips;
  strips.rows_per_strip = 1;
  tiff_seed("tiff", "strip-per-row", {strips});
  TiffPage tiled;
  tiled.tile = 16;
  tiled.width = tiled.height = 32;
  tiff_seed("tiff", "tiled", {tiled});
  TiffPage planar = c;
  planar.planar = PLANARCONFIG_SEPARATE;
  tiff_seed("tiff", "planar", {planar});
  // Label images: CTC man_seg (16-bit ids), 32-bit ids, an 8-bit mask, a float map (refused as ids).
  for (const auto& [name, bits, format] : {std::tuple{"ids-u16", 16, SAMPLEFORMAT_UINT},
                                          std::tuple{"ids-u32", 32, SAMPLEFORMAT_UINT},
                                          std::tuple{"mask-u8", 8, SAMPLEFORMAT_UINT},
                                          std::tuple{"float", 32, SAMPLEFORMAT_IEEEFP}}) {
    Image im = make_image(20, 16, 1, bits == 8 ? SampleFormat::U8 : bits == 16 ? SampleFormat::U16
                                      : format == SAMPLEFORMAT_IEEEFP ? SampleFormat::F32 : SampleFormat::U32);
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 20; ++x) {
        const int id = (x % 7 == 0 || y % 6 == 0) ? 0 : 1 + x / 7 + 3 * (y / 6);  // cells split by borders
        im.at(x, y) = bits == 8 ? (id ? 255.0f : 0.0f) : format == SAMPLEFORMAT_IEEEFP ? id * 0.1f : id;
      }
    const fs::path tmp = root / ".label.tif";
    write_tiff(tmp.string(), im);
    put("labels", std::string(name) + ".tif", slurp(tmp));
    if (bits == 8) {
      write_png((root / ".label.png").string(), im);
      put("labels", "mask.png", slurp(root / ".label.png"));
      fs::remove(root / ".label.png");
    }
    fs::remove(tmp);
  }
}

// ---- PNG, JPEG, BMP ----------------------------------------------------------------------------
void append(std::vector<unsigned char>* out, const void* data, int n) {
  out->insert(out->end(), static_cast<const unsigned char*>(data), static_cast<const unsigned char*>(data) + n);
}
void stb_sink(void* context, void* data, int size) { append(static_cast<std::vector<unsigned char>*>(context), data, size); }

void put_u32(std::vector<unsigned char>& o, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) o.push_back(static_cast<unsigned char>(v >> s));
}
void chunk(std::vector<unsigned char>& o, const char* type, const std::vector<unsigned char>& data) {
  put_u32(o, static_cast<uint32_t>(data.size()));
  const size_t start = o.size();
  o.insert(o.end(), type, type + 4);
  o.insert(o.end(), data.begin(), data.end());
  put_u32(o, stbiw__crc32(&o[start], static_cast<int>(data.size() + 4)));
}

// A PNG of 8-bit samples laid out by hand: palette (colour type 3) or Adam7-interlaced grey,
// which stb_image_write does not produce.
std::vector<unsigned char> handmade_png(int w, int h, int colour_type, bool interlaced) {
  std::vector<unsigned char> raw;
  auto rows = [&](int x0, int y0, int dx, int dy) {
    for (int y = y0; y < h; y += dy) {
      if (x0 >= w) break;
      raw.push_back(0);  // filter: none
      for (int x = x0; x < w; x += dx) raw.push_back(static_cast<unsigned char>((x * 5 + y * 3) % (colour_type == 3 ? 4 : 256)));
    }
  };
  if (interlaced) {
    const int pass[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
    for (const auto& p : pass) rows(p[0], p[1], p[2], p[3]);
  } else {
    rows(0, 0, 1, 1);
  }
  int zlen = 0;
  unsigned char* z = stbi_zlib_compress(raw.data(), static_cast<int>(raw.size()), &zlen, 8);
  std::vector<unsigned char> o = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}, ihdr;
  put_u32(ihdr, w);
  put_u32(ihdr, h);
  ihdr.insert(ihdr.end(), {8, static_cast<unsigned char>(colour_type), 0, 0, static_cast<unsigned char>(interlaced)});
  chunk(o, "IHDR", ihdr);
  if (colour_type == 3) chunk(o, "PLTE", {0, 0, 0, 255, 0, 0, 0, 255, 0, 255, 255, 255});
  chunk(o, "IDAT", std::vector<unsigned char>(z, z + zlen));
  chunk(o, "IEND", {});
  STBIW_FREE(z);
  return o;
}

void png_seeds() {
  const int w = 16, h = 12;
  for (int comp = 1; comp <= 4; ++comp) {
    std::vector<unsigned char> pixels(w * h * comp), out;
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>((i * 37) % 251);
    stbi_write_png_to_func(stb_sink, &out, w, h, comp, pixels.data(), w * comp);
    put("png", "u8-" + std::to_string(comp) + "ch.png", out);
    if (comp == 1 || comp == 3) {
      out.clear();
      stbi_write_jpg_to_func(stb_sink, &out, w, h, comp, pixels.data(), 80);
      put("png", "jpeg-" + std::to_string(comp) + "ch.jpg", out);
      out.clear();
      stbi_write_bmp_to_func(stb_sink, &out, w, h, comp, pixels.data());
      put("png", "bmp-" + std::to_string(comp) + "ch.bmp", out);
    }
  }
  for (int channels : {1, 3}) {  // 16-bit, through unetcore's own writer
    Image im = make_image(w, h, channels, SampleFormat::U16);
    for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<float>((i * 4099) % 65536);
    const fs::path tmp = root / ".u16.png";
    write_png(tmp.string(), im);
    put("png", "u16-" + std::to_string(channels) + "ch.png", slurp(tmp));
    fs::remove(tmp);
  }
  put("png", "palette.png", handmade_png(w, h, 3, false));
  put("png", "interlaced.png", handmade_png(w, h, 0, true));
}

// ---- checkpoints and configurations ------------------------------------------------------------
void checkpoint_seeds() {
  // The tiny run of fuzz_safetensors.cpp: depth 1, base 1, a 92 x 92 slice, tile 92.
  UNetConfig config;
  config.base_channels = 1;
  config.depth = 1;
  UNet model(config, Device::cpu());
  TrainingSlice s;
  s.name = "slice";
  s.image = Tensor::full(Shape{1, 92, 92}, 0.5f);
  std::vector<int32_t> classes(92 * 92);
  for (size_t i = 0; i < classes.size(); ++i) classes[i] = (i / 92 + i % 92) % 9 < 5;
  s.classes = Tensor::from_vector(classes, Shape{92, 92});
  s.weights = Tensor::full(Shape{92, 92}, 1.0f);
  TrainOptions options;
  options.tile = 92;
  options.weight_average = 0.9;
  Trainer trainer(model, {s}, options);
  const fs::path tmp = root / ".model.safetensors";
  save_model(model, tmp.string());
  put("safetensors", "model-untrained.safetensors", slurp(tmp));
  trainer.step();
  trainer.save_checkpoint(tmp.string());
  put("safetensors", "training-checkpoint.safetensors", slurp(tmp));
  save_safetensors(tmp.string(), {{"labels", Tensor::from_vector(std::vector<int32_t>{1, 2, 3, 4}, Shape{2, 2})},
                                  {"empty", Tensor::zeros(Shape{0})},
                                  {"scalar", Tensor::full(Shape{}, 2.0f)}},
                   {{"note", "not a model"}});
  put("safetensors", "plain-tensors.safetensors", slurp(tmp));
  fs::remove(tmp);

  auto text = [](const std::string& t) { return std::vector<unsigned char>(t.begin(), t.end()); };
  UNetConfig paper;
  put("model_config", "paper.json", text(paper.to_json()));
  put("model_config", "tiny.json", text(config.to_json()));
  UNetConfig rich = config;
  rich.in_channels = 3, rich.num_classes = 4, rich.padding = Padding::Same, rich.input_mean = 0.5f;
  rich.input_std = 0.25f, rich.head_init = HeadInit::Zero, rich.init_seed = 7;
  put("model_config", "rich.json", text(rich.to_json()));
  put("model_config", "old-checkpoint.json",
      text(R"({"in_channels":1,"num_classes":2,"base_channels":64,"depth":4,"padding":"valid"})"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
    return 1;
  }
  root = argv[1];
  fs::create_directories(root);
  tiff_seeds();
  png_seeds();
  checkpoint_seeds();
  std::printf("make_seeds: %d seeds written under %s\n", written, root.c_str());
  return 0;
}
