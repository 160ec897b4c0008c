// kernels/crop_concat_cpu.cpp — CPU reference (and CPU backend) for crop-and-concatenate: row
// copies, parallel over output rows (forward) and gradient rows (backward).
#include <algorithm>
#include <cstring>

#include "core/parallel.h"
#include "kernels/crop_concat.h"

namespace unet::cpu {
namespace {
int64_t rows_grain(int64_t width) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, width)); }
}  // namespace

template <typename T>
void crop_concat_forward(const CropConcatParams& p, const T* skip, const T* up, T* out) {
  const int64_t c_out = p.skip_channels + p.up_channels, h = p.height, w = p.width;
  parallel_for(0, p.batch * c_out * h, rows_grain(w), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {  // row = (n·c_out + c)·h + y
      const int64_t y = row % h, c = (row / h) % c_out, n = row / (h * c_out);
      const T* src =
          c < p.skip_channels
              ? skip + ((n * p.skip_channels + c) * p.skip_height + p.offset_y + y) * p.skip_width +
                    p.offset_x
              : up + ((n * p.up_channels + c - p.skip_channels) * h + y) * w;
      std::memcpy(out + row * w, src, static_cast<size_t>(w) * sizeof(T));
    }
  });
}

template <typename T>
void crop_concat_backward(const CropConcatParams& p, const T* dout, T* dskip, T* dup) {
  const int64_t c_out = p.skip_channels + p.up_channels, h = p.height, w = p.width;
  if (dskip) {
    const int64_t hs = p.skip_height, ws = p.skip_width;
    parallel_for(0, p.batch * p.skip_channels * hs, rows_grain(ws), [&](int64_t b, int64_t e) {
      for (int64_t row = b; row < e; ++row) {  // row = (n·Cs + c)·Hs + ys
        const int64_t ys = row % hs, c = (row / hs) % p.skip_channels, n = row / (hs * p.skip_channels);
        T* dst = dskip + row * ws;
        const int64_t y = ys - p.offset_y;
        if (y < 0 || y >= h) {
          std::fill(dst, dst + ws, T(0));
          continue;
        }
        std::fill(dst, dst + p.offset_x, T(0));
        std::memcpy(dst + p.offset_x, dout + ((n * c_out + c) * h + y) * w,
                    static_cast<size_t>(w) * sizeof(T));
        std::fill(dst + p.offset_x + w, dst + ws, T(0));
      }
    });
  }
  if (dup) {
    parallel_for(0, p.batch * p.up_channels * h, rows_grain(w), [&](int64_t b, int64_t e) {
      for (int64_t row = b; row < e; ++row) {  // row = (n·Cu + c)·h + y
        const int64_t y = row % h, c = (row / h) % p.up_channels, n = row / (h * p.up_channels);
        std::memcpy(dup + row * w, dout + ((n * c_out + p.skip_channels + c) * h + y) * w,
                    static_cast<size_t>(w) * sizeof(T));
      }
    });
  }
}

#define UNET_INSTANTIATE(T)                                                                    \
  template void crop_concat_forward<T>(const CropConcatParams&, const T*, const T*, T*);      \
  template void crop_concat_backward<T>(const CropConcatParams&, const T*, T*, T*);
UNET_INSTANTIATE(float)
UNET_INSTANTIATE(double)
#undef UNET_INSTANTIATE

}  // namespace unet::cpu
