// kernels/dropout.cpp — tensor-level dropout: validation, device dispatch, autograd (the backward
// regenerates the mask from the seed and offset kept in the node; nothing is saved).
#include "kernels/dropout.h"

#include <cmath>

#include "core/autograd.h"
#include "core/error.h"

namespace unet {
namespace {

Tensor apply(const DropoutParams& p, const Tensor& in) {
  Tensor out = Tensor::empty(in.shape(), DType::Float32, in.device());
  if (in.device().is_cpu())
    cpu::dropout_apply(p, in.data<float>(), out.data<float>(), in.numel());
  else
    cuda::dropout_apply(p, in.data<float>(), out.data<float>(), in.numel());
  return out;
}

struct DropoutBackward : Node {
  DropoutParams p;
  explicit DropoutBackward(const DropoutParams& params) : p(params) {}
  const char* name() const override { return "DropoutBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {apply(p, g)}; }
};

}  // namespace

Tensor dropout(const Tensor& x, float p, uint64_t seed, uint64_t offset, bool training) {
  check_float(x, "dropout", "x");
  UNET_CHECK(p >= 0.0f && p < 1.0f, ValueError, "dropout: drop probability p must be in [0, 1), got ",
             p, " (p = 1 would drop everything and divide by zero)");
  if (!training || p == 0.0f) return x;
  const DropoutParams params{p, 1.0f / (1.0f - p), seed, offset};
  Tensor y = apply(params, x);
  if (needs_grad({x})) attach_node(y, std::make_shared<DropoutBackward>(params), {x});
  return y;
}

}  // namespace unet
