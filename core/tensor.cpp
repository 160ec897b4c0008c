// core/tensor.cpp — Tensor creation, explicit copies and the validation helpers.
#include "core/tensor.h"

#include <cstdint>
#include <cstring>
#include <sstream>

#include "core/allocator.h"
#include "core/autograd.h"
#include "core/cuda_runtime.h"
#include "core/error.h"

namespace unet {

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  data_ = allocate(device, bytes);
}
Storage::Storage(void* data, size_t bytes, Device device, std::shared_ptr<const void> owner)
    : data_(data), bytes_(bytes), device_(device), borrowed_(true), owner_(std::move(owner)) {}

Storage::~Storage() {
  if (!borrowed_) deallocate(device_, data_, bytes_);
}

namespace {

// Copies between any two devices through the one runtime wrapper.
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) {
  if (bytes == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
  const auto kind = dst_dev.is_cpu()   ? cuda_rt::CopyKind::DeviceToHost
                    : src_dev.is_cpu() ? cuda_rt::CopyKind::HostToDevice
                                       : cuda_rt::CopyKind::DeviceToDevice;
  cuda_rt::memcpy(dst, src, bytes, kind);
}

Tensor make(const Shape& shape, DType dtype, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = device;
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape.numel()) * dtype_size(dtype), device);
  return Tensor(std::move(impl));
}

template <typename T>
Tensor from_host_typed(const T* data, const Shape& shape, Device device) {
  UNET_CHECK(data != nullptr || shape.numel() == 0, ValueError,
             "Tensor::from_host: null data for shape ", shape.str());
  Tensor t = make(shape, dtype_of<T>(), device);
  copy_bytes(t.data<T>(), device, data, Device::cpu(), t.bytes());
  return t;
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) { return make(shape, dtype, device); }

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = make(shape, dtype, device);
  t.zero();
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = make(shape, DType::Float32, device);
  t.fill(value);
  return t;
}

Tensor Tensor::from_host(const float* data, const Shape& shape, Device device) {
  return from_host_typed(data, shape, device);
}
Tensor Tensor::from_host(const int32_t* data, const Shape& shape, Device device) {
  return from_host_typed(data, shape, device);
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  UNET_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), ShapeError,
             "Tensor::from_vector: ", values.size(), " values do not fill shape ", shape.str(),
             " (", shape.numel(), " elements)");
  return from_host_typed(values.data(), shape, device);
}
Tensor Tensor::from_vector(const std::vector<int32_t>& values, const Shape& shape, Device device) {
  UNET_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), ShapeError,
             "Tensor::from_vector: ", values.size(), " values do not fill shape ", shape.str(),
             " (", shape.numel(), " elements)");
  return from_host_typed(values.data(), shape, device);
}

Tensor Tensor::from_external(void* data, const Shape& shape, DType dtype, Device device,
                             std::shared_ptr<const void> owner) {
  const size_t element = dtype_size(dtype);
  UNET_CHECK(data != nullptr || shape.numel() == 0, ValueError, "Tensor::from_external: null data for shape ",
             shape.str());
  UNET_CHECK(reinterpret_cast<uintptr_t>(data) % element == 0, ValueError, "Tensor::from_external: ",
             dtype_name(dtype), " data at ", data, " is not aligned to its ", element, "-byte elements");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = device;
  impl->storage = std::make_shared<Storage>(data, static_cast<size_t>(shape.numel()) * element, device,
                                            std::move(owner));
  return Tensor(std::move(impl));
}

void Tensor::require_defined(const char* what) const {
  UNET_CHECK(impl_ != nullptr, ValueError, "Tensor::", what, " called on an undefined tensor");
}

const Shape& Tensor::shape() const { require_defined("shape"); return impl_->shape; }
DType Tensor::dtype() const { require_defined("dtype"); return impl_->dtype; }
Device Tensor::device() const { require_defined("device"); return impl_->device; }

std::string Tensor::str() const {
  if (!defined()) return "undefined tensor";
  std::ostringstream s;
  s << dtype_name(dtype()) << shape().str() << " on " << device().str();
  return s.str();
}

template <typename T>
T* Tensor::data() const {
  require_defined("data");
  UNET_CHECK(impl_->dtype == dtype_of<T>(), DTypeError, "Tensor::data<", dtype_name(dtype_of<T>()),
             ">() on a ", str());
  return static_cast<T*>(impl_->storage->data());
}
template float* Tensor::data<float>() const;
template int32_t* Tensor::data<int32_t>() const;

Tensor Tensor::to(Device device) const {
  require_defined("to");
  if (device == this->device()) return *this;
  Tensor t = make(shape(), dtype(), device);
  copy_bytes(t.impl_->storage->data(), device, impl_->storage->data(), this->device(), bytes());
  return t;
}

Tensor Tensor::clone() const {
  require_defined("clone");
  Tensor t = make(shape(), dtype(), device());
  copy_bytes(t.impl_->storage->data(), device(), impl_->storage->data(), device(), bytes());
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  require_defined("copy_from");
  check_defined(src, "Tensor::copy_from", "src");
  UNET_CHECK(src.shape() == shape() && src.dtype() == dtype(), ShapeError,
             "Tensor::copy_from: source ", src.str(), " does not match destination ", str());
  copy_bytes(impl_->storage->data(), device(), src.impl_->storage->data(), src.device(), bytes());
}

void Tensor::set_batch_entry(int64_t i, const Tensor& entry) {
  require_defined("set_batch_entry");
  check_defined(entry, "Tensor::set_batch_entry", "entry");
  UNET_CHECK(rank() >= 1 && i >= 0 && i < dim(0), ShapeError, "Tensor::set_batch_entry: index ", i,
             " is outside the first axis of ", str());
  const int64_t per_entry = numel() / dim(0);
  UNET_CHECK(entry.dtype() == dtype() && entry.numel() == per_entry, ShapeError,
             "Tensor::set_batch_entry: entry ", entry.str(), " does not fit one entry of ", str());
  const size_t entry_bytes = static_cast<size_t>(per_entry) * dtype_size(dtype());
  copy_bytes(static_cast<char*>(impl_->storage->data()) + static_cast<size_t>(i) * entry_bytes, device(),
             entry.impl_->storage->data(), entry.device(), entry_bytes);
}

std::vector<float> Tensor::to_vector() const {
  check_float(*this, "Tensor::to_vector", "self");
  std::vector<float> out(static_cast<size_t>(numel()));
  copy_bytes(out.data(), Device::cpu(), impl_->storage->data(), device(), bytes());
  return out;
}

std::vector<int32_t> Tensor::to_int_vector() const {
  check_int(*this, "Tensor::to_int_vector", "self");
  std::vector<int32_t> out(static_cast<size_t>(numel()));
  copy_bytes(out.data(), Device::cpu(), impl_->storage->data(), device(), bytes());
  return out;
}

float Tensor::item() const {
  check_float(*this, "Tensor::item", "self");
  UNET_CHECK(numel() == 1, ShapeError, "Tensor::item needs exactly one element, got ", str());
  return to_vector()[0];
}

void Tensor::fill(float value) {
  check_float(*this, "Tensor::fill", "self");
  if (device().is_cpu()) {
    float* p = data<float>();
    for (int64_t i = 0; i < numel(); ++i) p[i] = value;
    return;
  }
  std::vector<float> host(static_cast<size_t>(numel()), value);
  copy_bytes(impl_->storage->data(), device(), host.data(), Device::cpu(), bytes());
}

void Tensor::zero() {
  require_defined("zero");
  if (device().is_cpu())
    std::memset(impl_->storage->data(), 0, bytes());
  else
    cuda_rt::memset(impl_->storage->data(), 0, bytes());
}

Tensor Tensor::view(const Shape& new_shape) const {
  require_defined("view");
  UNET_CHECK(new_shape.numel() == numel(), ShapeError, "Tensor::view: cannot view ", str(), " as ",
             new_shape.str(), " (element counts differ)");
  auto impl = std::make_shared<TensorImpl>(*impl_);
  impl->shape = new_shape;
  impl->grad.reset();
  impl->grad_fn.reset();
  impl->requires_grad = false;
  return Tensor(std::move(impl));
}

Tensor Tensor::detach() const { return view(shape()); }

Tensor Tensor::entry(int64_t i) const {
  require_defined("entry");
  UNET_CHECK(rank() >= 1 && i >= 0 && i < dim(0), ShapeError, "Tensor::entry: index ", i,
             " is outside the first axis of ", str());
  std::vector<int64_t> dims = shape().dims();
  dims.erase(dims.begin());
  const Shape entry_shape(dims);
  const size_t offset = static_cast<size_t>(i * entry_shape.numel()) * dtype_size(dtype());
  return from_external(static_cast<char*>(impl_->storage->data()) + offset, entry_shape, dtype(), device(),
                       impl_->storage);
}

bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }

Tensor& Tensor::set_requires_grad(bool on) {
  require_defined("set_requires_grad");
  if (on) check_float(*this, "Tensor::set_requires_grad", "self");
  UNET_CHECK(is_leaf() || on, ValueError,
             "set_requires_grad(false) on a tensor produced by an op: use detach() instead");
  impl_->requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { return impl_ && !impl_->grad_fn; }

Tensor Tensor::grad() const {
  require_defined("grad");
  return impl_->grad ? Tensor(impl_->grad) : Tensor();
}

void Tensor::zero_grad() {
  require_defined("zero_grad");
  impl_->grad.reset();
}

// ---- validation helpers ------------------------------------------------------------------------

void check_defined(const Tensor& t, const char* op, const char* arg) {
  UNET_CHECK(t.defined(), ValueError, op, ": argument '", arg, "' is an undefined tensor");
}

void check_float(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  UNET_CHECK(t.dtype() == DType::Float32, DTypeError, op, ": argument '", arg,
             "' must be float32, got ", t.str());
}

void check_int(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  UNET_CHECK(t.dtype() == DType::Int32, DTypeError, op, ": argument '", arg,
             "' must be int32, got ", t.str());
}

void check_not_empty(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  UNET_CHECK(t.numel() > 0, ShapeError, op, ": argument '", arg, "' is empty: ", t.str());
}

void check_rank(const Tensor& t, int rank, const char* op, const char* arg) {
  check_defined(t, op, arg);
  UNET_CHECK(t.rank() == rank, ShapeError, op, ": argument '", arg, "' must have rank ", rank,
             ", got ", t.str());
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* op) {
  UNET_CHECK(a.shape() == b.shape(), ShapeError, op, ": shapes differ: ", a.shape().str(), " vs ",
             b.shape().str());
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  UNET_CHECK(a.device() == b.device(), DeviceError, op, ": tensors are on different devices: ",
             a.device().str(), " vs ", b.device().str(), " (move one with .to(device))");
}

}  // namespace unet
