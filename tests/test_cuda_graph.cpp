// tests/test_cuda_graph.cpp — capture and replay (core/cuda_graph.h, cuda_rt::begin_capture) and
// the captured training step (unet/graph_step.h): recorded work does not run until replayed and
// then runs exactly as eagerly; uploads are snapshots; the graph's memory pool keeps its addresses
// from everyone else between replays; what cannot be captured is refused with a CudaError that
// says why, and leaves no capture behind; a replayed U-Net training step equals eager steps bit
// for bit at every precision.
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/autograd.h"
#include "core/cuda_graph.h"
#include "core/cuda_runtime.h"
#include "core/error.h"
#include "kernels/elementwise.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "test_util.h"
#include "unet/graph_step.h"
#include "unet/model.h"

using namespace unet;

namespace {

// A U-Net without dropout and the smallest valid tile of at least `min_tile`: cheap in the simulator.
UNetConfig small_config(int64_t base, int depth, uint64_t seed) {
  UNetConfig cfg;
  cfg.base_channels = base;
  cfg.depth = depth;
  cfg.dropout = 0.0f;
  cfg.init_seed = seed;
  return cfg;
}
int64_t valid_tile(const UNetConfig& cfg, int64_t min_tile) {
  while (!cfg.geometry().is_valid_input(min_tile)) ++min_tile;
  return min_tile;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("CudaGraph: captured work runs only at replay, and each replay runs it again", "[cuda_graph][cuda]") {
  const Device dev = test::cuda_device();
  const Tensor a = test::random_tensor(Shape{3, 70}, 1, dev);
  Tensor b = test::random_tensor(Shape{3, 70}, 2, dev);
  Tensor out = test::poisoned(Shape{3, 70}, dev);
  const CudaGraph graph([&] { out.copy_from(add(a, b)); }, "3x70");
  CHECK_FALSE(cuda_rt::capturing());
  CHECK(graph.operations() >= 2);  // the add kernel and the device-to-device copy
  for (float v : out.to_vector()) REQUIRE(std::isnan(v));  // nothing ran during the capture

  graph.replay("3x70");
  const std::vector<float> eager = add(a, b).to_vector();
  CHECK(same_bits(out.to_vector(), eager));

  // New values in the same memory: the replay reads them (the graph holds addresses, not values).
  b.copy_from(test::random_tensor(Shape{3, 70}, 3, dev));
  graph.replay("3x70");
  CHECK(same_bits(out.to_vector(), add(a, b).to_vector()));
  // A memset is recorded like a launch: it does not run during the capture either.
  const CudaGraph clear([&] { cuda_rt::memset(out.data<float>(), 0, out.numel() * sizeof(float)); }, "clear");
  CHECK(same_bits(out.to_vector(), add(a, b).to_vector()));
  clear.replay("clear");
  for (float v : out.to_vector()) REQUIRE(v == 0.0f);
}

TEST_CASE("CudaGraph: an upload during capture replays the host bytes as they were", "[cuda_graph][cuda]") {
  const Device dev = test::cuda_device();
  std::vector<float> host{1.0f, 2.0f, 3.0f};
  Tensor target = test::poisoned(Shape{3}, dev);
  const CudaGraph graph([&] { target.copy_from(Tensor::from_vector(host, Shape{3})); }, "upload");
  host = {7.0f, 8.0f, 9.0f};  // changed after the capture: not seen by the replay
  graph.replay("upload");
  CHECK(target.to_vector() == std::vector<float>{1.0f, 2.0f, 3.0f});
  target.copy_from(Tensor::zeros(Shape{3}, DType::Float32, dev));
  graph.replay("upload");
  CHECK(target.to_vector() == std::vector<float>{1.0f, 2.0f, 3.0f});
}

TEST_CASE("CudaGraph: the graph's pool keeps its blocks, so eager tensors never share its addresses", "[cuda_graph][cuda]") {
  const Device dev = test::cuda_device();
  const Shape shape{4, 1000};
  const Tensor a = test::random_tensor(shape, 4, dev);
  Tensor result;
  const void* temporary = nullptr;
  const CudaGraph graph(
      [&] {
        const Tensor t = add(a, a);  // freed inside the capture: its block goes back to the pool
        temporary = t.data<float>();
        result = add(t, a);
      },
      "pool");
  const void* result_address = result.data<float>();
  // Eager allocations of the same sizes after the capture: none may land on the graph's blocks,
  // which its replays write (a shared cache would hand `temporary` straight back).
  std::vector<Tensor> eager;
  for (int i = 0; i < 4; ++i) {
    eager.push_back(Tensor::full(shape, 5.0f, dev));
    CHECK(eager.back().data<float>() != temporary);
    CHECK(eager.back().data<float>() != result_address);
  }
  graph.replay("pool");
  graph.replay("pool");
  CHECK(result.data<float>() == result_address);  // the same memory at every replay
  CHECK(same_bits(result.to_vector(), scale(a, 3.0f).to_vector()));
  for (const Tensor& e : eager)
    for (float v : e.to_vector()) REQUIRE(v == 5.0f);  // untouched by the replays
}

TEST_CASE("CudaGraph: the pool's blocks return to the shared cache when the graph goes", "[cuda_graph][cuda]") {
  const Device dev = test::cuda_device();
  const Shape shape{3, 5000};
  const Tensor a = test::random_tensor(shape, 5, dev);
  const void* temporary = nullptr;
  {
    const CudaGraph graph(
        [&] {
          const Tensor t = add(a, a);
          temporary = t.data<float>();
        },
        "gone");
  }
  // The freed block is back in the shared cache: an allocation of the same size reuses it.
  bool reused = false;
  std::vector<Tensor> eager;
  for (int i = 0; i < 4 && !reused; ++i) {
    eager.push_back(Tensor::empty(shape, DType::Float32, dev));
    reused = eager.back().data<float>() == temporary;
  }
  CHECK(reused);
}

TEST_CASE("CudaGraph: reading the device, synchronising or nesting a capture is refused clearly", "[cuda_graph][cuda]") {
  const Device dev = test::cuda_device();
  const Tensor a = test::random_tensor(Shape{8}, 6, dev);
  const auto refused = [&](const std::function<void()>& inside, const std::string& says) {
    try {
      const CudaGraph graph(inside, "refused");
      FAIL("captured " << says << " without complaint");
    } catch (const CudaError& e) {
      const std::string what = e.what();
      INFO(what);
      CHECK(what.find(says) != std::string::npos);
      CHECK(what.find("capture") != std::string::npos);
    }
    CHECK_FALSE(cuda_rt::capturing());  // the failed capture left nothing behind
    CHECK(add(a, a).to_vector() == scale(a, 2.0f).to_vector());  // eager work runs again
  };
  refused([&] { (void)add(a, a).to_vector(); }, "device-to-host copy");
  const Tensor scalar = Tensor::full(Shape{1}, 2.0f, dev);
  refused([&] { (void)scalar.item(); }, "device-to-host copy");
  refused([] { cuda_rt::synchronize(); }, "synchronize()");
  refused([] { cuda_rt::begin_capture(); }, "already in progress");
  // A failed capture also discards what it had recorded: a fresh graph records only its own work.
  Tensor out = test::poisoned(Shape{8}, dev);
  const CudaGraph graph([&] { out.copy_from(a); }, "after");
  graph.replay("after");
  CHECK(same_bits(out.to_vector(), a.to_vector()));
  CHECK_THROWS_AS(cuda_rt::end_capture(), CudaError);
}

TEST_CASE("CudaGraph: a replay for other shapes is refused, naming both", "[cuda_graph][cuda]") {
  const Device dev = test::cuda_device();
  const Tensor a = test::random_tensor(Shape{8}, 7, dev);
  const CudaGraph graph([&] { (void)add(a, a); }, "[1, 1, 572, 572]");
  try {
    graph.replay("[1, 1, 188, 188]");
    FAIL("replayed for other shapes");
  } catch (const ValueError& e) {
    const std::string what = e.what();
    CHECK(what.find("[1, 1, 572, 572]") != std::string::npos);
    CHECK(what.find("[1, 1, 188, 188]") != std::string::npos);
  }
}

TEST_CASE("GraphTrainingStep: replayed steps equal eager steps bit for bit at every precision", "[cuda_graph][cuda]") {
  const Device dev = test::cuda_device();
  const UNetConfig cfg = small_config(4, 2, 3);
  const int64_t tile = valid_tile(cfg, 44);
  const int64_t out = cfg.geometry().output_size(tile);
  const Tensor input = test::random_tensor(Shape{2, 1, tile, tile}, 8, dev);
  std::vector<int32_t> l(static_cast<size_t>(2 * out * out));
  for (size_t i = 0; i < l.size(); ++i) l[i] = static_cast<int32_t>((i * 7919u) % 3u == 0);
  const Tensor labels = Tensor::from_vector(l, Shape{2, out, out}, dev);
  const Tensor weights = test::random_tensor(Shape{2, out, out}, 9, dev, 0.5, 1.5);
  const SgdOptions sgd{0.05f, 0.9f, 0.0f};  // large enough that every step moves every weight
  constexpr int kSteps = 3;

  for (Precision precision : {Precision::FP32, Precision::TF32, Precision::BF16}) {
    INFO(precision_name(precision));
    UNet eager(cfg, dev), captured(cfg, dev);
    eager.set_precision(precision);
    captured.set_precision(precision);
    eager.set_training(true);
    captured.set_training(true);
    std::vector<Tensor> eager_velocities, captured_velocities;
    std::vector<float> eager_losses;
    for (int s = 0; s < kSteps; ++s) {
      eager.zero_grad();
      const Tensor loss = weighted_cross_entropy(eager.forward(input), labels, weights);
      eager_losses.push_back(loss.item());
      loss.backward();
      NoGradGuard no_grad;
      sgd_step(eager.parameters(), eager_velocities, sgd);
    }
    GraphTrainingStep step(captured, input, labels, weights, LossReduction::WeightedMean, sgd, captured_velocities);
    CHECK(step.operations() > 20);
    for (int s = 1; s < kSteps; ++s) step.run();  // the constructor's eager step was the first
    CHECK(step.loss().item() == eager_losses.back());
    const auto ep = eager.parameters(), cp = captured.parameters();
    REQUIRE(ep.size() == cp.size());
    for (size_t i = 0; i < ep.size(); ++i) {
      INFO("parameter " << i);
      CHECK(same_bits(cp[i].to_vector(), ep[i].to_vector()));
      CHECK(same_bits(captured_velocities[i].to_vector(), eager_velocities[i].to_vector()));
    }
  }
}

TEST_CASE("GraphTrainingStep: what a graph cannot capture is refused", "[cuda_graph][cuda]") {
  const Device dev = test::cuda_device();
  UNetConfig cfg = small_config(2, 1, 4);
  const int64_t tile = valid_tile(cfg, 20);
  const int64_t out = cfg.geometry().output_size(tile);
  const Tensor input = test::random_tensor(Shape{1, 1, tile, tile}, 10, dev);
  const Tensor labels = Tensor::zeros(Shape{1, out, out}, DType::Int32, dev);
  const Tensor weights = Tensor::full(Shape{1, out, out}, 1.0f, dev);
  const SgdOptions sgd{0.01f, 0.9f, 0.0f};
  std::vector<Tensor> velocities;

  cfg.dropout = 0.5f;
  UNet with_dropout(cfg, dev);
  with_dropout.set_training(true);
  CHECK_THROWS_AS(GraphTrainingStep(with_dropout, input, labels, weights, LossReduction::WeightedMean, sgd, velocities),
                  ValueError);
  cfg.dropout = 0.0f;
  UNet model(cfg, dev);
  model.set_training(false);
  CHECK_THROWS_AS(GraphTrainingStep(model, input, labels, weights, LossReduction::WeightedMean, sgd, velocities),
                  ValueError);
  model.set_training(true);
  CHECK_THROWS_AS(GraphTrainingStep(model, input.to(Device::cpu()), labels, weights, LossReduction::WeightedMean, sgd,
                                    velocities),
                  DeviceError);
  UNet on_cpu(cfg, Device::cpu());
  on_cpu.set_training(true);
  CHECK_THROWS_AS(GraphTrainingStep(on_cpu, input, labels, weights, LossReduction::WeightedMean, sgd, velocities),
                  DeviceError);
  // A bad label is caught by the eager step before the capture, as an eager step would report it.
  std::vector<int32_t> l(static_cast<size_t>(out * out), 0);
  l[5] = 7;
  CHECK_THROWS_AS(GraphTrainingStep(model, input, Tensor::from_vector(l, Shape{1, out, out}, dev), weights,
                                    LossReduction::WeightedMean, sgd, velocities),
                  ValueError);
  CHECK_FALSE(cuda_rt::capturing());
}
