// kernels/matmul.h — matrix product. The GEMM launchers here are the one matrix-multiply of the
// library: matmul() uses them, and so may any op that lowers to a GEMM (convolutions via im2col).
//
// Convention: row-major, C[m×n] = alpha · op(A) · op(B) + beta · C, op(X) = X or Xᵀ; lda/ldb/ldc
// are row strides of the matrices as stored. With beta == 0, C is write-only (never read, so
// uninitialised or poisoned C is fine).
// Gradient rule for Y = A·B: dA = dY·Bᵀ, dB = Aᵀ·dY.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace unet {

struct GemmParams {
  int64_t m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  float alpha = 1.0f, beta = 0.0f;
  int64_t lda = 0, ldb = 0, ldc = 0;
};

// A GemmParams with explicit leading dimensions (operands inside larger buffers), alpha = 1.
GemmParams strided_gemm(int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, int64_t lda,
                        int64_t ldb, int64_t ldc, float beta = 0.0f);
// Fills a GemmParams for dense row-major operands (leading dimensions from the shapes).
GemmParams dense_gemm(int64_t m, int64_t n, int64_t k, bool trans_a = false, bool trans_b = false,
                      float alpha = 1.0f, float beta = 0.0f);

// [m, k] × [k, n] -> [m, n], float32 rank-2 tensors on one device.
Tensor matmul(const Tensor& a, const Tensor& b);

namespace cpu {
// Eigen GEMM, parallel over row blocks of C.
template <typename T> void gemm(const GemmParams& p, const T* a, const T* b, T* c);
}  // namespace cpu

namespace cuda {
// Tiled shared-memory GEMM (kernels/implicit_gemm.cuh): 64×64 output tile per 256-thread block,
// 4×4 outputs per thread.
void gemm(const GemmParams& p, const float* a, const float* b, float* c);
}  // namespace cuda

}  // namespace unet
