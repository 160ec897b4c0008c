// core/allocator.cpp — the caching allocator, over the CUDA runtime and over aligned host memory,
// and the per-device accounts that the memory limit and the out-of-memory messages read.
#include "core/allocator.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
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

std::string human_bytes(size_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

// What one device type holds: the memory limit caps `held` (in use + cached). Atomic, because
// the CPU's small blocks are counted without a lock.
struct Account {
  const char* limit_variable;
  std::atomic<size_t> held{0}, in_use{0}, peak{0}, limit{0};

  explicit Account(const char* variable) : limit_variable(variable) {
    if (const char* text = std::getenv(variable); text && *text) limit = parse_memory_size(text, variable);
  }
  // Counts `n` more held bytes unless that passes the limit.
  bool try_hold(size_t n) {
    const size_t before = held.fetch_add(n);
    const size_t cap = limit.load();
    if (cap != 0 && before + n > cap) {
      held.fetch_sub(n);
      return false;
    }
    return true;
  }
  void use(size_t n) {
    const size_t now = in_use.fetch_add(n) + n;
    size_t p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
  }
};

Account& account(DeviceType type) {
  static Account cpu("UNET_CPU_MEMORY_LIMIT"), cuda("UNET_CUDA_MEMORY_LIMIT");
  return type == DeviceType::CUDA ? cuda : cpu;
}

// The OutOfMemoryError of a request for `bytes` that `why` refused, with what the device holds.
[[noreturn]] void throw_out_of_memory(DeviceType type, size_t bytes, const std::string& why) {
  const Account& a = account(type);
  const size_t in_use = a.in_use.load(), held = a.held.load(), limit = a.limit.load();
  const char* where = type == DeviceType::CPU ? "host"
                      : cuda_rt::is_simulated() ? "CUDA device (simulated)"
                                                : "CUDA device";
  throw OutOfMemoryError(unet::detail::message(
      "out of ", where, " memory: ", human_bytes(bytes), " (", bytes, " bytes) were asked for and ", why,
      "; tensors hold ", human_bytes(in_use), " (peak ", human_bytes(a.peak.load()), "), the cache ",
      human_bytes(held > in_use ? held - in_use : 0),
      limit ? unet::detail::message(", the limit is ", human_bytes(limit), " (", a.limit_variable, ")") : std::string()));
}

void* host_malloc(size_t bytes) {
  void* p = std::aligned_alloc(kCpuAlignment, bytes);
  if (!p) UNET_THROW(OutOfMemoryError, "the system refused (aligned_alloc returned null)");
  return p;
}
void host_free(void* p) { std::free(p); }
void* device_malloc(size_t bytes) { return cuda_rt::malloc(bytes); }
void device_free(void* p) { cuda_rt::free(p); }

class CachingAllocator {
 public:
  using Malloc = void* (*)(size_t);
  using Free = void (*)(void*);
  CachingAllocator(DeviceType type, Malloc malloc_fn, Free free_fn)
      : type_(type), account_(account(type)), malloc_(malloc_fn), free_(free_fn) {}

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
    // A new block: within the limit (the cache goes first), then from the backend (the cache goes
    // first there too).
    if (!account_.try_hold(size)) {
      release_cache_locked();
      if (!account_.try_hold(size)) throw_out_of_memory(type_, bytes, "that passes the memory limit");
    }
    void* p = nullptr;
    try {
      try {
        p = malloc_(size);
      } catch (const OutOfMemoryError&) {
        release_cache_locked();
        p = malloc_(size);
      }
    } catch (const OutOfMemoryError& e) {
      account_.held.fetch_sub(size);
      throw_out_of_memory(type_, bytes, e.what());
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
    account_.in_use.fetch_sub(block.size);
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
    account_.use(block);
  }
  // The shared cache only: a pool's blocks belong to its graph.
  void release_cache_locked() {
    size_t released = 0;
    for (auto& [size, p] : free_blocks_) {
      free_(p);
      released += size;
    }
    free_blocks_.clear();
    stats_.cached_bytes -= released;
    account_.held.fetch_sub(released);
  }

  DeviceType type_;
  Account& account_;
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
  static auto* instance = new CachingAllocator(DeviceType::CUDA, device_malloc, device_free);
  return *instance;
}
CachingAllocator& cpu_allocator() {
  static auto* instance = new CachingAllocator(DeviceType::CPU, host_malloc, host_free);
  return *instance;
}

// Small host blocks: straight from the system, counted in the CPU account.
void* small_host_allocate(size_t bytes) {
  Account& a = account(DeviceType::CPU);
  if (!a.try_hold(bytes)) {
    cpu_allocator().empty_cache();
    if (!a.try_hold(bytes)) throw_out_of_memory(DeviceType::CPU, bytes, "that passes the memory limit");
  }
  void* p = std::aligned_alloc(kCpuAlignment, bytes);
  if (!p) {
    cpu_allocator().empty_cache();
    p = std::aligned_alloc(kCpuAlignment, bytes);
  }
  if (!p) {
    a.held.fetch_sub(bytes);
    throw_out_of_memory(DeviceType::CPU, bytes, "the system refused (aligned_alloc returned null)");
  }
  a.use(bytes);
  return p;
}

void small_host_free(void* p, size_t bytes) {
  Account& a = account(DeviceType::CPU);
  a.in_use.fetch_sub(bytes);
  a.held.fetch_sub(bytes);
  std::free(p);
}

size_t small_block_size(size_t bytes) {
  const size_t rounded = (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  return rounded == 0 ? kCpuAlignment : rounded;
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
  return small_host_allocate(small_block_size(bytes));
}

void deallocate(Device device, void* ptr, size_t bytes) noexcept {
  if (!ptr) return;
  if (device.is_cuda())
    cuda_allocator().deallocate(ptr);
  else if (bytes >= kCpuCachedFrom)
    cpu_allocator().deallocate(ptr);
  else
    small_host_free(ptr, small_block_size(bytes));
}

MemoryStats cuda_memory_stats() { return cuda_allocator().stats(); }
void cuda_reset_peak() { cuda_allocator().reset_peak(); }
void cuda_empty_cache() { cuda_allocator().empty_cache(); }
MemoryStats cpu_cached_memory_stats() { return cpu_allocator().stats(); }
void cpu_empty_cache() { cpu_allocator().empty_cache(); }

MemoryStats cpu_memory_stats() {
  MemoryStats s = cpu_allocator().stats();
  const Account& a = account(DeviceType::CPU);
  s.bytes_in_use = a.in_use.load();
  s.peak_bytes = a.peak.load();
  return s;
}

void set_memory_limit(DeviceType type, size_t bytes) { account(type).limit = bytes; }
size_t memory_limit(DeviceType type) { return account(type).limit.load(); }

size_t parse_memory_size(const char* text, const char* what) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long number = std::strtoull(text, &end, 10);
  size_t shift = 0;
  if (end != text && *end) {
    switch (*end == 'k' ? 'K' : *end == 'm' ? 'M' : *end == 'g' ? 'G' : *end) {
      case 'K': shift = 10; ++end; break;
      case 'M': shift = 20; ++end; break;
      case 'G': shift = 30; ++end; break;
      default: break;
    }
  }
  const bool ok = end != text && *end == '\0' && errno == 0 && text[0] != '-' && number <= (SIZE_MAX >> shift);
  UNET_CHECK(ok, ValueError, what, "='", text, "' is not a memory size: write bytes, or a number with K, M or G "
             "(e.g. 512M), or 0 for no limit");
  return static_cast<size_t>(number) << shift;
}

}  // namespace unet
