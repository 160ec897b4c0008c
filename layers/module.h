// layers/module.h — Module: a named collection of parameters and sub-modules, the unit models are
// built from. Parameters are leaf tensors with requires_grad; their gradients ACCUMULATE across
// backward passes (autograd's rule) until zero_grad(). Names are hierarchical, dot-separated
// ("down0.conv1.weight"), which is also how checkpoints name tensors.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"

namespace unet {

struct NamedParameter {
  std::string name;
  Tensor* tensor;  // points into the owning module; valid while the module lives
};

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its children, in a fixed order (registration order).
  std::vector<NamedParameter> named_parameters();
  std::vector<Tensor> parameters();
  int64_t parameter_count();
  void zero_grad();
  // Moves every parameter to `device` (a copy when the device changes; gradients are dropped).
  void to(Device device);
  // Training mode switches dropout on; eval mode off.
  void set_training(bool on);
  bool training() const { return training_; }

 protected:
  // Called by subclasses in their constructors, in a fixed order.
  void register_parameter(const std::string& name, Tensor& tensor);
  void register_module(const std::string& name, Module& child);

 private:
  void collect(const std::string& prefix, std::vector<NamedParameter>& out);
  std::vector<NamedParameter> own_parameters_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
};

}  // namespace unet
