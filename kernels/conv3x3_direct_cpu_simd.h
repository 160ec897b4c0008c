// kernels/conv3x3_direct_cpu_simd.h — the vector code of the direct 3×3 kernel
// (conv3x3_direct_cpu.cpp), a body header (kernels/cpu_simd.h): included once per level inside
// that level's namespace and compile region with `Isa` and ForwardPlan defined; it includes
// nothing. A register block is kOb output channels × 3 vectors of pixels: AVX2 4 × 24 pixels (12
// accumulators of its 16 registers), AVX-512 8 × 48 (24 of 32: each input vector loaded feeds 8
// FMAs instead of 4). Every output is one FMA chain over (c, u, v) in order, so both levels give
// the same bits.

namespace direct {

using W = Isa::Wide;
constexpr int64_t kPix = 3 * W::kLanes;            // pixels per register block
constexpr int64_t kOb = W::kLanes == 16 ? 8 : 4;  // output channels per register block

// Tasks [tb, te) of the forward: (image, row band) pairs.
inline void forward_tasks(const ForwardPlan& f, int64_t tb, int64_t te) {
  float* padded = thread_scratch<float, ScratchTag::kDirectPadded>(static_cast<size_t>(f.c_in * (f.rows + 2) * f.wp));
  for (int64_t t = tb; t < te; ++t) {
    const int64_t img = t / f.bands, r0 = (t % f.bands) * f.rows, r1 = std::min(f.h_out, r0 + f.rows), pr = r1 - r0 + 2;
    const float* x_n = f.x + img * f.c_in * f.h * f.w;
    // In place when unpadded and the furthest load (last channel, input row r1 + 1, column
    // wp - 1) stays inside x: the copy was ~1 % of the training step (memmove). Same values, same
    // FMA order, same bits.
    const bool in_place = f.pad == 0 && ((img * f.c_in + f.c_in - 1) * f.h + r1 + 1) * f.w + f.wp <= f.n * f.c_in * f.h * f.w;
    const float* src = in_place ? x_n : padded;
    const int64_t row_stride = in_place ? f.w : f.wp, plane_stride = in_place ? f.h * f.w : pr * f.wp,
                  row0 = in_place ? 0 : r0;
    if (!in_place)
      for (int64_t c = 0; c < f.c_in; ++c)
        copy_padded_rows(x_n + c * f.h * f.w, f.h, f.w, f.pad, r0 - f.pad, pr, f.wp, padded + c * pr * f.wp);
    float* y_n = f.y + img * f.c_out * f.h_out * f.w_out;
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t jb = 0; jb < f.blocks; ++jb) {
        const int64_t j0 = jb * kPix;
        for (int64_t ob = 0; ob < f.obs; ++ob) {
          W::V acc[kOb][3];
          UNET_SIMD_UNROLL
          for (int64_t o = 0; o < kOb; ++o) acc[o][0] = acc[o][1] = acc[o][2] = W::zero();
          const float* wk = f.wb + ob * f.c_in * 9 * kOb;
          for (int64_t c = 0; c < f.c_in; ++c) {
            const float* prow = src + c * plane_stride + (i - row0) * row_stride + j0;
            for (int64_t u = 0; u < 3; ++u, prow += row_stride)
              for (int64_t v = 0; v < 3; ++v, wk += kOb) {
                W::V x0 = W::loadu(prow + v), x1 = W::loadu(prow + v + W::kLanes), x2 = W::loadu(prow + v + 2 * W::kLanes);
                // Keep the three pixel vectors in registers: folding the loads into the 12
                // FMAs would make the loop load-bound (16 loads instead of 7).
                asm("" : "+v"(x0), "+v"(x1), "+v"(x2));
                UNET_SIMD_UNROLL
                for (int64_t o = 0; o < kOb; ++o) {
                  const W::V wv = W::broadcast(wk + o);
                  acc[o][0] = W::fma(wv, x0, acc[o][0]);
                  acc[o][1] = W::fma(wv, x1, acc[o][1]);
                  acc[o][2] = W::fma(wv, x2, acc[o][2]);
                }
              }
          }
          const int64_t count = std::min(kPix, f.w_out - j0);
          for (int64_t o = 0; o < kOb && ob * kOb + o < f.c_out; ++o) {
            const int64_t oc = ob * kOb + o;
            const W::V bv = W::set1(f.bias ? f.bias[oc] : 0.0f), zero = W::zero();
            float* dst = y_n + (oc * f.h_out + i) * f.w_out + j0;
            alignas(64) float tmp[kPix];
            UNET_SIMD_UNROLL
            for (int64_t s = 0; s < 3; ++s) {
              W::V v = W::add(acc[o][s], bv);
              if (f.relu) v = W::max(zero, v);  // NaN propagates, as std::max(v, 0) does
              if (count == kPix)
                W::storeu(dst + W::kLanes * s, v);
              else
                W::store(tmp + W::kLanes * s, v);
            }
            if (count < kPix) std::memcpy(dst, tmp, sizeof(float) * static_cast<size_t>(count));
          }
        }
      }
  }
}

// The kernel on this level: plan the bands for its pixel block, run the tasks.
inline void run(ForwardPlan f) {
  const std::vector<float> wb = pack_weights(f, kOb);
  f.wb = wb.data();
  plan_bands(f, kPix);
  parallel_for(0, f.n * f.bands, 1, [&](int64_t tb, int64_t te) { forward_tasks(f, tb, te); });
}

}  // namespace direct
