// kernels/winograd3x3_cpu_simd.h — the vector code of the Winograd F(2×2, 3×3) engine
// (winograd3x3_cpu.cpp), a body header (kernels/cpu_simd.h): included once per level inside that
// level's namespace and compile region, after kernels/gemm_microkernel.h, with `Isa` and the
// engine's Plan defined; it includes nothing. The transforms work on 8 tiles at a time (Isa::F8:
// a tile row of the deep layers has only 6–18 tiles, wider groups would mostly be masked); the
// 16 GEMMs run on the level's register tile.

namespace winograd {

using F8 = Isa::F8;
using gemm_tile::kMr;
using gemm_tile::kNr;

// U = G g Gᵀ for every (o, c), stored as A panels ua[ξ][o / kMr][c][o % kMr] (zero rows past
// c_out). Vectors run over a panel's rows (lanes r < kMr; Isa::Wide has at least kMr lanes): the
// 9 taps of the panel's rows are 9 gathers, the 16 positions 16 stores of kMr consecutive floats.
// The same additions and halvings as the definition, in the same order: the same bits on every
// level.
inline void transform_weights(const Plan& q, const float* w, float* ua) {
  using W = Isa::Wide;
  static_assert(W::kLanes >= kMr, "a panel's rows must fit one vector");
  parallel_for(0, q.opanels, 1, [&](int64_t b, int64_t e) {
    alignas(64) int32_t index[W::kLanes];
    const W::V half = W::set1(0.5f);
    for (int64_t panel = b; panel < e; ++panel) {
      const int64_t rows = std::min(kMr, q.c_out - panel * kMr);
      for (int64_t l = 0; l < W::kLanes; ++l) index[l] = static_cast<int32_t>(l < rows ? l * q.c_in * 9 : 0);
      for (int64_t c = 0; c < q.c_in; ++c) {
        const float* g = w + (panel * kMr * q.c_in + c) * 9;  // row r's taps at g + r·c_in·9
        W::V t[4][3];  // G g
        UNET_SIMD_UNROLL
        for (int64_t j = 0; j < 3; ++j) {
          const W::V g0 = W::gather(g + j, index), g1 = W::gather(g + 3 + j, index), g2 = W::gather(g + 6 + j, index);
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
__attribute__((always_inline)) inline void input_tiles(const float* d, int64_t sw, int64_t n, F8::V v[kXi]) {
  F8::V t[4][4];
  UNET_SIMD_UNROLL
  for (int64_t r = 0; r < 4; ++r) {
    F8::V d0, d1, d2, d3;
    F8::deinterleave(d + r * sw, 2 * n + 2, d0, d1);
    F8::deinterleave(d + r * sw + 2, 2 * n, d2, d3);
    t[r][0] = F8::sub(d0, d2), t[r][1] = F8::add(d1, d2);
    t[r][2] = F8::sub(d2, d1), t[r][3] = F8::sub(d1, d3);
  }
  UNET_SIMD_UNROLL
  for (int64_t j = 0; j < 4; ++j) {
    v[j] = F8::sub(t[0][j], t[2][j]), v[4 + j] = F8::add(t[1][j], t[2][j]);
    v[8 + j] = F8::sub(t[2][j], t[1][j]), v[12 + j] = F8::sub(t[1][j], t[3][j]);
  }
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

// Bᵀ x for 6 values per lane.
__attribute__((always_inline)) inline void input_1d(const F8::V x[6], F8::V t[6]) {
  const F8::V four = F8::set1(4.0f), minus_four = F8::set1(-4.0f), minus_five = F8::set1(-5.0f);
  const F8::V a = F8::fma(minus_four, x[2], x[4]), b = F8::fma(minus_four, x[1], x[3]);
  const F8::V c = F8::sub(x[4], x[2]), e = F8::add(F8::sub(x[3], x[1]), F8::sub(x[3], x[1]));
  t[0] = F8::fma(four, x[0], F8::fma(minus_five, x[2], x[4]));
  t[1] = F8::add(a, b), t[2] = F8::sub(a, b);
  t[3] = F8::add(c, e), t[4] = F8::sub(c, e);
  t[5] = F8::fma(four, x[1], F8::fma(minus_five, x[3], x[5]));
}

// c[k] lane l = p[4l + k] (k < 4), reading only p[0 … n), n ≤ 32 (the rest count as zeros).
__attribute__((always_inline)) inline void deinterleave4(const float* p, int64_t n, F8::V c[4]) {
  F8::V e0, o0, e1, o1;
  F8::deinterleave(p, n, e0, o0);
  F8::deinterleave(p + 16, n - 16, e1, o1);
  F8::deinterleave(e0, e1, c[0], c[2]);
  F8::deinterleave(o0, o1, c[1], c[3]);
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
      for (int64_t k = 0; k < run; k += 8) {
        const int64_t n = std::min<int64_t>(8, run - k), f = t + k - t0, at = offset(c, f);
        const float* d = row + 4 * (tx + k);  // the n windows span 4n + 2 columns
        F8::V rows[6][6];
        UNET_SIMD_UNROLL
        for (int64_t r = 0; r < 6; ++r) {
          F8::V x[6], shifted[4];
          deinterleave4(d + r * q.sw, 4 * n + 2, x);
          deinterleave4(d + r * q.sw + 4, 4 * n - 2, shifted);
          x[4] = shifted[0], x[5] = shifted[1];
          input_1d(x, rows[r]);
        }
        const int64_t first = std::min(n, kNr - f % kNr), next = offset(c, f + first);
        UNET_SIMD_UNROLL
        for (int64_t j = 0; j < 6; ++j) {
          const F8::V column[6] = {rows[0][j], rows[1][j], rows[2][j], rows[3][j], rows[4][j], rows[5][j]};
          F8::V vv[6];
          input_1d(column, vv);
          UNET_SIMD_UNROLL
          for (int64_t i = 0; i < 6; ++i) {
            float* dst = xi_base[6 * i + j];
            if (first == 8) {
              F8::storeu(dst + at, vv[i]);
              continue;
            }
            alignas(32) float buf[8];
            F8::store(buf, vv[i]);
            F8::store_first(dst + at, vv[i], first);
            if (n > first) std::copy_n(buf + first, n - first, dst + next);
          }
        }
      }
      t += run;
    }
  }
}

// Aᵀ m for 6 values per lane: 4 results.
__attribute__((always_inline)) inline void output_1d(const F8::V m[6], F8::V z[4]) {
  const F8::V p = F8::add(m[1], m[2]), d = F8::sub(m[1], m[2]), r = F8::add(m[3], m[4]), s = F8::sub(m[3], m[4]);
  z[0] = F8::add(F8::add(m[0], p), r);
  z[1] = F8::fma(F8::set1(2.0f), s, d);
  z[2] = F8::fma(F8::set1(4.0f), r, p);
  z[3] = F8::add(F8::fma(F8::set1(8.0f), s, d), m[5]);
}

// The outputs of the block's tiles for output channels [o0, o1) from M (F(4×4, 3×3)).
inline void transform_outputs4(const Plan& q, const float* m, int64_t ld, int64_t pitch, int64_t t0, int64_t count,
                               int64_t o0, int64_t o1, float* y_n) {
  const float* xi_base[kXi4];
  for (int64_t xi = 0; xi < kXi4; ++xi) xi_base[xi] = m + xi * pitch;
  const F8::V zero = F8::zero();
  for (int64_t o = o0; o < o1; ++o) {
    const F8::V bias = F8::set1(q.bias ? q.bias[o] : 0.0f);
    float* plane = y_n + o * q.h_out * q.w_out;
    for (int64_t t = t0; t < t0 + count;) {
      const int64_t ty = t / q.tw, tx = t % q.tw, run = std::min(q.tw - tx, t0 + count - t);
      const int64_t i0 = 4 * ty, rows = std::min<int64_t>(4, q.h_out - i0);
      for (int64_t k = 0; k < run; k += 8) {
        const int64_t n = std::min<int64_t>(8, run - k), at = o * ld + (t + k - t0);
        F8::V z[6][4];
        UNET_SIMD_UNROLL
        for (int64_t i = 0; i < 6; ++i) {
          F8::V mv[6];
          UNET_SIMD_UNROLL
          for (int64_t j = 0; j < 6; ++j) mv[j] = F8::load_first(xi_base[6 * i + j] + at, n);
          output_1d(mv, z[i]);
        }
        F8::V y[4][4];  // y[a][b]: output row a, column b of each tile
        UNET_SIMD_UNROLL
        for (int64_t b = 0; b < 4; ++b) {
          const F8::V column[6] = {z[0][b], z[1][b], z[2][b], z[3][b], z[4][b], z[5][b]};
          F8::V out[4];
          output_1d(column, out);
          UNET_SIMD_UNROLL
          for (int64_t a = 0; a < 4; ++a) y[a][b] = out[a];
        }
        const int64_t j0 = 4 * (tx + k), cols = std::min(4 * n, q.w_out - j0);  // the last tile may be cut
        for (int64_t a = 0; a < rows; ++a) {
          F8::V yb[4];
          UNET_SIMD_UNROLL
          for (int64_t b = 0; b < 4; ++b) {
            yb[b] = F8::add(y[a][b], bias);
            if (q.relu) yb[b] = F8::max(zero, yb[b]);  // NaN propagates
          }
          // Columns 4l + b of the 8 tiles into 32 consecutive outputs: two rounds of pairwise interleaving.
          F8::V p0, p1, r0, r1, out[4];
          F8::interleave(yb[0], yb[2], p0, p1);
          F8::interleave(yb[1], yb[3], r0, r1);
          F8::interleave(p0, r0, out[0], out[1]);
          F8::interleave(p1, r1, out[2], out[3]);
          float* dst = plane + (i0 + a) * q.w_out + j0;
          UNET_SIMD_UNROLL
          for (int64_t h = 0; h < 4; ++h)
            if (cols > 8 * h) F8::store_first(dst + 8 * h, out[h], cols - 8 * h);
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
    alignas(64) int32_t index[W::kLanes];
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
      for (int64_t l = 0; l < W::kLanes; ++l) index[l] = static_cast<int32_t>(l < rows ? l * q.c_in * 9 : 0);
      for (int64_t c = 0; c < q.c_in; ++c) {
        const float* g = w + (panel * kMr * q.c_in + c) * 9;
        W::V t[3][6];  // t[j] = G · (column j of g)
        for (int64_t j = 0; j < 3; ++j) g_times(W::gather(g + j, index), W::gather(g + 3 + j, index), W::gather(g + 6 + j, index), t[j]);
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
// [tile][16] per input-channel panel. The transforms run with 8 tiles of a tile row in the lanes
// (input_tiles, grad_tiles) for 8 channels at a time; an 8×8 transpose then turns each tile's 8
// channels into one row of its panel.

// Ŷ = A dY Aᵀ of the 2×2 output-gradient tiles tx … tx + n − 1 (n ≤ 8) of tile row ty of plane
// g: ŷ[ξ] lane l is tile tx + l. Outputs past the plane's edge (a partial tile, lanes ≥ n) count
// as zeros; nothing outside the plane is read. A = [1 0; 1 1; 1 -1; 0 -1].
__attribute__((always_inline)) inline void grad_tiles(const float* g, int64_t h_out, int64_t w_out, int64_t ty,
                                                      int64_t tx, int64_t n, F8::V yh[kXi]) {
  const int64_t cols = std::min(2 * n, w_out - 2 * tx);
  const float* row = g + 2 * ty * w_out + 2 * tx;
  const F8::V zero = F8::zero();
  F8::V y[2][2];  // y[a][b]: output row a, column b of each tile
  F8::deinterleave(row, cols, y[0][0], y[0][1]);
  if (2 * ty + 1 < h_out)
    F8::deinterleave(row + w_out, cols, y[1][0], y[1][1]);
  else
    y[1][0] = y[1][1] = zero;
  F8::V z[4][2];  // A dY
  UNET_SIMD_UNROLL
  for (int64_t b = 0; b < 2; ++b) {
    z[0][b] = y[0][b], z[1][b] = F8::add(y[0][b], y[1][b]);
    z[2][b] = F8::sub(y[0][b], y[1][b]), z[3][b] = F8::sub(zero, y[1][b]);
  }
  UNET_SIMD_UNROLL
  for (int64_t i = 0; i < 4; ++i) {  // (A dY) Aᵀ
    yh[4 * i] = z[i][0], yh[4 * i + 1] = F8::add(z[i][0], z[i][1]);
    yh[4 * i + 2] = F8::sub(z[i][0], z[i][1]), yh[4 * i + 3] = F8::sub(zero, z[i][1]);
  }
}

// panels[ξ][p][f][Width] (ξ blocks xi_pitch floats apart, panel p at p·count·Width) = position ξ
// of channel p·Width + r of the unit's tile f < count, for the `padded` channels of a chunk
// (zeros for those at or past `channels`); transform(ch, ty, tx, n, v) gives the 16 positions of
// chunk channel ch for tiles tx … tx + n − 1 of tile row ty. Per group of 8 tiles and 8 channels
// the positions go through an L1 buffer and an 8×8 transpose per position.
template <int64_t Width, class Transform>
inline void pack_positions(const GradPlan& q, int64_t t0, int64_t count, int64_t channels, int64_t padded,
                           int64_t xi_pitch, float* panels, Transform&& transform) {
  alignas(32) float buf[kXi][8][8];
  const int64_t stride = count * Width;
  for (int64_t t = t0; t < t0 + count;) {
    const int64_t ty = t / q.tw, tx = t % q.tw, run = std::min(q.tw - tx, t0 + count - t);
    for (int64_t k = 0; k < run; k += 8) {
      const int64_t n = std::min<int64_t>(8, run - k), f = t + k - t0;
      for (int64_t c0 = 0; c0 < padded; c0 += 8) {
        for (int64_t l = 0; l < 8; ++l) {
          F8::V v[kXi];
          if (c0 + l < channels) {
            transform(c0 + l, ty, tx + k, n, v);
          } else {
            UNET_SIMD_UNROLL
            for (int64_t xi = 0; xi < kXi; ++xi) v[xi] = F8::zero();
          }
          UNET_SIMD_UNROLL
          for (int64_t xi = 0; xi < kXi; ++xi) F8::store(buf[xi][l], v[xi]);
        }
        for (int64_t xi = 0; xi < kXi; ++xi) {
          F8::V r[8];
          UNET_SIMD_UNROLL
          for (int64_t l = 0; l < 8; ++l) r[l] = F8::load(buf[xi][l]);
          F8::transpose8(r);  // r[b]: the 8 channels of tile f + b
          float* base = panels + xi * xi_pitch;
          for (int64_t b = 0; b < n; ++b) {
            if constexpr (Width % 8 == 0) {  // c0 and padded are multiples of 8: one store
              F8::storeu(base + c0 / Width * stride + (f + b) * Width + c0 % Width, r[b]);
            } else {
              alignas(32) float lane[8];
              F8::store(lane, r[b]);
              for (int64_t l = 0; l < 8 && c0 + l < padded; ++l)
                base[(c0 + l) / Width * stride + (f + b) * Width + (c0 + l) % Width] = lane[l];
            }
          }
        }
      }
    }
    t += run;
  }
}

// Task (slot, output-channel chunk, input-channel chunk): the slot's units (image, block of
// tiles) in order, each packed and multiplied into the slot's partial dU[ξ][o][c]; the first unit
// overwrites, later ones add: every element of dU is one fixed chain of sums.
inline void run_grad_task(const GradPlan& q, int64_t task) {
  const int64_t slot = task / (q.ochunks * q.cchunks), oi = task / q.cchunks % q.ochunks, ci = task % q.cchunks;
  const int64_t u0 = slot * q.units / q.slots, u1 = (slot + 1) * q.units / q.slots;
  const int64_t o_lo = oi * q.ochunk, o_count = std::min(q.ochunk, q.c_out - o_lo);
  const int64_t c_lo = ci * q.cchunk, c_count = std::min(q.cchunk, q.c_in - c_lo);
  const int64_t o_pad = ceil_div(o_count, kMr) * kMr, c_pad = ceil_div(c_count, kNr) * kNr;
  const int64_t a_pitch = xi_pitch(o_pad * q.block), b_pitch = xi_pitch(c_pad * q.block);
  float* ap = thread_scratch<float, ScratchTag::kWinogradGradA>(static_cast<size_t>(kXi * a_pitch));
  float* bp = thread_scratch<float, ScratchTag::kWinogradGradB>(static_cast<size_t>(kXi * b_pitch));
  const int64_t pairs = q.c_out * q.c_in;
  float* out = q.partial + slot * kXi * pairs;
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t img = u / q.blocks, t0 = u % q.blocks * q.block, count = std::min(q.block, q.tiles - t0);
    const float* src = q.src + (img * q.c_in + c_lo) * q.sh * q.sw;
    const float* g = q.g + (img * q.c_out + o_lo) * q.h_out * q.w_out;
    pack_positions<kNr>(q, t0, count, c_count, c_pad, b_pitch, bp,
                        [&](int64_t c, int64_t ty, int64_t tx, int64_t n, F8::V v[kXi]) {
                          input_tiles(src + c * q.sh * q.sw + 2 * ty * q.sw + 2 * tx, q.sw, n, v);
                        });
    pack_positions<kMr>(q, t0, count, o_count, o_pad, a_pitch, ap,
                        [&](int64_t o, int64_t ty, int64_t tx, int64_t n, F8::V v[kXi]) {
                          grad_tiles(g + o * q.h_out * q.w_out, q.h_out, q.w_out, ty, tx, n, v);
                        });
    for (int64_t xi = 0; xi < kXi; ++xi)
      for (int64_t cp = 0; cp < c_pad / kNr; ++cp) {
        const float* b = bp + xi * b_pitch + cp * count * kNr;
        const int64_t c = c_lo + cp * kNr, cols = std::min(kNr, q.c_in - c);
        for (int64_t op = 0; op < o_pad / kMr; ++op) {
          const int64_t o = o_lo + op * kMr;
          gemm_tile::micro_kernel(count, ap + xi * a_pitch + op * count * kMr, b, out + xi * pairs + o * q.c_in + c,
                                  q.c_in, std::min(kMr, q.c_out - o), cols, u != u0, false, nullptr, false);
        }
      }
  }
}

// The weight gradient's slot partials on this level (the caller sums the slots and transforms).
inline void run_grad(const GradPlan& q) {
  parallel_for(0, q.slots * q.ochunks * q.cchunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) run_grad_task(q, t);
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
  const int64_t v_pitch = xi_pitch(ld * q.c_in), m_pitch = xi_pitch(ld * q.c_out);
  float* v = thread_scratch<float, ScratchTag::kWinogradV>(static_cast<size_t>(kPositions * v_pitch));
  float* m = thread_scratch<float, ScratchTag::kWinogradM>(static_cast<size_t>(kPositions * m_pitch));
  const float* src_n = q.src + img * q.c_in * q.sh * q.sw;
  if constexpr (M == 2) transform_inputs(q, src_n, t0, count, v_pitch, v);
  else transform_inputs4(q, src_n, t0, count, v_pitch, v);
  for (int64_t xi = 0; xi < kPositions; ++xi)
    for (int64_t tp = 0; tp < vpanels; ++tp) {
      const float* b = v + xi * v_pitch + tp * q.c_in * kNr;
      const int64_t cols = std::min(kNr, count - tp * kNr);
      for (int64_t panel = p0; panel < p1; ++panel) {
        const int64_t o = panel * kMr;
        gemm_tile::micro_kernel(q.c_in, q.ua + (xi * q.opanels + panel) * q.c_in * kMr, b,
                                m + xi * m_pitch + o * ld + tp * kNr, ld, std::min(kMr, q.c_out - o), cols, false,
                                false, nullptr, false);
      }
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
