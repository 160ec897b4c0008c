// bench/bench_ops_ref.h — what bench_ops compares the library with on the CPU:
//  * naive direct loops in double (validation, on a small instance of each layer), which also
//    return Σ|terms| per output so the tolerance is a rounding-error bound, not a guess;
//  * single-threaded plain baselines at full size (timing): im2col in row bands + one Eigen GEMM
//    per band for the convolutions, one Eigen GEMM + shuffle for the up-convolution. Eigen runs
//    single-threaded here (no OpenMP), so "ours / baseline" shows what blocking + threads buy.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/upconv2d.h"

namespace unet::bench::ref {

struct Out {
  std::vector<double> val, abs;  // value and Σ|terms| per output element
  void resize(size_t n) { val.assign(n, 0.0); abs.assign(n, 0.0); }
};

// x outside the image reads 0 (padding).
inline float at(const Conv2dParams& p, const float* x, int64_t n, int64_t c, int64_t i, int64_t j) {
  if (i < 0 || j < 0 || i >= p.h || j >= p.w) return 0.0f;
  return x[((n * p.c_in + c) * p.h + i) * p.w + j];
}

inline Out conv_forward(const Conv2dParams& p, const float* x, const float* w, const float* b) {
  Out o;
  o.resize(static_cast<size_t>(p.n * p.c_out * p.h_out * p.w_out));
  size_t idx = 0;
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t co = 0; co < p.c_out; ++co)
      for (int64_t i = 0; i < p.h_out; ++i)
        for (int64_t j = 0; j < p.w_out; ++j, ++idx) {
          double s = b ? b[co] : 0.0, a = b ? std::abs(b[co]) : 0.0;
          for (int64_t c = 0; c < p.c_in; ++c)
            for (int64_t u = 0; u < p.k; ++u)
              for (int64_t v = 0; v < p.k; ++v) {
                const double t = double(w[((co * p.c_in + c) * p.k + u) * p.k + v]) *
                                 at(p, x, n, c, i + u - p.pad, j + v - p.pad);
                s += t; a += std::abs(t);
              }
          o.val[idx] = p.relu ? std::max(s, 0.0) : s;
          o.abs[idx] = a;
        }
  return o;
}

// dx as the adjoint: scatter every g element through the kernel (a different loop order from
// the library's gather, which is the point of a reference).
inline Out conv_backward_data(const Conv2dParams& p, const float* g, const float* w) {
  Out o;
  o.resize(static_cast<size_t>(p.n * p.c_in * p.h * p.w));
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t co = 0; co < p.c_out; ++co)
      for (int64_t i = 0; i < p.h_out; ++i)
        for (int64_t j = 0; j < p.w_out; ++j) {
          const double gv = g[((n * p.c_out + co) * p.h_out + i) * p.w_out + j];
          for (int64_t c = 0; c < p.c_in; ++c)
            for (int64_t u = 0; u < p.k; ++u)
              for (int64_t v = 0; v < p.k; ++v) {
                const int64_t y = i + u - p.pad, z = j + v - p.pad;
                if (y < 0 || z < 0 || y >= p.h || z >= p.w) continue;
                const double t = gv * w[((co * p.c_in + c) * p.k + u) * p.k + v];
                const size_t d = static_cast<size_t>(((n * p.c_in + c) * p.h + y) * p.w + z);
                o.val[d] += t; o.abs[d] += std::abs(t);
              }
        }
  return o;
}

inline Out conv_backward_weight(const Conv2dParams& p, const float* x, const float* g) {
  Out o;
  o.resize(static_cast<size_t>(p.c_out * p.c_in * p.k * p.k));
  size_t idx = 0;
  for (int64_t co = 0; co < p.c_out; ++co)
    for (int64_t c = 0; c < p.c_in; ++c)
      for (int64_t u = 0; u < p.k; ++u)
        for (int64_t v = 0; v < p.k; ++v, ++idx)
          for (int64_t n = 0; n < p.n; ++n)
            for (int64_t i = 0; i < p.h_out; ++i)
              for (int64_t j = 0; j < p.w_out; ++j) {
                const double t = double(g[((n * p.c_out + co) * p.h_out + i) * p.w_out + j]) *
                                 at(p, x, n, c, i + u - p.pad, j + v - p.pad);
                o.val[idx] += t; o.abs[idx] += std::abs(t);
              }
  return o;
}

// Up-convolution, straight from the formulas in kernels/upconv2d.h.
inline Out upconv_forward(const Upconv2dParams& p, const float* x, const float* w, const float* b) {
  Out o;
  const int64_t H = 2 * p.h, W = 2 * p.w;
  o.resize(static_cast<size_t>(p.n * p.c_out * H * W));
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t co = 0; co < p.c_out; ++co)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t z = 0; z < W; ++z) {
          double s = b[co], a = std::abs(b[co]);
          for (int64_t c = 0; c < p.c_in; ++c) {
            const double t = double(x[((n * p.c_in + c) * p.h + y / 2) * p.w + z / 2]) *
                             w[((c * p.c_out + co) * 2 + y % 2) * 2 + z % 2];
            s += t; a += std::abs(t);
          }
          const size_t d = static_cast<size_t>(((n * p.c_out + co) * H + y) * W + z);
          o.val[d] = s; o.abs[d] = a;
        }
  return o;
}

inline Out upconv_backward_data(const Upconv2dParams& p, const float* g, const float* w) {
  Out o;
  const int64_t H = 2 * p.h, W = 2 * p.w;
  o.resize(static_cast<size_t>(p.n * p.c_in * p.h * p.w));
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t c = 0; c < p.c_in; ++c)
      for (int64_t i = 0; i < p.h; ++i)
        for (int64_t j = 0; j < p.w; ++j) {
          const size_t d = static_cast<size_t>(((n * p.c_in + c) * p.h + i) * p.w + j);
          for (int64_t co = 0; co < p.c_out; ++co)
            for (int64_t a = 0; a < 2; ++a)
              for (int64_t b = 0; b < 2; ++b) {
                const double t = double(g[((n * p.c_out + co) * H + 2 * i + a) * W + 2 * j + b]) *
                                 w[((c * p.c_out + co) * 2 + a) * 2 + b];
                o.val[d] += t; o.abs[d] += std::abs(t);
              }
        }
  return o;
}

inline Out upconv_backward_weight(const Upconv2dParams& p, const float* x, const float* g) {
  Out o;
  const int64_t H = 2 * p.h, W = 2 * p.w;
  o.resize(static_cast<size_t>(p.c_in * p.c_out * 4));
  for (int64_t c = 0; c < p.c_in; ++c)
    for (int64_t co = 0; co < p.c_out; ++co)
      for (int64_t a = 0; a < 2; ++a)
        for (int64_t b = 0; b < 2; ++b) {
          const size_t d = static_cast<size_t>(((c * p.c_out + co) * 2 + a) * 2 + b);
          for (int64_t n = 0; n < p.n; ++n)
            for (int64_t i = 0; i < p.h; ++i)
              for (int64_t j = 0; j < p.w; ++j) {
                const double t = double(x[((n * p.c_in + c) * p.h + i) * p.w + j]) *
                                 g[((n * p.c_out + co) * H + 2 * i + a) * W + 2 * j + b];
                o.val[d] += t; o.abs[d] += std::abs(t);
              }
        }
  return o;
}

// ---- single-threaded plain baselines (timing only) ---------------------------------------------
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using StridedMap = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
using ConstStridedMap = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;

enum class ConvPass { Forward, BackwardData, BackwardWeight };

// im2col over bands of output rows (a full-image column matrix of a 570×570 layer would be
// ~0.75 GB), then one Eigen GEMM per band. dx/dw are accumulated, so they are zeroed first.
inline void conv_eigen_baseline(const Conv2dParams& p, ConvPass pass, const float* x, const float* w,
                                const float* bias, const float* g, float* out) {
  const int64_t K = p.c_in * p.k * p.k, HWo = p.h_out * p.w_out;
  const int64_t band = std::max<int64_t>(1, std::min<int64_t>(p.h_out, (1 << 21) / std::max<int64_t>(1, K * p.w_out)));
  RowMat col(K, band * p.w_out), tmp;
  Eigen::Map<const RowMat> W(w, p.c_out, K);
  if (pass == ConvPass::BackwardData) std::fill_n(out, p.n * p.c_in * p.h * p.w, 0.0f);
  if (pass == ConvPass::BackwardWeight) std::fill_n(out, p.c_out * K, 0.0f);
  Eigen::Map<RowMat> dW(out, p.c_out, K);
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t i0 = 0; i0 < p.h_out; i0 += band) {
      const int64_t rows = std::min(band, p.h_out - i0), cols = rows * p.w_out;
      auto im2col_row = [&](int64_t r, int64_t c, int64_t u, int64_t v) {
        float* dst = col.data() + r * col.cols();
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t j = 0; j < p.w_out; ++j)
            dst[i * p.w_out + j] = at(p, x, n, c, i0 + i + u - p.pad, j + v - p.pad);
      };
      if (pass != ConvPass::BackwardData)
        for (int64_t c = 0, r = 0; c < p.c_in; ++c)
          for (int64_t u = 0; u < p.k; ++u)
            for (int64_t v = 0; v < p.k; ++v, ++r) im2col_row(r, c, u, v);
      if (pass == ConvPass::Forward) {
        StridedMap Y(out + n * p.c_out * HWo + i0 * p.w_out, p.c_out, cols, Eigen::OuterStride<>(HWo));
        Y.noalias() = W * col.leftCols(cols);
        for (int64_t o = 0; o < p.c_out; ++o)
          for (int64_t j = 0; j < cols; ++j) {
            float& y = Y(o, j);
            y += bias ? bias[o] : 0.0f;
            if (p.relu) y = std::max(y, 0.0f);
          }
        continue;
      }
      ConstStridedMap G(g + n * p.c_out * HWo + i0 * p.w_out, p.c_out, cols, Eigen::OuterStride<>(HWo));
      if (pass == ConvPass::BackwardWeight) {
        dW.noalias() += G * col.leftCols(cols).transpose();
        continue;
      }
      tmp.noalias() = W.transpose() * G;  // [K, cols], then col2im
      for (int64_t c = 0, r = 0; c < p.c_in; ++c)
        for (int64_t u = 0; u < p.k; ++u)
          for (int64_t v = 0; v < p.k; ++v, ++r)
            for (int64_t i = 0; i < rows; ++i)
              for (int64_t j = 0; j < p.w_out; ++j) {
                const int64_t y = i0 + i + u - p.pad, z = j + v - p.pad;
                if (y >= 0 && z >= 0 && y < p.h && z < p.w)
                  out[((n * p.c_in + c) * p.h + y) * p.w + z] += tmp(r, i * p.w_out + j);
              }
    }
}

// Up-convolution as U = Wᵀ·X per image plus a shuffle (forward), or the reverse; dw = Σ X·Uᵀ.
inline void upconv_eigen_baseline(const Upconv2dParams& p, ConvPass pass, const float* x, const float* w,
                                  const float* bias, const float* g, float* out) {
  const int64_t HW = p.h * p.w, C4 = p.c_out * 4, W2 = 2 * p.w;
  Eigen::Map<const RowMat> Wm(w, p.c_in, C4);
  RowMat U(C4, HW);
  if (pass == ConvPass::BackwardWeight) std::fill_n(out, p.c_in * C4, 0.0f);
  for (int64_t n = 0; n < p.n; ++n) {
    const int64_t big = n * p.c_out * 4 * HW;
    if (pass == ConvPass::Forward) {
      U.noalias() = Wm.transpose() * Eigen::Map<const RowMat>(x + n * p.c_in * HW, p.c_in, HW);
      for (int64_t o = 0; o < p.c_out; ++o)
        for (int64_t ab = 0; ab < 4; ++ab)
          for (int64_t i = 0; i < p.h; ++i)
            for (int64_t j = 0; j < p.w; ++j)
              out[big + (o * 2 * p.h + 2 * i + ab / 2) * W2 + 2 * j + ab % 2] = U(o * 4 + ab, i * p.w + j) + bias[o];
      continue;
    }
    for (int64_t o = 0; o < p.c_out; ++o)
      for (int64_t ab = 0; ab < 4; ++ab)
        for (int64_t i = 0; i < p.h; ++i)
          for (int64_t j = 0; j < p.w; ++j)
            U(o * 4 + ab, i * p.w + j) = g[big + (o * 2 * p.h + 2 * i + ab / 2) * W2 + 2 * j + ab % 2];
    if (pass == ConvPass::BackwardData)
      Eigen::Map<RowMat>(out + n * p.c_in * HW, p.c_in, HW).noalias() = Wm * U;
    else
      Eigen::Map<RowMat>(out, p.c_in, C4).noalias() += Eigen::Map<const RowMat>(x + n * p.c_in * HW, p.c_in, HW) * U.transpose();
  }
}

}  // namespace unet::bench::ref
