// core/parallel.cpp — the thread pool behind parallel_for. One pool for the process, created on
// first use; the caller participates, so n threads means n-1 workers plus the caller.
#include "core/parallel.h"

#include <algorithm>
#include <atomic>
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
    const uint64_t current = generation_;
    for (int i = 0; i + 1 < n; ++i) workers_.emplace_back([this, current] { worker_loop(current); });
  }

  // Runs task(chunk) for chunk in [0, chunks) using the workers and the calling thread.
  void run(int64_t chunks, const std::function<void(int64_t)>& task) {
    std::unique_lock<std::mutex> config_lock(config_mutex_);  // one parallel region at a time
    if (workers_.empty() || chunks <= 1) {
      for (int64_t c = 0; c < chunks; ++c) task(c);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &task;
      total_chunks_ = chunks;
      next_chunk_.store(0);
      pending_ = static_cast<int>(workers_.size());
      first_error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    work_on_chunks();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    task_ = nullptr;
    if (first_error_) std::rethrow_exception(first_error_);
  }

 private:
  void work_on_chunks() {
    for (;;) {
      const int64_t c = next_chunk_.fetch_add(1);
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
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
      }
      work_on_chunks();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --pending_;
      }
      done_.notify_one();
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    stopping_ = false;
  }

  std::mutex config_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t total_chunks_ = 0;
  std::atomic<int64_t> next_chunk_{0};
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::exception_ptr first_error_;
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
  const int64_t max_chunks = std::max<int64_t>(1, n / grain);
  const int64_t chunks = std::min<int64_t>(max_chunks, static_cast<int64_t>(threads) * 4);
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
