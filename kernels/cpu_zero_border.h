// kernels/cpu_zero_border.h — a copy of image planes inside a zero border, for the CPU engines
// whose inner loops read without bounds checks (patch_gemm_cpu.cpp, winograd3x3_cpu.cpp): each
// reads a zero-bordered copy when some read of the unpadded planes would fall outside them.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/parallel.h"

namespace unet::cpu {

// dst[plane] (dst_h × dst_w) = src[plane] (src_h × src_w) placed at row `top`, column `left`,
// zeros around it, for `planes` planes (parallel over planes; each float is written once).
// Requires top + src_h <= dst_h and left + src_w <= dst_w.
inline void copy_with_zero_border(const float* src, int64_t planes, int64_t src_h, int64_t src_w, int64_t top,
                                  int64_t left, int64_t dst_h, int64_t dst_w, float* dst) {
  parallel_for(0, planes, 1, [&](int64_t b, int64_t e) {
    for (int64_t plane = b; plane < e; ++plane) {
      float* out = dst + plane * dst_h * dst_w;
      std::fill(out, out + top * dst_w, 0.0f);
      for (int64_t i = 0; i < src_h; ++i) {
        float* row = out + (top + i) * dst_w;
        std::fill(row, row + left, 0.0f);
        std::copy_n(src + (plane * src_h + i) * src_w, src_w, row + left);
        std::fill(row + left + src_w, row + dst_w, 0.0f);
      }
      std::fill(out + (top + src_h) * dst_w, out + dst_h * dst_w, 0.0f);
    }
  });
}

}  // namespace unet::cpu
