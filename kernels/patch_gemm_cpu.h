// kernels/patch_gemm_cpu.h — the packed SIMD engine behind the CPU k×k convolutions (float32):
// out = A · patches(src), where the patch matrix is never written out whole. Each 16-pixel column
// panel of it is gathered straight from the image into a small L1 buffer (im2col fused into the
// GEMM's B packing), the A rows are packed once per call in panels of the register tile's rows,
// and the register tile of gemm_microkernel.h runs over them (AVX2: 6×16, 12 accumulators;
// AVX-512: 16×16, 16 accumulators). The forward (A = W, src = x) and the data gradient in gather
// form (A = W transposed per tap, src = the output gradient read with flipped taps) are the same
// product; the weight gradient runs the same register tile with the pixels as the summed
// dimension (A = the output gradient, B = the patch matrix transposed 8×8 at a time into 16-tap
// panels), or on AVX-512 for valid 3×3 layers the taps broadcast straight from the image.
// Compiled once per instruction-set level on every x86-64 GCC/Clang build (kernels/cpu_simd.h)
// and run at cpu_isa()'s; patch_gemm_available() says whether it runs at all.
#pragma once

#include <cstdint>

namespace unet::cpu {

// One patch product. For every image b, output row m and output pixel (i, j) of the
// dst_h × dst_w grid:
//   out[b][m][i][j] = act(bias[m] + Σ_{c,u,v} a[m][(c·k + u)·k + v] · src[b][c][i + du][j + dv])
// with (du, dv) = (u - pad, v - pad), or (pad - u, pad - v) when flip; src reads outside its
// src_h × src_w planes are 0; act = ReLU when relu. bias may be null. out is overwritten.
struct PatchGemm {
  int64_t batch = 0;
  int64_t rows = 0;  // M, the output planes per image
  const float* a = nullptr;  // rows × channels·k·k, row-major (or its transpose, see below)
  bool a_transposed = false;  // a is stored channels·k·k × rows
  const float* src = nullptr;  // batch × channels × src_h × src_w
  int64_t channels = 0, src_h = 0, src_w = 0;
  int64_t dst_h = 0, dst_w = 0;
  int64_t k = 0, pad = 0;
  bool flip = false;
  const float* bias = nullptr;
  bool relu = false;
  float* out = nullptr;  // batch × rows × dst_h × dst_w
};

// The weight gradient of a forward (non-flipped) patch product, for every output row m and tap
// k = (c·k + u)·k + v:
//   out[m][k] = Σ_b Σ_{i,j} grad[b][m][i][j] · src[b][c][i + u - pad][j + v - pad]
// (src reads outside its planes are 0). out is overwritten. The pixels are split into `slots`
// contiguous ranges whose partial sums are added in slot order, so the result does not depend on
// the thread count.
struct PatchGemmWeightGrad {
  int64_t batch = 0;
  int64_t rows = 0;  // M, the output planes per image
  const float* grad = nullptr;  // batch × rows × dst_h × dst_w
  const float* src = nullptr;  // batch × channels × src_h × src_w
  int64_t channels = 0, src_h = 0, src_w = 0;
  int64_t dst_h = 0, dst_w = 0;
  int64_t k = 0, pad = 0;
  int64_t slots = 8;
  float* out = nullptr;  // rows × channels·k·k
};

// True when the engine is compiled in, the level in use is avx2 or avx512, and it is not switched off.
bool patch_gemm_available();
// For tests and benchmarks: false makes the convolutions take their other paths (default true).
// Not meant to be flipped while convolutions run.
void set_patch_gemm_enabled(bool enabled);

// Runs the product, parallel over (image, row chunk, pixel chunk) tasks; every output element is
// summed by one thread in a fixed order, so the result does not depend on the thread count.
// Requires patch_gemm_available(); the caller validates the shapes.
void patch_gemm(const PatchGemm& p);
void patch_gemm_weight_grad(const PatchGemmWeightGrad& p);

}  // namespace unet::cpu
