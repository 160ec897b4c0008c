// kernels/conv3x3_direct_cpu.cpp — see conv3x3_direct_cpu.h.
//
// Per task (image n, output rows [r0, r1)): the needed input rows of every channel are copied
// into a zero-padded scratch P[c][r1 - r0 + 2][wp] (wp = w_out rounded up to the 24-pixel block,
// plus the 2-column halo), so the inner loop has no bounds checks. The weights are repacked once
// per call into blocks of 4 output channels, wb[ob][c][u·3+v][4] (zero for missing channels).
// For each output row, pixel block and channel block, 12 accumulators (4 channels × 3 vectors
// of 8 pixels) sum over c, u, v in a fixed order, then bias + ReLU and the store (the last
// pixel block goes through a small buffer). Deterministic: one thread per output, fixed order.
// (The weight gradient of these layers runs on patch_gemm_cpu.h, faster on every U-Net layer.)
//
// Dispatch: compiled for AVX2 + FMA through a function target attribute on any x86-64 GCC/Clang
// build and used when the running CPU has both (cpu_dispatch.h).
#include "kernels/conv3x3_direct_cpu.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/cpu_scratch.h"


namespace unet::cpu {

namespace {
EngineSwitch engine_switch;
}  // namespace

void set_conv3x3_direct_enabled(bool enabled) { engine_switch.set(enabled); }
bool conv3x3_direct_available() { return engine_switch.available(); }

#ifdef UNET_X86_DISPATCH

namespace {
constexpr int64_t kOb = 4;                          // output channels per register block
constexpr int64_t kPix = 24;                        // pixels per register block (3 AVX vectors)
constexpr int64_t kPadBudget = int64_t{1} << 16;    // floats in a forward task's padded input copy


// Copies rows [ih0, ih0 + count) of one x plane (h × w) into dst rows of width wp, shifted right by
// pad; rows outside the image and columns beyond the data are zero.
void copy_padded_rows(const float* plane, int64_t h, int64_t w, int64_t pad, int64_t ih0, int64_t count,
                      int64_t wp, float* dst) {
  for (int64_t ii = 0; ii < count; ++ii, dst += wp) {
    const int64_t ih = ih0 + ii;
    std::fill(dst, dst + wp, 0.0f);
    if (ih < 0 || ih >= h) continue;
    std::memcpy(dst + pad, plane + ih * w, sizeof(float) * static_cast<size_t>(std::min(w, wp - pad)));
  }
}

struct ForwardPlan {
  int64_t c_in, h, w, c_out, pad, h_out, w_out, blocks, wp, obs, rows, bands;
  const float *x, *wb, *bias;
  bool relu;
  float* y;
};

// Tasks [tb, te) of the forward: (image, row band) pairs.
UNET_AVX2_FMA void forward_tasks(const ForwardPlan& f, int64_t tb, int64_t te) {
  float* padded = thread_scratch<float, ScratchTag::kDirectPadded>(static_cast<size_t>(f.c_in * (f.rows + 2) * f.wp));
  for (int64_t t = tb; t < te; ++t) {
    const int64_t img = t / f.bands, r0 = (t % f.bands) * f.rows, r1 = std::min(f.h_out, r0 + f.rows), pr = r1 - r0 + 2;
    const float* x_n = f.x + img * f.c_in * f.h * f.w;
    for (int64_t c = 0; c < f.c_in; ++c)
      copy_padded_rows(x_n + c * f.h * f.w, f.h, f.w, f.pad, r0 - f.pad, pr, f.wp, padded + c * pr * f.wp);
    float* y_n = f.y + img * f.c_out * f.h_out * f.w_out;
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t jb = 0; jb < f.blocks; ++jb) {
        const int64_t j0 = jb * kPix;
        for (int64_t ob = 0; ob < f.obs; ++ob) {
          __m256 acc[kOb][3];
          for (auto& a : acc)
            for (auto& v : a) v = _mm256_setzero_ps();
          const float* wk = f.wb + ob * f.c_in * 9 * kOb;
          for (int64_t c = 0; c < f.c_in; ++c) {
            const float* prow = padded + (c * pr + (i - r0)) * f.wp + j0;
            for (int64_t u = 0; u < 3; ++u, prow += f.wp)
              for (int64_t v = 0; v < 3; ++v, wk += kOb) {
                __m256 x0 = _mm256_loadu_ps(prow + v), x1 = _mm256_loadu_ps(prow + v + 8),
                       x2 = _mm256_loadu_ps(prow + v + 16);
                // Keep the three pixel vectors in registers: folding the loads into the 12
                // FMAs would make the loop load-bound (16 loads instead of 7).
                asm("" : "+x"(x0), "+x"(x1), "+x"(x2));
                for (int64_t o = 0; o < kOb; ++o) {
                  const __m256 wv = _mm256_broadcast_ss(wk + o);
                  acc[o][0] = _mm256_fmadd_ps(wv, x0, acc[o][0]);
                  acc[o][1] = _mm256_fmadd_ps(wv, x1, acc[o][1]);
                  acc[o][2] = _mm256_fmadd_ps(wv, x2, acc[o][2]);
                }
              }
          }
          const int64_t count = std::min(kPix, f.w_out - j0);
          for (int64_t o = 0; o < kOb && ob * kOb + o < f.c_out; ++o) {
            const int64_t oc = ob * kOb + o;
            const __m256 bv = _mm256_set1_ps(f.bias ? f.bias[oc] : 0.0f), zero = _mm256_setzero_ps();
            float* dst = y_n + (oc * f.h_out + i) * f.w_out + j0;
            alignas(32) float tmp[kPix];
            for (int64_t s = 0; s < 3; ++s) {
              __m256 v = _mm256_add_ps(acc[o][s], bv);
              if (f.relu) v = _mm256_max_ps(zero, v);  // NaN propagates, as std::max(v, 0) does
              if (count == kPix)
                _mm256_storeu_ps(dst + 8 * s, v);
              else
                _mm256_store_ps(tmp + 8 * s, v);
            }
            if (count < kPix) std::memcpy(dst, tmp, sizeof(float) * static_cast<size_t>(count));
          }
        }
      }
  }
}

}  // namespace

void conv3x3_direct(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad, const float* x,
                    const float* weights, const float* bias, bool relu, float* y) {
  ForwardPlan f{};
  f.c_in = c_in, f.h = h, f.w = w, f.c_out = c_out, f.pad = pad;
  f.h_out = h + 2 * pad - 2, f.w_out = w + 2 * pad - 2;
  f.blocks = (f.w_out + kPix - 1) / kPix, f.wp = f.blocks * kPix + 2, f.obs = (c_out + kOb - 1) / kOb;
  std::vector<float> wb(static_cast<size_t>(f.obs * c_in * 9 * kOb), 0.0f);
  for (int64_t o = 0; o < c_out; ++o)
    for (int64_t c = 0; c < c_in; ++c)
      for (int64_t t = 0; t < 9; ++t) wb[((o / kOb * c_in + c) * 9 + t) * kOb + o % kOb] = weights[(o * c_in + c) * 9 + t];
  f.rows = std::clamp<int64_t>(kPadBudget / std::max<int64_t>(c_in * f.wp, 1) - 2, 1,
                               std::max<int64_t>(1, (f.h_out + 3) / 4));
  f.bands = (f.h_out + f.rows - 1) / f.rows;
  f.x = x, f.wb = wb.data(), f.bias = bias, f.relu = relu, f.y = y;
  parallel_for(0, n * f.bands, 1, [&](int64_t tb, int64_t te) { forward_tasks(f, tb, te); });
}

#else

void conv3x3_direct(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, const float*, const float*,
                    bool, float*) {}

#endif

}  // namespace unet::cpu
