// tests/test_inference.cpp — overlap-tile segmentation: the result has the image's size, does not
// depend on the tile size, handles images smaller than a tile and 1×N strips; mirroring.
#include "core/error.h"
#include "test_util.h"
#include "unet/inference.h"

using namespace unet;

namespace {
UNetConfig small_config() {
  UNetConfig cfg;
  cfg.base_channels = 4;
  cfg.depth = 2;
  cfg.init_seed = 9;
  return cfg;
}
}  // namespace

TEST_CASE("mirrored_window reflects without repeating the edge", "[inference]") {
  const Tensor img = Tensor::from_vector({1.f, 2.f, 3.f}, Shape{1, 1, 3});
  CHECK(mirrored_window(img, 0, -2, 1, 7).to_vector() == std::vector<float>{3, 2, 1, 2, 3, 2, 1});
  CHECK(mirrored_window(img, 0, 6, 1, 3).to_vector() == std::vector<float>{3, 2, 1});  // far beyond
  const Tensor one = Tensor::from_vector({5.f}, Shape{1, 1, 1});
  CHECK(mirrored_window(one, -3, -3, 2, 2).to_vector() == std::vector<float>{5, 5, 5, 5});
}

TEST_CASE("Overlap-tile output does not depend on the tile size", "[inference]") {
  UNet model(small_config(), Device::cpu());
  const UNetGeometry g = model.config().geometry();
  const Tensor image = test::random_tensor(Shape{1, 37, 53}, 4, Device::cpu(), 0.0, 1.0);
  const int64_t t1 = g.valid_input_at_least(44), t2 = g.valid_input_at_least(t1 + 1);
  REQUIRE(g.output_size(t2) > g.output_size(t1));
  const Tensor a = segment_image(model, image, {t1, false});
  const Tensor b = segment_image(model, image, {t2, false});
  CHECK(a.shape() == Shape{2, 37, 53});
  // Same computation per pixel; only the GEMM blocking (and so the summation order) may differ.
  test::require_close(a, b, 1e-5, 1e-5, "tile sizes");
  // Probabilities sum to one.
  const auto p = a.to_vector();
  for (int64_t i = 0; i < 37 * 53; ++i) REQUIRE(p[i] + p[37 * 53 + i] == Approx(1.0f).margin(1e-5));
}

TEST_CASE("Images smaller than a tile and 1xN strips keep their size", "[inference]") {
  UNet model(small_config(), Device::cpu());
  const Tensor tiny = test::random_tensor(Shape{1, 3, 5}, 5, Device::cpu(), 0.0, 1.0);
  CHECK(segment_image(model, tiny).shape() == Shape{2, 3, 5});
  const Tensor strip = test::random_tensor(Shape{1, 1, 40}, 6, Device::cpu(), 0.0, 1.0);
  const Tensor s = segment_image(model, strip);
  CHECK(s.shape() == Shape{2, 1, 40});
  // TTA on a strip: every transform is valid, the average still sums to one.
  const Tensor t = segment_image(model, strip, {0, true});
  const auto p = t.to_vector();
  for (int64_t i = 0; i < 40; ++i) REQUIRE(p[i] + p[40 + i] == Approx(1.0f).margin(1e-5));
}

TEST_CASE("Test-time augmentation is equivariant under the flips and rotations it averages", "[inference]") {
  UNet model(small_config(), Device::cpu());
  // The transposed image is one of the 8 dihedral transforms of the image, so TTA sees the same
  // 8 inputs for both and its result must be the transpose (up to the order of the 8-term sum).
  const Tensor image = test::random_tensor(Shape{1, 23, 31}, 12, Device::cpu(), 0.0, 1.0);
  auto transpose = [](const Tensor& x) {
    const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2);
    Tensor t = Tensor::empty(Shape{c, w, h});
    for (int64_t k = 0; k < c; ++k)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < w; ++j) t.data<float>()[(k * w + j) * h + i] = x.data<float>()[(k * h + i) * w + j];
    return t;
  };
  const Tensor a = transpose(segment_image(model, image, {0, true}));
  const Tensor b = segment_image(model, transpose(image), {0, true});
  test::require_close(a, b, 1e-6, 1e-5, "TTA of the transpose vs transpose of TTA");
  // Without TTA the network itself is not equivariant (its 2x2 up-convolutions are not), so
  // the plain result differs: TTA really averages.
  const Tensor plain = segment_image(model, image);
  CHECK(plain.to_vector() != segment_image(model, image, {0, true}).to_vector());
  const Tensor flat = Tensor::full(Shape{1, 20, 20}, 0.5f);
  CHECK_THROWS_AS(segment_image(model, flat, {50, false}), ShapeError);
  CHECK_THROWS_AS(segment_image(model, Tensor::zeros(Shape{2, 8, 8})), ShapeError);
}

TEST_CASE("A stack is segmented page by page: each page equals segment_image of it, bit for bit", "[inference]") {
  UNet model(small_config(), Device::cpu());
  const Tensor stack = test::random_tensor(Shape{3, 1, 29, 41}, 21, Device::cpu(), 0.0, 1.0);
  for (const bool tta : {false, true}) {
    const Tensor all = segment_stack(model, stack, {0, tta, {}});
    REQUIRE(all.shape() == Shape{3, 2, 29, 41});
    for (int64_t i = 0; i < 3; ++i) {
      const Tensor page = Tensor::from_vector(stack.entry(i).to_vector(), Shape{1, 29, 41});  // an owned copy
      CHECK(all.entry(i).to_vector() == segment_image(model, page, {0, tta, {}}).to_vector());
    }
  }
  // Pages differ, so a result that repeated page 0 would fail above; check that premise.
  const Tensor plain = segment_stack(model, stack);
  CHECK(plain.entry(0).to_vector() != plain.entry(2).to_vector());
  CHECK_THROWS_AS(segment_stack(model, Tensor::zeros(Shape{1, 8, 8})), ShapeError);
  CHECK_THROWS_AS(segment_stack(model, Tensor::zeros(Shape{2, 3, 8, 8})), ShapeError);
}

TEST_CASE("Segmentation reports every tile to the progress callback and stops when asked", "[inference]") {
  UNet model(small_config(), Device::cpu());
  const UNetGeometry g = model.config().geometry();
  const Tensor stack = test::random_tensor(Shape{2, 1, 37, 53}, 22, Device::cpu(), 0.0, 1.0);
  const int64_t tile = g.valid_input_at_least(44), out = g.output_size(tile);
  const int64_t per_page = ((37 + out - 1) / out) * ((53 + out - 1) / out);
  REQUIRE(per_page > 1);
  for (const bool tta : {false, true}) {
    std::vector<std::pair<int64_t, int64_t>> calls;
    SegmentOptions options{tile, tta, [&](int64_t done, int64_t total) {
                             calls.emplace_back(done, total);
                             return true;
                           }};
    segment_stack(model, stack, options);
    const int64_t total = 2 * per_page * (tta ? 8 : 1);
    CHECK(segment_tile_count(model.config(), 37, 53, options) * 2 == total);
    REQUIRE(calls.size() == static_cast<size_t>(total + 1));  // once before the first tile, once after each
    for (size_t i = 0; i < calls.size(); ++i) CHECK(calls[i] == std::make_pair(static_cast<int64_t>(i), total));
  }
  // Stop after the third tile: the call throws CancelledError saying where, runs no further tile,
  // and leaves the model in the mode it was in.
  model.set_training(true);
  int64_t last = -1;
  SegmentOptions stop{tile, false, [&](int64_t done, int64_t) {
                        last = done;
                        return done < 3;
                      }};
  CHECK_THROWS_WITH(segment_stack(model, stack, stop), Catch::Contains("stopped by the caller after 3 of"));
  CHECK(last == 3);
  CHECK(model.training());
  CHECK_THROWS_AS(segment_image(model, stack.entry(0), stop), CancelledError);
  // A callback that says stop before any work: nothing runs.
  last = -1;
  SegmentOptions never{tile, false, [&](int64_t done, int64_t) {
                         last = done;
                         return false;
                       }};
  CHECK_THROWS_AS(segment_image(model, stack.entry(0), never), CancelledError);
  CHECK(last == 0);
}
