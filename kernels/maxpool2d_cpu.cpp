// kernels/maxpool2d_cpu.cpp — CPU reference (and CPU backend) for 2×2 / stride-2 max-pooling,
// parallel over output rows of all planes; each task touches two input rows and one output row.
// Float rows run 16 outputs at a time with AVX-512 and 8 with AVX2 at those levels (cpu_dispatch.h): the scalar loop's stride-2 loads and selects do
// not vectorise, and left it at ~2.5 GB/s. The vector code computes the same selects in the same
// order, so both give the same bits and the same argmax.
#include <algorithm>

#include "core/parallel.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/cpu_simd.h"
#include "kernels/maxpool2d.h"

namespace unet::cpu {
namespace {

// Window order 0..3 (row-major); v wins over the current best if larger, or if it is the first
// NaN (so NaN propagates). Bitwise, not logical, operators: no branches, so the compiler can use
// selects instead of jumps that random data would mispredict half the time.
template <typename T> inline bool wins(T v, T best) {
  return (v > best) | ((v != v) & (best == best));
}

int64_t rows_grain(int64_t out_width) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, out_width)); }

#ifdef UNET_X86_DISPATCH
// Even and odd elements of the 16 floats at s: (s[0], s[2], ..., s[14]) and (s[1], ..., s[15]).
UNET_AVX2_FMA inline void deinterleave(const float* s, __m256& even, __m256& odd) {
  const __m256 a0 = _mm256_loadu_ps(s), a1 = _mm256_loadu_ps(s + 8);
  even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a0, a1, 0x88)), 0xD8));
  odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a0, a1, 0xDD)), 0xD8));
}

// Outputs [0, count - count % 8) of one row; returns how many it did.
UNET_AVX2_FMA int64_t pool_row_avx2(const float* top, const float* bottom, float* out,
                                                       int32_t* arg, int64_t count) {
  int64_t ox = 0;
  for (; ox + 8 <= count; ox += 8) {
    __m256 v[4];
    deinterleave(top + 2 * ox, v[0], v[1]);
    deinterleave(bottom + 2 * ox, v[2], v[3]);
    __m256 m = v[0], best = _mm256_setzero_ps();  // the index as float bits: int 0 is 0.0f
    for (int k = 1; k < 4; ++k) {
      const __m256 greater = _mm256_cmp_ps(v[k], m, _CMP_GT_OQ);
      const __m256 first_nan = _mm256_and_ps(_mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q), _mm256_cmp_ps(m, m, _CMP_ORD_Q));
      const __m256 wins = _mm256_or_ps(greater, first_nan);
      m = _mm256_blendv_ps(m, v[k], wins);
      best = _mm256_blendv_ps(best, _mm256_castsi256_ps(_mm256_set1_epi32(k)), wins);
    }
    _mm256_storeu_ps(out + ox, m);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(arg + ox), _mm256_castps_si256(best));
  }
  return ox;
}

UNET_AVX2_FMA int64_t unpool_row_avx2(const float* g, const int32_t* arg, float* top,
                                                         float* bottom, int64_t count) {
  int64_t ox = 0;
  for (; ox + 8 <= count; ox += 8) {
    const __m256 gv = _mm256_loadu_ps(g + ox);
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(arg + ox));
    __m256 t[4];
    for (int k = 0; k < 4; ++k)
      t[k] = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(a, _mm256_set1_epi32(k))), gv);
    for (int r = 0; r < 2; ++r) {  // interleave (t[2r], t[2r+1]) into 16 floats of row r
      const __m256 lo = _mm256_unpacklo_ps(t[2 * r], t[2 * r + 1]), hi = _mm256_unpackhi_ps(t[2 * r], t[2 * r + 1]);
      float* dst = (r == 0 ? top : bottom) + 2 * ox;
      _mm256_storeu_ps(dst, _mm256_permute2f128_ps(lo, hi, 0x20));
      _mm256_storeu_ps(dst + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
  }
  return ox;
}
// The same two rows 16 outputs at a time with AVX-512 (mask registers instead of blends; the same
// comparisons in the same order, so the same bits and argmax), the last 8-output block on AVX2.
__attribute__((target(UNET_SIMD_AVX512_TARGET))) int64_t pool_row_avx512(const float* top, const float* bottom,
                                                                           float* out, int32_t* arg, int64_t count) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  int64_t ox = 0;
  for (; ox + 16 <= count; ox += 16) {
    const __m512 t0 = _mm512_loadu_ps(top + 2 * ox), t1 = _mm512_loadu_ps(top + 2 * ox + 16);
    const __m512 b0 = _mm512_loadu_ps(bottom + 2 * ox), b1 = _mm512_loadu_ps(bottom + 2 * ox + 16);
    const __m512 v[4] = {_mm512_permutex2var_ps(t0, even, t1), _mm512_permutex2var_ps(t0, odd, t1),
                         _mm512_permutex2var_ps(b0, even, b1), _mm512_permutex2var_ps(b0, odd, b1)};
    __m512 m = v[0];
    __m512i best = _mm512_setzero_si512();
    for (int k = 1; k < 4; ++k) {
      const __mmask16 greater = _mm512_cmp_ps_mask(v[k], m, _CMP_GT_OQ);
      const __mmask16 first_nan = _mm512_cmp_ps_mask(v[k], v[k], _CMP_UNORD_Q) & _mm512_cmp_ps_mask(m, m, _CMP_ORD_Q);
      const __mmask16 wins = greater | first_nan;
      m = _mm512_mask_mov_ps(m, wins, v[k]);
      best = _mm512_mask_mov_epi32(best, wins, _mm512_set1_epi32(k));
    }
    _mm512_storeu_ps(out + ox, m);
    _mm512_storeu_si512(arg + ox, best);
  }
  return ox + pool_row_avx2(top + 2 * ox, bottom + 2 * ox, out + ox, arg + ox, count - ox);
}

__attribute__((target(UNET_SIMD_AVX512_TARGET))) int64_t unpool_row_avx512(const float* g, const int32_t* arg,
                                                                             float* top, float* bottom, int64_t count) {
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
  int64_t ox = 0;
  for (; ox + 16 <= count; ox += 16) {
    const __m512 gv = _mm512_loadu_ps(g + ox);
    const __m512i a = _mm512_loadu_si512(arg + ox);
    __m512 t[4];
    for (int k = 0; k < 4; ++k) t[k] = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(a, _mm512_set1_epi32(k)), gv);
    for (int r = 0; r < 2; ++r) {  // interleave (t[2r], t[2r+1]) into 32 floats of row r
      float* dst = (r == 0 ? top : bottom) + 2 * ox;
      _mm512_storeu_ps(dst, _mm512_permutex2var_ps(t[2 * r], first, t[2 * r + 1]));
      _mm512_storeu_ps(dst + 16, _mm512_permutex2var_ps(t[2 * r], second, t[2 * r + 1]));
    }
  }
  return ox + unpool_row_avx2(g + ox, arg + ox, top + 2 * ox, bottom + 2 * ox, count - ox);
}
#endif

template <typename T> int64_t pool_row_vector(const T*, const T*, T*, int32_t*, int64_t) { return 0; }
template <typename T> int64_t unpool_row_vector(const T*, const int32_t*, T*, T*, int64_t) { return 0; }
#ifdef UNET_X86_DISPATCH
template <> int64_t pool_row_vector<float>(const float* top, const float* bottom, float* out, int32_t* arg, int64_t n) {
  const CpuIsa isa = cpu_isa();
  return isa == CpuIsa::Avx512 ? pool_row_avx512(top, bottom, out, arg, n)
         : isa == CpuIsa::Avx2 ? pool_row_avx2(top, bottom, out, arg, n)
                               : 0;
}
template <> int64_t unpool_row_vector<float>(const float* g, const int32_t* arg, float* top, float* bottom, int64_t n) {
  const CpuIsa isa = cpu_isa();
  return isa == CpuIsa::Avx512 ? unpool_row_avx512(g, arg, top, bottom, n)
         : isa == CpuIsa::Avx2 ? unpool_row_avx2(g, arg, top, bottom, n)
                               : 0;
}
#endif

}  // namespace

template <typename T>
void maxpool2d_forward(const Pool2dParams& p, const T* x, T* y, int32_t* argmax) {
  const int64_t oh = p.height / 2, ow = p.width / 2, w = p.width;
  parallel_for(0, p.batch * p.channels * oh, rows_grain(ow), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {  // row = plane·oh + oy
      const int64_t plane = row / oh, oy = row % oh;
      const T* top = x + (plane * p.height + 2 * oy) * w;
      const T* bottom = top + w;
      T* out = y + row * ow;
      int32_t* arg = argmax + row * ow;
      for (int64_t ox = pool_row_vector(top, bottom, out, arg, ow); ox < ow; ++ox) {
        // The same order as a loop over j = 1..3 against the running best, written as selects.
        T m = top[2 * ox];
        int32_t best = 0;
        const T v1 = top[2 * ox + 1], v2 = bottom[2 * ox], v3 = bottom[2 * ox + 1];
        const bool w1 = wins(v1, m);
        m = w1 ? v1 : m;
        best = w1 ? 1 : best;
        const bool w2 = wins(v2, m);
        m = w2 ? v2 : m;
        best = w2 ? 2 : best;
        const bool w3 = wins(v3, m);
        out[ox] = w3 ? v3 : m;
        arg[ox] = w3 ? 3 : best;
      }
    }
  });
}

template <typename T>
void maxpool2d_backward(const Pool2dParams& p, const T* dy, const int32_t* argmax, T* dx) {
  const int64_t oh = p.height / 2, ow = p.width / 2, w = p.width;
  parallel_for(0, p.batch * p.channels * oh, rows_grain(ow), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const int64_t plane = row / oh, oy = row % oh;
      T* top = dx + (plane * p.height + 2 * oy) * w;
      T* bottom = top + w;
      const T* g = dy + row * ow;
      const int32_t* arg = argmax + row * ow;
      for (int64_t ox = unpool_row_vector(g, arg, top, bottom, ow); ox < ow; ++ox) {
        const int32_t a = arg[ox];
        top[2 * ox] = a == 0 ? g[ox] : T(0);
        top[2 * ox + 1] = a == 1 ? g[ox] : T(0);
        bottom[2 * ox] = a == 2 ? g[ox] : T(0);
        bottom[2 * ox + 1] = a == 3 ? g[ox] : T(0);
      }
    }
  });
}

#define UNET_INSTANTIATE(T)                                                                     \
  template void maxpool2d_forward<T>(const Pool2dParams&, const T*, T*, int32_t*);             \
  template void maxpool2d_backward<T>(const Pool2dParams&, const T*, const int32_t*, T*);
UNET_INSTANTIATE(float)
UNET_INSTANTIATE(double)
#undef UNET_INSTANTIATE

}  // namespace unet::cpu
