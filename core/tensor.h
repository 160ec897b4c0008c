// core/tensor.h — Tensor: a contiguous float32 or int32 array of rank 0..4 (NCHW for images) on
// one Device, plus its autograd state.
//
// Copy semantics: a Tensor is a handle. Copying it shares the same storage (and autograd state),
// exactly like a shared_ptr, so device memory is never copied by accident. Data is copied only
// by the explicit calls clone(), to(device), to_host() and copy_from().
//
// Autograd: a tensor that requires_grad and was produced by an op holds the graph node that made
// it (grad_fn). backward() walks the graph in reverse topological order (core/autograd.h);
// gradients of leaves accumulate into grad() until zero_grad().
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/shape.h"

namespace unet {

class Node;

// A block of memory on one device: either its own (allocated here, freed when the last tensor
// using it goes) or borrowed from an owner it keeps alive (a caller's array, or a larger block
// of which it is a part). Non-copyable.
class Storage {
 public:
  Storage(size_t bytes, Device device);
  // Borrows `bytes` at `data`; `owner` (may be null when the caller guarantees the lifetime)
  // is released with the storage. Nothing is freed here.
  Storage(void* data, size_t bytes, Device device, std::shared_ptr<const void> owner);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  bool borrowed() const { return borrowed_; }  // memory of a caller or part of a larger block

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  bool borrowed_ = false;
  std::shared_ptr<const void> owner_;
};

struct TensorImpl {
  Shape shape;
  DType dtype = DType::Float32;
  Device device;
  std::shared_ptr<Storage> storage;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient (leaves), same shape and device
  std::shared_ptr<Node> grad_fn;     // the op that produced this tensor (non-leaves)
};

class Tensor {
 public:
  Tensor() = default;  // undefined: holds nothing; defined() is false

  // ---- creation -------------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, float value, Device device = Device::cpu());
  static Tensor from_host(const float* data, const Shape& shape, Device device = Device::cpu());
  static Tensor from_host(const int32_t* data, const Shape& shape, Device device = Device::cpu());
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            Device device = Device::cpu());
  static Tensor from_vector(const std::vector<int32_t>& values, const Shape& shape,
                            Device device = Device::cpu());
  // A tensor over memory the library does not own, without copying it (a NumPy array, a mapped
  // file): `data` must hold shape.numel() contiguous elements of `dtype`, aligned to the element
  // size, and stay valid while any tensor uses it; `owner` is kept alive until then (pass null
  // when the caller guarantees that, e.g. for the length of one call). Throws ValueError for a
  // null or misaligned pointer.
  static Tensor from_external(void* data, const Shape& shape, DType dtype, Device device,
                              std::shared_ptr<const void> owner);
  // Braced lists: from_vector({1.f, 2.f}, Shape{2}) and from_vector({1, 2}, Shape{2}).
  static Tensor from_vector(std::initializer_list<float> values, const Shape& shape,
                            Device device = Device::cpu()) {
    return from_vector(std::vector<float>(values), shape, device);
  }
  static Tensor from_vector(std::initializer_list<int32_t> values, const Shape& shape,
                            Device device = Device::cpu()) {
    return from_vector(std::vector<int32_t>(values), shape, device);
  }

  // ---- properties -----------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  DType dtype() const;
  Device device() const;
  int64_t numel() const { return shape().numel(); }
  int rank() const { return shape().rank(); }
  int64_t dim(int axis) const { return shape()[axis]; }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  std::string str() const;  // "float32[1, 3, 5, 5] on cpu"

  // Typed pointer to the first element (device pointer for CUDA tensors). Throws DTypeError if T
  // does not match dtype().
  template <typename T> T* data() const;

  // ---- explicit copies ------------------------------------------------------------------------
  Tensor to(Device device) const;      // same device: returns *this (shared); else a copy
  Tensor to_host() const { return to(Device::cpu()); }
  Tensor clone() const;                // deep copy on the same device, no autograd history
  void copy_from(const Tensor& src);   // same shape and dtype, any devices
  // Copies `entry` (any device, same dtype, numel = numel() / dim(0)) into index `i` of this
  // tensor's first axis: how batches are assembled from single samples.
  void set_batch_entry(int64_t i, const Tensor& entry);
  std::vector<float> to_vector() const;        // float32 only
  std::vector<int32_t> to_int_vector() const;  // int32 only
  float item() const;                  // float32 with exactly one element
  void fill(float value);              // float32; host fill, then copied for CUDA tensors
  void zero();

  // A tensor sharing this one's storage with another shape of the same element count. Not
  // differentiable by itself: use the reshape op for a graph-aware view.
  Tensor view(const Shape& shape) const;
  // A new handle on the same storage with no autograd history (like PyTorch's detach()).
  Tensor detach() const;
  // Index `i` of the first axis ([N, ...] -> [...]) as a tensor sharing this one's memory (it
  // keeps this tensor's storage alive); no autograd history. How a page of a stack is passed on
  // without a copy.
  Tensor entry(int64_t i) const;

  // ---- autograd -------------------------------------------------------------------------------
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on);  // only float32 leaves may require a gradient
  bool is_leaf() const;
  Tensor grad() const;                 // undefined until a backward pass reaches this leaf
  void zero_grad();                    // drops the accumulated gradient
  // Backpropagates from this tensor. Without an argument the tensor must hold one element (a
  // loss); the seed is 1. The graph is freed afterwards.
  void backward() const;
  void backward(const Tensor& grad_output) const;
  // The same, calling leaf_ready(leaf) for every leaf that requires a gradient as soon as this
  // pass has delivered everything it will to that leaf's grad() (each edge into it processed),
  // in the engine's fixed order: data-parallel training starts summing those gradients across
  // processes while the rest of the pass runs (core/gradient_reducer.h).
  void backward(const Tensor& grad_output, const std::function<void(const Tensor& leaf)>& leaf_ready) const;

  // ---- internals used by ops and the autograd engine -----------------------------------------
  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

 private:
  void require_defined(const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

// ---- validation helpers every op uses; each throws a typed error naming what it got ----------
void check_defined(const Tensor& t, const char* op, const char* arg);
void check_float(const Tensor& t, const char* op, const char* arg);   // DTypeError
void check_int(const Tensor& t, const char* op, const char* arg);     // DTypeError
void check_not_empty(const Tensor& t, const char* op, const char* arg);  // ShapeError
void check_rank(const Tensor& t, int rank, const char* op, const char* arg);
void check_same_shape(const Tensor& a, const Tensor& b, const char* op);
void check_same_device(const Tensor& a, const Tensor& b, const char* op);

}  // namespace unet
