// kernels/matmul.cu — the GEMM launcher: C = alpha · op(A) · op(B) + beta · C on the tiled kernel
// of kernels/implicit_gemm.cuh (64×64 tile per 256-thread block, 4×4 register block per
// thread, K in shared-memory slices of 16). Transposes only change how the tiles are read;
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
  __device__ void k_range(int, int64_t& kb, int64_t& ke) const { kb = 0; ke = p.k; }
  __device__ float a(int64_t i, int64_t k, int) const { return TransA ? a_ptr[k * p.lda + i] : a_ptr[i * p.lda + k]; }
  __device__ float b(int64_t k, int64_t j, int) const { return TransB ? b_ptr[j * p.ldb + k] : b_ptr[k * p.ldb + j]; }
  __device__ void store(int64_t i, int64_t j, int, float acc) const {
    float* out = c_ptr + i * p.ldc + j;
    *out = p.beta == 0.0f ? p.alpha * acc : p.alpha * acc + p.beta * *out;
  }
};

template <bool TransA, bool TransB>
void run(const GemmParams& p, const float* a, const float* b, float* c) {
  igemm::run(MatmulOp<TransA, TransB>{p, a, b, c, p.m, p.n}, 1);
}

}  // namespace

void gemm(const GemmParams& p, const float* a, const float* b, float* c) {
  if (p.m == 0 || p.n == 0) return;
  if (p.trans_a)
    p.trans_b ? run<true, true>(p, a, b, c) : run<true, false>(p, a, b, c);
  else
    p.trans_b ? run<false, true>(p, a, b, c) : run<false, false>(p, a, b, c);
}

}  // namespace unet::cuda
