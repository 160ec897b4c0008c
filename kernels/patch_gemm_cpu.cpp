// kernels/patch_gemm_cpu.cpp — see patch_gemm_cpu.h.
//
// Blocking (BLIS-style, sized for a 32 KB L1 and 512 KB L2 per core):
// - A (M × K) is packed once per call into panels of kMr rows, ap[panel][k][kMr] (zero rows past
//   M; kMr = the register tile's rows on the level in use: 6 on AVX2, 16 on AVX-512), so the
//   slice a micro-kernel reads for k in [pc, pc + kc) is contiguous.
// - A task owns an (image, row chunk of mc rows, pixel chunk of nc pixels) block of the output.
//   It walks K in slices of kKc; per slice and 16-pixel panel it gathers the panel's patch values
//   bp[kk][16] (16 KB at most, stays in L1), then runs the kMr×16 micro-kernel down the row chunk,
//   whose A slice (mc × kKc) stays in L2. The first slice overwrites the output tile, later ones
//   add to it, the last applies bias and ReLU: one fixed summation order per output element.
// - Sources are read only inside: when some tap would read outside (same padding, the data
//   gradient's "full" convolution), the call first copies the source with a zero border.
//   Gathering a panel is then two vector loads per tap for a panel in one output row, two
//   gathers with per-pixel offsets for a panel spanning rows. Per packed value the micro-kernel
//   does mc/kMr × 16/lanes FMAs; a pixel chunk packs each value once per row chunk, and a call has a
//   single row chunk unless M > kMaxRowChunk.
// - The weight gradient (patch_gemm_weight_grad) sums over pixels: per slot of pixels and chunk
//   of 16-tap panels, A = the gradient rows packed [pixel][kMr] and B = a 16-tap panel transposed
//   8×8 in registers ([pixel][16]); partials per slot, summed in slot order.
// - The vector code lives in patch_gemm_cpu_simd.h, compiled once per level (kernels/cpu_simd.h);
//   every output's summation order is the same on every level, so are the bits.
#include "kernels/patch_gemm_cpu.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/cpu_scratch.h"
#include "kernels/cpu_slots.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_zero_border.h"

namespace unet::cpu {

namespace {
EngineSwitch engine_switch;
}  // namespace

void set_patch_gemm_enabled(bool enabled) { engine_switch.set(enabled); }
bool patch_gemm_available() { return engine_switch.available(); }

#ifdef UNET_X86_DISPATCH

namespace {
constexpr int64_t kPanel = 16;          // pixels (taps) per B panel: the register tile's columns
constexpr int64_t kKc = 256;            // K slice: B panel 16 KB (L1), A slice mc × 1 KB (L2)
constexpr int64_t kMaxRowChunk = 192;   // rows per task: A slice ≤ 192 KB (a multiple of 6 and 16)
constexpr int64_t kTileBudget = 49152;  // output floats per task (192 KB), so the tile stays in L2
constexpr int64_t kMaxPixelChunk = 384;
constexpr int64_t kPc = 256;  // weight gradient: pixels per slice: B panel 16 KB (L1), A slice rows × 1 KB (L2)
constexpr int64_t kMaxPartialFloats = int64_t{1} << 23;  // slot partials: 32 MB at most

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Plan {
  PatchGemm p;
  int64_t kdim, pixels, mc, mchunks, nc, pchunks;
  const float* ap;                     // packed A
  const int64_t* tap_start;            // per k: c·src_h·src_w + du·src_w + dv (its value at pixel (0, 0))
};

// Row chunks: all rows in one chunk when their A slice fits, so B is gathered once; pixel chunks:
// about 8 tasks per thread for balance, whole panels, the tile within kTileBudget. Chunks change
// who computes an output, never its summation order.
void plan_chunks(Plan& q, int64_t panels, int64_t mr) {
  q.mc = std::min(panels, kMaxRowChunk / mr) * mr;
  q.mchunks = ceil_div(q.p.rows, q.mc);
  const int64_t wanted = ceil_div(8 * num_threads(), q.p.batch * q.mchunks);
  const int64_t cap = std::max<int64_t>(kPanel, kTileBudget / q.mc / kPanel * kPanel);
  q.nc = std::clamp<int64_t>(ceil_div(ceil_div(q.pixels, wanted), kPanel) * kPanel, kPanel,
                             std::min(cap, kMaxPixelChunk));
  q.pchunks = ceil_div(q.pixels, q.nc);
}

struct GradPlan {
  PatchGemmWeightGrad p;
  int64_t kdim, pixels, total, panels, kpanels, slots, per_chunk, kchunks;
  const int64_t* tap_offset;
  const int32_t *tap_du, *tap_dv;
  float* partial;  // slots × rows × kdim
};

// The vector code, once per level (kernels/cpu_simd.h).
UNET_SIMD_BEGIN_AVX2
namespace avx2 {
using Isa = simd::Avx2;
#include "kernels/gemm_microkernel.h"
#include "kernels/patch_gemm_cpu_simd.h"
}  // namespace avx2
UNET_SIMD_END

UNET_SIMD_BEGIN_AVX512
namespace avx512 {
using Isa = simd::Avx512;
#include "kernels/gemm_microkernel.h"
#include "kernels/patch_gemm_cpu_simd.h"
}  // namespace avx512
UNET_SIMD_END

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
  q.tap_start = taps.start.data();
  if (cpu_isa() == CpuIsa::Avx512)
    avx512::patch::run(q);
  else
    avx2::patch::run(q);
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
  q.kpanels = ceil_div(q.kdim, kPanel);
  // Slots depend on the shapes only (never on the thread count or the level): they fix the
  // summation order.
  q.slots = std::clamp<int64_t>(std::min(p.slots, kMaxPartialFloats / count), 1, ceil_div(q.total, kPc));
  // Tap chunks only spread the work: about 4 tasks per thread.
  q.kchunks = std::clamp<int64_t>(ceil_div(4 * num_threads(), q.slots), 1, q.kpanels);
  q.per_chunk = ceil_div(q.kpanels, q.kchunks);
  q.kchunks = ceil_div(q.kpanels, q.per_chunk);
  const Taps taps = make_taps(p.channels, p.src_h, p.src_w, p.k, p.pad, false);
  q.tap_offset = taps.offset.data(), q.tap_du = taps.du.data(), q.tap_dv = taps.dv.data();
  float* partial = q.slots > 1 ? thread_scratch<float, ScratchTag::kPatchPartials>(static_cast<size_t>(q.slots * count)) : p.out;
  q.partial = partial;
  if (cpu_isa() == CpuIsa::Avx512)
    avx512::patch::run_grad(q);
  else
    avx2::patch::run_grad(q);
  if (q.slots > 1) add_slots_in_order(partial, q.slots, count, p.out);
}

#else

void patch_gemm(const PatchGemm&) {}
void patch_gemm_weight_grad(const PatchGemmWeightGrad&) {}

#endif

}  // namespace unet::cpu
