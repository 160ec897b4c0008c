// kernels/sgd.cu — the fused SGD-with-momentum update (and weight average): ONE launch for all
// parameters. The kernel reads a device table of {param, grad, velocity, count, average} slots
// and, slot after slot, grid-strides over that tensor's elements, so every launch-sized chunk of
// work stays coalesced and tiny tensors (biases) cost no extra launch. Elementwise, so the
// result does not depend on the grid; each element is read and written by exactly one thread.
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/sgd.h"

namespace unet::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

__global__ void sgd_kernel(const SgdSlot<float>* __restrict__ slots, int64_t num_slots, float lr,
                           float mu, float wd, float keep, float gs) {
  const int64_t start = kern::global_index();
  const int64_t stride = kern::grid_stride();
  for (int64_t s = 0; s < num_slots; ++s) {
    const SgdSlot<float> slot = slots[s];
    for (int64_t i = start; i < slot.count; i += stride) {
      const float v = mu * slot.velocity[i] + (gs * slot.grad[i] + wd * slot.param[i]);
      slot.velocity[i] = v;
      const float p = slot.param[i] - lr * v;
      slot.param[i] = p;
      if (slot.average) slot.average[i] += keep * (p - slot.average[i]);
    }
  }
}

}  // namespace

void sgd_step(const SgdSlot<float>* slots, int64_t num_slots, int64_t max_count,
              const SgdOptions& o) {
  if (num_slots == 0 || max_count == 0) return;
  kern::launch(sgd_kernel, kern::linear_grid(max_count, kThreads, kMaxBlocks), dim3(kThreads), 0, slots,
               num_slots, o.learning_rate, o.momentum, o.weight_decay, 1.0f - o.average_decay, o.gradient_scale);
}

}  // namespace unet::cuda
