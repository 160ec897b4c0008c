// kernels/reduce.cu — deterministic two-pass sum (of x or of x²): pass 1 reduces grid-stride slices into one
// partial per block (shared memory across warps, shuffles within a warp), pass 2 reduces the
// partials with a single block. The grid size depends only on n, so results are reproducible.
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/block_reduce.cuh"
#include "kernels/reduce.h"

#include "core/tensor.h"

namespace unet::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1024;

__global__ void partial_sums_kernel(const float* __restrict__ x, int64_t n, bool square,
                                    float* __restrict__ partials) {
  float v = 0.0f;
  const int64_t stride = kern::grid_stride();
  for (int64_t i = kern::global_index(); i < n; i += stride)
    v += square ? x[i] * x[i] : x[i];
  v = block_sum<kThreads>(v);
  if (threadIdx.x == 0) partials[blockIdx.x] = v;
}

__global__ void final_sum_kernel(const float* __restrict__ partials, int64_t count, float* __restrict__ result) {
  float v = 0.0f;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) v += partials[i];
  v = block_sum<kThreads>(v);
  if (threadIdx.x == 0) *result = v;
}

__global__ void broadcast_scalar_kernel(const float* __restrict__ scalar, float factor,
                                        float* __restrict__ out, int64_t n) {
  const float v = *scalar * factor;
  const int64_t stride = kern::grid_stride();
  for (int64_t i = kern::global_index(); i < n; i += stride)
    out[i] = v;
}

int64_t blocks_for(int64_t n) { return kern::linear_grid(n, kThreads, kMaxBlocks).x; }

void two_pass_sum(const float* x, int64_t n, bool square, float* result) {
  const int64_t blocks = blocks_for(n);
  Tensor partials = Tensor::empty(Shape{blocks}, DType::Float32, Device{DeviceType::CUDA, 0});
  kern::launch(partial_sums_kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0, x, n, square,
               partials.data<float>());
  kern::launch(final_sum_kernel, dim3(1), dim3(kThreads), 0,
               static_cast<const float*>(partials.data<float>()), blocks, result);
}

}  // namespace

void sum(const float* x, int64_t n, float* result) { two_pass_sum(x, n, false, result); }
void sum_of_squares(const float* x, int64_t n, float* result) { two_pass_sum(x, n, true, result); }

void broadcast_scalar(const float* scalar, float factor, float* out, int64_t n) {
  if (n == 0) return;
  kern::launch(broadcast_scalar_kernel, dim3(static_cast<unsigned>(blocks_for(n))), dim3(kThreads), 0,
               scalar, factor, out, n);
}

}  // namespace unet::cuda
