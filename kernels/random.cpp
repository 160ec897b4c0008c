// kernels/random.cpp — tensor-level random constructors (no autograd: they are leaves).
#include "kernels/random.h"

#include <cmath>

#include "core/error.h"

namespace unet {

Tensor random_uniform(const Shape& shape, uint64_t seed, uint64_t offset, Device device) {
  Tensor t = Tensor::empty(shape, DType::Float32, device);
  if (device.is_cpu())
    cpu::random_uniform(seed, offset, t.data<float>(), t.numel());
  else
    cuda::random_uniform(seed, offset, t.data<float>(), t.numel());
  return t;
}

Tensor random_normal(const Shape& shape, float mean, float stddev, uint64_t seed, uint64_t offset,
                     Device device) {
  UNET_CHECK(std::isfinite(mean) && std::isfinite(stddev) && stddev >= 0.0f, ValueError,
             "random_normal: mean must be finite and stddev finite and >= 0, got mean ", mean,
             ", stddev ", stddev);
  Tensor t = Tensor::empty(shape, DType::Float32, device);
  if (device.is_cpu())
    cpu::random_normal(seed, offset, mean, stddev, t.data<float>(), t.numel());
  else
    cuda::random_normal(seed, offset, mean, stddev, t.data<float>(), t.numel());
  return t;
}

}  // namespace unet
