// kernels/conv3x3_direct_cpu.h — direct 3×3 convolution for float32 with AVX2 or AVX-512 (CPU only).
// For layers with few channels im2col + GEMM is memory bound (the column matrix is 9× the
// input); this kernel keeps a 4-output-channel × 24-pixel block in registers and streams the
// three input rows of every channel instead. Used by conv2d_cpu.cpp for the forward and, with the
// weights flipped and transposed, the data gradient (the weight gradient is faster on the packed
// engine of patch_gemm_cpu.h).
// Compiled once per instruction-set level on every x86-64 GCC/Clang build (kernels/cpu_simd.h) and
// run at cpu_isa()'s; conv3x3_direct_available() says whether it runs at all.
#pragma once

#include <cstdint>

namespace unet::cpu {

// True when the kernels are compiled in, the level in use is avx2 or avx512, and they are not switched off.
bool conv3x3_direct_available();
// For tests and benchmarks: false makes conv2d take the im2col + GEMM path for every layer, as on
// the scalar level (default true). Not meant to be flipped while convolutions run.
void set_conv3x3_direct_enabled(bool enabled);

// y[n][o][i][j] = act(bias[o] + Σ_{c,u,v} w[o][c][u][v] · x[n][c][i+u-pad][j+v-pad]) (0 outside
// the image), for i < h_out = h + 2·pad - 2, j < w_out = w + 2·pad - 2; act = ReLU if relu.
// bias may be null. Parallel over (image, row band) tasks; every output is written by one thread.
void conv3x3_direct(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad, const float* x,
                    const float* weights, const float* bias, bool relu, float* y);

}  // namespace unet::cpu
