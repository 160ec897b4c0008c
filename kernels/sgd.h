// kernels/sgd.h — stochastic gradient descent with momentum and optional weight decay: one fused
// in-place update over all parameters (one CUDA launch per step, however many tensors).
//
// Convention (PyTorch's torch.optim.SGD with dampening 0, nesterov off), per element:
//   g' = gradient_scale · g + weight_decay · p
//   v  = momentum · v + g'          (v starts at 0, so the first step sets v = g')
//   p  = p - learning_rate · v
// The paper trains with momentum 0.99. A parameter without a gradient (grad() undefined: no
// backward reached it) is skipped: neither it nor its velocity (nor its average) changes.
//
// Optional weight averaging (an exponential moving average of the iterates, Polyak-style), in
// the same pass so the parameters are read once: with averages and average_decay d,
//   a  = a + (1 - d) · (p - a)      (after the update of p)
// The caller owns the decay schedule (see Trainer: a short horizon at the start).
// Not differentiable: the update runs under NoGradGuard and writes the parameters in place.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace unet {

struct SgdOptions {
  float learning_rate = 0.0f;  // must be set: > 0 (0 is refused, so a forgotten value shows)
  float momentum = 0.99f;      // in [0, 1)
  float weight_decay = 0.0f;   // >= 0
  float average_decay = 0.0f;  // in [0, 1); used only when averages are passed
  // Multiplies every gradient before it enters the velocity: gradient-norm clipping (Trainer,
  // TrainOptions::max_grad_norm) scales the step's whole gradient by max / norm this way, in the
  // same pass. Finite and > 0; 1 = the gradient as it is.
  float gradient_scale = 1.0f;
};

// params: float32 tensors on one device. velocities: either empty (then sized to params) or one
// entry per parameter; an undefined entry becomes zeros shaped like its parameter. Throws
// ValueError for bad options or list sizes, ShapeError/DeviceError/DTypeError for a velocity that
// does not match its parameter or parameters on several devices.
// averages: null (no averaging) or, like velocities, empty or one entry per parameter; an
// undefined entry starts as a copy of its parameter before this step.
void sgd_step(const std::vector<Tensor>& params, std::vector<Tensor>& velocities,
              const SgdOptions& options, std::vector<Tensor>* averages = nullptr);

// One parameter tensor's buffers, as the launchers see them (device pointers for CUDA).
template <typename T> struct SgdSlot {
  T* param = nullptr;
  const T* grad = nullptr;
  T* velocity = nullptr;
  int64_t count = 0;
  T* average = nullptr;  // null: no averaging for this tensor
};

// ---- launchers -------------------------------------------------------------------------------
namespace cpu {
// slots: host array of num_slots entries.
template <typename T>
void sgd_step(const SgdSlot<T>* slots, int64_t num_slots, const SgdOptions& options);
}  // namespace cpu

namespace cuda {
// slots: DEVICE array of num_slots entries; max_count: the largest slot's count (sizes the grid).
void sgd_step(const SgdSlot<float>* slots, int64_t num_slots, int64_t max_count,
              const SgdOptions& options);
}  // namespace cuda

}  // namespace unet
