// kernels/crop_concat.cu — CUDA kernels for crop-and-concatenate. Pure data movement: one thread
// per destination element (grid-stride), consecutive threads on consecutive columns so loads and
// stores coalesce; the crop offset only shifts the source row. Backward kernels are gathers into
// d(skip) (0 outside the crop window) and d(up): no atomics, deterministic.
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/crop_concat.h"

namespace unet::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

__global__ void crop_concat_forward_kernel(CropConcatParams p, const float* __restrict__ skip,
                                           const float* __restrict__ up,
                                           float* __restrict__ out) {
  const int64_t c_out = p.skip_channels + p.up_channels, h = p.height, w = p.width;
  const int64_t total = p.batch * c_out * h * w;
  for (int64_t i = kern::global_index(); i < total; i += kern::grid_stride()) {
    const int64_t x = i % w, y = (i / w) % h, c = (i / (w * h)) % c_out, n = i / (w * h * c_out);
    out[i] = c < p.skip_channels
                 ? skip[((n * p.skip_channels + c) * p.skip_height + p.offset_y + y) * p.skip_width +
                        p.offset_x + x]
                 : up[((n * p.up_channels + c - p.skip_channels) * h + y) * w + x];
  }
}

__global__ void crop_concat_dskip_kernel(CropConcatParams p, const float* __restrict__ dout,
                                         float* __restrict__ dskip) {
  const int64_t c_out = p.skip_channels + p.up_channels, hs = p.skip_height, ws = p.skip_width;
  const int64_t total = p.batch * p.skip_channels * hs * ws;
  for (int64_t i = kern::global_index(); i < total; i += kern::grid_stride()) {
    const int64_t xs = i % ws, ys = (i / ws) % hs, c = (i / (ws * hs)) % p.skip_channels,
                  n = i / (ws * hs * p.skip_channels);
    const int64_t y = ys - p.offset_y, x = xs - p.offset_x;
    const bool inside = y >= 0 && y < p.height && x >= 0 && x < p.width;
    dskip[i] = inside ? dout[((n * c_out + c) * p.height + y) * p.width + x] : 0.0f;
  }
}

__global__ void crop_concat_dup_kernel(CropConcatParams p, const float* __restrict__ dout,
                                       float* __restrict__ dup) {
  const int64_t c_out = p.skip_channels + p.up_channels, plane = p.height * p.width;
  const int64_t total = p.batch * p.up_channels * plane;
  for (int64_t i = kern::global_index(); i < total; i += kern::grid_stride()) {
    const int64_t s = i % plane, c = (i / plane) % p.up_channels, n = i / (plane * p.up_channels);
    dup[i] = dout[(n * c_out + p.skip_channels + c) * plane + s];
  }
}

__global__ void crop_concat_zero_border_kernel(CropConcatParams p, float* __restrict__ dskip) {
  const int64_t hs = p.skip_height, ws = p.skip_width;
  const int64_t total = p.batch * p.skip_channels * hs * ws;
  for (int64_t i = kern::global_index(); i < total; i += kern::grid_stride()) {
    const int64_t y = (i / ws) % hs - p.offset_y, x = i % ws - p.offset_x;
    if (y < 0 || y >= p.height || x < 0 || x >= p.width) dskip[i] = 0.0f;
  }
}

}  // namespace

void crop_concat_zero_border(const CropConcatParams& p, float* dskip) {
  const int64_t total = p.batch * p.skip_channels * p.skip_height * p.skip_width;
  if (total == 0 || (p.skip_height == p.height && p.skip_width == p.width)) return;  // no border
  kern::launch(crop_concat_zero_border_kernel, kern::linear_grid(total, kThreads, kMaxBlocks), dim3(kThreads), 0, p, dskip);
}

void crop_concat_forward(const CropConcatParams& p, const float* skip, const float* up, float* out) {
  const int64_t total = p.batch * (p.skip_channels + p.up_channels) * p.height * p.width;
  if (total == 0) return;
  kern::launch(crop_concat_forward_kernel, kern::linear_grid(total, kThreads, kMaxBlocks), dim3(kThreads), 0, p, skip, up, out);
}

void crop_concat_backward(const CropConcatParams& p, const float* dout, float* dskip, float* dup) {
  const int64_t n_skip = p.batch * p.skip_channels * p.skip_height * p.skip_width;
  const int64_t n_up = p.batch * p.up_channels * p.height * p.width;
  if (dskip && n_skip > 0)
    kern::launch(crop_concat_dskip_kernel, kern::linear_grid(n_skip, kThreads, kMaxBlocks), dim3(kThreads), 0, p, dout, dskip);
  if (dup && n_up > 0)
    kern::launch(crop_concat_dup_kernel, kern::linear_grid(n_up, kThreads, kMaxBlocks), dim3(kThreads), 0, p, dout, dup);
}

}  // namespace unet::cuda
