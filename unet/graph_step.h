// unet/graph_step.h — the U-Net's training step (forward, weighted cross-entropy, backward, SGD
// with momentum) captured once as a CUDA graph (core/cuda_graph.h) and replayed: one graph launch
// per step instead of hundreds of kernel launches, and no host work between them.
//
// What a graph fixes at capture, and so what this step requires (ValueError otherwise):
//   * a CUDA model in training mode, without dropout (its masks' seed would be frozen);
//   * the input, labels and weights tensors: the step reads them where they are at every replay,
//     so new data is copied into them (Tensor::copy_from) between steps, same shapes;
//   * the SGD options (the learning rate is a kernel argument: a schedule needs a new step).
// The constructor runs one eager step first — it creates the momentum buffers and checks the
// labels (a captured loss cannot report a bad label: it never reads the device back) — then
// captures the next; run() replays it. The eager step counts: after construction and k run()s the
// model has taken k + 1 steps, bit for bit as k + 1 eager steps would (tests/test_cuda_graph.cpp).
#pragma once

#include <memory>
#include <vector>

#include "core/cuda_graph.h"
#include "core/tensor.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "unet/model.h"

namespace unet {

class GraphTrainingStep {
 public:
  // The model, tensors and velocities must outlive the step; velocities: empty or one per parameter.
  GraphTrainingStep(UNet& model, const Tensor& input, const Tensor& labels, const Tensor& weights,
                    LossReduction reduction, const SgdOptions& sgd, std::vector<Tensor>& velocities);
  GraphTrainingStep(const GraphTrainingStep&) = delete;
  GraphTrainingStep& operator=(const GraphTrainingStep&) = delete;

  // One training step on the current contents of input/labels/weights.
  void run();
  // The loss of the last step, on the device (read it with item() when needed: that synchronises).
  const Tensor& loss() const { return loss_; }
  size_t operations() const { return graph_->operations(); }

 private:
  void step();  // the eager step, also what is captured

  UNet& model_;
  Tensor input_, labels_, weights_;
  LossReduction reduction_;
  SgdOptions sgd_;
  std::vector<Tensor>& velocities_;
  Tensor loss_;
  std::unique_ptr<CudaGraph> graph_;
};

}  // namespace unet
