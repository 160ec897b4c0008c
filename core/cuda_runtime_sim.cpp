// core/cuda_runtime_sim.cpp — the CUDA runtime wrapper of the simulator build: device memory is
// 64-byte aligned host memory, copies are memcpy, and the "device" is the CUDA simulator.
#include <cstdlib>
#include <cstring>

#include "core/cuda_runtime.h"
#include "core/error.h"

namespace unet::cuda_rt {
namespace {
bool no_gpu_for_tests = false;
constexpr size_t kSimulatedMemory = size_t{16} << 30;  // what free_bytes() reports
}  // namespace

int device_count() { return no_gpu_for_tests ? 0 : 1; }
std::string unavailable_reason() {
  return no_gpu_for_tests ? "no CUDA device (the simulated GPU was switched off by a test)" : "";
}
bool is_simulated() { return true; }
std::string device_name(int) { return "CUDA simulator (kernels run as CPU fibers)"; }
void set_device(int) {}

void* malloc(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (!p) UNET_THROW(OutOfMemoryError, "simulated device allocation of ", bytes, " bytes failed");
  return p;
}
void free(void* ptr) noexcept { std::free(ptr); }
void memcpy(void* dst, const void* src, size_t bytes, CopyKind) {
  if (bytes) std::memcpy(dst, src, bytes);
}
void memset(void* ptr, int byte_value, size_t bytes) {
  if (bytes) std::memset(ptr, byte_value, bytes);
}
void synchronize() {}  // simulated launches complete before they return
size_t free_bytes() { return kSimulatedMemory; }
size_t total_bytes() { return kSimulatedMemory; }
void simulate_no_gpu(bool on) { no_gpu_for_tests = on; }

}  // namespace unet::cuda_rt
