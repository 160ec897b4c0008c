// core/allocator.cpp — CPU aligned allocation and the CUDA caching allocator.
#include "core/allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/cuda_runtime.h"
#include "core/error.h"

namespace unet {
namespace {

constexpr size_t kCpuAlignment = 64;
// Device blocks are rounded to 512 bytes; a cached block is reused for a request only if it is
// at most twice as large, so a small tensor never pins a huge block.
constexpr size_t kCudaRounding = 512;

class CudaCachingAllocator {
 public:
  void* allocate(size_t bytes) {
    const size_t size = round_up(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_blocks_.lower_bound(size);
    if (it != free_blocks_.end() && it->first <= 2 * size) {
      void* p = it->second;
      const size_t block = it->first;
      free_blocks_.erase(it);
      stats_.cached_bytes -= block;
      use(p, block);
      return p;
    }
    void* p = nullptr;
    try {
      p = cuda_rt::malloc(size);
    } catch (const OutOfMemoryError&) {
      release_cache_locked();
      p = cuda_rt::malloc(size);  // throws again, with the runtime's numbers, if still too big
    }
    ++stats_.device_allocations;
    use(p, size);
    return p;
  }

  void deallocate(void* p) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours: ignore rather than corrupt the cache
    const size_t block = it->second;
    live_.erase(it);
    stats_.bytes_in_use -= block;
    stats_.cached_bytes += block;
    free_blocks_.emplace(block, p);
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
  static size_t round_up(size_t bytes) {
    return bytes == 0 ? kCudaRounding : (bytes + kCudaRounding - 1) / kCudaRounding * kCudaRounding;
  }
  void use(void* p, size_t block) {
    live_.emplace(p, block);
    stats_.bytes_in_use += block;
    if (stats_.bytes_in_use > stats_.peak_bytes) stats_.peak_bytes = stats_.bytes_in_use;
  }
  void release_cache_locked() {
    for (auto& [size, p] : free_blocks_) cuda_rt::free(p);
    free_blocks_.clear();
    stats_.cached_bytes = 0;
  }

  std::mutex mutex_;
  std::multimap<size_t, void*> free_blocks_;
  std::unordered_map<void*, size_t> live_;
  MemoryStats stats_;
};

CudaCachingAllocator& cuda_allocator() {
  static auto* instance = new CudaCachingAllocator();  // lives until exit: tensors may outlive statics
  return *instance;
}

}  // namespace

void* allocate(Device device, size_t bytes) {
  if (device.is_cuda()) return cuda_allocator().allocate(bytes);
  const size_t rounded = (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  void* p = std::aligned_alloc(kCpuAlignment, rounded == 0 ? kCpuAlignment : rounded);
  if (!p) UNET_THROW(OutOfMemoryError, "host allocation of ", bytes, " bytes failed");
  return p;
}

void deallocate(Device device, void* ptr, size_t) noexcept {
  if (!ptr) return;
  if (device.is_cuda())
    cuda_allocator().deallocate(ptr);
  else
    std::free(ptr);
}

MemoryStats cuda_memory_stats() { return cuda_allocator().stats(); }
void cuda_reset_peak() { cuda_allocator().reset_peak(); }
void cuda_empty_cache() { cuda_allocator().empty_cache(); }

}  // namespace unet
