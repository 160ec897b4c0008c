// core/autograd.cpp — the backward engine and grad-mode switch.
#include "core/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "core/error.h"

namespace unet {
namespace {
thread_local bool grad_mode = true;

// Depth-first post-order from `root`, iterative (a U-Net graph is ~60 nodes deep, but user
// graphs may be much deeper than the stack allows).
// Owning pointers: freeing the graph afterwards drops edges, which must not destroy a node the
// pass still walks.
std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> visited;
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
  visited.insert(root.get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      std::shared_ptr<Node> child = in.defined() ? in.impl()->grad_fn : nullptr;
      if (child && visited.insert(child.get()).second) stack.push_back({std::move(child), 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  return {order.rbegin(), order.rend()};  // root first
}

// True when nothing but `g` reaches its memory: no other handle, no view, not borrowed (a caller's
// array, a part of a larger block), no graph.
bool sole_owner(const std::shared_ptr<TensorImpl>& impl) {
  return impl.use_count() == 1 && impl->storage.use_count() == 1 && !impl->storage->borrowed() && !impl->grad_fn &&
         !impl->grad;
}

// acc += g for a gradient sum the pass (or the leaf) owns: in place when nothing else reaches acc's
// memory and it is on the CPU, else into a new tensor. In place saves a fresh allocation (new
// pages) and a stream per sum, e.g. where every skip connection's two gradients meet. The sum is
// the same `acc[i] + g[i]` either way, so the bits are too. (The CUDA add kernel declares its
// pointers __restrict__, so the GPU keeps the new tensor.)
void sum_into(Tensor& acc, const Tensor& g) {
  if (sole_owner(acc.impl()) && acc.device().is_cpu()) {
    add_gradients_in_place(acc, g);
    return;
  }
  acc = add_gradients(acc, g);
}

// A leaf's first gradient becomes its grad: copied, or, when the pass owns it alone (`owned`: a
// node's backward result that sole_owner confirms), taken as it is: the copy was a serial memmove of
// every weight gradient in each step. Either way no other tensor shares the grad's memory, so an
// in-place change to it (the gradient reducer's) reaches nothing else.
void accumulate_leaf(const Tensor& leaf, const Tensor& g, bool owned) {
  TensorImpl& impl = *leaf.impl();
  if (impl.grad) {
    Tensor acc(std::move(impl.grad));  // moved, not copied: sole_owner still sees one handle
    try {
      sum_into(acc, g);  // in place unless someone else holds the grad (a grad() handle): then a new one
    } catch (...) {
      impl.grad = acc.impl();  // sum_into validates before it writes: the grad is as it was
      throw;
    }
    impl.grad = acc.impl();
  } else
    impl.grad = owned && sole_owner(g.impl()) ? g.impl() : g.clone().impl();
}

}  // namespace

bool grad_enabled() { return grad_mode; }

NoGradGuard::NoGradGuard() : previous_(grad_mode) { grad_mode = false; }
NoGradGuard::~NoGradGuard() { grad_mode = previous_; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!grad_mode) return false;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) return true;
  return false;
}

void attach_node(Tensor& output, std::shared_ptr<Node> node, std::vector<Tensor> inputs) {
  node->inputs = std::move(inputs);
  output.impl()->requires_grad = true;
  output.impl()->grad_fn = std::move(node);
}

void Tensor::backward() const {
  require_defined("backward");
  UNET_CHECK(numel() == 1, ShapeError,
             "backward() without a gradient needs a tensor with one element (a loss), got ", str(),
             "; pass the output gradient explicitly");
  backward(Tensor::full(shape(), 1.0f, device()));
}

void Tensor::backward(const Tensor& grad_output) const { backward(grad_output, nullptr); }

void Tensor::backward(const Tensor& grad_output, const std::function<void(const Tensor&)>& leaf_ready) const {
  require_defined("backward");
  check_float(grad_output, "Tensor::backward", "grad_output");
  check_same_shape(*this, grad_output, "Tensor::backward");
  check_same_device(*this, grad_output, "Tensor::backward");
  UNET_CHECK(requires_grad(), ValueError,
             "backward() on a tensor that does not require a gradient: ", str(),
             " (no input of the computation had requires_grad set, or it ran under NoGradGuard)");
  NoGradGuard no_grad;  // gradient computations are not themselves recorded
  if (!impl_->grad_fn) {
    accumulate_leaf(*this, grad_output, false);  // the caller's tensor: copied
    if (leaf_ready) leaf_ready(*this);
    return;
  }
  const std::vector<std::shared_ptr<Node>> order = topological_order(impl_->grad_fn);
  // For leaf_ready: the edges into each leaf that the pass has still to process. A node that no
  // gradient reaches still counts as processed, so every leaf of the graph is reported once.
  std::unordered_map<TensorImpl*, int> edges_left;
  if (leaf_ready)
    for (const auto& node : order)
      for (const Tensor& in : node->inputs)
        if (in.defined() && in.requires_grad() && !in.impl()->grad_fn) ++edges_left[in.impl().get()];
  auto edges_done = [&](const Node& node) {
    if (!leaf_ready) return;
    for (const Tensor& in : node.inputs)
      if (in.defined() && in.requires_grad() && !in.impl()->grad_fn && --edges_left[in.impl().get()] == 0)
        leaf_ready(in);
  };
  std::unordered_map<Node*, Tensor> pending{{impl_->grad_fn.get(), grad_output}};
  for (const auto& node : order) {
    auto it = pending.find(node.get());
    if (it == pending.end()) {  // no gradient reached this node
      edges_done(*node);
      continue;
    }
    const Tensor g = it->second;
    pending.erase(it);
    UNET_CHECK(!node->inputs.empty(), ValueError, "backward through a graph that was already freed (",
               node->name(), "): run the forward pass again");
    std::vector<Tensor> input_grads = node->backward(g);
    UNET_CHECK(input_grads.size() == node->inputs.size(), ValueError, node->name(),
               "::backward returned ", input_grads.size(), " gradients for ", node->inputs.size(),
               " inputs");
    for (size_t i = 0; i < input_grads.size(); ++i) {
      const Tensor& in = node->inputs[i];
      const Tensor& gi = input_grads[i];
      if (!gi.defined() || !in.requires_grad()) continue;
      UNET_CHECK(gi.shape() == in.shape(), ShapeError, node->name(), "::backward gave a gradient ",
                 gi.str(), " for input ", i, " of shape ", in.shape().str());
      if (Node* producer = in.impl()->grad_fn.get()) {
        auto [slot, inserted] = pending.try_emplace(producer, gi);
        if (!inserted) sum_into(slot->second, gi);
      } else {
        accumulate_leaf(in, gi, true);  // input_grads owns gi until the end of this iteration
      }
    }
    edges_done(*node);
  }
  // Free the graph: drop every edge so saved activations are released now.
  for (const auto& node : order) {
    node->inputs.clear();
    node->saved.clear();
  }
}

}  // namespace unet
