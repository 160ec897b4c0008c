// kernels/implicit_gemm.cuh — the one tiled GEMM kernel of the convolutions and the matrix
// product: C[m×n] = Σ_k A(m,k)·B(k,n) for each blockIdx.z, where an "Op" says how to read A and
// B (from images, weights or plain matrices: implicit GEMM, no im2col buffer) and how to store
// each result (bias, ReLU, alpha/beta, un-shuffling fused into the store).
//
// Tiling (the classic SGEMM structure; why each piece, in the order it matters):
//  * each thread owns an 8×8 register block of C: per K step it reads 8 + 8 operands from shared
//    memory (four 16-byte loads) for 64 FMAs. The first version's 4×4 blocks read 8 for 16, and
//    on the H200 ran the 3×3 convolutions at 8–14 % of the FP32 peak (docs/benchmarks.md).
//  * a 256-thread block owns a 128×128 tile of C, or 64×128 with 4×8 register blocks when C has
//    at most 64 rows: the U-Net's first level has 64 channels, and a 128-row tile would idle
//    half its threads there.
//  * K advances in slices of 8 through two shared-memory buffers: while the block multiplies
//    slice s out of one buffer, each thread has already issued its global loads of slice s + 1
//    into registers (their latency hides behind the 8 · 64 FMAs), then writes them into the other
//    buffer; one barrier per slice.
//  * a thread's rows are float4 groups, ty·4 + {0..3} and (for 8 rows) 64 + ty·4 + {0..3},
//    columns alike with tx, so its operands are aligned float4 loads, and the eight threads of a
//    quarter-warp read eight consecutive float4 of B (no bank conflicts) while A is a broadcast.
//    Rows of the shared tiles are padded by 4 floats: the transposed stores of a K-fast operand
//    (a warp writes 8 K values of 4 rows) then hit 32 different banks, and rows stay 16-byte
//    aligned.
// Op contract (indices are 32-bit: run() refuses m or n of 2^31 or more, and the launchers
// check their tensors' sizes the same way):
//   static constexpr bool kAKFast, kBKFast;   which index of A / B is contiguous in memory, so a
//                                             warp's tile loads read neighbouring addresses
//   int64_t m, n;                             the size of C
//   __device__ void k_range(int z, int& begin, int& end) const;   the K slice of split z
//   ARow a_row(int i, int z) const;  BCol b_col(int j, int z) const;  KPos k_pos(int k) const;
//   Src a_src(const ARow&, const KPos&) const;  (b_src alike)
//                        the address of A(i, k) (B(k, j)) and whether it is inside the tensor
//                        (outside the image the operand is 0 and the address is not read); the
//                        FP32 kernel loads it, the tensor-core kernel copies it with cp.async.
//                        A gather is split into the part fixed by the row of A (column of B),
//                        computed once per thread before the K loop (each thread loads the same
//                        rows of every slice), and the part that moves with k, decomposed once
//                        per k and shared by every load of that k (the weight gradients' A and B
//                        share theirs). The first GPU run's loaders redid two divisions by the
//                        image size or width for every element.
//   __device__ void store(int i, int j, int z, float acc) const;   each (i, j, z) once
// Split-K (kernels/split_k_plan.h: wherever C has too few tiles to fill the GPU — the weight
// gradients, whose K = images × pixels is long and C small, and the forward and data gradient of
// the deep levels) runs z = group · splits + split; each split stores its raw partial C
// (KSplit::partial), and sum_splits_kernel adds the splits in a fixed order, then hands the sum
// to the Op's epilogue (finish: bias, ReLU): deterministic, no atomics.
// Precision (core/precision.h): fp32 runs this file's SIMT kernel, the exact path; tf32 and bf16
// run the tensor-core kernel of kernels/implicit_gemm_tc.cuh on the same Ops and tilings.
#pragma once

#include "kernels/cuda_compat.h"
#include "kernels/launch.h"

#include "core/precision.h"
#include "core/tensor.h"
#include "kernels/split_k_plan.h"

#include <type_traits>
#include <utility>

namespace unet::cuda::igemm {
namespace {  // internal linkage: each .cu instantiates its own kernels

// Where an operand element lives: p is read only when ok (a bool, not a null test on a 64-bit
// pointer, which costs two compares per element in the gathers).
struct Src {
  const float* p;
  bool ok;
};

constexpr int kTileK = 8;
constexpr int kPad = 4;                  // shared-memory row padding (floats), keeps float4 alignment
constexpr int kThreads = 256;

// Which part of K block z reduces, and where its result goes, for an Op whose grid is z = group ·
// splits + split (run_split_k): the group is the image (or 0 for a weight gradient), the split a
// range of K. With one split the Op finishes its results in the store (its epilogue fused:
// op.finish(group, i, j, acc)); with more, each split stores its raw partial C at
// partial + z·count + i·n + j (count = m·n) and sum_splits_kernel finishes their sums.
struct KSplit {
  int splits = 1, chunk = 0, k = 0;
  int count = 0;
  float* partial = nullptr;
  __device__ __forceinline__ void range(int z, int& kb, int& ke) const {
    const int s = z % splits;
    kb = s * chunk;
    ke = k - kb < chunk ? k : kb + chunk;
  }
  __device__ __forceinline__ int group(int z) const { return z / splits; }
  // The store of a splittable Op: the partial of C(i, j) when split, else the finished result.
  template <class Op>
  __device__ __forceinline__ void store(const Op& op, int i, int j, int z, float acc) const {
    if (partial)
      partial[z * count + i * static_cast<int>(op.n) + j] = acc;
    else
      op.finish(group(z), i, j, acc);
  }
};

// A TileM × TileN tile of C per 256-thread block, RegM × RegN outputs per thread.
template <int TileM, int TileN, int RegM, int RegN>
struct Tiling {
  static constexpr int kTileM = TileM, kTileN = TileN, kRegM = RegM, kRegN = RegN;
  static constexpr int kThreadsM = TileM / RegM, kThreadsN = TileN / RegN;
  static constexpr int kALoads = TileM * kTileK / kThreads;  // operands each thread stages per slice
  static constexpr int kBLoads = TileN * kTileK / kThreads;
  static_assert(kThreadsM * kThreadsN == kThreads, "one register block per thread");
  static_assert(RegM % 4 == 0 && RegN % 4 == 0, "registers come in float4 groups");
  static_assert(kALoads * kThreads == TileM * kTileK && kBLoads * kThreads == TileN * kTileK);
};
// 2 blocks per SM (16 warps, to hide the gathers' latency) caps ptxas at 128 registers a thread:
// the 8×8 block's 64 accumulators fit (sm_90: spills only in the weight gradient, 16 bytes), and
// the 4×8 block fits with room to spare. 64×256 tiles with 8×8 blocks for the ≤ 64-row case
// spilled in the weight gradients (docs/kernels-conv.md).
using WideTiling = Tiling<128, 128, 8, 8>;
using NarrowTiling = Tiling<64, 128, 4, 8>;

// Row (or column) of register r of the thread at position t along a tile side: float4 groups,
// group g starting at g · threads · 4.
__device__ __forceinline__ int register_offset(int t, int r, int threads_along) {
  return (r / 4) * threads_along * 4 + t * 4 + (r & 3);
}

// The four floats of a 16-byte shared load into registers (by value: a register array has no
// 16-byte alignment to write a float4 through, and in the simulator it lives on the stack).
__device__ __forceinline__ void unpack(const float4 v, float* out) {
  out[0] = v.x;
  out[1] = v.y;
  out[2] = v.z;
  out[3] = v.w;
}

// Which element of a slice's Rows × kTileK operand tile load l of thread t gathers. The pattern
// does not depend on the slice, so a thread gathers the same rows (or the same k offsets) from
// every slice. K-fast: a warp reads 8 consecutive k of 4 rows; otherwise 32 consecutive rows.
template <bool KFast, int Rows>
struct Slot {
  static constexpr int kLoads = Rows * kTileK / kThreads;
  static __device__ __forceinline__ int row(int t, int l) {
    return KFast ? t / kTileK + l * (kThreads / kTileK) : t % Rows;
  }
  static __device__ __forceinline__ int k(int t, int l) { return KFast ? t % kTileK : t / Rows + l * (kThreads / Rows); }
};

// A or B from the kernel's point of view: the Op's cursor type and calls, and the tile shape.
template <class Op, bool IsA, class T>
struct Operand {
  static constexpr bool kKFast = IsA ? Op::kAKFast : Op::kBKFast;
  static constexpr int kRows = IsA ? T::kTileM : T::kTileN;
  using S = Slot<kKFast, kRows>;
  using Cursor = std::conditional_t<IsA, decltype(std::declval<const Op&>().a_row(0, 0)),
                                    decltype(std::declval<const Op&>().b_col(0, 0))>;
  static __device__ __forceinline__ Cursor cursor(const Op& op, int i, int z) {
    if constexpr (IsA) return op.a_row(i, z);
    else return op.b_col(i, z);
  }
  template <class KPos>
  static __device__ __forceinline__ Src src(const Op& op, const Cursor& c, const KPos& at) {
    if constexpr (IsA) return op.a_src(c, at);
    else return op.b_src(c, at);
  }
};

// Per-thread gather state of one operand: a cursor and a row check per load, set up once.
template <class Op, bool IsA, class T>
struct Gather {
  using O = Operand<Op, IsA, T>;
  typename O::Cursor cursor[O::S::kLoads];
  bool row_ok[O::S::kLoads];
  __device__ __forceinline__ Gather(const Op& op, int z, int row0, int rows) {
#pragma unroll
    for (int l = 0; l < O::S::kLoads; ++l) {
      const int r = row0 + O::S::row(static_cast<int>(threadIdx.x), l);
      row_ok[l] = r < rows;
      cursor[l] = O::cursor(op, row_ok[l] ? r : row0, z);
    }
  }
  // This thread's share of slice [k0, k0 + kTileK), 0 outside C or past k_end.
  __device__ __forceinline__ void load(const Op& op, int k0, int k_end, float (&v)[O::S::kLoads]) const {
#pragma unroll
    for (int l = 0; l < O::S::kLoads; ++l) {
      const int k = k0 + O::S::k(static_cast<int>(threadIdx.x), l);
      const auto at = op.k_pos(k);  // outside the condition, so equal k share one decomposition
      const Src e = O::src(op, cursor[l], at);
      v[l] = (row_ok[l] && k < k_end && e.ok) ? *e.p : 0.0f;
    }
  }
  template <int Stride>
  static __device__ __forceinline__ void store(const float (&v)[O::S::kLoads], float (*tile)[Stride]) {
#pragma unroll
    for (int l = 0; l < O::S::kLoads; ++l)
      tile[O::S::k(static_cast<int>(threadIdx.x), l)][O::S::row(static_cast<int>(threadIdx.x), l)] = v[l];
  }
};

template <class T, class Op>
__global__ void __launch_bounds__(kThreads, 2) tiled_kernel(Op op) {
  __shared__ __align__(16) float a_tile[2][kTileK][T::kTileM + kPad];
  __shared__ __align__(16) float b_tile[2][kTileK][T::kTileN + kPad];
  const int tx = static_cast<int>(threadIdx.x) % T::kThreadsN, ty = static_cast<int>(threadIdx.x) / T::kThreadsN;
  const int z = blockIdx.z;
  const int row0 = blockIdx.y * T::kTileM, col0 = blockIdx.x * T::kTileN;
  int k_begin = 0, k_end = 0;
  op.k_range(z, k_begin, k_end);
  const Gather<Op, true, T> a_gather(op, z, row0, static_cast<int>(op.m));
  const Gather<Op, false, T> b_gather(op, z, col0, static_cast<int>(op.n));
  float acc[T::kRegM][T::kRegN] = {};
  float a_next[T::kALoads], b_next[T::kBLoads];

  if (k_begin < k_end) {
    a_gather.load(op, k_begin, k_end, a_next);
    b_gather.load(op, k_begin, k_end, b_next);
    a_gather.store(a_next, a_tile[0]);
    b_gather.store(b_next, b_tile[0]);
  }
  __syncthreads();
  int buf = 0;
  for (int k0 = k_begin; k0 < k_end; k0 += kTileK) {
    const bool more = k0 + kTileK < k_end;
    if (more) {  // issued now, consumed after the multiply: their latency hides behind it
      a_gather.load(op, k0 + kTileK, k_end, a_next);
      b_gather.load(op, k0 + kTileK, k_end, b_next);
    }
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float av[T::kRegM], bv[T::kRegN];
#pragma unroll
      for (int g = 0; g < T::kRegM / 4; ++g)
        unpack(*reinterpret_cast<const float4*>(&a_tile[buf][kk][g * T::kThreadsM * 4 + ty * 4]), &av[4 * g]);
#pragma unroll
      for (int g = 0; g < T::kRegN / 4; ++g)
        unpack(*reinterpret_cast<const float4*>(&b_tile[buf][kk][g * T::kThreadsN * 4 + tx * 4]), &bv[4 * g]);
#pragma unroll
      for (int r = 0; r < T::kRegM; ++r)
#pragma unroll
        for (int c = 0; c < T::kRegN; ++c) acc[r][c] += av[r] * bv[c];
    }
    // The other buffer was last read in the previous slice, before the barrier that ended it.
    if (more) {
      a_gather.store(a_next, a_tile[buf ^ 1]);
      b_gather.store(b_next, b_tile[buf ^ 1]);
    }
    __syncthreads();
    buf ^= 1;
  }

#pragma unroll
  for (int r = 0; r < T::kRegM; ++r) {
    const int gi = row0 + register_offset(ty, r, T::kThreadsM);
    if (gi >= op.m) continue;
#pragma unroll
    for (int c = 0; c < T::kRegN; ++c) {
      const int gj = col0 + register_offset(tx, c, T::kThreadsN);
      if (gj < op.n) op.store(gi, gj, z, acc[r][c]);
    }
  }
}

// Σ_s partial[(g·splits + s)·m·n + e], s in increasing order, handed to the Op's epilogue:
// op.finish(g, e / n, e % n, sum) does what its store does to an unsplit result (bias, ReLU,
// shuffles, where the element goes).
template <class Op>
__global__ void sum_splits_kernel(const float* __restrict__ partial, int64_t groups, int64_t splits, Op op) {
  const int64_t count = op.m * op.n, stride = static_cast<int64_t>(gridDim.x) * blockDim.x, total = groups * count;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t g = i / count, e = i - g * count, row = e / op.n;
    const float* p = partial + g * splits * count + e;
    float s = 0.0f;
    for (int64_t z = 0; z < splits; ++z) s += p[z * count];
    op.finish(static_cast<int>(g), static_cast<int>(row), static_cast<int>(e - row * op.n), s);
  }
}

// The one place that picks a tiling for C's shape: f is called with a Tiling value.
template <class F>
void with_tiling(int64_t m, F&& f) {
  if (m <= NarrowTiling::kTileM)
    f(NarrowTiling{});
  else
    f(WideTiling{});
}

}  // namespace
}  // namespace unet::cuda::igemm

#include "kernels/implicit_gemm_tc.cuh"

namespace unet::cuda::igemm {
namespace {

// Runs the tiled kernel of `precision` over C[op.m × op.n] for z = 0 .. z_count-1.
// kTensorCores = false instantiates the FP32 kernel only (callers that never run tf32/bf16, like
// matmul.cu: each instantiation of the tensor-core kernel adds ~100 KB of device code to every
// program).
template <class Op, bool kTensorCores = true>
void run(const Op& op, int64_t z_count, Precision precision) {
  UNET_CHECK(kTensorCores || precision == Precision::FP32, ValueError, "tiled GEMM: precision ",
             precision_name(precision), " is not built for this operation (fp32 only)");
  UNET_CHECK(op.m < INT32_MAX && op.n < INT32_MAX, ValueError, "tiled GEMM: C of ", op.m, " × ", op.n,
             " exceeds the kernel's 32-bit indices (both sides must be below 2^31)");
  with_tiling(op.m, [&](auto tiling) {
    using T = decltype(tiling);
    const dim3 grid(kern::ceil_div(op.n, T::kTileN), kern::ceil_div(op.m, T::kTileM), static_cast<unsigned>(z_count));
    switch (precision) {
      case Precision::FP32: kern::launch(tiled_kernel<T, Op>, grid, dim3(kThreads), 0, op); break;
      case Precision::TF32:
        if constexpr (kTensorCores)
          kern::launch(tc_kernel<Precision::TF32, T, Op>, grid, dim3(kThreads), tc_shared_bytes<Precision::TF32, T, Op>(), op);
        break;
      case Precision::BF16:
        if constexpr (kTensorCores)
          kern::launch(tc_kernel<Precision::BF16, T, Op>, grid, dim3(kThreads), tc_shared_bytes<Precision::BF16, T, Op>(), op);
        break;
    }
  });
}

// The split plan of C[m × n] × groups with K = k_total for this precision's kernel (its tiling
// and K slice): kernels/split_k_plan.h.
inline SplitPlan split_plan(int64_t m, int64_t n, int64_t groups, int64_t k_total, Precision precision) {
  SplitPlan plan;
  with_tiling(m, [&](auto tiling) {
    using T = decltype(tiling);
    plan = plan_split_k(T::kTileM, T::kTileN, precision == Precision::FP32 ? kTileK : kTcTileK, m, n, groups, k_total);
  });
  return plan;
}

// Runs C[m×n] = Σ_k A·B for each of `groups` GEMMs (the images; 1 for a weight gradient) with
// K = k_total, K split as split_plan says. make_op(KSplit) returns the Op (grid z = group ·
// splits + split, KSplit::range and ::group decode it; its store is KSplit::store). With one
// split the Op finishes its results in the store; with more, the splits' partials go to scratch
// and sum_splits_kernel adds them in order and has the Op finish the sums.
template <class MakeOp>
void run_split_k(int64_t m, int64_t n, int64_t groups, int64_t k_total, MakeOp make_op, Precision precision) {
  if (m == 0 || n == 0 || groups == 0) return;
  const SplitPlan plan = split_plan(m, n, groups, k_total, precision);
  KSplit split{static_cast<int>(plan.splits), static_cast<int>(plan.chunk), static_cast<int>(k_total),
               static_cast<int>(m * n), nullptr};
  if (plan.splits == 1) {
    run(make_op(split), groups, precision);
    return;
  }
  Tensor partial = Tensor::empty(Shape{groups * plan.splits, m, n}, DType::Float32, Device{DeviceType::CUDA, 0});
  split.partial = partial.data<float>();
  const auto op = make_op(split);
  run(op, groups * plan.splits, precision);
  const int64_t total = groups * m * n, blocks = kern::ceil_div(total, kThreads);
  kern::launch(sum_splits_kernel<decltype(op)>, dim3(static_cast<unsigned>(blocks < 1024 ? blocks : 1024)),
               dim3(kThreads), 0, static_cast<const float*>(split.partial), groups, plan.splits, op);
}

}  // namespace
}  // namespace unet::cuda::igemm
