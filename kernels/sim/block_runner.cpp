// kernels/sim/block_runner.cpp — the fiber scheduler behind the simulator: runs one block's
// threads as fibers, implements __syncthreads() and its variants, and turns a stuck block or a
// throwing kernel into a unet::KernelError. Warp collectives are in warp.cpp.
#include "kernels/sim/block_runner.h"

#include <sys/mman.h>
#include <unistd.h>

// Fiber stacks are announced to valgrind when its header is around, so memcheck runs of the
// simulator do not drown in false reports about stack switches. Costs nothing outside valgrind.
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNET_SIM_STACK_REGISTER(low, high) VALGRIND_STACK_REGISTER(low, high)
#define UNET_SIM_STACK_DEREGISTER(id) VALGRIND_STACK_DEREGISTER(id)
#else
#define UNET_SIM_STACK_REGISTER(low, high) 0u
#define UNET_SIM_STACK_DEREGISTER(id) ((void)(id))
#endif

#include <algorithm>
#include <cstring>
#include <exception>
#include <map>
#include <sstream>

namespace unet::sim::detail {

constinit thread_local KernelContext tls_kernel{};
constinit thread_local BlockRunner* tls_active_runner = nullptr;

namespace {

size_t page_size() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

}  // namespace

std::string format_index(uint3 v) {
  std::ostringstream s;
  s << "(" << v.x << "," << v.y << "," << v.z << ")";
  return s.str();
}

const char* barrier_name(BarrierKind kind) {
  switch (kind) {
    case BarrierKind::Sync: return "__syncthreads()";
    case BarrierKind::Count: return "__syncthreads_count()";
    case BarrierKind::And: return "__syncthreads_and()";
    case BarrierKind::Or: return "__syncthreads_or()";
  }
  return "barrier";
}

// ---- stacks --------------------------------------------------------------------------------------

StackPool::~StackPool() {
  for (unsigned id : valgrind_ids_) UNET_SIM_STACK_DEREGISTER(id);
  for (const PooledStack& s : all_) {
    sanitizer_destroy_fiber(s.tsan_fiber);
    munmap(static_cast<char*>(s.top) - kFiberStackBytes - page_size(), kFiberStackBytes + page_size());
  }
}

PooledStack StackPool::acquire() {
  if (!free_.empty()) {
    const PooledStack s = free_.back();
    free_.pop_back();
    return s;
  }
  // NORESERVE: only the pages a fiber touches are committed, so 1024 stacks stay cheap.
  const size_t total = kFiberStackBytes + page_size();
  void* base = mmap(nullptr, total, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) {
    throw OutOfMemoryError(unet::detail::message("CUDA simulator: cannot map a fiber stack of ",
                                                 total, " bytes"));
  }
  // Guard page at the low end: a kernel that overflows its stack faults instead of corrupting
  // the neighbouring fiber.
  mprotect(base, page_size(), PROT_NONE);
  void* top = static_cast<char*>(base) + total;
  valgrind_ids_.push_back(UNET_SIM_STACK_REGISTER(static_cast<char*>(base) + page_size(), top));
  all_.push_back({top, sanitizer_create_fiber()});
  return all_.back();
}

// ---- running a block -------------------------------------------------------------------------

BlockRunner& this_thread_runner() {
  static thread_local BlockRunner runner;
  return runner;
}

void BlockRunner::run(const KernelCall& call, uint3 block_idx, dim3 block_dim, dim3 grid_dim,
                      size_t dynamic_smem_bytes, const LaunchSite& site,
                      const ScheduleConfig& schedule) {
  call_ = &call;
  site_ = site;
  schedule_ = schedule;
  block_idx_ = block_idx;
  block_dim_ = block_dim;
  n_ = block_dim.x * block_dim.y * block_dim.z;

  // Random schedules depend on the block, not on which OS thread runs it: reproducible.
  rng_state_ = schedule.seed * 0x9E3779B97F4A7C15ull ^
               (uint64_t{block_idx.x} | uint64_t{block_idx.y} << 32) ^
               (uint64_t{block_idx.z} * 0xBF58476D1CE4E5B9ull);

  // Thread indices only change with the block shape (most grids launch one shape).
  if (threads_.size() != n_ || threads_dim_.x != block_dim.x || threads_dim_.y != block_dim.y ||
      threads_dim_.z != block_dim.z) {
    threads_.assign(n_, SimThread{});
    order_.resize(n_);
    unsigned i = 0;
    for (unsigned z = 0; z < block_dim.z; ++z)
      for (unsigned y = 0; y < block_dim.y; ++y)
        for (unsigned x = 0; x < block_dim.x; ++x) threads_[i++].idx = uint3{x, y, z};
    threads_dim_ = block_dim;
  }
  for (unsigned i = 0; i < n_; ++i) {
    threads_[i].state = ThreadState::NotStarted;
    threads_[i].async.clear();  // copies a thread left in flight die with its block
    order_[i] = schedule.order == Schedule::Reversed ? n_ - 1 - i : i;
  }
  warps_.resize((n_ + 31) / 32);
  for (auto& w : warps_) w.clear();

  dynamic_smem_.resize(std::max<size_t>(dynamic_smem_bytes, 16));
  unsigned char poison[4];
  std::memcpy(poison, &kSharedMemoryPoison, 4);
  for (size_t i = 0; i < dynamic_smem_bytes; ++i) dynamic_smem_[i] = poison[i % 4];

  tls_kernel.block_idx = block_idx;
  tls_kernel.block_dim = block_dim;
  tls_kernel.grid_dim = grid_dim;
  tls_kernel.dynamic_smem = dynamic_smem_.data();
  tls_active_runner = this;
  scheduler_stack_.tsan_fiber = sanitizer_current_fiber();

  runnable_ = n_;
  done_ = 0;
  at_barrier_ = 0;
  barrier_sum_ = 0;
  barrier_mismatch_ = false;
  aborting_ = false;
  failure_.reset();

  for (;;) {
    next_order();
    pass_pos_ = 0;
    if (SimThread* first = next_runnable()) {
      prepare(*first);
      jump(first, nullptr);  // returns at the end of the pass
    }
    if (failure_ || done_ == n_) break;
    if (runnable_ > 0) continue;
    if (at_barrier_ == n_ && !barrier_mismatch_) {
      release_barrier();
      continue;
    }
    failure_ = describe_stall();
    break;
  }

  if (failure_) abort_all();
  tls_active_runner = nullptr;
  call_ = nullptr;
  current_ = nullptr;
  if (failure_) throw KernelError(*failure_);
}

void BlockRunner::next_order() {
  if (schedule_.order != Schedule::Random) return;
  for (unsigned i = n_; i > 1; --i) {
    // splitmix64: tiny state, good enough to shuffle, cheap to seed per block.
    uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    const unsigned j = static_cast<unsigned>((z ^ (z >> 31)) % i);
    std::swap(order_[i - 1], order_[j]);
  }
}

void BlockRunner::fiber_entry(fctx::transfer_t from) {
  BlockRunner* self = tls_active_runner;
  sanitizer_after_switch(nullptr, from.data == nullptr ? &self->scheduler_stack_ : nullptr);
  self->land(from);
  SimThread& me = *self->current_;
  try {
    self->call_->invoke(self->call_->call);
  } catch (const ForcedUnwind&) {
  } catch (const SimFault& e) {
    if (!self->failure_) self->failure_ = e.what();
  } catch (const std::exception& e) {
    if (!self->failure_) {
      self->failure_ = unet::detail::message("exception thrown inside the kernel by thread ",
                                             self->thread_name(&me - self->threads_.data()), " ",
                                             self->block_context(), ": ", e.what());
    }
  } catch (...) {
    if (!self->failure_) {
      self->failure_ = unet::detail::message(
          "unknown exception (not a std::exception) thrown inside the kernel by thread ",
          self->thread_name(&me - self->threads_.data()), " ", self->block_context());
    }
  }
  me.state = ThreadState::Done;
  ++self->done_;
  sanitizer_fiber_leaves_for_good();
  self->switch_away(&me);  // never comes back: whoever lands recycles this stack
}

// Resumes every fiber that is suspended mid-kernel so that it unwinds (ForcedUnwind).
void BlockRunner::abort_all() {
  aborting_ = true;
  for (SimThread& t : threads_) {
    if (t.context == nullptr || t.state == ThreadState::Done) continue;
    prepare(t);
    jump(&t, nullptr);
  }
  aborting_ = false;
}

// ---- block barriers ------------------------------------------------------------------------------

[[gnu::always_inline]] inline int BlockRunner::barrier(BarrierKind kind, int predicate, const char* file, int line) {
  SimThread& me = *current_;
  const WaitSite site{file, line};
  if (at_barrier_ == 0) {
    barrier_site_ = site;
    barrier_kind_ = kind;
  } else if (kind != barrier_kind_ || !same_site(site, barrier_site_)) {
    barrier_mismatch_ = true;  // can never complete; reported when the block is stuck
  }
  me.state = ThreadState::AtBarrier;
  me.site = site;
  me.barrier = kind;
  ++at_barrier_;
  barrier_sum_ += predicate;
  suspend();
  return barrier_result_;
}

void BlockRunner::release_barrier() {
  switch (barrier_kind_) {
    case BarrierKind::Sync: barrier_result_ = 0; break;
    case BarrierKind::Count: barrier_result_ = barrier_sum_; break;
    case BarrierKind::And: barrier_result_ = barrier_sum_ == static_cast<int>(n_) ? 1 : 0; break;
    case BarrierKind::Or: barrier_result_ = barrier_sum_ > 0 ? 1 : 0; break;
  }
  for (SimThread& t : threads_) t.state = ThreadState::Runnable;
  runnable_ = n_;
  at_barrier_ = 0;
  barrier_sum_ = 0;
}

int block_barrier(BarrierKind kind, int predicate, const char* file, int line) {
  BlockRunner* runner = tls_active_runner;
  if (runner == nullptr) {
    throw KernelError(unet::detail::message(barrier_name(kind), " at ", file, ":", line,
                                            " called outside a simulated kernel"));
  }
  return runner->barrier(kind, predicate, file, line);
}

}  // namespace unet::sim::detail
