// kernels/reduce.cpp — tensor-level sum/mean with autograd, and sum_of_squares without.
#include "kernels/reduce.h"

#include "core/autograd.h"
#include "core/error.h"

namespace unet {
namespace {

Tensor broadcast(const Tensor& scalar, float factor, const Shape& shape) {
  Tensor out = Tensor::empty(shape, DType::Float32, scalar.device());
  if (scalar.device().is_cpu())
    cpu::broadcast_scalar(scalar.data<float>(), factor, out.data<float>(), out.numel());
  else
    cuda::broadcast_scalar(scalar.data<float>(), factor, out.data<float>(), out.numel());
  return out;
}

struct SumBackward : Node {
  float factor;  // 1 for sum, 1/n for mean
  explicit SumBackward(float f) : factor(f) {}
  const char* name() const override { return "SumBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {broadcast(g, factor, inputs[0].shape())};
  }
};

Tensor reduce(const Tensor& x, float factor, const char* op) {
  check_float(x, op, "x");
  check_not_empty(x, op, "x");
  Tensor out = Tensor::empty(Shape{}, DType::Float32, x.device());
  if (x.device().is_cpu()) {
    *out.data<float>() = cpu::sum(x.data<float>(), x.numel()) * factor;
  } else {
    Tensor total = Tensor::empty(Shape{}, DType::Float32, x.device());
    cuda::sum(x.data<float>(), x.numel(), total.data<float>());
    cuda::broadcast_scalar(total.data<float>(), factor, out.data<float>(), 1);
  }
  if (needs_grad({x})) attach_node(out, std::make_shared<SumBackward>(factor), {x});
  return out;
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce(x, 1.0f, "sum"); }

Tensor sum_of_squares(const Tensor& x) {
  check_float(x, "sum_of_squares", "x");
  check_not_empty(x, "sum_of_squares", "x");
  UNET_CHECK(!needs_grad({x}), ValueError,
             "sum_of_squares has no gradient; call it on a tensor that does not require one (under NoGradGuard)");
  Tensor out = Tensor::empty(Shape{}, DType::Float32, x.device());
  if (x.device().is_cpu())
    *out.data<float>() = cpu::sum_of_squares(x.data<float>(), x.numel());
  else
    cuda::sum_of_squares(x.data<float>(), x.numel(), out.data<float>());
  return out;
}
Tensor mean(const Tensor& x) { return reduce(x, 1.0f / static_cast<float>(x.defined() ? x.numel() : 1), "mean"); }

}  // namespace unet
