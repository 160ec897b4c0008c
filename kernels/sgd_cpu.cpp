// kernels/sgd_cpu.cpp — CPU reference (and CPU backend) for the SGD-with-momentum update:
// elementwise, parallel within each parameter tensor.
#include "core/parallel.h"
#include "kernels/sgd.h"

namespace unet::cpu {

template <typename T>
void sgd_step(const SgdSlot<T>* slots, int64_t num_slots, const SgdOptions& o) {
  const T lr = o.learning_rate, mu = o.momentum, wd = o.weight_decay, keep = T(1) - T(o.average_decay);
  const T gs = o.gradient_scale;
  for (int64_t s = 0; s < num_slots; ++s) {
    const SgdSlot<T> slot = slots[s];
    parallel_for(0, slot.count, 1 << 15, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const T v = mu * slot.velocity[i] + (gs * slot.grad[i] + wd * slot.param[i]);
        slot.velocity[i] = v;
        slot.param[i] -= lr * v;
      }
      if (slot.average)
        for (int64_t i = b; i < e; ++i) slot.average[i] += keep * (slot.param[i] - slot.average[i]);
    });
  }
}

template void sgd_step<float>(const SgdSlot<float>*, int64_t, const SgdOptions&);
template void sgd_step<double>(const SgdSlot<double>*, int64_t, const SgdOptions&);

}  // namespace unet::cpu
