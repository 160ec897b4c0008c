// kernels/elastic_warp.cu — the augmentation warp on the GPU (and, compiled by g++, in the CUDA
// simulator): one thread per output pixel running warp_pixel() from kernels/elastic_warp.h, the
// same code as the CPU twin. 16×16 blocks: neighbouring threads read neighbouring input pixels
// for the small deformations and rotations of augmentation, so the reads coalesce well enough
// for a pass that is memory bound and runs once per training sample.
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"

#include "kernels/elastic_warp.h"

namespace unet {
namespace {

__global__ void elastic_warp_kernel(ElasticWarpParams p, const float* image_in, float* image_out,
                                    const int32_t* labels_in, int32_t* labels_out,
                                    const float* weights_in, float* weights_out) {
  const int x = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  const int y = static_cast<int>(blockIdx.y * blockDim.y + threadIdx.y);
  if (x >= p.out_width || y >= p.out_height) return;
  warp_pixel(p, x, y, image_in, image_out, labels_in, labels_out, weights_in, weights_out);
}

}  // namespace

namespace cuda {

void elastic_warp(const ElasticWarpParams& params, const float* image_in, float* image_out,
                  const int32_t* labels_in, int32_t* labels_out, const float* weights_in,
                  float* weights_out) {
  check_elastic_warp_args(params, image_in, image_out, labels_in, labels_out, weights_in,
                          weights_out);
  constexpr int kBlock = 16;
  const dim3 block(kBlock, kBlock);
  const dim3 grid(kern::ceil_div(params.out_width, kBlock), kern::ceil_div(params.out_height, kBlock));
  UNET_LAUNCH(elastic_warp_kernel, grid, block, 0, params, image_in, image_out, labels_in,
              labels_out, weights_in, weights_out);
}

}  // namespace cuda
}  // namespace unet
