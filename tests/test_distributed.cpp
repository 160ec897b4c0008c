// tests/test_distributed.cpp — the scale-out layer (core/communicator.h, core/gradient_reducer.h,
// data parallelism in unet/trainer.h).
//
// Two kinds of test cases. Those without the hidden tag run in the normal suite, in one process:
// the launcher's environment, the backward pass's leaf_ready hook, dropout masks of a split batch,
// micro-batches, the reducer with one rank. Those tagged [.mpi] are hidden from the normal run and
// run under `mpirun -np 2 unet_tests "[.mpi]"` (CTest mpi_tests): every rank runs the same test
// cases in the same order, so their collectives match. The central one: 2 ranks with batch 1 take,
// bit for bit, the steps of one process with batch 2 in passes of 1 (on the CPU and, through the
// simulator, on the CUDA device). On a GPU machine, scripts/gpu-check runs them with one rank
// (UNET_COMMUNICATOR=mpi): the CUDA tensors then go through NCCL.
#include <cstdlib>
#include <optional>

#include "core/autograd.h"
#include "core/communicator.h"
#include "core/gradient_reducer.h"
#include "core/philox.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "test_util.h"
#include "unet/trainer.h"

using namespace unet;

namespace {

// Two 64×64 slices of bright squares on a dark ground, labelled as instances.
std::vector<TrainingSlice> square_slices() {
  std::vector<TrainingSlice> out;
  for (uint64_t seed : {11, 12}) {
    Sample s;
    s.name = "squares" + std::to_string(seed);
    s.image = make_image(64, 64, 1, SampleFormat::F32);
    s.labels = make_label_image(64, 64);
    for (int k = 0; k < 5; ++k) {
      const int x0 = static_cast<int>(4 + 48 * philox_uniform01(seed, 2 * k));
      const int y0 = static_cast<int>(4 + 48 * philox_uniform01(seed, 2 * k + 1));
      for (int y = y0; y < y0 + 9; ++y)
        for (int x = x0; x < x0 + 9; ++x)
          if (s.labels.at(x, y) == 0) {
            s.labels.at(x, y) = k + 1;
            s.image.at(x, y) = 0.7f + 0.05f * static_cast<float>(k);
          }
    }
    out.push_back(make_training_slice(s));
  }
  return out;
}

// Small enough to train in the simulator; dropout on, so the masks of split batches are tested.
UNetConfig small_config() {
  UNetConfig c;
  c.base_channels = 2;
  c.depth = 2;
  c.dropout = 0.5f;
  c.init_seed = 7;
  return c;
}

TrainOptions small_options() {
  TrainOptions o;
  o.tile = small_config().geometry().valid_input_at_least(44);
  o.seed = 5;
  o.weight_average = 0.9;
  return o;
}

// Entry b of a batch tensor, as a host vector.
std::vector<float> entry(const Tensor& batch, int64_t b) {
  const std::vector<float> all = batch.to_vector();
  const auto per = static_cast<std::ptrdiff_t>(batch.numel() / batch.dim(0));
  return {all.begin() + b * per, all.begin() + (b + 1) * per};
}

// Sets environment variables for the scope and restores what was there.
class ScopedEnv {
 public:
  void set(const char* name, const char* value) {
    const char* old = std::getenv(name);
    saved_.push_back({name, old ? std::optional<std::string>(old) : std::nullopt});
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it)
      if (it->second)
        setenv(it->first.c_str(), it->second->c_str(), 1);
      else
        unsetenv(it->first.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

}  // namespace

// ---- one process ---------------------------------------------------------------------------------

TEST_CASE("job_environment reads Open MPI, PMI and Slurm variables, and refuses a rank beyond the size", "[distributed]") {
  ScopedEnv env;
  for (const char* v : {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMIX_SIZE", "PMI_RANK", "PMI_SIZE",
                        "SLURM_PROCID", "SLURM_NTASKS"})
    env.set(v, nullptr);
  CHECK(job_environment().size == 1);
  CHECK(job_environment().launcher.empty());
  env.set("SLURM_PROCID", "3");
  env.set("SLURM_NTASKS", "8");
  CHECK(job_environment().rank == 3);
  CHECK(job_environment().size == 8);
  // Open MPI's own variables win over Slurm's (srun starting an Open MPI program sets both).
  env.set("OMPI_COMM_WORLD_RANK", "1");
  env.set("OMPI_COMM_WORLD_SIZE", "2");
  CHECK(job_environment().rank == 1);
  CHECK(job_environment().size == 2);
  CHECK(job_environment().launcher == "OMPI_COMM_WORLD_SIZE=2");
  env.set("OMPI_COMM_WORLD_RANK", "2");
  CHECK_THROWS_AS(job_environment(), DistributedError);
  env.set("OMPI_COMM_WORLD_RANK", "x");  // not a number: this family is skipped
  CHECK(job_environment().size == 8);
}

TEST_CASE("the single-process communicator changes nothing and checks its arguments", "[distributed]") {
  Communicator& one = single_process();
  CHECK(one.rank() == 0);
  CHECK(one.size() == 1);
  std::vector<float> v{1.5f, -2.0f};
  one.sum(v.data(), 2, Device::cpu());
  CHECK(v == std::vector<float>{1.5f, -2.0f});
  double d = 3.25;
  one.sum(&d, 1);
  CHECK(d == 3.25);
  CHECK_THROWS_AS(one.start_sum(v.data(), -1, Device::cpu()), ValueError);
  CHECK_THROWS_AS(one.set_timeout(0.0), ValueError);
  CHECK(rank_prefix(one).empty());
}

TEST_CASE("backward's leaf_ready reports each leaf once, after its last gradient arrived", "[distributed][autograd]") {
  Tensor a = Tensor::from_vector({1.f, 2.f}, Shape{2}).set_requires_grad(true);
  Tensor b = Tensor::from_vector({3.f, 4.f}, Shape{2}).set_requires_grad(true);
  Tensor unused = Tensor::from_vector({5.f}, Shape{1}).set_requires_grad(true);
  // a reaches the loss along two paths (a·b and a·a), so its gradient is complete only after both.
  const Tensor loss = sum(add(mul(a, b), mul(a, a)));
  std::vector<std::pair<const TensorImpl*, std::vector<float>>> reported;
  loss.backward(Tensor::full(Shape{}, 1.0f), [&](const Tensor& leaf) {
    reported.push_back({leaf.impl().get(), leaf.grad().to_vector()});
  });
  REQUIRE(reported.size() == 2);
  CHECK(reported[0].first != reported[1].first);
  for (const auto& [leaf, grad_then] : reported) {
    // What the hook saw is the final gradient: b + 2a for a, a for b.
    if (leaf == a.impl().get()) CHECK(grad_then == std::vector<float>{5.f, 8.f});
    if (leaf == b.impl().get()) CHECK(grad_then == std::vector<float>{1.f, 2.f});
    CHECK(leaf != unused.impl().get());
  }
  CHECK(a.grad().to_vector() == std::vector<float>{5.f, 8.f});
}

TEST_CASE("UNet::forward with first_entry masks its entries as the whole batch does", "[distributed][model]") {
  UNet model(small_config(), Device::cpu());
  model.set_training(true);
  const int64_t tile = small_options().tile;
  const Tensor batch = test::random_tensor(Shape{2, 1, tile, tile}, 31);
  const Tensor whole = model.forward(batch, 99);
  Tensor second = Tensor::empty(Shape{1, 1, tile, tile});
  second.copy_from(Tensor::from_vector(entry(batch, 1), Shape{1, 1, tile, tile}));
  CHECK(model.forward(second, 99, 1).to_vector() == entry(whole, 1));
  // Without the offset it would get entry 0's masks: a different result (dropout is on).
  CHECK(model.forward(second, 99, 0).to_vector() != entry(whole, 1));
  CHECK_THROWS_AS(model.forward(second, 99, -1), ValueError);
}

TEST_CASE("micro-batches: the same tiles and masks as one pass, the same step up to the order of the batch sums",
          "[distributed][trainer]") {
  TrainOptions one_pass = small_options();
  one_pass.batch = 2;
  TrainOptions passes = one_pass;
  passes.micro_batch = 1;
  UNet m1(small_config(), Device::cpu()), m2(small_config(), Device::cpu());
  Trainer t1(m1, square_slices(), one_pass), t2(m2, square_slices(), passes);
  CHECK(t1.make_batch(0).input.to_vector() == t2.make_batch(0).input.to_vector());
  for (int step = 0; step < 2; ++step) {
    const float l1 = t1.step().loss, l2 = t2.step().loss;
    // The loss is a sum over 2 tiles' pixels, in double in both; the normaliser is the same sum
    // of weights: they agree to float rounding.
    CHECK(std::abs(l1 - l2) <= 4 * test::kEps32 * std::abs(l1));
  }
  // The gradients differ only by the order of the float32 sums over the batch (the kernels sum
  // both tiles at once, the passes add two per-tile sums): relative differences of a few float32
  // ulps (~1e-7) of each gradient, which two steps of lr 0.001 turn into weight differences of
  // about 1e-3 · 1e-7 · |g| (3.3e-9 at most, measured, for train_em's tiny model after 3 steps).
  // A wrong tile, dropout mask or normaliser changes the gradient itself, by O(|g|), and the
  // weights by ~1e-3 · |g| per step: 1e-6 + 1e-5·|w| sits between the two, ~1e3 from each (the
  // dropout-offset mutant fails it).
  const auto p1 = m1.parameters(), p2 = m2.parameters();
  for (size_t i = 0; i < p1.size(); ++i) test::require_close(p2[i], p1[i], 1e-6, 1e-5, "parameter " + std::to_string(i));
  CHECK_THROWS_AS(Trainer(m1, square_slices(), [] { TrainOptions o = small_options(); o.batch = 3; o.micro_batch = 2; return o; }()),
                  ValueError);
}

TEST_CASE("GradientReducer with one rank: buckets in reverse order, gradients unchanged", "[distributed]") {
  std::vector<Tensor> params;
  for (int i = 0; i < 5; ++i) params.push_back(test::random_tensor(Shape{1000}, 40 + i).set_requires_grad(true));
  GradientReducer reducer(params, single_process(), 8000);  // 2 parameters per bucket
  Tensor loss = sum(mul(params[0], params[0]));
  for (int i = 1; i < 5; ++i) loss = add(loss, sum(mul(params[i], params[i])));
  loss.backward(Tensor::full(Shape{}, 1.0f), reducer.hook());
  reducer.finish();
  CHECK(reducer.last_step().buckets == 3);
  CHECK(reducer.last_step().bytes == 5 * 1000 * 4);
  CHECK(reducer.last_step().started_in_backward == 3);
  for (const Tensor& p : params) CHECK(p.grad().to_vector() == mul(p, Tensor::full(p.shape(), 2.0f)).to_vector());
  CHECK_THROWS_AS(reducer.finish(), ValueError);  // no pass to finish
  CHECK(GradientReducer::default_bucket_bytes(124'000'000) == 15'500'000);
  CHECK(GradientReducer::default_bucket_bytes(100) == 256 << 10);
}

// ---- a job (mpirun -np 2 unet_tests "[.mpi]"; on one GPU: UNET_COMMUNICATOR=mpi, one rank) ------

TEST_CASE("mpi: sums of floats on the CPU and the CUDA device, doubles, a barrier", "[.mpi]") {
  Communicator& job = world();
  REQUIRE_FALSE(job.is_single_process());
  const float r = static_cast<float>(job.rank()), n = static_cast<float>(job.size());
  for (Device device : {Device::cpu(), test::cuda_device()}) {
    // 3 + 2^20 values, exact in float so the sum is exact (the GPU build: through NCCL).
    std::vector<float> host(3 + (1 << 20));
    for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i % 1000) + 0.5f * r;
    Tensor t = Tensor::from_vector(host, Shape{static_cast<int64_t>(host.size())}, device);
    auto pending = job.start_sum(t.data<float>(), t.numel(), device);
    pending->wait();
    CHECK(pending->test());
    const std::vector<float> got = t.to_vector();
    bool all = true;
    for (size_t i = 0; i < got.size(); ++i)
      all = all && got[i] == n * static_cast<float>(i % 1000) + 0.25f * n * (n - 1.0f);
    CHECK(all);
    job.sum(t.data<float>(), 0, device);  // nothing to sum: fine
  }
  double d[2] = {1.0 + job.rank(), job.is_root() ? 0.25 : 0.0};
  job.sum(d, 2);
  CHECK(d[0] == n * (n + 1.0f) / 2.0f);
  CHECK(d[1] == 0.25);
  job.barrier();
}

TEST_CASE("mpi: GradientReducer sums every bucket, started during the backward pass or after it", "[.mpi]") {
  Communicator& job = world();
  const float n = static_cast<float>(job.size());
  for (Device device : {Device::cpu(), test::cuda_device()})
    for (bool overlap : {true, false}) {
      std::vector<Tensor> params;
      for (int i = 0; i < 4; ++i)
        params.push_back(Tensor::full(Shape{300 + i}, 1.0f + static_cast<float>(job.rank()), device).set_requires_grad(true));
      GradientReducer reducer(params, job, 700 * 4, overlap);  // buckets {3, 2}, {1, 0}
      Tensor loss = sum(mul(params[0], params[0]));
      for (int i = 1; i < 4; ++i) loss = add(loss, sum(mul(params[i], params[i])));
      loss.backward(Tensor::full(Shape{}, 1.0f, device), reducer.hook());
      reducer.finish();
      CHECK(reducer.last_step().buckets == 2);
      CHECK(reducer.last_step().started_in_backward == (overlap ? 2 : 0));
      // d(p²)/dp = 2p = 2 (r + 1) on rank r, summed over the ranks: n (n + 1).
      for (const Tensor& p : params) CHECK(p.grad().to_vector() == std::vector<float>(p.numel(), n * (n + 1.0f)));
    }
}

TEST_CASE("mpi: N ranks with batch 1 take the steps of 1 process with batch N in passes of 1, bit for bit", "[.mpi]") {
  Communicator& job = world();
  // Exact for 1 and 2 ranks (each sum is one addition); with more, MPI chooses the order.
  REQUIRE(job.size() <= 2);
  for (Device device : {Device::cpu(), test::cuda_device()}) {
    INFO("device " << device.str() << ", " << job.describe());
    const TrainOptions per_rank = small_options();  // batch 1
    TrainOptions single = per_rank;
    single.batch = job.size();
    single.micro_batch = 1;
    UNet ranks_model(small_config(), device), single_model(small_config(), device);
    Trainer ranks(ranks_model, square_slices(), per_rank, job), reference(single_model, square_slices(), single);
    CHECK(ranks.global_batch() == job.size());
    // Rank r draws entry r of the global batch.
    CHECK(ranks.make_batch(1).input.to_vector() == entry(reference.make_batch(1).input, job.rank()));
    for (int step = 0; step < 3; ++step) CHECK(ranks.step().loss == reference.step().loss);
    const auto a = ranks_model.parameters(), b = single_model.parameters();
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].to_vector() == b[i].to_vector());
    {
      const auto avg_a = ranks.averaged_weights();
      const auto avg_b = reference.averaged_weights();
      for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].to_vector() == b[i].to_vector());
    }
    const GradientReducer::Stats* c = ranks.communication();
    REQUIRE(c != nullptr);
    CHECK(c->bytes == ranks_model.parameter_count() * 4);
    CHECK(c->started_in_backward == c->buckets);
  }
}

TEST_CASE("mpi: resume continues on as many ranks and refuses another count", "[.mpi]") {
  Communicator& job = world();
  const test::TempDir tmp("unet_mpi_resume");  // one per rank: every rank writes and reads its own copy
  const std::string path = tmp.file("ckpt.safetensors");
  UNet m(small_config(), Device::cpu()), resumed_model(small_config(), Device::cpu());
  Trainer t(m, square_slices(), small_options(), job);
  t.step();
  t.step();
  t.save_checkpoint(path);  // (every rank: identical weights; programs write on rank 0 only)
  t.step();
  Trainer resumed(resumed_model, square_slices(), small_options(), job);
  resumed.resume(path);
  CHECK(resumed.steps_done() == 2);
  resumed.step();
  const auto a = m.parameters(), b = resumed_model.parameters();
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].to_vector() == b[i].to_vector());
  if (job.size() == 2) {
    UNet single_model(small_config(), Device::cpu());
    Trainer single(single_model, square_slices(), small_options());
    CHECK_THROWS_WITH(single.resume(path), Catch::Contains("trained on 2 ranks but this run has 1 process") &&
                                               Catch::Contains("mpirun -np 2"));
  }
}
