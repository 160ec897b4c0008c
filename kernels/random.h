// kernels/random.h — tensors of Philox random numbers (core/philox.h), the same on every backend:
// element i uses stream position offset + i, so a CUDA tensor and a CPU tensor made with the same
// (seed, offset) hold identical uniforms and normals equal to within a few ulps (see philox.h).
// Used for weight initialisation and anywhere a reproducible random tensor is needed.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace unet {

// Uniform in [0, 1).
Tensor random_uniform(const Shape& shape, uint64_t seed, uint64_t offset, Device device);
// mean + stddev · N(0, 1).
Tensor random_normal(const Shape& shape, float mean, float stddev, uint64_t seed, uint64_t offset,
                     Device device);

namespace cpu {
void random_uniform(uint64_t seed, uint64_t offset, float* out, int64_t n);
void random_normal(uint64_t seed, uint64_t offset, float mean, float stddev, float* out, int64_t n);
}  // namespace cpu

namespace cuda {
void random_uniform(uint64_t seed, uint64_t offset, float* out, int64_t n);
void random_normal(uint64_t seed, uint64_t offset, float mean, float stddev, float* out, int64_t n);
}  // namespace cuda

}  // namespace unet
