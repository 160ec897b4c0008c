// kernels/elementwise.h — elementwise ops: add, mul, relu and affine (x·factor + offset: the
// model's input standardisation, and with offset 0 the gradient of affine itself); scale(x, f)
// is affine(x, f, 0).
//
// Layout of every op in kernels/ (this file is the pattern):
//   <op>.h        tensor-level ops (validate, dispatch on device, record autograd) + launchers
//   <op>_cpu.cpp  the CPU implementation, templated on the scalar so tests can run it in double;
//                 it is the reference for the CUDA kernels and the CPU backend itself
//   <op>.cu       CUDA kernels + host launchers (nvcc for the GPU, g++ + kernels/sim otherwise)
//   <op>.cpp      the tensor-level entry points and their autograd nodes
// Gradient rules: d(a+b) = (g, g); d(a*b) = (g*b, g*a); d relu(x) = g * [x > 0] (0 at x == 0);
// d affine(x) = g * factor.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace unet {

// ---- tensor-level ops (float32, same shape, same device) -------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor relu(const Tensor& x);
Tensor affine(const Tensor& x, float factor, float offset);  // factor and offset must be finite
Tensor scale(const Tensor& x, float factor);                 // affine(x, factor, 0)

// ---- launchers (raw pointers; CUDA pointers are device pointers) ----------------------------
namespace cpu {
template <typename T> void add(const T* a, const T* b, T* out, int64_t n);
template <typename T> void mul(const T* a, const T* b, T* out, int64_t n);
// out = fma(x, factor, offset): one rounding, so the CPU and CUDA results agree bit for bit
template <typename T> void affine(const T* x, T factor, T offset, T* out, int64_t n);
template <typename T> void relu_forward(const T* x, T* y, int64_t n);
// dx = dy * [x > 0]
template <typename T> void relu_backward(const T* x, const T* dy, T* dx, int64_t n);
}  // namespace cpu

namespace cuda {
void add(const float* a, const float* b, float* out, int64_t n);
void mul(const float* a, const float* b, float* out, int64_t n);
void affine(const float* x, float factor, float offset, float* out, int64_t n);
void relu_forward(const float* x, float* y, int64_t n);
void relu_backward(const float* x, const float* dy, float* dx, int64_t n);
}  // namespace cuda

}  // namespace unet
