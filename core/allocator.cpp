// core/allocator.cpp — the caching allocator, over the CUDA runtime and over aligned host memory.
#include "core/allocator.h"

#include <cstdlib>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/cuda_runtime.h"
#include "core/error.h"

namespace unet {
namespace {

constexpr size_t kCpuAlignment = 64;
// Blocks are rounded to 512 bytes; a cached block is reused for a request only if it is at most
// twice as large, so a small tensor never pins a huge block.
constexpr size_t kRounding = 512;
// Host blocks from this size on go through the cache: fresh large host blocks come from mmap
// and cost a page fault per 4 KB page on first touch, every step (measured: ~8 % of a CPU
// training step in the kernel); smaller ones are cheap from malloc.
constexpr size_t kCpuCachedFrom = size_t{64} << 10;

void* host_malloc(size_t bytes) {
  void* p = std::aligned_alloc(kCpuAlignment, bytes);
  if (!p) UNET_THROW(OutOfMemoryError, "host allocation of ", bytes, " bytes failed");
  return p;
}
void host_free(void* p) { std::free(p); }
void* device_malloc(size_t bytes) { return cuda_rt::malloc(bytes); }
void device_free(void* p) { cuda_rt::free(p); }

class CachingAllocator {
 public:
  using Malloc = void* (*)(size_t);
  using Free = void (*)(void*);
  CachingAllocator(Malloc malloc_fn, Free free_fn) : malloc_(malloc_fn), free_(free_fn) {}

  // pool: 0 = the shared cache, else a private pool (open_pool) that keeps its blocks.
  void* allocate(size_t bytes, uint64_t pool = 0) {
    const size_t size = round_up(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    auto& free_blocks = pool ? pools_.at(pool).free_blocks : free_blocks_;
    auto it = free_blocks.lower_bound(size);
    if (it != free_blocks.end() && it->first <= 2 * size) {
      void* p = it->second;
      const size_t block = it->first;
      free_blocks.erase(it);
      stats_.cached_bytes -= block;
      use(p, block, pool);
      return p;
    }
    void* p = nullptr;
    try {
      p = malloc_(size);
    } catch (const OutOfMemoryError&) {
      release_cache_locked();
      p = malloc_(size);  // throws again, with the runtime's numbers, if still too big
    }
    ++stats_.device_allocations;
    use(p, size, pool);
    return p;
  }

  void deallocate(void* p) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours: ignore rather than corrupt the cache
    const Block block = it->second;
    live_.erase(it);
    stats_.bytes_in_use -= block.size;
    stats_.cached_bytes += block.size;
    const auto pool = block.pool ? pools_.find(block.pool) : pools_.end();
    (pool != pools_.end() ? pool->second.free_blocks : free_blocks_).emplace(block.size, p);
  }

  uint64_t open_pool() {
    std::lock_guard<std::mutex> lock(mutex_);
    const uint64_t id = ++last_pool_;
    pools_.emplace(id, Pool{});
    return id;
  }
  // The pool's free blocks join the shared cache; blocks still in use join it when freed.
  void close_pool(uint64_t id) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = pools_.find(id);
    if (it == pools_.end()) return;
    free_blocks_.merge(it->second.free_blocks);
    pools_.erase(it);
  }

  MemoryStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_bytes = stats_.bytes_in_use;
  }
  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cache_locked();
  }

 private:
  struct Block {
    size_t size;
    uint64_t pool;
  };
  struct Pool {
    std::multimap<size_t, void*> free_blocks;
  };
  static size_t round_up(size_t bytes) {
    return bytes == 0 ? kRounding : (bytes + kRounding - 1) / kRounding * kRounding;
  }
  void use(void* p, size_t block, uint64_t pool) {
    live_.emplace(p, Block{block, pool});
    stats_.bytes_in_use += block;
    if (stats_.bytes_in_use > stats_.peak_bytes) stats_.peak_bytes = stats_.bytes_in_use;
  }
  // The shared cache only: a pool's blocks belong to its graph.
  void release_cache_locked() {
    for (auto& [size, p] : free_blocks_) {
      free_(p);
      stats_.cached_bytes -= size;
    }
    free_blocks_.clear();
  }

  Malloc malloc_;
  Free free_;
  std::mutex mutex_;
  std::multimap<size_t, void*> free_blocks_;
  std::unordered_map<void*, Block> live_;
  std::map<uint64_t, Pool> pools_;
  uint64_t last_pool_ = 0;
  MemoryStats stats_;
};

// Both live until exit: tensors may outlive static destructors.
CachingAllocator& cuda_allocator() {
  static auto* instance = new CachingAllocator(device_malloc, device_free);
  return *instance;
}
CachingAllocator& cpu_allocator() {
  static auto* instance = new CachingAllocator(host_malloc, host_free);
  return *instance;
}

// The private pool this thread's CUDA allocations come from (0: the shared cache).
thread_local uint64_t tls_cuda_pool = 0;

}  // namespace

CudaMemoryPool::CudaMemoryPool() : id_(cuda_allocator().open_pool()) {}
CudaMemoryPool::~CudaMemoryPool() {
  if (tls_cuda_pool == id_) tls_cuda_pool = 0;
  cuda_allocator().close_pool(id_);
}
CudaMemoryPool::Use::Use(const CudaMemoryPool& pool) : previous_(tls_cuda_pool) { tls_cuda_pool = pool.id_; }
CudaMemoryPool::Use::~Use() { tls_cuda_pool = previous_; }

void* allocate(Device device, size_t bytes) {
  if (device.is_cuda()) return cuda_allocator().allocate(bytes, tls_cuda_pool);
  if (bytes >= kCpuCachedFrom) return cpu_allocator().allocate(bytes);
  const size_t rounded = (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  return host_malloc(rounded == 0 ? kCpuAlignment : rounded);
}

void deallocate(Device device, void* ptr, size_t bytes) noexcept {
  if (!ptr) return;
  if (device.is_cuda())
    cuda_allocator().deallocate(ptr);
  else if (bytes >= kCpuCachedFrom)
    cpu_allocator().deallocate(ptr);
  else
    host_free(ptr);
}

MemoryStats cuda_memory_stats() { return cuda_allocator().stats(); }
void cuda_reset_peak() { cuda_allocator().reset_peak(); }
void cuda_empty_cache() { cuda_allocator().empty_cache(); }
MemoryStats cpu_cached_memory_stats() { return cpu_allocator().stats(); }
void cpu_empty_cache() { cpu_allocator().empty_cache(); }

}  // namespace unet
