// kernels/random_cpu.cpp — CPU twins of the random kernels (same formula per element).
#include "core/parallel.h"
#include "core/philox.h"
#include "kernels/random.h"

namespace unet::cpu {

void random_uniform(uint64_t seed, uint64_t offset, float* out, int64_t n) {
  parallel_for(0, n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = philox_uniform01(seed, offset + static_cast<uint64_t>(i));
  });
}

void random_normal(uint64_t seed, uint64_t offset, float mean, float stddev, float* out, int64_t n) {
  parallel_for(0, n, 1 << 12, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      out[i] = mean + stddev * philox_normal(seed, offset + static_cast<uint64_t>(i));
  });
}

}  // namespace unet::cpu
