// core/cuda_runtime_gpu.cpp — the CUDA runtime wrapper of the GPU build: the only file that
// calls the CUDA runtime API for memory and devices.
#include <cuda_runtime.h>

#include "core/cuda_check.h"
#include "core/cuda_runtime.h"
#include "core/error.h"

namespace unet::cuda_rt {

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
  const cudaMemcpyKind k = kind == CopyKind::HostToDevice   ? cudaMemcpyHostToDevice
                           : kind == CopyKind::DeviceToHost ? cudaMemcpyDeviceToHost
                                                            : cudaMemcpyDeviceToDevice;
  UNET_CUDA_CHECK(cudaMemcpy(dst, src, bytes, k));
}

void memset(void* ptr, int byte_value, size_t bytes) {
  if (bytes) UNET_CUDA_CHECK(cudaMemset(ptr, byte_value, bytes));
}

void synchronize() { UNET_CUDA_CHECK(cudaDeviceSynchronize()); }

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
