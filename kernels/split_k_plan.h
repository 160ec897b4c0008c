// kernels/split_k_plan.h — into how many parts the tiled GEMM of kernels/implicit_gemm.cuh splits
// its reduction (K). Host code, shared by every pass that splits (the forward and data gradient
// of convolutions and up-convolutions, the weight gradients) and by the tests; its Python twin is
// bench/time_model.py's split_plan, so the static predictions are of the splits the code makes.
//
// Why split: a pass whose C has few tiles (the U-Net's deep levels: 1024 channels of 28² pixels
// are 56 tiles of 128×128) gives fewer blocks than the GPU has SMs, each running a long K loop
// with one block per SM. Splitting K into s parts gives s times the blocks, each 1/s of the loop;
// the parts' partial C are summed in a fixed order afterwards (deterministic, no atomics).
//
// The count is the s that minimises a cost in "slice-times" (one block running one K slice),
// the static model's view of the GPU (docs/benchmarks.md, "Static predictions"):
//   * blocks = tiles · groups · s, spread over kPlanSMs SMs: the busiest runs b = ⌈blocks / SMs⌉;
//   * each block runs ⌈chunk / k_slice⌉ slices plus one (the pipeline's fill and the epilogue);
//   * an SM holding a single block issues at half the rate (8 warps cannot hide the loop's
//     latencies; two resident blocks, 16 warps, can);
//   * a split costs one more launch (kSplitLaunchSlices) and the partials' DRAM traffic,
//     (s + 1)·m·n·groups floats at kFloatsPerSlice per slice-time.
// Ties go to fewer splits. The machine is fixed (132 SMs, 2 blocks each: an H100/H200), so the
// count — and with it the summation order, the bits — depends on the shape alone, on any card.
// Limits: at least kMinTermsPerSplit terms per split, at most kPlanSMs·kPlanBlocksPerSM splits,
// the grid's z (groups · s) within 65535, and the partials within kMaxPartialFloats (64 MiB:
// scratch that never moves the peak memory much; large passes gain next to nothing by splitting,
// only a rounding of their many waves).
#pragma once

#include <cstdint>

namespace unet::cuda::igemm {

inline constexpr int64_t kPlanSMs = 132;
inline constexpr int64_t kPlanBlocksPerSM = 2;
inline constexpr int64_t kMinTermsPerSplit = 256;
inline constexpr int64_t kSplitLaunchSlices = 4;        // a launch (~3 µs) in slice-times (~0.9 µs)
inline constexpr int64_t kFloatsPerSlice = int64_t{1} << 20;  // 4 MB in ~0.9 µs at ~4.3 TB/s
inline constexpr int64_t kMaxPartialFloats = int64_t{1} << 24;

struct SplitPlan {
  int64_t splits = 1;
  int64_t chunk = 0;  // K terms per split (a multiple of k_slice unless one split); split s
                      // covers [s·chunk, min((s + 1)·chunk, k_total))
};

inline int64_t plan_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The plan for `groups` GEMMs (the images of a batch; 1 for a weight gradient) of C[m × n] with
// K = k_total each, on tiles of tile_m × tile_n that advance k_slice terms per step.
inline SplitPlan plan_split_k(int64_t tile_m, int64_t tile_n, int64_t k_slice, int64_t m, int64_t n,
                              int64_t groups, int64_t k_total) {
  if (m <= 0 || n <= 0 || groups <= 0 || k_total <= 0) return SplitPlan{1, k_total > 0 ? k_total : 0};
  const int64_t tiles = plan_ceil_div(m, tile_m) * plan_ceil_div(n, tile_n) * groups;
  int64_t max_splits = k_total / kMinTermsPerSplit;
  if (max_splits > kPlanSMs * kPlanBlocksPerSM) max_splits = kPlanSMs * kPlanBlocksPerSM;
  if (max_splits > 65535 / groups) max_splits = 65535 / groups;
  const int64_t partial_floats = m * n * groups;  // per split
  if (max_splits > kMaxPartialFloats / partial_floats) max_splits = kMaxPartialFloats / partial_floats;
  SplitPlan best{1, k_total};
  int64_t best_cost = -1;
  for (int64_t s = 1; s <= (max_splits > 1 ? max_splits : 1); ++s) {
    const int64_t chunk = s == 1 ? k_total : plan_ceil_div(plan_ceil_div(k_total, s), k_slice) * k_slice;
    const int64_t splits = plan_ceil_div(k_total, chunk);  // no empty split
    if (splits != s) continue;                              // the same plan as a smaller s
    const int64_t busiest = plan_ceil_div(tiles * s, kPlanSMs);
    int64_t cost = busiest * (plan_ceil_div(chunk, k_slice) + 1) * (busiest < kPlanBlocksPerSM ? 2 : 1);
    if (s > 1) cost += kSplitLaunchSlices + (s + 1) * partial_floats / kFloatsPerSlice;
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      best = SplitPlan{s, chunk};
    }
  }
  return best;
}

}  // namespace unet::cuda::igemm
