// kernels/winograd3x3_cpu.cpp — see winograd3x3_cpu.h.
//
// Matrices of F(2×2, 3×3) (Lavin & Gray 2016):
//   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
//   Aᵀ = [1 1 1 0; 0 1 -1 -1]
// Tiles: output tile (ty, tx) covers outputs (2ty + a, 2tx + b), a, b < 2, and reads the 4×4
// window at rows 2ty + r - pad, columns 2tx + s - pad; tiles are numbered t = ty·tw + tx.
//
// Work split: the weights are transformed once per call into A panels ua[ξ][row panel][c][6]
// (ξ = 4i + j, the 16 transformed positions). A task owns (image, block of tiles, chunk of
// output-channel panels). It transforms its block's input windows into B panels
// V[ξ][tile panel][c][16] (8 tiles at a time along a tile row: the windows of 8 neighbouring
// tiles are 2 deinterleaved loads per window row and column pair), runs the 16 GEMMs
// M[ξ][o][tile] = Σ_c U[ξ][o][c] · V[ξ][c][tile] on the 6×16 register tile, and transforms M back
// into the output (bias and ReLU fused, 8 tiles = 16 output columns per store pair). A block's V
// and M together stay within kBlockFloats (L2). Every output is summed by one task in a fixed
// order: deterministic at any thread count.
//
// Reads: a tile row's windows span columns [2tx - pad, 2tx - pad + 4); when some window of the
// output would read outside x (same padding, the data gradient's "full" convolution with pad 2,
// an odd output size), the call first copies x with a zero border, so the transforms never check
// bounds.
#include "kernels/winograd3x3_cpu.h"

#include <algorithm>

#include "core/parallel.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/cpu_scratch.h"
#include "kernels/cpu_zero_border.h"
#include "kernels/gemm_microkernel_avx2.h"

namespace unet::cpu {

namespace {
EngineSwitch engine_switch;
}  // namespace

void set_winograd3x3_enabled(bool enabled) { engine_switch.set(enabled); }
bool winograd3x3_available() { return engine_switch.available(); }

#ifdef UNET_X86_DISPATCH

namespace {
using gemm_tile::kMr;
using gemm_tile::kNr;
using gemm_tile::micro_kernel;
constexpr int64_t kXi = 16;                         // transformed positions of a tile (4×4)
constexpr int64_t kBlockFloats = int64_t{1} << 15;  // a block's V + M: 128 KB, stays in L2 (2^14–2^17 measured alike)

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Plan {
  int64_t c_in, c_out, h_out, w_out, th, tw, tiles;
  const float* src;  // batch × c_in × sh × sw; window (ty, tx) starts at row 2ty, column 2tx
  int64_t sh, sw;
  int64_t opanels, block, blocks, ochunk, ochunks;  // block: tiles per block, a multiple of 16
  const float* ua;
  const float* bias;
  bool relu;
  float* y;
};

// U = G g Gᵀ for every (o, c), stored as A panels ua[ξ][o / 6][c][o % 6] (zero rows past c_out).
// Parallel over panels; per (panel, c) the 6 rows' values of each ξ are written together, so
// every cache line of ua is filled in one go.
void transform_weights(const Plan& q, const float* w, float* ua) {
  parallel_for(0, q.opanels, 1, [&](int64_t b, int64_t e) {
    for (int64_t panel = b; panel < e; ++panel)
      for (int64_t c = 0; c < q.c_in; ++c) {
        float u[kMr][kXi] = {};  // per row of the panel
        for (int64_t r = 0; r < kMr; ++r) {
          const int64_t o = panel * kMr + r;
          if (o >= q.c_out) break;
          const float* g = w + (o * q.c_in + c) * 9;
          float t[4][3];  // G g
          for (int64_t j = 0; j < 3; ++j) {
            t[0][j] = g[j];
            t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
            t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
            t[3][j] = g[6 + j];
          }
          for (int64_t i = 0; i < 4; ++i) {  // (G g) Gᵀ
            u[r][4 * i] = t[i][0];
            u[r][4 * i + 1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
            u[r][4 * i + 2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
            u[r][4 * i + 3] = t[i][2];
          }
        }
        for (int64_t xi = 0; xi < kXi; ++xi) {
          float* dst = ua + ((xi * q.opanels + panel) * q.c_in + c) * kMr;
          for (int64_t r = 0; r < kMr; ++r) dst[r] = u[r][xi];
        }
      }
  });
}

// Lanes l < n set (n clamped to [0, 8]): the mask of a masked load or store of n floats.
UNET_AVX2_FMA inline __m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::clamp<int64_t>(n, 0, 8))),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Even- and odd-indexed floats of the 16 at p — (p[0], p[2], …, p[14]) and (p[1], …, p[15]) —
// reading only p[0 … n) (the rest are zeros): a masked load never touches the masked floats,
// so a window group at the end of a plane reads nothing past it.
UNET_AVX2_FMA inline void deinterleave(const float* p, int64_t n, __m256& even, __m256& odd) {
  const __m256 a = n >= 16 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, first_lanes(n));
  const __m256 b = n >= 16 ? _mm256_loadu_ps(p + 8) : _mm256_maskload_ps(p + 8, first_lanes(n - 8));
  const __m256 lo = _mm256_shuffle_ps(a, b, 0x88), hi = _mm256_shuffle_ps(a, b, 0xDD);  // 128-bit lanes interleaved
  even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(lo), 0xD8));
  odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(hi), 0xD8));
}

// Bᵀ d B of the windows of tiles tx … tx + n − 1 (n ≤ 8) of one tile row, starting at d: v[ξ]
// lane l is tile tx + l (zeros past n). The n windows span 2n + 2 columns.
UNET_AVX2_FMA inline void input_tiles(const float* d, int64_t sw, int64_t n, __m256 v[kXi]) {
  __m256 t[4][4];
  for (int64_t r = 0; r < 4; ++r) {
    __m256 d0, d1, d2, d3;
    deinterleave(d + r * sw, 2 * n + 2, d0, d1);
    deinterleave(d + r * sw + 2, 2 * n, d2, d3);
    t[r][0] = _mm256_sub_ps(d0, d2), t[r][1] = _mm256_add_ps(d1, d2);
    t[r][2] = _mm256_sub_ps(d2, d1), t[r][3] = _mm256_sub_ps(d1, d3);
  }
  for (int64_t j = 0; j < 4; ++j) {
    v[j] = _mm256_sub_ps(t[0][j], t[2][j]), v[4 + j] = _mm256_add_ps(t[1][j], t[2][j]);
    v[8 + j] = _mm256_sub_ps(t[2][j], t[1][j]), v[12 + j] = _mm256_sub_ps(t[1][j], t[3][j]);
  }
}

// V[ξ][f / 16][c][f % 16] for the block's tiles f = t - t0 < count (zero lanes past count).
// Every tile row's run of tiles goes through the vector transform, 8 tiles at a time and the
// rest masked: blocks of 16 tiles cut rows of 7–77 tiles into short runs, which a scalar tail
// would spend a large share of the transform on.
UNET_AVX2_FMA void transform_inputs(const Plan& q, const float* src_n, int64_t t0, int64_t count, float* v) {
  const int64_t vpanels = ceil_div(count, kNr), xi_stride = vpanels * q.c_in * kNr;
  auto at = [&](int64_t xi, int64_t c, int64_t f) { return v + xi * xi_stride + ((f / kNr) * q.c_in + c) * kNr + f % kNr; };
  if (count % kNr)
    for (int64_t xi = 0; xi < kXi; ++xi)
      for (int64_t c = 0; c < q.c_in; ++c) std::fill(at(xi, c, count), at(xi, c, vpanels * kNr - 1) + 1, 0.0f);
  for (int64_t c = 0; c < q.c_in; ++c) {
    const float* plane = src_n + c * q.sh * q.sw;
    for (int64_t t = t0; t < t0 + count;) {
      const int64_t ty = t / q.tw, tx = t % q.tw, run = std::min(q.tw - tx, t0 + count - t);
      const float* row = plane + 2 * ty * q.sw;
      for (int64_t k = 0; k < run; k += 8) {
        const int64_t n = std::min<int64_t>(8, run - k), f = t + k - t0;
        __m256 vv[kXi];
        input_tiles(row + 2 * (tx + k), q.sw, n, vv);
        // Lanes [0, first) go to f's 16-tile panel, the rest to the next one.
        const int64_t first = std::min(n, kNr - f % kNr);
        if (first == 8) {
          for (int64_t xi = 0; xi < kXi; ++xi) _mm256_storeu_ps(at(xi, c, f), vv[xi]);
          continue;
        }
        for (int64_t xi = 0; xi < kXi; ++xi) {  // (masked stores are slow on AMD; a buffer copy is not)
          alignas(32) float buf[8];
          _mm256_store_ps(buf, vv[xi]);
          std::copy_n(buf, first, at(xi, c, f));
          std::copy_n(buf + first, n - first, at(xi, c, f + first));
        }
      }
      t += run;
    }
  }
}

// The outputs of the block's tiles for output channels [o0, o1) from M[ξ][o][f] (row stride ld).
UNET_AVX2_FMA void transform_outputs(const Plan& q, const float* m, int64_t ld, int64_t t0, int64_t count, int64_t o0,
                                     int64_t o1, float* y_n) {
  const int64_t xi_stride = q.c_out * ld;
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t o = o0; o < o1; ++o) {
    const float add = q.bias ? q.bias[o] : 0.0f;
    float* plane = y_n + o * q.h_out * q.w_out;
    const float* mo = m + o * ld;
    for (int64_t t = t0; t < t0 + count;) {
      const int64_t ty = t / q.tw, tx = t % q.tw, run = std::min(q.tw - tx, t0 + count - t);
      const int64_t i0 = 2 * ty, rows = std::min<int64_t>(2, q.h_out - i0);
      for (int64_t k = 0; k < run; k += 8) {
        const int64_t n = std::min<int64_t>(8, run - k);  // tiles of this group (masked when < 8)
        const float* mk = mo + (t + k - t0);
        const __m256i lanes = first_lanes(n);
        __m256 mv[kXi];
        for (int64_t xi = 0; xi < kXi; ++xi)
          mv[xi] = n == 8 ? _mm256_loadu_ps(mk + xi * xi_stride) : _mm256_maskload_ps(mk + xi * xi_stride, lanes);
        __m256 u[4][2];
        for (int64_t i = 0; i < 4; ++i) {
          u[i][0] = _mm256_add_ps(_mm256_add_ps(mv[4 * i], mv[4 * i + 1]), mv[4 * i + 2]);
          u[i][1] = _mm256_sub_ps(_mm256_sub_ps(mv[4 * i + 1], mv[4 * i + 2]), mv[4 * i + 3]);
        }
        const __m256 bias = _mm256_set1_ps(add);
        const int64_t j0 = 2 * (tx + k), cols = std::min(2 * n, q.w_out - j0);  // odd width: the last tile has one column
        for (int64_t a = 0; a < rows; ++a) {
          __m256 y0 = a == 0 ? _mm256_add_ps(_mm256_add_ps(u[0][0], u[1][0]), u[2][0])
                             : _mm256_sub_ps(_mm256_sub_ps(u[1][0], u[2][0]), u[3][0]);
          __m256 y1 = a == 0 ? _mm256_add_ps(_mm256_add_ps(u[0][1], u[1][1]), u[2][1])
                             : _mm256_sub_ps(_mm256_sub_ps(u[1][1], u[2][1]), u[3][1]);
          y0 = _mm256_add_ps(y0, bias), y1 = _mm256_add_ps(y1, bias);
          if (q.relu) y0 = _mm256_max_ps(zero, y0), y1 = _mm256_max_ps(zero, y1);  // NaN propagates
          // Interleave columns 2l (y0) and 2l + 1 (y1) of the 8 tiles into 16 consecutive outputs.
          const __m256 lo = _mm256_unpacklo_ps(y0, y1), hi = _mm256_unpackhi_ps(y0, y1);
          const __m256 first = _mm256_permute2f128_ps(lo, hi, 0x20), second = _mm256_permute2f128_ps(lo, hi, 0x31);
          float* out = plane + (i0 + a) * q.w_out + j0;
          if (cols == 16) {
            _mm256_storeu_ps(out, first), _mm256_storeu_ps(out + 8, second);
          } else {  // a short group (masked stores are slow on AMD; a buffer copy is not)
            alignas(32) float buf[16];
            _mm256_store_ps(buf, first), _mm256_store_ps(buf + 8, second);
            std::copy_n(buf, cols, out);
          }
        }
      }
      t += run;
    }
  }
}

UNET_AVX2_FMA void run_task(const Plan& q, int64_t task) {
  const int64_t per_image = q.blocks * q.ochunks;
  const int64_t img = task / per_image, bi = task % per_image / q.ochunks, oi = task % q.ochunks;
  const int64_t t0 = bi * q.block, count = std::min(q.block, q.tiles - t0), vpanels = ceil_div(count, kNr);
  const int64_t ld = vpanels * kNr;
  const int64_t p0 = oi * q.ochunk, p1 = std::min(q.opanels, p0 + q.ochunk);
  float* v = thread_scratch<float, ScratchTag::kWinogradV>(static_cast<size_t>(kXi * ld * q.c_in));
  float* m = thread_scratch<float, ScratchTag::kWinogradM>(static_cast<size_t>(kXi * ld * q.c_out));
  transform_inputs(q, q.src + img * q.c_in * q.sh * q.sw, t0, count, v);
  for (int64_t xi = 0; xi < kXi; ++xi)
    for (int64_t tp = 0; tp < vpanels; ++tp) {
      const float* b = v + (xi * vpanels + tp) * q.c_in * kNr;
      const int64_t cols = std::min(kNr, count - tp * kNr);
      for (int64_t panel = p0; panel < p1; ++panel) {
        const int64_t o = panel * kMr;
        micro_kernel(q.c_in, q.ua + (xi * q.opanels + panel) * q.c_in * kMr, b, m + (xi * q.c_out + o) * ld + tp * kNr,
                     ld, std::min(kMr, q.c_out - o), cols, false, false, nullptr, false);
      }
    }
  transform_outputs(q, m, ld, t0, count, p0 * kMr, std::min(q.c_out, p1 * kMr),
                    q.y + img * q.c_out * q.h_out * q.w_out);
}
}  // namespace

void winograd3x3(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad, const float* x,
                 const float* weights, const float* bias, bool relu, float* y) {
  Plan q{};
  q.c_in = c_in, q.c_out = c_out, q.h_out = h + 2 * pad - 2, q.w_out = w + 2 * pad - 2;
  if (n == 0 || c_out == 0 || q.h_out <= 0 || q.w_out <= 0) return;
  q.th = ceil_div(q.h_out, 2), q.tw = ceil_div(q.w_out, 2), q.tiles = q.th * q.tw;
  q.bias = bias, q.relu = relu, q.y = y;
  // Windows read rows [-pad, 2·th + 2 - pad) and columns [-pad, 2·tw + 2 - pad) of x.
  const int64_t sh = 2 * q.th + 2, sw = 2 * q.tw + 2;
  if (pad == 0 && sh <= h && sw <= w) {
    q.src = x, q.sh = h, q.sw = w;
  } else {
    float* padded = thread_scratch<float, ScratchTag::kWinogradPadded>(static_cast<size_t>(n * c_in * sh * sw));
    copy_with_zero_border(x, n * c_in, h, w, pad, pad, sh, sw, padded);
    q.src = padded, q.sh = sh, q.sw = sw;
  }
  q.opanels = ceil_div(c_out, kMr);
  float* ua = thread_scratch<float, ScratchTag::kWinogradA>(static_cast<size_t>(kXi * q.opanels * kMr * c_in));
  transform_weights(q, weights, ua);
  q.ua = ua;
  // Blocks: whole 16-tile panels whose V and M fit kBlockFloats; then, when that leaves fewer
  // than ~4 tasks per thread (the deep, small layers), output-channel chunks (each recomputes its
  // block's V, which costs little next to the GEMM there).
  const int64_t per_tile = kXi * (c_in + c_out);
  q.block = std::clamp<int64_t>(kBlockFloats / per_tile / kNr * kNr, kNr, ceil_div(q.tiles, kNr) * kNr);
  q.blocks = ceil_div(q.tiles, q.block);
  const int64_t wanted = 4 * num_threads(), have = n * q.blocks;
  q.ochunks = std::clamp<int64_t>(ceil_div(wanted, have), 1, q.opanels);
  q.ochunk = ceil_div(q.opanels, q.ochunks);
  q.ochunks = ceil_div(q.opanels, q.ochunk);
  parallel_for(0, n * q.blocks * q.ochunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) run_task(q, t);
  });
}

#else

void winograd3x3(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, const float*, const float*, bool,
                 float*) {}

#endif

}  // namespace unet::cpu
