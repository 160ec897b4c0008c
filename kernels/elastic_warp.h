// kernels/elastic_warp.h — the augmentation warp: elastic deformation (a coarse grid of
// displacement vectors, bicubically interpolated per pixel) composed with an affine map
// (shift, rotation, flips) and a grey-value transform, in one resampling pass.
//
// For output pixel p = (x, y):
//   d(p)  = bicubic interpolation of the grid displacements (grid nodes span the output window)
//   q     = p + d(p)
//   src   = A · (q, 1)            (A: 2×3 affine, output frame -> input frame)
//   image = bicubic(input, src), then grey: v' = contrast · v^gamma + brightness
//   labels, weights = nearest neighbour(input, src)
// Outside the input the samples are mirrored (reflection without repeating the edge pixel),
// so the input may be a larger mirror-padded tile and the output a smaller window of it.
// Layout: planar, channel-major: image[c][y][x]; labels int32 and weights float, 1 channel.
//
// The per-pixel math lives here as UNET_HD functions shared by the CPU twin
// (elastic_warp_cpu.cpp) and the CUDA kernel (elastic_warp.cu), so both compute the same field.
// They differ only by floating-point contraction (nvcc fuses multiply-adds): images agree to
// ~1e-5 of their range, nearest-neighbour samples except where src lies within ~1e-5 px of a
// rounding boundary.
#pragma once

#include <math.h>  // floorf, powf: the names both host compilers and nvcc provide
#include <cstdint>

#include "core/host_device.h"

namespace unet {

struct ElasticWarpParams {
  int in_width = 0, in_height = 0;    // input tile
  int out_width = 0, out_height = 0;  // output window
  int channels = 1;                   // image channels (planar)
  float affine[6] = {1, 0, 0, 0, 1, 0};  // src_x = a0 qx + a1 qy + a2; src_y = a3 qx + a4 qy + a5
  float grid_dx[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};  // 3×3 displacement grid, row-major, pixels
  float grid_dy[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  float contrast = 1.0f, brightness = 0.0f, gamma = 1.0f;
  // The deformation field is defined on a "field window" (the 3×3 grid spans it and the affine
  // maps its coordinates); the output is the sub-window starting at (out_offset_x, out_offset_y).
  // 0 = the field window is the output window. Training warps the image on the whole input tile
  // and the labels/weights only on its centre (the network's output), with the same field.
  int field_width = 0, field_height = 0;
  int out_offset_x = 0, out_offset_y = 0;
};

// Keys cubic convolution weights (a = -0.5, Catmull-Rom) for fractional offset t in [0, 1):
// samples at -1, 0, 1, 2. At t = 0 they are exactly (0, 1, 0, 0), so integer positions
// reproduce the input exactly.
UNET_HD void cubic_weights(float t, float w[4]) {
  const float t2 = t * t, t3 = t2 * t;
  w[0] = -0.5f * t3 + t2 - 0.5f * t;
  w[1] = 1.5f * t3 - 2.5f * t2 + 1.0f;
  w[2] = -1.5f * t3 + 2.0f * t2 + 0.5f * t;
  w[3] = 0.5f * t3 - 0.5f * t2;
}

// Reflection without repeating the edge: ... 2 1 | 0 1 2 ... n-1 | n-2 n-3 ...
UNET_HD int mirror_index(int i, int n) {
  if (i >= 0 && i < n) return i;  // nearly every tap: skip the integer division
  if (n == 1) return 0;
  const int period = 2 * n - 2;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

// Grid cell and cubic weights of field coordinate v along an axis of `extent` pixels: the 3×3
// grid's nodes sit at v = 0, (extent-1)/2, extent-1. Separate so that the CPU twin computes it
// once per row and per column instead of per pixel (same expressions, same bits).
UNET_HD void grid_axis(int v, int extent, int& cell, float w[4]) {
  const float g = extent > 1 ? 2.0f * v / (extent - 1) : 0.0f;
  cell = g >= 2.0f ? 1 : static_cast<int>(g);
  cubic_weights(g - cell, w);
}

// The displacement from the two axes' cells and weights; node indices outside the grid are
// clamped.
UNET_HD void grid_combine(const ElasticWarpParams& p, int ix, const float wx[4], int iy, const float wy[4],
                          float& dx, float& dy) {
  dx = 0.0f;
  dy = 0.0f;
  for (int j = 0; j < 4; ++j) {
    int ny = iy - 1 + j;
    ny = ny < 0 ? 0 : ny > 2 ? 2 : ny;
    float rx = 0.0f, ry = 0.0f;
    for (int i = 0; i < 4; ++i) {
      int nx = ix - 1 + i;
      nx = nx < 0 ? 0 : nx > 2 ? 2 : nx;
      rx += wx[i] * p.grid_dx[ny * 3 + nx];
      ry += wx[i] * p.grid_dy[ny * 3 + nx];
    }
    dx += wy[j] * rx;
    dy += wy[j] * ry;
  }
}

UNET_HD int field_width(const ElasticWarpParams& p) { return p.field_width > 0 ? p.field_width : p.out_width; }
UNET_HD int field_height(const ElasticWarpParams& p) { return p.field_height > 0 ? p.field_height : p.out_height; }

// Displacement at field pixel (x, y): bicubic interpolation over the 3×3 grid that spans the
// field window.
UNET_HD void grid_displacement(const ElasticWarpParams& p, int x, int y, float& dx, float& dy) {
  int ix, iy;
  float wx[4], wy[4];
  grid_axis(x, field_width(p), ix, wx);
  grid_axis(y, field_height(p), iy, wy);
  grid_combine(p, ix, wx, iy, wy, dx, dy);
}

// Where field pixel (x, y), displaced by (dx, dy), samples the input: the affine map.
UNET_HD void affine_source(const ElasticWarpParams& p, int x, int y, float dx, float dy, float& sx, float& sy) {
  const float qx = static_cast<float>(x) + dx, qy = static_cast<float>(y) + dy;
  sx = p.affine[0] * qx + p.affine[1] * qy + p.affine[2];
  sy = p.affine[3] * qx + p.affine[4] * qy + p.affine[5];
}

// Where output pixel (x, y) samples the input.
UNET_HD void warp_source(const ElasticWarpParams& p, int out_x, int out_y, float& sx, float& sy) {
  const int x = out_x + p.out_offset_x, y = out_y + p.out_offset_y;  // field coordinates
  float dx, dy;
  grid_displacement(p, x, y, dx, dy);
  affine_source(p, x, y, dx, dy, sx, sy);
}

// Bicubic sample of one plane with mirrored borders.
UNET_HD float sample_bicubic(const float* plane, int w, int h, float sx, float sy) {
  const float fx = floorf(sx), fy = floorf(sy);
  const int x0 = static_cast<int>(fx), y0 = static_cast<int>(fy);
  float wx[4], wy[4];
  cubic_weights(sx - fx, wx);
  cubic_weights(sy - fy, wy);
  float v = 0.0f;
  for (int j = 0; j < 4; ++j) {
    const float* row = plane + static_cast<int64_t>(mirror_index(y0 - 1 + j, h)) * w;
    float r = 0.0f;
    for (int i = 0; i < 4; ++i) r += wx[i] * row[mirror_index(x0 - 1 + i, w)];
    v += wy[j] * r;
  }
  return v;
}

// Nearest input pixel (index into a plane) for a source position, mirrored.
UNET_HD int64_t nearest_index(int w, int h, float sx, float sy) {
  const int x = mirror_index(static_cast<int>(floorf(sx + 0.5f)), w);
  const int y = mirror_index(static_cast<int>(floorf(sy + 0.5f)), h);
  return static_cast<int64_t>(y) * w + x;
}

UNET_HD float grey_transform(const ElasticWarpParams& p, float v) {
  if (p.gamma != 1.0f) v = powf(v > 0.0f ? v : 0.0f, p.gamma);
  return p.contrast * v + p.brightness;
}

// Everything one output pixel needs: the CPU twin runs it in a loop, the CUDA kernel once per
// thread, so both backends execute the same expressions.
// The samples of output pixel (x, y) from its source position (sx, sy).
UNET_HD void warp_pixel_from(const ElasticWarpParams& p, int x, int y, float sx, float sy, const float* image_in,
                             float* image_out, const int32_t* labels_in, int32_t* labels_out,
                             const float* weights_in, float* weights_out) {
  const int64_t o = static_cast<int64_t>(y) * p.out_width + x;
  if (image_in) {
    const int64_t in_plane = static_cast<int64_t>(p.in_width) * p.in_height;
    const int64_t out_plane = static_cast<int64_t>(p.out_width) * p.out_height;
    for (int c = 0; c < p.channels; ++c)
      image_out[c * out_plane + o] =
          grey_transform(p, sample_bicubic(image_in + c * in_plane, p.in_width, p.in_height, sx, sy));
  }
  if (labels_in || weights_in) {
    const int64_t i = nearest_index(p.in_width, p.in_height, sx, sy);
    if (labels_in) labels_out[o] = labels_in[i];
    if (weights_in) weights_out[o] = weights_in[i];
  }
}

UNET_HD void warp_pixel(const ElasticWarpParams& p, int x, int y, const float* image_in,
                        float* image_out, const int32_t* labels_in, int32_t* labels_out,
                        const float* weights_in, float* weights_out) {
  float sx, sy;
  warp_source(p, x, y, sx, sy);
  warp_pixel_from(p, x, y, sx, sy, image_in, image_out, labels_in, labels_out, weights_in, weights_out);
}

namespace cpu {
// Host pointers. Any of image / labels / weights may be null (with its output) to skip it.
// Throws ValueError for invalid sizes or a null output paired with a non-null input.
void elastic_warp(const ElasticWarpParams& params, const float* image_in, float* image_out,
                  const int32_t* labels_in, int32_t* labels_out, const float* weights_in,
                  float* weights_out);
}  // namespace cpu

namespace cuda {
// Device pointers (Tensor::data<>() of tensors on Device::cuda()); same contract as the CPU twin.
void elastic_warp(const ElasticWarpParams& params, const float* image_in, float* image_out,
                  const int32_t* labels_in, int32_t* labels_out, const float* weights_in,
                  float* weights_out);
}  // namespace cuda

// Validation shared by both launchers (throws ValueError naming what is wrong).
void check_elastic_warp_args(const ElasticWarpParams& params, const void* image_in,
                             const void* image_out, const void* labels_in, const void* labels_out,
                             const void* weights_in, const void* weights_out);

}  // namespace unet
