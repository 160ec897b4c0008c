// kernels/dropout.cu — CUDA kernel for dropout: one thread per Philox block (4 consecutive stream
// positions = 4 elements), grid-stride. The mask comes from the same header (core/philox.h) and
// the same float comparison as the CPU reference, so masks match bit for bit.
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/dropout.h"

#include "core/philox.h"

namespace unet::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

__global__ void dropout_kernel(DropoutParams p, const float* __restrict__ in,
                               float* __restrict__ out, int64_t n, int64_t lead, int64_t blocks) {
  const uint64_t first_block = p.offset / 4;
  const int64_t stride = kern::grid_stride();
  for (int64_t blk = kern::global_index(); blk < blocks;
       blk += stride) {
    const Philox4 r = philox_block(p.seed, first_block + static_cast<uint64_t>(blk));
    for (int64_t j = 0; j < 4; ++j) {
      const int64_t i = 4 * blk + j - lead;
      if (i < 0 || i >= n) continue;
      out[i] = philox_to_uniform01(r.v[j]) >= p.p ? in[i] * p.scale : 0.0f;
    }
  }
}

}  // namespace

void dropout_apply(const DropoutParams& p, const float* in, float* out, int64_t n) {
  if (n == 0) return;
  const int64_t lead = static_cast<int64_t>(p.offset % 4);
  const int64_t blocks = (lead + n + 3) / 4;
  kern::launch(dropout_kernel, kern::linear_grid(blocks, kThreads, kMaxBlocks), dim3(kThreads), 0, p, in, out,
               n, lead, blocks);
}

}  // namespace unet::cuda
