// kernels/reduce.h — full reductions: sum and mean of all elements to a scalar (rank-0 tensor).
// Gradient rule: d sum(x) / dx = 1 everywhere, d mean(x) / dx = 1/n: the backward broadcasts
// the scalar gradient (times 1/n for mean).
// Determinism: the CUDA sum is a fixed two-pass tree (per-block partials, then one block), with
// a grid that depends only on n, so the same input gives the same bits every run; no atomics.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace unet {

Tensor sum(const Tensor& x);   // float32, any shape, at least one element -> shape []
Tensor mean(const Tensor& x);

namespace cpu {
// Accumulates in double per chunk, chunks combined in index order: the reference value.
template <typename T> T sum(const T* x, int64_t n);
// out[i] = (*scalar) * factor for i < n.
template <typename T> void broadcast_scalar(const T* scalar, T factor, T* out, int64_t n);
}  // namespace cpu

namespace cuda {
// *result = sum of x[0..n) (result is a device pointer to one float).
void sum(const float* x, int64_t n, float* result);
void broadcast_scalar(const float* scalar, float factor, float* out, int64_t n);
}  // namespace cuda

}  // namespace unet
