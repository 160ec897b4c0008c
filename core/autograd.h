// core/autograd.h — the tape: graph nodes, the backward engine and the no-grad scope.
//
// An op computes its output with a launcher, then (if grad mode is on and an input requires a
// gradient) attaches a Node that keeps what its backward needs. backward() orders the nodes
// reachable from the root by reverse topological order, hands each node the gradient of its
// output, and routes the returned input gradients onward. Gradients that meet at one tensor (a
// feature map used by two ops, as U-Net's skip connections are) are summed; leaf gradients
// accumulate into Tensor::grad() across backward calls until zero_grad(). After a pass the graph
// is freed: saved activations are released at once, and a second backward through the same
// graph throws ValueError.
#pragma once

#include <memory>
#include <vector>

#include "core/tensor.h"

namespace unet {

class Node {
 public:
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // Gradients with respect to inputs[i], in order; an undefined Tensor where no gradient flows
  // (e.g. integer labels). Called once, with a gradient shaped like the op's output.
  virtual std::vector<Tensor> backward(const Tensor& grad_output) = 0;

  std::vector<Tensor> inputs;  // the op's inputs (handles): the edges of the graph
  // Tensors the backward needs beyond the inputs (argmax indices, masks, a fused loss's
  // d(logits)). Kept here, not in members, so the engine can free them after the pass.
  std::vector<Tensor> saved;
};

// True when the op should record a node: grad mode is on and some input requires a gradient.
bool needs_grad(const std::vector<Tensor>& inputs);
// Marks `output` as produced by `node` from `inputs` (sets requires_grad and grad_fn).
void attach_node(Tensor& output, std::shared_ptr<Node> node, std::vector<Tensor> inputs);

// Sums two gradients of the same shape and device into a new tensor. Declared in core because
// the engine needs it; defined next to the elementwise ops (kernels/elementwise.cpp), the one op
// family the engine relies on.
Tensor add_gradients(const Tensor& a, const Tensor& b);
// a += b in place, for a sum the engine owns alone (nothing else reaches a's memory); CPU only
// (the engine checks both). The same additions as add_gradients, so the same bits.
void add_gradients_in_place(Tensor& a, const Tensor& b);

bool grad_enabled();

// Disables graph recording in its scope (inference, optimiser updates). Nests.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace unet
