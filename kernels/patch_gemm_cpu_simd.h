// kernels/patch_gemm_cpu_simd.h — the vector code of the patch-GEMM engine (patch_gemm_cpu.cpp),
// a body header (kernels/cpu_simd.h): included once per level inside that level's namespace and
// compile region, after kernels/gemm_microkernel.h, with `Isa`, Plan and GradPlan defined; it
// includes nothing. Packing works on 8 pixels or taps at a time (Isa::F8); the products run on the
// level's kMr×16 register tile.

namespace patch {

using F8 = Isa::F8;
using W = Isa::Wide;
using gemm_tile::kMr;
using gemm_tile::kNr;

// bp[kk][t] = the patch value of tap pc + kk at output pixel p0 + t, for t < count (zero past it).
// Every tap reads inside the source (patch_gemm pads it first), at tap_start[k] + i·src_w + j for
// output pixel (i, j): a panel in one output row is two vector loads per tap, a panel spanning
// rows two gathers with per-pixel offsets, the last partial panel a scalar copy.
inline void pack_panel(const Plan& q, const float* src_n, int64_t p0, int64_t count, int64_t pc, int64_t kc,
                       float* bp) {
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
      F8::store(bp + kk * kNr, F8::loadu(s + start[kk]));
      F8::store(bp + kk * kNr + 8, F8::loadu(s + start[kk] + 8));
    }
  } else if (count == kNr) {
    for (int64_t kk = 0; kk < kc; ++kk) {
      const float* s = src_n + start[kk];
      F8::store(bp + kk * kNr, F8::gather(s, lane));
      F8::store(bp + kk * kNr + 8, F8::gather(s, lane + 8));
    }
  } else {
    for (int64_t kk = 0; kk < kc; ++kk) {
      const float* s = src_n + start[kk];
      float* dst = bp + kk * kNr;
      for (int64_t t = 0; t < kNr; ++t) dst[t] = t < count ? s[lane[t]] : 0.0f;
    }
  }
}

inline void run_task(const Plan& q, int64_t task) {
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
        gemm_tile::micro_kernel(kc, q.ap + (ir / kMr) * q.kdim * kMr + pc * kMr, bp, out_n + ir * q.pixels + jp,
                                q.pixels, std::min(kMr, m1 - ir), cols, !first, last, p.bias ? p.bias + ir : nullptr,
                                p.relu);
    }
  }
}

// The product on this level: pack A into kMr-row panels, plan the chunks, run the tasks.
inline void run(Plan q) {
  const PatchGemm& p = q.p;
  // ap[panel][k][r] = a[panel·kMr + r][k], zero past the last row; a[row][k] sits at
  // row·row_step + k·k_step.
  const int64_t panels = ceil_div(p.rows, kMr);
  float* ap = thread_scratch<float, ScratchTag::kPatchA>(static_cast<size_t>(panels * q.kdim * kMr));
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
  q.ap = ap;
  plan_chunks(q, panels, kMr);
  parallel_for(0, p.batch * q.mchunks * q.pchunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) run_task(q, t);
  });
}

// ---- weight gradient: the pixels are the summed dimension ----------------------------------------

// ap[panel][pp][r] = grad[image][panel·kMr + r][pixel] for the len pixels from flat index t0 (the
// batch's pixels in order), zero past the last row: per run of pixels in one image, 8 rows × 8
// pixels at a time through an 8×8 transpose, the run's last pixels one by one.
inline void pack_grad_rows(const GradPlan& q, int64_t t0, int64_t len, float* ap) {
  const PatchGemmWeightGrad& p = q.p;
  for (int64_t panel = 0; panel < q.panels; ++panel) {
    float* dst = ap + panel * len * kMr;
    const int64_t rows = std::min(kMr, p.rows - panel * kMr);  // the panel's rows that exist
    for (int64_t pp = 0; pp < len;) {  // one image at a time
      const int64_t t = t0 + pp, img = t / q.pixels, pix = t % q.pixels, run = std::min(len - pp, q.pixels - pix);
      const float* src = p.grad + (img * p.rows + panel * kMr) * q.pixels + pix;  // row r at src + r·pixels
      int64_t v = 0;
      for (; v + 8 <= run; v += 8)
        for (int64_t r0 = 0; r0 < kMr; r0 += 8) {
          F8::V block[8];
          UNET_SIMD_UNROLL
          for (int64_t a = 0; a < 8; ++a) block[a] = r0 + a < rows ? F8::loadu(src + (r0 + a) * q.pixels + v) : F8::zero();
          F8::transpose8(block);
          UNET_SIMD_UNROLL
          for (int64_t b = 0; b < 8; ++b) F8::store_first(dst + (pp + v + b) * kMr + r0, block[b], kMr - r0);
        }
      for (; v < run; ++v)
        for (int64_t r = 0; r < kMr; ++r) dst[(pp + v) * kMr + r] = r < rows ? src[r * q.pixels + v] : 0.0f;
      pp += run;
    }
  }
}

// bp[pp][q] = patch[k0 + q][pixel t0 + pp] for q < 16 (zero past the last tap): per run of
// pixels in one output row, 8 pixels × 8 taps at a time through an 8×8 transpose when every
// tap's source run lies inside its plane, element by element (zeros outside) otherwise.
inline void pack_patch_rows(const GradPlan& q, int64_t t0, int64_t len, int64_t k0, float* bp) {
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
          F8::V r[8];
          for (int64_t a = 0; a < 8; ++a) r[a] = F8::loadu(src_b + start[half * 8 + a] + v);
          F8::transpose8(r);
          for (int64_t b = 0; b < 8; ++b) F8::store(dst + (v + b) * kNr + half * 8, r[b]);
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
inline void run_grad_task(const GradPlan& q, int64_t task) {
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
        gemm_tile::micro_kernel(len, ap + panel * len * kMr, bp, out + panel * kMr * q.kdim + k0, q.kdim,
                                std::min(kMr, p.rows - panel * kMr), cols, t0 != t_begin, false, nullptr, false);
    }
  }
}

// ---- weight gradient of valid 3×3 products on 16-lane levels: the patches are never packed ----
// The lanes are 16 output rows m (the packed gradient rows, one vector per pixel) and each of 18
// accumulators is one tap (c, u, v) of 2 input channels. kTapPixels = 4 pixels run at a time: per
// source row (c, u) the 6 image values x[j .. j + 5] are broadcast once each and feed the 12
// products (pixel p, tap v = d − p) they take part in, so per 4 pixels 40 loads and 72 FMAs (one
// pixel at a time, 3 channels, it was 28 loads per 27 FMAs; 4 pixels measured 3–7 % faster at
// 16 channels, docs/benchmarks.md "CPU weight gradient, 2026-12-03"). Every accumulator still adds its products in pixel order, restarting from zero per
// slice; the slice's sums are added to the slot's running sums exactly as the packed path adds its
// register tiles: the same bits as the packed path on every level.
constexpr int64_t kTapChannels = 2;  // input channels per register block: 18 accumulators
constexpr int64_t kGroupTaps = 9 * kTapChannels;
constexpr int64_t kTapPixels = 4;  // pixels per step: 4 gradient vectors + 18 accumulators + broadcasts

// acc[c·9 + u·3 + v] = Σ_{pixels of the slice, in order} a[px][lanes] · src[c0 + c][i + u][j + v].
template <class V, int kChannels>
inline void taps3_slice(const GradPlan& q, int64_t t0, int64_t len, const float* a, int64_t c0, typename V::V* acc) {
  const PatchGemmWeightGrad& p = q.p;
  const int64_t plane = p.src_h * p.src_w, w = p.src_w;
  UNET_SIMD_UNROLL
  for (int64_t k = 0; k < 9 * kChannels; ++k) acc[k] = V::zero();
  for (int64_t pp = 0; pp < len;) {
    const int64_t t = t0 + pp, img = t / q.pixels, pix = t % q.pixels, i = pix / p.dst_w, j = pix % p.dst_w;
    const int64_t run = std::min(len - pp, p.dst_w - j);
    // The 3·kChannels source rows (c, u) at pixel (i, j): v is then a constant displacement.
    const float* x = p.src + ((img * p.channels + c0) * p.src_h + i) * w + j;
    const float* row[3 * kChannels];
    UNET_SIMD_UNROLL
    for (int64_t cu = 0; cu < 3 * kChannels; ++cu) row[cu] = x + cu / 3 * plane + cu % 3 * w;
    const float* ar = a + pp * kNr;
    int64_t px = 0;
    for (; px + kTapPixels <= run; px += kTapPixels, ar += kTapPixels * kNr) {
      typename V::V g[kTapPixels];
      UNET_SIMD_UNROLL
      for (int64_t e = 0; e < kTapPixels; ++e) g[e] = V::load(ar + e * kNr);
      // An opaque offset: GCC's predictive commoning would otherwise carry broadcasts over to the
      // next step, unroll, and spill accumulators to the stack.
      int64_t at = px;
      asm("" : "+r"(at));
      UNET_SIMD_UNROLL
      for (int64_t cu = 0; cu < 3 * kChannels; ++cu)
        UNET_SIMD_UNROLL
        for (int64_t d = 0; d < kTapPixels + 2; ++d) {
          const typename V::V value = V::broadcast(row[cu] + at + d);
          // Pixel e takes this value as tap v = d − e; for each accumulator e rises with d.
          UNET_SIMD_UNROLL
          for (int64_t e = 0; e < kTapPixels; ++e)
            if (e <= d && d - e < 3) acc[cu * 3 + d - e] = V::fma(g[e], value, acc[cu * 3 + d - e]);
        }
    }
    for (; px < run; ++px, ar += kNr) {  // the run's last pixels one at a time (same order)
      const typename V::V g = V::load(ar);
      int64_t at = px;
      asm("" : "+r"(at));
      UNET_SIMD_UNROLL
      for (int64_t cu = 0; cu < 3 * kChannels; ++cu)
        UNET_SIMD_UNROLL
        for (int64_t v = 0; v < 3; ++v) acc[cu * 3 + v] = V::fma(g, V::broadcast(row[cu] + at + v), acc[cu * 3 + v]);
    }
    pp += run;
  }
}

// Task (slot, chunk of channel groups): the slot's pixels in slices of kPc, each slice's 18-tap
// sums added to the task's running sums sums[group][18][16] (L1/L2), written out transposed into
// the slot's partial dw[m][k] at the end.
template <class V> inline void run_taps3_task(const GradPlan& q, int64_t groups_per_chunk, int64_t task) {
  const PatchGemmWeightGrad& p = q.p;
  const int64_t groups = ceil_div(p.channels, kTapChannels), chunks = ceil_div(groups, groups_per_chunk);
  const int64_t slot = task / chunks, g0 = task % chunks * groups_per_chunk, g1 = std::min(groups, g0 + groups_per_chunk);
  const int64_t t_begin = slot * q.total / q.slots, t_end = (slot + 1) * q.total / q.slots;
  float* ap = thread_scratch<float, ScratchTag::kPatchGradA>(static_cast<size_t>(q.panels * kMr * kPc));
  const size_t per_panel = static_cast<size_t>((g1 - g0) * kGroupTaps * kNr);
  float* sums = thread_scratch<float, ScratchTag::kPatchGradB>(static_cast<size_t>(q.panels) * per_panel);
  typename V::V acc[kGroupTaps];
  for (int64_t t0 = t_begin; t0 < t_end; t0 += kPc) {
    const int64_t len = std::min(kPc, t_end - t0);
    pack_grad_rows(q, t0, len, ap);
    for (int64_t panel = 0; panel < q.panels; ++panel)
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t c0 = g * kTapChannels, channels = std::min(kTapChannels, p.channels - c0);
        const float* a = ap + panel * len * kMr;
        if (channels == 2) taps3_slice<V, 2>(q, t0, len, a, c0, acc);
        else taps3_slice<V, 1>(q, t0, len, a, c0, acc);
        float* s = sums + panel * per_panel + (g - g0) * kGroupTaps * kNr;
        for (int64_t k = 0; k < 9 * channels; ++k)
          V::store(s + k * kNr, t0 == t_begin ? acc[k] : V::add(V::load(s + k * kNr), acc[k]));
      }
  }
  float* out = q.partial + slot * p.rows * q.kdim;
  alignas(64) int32_t row_offset[kNr];  // lane m's row in out
  for (int64_t m = 0; m < kNr; ++m) row_offset[m] = static_cast<int32_t>(m * q.kdim);
  for (int64_t panel = 0; panel < q.panels; ++panel)
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t k0 = g * kGroupTaps, taps = std::min<int64_t>(kGroupTaps, q.kdim - k0);
      const float* s = sums + panel * per_panel + (g - g0) * kGroupTaps * kNr;
      for (int64_t k = 0; k < taps; ++k)
        V::scatter_first(out + panel * kMr * q.kdim + k0 + k, row_offset, V::load(s + k * kNr), p.rows - panel * kMr);
    }
}

// Runs the weight gradient on run_taps3_task where it applies — 16-lane vectors (a register
// tile of 16 rows), 3×3 taps that stay inside the source for every output pixel — and returns
// whether it did.
template <class V> inline bool run_grad_taps3(const GradPlan& q) {
  if constexpr (V::kLanes != kNr || kMr != kNr) {
    return false;
  } else {
    const PatchGemmWeightGrad& p = q.p;
    if (p.k != 3 || p.pad != 0 || p.src_h < p.dst_h + 2 || p.src_w < p.dst_w + 2) return false;
    const int64_t groups = ceil_div(p.channels, kTapChannels);
    const int64_t chunks = std::clamp<int64_t>(ceil_div(4 * num_threads(), q.slots), 1, groups);
    const int64_t per_chunk = ceil_div(groups, chunks);
    parallel_for(0, q.slots * ceil_div(groups, per_chunk), 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) run_taps3_task<V>(q, per_chunk, t);
    });
    return true;
  }
}

// The weight gradient's slot products on this level (the caller sums the slots).
inline void run_grad(GradPlan q) {
  q.panels = ceil_div(q.p.rows, kMr);
  if (run_grad_taps3<W>(q)) return;
  parallel_for(0, q.slots * q.kchunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) run_grad_task(q, t);
  });
}

}  // namespace patch
