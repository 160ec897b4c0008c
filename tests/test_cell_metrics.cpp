// tests/test_cell_metrics.cpp — the Cell Tracking Challenge's SEG and the pixel IoU
// (unet/cell_metrics.h) on cases computed by hand: the > ½ matching rule at its boundary, a
// prediction covering two cells, split cells, extra objects, non-consecutive ids, pooling over
// objects rather than frames, partial frames out of the pooled IoU; result folders (maskTTT.tif
// against man_segTTT.tif) with missing masks, and the JSON.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"
#include "unet/cell_metrics.h"
#include "unet/image_io.h"
#include "unet/instances.h"

using namespace unet;
namespace fs = std::filesystem;

namespace {

LabelImage rows(const std::vector<std::string>& r) {  // '.' = 0, a-z = ids 10, 11, ... (not consecutive)
  LabelImage l = make_label_image(static_cast<int>(r[0].size()), static_cast<int>(r.size()));
  for (int y = 0; y < l.height; ++y)
    for (int x = 0; x < l.width; ++x) l.at(x, y) = r[y][x] == '.' ? 0 : 10 * (r[y][x] - 'a' + 1) + 3;
  return l;
}

}  // namespace

TEST_CASE("SEG by hand: the more-than-half rule, Jaccard, unmatched objects score 0", "[cells][metrics]") {
  // Truth: a (4 px), b (4 px), c (2 px).
  const LabelImage truth = rows({"aabb..cc",
                                 "aabb...."});
  // x covers 3 of a's 4 pixels (more than half) and one background pixel (an id need not be
  // connected): J = 3 / (4 + 4 - 3). y covers exactly 2 of b's 4 pixels, z 1 of c's 2 (exactly
  // half is not more than half): unmatched, J = 0.
  const LabelImage p = rows({"xxyy...z",
                             "x...x..z"});
  const CellFrameScore f = score_cell_frame(p, truth, "f");
  CHECK(f.objects == 3);
  CHECK(f.matched == 1);
  CHECK(f.sum_jaccard == Approx(3.0 / 5.0));
  CHECK(f.seg() == Approx(0.2));
  CHECK(f.predicted == 3);  // x, y, z
  // Pixel IoU: truth foreground 10 px; predicted foreground x 4 + y 2 + z 2 = 8; overlap: x on
  // a 3, y on b 2, z on c 1 -> TP 6, FP 2, FN 4.
  CHECK(f.tp == 6);
  CHECK(f.fp == 2);
  CHECK(f.fn == 4);
  CHECK(f.iou() == Approx(0.5));

  // One prediction covering two cells entirely: both are matched (each is more than half
  // covered), each with J = |cell| / |prediction|.
  const LabelImage two = rows({"aa.bb"});
  const CellFrameScore merged = score_cell_frame(rows({"xxxxx"}), two);
  CHECK(merged.matched == 2);
  CHECK(merged.sum_jaccard == Approx(2.0 / 5.0 + 2.0 / 5.0));
  // A cell split in two halves: neither half covers more than half. J = 0.
  const CellFrameScore split = score_cell_frame(rows({"xxyy"}), rows({"aaaa"}));
  CHECK(split.matched == 0);
  CHECK(split.seg() == 0.0);
  // Three of five pixels is more than half: matched.
  CHECK(score_cell_frame(rows({"xxx.."}), rows({"aaaaa"})).seg() == Approx(3.0 / 5.0));
  // Identical up to the ids: SEG 1.
  CHECK(score_cell_frame(rows({"bbaa.c"}), rows({"aacc.d"})).seg() == 1.0);
  CHECK_THROWS_AS(score_cell_frame(rows({"aa"}), rows({"aaa"})), ShapeError);
}

TEST_CASE("SEG pools objects over frames, the pixel IoU leaves partial frames out", "[cells][metrics]") {
  // Frame 1: one cell, perfect (J = 1). Frame 2: three cells, all missed (J = 0). SEG over the
  // four objects = 1/4 (the mean of the frames' SEG would be 1/2).
  const std::vector<LabelImage> truth = {rows({"aa.."}), rows({"a.b.c"})};
  const std::vector<LabelImage> pred = {rows({"xx.."}), rows({"....."})};
  const CellScores s = score_cells(pred, truth, {"001", "002"});
  CHECK(s.objects == 4);
  CHECK(s.matched == 1);
  CHECK(s.seg == Approx(0.25));
  CHECK(s.iou == Approx(2.0 / 5.0));  // TP 2, FN 3
  CHECK(s.frames[1].name == "002");
  CHECK(s.frames[0].seg() == 1.0);
  // Frame 2 flagged partial: SEG unchanged, the IoU only from frame 1.
  const CellScores partial = score_cells(pred, truth, {"001", "002"}, {false, true});
  CHECK(partial.seg == Approx(0.25));
  CHECK(partial.iou == 1.0);
  const auto j = nlohmann::json::parse(cell_scores_to_json(partial, 2, R"({"instances": {"threshold": 0.5}})"));
  CHECK(j.at("seg") == Approx(0.25));
  CHECK(j.at("objects") == 4);
  CHECK(j.at("frames").size() == 2);
  CHECK(j.at("frames")[1].at("partial") == true);
  CHECK(j.at("frames")[1].at("seg") == 0.0);
  CHECK(j.at("instances").at("threshold") == 0.5);
  CHECK_THROWS_AS(cell_scores_to_json(partial, 2, "[1]"), ValueError);
  CHECK_THROWS_AS(score_cells(pred, {truth[0]}), ShapeError);
  CHECK_THROWS_AS(combine_cell_scores({}), ValueError);
}

TEST_CASE("SEG of a result folder against man_seg files, paired by frame number", "[cells][metrics][io]") {
  const test::TempDir tmp("unet_cell_metrics");
  const std::string res = tmp.sub("01_RES"), seg = tmp.sub("01_GT/SEG");
  auto write_ids = [](const std::string& path, const LabelImage& l) { write_instance_mask(path, l); };
  write_ids(seg + "/man_seg002.tif", rows({"aa..", "aa.."}));
  write_ids(seg + "/man_seg005.tif", rows({"a.bb", "a.bb"}));
  write_ids(seg + "/man_seg007.tif", rows({"c...", "...."}));
  write_ids(res + "/mask002.tif", rows({"xx..", "xx.."}));    // J = 1
  write_ids(res + "/mask0005.tif", rows({"x.y.", "x.y."}));   // a: J = 1; b: 2 of 4, unmatched
  write_ids(res + "/mask009.tif", rows({"xxxx", "xxxx"}));    // no ground truth: not scored
  std::vector<std::string> notes;
  ResultFolderOptions options;
  options.detect_partial = false;
  const CellScores s = score_result_folder(res, tmp.file("01_GT"), options, &notes);  // the _GT folder works
  REQUIRE(s.frames.size() == 2);
  CHECK(s.frames[0].name == "002");
  CHECK(s.frames[1].name == "005");
  CHECK(s.objects == 3);
  CHECK(s.seg == Approx(2.0 / 3.0));
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].find("007") != std::string::npos);
  // Missing masks scored as empty segmentations: frame 007's cell adds a 0.
  options.missing_as_empty = true;
  const CellScores all = score_result_folder(res, seg, options);
  CHECK(all.objects == 4);
  CHECK(all.seg == Approx(2.0 / 4.0));
  // Named partial frames leave the pooled IoU.
  options.partial_frames = {"5"};
  CHECK(score_result_folder(res, seg, options).frames[1].partial);
  options.partial_frames = {"006"};
  CHECK_THROWS_WITH(score_result_folder(res, seg, options), Catch::Contains("006"));
  // Errors: folders missing, no ground truth, a mask of another size.
  CHECK_THROWS_AS(score_result_folder(tmp.file("nope"), seg), IOError);
  CHECK_THROWS_AS(score_result_folder(res, res), IOError);
  write_ids(res + "/mask002.tif", rows({"xx.", "xx."}));
  CHECK_THROWS_AS(score_result_folder(res, seg), ShapeError);
}
