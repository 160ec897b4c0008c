// tests/conv_reference.h — the independent references the convolution tests compare with: the
// definition of the forward and of both gradients as direct loops in double, small-integer
// inputs (exact in float32 in any summation order) and the float32 tolerance of a dot product.
#pragma once

#include <cmath>
#include <vector>

#include "kernels/conv2d.h"
#include "test_util.h"

namespace unet::test {

// Direct definition of the forward, in double.
inline std::vector<double> naive_conv(const Conv2dParams& p, const std::vector<double>& x, const std::vector<double>& w,
                                      const std::vector<double>& b) {
  std::vector<double> y(static_cast<size_t>(p.n * p.c_out * p.h_out * p.w_out));
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t o = 0; o < p.c_out; ++o)
      for (int64_t i = 0; i < p.h_out; ++i)
        for (int64_t j = 0; j < p.w_out; ++j) {
          double s = b.empty() ? 0.0 : b[o];
          for (int64_t c = 0; c < p.c_in; ++c)
            for (int64_t u = 0; u < p.k; ++u)
              for (int64_t v = 0; v < p.k; ++v) {
                const int64_t ih = i + u - p.pad, iw = j + v - p.pad;
                if (ih < 0 || ih >= p.h || iw < 0 || iw >= p.w) continue;
                s += w[((o * p.c_in + c) * p.k + u) * p.k + v] * x[((n * p.c_in + c) * p.h + ih) * p.w + iw];
              }
          y[((n * p.c_out + o) * p.h_out + i) * p.w_out + j] = p.relu ? std::max(s, 0.0) : s;
        }
  return y;
}

// Both gradients of L = <g, conv(x; w)> (no ReLU) by their definition, in one pass over (output
// pixel, tap): dx[c, i+u-pad, j+v-pad] += w[o, c, u, v]·g[o, i, j], dw[o, c, u, v] += g[o, i, j]·x[c, ...].
inline void naive_conv_gradients(const Conv2dParams& p, const std::vector<double>& x, const std::vector<double>& w,
                                 const std::vector<double>& g, std::vector<double>& dx, std::vector<double>& dw) {
  dx.assign(x.size(), 0.0);
  dw.assign(w.size(), 0.0);
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t o = 0; o < p.c_out; ++o)
      for (int64_t i = 0; i < p.h_out; ++i)
        for (int64_t j = 0; j < p.w_out; ++j) {
          const double gv = g[((n * p.c_out + o) * p.h_out + i) * p.w_out + j];
          for (int64_t c = 0; c < p.c_in; ++c)
            for (int64_t u = 0; u < p.k; ++u)
              for (int64_t v = 0; v < p.k; ++v) {
                const int64_t ih = i + u - p.pad, iw = j + v - p.pad;
                if (ih < 0 || ih >= p.h || iw < 0 || iw >= p.w) continue;
                const int64_t xi = ((n * p.c_in + c) * p.h + ih) * p.w + iw, wi = ((o * p.c_in + c) * p.k + u) * p.k + v;
                dx[xi] += w[wi] * gv;
                dw[wi] += x[xi] * gv;
              }
        }
}

inline std::vector<float> small_integers(int64_t n, uint64_t seed, int range) {
  std::vector<float> v = random_values<float>(n, seed, -range - 0.5, range + 0.5);
  for (float& f : v) f = std::round(f);
  return v;
}

// Float32 tolerance for a length-K dot product of terms bounded by 1 computed in another order:
// rounding errors grow like sqrt(K)·eps relative to partial sums of size ~sqrt(K), so
// atol = reduction_rtol(K)·sqrt(K) and rtol = reduction_rtol(K).
inline double conv_atol(int64_t k) { return reduction_rtol(k) * std::sqrt(static_cast<double>(k)); }

}  // namespace unet::test
