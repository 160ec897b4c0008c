// kernels/matmul.cu — the GEMM launcher: C = alpha · op(A) · op(B) + beta · C on the tiled kernel
// of kernels/implicit_gemm.cuh (128×128 or 64×128 tiles, 8×8 or 4×8 outputs per thread, K in
// double-buffered shared-memory slices of 8). Transposes only change how the tiles are read;
// with beta == 0, C is never read (it may hold garbage or NaN).
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/implicit_gemm.cuh"
#include "kernels/matmul.h"

namespace unet::cuda {
namespace {

template <bool TransA, bool TransB>
struct MatmulOp {
  static constexpr bool kAKFast = !TransA;  // A[i][k] row-major: k contiguous unless transposed
  static constexpr bool kBKFast = TransB;   // B[k][j] row-major: j contiguous unless transposed
  GemmParams p;
  const float* a_ptr;
  const float* b_ptr;
  float* c_ptr;
  int64_t m, n;
  __device__ void k_range(int, int& kb, int& ke) const { kb = 0; ke = static_cast<int>(p.k); }
  __device__ int64_t k_pos(int k) const { return k; }
  // Cursors are row (column) pointers; the leading dimensions stay 64-bit.
  __device__ const float* a_row(int i, int) const { return TransA ? a_ptr + i : a_ptr + i * p.lda; }
  __device__ igemm::Src a_src(const float* row, int64_t k) const { return {TransA ? row + k * p.lda : row + k, true}; }
  __device__ const float* b_col(int j, int) const { return TransB ? b_ptr + j * p.ldb : b_ptr + j; }
  __device__ igemm::Src b_src(const float* col, int64_t k) const { return {TransB ? col + k : col + k * p.ldb, true}; }
  __device__ void store(int i, int j, int, float acc) const {
    float* out = c_ptr + i * p.ldc + j;
    *out = p.beta == 0.0f ? p.alpha * acc : p.alpha * acc + p.beta * *out;
  }
};

template <bool TransA, bool TransB>
void run(const GemmParams& p, const float* a, const float* b, float* c) {
  igemm::run<MatmulOp<TransA, TransB>, false>(MatmulOp<TransA, TransB>{p, a, b, c, p.m, p.n}, 1, Precision::FP32);
}

}  // namespace

void gemm(const GemmParams& p, const float* a, const float* b, float* c) {
  if (p.m == 0 || p.n == 0) return;
  UNET_CHECK(p.k < INT32_MAX, ValueError, "gemm (CUDA): inner dimension ", p.k,
             " exceeds the tiled kernel's 32-bit K index (it must be below 2^31)");
  if (p.trans_a)
    p.trans_b ? run<true, true>(p, a, b, c) : run<true, false>(p, a, b, c);
  else
    p.trans_b ? run<false, true>(p, a, b, c) : run<false, false>(p, a, b, c);
}

}  // namespace unet::cuda
