// python/src/arrays.cpp — see arrays.h.
#include "arrays.h"

#include <cstdint>
#include <cstring>
#include <string>

#include "core/error.h"

namespace py = pybind11;
using unet::DType;
using unet::SampleFormat;
using unet::Shape;
using unet::Tensor;

namespace unetcore_py {
namespace {

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// The SampleFormat an array dtype stands for, or none (unsupported).
bool sample_format(const py::array& a, SampleFormat& format) {
  const py::dtype d = a.dtype();
  if (d.equal(py::dtype::of<uint8_t>())) format = SampleFormat::U8;
  else if (d.equal(py::dtype::of<uint16_t>())) format = SampleFormat::U16;
  else if (d.equal(py::dtype::of<uint32_t>())) format = SampleFormat::U32;
  else if (d.kind() == 'f' && (d.itemsize() == 2 || d.itemsize() == 4 || d.itemsize() == 8)) format = SampleFormat::F32;
  else return false;
  return true;
}

const char* kAllowedImageDtypes =
    "uint8, uint16 or uint32 (scaled to [0, 1] by the type's maximum, as segment does for image files) "
    "or float16/32/64 (taken as they are: the model expects [0, 1])";

template <typename T>
void normalise_into(const py::array& a, float scale, float* dst) {
  const auto typed = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
  const T* src = typed.data();
  const py::ssize_t n = typed.size();
  py::gil_scoped_release release;
  for (py::ssize_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]) * scale;
}

}  // namespace

ImageInput image_input(const py::array& array, int64_t channels, const char* op) {
  const int rank = static_cast<int>(array.ndim());
  const int image_rank = channels == 1 ? 2 : 3;
  UNET_CHECK(rank == image_rank || rank == image_rank + 1, unet::ShapeError, op, ": got an array of shape ",
             shape_str(array), "; a model with ", channels, " input channel(s) takes ",
             channels == 1 ? "an image (H, W) or a stack (N, H, W)" : "an image (C, H, W) or a stack (N, C, H, W)");
  SampleFormat format;
  UNET_CHECK(sample_format(array, format), unet::DTypeError, op, ": images of dtype ", dtype_str(array),
             " are not supported; pass ", kAllowedImageDtypes);
  ImageInput in;
  in.stack = rank == image_rank + 1;
  std::vector<int64_t> dims(array.shape(), array.shape() + rank);
  if (channels == 1) dims.insert(dims.end() - 2, 1);  // the channel axis the library expects
  const Shape shape(dims);
  UNET_CHECK(shape.numel() > 0, unet::ShapeError, op, ": the image is empty (shape ", shape.str(), ")");
  if (!in.stack) UNET_CHECK(dims[0] == channels, unet::ShapeError, op, ": image has ", dims[0], " channels (axis 0), the model expects ", channels);
  else UNET_CHECK(dims[1] == channels, unet::ShapeError, op, ": stack has ", dims[1], " channels (axis 1), the model expects ", channels);

  if (py::array_t<float, py::array::c_style>::check_(array) && reinterpret_cast<uintptr_t>(array.data()) % 4 == 0) {
    // Borrowed for the length of the call: the caller's array outlives it.
    in.tensor = Tensor::from_external(const_cast<void*>(array.data()), shape, DType::Float32, unet::Device::cpu(), nullptr);
    in.borrowed = true;
    return in;
  }
  in.tensor = Tensor::empty(shape);
  float* dst = in.tensor.data<float>();
  switch (format) {
    case SampleFormat::U8: normalise_into<uint8_t>(array, unet::normalisation_scale(format), dst); break;
    case SampleFormat::U16: normalise_into<uint16_t>(array, unet::normalisation_scale(format), dst); break;
    case SampleFormat::U32: normalise_into<uint32_t>(array, unet::normalisation_scale(format), dst); break;
    case SampleFormat::F32:  // taken as they are; float16 goes through a float32 copy (forcecast)
      if (array.dtype().itemsize() == 8) normalise_into<double>(array, 1.0f, dst);
      else normalise_into<float>(array, 1.0f, dst);
      break;
  }
  return in;
}

py::array tensor_array(const Tensor& tensor) {
  UNET_CHECK(tensor.device().is_cpu(), unet::DeviceError, "tensor_array: ", tensor.str(), " is not on the CPU");
  auto* keep = new Tensor(tensor);
  py::capsule owner(keep, [](void* p) { delete static_cast<Tensor*>(p); });
  const std::vector<int64_t> dims = tensor.shape().dims();
  std::vector<py::ssize_t> shape(dims.begin(), dims.end());
  if (tensor.dtype() == DType::Float32) return py::array_t<float>(shape, tensor.data<float>(), owner);
  return py::array_t<int32_t>(shape, tensor.data<int32_t>(), owner);
}

unet::Image array_image(const py::array& array, const char* op, const char* what) {
  const int rank = static_cast<int>(array.ndim());
  UNET_CHECK(rank == 2 || (rank == 3 && (array.shape(2) == 1 || array.shape(2) == 3 || array.shape(2) == 4)),
             unet::ShapeError, op, ": ", what, " must be (H, W) or (H, W, C) with C = 1, 3 or 4, got shape ",
             shape_str(array));
  SampleFormat format;
  UNET_CHECK(sample_format(array, format), unet::DTypeError, op, ": ", what, " of dtype ", dtype_str(array),
             " is not supported; pass uint8, uint16, uint32 or a float type");
  const int h = static_cast<int>(array.shape(0)), w = static_cast<int>(array.shape(1));
  unet::Image image = unet::make_image(w, h, rank == 3 ? static_cast<int>(array.shape(2)) : 1, format);
  const auto values = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(array);
  std::memcpy(image.pixels.data(), values.data(), image.pixels.size() * sizeof(float));
  return image;
}

py::array images_array(const std::vector<unet::Image>& pages, bool stack) {
  const unet::Image& first = pages.front();
  std::vector<py::ssize_t> shape = {first.height, first.width};
  if (first.channels > 1) shape.push_back(first.channels);
  if (stack) shape.insert(shape.begin(), static_cast<py::ssize_t>(pages.size()));
  auto fill = [&](auto tag) {
    using T = decltype(tag);
    py::array_t<T> out(shape);
    T* dst = out.mutable_data();
    for (const unet::Image& page : pages)
      for (float v : page.pixels) *dst++ = static_cast<T>(v);
    return py::array(out);
  };
  switch (first.format) {
    case SampleFormat::U8: return fill(uint8_t{});
    case SampleFormat::U16: return fill(uint16_t{});
    case SampleFormat::U32: return fill(uint32_t{});
    default: return fill(float{});
  }
}

}  // namespace unetcore_py
