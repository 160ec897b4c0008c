// kernels/reduce.h — full reductions: sum, mean and sum of squares of all elements to a scalar
// (rank-0 tensor).
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
// Σ x², in one pass without a temporary (gradient norms). No gradient: x must not require one.
Tensor sum_of_squares(const Tensor& x);

namespace cpu {
// Accumulates in double per chunk, chunks combined in index order: the reference value.
template <typename T> T sum(const T* x, int64_t n);
template <typename T> T sum_of_squares(const T* x, int64_t n);  // the same, of x[i]²
// out[i] = (*scalar) * factor for i < n.
template <typename T> void broadcast_scalar(const T* scalar, T factor, T* out, int64_t n);
}  // namespace cpu

namespace cuda {
// *result = sum of x[0..n) (result is a device pointer to one float).
void sum(const float* x, int64_t n, float* result);
void sum_of_squares(const float* x, int64_t n, float* result);  // the same tree, of x[i]²
void broadcast_scalar(const float* scalar, float factor, float* out, int64_t n);
}  // namespace cuda

}  // namespace unet
