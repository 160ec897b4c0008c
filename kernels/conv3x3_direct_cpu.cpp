// kernels/conv3x3_direct_cpu.cpp — see conv3x3_direct_cpu.h.
//
// Per task (image n, output rows [r0, r1)): the needed input rows of every channel are copied
// into a zero-padded scratch P[c][r1 - r0 + 2][wp] (wp = w_out rounded up to the 24-pixel block,
// plus the 2-column halo), so the inner loop has no bounds checks. The weights are repacked once
// per call into blocks of 4 output channels, wb[ob][c][u·3+v][4] (zero for missing channels).
// For each output row, pixel block and channel block, 12 accumulators (4 channels × 3 vectors
// of 8 pixels) sum over c, u, v in a fixed order, then bias + ReLU and the store (the last
// pixel block goes through a small buffer). Deterministic: one thread per output, fixed order.
#include "kernels/conv3x3_direct_cpu.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define UNET_DIRECT3X3 1
#endif

namespace unet::cpu {

#ifdef UNET_DIRECT3X3

bool conv3x3_direct_available() { return true; }

namespace {
constexpr int64_t kOb = 4;       // output channels per register block
constexpr int64_t kPix = 24;     // pixels per register block (3 AVX vectors)
constexpr int64_t kPadBudget = int64_t{1} << 16;  // floats in a task's padded input copy

float* scratch(size_t n) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}
}  // namespace

void conv3x3_direct(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad, const float* x,
                    const float* weights, const float* bias, bool relu, float* y) {
  const int64_t h_out = h + 2 * pad - 2, w_out = w + 2 * pad - 2;
  const int64_t blocks = (w_out + kPix - 1) / kPix, wp = blocks * kPix + 2;
  const int64_t obs = (c_out + kOb - 1) / kOb;
  std::vector<float> wb(static_cast<size_t>(obs * c_in * 9 * kOb), 0.0f);
  for (int64_t o = 0; o < c_out; ++o)
    for (int64_t c = 0; c < c_in; ++c)
      for (int64_t t = 0; t < 9; ++t) wb[((o / kOb * c_in + c) * 9 + t) * kOb + o % kOb] = weights[(o * c_in + c) * 9 + t];
  const int64_t rows = std::clamp<int64_t>(kPadBudget / std::max<int64_t>(c_in * wp, 1) - 2, 1,
                                           std::max<int64_t>(1, (h_out + 3) / 4));
  const int64_t bands = (h_out + rows - 1) / rows;
  const float* wbase = wb.data();
  parallel_for(0, n * bands, 1, [=](int64_t tb, int64_t te) {
    float* padded = scratch(static_cast<size_t>(c_in * (rows + 2) * wp));
    for (int64_t t = tb; t < te; ++t) {
      const int64_t img = t / bands, r0 = (t % bands) * rows, r1 = std::min(h_out, r0 + rows), pr = r1 - r0 + 2;
      const float* x_n = x + img * c_in * h * w;
      for (int64_t c = 0; c < c_in; ++c)
        for (int64_t ii = 0; ii < pr; ++ii) {
          float* dst = padded + (c * pr + ii) * wp;
          const int64_t ih = r0 + ii - pad;
          std::fill(dst, dst + wp, 0.0f);
          if (ih < 0 || ih >= h) continue;
          std::memcpy(dst + pad, x_n + (c * h + ih) * w, sizeof(float) * static_cast<size_t>(std::min(w, wp - pad)));
        }
      float* y_n = y + img * c_out * h_out * w_out;
      for (int64_t i = r0; i < r1; ++i)
        for (int64_t jb = 0; jb < blocks; ++jb) {
          const int64_t j0 = jb * kPix;
          for (int64_t ob = 0; ob < obs; ++ob) {
            __m256 acc[kOb][3];
            for (auto& a : acc)
              for (auto& v : a) v = _mm256_setzero_ps();
            const float* wk = wbase + ob * c_in * 9 * kOb;
            for (int64_t c = 0; c < c_in; ++c) {
              const float* prow = padded + (c * pr + (i - r0)) * wp + j0;
              for (int64_t u = 0; u < 3; ++u, prow += wp)
                for (int64_t v = 0; v < 3; ++v, wk += kOb) {
                  __m256 x0 = _mm256_loadu_ps(prow + v), x1 = _mm256_loadu_ps(prow + v + 8),
                         x2 = _mm256_loadu_ps(prow + v + 16);
                  // Keep the three pixel vectors in registers: folding the loads into the 12
                  // FMAs would make the loop load-bound (16 loads instead of 7).
                  asm("" : "+x"(x0), "+x"(x1), "+x"(x2));
                  for (int64_t o = 0; o < kOb; ++o) {
                    const __m256 wv = _mm256_broadcast_ss(wk + o);
                    acc[o][0] = _mm256_fmadd_ps(wv, x0, acc[o][0]);
                    acc[o][1] = _mm256_fmadd_ps(wv, x1, acc[o][1]);
                    acc[o][2] = _mm256_fmadd_ps(wv, x2, acc[o][2]);
                  }
                }
            }
            const int64_t count = std::min(kPix, w_out - j0);
            for (int64_t o = 0; o < kOb && ob * kOb + o < c_out; ++o) {
              const int64_t oc = ob * kOb + o;
              const __m256 bv = _mm256_set1_ps(bias ? bias[oc] : 0.0f), zero = _mm256_setzero_ps();
              float* dst = y_n + (oc * h_out + i) * w_out + j0;
              alignas(32) float tmp[kPix];
              for (int64_t s = 0; s < 3; ++s) {
                __m256 v = _mm256_add_ps(acc[o][s], bv);
                if (relu) v = _mm256_max_ps(zero, v);  // NaN propagates, as std::max(v, 0) does
                if (count == kPix)
                  _mm256_storeu_ps(dst + 8 * s, v);
                else
                  _mm256_store_ps(tmp + 8 * s, v);
              }
              if (count < kPix) std::memcpy(dst, tmp, sizeof(float) * static_cast<size_t>(count));
            }
          }
        }
    }
  });
}

#else

bool conv3x3_direct_available() { return false; }
void conv3x3_direct(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, const float*, const float*,
                    bool, float*) {}

#endif

}  // namespace unet::cpu
