// kernels/winograd3x3_cpu.h — 3×3 convolution for float32 by Winograd's minimal filtering
// F(2×2, 3×3) with AVX2 + FMA (CPU only). Each 2×2 block of outputs ("tile") is computed from its
// 4×4 input window as Y = Aᵀ [ Σ_c (G g Gᵀ) ⊙ (Bᵀ d B) ] A, so a tile costs 16 multiply-adds per
// (input, output) channel pair instead of 36: the 16 products become 16 independent GEMMs
// (output channels × input channels × tiles) on the packed 6×16 register tile of
// gemm_microkernel_avx2.h, between an input transform (additions only) and an output transform
// that fuses bias and ReLU. Used by conv2d_cpu.cpp for the forward and, with the weights flipped
// and transposed, the data gradient of the 3×3 layers with many channels (the few-channel layers
// stay on conv3x3_direct_cpu.h, the weight gradient on patch_gemm_cpu.h).
//
// Accuracy: the transforms have entries 0, ±1 and ±1/2, so on small integers every step is exact
// in float32 (the exact tests of test_conv2d.cpp hold); on real data an output sums 16·Cin
// transformed products whose magnitudes the transforms grow by at most 4, so its rounding error
// is bounded by 4× that of a 16·Cin-term float sum (tests/test_winograd.cpp checks that bound
// against double loops; on the U-Net's layers the error is ≤ 2 % of bench_ops' tolerance).
#pragma once

#include <cstdint>

namespace unet::cpu {

// True when the engine is compiled in, this CPU has AVX2 and FMA, and it is not switched off.
bool winograd3x3_available();
// For tests and benchmarks: false makes conv2d take the patch-GEMM path for these layers
// (default true). Not meant to be flipped while convolutions run.
void set_winograd3x3_enabled(bool enabled);

// Same contract as conv3x3_direct (conv3x3_direct_cpu.h): y[n][o][i][j] = act(bias[o] +
// Σ_{c,u,v} w[o][c][u][v] · x[n][c][i+u-pad][j+v-pad]) (0 outside the image), i < h + 2·pad - 2,
// j < w + 2·pad - 2; act = ReLU if relu; bias may be null; y is overwritten. Every output is
// summed by one thread in a fixed order, so the result does not depend on the thread count.
// Requires winograd3x3_available(); the caller validates the shapes.
void winograd3x3(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad, const float* x,
                 const float* weights, const float* bias, bool relu, float* y);

}  // namespace unet::cpu
