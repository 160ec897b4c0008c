// bench/cpu_arith_tiles.h — the second question of bench/cpu_arith: does a bf16 dot product's
// instruction rate survive inside a GEMM register tile, with its loads and broadcasts? Two 16×16
// tiles of C += A·B over K, the shape of the avx512 micro-kernel (kernels/gemm_microkernel.h: one
// zmm of B per k, 16 accumulators, each row's A broadcast into the multiply-add):
//   fp32: per k, one 16-float B row and 16 FMAs with A[k][row] broadcast;
//   bf16: per pair of k, one zmm of B holding the pair for 16 columns interleaved (column j's
//         lane = B[k][j], B[k+1][j]) and 16 VDPBF16PS with A's pair (A[k][row], A[k+1][row])
//         broadcast as one 32-bit value — half the instructions for the same FLOPs.
// Operands stay in L1 (K = 128: 8 KiB per fp32 panel). Each kernel returns C; callers check it
// exactly on small integers (exact in bf16 and in the FP32 sums) before timing.
#pragma once

#include <cstdint>
#include <vector>

#include "bench/cpu_info.h"
#include "core/precision.h"

namespace unet::bench {

constexpr int kTile = 16;
constexpr int kTileK = 128;

// Packed operands: a_rows[k][row] (fp32) and b_rows[k][col] (fp32), and their bf16 forms
// a_pairs[k/2][row] (two bf16 in 32 bits, k in the low half) and b_pairs[k/2][col] (the same).
struct TileOperands {
  std::vector<float> a_rows, b_rows;
  std::vector<uint32_t> a_pairs, b_pairs;
};

// A and B with entries 0, 1 or 2 (a fixed pattern), so every sum over K = 128 is an exact integer
// and every operand exact in bf16.
inline TileOperands make_tile_operands() {
  TileOperands t;
  t.a_rows.resize(kTileK * kTile);
  t.b_rows.resize(kTileK * kTile);
  for (int k = 0; k < kTileK; ++k)
    for (int i = 0; i < kTile; ++i) {
      t.a_rows[k * kTile + i] = static_cast<float>((k * 7 + i * 3) % 3);
      t.b_rows[k * kTile + i] = static_cast<float>((k * 5 + i) % 3);
    }
  const auto pairs = [](const std::vector<float>& rows) {
    std::vector<uint32_t> out(kTileK / 2 * kTile);
    for (int kp = 0; kp < kTileK / 2; ++kp)
      for (int i = 0; i < kTile; ++i)
        out[kp * kTile + i] = bf16_round_bits(rows[(2 * kp) * kTile + i]) |
                              static_cast<uint32_t>(bf16_round_bits(rows[(2 * kp + 1) * kTile + i])) << 16;
    return out;
  };
  t.a_pairs = pairs(t.a_rows);
  t.b_pairs = pairs(t.b_rows);
  return t;
}

// C[row][col] = sum_k A[k][row] B[k][col], in double (exact here).
inline std::vector<float> reference_tile(const TileOperands& t) {
  std::vector<float> c(kTile * kTile, 0.0f);
  for (int r = 0; r < kTile; ++r)
    for (int j = 0; j < kTile; ++j) {
      double s = 0;
      for (int k = 0; k < kTileK; ++k) s += double(t.a_rows[k * kTile + r]) * t.b_rows[k * kTile + j];
      c[r * kTile + j] = static_cast<float>(s);
    }
  return c;
}

#ifdef UNET_BENCH_X86
// `repeats` passes over K into the same accumulators (the timing loop); C = the last sums.
__attribute__((target("avx512f"))) inline std::vector<float> tile_fp32(const TileOperands& t, int64_t repeats) {
  __m512 acc[kTile];
  for (auto& a : acc) a = _mm512_setzero_ps();
  const float* a_rows = t.a_rows.data();
  const float* b_rows = t.b_rows.data();
  for (int64_t r = 0; r < repeats; ++r) {
    for (int k = 0; k < kTileK; ++k) {
      const __m512 b = _mm512_loadu_ps(b_rows + k * kTile);
#pragma GCC unroll 16
      for (int i = 0; i < kTile; ++i) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a_rows[k * kTile + i]), b, acc[i]);
    }
    asm volatile("" : "+r"(a_rows), "+r"(b_rows));  // a fresh pass each time: nothing hoisted
  }
  std::vector<float> c(kTile * kTile);
  for (int i = 0; i < kTile; ++i) _mm512_storeu_ps(c.data() + i * kTile, acc[i]);
  return c;
}

__attribute__((target("avx512f,avx512bf16"))) inline std::vector<float> tile_bf16(const TileOperands& t, int64_t repeats) {
  __m512 acc[kTile];
  for (auto& a : acc) a = _mm512_setzero_ps();
  const uint32_t* a_pairs = t.a_pairs.data();
  const uint32_t* b_pairs = t.b_pairs.data();
  for (int64_t r = 0; r < repeats; ++r) {
    for (int kp = 0; kp < kTileK / 2; ++kp) {
      const __m512i b = _mm512_loadu_si512(b_pairs + kp * kTile);
#pragma GCC unroll 16
      for (int i = 0; i < kTile; ++i)
        acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)_mm512_set1_epi32(static_cast<int>(a_pairs[kp * kTile + i])), (__m512bh)b);
    }
    asm volatile("" : "+r"(a_pairs), "+r"(b_pairs));
  }
  std::vector<float> c(kTile * kTile);
  for (int i = 0; i < kTile; ++i) _mm512_storeu_ps(c.data() + i * kTile, acc[i]);
  return c;
}
#endif

}  // namespace unet::bench
