// kernels/matmul.cpp — tensor-level matmul with autograd.
#include "kernels/matmul.h"

#include "core/autograd.h"
#include "core/error.h"

namespace unet {
namespace {

void run_gemm(const GemmParams& p, const Tensor& a, const Tensor& b, Tensor& c) {
  if (a.device().is_cpu())
    cpu::gemm(p, a.data<float>(), b.data<float>(), c.data<float>());
  else
    cuda::gemm(p, a.data<float>(), b.data<float>(), c.data<float>());
}

struct MatmulBackward : Node {
  const char* name() const override { return "MatmulBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor& a = inputs[0];
    const Tensor& b = inputs[1];
    const int64_t m = a.dim(0), k = a.dim(1), n = b.dim(1);
    Tensor da, db;
    if (a.requires_grad()) {  // dA[m×k] = dY[m×n] · Bᵀ
      da = Tensor::empty(a.shape(), DType::Float32, a.device());
      run_gemm(dense_gemm(m, k, n, false, true), g, b, da);
    }
    if (b.requires_grad()) {  // dB[k×n] = Aᵀ · dY
      db = Tensor::empty(b.shape(), DType::Float32, b.device());
      run_gemm(dense_gemm(k, n, m, true, false), a, g, db);
    }
    return {da, db};
  }
};

}  // namespace

GemmParams strided_gemm(int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, int64_t lda,
                        int64_t ldb, int64_t ldc, float beta) {
  GemmParams p;
  p.m = m; p.n = n; p.k = k;
  p.trans_a = trans_a; p.trans_b = trans_b;
  p.beta = beta;
  p.lda = lda; p.ldb = ldb; p.ldc = ldc;
  return p;
}

GemmParams dense_gemm(int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, float alpha,
                      float beta) {
  GemmParams p = strided_gemm(m, n, k, trans_a, trans_b, trans_a ? m : k, trans_b ? k : n, n, beta);
  p.alpha = alpha;
  return p;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_float(a, "matmul", "a");
  check_float(b, "matmul", "b");
  check_rank(a, 2, "matmul", "a");
  check_rank(b, 2, "matmul", "b");
  check_same_device(a, b, "matmul");
  UNET_CHECK(a.dim(1) == b.dim(0), ShapeError, "matmul: inner dimensions differ: a is ",
             a.shape().str(), ", b is ", b.shape().str(), " (need a[m, k] and b[k, n])");
  Tensor c = Tensor::empty(Shape{a.dim(0), b.dim(1)}, DType::Float32, a.device());
  run_gemm(dense_gemm(a.dim(0), b.dim(1), a.dim(1)), a, b, c);
  if (needs_grad({a, b})) attach_node(c, std::make_shared<MatmulBackward>(), {a, b});
  return c;
}

}  // namespace unet
