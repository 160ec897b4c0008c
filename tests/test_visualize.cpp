// tests/test_visualize.cpp — the pictures: the overlay's tints where the prediction says boundary
// and where it disagrees with the truth; the line plot's axes, series colour and position, tick
// labels, log-scale skipping of values <= 0; bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "unet/visualize.h"

using namespace unet;

namespace {

bool is_rgb(const Image& img, int x, int y, int r, int g, int b) {
  return img.at(x, y, 0) == r && img.at(x, y, 1) == g && img.at(x, y, 2) == b;
}

// Number of pixels of colour (r, g, b) inside the rectangle [x0, x1) × [y0, y1).
int count_rgb(const Image& img, int x0, int y0, int x1, int y1, int r, int g, int b) {
  int n = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) n += is_rgb(img, x, y, r, g, b);
  return n;
}

}  // namespace

TEST_CASE("segmentation_overlay tints the predicted boundary red and disagreements green", "[visualize]") {
  Image grey = make_image(3, 1);
  grey.pixels = {0.5f, 0.5f, 0.5f};
  Image probability = make_image(3, 1);  // foreground probability: < 0.5 is predicted boundary
  probability.pixels = {0.9f, 0.1f, 0.1f};
  LabelImage truth = make_label_image(3, 1);
  truth.labels = {1, 0, 1};  // pixel 1: boundary, agreed; pixel 2: predicted boundary, truly cell
  const Image out = segmentation_overlay(grey, probability, &truth);
  REQUIRE(out.channels == 3);
  // Pixel 0: cell, agreed: plain grey.
  CHECK((out.at(0, 0, 0) == out.at(0, 0, 1) && out.at(0, 0, 1) == out.at(0, 0, 2)));
  CHECK(out.at(0, 0, 0) == std::round(0.5f * 255.0f));
  // Pixel 1: red tint (red channel well above the others).
  CHECK(out.at(1, 0, 0) > out.at(1, 0, 1) + 100);
  CHECK(out.at(1, 0, 1) == out.at(1, 0, 2));
  // Pixel 2: disagreement, green dominates.
  CHECK(out.at(2, 0, 1) > out.at(2, 0, 0) + 100);
  CHECK(out.at(2, 0, 1) > out.at(2, 0, 2) + 100);
  // Without truth, pixel 2 is only red.
  const Image no_truth = segmentation_overlay(grey, probability);
  CHECK(no_truth.at(2, 0, 0) > no_truth.at(2, 0, 1) + 100);

  Image wrong = make_image(2, 1);
  CHECK_THROWS_AS(segmentation_overlay(grey, wrong), ShapeError);
  LabelImage wrong_truth = make_label_image(2, 1);
  CHECK_THROWS_AS(segmentation_overlay(grey, probability, &wrong_truth), ShapeError);
}

TEST_CASE("line_plot draws axes, the series in its colour where it belongs, and tick labels", "[visualize]") {
  PlotSeries diagonal;
  diagonal.r = 200, diagonal.g = 30, diagonal.b = 40;
  for (int i = 0; i <= 100; ++i) {
    diagonal.x.push_back(i);
    diagonal.y.push_back(i);
  }
  const int w = 400, h = 300;
  const Image img = line_plot({diagonal}, w, h);
  REQUIRE(img.width == w);
  REQUIRE(img.height == h);
  REQUIRE(img.channels == 3);
  // The series rises from the bottom-left to the top-right: its colour appears in the lower left
  // and upper right quarters of the canvas, not in the other two.
  const int r = diagonal.r, g = diagonal.g, b = diagonal.b;
  CHECK(count_rgb(img, 0, h / 2, w / 2, h, r, g, b) > 50);
  CHECK(count_rgb(img, w / 2, 0, w, h / 2, r, g, b) > 50);
  CHECK(count_rgb(img, 0, 0, w / 2, h / 2 - 20, r, g, b) == 0);
  CHECK(count_rgb(img, w / 2 + 20, h / 2, w, h, r, g, b) == 0);
  // Black axes: a long vertical run and a long horizontal run.
  int longest_column = 0, longest_row = 0;
  for (int x = 0; x < w; ++x) longest_column = std::max(longest_column, count_rgb(img, x, 0, x + 1, h, 0, 0, 0));
  for (int y = 0; y < h; ++y) longest_row = std::max(longest_row, count_rgb(img, 0, y, w, y + 1, 0, 0, 0));
  CHECK(longest_column > h / 2);
  CHECK(longest_row > w / 2);
  // Tick labels (dark grey text) left of the plot area and below it.
  CHECK(count_rgb(img, 0, 0, 45, h, 60, 60, 60) > 20);
  CHECK(count_rgb(img, 0, h - 20, w, h, 60, 60, 60) > 20);
}

TEST_CASE("line_plot on a log scale skips values <= 0 and NaN, bad input is refused", "[visualize]") {
  PlotSeries s;
  s.x = {0, 1, 2, 3, 4};
  s.y = {1.0, 0.0, -2.0, std::nan(""), 0.1};
  const Image img = line_plot({s}, 200, 100, /*log_y=*/true);
  CHECK(count_rgb(img, 0, 0, 200, 100, s.r, s.g, s.b) > 0);  // drawn from the two usable points

  PlotSeries bad;
  bad.x = {0, 1};
  bad.y = {1};
  CHECK_THROWS_AS(line_plot({bad}), ValueError);
  CHECK_THROWS_AS(line_plot({s}, 32, 100), ValueError);
  // Empty or constant data still gives a canvas (the ranges are widened).
  CHECK(line_plot({}, 100, 100).width == 100);
  PlotSeries flat;
  flat.x = {5};
  flat.y = {3};
  CHECK(line_plot({flat}, 100, 100).height == 100);
  // A range far below the values' resolution ends (the ticks are counted, not accumulated).
  PlotSeries narrow;
  narrow.x = {0, 1};
  narrow.y = {1e6, 1e6 + 1e-9};
  CHECK(line_plot({narrow}, 100, 100).width == 100);
}

TEST_CASE("instance_overlay: objects tinted in their own colour, outlines in full, the truth's in white", "[visualize]") {
  // A 12×8 grey ramp (16-bit values, stretched to 0..255) with two touching 4×4 objects.
  Image grey = make_image(12, 8, 1, SampleFormat::U16);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 12; ++x) grey.at(x, y) = 1000.0f + 100.0f * x;
  LabelImage objects = make_label_image(12, 8);
  for (int y = 2; y < 6; ++y)
    for (int x = 2; x < 10; ++x) objects.at(x, y) = x < 6 ? 1 : 2;
  const Image plain = instance_overlay(grey, objects);
  CHECK(plain.channels == 3);
  CHECK(is_rgb(plain, 0, 0, 0, 0, 0));        // darkest pixel -> 0
  CHECK(is_rgb(plain, 11, 7, 255, 255, 255));  // brightest -> 255
  // An outline pixel (the shared edge) is the object's full colour; an interior one is a tint of
  // it over the grey; the two objects differ.
  const int r1 = static_cast<int>(plain.at(5, 3, 0)), g1 = static_cast<int>(plain.at(5, 3, 1)),
            b1 = static_cast<int>(plain.at(5, 3, 2));
  CHECK((r1 == 255 || g1 == 255 || b1 == 255));
  CHECK(!is_rgb(plain, 6, 3, r1, g1, b1));
  CHECK(!is_rgb(plain, 3, 3, r1, g1, b1));
  CHECK(is_rgb(plain, 0, 4, 0, 0, 0));  // background keeps its grey
  // The truth's outlines are white on top.
  LabelImage truth = make_label_image(12, 8);
  truth.at(0, 4) = 5;
  const Image with_truth = instance_overlay(grey, objects, &truth);
  CHECK(is_rgb(with_truth, 0, 4, 255, 255, 255));
  CHECK_THROWS_AS(instance_overlay(grey, make_label_image(3, 3)), ShapeError);
  CHECK_THROWS_AS(instance_overlay(make_image(12, 8, 3), objects), ShapeError);
}
