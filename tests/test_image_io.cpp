// tests/test_image_io.cpp — PNG/TIFF round trips at every supported depth, stacks, the shipped
// ISBI data, and the typed errors for missing / unsupported files.
#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

#include <tiffio.h>

#include "core/error.h"
#include "unet/image.h"
#include "unet/image_io.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace unet;

namespace {

Image pattern(int w, int h, int c, SampleFormat f) {
  Image im = make_image(w, h, c, f);
  const double top = f == SampleFormat::F32 ? 1.0 : sample_max(f);
  for (size_t i = 0; i < im.pixels.size(); ++i) {
    const double v = std::fmod(i * 7919.0 + 13.0, 1000.0) / 999.0 * top;
    im.pixels[i] = f == SampleFormat::F32 ? static_cast<float>(v) - 0.25f
                 : f == SampleFormat::U32 ? static_cast<float>(i * 40503u % 16777216u)
                                          : static_cast<float>(std::round(v));
  }
  return im;
}

void require_equal(const Image& a, const Image& b) {
  REQUIRE(a.width == b.width);
  REQUIRE(a.height == b.height);
  REQUIRE(a.channels == b.channels);
  REQUIRE(a.format == b.format);
  REQUIRE(a.pixels == b.pixels);
}

}  // namespace

TEST_CASE("PNG round trip: 8/16-bit, grey and RGB", "[data][image_io]") {
  const test::TempDir dir("unet_io_test");
  for (auto f : {SampleFormat::U8, SampleFormat::U16})
    for (int c : {1, 3}) {
      const Image im = pattern(37, 23, c, f);  // odd sizes: no row padding assumptions
      const std::string p = dir.file("x.png");
      write_png(p, im);
      require_equal(read_image(p), im);
    }
}

TEST_CASE("TIFF round trip: 8/16/32-bit, float, LZW and uncompressed", "[data][image_io]") {
  const test::TempDir dir("unet_io_test");
  for (auto f : {SampleFormat::U8, SampleFormat::U16, SampleFormat::U32, SampleFormat::F32})
    for (auto comp : {TiffCompression::None, TiffCompression::LZW})
      for (int c : {1, 3}) {
        const Image im = pattern(41, 17, c, f);
        const std::string p = dir.file("x.tif");
        write_tiff(p, im, comp);
        require_equal(read_image(p), im);
      }
}

TEST_CASE("multi-page TIFF stacks keep every page", "[data][image_io]") {
  const test::TempDir dir("unet_io_test");
  std::vector<Image> pages = {pattern(8, 5, 1, SampleFormat::U16), pattern(8, 5, 1, SampleFormat::U16),
                              pattern(3, 9, 1, SampleFormat::F32)};
  pages[1].pixels[0] = 4242;
  const std::string p = dir.file("stack.tif");
  write_tiff_stack(p, pages);
  REQUIRE(count_pages(p) == 3);
  const auto back = read_image_stack(p);
  REQUIRE(back.size() == 3);
  for (int i = 0; i < 3; ++i) require_equal(back[i], pages[i]);
  // read_image reads one image: a stack is refused, never cut to its first page.
  CHECK_THROWS_AS(read_image(p), IOError);
  CHECK_THROWS_WITH(read_image(p), Catch::Contains(p) && Catch::Contains("a stack of 3 pages") &&
                                       Catch::Contains("read_image_stack"));
  // A one-page TIFF is an image to both readers.
  write_tiff_stack(p, {pages[2]});
  require_equal(read_image(p), pages[2]);
  REQUIRE(read_image_stack(p).size() == 1);
  REQUIRE(count_pages(p) == 1);
}

namespace {

// A TIFF written with libtiff directly, for layouts our writer does not make: `kinds` gives each
// directory's SubfileType (0 = a page, FILETYPE_REDUCEDIMAGE = a thumbnail), `description` the
// first directory's ImageDescription. Every directory is an 8-bit image whose pixels are its index.
void write_raw_tiff(const std::string& path, const std::vector<uint32_t>& kinds, const std::string& description = "") {
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  REQUIRE(tif != nullptr);
  for (size_t d = 0; d < kinds.size(); ++d) {
    const uint32_t w = kinds[d] ? 4 : 8, h = kinds[d] ? 3 : 6;  // thumbnails are smaller
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, static_cast<uint16_t>(1));
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, static_cast<uint16_t>(8));
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, static_cast<uint16_t>(PHOTOMETRIC_MINISBLACK));
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, static_cast<uint16_t>(PLANARCONFIG_CONTIG));
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, h);
    TIFFSetField(tif, TIFFTAG_SUBFILETYPE, kinds[d]);
    if (d == 0 && !description.empty()) TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, description.c_str());
    std::vector<unsigned char> row(w, static_cast<unsigned char>(d));
    for (uint32_t y = 0; y < h; ++y) REQUIRE(TIFFWriteScanline(tif, row.data(), y, 0) >= 0);
    REQUIRE(TIFFWriteDirectory(tif));
  }
  TIFFClose(tif);
}

}  // namespace

TEST_CASE("TIFF thumbnails are not pages, ImageJ's over-4-GB stacks are refused, not cut", "[data][image_io]") {
  const test::TempDir dir("unet_io_test");
  const std::string p = dir.file("thumbs.tif");
  // page, thumbnail, page, thumbnail: two pages (directories 0 and 2).
  write_raw_tiff(p, {0, FILETYPE_REDUCEDIMAGE, 0, FILETYPE_REDUCEDIMAGE});
  const auto pages = read_image_stack(p);
  REQUIRE(pages.size() == 2);
  CHECK(pages[1].width == 8);
  CHECK(pages[1].pixels[0] == 2);
  CHECK(count_pages(p) == 2);
  // One page and its thumbnail is one image.
  write_raw_tiff(p, {0, FILETYPE_REDUCEDIMAGE});
  CHECK(read_image(p).pixels[0] == 0);
  // ImageJ's layout for huge stacks: one directory, the description declares more images.
  const std::string imagej = dir.file("imagej.tif");
  write_raw_tiff(imagej, {0}, "ImageJ=1.53t\nimages=3\nslices=3\nloop=false\n");
  for (auto read : {+[](const std::string& f) { (void)read_image(f); }, +[](const std::string& f) { (void)read_image_stack(f); },
                    +[](const std::string& f) { (void)count_pages(f); }})
    CHECK_THROWS_WITH(read(imagej), Catch::Contains(imagej) && Catch::Contains("ImageJ says it holds 3 images"));
  // An ImageJ file whose directories are all there reads normally.
  write_raw_tiff(imagej, {0, 0, 0}, "ImageJ=1.53t\nimages=3\nslices=3\n");
  CHECK(read_image_stack(imagej).size() == 3);
}

TEST_CASE("writers leave no temporary files and replace existing files", "[data][image_io]") {
  const test::TempDir dir("unet_io_test");
  const std::string p = dir.file("a.png");
  write_png(p, pattern(4, 4, 1, SampleFormat::U8));
  Image second = pattern(4, 4, 1, SampleFormat::U8);
  second.pixels[3] = 1;
  write_png(p, second);
  require_equal(read_image(p), second);
  int files = 0;
  for (auto& e : fs::directory_iterator(dir.path)) { (void)e; ++files; }
  REQUIRE(files == 1);
}

TEST_CASE("shipped ISBI 2012 slices read as 512x512 8-bit grey", "[data][image_io]") {
  const std::string root = std::string(UNET_SOURCE_DIR) + "/data/isbi2012/train/";
  const Image im = read_image(root + "images/00.png");
  REQUIRE(im.width == 512);
  REQUIRE(im.height == 512);
  REQUIRE(im.channels == 1);
  REQUIRE(im.format == SampleFormat::U8);
  const Image lab = read_image(root + "labels/00.png");
  for (float v : lab.pixels) REQUIRE((v == 0.0f || v == 255.0f));
}

TEST_CASE("image helpers: normalised, to_u8, grey, planar, labels", "[data][image_io]") {
  Image im = make_image(2, 1, 3, SampleFormat::U16);
  im.pixels = {65535, 0, 0, 0, 65535, 0};
  const Image n = normalised(im);
  REQUIRE(n.format == SampleFormat::F32);
  REQUIRE(n.pixels[0] == 1.0f);
  REQUIRE(to_planar(im) == std::vector<float>{65535, 0, 0, 65535, 0, 0});
  const Image g = to_grey(im);
  REQUIRE(g.channels == 1);
  REQUIRE(g.pixels[0] == std::round(0.299f * 65535));
  Image f = make_image(3, 1, 1, SampleFormat::F32);
  f.pixels = {-1.0f, 0.5f, 2.0f};
  REQUIRE(to_u8(f).pixels == std::vector<float>{0, 128, 255});
  Image bad = make_image(2, 1);
  bad.pixels = {1.5f, 0.0f};
  REQUIRE_THROWS_AS(labels_from_values(bad), ValueError);
  bad.pixels.push_back(0);
  REQUIRE_THROWS_AS(validate(bad, "test"), ShapeError);
}

TEST_CASE("I/O errors are typed and name the file", "[data][image_io]") {
  const test::TempDir dir("unet_io_test");
  const std::string missing = dir.file("missing.png");
  try {
    read_image(missing);
    FAIL("no exception");
  } catch (const IOError& e) {
    REQUIRE(std::string(e.what()).find("missing.png") != std::string::npos);
  }
  REQUIRE_THROWS_AS(write_png(dir.file("f.png"), pattern(4, 4, 1, SampleFormat::F32)), ValueError);
  REQUIRE_THROWS_AS(write_image(dir.file("f.xyz"), pattern(4, 4, 1, SampleFormat::U8)), ValueError);
  REQUIRE_THROWS_AS(write_png(dir.path.string() + "/no/such/dir/f.png", pattern(4, 4, 1, SampleFormat::U8)),
                    IOError);
}

TEST_CASE("probability maps: float TIFF exact, PNG for viewing", "[data][image_io]") {
  const test::TempDir dir("unet_io_test");
  Image p = make_image(5, 2);
  p.pixels = {0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 0.1234567f, 0.9f, 0.3f, 0.0f, 1.0f};
  write_probability_map(dir.file("p.tif"), p);
  require_equal(read_image(dir.file("p.tif")), p);
  write_probability_map(dir.file("p.png"), p);
  const Image v = read_image(dir.file("p.png"));
  REQUIRE(v.format == SampleFormat::U8);
  REQUIRE(v.pixels[1] == 64.0f);  // round(0.25 * 255)
  REQUIRE_THROWS_AS(write_probability_map(dir.file("p.jpg"), p), ValueError);
}
