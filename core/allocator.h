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
//
// Out of memory: an allocation the system or the GPU refuses, or one that would take the
// device's memory limit (below) past its value, frees the cache, retries, and then throws
// OutOfMemoryError naming the request, the bytes in use by tensors, their peak, the cache and
// the limit. Nothing else changes: a caller that catches it (train_em stops and points at its
// last checkpoint) can still save or exit cleanly.
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
// All host tensor memory: bytes_in_use and peak_bytes count the small blocks too; cached_bytes and
// device_allocations are the cache's.
MemoryStats cpu_memory_stats();
void cpu_empty_cache();

// A cap on the tensor memory of a device type (bytes in use + cached; every CUDA device alike), so
// that running out of memory can be tested, or a process kept within a budget. 0 = no cap (the
// default). The first allocation reads UNET_CPU_MEMORY_LIMIT and UNET_CUDA_MEMORY_LIMIT from the
// environment: bytes, or a number with a K, M or G suffix (powers of 1024), e.g. "512M".
void set_memory_limit(DeviceType type, size_t bytes);
size_t memory_limit(DeviceType type);
// "512M" -> 536870912; throws ValueError naming `what` for anything else.
size_t parse_memory_size(const char* text, const char* what);

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
