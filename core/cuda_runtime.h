// core/cuda_runtime.h — the ONE wrapper around the CUDA runtime API. Everything else in the
// library allocates, copies and synchronises device memory through these functions.
//
// Two implementations, chosen by the build: cuda_runtime_gpu.cpp calls the real runtime
// (cudaMalloc, cudaMemcpy, ...); cuda_runtime_sim.cpp backs the simulated CUDA device with host
// memory, so kernels run by the simulator read and write ordinary pointers.
#pragma once

#include <cstddef>
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

}  // namespace unet::cuda_rt
