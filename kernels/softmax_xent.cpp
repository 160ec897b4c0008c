// kernels/softmax_xent.cpp — tensor-level loss and inference head: validation, device dispatch,
// and the loss's autograd node (which keeps the fused forward's d(logits) in `saved`).
#include "kernels/softmax_xent.h"

#include "core/autograd.h"
#include "core/error.h"

namespace unet {
namespace {

XentParams check_logits(const Tensor& logits, const char* op) {
  check_float(logits, op, "logits");
  check_rank(logits, 4, op, "logits");
  check_not_empty(logits, op, "logits");
  return XentParams{logits.dim(0), logits.dim(1), logits.dim(2) * logits.dim(3), LossReduction::Sum};
}

// saved = {unscaled d(logits), grad_scale (scalar)}; inputs = {logits, labels, weights}.
struct WeightedXentBackward : Node {
  const char* name() const override { return "WeightedXentBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor& d = saved[0];
    const Tensor& grad_scale = saved[1];
    Tensor dx = Tensor::empty(d.shape(), DType::Float32, d.device());
    if (d.device().is_cpu())
      cpu::weighted_xent_backward(d.data<float>(), g.data<float>(), grad_scale.data<float>(),
                                  dx.data<float>(), d.numel());
    else
      cuda::weighted_xent_backward(d.data<float>(), g.data<float>(), grad_scale.data<float>(),
                                   dx.data<float>(), d.numel());
    return {dx, Tensor(), Tensor()};
  }
};

}  // namespace

Tensor weighted_cross_entropy(const Tensor& logits, const Tensor& labels, const Tensor& weights,
                              LossReduction reduction) {
  constexpr const char* op = "weighted_cross_entropy";
  XentParams p = check_logits(logits, op);
  check_int(labels, op, "labels");
  check_float(weights, op, "weights");
  check_same_device(logits, labels, op);
  check_same_device(logits, weights, op);
  const Shape pixel_shape{logits.dim(0), logits.dim(2), logits.dim(3)};
  UNET_CHECK(labels.shape() == pixel_shape, ShapeError, op, ": labels must be [N, H, W] = ",
             pixel_shape.str(), " for logits ", logits.shape().str(), ", got ",
             labels.shape().str());
  UNET_CHECK(weights.shape() == pixel_shape, ShapeError, op, ": weights must be [N, H, W] = ",
             pixel_shape.str(), " for logits ", logits.shape().str(), ", got ",
             weights.shape().str());
  p.reduction = reduction;

  const Device dev = logits.device();
  Tensor loss = Tensor::empty(Shape{}, DType::Float32, dev);
  Tensor grad_scale = Tensor::empty(Shape{}, DType::Float32, dev);
  Tensor dlogits = Tensor::empty(logits.shape(), DType::Float32, dev);
  const int64_t bad =
      dev.is_cpu()
          ? cpu::weighted_xent_forward(p, logits.data<float>(), labels.data<int32_t>(),
                                       weights.data<float>(), dlogits.data<float>(),
                                       loss.data<float>(), grad_scale.data<float>())
          : cuda::weighted_xent_forward(p, logits.data<float>(), labels.data<int32_t>(),
                                        weights.data<float>(), dlogits.data<float>(),
                                        loss.data<float>(), grad_scale.data<float>());
  if (bad >= 0) {
    const int32_t label = labels.view(Shape{labels.numel()}).to_host().data<int32_t>()[bad];
    const int64_t hw = p.pixels, w = logits.dim(3);
    UNET_THROW(ValueError, op, ": label ", label, " at (n=", bad / hw, ", y=", (bad % hw) / w,
               ", x=", bad % w, ") is outside [0, ", p.classes, "): labels must be class indices ",
               "below K = ", p.classes, " (the logits' channel count)");
  }
  if (needs_grad({logits})) {
    auto node = std::make_shared<WeightedXentBackward>();
    node->saved = {dlogits, grad_scale};
    attach_node(loss, node, {logits, labels, weights});
  }
  return loss;
}

Tensor softmax(const Tensor& logits) {
  const XentParams p = check_logits(logits, "softmax");
  Tensor probs = Tensor::empty(logits.shape(), DType::Float32, logits.device());
  if (logits.device().is_cpu())
    cpu::softmax_channels(p, logits.data<float>(), probs.data<float>());
  else
    cuda::softmax_channels(p, logits.data<float>(), probs.data<float>());
  return probs;
}

Tensor argmax_channels(const Tensor& logits) {
  const XentParams p = check_logits(logits, "argmax_channels");
  Tensor classes = Tensor::empty(Shape{logits.dim(0), logits.dim(2), logits.dim(3)}, DType::Int32,
                                 logits.device());
  if (logits.device().is_cpu())
    cpu::argmax_channels(p, logits.data<float>(), classes.data<int32_t>());
  else
    cuda::argmax_channels(p, logits.data<float>(), classes.data<int32_t>());
  return classes;
}

}  // namespace unet
