// tests/test_dataset.cpp — the three dataset layouts (folder pair, TIFF stacks, synthetic Cell
// Tracking Challenge tree in a temp dir) and their typed errors.
#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

#include "core/error.h"
#include "unet/connected_components.h"
#include "unet/dataset.h"
#include "unet/image_io.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace unet;

namespace {

// Two 4-connected squares in a binary 8-bit mask (touching only diagonally: 2 objects).
Image binary_mask(int w, int h) {
  Image m = make_image(w, h, 1, SampleFormat::U8);
  for (int y = 1; y < 4; ++y)
    for (int x = 1; x < 4; ++x) m.at(x, y) = 255;
  for (int y = 4; y < 7; ++y)
    for (int x = 4; x < 7; ++x) m.at(x, y) = 255;
  return m;
}

}  // namespace

TEST_CASE("connected components: 4- vs 8-connectivity, raster order", "[data][dataset]") {
  const Image m = binary_mask(8, 8);
  std::vector<uint8_t> mask(m.pixels.size());
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = m.pixels[i] > 0;
  int n4 = 0, n8 = 0;
  const LabelImage l4 = connected_components(mask, 8, 8, Connectivity::Four, n4);
  connected_components(mask, 8, 8, Connectivity::Eight, n8);
  REQUIRE(n4 == 2);
  REQUIRE(n8 == 1);
  REQUIRE(l4.at(1, 1) == 1);
  REQUIRE(l4.at(6, 6) == 2);
  REQUIRE(l4.at(0, 0) == 0);
  // A U shape whose arms meet only at the bottom: provisional labels must merge.
  std::vector<uint8_t> u = {1, 0, 1,
                            1, 0, 1,
                            1, 1, 1};
  int nu = 0;
  const LabelImage lu = connected_components(u, 3, 3, Connectivity::Four, nu);
  REQUIRE(nu == 1);
  REQUIRE(lu.at(2, 0) == 1);
  LabelImage frag = make_label_image(5, 1);
  frag.labels = {7, 7, 0, 7, 3};
  REQUIRE(split_disconnected(frag).labels == std::vector<int32_t>{1, 1, 0, 2, 3});
}

TEST_CASE("folder dataset: the shipped ISBI 2012 training set", "[data][dataset]") {
  const std::string root = std::string(UNET_SOURCE_DIR) + "/data/isbi2012/train/";
  const auto samples = load_folder_dataset(root + "images", root + "labels");
  REQUIRE(samples.size() == 25);
  REQUIRE(samples[0].name == "00");
  REQUIRE(samples[24].name == "24");
  for (const auto& s : samples) {
    REQUIRE(s.labels.width == 512);
    REQUIRE(count_objects(s.labels) > 50);  // binary mask -> many cells
  }
}

TEST_CASE("folder dataset: pairing and errors", "[data][dataset]") {
  const test::TempDir dir("unet_ds_test");
  const std::string images = dir.sub("images"), labels = dir.sub("labels");
  write_png(images + "/a.png", make_image(8, 8, 1, SampleFormat::U8));
  write_png(labels + "/a.png", binary_mask(8, 8));
  write_tiff(images + "/b.tif", make_image(8, 8, 1, SampleFormat::U16));
  write_tiff(labels + "/b.tif", binary_mask(8, 8));
  auto s = load_folder_dataset(images, labels);
  REQUIRE(s.size() == 2);
  REQUIRE(count_objects(s[0].labels) == 2);
  REQUIRE(s[1].image.format == SampleFormat::U16);
  // Instance ids are kept as they are in Auto mode when there are several values.
  Image inst = make_image(8, 8, 1, SampleFormat::U16);
  inst.at(0, 0) = 5;
  inst.at(1, 0) = 9;
  write_tiff(labels + "/b.tif", inst);
  s = load_folder_dataset(images, labels);
  REQUIRE(s[1].labels.at(0, 0) == 5);
  REQUIRE(s[1].labels.at(1, 0) == 9);
  // Size mismatch names both files.
  write_png(labels + "/a.png", make_image(9, 8, 1, SampleFormat::U8));
  try {
    load_folder_dataset(images, labels);
    FAIL("no exception");
  } catch (const ShapeError& e) {
    const std::string what = e.what();
    REQUIRE(what.find("images/a.png") != std::string::npos);
    REQUIRE(what.find("labels/a.png") != std::string::npos);
    REQUIRE(what.find("9x8") != std::string::npos);
  }
  fs::remove(labels + "/a.png");
  REQUIRE_THROWS_AS(load_folder_dataset(images, labels), IOError);  // missing label
  REQUIRE_THROWS_AS(load_folder_dataset(dir.sub("empty"), labels), IOError);
  REQUIRE_THROWS_AS(load_folder_dataset(images, dir.path.string() + "/nope"), IOError);
}

TEST_CASE("stack dataset: multi-page image and label stacks", "[data][dataset]") {
  const test::TempDir dir("unet_ds_test");
  const std::string root = dir.path.string();
  std::vector<Image> images(3, make_image(8, 8, 1, SampleFormat::U8)), labels(3, binary_mask(8, 8));
  images[2].pixels[0] = 77;
  write_tiff_stack(root + "/vol.tif", images);
  write_tiff_stack(root + "/lab.tif", labels);
  const auto s = load_stack_dataset(root + "/vol.tif", root + "/lab.tif");
  REQUIRE(s.size() == 3);
  REQUIRE(s[2].image.pixels[0] == 77);
  REQUIRE(count_objects(s[1].labels) == 2);
  labels.pop_back();
  write_tiff_stack(root + "/lab.tif", labels);
  REQUIRE_THROWS_AS(load_stack_dataset(root + "/vol.tif", root + "/lab.tif"), ShapeError);
}

TEST_CASE("folder dataset: a stack in the folder gives one sample per page, paired page by page", "[data][dataset]") {
  const test::TempDir dir("unet_ds_test");
  const std::string images = dir.sub("images"), labels = dir.sub("labels");
  std::vector<Image> pages(12, make_image(8, 8, 1, SampleFormat::U8));
  for (int i = 0; i < 12; ++i) pages[i].pixels[0] = static_cast<float>(i);
  write_tiff_stack(images + "/vol.tif", pages);
  std::vector<Image> masks(12, binary_mask(8, 8));
  for (int i = 1; i < 12; i += 2) masks[i].at(7, 0) = 255;  // odd pages: a third, one-pixel cell
  write_tiff_stack(labels + "/vol.tif", masks);
  write_png(images + "/single.png", make_image(8, 8, 1, SampleFormat::U8));
  write_png(labels + "/single.png", binary_mask(8, 8));
  const auto s = load_folder_dataset(images, labels);
  REQUIRE(s.size() == 13);
  CHECK(s[0].name == "single");
  CHECK(s[1].name == "vol_p00");  // zero-padded to the width of the last page number
  CHECK(s[12].name == "vol_p11");
  CHECK(s[12].image.pixels[0] == 11);
  CHECK(s[12].image_path == images + "/vol.tif page 11");
  for (int i = 0; i < 12; ++i) CHECK(count_objects(s[1 + i].labels) == (i % 2 ? 3 : 2));  // page i with page i
  const auto unlabelled = load_image_folder(images);
  REQUIRE(unlabelled.size() == 13);
  CHECK(unlabelled[3].name == "vol_p02");
  CHECK(page_name("a", 7, 100) == "a_p07");
  CHECK(page_name("a", 0, 1) == "a_p0");
  // A label stack of another length is refused naming both files.
  write_tiff_stack(labels + "/vol.tif", std::vector<Image>(11, binary_mask(8, 8)));
  CHECK_THROWS_AS(load_folder_dataset(images, labels), ShapeError);
  CHECK_THROWS_WITH(load_folder_dataset(images, labels), Catch::Contains("12 page(s)") && Catch::Contains("have 11"));
}

TEST_CASE("CTC dataset: only annotated frames, 16-bit instance ids", "[data][dataset]") {
  const test::TempDir dir("unet_ds_test");
  const std::string raw = dir.sub("set/01"), seg = dir.sub("set/01_GT/SEG");
  for (int t = 0; t < 5; ++t) {
    Image frame = make_image(10, 6, 1, SampleFormat::U8);
    frame.pixels[0] = static_cast<float>(t);
    write_tiff(raw + "/t00" + std::to_string(t) + ".tif", frame);
  }
  for (int t : {1, 3}) {
    Image ids = make_image(10, 6, 1, SampleFormat::U16);
    ids.at(2, 2) = 300;  // non-consecutive ids, 16-bit range
    ids.at(7, 3) = 40000;
    write_tiff(seg + "/man_seg00" + std::to_string(t) + ".tif", ids);
  }
  const auto s = load_ctc_dataset(dir.path.string() + "/set");
  REQUIRE(s.size() == 2);
  REQUIRE(s[0].name == "001");
  REQUIRE(s[1].image.pixels[0] == 3);
  REQUIRE(s[1].labels.at(7, 3) == 40000);
  REQUIRE(s[1].labels.at(2, 2) == 300);
  fs::remove(raw + "/t003.tif");
  REQUIRE_THROWS_AS(load_ctc_dataset(dir.path.string() + "/set"), IOError);
  REQUIRE_THROWS_AS(load_ctc_dataset(dir.path.string() + "/set", "02"), IOError);
}
