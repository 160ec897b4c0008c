// kernels/sim/block_runner.h — internal to the simulator: runs one thread block as cooperatively
// scheduled fibers on the calling OS thread (one BlockRunner per OS thread, reused by every
// block that thread runs).
//
// Each simulated thread runs on its own Boost.Context fiber (make_fcontext / jump_fcontext: a
// switch is a few register saves, no syscall). The scheduler makes passes over the threads in
// the schedule's order; a thread runs until it finishes or waits (block barrier, warp
// collective), then jumps straight to the next runnable thread of the pass. Stacks are pooled per OS thread, so a kernel without barriers
// runs every thread on the same hot stack. When nothing is runnable and some threads still wait,
// the block is stuck: the runner unwinds every fiber and reports what each thread waits for.
#pragma once

#include <boost/context/detail/fcontext.hpp>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/sim/runtime.h"
#include "kernels/sim/sanitizer_fibers.h"
#include "kernels/sim/sim.h"

namespace unet::sim::detail {

namespace fctx = boost::context::detail;

// A kernel bug the simulator found inside a fiber (bad shuffle width, lane not in its mask...).
// Thrown in the faulting fiber so it unwinds; reported as is (it is already a full message).
class SimFault : public KernelError {
  using KernelError::KernelError;
};

// Thrown from a waiting fiber's suspension point when the block is aborted, so the fiber's stack
// unwinds (destructors run) before it is reused. Not a std::exception on purpose.
struct ForcedUnwind {};

enum class ThreadState : uint8_t { NotStarted, Runnable, Running, AtBarrier, AtWarp, Done };

struct WaitSite {
  const char* file = nullptr;
  int line = 0;
};
inline bool same_site(const WaitSite& a, const WaitSite& b) {
  return a.line == b.line && (a.file == b.file || std::strcmp(a.file, b.file) == 0);
}

// One thread's cp.async copies in flight (kernels/sim/tensor_core.cpp). The source is read when
// the copy is issued; the destination is poisoned then and gets the data only when a
// cp.async.wait_group / wait_all lets the copy's group land, so a read before the wait sees
// poison, as a missing __syncthreads() shows as a schedule-dependent result.
struct AsyncCopy {
  unsigned char* dst = nullptr;
  unsigned char data[16] = {};
  uint8_t bytes = 0;
};
struct AsyncCopies {
  std::vector<AsyncCopy> copies;   // oldest first: committed groups, then the uncommitted ones
  std::vector<uint32_t> groups;    // sizes of the committed groups, oldest first
  void clear() {
    copies.clear();
    groups.clear();
  }
};

struct SimThread {
  uint3 idx{};
  ThreadState state = ThreadState::NotStarted;
  fctx::fcontext_t context = nullptr;
  void* stack = nullptr;                // top (highest address) of its stack while it runs
  void* tsan_fiber = nullptr;           // that stack's ThreadSanitizer fiber (sanitizer_fibers.h)
  WaitSite site;                        // where it waits (barrier or collective)
  BarrierKind barrier = BarrierKind::Sync;
  WarpOp warp_op = WarpOp::Sync;
  const char* warp_name = nullptr;      // the instruction of a WarpOp::Exchange it waits at
  uint64_t result = 0;                  // its result of the last warp collective
  AsyncCopies async;                    // its cp.async copies not yet landed
};

// One warp collective in progress: the lanes named in `mask` that have arrived so far.
struct Collective {
  WarpOp op = WarpOp::Sync;
  unsigned mask = 0;
  unsigned arrived = 0;
  int width = 32;
  ExchangeFn exchange = nullptr;  // WarpOp::Exchange: what computes the lanes' results
  const char* name = nullptr;     // WarpOp::Exchange: the instruction, for messages
  WaitSite site;
  uint64_t values[32] = {};
  int operands[32] = {};
};

// A fiber stack of kFiberStackBytes: its top (highest address) and its TSan fiber (null outside
// ThreadSanitizer builds).
struct PooledStack {
  void* top = nullptr;
  void* tsan_fiber = nullptr;
};

// mmap'ed fiber stacks with a guard page below each, kept for reuse by this OS thread.
class StackPool {
 public:
  StackPool() = default;
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;
  ~StackPool();
  PooledStack acquire();
  void release(const PooledStack& stack) { free_.push_back(stack); }

 private:
  std::vector<PooledStack> free_;
  std::vector<PooledStack> all_;
  std::vector<unsigned> valgrind_ids_;
};

class BlockRunner {
 public:
  // Runs block `block_idx` to completion; throws KernelError (already formatted) on a kernel bug.
  void run(const KernelCall& call, uint3 block_idx, dim3 block_dim, dim3 grid_dim,
           size_t dynamic_smem_bytes, const LaunchSite& site, const ScheduleConfig& schedule);

  // Called from fibers through the built-ins.
  int barrier(BarrierKind kind, int predicate, const char* file, int line);
  uint64_t collective(WarpOp op, unsigned mask, uint64_t value, int operand, int width,
                      const char* file, int line, ExchangeFn exchange = nullptr,
                      const char* name = nullptr);
  // The calling simulated thread's cp.async state.
  AsyncCopies& async_copies() { return current_->async; }
  // Throws the SimFault that reports a kernel bug at file:line by the running thread.
  [[noreturn]] void fault(const std::string& what, const char* file, int line);

  bool running() const { return call_ != nullptr; }

 private:
  static void fiber_entry(fctx::transfer_t from);
  SimThread* next_runnable();
  void prepare(SimThread& thread);
  void jump(SimThread* to, SimThread* self);
  void land(fctx::transfer_t from);
  void switch_away(SimThread* self);
  void suspend();
  void next_order();
  void release_barrier();
  void abort_all();
  void complete(Collective& c, unsigned warp);

  // Messages.
  std::string thread_name(unsigned linear) const;
  std::string block_context() const;
  std::string describe_wait(unsigned linear) const;
  std::string describe_stall() const;

  const KernelCall* call_ = nullptr;
  LaunchSite site_;
  ScheduleConfig schedule_;
  uint64_t rng_state_ = 0;
  uint3 block_idx_{};
  dim3 block_dim_{};
  unsigned n_ = 0;

  std::vector<SimThread> threads_;
  dim3 threads_dim_{0, 0, 0};  // the block shape threads_[i].idx was computed for
  std::vector<unsigned> order_;
  std::vector<std::vector<Collective>> warps_;  // open collectives per warp
  std::vector<unsigned char> dynamic_smem_;

  SimThread* current_ = nullptr;
  unsigned pass_pos_ = 0;  // next position in order_ of the current pass
  fctx::fcontext_t scheduler_ = nullptr;
  FiberStack scheduler_stack_;  // the OS thread's own stack, for the sanitizers
  unsigned runnable_ = 0;
  unsigned done_ = 0;
  unsigned at_barrier_ = 0;
  int barrier_sum_ = 0;
  int barrier_result_ = 0;
  bool barrier_mismatch_ = false;
  WaitSite barrier_site_;
  BarrierKind barrier_kind_ = BarrierKind::Sync;
  bool aborting_ = false;
  std::optional<std::string> failure_;

  StackPool stacks_;
};

// The runner of the calling OS thread, and the one running a block right now (null outside).
BlockRunner& this_thread_runner();
extern constinit thread_local BlockRunner* tls_active_runner;

const char* barrier_name(BarrierKind kind);
const char* warp_op_name(WarpOp op);
// The instruction a collective or a waiting thread stands for: the exchange's name, else the op's.
inline const char* collective_name(WarpOp op, const char* exchange_name) {
  return op == WarpOp::Exchange && exchange_name != nullptr ? exchange_name : warp_op_name(op);
}
std::string format_index(uint3 v);

// ---- switching ----------------------------------------------------------------------------------
// Fibers hand over to the next runnable thread of the pass directly (one jump per resume); only
// the end of a pass goes back to the scheduler, which releases barriers and detects stalls.
// Every jump carries the SimThread it leaves (null: the scheduler), and the side that lands
// stores that context, or recycles the stack of a thread that has finished. Every jump goes
// through jump(), which announces it to the sanitizers (sanitizer_fibers.h).
// These are inline so the chain from a kernel's __syncthreads() to jump_fcontext stays flat:
// after a context switch every return is a mispredicted branch.
#define UNET_SIM_HOT [[gnu::always_inline]] inline

UNET_SIM_HOT SimThread* BlockRunner::next_runnable() {
  while (pass_pos_ < n_) {
    SimThread& t = threads_[order_[pass_pos_++]];
    if (t.state == ThreadState::NotStarted || t.state == ThreadState::Runnable) return &t;
  }
  return nullptr;
}

UNET_SIM_HOT void BlockRunner::prepare(SimThread& t) {
  if (t.state == ThreadState::NotStarted) {
    const PooledStack stack = stacks_.acquire();
    t.stack = stack.top;
    t.tsan_fiber = stack.tsan_fiber;
    t.context = fctx::make_fcontext(t.stack, kFiberStackBytes, &BlockRunner::fiber_entry);
  }
  t.state = ThreadState::Running;
  --runnable_;
  current_ = &t;
  tls_kernel.thread_idx = t.idx;
}

UNET_SIM_HOT void BlockRunner::land(fctx::transfer_t from) {
  auto* left = static_cast<SimThread*>(from.data);
  if (left == nullptr) {
    scheduler_ = from.fctx;
  } else if (left->state == ThreadState::Done) {
    stacks_.release({left->stack, left->tsan_fiber});
    left->stack = nullptr;
    left->tsan_fiber = nullptr;
    left->context = nullptr;
  } else {
    left->context = from.fctx;
  }
}

// From `self` (null: the scheduler) to `to` (null: the scheduler); returns when something jumps
// back to `self`.
UNET_SIM_HOT void BlockRunner::jump(SimThread* to, SimThread* self) {
  void* fake_stack = nullptr;
  const bool finished = self != nullptr && self->state == ThreadState::Done;
  sanitizer_before_switch(finished ? nullptr : &fake_stack,
                          to ? FiberStack{static_cast<char*>(to->stack) - kFiberStackBytes, kFiberStackBytes,
                                          to->tsan_fiber}
                             : scheduler_stack_);
  const fctx::transfer_t from = fctx::jump_fcontext(to ? to->context : scheduler_, self);
  sanitizer_after_switch(fake_stack, from.data == nullptr ? &scheduler_stack_ : nullptr);
  land(from);
}

UNET_SIM_HOT void BlockRunner::switch_away(SimThread* self) {
  SimThread* next = (failure_ || aborting_) ? nullptr : next_runnable();
  if (next != nullptr) prepare(*next);
  jump(next, self);
}

UNET_SIM_HOT void BlockRunner::suspend() {
  switch_away(current_);
  if (aborting_) throw ForcedUnwind{};
}

#undef UNET_SIM_HOT

}  // namespace unet::sim::detail
