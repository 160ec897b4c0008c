// kernels/reduce_cpu.cpp — CPU reference reductions.
#include <vector>

#include "core/parallel.h"
#include "kernels/reduce.h"

namespace unet::cpu {

template <bool kSquare, typename T> T reduce_sum(const T* x, int64_t n) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  parallel_for(0, chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      double s = 0.0;
      const int64_t end = (c + 1) * kChunk < n ? (c + 1) * kChunk : n;
      for (int64_t i = c * kChunk; i < end; ++i) {
        const double v = static_cast<double>(x[i]);
        s += kSquare ? v * v : v;
      }
      partial[static_cast<size_t>(c)] = s;
    }
  });
  double total = 0.0;
  for (double s : partial) total += s;
  return static_cast<T>(total);
}

template <typename T> T sum(const T* x, int64_t n) { return reduce_sum<false>(x, n); }
template <typename T> T sum_of_squares(const T* x, int64_t n) { return reduce_sum<true>(x, n); }

template <typename T> void broadcast_scalar(const T* scalar, T factor, T* out, int64_t n) {
  const T v = *scalar * factor;
  parallel_for(0, n, 1 << 15, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = v;
  });
}

template float sum<float>(const float*, int64_t);
template double sum<double>(const double*, int64_t);
template float sum_of_squares<float>(const float*, int64_t);
template double sum_of_squares<double>(const double*, int64_t);
template void broadcast_scalar<float>(const float*, float, float*, int64_t);
template void broadcast_scalar<double>(const double*, double, double*, int64_t);

}  // namespace unet::cpu
