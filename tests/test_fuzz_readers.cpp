// tests/test_fuzz_readers.cpp — truncated and garbled files fed to every reader: each must
// either decode or throw IOError naming the file; never crash, hang, or throw anything else.
// Deterministic (Philox), so a failure reproduces.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "core/philox.h"
#include "unet/dataset.h"
#include "unet/image_io.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace unet;

namespace {

std::vector<unsigned char> slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void dump(const std::string& p, const std::vector<unsigned char>& b) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// Runs every reader on the file: success or IOError that names the file are the only outcomes.
void expect_clean(const std::string& path) {
  auto check = [&](auto&& read) {
    try {
      read();
    } catch (const IOError& e) {
      REQUIRE(std::string(e.what()).find(path) != std::string::npos);
    }
  };
  check([&] { read_image(path); });
  check([&] { read_image_stack(path); });
  check([&] { count_pages(path); });
}

Image sample_image(SampleFormat f, int channels) {
  Image im = make_image(29, 19, channels, f);
  for (size_t i = 0; i < im.pixels.size(); ++i)
    im.pixels[i] = f == SampleFormat::F32 ? 0.01f * (i % 97) : static_cast<float>(i % 251);
  return im;
}

}  // namespace

TEST_CASE("fuzz: truncated and garbled PNG/TIFF files give IOError, never a crash", "[data][fuzz]") {
  const unet::test::TempDir tmp("unet_fuzz");
  const fs::path dir = tmp.path;
  std::vector<std::string> originals;
  auto add = [&](const std::string& name, auto&& writer) {
    const std::string p = (dir / name).string();
    writer(p);
    originals.push_back(p);
  };
  add("g8.png", [](auto& p) { write_png(p, sample_image(SampleFormat::U8, 1)); });
  add("g16.png", [](auto& p) { write_png(p, sample_image(SampleFormat::U16, 1)); });
  add("rgb.png", [](auto& p) { write_png(p, sample_image(SampleFormat::U8, 3)); });
  add("u16lzw.tif", [](auto& p) { write_tiff(p, sample_image(SampleFormat::U16, 1)); });
  add("f32.tif", [](auto& p) { write_tiff(p, sample_image(SampleFormat::F32, 1), TiffCompression::None); });
  add("stack.tif", [](auto& p) {
    write_tiff_stack(p, {sample_image(SampleFormat::U8, 1), sample_image(SampleFormat::U8, 3)});
  });
  originals.push_back(std::string(UNET_SOURCE_DIR) + "/data/isbi2012/train/labels/03.png");

  const std::string victim = (dir / "victim.bin").string();
  uint64_t counter = 0;
  for (const auto& orig : originals) {
    const auto bytes = slurp(orig);
    REQUIRE(bytes.size() > 16);
    // Truncations: every length at the start (headers), then spread over the file.
    std::vector<size_t> lengths;
    for (size_t n = 0; n < std::min<size_t>(bytes.size(), 64); ++n) lengths.push_back(n);
    for (int k = 1; k < 40; ++k) lengths.push_back(bytes.size() * k / 40);
    for (size_t n : lengths) {
      dump(victim, std::vector<unsigned char>(bytes.begin(), bytes.begin() + n));
      expect_clean(victim);
    }
    // Garbling: 1..8 random bytes overwritten, biased toward the header where parsers branch.
    for (int trial = 0; trial < 80; ++trial) {
      auto g = bytes;
      const int flips = 1 + static_cast<int>(philox_uint32(7, counter++) % 8);
      for (int f = 0; f < flips; ++f) {
        const uint32_t r = philox_uint32(7, counter++);
        const size_t span = (trial % 2) ? std::min<size_t>(g.size(), 256) : g.size();
        g[r % span] = static_cast<unsigned char>(philox_uint32(7, counter++));
      }
      dump(victim, g);
      expect_clean(victim);
    }
  }
  // Files that are not images at all, and an empty one.
  dump(victim, {});
  REQUIRE_THROWS_AS(read_image(victim), IOError);
  dump(victim, std::vector<unsigned char>(100, 'x'));
  REQUIRE_THROWS_AS(read_image(victim), IOError);
}

TEST_CASE("fuzz: unsupported TIFF bit depth is named in the error", "[data][fuzz]") {
  const unet::test::TempDir tmp("unet_fuzz_bits");
  const fs::path dir = tmp.path;
  const std::string p = (dir / "bits.tif").string();
  write_tiff(p, sample_image(SampleFormat::U8, 1), TiffCompression::None);
  auto b = slurp(p);
  REQUIRE(b[0] == 'I');  // little-endian classic TIFF, as libtiff writes on x86
  auto u16 = [&](size_t o) { return static_cast<uint32_t>(b[o] | (b[o + 1] << 8)); };
  const size_t ifd = u16(4) | (u16(6) << 16);
  const uint32_t entries = u16(ifd);
  bool patched = false;
  for (uint32_t e = 0; e < entries; ++e) {
    const size_t at = ifd + 2 + 12 * e;
    if (u16(at) == 258) {  // BitsPerSample
      b[at + 8] = 12;
      patched = true;
    }
  }
  REQUIRE(patched);
  dump(p, b);
  try {
    read_image(p);
    FAIL("no exception");
  } catch (const IOError& e) {
    const std::string what = e.what();
    REQUIRE(what.find("bits.tif") != std::string::npos);
    REQUIRE(what.find("bit depth") != std::string::npos);
  }
}

TEST_CASE("fuzz: dataset loaders report corrupt members by name", "[data][fuzz]") {
  const unet::test::TempDir tmp("unet_fuzz_ds");
  const fs::path dir = tmp.path;
  fs::create_directories(dir / "images");
  fs::create_directories(dir / "labels");
  fs::create_directories(dir / "set" / "01");
  fs::create_directories(dir / "set" / "01_GT" / "SEG");
  write_png((dir / "images" / "a.png").string(), sample_image(SampleFormat::U8, 1));
  write_png((dir / "labels" / "a.png").string(), sample_image(SampleFormat::U8, 1));
  write_tiff((dir / "set" / "01" / "t000.tif").string(), sample_image(SampleFormat::U8, 1));
  const std::string label = (dir / "labels" / "a.png").string();
  const std::string seg = (dir / "set" / "01_GT" / "SEG" / "man_seg000.tif").string();
  write_tiff(seg, sample_image(SampleFormat::U16, 1));
  const auto png = slurp(label), tif = slurp(seg);
  uint64_t counter = 1000;
  for (int trial = 0; trial < 30; ++trial) {
    auto cut = [&](const std::vector<unsigned char>& b) {
      return std::vector<unsigned char>(b.begin(), b.begin() + philox_uint32(3, counter++) % b.size());
    };
    dump(label, cut(png));
    dump(seg, cut(tif));
    try {
      load_folder_dataset((dir / "images").string(), (dir / "labels").string());
    } catch (const IOError& e) {
      REQUIRE(std::string(e.what()).find(label) != std::string::npos);
    }
    try {
      load_ctc_dataset((dir / "set").string());
    } catch (const IOError& e) {
      REQUIRE(std::string(e.what()).find(seg) != std::string::npos);
    }
  }
}

// The fuzzers' seeds (tests/fuzz/corpus, written by tests/fuzz/make_seeds.cpp with libtiff and
// stb) are real files of every codec and layout: each must decode to the pattern it was written
// with (lossless codecs exactly), or be refused with IOError when unetcore does not read that
// layout (tiles, planar channels, 1-bit).
namespace {

double seed_pattern(int x, int y, int c) { return ((x * 7 + y * 13 + c * 29) % 64) / 63.0; }

}  // namespace

TEST_CASE("fuzz seeds: every TIFF codec and layout decodes to what was written, or is refused by name", "[data][fuzz]") {
  const fs::path corpus = fs::path(UNET_SOURCE_DIR) / "tests" / "fuzz" / "corpus" / "tiff";
  int decoded = 0, refused = 0;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    const std::string name = entry.path().filename().string(), path = entry.path().string();
    if (!name.starts_with("seed-")) continue;  // crash regressions: test_fuzz's replay covers them
    INFO(name);
    if (name.find("tiled") != std::string::npos || name.find("planar") != std::string::npos ||
        name.find("1bit") != std::string::npos) {
      CHECK_THROWS_WITH(read_image(path), Catch::Contains(path));
      ++refused;
      continue;
    }
    const std::vector<Image> pages = read_image_stack(path);
    REQUIRE(!pages.empty());
    ++decoded;
    if (name.find("stack") != std::string::npos) {
      REQUIRE(pages.size() == 3);
      CHECK((pages[1].width == 9 && pages[1].height == 7 && pages[1].format == SampleFormat::U16));
      CHECK(pages[2].channels == 3);
      continue;
    }
    REQUIRE(pages.size() == 1);
    const Image& im = pages[0];
    const bool small = name.find("big") != std::string::npos;  // the big-endian and BigTIFF seeds: 9 x 7
    CHECK(im.width == (small ? 9 : 16));
    CHECK(im.height == (small ? 7 : 12));
    const bool lossy = name.find("jpeg") != std::string::npos || name.find("webp") != std::string::npos;
    const bool white = name.find("min-is-white") != std::string::npos;
    double scale = 0;  // what the writer multiplied the pattern by (0: values not compared)
    if (name.find("-u8") != std::string::npos || name.find("rgb8") != std::string::npos ||
        name.find("min-is-white") != std::string::npos || name.find("strip-per-row") != std::string::npos)
      scale = 255;
    else if (name.find("u16") != std::string::npos)
      scale = 65535;
    else if (name.find("f32") != std::string::npos)
      scale = 1;
    if (scale == 0 || lossy) continue;
    for (int y = 0; y < im.height; ++y)
      for (int x = 0; x < im.width; ++x)
        for (int c = 0; c < im.channels; ++c) {
          const double v = seed_pattern(x, y, c);
          const double written = scale == 1 ? static_cast<float>(v) : std::floor(v * scale);
          const double expected = white ? 255 - written : written;
          if (im.at(x, y, c) != static_cast<float>(expected)) {
            FAIL_CHECK(name << " at (" << x << "," << y << "," << c << "): " << im.at(x, y, c) << " != " << expected);
            return;
          }
        }
  }
  CHECK(decoded >= 30);
  CHECK(refused == 3);
}

TEST_CASE("fuzz seeds: every PNG colour type, JPEG and BMP decodes", "[data][fuzz]") {
  const fs::path corpus = fs::path(UNET_SOURCE_DIR) / "tests" / "fuzz" / "corpus" / "png";
  int decoded = 0;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("seed-")) continue;
    INFO(name);
    const Image im = read_image(entry.path().string());
    CHECK((im.width == 16 && im.height == 12));
    CHECK(im.format == (name.find("u16") != std::string::npos ? SampleFormat::U16 : SampleFormat::U8));
    ++decoded;
  }
  CHECK(decoded == 12);
}

// The two fuzz findings of 2026-12-02 (tests/fuzz/corpus/{png,labels}/crash-*, oom-*), rebuilt
// from the seeds so that what each check refuses, and what it must not, is visible here.
TEST_CASE("fuzz: a JPEG Huffman table of more than 256 codes is refused before stb builds it", "[data][fuzz]") {
  const unet::test::TempDir tmp("unet_fuzz_dht");
  const fs::path corpus = fs::path(UNET_SOURCE_DIR) / "tests" / "fuzz" / "corpus" / "png";
  const auto jpeg = slurp((corpus / "seed-jpeg-1ch.jpg").string());
  size_t dht = 0;
  for (size_t i = 1; i + 20 < jpeg.size() && dht == 0; ++i)
    if (jpeg[i - 1] == 0xFF && jpeg[i] == 0xC4) dht = i;
  REQUIRE(dht > 0);
  const std::string p = (tmp.path / "bad.jpg").string();
  auto bad = jpeg;
  for (size_t i = 0; i < 16; ++i) bad[dht + 4 + i] = 0x20;  // 16 x 32 = 512 codes
  dump(p, bad);
  REQUIRE_THROWS_AS(read_image(p), IOError);
  CHECK_THROWS_WITH(read_image(p), Catch::Contains(p) && Catch::Contains("Huffman table") &&
                                       Catch::Contains("512 codes"));
  // The same bytes inside an APP segment before the first scan are data, not a table: the file
  // still decodes (the check follows the segment lengths there, as stb does).
  std::vector<unsigned char> app = {0xFF, 0xE5, 0x00, 0x17, 0xFF, 0xC4, 0x00, 0x13, 0x00};
  for (int i = 0; i < 16; ++i) app.push_back(0x20);
  REQUIRE(app.size() == 0x17 + 2u);
  auto wrapped = jpeg;
  wrapped.insert(wrapped.begin() + 2, app.begin(), app.end());
  dump(p, wrapped);
  const Image im = read_image(p);
  CHECK((im.width == 16 && im.height == 12));
}

TEST_CASE("fuzz: a PNG IDAT chunk that claims more bytes than the file has is refused before stb allocates", "[data][fuzz]") {
  const unet::test::TempDir tmp("unet_fuzz_idat");
  const fs::path corpus = fs::path(UNET_SOURCE_DIR) / "tests" / "fuzz" / "corpus" / "png";
  auto png = slurp((corpus / "seed-u8-1ch.png").string());
  size_t idat = 0;
  for (size_t i = 12; i + 4 <= png.size() && idat == 0; ++i)
    if (std::equal(png.begin() + i, png.begin() + i + 4, "IDAT")) idat = i - 4;
  REQUIRE(idat > 0);
  png[idat] = 0x73;  // 1.9 GB claimed; stb would allocate that much before reading it
  const std::string p = (tmp.path / "bad.png").string();
  dump(p, png);
  CHECK_THROWS_WITH(read_image(p), Catch::Contains(p) && Catch::Contains("IDAT chunk") &&
                                       Catch::Contains("claims"));
}

TEST_CASE("fuzz: a PNG whose first IDAT chunk is empty is refused before stb copies it", "[data][fuzz]") {
  const unet::test::TempDir tmp("unet_fuzz_empty_idat");
  const fs::path corpus = fs::path(UNET_SOURCE_DIR) / "tests" / "fuzz" / "corpus" / "png";
  const auto png = slurp((corpus / "seed-u8-1ch.png").string());
  size_t idat = 0;
  for (size_t i = 12; i + 4 <= png.size() && idat == 0; ++i)
    if (std::equal(png.begin() + i, png.begin() + i + 4, "IDAT")) idat = i - 4;
  REQUIRE(idat > 0);
  // An empty IDAT chunk (length 0, its CRC) in front of the real one.
  std::vector<unsigned char> bad(png.begin(), png.begin() + static_cast<std::ptrdiff_t>(idat));
  const unsigned char empty_idat[] = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xAF, 0x06, 0x1E};
  bad.insert(bad.end(), std::begin(empty_idat), std::end(empty_idat));
  bad.insert(bad.end(), png.begin() + static_cast<std::ptrdiff_t>(idat), png.end());
  const std::string p = (tmp.path / "empty_idat.png").string();
  dump(p, bad);
  CHECK_THROWS_WITH(read_image(p), Catch::Contains(p) && Catch::Contains("first IDAT chunk"));
  dump(p, png);  // the same file without the empty chunk reads
  CHECK(read_image(p).width > 0);
}
