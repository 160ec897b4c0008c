// tests/test_sgd.cpp — SGD with momentum and the weight average: against hand-written loops
// (PyTorch's convention), skipped parameters, CUDA (simulator, one launch) vs CPU, the refusals.
#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "kernels/sgd.h"
#include "test_util.h"

using namespace unet;
using namespace unet::test;
using Catch::Contains;

namespace {

// Gives a leaf parameter a gradient as if a backward pass had produced it.
void set_grad(Tensor& p, const Tensor& g) { p.impl()->grad = g.impl(); }

}  // namespace

TEST_CASE("sgd_step: matches a hand-written loop over several steps", "[sgd]") {
  const SgdOptions o{0.1f, 0.9f, 0.01f};
  const std::vector<double> p0 = to_double(random_values(7, 1));
  std::vector<Tensor> grads;
  for (int s = 0; s < 3; ++s) grads.push_back(random_tensor(Shape{7}, 10 + s));

  // The reference, in double: g' = g + wd·p; v = μ·v + g'; p -= lr·v.
  std::vector<double> p = p0, v(7, 0.0);
  Tensor param = Tensor::from_vector(std::vector<float>(p0.begin(), p0.end()), Shape{7})
                     .set_requires_grad(true);
  std::vector<Tensor> velocities;
  for (int s = 0; s < 3; ++s) {
    const std::vector<float> g = grads[s].to_vector();
    for (size_t i = 0; i < p.size(); ++i) {
      v[i] = double(o.momentum) * v[i] + (g[i] + double(o.weight_decay) * p[i]);
      p[i] -= double(o.learning_rate) * v[i];
    }
    set_grad(param, grads[s]);
    sgd_step({param}, velocities, o);
  }
  // Values are O(1); each step rounds ~4 float operations per element, errors carried through 3
  // steps with factors <= 1 (μ, lr): a few tens of eps of O(1) values.
  require_close(param.to_vector(), p, 32 * kEps32, 32 * kEps32, "params");
  require_close(velocities[0].to_vector(), v, 32 * kEps32, 32 * kEps32, "velocity");
  REQUIRE(param.is_leaf());  // the update is not recorded in the graph
}

TEST_CASE("sgd_step: gradient_scale multiplies the gradient before momentum, not the weight decay", "[sgd]") {
  SgdOptions o{0.1f, 0.9f, 0.01f};
  const std::vector<double> p0 = to_double(random_values(9, 2));
  std::vector<double> p = p0, v(9, 0.0);
  Tensor param = Tensor::from_vector(std::vector<float>(p0.begin(), p0.end()), Shape{9}).set_requires_grad(true);
  std::vector<Tensor> velocities;
  const float scales[3] = {0.25f, 1.0f, 3.0f};
  for (int s = 0; s < 3; ++s) {
    const Tensor grad = random_tensor(Shape{9}, 30 + s);
    const std::vector<float> g = grad.to_vector();
    // The reference, in double: g' = scale·g + wd·p; v = μ·v + g'; p -= lr·v.
    for (size_t i = 0; i < p.size(); ++i) {
      v[i] = double(o.momentum) * v[i] + (double(scales[s]) * g[i] + double(o.weight_decay) * p[i]);
      p[i] -= double(o.learning_rate) * v[i];
    }
    o.gradient_scale = scales[s];
    set_grad(param, grad);
    sgd_step({param}, velocities, o);
  }
  // As the loop above: a few float roundings per element and step of O(1) values (scale <= 3).
  require_close(param.to_vector(), p, 64 * kEps32, 64 * kEps32, "params");
  require_close(velocities[0].to_vector(), v, 64 * kEps32, 64 * kEps32, "velocity");
}

TEST_CASE("sgd_step: the weight average follows a hand-written loop, decay changing per step", "[sgd]") {
  const std::vector<double> p0 = to_double(random_values(9, 3));
  Tensor param = Tensor::from_vector(std::vector<float>(p0.begin(), p0.end()), Shape{9}).set_requires_grad(true);
  std::vector<double> p = p0, v(9, 0.0), a = p0;  // the average starts as the parameter
  std::vector<Tensor> velocities, averages;
  const float decays[] = {0.1f, 0.5f, 0.9f, 0.99f};
  for (int s = 0; s < 4; ++s) {
    const SgdOptions o{0.2f, 0.9f, 0.0f, decays[s]};
    const Tensor g = random_tensor(Shape{9}, 30 + s);
    const std::vector<float> gv = g.to_vector();
    for (size_t i = 0; i < p.size(); ++i) {
      v[i] = double(o.momentum) * v[i] + gv[i];
      p[i] -= double(o.learning_rate) * v[i];
      a[i] += (1.0 - double(o.average_decay)) * (p[i] - a[i]);
    }
    set_grad(param, g);
    sgd_step({param}, velocities, o, &averages);
  }
  // As above: a few float roundings of O(1) values per step, carried with factors <= 1.
  REQUIRE(averages.size() == 1);
  require_close(param.to_vector(), p, 32 * kEps32, 32 * kEps32, "params");
  require_close(averages[0].to_vector(), a, 32 * kEps32, 32 * kEps32, "average");
  // The average is not the parameter (it lags it): the test would pass vacuously otherwise.
  double gap = 0.0;
  for (size_t i = 0; i < p.size(); ++i) gap = std::max(gap, std::abs(a[i] - p[i]));
  REQUIRE(gap > 0.01);
  REQUIRE(!averages[0].requires_grad());
}

TEST_CASE("sgd_step: a parameter without a gradient is skipped", "[sgd]") {
  Tensor a = random_tensor(Shape{2, 3}, 1).set_requires_grad(true);
  Tensor b = random_tensor(Shape{5}, 2).set_requires_grad(true);
  const std::vector<float> a0 = a.to_vector(), b0 = b.to_vector();
  set_grad(a, Tensor::full(Shape{2, 3}, 1.0f));
  std::vector<Tensor> velocities, averages;
  sgd_step({a, b}, velocities, SgdOptions{0.5f, 0.99f, 0.0f, 0.25f}, &averages);
  REQUIRE(velocities.size() == 2);
  REQUIRE(averages[1].to_vector() == b0);  // b's average starts as b and does not move
  // a: v = 0.99·0 + 1 = 1 exactly, p -= 0.5: one rounding of an O(1) value.
  std::vector<double> a_ref(a0.begin(), a0.end());
  for (double& x : a_ref) x -= 0.5;
  require_close(a.to_vector(), a_ref, kEps32, kEps32, "a");
  REQUIRE(b.to_vector() == b0);
  for (float v : velocities[1].to_vector()) REQUIRE(v == 0.0f);
}

TEST_CASE("sgd_step: CUDA (one launch for all parameters) matches CPU", "[sgd][cuda]") {
  const Device dev = cuda_device();
  const SgdOptions o{0.05f, 0.99f, 0.001f};
  const std::vector<Shape> shapes{Shape{1}, Shape{17}, Shape{17, 3, 3, 3}, Shape{1000}, Shape{3, 7}};
  std::vector<Tensor> pc, pg, vc, vg, ac, ag;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Tensor p = random_tensor(shapes[i], 20 + i);
    pc.push_back(p.clone().set_requires_grad(true));
    pg.push_back(p.to(dev).set_requires_grad(true));
  }
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      if (i == 3 && step == 1) {  // parameter 3 gets no gradient in step 1
        pc[i].zero_grad();
        pg[i].zero_grad();
        continue;
      }
      const Tensor g = random_tensor(shapes[i], 100 * step + i);
      set_grad(pc[i], g);
      set_grad(pg[i], g.to(dev));
    }
    SgdOptions averaging = o;
    averaging.average_decay = 0.3f + 0.3f * step;
    averaging.gradient_scale = step == 1 ? 0.37f : 1.0f;  // clipping's scale, in the same launch
    sgd_step(pc, vc, averaging, &ac);
    sgd_step(pg, vg, averaging, &ag);
  }
  // Same float operations per element; nvcc may contract a multiply-add into an FMA (one rounding
  // fewer), so allow a few eps of the O(1) values per step, over 3 steps.
  for (size_t i = 0; i < shapes.size(); ++i) {
    require_close(pg[i].to_host(), pc[i], 16 * kEps32, 16 * kEps32, "param");
    require_close(vg[i].to_host(), vc[i], 16 * kEps32, 16 * kEps32, "velocity");
    require_close(ag[i].to_host(), ac[i], 16 * kEps32, 16 * kEps32, "average");
  }
}

TEST_CASE("sgd_step: invalid input is refused", "[sgd]") {
  Tensor p = random_tensor(Shape{4}, 1).set_requires_grad(true);
  set_grad(p, Tensor::full(Shape{4}, 1.0f));
  std::vector<Tensor> v;
  REQUIRE_THROWS_WITH(sgd_step({p}, v, SgdOptions{}), Contains("learning_rate"));
  REQUIRE_THROWS_AS(sgd_step({p}, v, SgdOptions{0.1f, 1.0f}), ValueError);
  REQUIRE_THROWS_AS(sgd_step({p}, v, SgdOptions{0.1f, -0.5f}), ValueError);
  REQUIRE_THROWS_AS(sgd_step({p}, v, SgdOptions{0.1f, 0.9f, -1.0f}), ValueError);
  REQUIRE_THROWS_AS(sgd_step({p}, v, SgdOptions{NAN}), ValueError);
  std::vector<Tensor> two(2);
  REQUIRE_THROWS_WITH(sgd_step({p}, two, SgdOptions{0.1f}), Contains("1 parameters but 2"));
  std::vector<Tensor> wrong{Tensor::zeros(Shape{5})};
  REQUIRE_THROWS_AS(sgd_step({p}, wrong, SgdOptions{0.1f}), ShapeError);
  std::vector<Tensor> averages;
  REQUIRE_THROWS_WITH(sgd_step({p}, v, SgdOptions{0.1f, 0.9f, 0.0f, 1.0f}, &averages), Contains("average_decay"));
  REQUIRE_THROWS_AS(sgd_step({p}, v, SgdOptions{0.1f, 0.9f, 0.0f, -0.1f}, &averages), ValueError);
  for (float scale : {0.0f, -1.0f, NAN, INFINITY})
    REQUIRE_THROWS_WITH(sgd_step({p}, v, SgdOptions{0.1f, 0.9f, 0.0f, 0.0f, scale}), Contains("gradient_scale"));
  REQUIRE_THROWS_WITH(sgd_step({p}, v, SgdOptions{0.1f}, &two), Contains("1 parameters but 2 averages"));
  REQUIRE_THROWS_AS(sgd_step({p}, v, SgdOptions{0.1f}, &wrong), ShapeError);
  std::vector<Tensor> none;
  REQUIRE_THROWS_AS(sgd_step({Tensor::zeros(Shape{2}, DType::Int32)}, none, SgdOptions{0.1f}),
                    DTypeError);
  if (cuda_available()) {
    std::vector<Tensor> vs;
    REQUIRE_THROWS_AS(sgd_step({p, Tensor::zeros(Shape{2}, DType::Float32, cuda_device())}, vs,
                               SgdOptions{0.1f}),
                      DeviceError);
  }
}

// The CPU kernel runs all tensors as one index space split into chunks: a chunk may start or end
// inside a tensor, span several, and meet tensors with and without an average. Each element must
// still get the serial loop's expression, so the result is the serial loop's bits at any thread
// count (sizes around the 16384-element chunk grain, tiny tensors in between).
TEST_CASE("sgd_step (CPU kernel): many tensors in one pass give a serial loop's bits at any thread count", "[sgd]") {
  const std::vector<int64_t> counts{1, 16383, 3, 16384, 16385, 7, 40000, 64, 1, 33000};
  const SgdOptions o{0.05f, 0.9f, 0.001f, 0.25f, 0.5f};
  const float lr = o.learning_rate, mu = o.momentum, wd = o.weight_decay, gs = o.gradient_scale;
  const float keep = 1.0f - o.average_decay;
  std::vector<std::vector<float>> p0, g, v0, a0;
  for (size_t s = 0; s < counts.size(); ++s) {
    p0.push_back(random_values<float>(counts[s], 10 + s));
    g.push_back(random_values<float>(counts[s], 100 + s));
    v0.push_back(random_values<float>(counts[s], 200 + s));
    a0.push_back(random_values<float>(counts[s], 300 + s));
  }
  // The reference: the loop every element runs, in float, one tensor after the other.
  std::vector<std::vector<float>> p_ref = p0, v_ref = v0, a_ref = a0;
  for (size_t s = 0; s < counts.size(); ++s)
    for (int64_t i = 0; i < counts[s]; ++i) {
      const float v = mu * v_ref[s][i] + (gs * g[s][i] + wd * p_ref[s][i]);
      v_ref[s][i] = v;
      p_ref[s][i] -= lr * v;
      if (s % 3 != 1) a_ref[s][i] += keep * (p_ref[s][i] - a_ref[s][i]);  // every third has no average
    }
  for (int threads : {1, 2, 3}) {
    ThreadCountGuard guard;
    set_num_threads(threads);
    std::vector<std::vector<float>> p = p0, v = v0, a = a0;
    std::vector<SgdSlot<float>> slots;
    for (size_t s = 0; s < counts.size(); ++s)
      slots.push_back({p[s].data(), g[s].data(), v[s].data(), counts[s], s % 3 != 1 ? a[s].data() : nullptr});
    cpu::sgd_step(slots.data(), static_cast<int64_t>(slots.size()), o);
    INFO("threads " << threads);
    REQUIRE(p == p_ref);
    REQUIRE(v == v_ref);
    REQUIRE(a == a_ref);  // the tensors without an average keep theirs untouched
  }
}
