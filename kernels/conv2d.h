// kernels/conv2d.h — 2-D convolution (cross-correlation, as in every DL framework), stride 1,
// odd square kernel k×k, "valid" (no padding, the U-Net paper's choice) or "same" (pad k/2),
// plus bias and an optional fused ReLU.
//
// Layouts: x [N, Cin, H, W], w [Cout, Cin, k, k], bias [Cout] (may be undefined: no bias),
//          y [N, Cout, Ho, Wo] with Ho = H - k + 1 (valid) or H (same); all NCHW float32.
// Forward:  y[n,o,i,j] = act(b[o] + Σ_{c,p,q} w[o,c,p,q] · x[n,c,i+p-pad,j+q-pad]), act = id/ReLU
//           (x outside the image reads 0).
// Gradient rule (g = dL/dy, masked by [y > 0] first when the ReLU is fused — the node saves y;
// the ReLU's gradient at 0 is taken as 0):
//   dx[n,c,h,v] = Σ_{o,p,q} w[o,c,p,q] · g[n,o,h-p+pad,v-q+pad]   (the adjoint of the forward)
//   dw[o,c,p,q] = Σ_{n,i,j} g[n,o,i,j] · x[n,c,i+p-pad,j+q-pad]
//   db[o]       = Σ_{n,i,j} g[n,o,i,j]
// Every launcher below writes its output (never accumulates into it), so outputs may be poisoned.
#pragma once

#include <cstdint>

#include "core/precision.h"
#include "core/tensor.h"
#include "kernels/crop_concat.h"

namespace unet {

enum class Padding { Valid, Same };

struct Conv2dOptions {
  Padding padding = Padding::Valid;
  bool fuse_relu = false;  // y = relu(conv(x) + b); the backward masks with [y > 0]
  // The arithmetic of the forward and of both gradients (core/precision.h). tf32 and bf16 need
  // CUDA tensors (ValueError on the CPU).
  Precision precision = Precision::FP32;
};

// Tensor-level op with autograd. x, w float32 on one device; bias float32 [Cout] on the same
// device, or an undefined Tensor() for no bias. Throws ShapeError (ranks, channel mismatch, even
// or non-square kernel, empty tensors, output size <= 0), DTypeError (int32 tensors),
// DeviceError (tensors on different devices).
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dOptions& options = {});

// conv2d(crop_concat(skip, up), w, bias, options) as one op: the U-Net decoder's first
// convolution, reading the centre-cropped skip connection (input channels 0..Cs-1) and the
// upsampled map (Cs..) as two ranges of its input channels, so the concatenated tensor never
// exists, forward or backward (on a CUDA device, for valid 3×3 kernels: the U-Net's; other
// shapes and the CPU concatenate into a temporary, which gives the same values). The same
// function and gradients as the two ops: autograd to skip, up, w and bias. Throws what
// crop_concat and conv2d throw, naming conv2d_concat.
Tensor conv2d_concat(const Tensor& skip, const Tensor& up, const Tensor& w, const Tensor& bias,
                     const Conv2dOptions& options = {});

// Geometry of one convolution, passed by value to every launcher and kernel.
struct Conv2dParams {
  int64_t n = 0, c_in = 0, h = 0, w = 0;  // input
  int64_t c_out = 0, k = 1, pad = 0;      // kernel k×k, symmetric zero padding
  int64_t h_out = 0, w_out = 0;           // output = h + 2·pad - k + 1 (same for w)
  bool relu = false;                      // forward only: fused ReLU
  Precision precision = Precision::FP32;  // CUDA launchers: fp32 SIMT, tf32/bf16 tensor cores; the CPU ignores it
};

// Fills Conv2dParams from shapes (no validation; conv2d() validates first).
Conv2dParams conv2d_params(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t k,
                           Padding padding, bool relu = false, Precision precision = Precision::FP32);

namespace cpu {
// The CPU paths (float on AVX2 CPUs: direct 3×3 kernels and the patch-GEMM engine; otherwise
// im2col + Eigen GEMM) are described in conv2d_cpu.cpp and docs/kernels-conv.md. bias may be nullptr.
template <typename T> void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y);
// dx from g (already ReLU-masked when the ReLU is fused); dx is overwritten.
template <typename T> void conv2d_backward_data(const Conv2dParams& p, const T* g, const T* w, T* dx);
// dw from x and g, summed over images and pixels; dw is overwritten.
template <typename T> void conv2d_backward_weight(const Conv2dParams& p, const T* x, const T* g, T* dw);
// db[c] = Σ_{n, pixel} g[n, c, pixel] over g of shape [n, channels, pixels]; accumulates in double.
template <typename T> void channel_sum(const T* g, int64_t n, int64_t channels, int64_t pixels, T* db);
// The fused ReLU's two gradient passes in one: g = dy · [y > 0] (as cpu::relu_backward) and
// db = channel_sum(g), with the same bits as the two calls.
template <typename T>
void relu_backward_channel_sum(const T* y, const T* dy, int64_t n, int64_t channels, int64_t pixels, T* g, T* db);
// conv2d_concat's passes (the reference, and the CPU backend): p is the convolution of the
// concatenation that c describes; they concatenate into a temporary (and split its gradient).
// dskip is written whole (0 outside the crop window); dskip or dup may be null.
template <typename T>
void conv2d_concat_forward(const Conv2dParams& p, const CropConcatParams& c, const T* skip, const T* up, const T* w,
                           const T* bias, T* y);
template <typename T>
void conv2d_concat_backward_data(const Conv2dParams& p, const CropConcatParams& c, const T* g, const T* w, T* dskip,
                                 T* dup);
template <typename T>
void conv2d_concat_backward_weight(const Conv2dParams& p, const CropConcatParams& c, const T* skip, const T* up,
                                   const T* g, T* dw);
}  // namespace cpu

namespace cuda {
// Tiled implicit GEMM (kernels/implicit_gemm.cuh: 128×128 tiles, or 64×128 for at most 64 output
// channels; fp32 on FP32 FMAs, tf32/bf16 on the tensor cores as p.precision says), input
// patches and weights staged in shared memory; bias and ReLU fused into the epilogue.
void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y);
// Where C has few tiles (the deep levels), K is split and the partials are summed in a fixed order
// by a second kernel that applies bias and ReLU (conv2d_splits says how many; deterministic).
// Same kernel with the roles swapped: Cin × input pixels, reduction over (Cout, k, k). A gather:
// each dx element is written by exactly one thread; no atomics.
void conv2d_backward_data(const Conv2dParams& p, const float* g, const float* w, float* dx);
// Implicit GEMM Cout × (Cin·k·k) reducing over (image, pixel), split-K into a scratch buffer and
// summed in a fixed order by a second kernel: deterministic, no atomics.
void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* g, float* dw);
// Chunks of each channel summed by blocks in a fixed tree, then the chunks in order: deterministic.
void channel_sum(const float* g, int64_t n, int64_t channels, int64_t pixels, float* db);
// The fused ReLU's two gradient passes in one: g = dy·[y > 0] and db = channel_sum(g), the same
// bits as relu_backward then channel_sum.
void relu_backward_channel_sum(const float* y, const float* dy, int64_t n, int64_t channels, int64_t pixels, float* g,
                               float* db);

// conv2d_concat's passes without the concatenation: the Ops above read (and the data gradient
// writes) the skip map's crop window and up in place. Valid 3×3 only (ValueError otherwise).
// The data gradient writes dskip's window only (cuda::crop_concat_zero_border clears the rest);
// dskip or dup may be null.
void conv2d_concat_forward(const Conv2dParams& p, const CropConcatParams& c, const float* skip, const float* up,
                           const float* w, const float* bias, float* y);
void conv2d_concat_backward_data(const Conv2dParams& p, const CropConcatParams& c, const float* g, const float* w,
                                 float* dskip, float* dup);
void conv2d_concat_backward_weight(const Conv2dParams& p, const CropConcatParams& c, const float* skip,
                                   const float* up, const float* g, float* dw);

// Into how many parts each pass above splits its reduction for p (kernels/split_k_plan.h: where
// C has too few tiles to fill the GPU; 1 = not split). For tests and benchmarks.
struct PassSplits {
  int64_t forward = 1, data = 1, weight = 1;
};
PassSplits conv2d_splits(const Conv2dParams& p);
}  // namespace cuda

}  // namespace unet
