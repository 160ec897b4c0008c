// core/cuda_runtime.h — the ONE wrapper around the CUDA runtime API. Everything else in the
// library allocates, copies and synchronises device memory through these functions.
//
// Two implementations, chosen by the build: cuda_runtime_gpu.cpp calls the real runtime
// (cudaMalloc, cudaMemcpy, ...); cuda_runtime_sim.cpp backs the simulated CUDA device with host
// memory, so kernels run by the simulator read and write ordinary pointers.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace unet::cuda_rt {

enum class CopyKind { HostToDevice, DeviceToHost, DeviceToDevice };

// Number of usable CUDA devices. A missing driver (cudaErrorInsufficientDriver, what a machine
// with the toolkit but no GPU reports) or no device reads as 0, never as a crash.
int device_count();
// Why device_count() is 0, for error messages ("" when devices exist).
std::string unavailable_reason();
bool is_simulated();
std::string device_name(int index);
// Makes device `index` the one every later allocation, copy and launch of this process uses
// (cudaSetDevice; the simulator has one device and ignores it). Data-parallel jobs call it once,
// before anything is allocated, to give each rank of a node its own GPU.
void set_device(int index);

void* malloc(size_t bytes);  // raw, uncached; throws OutOfMemoryError saying asked and free bytes
void free(void* ptr) noexcept;
void memcpy(void* dst, const void* src, size_t bytes, CopyKind kind);
void memset(void* ptr, int byte_value, size_t bytes);
void synchronize();
size_t free_bytes();
size_t total_bytes();

// Test hook of the simulator build: pretend there is no GPU, to exercise the "no GPU" paths.
// Ignored by the GPU build.
void simulate_no_gpu(bool on);

// ---- capture and replay (CUDA graphs) -----------------------------------------------------------
// Every kernel and every device-side copy or memset of the library runs in order on one stream per
// host thread (the GPU build: CUDA's per-thread default stream; host copies wait for it).
// Between begin_capture() and end_capture() the device work this thread issues — kernel launches,
// device-to-device copies, memsets, uploads from the host — is recorded instead of run, and the
// CapturedWork that end_capture() returns runs it again at every replay(): the same kernels with
// the same arguments on the same addresses, no host code in between. Uploads replay the host bytes
// as they were at capture (a snapshot): values that change between replays must be written to
// device memory before replay() and read from there by the kernels. Downloads to the host,
// synchronize() and a nested begin_capture() are refused while capturing (CudaError): they would
// need results of work that has not run. GPU build: cudaStreamBeginCapture (relaxed mode),
// cudaGraphInstantiate, cudaGraphLaunch; the simulator: a list of recorded calls.
class CapturedWork {
 public:
  struct Impl;
  explicit CapturedWork(std::unique_ptr<Impl> impl);
  ~CapturedWork();
  CapturedWork(const CapturedWork&) = delete;
  CapturedWork& operator=(const CapturedWork&) = delete;
  void replay() const;
  size_t operations() const;  // recorded launches, copies and memsets

 private:
  std::unique_ptr<Impl> impl_;
};

void begin_capture();
std::unique_ptr<CapturedWork> end_capture();
bool capturing();
// Drops a capture in progress (after an exception inside it); nothing is recorded. No-op otherwise.
void abort_capture() noexcept;
// The simulator's launches while capturing (kernels/launch.h): `work` runs at every replay. The GPU
// build's stream capture records launches itself; there it throws.
void record(std::function<void()> work);
// The message of the CudaError both backends throw for `what` attempted while capturing.
inline std::string refused_while_capturing(const char* what) {
  return std::string(what) +
         " while a capture is in progress (cudaErrorStreamCaptureUnsupported): a captured step cannot read "
         "results of device work that has not run; read them after replay()";
}

}  // namespace unet::cuda_rt
