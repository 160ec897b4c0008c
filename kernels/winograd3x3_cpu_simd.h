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

inline void run_task(const Plan& q, int64_t task) {
  const int64_t per_image = q.blocks * q.ochunks;
  const int64_t img = task / per_image, bi = task % per_image / q.ochunks, oi = task % q.ochunks;
  const int64_t t0 = bi * q.block, count = std::min(q.block, q.tiles - t0), vpanels = ceil_div(count, kNr);
  const int64_t ld = vpanels * kNr;
  const int64_t p0 = oi * q.ochunk, p1 = std::min(q.opanels, p0 + q.ochunk);
  const int64_t v_pitch = xi_pitch(ld * q.c_in), m_pitch = xi_pitch(ld * q.c_out);
  float* v = thread_scratch<float, ScratchTag::kWinogradV>(static_cast<size_t>(kXi * v_pitch));
  float* m = thread_scratch<float, ScratchTag::kWinogradM>(static_cast<size_t>(kXi * m_pitch));
  transform_inputs(q, q.src + img * q.c_in * q.sh * q.sw, t0, count, v_pitch, v);
  for (int64_t xi = 0; xi < kXi; ++xi)
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
  transform_outputs(q, m, ld, m_pitch, t0, count, p0 * kMr, std::min(q.c_out, p1 * kMr),
                    q.y + img * q.c_out * q.h_out * q.w_out);
}

// The engine on this level: plan with its tile rows, transform the weights, run the tasks.
inline void run(Plan q, const float* weights) {
  plan_tasks(q, kMr);
  float* ua = thread_scratch<float, ScratchTag::kWinogradA>(static_cast<size_t>(kXi * q.opanels * kMr * q.c_in));
  transform_weights(q, weights, ua);
  q.ua = ua;
  parallel_for(0, q.tasks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) run_task(q, t);
  });
}

}  // namespace winograd
