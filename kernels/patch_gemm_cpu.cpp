// kernels/patch_gemm_cpu.cpp — see patch_gemm_cpu.h.
//
// Blocking (BLIS-style, sized for a 32 KB L1 and 512 KB L2 per core):
// - A (M × K) is packed once per call into panels of 6 rows, ap[panel][k][6] (zero rows past M),
//   so the slice a micro-kernel reads for k in [pc, pc + kc) is contiguous.
// - A task owns an (image, row chunk of mc rows, pixel chunk of nc pixels) block of the output.
//   It walks K in slices of kKc; per slice and 16-pixel panel it gathers the panel's patch values
//   bp[kk][16] (16 KB at most, stays in L1), then runs the 6×16 micro-kernel down the row chunk,
//   whose A slice (mc × kKc) stays in L2. The first slice overwrites the output tile, later ones
//   add to it, the last applies bias and ReLU: one fixed summation order per output element.
// - Sources are read only inside: when some tap would read outside (same padding, the data
//   gradient's "full" convolution), the call first copies the source with a zero border.
//   Gathering a panel is then two vector loads per tap for a panel in one output row, two AVX2
//   gathers with per-pixel offsets for a panel spanning rows. Per packed value the micro-kernel
//   does mc/6 × 2 FMAs; a pixel chunk packs each value once per row chunk, and a call has a
//   single row chunk unless M > kMaxRowChunk.
// - The weight gradient (patch_gemm_weight_grad) sums over pixels: per slot of pixels and chunk
//   of 16-tap panels, A = the gradient rows packed [pixel][6] and B = a 16-tap panel transposed
//   8×8 in registers ([pixel][16]); partials per slot, summed in slot order.
#include "kernels/patch_gemm_cpu.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/cpu_scratch.h"
#include "kernels/cpu_zero_border.h"
#include "kernels/gemm_microkernel_avx2.h"

namespace unet::cpu {

namespace {
EngineSwitch engine_switch;
}  // namespace

void set_patch_gemm_enabled(bool enabled) { engine_switch.set(enabled); }
bool patch_gemm_available() { return engine_switch.available(); }

#ifdef UNET_X86_DISPATCH

namespace {
using gemm_tile::kMr;
using gemm_tile::kNr;
using gemm_tile::micro_kernel;
constexpr int64_t kKc = 256;           // K slice: B panel 16 KB (L1), A slice mc × 1 KB (L2)
constexpr int64_t kMaxRowChunk = 192;  // rows per task: A slice ≤ 192 KB
constexpr int64_t kTileBudget = 49152; // output floats per task (192 KB), so the tile stays in L2
constexpr int64_t kMaxPixelChunk = 384;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }


struct Plan {
  PatchGemm p;
  int64_t kdim, pixels, mc, mchunks, nc, pchunks;
  const float* ap;                     // packed A
  const int64_t* tap_start;            // per k: c·src_h·src_w + du·src_w + dv (its value at pixel (0, 0))
};

// bp[kk][t] = the patch value of tap pc + kk at output pixel p0 + t, for t < count (zero past it).
// Every tap reads inside the source (patch_gemm pads it first), at tap_start[k] + i·src_w + j for
// output pixel (i, j): a panel in one output row is two vector loads per tap, a panel spanning
// rows two AVX2 gathers with per-pixel offsets, the last partial panel a scalar copy.
UNET_AVX2_FMA void pack_panel(const Plan& q, const float* src_n, int64_t p0, int64_t count, int64_t pc,
                              int64_t kc, float* bp) {
  const PatchGemm& p = q.p;
  alignas(32) int32_t lane[kNr] = {};  // source offset of each pixel at tap offset 0
  for (int64_t t = 0; t < count; ++t) {
    const int64_t pix = p0 + t;
    lane[t] = static_cast<int32_t>(pix / p.dst_w * p.src_w + pix % p.dst_w);
  }
  const int64_t* start = q.tap_start + pc;
  if (count == kNr && lane[kNr - 1] - lane[0] == kNr - 1) {  // one output row
    const float* s = src_n + lane[0];
    for (int64_t kk = 0; kk < kc; ++kk) {
      _mm256_store_ps(bp + kk * kNr, _mm256_loadu_ps(s + start[kk]));
      _mm256_store_ps(bp + kk * kNr + 8, _mm256_loadu_ps(s + start[kk] + 8));
    }
  } else if (count == kNr) {
    const __m256i lane0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lane));
    const __m256i lane1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lane + 8));
    for (int64_t kk = 0; kk < kc; ++kk) {
      const float* s = src_n + start[kk];
      _mm256_store_ps(bp + kk * kNr, _mm256_i32gather_ps(s, lane0, 4));
      _mm256_store_ps(bp + kk * kNr + 8, _mm256_i32gather_ps(s, lane1, 4));
    }
  } else {
    for (int64_t kk = 0; kk < kc; ++kk) {
      const float* s = src_n + start[kk];
      float* dst = bp + kk * kNr;
      for (int64_t t = 0; t < kNr; ++t) dst[t] = t < count ? s[lane[t]] : 0.0f;
    }
  }
}

UNET_AVX2_FMA void run_task(const Plan& q, int64_t task) {
  const PatchGemm& p = q.p;
  float* bp = thread_scratch<float, ScratchTag::kPatchPanel>(static_cast<size_t>(kKc * kNr));
  const int64_t per_image = q.mchunks * q.pchunks;
  const int64_t img = task / per_image, mi = task % per_image / q.pchunks, pi = task % q.pchunks;
  const int64_t m0 = mi * q.mc, m1 = std::min(p.rows, m0 + q.mc);
  const int64_t p0 = pi * q.nc, p1 = std::min(q.pixels, p0 + q.nc);
  const float* src_n = p.src + img * p.channels * p.src_h * p.src_w;
  float* out_n = p.out + img * p.rows * q.pixels;
  for (int64_t pc = 0; pc < q.kdim; pc += kKc) {
    const int64_t kc = std::min(kKc, q.kdim - pc);
    const bool first = pc == 0, last = pc + kc == q.kdim;
    for (int64_t jp = p0; jp < p1; jp += kNr) {
      const int64_t cols = std::min(kNr, p1 - jp);
      pack_panel(q, src_n, jp, cols, pc, kc, bp);
      for (int64_t ir = m0; ir < m1; ir += kMr)
        micro_kernel(kc, q.ap + (ir / kMr) * q.kdim * kMr + pc * kMr, bp, out_n + ir * q.pixels + jp, q.pixels,
                     std::min(kMr, m1 - ir), cols, !first, last, p.bias ? p.bias + ir : nullptr, p.relu);
    }
  }
}

// ---- weight gradient: the pixels are the summed dimension ----------------------------------------
constexpr int64_t kPc = 256;  // pixels per slice: B panel 16 KB (L1), A slice rows × 1 KB (L2)
constexpr int64_t kMaxPartialFloats = int64_t{1} << 23;  // slot partials: 32 MB at most

struct GradPlan {
  PatchGemmWeightGrad p;
  int64_t kdim, pixels, total, panels, kpanels, slots, per_chunk, kchunks;
  const int64_t* tap_offset;
  const int32_t *tap_du, *tap_dv;
  float* partial;  // slots × rows × kdim
};

// In-register transpose of an 8×8 block: r[a][b] becomes r[b][a].
UNET_AVX2_FMA inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20), r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20), r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31), r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31), r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// ap[panel][pp][r] = grad[image][panel·6 + r][pixel] for the len pixels from flat index t0 (the
// batch's pixels in order), zero past the last row.
void pack_grad_rows(const GradPlan& q, int64_t t0, int64_t len, float* ap) {
  const PatchGemmWeightGrad& p = q.p;
  for (int64_t panel = 0; panel < q.panels; ++panel)
    for (int64_t r = 0; r < kMr; ++r) {
      float* dst = ap + panel * len * kMr + r;
      const int64_t row = panel * kMr + r;
      if (row >= p.rows) {
        for (int64_t pp = 0; pp < len; ++pp) dst[pp * kMr] = 0.0f;
        continue;
      }
      for (int64_t pp = 0; pp < len;) {  // one image at a time
        const int64_t t = t0 + pp, img = t / q.pixels, pix = t % q.pixels, run = std::min(len - pp, q.pixels - pix);
        const float* src = p.grad + (img * p.rows + row) * q.pixels + pix;
        for (int64_t v = 0; v < run; ++v) dst[(pp + v) * kMr] = src[v];
        pp += run;
      }
    }
}

// bp[pp][q] = patch[k0 + q][pixel t0 + pp] for q < 16 (zero past the last tap): per run of
// pixels in one output row, 8 pixels × 8 taps at a time through transpose8 when every tap's
// source run lies inside its plane, element by element (zeros outside) otherwise.
UNET_AVX2_FMA void pack_patch_rows(const GradPlan& q, int64_t t0, int64_t len, int64_t k0, float* bp) {
  const PatchGemmWeightGrad& p = q.p;
  const int64_t taps = std::min(kNr, q.kdim - k0);
  for (int64_t pp = 0; pp < len;) {
    const int64_t t = t0 + pp, img = t / q.pixels, pix = t % q.pixels, i = pix / p.dst_w, j = pix % p.dst_w;
    const int64_t run = std::min(len - pp, p.dst_w - j);
    const float* src_b = p.src + img * p.channels * p.src_h * p.src_w;
    int64_t start[kNr];  // index in src_b of each tap's value at pixel (i, j), when inside
    bool inside = taps == kNr;
    for (int64_t tap = 0; tap < taps; ++tap) {
      const int64_t ih = i + q.tap_du[k0 + tap], jw = j + q.tap_dv[k0 + tap];
      start[tap] = q.tap_offset[k0 + tap] + ih * p.src_w + jw;
      inside = inside && ih >= 0 && ih < p.src_h && jw >= 0 && jw + run <= p.src_w;
    }
    float* dst = bp + pp * kNr;
    int64_t v = 0;
    if (inside)
      for (; v + 8 <= run; v += 8)
        for (int64_t half = 0; half < 2; ++half) {
          __m256 r[8];
          for (int64_t a = 0; a < 8; ++a) r[a] = _mm256_loadu_ps(src_b + start[half * 8 + a] + v);
          transpose8(r);
          for (int64_t b = 0; b < 8; ++b) _mm256_store_ps(dst + (v + b) * kNr + half * 8, r[b]);
        }
    for (; v < run; ++v)
      for (int64_t tap = 0; tap < kNr; ++tap) {
        float value = 0.0f;
        if (tap < taps) {
          const int64_t ih = i + q.tap_du[k0 + tap], jw = j + v + q.tap_dv[k0 + tap];
          if (ih >= 0 && ih < p.src_h && jw >= 0 && jw < p.src_w) value = src_b[start[tap] + v];
        }
        dst[v * kNr + tap] = value;
      }
    pp += run;
  }
}

// Task (slot s, chunk of tap panels): the slot's pixels in slices of kPc, summed into its partial.
UNET_AVX2_FMA void run_grad_task(const GradPlan& q, int64_t task) {
  const PatchGemmWeightGrad& p = q.p;
  float* ap = thread_scratch<float, ScratchTag::kPatchGradA>(static_cast<size_t>(q.panels * kMr * kPc));
  float* bp = thread_scratch<float, ScratchTag::kPatchGradB>(static_cast<size_t>(kPc * kNr));
  const int64_t slot = task / q.kchunks, chunk = task % q.kchunks;
  const int64_t t_begin = slot * q.total / q.slots, t_end = (slot + 1) * q.total / q.slots;
  const int64_t kp0 = chunk * q.per_chunk, kp1 = std::min(q.kpanels, kp0 + q.per_chunk);
  float* out = q.partial + slot * p.rows * q.kdim;
  for (int64_t t0 = t_begin; t0 < t_end; t0 += kPc) {
    const int64_t len = std::min(kPc, t_end - t0);
    pack_grad_rows(q, t0, len, ap);
    for (int64_t kp = kp0; kp < kp1; ++kp) {
      const int64_t k0 = kp * kNr, cols = std::min(kNr, q.kdim - k0);
      pack_patch_rows(q, t0, len, k0, bp);
      for (int64_t panel = 0; panel < q.panels; ++panel)
        micro_kernel(len, ap + panel * len * kMr, bp, out + panel * kMr * q.kdim + k0, q.kdim,
                     std::min(kMr, p.rows - panel * kMr), cols, t0 != t_begin, false, nullptr, false);
    }
  }
}

// Per-tap source offsets and shifts: k = (c·k + u)·k + v reads plane c shifted by (du, dv).
struct Taps {
  std::vector<int64_t> offset, start;
  std::vector<int32_t> du, dv;
  int32_t du_min = 0, du_max = 0, dv_min = 0, dv_max = 0;
  // Whether every output pixel of a dst_h × dst_w grid reads inside the source for every tap.
  bool inside(int64_t src_h, int64_t src_w, int64_t dst_h, int64_t dst_w) const {
    return du_min >= 0 && dv_min >= 0 && dst_h - 1 + du_max < src_h && dst_w - 1 + dv_max < src_w;
  }
};
Taps make_taps(int64_t channels, int64_t src_h, int64_t src_w, int64_t k, int64_t pad, bool flip) {
  const int64_t kk = k * k, kdim = channels * kk;
  const auto n = static_cast<size_t>(kdim);
  Taps taps{std::vector<int64_t>(n), std::vector<int64_t>(n), std::vector<int32_t>(n), std::vector<int32_t>(n)};
  for (int64_t t = 0; t < kdim; ++t) {
    const int64_t c = t / kk, u = t % kk / k, v = t % k;
    const auto i = static_cast<size_t>(t);
    taps.offset[i] = c * src_h * src_w;
    taps.du[i] = static_cast<int32_t>(flip ? pad - u : u - pad);
    taps.dv[i] = static_cast<int32_t>(flip ? pad - v : v - pad);
    taps.start[i] = taps.offset[i] + taps.du[i] * src_w + taps.dv[i];
  }
  const int32_t lo = static_cast<int32_t>(flip ? pad - (k - 1) : -pad), hi = static_cast<int32_t>(flip ? pad : k - 1 - pad);
  taps.du_min = taps.dv_min = lo, taps.du_max = taps.dv_max = hi;
  return taps;
}
}  // namespace

void patch_gemm(const PatchGemm& product) {
  if (product.batch == 0 || product.rows == 0 || product.dst_h * product.dst_w == 0) return;
  PatchGemm p = product;
  Taps taps = make_taps(p.channels, p.src_h, p.src_w, p.k, p.pad, p.flip);
  if (!taps.inside(p.src_h, p.src_w, p.dst_h, p.dst_w)) {
    // Some taps read outside the source (same padding; the data gradient's "full" convolution):
    // run on a zero-bordered copy instead, where every read is inside and the gathers stay on
    // their vector paths. Shifting by s moves every tap's reads by (s, s).
    const int64_t s = std::max<int64_t>(0, -taps.du_min);
    const int64_t h = std::max(p.src_h, p.dst_h + taps.du_max) + s, w = std::max(p.src_w, p.dst_w + taps.dv_max) + s;
    float* padded = thread_scratch<float, ScratchTag::kPatchPadded>(static_cast<size_t>(p.batch * p.channels * h * w));
    copy_with_zero_border(p.src, p.batch * p.channels, p.src_h, p.src_w, s, s, h, w, padded);
    p.src = padded, p.src_h = h, p.src_w = w, p.pad = p.flip ? p.pad + s : p.pad - s;
    taps = make_taps(p.channels, p.src_h, p.src_w, p.k, p.pad, p.flip);
  }
  Plan q{};
  q.p = p;
  q.kdim = p.channels * p.k * p.k;
  q.pixels = p.dst_h * p.dst_w;
  // Pack A: ap[panel][k][r] = a[panel·6 + r][k], zero past the last row.
  const int64_t panels = ceil_div(p.rows, kMr);
  float* ap = thread_scratch<float, ScratchTag::kPatchA>(static_cast<size_t>(panels * q.kdim * kMr));
  // a[row][k] sits at row·row_step + k·k_step.
  const int64_t row_step = p.a_transposed ? 1 : q.kdim, k_step = p.a_transposed ? p.rows : 1;
  parallel_for(0, panels, 1, [&](int64_t b, int64_t e) {
    for (int64_t panel = b; panel < e; ++panel)
      for (int64_t r = 0; r < kMr; ++r) {
        const int64_t row = panel * kMr + r;
        float* dst = ap + panel * q.kdim * kMr + r;
        if (row >= p.rows) {
          for (int64_t k = 0; k < q.kdim; ++k) dst[k * kMr] = 0.0f;
          continue;
        }
        const float* src = p.a + row * row_step;
        for (int64_t k = 0; k < q.kdim; ++k) dst[k * kMr] = src[k * k_step];
      }
  });
  q.ap = ap, q.tap_start = taps.start.data();
  // Row chunks: all rows in one chunk when their A slice fits, so B is gathered once.
  q.mc = std::min(panels, kMaxRowChunk / kMr) * kMr;
  q.mchunks = ceil_div(p.rows, q.mc);
  // Pixel chunks: about 8 tasks per thread for balance, whole panels, the tile within kTileBudget.
  const int64_t wanted = ceil_div(8 * num_threads(), p.batch * q.mchunks);
  const int64_t cap = std::max<int64_t>(kNr, kTileBudget / q.mc / kNr * kNr);
  q.nc = std::clamp<int64_t>(ceil_div(ceil_div(q.pixels, wanted), kNr) * kNr, kNr, std::min(cap, kMaxPixelChunk));
  q.pchunks = ceil_div(q.pixels, q.nc);
  parallel_for(0, p.batch * q.mchunks * q.pchunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) run_task(q, t);
  });
}

void patch_gemm_weight_grad(const PatchGemmWeightGrad& p) {
  GradPlan q{};
  q.p = p;
  q.kdim = p.channels * p.k * p.k;
  q.pixels = p.dst_h * p.dst_w;
  q.total = p.batch * q.pixels;
  const int64_t count = p.rows * q.kdim;
  if (count == 0) return;
  if (q.total == 0) {
    std::fill(p.out, p.out + count, 0.0f);
    return;
  }
  q.panels = ceil_div(p.rows, kMr);
  q.kpanels = ceil_div(q.kdim, kNr);
  // Slots depend on the shapes only (never on the thread count): they fix the summation order.
  q.slots = std::clamp<int64_t>(std::min(p.slots, kMaxPartialFloats / count), 1, ceil_div(q.total, kPc));
  // Tap chunks only spread the work: about 4 tasks per thread.
  q.kchunks = std::clamp<int64_t>(ceil_div(4 * num_threads(), q.slots), 1, q.kpanels);
  q.per_chunk = ceil_div(q.kpanels, q.kchunks);
  q.kchunks = ceil_div(q.kpanels, q.per_chunk);
  const Taps taps = make_taps(p.channels, p.src_h, p.src_w, p.k, p.pad, false);
  q.tap_offset = taps.offset.data(), q.tap_du = taps.du.data(), q.tap_dv = taps.dv.data();
  float* partial = q.slots > 1 ? thread_scratch<float, ScratchTag::kPatchPartials>(static_cast<size_t>(q.slots * count)) : p.out;
  q.partial = partial;
  parallel_for(0, q.slots * q.kchunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) run_grad_task(q, t);
  });
  if (q.slots == 1) return;
  parallel_for(0, count, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float sum = partial[i];
      for (int64_t s = 1; s < q.slots; ++s) sum += partial[s * count + i];
      p.out[i] = sum;
    }
  });
}

#else

void patch_gemm(const PatchGemm&) {}
void patch_gemm_weight_grad(const PatchGemmWeightGrad&) {}

#endif

}  // namespace unet::cpu
