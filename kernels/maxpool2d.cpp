// kernels/maxpool2d.cpp — tensor-level 2×2 max-pool: validation, device dispatch, autograd (the
// argmax positions are kept in the node's `saved`).
#include "kernels/maxpool2d.h"

#include "core/autograd.h"
#include "core/error.h"

namespace unet {
namespace {

// saved = {argmax int32 [N, C, H/2, W/2]}; inputs = {x}.
struct MaxPool2dBackward : Node {
  Pool2dParams p;
  explicit MaxPool2dBackward(const Pool2dParams& params) : p(params) {}
  const char* name() const override { return "MaxPool2dBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor& argmax = saved[0];
    Tensor dx = Tensor::empty(inputs[0].shape(), DType::Float32, g.device());
    if (g.device().is_cpu())
      cpu::maxpool2d_backward(p, g.data<float>(), argmax.data<int32_t>(), dx.data<float>());
    else
      cuda::maxpool2d_backward(p, g.data<float>(), argmax.data<int32_t>(), dx.data<float>());
    return {dx};
  }
};

void check_even(int64_t size, const char* what, const Tensor& x) {
  UNET_CHECK(size % 2 == 0, ShapeError, "max_pool2d: input ", what, " ", size, " is odd (input ",
             x.shape().str(), "); a 2x2 stride-2 max-pool needs even height and width; nearest "
             "valid ", what, "s: ", size - 1, " or ", size + 1,
             " (choose the tile size so every pooled level is even)");
}

}  // namespace

Tensor max_pool2d(const Tensor& x) {
  check_float(x, "max_pool2d", "x");
  check_rank(x, 4, "max_pool2d", "x");
  check_not_empty(x, "max_pool2d", "x");
  check_even(x.dim(2), "height", x);
  check_even(x.dim(3), "width", x);
  const Pool2dParams p{x.dim(0), x.dim(1), x.dim(2), x.dim(3)};
  const Shape out_shape{p.batch, p.channels, p.height / 2, p.width / 2};
  Tensor y = Tensor::empty(out_shape, DType::Float32, x.device());
  Tensor argmax = Tensor::empty(out_shape, DType::Int32, x.device());
  if (x.device().is_cpu())
    cpu::maxpool2d_forward(p, x.data<float>(), y.data<float>(), argmax.data<int32_t>());
  else
    cuda::maxpool2d_forward(p, x.data<float>(), y.data<float>(), argmax.data<int32_t>());
  if (needs_grad({x})) {
    auto node = std::make_shared<MaxPool2dBackward>(p);
    node->saved = {argmax};
    attach_node(y, node, {x});
  }
  return y;
}

}  // namespace unet
