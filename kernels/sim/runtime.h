// kernels/sim/runtime.h — the host-side face of the CUDA simulator: thread schedules, the limits
// it enforces, and the grid launch that kernels/launch.h forwards to.
//
// Only the simulator build (UNET_CUDA_SIM) compiles this. Kernel code never includes it directly;
// it sees kernels/cuda_compat.h and kernels/launch.h. Tests include it to pick a schedule.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <vector_types.h>

namespace unet::sim {

// The order in which runnable simulated threads of a block are resumed: at the start of the
// block and again after every barrier / warp collective. A kernel that is correct gives the same
// result under every schedule; a missing __syncthreads() shows as a result that changes.
enum class Schedule {
  InOrder,   // thread 0, 1, 2, ... (x fastest, like the linear thread index)
  Reversed,  // the last thread first
  Random,    // a fresh permutation at every resume point, from a seed (reproducible)
};

struct ScheduleConfig {
  Schedule order = Schedule::InOrder;
  uint64_t seed = 0;  // only used by Schedule::Random
  friend bool operator==(const ScheduleConfig&, const ScheduleConfig&) = default;
};

// "inorder", "reversed" or "random:SEED" (SEED a decimal integer); throws unet::ValueError.
ScheduleConfig parse_schedule(std::string_view text);
std::string to_string(const ScheduleConfig& config);

// The schedule named by the environment variable UNET_SIM_SCHEDULE, if it is set.
std::optional<ScheduleConfig> schedule_from_environment();

// The process-wide schedule used by every later launch. Until set_schedule() is called it is
// read from UNET_SIM_SCHEDULE (default: in order).
void set_schedule(Schedule order, uint64_t seed = 0);
void set_schedule(const ScheduleConfig& config);
ScheduleConfig current_schedule();

// Sets a schedule for a scope and restores the previous one.
class ScheduleGuard {
 public:
  explicit ScheduleGuard(Schedule order, uint64_t seed = 0);
  explicit ScheduleGuard(const ScheduleConfig& config);
  ~ScheduleGuard();
  ScheduleGuard(const ScheduleGuard&) = delete;
  ScheduleGuard& operator=(const ScheduleGuard&) = delete;

 private:
  ScheduleConfig previous_;
};

// Dynamic shared memory is filled with this 32-bit word before every block: a NaN as float, as
// half/bfloat16 (each half-word) and as double, and INT_MAX as int, so reading it before writing
// shows up in results.
inline constexpr uint32_t kSharedMemoryPoison = 0x7FFFFFFFu;
// Largest dynamic shared memory one block may ask for (sm_90 with the opt-in attribute).
inline constexpr size_t kMaxDynamicSharedBytes = 227 * 1024;
// Stack of one simulated thread. Real GPU threads have ~1 KiB; host code at -O0 needs more.
inline constexpr size_t kFiberStackBytes = 128 * 1024;
inline constexpr unsigned kMaxThreadsPerBlock = 1024;

namespace detail {

// Where a launch came from, for error messages. kernel_name may be null (unknown).
struct LaunchSite {
  const char* kernel_name = nullptr;
  const char* file = "";
  unsigned line = 0;
};

// A kernel with its arguments bound; invoke(call) runs it once for the current simulated thread.
struct KernelCall {
  void (*invoke)(const void* call) = nullptr;
  const void* call = nullptr;
};

// Runs the whole grid on the CPU and returns when every block is done. Throws unet::CudaError on
// an invalid configuration (like cudaErrorInvalidConfiguration) and unet::KernelError on a kernel
// bug. An empty grid does nothing.
void launch_grid(const KernelCall& call, dim3 grid, dim3 block, size_t dynamic_smem_bytes,
                 const LaunchSite& site);

}  // namespace detail
}  // namespace unet::sim
