// tests/tools/make_synthetic_ctc.cpp — writes a small Cell Tracking Challenge data set of
// generated cells (tests/synthetic_cells.h) for the train_cells smoke test:
//   DIR/01/t000.tif .. t003.tif  8-bit, 100x120 (no valid tile size), man_seg for 000-003
//   DIR/01_GT/SEG/man_seg003.tif labels one cell in eight (partially annotated)
//   DIR/02/t000.tif, t001.tif    16-bit (12-bit range), 90x110, man_seg for both
// Ids are not consecutive. Usage: make_synthetic_ctc DIR
#include <cstdio>
#include <filesystem>
#include <string>

#include "synthetic_cells.h"
#include "unet/image_io.h"

namespace fs = std::filesystem;
using namespace unet;

namespace {

void write_frame(const fs::path& root, const std::string& seq, int t, const Sample& s) {
  char digits[8];
  std::snprintf(digits, sizeof digits, "%03d", t);
  fs::create_directories(root / seq);
  fs::create_directories(root / (seq + "_GT") / "SEG");
  write_tiff((root / seq / ("t" + std::string(digits) + ".tif")).string(), s.image);
  Image ids = values_from_labels(s.labels);
  ids.format = SampleFormat::U16;
  write_tiff((root / (seq + "_GT") / "SEG" / ("man_seg" + std::string(digits) + ".tif")).string(), ids);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_synthetic_ctc DIR\n");
    return 1;
  }
  const fs::path root(argv[1]);
  for (int t = 0; t < 4; ++t) {
    test::SyntheticCellsOptions o;
    o.seed = 100 + t;
    Sample s = test::synthetic_cells(o);
    if (t == 3) s = test::keep_labels(s, {true, false, false, false, false, false, false, false});
    write_frame(root, "01", t, s);
  }
  for (int t = 0; t < 2; ++t) {
    test::SyntheticCellsOptions o;
    o.seed = 200 + t;
    o.width = 110;
    o.height = 90;
    o.format = SampleFormat::U16;
    o.first_id = 1000;
    o.id_step = 13;
    write_frame(root, "02", t, test::synthetic_cells(o));
  }
  std::printf("make_synthetic_ctc: wrote sequences 01 (4 frames, 8-bit, 120x100) and 02 (2 frames, 16-bit, 110x90) to %s\n",
              root.c_str());
  return 0;
}
