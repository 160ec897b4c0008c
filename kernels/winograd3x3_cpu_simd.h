// kernels/winograd3x3_cpu_simd.h — the vector code of the Winograd F(2×2, 3×3) engine
// (winograd3x3_cpu.cpp), a body header (kernels/cpu_simd.h): included once per level inside that
// level's namespace and compile region, after kernels/gemm_microkernel.h, with `Isa` and the
// engine's Plan defined; it includes nothing. F(2×2, 3×3)'s transforms work on 8 tiles at a time
// (Isa::F8: a tile row of the deep layers has only 6–18 tiles, wider groups would mostly be
// masked), F(4×4, 3×3)'s (layers at least 28 outputs wide) on Isa::Lanes, 16 tiles on AVX-512;
// the 16 GEMMs run on the level's register tile.

namespace winograd {

using F8 = Isa::F8;
using gemm_tile::kMr;
using gemm_tile::kNr;

// Where the taps of (o, c) lie in w: row o = panel·kMr + lane, tap k (3u + v) at
// base + lane·lane_step + tap_step·k. With q.flipped, w is the forward's [c][o] and tap k is its
// 8 - k (the data gradient's flipped, transposed weights, read in place).
struct TapLayout {
  int64_t lane_step, tap_step;
  const float* base(const Plan& q, const float* w, int64_t panel, int64_t c) const {
    return q.flipped ? w + (c * q.c_out + panel * kMr) * 9 + 8 : w + (panel * kMr * q.c_in + c) * 9;
  }
};
inline TapLayout tap_layout(const Plan& q) { return q.flipped ? TapLayout{9, -1} : TapLayout{q.c_in * 9, 1}; }

// The 9 taps of a panel's rows for input channels c0 … c0 + count − 1 (count ≤ kStageChannels),
// as stage[(c − c0)·9 + k][lane] (Isa::Wide's lanes; lanes past the panel's rows are not used):
// what the weight transforms read with plain vector loads. They used to gather them, one gather
// per tap and channel, and on Zen 4 (microcoded gathers) that was ~70 % of the weight transform,
// ~25 cycles per channel pair (perf of bench/cpu_levels --ops "bottom.conv2 fwd", 2026-12-03).
// Here 8 rows at a time go through 8×8 transposes: the forward's w[o][c][9] holds 72 consecutive
// floats per row for 8 channels (nine transposes), a data gradient's w[c][o][9] a channel's rows
// side by side (two transposes: taps 0–7 and 1–8). Groups of rows past c_out, and the last
// channels of a forward row when fewer than 8 remain, are copied one value at a time. The values
// are the gathers', so the bits are unchanged.
constexpr int64_t kStageChannels = 8;
inline void stage_taps(const Plan& q, const float* w, int64_t panel, int64_t c0, int64_t count, float* stage) {
  constexpr int64_t kLanes = Isa::Wide::kLanes;
  const TapLayout taps = tap_layout(q);
  for (int64_t g = 0; g < kLanes; g += 8) {
    const int64_t o0 = panel * kMr + g, have = std::clamp<int64_t>(q.c_out - o0, 0, 8);
    if (have == 8 && !q.flipped && count == kStageChannels) {
      const float* rows = w + (o0 * q.c_in + c0) * 9;
      for (int64_t j = 0; j < 9; ++j) {  // floats 8j … 8j + 7 of each row: (channel, tap) = divmod(8j + i, 9)
        F8::V r[8];
        for (int64_t l = 0; l < 8; ++l) r[l] = F8::loadu(rows + l * q.c_in * 9 + 8 * j);
        F8::transpose8(r);
        for (int64_t i = 0; i < 8; ++i) F8::storeu(stage + (8 * j + i) * kLanes + g, r[i]);
      }
    } else if (have == 8 && q.flipped) {
      for (int64_t c = 0; c < count; ++c) {
        const float* rows = w + ((c0 + c) * q.c_out + o0) * 9;  // row l's taps in reverse order at rows + 9l
        F8::V first[8], last[8];
        for (int64_t l = 0; l < 8; ++l) first[l] = F8::loadu(rows + 9 * l), last[l] = F8::loadu(rows + 9 * l + 1);
        F8::transpose8(first);
        F8::transpose8(last);
        float* dst = stage + c * 9 * kLanes + g;
        for (int64_t i = 0; i < 8; ++i) F8::storeu(dst + (8 - i) * kLanes, first[i]);
        F8::storeu(dst, last[7]);
      }
    } else {
      for (int64_t c = 0; c < count; ++c) {
        const float* base = taps.base(q, w, panel, c0 + c) + g * taps.lane_step;
        for (int64_t k = 0; k < 9; ++k)
          for (int64_t l = 0; l < 8; ++l)
            stage[(c * 9 + k) * kLanes + g + l] = l < have ? base[l * taps.lane_step + k * taps.tap_step] : 0.0f;
      }
    }
  }
}

// U = G g Gᵀ for every (o, c), stored as A panels ua[ξ][o / kMr][c][o % kMr] (zero rows past
// c_out). Vectors run over a panel's rows (lanes r < kMr; Isa::Wide has at least kMr lanes): the
// 9 taps of the panel's rows are 9 loads from stage_taps' block, the 16 positions 16 stores of kMr
// consecutive floats.
// The same additions and halvings as the definition, in the same order: the same bits on every
// level (and with q.flipped the same bits as for a flipped copy of the weights).
inline void transform_weights(const Plan& q, const float* w, float* ua) {
  using W = Isa::Wide;
  static_assert(W::kLanes >= kMr, "a panel's rows must fit one vector");
  parallel_for(0, q.opanels, 1, [&](int64_t b, int64_t e) {
    alignas(64) float stage[kStageChannels * 9 * W::kLanes];
    const W::V half = W::set1(0.5f);
    for (int64_t panel = b; panel < e; ++panel) {
      const int64_t rows = std::min(kMr, q.c_out - panel * kMr);
      for (int64_t c = 0; c < q.c_in; ++c) {
        if (c % kStageChannels == 0) stage_taps(q, w, panel, c, std::min(kStageChannels, q.c_in - c), stage);
        const float* g = stage + c % kStageChannels * 9 * W::kLanes;
        W::V t[4][3];  // G g
        UNET_SIMD_UNROLL
        for (int64_t j = 0; j < 3; ++j) {
          const W::V g0 = W::load(g + j * W::kLanes), g1 = W::load(g + (3 + j) * W::kLanes),
                     g2 = W::load(g + (6 + j) * W::kLanes);
          t[0][j] = g0;
          t[1][j] = W::mul(half, W::add(W::add(g0, g1), g2));
          t[2][j] = W::mul(half, W::add(W::sub(g0, g1), g2));
          t[3][j] = g2;
        }
        UNET_SIMD_UNROLL
        for (int64_t i = 0; i < 4; ++i) {  // (G g) Gᵀ
          const W::V u[4] = {t[i][0], W::mul(half, W::add(W::add(t[i][0], t[i][1]), t[i][2])),
                             W::mul(half, W::add(W::sub(t[i][0], t[i][1]), t[i][2])), t[i][2]};
          UNET_SIMD_UNROLL
          for (int64_t j = 0; j < 4; ++j) {
            float* dst = ua + (((4 * i + j) * q.opanels + panel) * q.c_in + c) * kMr;
            W::store_first(dst, u[j], rows);
            std::fill(dst + rows, dst + kMr, 0.0f);
          }
        }
      }
    }
  });
}

// Bᵀ d B of the windows of tiles tx … tx + n − 1 (n ≤ 8) of one tile row, starting at d: v[ξ]
// lane l is tile tx + l (zeros past n). The n windows span 2n + 2 columns. Every loop is unrolled
// (and the function inlined) so that t and v live in registers.
// v = Bᵀ d B, lane by lane (the forward's tiles in the lanes, the weight gradient's channels).
template <class V>
__attribute__((always_inline)) inline void input_transform(const typename V::V d[4][4], typename V::V v[kXi]) {
  typename V::V t[4][4];
  UNET_SIMD_UNROLL
  for (int64_t r = 0; r < 4; ++r) {
    t[r][0] = V::sub(d[r][0], d[r][2]), t[r][1] = V::add(d[r][1], d[r][2]);
    t[r][2] = V::sub(d[r][2], d[r][1]), t[r][3] = V::sub(d[r][1], d[r][3]);
  }
  UNET_SIMD_UNROLL
  for (int64_t j = 0; j < 4; ++j) {
    v[j] = V::sub(t[0][j], t[2][j]), v[4 + j] = V::add(t[1][j], t[2][j]);
    v[8 + j] = V::sub(t[2][j], t[1][j]), v[12 + j] = V::sub(t[1][j], t[3][j]);
  }
}

__attribute__((always_inline)) inline void input_tiles(const float* d, int64_t sw, int64_t n, F8::V v[kXi]) {
  F8::V x[4][4];
  UNET_SIMD_UNROLL
  for (int64_t r = 0; r < 4; ++r) {
    F8::deinterleave(d + r * sw, 2 * n + 2, x[r][0], x[r][1]);
    F8::deinterleave(d + r * sw + 2, 2 * n, x[r][2], x[r][3]);
  }
  input_transform<F8>(x, v);
}

// V[ξ][f / 16][c][f % 16] (ξ blocks `pitch` floats apart) for the block's tiles f = t - t0 < count
// (zero lanes past count). Every tile row's run of tiles goes through the vector transform, 8
// tiles at a time and the rest masked: blocks of 16 tiles cut rows of 7–77 tiles into short runs,
// which a scalar tail would spend a large share of the transform on. The 16 positions' base
// pointers are computed once (as 16 induction variables they would be spilled and updated in
// memory on every group).
inline void transform_inputs(const Plan& q, const float* src_n, int64_t t0, int64_t count, int64_t pitch, float* v) {
  float* xi_base[kXi];
  for (int64_t xi = 0; xi < kXi; ++xi) xi_base[xi] = v + xi * pitch;
  const int64_t vpanels = ceil_div(count, kNr);
  auto offset = [&](int64_t c, int64_t f) { return ((f / kNr) * q.c_in + c) * kNr + f % kNr; };
  if (count % kNr)
    for (int64_t xi = 0; xi < kXi; ++xi)
      for (int64_t c = 0; c < q.c_in; ++c)
        std::fill(xi_base[xi] + offset(c, count), xi_base[xi] + offset(c, vpanels * kNr - 1) + 1, 0.0f);
  for (int64_t c = 0; c < q.c_in; ++c) {
    const float* plane = src_n + c * q.sh * q.sw;
    for (int64_t t = t0; t < t0 + count;) {
      const int64_t ty = t / q.tw, tx = t % q.tw, run = std::min(q.tw - tx, t0 + count - t);
      const float* row = plane + 2 * ty * q.sw;
      for (int64_t k = 0; k < run; k += 8) {
        const int64_t n = std::min<int64_t>(8, run - k), f = t + k - t0, at = offset(c, f);
        F8::V vv[kXi];
        input_tiles(row + 2 * (tx + k), q.sw, n, vv);
        // Lanes [0, first) go to f's 16-tile panel, the rest to the next one.
        const int64_t first = std::min(n, kNr - f % kNr);
        if (first == 8) {
          UNET_SIMD_UNROLL
          for (int64_t xi = 0; xi < kXi; ++xi) F8::storeu(xi_base[xi] + at, vv[xi]);
          continue;
        }
        const int64_t next = offset(c, f + first);
        UNET_SIMD_UNROLL
        for (int64_t xi = 0; xi < kXi; ++xi) {
          alignas(32) float buf[8];
          F8::store(buf, vv[xi]);
          F8::store_first(xi_base[xi] + at, vv[xi], first);
          if (n > first) std::copy_n(buf + first, n - first, xi_base[xi] + next);
        }
      }
      t += run;
    }
  }
}

// The outputs of the block's tiles for output channels [o0, o1) from M[ξ][o][f] (row stride ld,
// ξ blocks `pitch` floats apart).
inline void transform_outputs(const Plan& q, const float* m, int64_t ld, int64_t pitch, int64_t t0, int64_t count,
                              int64_t o0, int64_t o1, float* y_n) {
  const float* xi_base[kXi];
  for (int64_t xi = 0; xi < kXi; ++xi) xi_base[xi] = m + xi * pitch;
  const F8::V zero = F8::zero();
  for (int64_t o = o0; o < o1; ++o) {
    const F8::V bias = F8::set1(q.bias ? q.bias[o] : 0.0f);
    float* plane = y_n + o * q.h_out * q.w_out;
    for (int64_t t = t0; t < t0 + count;) {
      const int64_t ty = t / q.tw, tx = t % q.tw, run = std::min(q.tw - tx, t0 + count - t);
      const int64_t i0 = 2 * ty, rows = std::min<int64_t>(2, q.h_out - i0);
      for (int64_t k = 0; k < run; k += 8) {
        const int64_t n = std::min<int64_t>(8, run - k);  // tiles of this group (masked when < 8)
        const int64_t at = o * ld + (t + k - t0);
        F8::V mv[kXi];
        UNET_SIMD_UNROLL
        for (int64_t xi = 0; xi < kXi; ++xi) mv[xi] = F8::load_first(xi_base[xi] + at, n);
        F8::V u[4][2];
        UNET_SIMD_UNROLL
        for (int64_t i = 0; i < 4; ++i) {
          u[i][0] = F8::add(F8::add(mv[4 * i], mv[4 * i + 1]), mv[4 * i + 2]);
          u[i][1] = F8::sub(F8::sub(mv[4 * i + 1], mv[4 * i + 2]), mv[4 * i + 3]);
        }
        const int64_t j0 = 2 * (tx + k), cols = std::min(2 * n, q.w_out - j0);  // odd width: the last tile has one column
        for (int64_t a = 0; a < rows; ++a) {
          F8::V y0 = a == 0 ? F8::add(F8::add(u[0][0], u[1][0]), u[2][0]) : F8::sub(F8::sub(u[1][0], u[2][0]), u[3][0]);
          F8::V y1 = a == 0 ? F8::add(F8::add(u[0][1], u[1][1]), u[2][1]) : F8::sub(F8::sub(u[1][1], u[2][1]), u[3][1]);
          y0 = F8::add(y0, bias), y1 = F8::add(y1, bias);
          if (q.relu) y0 = F8::max(zero, y0), y1 = F8::max(zero, y1);  // NaN propagates
          // Interleave columns 2l (y0) and 2l + 1 (y1) of the 8 tiles into 16 consecutive outputs.
          F8::V first, second;
          F8::interleave(y0, y1, first, second);
          float* out = plane + (i0 + a) * q.w_out + j0;
          F8::store_first(out, first, cols);
          if (cols > 8) F8::store_first(out + 8, second, cols - 8);
        }
      }
      t += run;
    }
  }
}

// ---- F(4×4, 3×3): 6×6 windows, 36 positions --------------------------------------------------
// Matrices (Lavin & Gray, points 0, ±1, ±2, ∞):
//   Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G = [¼ 0 0; -⅙ -⅙ -⅙; -⅙ ⅙ -⅙; 1/24 1/12 ⅙; 1/24 -1/12 ⅙; 0 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
constexpr int64_t kXi4 = 36;
// The F(4×4, 3×3) transforms run on Isa::Lanes: a group is kGroup tiles of one tile row (16 on
// AVX-512, 8 on AVX2: the rows of the layers that take these tiles are 7–78 tiles long).
using T = Isa::Lanes;
constexpr int64_t kGroup = T::kLanes;
// The transforms walk a block's tiles channel by channel; each group of tiles prefetches the
// same rows of the channel this many planes on (~2 × 100 ns of work ahead: about a memory
// access). The large layers' planes (16 × 314² floats, 6 MB) live in L3 or memory, and a group
// touches 6 input rows of every channel (4 output rows): ~100 streams, more than the hardware
// prefetchers follow. Without it the 314² 16→16 layer's input transform took 1.8× and its output
// transform 2× the time with it (2026-12-04, AMD EPYC Zen 4, docs/kernels-conv.md).
constexpr int64_t kPrefetchPlanes = 2;

// Bᵀ x for 6 values per lane.
__attribute__((always_inline)) inline void input_1d(const T::V x[6], T::V t[6]) {
  const T::V four = T::set1(4.0f), minus_four = T::set1(-4.0f), minus_five = T::set1(-5.0f);
  const T::V a = T::fma(minus_four, x[2], x[4]), b = T::fma(minus_four, x[1], x[3]);
  const T::V c = T::sub(x[4], x[2]), e = T::add(T::sub(x[3], x[1]), T::sub(x[3], x[1]));
  t[0] = T::fma(four, x[0], T::fma(minus_five, x[2], x[4]));
  t[1] = T::add(a, b), t[2] = T::sub(a, b);
  t[3] = T::add(c, e), t[4] = T::sub(c, e);
  t[5] = T::fma(four, x[1], T::fma(minus_five, x[3], x[5]));
}

// c[k] lane l = p[4l + k] (k < 4), reading only p[0 … n), n ≤ 4·kGroup (the rest count as zeros).
__attribute__((always_inline)) inline void deinterleave4(const float* p, int64_t n, T::V c[4]) {
  T::V e0, o0, e1, o1;
  T::deinterleave(p, n, e0, o0);
  T::deinterleave(p + 2 * kGroup, n - 2 * kGroup, e1, o1);
  T::deinterleave(e0, e1, c[0], c[2]);
  T::deinterleave(o0, o1, c[1], c[3]);
}

// V[ξ][…] of the block's tiles for F(4×4, 3×3), as transform_inputs does for F(2×2, 3×3): window
// (ty, tx) starts at row 4ty, column 4tx of the source; the row transforms of a group's 6 window
// rows go through a stack buffer (36 vectors do not fit the registers), then the columns'.
inline void transform_inputs4(const Plan& q, const float* src_n, int64_t t0, int64_t count, int64_t pitch, float* v) {
  float* xi_base[kXi4];
  for (int64_t xi = 0; xi < kXi4; ++xi) xi_base[xi] = v + xi * pitch;
  const int64_t vpanels = ceil_div(count, kNr);
  auto offset = [&](int64_t c, int64_t f) { return ((f / kNr) * q.c_in + c) * kNr + f % kNr; };
  if (count % kNr)
    for (int64_t xi = 0; xi < kXi4; ++xi)
      for (int64_t c = 0; c < q.c_in; ++c)
        std::fill(xi_base[xi] + offset(c, count), xi_base[xi] + offset(c, vpanels * kNr - 1) + 1, 0.0f);
  for (int64_t c = 0; c < q.c_in; ++c) {
    const float* plane = src_n + c * q.sh * q.sw;
    for (int64_t t = t0; t < t0 + count;) {
      const int64_t ty = t / q.tw, tx = t % q.tw, run = std::min(q.tw - tx, t0 + count - t);
      const float* row = plane + 4 * ty * q.sw;
      for (int64_t k = 0; k < run; k += kGroup) {
        const int64_t n = std::min<int64_t>(kGroup, run - k), f = t + k - t0, at = offset(c, f);
        const float* d = row + 4 * (tx + k);  // the n windows span 4n + 2 columns
        T::V rows[6][6];
        UNET_SIMD_UNROLL
        for (int64_t r = 0; r < 6; ++r) {
          // x[k] lane l = column 4l + k; x[4] and x[5] are x[0] and x[1] one tile (lane) on, their
          // last lane columns 4n and 4n + 1 of the 4n + 2 (lanes past n are never stored).
          T::V x[6];
          const float* p = d + r * q.sw;
          if (c + kPrefetchPlanes < q.c_in) simd::prefetch_span<2>(p + kPrefetchPlanes * q.sh * q.sw, 4 * n + 2);
          deinterleave4(p, 4 * n + 2, x);
          x[4] = T::shift_in(x[0], p + 4 * n), x[5] = T::shift_in(x[1], p + 4 * n + 1);
          input_1d(x, rows[r]);
        }
        const int64_t first = std::min(n, kNr - f % kNr), next = offset(c, f + first);
        UNET_SIMD_UNROLL
        for (int64_t j = 0; j < 6; ++j) {
          const T::V column[6] = {rows[0][j], rows[1][j], rows[2][j], rows[3][j], rows[4][j], rows[5][j]};
          T::V vv[6];
          input_1d(column, vv);
          UNET_SIMD_UNROLL
          for (int64_t i = 0; i < 6; ++i) {
            float* dst = xi_base[6 * i + j];
            if (first == n) {  // the group stays in one 16-tile panel
              T::store_first(dst + at, vv[i], n);
              continue;
            }
            alignas(64) float buf[kGroup];
            T::store(buf, vv[i]);
            T::store_first(dst + at, vv[i], first);
            std::copy_n(buf + first, n - first, dst + next);
          }
        }
      }
      t += run;
    }
  }
}

// Aᵀ m for 6 values per lane: 4 results.
__attribute__((always_inline)) inline void output_1d(const T::V m[6], T::V z[4]) {
  const T::V p = T::add(m[1], m[2]), d = T::sub(m[1], m[2]), r = T::add(m[3], m[4]), s = T::sub(m[3], m[4]);
  z[0] = T::add(T::add(m[0], p), r);
  z[1] = T::fma(T::set1(2.0f), s, d);
  z[2] = T::fma(T::set1(4.0f), r, p);
  z[3] = T::add(T::fma(T::set1(8.0f), s, d), m[5]);
}

// The outputs of the block's tiles for output channels [o0, o1) from M (F(4×4, 3×3)).
inline void transform_outputs4(const Plan& q, const float* m, int64_t ld, int64_t pitch, int64_t t0, int64_t count,
                               int64_t o0, int64_t o1, float* y_n) {
  const float* xi_base[kXi4];
  for (int64_t xi = 0; xi < kXi4; ++xi) xi_base[xi] = m + xi * pitch;
  const T::V zero = T::zero();
  for (int64_t o = o0; o < o1; ++o) {
    const T::V bias = T::set1(q.bias ? q.bias[o] : 0.0f);
    float* plane = y_n + o * q.h_out * q.w_out;
    for (int64_t t = t0; t < t0 + count;) {
      const int64_t ty = t / q.tw, tx = t % q.tw, run = std::min(q.tw - tx, t0 + count - t);
      const int64_t i0 = 4 * ty, rows = std::min<int64_t>(4, q.h_out - i0);
      for (int64_t k = 0; k < run; k += kGroup) {
        const int64_t n = std::min<int64_t>(kGroup, run - k), at = o * ld + (t + k - t0);
        T::V z[6][4];
        UNET_SIMD_UNROLL
        for (int64_t i = 0; i < 6; ++i) {
          T::V mv[6];
          UNET_SIMD_UNROLL
          for (int64_t j = 0; j < 6; ++j) mv[j] = T::load_first(xi_base[6 * i + j] + at, n);
          output_1d(mv, z[i]);
        }
        T::V y[4][4];  // y[a][b]: output row a, column b of each tile
        UNET_SIMD_UNROLL
        for (int64_t b = 0; b < 4; ++b) {
          const T::V column[6] = {z[0][b], z[1][b], z[2][b], z[3][b], z[4][b], z[5][b]};
          T::V out[4];
          output_1d(column, out);
          UNET_SIMD_UNROLL
          for (int64_t a = 0; a < 4; ++a) y[a][b] = out[a];
        }
        const int64_t j0 = 4 * (tx + k), cols = std::min(4 * n, q.w_out - j0);  // the last tile may be cut
        for (int64_t a = 0; a < rows; ++a) {
          T::V yb[4];
          UNET_SIMD_UNROLL
          for (int64_t b = 0; b < 4; ++b) {
            yb[b] = T::add(y[a][b], bias);
            if (q.relu) yb[b] = T::max(zero, yb[b]);  // NaN propagates
          }
          // Columns 4l + b of the group's tiles into 4·kGroup consecutive outputs: two rounds of pairwise interleaving.
          T::V p0, p1, r0, r1, out[4];
          T::interleave(yb[0], yb[2], p0, p1);
          T::interleave(yb[1], yb[3], r0, r1);
          T::interleave(p0, r0, out[0], out[1]);
          T::interleave(p1, r1, out[2], out[3]);
          float* dst = plane + (i0 + a) * q.w_out + j0;
          if (o + kPrefetchPlanes < o1) simd::prefetch_span<3>(dst + kPrefetchPlanes * q.h_out * q.w_out, cols);
          UNET_SIMD_UNROLL
          for (int64_t h = 0; h < 4; ++h)
            if (cols > kGroup * h) T::store_first(dst + kGroup * h, out[h], cols - kGroup * h);
        }
      }
      t += run;
    }
  }
}

// U = G g Gᵀ (6×6) for every (o, c), as transform_weights does for F(2×2, 3×3).
inline void transform_weights4(const Plan& q, const float* w, float* ua) {
  using W = Isa::Wide;
  static_assert(W::kLanes >= kMr, "a panel's rows must fit one vector");
  parallel_for(0, q.opanels, 1, [&](int64_t b, int64_t e) {
    alignas(64) float stage[kStageChannels * 9 * W::kLanes];
    const W::V quarter = W::set1(0.25f), minus_sixth = W::set1(-1.0f / 6), sixth = W::set1(1.0f / 6);
    const W::V twelfth = W::set1(1.0f / 12), minus_twelfth = W::set1(-1.0f / 12), twenty_fourth = W::set1(1.0f / 24);
    // G x for 3 values per lane.
    auto g_times = [&](W::V x0, W::V x1, W::V x2, W::V t[6]) {
      const W::V x2_sixth = W::mul(x2, sixth);
      t[0] = W::mul(x0, quarter);
      t[1] = W::mul(W::add(W::add(x0, x1), x2), minus_sixth);
      t[2] = W::mul(W::add(W::sub(x0, x1), x2), minus_sixth);
      t[3] = W::fma(x0, twenty_fourth, W::fma(x1, twelfth, x2_sixth));
      t[4] = W::fma(x0, twenty_fourth, W::fma(x1, minus_twelfth, x2_sixth));
      t[5] = x2;
    };
    for (int64_t panel = b; panel < e; ++panel) {
      const int64_t rows = std::min(kMr, q.c_out - panel * kMr);
      for (int64_t c = 0; c < q.c_in; ++c) {
        if (c % kStageChannels == 0) stage_taps(q, w, panel, c, std::min(kStageChannels, q.c_in - c), stage);
        const float* g = stage + c % kStageChannels * 9 * W::kLanes;
        W::V t[3][6];  // t[j] = G · (column j of g)
        for (int64_t j = 0; j < 3; ++j)
          g_times(W::load(g + j * W::kLanes), W::load(g + (3 + j) * W::kLanes), W::load(g + (6 + j) * W::kLanes), t[j]);
        for (int64_t i = 0; i < 6; ++i) {  // row i of G g, times Gᵀ
          W::V u[6];
          g_times(t[0][i], t[1][i], t[2][i], u);
          for (int64_t j = 0; j < 6; ++j) {
            float* dst = ua + (((6 * i + j) * q.opanels + panel) * q.c_in + c) * kMr;
            W::store_first(dst, u[j], rows);
            std::fill(dst + rows, dst + kMr, 0.0f);
          }
        }
      }
    }
  });
}

// ---- weight gradient, F(2×2, 3×3) ------------------------------------------------------------------
// dU[ξ][o][c] = Σ_tiles Ŷ[ξ][o][t] · V[ξ][c][t] on the register tile with the tiles as the summed
// dimension: A = Ŷ = A dY Aᵀ packed [tile][kMr] per output-channel panel, B = V = Bᵀ d B packed
// [tile][16] per input-channel panel. Both panels want a tile's channels side by side, so each
// unit's rows of x and dY are first copied channels-last (8×8 transposes); the transforms then
// run with channels in the lanes, straight from loads to panel stores, no shuffles.
using W = Isa::Wide;
constexpr int64_t kVecs = kNr / W::kLanes;  // vectors per B panel row

// dst[i][j][c] (dst_h × dst_w positions, ld floats apart, ld a multiple of 8) =
// src[c][i − top][j − left], zeros outside src's h × w planes and for c ≥ channels: 8 channels'
// planes at a time, 8 columns through an 8×8 transpose. Called per unit on its rows only, so the
// copy stays in L2 (a whole-batch copy made the weight gradient wait on memory: 35 % of its time
// at 32 channels).
inline void to_channels_last(const float* src, int64_t channels, int64_t h, int64_t w, int64_t top, int64_t left,
                             int64_t dst_h, int64_t dst_w, int64_t ld, float* dst) {
  for (int64_t c0 = 0; c0 < ld; c0 += 8) {
    const float* planes = src + c0 * h * w;
    float* out = dst + c0;
    for (int64_t i = 0; i < dst_h; ++i, out += dst_w * ld) {
      const int64_t si = i - top;
      if (si < 0 || si >= h || c0 >= channels) {
        for (int64_t j = 0; j < dst_w; ++j) F8::storeu(out + j * ld, F8::zero());
        continue;
      }
      for (int64_t j0 = 0; j0 < dst_w; j0 += 8) {
        const int64_t s0 = j0 - left, positions = std::min<int64_t>(8, dst_w - j0);
        F8::V r[8];
        for (int64_t l = 0; l < 8; ++l) {
          const float* p = planes + (l * h + si) * w;
          if (c0 + l >= channels) {
            r[l] = F8::zero();
          } else if (s0 >= 0) {
            r[l] = F8::load_first(p + s0, w - s0);  // zeros past the row (a masked load reads nothing there)
          } else {
            alignas(32) float part[8];
            for (int64_t k = 0; k < 8; ++k) part[k] = s0 + k >= 0 && s0 + k < w ? p[s0 + k] : 0.0f;
            r[l] = F8::load(part);
          }
        }
        F8::transpose8(r);  // r[k]: the 8 channels at column j0 + k
        for (int64_t k = 0; k < positions; ++k) F8::storeu(out + (j0 + k) * ld, r[k]);
      }
    }
  }
}

// The walk every pack of a unit shares: for the unit's tiles f < count (row f / uw, column f % uw
// of its uw-wide rectangle of tiles) and channel panels p < panels, body(d, row_step, out) with d
// = the tile's first position in the channels-last src (row_positions positions of ld floats per
// row; tile (ty, tx) starts at row M·ty, column M·tx) offset to the panel's channels, out = the
// panel row dst + (p·count + f)·width (dst[p][f][width]).
template <int64_t M, class Body>
__attribute__((always_inline)) inline void for_each_tile_panel(const float* src, int64_t ld, int64_t row_positions,
                                                               int64_t uw, int64_t count, int64_t panels,
                                                               int64_t width, float* dst, Body body) {
  const int64_t row_step = row_positions * ld;
  for (int64_t f = 0; f < count; ++f) {
    const int64_t ty = f / uw, tx = f % uw;
    const float* tile = src + M * ty * row_step + M * tx * ld;
    for (int64_t p = 0; p < panels; ++p) body(tile + p * width, row_step, dst + (p * count + f) * width);
  }
}

// bp[ξ][cp][f][16] (ξ blocks `pitch` apart) = V = Bᵀ d B at position ξ of chunk channel 16·cp + q
// of the unit's tile f, from the unit's channels-last input xu (2·uw + 2 positions per row).
inline void pack_inputs(const float* xu, int64_t ld, int64_t uw, int64_t count, int64_t cpanels, int64_t pitch,
                        float* bp) {
  for_each_tile_panel<2>(xu, ld, 2 * uw + 2, uw, count, cpanels, kNr, bp,
                         [&](const float* window, int64_t row_step, float* panel_row) {
                           UNET_SIMD_UNROLL
                           for (int64_t h = 0; h < kVecs; ++h) {
                             const float* d = window + h * W::kLanes;
                             W::V x[4][4], v[kXi];
                             UNET_SIMD_UNROLL
                             for (int64_t r = 0; r < 4; ++r)
                               UNET_SIMD_UNROLL
                               for (int64_t c = 0; c < 4; ++c) x[r][c] = W::loadu(d + r * row_step + c * ld);
                             input_transform<W>(x, v);
                             float* out = panel_row + h * W::kLanes;
                             UNET_SIMD_UNROLL
                             for (int64_t xi = 0; xi < kXi; ++xi) W::store(out + xi * pitch, v[xi]);
                           }
                         });
}

// ap[ξ][op][f][kMr] (ξ blocks `pitch` apart) = Ŷ = A dY Aᵀ at position ξ of chunk output channel
// kMr·op + r of the unit's tile f, from the unit's channels-last output gradient gu (2·uw
// positions per row; zeros past the output's edge: a partial tile's missing outputs count as
// zero). A = [1 0; 1 1; 1 -1; 0 -1]. A tile reads W::kLanes ≥ kMr channels: ld leaves room.
inline void pack_grads(const float* gu, int64_t ld, int64_t uw, int64_t count, int64_t opanels, int64_t pitch,
                       float* ap) {
  const W::V zero = W::zero();
  for_each_tile_panel<2>(gu, ld, 2 * uw, uw, count, opanels, kMr, ap, [&](const float* d, int64_t row_step, float* out) {
    const W::V y[2][2] = {{W::loadu(d), W::loadu(d + ld)}, {W::loadu(d + row_step), W::loadu(d + row_step + ld)}};
    W::V z[4][2];  // A dY
    UNET_SIMD_UNROLL
    for (int64_t b = 0; b < 2; ++b) {
      z[0][b] = y[0][b], z[1][b] = W::add(y[0][b], y[1][b]);
      z[2][b] = W::sub(y[0][b], y[1][b]), z[3][b] = W::sub(zero, y[1][b]);
    }
    UNET_SIMD_UNROLL
    for (int64_t i = 0; i < 4; ++i) {  // (A dY) Aᵀ
      W::store_first(out + (4 * i) * pitch, z[i][0], kMr);
      W::store_first(out + (4 * i + 1) * pitch, W::add(z[i][0], z[i][1]), kMr);
      W::store_first(out + (4 * i + 2) * pitch, W::sub(z[i][0], z[i][1]), kMr);
      W::store_first(out + (4 * i + 3) * pitch, W::sub(zero, z[i][1]), kMr);
    }
  });
}

// ---- weight gradient, F(4×4, 3×3) ------------------------------------------------------------------
// The same GEMMs on 36 positions per 4×4 output tile (36 products per 16 outputs instead of 16 per
// 4): V = Bᵀ d B of the 6×6 window with the forward's input_1d (Isa::Wide is Isa::Lanes on both
// levels), Ŷ = A dY Aᵀ with A = (Aᵀ)ᵀ of F(4×4, 3×3) below, dw = Gᵀ dU G in winograd3x3_cpu.cpp.

// A y for 4 values per lane (6 results): the adjoint of output_1d, rows of A (1 0 0 0), (1 1 1 1),
// (1 -1 1 -1), (1 2 4 8), (1 -2 4 -8), (0 0 0 1).
__attribute__((always_inline)) inline void grad_lift_1d(const W::V y[4], W::V z[6]) {
  const W::V even = W::add(y[0], y[2]), odd = W::add(y[1], y[3]);
  const W::V even4 = W::fma(W::set1(4.0f), y[2], y[0]);
  const W::V odd4 = W::mul(W::set1(2.0f), W::fma(W::set1(4.0f), y[3], y[1]));  // 2·y1 + 8·y3 (×2 exact)
  z[0] = y[0], z[1] = W::add(even, odd), z[2] = W::sub(even, odd);
  z[3] = W::add(even4, odd4), z[4] = W::sub(even4, odd4), z[5] = y[3];
}

// pack_inputs for 6×6 windows: bp[ξ][cp][f][16], ξ = 6i + j, from xu (4·uw + 2 positions per row).
inline void pack_inputs4(const float* xu, int64_t ld, int64_t uw, int64_t count, int64_t cpanels, int64_t pitch,
                         float* bp) {
  for_each_tile_panel<4>(xu, ld, 4 * uw + 2, uw, count, cpanels, kNr, bp,
                         [&](const float* window, int64_t row_step, float* panel_row) {
                           for (int64_t h = 0; h < kVecs; ++h) {
                             const float* d = window + h * W::kLanes;
                             W::V rows[6][6];  // Bᵀ applied along each window row
                             UNET_SIMD_UNROLL
                             for (int64_t r = 0; r < 6; ++r) {
                               W::V x[6];
                               UNET_SIMD_UNROLL
                               for (int64_t c = 0; c < 6; ++c) x[c] = W::loadu(d + r * row_step + c * ld);
                               input_1d(x, rows[r]);
                             }
                             float* out = panel_row + h * W::kLanes;
                             UNET_SIMD_UNROLL
                             for (int64_t j = 0; j < 6; ++j) {
                               const W::V column[6] = {rows[0][j], rows[1][j], rows[2][j],
                                                       rows[3][j], rows[4][j], rows[5][j]};
                               W::V v[6];
                               input_1d(column, v);
                               UNET_SIMD_UNROLL
                               for (int64_t i = 0; i < 6; ++i) W::store(out + (6 * i + j) * pitch, v[i]);
                             }
                           }
                         });
}

// pack_grads for 4×4 tiles: ap[ξ][op][f][kMr] = (A dY Aᵀ)[ξ], from gu (4·uw positions per row;
// zeros past the output's edge).
inline void pack_grads4(const float* gu, int64_t ld, int64_t uw, int64_t count, int64_t opanels, int64_t pitch,
                        float* ap) {
  for_each_tile_panel<4>(gu, ld, 4 * uw, uw, count, opanels, kMr, ap, [&](const float* d, int64_t row_step, float* out) {
    W::V z[6][4];  // A dY
    UNET_SIMD_UNROLL
    for (int64_t b = 0; b < 4; ++b) {
      const W::V y[4] = {W::loadu(d + b * ld), W::loadu(d + row_step + b * ld), W::loadu(d + 2 * row_step + b * ld),
                         W::loadu(d + 3 * row_step + b * ld)};
      W::V col[6];
      grad_lift_1d(y, col);
      UNET_SIMD_UNROLL
      for (int64_t i = 0; i < 6; ++i) z[i][b] = col[i];
    }
    UNET_SIMD_UNROLL
    for (int64_t i = 0; i < 6; ++i) {  // (A dY) Aᵀ
      W::V row[6];
      grad_lift_1d(z[i], row);
      UNET_SIMD_UNROLL
      for (int64_t j = 0; j < 6; ++j) W::store_first(out + (6 * i + j) * pitch, row[j], kMr);
    }
  });
}

// Task (slot, output-channel chunk, input-channel chunk), output tiles of M×M: the slot's units (image, rectangle of
// tiles) in order, each packed and multiplied into the slot's partial dU[ξ][o][c]; the first unit
// overwrites, later ones add: every element of dU is one fixed chain of sums.
template <int M> inline void run_grad_task(const GradPlan& q, int64_t task) {
  constexpr int64_t kPositions = (M + 2) * (M + 2);
  const int64_t slot = task / (q.ochunks * q.cchunks), oi = task / q.cchunks % q.ochunks, ci = task % q.cchunks;
  const int64_t u0 = slot * q.units / q.slots, u1 = (slot + 1) * q.units / q.slots;
  const int64_t o_lo = oi * q.ochunk, o_count = std::min(q.ochunk, q.c_out - o_lo);
  const int64_t c_lo = ci * q.cchunk, c_count = std::min(q.cchunk, q.c_in - c_lo);
  const int64_t opanels = ceil_div(o_count, kMr), cpanels = ceil_div(c_count, kNr);
  const int64_t a_pitch = xi_pitch(opanels * kMr * q.block), b_pitch = xi_pitch(cpanels * kNr * q.block);
  float* ap = thread_scratch<float, ScratchTag::kWinogradGradA>(static_cast<size_t>(kPositions * a_pitch));
  float* bp = thread_scratch<float, ScratchTag::kWinogradGradB>(static_cast<size_t>(kPositions * b_pitch));
  const int64_t pairs = q.c_out * q.c_in;
  float* out = q.partial + slot * kPositions * pairs;
  // The unit's rectangle channels-last: x's window rows [M·ty0, M·ty1 + 2) and columns
  // [M·tx0, M·tx1 + 2) (zeros outside x: its padding), dY's rows [M·ty0, M·ty1) and columns
  // [M·tx0, M·tx1) (zeros past the output), whole 16-channel panels, and room for dY's last
  // kMr-row panel to be loaded W lanes wide (≤ 10 channels past it on AVX2).
  const int64_t x_ld = cpanels * kNr, g_ld = (ceil_div(opanels * kMr, 8) + 2) * 8;
  float* xu = thread_scratch<float, ScratchTag::kWinogradPadded>(
      static_cast<size_t>((M * q.unit_rows + 2) * (M * q.unit_w + 2) * x_ld));
  float* gu = thread_scratch<float, ScratchTag::kWinogradGradY>(static_cast<size_t>(M * M * q.unit_rows * q.unit_w * g_ld));
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t img = u / q.per_image, rb = u % q.per_image / q.col_blocks, cb = u % q.col_blocks;
    const int64_t ty0 = rb * q.unit_rows, ty1 = std::min(q.th, ty0 + q.unit_rows);
    const int64_t tx0 = cb * q.unit_w, tx1 = std::min(q.tw, tx0 + q.unit_w), uw = tx1 - tx0;
    const int64_t count = (ty1 - ty0) * uw;
    to_channels_last(q.x + (img * q.c_in + c_lo) * q.h * q.w, c_count, q.h, q.w, q.pad - M * ty0, q.pad - M * tx0,
                     M * (ty1 - ty0) + 2, M * uw + 2, x_ld, xu);
    to_channels_last(q.g + (img * q.c_out + o_lo) * q.h_out * q.w_out, o_count, q.h_out, q.w_out, -M * ty0, -M * tx0,
                     M * (ty1 - ty0), M * uw, g_ld, gu);
    if constexpr (M == 2) {
      pack_inputs(xu, x_ld, uw, count, cpanels, b_pitch, bp);
      pack_grads(gu, g_ld, uw, count, opanels, a_pitch, ap);
    } else {
      pack_inputs4(xu, x_ld, uw, count, cpanels, b_pitch, bp);
      pack_grads4(gu, g_ld, uw, count, opanels, a_pitch, ap);
    }
    for (int64_t xi = 0; xi < kPositions; ++xi)
      for (int64_t cp = 0; cp < cpanels; ++cp) {
        const float* b = bp + xi * b_pitch + cp * count * kNr;
        const int64_t c = c_lo + cp * kNr, cols = std::min(kNr, c_lo + c_count - c);
        for (int64_t op = 0; op < opanels; ++op) {
          const int64_t o = o_lo + op * kMr;
          gemm_tile::micro_kernel(count, ap + xi * a_pitch + op * count * kMr, b, out + xi * pairs + o * q.c_in + c,
                                  q.c_in, std::min(kMr, o_lo + o_count - o), cols, u != u0, false, nullptr, false);
        }
      }
  }
}

// The weight gradient's slot partials on this level (the caller sums the slots and transforms).
inline void run_grad(const GradPlan& q) {
  parallel_for(0, q.slots * q.ochunks * q.cchunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) q.m == 2 ? run_grad_task<2>(q, t) : run_grad_task<4>(q, t);
  });
}

// ---- both tile sizes ------------------------------------------------------------------------------
// Task (image, block of tiles, chunk of output-channel panels) for output tiles of m×m.
template <int M> inline void run_task(const Plan& q, int64_t task) {
  constexpr int64_t kPositions = (M + 2) * (M + 2);
  const int64_t per_image = q.blocks * q.ochunks;
  const int64_t img = task / per_image, bi = task % per_image / q.ochunks, oi = task % q.ochunks;
  const int64_t t0 = bi * q.block, count = std::min(q.block, q.tiles - t0), vpanels = ceil_div(count, kNr);
  const int64_t ld = vpanels * kNr;
  const int64_t p0 = oi * q.ochunk, p1 = std::min(q.opanels, p0 + q.ochunk);
  // M has whole register tiles: rows up to opanels·kMr, columns up to ld, so every GEMM stores
  // its tile directly (a partial tile went through a buffer and a scalar loop; on AVX2 every
  // chunk's last panel is partial, 16 rows being no multiple of 6). The rows and columns past
  // c_out and count are never read.
  const int64_t v_pitch = xi_pitch(ld * q.c_in), m_pitch = xi_pitch(ld * q.opanels * kMr);
  float* v = thread_scratch<float, ScratchTag::kWinogradV>(static_cast<size_t>(kPositions * v_pitch));
  float* m = thread_scratch<float, ScratchTag::kWinogradM>(static_cast<size_t>(kPositions * m_pitch));
  const float* src_n = q.src + img * q.c_in * q.sh * q.sw;
  if constexpr (M == 2) transform_inputs(q, src_n, t0, count, v_pitch, v);
  else transform_inputs4(q, src_n, t0, count, v_pitch, v);
  for (int64_t xi = 0; xi < kPositions; ++xi)
    for (int64_t tp = 0; tp < vpanels; ++tp) {
      const float* b = v + xi * v_pitch + tp * q.c_in * kNr;
      for (int64_t panel = p0; panel < p1; ++panel)
        gemm_tile::micro_kernel(q.c_in, q.ua + (xi * q.opanels + panel) * q.c_in * kMr, b,
                                m + xi * m_pitch + panel * kMr * ld + tp * kNr, ld, kMr, kNr, false, false, nullptr,
                                false);
    }
  float* y_n = q.y + img * q.c_out * q.h_out * q.w_out;
  if constexpr (M == 2) transform_outputs(q, m, ld, m_pitch, t0, count, p0 * kMr, std::min(q.c_out, p1 * kMr), y_n);
  else transform_outputs4(q, m, ld, m_pitch, t0, count, p0 * kMr, std::min(q.c_out, p1 * kMr), y_n);
}

// The engine on this level: plan with its tile rows, transform the weights, run the tasks.
inline void run(Plan q, const float* weights) {
  plan_tasks(q, kMr);
  float* ua = thread_scratch<float, ScratchTag::kWinogradA>(static_cast<size_t>(q.positions * q.opanels * kMr * q.c_in));
  if (q.m == 2) transform_weights(q, weights, ua);
  else transform_weights4(q, weights, ua);
  q.ua = ua;
  parallel_for(0, q.tasks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) q.m == 2 ? run_task<2>(q, t) : run_task<4>(q, t);
  });
}

}  // namespace winograd
