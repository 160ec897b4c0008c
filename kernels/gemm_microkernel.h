// kernels/gemm_microkernel.h — the register tile shared by the CPU GEMM engines (patch_gemm_cpu,
// winograd3x3_cpu): c[kMr][16] (=|+=) Σ_k a[k][kMr] · b[k][16] from packed panels, then bias and
// ReLU on the last pass. A body header (kernels/cpu_simd.h): included once per level, inside that
// level's namespace and compile region with `Isa` defined; it includes nothing.
//
// The tile is kMr rows (output channels) × 16 columns (pixels or tiles) on every level, so the B
// panels have one layout everywhere: AVX2 6 rows × 2 vectors (12 accumulators; per k 2 loads,
// 6 broadcasts, 12 FMAs), AVX-512 16 rows × 1 vector (16 accumulators; per k 1 load and 16 FMAs
// with their broadcasts folded in). Each c element is one FMA chain over k in order, started
// from zero, whatever kMr or the vector width: the levels give the same bits.

namespace gemm_tile {

constexpr int64_t kMr = Isa::kGemmRows;  // rows of the register tile (the A panels' width)
constexpr int64_t kNr = 16;              // columns of the register tile (the B panels' width)
using W = Isa::Wide;
constexpr int64_t kVecs = kNr / W::kLanes;  // vectors per tile row

// c[r][q] (=|+=) Σ_kk a[kk][r] · b[kk][q] for r < rows, q < cols; then bias and ReLU when last.
// a: kc × kMr floats, b: kc × 16 floats, 64-byte aligned. The accumulator loops are unrolled
// completely, so the accumulators live in registers (an array indexed in a loop would be kept in
// memory and stored on every iteration).
inline void micro_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t rows, int64_t cols,
                         bool accumulate, bool last, const float* bias, bool relu) {
  W::V acc[kMr][kVecs];
  UNET_SIMD_UNROLL
  for (int64_t r = 0; r < kMr; ++r) {
    UNET_SIMD_UNROLL
    for (int64_t h = 0; h < kVecs; ++h) acc[r][h] = W::zero();
  }
  for (int64_t kk = 0; kk < kc; ++kk, a += kMr, b += kNr) {
    W::V bv[kVecs];
    UNET_SIMD_UNROLL
    for (int64_t h = 0; h < kVecs; ++h) bv[h] = W::load(b + h * W::kLanes);
    UNET_SIMD_UNROLL
    for (int64_t r = 0; r < kMr; ++r) {
      const W::V av = W::broadcast(a + r);
      UNET_SIMD_UNROLL
      for (int64_t h = 0; h < kVecs; ++h) acc[r][h] = W::fma(av, bv[h], acc[r][h]);
    }
  }
  if (rows == kMr && cols == kNr) {
    const W::V zero = W::zero();
    UNET_SIMD_UNROLL
    for (int64_t r = 0; r < kMr; ++r) {
      float* row = c + r * ldc;
      const W::V add = W::set1(last && bias ? bias[r] : 0.0f);
      UNET_SIMD_UNROLL
      for (int64_t h = 0; h < kVecs; ++h) {
        W::V v = acc[r][h];
        if (accumulate) v = W::add(W::loadu(row + h * W::kLanes), v);
        if (last) {
          v = W::add(v, add);
          if (relu) v = W::max(zero, v);  // NaN propagates, as std::max(v, 0) does
        }
        W::storeu(row + h * W::kLanes, v);
      }
    }
    return;
  }
  // A partial tile: through a buffer, then vectors of the first `cols` lanes per row (the same
  // operations per element as above, but for the bias, added only when there is one).
  alignas(64) float tile[kMr][kNr];
  UNET_SIMD_UNROLL
  for (int64_t r = 0; r < kMr; ++r) {
    UNET_SIMD_UNROLL
    for (int64_t h = 0; h < kVecs; ++h) W::store(tile[r] + h * W::kLanes, acc[r][h]);
  }
  const W::V zero = W::zero();
  for (int64_t r = 0; r < rows; ++r) {
    float* row = c + r * ldc;
    for (int64_t h = 0; h < kVecs && h * W::kLanes < cols; ++h) {
      const int64_t n = cols - h * W::kLanes;
      W::V v = W::load(tile[r] + h * W::kLanes);
      if (accumulate) v = W::add(W::load_first(row + h * W::kLanes, n), v);
      if (last) {
        if (bias) v = W::add(v, W::set1(bias[r]));
        if (relu) v = W::max(zero, v);  // NaN propagates, as std::max(v, 0) does
      }
      W::store_first(row + h * W::kLanes, v, n);
    }
  }
}

}  // namespace gemm_tile
