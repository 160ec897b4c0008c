// kernels/dropout_cpu.cpp — CPU reference (and CPU backend) for dropout. Each Philox call yields
// a 128-bit block = the uniforms of 4 consecutive stream positions, so the loop runs over blocks
// and uses all four words (identical to philox_uniform01 at each position, 4× fewer rounds).
#include "core/parallel.h"
#include "core/philox.h"
#include "kernels/dropout.h"

namespace unet::cpu {

template <typename T> void dropout_apply(const DropoutParams& p, const T* in, T* out, int64_t n) {
  if (n == 0) return;
  const uint64_t first_block = p.offset / 4;
  const int64_t lead = static_cast<int64_t>(p.offset % 4);  // stream words before element 0
  const int64_t blocks = (lead + n + 3) / 4;
  const T scale = static_cast<T>(p.scale);
  parallel_for(0, blocks, 2048, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      const Philox4 r = philox_block(p.seed, first_block + static_cast<uint64_t>(blk));
      for (int64_t j = 0; j < 4; ++j) {
        const int64_t i = 4 * blk + j - lead;
        if (i < 0 || i >= n) continue;
        out[i] = philox_to_uniform01(r.v[j]) >= p.p ? in[i] * scale : T(0);
      }
    }
  });
}

template void dropout_apply<float>(const DropoutParams&, const float*, float*, int64_t);
template void dropout_apply<double>(const DropoutParams&, const double*, double*, int64_t);

}  // namespace unet::cpu
