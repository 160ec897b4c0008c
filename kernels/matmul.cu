// kernels/matmul.cu — tiled shared-memory GEMM. Each 256-thread block computes a 64×64 tile of C,
// each thread a 4×4 register block (rows ty + 16·r, columns tx + 16·c, so neighbouring threads
// read neighbouring shared-memory words). K advances in slices of 16: the block stages
// A[64×16] and B[16×64] in shared memory, synchronises, accumulates, synchronises again.
// Transposed operands only change how the tiles are loaded.
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/matmul.h"

namespace unet::cuda {
namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16;
constexpr int kThreads = 256;  // 16 × 16

template <bool TransA, bool TransB>
__global__ void __launch_bounds__(kThreads)
gemm_kernel(GemmParams p, const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c) {
  __shared__ float a_tile[kTileK][kTileM + 1];  // +1: no bank conflicts on the transposed store
  __shared__ float b_tile[kTileK][kTileN + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kTileM;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kTileN;
  float acc[4][4] = {};

  for (int64_t k0 = 0; k0 < p.k; k0 += kTileK) {
    // 64×16 = 1024 elements per tile, 4 per thread.
    for (int e = threadIdx.x; e < kTileM * kTileK; e += kThreads) {
      const int i = TransA ? e % kTileM : e / kTileK;  // coalesced along the stored row
      const int kk = TransA ? e / kTileM : e % kTileK;
      const int64_t gi = row0 + i, gk = k0 + kk;
      float v = 0.0f;
      if (gi < p.m && gk < p.k) v = TransA ? a[gk * p.lda + gi] : a[gi * p.lda + gk];
      a_tile[kk][i] = v;
    }
    for (int e = threadIdx.x; e < kTileK * kTileN; e += kThreads) {
      const int j = TransB ? e / kTileK : e % kTileN;
      const int kk = TransB ? e % kTileK : e / kTileN;
      const int64_t gj = col0 + j, gk = k0 + kk;
      float v = 0.0f;
      if (gj < p.n && gk < p.k) v = TransB ? b[gj * p.ldb + gk] : b[gk * p.ldb + gj];
      b_tile[kk][j] = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float av[4], bv[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) av[r] = a_tile[kk][ty + 16 * r];
#pragma unroll
      for (int q = 0; q < 4; ++q) bv[q] = b_tile[kk][tx + 16 * q];
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int q = 0; q < 4; ++q) acc[r][q] += av[r] * bv[q];
    }
    __syncthreads();
  }

  for (int r = 0; r < 4; ++r) {
    const int64_t gi = row0 + ty + 16 * r;
    if (gi >= p.m) continue;
    for (int q = 0; q < 4; ++q) {
      const int64_t gj = col0 + tx + 16 * q;
      if (gj >= p.n) continue;
      float* out = c + gi * p.ldc + gj;
      // beta == 0: C is write-only (it may hold garbage or NaN).
      *out = p.beta == 0.0f ? p.alpha * acc[r][q] : p.alpha * acc[r][q] + p.beta * *out;
    }
  }
}

}  // namespace

void gemm(const GemmParams& p, const float* a, const float* b, float* c) {
  if (p.m == 0 || p.n == 0) return;
  const dim3 grid(kern::ceil_div(p.n, kTileN), kern::ceil_div(p.m, kTileM));
  const dim3 block(kThreads);
  if (p.trans_a)
    p.trans_b ? kern::launch(gemm_kernel<true, true>, grid, block, 0, p, a, b, c)
              : kern::launch(gemm_kernel<true, false>, grid, block, 0, p, a, b, c);
  else
    p.trans_b ? kern::launch(gemm_kernel<false, true>, grid, block, 0, p, a, b, c)
              : kern::launch(gemm_kernel<false, false>, grid, block, 0, p, a, b, c);
}

}  // namespace unet::cuda
