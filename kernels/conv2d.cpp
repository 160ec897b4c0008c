// kernels/conv2d.cpp — tensor-level conv2d: validation, device dispatch, autograd node.
// The node keeps x and w (inputs) and, with a fused ReLU, the output y (saved[0]) for the mask.
#include "kernels/conv2d.h"

#include "core/autograd.h"
#include "core/error.h"
#include "kernels/elementwise.h"

namespace unet {
namespace {

const char* padding_name(Padding p) { return p == Padding::Same ? "same" : "valid"; }

void validate(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dOptions& o) {
  check_defined(x, "conv2d", "x");
  check_defined(w, "conv2d", "w");
  check_float(x, "conv2d", "x");
  check_float(w, "conv2d", "w");
  check_rank(x, 4, "conv2d", "x [N, Cin, H, W]");
  check_rank(w, 4, "conv2d", "w [Cout, Cin, k, k]");
  check_not_empty(x, "conv2d", "x");
  check_not_empty(w, "conv2d", "w");
  check_same_device(x, w, "conv2d");
  check_precision(o.precision, x.device(), "conv2d");
  UNET_CHECK(w.dim(1) == x.dim(1), ShapeError, "conv2d: w ", w.shape().str(), " expects ", w.dim(1),
             " input channels but x ", x.shape().str(), " has ", x.dim(1));
  UNET_CHECK(w.dim(2) == w.dim(3) && w.dim(2) % 2 == 1, ShapeError, "conv2d: kernel must be square with an odd size (1, 3, 5, ...), got ",
             w.dim(2), "x", w.dim(3), " from w ", w.shape().str());
  const int64_t pad = o.padding == Padding::Same ? w.dim(2) / 2 : 0;
  const int64_t ho = x.dim(2) + 2 * pad - w.dim(2) + 1, wo = x.dim(3) + 2 * pad - w.dim(3) + 1;
  UNET_CHECK(ho > 0 && wo > 0, ShapeError, "conv2d: input ", x.dim(2), "x", x.dim(3), " is too small for a ",
             w.dim(2), "x", w.dim(3), " kernel with ", padding_name(o.padding), " padding (output would be ", ho,
             "x", wo, "); need at least ", w.dim(2), "x", w.dim(3), " or padding 'same'");
  if (bias.defined()) {
    check_float(bias, "conv2d", "bias");
    check_rank(bias, 1, "conv2d", "bias [Cout]");
    check_same_device(x, bias, "conv2d");
    UNET_CHECK(bias.dim(0) == w.dim(0), ShapeError, "conv2d: bias ", bias.shape().str(), " must have Cout = ",
               w.dim(0), " elements (w is ", w.shape().str(), ")");
  }
}

Conv2dParams params_for(const Tensor& x, const Tensor& w, const Conv2dOptions& o) {
  return conv2d_params(x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), o.padding, o.fuse_relu,
                       o.precision);
}

struct Conv2dBackward : Node {
  Conv2dParams p;
  bool has_bias;
  Conv2dBackward(const Conv2dParams& params, bool bias) : p(params), has_bias(bias) {}
  const char* name() const override { return "Conv2dBackward"; }

  std::vector<Tensor> backward(const Tensor& grad_output) override {
    const Tensor& x = inputs[0];
    const Tensor& w = inputs[1];
    const Device dev = x.device();
    const bool cpu_dev = dev.is_cpu();
    const bool want_db = has_bias && inputs[2].requires_grad();
    Tensor g = grad_output, dx, dw, db;
    if (p.relu) {  // dL/d(pre-activation) = g · [y > 0]
      const Tensor& y = saved[0];
      g = Tensor::empty(y.shape(), DType::Float32, dev);
      if (cpu_dev && want_db) {  // one pass for the mask and the bias gradient
        db = Tensor::empty(Shape{p.c_out}, DType::Float32, dev);
        cpu::relu_backward_channel_sum(y.data<float>(), grad_output.data<float>(), p.n, p.c_out, p.h_out * p.w_out,
                                       g.data<float>(), db.data<float>());
      } else if (cpu_dev) {
        cpu::relu_backward(y.data<float>(), grad_output.data<float>(), g.data<float>(), y.numel());
      } else {
        cuda::relu_backward(y.data<float>(), grad_output.data<float>(), g.data<float>(), y.numel());
      }
    }
    if (x.requires_grad()) {
      dx = Tensor::empty(x.shape(), DType::Float32, dev);
      if (cpu_dev)
        cpu::conv2d_backward_data(p, g.data<float>(), w.data<float>(), dx.data<float>());
      else
        cuda::conv2d_backward_data(p, g.data<float>(), w.data<float>(), dx.data<float>());
    }
    if (w.requires_grad()) {
      dw = Tensor::empty(w.shape(), DType::Float32, dev);
      if (cpu_dev)
        cpu::conv2d_backward_weight(p, x.data<float>(), g.data<float>(), dw.data<float>());
      else
        cuda::conv2d_backward_weight(p, x.data<float>(), g.data<float>(), dw.data<float>());
    }
    if (want_db && !db.defined()) {
      db = Tensor::empty(Shape{p.c_out}, DType::Float32, dev);
      if (cpu_dev)
        cpu::channel_sum(g.data<float>(), p.n, p.c_out, p.h_out * p.w_out, db.data<float>());
      else
        cuda::channel_sum(g.data<float>(), p.n, p.c_out, p.h_out * p.w_out, db.data<float>());
    }
    if (has_bias) return {dx, dw, db};
    return {dx, dw};
  }
};

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dOptions& options) {
  validate(x, w, bias, options);
  const Conv2dParams p = params_for(x, w, options);
  Tensor y = Tensor::empty(Shape{p.n, p.c_out, p.h_out, p.w_out}, DType::Float32, x.device());
  const float* b = bias.defined() ? bias.data<float>() : nullptr;
  if (x.device().is_cpu())
    cpu::conv2d_forward(p, x.data<float>(), w.data<float>(), b, y.data<float>());
  else
    cuda::conv2d_forward(p, x.data<float>(), w.data<float>(), b, y.data<float>());
  std::vector<Tensor> in = bias.defined() ? std::vector<Tensor>{x, w, bias} : std::vector<Tensor>{x, w};
  if (needs_grad(in)) {
    auto node = std::make_shared<Conv2dBackward>(p, bias.defined());
    if (p.relu) node->saved.push_back(y.detach());
    attach_node(y, node, in);
  }
  return y;
}

}  // namespace unet
