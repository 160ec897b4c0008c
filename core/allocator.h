// core/allocator.h — where tensor memory comes from.
//   CPU:  64-byte aligned host memory (SIMD-friendly); blocks of 64 KB and more through a caching
//         allocator like the CUDA one (a fresh large block costs a page fault per page on first
//         touch, every step), smaller ones straight from the system.
//   CUDA: a caching allocator over cuda_rt::malloc. Freed blocks are kept and reused for later
//         requests of a similar size (a training step allocates the same shapes every
//         iteration, so after the first step nothing reaches cudaMalloc). It reports the bytes
//         in use and their peak; on out-of-memory it frees its cache and retries once before
//         throwing OutOfMemoryError. A captured graph's memory comes from a private pool
//         (CudaMemoryPool), so its addresses are never handed to other tensors between replays.
#pragma once

#include <cstddef>
#include <cstdint>

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

// A private pool of CUDA memory (core/cuda_graph.h: a captured graph's). While a Use scope is
// alive on a thread, that thread's CUDA allocations come from the pool, and blocks allocated from
// it return to it when freed — whenever and on whichever thread — never to the shared cache, so
// a graph replaying into them cannot overwrite another tensor. When the pool is destroyed its free
// blocks join the shared cache (blocks still in use join it when freed). The statistics count a
// pool's blocks like any others.
class CudaMemoryPool {
 public:
  CudaMemoryPool();
  ~CudaMemoryPool();
  CudaMemoryPool(const CudaMemoryPool&) = delete;
  CudaMemoryPool& operator=(const CudaMemoryPool&) = delete;
  class [[nodiscard]] Use {
   public:
    explicit Use(const CudaMemoryPool& pool);
    ~Use();
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;

   private:
    uint64_t previous_;
  };

 private:
  uint64_t id_;
};

}  // namespace unet
