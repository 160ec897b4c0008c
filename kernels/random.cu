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

__global__ void uniform_kernel(uint64_t seed, uint64_t offset, float* __restrict__ out, int64_t n) {
  const int64_t stride = kern::grid_stride();
  for (int64_t i = kern::global_index(); i < n; i += stride)
    out[i] = philox_uniform01(seed, offset + static_cast<uint64_t>(i));
}

__global__ void normal_kernel(uint64_t seed, uint64_t offset, float mean, float stddev,
                              float* __restrict__ out, int64_t n) {
  const int64_t stride = kern::grid_stride();
  for (int64_t i = kern::global_index(); i < n; i += stride)
    out[i] = mean + stddev * philox_normal(seed, offset + static_cast<uint64_t>(i));
}

}  // namespace

void random_uniform(uint64_t seed, uint64_t offset, float* out, int64_t n) {
  if (n == 0) return;
  kern::launch(uniform_kernel, kern::linear_grid(n, kThreads, kMaxBlocks), dim3(kThreads), 0, seed, offset, out, n);
}

void random_normal(uint64_t seed, uint64_t offset, float mean, float stddev, float* out, int64_t n) {
  if (n == 0) return;
  kern::launch(normal_kernel, kern::linear_grid(n, kThreads, kMaxBlocks), dim3(kThreads), 0, seed, offset, mean, stddev, out, n);
}

}  // namespace unet::cuda
