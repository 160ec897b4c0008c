// kernels/winograd3x3_cpu.cpp — see winograd3x3_cpu.h.
//
// Matrices of F(2×2, 3×3) (Lavin & Gray 2016):
//   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
//   Aᵀ = [1 1 1 0; 0 1 -1 -1]
// Tiles: output tile (ty, tx) covers outputs (2ty + a, 2tx + b), a, b < 2, and reads the 4×4
// window at rows 2ty + r - pad, columns 2tx + s - pad; tiles are numbered t = ty·tw + tx.
//
// Work split: the weights are transformed once per call into A panels ua[ξ][row panel][c][mr]
// (ξ = 4i + j, the 16 transformed positions; mr = the register tile's rows on the level in use,
// 6 on AVX2, 16 on AVX-512). A task owns (image, block of tiles, chunk of output-channel panels).
// It transforms its block's input windows into B panels V[ξ][tile panel][c][16] (8 tiles at a
// time along a tile row: the windows of 8 neighbouring tiles are 2 deinterleaved loads per window
// row and column pair), runs the 16 GEMMs M[ξ][o][tile] = Σ_c U[ξ][o][c] · V[ξ][c][tile] on the
// mr×16 register tile, and transforms M back into the output (bias and ReLU fused, 8 tiles = 16
// output columns per store pair). A block's V and M together stay within kBlockFloats (L2).
// Every output is summed by one task in a fixed order: deterministic at any thread count, and the
// same bits on every level (kernels/cpu_simd.h).
//
// Weight gradient (F(2×2, 3×3)): dU[ξ][o][c] = Σ_tiles Ŷ[ξ][o][t] · V[ξ][c][t], Ŷ = A dY Aᵀ,
// V = Bᵀ d B, on the same register tile with the tiles as K (A panels Ŷ[tile][mr], B panels
// V[tile][16 channels]); units of tiles are copied channels-last (8×8 transposes) so both
// transforms run with channels in the lanes and store panel rows directly. Slots of units fixed
// by the shapes, added in order, then dw = Gᵀ dU G per channel pair (plain C++, vectorized across pairs).
//
// Reads: a tile row's windows span columns [2tx - pad, 2tx - pad + 4); when some window of the
// output would read outside x (same padding, the data gradient's "full" convolution with pad 2,
// an odd output size), the call first copies x with a zero border, so the transforms never check
// bounds.
#include "kernels/winograd3x3_cpu.h"

#include <algorithm>
#include <atomic>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/cpu_scratch.h"
#include "kernels/cpu_slots.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_zero_border.h"

namespace unet::cpu {

namespace {
EngineSwitch engine_switch;
std::atomic<int> forced_tile{0};  // 0: chosen per layer
// F(4×4, 3×3) where it paid in bench/cpu_levels (2026-12-02, both levels, one thread): outputs at
// least 28 wide and tall (below, 4×4 tiles leave the 16-tile panels partly empty: the 20²–22²
// and 12²–14² layers ran 5–50 % slower) and at least 16 output channels. (Until 2026-12-03 the
// floor was 32: with 16 the 6×6 transforms had cost more than the GEMM saved, 134² 32→16 ran
// 15–30 % slower; once the transforms ran 16 tiles per group, F(4×4) / F(2×2) measured 0.88–0.91
// on up0.conv1's forward and 0.81–0.83 on down1.conv1's data gradient at avx512, 0.81–0.86 and
// 0.78–0.81 at avx2: `cpu_levels --levels avx512-f2,avx512-f4,avx2-f2,avx2-f4 --ops conv1`.)
constexpr int64_t kLargeTileMinSide = 28, kLargeTileMinChannels = 16;

std::atomic<WinogradWeightGrad> weight_grad_mode{WinogradWeightGrad::Auto};
// Where the Winograd weight gradient beat the patch GEMM's: bench/cpu_levels --levels
// avx512-nowg,avx512-wg --ops bwd-weight --threads 1 --rounds 25, CPU time, under load
// (2026-12-02, docs/benchmarks.md): Winograd / patch GEMM 0.45–0.91 on the CPU configuration's
// layers with at least 32 input and output channels but for 32→32 at 152² (0.76–1.09 over three
// runs), 1.1–12× on those with 16 channels on a side (a 16-wide B panel mostly padding for 1
// input channel; transforms as costly as the small GEMMs); the paper's configuration (base 64,
// tile 572, 3 rounds) 0.65–1.00 on every layer but the 1-channel first. At avx2 (one run) it also
// won at 32→16 and 16→32. Those 16-channel losses were F(2×2)'s: with F(4×4, 3×3) (outputs at
// least 28 wide and tall, winograd3x3_weight_grad_tile) the layers with 16 channels on a side win
// too (bench/cpu_levels --levels avx512,avx512-wg --ops bwd-weight --rounds 15, one thread, CPU
// time, AMD EPYC Zen 4, 2026-12-03: 16→16 at 312² 0.66, 16→32 at 154² 0.62, 32→16 at 134² 0.67,
// 16→16 at 132² 0.71; 1→16 still 6.5×).
bool weight_grad_pays(int64_t c_in, int64_t c_out, int64_t h_out, int64_t w_out) {
  if (c_in >= 32 && c_out >= 32) return true;
  return c_in >= 16 && c_out >= 16 && winograd3x3_weight_grad_tile(h_out, w_out) == 4;
}

std::atomic<int> forced_weight_grad_tile{0};  // 0: chosen per layer
// F(4×4, 3×3) weight gradient on outputs at least 28 wide and tall (the forward's kLargeTileMinSide), where
// it measured faster than F(2×2, 3×3): bench/cpu_levels --levels avx512-wg2,avx512,avx512-wg4
// --ops bwd-weight --threads 1 --rounds 31, CPU time, under CI load (2026-12-03, docs/benchmarks.md
// "CPU Winograd F(4x4) weight gradient"): F(4×4) / F(2×2) 0.75–0.82 at 32→32 152², 0.86–0.95 at
// 64→64 72², 0.71–0.99 at 34²/32², 0.77–0.81 at 64→64 36²; ties within the noise at 74² 32→64,
// 38² 128→64 and 70²/68² (up1, 0.94–1.33); below 28² it lost (12²–14² 1.17–1.67, 22² 1.05–1.29:
// 4×4 tiles leave the GEMMs' K short and the 36·Cout·Cin partials weigh more). At avx2 the
// ≥ 28² layers took 0.55–0.91 on most, the weight gradients 0.89 in all.
}  // namespace

void set_winograd3x3_enabled(bool enabled) { engine_switch.set(enabled); }

void set_winograd3x3_weight_grad(WinogradWeightGrad mode) { weight_grad_mode.store(mode, std::memory_order_relaxed); }

bool winograd3x3_weight_grad_used(int64_t c_in, int64_t c_out, int64_t h_out, int64_t w_out) {
  if (!winograd3x3_available()) return false;
  switch (weight_grad_mode.load(std::memory_order_relaxed)) {
    case WinogradWeightGrad::On: return true;
    case WinogradWeightGrad::Off: return false;
    case WinogradWeightGrad::Auto: break;
  }
  return weight_grad_pays(c_in, c_out, h_out, w_out);  // from 32 channels no size limit: 12² to 568² outputs all paid
}
bool winograd3x3_available() { return engine_switch.available(); }

void set_winograd3x3_weight_grad_tile(int m) {
  UNET_CHECK(m == 0 || m == 2 || m == 4, ValueError, "set_winograd3x3_weight_grad_tile: the output tile is 2 ",
             "(F(2x2, 3x3)), 4 (F(4x4, 3x3)) or 0 (chosen per layer), got ", m);
  forced_weight_grad_tile.store(m, std::memory_order_relaxed);
}

int winograd3x3_weight_grad_tile(int64_t h_out, int64_t w_out) {
  const int forced = forced_weight_grad_tile.load(std::memory_order_relaxed);
  if (forced != 0) return forced;
  return h_out >= kLargeTileMinSide && w_out >= kLargeTileMinSide ? 4 : 2;
}

void set_winograd3x3_tile(int m) {
  UNET_CHECK(m == 0 || m == 2 || m == 4, ValueError, "set_winograd3x3_tile: the output tile is 2 (F(2x2, 3x3)), 4 ",
             "(F(4x4, 3x3)) or 0 (chosen per layer), got ", m);
  forced_tile.store(m, std::memory_order_relaxed);
}

int winograd3x3_tile(int64_t h_out, int64_t w_out, int64_t c_out) {
  const int forced = forced_tile.load(std::memory_order_relaxed);
  if (forced != 0) return forced;
  return h_out >= kLargeTileMinSide && w_out >= kLargeTileMinSide && c_out >= kLargeTileMinChannels ? 4 : 2;
}

#ifdef UNET_X86_DISPATCH

namespace {
constexpr int64_t kXi = 16;                         // transformed positions of an F(2×2, 3×3) tile (4×4)
constexpr int64_t kPanelTiles = 16;                 // tiles per B panel: the register tile's columns
constexpr int64_t kBlockFloats = int64_t{1} << 15;  // a block's V + M: 128 KB, stays in L2 (2^14–2^17 measured alike)

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Distance in floats between the 16 positions' blocks of V and of M: their size plus one cache
// line when that is a multiple of 4 KB. The transforms touch all 16 positions of a tile group at
// once; 16 addresses 4 KB apart fall into one L1 set (12 ways on current Intel parts), and
// sizes such as 64 channels × 64 tiles are exactly that.
int64_t xi_pitch(int64_t floats) { return floats % 1024 == 0 ? floats + 16 : floats; }

struct Plan {
  int64_t m, positions;  // output tile m×m, (m + 2)² transformed positions
  int64_t c_in, c_out, h_out, w_out, th, tw, tiles;
  const float* src;  // batch × c_in × sh × sw; window (ty, tx) starts at row m·ty, column m·tx
  int64_t n, sh, sw;
  int64_t mr;                                              // rows of the level's register tile
  int64_t opanels, block, blocks, ochunk, ochunks, tasks;  // block: tiles per block, a multiple of 16
  // The weights as given (run's `weights`): w[o][c][3][3], or with `flipped` the forward's
  // w[c][o][3][3] of a data gradient, read as w[c][o][2-u][2-v] (winograd3x3_backward_data).
  bool flipped;
  const float* ua;
  const float* bias;
  bool relu;
  float* y;
};

// Blocks: whole 16-tile panels whose V and M fit kBlockFloats; then, when that leaves fewer than
// ~4 tasks per thread (the deep, small layers), output-channel chunks (each recomputes its
// block's V, which costs little next to the GEMM there). Depends on the shapes, the thread count
// and mr; no output's summation order depends on it.
void plan_tasks(Plan& q, int64_t mr) {
  q.mr = mr;
  q.opanels = ceil_div(q.c_out, mr);
  const int64_t per_tile = q.positions * (q.c_in + q.c_out);
  q.block = std::clamp<int64_t>(kBlockFloats / per_tile / kPanelTiles * kPanelTiles, kPanelTiles,
                                ceil_div(q.tiles, kPanelTiles) * kPanelTiles);
  q.blocks = ceil_div(q.tiles, q.block);
  const int64_t wanted = 4 * num_threads(), have = q.n * q.blocks;
  q.ochunks = std::clamp<int64_t>(ceil_div(wanted, have), 1, q.opanels);
  q.ochunk = ceil_div(q.opanels, q.ochunks);
  q.ochunks = ceil_div(q.opanels, q.ochunk);
  q.tasks = q.n * q.blocks * q.ochunks;
}

// The weight gradient (winograd3x3_weight_grad). Units: (image, rectangle of ≤ `block` tiles),
// the batch's units in order; slot s owns units [s·units/slots, (s+1)·units/slots) and sums them in
// that order into its partial dU (slots × 16 × c_out × c_in), which the caller adds in slot
// order. Chunks of output and input channels only spread the work and bound the packed panels.
// Every number here depends on the shapes only (never on the thread count or the level), so
// neither does any sum's order.
constexpr int64_t kGradChunkOut = 96;  // output channels per chunk at most (balanced chunks, multiples of 16)
constexpr int64_t kGradChunkIn = 128;  // input channels per chunk at most (multiples of the B panels' 16)
// Tiles per slot at least: a slot's partial dU (16·c_out·c_in floats) is written and read once,
// which cost more than the GEMM saved on the deep layers' few tiles with a slot per unit.
constexpr int64_t kGradMinSlotTiles = 256;
constexpr int64_t kGradBlockFloats = int64_t{1} << 17;  // a unit's packed Ŷ and V: 512 KB, in L2 with its dU chunk
constexpr int64_t kGradMaxPartialFloats = int64_t{1} << 23;  // slot partials: 32 MB at most
// Tasks per call at least, where the channels allow (chunks of 16): the decoder's 64-channel
// layers at 36²–38² (fewer than 512 tiles: one slot) were a single task, run by one thread while
// the other waited (2.5 ms of a ~90 ms step on 2 cores), and 2–3 tasks left one thread idle for a
// third of the call. A chunk only chooses which dU elements a task owns, never the order of any
// element's sum, so splitting further changes no result bit. (Shapes only, like everything here.)
constexpr int64_t kGradMinTasks = 8;

struct GradPlan {
  int64_t m, positions;  // output tiles m×m (2 or 4), (m + 2)² transformed positions
  int64_t c_in, c_out, h_out, w_out, th, tw, tiles, n;
  const float* x;  // batch × c_in × h × w
  const float* g;  // batch × c_out × h_out × w_out
  int64_t h, w, pad;
  // Units: rectangles of unit_rows tile rows × unit_w tiles (whole rows when a row holds fewer
  // than `block` tiles, else balanced parts of one row), per_image = row blocks × col_blocks.
  int64_t block, unit_rows, unit_w, col_blocks, per_image, units, slots, ochunk, ochunks, cchunk, cchunks;
  float* partial;  // slots × positions × c_out × c_in
};

// The vector code, once per level (kernels/cpu_simd.h).
UNET_SIMD_BEGIN_AVX2
namespace avx2 {
using Isa = simd::Avx2;
#include "kernels/gemm_microkernel.h"
#include "kernels/winograd3x3_cpu_simd.h"
}  // namespace avx2
UNET_SIMD_END

UNET_SIMD_BEGIN_AVX512
namespace avx512 {
using Isa = simd::Avx512;
#include "kernels/gemm_microkernel.h"
#include "kernels/winograd3x3_cpu_simd.h"
}  // namespace avx512
UNET_SIMD_END

}  // namespace

namespace {
void winograd3x3_run(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad, const float* x,
                     const float* weights, bool flipped, const float* bias, bool relu, float* y) {
  Plan q{};
  q.n = n, q.c_in = c_in, q.c_out = c_out, q.h_out = h + 2 * pad - 2, q.w_out = w + 2 * pad - 2, q.flipped = flipped;
  if (n == 0 || c_out == 0 || q.h_out <= 0 || q.w_out <= 0) return;
  q.m = winograd3x3_tile(q.h_out, q.w_out, c_out), q.positions = (q.m + 2) * (q.m + 2);
  q.th = ceil_div(q.h_out, q.m), q.tw = ceil_div(q.w_out, q.m), q.tiles = q.th * q.tw;
  q.bias = bias, q.relu = relu, q.y = y;
  // Windows read rows [-pad, m·th + 2 - pad) and columns [-pad, m·tw + 2 - pad) of x.
  const int64_t sh = q.m * q.th + 2, sw = q.m * q.tw + 2;
  if (pad == 0 && sh <= h && sw <= w) {
    q.src = x, q.sh = h, q.sw = w;
  } else {
    float* padded = thread_scratch<float, ScratchTag::kWinogradPadded>(static_cast<size_t>(n * c_in * sh * sw));
    copy_with_zero_border(x, n * c_in, h, w, pad, pad, sh, sw, padded);
    q.src = padded, q.sh = sh, q.sw = sw;
  }
  if (cpu_isa() == CpuIsa::Avx512)
    avx512::winograd::run(q, weights);
  else
    avx2::winograd::run(q, weights);
}
}  // namespace

void winograd3x3(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad, const float* x,
                 const float* weights, const float* bias, bool relu, float* y) {
  winograd3x3_run(n, c_in, h, w, c_out, pad, x, weights, false, bias, relu, y);
}

void winograd3x3_backward_data(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad,
                               const float* g, const float* weights, float* dx) {
  winograd3x3_run(n, c_out, h + 2 * pad - 2, w + 2 * pad - 2, c_in, 2 - pad, g, weights, true, nullptr, false, dx);
}

namespace {
// dw[o][c] = Gᵀ dU[o][c] G (dU: kRows² rows of `pairs` floats, ξ = kRows·i + j), for either tile:
// `kTimesG` maps one row of kRows values to its 3 values times G. kBlock pairs at a time with the
// arithmetic across the pairs (each ξ's row of dU is contiguous over them, so the loops vectorize;
// one pair at a time, kRows² strided loads per pair, it took ~6 % of the weight gradient's time),
// then each pair's 9 weights written out. kTimesG is a template argument, so the calls inline and
// the loops vectorize: passed as a function pointer it stayed one scalar call per row and pair
// (times_g2 and times_g4 were 2.5 % of the CPU step's samples, 2026-12-04). Every value sees the
// same operations in the same order as one pair at a time. Plain C++ compiled once: the same bits
// on every level.
template <int kRows, auto kTimesG>
void grad_filter_transform(const float* du, int64_t pairs, float* dw) {
  constexpr auto times_g = kTimesG;
  constexpr int64_t kBlock = 64;
  parallel_for(0, ceil_div(pairs, kBlock), 4, [&](int64_t b, int64_t e) {
    for (int64_t block = b; block < e; ++block) {
      const int64_t p0 = block * kBlock, count = std::min(kBlock, pairs - p0);
      float t[kRows][3][kBlock], o[9][kBlock];  // dU G, then Gᵀ (dU G)
      for (int64_t i = 0; i < kRows; ++i) {
        const float* r = du + kRows * i * pairs + p0;
        for (int64_t k = 0; k < count; ++k) {
          float row[kRows];
          for (int j = 0; j < kRows; ++j) row[j] = r[j * pairs + k];
          times_g(row, t[i][0][k], t[i][1][k], t[i][2][k]);
        }
      }
      for (int64_t v = 0; v < 3; ++v)
        for (int64_t k = 0; k < count; ++k) {
          float col[kRows];
          for (int i = 0; i < kRows; ++i) col[i] = t[i][v][k];
          times_g(col, o[v][k], o[3 + v][k], o[6 + v][k]);
        }
      float* out = dw + p0 * 9;
      for (int64_t k = 0; k < count; ++k)
        for (int64_t j = 0; j < 9; ++j) out[k * 9 + j] = o[j][k];
    }
  });
}

// F(2×2, 3×3): columns of G (1, ½, ½, 0), (0, ½, -½, 0), (0, ½, ½, 1): on small integers every
// step is exact.
void times_g2(const float (&r)[4], float& a, float& b, float& c) {
  const float plus = 0.5f * (r[1] + r[2]), minus = 0.5f * (r[1] - r[2]);
  a = r[0] + plus, b = minus, c = plus + r[3];
}

// F(4×4, 3×3), the adjoint of transform_weights4's G: columns (¼, -⅙, -⅙, 1/24, 1/24, 0),
// (0, -⅙, ⅙, 1/12, -1/12, 0), (0, -⅙, -⅙, ⅙, ⅙, 1).
void times_g4(const float (&r)[6], float& a, float& b, float& c) {
  const float p = r[1] + r[2], d = r[1] - r[2], s = r[3] + r[4], e = r[3] - r[4];
  a = 0.25f * r[0] - p * (1.0f / 6) + s * (1.0f / 24);
  b = e * (1.0f / 12) - d * (1.0f / 6);
  c = (s - p) * (1.0f / 6) + r[5];
}
}  // namespace

void winograd3x3_weight_grad(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad, const float* x,
                             const float* g, int64_t slots, float* dw) {
  GradPlan q{};
  q.n = n, q.c_in = c_in, q.c_out = c_out, q.h_out = h + 2 * pad - 2, q.w_out = w + 2 * pad - 2, q.g = g;
  const int64_t pairs = c_out * c_in;
  if (pairs == 0) return;
  if (n == 0 || q.h_out <= 0 || q.w_out <= 0) {
    std::fill(dw, dw + pairs * 9, 0.0f);
    return;
  }
  q.m = winograd3x3_weight_grad_tile(q.h_out, q.w_out), q.positions = (q.m + 2) * (q.m + 2);
  q.th = ceil_div(q.h_out, q.m), q.tw = ceil_div(q.w_out, q.m), q.tiles = q.th * q.tw;
  // The windows read rows [-pad, m·th + 2 - pad) and columns [-pad, m·tw + 2 - pad) of x.
  q.x = x, q.h = h, q.w = w, q.pad = pad;
  auto chunk = [](int64_t channels, int64_t most) { return ceil_div(ceil_div(channels, ceil_div(channels, most)), 16) * 16; };
  q.ochunk = chunk(c_out, kGradChunkOut), q.ochunks = ceil_div(c_out, q.ochunk);
  q.cchunk = chunk(c_in, kGradChunkIn), q.cchunks = ceil_div(c_in, q.cchunk);
  q.block = std::min(q.tiles, std::max<int64_t>(16, kGradBlockFloats / (q.positions * (q.ochunk + q.cchunk))));
  if (q.tw >= q.block) {
    q.col_blocks = ceil_div(q.tw, q.block), q.unit_w = ceil_div(q.tw, q.col_blocks), q.unit_rows = 1;
  } else {
    q.col_blocks = 1, q.unit_w = q.tw, q.unit_rows = q.block / q.tw;
  }
  q.per_image = ceil_div(q.th, q.unit_rows) * q.col_blocks, q.units = n * q.per_image;
  // (kGradMinSlotTiles counts F(2×2) tiles: scaled by the positions, an F(4×4) tile's GEMM work.)
  q.slots = std::clamp<int64_t>(std::min({slots, kGradMaxPartialFloats / (q.positions * pairs),
                                          n * q.tiles * q.positions / (kXi * kGradMinSlotTiles)}),
                                1, q.units);
  // Too few tasks: narrower channel chunks (after the units are fixed: the block above depends on
  // the chunks). Input channels first: a task packs Ŷ for its output chunk and V for its input
  // chunk, and V's transform costs ~4× Ŷ's, so repeating Ŷ across input chunks costs least.
  while (q.slots * q.ochunks * q.cchunks < kGradMinTasks) {
    if (q.cchunk > 16 && (q.cchunk >= q.ochunk || q.ochunk <= 16))
      q.cchunk = ceil_div(q.cchunk / 2, 16) * 16, q.cchunks = ceil_div(c_in, q.cchunk);
    else if (q.ochunk > 16)
      q.ochunk = ceil_div(q.ochunk / 2, 16) * 16, q.ochunks = ceil_div(c_out, q.ochunk);
    else
      break;
  }
  float* partial = thread_scratch<float, ScratchTag::kWinogradPartials>(static_cast<size_t>(q.slots * q.positions * pairs));
  q.partial = partial;
  if (cpu_isa() == CpuIsa::Avx512)
    avx512::winograd::run_grad(q);
  else
    avx2::winograd::run_grad(q);
  // dU = Σ_slots, added in slot order into slot 0's partial (contiguous: the loop vectorizes;
  // summed per channel pair with strided reads it took 13 % of the time at 64→64).
  if (q.slots > 1) add_slots_in_order(partial, q.slots, q.positions * pairs, partial);
  if (q.m == 4)
    grad_filter_transform<6, times_g4>(partial, pairs, dw);
  else
    grad_filter_transform<4, times_g2>(partial, pairs, dw);
}

#else

void winograd3x3(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, const float*, const float*, bool,
                 float*) {}
void winograd3x3_backward_data(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, const float*,
                               float*) {}
void winograd3x3_weight_grad(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, const float*, int64_t,
                             float*) {}

#endif

}  // namespace unet::cpu
