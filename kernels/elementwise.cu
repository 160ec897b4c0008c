// kernels/elementwise.cu — CUDA kernels for the elementwise ops: one grid-stride loop each,
// 256 threads per block, grid capped so huge tensors reuse threads instead of launching
// millions of blocks.
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/elementwise.h"

namespace unet::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

__global__ void add_kernel(const float* __restrict__ a, const float* __restrict__ b,
                           float* __restrict__ out, int64_t n) {
  for (int64_t i = kern::global_index(); i < n; i += kern::grid_stride()) out[i] = a[i] + b[i];
}
__global__ void mul_kernel(const float* __restrict__ a, const float* __restrict__ b,
                           float* __restrict__ out, int64_t n) {
  for (int64_t i = kern::global_index(); i < n; i += kern::grid_stride()) out[i] = a[i] * b[i];
}
__global__ void affine_kernel(const float* __restrict__ x, float factor, float offset,
                              float* __restrict__ out, int64_t n) {
  for (int64_t i = kern::global_index(); i < n; i += kern::grid_stride()) out[i] = fmaf(x[i], factor, offset);
}
__global__ void relu_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
  for (int64_t i = kern::global_index(); i < n; i += kern::grid_stride()) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
__global__ void relu_backward_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                     float* __restrict__ dx, int64_t n) {
  for (int64_t i = kern::global_index(); i < n; i += kern::grid_stride()) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

}  // namespace

void add(const float* a, const float* b, float* out, int64_t n) {
  if (n == 0) return;
  kern::launch(add_kernel, kern::linear_grid(n, kThreads, kMaxBlocks), dim3(kThreads), 0, a, b, out, n);
}
void mul(const float* a, const float* b, float* out, int64_t n) {
  if (n == 0) return;
  kern::launch(mul_kernel, kern::linear_grid(n, kThreads, kMaxBlocks), dim3(kThreads), 0, a, b, out, n);
}
void affine(const float* x, float factor, float offset, float* out, int64_t n) {
  if (n == 0) return;
  kern::launch(affine_kernel, kern::linear_grid(n, kThreads, kMaxBlocks), dim3(kThreads), 0, x, factor, offset,
               out, n);
}
void relu_forward(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  kern::launch(relu_forward_kernel, kern::linear_grid(n, kThreads, kMaxBlocks), dim3(kThreads), 0, x, y, n);
}
void relu_backward(const float* x, const float* dy, float* dx, int64_t n) {
  if (n == 0) return;
  kern::launch(relu_backward_kernel, kern::linear_grid(n, kThreads, kMaxBlocks), dim3(kThreads), 0, x, dy, dx, n);
}

}  // namespace unet::cuda
