// kernels/crop_concat.h — the U-Net skip connection: centre-crop the contracting path's feature
// map to the upsampled map's size and concatenate the two along channels.
//
// Layout (NCHW float32): skip [N, Cs, Hs, Ws], up [N, Cu, Hu, Wu] -> out [N, Cs + Cu, Hu, Wu];
// channels 0..Cs-1 are the crop skip[:, :, oy:oy+Hu, ox:ox+Wu] with oy = (Hs-Hu)/2,
// ox = (Ws-Wu)/2, channels Cs.. are up. The crop must be centred exactly, so Hs-Hu and Ws-Wu must
// be even and >= 0 (the U-Net's valid-tile geometry guarantees it; anything else means the tile
// plan is wrong, and the op says so instead of picking an off-centre crop).
// Gradient rule: split dout by channels; d(up) is its second part, d(skip) is its first part
// placed back into the crop window and 0 outside it. Both are gathers (one thread per gradient
// element): no atomics, deterministic.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace unet {

// Autograd to both inputs. Throws ShapeError naming both shapes when the batch differs, the skip
// is smaller than up, or the size difference is odd. (The U-Net does not call it: its decoder
// convolutions read the two maps in place, conv2d_concat in kernels/conv2d.h.)
Tensor crop_concat(const Tensor& skip, const Tensor& up);

struct CropConcatParams {
  int64_t batch = 0;
  int64_t skip_channels = 0, skip_height = 0, skip_width = 0;
  int64_t up_channels = 0, height = 0, width = 0;  // up's size = the output's size
  int64_t offset_y = 0, offset_x = 0;              // crop origin inside the skip map
};

// The geometry of crop_concat(skip, up), after the checks crop_concat makes (float32, rank 4,
// not empty, one device, same batch, skip at least as large as up, even differences); `op` names
// the caller in the messages.
CropConcatParams crop_concat_params(const Tensor& skip, const Tensor& up, const char* op = "crop_concat");

// ---- launchers (raw pointers; CUDA pointers are device pointers) ----------------------------
namespace cpu {
template <typename T>
void crop_concat_forward(const CropConcatParams& p, const T* skip, const T* up, T* out);
// Either gradient pointer may be null (that input needs no gradient).
template <typename T>
void crop_concat_backward(const CropConcatParams& p, const T* dout, T* dskip, T* dup);
}  // namespace cpu

namespace cuda {
void crop_concat_forward(const CropConcatParams& p, const float* skip, const float* up, float* out);
void crop_concat_backward(const CropConcatParams& p, const float* dout, float* dskip, float* dup);
// Zeros dskip [batch, Cs, Hs, Ws] outside the crop window (the part of the skip the concatenation
// does not read), leaving the window alone: for kernels that write the window's gradient themselves.
void crop_concat_zero_border(const CropConcatParams& p, float* dskip);
}  // namespace cuda

}  // namespace unet
