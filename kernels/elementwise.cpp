// kernels/elementwise.cpp — tensor-level elementwise ops: validation, device dispatch, autograd.
#include "kernels/elementwise.h"

#include <cmath>

#include "core/autograd.h"
#include "core/error.h"

namespace unet {
namespace {

void check_binary(const Tensor& a, const Tensor& b, const char* op) {
  check_float(a, op, "a");
  check_float(b, op, "b");
  check_same_device(a, b, op);
  check_same_shape(a, b, op);
}

Tensor add_raw(const Tensor& a, const Tensor& b) {
  Tensor out = Tensor::empty(a.shape(), DType::Float32, a.device());
  if (a.device().is_cpu())
    cpu::add(a.data<float>(), b.data<float>(), out.data<float>(), a.numel());
  else
    cuda::add(a.data<float>(), b.data<float>(), out.data<float>(), a.numel());
  return out;
}

Tensor mul_raw(const Tensor& a, const Tensor& b) {
  Tensor out = Tensor::empty(a.shape(), DType::Float32, a.device());
  if (a.device().is_cpu())
    cpu::mul(a.data<float>(), b.data<float>(), out.data<float>(), a.numel());
  else
    cuda::mul(a.data<float>(), b.data<float>(), out.data<float>(), a.numel());
  return out;
}

Tensor affine_raw(const Tensor& x, float factor, float offset) {
  Tensor out = Tensor::empty(x.shape(), DType::Float32, x.device());
  if (x.device().is_cpu())
    cpu::affine(x.data<float>(), factor, offset, out.data<float>(), x.numel());
  else
    cuda::affine(x.data<float>(), factor, offset, out.data<float>(), x.numel());
  return out;
}

struct AddBackward : Node {
  const char* name() const override { return "AddBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g, g}; }
};

struct MulBackward : Node {
  const char* name() const override { return "MulBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {mul_raw(g, inputs[1]), mul_raw(g, inputs[0])};
  }
};

struct AffineBackward : Node {
  float factor;
  explicit AffineBackward(float f) : factor(f) {}
  const char* name() const override { return "AffineBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {affine_raw(g, factor, 0.0f)}; }
};

struct ReluBackward : Node {
  const char* name() const override { return "ReluBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor& x = inputs[0];
    Tensor dx = Tensor::empty(x.shape(), DType::Float32, x.device());
    if (x.device().is_cpu())
      cpu::relu_backward(x.data<float>(), g.data<float>(), dx.data<float>(), x.numel());
    else
      cuda::relu_backward(x.data<float>(), g.data<float>(), dx.data<float>(), x.numel());
    return {dx};
  }
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  check_binary(a, b, "add");
  Tensor out = add_raw(a, b);
  if (needs_grad({a, b})) attach_node(out, std::make_shared<AddBackward>(), {a, b});
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_binary(a, b, "mul");
  Tensor out = mul_raw(a, b);
  if (needs_grad({a, b})) attach_node(out, std::make_shared<MulBackward>(), {a, b});
  return out;
}

Tensor affine(const Tensor& x, float factor, float offset) {
  check_float(x, "affine", "x");
  UNET_CHECK(std::isfinite(factor) && std::isfinite(offset), ValueError,
             "affine: factor and offset must be finite, got ", factor, " and ", offset);
  Tensor out = affine_raw(x, factor, offset);
  if (needs_grad({x})) attach_node(out, std::make_shared<AffineBackward>(factor), {x});
  return out;
}

Tensor scale(const Tensor& x, float factor) { return affine(x, factor, 0.0f); }

Tensor relu(const Tensor& x) {
  check_float(x, "relu", "x");
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  if (x.device().is_cpu())
    cpu::relu_forward(x.data<float>(), y.data<float>(), x.numel());
  else
    cuda::relu_forward(x.data<float>(), y.data<float>(), x.numel());
  if (needs_grad({x})) attach_node(y, std::make_shared<ReluBackward>(), {x});
  return y;
}

// Declared in core/autograd.h: the engine sums gradients that meet at one tensor with this.
Tensor add_gradients(const Tensor& a, const Tensor& b) {
  check_binary(a, b, "add_gradients");
  return add_raw(a, b);
}

// Declared in core/autograd.h. cpu::add reads a[i] and b[i] before it writes out[i], one index at
// a time, so out may be a.
void add_gradients_in_place(Tensor& a, const Tensor& b) {
  check_binary(a, b, "add_gradients_in_place");
  UNET_CHECK(a.device().is_cpu(), DeviceError, "add_gradients_in_place: CPU tensors only, got ", a.str());
  cpu::add(a.data<float>(), b.data<float>(), a.data<float>(), a.numel());
}

}  // namespace unet
