// kernels/softmax_xent_cpu.cpp — CPU reference (and CPU backend) for the fused softmax +
// weighted cross-entropy and the softmax / argmax inference head. One pixel at a time, looping
// over the K classes (stride H·W apart in NCHW); pixels are split into fixed chunks so the loss
// sum is combined in the same order whatever the thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "kernels/softmax_xent.h"

namespace unet::cpu {
namespace {

constexpr int64_t kChunk = 4096;  // pixels per task: fixed, so the partial sums are reproducible

// The largest of one pixel's K logits (stride hw apart).
template <typename T> T max_logit(const T* a, int64_t K, int64_t hw) {
  T m = a[0];
  for (int64_t k = 1; k < K; ++k) m = std::max(m, a[k * hw]);
  return m;
}

// e[k] = exp(a[k] − m) for one pixel (m = max_logit, stored in *max), returns their sum z in
// order k = 0..K−1.
// Each exponential is computed once and kept in the output, which the caller then scales: the
// same values as computing it again there (exp is a function), at half the exp calls.
template <typename T> T exp_shifted(const T* a, T* e, int64_t K, int64_t hw, T* max = nullptr) {
  const T m = max_logit(a, K, hw);
  if (max) *max = m;
  T z = 0;
  for (int64_t k = 0; k < K; ++k) {
    e[k * hw] = std::exp(a[k * hw] - m);
    z += e[k * hw];
  }
  return z;
}

struct ChunkResult {
  double loss = 0.0, weight = 0.0;
  int64_t first_bad = -1;
};

}  // namespace

template <typename T>
int64_t weighted_xent_forward(const XentParams& p, const T* logits, const int32_t* labels,
                              const T* weights, T* dlogits, T* loss, T* grad_scale) {
  const int64_t total = p.batch * p.pixels, K = p.classes, hw = p.pixels;
  const int64_t chunks = (total + kChunk - 1) / kChunk;
  std::vector<ChunkResult> part(static_cast<size_t>(chunks));
  parallel_for(0, chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      ChunkResult r;
      const int64_t end = std::min(total, (c + 1) * kChunk);
      // (n, s) of pixel i, stepped along instead of divided out per pixel.
      int64_t n = (c * kChunk) / hw, s = (c * kChunk) % hw;
      for (int64_t i = c * kChunk; i < end; ++i, s = s + 1 == hw ? (++n, 0) : s + 1) {
        const T* a = logits + n * K * hw + s;
        T* d = dlogits + n * K * hw + s;
        const int32_t label = labels[i];
        const T w = weights[i];
        if (label < 0 || label >= K) {
          if (r.first_bad < 0) r.first_bad = i;
          continue;
        }
        T m;
        const T z = exp_shifted(a, d, K, hw, &m);
        const T inv_z = T(1) / z;
        for (int64_t k = 0; k < K; ++k) d[k * hw] = w * (d[k * hw] * inv_z - (k == label ? T(1) : T(0)));
        // -log p_l = log z - (a_l - m)
        r.loss += static_cast<double>(w) * static_cast<double>(std::log(z) - (a[label * hw] - m));
        r.weight += static_cast<double>(w);
      }
      part[static_cast<size_t>(c)] = r;
    }
  });
  double loss_sum = 0.0, weight_sum = 0.0;
  for (const ChunkResult& r : part) {
    if (r.first_bad >= 0) return r.first_bad;  // chunks are in index order: this is the first
    loss_sum += r.loss;
    weight_sum += r.weight;
  }
  const double inv = p.reduction == LossReduction::WeightedMean ? (weight_sum > 0.0 ? 1.0 / weight_sum : 0.0)
                    : p.reduction == LossReduction::PixelMean  ? 1.0 / static_cast<double>(p.batch * p.pixels)
                                                               : 1.0;
  *loss = static_cast<T>(loss_sum * inv);
  *grad_scale = static_cast<T>(inv);
  return -1;
}

template <typename T>
void weighted_xent_backward(const T* dlogits, const T* grad_loss, const T* grad_scale, T* dx,
                            int64_t n) {
  const T factor = *grad_loss * *grad_scale;
  parallel_for(0, n, 1 << 15, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dx[i] = dlogits[i] * factor;
  });
}

template <typename T> void softmax_channels(const XentParams& p, const T* logits, T* probs) {
  const int64_t total = p.batch * p.pixels, K = p.classes, hw = p.pixels;
  parallel_for(0, total, kChunk, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t off = (i / hw) * K * hw + i % hw;
      const T* a = logits + off;
      T* q = probs + off;
      const T inv_z = T(1) / exp_shifted(a, q, K, hw);
      for (int64_t k = 0; k < K; ++k) q[k * hw] *= inv_z;
    }
  });
}

template <typename T> void argmax_channels(const XentParams& p, const T* logits, int32_t* classes) {
  const int64_t total = p.batch * p.pixels, K = p.classes, hw = p.pixels;
  parallel_for(0, total, kChunk, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const T* a = logits + (i / hw) * K * hw + i % hw;
      int32_t best = 0;
      for (int64_t k = 1; k < K; ++k)
        if (a[k * hw] > a[best * hw]) best = static_cast<int32_t>(k);
      classes[i] = best;
    }
  });
}

#define UNET_INSTANTIATE(T)                                                                      \
  template int64_t weighted_xent_forward<T>(const XentParams&, const T*, const int32_t*, const T*, \
                                            T*, T*, T*);                                         \
  template void weighted_xent_backward<T>(const T*, const T*, const T*, T*, int64_t);           \
  template void softmax_channels<T>(const XentParams&, const T*, T*);                           \
  template void argmax_channels<T>(const XentParams&, const T*, int32_t*);
UNET_INSTANTIATE(float)
UNET_INSTANTIATE(double)
#undef UNET_INSTANTIATE

}  // namespace unet::cpu
