// kernels/conv2d.cpp — tensor-level conv2d and conv2d_concat: validation, device dispatch,
// autograd nodes. A node keeps its inputs and, with a fused ReLU, the output y (saved[0]) for the
// mask.
#include "kernels/conv2d.h"

#include "core/autograd.h"
#include "core/error.h"
#include "kernels/elementwise.h"

namespace unet {
namespace {

const char* padding_name(Padding p) { return p == Padding::Same ? "same" : "valid"; }

// The checks of w and bias against an input of shape xs on device xd; `op` names the caller.
void validate_weights(const Shape& xs, Device xd, const Tensor& w, const Tensor& bias, const Conv2dOptions& o,
                      const char* op) {
  check_defined(w, op, "w");
  check_float(w, op, "w");
  check_rank(w, 4, op, "w [Cout, Cin, k, k]");
  check_not_empty(w, op, "w");
  UNET_CHECK(w.device() == xd, DeviceError, op, ": the input is on ", xd.str(), " but w on ", w.device().str(),
             " (move one with .to(device))");
  check_precision(o.precision, xd, op);
  UNET_CHECK(w.dim(1) == xs[1], ShapeError, op, ": w ", w.shape().str(), " expects ", w.dim(1),
             " input channels but x ", xs.str(), " has ", xs[1]);
  UNET_CHECK(w.dim(2) == w.dim(3) && w.dim(2) % 2 == 1, ShapeError, op, ": kernel must be square with an odd size (1, 3, 5, ...), got ",
             w.dim(2), "x", w.dim(3), " from w ", w.shape().str());
  const int64_t pad = o.padding == Padding::Same ? w.dim(2) / 2 : 0;
  const int64_t ho = xs[2] + 2 * pad - w.dim(2) + 1, wo = xs[3] + 2 * pad - w.dim(3) + 1;
  UNET_CHECK(ho > 0 && wo > 0, ShapeError, op, ": input ", xs[2], "x", xs[3], " is too small for a ",
             w.dim(2), "x", w.dim(3), " kernel with ", padding_name(o.padding), " padding (output would be ", ho,
             "x", wo, "); need at least ", w.dim(2), "x", w.dim(3), " or padding 'same'");
  if (bias.defined()) {
    check_float(bias, op, "bias");
    check_rank(bias, 1, op, "bias [Cout]");
    UNET_CHECK(bias.device() == xd, DeviceError, op, ": the input is on ", xd.str(), " but bias on ",
               bias.device().str(), " (move one with .to(device))");
    UNET_CHECK(bias.dim(0) == w.dim(0), ShapeError, op, ": bias ", bias.shape().str(), " must have Cout = ",
               w.dim(0), " elements (w is ", w.shape().str(), ")");
  }
}

void validate(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dOptions& o) {
  check_defined(x, "conv2d", "x");
  check_float(x, "conv2d", "x");
  check_rank(x, 4, "conv2d", "x [N, Cin, H, W]");
  check_not_empty(x, "conv2d", "x");
  check_defined(w, "conv2d", "w");
  check_same_device(x, w, "conv2d");
  validate_weights(x.shape(), x.device(), w, bias, o, "conv2d");
}

Conv2dParams params_for(const Shape& xs, const Tensor& w, const Conv2dOptions& o) {
  return conv2d_params(xs[0], xs[1], xs[2], xs[3], w.dim(0), w.dim(2), o.padding, o.fuse_relu, o.precision);
}

const float* data_or_null(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }
float* data_or_null(Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

// What both convolution nodes start their backward with: dL/d(pre-activation) — the incoming
// gradient masked by [y > 0] when the ReLU is fused (y = the node's saved[0]) — and, when wanted,
// the bias gradient (from the same pass over y and the gradient).
struct PreActivation {
  Tensor g, db;
};
PreActivation pre_activation_gradient(const Conv2dParams& p, const Node& node, const Tensor& grad_output,
                                      bool want_db) {
  const Device dev = grad_output.device();
  PreActivation r{grad_output, Tensor()};
  if (p.relu) {  // dL/d(pre-activation) = g · [y > 0]
    const Tensor& y = node.saved[0];
    r.g = Tensor::empty(y.shape(), DType::Float32, dev);
    if (want_db) {  // one pass for the mask and the bias gradient
      r.db = Tensor::empty(Shape{p.c_out}, DType::Float32, dev);
      if (dev.is_cpu())
        cpu::relu_backward_channel_sum(y.data<float>(), grad_output.data<float>(), p.n, p.c_out, p.h_out * p.w_out,
                                       r.g.data<float>(), r.db.data<float>());
      else
        cuda::relu_backward_channel_sum(y.data<float>(), grad_output.data<float>(), p.n, p.c_out, p.h_out * p.w_out,
                                        r.g.data<float>(), r.db.data<float>());
    } else if (dev.is_cpu()) {
      cpu::relu_backward(y.data<float>(), grad_output.data<float>(), r.g.data<float>(), y.numel());
    } else {
      cuda::relu_backward(y.data<float>(), grad_output.data<float>(), r.g.data<float>(), y.numel());
    }
  }
  if (want_db && !r.db.defined()) {
    r.db = Tensor::empty(Shape{p.c_out}, DType::Float32, dev);
    if (dev.is_cpu())
      cpu::channel_sum(r.g.data<float>(), p.n, p.c_out, p.h_out * p.w_out, r.db.data<float>());
    else
      cuda::channel_sum(r.g.data<float>(), p.n, p.c_out, p.h_out * p.w_out, r.db.data<float>());
  }
  return r;
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
    const PreActivation pre = pre_activation_gradient(p, *this, grad_output, has_bias && inputs[2].requires_grad());
    const Tensor& g = pre.g;
    Tensor dx, dw;
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
    if (has_bias) return {dx, dw, pre.db};
    return {dx, dw};
  }
};

// conv2d_concat's device paths: the fused CUDA kernels where they exist (valid 3×3), else the
// concatenation in a temporary (the CPU's path, in cpu::conv2d_concat_*).
bool fused_on_device(const Conv2dParams& p, Device d) { return d.is_cuda() && p.k == 3 && p.pad == 0; }

Tensor concatenation_on_device(const CropConcatParams& c, const Tensor& skip, const Tensor& up) {
  Tensor x = Tensor::empty(Shape{c.batch, c.skip_channels + c.up_channels, c.height, c.width}, DType::Float32,
                           skip.device());
  cuda::crop_concat_forward(c, skip.data<float>(), up.data<float>(), x.data<float>());
  return x;
}

// inputs = {skip, up, w[, bias]}; saved = {y} with a fused ReLU.
struct Conv2dConcatBackward : Node {
  Conv2dParams p;
  CropConcatParams c;
  bool has_bias;
  Conv2dConcatBackward(const Conv2dParams& params, const CropConcatParams& crop, bool bias)
      : p(params), c(crop), has_bias(bias) {}
  const char* name() const override { return "Conv2dConcatBackward"; }

  std::vector<Tensor> backward(const Tensor& grad_output) override {
    const Tensor &skip = inputs[0], &up = inputs[1], &w = inputs[2];
    const Device dev = skip.device();
    const bool fused = fused_on_device(p, dev);
    const PreActivation pre = pre_activation_gradient(p, *this, grad_output, has_bias && inputs[3].requires_grad());
    const float* g = pre.g.data<float>();
    Tensor dskip, dup, dw;
    if (skip.requires_grad()) dskip = Tensor::empty(skip.shape(), DType::Float32, dev);
    if (up.requires_grad()) dup = Tensor::empty(up.shape(), DType::Float32, dev);
    if (dskip.defined() || dup.defined()) {
      if (dev.is_cpu()) {
        cpu::conv2d_concat_backward_data(p, c, g, w.data<float>(), data_or_null(dskip), data_or_null(dup));
      } else if (fused) {
        if (dskip.defined()) cuda::crop_concat_zero_border(c, dskip.data<float>());
        cuda::conv2d_concat_backward_data(p, c, g, w.data<float>(), data_or_null(dskip), data_or_null(dup));
      } else {
        Tensor dx = Tensor::empty(Shape{p.n, p.c_in, p.h, p.w}, DType::Float32, dev);
        cuda::conv2d_backward_data(p, g, w.data<float>(), dx.data<float>());
        cuda::crop_concat_backward(c, dx.data<float>(), data_or_null(dskip), data_or_null(dup));
      }
    }
    if (w.requires_grad()) {
      dw = Tensor::empty(w.shape(), DType::Float32, dev);
      if (dev.is_cpu())
        cpu::conv2d_concat_backward_weight(p, c, skip.data<float>(), up.data<float>(), g, dw.data<float>());
      else if (fused)
        cuda::conv2d_concat_backward_weight(p, c, skip.data<float>(), up.data<float>(), g, dw.data<float>());
      else
        cuda::conv2d_backward_weight(p, concatenation_on_device(c, skip, up).data<float>(), g, dw.data<float>());
    }
    if (has_bias) return {dskip, dup, dw, pre.db};
    return {dskip, dup, dw};
  }
};

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dOptions& options) {
  validate(x, w, bias, options);
  const Conv2dParams p = params_for(x.shape(), w, options);
  Tensor y = Tensor::empty(Shape{p.n, p.c_out, p.h_out, p.w_out}, DType::Float32, x.device());
  const float* b = data_or_null(bias);
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

Tensor conv2d_concat(const Tensor& skip, const Tensor& up, const Tensor& w, const Tensor& bias,
                     const Conv2dOptions& options) {
  constexpr const char* op = "conv2d_concat";
  const CropConcatParams c = crop_concat_params(skip, up, op);
  const Shape xs{c.batch, c.skip_channels + c.up_channels, c.height, c.width};
  validate_weights(xs, skip.device(), w, bias, options, op);
  const Conv2dParams p = params_for(xs, w, options);
  Tensor y = Tensor::empty(Shape{p.n, p.c_out, p.h_out, p.w_out}, DType::Float32, skip.device());
  const float* b = data_or_null(bias);
  if (skip.device().is_cpu())
    cpu::conv2d_concat_forward(p, c, skip.data<float>(), up.data<float>(), w.data<float>(), b, y.data<float>());
  else if (fused_on_device(p, skip.device()))
    cuda::conv2d_concat_forward(p, c, skip.data<float>(), up.data<float>(), w.data<float>(), b, y.data<float>());
  else
    cuda::conv2d_forward(p, concatenation_on_device(c, skip, up).data<float>(), w.data<float>(), b, y.data<float>());
  std::vector<Tensor> in = bias.defined() ? std::vector<Tensor>{skip, up, w, bias} : std::vector<Tensor>{skip, up, w};
  if (needs_grad(in)) {
    auto node = std::make_shared<Conv2dConcatBackward>(p, c, bias.defined());
    if (p.relu) node->saved.push_back(y.detach());
    attach_node(y, node, in);
  }
  return y;
}

}  // namespace unet
