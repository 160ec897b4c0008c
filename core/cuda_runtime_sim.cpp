// core/cuda_runtime_sim.cpp — the CUDA runtime wrapper of the simulator build: device memory is
// 64-byte aligned host memory, copies are memcpy, and the "device" is the CUDA simulator.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/cuda_runtime.h"
#include "core/error.h"

namespace unet::cuda_rt {
namespace {
bool no_gpu_for_tests = false;
constexpr size_t kSimulatedMemory = size_t{16} << 30;  // what free_bytes() reports

// The capture in progress on this thread (null: none): the recorded calls, in order.
thread_local std::vector<std::function<void()>>* tls_recording = nullptr;

void refuse_while_capturing(const char* what) {
  if (tls_recording) throw CudaError(refused_while_capturing(what));
}
}  // namespace

struct CapturedWork::Impl {
  std::vector<std::function<void()>> work;
};
CapturedWork::CapturedWork(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CapturedWork::~CapturedWork() = default;
void CapturedWork::replay() const {
  refuse_while_capturing("replaying a captured graph");
  for (const auto& w : impl_->work) w();
}
size_t CapturedWork::operations() const { return impl_->work.size(); }

void begin_capture() {
  if (tls_recording) throw CudaError("begin_capture: a capture is already in progress on this thread (captures do not nest)");
  tls_recording = new std::vector<std::function<void()>>();
}
std::unique_ptr<CapturedWork> end_capture() {
  if (!tls_recording) throw CudaError("end_capture: no capture in progress on this thread");
  auto impl = std::make_unique<CapturedWork::Impl>();
  impl->work = std::move(*tls_recording);
  delete tls_recording;
  tls_recording = nullptr;
  return std::make_unique<CapturedWork>(std::move(impl));
}
bool capturing() { return tls_recording != nullptr; }
void abort_capture() noexcept {
  delete tls_recording;
  tls_recording = nullptr;
}
void record(std::function<void()> work) {
  if (!tls_recording) throw CudaError("cuda_rt::record: no capture in progress");
  tls_recording->push_back(std::move(work));
}

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
void memcpy(void* dst, const void* src, size_t bytes, CopyKind kind) {
  if (!bytes) return;
  if (tls_recording) {
    if (kind == CopyKind::DeviceToHost) refuse_while_capturing("a device-to-host copy");
    if (kind == CopyKind::HostToDevice) {  // the host bytes as they are now
      auto snapshot = std::make_shared<std::vector<unsigned char>>(static_cast<const unsigned char*>(src),
                                                                   static_cast<const unsigned char*>(src) + bytes);
      tls_recording->push_back([dst, snapshot] { std::memcpy(dst, snapshot->data(), snapshot->size()); });
    } else {
      tls_recording->push_back([dst, src, bytes] { std::memcpy(dst, src, bytes); });
    }
    return;
  }
  std::memcpy(dst, src, bytes);
}
void memset(void* ptr, int byte_value, size_t bytes) {
  if (!bytes) return;
  if (tls_recording) {
    tls_recording->push_back([ptr, byte_value, bytes] { std::memset(ptr, byte_value, bytes); });
    return;
  }
  std::memset(ptr, byte_value, bytes);
}
void synchronize() { refuse_while_capturing("synchronize()"); }  // simulated launches complete before they return
size_t free_bytes() { return kSimulatedMemory; }
size_t total_bytes() { return kSimulatedMemory; }
void simulate_no_gpu(bool on) { no_gpu_for_tests = on; }

}  // namespace unet::cuda_rt
