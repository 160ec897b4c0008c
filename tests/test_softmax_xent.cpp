// tests/test_softmax_xent.cpp — the fused softmax + pixel-weighted cross-entropy and the
// softmax / argmax inference head: a hand-computed example, weight 0, huge logits, gradient
// check in double, CUDA (simulator) vs CPU on awkward shapes, determinism, and every validation.
#include <cmath>
#include <limits>
#include <numeric>

#include "core/autograd.h"
#include "core/error.h"
#include "kernels/softmax_xent.h"
#include "test_util.h"

using namespace unet;
using namespace unet::test;
using Catch::Contains;

namespace {

struct LossCase {
  Tensor logits, labels, weights;
  XentParams p;
};

// Random logits in [-3, 3), labels in [0, K), weights in [0.1, 2): never zero, so every pixel
// counts. Built on the CPU, moved to `device`.
LossCase random_case(int64_t n, int64_t k, int64_t h, int64_t w, uint64_t seed, Device device) {
  const Shape pix{n, h, w};
  std::vector<int32_t> labels(static_cast<size_t>(pix.numel()));
  for (size_t i = 0; i < labels.size(); ++i)
    labels[i] = static_cast<int32_t>(philox_uint32(seed + 1, i) % static_cast<uint32_t>(k));
  return {random_tensor(Shape{n, k, h, w}, seed, device, -3.0, 3.0),
          Tensor::from_vector(labels, pix, device), random_tensor(pix, seed + 2, device, 0.1, 2.0),
          XentParams{n, k, h * w, LossReduction::Sum}};
}

std::vector<int32_t> host_labels(const LossCase& c) { return c.labels.to_int_vector(); }

}  // namespace

TEST_CASE("weighted cross-entropy: hand-computed example", "[loss]") {
  // N=1, K=2, H=1, W=3. Logits per pixel (class 0, class 1), label, weight:
  //   x0: (0, 0),      label 0, w 1: p = (1/2, 1/2);  -w log p0 = ln 2;    d = 1·(1/2-1, 1/2)
  //   x1: (ln 3, 0),   label 1, w 2: p = (3/4, 1/4);  -w log p1 = 2 ln 4;  d = 2·(3/4, 1/4-1)
  //   x2: (5, -7),     label 0, w 0: ignored: contributes 0 to E, W and the gradient.
  // Sum: E = ln 2 + 2 ln 4 = 5 ln 2 = 3.4657359...; W = 1 + 2 + 0 = 3; mean = 5 ln 2 / 3.
  const Tensor logits = Tensor::from_vector(
      std::vector<float>{0.0f, std::log(3.0f), 5.0f, /* class 1: */ 0.0f, 0.0f, -7.0f},
      Shape{1, 2, 1, 3});
  const Tensor labels = Tensor::from_vector(std::vector<int32_t>{0, 1, 0}, Shape{1, 1, 3});
  const Tensor weights = Tensor::from_vector(std::vector<float>{1.0f, 2.0f, 0.0f}, Shape{1, 1, 3});
  // d(logits) in NCHW order (class-0 plane, then class-1 plane) for the sum.
  const std::vector<double> d_sum{-0.5, 1.5, 0.0, 0.5, -1.5, 0.0};
  // float32 evaluation of a handful of exp/log: a few ulps of values near 1.
  const double tol = 8 * kEps32;

  // The pixel mean divides by P = 3 pixels, the weighted mean by W = 3: the same numbers here;
  // the gradient check below tells them apart.
  for (LossReduction r : {LossReduction::Sum, LossReduction::WeightedMean, LossReduction::PixelMean}) {
    const double scale = r == LossReduction::Sum ? 1.0 : 1.0 / 3.0;
    Tensor x = logits.clone().set_requires_grad(true);
    Tensor loss = weighted_cross_entropy(x, labels, weights, r);
    REQUIRE(loss.shape() == Shape{});
    require_close(std::vector<float>{loss.item()}, std::vector<double>{5.0 * std::log(2.0) * scale},
                  tol, tol, "loss");
    loss.backward();
    std::vector<double> expect(d_sum);
    for (double& v : expect) v *= scale;
    require_close(x.grad().to_vector(), expect, tol, tol, "d(logits)");
  }
}

TEST_CASE("weighted cross-entropy: huge logits stay finite (log-sum-exp)", "[loss]") {
  // Pixel 0: (1000, -1000), label 1: -log p1 = 1000 - (-1000) = 2000 (exp(-2000) vanishes).
  // Pixel 1: (-1000, 1000), label 1: -log p1 = log(1 + exp(-2000)) = 0.
  // d = w·(p - onehot) = (1, -1) and (0, 0) exactly in float.
  const Tensor logits = Tensor::from_vector(std::vector<float>{1000, -1000, -1000, 1000},
                                            Shape{1, 2, 1, 2});
  const Tensor labels = Tensor::from_vector(std::vector<int32_t>{1, 1}, Shape{1, 1, 2});
  const Tensor weights = Tensor::full(Shape{1, 1, 2}, 1.0f);
  std::vector<Device> devices{Device::cpu()};
  if (cuda_available()) devices.push_back(cuda_device());
  for (Device dev : devices) {
    Tensor x = logits.to(dev).set_requires_grad(true);
    Tensor loss = weighted_cross_entropy(x, labels.to(dev), weights.to(dev), LossReduction::Sum);
    REQUIRE(loss.item() == 2000.0f);
    loss.backward();
    require_close(x.grad().to_vector(), std::vector<double>{1, 0, -1, 0}, 0.0, 0.0, dev.str());
  }
}

TEST_CASE("weighted cross-entropy: all weights zero gives a zero mean and gradient", "[loss]") {
  LossCase c = random_case(1, 2, 3, 4, 11, Device::cpu());
  Tensor x = c.logits.clone().set_requires_grad(true);
  Tensor loss = weighted_cross_entropy(x, c.labels, Tensor::zeros(c.weights.shape()),
                                       LossReduction::WeightedMean);
  REQUIRE(loss.item() == 0.0f);
  loss.backward();
  for (float v : x.grad().to_vector()) REQUIRE(v == 0.0f);
}

TEST_CASE("weighted cross-entropy: gradient check in double", "[loss]") {
  // N=2, K=3, H=3, W=5: 90 logits, every component checked by central differences.
  const LossCase c = random_case(2, 3, 3, 5, 21, Device::cpu());
  const std::vector<int32_t> labels = host_labels(c);
  const std::vector<double> x0 = to_double(c.logits.to_vector());
  const std::vector<double> w = to_double(c.weights.to_vector());
  for (LossReduction r : {LossReduction::Sum, LossReduction::WeightedMean, LossReduction::PixelMean}) {
    XentParams p = c.p;
    p.reduction = r;
    std::vector<double> d(x0.size());
    auto f = [&](const std::vector<double>& x) {
      double loss = 0, scale = 0;
      REQUIRE(cpu::weighted_xent_forward(p, x.data(), labels.data(), w.data(), d.data(), &loss,
                                         &scale) == -1);
      return std::vector<double>{loss};
    };
    f(x0);
    const double g = 0.7;
    const double scale = r == LossReduction::WeightedMean ? 1.0 / std::accumulate(w.begin(), w.end(), 0.0)
                         : r == LossReduction::PixelMean  ? 1.0 / static_cast<double>(w.size())
                                                          : 1.0;
    std::vector<double> dx(x0.size()), dcopy = d;
    cpu::weighted_xent_backward(dcopy.data(), &g, &scale, dx.data(), static_cast<int64_t>(dx.size()));
    check_gradient(f, x0, {g}, dx, r == LossReduction::Sum ? "sum" : r == LossReduction::WeightedMean ? "weighted mean" : "pixel mean");
  }
}

TEST_CASE("weighted cross-entropy: CUDA matches CPU", "[loss][cuda]") {
  const Device dev = cuda_device();
  struct Size { int64_t n, k, h, w; };
  for (Size s : {Size{1, 2, 37, 41}, Size{3, 3, 13, 17}, Size{2, 17, 5, 7}}) {
    const LossCase c = random_case(s.n, s.k, s.h, s.w, 31 + s.k, Device::cpu());
    const int64_t pixels = s.n * s.h * s.w;
    for (LossReduction r : {LossReduction::Sum, LossReduction::WeightedMean, LossReduction::PixelMean}) {
      XentParams p = c.p;
      p.reduction = r;
      Tensor d_ref = poisoned(c.logits.shape(), Device::cpu());
      float loss_ref = NAN, scale_ref = NAN;
      REQUIRE(cpu::weighted_xent_forward(p, c.logits.data<float>(), c.labels.data<int32_t>(),
                                         c.weights.data<float>(), d_ref.data<float>(), &loss_ref,
                                         &scale_ref) == -1);
      Tensor logits = c.logits.to(dev), labels = c.labels.to(dev), weights = c.weights.to(dev);
      Tensor d = poisoned(c.logits.shape(), dev);
      Tensor loss = poisoned(Shape{}, dev), scale = poisoned(Shape{}, dev);
      REQUIRE(cuda::weighted_xent_forward(p, logits.data<float>(), labels.data<int32_t>(),
                                          weights.data<float>(), d.data<float>(),
                                          loss.data<float>(), scale.data<float>()) == -1);
      // d = w·(p - onehot) with |w| < 2: expf/division differ by a few ulps between backends
      // (CUDA expf is within 2 ulp), so 8 ulps of the largest magnitude (2) bound it.
      require_close(d, d_ref, 16 * kEps32, 8 * kEps32, "d(logits)");
      // Loss: positive terms each within a few ulps, summed in a different order (float tree on
      // CUDA, double on the CPU): the random-walk bound for the pixel count plus per-term error.
      const double rtol = reduction_rtol(pixels) + 8 * kEps32;
      require_close(loss.to_vector(), std::vector<float>{loss_ref}, 0.0, rtol, "loss");
      // 1/W: W is a sum of pixels positive weights, same bound.
      require_close(scale.to_vector(), std::vector<float>{scale_ref}, 0.0, rtol, "grad scale");

      // Backward: one multiply by g·scale per element; inherits d's and scale's error.
      const Tensor g = Tensor::full(Shape{}, 0.37f, dev);
      Tensor dx = poisoned(c.logits.shape(), dev);
      cuda::weighted_xent_backward(d.data<float>(), g.data<float>(), scale.data<float>(),
                                   dx.data<float>(), d.numel());
      Tensor dx_ref = poisoned(c.logits.shape(), Device::cpu());
      const float g_host = 0.37f;
      cpu::weighted_xent_backward(d_ref.data<float>(), &g_host, &scale_ref, dx_ref.data<float>(),
                                  d.numel());
      require_close(dx, dx_ref, 16 * kEps32 * scale_ref, rtol + 8 * kEps32, "dx");

      // Deterministic: a second run gives the same bits.
      Tensor loss2 = poisoned(Shape{}, dev), scale2 = poisoned(Shape{}, dev);
      cuda::weighted_xent_forward(p, logits.data<float>(), labels.data<int32_t>(),
                                  weights.data<float>(), d.data<float>(), loss2.data<float>(),
                                  scale2.data<float>());
      REQUIRE(loss2.item() == loss.item());
    }
  }
}

TEST_CASE("weighted cross-entropy: CUDA through autograd matches CPU", "[loss][cuda]") {
  const LossCase c = random_case(3, 2, 9, 11, 41, Device::cpu());
  Tensor x_cpu = c.logits.clone().set_requires_grad(true);
  Tensor loss_cpu = weighted_cross_entropy(x_cpu, c.labels, c.weights);
  loss_cpu.backward();
  const Device dev = cuda_device();
  Tensor x = c.logits.to(dev).set_requires_grad(true);
  Tensor loss = weighted_cross_entropy(x, c.labels.to(dev), c.weights.to(dev));
  loss.backward();
  REQUIRE(x.grad().device() == dev);
  const double rtol = reduction_rtol(3 * 9 * 11) + 8 * kEps32;  // as in the launcher test
  require_close(std::vector<float>{loss.item()}, std::vector<float>{loss_cpu.item()}, 0, rtol, "loss");
  require_close(x.grad().to_host(), x_cpu.grad(), 1e-6, rtol, "d(logits)");
}

TEST_CASE("weighted cross-entropy: invalid input is refused", "[loss]") {
  std::vector<Device> devices{Device::cpu()};
  if (cuda_available()) devices.push_back(cuda_device());
  for (Device dev : devices) {
    INFO(dev.str());
    const LossCase c = random_case(2, 2, 3, 4, 51, dev);
    std::vector<int32_t> bad = host_labels(c);
    bad[13] = 7;  // n=1, y=0, x=1
    bad[20] = -1;
    const Tensor bad_labels = Tensor::from_vector(bad, c.labels.shape(), dev);
    REQUIRE_THROWS_AS(weighted_cross_entropy(c.logits, bad_labels, c.weights), ValueError);
    // The first bad pixel is the one reported, on every backend.
    REQUIRE_THROWS_WITH(weighted_cross_entropy(c.logits, bad_labels, c.weights),
                        Contains("label 7 at (n=1, y=0, x=1)") && Contains("[0, 2)"));
    bad[13] = 0;
    REQUIRE_THROWS_WITH(
        weighted_cross_entropy(c.logits, Tensor::from_vector(bad, c.labels.shape(), dev), c.weights),
        Contains("label -1"));
    // Shapes, dtypes, ranks, emptiness.
    REQUIRE_THROWS_AS(weighted_cross_entropy(c.logits, c.labels.view(Shape{2, 4, 3}), c.weights),
                      ShapeError);
    REQUIRE_THROWS_AS(weighted_cross_entropy(c.logits, c.labels, c.weights.view(Shape{1, 2, 12})),
                      ShapeError);
    REQUIRE_THROWS_AS(weighted_cross_entropy(c.logits, c.weights, c.weights), DTypeError);
    REQUIRE_THROWS_AS(weighted_cross_entropy(c.labels.view(Shape{2, 1, 3, 4}), c.labels, c.weights),
                      DTypeError);
    REQUIRE_THROWS_AS(weighted_cross_entropy(c.logits.view(Shape{4, 3, 4}), c.labels, c.weights),
                      ShapeError);
    const Tensor empty = Tensor::empty(Shape{2, 2, 0, 4}, DType::Float32, dev);
    REQUIRE_THROWS_AS(weighted_cross_entropy(empty, Tensor::empty(Shape{2, 0, 4}, DType::Int32, dev),
                                             Tensor::empty(Shape{2, 0, 4}, DType::Float32, dev)),
                      ShapeError);
    REQUIRE_THROWS_AS(weighted_cross_entropy(c.logits, c.labels, Tensor()), ValueError);
  }
  if (cuda_available()) {
    const LossCase c = random_case(1, 2, 3, 4, 52, Device::cpu());
    REQUIRE_THROWS_AS(weighted_cross_entropy(c.logits.to(cuda_device()), c.labels, c.weights),
                      DeviceError);
  }
}

TEST_CASE("softmax and argmax over channels: hand example and CPU vs CUDA", "[loss][softmax]") {
  // Pixel 0: (ln 3, 0) -> (3/4, 1/4), class 0. Pixel 1: (2, 2) -> (1/2, 1/2), tie -> class 0.
  // Pixel 2: (-1, 4) -> class 1.
  const Tensor logits = Tensor::from_vector(
      std::vector<float>{std::log(3.0f), 2.0f, -1.0f, 0.0f, 2.0f, 4.0f}, Shape{1, 2, 1, 3});
  const std::vector<float> probs = softmax(logits).to_vector();
  require_close(std::vector<float>{probs[0], probs[3], probs[1], probs[4]},
                std::vector<double>{0.75, 0.25, 0.5, 0.5}, 4 * kEps32, 4 * kEps32, "softmax");
  REQUIRE(argmax_channels(logits).to_int_vector() == std::vector<int32_t>{0, 0, 1});

  if (!cuda_available()) return;
  const Device dev = cuda_device();
  struct Size { int64_t n, k, h, w; };
  for (Size s : {Size{1, 2, 19, 23}, Size{3, 17, 5, 3}, Size{2, 3, 1, 1}}) {
    const Tensor x = random_tensor(Shape{s.n, s.k, s.h, s.w}, 61 + s.k, Device::cpu(), -5, 5);
    const XentParams p{s.n, s.k, s.h * s.w, LossReduction::Sum};
    Tensor prob = poisoned(x.shape(), dev);
    Tensor xd = x.to(dev);
    cuda::softmax_channels(p, xd.data<float>(), prob.data<float>());
    // Each probability is exp(·)/z: a few ulps apart between backends (expf within 2 ulp).
    require_close(prob, softmax(x), 1e-7, 8 * kEps32, "softmax");
    Tensor idx = Tensor::from_vector(std::vector<int32_t>(static_cast<size_t>(s.n * s.h * s.w), -7),
                                     Shape{s.n, s.h, s.w}, dev);
    cuda::argmax_channels(p, xd.data<float>(), idx.data<int32_t>());
    // Comparisons only: exact.
    REQUIRE(idx.to_int_vector() == argmax_channels(x).to_int_vector());
    REQUIRE(argmax_channels(xd).to_int_vector() == argmax_channels(x).to_int_vector());
  }
}

TEST_CASE("softmax and argmax refuse bad input", "[loss][softmax]") {
  REQUIRE_THROWS_AS(softmax(Tensor::zeros(Shape{2, 3, 4})), ShapeError);
  REQUIRE_THROWS_AS(argmax_channels(Tensor::zeros(Shape{1, 2, 0, 3})), ShapeError);
  REQUIRE_THROWS_AS(softmax(Tensor::zeros(Shape{1, 2, 2, 2}, DType::Int32)), DTypeError);
  REQUIRE_THROWS_AS(argmax_channels(Tensor()), ValueError);
}

namespace {
// One pixel's softmax denominator as the definition writes it, in float: m = the largest logit,
// z = Σ_k exp(a_k − m) in class order.
float definition_z(const float* a, int64_t K, int64_t hw, float& m) {
  m = a[0];
  for (int64_t k = 1; k < K; ++k) m = std::max(m, a[k * hw]);
  float z = 0;
  for (int64_t k = 0; k < K; ++k) z += std::exp(a[k * hw] - m);
  return z;
}
}  // namespace

// The CPU kernel steps (image, pixel) along each 4096-pixel chunk and computes each exponential
// once: chunks that cross image boundaries (hw = 3001, 3 images, K = 3) must give the loop of the
// definition's bits (max, then exp per class, z in class order, then each exp again over z), and a
// bad label in the last image is reported at its flat index. Outputs start poisoned (NaN).
TEST_CASE("weighted cross-entropy (CPU kernel): chunks across images give the definition's bits", "[loss]") {
  const XentParams p{3, 3, 3001, LossReduction::Sum};
  const int64_t total = p.batch * p.pixels, K = p.classes, hw = p.pixels;
  const std::vector<float> logits = random_values<float>(total * K, 7, -4.0, 4.0);
  const std::vector<float> weights = random_values<float>(total, 8, 0.0, 2.0);
  std::vector<int32_t> labels(static_cast<size_t>(total));
  for (int64_t i = 0; i < total; ++i) labels[i] = static_cast<int32_t>((i * 7 + i / 5) % K);
  std::vector<float> ref(logits.size());
  double loss_ref = 0.0;
  for (int64_t i = 0; i < total; ++i) {
    const int64_t off = (i / hw) * K * hw + i % hw;
    const float* a = logits.data() + off;
    float m;
    const float z = definition_z(a, K, hw, m);
    const float inv_z = 1.0f / z, w = weights[i];
    for (int64_t k = 0; k < K; ++k)
      ref[off + k * hw] = w * (std::exp(a[k * hw] - m) * inv_z - (k == labels[i] ? 1.0f : 0.0f));
    loss_ref += double(w) * double(std::log(z) - (a[labels[i] * hw] - m));
  }
  for (int threads : {1, 2}) {
    ThreadCountGuard guard;
    set_num_threads(threads);
    std::vector<float> d(logits.size(), std::numeric_limits<float>::quiet_NaN());
    float loss = NAN, scale = NAN;
    REQUIRE(cpu::weighted_xent_forward(p, logits.data(), labels.data(), weights.data(), d.data(), &loss, &scale) == -1);
    REQUIRE(d == ref);
    // The loss: per-chunk double sums combined in chunk order, vs one double sum here; each term
    // is O(10) (|logits| <= 4, w <= 2), 9003 terms: double rounding far below one float ulp of the
    // O(1e4) total, so at most the final float rounding differs.
    REQUIRE(std::abs(double(loss) - loss_ref) <= 2 * kEps32 * std::abs(loss_ref));
    REQUIRE(scale == 1.0f);

    std::vector<float> probs(logits.size(), std::numeric_limits<float>::quiet_NaN());
    cpu::softmax_channels(p, logits.data(), probs.data());
    for (int64_t i = 0; i < total; ++i) {  // the definition again: exp(a − m) / z
      const int64_t off = (i / hw) * K * hw + i % hw;
      const float* a = logits.data() + off;
      float m;
      const float z = definition_z(a, K, hw, m);
      for (int64_t k = 0; k < K; ++k) REQUIRE(probs[off + k * hw] == std::exp(a[k * hw] - m) * (1.0f / z));
    }
  }
  labels[2 * hw + 17] = -1;
  labels[2 * hw + 20] = 5;
  std::vector<float> d(logits.size());
  float loss = 0, scale = 0;
  REQUIRE(cpu::weighted_xent_forward(p, logits.data(), labels.data(), weights.data(), d.data(), &loss, &scale) ==
          2 * hw + 17);
}
