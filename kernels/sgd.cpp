// kernels/sgd.cpp — tensor-level SGD step: validation, velocity and average set-up, the slot
// table (copied to the device for the single CUDA launch) and dispatch.
#include "kernels/sgd.h"

#include <cmath>

#include "core/autograd.h"
#include "core/error.h"

namespace unet {

void sgd_step(const std::vector<Tensor>& params, std::vector<Tensor>& velocities,
              const SgdOptions& o, std::vector<Tensor>* averages) {
  constexpr const char* op = "sgd_step";
  UNET_CHECK(std::isfinite(o.learning_rate) && o.learning_rate > 0.0f, ValueError, op,
             ": learning_rate must be finite and > 0, got ", o.learning_rate);
  UNET_CHECK(o.momentum >= 0.0f && o.momentum < 1.0f, ValueError, op,
             ": momentum must be in [0, 1), got ", o.momentum);
  UNET_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0.0f, ValueError, op,
             ": weight_decay must be finite and >= 0, got ", o.weight_decay);
  UNET_CHECK(o.average_decay >= 0.0f && o.average_decay < 1.0f, ValueError, op,
             ": average_decay must be in [0, 1), got ", o.average_decay);
  UNET_CHECK(std::isfinite(o.gradient_scale) && o.gradient_scale > 0.0f, ValueError, op,
             ": gradient_scale must be finite and > 0, got ", o.gradient_scale);
  if (velocities.empty()) velocities.resize(params.size());
  if (averages && averages->empty()) averages->resize(params.size());
  UNET_CHECK(!averages || averages->size() == params.size(), ValueError, op, ": ", params.size(),
             " parameters but ", averages ? averages->size() : 0,
             " averages; pass one average per parameter (or an empty list to create them)");
  UNET_CHECK(velocities.size() == params.size(), ValueError, op, ": ", params.size(),
             " parameters but ", velocities.size(),
             " velocities; pass one velocity per parameter (or an empty list to create them)");
  if (params.empty()) return;

  NoGradGuard no_grad;
  const Device dev = params[0].defined() ? params[0].device() : Device::cpu();
  std::vector<SgdSlot<float>> slots;
  int64_t max_count = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    check_float(p, op, "params[i]");
    UNET_CHECK(p.device() == dev, DeviceError, op, ": parameter ", i, " is on ", p.device().str(),
               " but parameter 0 is on ", dev.str(), "; one step updates parameters of one device");
    Tensor& v = velocities[i];
    if (!v.defined()) v = Tensor::zeros(p.shape(), DType::Float32, dev);
    check_float(v, op, "velocities[i]");
    UNET_CHECK(v.device() == dev, DeviceError, op, ": velocity ", i, " is on ", v.device().str(),
               " but its parameter is on ", dev.str(), "; they must be on the same device");
    UNET_CHECK(v.shape() == p.shape(), ShapeError, op, ": velocity ", i, " is ", v.str(),
               " but its parameter is ", p.str(), "; the shapes must match");
    float* average = nullptr;
    if (averages) {
      Tensor& a = (*averages)[i];
      if (!a.defined()) a = p.clone();
      check_float(a, op, "averages[i]");
      UNET_CHECK(a.device() == dev, DeviceError, op, ": average ", i, " is on ", a.device().str(),
                 " but its parameter is on ", dev.str(), "; they must be on the same device");
      UNET_CHECK(a.shape() == p.shape(), ShapeError, op, ": average ", i, " is ", a.str(),
                 " but its parameter is ", p.str(), "; the shapes must match");
      average = a.data<float>();
    }
    const Tensor g = p.grad();
    if (!g.defined() || p.numel() == 0) continue;  // no gradient reached it: skip
    UNET_CHECK(g.shape() == p.shape() && g.device() == dev, ShapeError, op, ": gradient of parameter ",
               i, " is ", g.str(), " but the parameter is ", p.str());
    slots.push_back({p.data<float>(), g.data<float>(), v.data<float>(), p.numel(), average});
    if (p.numel() > max_count) max_count = p.numel();
  }
  if (slots.empty()) return;
  if (dev.is_cpu()) {
    cpu::sgd_step(slots.data(), static_cast<int64_t>(slots.size()), o);
    return;
  }
  // The slot table travels to the device as raw bytes in an int32 tensor (the allocator's
  // alignment covers the pointers and int64 inside).
  static_assert(sizeof(SgdSlot<float>) % sizeof(int32_t) == 0);
  const int64_t words = static_cast<int64_t>(slots.size() * sizeof(SgdSlot<float>) / sizeof(int32_t));
  const Tensor table =
      Tensor::from_host(reinterpret_cast<const int32_t*>(slots.data()), Shape{words}, dev);
  cuda::sgd_step(reinterpret_cast<const SgdSlot<float>*>(table.data<int32_t>()),
                 static_cast<int64_t>(slots.size()), max_count, o);
}

}  // namespace unet
