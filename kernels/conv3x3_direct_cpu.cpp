// kernels/conv3x3_direct_cpu.cpp — see conv3x3_direct_cpu.h.
//
// Per task (image n, output rows [r0, r1)): the needed input rows of every channel are copied
// into a zero-padded scratch P[c][r1 - r0 + 2][wp] (wp = w_out rounded up to the pixel block,
// plus the 2-column halo), so the inner loop has no bounds checks. Without padding (the valid
// U-Net's forward) the rows are read in place instead: the last pixel block's loads run past a
// row's end into the next row, lanes whose outputs are discarded, and only the band whose loads
// would pass the end of x takes the copy. The weights are repacked once
// per call into blocks of 4 output channels, wb[ob][c][u·3+v][4] (zero for missing channels).
// For each output row, pixel block and channel block, 12 accumulators (4 channels × 3 vectors
// of 8 pixels on AVX2, of 16 on AVX-512) sum over c, u, v in a fixed order, then bias + ReLU and the store (the last
// pixel block goes through a small buffer). Deterministic: one thread per output, fixed order.
// (The weight gradient of these layers runs on patch_gemm_cpu.h, faster on every U-Net layer.)
//
// Dispatch: the vector code (conv3x3_direct_cpu_simd.h) is compiled once per level on any
// x86-64 GCC/Clang build and runs at cpu_isa()'s level (kernels/cpu_simd.h, cpu_dispatch.h).
#include "kernels/conv3x3_direct_cpu.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/cpu_scratch.h"
#include "kernels/cpu_simd.h"

namespace unet::cpu {

namespace {
EngineSwitch engine_switch;
}  // namespace

void set_conv3x3_direct_enabled(bool enabled) { engine_switch.set(enabled); }
bool conv3x3_direct_available() { return engine_switch.available(); }

#ifdef UNET_X86_DISPATCH

namespace {
constexpr int64_t kPadBudget = int64_t{1} << 16;    // floats in a forward task's padded input copy
// Row bands per image at least: the few-channel layers (1 input channel: the budget allows whole
// images) ran as 4 tasks, 2 per thread, and one thread idled for ~18 % of the call whenever the
// two took unequal time. A band's overhead is its 2 extra padded rows.
constexpr int64_t kMinBands = 16;

// Copies rows [ih0, ih0 + count) of one x plane (h × w) into dst rows of width wp, shifted right by
// pad; rows outside the image and columns beyond the data are zero.
void copy_padded_rows(const float* plane, int64_t h, int64_t w, int64_t pad, int64_t ih0, int64_t count,
                      int64_t wp, float* dst) {
  for (int64_t ii = 0; ii < count; ++ii, dst += wp) {
    const int64_t ih = ih0 + ii;
    if (ih < 0 || ih >= h) {
      std::fill(dst, dst + wp, 0.0f);
      continue;
    }
    // Each float written once: zeros only around the copied data (the whole row was zeroed first).
    const int64_t copied = std::min(w, wp - pad);
    std::fill(dst, dst + pad, 0.0f);
    std::memcpy(dst + pad, plane + ih * w, sizeof(float) * static_cast<size_t>(copied));
    std::fill(dst + pad + copied, dst + wp, 0.0f);
  }
}

struct ForwardPlan {
  int64_t n, c_in, h, w, c_out, pad, h_out, w_out, blocks, wp, obs, rows, bands;
  const float *x, *weights, *wb, *bias;
  bool relu;
  float* y;
};

// The weights repacked into blocks of `ob` output channels, wb[block][c][u·3+v][ob] (zero for
// missing channels), so a register block's weights for one tap are consecutive.
std::vector<float> pack_weights(ForwardPlan& f, int64_t ob) {
  f.obs = (f.c_out + ob - 1) / ob;
  std::vector<float> wb(static_cast<size_t>(f.obs * f.c_in * 9 * ob), 0.0f);
  for (int64_t o = 0; o < f.c_out; ++o)
    for (int64_t c = 0; c < f.c_in; ++c)
      for (int64_t t = 0; t < 9; ++t) wb[((o / ob * f.c_in + c) * 9 + t) * ob + o % ob] = f.weights[(o * f.c_in + c) * 9 + t];
  return wb;
}

// Pixel blocks of `pix` (the level's register block), padded row width, rows per band.
void plan_bands(ForwardPlan& f, int64_t pix) {
  f.blocks = (f.w_out + pix - 1) / pix, f.wp = f.blocks * pix + 2;
  f.rows = std::clamp<int64_t>(kPadBudget / std::max<int64_t>(f.c_in * f.wp, 1) - 2, 1,
                               std::max<int64_t>(1, (f.h_out + kMinBands - 1) / kMinBands));
  f.bands = (f.h_out + f.rows - 1) / f.rows;
}

// The vector code, once per level (kernels/cpu_simd.h).
UNET_SIMD_BEGIN_AVX2
namespace avx2 {
using Isa = simd::Avx2;
#include "kernels/conv3x3_direct_cpu_simd.h"
}  // namespace avx2
UNET_SIMD_END

UNET_SIMD_BEGIN_AVX512
namespace avx512 {
using Isa = simd::Avx512;
#include "kernels/conv3x3_direct_cpu_simd.h"
}  // namespace avx512
UNET_SIMD_END

}  // namespace

void conv3x3_direct(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad, const float* x,
                    const float* weights, const float* bias, bool relu, float* y) {
  ForwardPlan f{};
  f.n = n, f.c_in = c_in, f.h = h, f.w = w, f.c_out = c_out, f.pad = pad;
  f.h_out = h + 2 * pad - 2, f.w_out = w + 2 * pad - 2;
  f.x = x, f.weights = weights, f.bias = bias, f.relu = relu, f.y = y;
  if (cpu_isa() == CpuIsa::Avx512)
    avx512::direct::run(f);
  else
    avx2::direct::run(f);
}

#else

void conv3x3_direct(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, const float*, const float*,
                    bool, float*) {}

#endif

}  // namespace unet::cpu
