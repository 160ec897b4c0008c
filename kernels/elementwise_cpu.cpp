// kernels/elementwise_cpu.cpp — CPU reference for the elementwise ops, parallel over chunks.
#include <cmath>

#include "core/parallel.h"
#include "kernels/elementwise.h"

namespace unet::cpu {
namespace {
constexpr int64_t kGrain = 1 << 15;  // below this, threading costs more than it saves

template <typename F>
void for_each_index(int64_t n, F&& f) {
  parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) f(i);
  });
}
}  // namespace

template <typename T> void add(const T* a, const T* b, T* out, int64_t n) {
  for_each_index(n, [&](int64_t i) { out[i] = a[i] + b[i]; });
}
template <typename T> void mul(const T* a, const T* b, T* out, int64_t n) {
  for_each_index(n, [&](int64_t i) { out[i] = a[i] * b[i]; });
}
template <typename T> void affine(const T* x, T factor, T offset, T* out, int64_t n) {
  for_each_index(n, [&](int64_t i) { out[i] = std::fma(x[i], factor, offset); });
}
template <typename T> void relu_forward(const T* x, T* y, int64_t n) {
  for_each_index(n, [&](int64_t i) { y[i] = x[i] > T(0) ? x[i] : T(0); });
}
template <typename T> void relu_backward(const T* x, const T* dy, T* dx, int64_t n) {
  for_each_index(n, [&](int64_t i) { dx[i] = x[i] > T(0) ? dy[i] : T(0); });
}

#define UNET_INSTANTIATE(T)                                          \
  template void add<T>(const T*, const T*, T*, int64_t);             \
  template void mul<T>(const T*, const T*, T*, int64_t);             \
  template void affine<T>(const T*, T, T, T*, int64_t);              \
  template void relu_forward<T>(const T*, T*, int64_t);              \
  template void relu_backward<T>(const T*, const T*, T*, int64_t);
UNET_INSTANTIATE(float)
UNET_INSTANTIATE(double)
#undef UNET_INSTANTIATE

}  // namespace unet::cpu
