// kernels/maxpool2d.h — 2×2 max-pooling with stride 2 (the U-Net's down-step), NCHW float32.
//
// Layout: x [N, C, H, W] with H and W even (odd sizes are refused: the U-Net's valid-tile
// geometry must guarantee even sizes, and silently dropping a row would misalign the skip
// connections) -> y [N, C, H/2, W/2]. The forward also writes, per output, the position of the
// maximum inside its window as an int32 in 0..3 (row-major: 0 = top-left, 1 = top-right,
// 2 = bottom-left, 3 = bottom-right); ties go to the first maximum in that order. A NaN in a
// window wins it (the first NaN), so NaNs propagate instead of being hidden.
// Gradient rule: dx at the window's argmax = dy of the window, 0 elsewhere. The backward is a
// gather (one thread per input element reads its window's dy and argmax): windows do not overlap,
// so no atomics and the result is deterministic.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace unet {

// y = max over each 2×2 window (stride 2). Autograd to x; the argmax positions go in the node's
// `saved`. Throws ShapeError for odd H or W (naming the nearest even sizes).
Tensor max_pool2d(const Tensor& x);

struct Pool2dParams {
  int64_t batch = 0, channels = 0;
  int64_t height = 0, width = 0;  // input size (even); the output is height/2 × width/2
};

// ---- launchers (raw pointers; CUDA pointers are device pointers) ----------------------------
namespace cpu {
template <typename T>
void maxpool2d_forward(const Pool2dParams& p, const T* x, T* y, int32_t* argmax);
template <typename T>
void maxpool2d_backward(const Pool2dParams& p, const T* dy, const int32_t* argmax, T* dx);
}  // namespace cpu

namespace cuda {
void maxpool2d_forward(const Pool2dParams& p, const float* x, float* y, int32_t* argmax);
void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int32_t* argmax, float* dx);
}  // namespace cuda

}  // namespace unet
