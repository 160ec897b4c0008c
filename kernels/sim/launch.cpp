// kernels/sim/launch.cpp — the simulator's grid launch and its schedule setting.
//
// A grid's blocks are spread over the CPU thread pool (unet::parallel_for, grain 1); each OS
// thread runs its blocks one after another with its own BlockRunner, so static __shared__
// (thread_local) has one copy per running block. When blocks fail, the one with the lowest
// linear index is reported, whatever the thread count: blocks after a known failure are skipped,
// blocks before it still run.
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <exception>
#include <mutex>

#include "core/parallel.h"
#include "kernels/sim/block_runner.h"

namespace unet::sim {
namespace {

std::mutex schedule_mutex;
std::optional<ScheduleConfig> schedule_setting;  // empty: not read from the environment yet

}  // namespace

ScheduleConfig parse_schedule(std::string_view text) {
  if (text == "inorder") return {Schedule::InOrder, 0};
  if (text == "reversed") return {Schedule::Reversed, 0};
  constexpr std::string_view random_prefix = "random:";
  if (text.starts_with(random_prefix)) {
    const std::string_view digits = text.substr(random_prefix.size());
    uint64_t seed = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seed);
    if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty()) {
      return {Schedule::Random, seed};
    }
  }
  throw ValueError(unet::detail::message("CUDA simulator schedule '", text,
                                         "' is not one of: inorder, reversed, random:SEED "
                                         "(SEED a decimal integer)"));
}

std::string to_string(const ScheduleConfig& config) {
  switch (config.order) {
    case Schedule::InOrder: return "inorder";
    case Schedule::Reversed: return "reversed";
    case Schedule::Random: return "random:" + std::to_string(config.seed);
  }
  return "?";
}

std::optional<ScheduleConfig> schedule_from_environment() {
  const char* text = std::getenv("UNET_SIM_SCHEDULE");
  if (text == nullptr || *text == '\0') return std::nullopt;
  try {
    return parse_schedule(text);
  } catch (const ValueError& e) {
    throw ValueError(unet::detail::message("UNET_SIM_SCHEDULE: ", e.what()));
  }
}

void set_schedule(const ScheduleConfig& config) {
  std::lock_guard<std::mutex> lock(schedule_mutex);
  schedule_setting = config;
}

void set_schedule(Schedule order, uint64_t seed) { set_schedule(ScheduleConfig{order, seed}); }

ScheduleConfig current_schedule() {
  std::lock_guard<std::mutex> lock(schedule_mutex);
  if (!schedule_setting) schedule_setting = schedule_from_environment().value_or(ScheduleConfig{});
  return *schedule_setting;
}

ScheduleGuard::ScheduleGuard(const ScheduleConfig& config) : previous_(current_schedule()) {
  set_schedule(config);
}
ScheduleGuard::ScheduleGuard(Schedule order, uint64_t seed) : ScheduleGuard(ScheduleConfig{order, seed}) {}
ScheduleGuard::~ScheduleGuard() { set_schedule(previous_); }

namespace detail {
namespace {

// Mirrors the GPU's launch checks (cudaErrorInvalidConfiguration) so a bad launch fails in the
// simulator the way it would on the device.
void check_configuration(dim3 grid, dim3 block, size_t dynamic_smem_bytes, const LaunchSite& site) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  const char* problem = nullptr;
  if (threads == 0) {
    problem = "the block is empty";
  } else if (block.x > 1024 || block.y > 1024 || block.z > 64 || threads > kMaxThreadsPerBlock) {
    problem = "a block has at most 1024 threads (x, y <= 1024, z <= 64)";
  } else if (grid.x > 0x7FFFFFFFu || grid.y > 65535 || grid.z > 65535) {
    problem = "the grid is at most (2^31-1, 65535, 65535) blocks";
  } else if (dynamic_smem_bytes > kMaxDynamicSharedBytes) {
    problem = "a block has at most 227 KiB of dynamic shared memory";
  }
  if (problem == nullptr) return;
  throw CudaError(unet::detail::message(
      "invalid launch configuration (cudaErrorInvalidConfiguration) for kernel",
      site.kernel_name ? " `" : "", site.kernel_name ? site.kernel_name : "",
      site.kernel_name ? "`" : "", " launched at ", site.file, ":", site.line, ": grid ",
      format_index(grid), " block ", format_index(block), " dynamic shared memory ",
      dynamic_smem_bytes, " bytes: ", problem));
}

}  // namespace

void launch_grid(const KernelCall& call, dim3 grid, dim3 block, size_t dynamic_smem_bytes,
                 const LaunchSite& site) {
  check_configuration(grid, block, dynamic_smem_bytes, site);
  const uint64_t blocks = uint64_t{grid.x} * grid.y * grid.z;
  if (blocks == 0) return;
  if (tls_active_runner != nullptr) {
    throw KernelError(unet::detail::message("kernel launched at ", site.file, ":", site.line,
                                            " from inside a simulated kernel: dynamic parallelism "
                                            "is not simulated"));
  }
  const ScheduleConfig schedule = current_schedule();

  std::atomic<uint64_t> first_failed{UINT64_MAX};
  std::mutex failure_mutex;
  std::exception_ptr failure;
  parallel_for(0, static_cast<int64_t>(blocks), 1, [&](int64_t begin, int64_t end) {
    BlockRunner& runner = this_thread_runner();
    for (int64_t b = begin; b < end; ++b) {
      const auto linear = static_cast<uint64_t>(b);
      if (linear > first_failed.load(std::memory_order_relaxed)) return;
      const uint3 block_idx{static_cast<unsigned>(linear % grid.x),
                            static_cast<unsigned>(linear / grid.x % grid.y),
                            static_cast<unsigned>(linear / (uint64_t{grid.x} * grid.y))};
      try {
        runner.run(call, block_idx, block, grid, dynamic_smem_bytes, site, schedule);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (linear < first_failed.load()) {
          first_failed.store(linear);
          failure = std::current_exception();
        }
        return;
      }
    }
  });
  if (failure) std::rethrow_exception(failure);
}

}  // namespace detail
}  // namespace unet::sim
