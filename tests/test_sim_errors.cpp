// tests/test_sim_errors.cpp — the CUDA simulator reports kernel bugs as unet::KernelError with
// the file:line of the barrier / collective and the block and thread, instead of hanging: a
// barrier not every thread reaches, divergent warp collectives, and exceptions thrown in device
// code. Also: invalid launch configurations, the schedule setting, and that a failed launch
// leaves the simulator usable. Simulator build only.
#include <catch2/catch.hpp>

#if defined(UNET_CUDA_SIM)

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "test_util.h"
#include "kernels/sim/runtime.h"

using Catch::Matchers::Contains;

namespace {

std::string here(int line) { return "test_sim_errors.cpp:" + std::to_string(line); }

constexpr int kExitBarrierLine = __LINE__ + 3;
__global__ void exit_before_barrier(int* out) {
  if (threadIdx.x >= 40) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

constexpr int kBarrierALine = __LINE__ + 4;
constexpr int kBarrierBLine = __LINE__ + 5;
__global__ void two_barriers(int* out) {
  if (threadIdx.x < 32) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

constexpr int kHalfWarpShuffleLine = __LINE__ + 4;
__global__ void half_warp_shuffle(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x % 32 < 16) {
    v = __shfl_down_sync(0xFFFFFFFFu, v, 1);
  }
  // One element per thread of the grid: the blocks run on several OS threads and must not race.
  out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

constexpr int kShuffleALine = __LINE__ + 5;
constexpr int kShuffleBLine = __LINE__ + 6;
__global__ void different_shuffles(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x < 16) {
    v = __shfl_xor_sync(0xFFFFFFFFu, v, 1);
  } else {
    v = __shfl_xor_sync(0xFFFFFFFFu, v, 2);
  }
  out[threadIdx.x] = v;
}

constexpr int kBallotLine = __LINE__ + 4;
__global__ void ballot_vs_barrier(unsigned* out) {
  unsigned b = 0;
  if (threadIdx.x != 7) {
    b = __ballot_sync(0xFFFFFFFFu, threadIdx.x % 2);
  }
  __syncthreads();
  out[threadIdx.x] = b;
}

constexpr int kMaskLine = __LINE__ + 3;
__global__ void lane_outside_mask(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x == 3) v = __shfl_sync(0x1u, v, 0);  // lane 3 is not in mask 0x1
  out[threadIdx.x] = v;
}

constexpr int kReadOutsideLine = __LINE__ + 4;
__global__ void read_outside_mask(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x < 16) {
    v = __shfl_down_sync(0x0000FFFFu, v, 1);  // lane 15 reads lane 16, outside the mask
  }
  out[threadIdx.x] = v;
}

__global__ void bad_width(int* out) { out[threadIdx.x] = __shfl_xor_sync(0xFFFFFFFFu, 1, 1, 12); }

__global__ void full_mask_in_partial_warp(int* out) {
  out[threadIdx.x] = __shfl_xor_sync(0xFFFFFFFFu, static_cast<int>(threadIdx.x), 1);
}

__device__ float checked_log(float x) {
  if (!(x > 0.0f)) throw std::domain_error("checked_log: x = " + std::to_string(x) + " must be > 0");
  return logf(x);
}

__global__ void log_all(const float* in, float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = checked_log(in[i]);
}

// Counts destructor runs, to prove that fibers stuck at a barrier are unwound on an error.
struct Sentinel {
  std::atomic<int>* destroyed;
  ~Sentinel() { destroyed->fetch_add(1); }
};

__global__ void throw_after_barrier(std::atomic<int>* destroyed) {
  Sentinel sentinel{destroyed};
  __syncthreads();
  if (threadIdx.x == 70) throw std::runtime_error("thread 70 gives up");
  __syncthreads();
}

__global__ void add_one(int* data) { data[blockIdx.x * blockDim.x + threadIdx.x] += 1; }

}  // namespace

TEST_CASE("a barrier that some threads exit before is reported with file:line", "[sim]") {
  std::vector<int> out(64, 0);
  REQUIRE_THROWS_AS(UNET_LAUNCH(exit_before_barrier, 1, 64, 0, out.data()), unet::KernelError);
  for (auto schedule : {unet::sim::Schedule::InOrder, unet::sim::Schedule::Reversed, unet::sim::Schedule::Random}) {
    unet::sim::ScheduleGuard guard(schedule, 5);
    REQUIRE_THROWS_WITH(UNET_LAUNCH(exit_before_barrier, 1, 64, 0, out.data()),
                        Contains("__syncthreads() at") && Contains(here(kExitBarrierLine)) &&
                            Contains("block (0,0,0)") && Contains("`exit_before_barrier`") &&
                            Contains("40 of 64 threads wait there") &&
                            Contains("24 threads exited without reaching it: thread (40,0,0)"));
  }
}

TEST_CASE("threads waiting at different barriers are reported with both lines", "[sim]") {
  std::vector<int> out(64, 0);
  REQUIRE_THROWS_WITH(unet::kern::launch(two_barriers, dim3(2, 1, 1), 64, 0, out.data()),
                      Contains("wait at different barriers") && Contains("block (0,0,0)") &&
                          Contains("32 threads at __syncthreads() at ") && Contains(here(kBarrierALine)) &&
                          Contains(here(kBarrierBLine)) &&
                          Contains("thread (32,0,0)"));
}

TEST_CASE("a shuffle that not every lane of its mask reaches is reported", "[sim]") {
  std::vector<int> out(3 * 64, 0);
  REQUIRE_THROWS_WITH(
      unet::kern::launch(half_warp_shuffle, 3, 64, 0, out.data()),
      Contains("divergent warp collective: __shfl_down_sync() at ") && Contains(here(kHalfWarpShuffleLine)) &&
          Contains("mask 0xffffffff in warp 0 in block (0,0,0)") && Contains("lanes 0-15 arrived") &&
          Contains("lane 16 (thread (16,0,0)) exited"));
}

TEST_CASE("lanes at different shuffles are reported with both lines", "[sim]") {
  std::vector<int> out(32, 0);
  REQUIRE_THROWS_WITH(unet::kern::launch(different_shuffles, 1, 32, 0, out.data()),
                      Contains("divergent warp collective: __shfl_xor_sync() at ") && Contains(here(kShuffleALine)) &&
                          Contains("(thread (16,0,0)) waits at __shfl_xor_sync() at ") && Contains(here(kShuffleBLine)));
}

TEST_CASE("a lane that skips a ballot and waits at a barrier is reported", "[sim]") {
  std::vector<unsigned> out(32, 0);
  REQUIRE_THROWS_WITH(unet::kern::launch(ballot_vs_barrier, 1, 32, 0, out.data()),
                      Contains("divergent warp collective: __ballot_sync() at ") && Contains(here(kBallotLine)) &&
                          Contains("lane 7 (thread (7,0,0)) waits at __syncthreads()"));
}

TEST_CASE("misused warp masks and widths are reported at once", "[sim]") {
  std::vector<int> out(64, 0);
  CHECK_THROWS_WITH(unet::kern::launch(lane_outside_mask, 1, 32, 0, out.data()),
                    Contains("__shfl_sync() with mask 0x1 called by lane 3, which the mask does not name") &&
                        Contains(here(kMaskLine)) && Contains("thread (3,0,0)"));
  CHECK_THROWS_WITH(unet::kern::launch(read_outside_mask, 1, 32, 0, out.data()),
                    Contains("lane 15 reads lane 16, which the mask does not name") &&
                        Contains(here(kReadOutsideLine)) && Contains("thread (15,0,0)"));
  CHECK_THROWS_WITH(unet::kern::launch(bad_width, 1, 32, 0, out.data()),
                    Contains("width 12: the width must be a power of two"));
  // A block of 48 threads: warp 1 has lanes 0-15 only, so a full mask names lanes that do not exist.
  CHECK_THROWS_WITH(unet::kern::launch(full_mask_in_partial_warp, 1, 48, 0, out.data()),
                    Contains("in warp 1") && Contains("lanes 0-15 arrived") &&
                        Contains("lane 16 does not exist (the block has 48 threads)"));
}

TEST_CASE("an exception thrown in device code becomes a KernelError naming block and thread", "[sim]") {
  const int n = 1000;
  std::vector<float> in(n, 2.0f), out(n, 0.0f);
  in[7 * 128 + 9] = -1.0f;  // block 7, thread 9
  in[3 * 128 + 5] = 0.0f;   // block 3, thread 5: the lowest failing block is the one reported
  unet::test::ThreadCountGuard restore_threads;
  for (int threads : {1, 4}) {
    unet::set_num_threads(threads);
    CHECK_THROWS_WITH(UNET_LAUNCH(log_all, unet::kern::ceil_div(n, 128), 128, 0, in.data(), out.data(), n),
                        Contains("exception thrown inside the kernel by thread (5,0,0) in block (3,0,0)") &&
                            Contains("`log_all`") && Contains("checked_log: x = 0.000000 must be > 0") &&
                            Contains("test_sim_errors.cpp:"));
  }
}

TEST_CASE("on an error, fibers waiting at a barrier are unwound and the simulator stays usable", "[sim]") {
  std::atomic<int> destroyed{0};
  REQUIRE_THROWS_WITH(unet::kern::launch(throw_after_barrier, 1, 128, 0, &destroyed),
                      Contains("thread 70 gives up") && Contains("thread (70,0,0)"));
  CHECK(destroyed.load() == 128);  // every thread's local object was destroyed

  std::vector<int> data(4 * 256, 1);
  unet::kern::launch(add_one, 4, 256, 0, data.data());
  CHECK(std::all_of(data.begin(), data.end(), [](int v) { return v == 2; }));
}

TEST_CASE("invalid launch configurations throw CudaError like the GPU", "[sim]") {
  std::vector<int> data(2048, 0);
  CHECK_THROWS_AS(unet::kern::launch(add_one, 1, 2048, 0, data.data()), unet::CudaError);
  CHECK_THROWS_AS(unet::kern::launch(add_one, 1, dim3(8, 8, 65), 0, data.data()), unet::CudaError);
  CHECK_THROWS_AS(unet::kern::launch(add_one, 1, 0, 0, data.data()), unet::CudaError);
  CHECK_THROWS_WITH(unet::kern::launch(add_one, 1, 32, 300 * 1024, data.data()),
                    Contains("dynamic shared memory") && Contains("test_sim_errors.cpp:"));
  CHECK(std::all_of(data.begin(), data.end(), [](int v) { return v == 0; }));
}

TEST_CASE("schedules are set from code or from UNET_SIM_SCHEDULE", "[sim]") {
  using unet::sim::Schedule;
  CHECK(unet::sim::parse_schedule("inorder") == unet::sim::ScheduleConfig{Schedule::InOrder, 0});
  CHECK(unet::sim::parse_schedule("reversed") == unet::sim::ScheduleConfig{Schedule::Reversed, 0});
  CHECK(unet::sim::parse_schedule("random:1234") == unet::sim::ScheduleConfig{Schedule::Random, 1234});
  for (const char* bad : {"", "random", "random:", "random:x1", "Reversed", "inorder "}) {
    CHECK_THROWS_AS(unet::sim::parse_schedule(bad), unet::ValueError);
  }
  CHECK(unet::sim::to_string({Schedule::Random, 99}) == "random:99");

  const char* saved = std::getenv("UNET_SIM_SCHEDULE");
  const std::string saved_value = saved ? saved : "";
  setenv("UNET_SIM_SCHEDULE", "random:77", 1);
  CHECK(unet::sim::schedule_from_environment() == unet::sim::ScheduleConfig{Schedule::Random, 77});
  setenv("UNET_SIM_SCHEDULE", "sideways", 1);
  CHECK_THROWS_WITH(unet::sim::schedule_from_environment(), Contains("UNET_SIM_SCHEDULE"));
  unsetenv("UNET_SIM_SCHEDULE");
  CHECK_FALSE(unet::sim::schedule_from_environment().has_value());
  if (saved) setenv("UNET_SIM_SCHEDULE", saved_value.c_str(), 1);

  const unet::sim::ScheduleConfig before = unet::sim::current_schedule();
  {
    unet::sim::ScheduleGuard guard(Schedule::Reversed);
    CHECK(unet::sim::current_schedule().order == Schedule::Reversed);
  }
  CHECK(unet::sim::current_schedule() == before);
}

#endif  // UNET_CUDA_SIM
