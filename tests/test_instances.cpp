// tests/test_instances.cpp — from probabilities to instances (unet/instances.h): the steps by hand
// (threshold, small objects, holes against pockets and open regions, the border given back),
// ids in raster order, the CTC mask files; a perfect prediction of generated touching cells gives
// one instance per cell; on a 576×720 frame every valid tile size gives the same instances; the
// options chosen on frames with known cells (unet/instance_choice.h).
#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "synthetic_cells.h"
#include "test_util.h"
#include "unet/cell_metrics.h"
#include "unet/cell_targets.h"
#include "unet/image_io.h"
#include "unet/inference.h"
#include "unet/instance_choice.h"
#include "unet/instances.h"

using namespace unet;

namespace {

Image probability_from_rows(const std::vector<std::string>& rows) {  // '#' = 0.9, '+' = 0.6, '.' = 0.1
  Image p = make_image(static_cast<int>(rows[0].size()), static_cast<int>(rows.size()), 1, SampleFormat::F32);
  for (int y = 0; y < p.height; ++y)
    for (int x = 0; x < p.width; ++x) p.at(x, y) = rows[y][x] == '#' ? 0.9f : rows[y][x] == '+' ? 0.6f : 0.1f;
  return p;
}

LabelImage labels_from_rows(const std::vector<std::string>& rows) {  // digits = ids, '.' = 0
  LabelImage l = make_label_image(static_cast<int>(rows[0].size()), static_cast<int>(rows.size()));
  for (int y = 0; y < l.height; ++y)
    for (int x = 0; x < l.width; ++x) l.at(x, y) = rows[y][x] == '.' ? 0 : rows[y][x] - '0';
  return l;
}

// Generated touching cells (160×128, up to 5 touching pairs).
Sample touching_cells(uint64_t seed) {
  test::SyntheticCellsOptions g;
  g.seed = seed;
  g.width = 160;
  g.height = 128;
  g.pairs = 5;
  return test::synthetic_cells(g);
}

// One object per cell and one cell per object: every touching pair came out as two instances.
void check_one_object_per_cell(const LabelImage& objects, const LabelImage& cells) {
  std::map<int32_t, std::set<int32_t>> objects_of_cell, cells_of_object;
  for (size_t i = 0; i < objects.labels.size(); ++i)
    if (objects.labels[i] > 0 && cells.labels[i] > 0) {
      objects_of_cell[cells.labels[i]].insert(objects.labels[i]);
      cells_of_object[objects.labels[i]].insert(cells.labels[i]);
    }
  CHECK(objects_of_cell.size() == static_cast<size_t>(count_objects(cells)));
  for (const auto& [cell, found] : objects_of_cell) CHECK(found.size() == 1);
  for (const auto& [object, found] : cells_of_object) CHECK(found.size() == 1);
  CHECK(count_objects(objects) == count_objects(cells));
}

}  // namespace

TEST_CASE("Instances: threshold, 4-connected components, ids in raster order", "[cells][instances]") {
  const Image p = probability_from_rows({"##..+",
                                         "#..++",
                                         "..#..",
                                         ".#.#."});
  const LabelImage l = instances_from_probability(p);  // threshold 0.5: '#' and '+'
  CHECK(l.labels == labels_from_rows({"11..2",
                                      "1..22",
                                      "..3..",
                                      ".4.5."}).labels);
  InstanceOptions high;
  high.threshold = 0.7f;  // only '#'
  CHECK(count_objects(instances_from_probability(p, high)) == 4);
  InstanceOptions eight;
  eight.connectivity = Connectivity::Eight;  // the diagonal chain 3-4-5 touches 2 at a corner: one object
  CHECK(instances_from_probability(p, eight).labels == labels_from_rows({"11..2",
                                                                         "1..22",
                                                                         "..2..",
                                                                         ".2.2."}).labels);
  // 8-bit maps are read as probabilities after scaling: 230/255 > 0.5.
  Image u8 = make_image(2, 1, 1, SampleFormat::U8);
  u8.pixels = {230, 100};
  CHECK(instances_from_probability(u8).labels == std::vector<int32_t>{1, 0});
}

TEST_CASE("Instances: small objects, holes (not pockets between objects or open regions), renumbering",
          "[cells][instances]") {
  const LabelImage l = labels_from_rows({"2222.....",
                                         "2..2.7...",
                                         "2222.....",
                                         ".........",
                                         "5555.8888",
                                         "5..5.8..8",
                                         "5555.8..."});
  // Sizes: 2 -> 10, 7 -> 1, 5 -> 10, 8 -> 7. Ids 1..n in raster order afterwards.
  CHECK(remove_small_objects(l, 2).labels == labels_from_rows({"1111.....",
                                                                "1..1.....",
                                                                "1111.....",
                                                                ".........",
                                                                "2222.3333",
                                                                "2..2.3..3",
                                                                "2222.3..."}).labels);
  CHECK(count_objects(remove_small_objects(l, 9)) == 2);
  CHECK(remove_small_objects(l, 0).labels == renumber(l).labels);
  // The holes of 2 and 5 are filled; 8's opening reaches the image edge: not a hole.
  const LabelImage filled = fill_holes(l);
  CHECK(filled.at(1, 1) == filled.at(0, 0));
  CHECK(filled.at(2, 5) == filled.at(0, 4));
  CHECK(filled.at(6, 5) == 0);
  CHECK(filled.at(7, 6) == 0);
  // A pocket enclosed by two objects is a gap between them, not a hole.
  const LabelImage pocket = labels_from_rows({"1122",
                                              "1..2",
                                              "1122"});
  CHECK(fill_holes(pocket).at(1, 1) == 0);
  // The connectivity decides what encloses: background leaking out diagonally escapes
  // 4-connected objects but not 8-connected ones.
  const LabelImage leaky = labels_from_rows({"111",
                                             "1.1",
                                             "11."});
  CHECK(fill_holes(leaky, Connectivity::Four).at(1, 1) == 0);  // 4-connected objects leak diagonally
  CHECK(fill_holes(leaky, Connectivity::Eight).at(1, 1) == 1);
  CHECK(renumber(labels_from_rows({"9.3", "3.9"})).labels == std::vector<int32_t>{1, 0, 2, 2, 0, 1});
  // Through instances_from_probability: a ring with a speck inside. The speck goes first, then the
  // hole is filled (filling first would see a region between two objects and keep it).
  const Image ring = probability_from_rows({"#####",
                                            "#...#",
                                            "#.#.#",
                                            "#...#",
                                            "#####"});
  InstanceOptions clean;
  clean.min_size = 2;
  clean.fill_holes = true;
  CHECK(instances_from_probability(ring, clean).labels == std::vector<int32_t>(25, 1));
  clean.fill_holes = false;
  CHECK(count_objects(instances_from_probability(ring, clean)) == 1);
  CHECK(instances_from_probability(ring, clean).at(2, 2) == 0);
  CHECK_THROWS_AS(remove_small_objects(l, -1), ValueError);
}

TEST_CASE("Instances: the separation border given back, and only between objects", "[cells][instances]") {
  LabelImage blocks = make_label_image(24, 10);
  for (int y = 2; y < 8; ++y)
    for (int x = 2; x < 22; ++x) blocks.at(x, y) = x < 12 ? 1 : 2;
  for (float r : {1.0f, 2.0f}) {
    INFO("radius " << r);
    const LabelImage carved = separate_instances(blocks, r);
    const LabelImage restored = restore_separation_border(carved, r);
    CHECK(restored.labels == blocks.labels);  // the gap is given back, the outer edges do not grow
  }
  // An object alone does not grow.
  LabelImage one = make_label_image(9, 9);
  one.at(4, 4) = 1;
  CHECK(restore_separation_border(one, 2.0f).labels == one.labels);
  InstanceOptions o;
  o.restore_border = 1.0f;
  const LabelImage via_options = instances_from_probability(
      probability_from_rows({"##..##", "##..##"}), o);  // a 2 px gap between two objects
  CHECK(via_options.labels == std::vector<int32_t>{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2});
}

TEST_CASE("Instances: a perfect prediction of generated touching cells gives one object per cell", "[cells][instances]") {
  for (uint64_t seed = 31; seed < 39; ++seed) {
    const Sample s = touching_cells(seed);
    REQUIRE(!touching_pairs(s.labels).empty());
    // The target's foreground as the probability map a perfect network would give.
    const LabelImage target = separate_instances(s.labels, 1.0f);
    Image p = make_image(s.labels.width, s.labels.height, 1, SampleFormat::F32);
    for (size_t i = 0; i < p.pixels.size(); ++i) p.pixels[i] = target.labels[i] > 0 ? 0.95f : 0.05f;
    for (float restore : {0.0f, 1.0f}) {
      InstanceOptions o;
      o.fill_holes = true;
      o.restore_border = restore;
      INFO("seed " << seed << ", restore " << restore);
      check_one_object_per_cell(instances_from_probability(p, o), s.labels);
    }
  }
}

TEST_CASE("Instances: the same objects from every valid tile size on a 576x720 frame", "[cells][instances][inference]") {
  // A small random network (base 2, depth 2: valid tiles every 4 px) on a generated 576×720
  // frame; the threshold is the map's median, so about half the frame is objects, in many pieces.
  UNetConfig cfg;
  cfg.base_channels = 2;
  cfg.depth = 2;
  cfg.head_init = HeadInit::He;
  cfg.init_seed = 17;
  UNet model(cfg, Device::cpu());
  const UNetGeometry g = cfg.geometry();
  test::SyntheticCellsOptions gen;
  gen.width = 720;
  gen.height = 576;
  gen.pairs = 40;
  gen.seed = 3;
  const Tensor image = image_tensor(test::synthetic_cells(gen).image);
  const int64_t reference_tile = g.valid_input_at_least(720 + 2 * g.context_border());  // one tile: no seams
  const Image reference = foreground_probability(segment_image(model, image, {reference_tile, false}));
  std::vector<float> sorted = reference.pixels;
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
  InstanceOptions o;
  o.threshold = sorted[sorted.size() / 2];
  const LabelImage expected = instances_from_probability(reference, o);
  REQUIRE(count_objects(expected) > 20);
  // Grown from cores (as train_cells' models are): foreground above the 30th percentile, so it forms
  // large regions in which cores above the 90th percentile compete for pixels.
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() * 3 / 10, sorted.end());
  InstanceOptions grown;
  grown.threshold = sorted[sorted.size() * 3 / 10];
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() * 9 / 10, sorted.end());
  grown.core_threshold = sorted[sorted.size() * 9 / 10];
  const LabelImage expected_grown = instances_from_probability(reference, grown);
  REQUIRE(count_objects(expected_grown) > 20);
  // Every valid size from the one with a 32-px output up to one tile for the whole frame (tiles
  // with smaller outputs are valid too, but thousands of 4-px tiles take minutes and exercise the
  // same stitching).
  int sizes = 0;
  for (int64_t tile = g.valid_input_at_least(g.input_for_output(32)); tile <= reference_tile;
       tile = g.valid_input_at_least(tile + 1)) {
    ++sizes;
    const Image p = foreground_probability(segment_image(model, image, {tile, false}));
    // Every tile size gives every pixel the same sums on the CPU engines, so the maps agree bit
    // for bit — and then so must the objects, plain or grown (the flood orders pixels by their
    // probability, so any difference of the maps could move a contested pixel: reported, not
    // excused).
    int64_t maps_differ = 0;
    for (size_t i = 0; i < p.pixels.size(); ++i) maps_differ += p.pixels[i] != reference.pixels[i];
    INFO("tile " << tile << ": " << maps_differ << " pixels of the map differ from the single tile's");
    CHECK(maps_differ == 0);
    CHECK(instances_from_probability(p, o).labels == expected.labels);
    CHECK(instances_from_probability(p, grown).labels == expected_grown.labels);
  }
  INFO(sizes << " tile sizes");
  CHECK(sizes == 173);  // every 4 px from the 32-px output to the single tile
}

TEST_CASE("Instances: objects grown from cores split cells that a middling bridge joins", "[cells][instances]") {
  // p = digit / 10. Foreground > 0.45 joins the two blobs; cores > 0.8 are {0, 1} and {7, 8}.
  Image p = make_image(9, 1, 1, SampleFormat::F32);
  const float row[9] = {0.9f, 0.9f, 0.7f, 0.6f, 0.5f, 0.6f, 0.7f, 0.9f, 0.9f};
  std::copy(row, row + 9, p.pixels.begin());
  InstanceOptions plain;
  plain.threshold = 0.45f;
  CHECK(count_objects(instances_from_probability(p, plain)) == 1);
  InstanceOptions grown = plain;
  grown.core_threshold = 0.8f;
  // The most probable pixels are claimed first: 2 and 6 (0.7), 3 and 5 (0.6), then 4 (0.5),
  // which the left object reached first (arrival order breaks the tie).
  CHECK(instances_from_probability(p, grown).labels == std::vector<int32_t>{1, 1, 1, 1, 1, 2, 2, 2, 2});
  // A foreground component without a core stays an object; one with two cores becomes two.
  const Image q = probability_from_rows({"##+##..++",
                                         "##+##..++"});
  InstanceOptions cores = {};
  cores.core_threshold = 0.8f;
  CHECK(instances_from_probability(q, cores).labels == labels_from_rows({"11122..33",
                                                                           "11122..33"}).labels);
  CHECK(count_objects(instances_from_probability(q)) == 2);

  // Generated touching cells, predicted by a network that half-learnt the borders: 0.95 inside,
  // 0.6 on the carved border (above the threshold), 0.05 outside. Plain components merge the
  // touching pairs; grown from cores every cell is one object and every object one cell.
  for (uint64_t seed = 41; seed < 45; ++seed) {
    const Sample s = touching_cells(seed);
    const LabelImage target = separate_instances(s.labels, 1.0f);
    Image map = make_image(s.labels.width, s.labels.height, 1, SampleFormat::F32);
    for (size_t i = 0; i < map.pixels.size(); ++i)
      map.pixels[i] = target.labels[i] > 0 ? 0.95f : s.labels.labels[i] > 0 ? 0.6f : 0.05f;
    INFO("seed " << seed);
    CHECK(count_objects(instances_from_probability(map)) < count_objects(s.labels));
    InstanceOptions o;
    o.core_threshold = 0.8f;
    const LabelImage objects = instances_from_probability(map, o);
    check_one_object_per_cell(objects, s.labels);
    int64_t outside = 0, unclaimed = 0;
    for (size_t i = 0; i < objects.labels.size(); ++i) {
      outside += objects.labels[i] > 0 && s.labels.labels[i] == 0;
      unclaimed += objects.labels[i] == 0 && s.labels.labels[i] > 0;
    }
    CHECK(outside == 0);
    CHECK(unclaimed == 0);  // the border pixels were given to the cells (0.6 > 0.5)
  }

  // Bad input: seeds outside the foreground, sizes that differ, a core threshold not above the threshold.
  LabelImage seeds = make_label_image(9, 1);
  seeds.at(4, 0) = 1;
  std::vector<uint8_t> fg(9, 1);
  fg[4] = 0;
  CHECK_THROWS_AS(grow_from_seeds(p, fg, seeds), ValueError);
  CHECK_THROWS_AS(grow_from_seeds(p, std::vector<uint8_t>(8, 1), seeds), ShapeError);
  InstanceOptions low;
  low.core_threshold = 0.5f;  // = threshold
  CHECK_THROWS_WITH(instances_from_probability(p, low), Catch::Contains("core_threshold"));
  low.core_threshold = 1.0f;
  CHECK_THROWS_AS(instances_from_probability(p, low), ValueError);
}

TEST_CASE("Instance options chosen on known frames: the best SEG, ties to the first tried", "[cells][instances]") {
  // Generated touching cells as a network that half-learnt the borders and sees a halo would
  // predict them: 0.95 inside, 0.75 on the carved border, 0.65 on background within 2 px of a
  // cell, 0.05 elsewhere. Threshold 0.5 takes the halo in; 0.7 keeps exactly the cells, and then
  // plain components merge the touching pairs (0.75 bridges them) while cores > 0.8 or > 0.9
  // separate them: SEG 1 exactly, for both core levels.
  std::vector<Image> maps;
  std::vector<LabelImage> truths;
  for (uint64_t seed = 51; seed < 53; ++seed) {
    const Sample s = touching_cells(seed);
    REQUIRE(!touching_pairs(s.labels).empty());
    const LabelImage target = separate_instances(s.labels, 1.0f);
    Image map = make_image(s.labels.width, s.labels.height, 1, SampleFormat::F32);
    for (int y = 0; y < map.height; ++y)
      for (int x = 0; x < map.width; ++x) {
        bool near_cell = false;
        for (int dy = -2; dy <= 2; ++dy)
          for (int dx = -2; dx <= 2; ++dx) {
            const int u = x + dx, v = y + dy;
            near_cell = near_cell || (u >= 0 && v >= 0 && u < map.width && v < map.height && s.labels.at(u, v) > 0);
          }
        map.at(x, y) = target.at(x, y) > 0 ? 0.95f : s.labels.at(x, y) > 0 ? 0.75f : near_cell ? 0.65f : 0.05f;
      }
    maps.push_back(map);
    truths.push_back(s.labels);
  }
  InstanceOptions base;
  base.min_size = 5;
  InstanceSearch search;
  search.thresholds = {0.5f, 0.7f};
  search.core_thresholds = {0.0f, 0.8f, 0.9f};
  const InstanceChoice choice = choose_instance_options(maps, truths, {}, base, search);
  REQUIRE(choice.trials.size() == 6);
  CHECK(choice.best == 4);
  CHECK(choice.chosen.threshold == 0.7f);
  CHECK(choice.chosen.core_threshold == 0.8f);
  CHECK(choice.chosen.min_size == 5);  // what the search does not vary stays as given
  CHECK(choice.trials[4].seg == 1.0);
  CHECK(choice.trials[5].seg == 1.0);  // the tie went to the level tried first
  CHECK(choice.trials[3].seg < 0.9);   // plain components merged the touching pairs
  for (size_t i = 0; i < 3; ++i) CHECK(choice.trials[i].seg < 1.0);  // the halo joined the cells
  // The trials are what instances_from_probability + SEG give on their own.
  InstanceOptions again = base;
  again.threshold = 0.7f;
  const CellScores plain = score_cells({instances_from_probability(maps[0], again), instances_from_probability(maps[1], again)}, truths);
  CHECK(choice.trials[3].seg == plain.seg);
  CHECK(choice.trials[3].objects == plain.objects);
  CHECK(choice.trials[3].predicted == plain.predicted);
  // Listed the other way round, the tie goes to 0.9.
  search.core_thresholds = {0.0f, 0.9f, 0.8f};
  CHECK(choose_instance_options(maps, truths, {false, false}, base, search).chosen.core_threshold == 0.9f);

  // A core level not above a threshold is not tried with it; an empty list keeps the base's value.
  search.thresholds = {0.5f, 0.85f};
  search.core_thresholds = {0.0f, 0.8f, 0.9f};
  CHECK(choose_instance_options(maps, truths, {}, base, search).trials.size() == 5);
  InstanceSearch none;
  const InstanceChoice kept = choose_instance_options(maps, truths, {}, base, none);
  REQUIRE(kept.trials.size() == 1);
  CHECK(kept.chosen.threshold == base.threshold);
  CHECK(kept.chosen.core_threshold == base.core_threshold);

  // What metrics.json keeps: the frames, the chosen options, every trial.
  const auto j = nlohmann::json::parse(choice.to_json("2 generated frames"));
  CHECK(j["chosen_on"] == "2 generated frames");
  CHECK(j["chosen"]["core_threshold"].get<double>() == Approx(0.8));
  CHECK(j["chosen"]["threshold"].get<double>() == Approx(0.7));
  REQUIRE(j["trials"].size() == 6);
  CHECK(j["trials"][4]["seg"].get<double>() == 1.0);
  CHECK(j["trials"][3]["core_threshold"].get<double>() == 0.0);

  // Refused: no frames, counts that differ, values out of range, nothing to try, sizes that differ.
  CHECK_THROWS_AS(choose_instance_options({}, {}, {}, base, search), ValueError);
  CHECK_THROWS_AS(choose_instance_options(maps, {truths[0]}, {}, base, search), ValueError);
  CHECK_THROWS_WITH(choose_instance_options(maps, truths, {true}, base, search), Catch::Contains("partial"));
  InstanceSearch bad;
  bad.thresholds = {1.0f};
  CHECK_THROWS_WITH(choose_instance_options(maps, truths, {}, base, bad), Catch::Contains("[0, 1)"));
  bad.thresholds = {0.5f};
  bad.core_thresholds = {1.0f};
  CHECK_THROWS_AS(choose_instance_options(maps, truths, {}, base, bad), ValueError);
  bad.thresholds = {0.9f};
  bad.core_thresholds = {0.8f};
  CHECK_THROWS_WITH(choose_instance_options(maps, truths, {}, base, bad), Catch::Contains("nothing to try"));
  CHECK_THROWS_AS(choose_instance_options({maps[0]}, {make_label_image(3, 3)}, {}, base, search), ShapeError);
}

TEST_CASE("Instance masks: 16-bit CTC files, names, options", "[cells][instances][io]") {
  const test::TempDir tmp("unet_instances");
  LabelImage l = make_label_image(6, 4);
  l.at(0, 0) = 1;
  l.at(5, 3) = 40000;
  write_instance_mask(tmp.file("mask007.tif"), l);
  const Image back = read_image(tmp.file("mask007.tif"));
  CHECK(back.format == SampleFormat::U16);
  CHECK(back.at(5, 3) == 40000.0f);
  l.at(2, 2) = 70000;
  CHECK_THROWS_WITH(write_instance_mask(tmp.file("big.tif"), l), Catch::Contains("16-bit"));
  CHECK(instance_mask_name("t007") == "mask007.tif");
  CHECK(instance_mask_name("t0123") == "mask0123.tif");
  CHECK(instance_mask_name("cells_a") == "cells_a_mask.tif");
  InstanceOptions o;
  o.threshold = 0.3f;
  o.min_size = 12;
  o.fill_holes = true;
  o.restore_border = 1.5f;
  o.core_threshold = 0.75f;
  o.connectivity = Connectivity::Eight;
  const InstanceOptions r = InstanceOptions::from_json(o.to_json());
  CHECK(r.to_json() == o.to_json());
  CHECK(r.core_threshold == 0.75f);
  CHECK(r.threshold == 0.3f);
  CHECK_THAT(o.to_json(), Catch::Contains("\"threshold\":0.3,"));  // as typed, not 0.30000001192092896
  CHECK_THROWS_AS(InstanceOptions::from_json("{\"threshold\": 1.5}"), ValueError);
  CHECK_THROWS_AS(InstanceOptions::from_json("{\"connectivity\": 6}"), ValueError);
  CHECK_THROWS_AS(InstanceOptions::from_json("not json"), ValueError);
  InstanceOptions bad;
  bad.min_size = -3;
  CHECK_THROWS_AS(instances_from_probability(make_image(2, 2), bad), ValueError);
  CHECK_THROWS_AS(instances_from_probability(make_image(2, 2, 3)), ShapeError);
}
