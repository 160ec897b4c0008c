// kernels/conv3x3_direct_cpu.cpp — see conv3x3_direct_cpu.h.
//
// Per task (image n, output rows [r0, r1)): the needed input rows of every channel are copied
// into a zero-padded scratch P[c][r1 - r0 + 2][wp] (wp = w_out rounded up to the 24-pixel block,
// plus the 2-column halo), so the inner loop has no bounds checks. The weights are repacked once
// per call into blocks of 4 output channels, wb[ob][c][u·3+v][4] (zero for missing channels).
// For each output row, pixel block and channel block, 12 accumulators (4 channels × 3 vectors
// of 8 pixels) sum over c, u, v in a fixed order, then bias + ReLU and the store (the last
// pixel block goes through a small buffer). Deterministic: one thread per output, fixed order.
//
// Weight gradient, per task (image, row band): the band's g rows (zero-padded to whole vectors)
// and x rows (zero-padded with the halo) are copied; for each block of 4 output channels, input
// channel c and kernel row u, 12 accumulators (4 channels × taps v = 0..2) run over the band's
// pixels, 7 loads per 12 FMAs, then are reduced horizontally into the task's slot. Slots own
// contiguous task ranges and are summed in slot order: independent of the thread count.
//
// Dispatch: the kernels are compiled for AVX2 + FMA with a function target attribute on any
// x86-64 GCC/Clang build (not only -march=native), and used when the running CPU has both, so
// the portable library and the test suite run them too. Only the attributed functions contain
// AVX2 code: nothing shared with other files (inline templates) is compiled for AVX2, so the
// library still runs on CPUs without it.
#include "kernels/conv3x3_direct_cpu.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "core/parallel.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define UNET_DIRECT3X3 1
#define UNET_AVX2_FMA __attribute__((target("avx2,fma")))
#endif

namespace unet::cpu {

namespace {
std::atomic<bool> g_direct_enabled{true};
}  // namespace

void set_conv3x3_direct_enabled(bool enabled) { g_direct_enabled.store(enabled, std::memory_order_relaxed); }

#ifdef UNET_DIRECT3X3

bool conv3x3_direct_available() {
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported && g_direct_enabled.load(std::memory_order_relaxed);
}

namespace {
constexpr int64_t kOb = 4;                          // output channels per register block
constexpr int64_t kPix = 24;                        // pixels per register block (3 AVX vectors)
constexpr int64_t kPadBudget = int64_t{1} << 16;    // floats in a forward task's padded input copy
constexpr int64_t kGradBudget = int64_t{1} << 16;   // floats in a gradient task's padded g and x copies

float* scratch(size_t n) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

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
  float* padded = scratch(static_cast<size_t>(f.c_in * (f.rows + 2) * f.wp));
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

UNET_AVX2_FMA inline float horizontal_sum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

struct GradPlan {
  int64_t n, c_in, h, w, c_out, pad, h_out, w_out, wg, wp, obs, rows, bands, tasks, slots, count;
  const float *x, *g;
  float* partial;  // slots × count, zeroed
};

// Slots [sb, se) of the weight gradient: slot s accumulates tasks [s·tasks/slots, (s+1)·tasks/slots).
UNET_AVX2_FMA void weight_grad_slots(const GradPlan& q, int64_t sb, int64_t se) {
  float* gpad = scratch(static_cast<size_t>(q.obs * kOb * q.rows * q.wg + q.c_in * (q.rows + 2) * q.wp));
  float* xpad = gpad + q.obs * kOb * q.rows * q.wg;
  for (int64_t s = sb; s < se; ++s) {
    float* out = q.partial + s * q.count;
    for (int64_t t = s * q.tasks / q.slots; t < (s + 1) * q.tasks / q.slots; ++t) {
      const int64_t img = t / q.bands, r0 = (t % q.bands) * q.rows, nr = std::min(q.h_out, r0 + q.rows) - r0;
      for (int64_t o = 0; o < q.obs * kOb; ++o)
        for (int64_t ii = 0; ii < nr; ++ii) {
          float* dst = gpad + (o * q.rows + ii) * q.wg;
          std::fill(dst, dst + q.wg, 0.0f);
          if (o < q.c_out)
            std::memcpy(dst, q.g + ((img * q.c_out + o) * q.h_out + r0 + ii) * q.w_out,
                        sizeof(float) * static_cast<size_t>(q.w_out));
        }
      for (int64_t c = 0; c < q.c_in; ++c)
        copy_padded_rows(q.x + (img * q.c_in + c) * q.h * q.w, q.h, q.w, q.pad, r0 - q.pad, nr + 2, q.wp,
                         xpad + c * (q.rows + 2) * q.wp);
      for (int64_t ob = 0; ob < q.obs; ++ob)
        for (int64_t c = 0; c < q.c_in; ++c)
          for (int64_t u = 0; u < 3; ++u) {
            __m256 acc[kOb][3];
            for (auto& a : acc)
              for (auto& v : a) v = _mm256_setzero_ps();
            for (int64_t ii = 0; ii < nr; ++ii) {
              const float* grow = gpad + (ob * kOb * q.rows + ii) * q.wg;
              const float* xrow = xpad + (c * (q.rows + 2) + ii + u) * q.wp;
              for (int64_t j = 0; j < q.wg; j += 8) {
                __m256 x0 = _mm256_loadu_ps(xrow + j), x1 = _mm256_loadu_ps(xrow + j + 1),
                       x2 = _mm256_loadu_ps(xrow + j + 2);
                asm("" : "+x"(x0), "+x"(x1), "+x"(x2));  // as in the forward: 7 loads per 12 FMAs
                for (int64_t o = 0; o < kOb; ++o) {
                  const __m256 gv = _mm256_loadu_ps(grow + o * q.rows * q.wg + j);
                  acc[o][0] = _mm256_fmadd_ps(gv, x0, acc[o][0]);
                  acc[o][1] = _mm256_fmadd_ps(gv, x1, acc[o][1]);
                  acc[o][2] = _mm256_fmadd_ps(gv, x2, acc[o][2]);
                }
              }
            }
            for (int64_t o = 0; o < kOb && ob * kOb + o < q.c_out; ++o)
              for (int64_t v = 0; v < 3; ++v)
                out[((ob * kOb + o) * q.c_in + c) * 9 + u * 3 + v] += horizontal_sum(acc[o][v]);
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

void conv3x3_direct_weight_grad(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad,
                                const float* x, const float* g, int64_t slots, float* dw) {
  GradPlan q{};
  q.n = n, q.c_in = c_in, q.h = h, q.w = w, q.c_out = c_out, q.pad = pad;
  q.h_out = h + 2 * pad - 2, q.w_out = w + 2 * pad - 2;
  // g rows padded to whole vectors with zeros (so the tail adds nothing); x rows padded by the
  // 2-column halo beyond that, zero outside the image.
  q.wg = (q.w_out + 7) / 8 * 8, q.wp = q.wg + 2, q.obs = (c_out + kOb - 1) / kOb;
  q.rows = std::clamp<int64_t>((kGradBudget - 2 * c_in * q.wp) / std::max<int64_t>(q.obs * kOb * q.wg + c_in * q.wp, 1),
                               1, q.h_out);
  q.bands = (q.h_out + q.rows - 1) / q.rows, q.tasks = n * q.bands;
  q.slots = std::clamp<int64_t>(slots, 1, q.tasks), q.count = c_out * c_in * 9;
  std::vector<float> partial(static_cast<size_t>(q.slots * q.count), 0.0f);
  q.x = x, q.g = g, q.partial = partial.data();
  parallel_for(0, q.slots, 1, [&](int64_t sb, int64_t se) { weight_grad_slots(q, sb, se); });
  for (int64_t i = 0; i < q.count; ++i) {
    float sum = partial[static_cast<size_t>(i)];
    for (int64_t s = 1; s < q.slots; ++s) sum += partial[static_cast<size_t>(s * q.count + i)];
    dw[i] = sum;
  }
}

#else

bool conv3x3_direct_available() { return false; }
void conv3x3_direct(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, const float*, const float*,
                    bool, float*) {}
void conv3x3_direct_weight_grad(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, const float*,
                                int64_t, float*) {}

#endif

}  // namespace unet::cpu
