// kernels/cpu_slots.h — how the CPU weight gradients finish: each of a fixed number of slots
// (fixed by the shapes, never by the thread count) sums its own range of the work into a partial,
// and the partials are added in slot order here, so the result does not depend on the thread count.
#pragma once

#include <cstdint>

#include "core/parallel.h"

namespace unet::cpu {

// out[i] = partial[i] + partial[count + i] + … + partial[(slots - 1)·count + i], added in that
// order; the partials are slot-major and contiguous (the loop vectorizes over i); out may be
// `partial` itself (slot 0's partial becomes the sum).
template <typename T> void add_slots_in_order(const T* partial, int64_t slots, int64_t count, T* out) {
  parallel_for(0, count, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T sum = partial[i];
      for (int64_t s = 1; s < slots; ++s) sum += partial[s * count + i];
      out[i] = sum;
    }
  });
}

}  // namespace unet::cpu
