// kernels/softmax_xent.cu — CUDA kernels for the fused softmax + weighted cross-entropy and the
// softmax / argmax inference head.
//
// Strategy: one thread per pixel, looping over the K classes (K = 2 for the U-Net: a few loads
// per pixel, coalesced across the warp because neighbouring threads own neighbouring pixels of
// one class plane). The loss forward writes the per-pixel gradient in the same pass and reduces
// (loss, weight) pairs deterministically: per-block partials (warp shuffles, then shared memory
// across warps), then one block sums the partials in a fixed order and writes the loss and the
// gradient scale. The grid depends only on the pixel count, so results are reproducible.
// A label outside [0, K) is reported through atomicMin on an int (the smallest bad pixel index,
// so the report is deterministic too), read back by the launcher.
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/block_reduce.cuh"
#include "kernels/softmax_xent.h"

#include <climits>

#include "core/error.h"
#include "core/tensor.h"

namespace unet::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1024;

// Both sums of a block (loss and weight), each a deterministic block_sum; valid in thread 0.
__device__ __forceinline__ void block_sum2(float& a, float& b) {
  a = block_sum<kThreads>(a);
  b = block_sum<kThreads>(b);
}

__global__ void xent_forward_kernel(XentParams p, const float* __restrict__ logits,
                                    const int32_t* __restrict__ labels,
                                    const float* __restrict__ weights, float* __restrict__ dlogits,
                                    float* __restrict__ partials, int* __restrict__ first_bad) {
  const int64_t total = p.batch * p.pixels, K = p.classes, hw = p.pixels;
  float loss = 0.0f, wsum = 0.0f;
  for (int64_t i = kern::global_index(); i < total; i += kern::grid_stride()) {
    const int64_t off = (i / hw) * K * hw + i % hw;
    const float* a = logits + off;
    float* d = dlogits + off;
    const int32_t label = labels[i];
    const float w = weights[i];
    if (label < 0 || label >= K) {
      atomicMin(first_bad, static_cast<int>(i));
      continue;
    }
    float m = a[0];
    for (int64_t k = 1; k < K; ++k) m = fmaxf(m, a[k * hw]);
    float z = 0.0f;
    for (int64_t k = 0; k < K; ++k) z += expf(a[k * hw] - m);
    const float inv_z = 1.0f / z;
    for (int64_t k = 0; k < K; ++k)
      d[k * hw] = w * (expf(a[k * hw] - m) * inv_z - (k == label ? 1.0f : 0.0f));
    loss += w * (logf(z) - (a[label * hw] - m));
    wsum += w;
  }
  block_sum2(loss, wsum);
  if (threadIdx.x == 0) {
    partials[2 * blockIdx.x] = loss;
    partials[2 * blockIdx.x + 1] = wsum;
  }
}

__global__ void xent_finish_kernel(const float* __restrict__ partials, int64_t count,
                                   LossReduction reduction, int64_t pixel_count, float* __restrict__ loss,
                                   float* __restrict__ grad_scale) {
  float l = 0.0f, w = 0.0f;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    l += partials[2 * i];
    w += partials[2 * i + 1];
  }
  block_sum2(l, w);
  if (threadIdx.x == 0) {
    const float inv = reduction == LossReduction::WeightedMean ? (w > 0.0f ? 1.0f / w : 0.0f)
                      : reduction == LossReduction::PixelMean  ? 1.0f / static_cast<float>(pixel_count)
                                                               : 1.0f;
    *loss = l * inv;
    *grad_scale = inv;
  }
}

__global__ void xent_backward_kernel(const float* __restrict__ dlogits,
                                     const float* __restrict__ grad_loss,
                                     const float* __restrict__ grad_scale, float* __restrict__ dx,
                                     int64_t n) {
  const float factor = *grad_loss * *grad_scale;
  for (int64_t i = kern::global_index(); i < n; i += kern::grid_stride()) dx[i] = dlogits[i] * factor;
}

__global__ void softmax_kernel(XentParams p, const float* __restrict__ logits,
                               float* __restrict__ probs) {
  const int64_t total = p.batch * p.pixels, K = p.classes, hw = p.pixels;
  for (int64_t i = kern::global_index(); i < total; i += kern::grid_stride()) {
    const int64_t off = (i / hw) * K * hw + i % hw;
    const float* a = logits + off;
    float m = a[0];
    for (int64_t k = 1; k < K; ++k) m = fmaxf(m, a[k * hw]);
    float z = 0.0f;
    for (int64_t k = 0; k < K; ++k) z += expf(a[k * hw] - m);
    const float inv_z = 1.0f / z;
    for (int64_t k = 0; k < K; ++k) probs[off + k * hw] = expf(a[k * hw] - m) * inv_z;
  }
}

__global__ void argmax_kernel(XentParams p, const float* __restrict__ logits,
                              int32_t* __restrict__ classes) {
  const int64_t total = p.batch * p.pixels, K = p.classes, hw = p.pixels;
  for (int64_t i = kern::global_index(); i < total; i += kern::grid_stride()) {
    const float* a = logits + (i / hw) * K * hw + i % hw;
    int32_t best = 0;
    float best_v = a[0];
    for (int64_t k = 1; k < K; ++k) {
      const float v = a[k * hw];
      if (v > best_v) {
        best_v = v;
        best = static_cast<int32_t>(k);
      }
    }
    classes[i] = best;
  }
}

}  // namespace

int64_t weighted_xent_forward(const XentParams& p, const float* logits, const int32_t* labels,
                              const float* weights, float* dlogits, float* loss,
                              float* grad_scale) {
  const int64_t total = p.batch * p.pixels;
  UNET_CHECK(total < INT_MAX, ValueError, "weighted_cross_entropy: ", total,
             " pixels exceed the CUDA kernel's 32-bit pixel index; split the batch");
  const Device dev{DeviceType::CUDA, 0};
  const dim3 grid = kern::linear_grid(total, kThreads, kMaxBlocks);
  Tensor partials = Tensor::empty(Shape{2 * static_cast<int64_t>(grid.x)}, DType::Float32, dev);
  Tensor first_bad = Tensor::from_vector(std::vector<int32_t>{INT_MAX}, Shape{1}, dev);
  kern::launch(xent_forward_kernel, grid, dim3(kThreads), 0, p, logits, labels, weights, dlogits,
               partials.data<float>(), reinterpret_cast<int*>(first_bad.data<int32_t>()));
  kern::launch(xent_finish_kernel, dim3(1), dim3(kThreads), 0,
               static_cast<const float*>(partials.data<float>()), static_cast<int64_t>(grid.x),
               p.reduction, p.batch * p.pixels, loss, grad_scale);
  // While a CUDA graph is being captured the kernels have not run and nothing can be read back:
  // the labels are checked by the eager step that precedes a capture (unet/graph_step.h) instead.
  if (cuda_rt::capturing()) return -1;
  const int32_t bad = first_bad.to_int_vector()[0];
  return bad == INT_MAX ? -1 : bad;
}

void weighted_xent_backward(const float* dlogits, const float* grad_loss, const float* grad_scale,
                            float* dx, int64_t n) {
  if (n == 0) return;
  kern::launch(xent_backward_kernel, kern::linear_grid(n, kThreads, kMaxBlocks), dim3(kThreads), 0, dlogits, grad_loss,
               grad_scale, dx, n);
}

void softmax_channels(const XentParams& p, const float* logits, float* probs) {
  const int64_t total = p.batch * p.pixels;
  if (total == 0) return;
  kern::launch(softmax_kernel, kern::linear_grid(total, kThreads, kMaxBlocks), dim3(kThreads), 0, p, logits, probs);
}

void argmax_channels(const XentParams& p, const float* logits, int32_t* classes) {
  const int64_t total = p.batch * p.pixels;
  if (total == 0) return;
  kern::launch(argmax_kernel, kern::linear_grid(total, kThreads, kMaxBlocks), dim3(kThreads), 0, p, logits, classes);
}

}  // namespace unet::cuda
