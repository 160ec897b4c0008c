// kernels/matmul_cpu.cpp — CPU GEMM on Eigen maps, split over row blocks of C so all cores work
// (Eigen's own threading needs OpenMP, which the library does not use).
#include <Eigen/Core>

#include "core/parallel.h"
#include "kernels/matmul.h"

namespace unet::cpu {

template <typename T> void gemm(const GemmParams& p, const T* a, const T* b, T* c) {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ConstMap = Eigen::Map<const Matrix, 0, Eigen::OuterStride<>>;
  using Map = Eigen::Map<Matrix, 0, Eigen::OuterStride<>>;
  if (p.m == 0 || p.n == 0) return;
  // Stored shapes: A is m×k (or k×m if transposed), B is k×n (or n×k).
  const ConstMap A(a, p.trans_a ? p.k : p.m, p.trans_a ? p.m : p.k, Eigen::OuterStride<>(p.lda));
  const ConstMap B(b, p.trans_b ? p.n : p.k, p.trans_b ? p.k : p.n, Eigen::OuterStride<>(p.ldb));
  const T alpha = static_cast<T>(p.alpha), beta = static_cast<T>(p.beta);
  // Rows per task: enough work to amortise a task (~64K multiply-adds) but several tasks per core.
  const int64_t work_per_row = p.n * (p.k > 0 ? p.k : 1);
  const int64_t grain = work_per_row >= 65536 ? 1 : 65536 / work_per_row;
  parallel_for(0, p.m, grain, [&](int64_t r0, int64_t r1) {
    Map C(c + r0 * p.ldc, r1 - r0, p.n, Eigen::OuterStride<>(p.ldc));
    if (beta == T(0))
      C.setZero();
    else if (beta != T(1))
      C *= beta;
    if (p.k == 0) return;
    const int64_t rows = r1 - r0;
    if (p.trans_a) {
      if (p.trans_b)
        C.noalias() += alpha * (A.middleCols(r0, rows).transpose() * B.transpose());
      else
        C.noalias() += alpha * (A.middleCols(r0, rows).transpose() * B);
    } else {
      if (p.trans_b)
        C.noalias() += alpha * (A.middleRows(r0, rows) * B.transpose());
      else
        C.noalias() += alpha * (A.middleRows(r0, rows) * B);
    }
  });
}

template void gemm<float>(const GemmParams&, const float*, const float*, float*);
template void gemm<double>(const GemmParams&, const double*, const double*, double*);

}  // namespace unet::cpu
