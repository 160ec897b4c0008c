// kernels/sim/warp.h — warp shuffles, votes and __syncwarp for simulated kernels.
//
// A warp is 32 consecutive linear thread indices of the block. Each intrinsic is a warp
// collective: every lane named in `mask` must call the same intrinsic at the same file:line;
// lanes deposit their value in the warp's exchange slots and wait (a warp barrier) until the last
// named lane arrives, which computes every lane's result. A lane that is missing (exited, waiting
// elsewhere, or beyond blockDim) is reported as a divergent warp collective instead of hanging.
// Shuffle semantics (width segments, out-of-range lanes keep their own value) follow PTX shfl.sync.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

namespace unet::sim::detail {

enum class WarpOp : uint8_t { Sync, ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All, Exchange };

// A warp-wide exchange (the warp-level matrix instructions of kernels/sim/tensor_core.h): every
// lane of the full warp hands in a pointer to its own operands and results; once the last lane
// arrives, `compute` runs once with all 32 pointers (lane order) and writes every lane's results.
// The pointers point into the lanes' fiber stacks, which stay put while the lanes wait. `name`
// (the instruction) appears in error messages; file:line is the call site, for compute's faults.
using ExchangeFn = void (*)(void* const* lanes, const char* file, int line);
void warp_exchange(ExchangeFn compute, const char* name, void* lane_data, const char* file, int line);
// A kernel bug found inside an exchange (a misaligned address, an operand that is not a valid
// TF32 value...): reported like the other collective faults, naming the call site.
[[noreturn]] void exchange_fault(const std::string& what, const char* file, int line);

// The collective behind every intrinsic below. `value` holds the lane's operand bits (or the
// predicate for votes); `operand` is srcLane / delta / laneMask. Returns the lane's result bits.
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int operand, int width,
                         const char* file, int line);

template <typename T>
uint64_t to_bits(const T& value) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(uint64_t),
                "warp shuffles move trivially copyable values of at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  return bits;
}

template <typename T>
T from_bits(uint64_t bits) {
  T value;
  std::memcpy(static_cast<void*>(&value), &bits, sizeof(T));
  return value;
}

template <typename T>
T shuffle(WarpOp op, const char* file, int line, unsigned mask, const T& var, int operand,
          int width = 32) {
  return from_bits<T>(warp_collective(op, mask, to_bits(var), operand, width, file, line));
}

inline unsigned vote(WarpOp op, const char* file, int line, unsigned mask, int predicate) {
  return static_cast<unsigned>(
      warp_collective(op, mask, predicate != 0 ? 1u : 0u, 0, 32, file, line));
}

inline void sync_warp(const char* file, int line, unsigned mask = 0xFFFFFFFFu) {
  (void)warp_collective(WarpOp::Sync, mask, 0, 0, 32, file, line);
}

}  // namespace unet::sim::detail

// Macros so a divergent collective is reported with its file:line.
#define __shfl_sync(...) \
  ::unet::sim::detail::shuffle(::unet::sim::detail::WarpOp::ShflIdx, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) \
  ::unet::sim::detail::shuffle(::unet::sim::detail::WarpOp::ShflUp, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) \
  ::unet::sim::detail::shuffle(::unet::sim::detail::WarpOp::ShflDown, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) \
  ::unet::sim::detail::shuffle(::unet::sim::detail::WarpOp::ShflXor, __FILE__, __LINE__, __VA_ARGS__)
#define __ballot_sync(mask, predicate) \
  ::unet::sim::detail::vote(::unet::sim::detail::WarpOp::Ballot, __FILE__, __LINE__, mask, predicate)
#define __any_sync(mask, predicate)                                                           \
  static_cast<int>(::unet::sim::detail::vote(::unet::sim::detail::WarpOp::Any, __FILE__,     \
                                             __LINE__, mask, predicate))
#define __all_sync(mask, predicate)                                                           \
  static_cast<int>(::unet::sim::detail::vote(::unet::sim::detail::WarpOp::All, __FILE__,     \
                                             __LINE__, mask, predicate))
#define __syncwarp(...) ::unet::sim::detail::sync_warp(__FILE__, __LINE__ __VA_OPT__(, ) __VA_ARGS__)
