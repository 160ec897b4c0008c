// tests/test_sim_launch.cpp — launches through the CUDA simulator: 3-D grids and blocks index
// every thread once, big grids cover every element, empty grids do nothing, block-wide votes
// (__syncthreads_count/and/or) over 1024 threads, and per-thread kernel parameters.
// Simulator build only (the kernels are plain C++ there).
#include <catch2/catch.hpp>

#if defined(UNET_CUDA_SIM)

#include <stdexcept>
#include <vector>

#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/sim/runtime.h"

namespace {

using unet::sim::Schedule;
using unet::sim::ScheduleConfig;
using unet::sim::ScheduleGuard;

const std::vector<ScheduleConfig> kSchedules = {
    {Schedule::InOrder, 0}, {Schedule::Reversed, 0}, {Schedule::Random, 1}, {Schedule::Random, 2}};

}  // namespace

namespace {

struct Index {
  unsigned block[3], thread[3], block_dim[3], grid_dim[3];
};

__global__ void record_indices(Index* out) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  Index& r = out[block * (blockDim.x * blockDim.y * blockDim.z) + thread];
  r = Index{{blockIdx.x, blockIdx.y, blockIdx.z},
            {threadIdx.x, threadIdx.y, threadIdx.z},
            {blockDim.x, blockDim.y, blockDim.z},
            {gridDim.x, gridDim.y, gridDim.z}};
}

__global__ void fill_iota(int* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = i + 1;
}

__global__ void must_not_run(int* flag) {
  *flag = 1;
  throw std::logic_error("a block of an empty grid ran");
}

}  // namespace

TEST_CASE("3-D grids and blocks index every thread exactly once", "[sim]") {
  const dim3 grid(3, 4, 5), block(4, 3, 2);
  const int n = 3 * 4 * 5 * 4 * 3 * 2;
  for (const ScheduleConfig& schedule : kSchedules) {
    ScheduleGuard guard(schedule);
    std::vector<Index> out(n, Index{{9, 9, 9}, {9, 9, 9}, {0, 0, 0}, {0, 0, 0}});
    unet::kern::launch(record_indices, grid, block, 0, out.data());
    int k = 0;
    for (unsigned bz = 0; bz < 5; ++bz)
      for (unsigned by = 0; by < 4; ++by)
        for (unsigned bx = 0; bx < 3; ++bx)
          for (unsigned tz = 0; tz < 2; ++tz)
            for (unsigned ty = 0; ty < 3; ++ty)
              for (unsigned tx = 0; tx < 4; ++tx, ++k) {
                const Index& r = out[k];
                INFO("slot " << k);
                REQUIRE((r.block[0] == bx && r.block[1] == by && r.block[2] == bz));
                REQUIRE((r.thread[0] == tx && r.thread[1] == ty && r.thread[2] == tz));
                REQUIRE((r.block_dim[0] == 4 && r.block_dim[1] == 3 && r.block_dim[2] == 2));
                REQUIRE((r.grid_dim[0] == 3 && r.grid_dim[1] == 4 && r.grid_dim[2] == 5));
              }
  }
}

TEST_CASE("a grid of many blocks covers every element once", "[sim]") {
  const int n = 1'000'003;
  std::vector<int> out(n, 0);
  unet::kern::launch(fill_iota, unet::kern::ceil_div(n, 64), 64, 0, out.data(), n);
  int wrong = 0;
  for (int i = 0; i < n; ++i) wrong += out[i] != i + 1;
  CHECK(wrong == 0);
}

TEST_CASE("an empty grid does nothing", "[sim]") {
  int flag = 0;
  CHECK_NOTHROW(unet::kern::launch(must_not_run, 0, 128, 0, &flag));
  CHECK_NOTHROW(unet::kern::launch(must_not_run, dim3(4, 0, 2), 128, 0, &flag));
  CHECK_NOTHROW(unet::kern::launch(must_not_run, unet::kern::ceil_div(0, 256), 256, 0, &flag));
  CHECK(flag == 0);
}

namespace {

__global__ void barrier_votes(int* out) {
  const int t = threadIdx.x;
  out[0 * blockDim.x + t] = __syncthreads_count(t % 3 == 0);
  out[1 * blockDim.x + t] = __syncthreads_and(t < 2000);
  out[2 * blockDim.x + t] = __syncthreads_and(t != 17);
  out[3 * blockDim.x + t] = __syncthreads_or(t == 17);
  out[4 * blockDim.x + t] = __syncthreads_or(t < 0);
}

struct Params {
  int n;
  float scale;
};

// Each thread gets its own copy of the parameters, as on the GPU.
__global__ void private_params(Params p, int* out) {
  p.n += static_cast<int>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = p.n;
}

}  // namespace

TEST_CASE("__syncthreads_count/and/or reduce over the whole block", "[sim]") {
  const int threads = 1024;
  std::vector<int> out(5 * threads, -1);
  unet::kern::launch(barrier_votes, 1, threads, 0, out.data());
  for (int t = 0; t < threads; ++t) {
    INFO("thread " << t);
    REQUIRE(out[t] == (threads + 2) / 3);
    REQUIRE(out[threads + t] == 1);
    REQUIRE(out[2 * threads + t] == 0);
    REQUIRE(out[3 * threads + t] == 1);
    REQUIRE(out[4 * threads + t] == 0);
  }
}

TEST_CASE("kernel parameters are converted once and private to each thread", "[sim]") {
  std::vector<int> out(64, -1);
  const Params p{100, 2.0f};
  unet::kern::launch(private_params, 1, 64, 0, p, out.data());
  for (int t = 0; t < 64; ++t) CHECK(out[t] == 100 + t);
}

#endif  // UNET_CUDA_SIM
