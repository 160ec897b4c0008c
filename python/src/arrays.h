// python/src/arrays.h — NumPy arrays in and out of the library, copying only where the layout or
// dtype makes it unavoidable:
//   - a C-contiguous float32 image or stack is borrowed: the library reads the caller's memory
//     while the call runs (Tensor::from_external);
//   - integer images (uint8/16/32) are converted to float32 in [0, 1] exactly as `segment` does
//     for files (normalisation_scale), float64/float16 to float32, non-contiguous arrays made
//     contiguous: one copy, because the network computes on contiguous float32;
//   - results are the library's own buffers handed to NumPy (the array's base keeps them alive).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <vector>

#include "core/tensor.h"
#include "unet/image.h"

namespace unetcore_py {

// An image or stack for segmentation, as a float32 CPU tensor [C, H, W] or [N, C, H, W].
struct ImageInput {
  unet::Tensor tensor;
  bool stack = false;     // [N, ...]
  bool borrowed = false;  // the caller's memory, no copy
};

// `array` holds one image ([H, W] for one-channel models, [C, H, W] otherwise) or a stack
// ([N, H, W], [N, C, H, W]); `channels` is the model's input channel count. Throws
// unet::DTypeError / ShapeError naming `op` and what is allowed.
ImageInput image_input(const pybind11::array& array, int64_t channels, const char* op);

// The tensor's memory as a NumPy array of its shape (no copy; the array keeps the tensor alive).
pybind11::array tensor_array(const unet::Tensor& tensor);

// A 2-D (H, W) or 3-D (H, W, C) array (C = 1, 3, 4) as a library Image (a copy: Image holds float samples)
// whose SampleFormat follows the dtype (uint8 -> U8, uint16 -> U16, uint32 -> U32, floats -> F32).
unet::Image array_image(const pybind11::array& array, const char* op, const char* what);
// Images as one array of their format's dtype: [H, W] or [H, W, C] for one image, with a leading
// page axis when `stack`. All must share size, channels and format (the caller checks).
pybind11::array images_array(const std::vector<unet::Image>& pages, bool stack);

}  // namespace unetcore_py
