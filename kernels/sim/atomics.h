// kernels/sim/atomics.h — CUDA atomics for simulated kernels.
//
// Blocks of one grid run on several OS threads at once, so every atomic is a real hardware
// atomic (std::atomic_ref, which is a CAS loop where the CPU has no native instruction, e.g.
// float add or int max). They are sequentially consistent: stronger than the GPU's relaxed
// atomics, so the simulator cannot find a missing __threadfence().
#pragma once

#include <atomic>
#include <type_traits>

namespace unet::sim::detail {

template <typename T>
concept AtomicInt = std::is_same_v<T, int> || std::is_same_v<T, unsigned> ||
                    std::is_same_v<T, unsigned long long> || std::is_same_v<T, long long>;
template <typename T>
concept AtomicAddable = AtomicInt<T> || std::is_same_v<T, float> || std::is_same_v<T, double>;

template <typename T>
T atomic_update(T* address, auto combine) {
  std::atomic_ref<T> ref(*address);
  T old = ref.load();
  while (!ref.compare_exchange_weak(old, combine(old))) {
  }
  return old;
}

}  // namespace unet::sim::detail

template <unet::sim::detail::AtomicAddable T>
inline T atomicAdd(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_add(value);
}
template <unet::sim::detail::AtomicAddable T>
inline T atomicSub(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_sub(value);
}
template <unet::sim::detail::AtomicInt T>
inline T atomicMax(T* address, std::type_identity_t<T> value) {
  return unet::sim::detail::atomic_update(address, [value](T old) { return old < value ? value : old; });
}
template <unet::sim::detail::AtomicInt T>
inline T atomicMin(T* address, std::type_identity_t<T> value) {
  return unet::sim::detail::atomic_update(address, [value](T old) { return value < old ? value : old; });
}
template <unet::sim::detail::AtomicInt T>
inline T atomicAnd(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_and(value);
}
template <unet::sim::detail::AtomicInt T>
inline T atomicOr(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_or(value);
}
template <unet::sim::detail::AtomicInt T>
inline T atomicXor(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_xor(value);
}
template <unet::sim::detail::AtomicAddable T>
inline T atomicExch(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).exchange(value);
}
// CUDA's atomicCAS: returns the old value; stores `value` only if the old value equals `compare`.
template <unet::sim::detail::AtomicInt T>
inline T atomicCAS(T* address, std::type_identity_t<T> compare, std::type_identity_t<T> value) {
  std::atomic_ref<T>(*address).compare_exchange_strong(compare, value);
  return compare;
}
// atomicInc/atomicDec with CUDA's wrap-around rule.
inline unsigned atomicInc(unsigned* address, unsigned limit) {
  return unet::sim::detail::atomic_update(address,
                                          [limit](unsigned old) { return old >= limit ? 0u : old + 1u; });
}
inline unsigned atomicDec(unsigned* address, unsigned limit) {
  return unet::sim::detail::atomic_update(
      address, [limit](unsigned old) { return (old == 0u || old > limit) ? limit : old - 1u; });
}

inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
