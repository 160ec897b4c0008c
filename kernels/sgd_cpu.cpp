// kernels/sgd_cpu.cpp — CPU reference (and CPU backend) for the SGD-with-momentum update:
// elementwise, one parallel pass over all parameter tensors at once.
//
// The slots are laid end to end as one index space and split into equal chunks, so a step is a
// single fork/join whatever the number of tensors, and the many small tensors of a U-Net (biases,
// the deep layers' few thousand weights) no longer run one by one on one thread each with its own
// fork/join. Inside a chunk each slot's piece is one tight loop over raw pointers that the
// compiler vectorises. Every element gets the same expression as before, in the same order of
// operations: the bits do not depend on the chunking or the thread count.
#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "kernels/sgd.h"

namespace unet::cpu {
namespace {

// Elements [b, e) of one slot. __restrict: the parameter, gradient, velocity and average buffers
// are distinct tensors (sgd.cpp checks shapes and devices; an optimiser never aliases them), and
// without it the compiler checks for overlap or stays scalar.
template <typename T>
void update(T* __restrict param, const T* __restrict grad, T* __restrict velocity, T* __restrict average, int64_t b,
            int64_t e, T lr, T mu, T wd, T gs, T keep) {
  for (int64_t i = b; i < e; ++i) {
    const T v = mu * velocity[i] + (gs * grad[i] + wd * param[i]);
    velocity[i] = v;
    param[i] -= lr * v;
  }
  if (average)
    for (int64_t i = b; i < e; ++i) average[i] += keep * (param[i] - average[i]);
}

}  // namespace

template <typename T>
void sgd_step(const SgdSlot<T>* slots, int64_t num_slots, const SgdOptions& o) {
  const T lr = o.learning_rate, mu = o.momentum, wd = o.weight_decay, keep = T(1) - T(o.average_decay);
  const T gs = o.gradient_scale;
  // start[s]: the first global index of slot s; start[num_slots]: the total.
  std::vector<int64_t> start(static_cast<size_t>(num_slots) + 1, 0);
  for (int64_t s = 0; s < num_slots; ++s) start[s + 1] = start[s] + slots[s].count;
  const int64_t total = start[num_slots];
  parallel_for(0, total, 1 << 14, [&](int64_t b, int64_t e) {
    // The first slot that holds index b, then every slot the chunk overlaps.
    int64_t s = std::upper_bound(start.begin(), start.end(), b) - start.begin() - 1;
    for (; s < num_slots && start[s] < e; ++s) {
      const SgdSlot<T>& slot = slots[s];
      const int64_t lo = std::max(b, start[s]) - start[s], hi = std::min(e, start[s + 1]) - start[s];
      if (lo < hi) update(slot.param, slot.grad, slot.velocity, slot.average, lo, hi, lr, mu, wd, gs, keep);
    }
  });
}

template void sgd_step<float>(const SgdSlot<float>*, int64_t, const SgdOptions&);
template void sgd_step<double>(const SgdSlot<double>*, int64_t, const SgdOptions&);

}  // namespace unet::cpu
