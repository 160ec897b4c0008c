// kernels/upconv2d_cpu.cpp — CPU up-convolution (reference and CPU backend): the library GEMM
// (cpu::gemm) on an unshuffled scratch U[Cout·4, H·W] per image, plus a parallel (un)shuffle
// between U and the [Cout, 2H, 2W] image. Row r = (o·2 + a)·2 + b of U holds output sub-pixel
// (a, b) of channel o, which is exactly column r of w viewed as [Cin, Cout·4].
// Float32 products run on the packed SIMD engine of patch_gemm_cpu.h (as 1×1 patch products:
// Eigen reached only 20–45 GFLOP/s on these shapes) where the CPU has it, the rest on cpu::gemm.
// Every output element is written by one thread, in a fixed order: results are deterministic.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu_scratch.h"
#include "kernels/matmul.h"
#include "kernels/patch_gemm_cpu.h"
#include "kernels/upconv2d.h"

namespace unet::cpu {
namespace {

template <typename T> T* scratch(size_t n) { return thread_scratch<T, ScratchTag::kUpconvUnshuffled>(n); }

// y_n[o, 2i+a, 2j+b] = u[(o·2+a)·2+b][i·W + j] + bias[o]; parallel over output channels.
template <typename T>
void shuffle(const Upconv2dParams& p, const T* u, const T* bias, T* y_n) {
  const int64_t hw = p.h * p.w, w2 = 2 * p.w;
  parallel_for(0, p.c_out, 1, [&](int64_t b0, int64_t e0) {
    for (int64_t o = b0; o < e0; ++o) {
      const T add = bias ? bias[o] : T(0);
      for (int64_t a = 0; a < 2; ++a) {
        const T* u0 = u + ((o * 2 + a) * 2) * hw;  // sub-pixel (a, 0); (a, 1) follows at +hw
        const T* u1 = u0 + hw;
        for (int64_t i = 0; i < p.h; ++i) {
          T* dst = y_n + (o * 2 * p.h + 2 * i + a) * w2;
          for (int64_t j = 0; j < p.w; ++j) {
            dst[2 * j] = u0[i * p.w + j] + add;
            dst[2 * j + 1] = u1[i * p.w + j] + add;
          }
        }
      }
    }
  });
}

// The inverse gather: u[(o·2+a)·2+b][i·W + j] = g_n[o, 2i+a, 2j+b].
template <typename T>
void unshuffle(const Upconv2dParams& p, const T* g_n, T* u) {
  const int64_t hw = p.h * p.w, w2 = 2 * p.w;
  parallel_for(0, p.c_out, 1, [&](int64_t b0, int64_t e0) {
    for (int64_t o = b0; o < e0; ++o)
      for (int64_t a = 0; a < 2; ++a) {
        T* u0 = u + ((o * 2 + a) * 2) * hw;
        T* u1 = u0 + hw;
        for (int64_t i = 0; i < p.h; ++i) {
          const T* src = g_n + (o * 2 * p.h + 2 * i + a) * w2;
          for (int64_t j = 0; j < p.w; ++j) {
            u0[i * p.w + j] = src[2 * j];
            u1[i * p.w + j] = src[2 * j + 1];
          }
        }
      }
  });
}

// out[m][pixel] = Σ_c a[m][c] · src[c][pixel] for one image: a 1×1 patch product (a stored
// [channels][rows] when a_transposed).
void pointwise_product(int64_t rows, const float* a, bool a_transposed, const float* src, int64_t channels,
                       int64_t pixels, float* out) {
  PatchGemm q;
  q.batch = 1, q.rows = rows, q.a = a, q.a_transposed = a_transposed, q.src = src, q.channels = channels, q.src_h = 1, q.src_w = pixels;
  q.dst_h = 1, q.dst_w = pixels, q.k = 1, q.out = out;
  patch_gemm(q);
}

template <typename T> bool use_patch_gemm() {
  if constexpr (std::is_same_v<T, float>) return patch_gemm_available();
  return false;
}

}  // namespace

template <typename T>
void upconv2d_forward(const Upconv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  const int64_t hw = p.h * p.w, r = p.c_out * 4;
  T* u = scratch<T>(static_cast<size_t>(r * hw));
  if constexpr (std::is_same_v<T, float>) {
    if (use_patch_gemm<T>()) {
      for (int64_t n = 0; n < p.n; ++n) {
        pointwise_product(r, w, true, x + n * p.c_in * hw, p.c_in, hw, u);  // U = Wᵀ·X
        shuffle(p, u, bias, y + n * r * hw);
      }
      return;
    }
  }
  for (int64_t n = 0; n < p.n; ++n) {
    gemm(strided_gemm(r, hw, p.c_in, true, false, r, hw, hw, 0.0f), w, x + n * p.c_in * hw, u);  // U = Wᵀ·X
    shuffle(p, u, bias, y + n * r * hw);
  }
}

template <typename T>
void upconv2d_backward_data(const Upconv2dParams& p, const T* g, const T* w, T* dx) {
  const int64_t hw = p.h * p.w, r = p.c_out * 4;
  T* u = scratch<T>(static_cast<size_t>(r * hw));
  for (int64_t n = 0; n < p.n; ++n) {
    unshuffle(p, g + n * r * hw, u);
    if constexpr (std::is_same_v<T, float>) {
      if (use_patch_gemm<T>()) {
        pointwise_product(p.c_in, w, false, u, r, hw, dx + n * p.c_in * hw);  // W·U
        continue;
      }
    }
    gemm(strided_gemm(p.c_in, hw, r, false, false, r, hw, hw, 0.0f), w, u, dx + n * p.c_in * hw);  // W·U
  }
}

template <typename T>
void upconv2d_backward_weight(const Upconv2dParams& p, const T* x, const T* g, T* dw) {
  const int64_t hw = p.h * p.w, r = p.c_out * 4;
  if constexpr (std::is_same_v<T, float>) {
    if (use_patch_gemm<T>()) {
      // dw[c][r] = Σ_{n, pixel} x[n][c][pixel] · U_n[r][pixel]: the engine's weight gradient with
      // 1×1 taps over the unshuffled batch (its slots fix the summation order).
      float* us = scratch<float>(static_cast<size_t>(p.n * r * hw));
      for (int64_t n = 0; n < p.n; ++n) unshuffle(p, g + n * r * hw, us + n * r * hw);
      PatchGemmWeightGrad q;
      q.batch = p.n, q.rows = p.c_in, q.grad = x, q.src = us, q.channels = r, q.src_h = 1, q.src_w = hw;
      q.dst_h = 1, q.dst_w = hw, q.k = 1, q.out = dw;
      patch_gemm_weight_grad(q);
      return;
    }
  }
  T* u = scratch<T>(static_cast<size_t>(r * hw));
  for (int64_t n = 0; n < p.n; ++n) {
    unshuffle(p, g + n * r * hw, u);
    gemm(strided_gemm(p.c_in, r, hw, false, true, hw, hw, r, n == 0 ? 0.0f : 1.0f), x + n * p.c_in * hw, u,
         dw);  // dw += X·Uᵀ
  }
}

#define UNET_INSTANTIATE(T)                                                                       \
  template void upconv2d_forward<T>(const Upconv2dParams&, const T*, const T*, const T*, T*);     \
  template void upconv2d_backward_data<T>(const Upconv2dParams&, const T*, const T*, T*);         \
  template void upconv2d_backward_weight<T>(const Upconv2dParams&, const T*, const T*, T*);
UNET_INSTANTIATE(float)
UNET_INSTANTIATE(double)
#undef UNET_INSTANTIATE

}  // namespace unet::cpu
