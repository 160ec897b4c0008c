// tests/test_cell_data.cpp — a Cell Tracking Challenge tree of generated cells read and split for
// training (unet/cell_data.h): 8- and 16-bit frames of sizes that are no valid tile size (576×720
// among them), non-consecutive 16-bit ids kept as they are, several sequences, the validation
// split by sequence, by named frames and by default, partially annotated frames found and named,
// the errors.
#include <filesystem>

#include "core/error.h"
#include "synthetic_cells.h"
#include "test_util.h"
#include "unet/cell_data.h"
#include "unet/image_io.h"

using namespace unet;
namespace fs = std::filesystem;

namespace {

// <root>/<seq>/tTTT.tif and <root>/<seq>_GT/SEG/man_segTTT.tif for the frames given.
void write_frame(const std::string& root, const std::string& seq, const std::string& t, const Sample& s) {
  fs::create_directories(root + "/" + seq);
  fs::create_directories(root + "/" + seq + "_GT/SEG");
  write_tiff(root + "/" + seq + "/t" + t + ".tif", s.image);
  Image ids = values_from_labels(s.labels);
  ids.format = SampleFormat::U16;
  write_tiff(root + "/" + seq + "_GT/SEG/man_seg" + t + ".tif", ids);
}

Sample cells(uint64_t seed, int width, int height, SampleFormat format) {
  test::SyntheticCellsOptions o;
  o.seed = seed;
  o.width = width;
  o.height = height;
  o.format = format;
  o.first_id = 1000;  // 16-bit, not consecutive
  o.id_step = 17;
  return test::synthetic_cells(o);
}

// Sequence 01: frames 002, 005, 011, 020 (8-bit, 100×120), 015 labels one cell only; sequence
// 02: frames 000, 003 (16-bit, 576×720). A raw frame without ground truth in 01 (t003).
struct Tree {
  test::TempDir dir{"unet_cell_data"};
  std::string root = dir.path.string();
  Tree() {
    for (const char* t : {"002", "005", "011", "020"}) write_frame(root, "01", t, cells(std::stoul(t) + 1, 120, 100, SampleFormat::U8));
    write_frame(root, "01", "015", test::keep_labels(cells(16, 120, 100, SampleFormat::U8), {true}));
    write_tiff(root + "/01/t003.tif", make_image(120, 100, 1, SampleFormat::U8));
    write_frame(root, "02", "000", cells(50, 720, 576, SampleFormat::U16));
    write_frame(root, "02", "003", cells(53, 720, 576, SampleFormat::U16));
  }
};

std::vector<std::string> ids(const std::vector<CellFrame>& frames) {
  std::vector<std::string> out;
  for (const auto& f : frames) out.push_back(f.id() + (f.partial ? "*" : ""));
  return out;
}

}  // namespace

TEST_CASE("CTC data for training: sequences, frames, 16-bit ids and images of any size", "[cells][dataset]") {
  const Tree tree;
  CHECK(ctc_sequences(tree.root) == std::vector<std::string>{"01", "02"});
  // Two annotated sequences and nothing named: the last one validates.
  const CellDataSplit split = load_cell_split(tree.root);
  CHECK(ids(split.train) == std::vector<std::string>{"01/002", "01/005", "01/011", "01/015*", "01/020"});
  CHECK(ids(split.validation) == std::vector<std::string>{"02/000", "02/003"});
  const Sample& big = split.validation[1].sample;
  CHECK(big.image.width == 720);
  CHECK(big.image.height == 576);
  CHECK(big.image.format == SampleFormat::U16);
  const Sample expected = cells(53, 720, 576, SampleFormat::U16);
  CHECK(big.labels.labels == expected.labels.labels);  // ids 1000, 1017, ... as they are
  CHECK(big.image.pixels == expected.image.pixels);
  CHECK(*std::max_element(big.labels.labels.begin(), big.labels.labels.end()) > 1000);
}

TEST_CASE("CTC data for training: the validation split by sequence, frames or default", "[cells][dataset]") {
  const Tree tree;
  CellSplitOptions o;
  o.train_sequences = {"01"};
  // One training sequence and nothing named: its last fully annotated fifth (⌈0.2·4⌉ = 1 frame;
  // 015 is partial, so 020).
  CellDataSplit s = load_cell_split(tree.root, o);
  CHECK(ids(s.validation) == std::vector<std::string>{"01/020"});
  CHECK(s.train.size() == 4);
  o.validation_fraction = 0.5;
  CHECK(ids(load_cell_split(tree.root, o).validation) == std::vector<std::string>{"01/011", "01/020"});
  o.validation_fraction = 0.2;
  o.validation_frames = {"5", "01/011"};  // numbers compare as numbers
  s = load_cell_split(tree.root, o);
  CHECK(ids(s.validation) == std::vector<std::string>{"01/005", "01/011"});
  CHECK(ids(s.train) == std::vector<std::string>{"01/002", "01/015*", "01/020"});
  // Train on 02, validate on 01 as a whole.
  CellSplitOptions swap;
  swap.train_sequences = {"02"};
  swap.validation_sequence = "01";
  s = load_cell_split(tree.root, swap);
  CHECK(ids(s.train) == std::vector<std::string>{"02/000", "02/003"});
  CHECK(s.validation.size() == 5);
  // Partial frames: named instead of found, or none.
  CellSplitOptions named = o;
  named.detect_partial = false;
  named.partial_frames = {"020"};
  CHECK(ids(load_cell_split(tree.root, named).train) == std::vector<std::string>{"01/002", "01/015", "01/020*"});
}

TEST_CASE("CTC data for training: unknown sequences and frames, too few frames, are refused", "[cells][dataset][errors]") {
  const Tree tree;
  CellSplitOptions o;
  o.train_sequences = {"03"};
  CHECK_THROWS_WITH(load_cell_split(tree.root, o), Catch::Contains("'03'") && Catch::Contains("01, 02"));
  o.train_sequences = {"01"};
  o.validation_frames = {"004"};
  CHECK_THROWS_WITH(load_cell_split(tree.root, o), Catch::Contains("'004'"));
  o.validation_frames = {"002", "005", "011", "015", "020"};
  CHECK_THROWS_WITH(load_cell_split(tree.root, o), Catch::Contains("none is left to train on"));
  o = {};
  o.validation_sequence = "01";
  o.train_sequences = {"01"};
  CHECK_THROWS_WITH(load_cell_split(tree.root, o), Catch::Contains("both train and validate"));
  o = {};
  o.partial_frames = {"099"};
  CHECK_THROWS_WITH(load_cell_split(tree.root, o), Catch::Contains("'099'"));
  CHECK_THROWS_AS(load_cell_split(tree.root + "/nope"), IOError);
  // A single annotated frame cannot be split.
  const test::TempDir one("unet_cell_data");
  write_frame(one.path.string(), "01", "000", cells(1, 40, 30, SampleFormat::U8));
  CHECK_THROWS_WITH(load_cell_split(one.path.string()), Catch::Contains("two or more"));
  const test::TempDir empty("unet_cell_data");
  CHECK_THROWS_WITH(ctc_sequences(empty.path.string()), Catch::Contains("no sequence"));
}
