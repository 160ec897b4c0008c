// unet/graph_step.cpp — GraphTrainingStep: one eager step, then the same step captured and replayed.
#include "unet/graph_step.h"

#include "core/autograd.h"
#include "core/error.h"

namespace unet {

GraphTrainingStep::GraphTrainingStep(UNet& model, const Tensor& input, const Tensor& labels, const Tensor& weights,
                                     LossReduction reduction, const SgdOptions& sgd,
                                     std::vector<Tensor>& velocities)
    : model_(model), input_(input), labels_(labels), weights_(weights), reduction_(reduction), sgd_(sgd),
      velocities_(velocities) {
  UNET_CHECK(model.device().is_cuda(), DeviceError, "GraphTrainingStep: the model is on ", model.device().str(),
             "; CUDA graphs capture CUDA work only (train CPU models step by step)");
  UNET_CHECK(model.training(), ValueError, "GraphTrainingStep: the model is in evaluation mode; set_training(true) first");
  UNET_CHECK(model.config().dropout == 0.0f, ValueError, "GraphTrainingStep: the model has dropout ",
             model.config().dropout, ", whose masks' seed a graph would freeze; use dropout 0 or eager steps");
  for (const Tensor* t : {&input, &labels, &weights})
    UNET_CHECK(t->defined() && t->device() == model.device(), DeviceError,
               "GraphTrainingStep: input, labels and weights must be tensors on the model's device ",
               model.device().str(), " (the graph reads them in place at every replay)");
  step();  // eager: creates the velocities, checks the labels, warms the allocator
  const std::string signature = input.shape().str() + " " + labels.shape().str();
  graph_ = std::make_unique<CudaGraph>([this] { step(); }, signature);
}

void GraphTrainingStep::step() {
  model_.zero_grad();
  const Tensor logits = model_.forward(input_);
  loss_ = weighted_cross_entropy(logits, labels_, weights_, reduction_);
  loss_.backward();
  NoGradGuard no_grad;
  sgd_step(model_.parameters(), velocities_, sgd_);
}

void GraphTrainingStep::run() { graph_->replay(graph_->signature()); }

}  // namespace unet
