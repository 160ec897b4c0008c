// tests/test_cell_targets.cpp — training targets from instances (unet/cell_targets.h): the
// separation border separates every touching pair on generated cells and removes exactly the
// pixels within the radius of another cell; the eq. 2 weights on the separated instances (values
// by hand); partial annotation (trusted region, weight 0 outside, class weights of the full
// frames, exclusion); finding partially annotated frames.
#include <array>
#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "synthetic_cells.h"
#include "test_util.h"
#include "unet/cell_data.h"
#include "unet/cell_targets.h"
#include "unet/connected_components.h"
#include "unet/distance_transform.h"

using namespace unet;

namespace {

// Two w×h rectangles side by side that touch along the column x = split (ids 5 and 9).
LabelImage two_blocks(int w, int h, int split) {
  LabelImage l = make_label_image(w, h);
  for (int y = 2; y < h - 2; ++y)
    for (int x = 2; x < w - 2; ++x) l.at(x, y) = x < split ? 5 : 9;
  return l;
}

// Brute force: the distance from (x, y) to the nearest pixel of an instance other than `id`.
float distance_to_other(const LabelImage& l, int x, int y, int32_t id) {
  float best = 1e30f;
  for (int v = 0; v < l.height; ++v)
    for (int u = 0; u < l.width; ++u)
      if (l.at(u, v) > 0 && l.at(u, v) != id) best = std::min(best, std::hypot(float(u - x), float(v - y)));
  return best;
}

}  // namespace

TEST_CASE("Separation border: every touching pair of generated cells becomes two objects", "[cells]") {
  int pairs_seen = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    test::SyntheticCellsOptions o;
    o.seed = seed;
    o.width = 200;
    o.height = 160;
    o.pairs = 6;
    const Sample s = test::synthetic_cells(o);
    const auto touching = touching_pairs(s.labels);
    pairs_seen += static_cast<int>(touching.size());
    for (float radius : {1.0f, 1.5f, 2.0f, 3.0f}) {
      INFO("seed " << seed << ", radius " << radius);
      const LabelImage separated = separate_instances(s.labels, radius);
      CHECK(touching_pairs(separated).empty());
      // The components of the target foreground (how instances come out of a perfect
      // prediction): each holds pixels of one cell only, and no cell is lost.
      int n = 0;
      const LabelImage objects = connected_components(foreground_mask(separated), o.width, o.height, Connectivity::Four, n);
      std::map<int32_t, std::set<int32_t>> cells_of_object;
      for (size_t i = 0; i < objects.labels.size(); ++i)
        if (objects.labels[i] > 0) cells_of_object[objects.labels[i]].insert(s.labels.labels[i]);
      for (const auto& [object, cells] : cells_of_object) CHECK(cells.size() == 1);
      // No cell is lost at the default radius. A wider border deletes a cell squeezed thinner than
      // 2r between others (seeds 2 and 10 make such slivers at r = 2), which is what it means.
      if (radius <= 1.5f) CHECK(count_objects(separated) == count_objects(s.labels));
    }
  }
  INFO("touching pairs in the 12 images: " << pairs_seen);
  CHECK(pairs_seen >= 48);  // the generator does make touching pairs (4 per image at least)
}

TEST_CASE("Separation border: exactly the pixels within the radius of another cell are removed", "[cells]") {
  test::SyntheticCellsOptions o;
  o.width = 48;
  o.height = 40;
  o.pairs = 2;
  o.seed = 4;
  const LabelImage l = test::synthetic_cells(o).labels;
  for (float radius : {0.0f, 0.5f, 1.0f, 1.5f, 2.5f}) {
    const LabelImage sep = separate_instances(l, radius);
    for (int y = 0; y < l.height; ++y)
      for (int x = 0; x < l.width; ++x) {
        const int32_t id = l.at(x, y);
        const bool removed = id > 0 && distance_to_other(l, x, y, id) <= radius;
        INFO("radius " << radius << " at " << x << "," << y);
        REQUIRE(sep.at(x, y) == (removed ? 0 : id));
      }
  }
  // Two blocks touching along a straight line: a gap of 2r between them.
  const LabelImage blocks = two_blocks(20, 8, 10);
  const LabelImage gap2 = separate_instances(blocks, 1.0f), gap4 = separate_instances(blocks, 2.0f);
  CHECK(gap2.at(8, 4) == 5);
  CHECK(gap2.at(9, 4) == 0);
  CHECK(gap2.at(10, 4) == 0);
  CHECK(gap2.at(11, 4) == 9);
  CHECK(gap4.at(7, 4) == 5);
  CHECK(gap4.at(8, 4) == 0);
  CHECK(gap4.at(11, 4) == 0);
  CHECK(gap4.at(12, 4) == 9);
  CHECK_THROWS_AS(separate_instances(blocks, -1.0f), ValueError);
  CHECK_THROWS_AS(separate_instances(blocks, NAN), ValueError);
}

TEST_CASE("Cell training slice: classes from the separated cells, eq. 2 weights in the gap", "[cells]") {
  Sample s;
  s.name = "blocks";
  s.labels = two_blocks(30, 16, 15);
  s.image = make_image(30, 16, 1, SampleFormat::U16);
  s.image.at(3, 3) = 65535;
  CellTargetOptions options;
  const TrainingSlice t = make_cell_training_slice(s, options);
  CHECK(t.image.shape() == Shape{1, 16, 30});
  CHECK(t.image.to_vector()[3 * 30 + 3] == 1.0f);  // 16-bit scaled to [0, 1]
  const auto classes = t.classes.to_int_vector();
  const auto w = t.weights.to_vector();
  auto at = [&](int x, int y) { return static_cast<size_t>(y) * 30 + x; };
  CHECK(classes[at(13, 8)] == 1);
  CHECK(classes[at(14, 8)] == 0);  // the carved gap
  CHECK(classes[at(15, 8)] == 0);
  CHECK(classes[at(16, 8)] == 1);
  // Class balance over the 480 pixels: foreground = the 26×12 blocks minus the 2×12 gap = 288,
  // background 192: w_c(bg) = 480 / (2·192), w_c(fg) = 480 / (2·288).
  const double wc_bg = 480.0 / 384.0, wc_fg = 480.0 / 576.0;
  CHECK(w[at(13, 8)] == Approx(wc_fg).epsilon(1e-6));
  // A gap pixel is 1 px from the block on its side and 2 px from the other: d1 + d2 = 3.
  CHECK(w[at(14, 8)] == Approx(wc_bg + 10.0 * std::exp(-9.0 / 50.0)).epsilon(1e-5));
  CHECK(w[at(15, 8)] == Approx(wc_bg + 10.0 * std::exp(-9.0 / 50.0)).epsilon(1e-5));
  // The corner (0, 0): d1 = √8 to (2, 2), d2 = √260 to (16, 2), the separated right block.
  const double d1 = std::sqrt(8.0), d2 = std::sqrt(260.0);
  CHECK(w[at(0, 0)] == Approx(wc_bg + 10.0 * std::exp(-(d1 + d2) * (d1 + d2) / 50.0)).epsilon(1e-5));
}

TEST_CASE("Partial annotation: weight 0 outside the trusted region, w_c of the full frames, or the frame left out",
          "[cells]") {
  test::SyntheticCellsOptions o;
  o.seed = 21;
  const Sample full = test::synthetic_cells(o);
  const Sample partial = test::keep_labels(full, {true, false, false, false, true, false, false, false});
  REQUIRE(count_objects(partial.labels) == 2);
  CellTargetOptions options;
  options.trusted_margin = 2.0f;
  const TrainingSlice t = make_cell_training_slice(partial, options, true);
  const auto w = t.weights.to_vector();
  const auto trusted = trusted_region(partial.labels, 2.0f);
  const auto sq = squared_distance_transform(foreground_mask(partial.labels), o.width, o.height);
  int64_t outside = 0, inside = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    CHECK(trusted[i] == (sq[i] <= 4.0f ? 1 : 0));  // the labelled cells and 2 px around them
    if (trusted[i]) {
      ++inside;
      CHECK(w[i] > 0.0f);
    } else {
      ++outside;
      CHECK(w[i] == 0.0f);
    }
  }
  CHECK(outside > 0);
  CHECK(inside > 0);
  // Unlabelled cells teach nothing: every pixel of a dropped cell outside the trusted ring has weight 0.
  for (size_t i = 0; i < w.size(); ++i)
    if (full.labels.labels[i] > 0 && partial.labels.labels[i] == 0 && !trusted[i]) REQUIRE(w[i] == 0.0f);

  // Through the frame list: a masked frame takes the class weights of the full frames.
  std::vector<CellFrame> frames = {{"01", full, false}, {"01", partial, true}};
  frames[1].sample.name = "001";
  const auto slices = make_cell_training_slices(frames, options);
  REQUIRE(slices.size() == 2);
  CHECK(slices[1].name == "01/001");
  const std::array<float, 2> wc = dataset_class_weights({separate_instances(full.labels, options.border_radius)});
  const auto w_partial = slices[1].weights.to_vector();
  const auto classes = slices[1].classes.to_int_vector();
  for (size_t i = 0; i < w_partial.size(); ++i)
    if (classes[i] == 1 && trusted[i]) REQUIRE(w_partial[i] == Approx(wc[1]).epsilon(1e-6));
  // Exclude leaves it out; a list of only partial frames then has nothing to train on.
  options.partial = PartialAnnotation::Exclude;
  CHECK(make_cell_training_slices(frames, options).size() == 1);
  CHECK_THROWS_WITH(make_cell_training_slices({frames[1]}, options), Catch::Contains("no frame left"));
  CHECK_THROWS_AS(make_cell_training_slice(partial, options, true), ValueError);
  // Ignore trains on it as if complete: no zero weights.
  options.partial = PartialAnnotation::Ignore;
  const auto w_ignore = make_cell_training_slices({frames[1]}, options)[0].weights.to_vector();
  CHECK(*std::min_element(w_ignore.begin(), w_ignore.end()) > 0.0f);
  CellTargetOptions bad;
  bad.trusted_margin = -1.0f;
  CHECK_THROWS_AS(make_cell_training_slice(full, bad), ValueError);
}

TEST_CASE("Partially annotated frames are found by their labelled area", "[cells]") {
  std::vector<LabelImage> frames;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    test::SyntheticCellsOptions o;
    o.seed = seed;
    frames.push_back(test::synthetic_cells(o).labels);
  }
  Sample third;
  third.labels = frames[2];
  frames[2] = test::keep_labels(third, {true, false, false, false, false, false, false, false}).labels;
  const std::vector<bool> found = find_partial_annotations(frames);
  CHECK(found == std::vector<bool>{false, false, true, false, false});
  // Two frames have no median to compare with: nothing is flagged.
  CHECK(find_partial_annotations({frames[0], frames[2]}) == std::vector<bool>{false, false});
  CHECK_THROWS_AS(find_partial_annotations(frames, 1.5), ValueError);
}
