// kernels/maxpool2d_cpu.cpp — CPU reference (and CPU backend) for 2×2 / stride-2 max-pooling,
// parallel over output rows of all planes; each task touches two input rows and one output row.
#include <algorithm>

#include "core/parallel.h"
#include "kernels/maxpool2d.h"

namespace unet::cpu {
namespace {

// Window order 0..3 (row-major); v wins over the current best if larger, or if it is the first
// NaN (so NaN propagates). Bitwise, not logical, operators: no branches, so the compiler can use
// selects instead of jumps that random data would mispredict half the time.
template <typename T> inline bool wins(T v, T best) {
  return (v > best) | ((v != v) & (best == best));
}

int64_t rows_grain(int64_t out_width) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, out_width)); }

}  // namespace

template <typename T>
void maxpool2d_forward(const Pool2dParams& p, const T* x, T* y, int32_t* argmax) {
  const int64_t oh = p.height / 2, ow = p.width / 2, w = p.width;
  parallel_for(0, p.batch * p.channels * oh, rows_grain(ow), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {  // row = plane·oh + oy
      const int64_t plane = row / oh, oy = row % oh;
      const T* top = x + (plane * p.height + 2 * oy) * w;
      const T* bottom = top + w;
      T* out = y + row * ow;
      int32_t* arg = argmax + row * ow;
      for (int64_t ox = 0; ox < ow; ++ox) {
        // The same order as a loop over j = 1..3 against the running best, written as selects.
        T m = top[2 * ox];
        int32_t best = 0;
        const T v1 = top[2 * ox + 1], v2 = bottom[2 * ox], v3 = bottom[2 * ox + 1];
        const bool w1 = wins(v1, m);
        m = w1 ? v1 : m;
        best = w1 ? 1 : best;
        const bool w2 = wins(v2, m);
        m = w2 ? v2 : m;
        best = w2 ? 2 : best;
        const bool w3 = wins(v3, m);
        out[ox] = w3 ? v3 : m;
        arg[ox] = w3 ? 3 : best;
      }
    }
  });
}

template <typename T>
void maxpool2d_backward(const Pool2dParams& p, const T* dy, const int32_t* argmax, T* dx) {
  const int64_t oh = p.height / 2, ow = p.width / 2, w = p.width;
  parallel_for(0, p.batch * p.channels * oh, rows_grain(ow), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const int64_t plane = row / oh, oy = row % oh;
      T* top = dx + (plane * p.height + 2 * oy) * w;
      T* bottom = top + w;
      const T* g = dy + row * ow;
      const int32_t* arg = argmax + row * ow;
      for (int64_t ox = 0; ox < ow; ++ox) {
        const int32_t a = arg[ox];
        top[2 * ox] = a == 0 ? g[ox] : T(0);
        top[2 * ox + 1] = a == 1 ? g[ox] : T(0);
        bottom[2 * ox] = a == 2 ? g[ox] : T(0);
        bottom[2 * ox + 1] = a == 3 ? g[ox] : T(0);
      }
    }
  });
}

#define UNET_INSTANTIATE(T)                                                                     \
  template void maxpool2d_forward<T>(const Pool2dParams&, const T*, T*, int32_t*);             \
  template void maxpool2d_backward<T>(const Pool2dParams&, const T*, const int32_t*, T*);
UNET_INSTANTIATE(float)
UNET_INSTANTIATE(double)
#undef UNET_INSTANTIATE

}  // namespace unet::cpu
