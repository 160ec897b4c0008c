// kernels/conv2d_cpu.cpp — CPU convolution (the reference and the CPU backend). Float32 k×k
// layers run on the SIMD engines at instruction-set levels avx2 and avx512 (cpu_dispatch.h): the
// direct 3×3 kernels of conv3x3_direct_cpu.h for the forward and data gradient of 3×3 layers with
// few channels (Cin·Cout <= 128, below 16->16; <= 1024 when Winograd is switched off), Winograd of
// winograd3x3_cpu.h for those of the other 3×3 layers and for the weight gradient of the 3×3
// layers where it measured faster (winograd3x3_weight_grad_used: at least 32 channels on both
// sides, or 16 with F(4×4) tiles), the packed patch-GEMM engine of patch_gemm_cpu.h for the other
// k×k layers and the other weight gradients. Everything else
// (double, 1×1, the scalar level) is im2col + Eigen GEMM over bands of output rows, so the column
// buffer stays small (the paper's 64-channel 3×3 layer at 572² would otherwise need a ~0.7 GB
// buffer): forward and weight gradient run the (image, band) pairs as parallel tasks when the
// weights are small (see kSmallWeights); the data gradient gathers (small weights) or uses
// cpu::gemm and col2im per band. A 1×1 valid convolution needs no im2col: the image itself is the
// column matrix.
//
// Column layout for a band of output rows [r0, r1): col[(c·k + p)·k + q][(i - r0)·Wo + j] =
// x[c, i+p-pad, j+q-pad] (0 outside the image), so with W viewed as [Cout, Cin·k·k]:
//   y_band = W · col,   dcol = Wᵀ · g_band (then col2im adds it back into dx),   dw += g_band · colᵀ.
// Determinism: every output element is produced by one thread in a fixed order (col2im runs in
// parallel over input channels, whose dx planes are disjoint; weight-gradient partials live in a
// fixed number of slots summed in order), so results do not depend on the thread count.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "core/parallel.h"
#include "kernels/conv2d.h"
#include "kernels/conv3x3_direct_cpu.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_scratch.h"
#include "kernels/matmul.h"
#include "kernels/patch_gemm_cpu.h"
#include "kernels/cpu_slots.h"
#include "kernels/winograd3x3_cpu.h"

namespace unet {

Conv2dParams conv2d_params(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t k,
                           Padding padding, bool relu, Precision precision) {
  Conv2dParams p;
  p.n = n; p.c_in = c_in; p.h = h; p.w = w;
  p.c_out = c_out; p.k = k;
  p.pad = padding == Padding::Same ? k / 2 : 0;
  p.h_out = h + 2 * p.pad - k + 1;
  p.w_out = w + 2 * p.pad - k + 1;
  p.relu = relu;
  p.precision = precision;
  return p;
}

namespace cpu {
namespace {

// Column buffer per band (elements). Layers with small weights (up to kSmallWeights elements:
// the U-Net layers up to 256->256 3x3, the wide shallow ones that dominate the cost) run their
// bands in parallel, one single-threaded GEMM per band on a per-thread buffer that stays near the
// cache (kTaskColBudget). Larger weights run bands one after the other with each GEMM split over
// output channels (kColBudget), so W is not re-packed by every task.
constexpr int64_t kColBudget = int64_t{1} << 21;
constexpr int64_t kTaskColBudget = int64_t{1} << 18;
constexpr int64_t kSmallWeights = int64_t{1} << 20;
constexpr int64_t kWeightSlots = 8;  // partial weight gradients (patch GEMM and band-parallel paths)
constexpr int64_t kDirectChannelPairs = 1024;  // Cin·Cout up to which 3×3 float layers run direct
constexpr int64_t kDirectChannelPairsBesideWinograd = 128;  // the same, when Winograd runs the others

bool is_pointwise(const Conv2dParams& p) { return p.k == 1 && p.pad == 0; }
bool small_weights(const Conv2dParams& p) { return p.c_out * p.c_in * p.k * p.k <= kSmallWeights; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The direct 3×3 kernel (float32 only) for layers with few channels, where a GEMM is memory
// bound; (c_in, c_out) is the channel pair of the convolution actually run (for the data
// gradient: c_out -> c_in). Measured on the U-Net's layers (2 threads, 2026-11-26): against the
// patch GEMM the direct kernel wins up to 32->32 (16->16 at 314²: ~45 vs ~33 GFLOP/s single
// thread); against Winograd F(2×2) up to 16->16 (16->16 at 314²: 3.7 vs 4.1 ms; 16->32 at 156²:
// 1.8 vs 1.3 ms; 32->32 at 154²: 3.2 vs 2.8 ms). Against today's Winograd, whose 16-output-channel
// layers run F(4×4), it loses 16->16 too (bench/cpu_levels --levels avx512,avx512-direct --ops
// 0.conv2, AMD EPYC Zen 4, 2026-12-03, CPU time, direct -> Winograd: down0.conv2 at 312² forward
// 0.64-0.78, data gradient 0.83-0.96; up0.conv2 at 132² forward 0.56-0.68, data gradient
// 0.60-0.83), so beside it the direct kernel keeps only layers below 16->16 (the first, 1->16).
bool use_direct(int64_t k, int64_t c_in, int64_t c_out) {
  const int64_t limit = winograd3x3_available() ? kDirectChannelPairsBesideWinograd : kDirectChannelPairs;
  return k == 3 && conv3x3_direct_available() && c_in * c_out <= limit;
}

// Winograd F(2×2, 3×3) (winograd3x3_cpu.h) for the other float32 3×3 layers: 16 instead of 36
// multiply-adds per 2×2 outputs and channel pair.
bool use_winograd(int64_t k) { return k == 3 && winograd3x3_available(); }

// The data gradient of a 3×3 layer as a forward convolution: dx is the "full" convolution of g
// with wt[c][o][u][v] = w[o][c][2-u][2-v] and padding 2 - pad. Written in order into the calling
// thread's scratch (the engines only read it during the call).
const float* flipped_transposed_3x3(const Conv2dParams& p, const float* w) {
  float* wt = thread_scratch<float, ScratchTag::kFlippedWeights>(static_cast<size_t>(p.c_in * p.c_out * 9));
  for (int64_t c = 0; c < p.c_in; ++c)
    for (int64_t o = 0; o < p.c_out; ++o)
      for (int64_t t = 0; t < 9; ++t) wt[(c * p.c_out + o) * 9 + (8 - t)] = w[(o * p.c_in + c) * 9 + t];
  return wt;
}

// The packed patch-GEMM engine (patch_gemm_cpu.h) for the other float32 k×k layers; a 1×1 valid
// convolution is a plain GEMM on the image and stays on cpu::gemm.
bool use_patch_gemm(const Conv2dParams& p) { return !is_pointwise(p) && patch_gemm_available(); }

cpu::PatchGemm patch_product(const Conv2dParams& p, int64_t rows, const float* a, const float* src, int64_t channels,
                             int64_t src_h, int64_t src_w, int64_t dst_h, int64_t dst_w, bool flip, const float* bias,
                             bool relu, float* out) {
  PatchGemm q;
  q.batch = p.n, q.rows = rows, q.a = a, q.src = src, q.channels = channels, q.src_h = src_h, q.src_w = src_w;
  q.dst_h = dst_h, q.dst_w = dst_w, q.k = p.k, q.pad = p.pad, q.flip = flip, q.bias = bias, q.relu = relu, q.out = out;
  return q;
}

// The data gradient's weights in gather form: wd[c][(o·k + u)·k + v] = w[o][c][u][v].
template <typename T> std::vector<T> taps_transposed(const Conv2dParams& p, const T* w) {
  const int64_t kk = p.k * p.k, kd = p.c_out * kk;
  std::vector<T> wd(static_cast<size_t>(p.c_in * kd));
  for (int64_t o = 0; o < p.c_out; ++o)
    for (int64_t c = 0; c < p.c_in; ++c)
      std::copy(w + (o * p.c_in + c) * kk, w + (o * p.c_in + c + 1) * kk, wd.begin() + c * kd + o * kk);
  return wd;
}

int64_t band_rows(const Conv2dParams& p, int64_t budget) {
  const int64_t per_row = p.c_in * p.k * p.k * p.w_out;
  return std::clamp<int64_t>(budget / std::max<int64_t>(per_row, 1), 1, p.h_out);
}

template <typename T> T* scratch(size_t n) { return thread_scratch<T, ScratchTag::kIm2col>(n); }

// Patch columns for rows [r0, r1) of a dst_h×dst_w grid from planes src[channels][src_h][src_w]:
// col[(c·k + u)·k + v][(i - r0)·dst_w + j] = src[c, i + du, j + dv] (0 outside), with
// (du, dv) = (u - pad, v - pad) for the forward's im2col of x, or (pad - u, pad - v) with
// flip = true for the data gradient's gather of g.
template <typename T>
void patch_cols(const T* src, int64_t channels, int64_t src_h, int64_t src_w, int64_t dst_w, int64_t k,
                int64_t pad, bool flip, int64_t r0, int64_t r1, T* col) {
  const int64_t kk = k * k, rows = channels * kk, band = (r1 - r0) * dst_w;
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(band, 1)), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const int64_t c = row / kk, u = (row / k) % k, v = row % k;
      const int64_t du = flip ? pad - u : u - pad, dv = flip ? pad - v : v - pad;
      const T* plane = src + c * src_h * src_w;
      // Columns j whose source column j + dv lies inside the plane.
      const int64_t j0 = std::clamp<int64_t>(-dv, 0, dst_w), j1 = std::clamp<int64_t>(src_w - dv, j0, dst_w);
      T* dst = col + row * band;
      for (int64_t i = r0; i < r1; ++i, dst += dst_w) {
        const int64_t ih = i + du;
        if (ih < 0 || ih >= src_h) {
          std::fill(dst, dst + dst_w, T(0));
          continue;
        }
        std::fill(dst, dst + j0, T(0));
        std::memcpy(dst + j0, plane + ih * src_w + j0 + dv, sizeof(T) * (j1 - j0));
        std::fill(dst + j1, dst + dst_w, T(0));
      }
    }
  });
}

template <typename T>
void im2col(const Conv2dParams& p, const T* x_n, int64_t r0, int64_t r1, T* col) {
  patch_cols(x_n, p.c_in, p.h, p.w, p.w_out, p.k, p.pad, false, r0, r1, col);
}

// The column matrix of output rows [r0, r1) of image x_n (bands of at most `rows` rows), for the
// forward and the weight gradient: a 1×1 valid convolution reads the image itself (ld = the
// output's pixel count); otherwise im2col into the thread's scratch (ld = the band's pixels).
template <typename T>
const T* band_columns(const Conv2dParams& p, const T* x_n, int64_t r0, int64_t r1, int64_t rows, int64_t& ld) {
  if (is_pointwise(p)) {
    ld = p.h_out * p.w_out;
    return x_n + r0 * p.w_out;
  }
  T* col = scratch<T>(static_cast<size_t>(p.c_in * p.k * p.k * rows * p.w_out));
  im2col(p, x_n, r0, r1, col);
  ld = (r1 - r0) * p.w_out;
  return col;
}

// dx_n[c, i+p-pad, j+q-pad] += dcol[(c,p,q)][(i - r0)·Wo + j]; parallel over c (disjoint planes).
template <typename T>
void col2im_add(const Conv2dParams& p, const T* dcol, int64_t r0, int64_t r1, T* dx_n) {
  const int64_t kk = p.k * p.k, band = (r1 - r0) * p.w_out;
  parallel_for(0, p.c_in, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      T* plane = dx_n + c * p.h * p.w;
      for (int64_t pq = 0; pq < kk; ++pq) {
        const int64_t dp = pq / p.k - p.pad, dq = pq % p.k - p.pad;
        const int64_t j0 = std::clamp<int64_t>(-dq, 0, p.w_out), j1 = std::clamp<int64_t>(p.w - dq, j0, p.w_out);
        const T* src = dcol + (c * kk + pq) * band;
        for (int64_t i = r0; i < r1; ++i, src += p.w_out) {
          const int64_t ih = i + dp;
          if (ih < 0 || ih >= p.h) continue;
          T* dst = plane + ih * p.w + dq;
          for (int64_t j = j0; j < j1; ++j) dst[j] += src[j];
        }
      }
    }
  });
}

}  // namespace

template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_direct(p.k, p.c_in, p.c_out)) {
      conv3x3_direct(p.n, p.c_in, p.h, p.w, p.c_out, p.pad, x, w, bias, p.relu, y);
      return;
    }
    if (use_winograd(p.k)) {
      winograd3x3(p.n, p.c_in, p.h, p.w, p.c_out, p.pad, x, w, bias, p.relu, y);
      return;
    }
    if (use_patch_gemm(p)) {
      patch_gemm(patch_product(p, p.c_out, w, x, p.c_in, p.h, p.w, p.h_out, p.w_out, false, bias, p.relu, y));
      return;
    }
  }
  const int64_t kdim = p.c_in * p.k * p.k, hw_out = p.h_out * p.w_out;
  const bool per_task = small_weights(p);
  const int64_t rows = band_rows(p, per_task ? kTaskColBudget : kColBudget), bands = ceil_div(p.h_out, rows);
  auto run = [&](int64_t t) {
    const int64_t n = t / bands, r0 = (t % bands) * rows, r1 = std::min(p.h_out, r0 + rows);
    const int64_t band = (r1 - r0) * p.w_out;
    int64_t ldb = 0;
    const T* b_mat = band_columns(p, x + n * p.c_in * p.h * p.w, r0, r1, rows, ldb);
    T* y_band = y + n * p.c_out * hw_out + r0 * p.w_out;
    const GemmParams gp = strided_gemm(p.c_out, band, kdim, false, false, kdim, ldb, hw_out, 0.0f);
    gemm(gp, w, b_mat, y_band);  // inside a task: runs inline, single-threaded
    if (!bias && !p.relu) return;
    parallel_for(0, p.c_out, 1, [&](int64_t b, int64_t e) {  // epilogue while the band is in cache
      for (int64_t o = b; o < e; ++o) {
        T* row = y_band + o * hw_out;
        const T add = bias ? bias[o] : T(0);
        if (p.relu)
          for (int64_t j = 0; j < band; ++j) row[j] = std::max(row[j] + add, T(0));
        else
          for (int64_t j = 0; j < band; ++j) row[j] += add;
      }
    });
  };
  if (per_task)
    parallel_for(0, p.n * bands, 1, [&](int64_t b, int64_t e) { for (int64_t t = b; t < e; ++t) run(t); });
  else
    for (int64_t t = 0; t < p.n * bands; ++t) run(t);
}

template <typename T>
void conv2d_backward_data(const Conv2dParams& p, const T* g, const T* w, T* dx) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_direct(p.k, p.c_out, p.c_in)) {
      conv3x3_direct(p.n, p.c_out, p.h_out, p.w_out, p.c_in, 2 - p.pad, g, flipped_transposed_3x3(p, w), nullptr,
                     false, dx);
      return;
    }
    if (use_winograd(p.k)) {
      winograd3x3_backward_data(p.n, p.c_in, p.h, p.w, p.c_out, p.pad, g, w, dx);  // flips w as it transforms it
      return;
    }
    if (use_patch_gemm(p)) {  // gather form: dx[c][i][j] = Σ_{o,u,v} w[o][c][u][v] · g[o][i+pad-u][j+pad-v]
      const std::vector<float> wd = taps_transposed(p, w);
      patch_gemm(patch_product(p, p.c_in, wd.data(), g, p.c_out, p.h_out, p.w_out, p.h, p.w, true, nullptr, false, dx));
      return;
    }
  }
  const int64_t kdim = p.c_in * p.k * p.k, hw_out = p.h_out * p.w_out, rows = band_rows(p, kColBudget);
  if (is_pointwise(p)) {  // dx_n = Wᵀ · g_n directly
    for (int64_t n = 0; n < p.n; ++n)
      gemm(strided_gemm(p.c_in, hw_out, p.c_out, true, false, kdim, hw_out, hw_out, 0.0f), w,
           g + n * p.c_out * hw_out, dx + n * p.c_in * hw_out);
    return;
  }
  if (small_weights(p)) {
    // Gather form, like the GPU kernel: for a band of dx rows, gcol[(o,u,v)][pixel] =
    // g[o, i+pad-u, j+pad-v] and dx_band = Wd·gcol with Wd[c][(o,u,v)] = w[o,c,u,v]. Bands write
    // disjoint dx rows, so they run as parallel tasks, each with one single-threaded GEMM.
    const int64_t kd = p.c_out * p.k * p.k, hw = p.h * p.w;
    const std::vector<T> wd = taps_transposed(p, w);
    const int64_t dx_rows = std::clamp<int64_t>(kTaskColBudget / std::max<int64_t>(kd * p.w, 1), 1, p.h);
    const int64_t bands = ceil_div(p.h, dx_rows);
    parallel_for(0, p.n * bands, 1, [&](int64_t b, int64_t e) {
      T* gcol = scratch<T>(static_cast<size_t>(kd * dx_rows * p.w));
      for (int64_t t = b; t < e; ++t) {
        const int64_t n = t / bands, r0 = (t % bands) * dx_rows, r1 = std::min(p.h, r0 + dx_rows);
        const int64_t band = (r1 - r0) * p.w;
        patch_cols(g + n * p.c_out * hw_out, p.c_out, p.h_out, p.w_out, p.w, p.k, p.pad, true, r0, r1, gcol);
        gemm(strided_gemm(p.c_in, band, kd, false, false, kd, band, hw, 0.0f), wd.data(), gcol,
                    dx + n * p.c_in * hw + r0 * p.w);
      }
    });
    return;
  }
  T* dcol = scratch<T>(static_cast<size_t>(kdim * rows * p.w_out));
  for (int64_t n = 0; n < p.n; ++n) {
    T* dx_n = dx + n * p.c_in * p.h * p.w;
    std::fill(dx_n, dx_n + p.c_in * p.h * p.w, T(0));
    for (int64_t r0 = 0; r0 < p.h_out; r0 += rows) {
      const int64_t r1 = std::min(p.h_out, r0 + rows), band = (r1 - r0) * p.w_out;
      gemm(strided_gemm(kdim, band, p.c_out, true, false, kdim, hw_out, band, 0.0f), w,
           g + n * p.c_out * hw_out + r0 * p.w_out, dcol);
      col2im_add(p, dcol, r0, r1, dx_n);
    }
  }
}

template <typename T>
void conv2d_backward_weight(const Conv2dParams& p, const T* x, const T* g, T* dw) {
  if constexpr (std::is_same_v<T, float>) {
    if (p.k == 3 && winograd3x3_weight_grad_used(p.c_in, p.c_out, p.h_out, p.w_out)) {
      winograd3x3_weight_grad(p.n, p.c_in, p.h, p.w, p.c_out, p.pad, x, g, kWeightSlots, dw);
      return;
    }
    if (use_patch_gemm(p)) {  // every other float k×k layer, the few-channel ones included
      PatchGemmWeightGrad q;
      q.batch = p.n, q.rows = p.c_out, q.grad = g, q.src = x, q.channels = p.c_in, q.src_h = p.h, q.src_w = p.w;
      q.dst_h = p.h_out, q.dst_w = p.w_out, q.k = p.k, q.pad = p.pad, q.slots = kWeightSlots, q.out = dw;
      patch_gemm_weight_grad(q);
      return;
    }
  }
  const int64_t kdim = p.c_in * p.k * p.k, hw_out = p.h_out * p.w_out;
  const bool per_task = small_weights(p);
  const int64_t rows = band_rows(p, per_task ? kTaskColBudget : kColBudget), bands = ceil_div(p.h_out, rows);
  const int64_t tasks = p.n * bands;
  // Accumulates bands [t0, t1) into out (overwriting it with the first band).
  auto run = [&](int64_t t0, int64_t t1, T* out) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / bands, r0 = (t % bands) * rows, r1 = std::min(p.h_out, r0 + rows);
      const int64_t band = (r1 - r0) * p.w_out;
      int64_t ldb = 0;
      const T* b_mat = band_columns(p, x + n * p.c_in * p.h * p.w, r0, r1, rows, ldb);
      const GemmParams gp = strided_gemm(p.c_out, kdim, band, false, true, hw_out, ldb, kdim, t == t0 ? 0.0f : 1.0f);
      const T* g_band = g + n * p.c_out * hw_out + r0 * p.w_out;
      gemm(gp, g_band, b_mat, out);
    }
  };
  if (!per_task) {
    run(0, tasks, dw);
    return;
  }
  // A fixed number of slots, each owning a contiguous range of bands and a partial dw, summed in
  // slot order: the result does not depend on the thread count.
  const int64_t slots = std::min<int64_t>(kWeightSlots, tasks), count = p.c_out * kdim;
  std::vector<T> partial(static_cast<size_t>(slots * count));
  parallel_for(0, slots, 1, [&](int64_t b, int64_t e) {
    for (int64_t s = b; s < e; ++s) run(s * tasks / slots, (s + 1) * tasks / slots, partial.data() + s * count);
  });
  add_slots_in_order(partial.data(), slots, count, dw);
}

namespace {
// Sum of `count` values v(j), each added to one of 8 interleaved double lanes (lane l takes
// j = l, l + 8, …), then the lanes in order and the tail: one fixed order (deterministic) in
// double. value(j) may have side effects (the fused ReLU gradient stores g there). GCC leaves
// this loop scalar (a compare and branch per element); the lanes are laid out so that an AVX2
// loop with two 4-double accumulators adds the same numbers in the same order (below).
template <typename F> double lane_sum(int64_t count, F&& value) {
  double lanes[8] = {};
  int64_t j = 0;
  for (; j + 8 <= count; j += 8)
    for (int64_t l = 0; l < 8; ++l) lanes[l] += static_cast<double>(value(j + l));
  double s = 0.0;
  for (double lane : lanes) s += lane;
  for (; j < count; ++j) s += static_cast<double>(value(j));
  return s;
}
}  // namespace

template <typename T>
void channel_sum(const T* g, int64_t n, int64_t channels, int64_t pixels, T* db) {
  parallel_for(0, channels, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      double s = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const T* row = g + (i * channels + c) * pixels;
        s += lane_sum(pixels, [&](int64_t j) { return row[j]; });
      }
      db[c] = static_cast<T>(s);
    }
  });
}

namespace {
template <typename T> double relu_backward_row_sum(const T* y, const T* dy, T* g, int64_t count) {
  return lane_sum(count, [&](int64_t j) { return g[j] = y[j] > T(0) ? dy[j] : T(0); });
}

#ifdef UNET_X86_DISPATCH
// The same row with AVX2: lanes 0–3 in `low`, 4–7 in `high`, each lane adding its elements in
// the order lane_sum does, then the lanes and the tail in lane_sum's order: the same bits, ~4x
// faster (the pass reads y and dy and writes g for every ReLU'd activation of the network).
UNET_AVX2_FMA double relu_backward_row_sum_avx2(const float* y, const float* dy, float* g, int64_t count) {
  __m256d low = _mm256_setzero_pd(), high = _mm256_setzero_pd();
  int64_t j = 0;
  for (; j + 8 <= count; j += 8) {
    const __m256 positive = _mm256_cmp_ps(_mm256_loadu_ps(y + j), _mm256_setzero_ps(), _CMP_GT_OQ);
    const __m256 v = _mm256_and_ps(positive, _mm256_loadu_ps(dy + j));  // +0 where masked, as y > 0 ? dy : 0
    _mm256_storeu_ps(g + j, v);
    low = _mm256_add_pd(low, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    high = _mm256_add_pd(high, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  double lanes[8];
  _mm256_storeu_pd(lanes, low);
  _mm256_storeu_pd(lanes + 4, high);
  double s = 0.0;
  for (double lane : lanes) s += lane;
  for (; j < count; ++j) s += static_cast<double>(g[j] = y[j] > 0.0f ? dy[j] : 0.0f);
  return s;
}

// The same with AVX-512, 16 elements per step: the 8 double lanes take elements j … j + 7, then
// j + 8 … j + 15, as two steps of the AVX2 loop do; the last 8-element block and the tail as there.
__attribute__((target(UNET_SIMD_AVX512_TARGET))) double relu_backward_row_sum_avx512(const float* y, const float* dy,
                                                                                       float* g, int64_t count) {
  __m512d lanes = _mm512_setzero_pd();
  int64_t j = 0;
  for (; j + 16 <= count; j += 16) {
    const __mmask16 positive = _mm512_cmp_ps_mask(_mm512_loadu_ps(y + j), _mm512_setzero_ps(), _CMP_GT_OQ);
    const __m512 v = _mm512_maskz_mov_ps(positive, _mm512_loadu_ps(dy + j));  // +0 where masked
    _mm512_storeu_ps(g + j, v);
    // (Zero-masked conversions: the same instructions, without GCC 12's false "may be used
    // uninitialized" on the plain intrinsics' undefined sources.)
    const __m256 low = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, _mm512_castps_pd(v), 0));
    const __m256 high = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, _mm512_castps_pd(v), 1));
    lanes = _mm512_add_pd(lanes, _mm512_maskz_cvtps_pd(0xFF, low));
    lanes = _mm512_add_pd(lanes, _mm512_maskz_cvtps_pd(0xFF, high));
  }
  for (; j + 8 <= count; j += 8) {
    const __mmask8 positive = _mm256_cmp_ps_mask(_mm256_loadu_ps(y + j), _mm256_setzero_ps(), _CMP_GT_OQ);
    const __m256 v = _mm256_maskz_mov_ps(positive, _mm256_loadu_ps(dy + j));
    _mm256_storeu_ps(g + j, v);
    lanes = _mm512_add_pd(lanes, _mm512_maskz_cvtps_pd(0xFF, v));
  }
  double lane[8];
  _mm512_storeu_pd(lane, lanes);
  double s = 0.0;
  for (double l : lane) s += l;
  for (; j < count; ++j) s += static_cast<double>(g[j] = y[j] > 0.0f ? dy[j] : 0.0f);
  return s;
}
#endif
}  // namespace

template <typename T>
void relu_backward_channel_sum(const T* y, const T* dy, int64_t n, int64_t channels, int64_t pixels, T* g, T* db) {
  parallel_for(0, channels, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      double s = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t at = (i * channels + c) * pixels;
#ifdef UNET_X86_DISPATCH
        if constexpr (std::is_same_v<T, float>) {
          if (cpu_isa() == CpuIsa::Avx512) {
            s += relu_backward_row_sum_avx512(y + at, dy + at, g + at, pixels);
            continue;
          }
          if (cpu_isa() >= CpuIsa::Avx2) {
            s += relu_backward_row_sum_avx2(y + at, dy + at, g + at, pixels);
            continue;
          }
        }
#endif
        s += relu_backward_row_sum(y + at, dy + at, g + at, pixels);
      }
      db[c] = static_cast<T>(s);
    }
  });
}

#define UNET_INSTANTIATE(T)                                                                      \
  template void conv2d_forward<T>(const Conv2dParams&, const T*, const T*, const T*, T*);        \
  template void conv2d_backward_data<T>(const Conv2dParams&, const T*, const T*, T*);            \
  template void conv2d_backward_weight<T>(const Conv2dParams&, const T*, const T*, T*);          \
  template void channel_sum<T>(const T*, int64_t, int64_t, int64_t, T*);                         \
  template void relu_backward_channel_sum<T>(const T*, const T*, int64_t, int64_t, int64_t, T*, T*);
UNET_INSTANTIATE(float)
UNET_INSTANTIATE(double)
#undef UNET_INSTANTIATE

}  // namespace cpu
}  // namespace unet
