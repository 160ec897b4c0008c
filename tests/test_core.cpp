// tests/test_core.cpp — Tensor handles and copies, devices, dtypes, the allocator, parallel_for
// and the bad-input errors of the core.
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

#include "core/allocator.h"
#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/tensor.h"
#include "test_util.h"

using namespace unet;
using unet::test::cuda_device;

TEST_CASE("Tensor copies are handles, data is copied only explicitly", "[core][tensor]") {
  Tensor a = Tensor::from_vector({1.f, 2.f, 3.f, 4.f}, Shape{2, 2});
  Tensor b = a;  // shares storage
  b.data<float>()[0] = 42.f;
  CHECK(a.data<float>()[0] == 42.f);
  Tensor c = a.clone();  // deep copy
  c.data<float>()[1] = -1.f;
  CHECK(a.data<float>()[1] == 2.f);
  CHECK(a.to(Device::cpu()).impl() == a.impl());  // same device: no copy
  Tensor moved = std::move(b);
  CHECK(moved.impl() == a.impl());
}

TEST_CASE("Tensors over borrowed memory and entries of the first axis share it, never copy", "[core][tensor]") {
  std::vector<float> memory = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  auto owner = std::make_shared<int>(0);
  std::weak_ptr<int> watch = owner;
  Tensor page;
  {
    Tensor borrowed = Tensor::from_external(memory.data(), Shape{3, 2, 2}, DType::Float32, Device::cpu(), owner);
    owner.reset();
    CHECK(borrowed.data<float>() == memory.data());  // the caller's memory, not a copy
    page = borrowed.entry(1);
  }
  // The entry keeps the borrowed storage (and so its owner) alive after the stack's handle went.
  CHECK_FALSE(watch.expired());
  CHECK(page.shape() == Shape{2, 2});
  CHECK(page.data<float>() == memory.data() + 4);
  CHECK(page.to_vector() == std::vector<float>{4, 5, 6, 7});
  page.data<float>()[0] = -1;  // writes reach the caller's memory
  CHECK(memory[4] == -1);
  page = Tensor();
  CHECK(watch.expired());      // released with the last tensor; the memory itself is not freed here
  CHECK(memory[11] == 11);
  // Entries of an owned tensor: the same sharing, and index checks.
  Tensor stack = Tensor::from_vector(memory, Shape{3, 4});
  CHECK(stack.entry(2).data<float>() == stack.data<float>() + 8);
  CHECK_THROWS_AS(stack.entry(3), ShapeError);
  CHECK_THROWS_AS(stack.entry(-1), ShapeError);
  CHECK_THROWS_AS(Tensor::from_external(nullptr, Shape{2}, DType::Float32, Device::cpu(), nullptr), ValueError);
  CHECK_THROWS_WITH(Tensor::from_external(reinterpret_cast<char*>(memory.data()) + 2, Shape{2}, DType::Float32,
                                          Device::cpu(), nullptr),
                    Catch::Contains("not aligned"));
}

TEST_CASE("resolve_device: auto never picks the simulator, other spellings as parse_device", "[core][device]") {
  CHECK(resolve_device("cpu") == Device::cpu());
  if (cuda_rt::is_simulated()) CHECK(resolve_device("auto") == Device::cpu());
  else if (cuda_available()) CHECK(resolve_device("auto").is_cuda());
  CHECK_THROWS_WITH(resolve_device("gpu"), Catch::Contains("auto, cpu, cuda or cuda:N"));
  CHECK_THROWS_WITH(parse_device("auto"), Catch::Contains("expected cpu, cuda or cuda:N"));
}

TEST_CASE("Tensor round trip through the CUDA device keeps every bit", "[core][tensor][cuda]") {
  const auto values = test::random_values(1000, 7);
  Tensor host = Tensor::from_vector(values, Shape{10, 100});
  Tensor dev = host.to(cuda_device());
  CHECK(dev.device().is_cuda());
  CHECK(dev.impl() != host.impl());
  CHECK(dev.to_vector() == values);
  CHECK(dev.to_host().to_vector() == values);
  Tensor dev2 = Tensor::zeros(Shape{10, 100}, DType::Float32, cuda_device());
  dev2.copy_from(dev);
  CHECK(dev2.to_vector() == values);
  Tensor ints = Tensor::from_vector(std::vector<int32_t>{3, -1, 7}, Shape{3}, cuda_device());
  CHECK(ints.to_int_vector() == std::vector<int32_t>{3, -1, 7});
}

TEST_CASE("Tensor creation helpers and shapes", "[core][tensor]") {
  CHECK(Tensor::zeros(Shape{2, 3}).to_vector() == std::vector<float>(6, 0.f));
  CHECK(Tensor::full(Shape{4}, 2.5f).to_vector() == std::vector<float>(4, 2.5f));
  CHECK(Tensor::full(Shape{4}, 2.5f, cuda_device()).to_vector() == std::vector<float>(4, 2.5f));
  CHECK(Shape{1, 3, 5, 7}.numel() == 105);
  CHECK(Shape{}.numel() == 1);
  CHECK(Shape{2, 0}.numel() == 0);
  CHECK(Shape{1, 3, 5, 7}.str() == "[1, 3, 5, 7]");
  CHECK(Shape{1, 3, 5, 7}[-1] == 7);
  Tensor t = Tensor::from_vector({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, Shape{2, 3});
  CHECK(t.view(Shape{3, 2}).shape() == Shape{3, 2});
  CHECK(t.str() == "float32[2, 3] on cpu");
}

TEST_CASE("Core rejects bad input with typed, descriptive errors", "[core][errors]") {
  CHECK_THROWS_AS(Shape({1, 2, 3, 4, 5}), ShapeError);
  CHECK_THROWS_AS(Shape({2, -1}), ShapeError);
  CHECK_THROWS_AS(Tensor::from_vector({1.f, 2.f}, Shape{3}), ShapeError);
  Tensor t = Tensor::zeros(Shape{2, 3});
  CHECK_THROWS_AS(t.view(Shape{4, 2}), ShapeError);
  CHECK_THROWS_WITH(t.view(Shape{4, 2}), Catch::Contains("[2, 3]") && Catch::Contains("[4, 2]"));
  Tensor labels = Tensor::zeros(Shape{4}, DType::Int32);
  CHECK_THROWS_AS(labels.data<float>(), DTypeError);
  CHECK_THROWS_AS(labels.to_vector(), DTypeError);
  CHECK_THROWS_AS(labels.set_requires_grad(true), DTypeError);
  CHECK_THROWS_AS(Tensor().shape(), ValueError);
  CHECK_THROWS_AS(t.item(), ShapeError);
  Tensor other = Tensor::zeros(Shape{3, 2});
  CHECK_THROWS_WITH(check_same_shape(t, other, "op"), Catch::Contains("[2, 3]") && Catch::Contains("[3, 2]"));
  Tensor dev = Tensor::zeros(Shape{2, 3}, DType::Float32, cuda_device());
  CHECK_THROWS_AS(check_same_device(t, dev, "op"), DeviceError);
  CHECK_THROWS_WITH(check_same_device(t, dev, "op"), Catch::Contains("cpu") && Catch::Contains("cuda:0"));
  CHECK_THROWS_AS(parse_device("tpu"), ValueError);
  CHECK(parse_device("cpu") == Device::cpu());
  CHECK(parse_device("cuda:0") == cuda_device());
}

TEST_CASE("Asking for CUDA without a GPU says so and points to the CPU backend", "[core][errors]") {
  if (!cuda_rt::is_simulated()) {
    // On a real GPU machine the no-GPU path cannot be provoked; the sim build covers it.
    SUCCEED("GPU build: a GPU is present");
    return;
  }
  cuda_rt::simulate_no_gpu(true);
  CHECK_FALSE(cuda_available());
  CHECK_THROWS_AS(Device::cuda(), DeviceError);
  CHECK_THROWS_WITH(Device::cuda(), Catch::Contains("no GPU") && Catch::Contains("CPU backend"));
  CHECK_THROWS_AS(parse_device("cuda"), DeviceError);
  cuda_rt::simulate_no_gpu(false);
  CHECK(cuda_available());
  CHECK_THROWS_AS(Device::cuda(5), DeviceError);
}

TEST_CASE("The CUDA caching allocator reuses freed blocks and tracks use and peak", "[core][allocator]") {
  cuda_empty_cache();
  const MemoryStats before = cuda_memory_stats();
  {
    Tensor a = Tensor::empty(Shape{1000}, DType::Float32, cuda_device());  // 4000 B -> 4096 B block
    const MemoryStats during = cuda_memory_stats();
    CHECK(during.bytes_in_use == before.bytes_in_use + 4096);
    CHECK(during.peak_bytes >= during.bytes_in_use);
    CHECK(during.device_allocations == before.device_allocations + 1);
  }
  const MemoryStats after_free = cuda_memory_stats();
  CHECK(after_free.bytes_in_use == before.bytes_in_use);
  CHECK(after_free.cached_bytes >= 4096);
  {
    Tensor b = Tensor::empty(Shape{900}, DType::Float32, cuda_device());  // fits the cached block
    CHECK(cuda_memory_stats().device_allocations == after_free.device_allocations);
  }
  cuda_empty_cache();
  CHECK(cuda_memory_stats().cached_bytes == 0);
}

TEST_CASE("The CPU allocator caches large blocks only, aligned, and reuses them", "[core][allocator]") {
  cpu_empty_cache();
  const MemoryStats before = cpu_cached_memory_stats();
  {
    Tensor small = Tensor::empty(Shape{1000});  // 4 KB: straight from malloc, not counted
    CHECK(reinterpret_cast<uintptr_t>(small.data<float>()) % 64 == 0);
    CHECK(cpu_cached_memory_stats().bytes_in_use == before.bytes_in_use);
    Tensor large = Tensor::empty(Shape{100000});  // 400000 B -> 400384 B block
    CHECK(reinterpret_cast<uintptr_t>(large.data<float>()) % 64 == 0);
    const MemoryStats during = cpu_cached_memory_stats();
    CHECK(during.bytes_in_use == before.bytes_in_use + 400384);
    CHECK(during.device_allocations == before.device_allocations + 1);
  }
  const MemoryStats after_free = cpu_cached_memory_stats();
  CHECK(after_free.bytes_in_use == before.bytes_in_use);
  CHECK(after_free.cached_bytes >= 400384);
  {
    Tensor again = Tensor::empty(Shape{90000});  // fits the cached block: no new allocation
    CHECK(cpu_cached_memory_stats().device_allocations == after_free.device_allocations);
    again.fill(1.0f);
    CHECK(again.to_vector()[89999] == 1.0f);
  }
  cpu_empty_cache();
  CHECK(cpu_cached_memory_stats().cached_bytes == 0);
}

TEST_CASE("parallel_for covers every index exactly once and rethrows errors", "[core][parallel]") {
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    CHECK(num_threads() == threads);
    for (int64_t n : {0, 1, 7, 1000, 100003}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      parallel_for(0, n, 3, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
      bool all_once = true;
      for (auto& h : hits) all_once &= h.load() == 1;
      CHECK(all_once);
    }
    CHECK_THROWS_AS(parallel_for(0, 100, 1,
                                 [](int64_t b, int64_t) {
                                   if (b >= 0) throw ValueError("boom");
                                 }),
                    ValueError);
  }
  set_num_threads(0);
  CHECK(num_threads() >= 1);
  CHECK_THROWS_AS(set_num_threads(-1), ValueError);
}

TEST_CASE("parallel_for hands over back-to-back regions and wakes a sleeping pool", "[core][parallel]") {
  // The pool polls for a while after a region and then sleeps (core/parallel.cpp): regions that
  // follow each other at once take the polling path, regions after a pause the sleeping one. A
  // lost hand-over in either path hangs here (CTest's timeout) or miscounts.
  for (int threads : {2, 3}) {
    set_num_threads(threads);
    std::atomic<int64_t> sum{0};
    for (int region = 0; region < 20000; ++region)
      parallel_for(0, 8, 1, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
    CHECK(sum.load() == 20000 * 8);
    for (int region = 0; region < 5; ++region) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // well past the polling budget
      std::vector<std::atomic<int>> hits(64);
      parallel_for(0, 64, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
      bool all_once = true;
      for (auto& h : hits) all_once &= h.load() == 1;
      CHECK(all_once);
    }
  }
  set_num_threads(0);
}

TEST_CASE("Nested parallel_for runs inline instead of deadlocking", "[core][parallel]") {
  set_num_threads(2);
  std::vector<std::atomic<int>> hits(64 * 64);
  parallel_for(0, 64, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      parallel_for(0, 64, 1, [&](int64_t jb, int64_t je) {
        for (int64_t j = jb; j < je; ++j) hits[i * 64 + j].fetch_add(1);
      });
  });
  bool all_once = true;
  for (auto& h : hits) all_once &= h.load() == 1;
  CHECK(all_once);
  set_num_threads(0);
}
