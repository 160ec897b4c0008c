// tests/test_augment.cpp — the CPU augmentation warp: exact identity, exact quarter turns and
// flips, mirrored borders, bicubic accuracy on a ramp, the grey transform, and the random
// parameters (deterministic per seed and sample, grid σ = 10 px).
#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include "core/error.h"
#include "core/philox.h"
#include "kernels/elastic_warp.h"
#include "unet/augment.h"

using namespace unet;
using Catch::Detail::Approx;

namespace {

Image random_image(int w, int h, int c, uint64_t seed) {
  Image im = make_image(w, h, c, SampleFormat::F32);
  for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = philox_uniform01(seed, i);
  return im;
}

LabelImage random_labels(int w, int h, uint64_t seed) {
  LabelImage l = make_label_image(w, h);
  for (size_t i = 0; i < l.labels.size(); ++i) l.labels[i] = static_cast<int32_t>(philox_uint32(seed, i) % 50);
  return l;
}

WarpGeometry same_size(int w, int h, int c = 1) { return WarpGeometry{w, h, w, h, c}; }

}  // namespace

TEST_CASE("warp: zero deformation is exactly the identity", "[data][augment]") {
  const Image im = random_image(31, 20, 3, 1);
  const LabelImage lab = random_labels(31, 20, 2);
  std::vector<float> w(31 * 20);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.5f + i;
  const WarpedSample out = warp_sample(make_warp_params(same_size(31, 20, 3)), im, &lab, &w);
  REQUIRE(out.image.pixels == im.pixels);
  REQUIRE(out.labels.labels == lab.labels);
  REQUIRE(out.weights == w);
  // The random draw with every range 0 is the identity too.
  AugmentOptions none{0.0f, 0.0f, 0.0f, false, 0.0f, 0.0f, 0.0f};
  const WarpedSample drawn = warp_sample(draw_warp_params(none, same_size(31, 20, 3), 9, 4), im);
  REQUIRE(drawn.image.pixels == im.pixels);
}

TEST_CASE("warp: a smaller output window is an exact crop", "[data][augment]") {
  const Image im = random_image(40, 30, 1, 3);
  WarpGeometry g{40, 30, 10, 8, 1, 21.5f, 12.5f};  // window centre (21.5, 12.5): x 17..26, y 9..16
  const WarpedSample out = warp_sample(make_warp_params(g), im);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 10; ++x) REQUIRE(out.image.at(x, y) == im.at(x + 17, y + 9));
}

TEST_CASE("warp: quarter turns and flips are exact", "[data][augment]") {
  for (int n : {16, 17}) {
    const Image im = random_image(n, n, 1, 4);
    const LabelImage lab = random_labels(n, n, 5);
    const WarpedSample r90 = warp_sample(make_warp_params(same_size(n, n), M_PI / 2), im, &lab);
    const WarpedSample r180 = warp_sample(make_warp_params(same_size(n, n), M_PI), im, &lab);
    const WarpedSample fx = warp_sample(make_warp_params(same_size(n, n), 0.0, true, false), im, &lab);
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) {
        // src = R (q - c) + c with R = [[0, -1], [1, 0]]: (n-1-y, x).
        REQUIRE(r90.image.at(x, y) == im.at(n - 1 - y, x));
        REQUIRE(r90.labels.at(x, y) == lab.at(n - 1 - y, x));
        REQUIRE(r180.image.at(x, y) == im.at(n - 1 - x, n - 1 - y));
        REQUIRE(fx.image.at(x, y) == im.at(n - 1 - x, y));
      }
  }
}

TEST_CASE("warp: borders are mirrored without repeating the edge", "[data][augment]") {
  REQUIRE(mirror_index(-1, 5) == 1);
  REQUIRE(mirror_index(-4, 5) == 4);
  REQUIRE(mirror_index(5, 5) == 3);
  REQUIRE(mirror_index(9, 5) == 1);
  REQUIRE(mirror_index(-13, 5) == 3);
  REQUIRE(mirror_index(7, 1) == 0);
  const Image im = random_image(12, 7, 1, 6);
  const WarpedSample s = warp_sample(make_warp_params(same_size(12, 7), 0.0, false, false, 5.0f, -3.0f), im);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 12; ++x)
      REQUIRE(s.image.at(x, y) == im.at(mirror_index(x + 5, 12), mirror_index(y - 3, 7)));
}

TEST_CASE("warp: bicubic resampling reproduces a linear ramp", "[data][augment]") {
  Image ramp = make_image(40, 40);
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 40; ++x) ramp.at(x, y) = 0.01f * x + 0.02f * y;
  // Rotation by 30° about the centre keeps interior samples on the ramp (Keys' kernel is exact
  // for linear functions); compare against the analytic source position.
  const ElasticWarpParams p = make_warp_params(WarpGeometry{40, 40, 16, 16, 1}, M_PI / 6);
  const WarpedSample s = warp_sample(p, ramp);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x) {
      float sx, sy;
      warp_source(p, x, y, sx, sy);
      REQUIRE(s.image.at(x, y) == Approx(0.01f * sx + 0.02f * sy).margin(2e-6));
    }
}

TEST_CASE("warp: the elastic field interpolates the grid", "[data][augment]") {
  ElasticWarpParams p = make_warp_params(same_size(21, 11));
  for (int k = 0; k < 9; ++k) { p.grid_dx[k] = float(k); p.grid_dy[k] = -2.0f * k; }
  float dx, dy;
  grid_displacement(p, 0, 0, dx, dy);
  REQUIRE(dx == 0.0f);
  grid_displacement(p, 10, 5, dx, dy);  // the centre node
  REQUIRE(dx == 4.0f);
  REQUIRE(dy == -8.0f);
  grid_displacement(p, 20, 10, dx, dy);  // the last node
  REQUIRE(dx == 8.0f);
  // Constant grid -> constant displacement (the weights sum to 1).
  for (int k = 0; k < 9; ++k) { p.grid_dx[k] = 3.25f; p.grid_dy[k] = -1.5f; }
  for (int x = 0; x < 21; x += 3) {
    grid_displacement(p, x, 7, dx, dy);
    REQUIRE(dx == Approx(3.25f).margin(1e-6));
    REQUIRE(dy == Approx(-1.5f).margin(1e-6));
  }
}

TEST_CASE("warp: grey value transform", "[data][augment]") {
  Image flat = make_image(6, 6);
  std::fill(flat.pixels.begin(), flat.pixels.end(), 0.25f);
  ElasticWarpParams p = make_warp_params(same_size(6, 6));
  p.gamma = 0.5f;
  p.contrast = 1.2f;
  p.brightness = -0.1f;
  const WarpedSample s = warp_sample(p, flat);
  for (float v : s.image.pixels) REQUIRE(v == Approx(1.2f * 0.5f - 0.1f).margin(1e-6));
}

TEST_CASE("augment: random parameters are per seed and sample, grid sigma 10 px", "[data][augment]") {
  const WarpGeometry g{100, 100, 60, 60, 1};
  AugmentOptions o;
  const ElasticWarpParams a = draw_warp_params(o, g, 42, 7), b = draw_warp_params(o, g, 42, 7);
  const ElasticWarpParams c = draw_warp_params(o, g, 42, 8);
  REQUIRE(std::equal(a.grid_dx, a.grid_dx + 9, b.grid_dx));
  REQUIRE(std::equal(a.affine, a.affine + 6, b.affine));
  REQUIRE_FALSE(std::equal(a.grid_dx, a.grid_dx + 9, c.grid_dx));
  double sum2 = 0;
  int flips = 0;
  const int n = 2000;
  for (int s = 0; s < n; ++s) {
    const ElasticWarpParams p = draw_warp_params(o, g, 1, s);
    for (int k = 0; k < 9; ++k) sum2 += p.grid_dx[k] * p.grid_dx[k] + p.grid_dy[k] * p.grid_dy[k];
    flips += p.affine[0] * p.affine[4] - p.affine[1] * p.affine[3] < 0;  // det < 0: one flip
    REQUIRE(p.contrast >= 0.9f);
    REQUIRE(p.contrast <= 1.1f);
  }
  REQUIRE(std::sqrt(sum2 / (18.0 * n)) == Approx(10.0).epsilon(0.03));
  REQUIRE(flips == Approx(n / 2).epsilon(0.1));  // exactly one of two flips: probability 1/2
  // Warped labels only take values that exist in the input (nearest neighbour).
  const LabelImage lab = random_labels(100, 100, 3);
  const WarpedSample s = warp_sample(draw_warp_params(o, g, 5, 0), random_image(100, 100, 1, 2), &lab);
  std::set<int32_t> in(lab.labels.begin(), lab.labels.end());
  for (int32_t v : s.labels.labels) REQUIRE(in.count(v));
}

TEST_CASE("augment: bad arguments are refused", "[data][augment]") {
  const Image im = random_image(8, 8, 1, 1);
  REQUIRE_THROWS_AS(warp_sample(make_warp_params(same_size(9, 8)), im), ValueError);
  LabelImage small = make_label_image(4, 4);
  REQUIRE_THROWS_AS(warp_sample(make_warp_params(same_size(8, 8)), im, &small), ShapeError);
  AugmentOptions bad;
  bad.elastic_sigma = -1;
  REQUIRE_THROWS_AS(draw_warp_params(bad, same_size(8, 8), 1, 1), ValueError);
  REQUIRE_THROWS_AS(make_warp_params(WarpGeometry{0, 8, 8, 8, 1}), ValueError);
  ElasticWarpParams p = make_warp_params(same_size(8, 8));
  float out[64];
  REQUIRE_THROWS_AS(cpu::elastic_warp(p, im.pixels.data(), nullptr, nullptr, nullptr, nullptr, nullptr), ValueError);
  p.gamma = 0;
  REQUIRE_THROWS_AS(cpu::elastic_warp(p, im.pixels.data(), out, nullptr, nullptr, nullptr, nullptr), ValueError);
}

TEST_CASE("augment: warp_tensors on CPU tensors equals warp_sample", "[data][augment]") {
  const Image im = random_image(23, 19, 1, 8);
  const LabelImage lab = random_labels(23, 19, 9);
  const ElasticWarpParams p = draw_warp_params(AugmentOptions{}, WarpGeometry{23, 19, 15, 11, 1}, 3, 1);
  const WarpedSample ref = warp_sample(p, im, &lab);
  const Tensor image = Tensor::from_vector(im.pixels, Shape{1, 1, 19, 23});
  const Tensor labels = Tensor::from_vector(lab.labels, Shape{19, 23});
  const WarpedTensors t = warp_tensors(p, image, labels);
  REQUIRE(t.image.shape() == Shape{1, 1, 11, 15});
  REQUIRE(t.labels.shape() == Shape{11, 15});
  REQUIRE(t.image.to_vector() == ref.image.pixels);
  REQUIRE(t.labels.to_int_vector() == ref.labels.labels);
  REQUIRE_FALSE(t.weights.defined());
  REQUIRE_THROWS_AS(warp_tensors(p, Tensor::from_vector(im.pixels, Shape{19 * 23})), ShapeError);
  REQUIRE_THROWS_AS(warp_tensors(p, image, Tensor::from_vector(lab.labels, Shape{23, 19})), ShapeError);
  REQUIRE_THROWS_AS(warp_tensors(p, image, image), DTypeError);
}
