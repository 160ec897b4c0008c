// tests/test_elastic_warp.cpp — the CUDA augmentation warp (simulator in the sim build, the GPU
// in the gpu build) against its CPU twin with the same Philox-drawn parameters; identity and
// exact quarter turns on the device.
//
// Tolerance: both backends run warp_pixel() from kernels/elastic_warp.h. g++ compiles it the
// same way for the simulator and the CPU (no contraction in ISO C++ mode), so there they agree
// bit for bit; nvcc fuses multiply-adds, which moves a source position by about one float ulp
// (6e-5 px at coordinate 512). Random [0, 1] noise has bicubic slopes below ~3 per pixel, so the
// image may differ by up to ~2e-4: atol 5e-4. Nearest-neighbour labels and weights may differ
// only where the source coordinate is within 1e-3 px of a rounding boundary (x.5).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/philox.h"
#include "core/tensor.h"
#include "kernels/elastic_warp.h"
#include "unet/augment.h"

using namespace unet;

namespace {

struct Inputs {
  std::vector<float> image, weights;
  std::vector<int32_t> labels;
};

Inputs random_inputs(int w, int h, int c, uint64_t seed) {
  Inputs in;
  in.image.resize(static_cast<size_t>(w) * h * c);
  for (size_t i = 0; i < in.image.size(); ++i) in.image[i] = philox_uniform01(seed, i);
  in.labels.resize(static_cast<size_t>(w) * h);
  in.weights.resize(in.labels.size());
  for (size_t i = 0; i < in.labels.size(); ++i) {
    in.labels[i] = static_cast<int32_t>(philox_uint32(seed + 1, i) % 1000);
    in.weights[i] = 0.25f + philox_uniform01(seed + 2, i);
  }
  return in;
}

struct Outputs {
  std::vector<float> image, weights;
  std::vector<int32_t> labels;
};

Outputs run_cpu(const ElasticWarpParams& p, const Inputs& in) {
  const size_t n = static_cast<size_t>(p.out_width) * p.out_height;
  Outputs out{std::vector<float>(n * p.channels, std::numeric_limits<float>::quiet_NaN()),
              std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()),
              std::vector<int32_t>(n, -1)};
  cpu::elastic_warp(p, in.image.data(), out.image.data(), in.labels.data(), out.labels.data(),
                    in.weights.data(), out.weights.data());
  return out;
}

Outputs run_cuda(const ElasticWarpParams& p, const Inputs& in) {
  const Device dev = Device::cuda();
  const int64_t C = p.channels, H = p.in_height, W = p.in_width;
  const int64_t OH = p.out_height, OW = p.out_width;
  const Tensor image = Tensor::from_vector(in.image, Shape{C, H, W}, dev);
  const Tensor labels = Tensor::from_vector(in.labels, Shape{H, W}, dev);
  const Tensor weights = Tensor::from_vector(in.weights, Shape{H, W}, dev);
  // Outputs poisoned: NaN images, -1 labels, so an unwritten pixel shows.
  Tensor image_out = Tensor::full(Shape{C, OH, OW}, std::numeric_limits<float>::quiet_NaN(), dev);
  Tensor weights_out = Tensor::full(Shape{OH, OW}, std::numeric_limits<float>::quiet_NaN(), dev);
  Tensor labels_out = Tensor::from_vector(std::vector<int32_t>(OH * OW, -1), Shape{OH, OW}, dev);
  cuda::elastic_warp(p, image.data<float>(), image_out.data<float>(), labels.data<int32_t>(),
                     labels_out.data<int32_t>(), weights.data<float>(), weights_out.data<float>());
  return Outputs{image_out.to_vector(), weights_out.to_vector(), labels_out.to_int_vector()};
}

bool near_rounding_boundary(float s) {
  const float f = s - std::floor(s);
  return std::fabs(f - 0.5f) < 1e-3f;
}

}  // namespace

TEST_CASE("elastic warp: CUDA equals the CPU twin for the same seed", "[data][elastic_warp]") {
  // Odd sizes, a 3-channel input larger than the output window (mirror-padded tile use), and
  // a window near the input's corner so the mirrored border is sampled.
  const int in_w = 53, in_h = 41, out_w = 37, out_h = 29, channels = 3;
  const Inputs in = random_inputs(in_w, in_h, channels, 77);
  for (uint64_t sample = 0; sample < 4; ++sample) {
    WarpGeometry g{in_w, in_h, out_w, out_h, channels};
    if (sample % 2) { g.centre_x = 10.0f; g.centre_y = 35.5f; }
    const ElasticWarpParams p = draw_warp_params(AugmentOptions{}, g, 2024, sample);
    const Outputs ref = run_cpu(p, in), dev = run_cuda(p, in);
    int64_t label_diffs = 0;
    for (int y = 0; y < out_h; ++y)
      for (int x = 0; x < out_w; ++x) {
        const size_t o = static_cast<size_t>(y) * out_w + x;
        for (int c = 0; c < channels; ++c) {
          const size_t k = c * static_cast<size_t>(out_w) * out_h + o;
          INFO("sample " << sample << " pixel " << x << "," << y << " channel " << c);
          REQUIRE(std::isfinite(dev.image[k]));
          REQUIRE(std::fabs(dev.image[k] - ref.image[k]) <= 5e-4f);
        }
        if (dev.labels[o] != ref.labels[o] || dev.weights[o] != ref.weights[o]) {
          float sx, sy;
          warp_source(p, x, y, sx, sy);
          INFO("sample " << sample << " label mismatch at " << x << "," << y << " src " << sx << "," << sy);
          REQUIRE((near_rounding_boundary(sx) || near_rounding_boundary(sy)));
          ++label_diffs;
        }
      }
    REQUIRE(label_diffs <= out_w * out_h / 1000 + 1);
  }
}

TEST_CASE("elastic warp: CUDA identity and quarter turn are exact", "[data][elastic_warp]") {
  const int n = 33;
  const Inputs in = random_inputs(n, n, 1, 5);
  const Outputs id = run_cuda(make_warp_params(WarpGeometry{n, n, n, n, 1}), in);
  REQUIRE(id.image == in.image);
  REQUIRE(id.labels == in.labels);
  REQUIRE(id.weights == in.weights);
  const Outputs r90 = run_cuda(make_warp_params(WarpGeometry{n, n, n, n, 1}, M_PI / 2), in);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      REQUIRE(r90.image[y * n + x] == in.image[x * n + (n - 1 - y)]);
      REQUIRE(r90.labels[y * n + x] == in.labels[x * n + (n - 1 - y)]);
    }
}

TEST_CASE("elastic warp: CUDA launcher validates its arguments", "[data][elastic_warp]") {
  ElasticWarpParams p = make_warp_params(WarpGeometry{8, 8, 8, 8, 1});
  p.out_width = 0;
  float dummy = 0;
  REQUIRE_THROWS_AS(cuda::elastic_warp(p, &dummy, &dummy, nullptr, nullptr, nullptr, nullptr), ValueError);
}

TEST_CASE("elastic warp: warp_tensors dispatches CUDA tensors to the kernel", "[data][elastic_warp]") {
  const Inputs in = random_inputs(29, 21, 2, 12);
  const ElasticWarpParams p = draw_warp_params(AugmentOptions{}, WarpGeometry{29, 21, 17, 13, 2}, 6, 3);
  const Outputs ref = run_cpu(p, in);
  const WarpedTensors t = warp_tensors(p, Tensor::from_vector(in.image, Shape{2, 21, 29}, Device::cuda()),
                                       Tensor::from_vector(in.labels, Shape{21, 29}, Device::cuda()),
                                       Tensor::from_vector(in.weights, Shape{21, 29}, Device::cuda()));
  REQUIRE(t.image.device().is_cuda());
  const std::vector<float> image = t.image.to_vector();
  REQUIRE(image.size() == ref.image.size());
  for (size_t i = 0; i < image.size(); ++i) REQUIRE(std::fabs(image[i] - ref.image[i]) <= 5e-4f);
  // Mixed devices are refused.
  REQUIRE_THROWS_AS(warp_tensors(p, Tensor::from_vector(in.image, Shape{2, 21, 29}, Device::cuda()),
                                 Tensor::from_vector(in.labels, Shape{21, 29})),
                    DeviceError);
}

TEST_CASE("elastic warp: the CPU twin equals warp_pixel() bit for bit", "[data][warp]") {
  // The CPU twin hoists the grid's per-row and per-column part out of the pixel loop; it must
  // still compute exactly what warp_pixel() (the CUDA kernel's per-thread code) computes: same
  // expressions, and g++ does not contract in ISO C++ mode. A field window with an offset, odd
  // sizes, 2 channels, a source near the corner (mirrored taps) and a gamma != 1.
  const int in_w = 45, in_h = 38, channels = 2;
  const Inputs in = random_inputs(in_w, in_h, channels, 91);
  WarpGeometry g{in_w, in_h, 33, 27, channels};
  g.centre_x = 3.0f;
  g.centre_y = 30.5f;
  for (uint64_t sample = 0; sample < 3; ++sample) {
    ElasticWarpParams p = draw_warp_params(AugmentOptions{}, g, 404, sample);
    if (sample == 2) {  // the labels' window: a centre sub-window of the field
      p.field_width = 33, p.field_height = 27, p.out_offset_x = 5, p.out_offset_y = 4, p.out_width = 21, p.out_height = 17;
    }
    INFO("sample " << sample << " gamma " << p.gamma);
    const Outputs cpu = run_cpu(p, in);
    const size_t n = static_cast<size_t>(p.out_width) * p.out_height;
    Outputs ref{std::vector<float>(n * channels), std::vector<float>(n), std::vector<int32_t>(n)};
    for (int y = 0; y < p.out_height; ++y)
      for (int x = 0; x < p.out_width; ++x)
        warp_pixel(p, x, y, in.image.data(), ref.image.data(), in.labels.data(), ref.labels.data(), in.weights.data(),
                   ref.weights.data());
    CHECK(cpu.image == ref.image);
    CHECK(cpu.labels == ref.labels);
    CHECK(cpu.weights == ref.weights);
  }
}

TEST_CASE("elastic warp: a centre window with a field offset equals the crop of the full warp", "[data][warp]") {
  // Training warps the image on the whole tile and the labels only on its centre: both must see
  // the same deformation field.
  unet::WarpGeometry g;
  g.in_width = 40;
  g.in_height = 36;
  g.out_width = g.out_height = 30;
  const unet::ElasticWarpParams full = unet::draw_warp_params(unet::AugmentOptions{}, g, 5, 7);
  std::vector<float> weights(40 * 36);
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>(i % 97);
  std::vector<int32_t> labels(40 * 36);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>(i % 13);
  std::vector<float> full_w(30 * 30);
  std::vector<int32_t> full_l(30 * 30);
  unet::cpu::elastic_warp(full, nullptr, nullptr, labels.data(), full_l.data(), weights.data(), full_w.data());
  unet::ElasticWarpParams centre = full;
  centre.field_width = centre.field_height = 30;
  centre.out_offset_x = centre.out_offset_y = 7;
  centre.out_width = centre.out_height = 16;
  std::vector<float> centre_w(16 * 16);
  std::vector<int32_t> centre_l(16 * 16);
  unet::cpu::elastic_warp(centre, nullptr, nullptr, labels.data(), centre_l.data(), weights.data(), centre_w.data());
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x) {
      REQUIRE(centre_w[y * 16 + x] == full_w[(y + 7) * 30 + x + 7]);
      REQUIRE(centre_l[y * 16 + x] == full_l[(y + 7) * 30 + x + 7]);
    }
  centre.out_offset_x = 20;
  CHECK_THROWS_AS(unet::cpu::elastic_warp(centre, nullptr, nullptr, labels.data(), centre_l.data(),
                                          weights.data(), centre_w.data()),
                  unet::ValueError);
}
