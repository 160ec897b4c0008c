// kernels/implicit_gemm.cuh — the one tiled GEMM kernel of the convolutions and the matrix
// product: C[m×n] = Σ_k A(m,k)·B(k,n) for each blockIdx.z, where an "Op" says how to read A and
// B (from images, weights or plain matrices: implicit GEMM, no im2col buffer) and how to store
// each result (bias, ReLU, alpha/beta, un-shuffling fused into the store).
//
// Tiling: a 256-thread block owns a 64×64 tile of C, each thread a 4×4 register block (rows
// ty + 16·r, columns tx + 16·c, so neighbouring threads read neighbouring shared-memory words);
// K advances in slices of 16 staged in padded shared memory between two barriers.
// Op contract:
//   static constexpr bool kAKFast, kBKFast;   which index of A / B is contiguous in memory, so a
//                                             warp's tile loads read neighbouring addresses
//   int64_t m, n;                             the size of C
//   __device__ void k_range(int z, int64_t& begin, int64_t& end) const;   the K slice of split z
//   __device__ float a(int64_t i, int64_t k, int z) const;  b(int64_t k, int64_t j, int z) const;
//   __device__ void store(int64_t i, int64_t j, int z, float acc) const;  each (i, j, z) once
// Split-K (weight gradients: K = images × pixels is long, C is small) writes one partial C per
// split and sums the splits in a fixed order: deterministic, no atomics.
#pragma once

#include "kernels/cuda_compat.h"
#include "kernels/launch.h"

#include "core/tensor.h"

namespace unet::cuda::igemm {
namespace {  // internal linkage: each .cu instantiates its own kernels

constexpr int kTileM = 64, kTileN = 64, kTileK = 16;
constexpr int kThreads = 256;            // 16 × 16 threads, 4×4 outputs each
constexpr int64_t kTargetBlocks = 264;   // ~2 blocks per SM on an H100: enough to fill the GPU
constexpr int64_t kMinTermsPerSplit = 256;

template <class Op>
__global__ void __launch_bounds__(kThreads) tiled_kernel(Op op) {
  __shared__ float a_tile[kTileK][kTileM + 1];  // +1: no bank conflicts on the transposed store
  __shared__ float b_tile[kTileK][kTileN + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int z = blockIdx.z;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kTileM;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kTileN;
  int64_t k_begin = 0, k_end = 0;
  op.k_range(z, k_begin, k_end);
  float acc[4][4] = {};

  for (int64_t k0 = k_begin; k0 < k_end; k0 += kTileK) {
    for (int e = threadIdx.x; e < kTileM * kTileK; e += kThreads) {
      const int i = Op::kAKFast ? e / kTileK : e % kTileM;
      const int kk = Op::kAKFast ? e % kTileK : e / kTileM;
      const int64_t gi = row0 + i, gk = k0 + kk;
      a_tile[kk][i] = (gi < op.m && gk < k_end) ? op.a(gi, gk, z) : 0.0f;
    }
    for (int e = threadIdx.x; e < kTileK * kTileN; e += kThreads) {
      const int j = Op::kBKFast ? e / kTileK : e % kTileN;
      const int kk = Op::kBKFast ? e % kTileK : e / kTileN;
      const int64_t gj = col0 + j, gk = k0 + kk;
      b_tile[kk][j] = (gj < op.n && gk < k_end) ? op.b(gk, gj, z) : 0.0f;
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
    if (gi >= op.m) continue;
    for (int q = 0; q < 4; ++q) {
      const int64_t gj = col0 + tx + 16 * q;
      if (gj < op.n) op.store(gi, gj, z, acc[r][q]);
    }
  }
}

// out[e] = Σ_s partial[s][e], s in increasing order.
__global__ void sum_splits_kernel(const float* __restrict__ partial, int64_t splits, int64_t count,
                                  float* __restrict__ out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < count; e += stride) {
    float s = 0.0f;
    for (int64_t z = 0; z < splits; ++z) s += partial[z * count + e];
    out[e] = s;
  }
}

// Runs the tiled kernel over C[op.m × op.n] for z = 0 .. z_count-1.
template <class Op>
void run(const Op& op, int64_t z_count) {
  const dim3 grid(kern::ceil_div(op.n, kTileN), kern::ceil_div(op.m, kTileM), static_cast<unsigned>(z_count));
  kern::launch(tiled_kernel<Op>, grid, dim3(kThreads), 0, op);
}

// C[m×n] = Σ over k in [0, k_total) with K split so the grid has ~kTargetBlocks blocks (each
// split at least kMinTermsPerSplit long). make_op(out, chunk) returns the Op writing split z's
// partial to out + z·m·n and covering K range [z·chunk, min((z+1)·chunk, k_total)). The split
// count depends only on the shape, so the summation order is fixed.
template <class MakeOp>
void run_split_k(int64_t m, int64_t n, int64_t k_total, float* c, MakeOp make_op) {
  if (m == 0 || n == 0) return;
  const int64_t tiles = static_cast<int64_t>(kern::ceil_div(m, kTileM)) * kern::ceil_div(n, kTileN);
  const int64_t max_splits = k_total / kMinTermsPerSplit > 1 ? k_total / kMinTermsPerSplit : 1;
  int64_t splits = kern::ceil_div(kTargetBlocks, tiles);
  splits = splits < max_splits ? splits : max_splits;
  const int64_t chunk = k_total > 0 ? kern::ceil_div(k_total, splits) : 1;
  splits = k_total > 0 ? kern::ceil_div(k_total, chunk) : 1;  // no empty split
  if (splits == 1) {
    run(make_op(c, chunk), 1);
    return;
  }
  Tensor partial = Tensor::empty(Shape{splits, m, n}, DType::Float32, Device{DeviceType::CUDA, 0});
  run(make_op(partial.data<float>(), chunk), splits);
  const int64_t count = m * n, blocks = kern::ceil_div(count, kThreads);
  kern::launch(sum_splits_kernel, dim3(static_cast<unsigned>(blocks < 1024 ? blocks : 1024)), dim3(kThreads), 0,
               static_cast<const float*>(partial.data<float>()), splits, count, c);
}

}  // namespace
}  // namespace unet::cuda::igemm
