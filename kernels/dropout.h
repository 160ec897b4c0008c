// kernels/dropout.h — inverted dropout with a counter-based (Philox) mask.
//
// Element i of x is kept when philox_uniform01(seed, offset + i) >= p, and kept elements are
// scaled by 1/(1-p), so the expected activation is unchanged and inference (training == false)
// is the identity. The mask is a pure function of (seed, offset + i): the CPU backend, the CUDA
// kernels and the simulator produce the same mask bit for bit, nothing is stored for the
// backward, and a caller gives successive dropout calls disjoint streams by advancing `offset`
// by numel() each time.
// Gradient rule: dx = dy · mask / (1-p), with the mask regenerated from the same (seed, offset).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace unet {

// p in [0, 1): the drop probability. training == false or p == 0 returns x itself.
Tensor dropout(const Tensor& x, float p, uint64_t seed, uint64_t offset, bool training);

struct DropoutParams {
  float p = 0.0f;      // drop probability
  float scale = 1.0f;  // 1 / (1 - p), computed once so every backend multiplies by the same float
  uint64_t seed = 0;
  uint64_t offset = 0;  // stream position of element 0
};

// ---- launchers: out[i] = keep(i) ? in[i] · scale : 0 (forward on x, backward on dy) ----------
namespace cpu {
template <typename T> void dropout_apply(const DropoutParams& p, const T* in, T* out, int64_t n);
}  // namespace cpu

namespace cuda {
void dropout_apply(const DropoutParams& p, const float* in, float* out, int64_t n);
}  // namespace cuda

}  // namespace unet
