// kernels/upconv2d.cpp — tensor-level upconv2d: validation, device dispatch, autograd node.
// The node keeps x and w (its inputs); nothing else is saved.
#include "kernels/upconv2d.h"

#include "core/autograd.h"
#include "core/error.h"
#include "kernels/conv2d.h"

namespace unet {
namespace {

void validate(const Tensor& x, const Tensor& w, const Tensor& bias, Precision precision) {
  check_defined(x, "upconv2d", "x");
  check_defined(w, "upconv2d", "w");
  check_float(x, "upconv2d", "x");
  check_float(w, "upconv2d", "w");
  check_rank(x, 4, "upconv2d", "x [N, Cin, H, W]");
  check_rank(w, 4, "upconv2d", "w [Cin, Cout, 2, 2]");
  check_not_empty(x, "upconv2d", "x");
  check_not_empty(w, "upconv2d", "w");
  check_same_device(x, w, "upconv2d");
  check_precision(precision, x.device(), "upconv2d");
  UNET_CHECK(w.dim(0) == x.dim(1), ShapeError, "upconv2d: w ", w.shape().str(), " expects ", w.dim(0),
             " input channels (w is [Cin, Cout, 2, 2]) but x ", x.shape().str(), " has ", x.dim(1));
  UNET_CHECK(w.dim(2) == 2 && w.dim(3) == 2, ShapeError, "upconv2d: only a 2x2 kernel (stride 2) is supported, got ",
             w.dim(2), "x", w.dim(3), " from w ", w.shape().str());
  if (bias.defined()) {
    check_float(bias, "upconv2d", "bias");
    check_rank(bias, 1, "upconv2d", "bias [Cout]");
    check_same_device(x, bias, "upconv2d");
    UNET_CHECK(bias.dim(0) == w.dim(1), ShapeError, "upconv2d: bias ", bias.shape().str(), " must have Cout = ",
               w.dim(1), " elements (w is ", w.shape().str(), ")");
  }
}

struct Upconv2dBackward : Node {
  Upconv2dParams p;
  bool has_bias;
  Upconv2dBackward(const Upconv2dParams& params, bool bias) : p(params), has_bias(bias) {}
  const char* name() const override { return "Upconv2dBackward"; }

  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor& x = inputs[0];
    const Tensor& w = inputs[1];
    const Device dev = x.device();
    const bool cpu_dev = dev.is_cpu();
    Tensor dx, dw, db;
    if (x.requires_grad()) {
      dx = Tensor::empty(x.shape(), DType::Float32, dev);
      if (cpu_dev)
        cpu::upconv2d_backward_data(p, g.data<float>(), w.data<float>(), dx.data<float>());
      else
        cuda::upconv2d_backward_data(p, g.data<float>(), w.data<float>(), dx.data<float>());
    }
    if (w.requires_grad()) {
      dw = Tensor::empty(w.shape(), DType::Float32, dev);
      if (cpu_dev)
        cpu::upconv2d_backward_weight(p, x.data<float>(), g.data<float>(), dw.data<float>());
      else
        cuda::upconv2d_backward_weight(p, x.data<float>(), g.data<float>(), dw.data<float>());
    }
    if (has_bias && inputs[2].requires_grad()) {
      db = Tensor::empty(Shape{p.c_out}, DType::Float32, dev);
      if (cpu_dev)
        cpu::channel_sum(g.data<float>(), p.n, p.c_out, 4 * p.h * p.w, db.data<float>());
      else
        cuda::channel_sum(g.data<float>(), p.n, p.c_out, 4 * p.h * p.w, db.data<float>());
    }
    if (has_bias) return {dx, dw, db};
    return {dx, dw};
  }
};

}  // namespace

Tensor upconv2d(const Tensor& x, const Tensor& w, const Tensor& bias, Precision precision) {
  validate(x, w, bias, precision);
  const Upconv2dParams p{x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(1), precision};
  Tensor y = Tensor::empty(Shape{p.n, p.c_out, 2 * p.h, 2 * p.w}, DType::Float32, x.device());
  const float* b = bias.defined() ? bias.data<float>() : nullptr;
  if (x.device().is_cpu())
    cpu::upconv2d_forward(p, x.data<float>(), w.data<float>(), b, y.data<float>());
  else
    cuda::upconv2d_forward(p, x.data<float>(), w.data<float>(), b, y.data<float>());
  std::vector<Tensor> in = bias.defined() ? std::vector<Tensor>{x, w, bias} : std::vector<Tensor>{x, w};
  if (needs_grad(in)) attach_node(y, std::make_shared<Upconv2dBackward>(p, bias.defined()), in);
  return y;
}

}  // namespace unet
