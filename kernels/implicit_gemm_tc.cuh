// kernels/implicit_gemm_tc.cuh — the tensor-core variant of the tiled GEMM kernel of
// kernels/implicit_gemm.cuh (same Ops, same tilings of C, same split-K driver), for the TF32
// and BF16 precisions (core/precision.h). Included by implicit_gemm.cuh only.
//
// Structure (why each piece):
//  * K advances in slices of 32 through a 3-stage ring of shared-memory buffers filled with
//    cp.async (4-byte copies, zero-filled outside C or the image): while the block multiplies
//    slice s, the copies of slices s + 1 and s + 2 are in flight. One cp.async.wait_group and one
//    barrier per slice. The gathers are the Ops' (the same cursors and K positions as the FP32
//    kernel), so no im2col buffer exists in global memory.
//  * Shared memory holds the FP32 values as gathered; the operands are rounded when a warp loads
//    its fragments (cvt.rna.tf32.f32, or cvt.rn.bf16x2.f32 on pairs): activations stay FP32 in
//    global memory (storing them as BF16 would halve the gathers' traffic; not done).
//  * A tile is stored K-contiguous ([row][k]) when its operand is K-fast in global memory (the
//    weights of the forward, both operands of the weight gradient), row-contiguous ([k][row])
//    otherwise (the image patches), so the copies of a warp stay coalesced and conflict-free.
//    TF32 fragments of a [row][k] tile come with ldmatrix.x4 (32-bit values are pairs of b16,
//    and the .tf32 fragment is exactly ldmatrix's non-transposed pattern); [k][row] tiles, and
//    the BF16 pairs read from FP32 shared memory, are plain 32- and 64-bit shared loads.
//    Row paddings keep both the copies and the fragment loads free of bank conflicts.
//  * 8 warps in a 2 × 4 grid; a warp owns 64 × 32 of a 128 × 128 tile (32 × 32 of a 64 × 128
//    one): 4 × 4 (2 × 4) mma tiles of 16 × 8, FP32 accumulators in registers.
#pragma once

#include "core/precision.h"
#include "kernels/tensor_core.cuh"

namespace unet::cuda::igemm {
namespace {

constexpr int kTcTileK = 32;
constexpr int kTcStages = 3;

// Precision-dependent constants: the mma's K, and the row paddings (in floats) that keep the
// fragment loads conflict-free (K-contiguous tiles: ldmatrix wants an odd number of 16-byte
// chunks per row, the BF16 64-bit loads want rows 8 words apart; row-contiguous tiles: the
// per-lane 32-bit loads want rows 8 (TF32) or 4 (BF16) banks apart). Tight: both operands are
// K-contiguous (the weight gradients); BF16 then pads by 4 like TF32, accepting 2-way conflicts
// on its 64-bit fragment loads, so three stages of two 128-row tiles still fit two blocks per SM
// (by 8: 123 KB a block, one per SM).
template <Precision P, bool Tight>
struct TcMath {
  static_assert(P == Precision::TF32 || P == Precision::BF16, "the tensor-core kernel runs tf32 or bf16");
  static constexpr int kStepK = P == Precision::TF32 ? 8 : 16;
  static constexpr int kPadK = P == Precision::TF32 || Tight ? 4 : 8;
  static constexpr int kPadRow = P == Precision::TF32 ? 8 : 4;
};

// Shared-memory layout of one operand's tile in one stage.
template <Precision P, bool KFast, int Rows, bool Tight>
struct TcTile {
  static constexpr int kStride = KFast ? kTcTileK + TcMath<P, Tight>::kPadK : Rows + TcMath<P, Tight>::kPadRow;
  static constexpr int kFloats = KFast ? Rows * kStride : kTcTileK * kStride;
  static __device__ __forceinline__ int at(int row, int k) { return KFast ? row * kStride + k : k * kStride + row; }
};

// Per-thread gather of one operand into a stage: R / 32 rows (cursors, fixed for the whole K
// loop) × 4 K offsets (positions, decomposed once per slice). K-fast: a warp copies 8
// consecutive k of 4 rows per instruction; otherwise 32 consecutive rows of one k.
template <class Op, bool IsA, class T, Precision P>
struct TcGather {
  using O = Operand<Op, IsA, T>;
  static constexpr int kRowsPer = O::kRows / 32;
  static constexpr int kKPer = 4;
  using Tile = TcTile<P, O::kKFast, O::kRows, Op::kAKFast && Op::kBKFast>;
  typename O::Cursor cursor[kRowsPer];
  bool row_ok[kRowsPer];

  static __device__ __forceinline__ int lane() { return static_cast<int>(threadIdx.x) % 32; }
  static __device__ __forceinline__ int warp() { return static_cast<int>(threadIdx.x) / 32; }
  static __device__ __forceinline__ int row_of(int i) {
    return O::kKFast ? lane() / 8 + 4 * warp() + 32 * i : lane() + 32 * i;
  }
  static __device__ __forceinline__ int k_of(int j) { return O::kKFast ? lane() % 8 + 8 * j : warp() + 8 * j; }

  __device__ __forceinline__ TcGather(const Op& op, int z, int row0, int rows) {
#pragma unroll
    for (int i = 0; i < kRowsPer; ++i) {
      const int r = row0 + row_of(i);
      row_ok[i] = r < rows;
      cursor[i] = O::cursor(op, row_ok[i] ? r : row0, z);
    }
  }
  // Issues this thread's copies of slice [k0, k0 + 32) into `tile` (one stage).
  __device__ __forceinline__ void load(const Op& op, int k0, int k_end, float* tile) const {
#pragma unroll
    for (int j = 0; j < kKPer; ++j) {
      const int k = k0 + k_of(j);
      const auto at = op.k_pos(k);
      const bool k_ok = k < k_end;
#pragma unroll
      for (int i = 0; i < kRowsPer; ++i) {
        const Src e = O::src(op, cursor[i], at);
        tc::cp_async<4>(&tile[Tile::at(row_of(i), k_of(j))], e.p, row_ok[i] && k_ok && e.ok);
      }
    }
  }
};

// The fragments of one k step (kStepK) for a warp: A of its MI m-tiles, B of its NI n-tiles.
template <Precision P, bool KFast, int Rows, bool Tight>
struct TcFragments {
  using Tile = TcTile<P, KFast, Rows, Tight>;
  static __device__ __forceinline__ int group() { return static_cast<int>(threadIdx.x) % 32 / 4; }
  static __device__ __forceinline__ int t4() { return static_cast<int>(threadIdx.x) % 4; }

  // A fragment of the 16 rows from r0, k from k0.
  static __device__ __forceinline__ void load_a(const float* tile, int r0, int k0, uint32_t (&a)[4]) {
    const int g = group(), t = t4(), lane = static_cast<int>(threadIdx.x) % 32;
    if constexpr (P == Precision::TF32) {
      if constexpr (KFast) {
        tc::ldmatrix<4>(a, &tile[Tile::at(r0 + lane % 8 + 8 * (lane / 8 % 2), k0 + 4 * (lane / 16))]);
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = tc::tf32_bits(__uint_as_float(a[i]));
      } else {
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = tc::tf32_bits(tile[Tile::at(r0 + g + 8 * (i % 2), k0 + t + 4 * (i / 2))]);
      }
    } else {
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int row = r0 + g + 8 * (r % 2), k = k0 + 2 * t + 8 * (r / 2);
        a[r] = pair(tile, row, k);
      }
    }
  }
  // B fragments of two n-tiles (16 columns from c0), k from k0: b[0] for c0, b[1] for c0 + 8.
  static __device__ __forceinline__ void load_b2(const float* tile, int c0, int k0, uint32_t (&b)[2][2]) {
    const int g = group(), t = t4(), lane = static_cast<int>(threadIdx.x) % 32;
    if constexpr (P == Precision::TF32) {
      if constexpr (KFast) {
        uint32_t r[4];
        tc::ldmatrix<4>(r, &tile[Tile::at(c0 + lane % 8 + 8 * (lane / 16), k0 + 4 * (lane / 8 % 2))]);
        b[0][0] = tc::tf32_bits(__uint_as_float(r[0]));
        b[0][1] = tc::tf32_bits(__uint_as_float(r[1]));
        b[1][0] = tc::tf32_bits(__uint_as_float(r[2]));
        b[1][1] = tc::tf32_bits(__uint_as_float(r[3]));
      } else {
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int i = 0; i < 2; ++i) b[h][i] = tc::tf32_bits(tile[Tile::at(c0 + 8 * h + g, k0 + t + 4 * i)]);
      }
    } else {
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int r = 0; r < 2; ++r) b[h][r] = pair(tile, c0 + 8 * h + g, k0 + 2 * t + 8 * r);
    }
  }
  // BF16 pair (row, k), (row, k + 1), the first in the low half.
  static __device__ __forceinline__ uint32_t pair(const float* tile, int row, int k) {
    if constexpr (KFast) {
      const float2 v = *reinterpret_cast<const float2*>(&tile[Tile::at(row, k)]);
      return tc::bf16x2_bits(v.x, v.y);
    } else {
      return tc::bf16x2_bits(tile[Tile::at(row, k)], tile[Tile::at(row, k + 1)]);
    }
  }
};

template <Precision P>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  if constexpr (P == Precision::TF32) tc::mma_tf32(d, a, b, d);
  else tc::mma_bf16(d, a, b, d);
}

// Bytes of dynamic shared memory the kernel needs.
template <Precision P, class T, class Op>
constexpr size_t tc_shared_bytes() {
  constexpr bool kTight = Op::kAKFast && Op::kBKFast;
  return sizeof(float) * kTcStages *
         (TcTile<P, Op::kAKFast, T::kTileM, kTight>::kFloats + TcTile<P, Op::kBKFast, T::kTileN, kTight>::kFloats);
}

template <Precision P, class T, class Op>
__global__ void __launch_bounds__(kThreads, 2) tc_kernel(Op op) {
  using AG = TcGather<Op, true, T, P>;
  using BG = TcGather<Op, false, T, P>;
  using AF = TcFragments<P, Op::kAKFast, T::kTileM, Op::kAKFast && Op::kBKFast>;
  using BF = TcFragments<P, Op::kBKFast, T::kTileN, Op::kAKFast && Op::kBKFast>;
  constexpr int kWarpsM = 2, kWarpsN = 4;
  constexpr int kWarpM = T::kTileM / kWarpsM, kWarpN = T::kTileN / kWarpsN;
  constexpr int kMI = kWarpM / 16, kNI = kWarpN / 8;
  static_assert(kNI % 2 == 0, "B fragments come in pairs of n-tiles");
  constexpr int kStepK = TcMath<P, false>::kStepK;
  constexpr int kAFloats = AG::Tile::kFloats, kStageFloats = kAFloats + BG::Tile::kFloats;

  UNET_DYNAMIC_SHARED(float, smem);
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int wm0 = (warp / kWarpsN) * kWarpM, wn0 = (warp % kWarpsN) * kWarpN;
  const int z = blockIdx.z;
  const int row0 = blockIdx.y * T::kTileM, col0 = blockIdx.x * T::kTileN;
  int k_begin = 0, k_end = 0;
  op.k_range(z, k_begin, k_end);
  const AG a_gather(op, z, row0, static_cast<int>(op.m));
  const BG b_gather(op, z, col0, static_cast<int>(op.n));
  const int k_tiles = k_end > k_begin ? (k_end - k_begin + kTcTileK - 1) / kTcTileK : 0;

  float acc[kMI][kNI][4] = {};
  const auto load_stage = [&](int tile_index) {
    float* stage = smem + (tile_index % kTcStages) * kStageFloats;
    const int k0 = k_begin + tile_index * kTcTileK;
    a_gather.load(op, k0, k_end, stage);
    b_gather.load(op, k0, k_end, stage + kAFloats);
  };
#pragma unroll
  for (int s = 0; s < kTcStages - 1; ++s) {
    if (s < k_tiles) load_stage(s);
    tc::cp_async_commit();
  }
  for (int kt = 0; kt < k_tiles; ++kt) {
    tc::cp_async_wait<kTcStages - 2>();  // this thread's copies of slice kt have landed...
    __syncthreads();                     // ...and everyone's; and slice kt - 1 is read by all
    if (kt + kTcStages - 1 < k_tiles) load_stage(kt + kTcStages - 1);  // into slice kt - 1's buffer
    tc::cp_async_commit();  // an empty group at the end keeps the count of groups uniform
    const float* a_tile = smem + (kt % kTcStages) * kStageFloats;
    const float* b_tile = a_tile + kAFloats;
#pragma unroll
    for (int ks = 0; ks < kTcTileK; ks += kStepK) {
      // All B fragments of the step, then one A fragment at a time: 4 registers of A live
      // instead of 4·kMI (the 128-register budget of 2 blocks per SM is tight).
      uint32_t b[kNI][2];
#pragma unroll
      for (int ni = 0; ni < kNI; ni += 2) {
        uint32_t two[2][2];
        BF::load_b2(b_tile, wn0 + 8 * ni, ks, two);
        b[ni][0] = two[0][0];
        b[ni][1] = two[0][1];
        b[ni + 1][0] = two[1][0];
        b[ni + 1][1] = two[1][1];
      }
#pragma unroll
      for (int mi = 0; mi < kMI; ++mi) {
        uint32_t a[4];
        AF::load_a(a_tile, wm0 + 16 * mi, ks, a);
#pragma unroll
        for (int ni = 0; ni < kNI; ++ni) mma<P>(acc[mi][ni], a, b[ni]);
      }
    }
  }
  tc::cp_async_wait_all();  // nothing may stay in flight into a buffer another block gets

  const int g = static_cast<int>(threadIdx.x) % 32 / 4, t = static_cast<int>(threadIdx.x) % 4;
#pragma unroll
  for (int mi = 0; mi < kMI; ++mi)
#pragma unroll
    for (int ni = 0; ni < kNI; ++ni)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int gi = row0 + wm0 + 16 * mi + g + 8 * (r / 2), gj = col0 + wn0 + 8 * ni + 2 * t + r % 2;
        if (gi < op.m && gj < op.n) op.store(gi, gj, z, acc[mi][ni][r]);
      }
}

}  // namespace
}  // namespace unet::cuda::igemm
