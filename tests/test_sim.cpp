// tests/test_sim.cpp — the CUDA simulator runs real CUDA kernels correctly: shared-memory tiling
// under every schedule (and the race a missing __syncthreads() causes), warp shuffles and votes,
// atomics across OS threads, poisoned dynamic shared memory. Launch geometry is in
// test_sim_launch.cpp, error reports in test_sim_errors.cpp. The kernels below are plain C++ in the simulator
// build, so everything but ceil_div is compiled only there (UNET_CUDA_SIM).
#include <catch2/catch.hpp>

#include "kernels/cuda_compat.h"
#include "kernels/launch.h"

TEST_CASE("ceil_div sizes grids and rejects bad divisors", "[sim]") {
  using unet::kern::ceil_div;
  STATIC_REQUIRE(ceil_div(0, 256) == 0);
  STATIC_REQUIRE(ceil_div(1, 256) == 1);
  STATIC_REQUIRE(ceil_div(256, 256) == 1);
  STATIC_REQUIRE(ceil_div(257, 256) == 2);
  CHECK(ceil_div(-5, 256) == 0);
  CHECK_THROWS_AS(ceil_div(10, 0), unet::ValueError);
  CHECK_THROWS_AS(ceil_div(int64_t{1} << 40, 1), unet::ValueError);
}

#if defined(UNET_CUDA_SIM)

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "core/parallel.h"
#include "kernels/sim/runtime.h"

namespace {

using unet::sim::Schedule;
using unet::sim::ScheduleConfig;
using unet::sim::ScheduleGuard;

const std::vector<ScheduleConfig> kSchedules = {
    {Schedule::InOrder, 0}, {Schedule::Reversed, 0}, {Schedule::Random, 1}, {Schedule::Random, 2}};

// Block-wide tree reduction in static shared memory: needs every barrier.
__global__ void block_sum(const unsigned* in, unsigned* out, int n) {
  __shared__ unsigned partial[1024];
  const unsigned tid = threadIdx.x;
  const unsigned i = blockIdx.x * blockDim.x + tid;
  partial[tid] = i < static_cast<unsigned>(n) ? in[i] : 0u;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (tid < stride) partial[tid] += partial[tid + stride];
    __syncthreads();
  }
  if (tid == 0) out[blockIdx.x] = partial[0];
}

// Tiled transpose through dynamic shared memory; kSync = false is the same kernel with its
// barrier deliberately removed.
constexpr int kTile = 16;
template <bool kSync>
__global__ void transpose_tiled(const float* in, float* out, int rows, int cols) {
  UNET_DYNAMIC_SHARED(float, tile);  // kTile x (kTile + 1): the padding avoids bank conflicts
  const int x = blockIdx.x * kTile + threadIdx.x;
  const int y = blockIdx.y * kTile + threadIdx.y;
  if (x < cols && y < rows) tile[threadIdx.y * (kTile + 1) + threadIdx.x] = in[y * cols + x];
  if constexpr (kSync) __syncthreads();
  const int ox = blockIdx.y * kTile + threadIdx.x;
  const int oy = blockIdx.x * kTile + threadIdx.y;
  if (ox < rows && oy < cols) out[oy * rows + ox] = tile[threadIdx.x * (kTile + 1) + threadIdx.y];
}

template <bool kSync>
std::vector<float> run_transpose(const std::vector<float>& in, int rows, int cols) {
  std::vector<float> out(in.size(), -1.0f);
  UNET_LAUNCH((transpose_tiled<kSync>), dim3(unet::kern::ceil_div(cols, kTile), unet::kern::ceil_div(rows, kTile)),
              dim3(kTile, kTile), kTile * (kTile + 1) * sizeof(float), in.data(), out.data(), rows, cols);
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(0.5f, 2.0f);  // never zero
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

}  // namespace

TEST_CASE("a block reduction in static shared memory is exact under every schedule", "[sim]") {
  const int n = 100003;  // prime: the last block is partial
  std::vector<unsigned> in(n);
  for (int i = 0; i < n; ++i) in[i] = static_cast<unsigned>(i * 7 + 3);
  for (unsigned threads : {32u, 256u, 1024u}) {
    const unsigned blocks = unet::kern::ceil_div(n, threads);
    std::vector<unsigned> expected(blocks, 0);
    for (int i = 0; i < n; ++i) expected[i / threads] += in[i];
    for (const ScheduleConfig& schedule : kSchedules) {
      ScheduleGuard guard(schedule);
      std::vector<unsigned> out(blocks, 0xDEADBEEFu);
      unet::kern::launch(block_sum, blocks, threads, 0, in.data(), out.data(), n);
      INFO("threads per block " << threads << ", schedule " << unet::sim::to_string(schedule));
      CHECK(out == expected);
    }
  }
}

TEST_CASE("a tiled transpose is exact under every schedule, without its barrier it races", "[sim]") {
  const int rows = 37, cols = 53;  // not multiples of the tile
  const std::vector<float> in = random_floats(rows * cols, 7);
  std::vector<float> expected(in.size());
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) expected[c * rows + r] = in[r * cols + c];

  for (const ScheduleConfig& schedule : kSchedules) {
    ScheduleGuard guard(schedule);
    INFO("schedule " << unet::sim::to_string(schedule));
    CHECK(same_bits(run_transpose<true>(in, rows, cols), expected));
  }

  // Without the barrier, a thread reads the tile slot of a thread that may not have run yet:
  // in order, the slots of later threads hold the poison; reversed, those of earlier threads.
  std::vector<float> in_order, reversed;
  {
    ScheduleGuard guard(Schedule::InOrder);
    in_order = run_transpose<false>(in, rows, cols);
  }
  {
    ScheduleGuard guard(Schedule::Reversed);
    reversed = run_transpose<false>(in, rows, cols);
  }
  CHECK_FALSE(same_bits(in_order, expected));
  CHECK_FALSE(same_bits(reversed, expected));
  CHECK_FALSE(same_bits(in_order, reversed));
  // Each schedule is deterministic on its own...
  {
    ScheduleGuard guard(Schedule::InOrder);
    CHECK(same_bits(run_transpose<false>(in, rows, cols), in_order));
  }
  // ...and random schedules give yet other results, reproducible from the seed.
  for (uint64_t seed : {11u, 12u}) {
    ScheduleGuard guard(Schedule::Random, seed);
    const std::vector<float> first = run_transpose<false>(in, rows, cols);
    CHECK_FALSE(same_bits(first, in_order));
    CHECK_FALSE(same_bits(first, reversed));
    CHECK(same_bits(run_transpose<false>(in, rows, cols), first));
  }
}

namespace {

// Every warp intrinsic once; kOut results per thread.
constexpr int kOut = 12;
__global__ void warp_intrinsics(const int* in, int* out) {
  const unsigned full = 0xFFFFFFFFu;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int lane = threadIdx.x % warpSize;
  const int v = in[i];
  int down = v;
  for (int offset = 16; offset > 0; offset /= 2) down += __shfl_down_sync(full, down, offset);
  int butterfly = v;
  for (int offset = 16; offset > 0; offset /= 2) butterfly += __shfl_xor_sync(full, butterfly, offset);
  int scan = v;
  for (int offset = 1; offset < 32; offset *= 2) {
    const int up = __shfl_up_sync(full, scan, offset);
    if (lane >= offset) scan += up;
  }
  int* o = out + i * kOut;
  o[0] = down;
  o[1] = butterfly;
  o[2] = scan;
  o[3] = __shfl_sync(full, v, 5);
  o[4] = __shfl_sync(full, v, 3, 8);          // lane 3 of each 8-lane segment
  o[5] = __shfl_down_sync(full, v, 2, 8);     // stays inside the segment
  o[6] = static_cast<int>(__ballot_sync(full, v % 3 == 0));
  o[7] = __any_sync(full, v == 1000);
  o[8] = __all_sync(full, v >= 0);
  const float half = __shfl_xor_sync(full, 0.5f * static_cast<float>(v), 1);
  o[9] = static_cast<int>(half * 2.0f);
  __syncwarp();
  // Half-warps with their own masks are legal and independent.
  const unsigned mine = lane < 16 ? 0x0000FFFFu : 0xFFFF0000u;
  o[10] = __shfl_xor_sync(mine, v, 1, 16);
  const double d = __shfl_sync(full, static_cast<double>(v) + 0.25, 31);
  o[11] = static_cast<int>(d * 4.0);
}

}  // namespace

TEST_CASE("warp shuffles, votes and __syncwarp are correct under every schedule", "[sim]") {
  const int blocks = 3, threads = 96;  // 3 warps per block
  const int n = blocks * threads;
  std::vector<int> in(n);
  std::mt19937 gen(3);
  for (int& x : in) x = static_cast<int>(gen() % 1000);
  in[40] = 1000;  // warp 1 of block 0 has exactly one lane with v == 1000
  for (const ScheduleConfig& schedule : kSchedules) {
    ScheduleGuard guard(schedule);
    INFO("schedule " << unet::sim::to_string(schedule));
    std::vector<int> out(n * kOut, -7);
    unet::kern::launch(warp_intrinsics, blocks, threads, 0, in.data(), out.data());
    for (int i = 0; i < n; ++i) {
      const int warp = i / 32 * 32, lane = i % 32;
      auto at = [&](int l) { return in[warp + l]; };
      int sum = 0, below = 0, from_down = 0;
      unsigned ballot = 0;
      bool any = false, all = true;
      for (int l = 0; l < 32; ++l) {
        sum += at(l);
        if (l <= lane) below += at(l);
        if (at(l) % 3 == 0) ballot |= 1u << l;
        any |= at(l) == 1000;
        all &= at(l) >= 0;
      }
      // __shfl_down_sync reduction: lane 0 holds the warp's sum; other lanes partial sums.
      if (lane == 0) from_down = sum;
      const int* o = &out[i * kOut];
      INFO("thread " << i);
      if (lane == 0) CHECK(o[0] == from_down);
      CHECK(o[1] == sum);
      CHECK(o[2] == below);
      CHECK(o[3] == at(5));
      CHECK(o[4] == at(lane / 8 * 8 + 3));
      CHECK(o[5] == (lane % 8 + 2 < 8 ? at(lane + 2) : at(lane)));
      CHECK(static_cast<unsigned>(o[6]) == ballot);
      CHECK(o[7] == (any ? 1 : 0));
      CHECK(o[8] == (all ? 1 : 0));
      CHECK(o[9] == at(lane ^ 1));
      CHECK(o[10] == at(lane ^ 1));
      CHECK(o[11] == at(31) * 4 + 1);
    }
  }
}

namespace {

struct ThreadLog {
  std::mutex mutex;
  std::set<std::thread::id> ids;
  size_t record() {
    std::lock_guard<std::mutex> lock(mutex);
    ids.insert(std::this_thread::get_id());
    return ids.size();
  }
};

struct Counters {
  unsigned count;
  int max_id;
  int min_id;
  unsigned long long wide;
  float fsum;
  double dsum;
  int cas_count;
  int exchanged;
};

__global__ void atomics_kernel(Counters* c, int* exchange_log, ThreadLog* log) {
  const int id = blockIdx.x * blockDim.x + threadIdx.x;
  if (threadIdx.x == 0) {
    // Host code inside a simulated kernel: wait (bounded) until a second OS thread runs blocks
    // too, so the atomics below provably race across OS threads.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (log->record() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  }
  for (int k = 0; k < 8; ++k) atomicAdd(&c->count, 1u);
  atomicMax(&c->max_id, id);
  atomicMin(&c->min_id, -id);
  atomicAdd(&c->wide, 1ull << 33);
  atomicAdd(&c->fsum, 1.0f);  // exact: the total stays below 2^24
  atomicAdd(&c->dsum, 0.5);
  // The first guess is read atomically: a plain load would race with the other blocks' CAS,
  // which run on other OS threads here (ThreadSanitizer reports it) and on other SMs on a GPU.
  int old = atomicAdd(&c->cas_count, 0), assumed;
  do {
    assumed = old;
    old = atomicCAS(&c->cas_count, assumed, assumed + 1);
  } while (old != assumed);
  exchange_log[id] = atomicExch(&c->exchanged, id);
}

}  // namespace

TEST_CASE("atomics from many blocks on several OS threads count exactly", "[sim]") {
  const int previous_threads = unet::num_threads();
  unet::set_num_threads(4);
  const int blocks = 64, threads = 128, n = blocks * threads;
  Counters c{0, -1, 1, 0, 0.0f, 0.0, 0, -1};
  std::vector<int> exchange_log(n, -2);
  ThreadLog log;
  unet::kern::launch(atomics_kernel, blocks, threads, 0, &c, exchange_log.data(), &log);
  unet::set_num_threads(previous_threads);

  CHECK(log.ids.size() >= 2);
  CHECK(c.count == 8u * n);
  CHECK(c.max_id == n - 1);
  CHECK(c.min_id == -(n - 1));
  CHECK(c.wide == (1ull << 33) * n);
  CHECK(c.fsum == static_cast<float>(n));
  CHECK(c.dsum == 0.5 * n);
  CHECK(c.cas_count == n);
  // Every exchange returned a distinct earlier value: the log plus the final value are the
  // initial -1 and every id, each exactly once.
  std::vector<int> seen = exchange_log;
  seen.push_back(c.exchanged);
  std::sort(seen.begin(), seen.end());
  std::vector<int> expected(n + 1);
  for (int i = 0; i <= n; ++i) expected[i] = i - 1;
  CHECK(seen == expected);
}

namespace {

__global__ void read_before_write(unsigned* bits, float* values, int words) {
  UNET_DYNAMIC_SHARED(unsigned, smem);
  const float* as_float = reinterpret_cast<const float*>(smem);
  for (int w = threadIdx.x; w < words; w += blockDim.x) {
    bits[blockIdx.x * words + w] = smem[w];
    values[blockIdx.x * words + w] = as_float[w];
  }
  __syncthreads();
  for (int w = threadIdx.x; w < words; w += blockDim.x) smem[w] = 12345u;  // dirt for the next block
}

}  // namespace

TEST_CASE("dynamic shared memory is poisoned before every block", "[sim]") {
  const int blocks = 40, words = 1000;
  std::vector<unsigned> bits(blocks * words, 0);
  std::vector<float> values(blocks * words, 0.0f);
  unet::kern::launch(read_before_write, blocks, 64, words * sizeof(unsigned), bits.data(), values.data(), words);
  for (int i = 0; i < blocks * words; ++i) {
    INFO("word " << i);
    REQUIRE(bits[i] == unet::sim::kSharedMemoryPoison);
    REQUIRE(std::isnan(values[i]));
  }
}

#endif  // UNET_CUDA_SIM
