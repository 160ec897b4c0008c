// kernels/winograd3x3_cpu.h — 3×3 convolution for float32 by Winograd's minimal filtering with
// AVX2 or AVX-512 (CPU only). F(2×2, 3×3): each 2×2 block of outputs ("tile") comes from its 4×4
// input window as Y = Aᵀ [ Σ_c (G g Gᵀ) ⊙ (Bᵀ d B) ] A, 16 multiply-adds per (input, output)
// channel pair instead of 36; F(4×4, 3×3): 4×4 tiles from 6×6 windows, 36 instead of 144. The
// products are independent GEMMs (output channels × input channels × tiles, one per transformed
// position) on the register tile of gemm_microkernel.h, between an input transform and an output
// transform that fuses bias and ReLU. Used by conv2d_cpu.cpp for the forward and, with the
// weights flipped and transposed, the data gradient of the 3×3 layers with many channels (the
// few-channel layers stay on conv3x3_direct_cpu.h). The weight gradient runs
// the same register tile with the tiles as the summed dimension (F(2×2, 3×3), or F(4×4, 3×3) on
// outputs at least 28 wide and tall: winograd3x3_weight_grad_tile), for the layers where it beat
// patch_gemm_cpu.h's (at least 32 input and output channels, or 16 on F(4×4) tiles; the rest
// stay there).
//
// Accuracy: F(2×2, 3×3)'s transforms have entries 0, ±1 and ±1/2, so on small integers every step
// is exact in float32 (the exact tests of test_conv2d.cpp hold); on real data an output sums
// 16·Cin transformed products whose magnitudes the transforms grow by at most 4, so its rounding
// error is bounded by 4× that of a 16·Cin-term float sum. F(4×4, 3×3)'s entries reach 5, 8 and
// 1/24: no exactness on integers, and on random data (tests/test_winograd.cpp: up to 300
// channels, values in [-1, 1]) errors up to 1.0e-4·(|y| + 1) against F(2×2, 3×3)'s 1.4e-5; both
// stay within the bound that test derives for each output from the data (observed ≤ 0.4 % of it).
// The weight gradient's F(2×2, 3×3) transforms have entries 0, ±1 (A, B) and ±½ (G): exact on
// small integers too, and within its own derived bound on random data (observed ≤ 0.4 % of it);
// F(4×4, 3×3)'s (A up to 8, Bᵀ up to 5, G's ⅙ and 1/24) within the bound derived the same way
// from its magnitudes (tests/test_winograd.cpp).
#pragma once

#include <cstdint>

namespace unet::cpu {

// True when the engine is compiled in, the level in use is avx2 or avx512, and it is not switched off.
bool winograd3x3_available();
// For tests and benchmarks: false makes conv2d take the patch-GEMM path for these layers
// (default true). Not meant to be flipped while convolutions run.
void set_winograd3x3_enabled(bool enabled);

// The output tile: 2 = F(2×2, 3×3), 4 = F(4×4, 3×3) (36 instead of 144 multiply-adds per 4×4
// outputs and channel pair; rounding errors ~7× larger, docs/kernels-conv.md), 0 = chosen per
// layer (the default: 4 where the output is at least 28 wide and tall with at least 32 output
// channels, where it pays). Anything else is a ValueError. Not meant to be changed while
// convolutions run.
void set_winograd3x3_tile(int m);
// The tile a product with this output size and output-channel count runs with now.
int winograd3x3_tile(int64_t h_out, int64_t w_out, int64_t c_out);

// Same contract as conv3x3_direct (conv3x3_direct_cpu.h): y[n][o][i][j] = act(bias[o] +
// Σ_{c,u,v} w[o][c][u][v] · x[n][c][i+u-pad][j+v-pad]) (0 outside the image), i < h + 2·pad - 2,
// j < w + 2·pad - 2; act = ReLU if relu; bias may be null; y is overwritten. Every output is
// summed by one thread in a fixed order, so the result does not depend on the thread count.
// Requires winograd3x3_available(); the caller validates the shapes.
void winograd3x3(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad, const float* x,
                 const float* weights, const float* bias, bool relu, float* y);

// The data gradient of the same convolution: dx[n][c][i][j] = Σ_{o,u,v} w[o][c][u][v] ·
// g[n][o][i+pad-u][j+pad-v] (0 outside g), for x of n × c_in × h × w, g of n × c_out × h_out × w_out
// (h_out = h + 2·pad - 2, likewise w_out) and the forward's weights w[c_out][c_in][3][3]. It is
// winograd3x3 of g with the weights flipped and transposed (wt[c][o][u][v] = w[o][c][2-u][2-v])
// and padding 2 - pad, with the same bits, but reads w in place: the weight transform gathers the
// flipped taps, instead of a serial copy of the flipped weights first. dx is overwritten.
// Requires winograd3x3_available() and 0 <= pad <= 2; the caller validates the shapes.
void winograd3x3_backward_data(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad,
                               const float* g, const float* weights, float* dx);

// The weight gradient of the same convolution with F(2×2, 3×3) (or F(4×4, 3×3):
// winograd3x3_weight_grad_tile): for every (o, c, u, v)
//   dw[o][c][u][v] = Σ_{b,i,j} g[b][o][i][j] · x[b][c][i+u-pad][j+v-pad]   (0 outside the image),
// i < h + 2·pad - 2, j < w + 2·pad - 2. Per 2×2 output tile the forward is Y = Aᵀ[U ⊙ V]A, so
// dU[o][c] = Σ_tiles (A dY Aᵀ) ⊙ V (outputs of a partial tile past the edge count as zeros): 16
// GEMMs over the tiles, c_out × c_in each, 16 multiply-adds per tile and channel pair instead of
// 36, then dw = Gᵀ dU G. With 4×4 tiles the same with F(4×4, 3×3)'s A, B and G: 36 GEMMs, 36
// multiply-adds per tile (16 outputs) instead of 144. dw is overwritten. The tiles are split into `slots` ranges fixed by the
// shapes whose partial dU are added in slot order: the result does not depend on the thread count
// (nor on the level). Requires winograd3x3_available(); the caller validates the shapes.
void winograd3x3_weight_grad(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad, const float* x,
                             const float* g, int64_t slots, float* dw);

// The output tile the weight gradient of a layer with this output size runs with now: 2 =
// F(2×2, 3×3), 4 = F(4×4, 3×3). set_winograd3x3_weight_grad_tile forces one (2 or 4; 0 = chosen
// per layer, the default: 4 where the output is at least 28 wide and tall, where it measured
// faster); anything else is a ValueError. For tests and benchmarks; not meant to be changed while
// convolutions run.
void set_winograd3x3_weight_grad_tile(int m);
int winograd3x3_weight_grad_tile(int64_t h_out, int64_t w_out);

// Which engine conv2d runs a float32 3×3 layer's weight gradient on, where Winograd is available:
// Auto (the default) = Winograd where it measured faster than the patch GEMM (the rule in
// winograd3x3_cpu.cpp), On = Winograd for every such layer, Off = the patch GEMM. For tests and
// benchmarks; not meant to be changed while convolutions run.
enum class WinogradWeightGrad { Auto, On, Off };
void set_winograd3x3_weight_grad(WinogradWeightGrad mode);
// Whether conv2d runs the weight gradient of a layer with these channels and this output size on
// Winograd now (false when Winograd is not available). Auto: at least 32 input and output channels,
// or at least 16 where the output takes F(4×4, 3×3) tiles (winograd3x3_weight_grad_tile).
bool winograd3x3_weight_grad_used(int64_t c_in, int64_t c_out, int64_t h_out, int64_t w_out);

}  // namespace unet::cpu
