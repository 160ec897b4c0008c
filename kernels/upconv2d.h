// kernels/upconv2d.h — the U-Net's up-convolution: transposed convolution with a 2×2 kernel and
// stride 2, plus bias. It doubles the resolution; the 2×2 output blocks do not overlap, so each
// output pixel depends on exactly one input pixel.
//
// Layouts: x [N, Cin, H, W], w [Cin, Cout, 2, 2] (PyTorch's ConvTranspose2d layout, so
//          checkpoints interoperate), bias [Cout] (may be undefined: no bias),
//          y [N, Cout, 2H, 2W]; all NCHW float32.
// Forward:  y[n,o,2i+a,2j+b] = bias[o] + Σ_c x[n,c,i,j] · w[c,o,a,b]
// Gradient rule (g = dL/dy):
//   dx[n,c,i,j] = Σ_{o,a,b} w[c,o,a,b] · g[n,o,2i+a,2j+b]   (a gather: the adjoint of the forward)
//   dw[c,o,a,b] = Σ_{n,i,j} x[n,c,i,j] · g[n,o,2i+a,2j+b]
//   db[o]       = Σ_{n,p,q} g[n,o,p,q]
// With w viewed as a [Cin, Cout·4] matrix and the output unshuffled into U[Cout·4, H·W]
// (row (o·2 + a)·2 + b), the forward is U = Wᵀ·X per image, dx = W·U(g), dw = Σ X·U(g)ᵀ.
// Every launcher writes its output (never accumulates), so outputs may be poisoned.
#pragma once

#include <cstdint>

#include "core/precision.h"
#include "core/tensor.h"
#include "kernels/conv2d.h"

namespace unet {

// Tensor-level op with autograd. Throws ShapeError (ranks, channel mismatch, kernel not 2×2,
// bias size, empty tensors), DTypeError (int32 tensors), DeviceError (different devices),
// ValueError (tf32/bf16 on CPU tensors). `precision` is the arithmetic of the forward and both
// gradients (core/precision.h).
Tensor upconv2d(const Tensor& x, const Tensor& w, const Tensor& bias, Precision precision = Precision::FP32);

struct Upconv2dParams {
  int64_t n = 0, c_in = 0, h = 0, w = 0;  // input; output is [n, c_out, 2h, 2w]
  int64_t c_out = 0;
  Precision precision = Precision::FP32;  // CUDA launchers only; the CPU computes in FP32
};

namespace cpu {
// Per image: cpu::gemm into an unshuffled scratch U = Wᵀ·X, then a parallel shuffle + bias.
template <typename T> void upconv2d_forward(const Upconv2dParams& p, const T* x, const T* w, const T* bias, T* y);
// Per image: unshuffle g into U, then dx = W·U.
template <typename T> void upconv2d_backward_data(const Upconv2dParams& p, const T* g, const T* w, T* dx);
// dw = Σ_images X·Uᵀ. The bias gradient is cpu::channel_sum(g, n, c_out, 4·h·w) (conv2d.h).
template <typename T> void upconv2d_backward_weight(const Upconv2dParams& p, const T* x, const T* g, T* dw);
}  // namespace cpu

namespace cuda {
// Tiled implicit GEMM (kernels/implicit_gemm.cuh, in p.precision) with the shuffle folded into
// the loads and stores; no scratch for forward and data gradient.
void upconv2d_forward(const Upconv2dParams& p, const float* x, const float* w, const float* bias, float* y);
// Gather: every dx element is computed by one thread from its 2×2·Cout outputs; no atomics.
void upconv2d_backward_data(const Upconv2dParams& p, const float* g, const float* w, float* dx);
// Split-K over (image, pixel) into scratch, splits summed in a fixed order: deterministic.
void upconv2d_backward_weight(const Upconv2dParams& p, const float* x, const float* g, float* dw);
// Into how many parts each pass splits its reduction (the forward and data gradient too, where C
// has too few tiles: kernels/split_k_plan.h). PassSplits is declared in kernels/conv2d.h.
PassSplits upconv2d_splits(const Upconv2dParams& p);
}  // namespace cuda

}  // namespace unet
