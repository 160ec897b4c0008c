// kernels/elastic_warp_cpu.cpp — the CPU twin of the augmentation warp (and its reference):
// one output row per parallel_for index, the same UNET_HD per-pixel math as the CUDA kernel
// (the grid's per-axis part hoisted out of the pixel loop).
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/elastic_warp.h"

namespace unet {

void check_elastic_warp_args(const ElasticWarpParams& p, const void* image_in,
                             const void* image_out, const void* labels_in, const void* labels_out,
                             const void* weights_in, const void* weights_out) {
  UNET_CHECK(p.in_width > 0 && p.in_height > 0 && p.out_width > 0 && p.out_height > 0, ValueError,
             "elastic_warp: sizes must be positive, got input ", p.in_width, "x", p.in_height,
             ", output ", p.out_width, "x", p.out_height);
  UNET_CHECK(p.channels >= 1, ValueError, "elastic_warp: channels must be >= 1, got ", p.channels);
  UNET_CHECK(p.field_width >= 0 && p.field_height >= 0 && p.out_offset_x >= 0 && p.out_offset_y >= 0,
             ValueError, "elastic_warp: field size and output offset must be >= 0");
  const int fw = p.field_width > 0 ? p.field_width : p.out_width;
  const int fh = p.field_height > 0 ? p.field_height : p.out_height;
  UNET_CHECK(p.out_offset_x + p.out_width <= fw && p.out_offset_y + p.out_height <= fh, ValueError,
             "elastic_warp: the output window ", p.out_width, "x", p.out_height, " at (", p.out_offset_x,
             ", ", p.out_offset_y, ") does not fit the field window ", fw, "x", fh);
  UNET_CHECK(!image_in == !image_out && !labels_in == !labels_out && !weights_in == !weights_out,
             ValueError, "elastic_warp: every input needs its output pointer and vice versa");
  UNET_CHECK(p.gamma > 0.0f && std::isfinite(p.gamma) && std::isfinite(p.contrast) &&
                 std::isfinite(p.brightness),
             ValueError, "elastic_warp: grey transform needs gamma > 0 and finite values, got gamma ",
             p.gamma, ", contrast ", p.contrast, ", brightness ", p.brightness);
  for (float a : p.affine)
    UNET_CHECK(std::isfinite(a), ValueError, "elastic_warp: affine coefficients must be finite");
  for (int i = 0; i < 9; ++i)
    UNET_CHECK(std::isfinite(p.grid_dx[i]) && std::isfinite(p.grid_dy[i]), ValueError,
               "elastic_warp: grid displacements must be finite");
}

namespace cpu {

void elastic_warp(const ElasticWarpParams& p, const float* image_in, float* image_out,
                  const int32_t* labels_in, int32_t* labels_out, const float* weights_in,
                  float* weights_out) {
  check_elastic_warp_args(p, image_in, image_out, labels_in, labels_out, weights_in, weights_out);
  // The grid's cell and weights depend on the column alone (and on the row alone): computed once
  // each here, combined per pixel by the same expressions as warp_pixel, so the bits match it.
  struct Axis { int cell; float w[4]; };
  std::vector<Axis> columns(static_cast<size_t>(p.out_width));
  for (int x = 0; x < p.out_width; ++x) grid_axis(x + p.out_offset_x, field_width(p), columns[x].cell, columns[x].w);
  parallel_for(0, p.out_height, 8, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const int fy = static_cast<int>(y) + p.out_offset_y;
      Axis row;
      grid_axis(fy, field_height(p), row.cell, row.w);
      for (int x = 0; x < p.out_width; ++x) {
        float dx, dy, sx, sy;
        grid_combine(p, columns[x].cell, columns[x].w, row.cell, row.w, dx, dy);
        affine_source(p, x + p.out_offset_x, fy, dx, dy, sx, sy);
        warp_pixel_from(p, x, static_cast<int>(y), sx, sy, image_in, image_out, labels_in, labels_out, weights_in,
                        weights_out);
      }
    }
  });
}

}  // namespace cpu
}  // namespace unet
