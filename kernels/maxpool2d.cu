// kernels/maxpool2d.cu — CUDA kernels for 2×2 / stride-2 max-pooling.
//
// Forward: one thread per output element (grid-stride), reading its 2×2 window with two 8-byte
// loads when the row start is aligned (W even and planes start at even offsets, so the pair
// (2·ox, 2·ox+1) always is) and writing the max and its window position.
// Backward: a gather, one thread per pair of horizontally adjacent input elements (the two that
// share a window row): it reads its window's dy and argmax once and writes both dx values with one
// 8-byte store. Windows do not overlap, so there are no atomics and the result is deterministic.
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/maxpool2d.h"

namespace unet::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

// Same rule as the CPU reference: larger wins, or the first NaN.
__device__ __forceinline__ bool wins(float v, float best) {
  return v > best || (v != v && best == best);
}

__global__ void maxpool2d_forward_kernel(Pool2dParams p, const float* __restrict__ x,
                                         float* __restrict__ y, int32_t* __restrict__ argmax) {
  const int64_t oh = p.height / 2, ow = p.width / 2;
  const int64_t total = p.batch * p.channels * oh * ow;
  for (int64_t i = kern::global_index(); i < total; i += kern::grid_stride()) {
    const int64_t row = i / ow, ox = i % ow;  // row = plane·oh + oy
    const int64_t plane = row / oh, oy = row % oh;
    const float* top = x + (plane * p.height + 2 * oy) * p.width + 2 * ox;
    const float2 t = *reinterpret_cast<const float2*>(top);
    const float2 u = *reinterpret_cast<const float2*>(top + p.width);
    const float v[4] = {t.x, t.y, u.x, u.y};
    int32_t best = 0;
    for (int32_t j = 1; j < 4; ++j)
      if (wins(v[j], v[best])) best = j;
    y[i] = v[best];
    argmax[i] = best;
  }
}

__global__ void maxpool2d_backward_kernel(Pool2dParams p, const float* __restrict__ dy,
                                          const int32_t* __restrict__ argmax,
                                          float* __restrict__ dx) {
  const int64_t ow = p.width / 2;
  const int64_t pairs = p.batch * p.channels * p.height * ow;  // input elements / 2
  for (int64_t i = kern::global_index(); i < pairs; i += kern::grid_stride()) {
    const int64_t in_row = i / ow, ox = i % ow;  // in_row = plane·H + yy
    const int64_t plane = in_row / p.height, yy = in_row % p.height;
    const int64_t o = (plane * (p.height / 2) + yy / 2) * ow + ox;
    const int32_t a = argmax[o] - 2 * static_cast<int32_t>(yy & 1);  // 0 or 1 if in this row
    const float g = dy[o];
    float2 pair;
    pair.x = a == 0 ? g : 0.0f;
    pair.y = a == 1 ? g : 0.0f;
    reinterpret_cast<float2*>(dx)[i] = pair;
  }
}

}  // namespace

void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int32_t* argmax) {
  const int64_t total = p.batch * p.channels * (p.height / 2) * (p.width / 2);
  if (total == 0) return;
  kern::launch(maxpool2d_forward_kernel, kern::linear_grid(total, kThreads, kMaxBlocks), dim3(kThreads), 0, p, x, y, argmax);
}

void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int32_t* argmax, float* dx) {
  const int64_t pairs = p.batch * p.channels * p.height * (p.width / 2);
  if (pairs == 0) return;
  kern::launch(maxpool2d_backward_kernel, kern::linear_grid(pairs, kThreads, kMaxBlocks), dim3(kThreads), 0, p, dy, argmax, dx);
}

}  // namespace unet::cuda
