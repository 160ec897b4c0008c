// layers/module.cpp — parameter registry and traversal.
#include "layers/module.h"

#include "core/error.h"

namespace unet {

void Module::register_parameter(const std::string& name, Tensor& tensor) {
  check_float(tensor, "Module::register_parameter", name.c_str());
  tensor.set_requires_grad(true);
  own_parameters_.push_back({name, &tensor});
}

void Module::register_module(const std::string& name, Module& child) {
  children_.emplace_back(name, &child);
}

void Module::collect(const std::string& prefix, std::vector<NamedParameter>& out) {
  for (const auto& p : own_parameters_) out.push_back({prefix + p.name, p.tensor});
  for (const auto& [name, child] : children_)
    child->collect(name.empty() ? prefix : prefix + name + ".", out);  // "" = flatten into parent
}

std::vector<NamedParameter> Module::named_parameters() {
  std::vector<NamedParameter> out;
  collect("", out);
  return out;
}

std::vector<Tensor> Module::parameters() {
  std::vector<Tensor> out;
  for (const auto& p : named_parameters()) out.push_back(*p.tensor);
  return out;
}

int64_t Module::parameter_count() {
  int64_t n = 0;
  for (const auto& p : named_parameters()) n += p.tensor->numel();
  return n;
}

void Module::zero_grad() {
  for (const auto& p : named_parameters()) p.tensor->zero_grad();
}

void Module::to(Device device) {
  for (const auto& p : named_parameters()) {
    if (p.tensor->device() == device) continue;
    *p.tensor = p.tensor->to(device).detach();
    p.tensor->set_requires_grad(true);
  }
}

void Module::set_training(bool on) {
  training_ = on;
  for (const auto& [name, child] : children_) child->set_training(on);
}

}  // namespace unet
