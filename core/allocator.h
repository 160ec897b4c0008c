// core/allocator.h — where tensor memory comes from.
//   CPU:  64-byte aligned host memory (SIMD-friendly); blocks of 64 KB and more through a caching
//         allocator like the CUDA one (a fresh large block costs a page fault per page on first
//         touch, every step), smaller ones straight from the system.
//   CUDA: a caching allocator over cuda_rt::malloc. Freed blocks are kept and reused for later
//         requests of a similar size (a training step allocates the same shapes every
//         iteration, so after the first step nothing reaches cudaMalloc). It reports the bytes
//         in use and their peak; on out-of-memory it frees its cache and retries once before
//         throwing OutOfMemoryError.
#pragma once

#include <cstddef>

#include "core/device.h"

namespace unet {

struct MemoryStats {
  size_t bytes_in_use = 0;   // held by live tensors
  size_t peak_bytes = 0;     // max of bytes_in_use since start or reset_peak()
  size_t cached_bytes = 0;   // freed blocks kept for reuse
  size_t device_allocations = 0;  // calls that reached the backend (cuda_rt::malloc, aligned_alloc)
};

void* allocate(Device device, size_t bytes);
// bytes must be the size passed to allocate (it tells which CPU pool the block came from).
void deallocate(Device device, void* ptr, size_t bytes) noexcept;

MemoryStats cuda_memory_stats();
void cuda_reset_peak();
void cuda_empty_cache();  // return every cached block to the runtime
MemoryStats cpu_cached_memory_stats();  // the CPU cache's blocks (64 KB and more) only
void cpu_empty_cache();

}  // namespace unet
