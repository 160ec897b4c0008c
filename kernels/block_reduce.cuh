// kernels/block_reduce.cuh — deterministic sums across a warp and a block: shuffles inside each
// warp, then warp 0 adds the per-warp totals. The order of additions depends only on the block
// size, so the same data gives the same bits on every run (no atomics).
#pragma once

#include "kernels/cuda_compat.h"

namespace unet::cuda {
namespace {  // internal linkage: each .cu gets its own copy of the shared buffer

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sum of one value per thread over a block of Threads threads (a multiple of 32, at most 1024);
// the result is valid in thread 0. Every thread of the block must call it. It may be called
// several times in a row: the leading barrier keeps a call from overwriting totals that the
// previous call is still reading.
template <int Threads>
__device__ __forceinline__ float block_sum(float v) {
  static_assert(Threads % 32 == 0 && Threads <= 1024, "block_sum: Threads must be a multiple of 32, <= 1024");
  __shared__ float warp_totals[Threads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) warp_totals[warp] = v;
  __syncthreads();
  v = threadIdx.x < Threads / 32 ? warp_totals[threadIdx.x] : 0.0f;
  if (warp == 0) v = warp_sum(v);
  return v;
}

}  // namespace
}  // namespace unet::cuda
