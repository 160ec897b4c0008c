// kernels/conv2d_concat_cpu.cpp — conv2d_concat on the CPU (its reference and the CPU backend):
// the decoder's first convolution as the two ops it fuses on the GPU, crop_concat into a
// temporary, then the convolution (and back: the data gradient of the concatenation, split).
// Templated on the scalar so the gradient checks run it in double.
#include <cstddef>

#include "kernels/conv2d.h"
#include "kernels/cpu_scratch.h"
#include "kernels/crop_concat.h"

namespace unet::cpu {
namespace {

// The temporaries are per-thread scratch (kernels/cpu_scratch.h), left uninitialized: every
// element is written before it is read. A std::vector zero-filled its 0.6–2.4 MB serially on every
// call (memset in the step's profile) and took fresh pages from the system.
template <typename T> T* concatenated(const CropConcatParams& c, const T* skip, const T* up) {
  T* x = thread_scratch<T, ScratchTag::kConcatInput>(static_cast<size_t>(c.batch * (c.skip_channels + c.up_channels) * c.height * c.width));
  crop_concat_forward(c, skip, up, x);
  return x;
}

}  // namespace

template <typename T>
void conv2d_concat_forward(const Conv2dParams& p, const CropConcatParams& c, const T* skip, const T* up, const T* w,
                           const T* bias, T* y) {
  conv2d_forward(p, concatenated(c, skip, up), w, bias, y);
}

template <typename T>
void conv2d_concat_backward_data(const Conv2dParams& p, const CropConcatParams& c, const T* g, const T* w, T* dskip,
                                 T* dup) {
  T* dx = thread_scratch<T, ScratchTag::kConcatGradient>(static_cast<size_t>(p.n * p.c_in * p.h * p.w));
  conv2d_backward_data(p, g, w, dx);
  crop_concat_backward(c, dx, dskip, dup);
}

template <typename T>
void conv2d_concat_backward_weight(const Conv2dParams& p, const CropConcatParams& c, const T* skip, const T* up,
                                   const T* g, T* dw) {
  conv2d_backward_weight(p, concatenated(c, skip, up), g, dw);
}

#define UNET_INSTANTIATE(T)                                                                                      \
  template void conv2d_concat_forward<T>(const Conv2dParams&, const CropConcatParams&, const T*, const T*,      \
                                         const T*, const T*, T*);                                                \
  template void conv2d_concat_backward_data<T>(const Conv2dParams&, const CropConcatParams&, const T*, const T*, \
                                               T*, T*);                                                          \
  template void conv2d_concat_backward_weight<T>(const Conv2dParams&, const CropConcatParams&, const T*,         \
                                                 const T*, const T*, T*);
UNET_INSTANTIATE(float)
UNET_INSTANTIATE(double)
#undef UNET_INSTANTIATE

}  // namespace unet::cpu
