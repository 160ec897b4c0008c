// core/parallel.cpp — the thread pool behind parallel_for. One pool for the process, created on
// first use; the caller participates, so n threads means n-1 workers plus the caller.
#include "core/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"

namespace unet {
namespace {

int default_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// A hint to the core that this is a polling loop (it saves power and frees the sibling thread).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Why the pool spins before it sleeps: a training step opens hundreds of parallel regions back to
// back, most of them shorter than a millisecond, and waking a thread that sleeps on a futex costs
// tens of microseconds (more in a virtual machine) — on two cores that was a measurable part of
// the step. So a worker that finished a region, and the caller waiting for the workers, first
// poll for a while (kSpin) and only then block on the condition variable. The spin is bounded so
// that a pool left idle (between epochs, in a program that does other work) sleeps. It does not
// yield while it polls: the scheduler would hand the core to any other runnable process for a
// whole time slice (measured: a training step 3× slower beside a compiler at nice 19).
class ThreadPool {
 public:
  ~ThreadPool() { resize(1); }

  int size() {
    std::lock_guard<std::mutex> lock(config_mutex_);
    return static_cast<int>(workers_.size()) + 1;
  }

  void resize(int n) {
    std::lock_guard<std::mutex> lock(config_mutex_);
    stop_workers();
    // The generation is read here, not in the new thread: a worker that started late would
    // otherwise see the first run()'s generation as "old" and sleep through it (deadlock).
    const uint64_t current = generation_.load();
    for (int i = 0; i + 1 < n; ++i) workers_.emplace_back([this, current] { worker_loop(current); });
  }

  // Runs task(chunk) for chunk in [0, chunks) using the workers and the calling thread.
  void run(int64_t chunks, const std::function<void(int64_t)>& task) {
    std::unique_lock<std::mutex> config_lock(config_mutex_);  // one parallel region at a time
    if (workers_.empty() || chunks <= 1) {
      for (int64_t c = 0; c < chunks; ++c) task(c);
      return;
    }
    // No worker is inside a region now (pending_ reached 0 at the end of the last one), so the
    // region's description can be written plainly; the generation's release publishes it.
    task_ = &task;
    total_chunks_ = chunks;
    next_chunk_.store(0, std::memory_order_relaxed);
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    {
      // Under the mutex, so that a worker between its last check and its sleep cannot miss it.
      std::lock_guard<std::mutex> lock(mutex_);
      first_error_ = nullptr;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    work_on_chunks();
    wait_for([this] { return pending_.load(std::memory_order_acquire) == 0; }, done_);
    task_ = nullptr;
    if (first_error_) std::rethrow_exception(first_error_);
  }

 private:
  static constexpr auto kSpin = std::chrono::microseconds(200);

  // Polls pred for up to kSpin, then sleeps on cv until pred holds (cv is notified under mutex_
  // by whoever makes pred true).
  template <class Pred>
  void wait_for(Pred pred, std::condition_variable& cv) {
    const auto until = std::chrono::steady_clock::now() + kSpin;
    for (int polls = 0;; ++polls) {
      if (pred()) return;
      if ((polls & 63) == 63) {
        if (std::chrono::steady_clock::now() >= until) break;
      }
      cpu_relax();
    }
    std::unique_lock<std::mutex> lock(mutex_);
    cv.wait(lock, pred);
  }

  void work_on_chunks() {
    for (;;) {
      const int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
      if (c >= total_chunks_) return;
      try {
        (*task_)(c);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!first_error_) first_error_ = std::current_exception();
      }
    }
  }

  void worker_loop(uint64_t seen) {
    for (;;) {
      wait_for([&] { return stopping_.load(std::memory_order_acquire) ||
                            generation_.load(std::memory_order_acquire) != seen; },
               wake_);
      if (stopping_.load(std::memory_order_acquire)) return;
      seen = generation_.load(std::memory_order_acquire);
      work_on_chunks();
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        // The caller may have gone to sleep; notifying under the mutex cannot be lost.
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_.store(true, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    stopping_.store(false, std::memory_order_release);
  }

  std::mutex config_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t total_chunks_ = 0;
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
  std::exception_ptr first_error_;  // written under mutex_ by the thread whose chunk threw
};

ThreadPool& pool() {
  static ThreadPool* instance = [] {
    auto* p = new ThreadPool();  // leaked on purpose: workers must outlive static destructors
    p->resize(default_threads());
    return p;
  }();
  return *instance;
}

thread_local bool inside_parallel_region = false;

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  UNET_CHECK(n >= 0, ValueError, "set_num_threads(", n, "): n must be >= 1, or 0 for the default");
  pool().resize(n == 0 ? default_threads() : n);
}

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& body) {
  UNET_CHECK(grain >= 1, ValueError, "parallel_for: grain must be >= 1, got ", grain);
  if (end <= begin) return;
  const int64_t n = end - begin;
  // Nested calls (a body that calls parallel_for) run inline: the pool is busy with the outer
  // region, and waiting for it from inside would deadlock.
  if (inside_parallel_region) {
    body(begin, end);
    return;
  }
  const int threads = num_threads();
  // Up to 16 chunks per thread, taken in turn by whichever thread is free: a region ends when its
  // last chunk does, so coarse chunks left one thread idle at the end of most regions (the
  // engines' lists of 9–96 tasks fell into chunks of 2–12 tasks). bench/step, CPU configuration,
  // 2 threads, perf (2026-12-03): the caller spun waiting for the worker in 8 % of its samples
  // with 4 chunks per thread, 5 % with 16. A chunk costs an atomic increment.
  const int64_t max_chunks = std::max<int64_t>(1, n / grain);
  const int64_t chunks = std::min<int64_t>(max_chunks, static_cast<int64_t>(threads) * 16);
  if (chunks <= 1) {
    body(begin, end);
    return;
  }
  const int64_t step = (n + chunks - 1) / chunks;
  pool().run(chunks, [&](int64_t c) {
    const int64_t b = begin + c * step;
    const int64_t e = std::min(end, b + step);
    if (b >= e) return;
    const bool was_inside = inside_parallel_region;
    inside_parallel_region = true;
    try {
      body(b, e);
    } catch (...) {
      inside_parallel_region = was_inside;
      throw;
    }
    inside_parallel_region = was_inside;
  });
}

}  // namespace unet
