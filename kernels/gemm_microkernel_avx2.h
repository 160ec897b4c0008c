// kernels/gemm_microkernel_avx2.h — the 6×16 AVX2 + FMA register tile shared by the CPU GEMM
// engines (patch_gemm_cpu.cpp, winograd3x3_cpu.cpp): c[6][16] (=|+=) Σ_k a[k][6] · b[k][16] from
// packed panels, 12 accumulators, 2 loads + 6 broadcasts per 12 FMAs. Include only from files
// compiled with the x86 dispatch (cpu_dispatch.h): the function carries the AVX2 target attribute.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cpu_dispatch.h"

#ifdef UNET_X86_DISPATCH
namespace unet::cpu::gemm_tile {

constexpr int64_t kMr = 6;   // rows of the register tile
constexpr int64_t kNr = 16;  // columns (pixels) of the register tile (2 AVX vectors)

// c[r][q] (=|+=) Σ_kk a[kk][r] · b[kk][q] for r < rows, q < cols; then bias and ReLU when last.
// The 12 accumulators are named variables: as an array indexed again after the loop, GCC keeps
// them in memory and stores all 12 on every iteration.
UNET_AVX2_FMA inline void micro_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t rows,
                                int64_t cols, bool accumulate, bool last, const float* bias, bool relu) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t kk = 0; kk < kc; ++kk, a += kMr, b += kNr) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 av = _mm256_broadcast_ss(a);
    c00 = _mm256_fmadd_ps(av, b0, c00), c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10), c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20), c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30), c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(av, b0, c40), c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(av, b0, c50), c51 = _mm256_fmadd_ps(av, b1, c51);
  }
  alignas(32) float tile[kMr][kNr];
  _mm256_store_ps(tile[0], c00), _mm256_store_ps(tile[0] + 8, c01);
  _mm256_store_ps(tile[1], c10), _mm256_store_ps(tile[1] + 8, c11);
  _mm256_store_ps(tile[2], c20), _mm256_store_ps(tile[2] + 8, c21);
  _mm256_store_ps(tile[3], c30), _mm256_store_ps(tile[3] + 8, c31);
  _mm256_store_ps(tile[4], c40), _mm256_store_ps(tile[4] + 8, c41);
  _mm256_store_ps(tile[5], c50), _mm256_store_ps(tile[5] + 8, c51);
  if (rows == kMr && cols == kNr) {
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t r = 0; r < kMr; ++r) {
      float* row = c + r * ldc;
      const __m256 add = _mm256_set1_ps(last && bias ? bias[r] : 0.0f);
      for (int64_t h = 0; h < kNr; h += 8) {
        __m256 v = _mm256_load_ps(tile[r] + h);
        if (accumulate) v = _mm256_add_ps(_mm256_loadu_ps(row + h), v);
        if (last) {
          v = _mm256_add_ps(v, add);
          if (relu) v = _mm256_max_ps(zero, v);  // NaN propagates, as std::max(v, 0) does
        }
        _mm256_storeu_ps(row + h, v);
      }
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* row = c + r * ldc;
    for (int64_t t = 0; t < cols; ++t) {
      float v = tile[r][t];
      if (accumulate) v = row[t] + v;
      if (last) {
        if (bias) v += bias[r];
        if (relu) v = std::max(v, 0.0f);
      }
      row[t] = v;
    }
  }
}

}  // namespace unet::cpu::gemm_tile
#endif
