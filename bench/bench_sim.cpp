// bench/bench_sim.cpp — speed of the CUDA simulator on one core: barrier resumes per second
// (one simulated thread passing one __syncthreads()), simulated threads per second for a kernel
// without barriers, and warp shuffles per second. Each kernel's result is checked before it is
// timed; times are the median of --repeats runs. Prints a table, then one JSON line.
//
//   ./build/bench/bench_sim [--threads-per-block 256] [--barriers 2000] [--repeats 5] [--os-threads 1]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"

#if !defined(UNET_CUDA_SIM)
int main() {
  std::printf("bench_sim measures the CUDA simulator; this is not a simulator build (UNET_CUDA_BACKEND=gpu)\n");
  return 0;
}
#else

namespace {

// Two barriers per iteration around a neighbour exchange in shared memory.
__global__ void barrier_loop(int iterations, long long* out) {
  __shared__ int slot[1024];
  long long acc = 0;
  for (int k = 0; k < iterations; ++k) {
    slot[threadIdx.x] = k + static_cast<int>(threadIdx.x);
    __syncthreads();
    acc += slot[(threadIdx.x + 1) % blockDim.x];
    __syncthreads();
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

__global__ void saxpy(float a, const float* x, float* y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}

// Five shuffles per iteration (a butterfly all-reduce).
__global__ void shuffle_loop(int iterations, int* out) {
  int v = static_cast<int>(threadIdx.x % 32);
  int total = 0;
  for (int k = 0; k < iterations; ++k) {
    int s = v + k;
    for (int offset = 16; offset > 0; offset /= 2) s += __shfl_xor_sync(0xFFFFFFFFu, s, offset);
    total += s;
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = total;
}

double median_seconds(int repeats, const std::function<void()>& run) {
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    run();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CUDA simulator speed"};
  int block = 256, barriers = 2000, repeats = 5, os_threads = 1;
  app.add_option("--threads-per-block", block, "threads per block (<= 1024)")->check(CLI::Range(32, 1024));
  app.add_option("--barriers", barriers, "barriers each thread passes (even)")->check(CLI::Range(2, 1 << 24));
  app.add_option("--repeats", repeats, "timed runs; the median is reported")->check(CLI::Range(1, 1000));
  app.add_option("--os-threads", os_threads, "CPU threads running blocks")->check(CLI::Range(1, 256));
  CLI11_PARSE(app, argc, argv);
  unet::set_num_threads(os_threads);
  const int blocks = 4 * os_threads;
  const int iterations = barriers / 2;

  // Barrier resumes.
  std::vector<long long> acc(static_cast<size_t>(blocks) * block);
  auto run_barriers = [&] { unet::kern::launch(barrier_loop, blocks, block, 0, iterations, acc.data()); };
  run_barriers();
  for (int t = 0; t < blocks * block; ++t) {
    const long long lane = (t % block + 1) % block;
    const long long expected = static_cast<long long>(iterations) * (iterations - 1) / 2 + iterations * lane;
    UNET_CHECK(acc[t] == expected, unet::Error, "barrier_loop: thread ", t, " got ", acc[t]);
  }
  const double barrier_s = median_seconds(repeats, run_barriers);
  const double resumes = static_cast<double>(blocks) * block * 2 * iterations;

  // Kernel without barriers.
  const int n = 1 << 22;
  std::vector<float> x(n, 1.0f), y(n, 2.0f);
  unet::kern::launch(saxpy, unet::kern::ceil_div(n, 256), 256, 0, 3.0f, x.data(), y.data(), n);
  UNET_CHECK(y[0] == 5.0f && y[n - 1] == 5.0f, unet::Error, "saxpy gave ", y[0]);
  const double saxpy_s = median_seconds(repeats, [&] {
    unet::kern::launch(saxpy, unet::kern::ceil_div(n, 256), 256, 0, 3.0f, x.data(), y.data(), n);
  });

  // Warp shuffles.
  const int shuffle_iterations = std::max(1, barriers / 10);
  std::vector<int> totals(static_cast<size_t>(blocks) * block);
  auto run_shuffles = [&] { unet::kern::launch(shuffle_loop, blocks, block, 0, shuffle_iterations, totals.data()); };
  run_shuffles();
  // Each iteration's butterfly leaves the warp sum of (lane + k): 496 + 32k.
  int expected_total = 0;
  for (int k = 0; k < shuffle_iterations; ++k) expected_total += 31 * 32 / 2 + 32 * k;
  UNET_CHECK(totals[0] == expected_total, unet::Error, "shuffle_loop got ", totals[0], " want ", expected_total);
  const double shuffle_s = median_seconds(repeats, run_shuffles);
  const double shuffles = static_cast<double>(blocks) * block * 5 * shuffle_iterations;

  std::printf("CUDA simulator, %d OS thread(s), %d threads per block, %d blocks\n", os_threads, block, blocks);
  std::printf("%-34s %14s %12s\n", "measure", "per second", "seconds");
  std::printf("%-34s %14.3e %12.4f\n", "barrier resumes (__syncthreads)", resumes / barrier_s, barrier_s);
  std::printf("%-34s %14.3e %12.4f\n", "threads without barriers (saxpy)", n / saxpy_s, saxpy_s);
  std::printf("%-34s %14.3e %12.4f\n", "lane shuffles (__shfl_xor_sync)", shuffles / shuffle_s, shuffle_s);
  std::printf("{\"bench\":\"sim\",\"os_threads\":%d,\"block\":%d,\"barrier_resumes_per_s\":%.4e,"
              "\"threads_per_s\":%.4e,\"lane_shuffles_per_s\":%.4e}\n",
              os_threads, block, resumes / barrier_s, n / saxpy_s, shuffles / shuffle_s);
  return 0;
}

#endif  // UNET_CUDA_SIM
