// kernels/crop_concat.cpp — tensor-level crop-and-concatenate: validation, device dispatch,
// autograd (gradients for whichever inputs require one).
#include "kernels/crop_concat.h"

#include "core/autograd.h"
#include "core/error.h"

namespace unet {
namespace {

// inputs = {skip, up}.
struct CropConcatBackward : Node {
  CropConcatParams p;
  explicit CropConcatBackward(const CropConcatParams& params) : p(params) {}
  const char* name() const override { return "CropConcatBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor dskip, dup;
    if (inputs[0].requires_grad()) dskip = Tensor::empty(inputs[0].shape(), DType::Float32, g.device());
    if (inputs[1].requires_grad()) dup = Tensor::empty(inputs[1].shape(), DType::Float32, g.device());
    float* ds = dskip.defined() ? dskip.data<float>() : nullptr;
    float* du = dup.defined() ? dup.data<float>() : nullptr;
    if (g.device().is_cpu())
      cpu::crop_concat_backward(p, g.data<float>(), ds, du);
    else
      cuda::crop_concat_backward(p, g.data<float>(), ds, du);
    return {dskip, dup};
  }
};

void check_fits(int64_t skip_size, int64_t up_size, const char* what, const Tensor& skip,
                const Tensor& up, const char* op) {
  UNET_CHECK(skip_size >= up_size, ShapeError, op, ": the skip map ", skip.shape().str(),
             " is smaller than the upsampled map ", up.shape().str(), " in ", what,
             ": the skip must be at least as large, since it is cropped to the upsampled size");
  UNET_CHECK((skip_size - up_size) % 2 == 0, ShapeError, op, ": skip ",
             skip.shape().str(), " and upsampled ", up.shape().str(), " differ by ",
             skip_size - up_size, " in ", what,
             ", an odd number: the crop must be centred, so the difference must be even");
}

}  // namespace

CropConcatParams crop_concat_params(const Tensor& skip, const Tensor& up, const char* op) {
  check_float(skip, op, "skip");
  check_float(up, op, "up");
  check_rank(skip, 4, op, "skip");
  check_rank(up, 4, op, "up");
  check_not_empty(skip, op, "skip");
  check_not_empty(up, op, "up");
  check_same_device(skip, up, op);
  UNET_CHECK(skip.dim(0) == up.dim(0), ShapeError, op, ": batch sizes differ: skip ",
             skip.shape().str(), " vs upsampled ", up.shape().str());
  check_fits(skip.dim(2), up.dim(2), "height", skip, up, op);
  check_fits(skip.dim(3), up.dim(3), "width", skip, up, op);
  return CropConcatParams{skip.dim(0), skip.dim(1), skip.dim(2), skip.dim(3), up.dim(1),
                          up.dim(2),  up.dim(3),   (skip.dim(2) - up.dim(2)) / 2,
                          (skip.dim(3) - up.dim(3)) / 2};
}

Tensor crop_concat(const Tensor& skip, const Tensor& up) {
  const CropConcatParams p = crop_concat_params(skip, up);
  Tensor out = Tensor::empty(Shape{p.batch, p.skip_channels + p.up_channels, p.height, p.width},
                             DType::Float32, skip.device());
  if (skip.device().is_cpu())
    cpu::crop_concat_forward(p, skip.data<float>(), up.data<float>(), out.data<float>());
  else
    cuda::crop_concat_forward(p, skip.data<float>(), up.data<float>(), out.data<float>());
  if (needs_grad({skip, up})) attach_node(out, std::make_shared<CropConcatBackward>(p), {skip, up});
  return out;
}

}  // namespace unet
