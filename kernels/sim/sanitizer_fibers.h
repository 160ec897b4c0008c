// kernels/sim/sanitizer_fibers.h — internal to the simulator: tells AddressSanitizer and
// ThreadSanitizer about every switch between fiber stacks, so that sanitizer builds
// (cmake -DUNET_SANITIZE=address|thread, docs/reliability.md) check kernels instead of reporting
// nonsense. Without the annotations ASan believes the program runs off its thread's stack at every
// switch (false stack-buffer-overflow reports, and an exception thrown in a fiber unpoisons the
// wrong range), and TSan keeps one shadow stack and one clock for all fibers of a thread.
//
//   ASan: __sanitizer_start_switch_fiber before the jump names the stack being entered (and keeps
//         the leaving fiber's fake stack); __sanitizer_finish_switch_fiber after it completes the
//         switch and says which stack was left (that is how the runner learns its OS thread's
//         stack, the scheduler's).
//   TSan: one TSan fiber per pooled fiber stack, made once; __tsan_switch_to_fiber right before
//         each jump. Switches synchronise (flags 0): a block's fibers run one at a time, in the
//         order the scheduler picks, so their accesses are ordered. What TSan checks in a kernel
//         is therefore what the GPU does not order either: blocks, which run on different OS
//         threads, touching the same memory without atomics.
// In other builds every function here is empty and inlines to nothing.
#pragma once

#include <cstddef>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNET_SIM_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define UNET_SIM_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(UNET_SIM_ASAN)
#define UNET_SIM_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(UNET_SIM_TSAN)
#define UNET_SIM_TSAN 1
#endif

#if defined(UNET_SIM_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(UNET_SIM_TSAN)
#include <sanitizer/tsan_interface.h>
// The hook -fsanitize=thread calls at every function's return (the compiler emits the calls, so
// its signature is fixed); tsan_interface.h does not declare it.
extern "C" void __tsan_func_exit();
#endif

namespace unet::sim::detail {

// The stack a switch goes to: its lowest address and size (ASan) and its TSan fiber.
struct FiberStack {
  const void* bottom = nullptr;
  size_t size = 0;
  void* tsan_fiber = nullptr;
};

// Right before jump_fcontext. `fake_stack_save` keeps the leaving fiber's ASan fake stack until
// it resumes; null when the leaving fiber has finished (ASan then frees its fake stack).
[[gnu::always_inline]] inline void sanitizer_before_switch(void** fake_stack_save, const FiberStack& to) {
#if defined(UNET_SIM_ASAN)
  __sanitizer_start_switch_fiber(fake_stack_save, to.bottom, to.size);
#else
  (void)fake_stack_save;
#endif
#if defined(UNET_SIM_TSAN)
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#else
  (void)to;
#endif
}

// Right after a jump lands. `from` receives the stack that was left (ASan builds only).
[[gnu::always_inline]] inline void sanitizer_after_switch(void* fake_stack_save, FiberStack* from) {
#if defined(UNET_SIM_ASAN)
  const void* bottom = nullptr;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(fake_stack_save, &bottom, &size);
  if (from) {
    from->bottom = bottom;
    from->size = size;
  }
#else
  (void)fake_stack_save;
  (void)from;
#endif
}

// Called by a fiber's entry function right before its last jump, after which it never returns.
// TSan keeps a shadow call stack per fiber: an entry on function entry, removed on return. The
// entry function's own entry would otherwise stay on its stack's TSan fiber, one more for every
// simulated thread that stack runs (a grid of thousands of blocks runs hundreds of thousands on
// one stack), until TSan's fixed shadow stack (64Ki frames) overflows: SIGSEGV in
// __tsan_func_entry. This pops it, as a return would. Everything the entry function called has
// returned (or unwound, which TSan also pops) by then.
[[gnu::always_inline]] inline void sanitizer_fiber_leaves_for_good() {
#if defined(UNET_SIM_TSAN)
  __tsan_func_exit();
#endif
}

// TSan's fiber for a new fiber stack, its release, and the calling OS thread's own fiber.
inline void* sanitizer_create_fiber() {
#if defined(UNET_SIM_TSAN)
  return __tsan_create_fiber(0);
#else
  return nullptr;
#endif
}
inline void sanitizer_destroy_fiber(void* fiber) {
#if defined(UNET_SIM_TSAN)
  if (fiber) __tsan_destroy_fiber(fiber);
#else
  (void)fiber;
#endif
}
inline void* sanitizer_current_fiber() {
#if defined(UNET_SIM_TSAN)
  return __tsan_get_current_fiber();
#else
  return nullptr;
#endif
}

}  // namespace unet::sim::detail
