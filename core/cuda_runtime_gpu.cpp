// core/cuda_runtime_gpu.cpp — the CUDA runtime wrapper of the GPU build: the only file that
// calls the CUDA runtime API for memory and devices.
#include <cuda_runtime.h>

#include <cstring>
#include <vector>

#include "core/cuda_check.h"
#include "core/cuda_runtime.h"
#include "core/error.h"

namespace unet::cuda_rt {
namespace {
// The stream every kernel, device copy and memset runs on (kernels/launch.h uses the same): CUDA's
// per-thread default stream, which the legacy stream of the synchronous host copies (and of
// cuBLAS/cuDNN on their default stream) waits for, so the order stays the program's order.
const cudaStream_t kStream = cudaStreamPerThread;  // a cast: not constexpr

// The capture in progress on this thread: whether there is one, and the pinned snapshots of the
// host bytes uploaded during it (the graph's memcpy nodes read them at every replay).
thread_local bool tls_capturing = false;
thread_local std::vector<void*>* tls_snapshots = nullptr;

void refuse_while_capturing(const char* what) {
  if (tls_capturing) throw CudaError(refused_while_capturing(what));
}
}  // namespace

struct CapturedWork::Impl {
  cudaGraphExec_t exec = nullptr;
  size_t nodes = 0;
  std::vector<void*> snapshots;
};
CapturedWork::CapturedWork(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CapturedWork::~CapturedWork() {
  if (impl_->exec) cudaGraphExecDestroy(impl_->exec);
  for (void* p : impl_->snapshots) cudaFreeHost(p);
}
void CapturedWork::replay() const {
  refuse_while_capturing("replaying a captured graph");
  UNET_CUDA_CHECK(cudaGraphLaunch(impl_->exec, kStream));
}
size_t CapturedWork::operations() const { return impl_->nodes; }

void begin_capture() {
  if (tls_capturing) throw CudaError("begin_capture: a capture is already in progress on this thread (captures do not nest)");
  UNET_CUDA_CHECK(cudaStreamBeginCapture(kStream, cudaStreamCaptureModeRelaxed));
  tls_capturing = true;
  tls_snapshots = new std::vector<void*>();
}
std::unique_ptr<CapturedWork> end_capture() {
  if (!tls_capturing) throw CudaError("end_capture: no capture in progress on this thread");
  auto impl = std::make_unique<CapturedWork::Impl>();
  impl->snapshots = std::move(*tls_snapshots);
  delete tls_snapshots;
  tls_snapshots = nullptr;
  tls_capturing = false;
  cudaGraph_t graph = nullptr;
  UNET_CUDA_CHECK(cudaStreamEndCapture(kStream, &graph));
  const cudaError_t nodes = cudaGraphGetNodes(graph, nullptr, &impl->nodes);
  const cudaError_t made = cudaGraphInstantiate(&impl->exec, graph, 0);
  cudaGraphDestroy(graph);
  UNET_CUDA_CHECK(nodes);
  UNET_CUDA_CHECK(made);
  return std::make_unique<CapturedWork>(std::move(impl));
}
bool capturing() { return tls_capturing; }
void abort_capture() noexcept {
  if (!tls_capturing) return;
  cudaGraph_t graph = nullptr;
  cudaStreamEndCapture(kStream, &graph);
  if (graph) cudaGraphDestroy(graph);
  cudaGetLastError();
  for (void* p : *tls_snapshots) cudaFreeHost(p);
  delete tls_snapshots;
  tls_snapshots = nullptr;
  tls_capturing = false;
}
void record(std::function<void()>) {
  throw CudaError("cuda_rt::record is the simulator's: the GPU build captures its stream");
}

int device_count() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error: "no driver" is an answer, not a failure
    return 0;
  }
  return n;
}

std::string unavailable_reason() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e);
  }
  return n == 0 ? "no CUDA device found" : "";
}

bool is_simulated() { return false; }

std::string device_name(int index) {
  cudaDeviceProp prop{};
  UNET_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  return prop.name;
}

void set_device(int index) { UNET_CUDA_CHECK(cudaSetDevice(index)); }

void* malloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes == 0 ? 1 : bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    UNET_THROW(OutOfMemoryError, "CUDA out of memory: asked for ", bytes, " bytes, ", free,
               " bytes free of ", total);
  }
  UNET_CUDA_CHECK(e);
  return p;
}

void free(void* ptr) noexcept { cudaFree(ptr); }

void memcpy(void* dst, const void* src, size_t bytes, CopyKind kind) {
  if (bytes == 0) return;
  if (kind == CopyKind::DeviceToDevice) {  // stream-ordered, like the kernels (captured when capturing)
    UNET_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, kStream));
    return;
  }
  if (tls_capturing) {
    if (kind == CopyKind::DeviceToHost) refuse_while_capturing("a device-to-host copy");
    void* snapshot = nullptr;  // the host bytes as they are now, in pinned memory the graph keeps
    UNET_CUDA_CHECK(cudaMallocHost(&snapshot, bytes));
    std::memcpy(snapshot, src, bytes);
    tls_snapshots->push_back(snapshot);
    UNET_CUDA_CHECK(cudaMemcpyAsync(dst, snapshot, bytes, cudaMemcpyHostToDevice, kStream));
    return;
  }
  // Synchronous, on the legacy stream, which waits for the kernels' per-thread stream.
  UNET_CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind == CopyKind::HostToDevice ? cudaMemcpyHostToDevice
                                                                                : cudaMemcpyDeviceToHost));
}

void memset(void* ptr, int byte_value, size_t bytes) {
  if (bytes) UNET_CUDA_CHECK(cudaMemsetAsync(ptr, byte_value, bytes, kStream));
}

void synchronize() {
  refuse_while_capturing("synchronize()");
  UNET_CUDA_CHECK(cudaDeviceSynchronize());
}

size_t free_bytes() {
  size_t free = 0, total = 0;
  UNET_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return free;
}

size_t total_bytes() {
  size_t free = 0, total = 0;
  UNET_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return total;
}

void simulate_no_gpu(bool) {}

}  // namespace unet::cuda_rt
