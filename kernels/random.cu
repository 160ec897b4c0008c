// kernels/random.cu — Philox random tensors on the device: one grid-stride loop per kernel, the
// same per-element formula as the CPU twin.
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/random.h"

#include "core/philox.h"

namespace unet::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

dim3 grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return dim3(static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks));
}

__global__ void uniform_kernel(uint64_t seed, uint64_t offset, float* __restrict__ out, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = philox_uniform01(seed, offset + static_cast<uint64_t>(i));
}

__global__ void normal_kernel(uint64_t seed, uint64_t offset, float mean, float stddev,
                              float* __restrict__ out, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = mean + stddev * philox_normal(seed, offset + static_cast<uint64_t>(i));
}

}  // namespace

void random_uniform(uint64_t seed, uint64_t offset, float* out, int64_t n) {
  if (n == 0) return;
  kern::launch(uniform_kernel, grid_for(n), dim3(kThreads), 0, seed, offset, out, n);
}

void random_normal(uint64_t seed, uint64_t offset, float mean, float stddev, float* out, int64_t n) {
  if (n == 0) return;
  kern::launch(normal_kernel, grid_for(n), dim3(kThreads), 0, seed, offset, mean, stddev, out, n);
}

}  // namespace unet::cuda
