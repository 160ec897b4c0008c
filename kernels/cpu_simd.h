// kernels/cpu_simd.h — how one kernel source serves every x86 vector width: a small vector layer
// (the operations our CPU engines use, nothing more) and the compile regions that build a
// kernel body once per instruction set level.
//
// A SIMD engine is written once, in a body header (e.g. kernels/winograd3x3_cpu_simd.h) in terms
// of `Isa` (simd::Avx2 or simd::Avx512 below): `Isa::Wide` is the widest float vector (8 or 16
// lanes; the GEMM register tiles), `Isa::F8` an 8-lane float vector (the transforms and gathers,
// whose natural group is 8 pixels or tiles), `Isa::kGemmRows` the register tile's rows. The
// engine's .cpp includes its body twice, each time inside a namespace (avx2, avx512) and a
// compile region (UNET_SIMD_BEGIN_AVX2 … UNET_SIMD_END) that compiles every function defined
// there for that level, and calls the namespace of cpu_isa() (kernels/cpu_dispatch.h).
// Everything else — the standard library, core/, the engine's own scalar code — is compiled for
// the baseline, so a CPU with AVX2 only never meets an AVX-512 instruction. The body headers
// include nothing (the .cpp includes what they need before opening the region).
//
// Why not Google Highway (docs/kernels-conv.md, "One kernel source"): the same micro-kernel in
// Highway and in this layer ran at the same speed (108–117 vs 109–117 GFLOP/s per thread on
// AVX2, 186–207 vs 182–198 on AVX-512), so speed does not decide; this layer adds no dependency,
// compiles ~3× faster, and reaches AVX-512 masks, AVX512_BF16 and AMX directly. An Arm port adds
// one more level here (a NEON F8 as two 128-bit halves); the engines' bodies stay as they are.
//
// Bits: every operation here is lane-wise IEEE single precision (no reassociation, no
// approximations), and the engines keep each output's summation order independent of the vector
// width, so the AVX2 and AVX-512 builds of an engine give the same bits.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cpu_dispatch.h"

#ifdef UNET_X86_DISPATCH

#define UNET_SIMD_AVX2_TARGET "avx2,fma"
#define UNET_SIMD_AVX512_TARGET "avx2,fma,avx512f,avx512bw,avx512dq,avx512vl"

#define UNET_SIMD_PRAGMA(x) _Pragma(#x)
#if defined(__clang__)
#define UNET_SIMD_BEGIN(features) \
  UNET_SIMD_PRAGMA(clang attribute push(__attribute__((target(features))), apply_to = function))
#define UNET_SIMD_END UNET_SIMD_PRAGMA(clang attribute pop)
#define UNET_SIMD_UNROLL UNET_SIMD_PRAGMA(unroll)
#else
#define UNET_SIMD_BEGIN(features) UNET_SIMD_PRAGMA(GCC push_options) UNET_SIMD_PRAGMA(GCC target(features))
#define UNET_SIMD_END UNET_SIMD_PRAGMA(GCC pop_options)
#define UNET_SIMD_UNROLL UNET_SIMD_PRAGMA(GCC unroll 32)
#endif
// Open a region: every function defined until UNET_SIMD_END is compiled for that level.
#define UNET_SIMD_BEGIN_AVX2 UNET_SIMD_BEGIN(UNET_SIMD_AVX2_TARGET)
#define UNET_SIMD_BEGIN_AVX512 UNET_SIMD_BEGIN(UNET_SIMD_AVX512_TARGET)

// A function that exists on the AVX2 level only (small passes where 512 bits would not pay): it
// runs whenever cpu_isa() >= CpuIsa::Avx2.
#define UNET_AVX2_FMA __attribute__((target(UNET_SIMD_AVX2_TARGET)))

// The vector operations: always inlined into the region that calls them, whose level must
// include theirs.
#define UNET_SIMD_AVX2_FN __attribute__((target(UNET_SIMD_AVX2_TARGET), always_inline)) static inline
#define UNET_SIMD_AVX512_FN __attribute__((target(UNET_SIMD_AVX512_TARGET), always_inline)) static inline

namespace unet::cpu::simd {

// ---- 8 float lanes on AVX2 + FMA --------------------------------------------------------------
struct Avx2F8 {
  using V = __m256;
  static constexpr int64_t kLanes = 8;
  UNET_SIMD_AVX2_FN V zero() { return _mm256_setzero_ps(); }
  UNET_SIMD_AVX2_FN V set1(float x) { return _mm256_set1_ps(x); }
  UNET_SIMD_AVX2_FN V broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  UNET_SIMD_AVX2_FN V load(const float* p) { return _mm256_load_ps(p); }  // 32-byte aligned
  UNET_SIMD_AVX2_FN V loadu(const float* p) { return _mm256_loadu_ps(p); }
  UNET_SIMD_AVX2_FN void store(float* p, V v) { _mm256_store_ps(p, v); }
  UNET_SIMD_AVX2_FN void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  UNET_SIMD_AVX2_FN V add(V a, V b) { return _mm256_add_ps(a, b); }
  UNET_SIMD_AVX2_FN V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  UNET_SIMD_AVX2_FN V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  UNET_SIMD_AVX2_FN V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }  // a·b + c, one rounding
  // max(a, b) as maxps: b where either is NaN, so max(zero(), v) propagates a NaN v like std::max(v, 0).
  UNET_SIMD_AVX2_FN V max(V a, V b) { return _mm256_max_ps(a, b); }

  // Lanes l < n set (n clamped to [0, 8]).
  UNET_SIMD_AVX2_FN __m256i first_lanes(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::clamp<int64_t>(n, 0, 8))),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  // p[0 … n) into the first lanes, zeros after; reads nothing past p + n.
  UNET_SIMD_AVX2_FN V load_first(const float* p, int64_t n) {
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, first_lanes(n));
  }
  // The first n lanes (n ≤ 8) to p[0 … n); writes nothing else. As 4-, 2- and 1-float stores of
  // the halves: masked stores are slow on AMD, and a copy through a buffer becomes a memcpy call.
  UNET_SIMD_AVX2_FN void store_first(float* p, V v, int64_t n) {
    if (n >= 8) return _mm256_storeu_ps(p, v);
    __m128 part = _mm256_castps256_ps128(v);
    if (n >= 4) {
      _mm_storeu_ps(p, part);
      part = _mm256_extractf128_ps(v, 1), p += 4, n -= 4;
    }
    if (n >= 2) {
      _mm_storel_pi(reinterpret_cast<__m64*>(p), part);
      part = _mm_movehl_ps(part, part), p += 2, n -= 2;
    }
    if (n >= 1) _mm_store_ss(p, part);
  }
  // Even- and odd-indexed floats of the 16 at p, (p[0], p[2], …, p[14]) and (p[1], …, p[15]),
  // reading only p[0 … n) (n ≤ 16; the rest count as zeros).
  UNET_SIMD_AVX2_FN void deinterleave(const float* p, int64_t n, V& even, V& odd) {
    deinterleave(load_first(p, n), load_first(p + 8, n - 8), even, odd);
  }
  // The same on registers: even = (a0, a2, a4, a6, b0, b2, b4, b6), odd = (a1, …, b7).
  UNET_SIMD_AVX2_FN void deinterleave(V a, V b, V& even, V& odd) {
    const V lo = _mm256_shuffle_ps(a, b, 0x88), hi = _mm256_shuffle_ps(a, b, 0xDD);  // 128-bit lanes interleaved
    even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(lo), 0xD8));
    odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(hi), 0xD8));
  }
  // (base[index[0]], …, base[index[7]]).
  UNET_SIMD_AVX2_FN V gather(const float* base, const int32_t* index) {
    return _mm256_i32gather_ps(base, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index)), 4);
  }
  // In-register transpose of an 8×8 block: r[a][b] becomes r[b][a].
  UNET_SIMD_AVX2_FN void transpose8(V r[8]) {
    const V t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const V t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const V t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const V t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const V s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const V s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const V s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const V s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20), r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20), r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31), r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31), r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
  }
  // (a1, …, a7, *p): the lanes moved down by one, *p into the last. One lane permute and a blend
  // (Winograd F(4×4)'s windows 4 columns to the right, instead of a second 4-way deinterleave).
  UNET_SIMD_AVX2_FN V shift_in(V a, const float* p) {
    const V moved = _mm256_permutevar8x32_ps(a, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7));
    return _mm256_blend_ps(moved, _mm256_broadcast_ss(p), 0x80);
  }
  // The inverse: (a0, b0, a1, b1, …, a3, b3) in first, (a4, b4, …, a7, b7) in second.
  UNET_SIMD_AVX2_FN void interleave(V a, V b, V& first, V& second) {
    const V lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b);
    first = _mm256_permute2f128_ps(lo, hi, 0x20), second = _mm256_permute2f128_ps(lo, hi, 0x31);
  }
};

// ---- 8 float lanes with AVX-512 VL: AVX2's operations (callable from an AVX-512 region, whose
// features include theirs), partial loads and stores through mask registers instead ------------
struct Avx512F8 : Avx2F8 {
  UNET_SIMD_AVX512_FN __mmask8 first_lanes(int64_t n) {
    return static_cast<__mmask8>((1u << std::clamp<int64_t>(n, 0, 8)) - 1u);
  }
  UNET_SIMD_AVX512_FN V load_first(const float* p, int64_t n) {
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskz_loadu_ps(first_lanes(n), p);
  }
  UNET_SIMD_AVX512_FN void store_first(float* p, V v, int64_t n) {
    if (n >= 8) return _mm256_storeu_ps(p, v);
    _mm256_mask_storeu_ps(p, first_lanes(n), v);
  }
  UNET_SIMD_AVX512_FN void deinterleave(const float* p, int64_t n, V& even, V& odd) {
    deinterleave(load_first(p, n), load_first(p + 8, n - 8), even, odd);
  }
  UNET_SIMD_AVX512_FN void deinterleave(V a, V b, V& even, V& odd) {
    const __m256i even_index = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    even = _mm256_permutex2var_ps(a, even_index, b);
    odd = _mm256_permutex2var_ps(a, _mm256_add_epi32(even_index, _mm256_set1_epi32(1)), b);
  }
};

// ---- 16 float lanes on AVX-512 (the register tiles) -------------------------------------------
struct Avx512F16 {
  using V = __m512;
  static constexpr int64_t kLanes = 16;
  UNET_SIMD_AVX512_FN V zero() { return _mm512_setzero_ps(); }
  UNET_SIMD_AVX512_FN V set1(float x) { return _mm512_set1_ps(x); }
  UNET_SIMD_AVX512_FN V broadcast(const float* p) { return _mm512_set1_ps(*p); }  // folds into the FMA's {1to16}
  UNET_SIMD_AVX512_FN V load(const float* p) { return _mm512_load_ps(p); }  // 64-byte aligned
  UNET_SIMD_AVX512_FN V loadu(const float* p) { return _mm512_loadu_ps(p); }
  UNET_SIMD_AVX512_FN void store(float* p, V v) { _mm512_store_ps(p, v); }
  UNET_SIMD_AVX512_FN void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  UNET_SIMD_AVX512_FN V add(V a, V b) { return _mm512_add_ps(a, b); }
  UNET_SIMD_AVX512_FN V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  UNET_SIMD_AVX512_FN V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  UNET_SIMD_AVX512_FN V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  // (base[index[0]], …, base[index[15]]); masked form with a zero source, which avoids GCC 12's
  // false "may be used uninitialized" on the plain gather's undefined source.
  UNET_SIMD_AVX512_FN V gather(const float* base, const int32_t* index) {
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), static_cast<__mmask16>(0xFFFF), _mm512_loadu_si512(index),
                                    base, 4);
  }
  // base[index[l]] = v[l] for the first n lanes.
  UNET_SIMD_AVX512_FN void scatter_first(float* base, const int32_t* index, V v, int64_t n) {
    _mm512_mask_i32scatter_ps(base, static_cast<__mmask16>((1u << std::clamp<int64_t>(n, 0, 16)) - 1u),
                              _mm512_loadu_si512(index), v, 4);
  }
  UNET_SIMD_AVX512_FN __mmask16 first_lanes(int64_t n) {
    return static_cast<__mmask16>((1u << std::clamp<int64_t>(n, 0, 16)) - 1u);
  }
  UNET_SIMD_AVX512_FN void store_first(float* p, V v, int64_t n) {
    if (n >= 16) return _mm512_storeu_ps(p, v);
    _mm512_mask_storeu_ps(p, first_lanes(n), v);
  }
  // p[0 … n) into the first lanes, zeros after; reads nothing past p + n.
  UNET_SIMD_AVX512_FN V load_first(const float* p, int64_t n) {
    return n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(first_lanes(n), p);
  }
  // As Avx2F8's, 16 lanes: (p[0], p[2], …, p[30]) and (p[1], …, p[31]), reading only p[0 … n).
  UNET_SIMD_AVX512_FN void deinterleave(const float* p, int64_t n, V& even, V& odd) {
    deinterleave(load_first(p, n), load_first(p + 16, n - 16), even, odd);
  }
  UNET_SIMD_AVX512_FN void deinterleave(V a, V b, V& even, V& odd) {
    const __m512i even_index = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    even = _mm512_permutex2var_ps(a, even_index, b);
    odd = _mm512_permutex2var_ps(a, _mm512_add_epi32(even_index, _mm512_set1_epi32(1)), b);
  }
  // (a1, …, a15, *p), as Avx2F8's: one valignd with a broadcast load (all-ones zero mask: the
  // same instruction, without GCC 12's false "may be used uninitialized", as max below).
  UNET_SIMD_AVX512_FN V shift_in(V a, const float* p) {
    return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(static_cast<__mmask16>(0xFFFF),
                                                         _mm512_castps_si512(_mm512_set1_ps(*p)),
                                                         _mm512_castps_si512(a), 1));
  }
  // (a0, b0, a1, b1, …, a7, b7) in first, (a8, b8, …, a15, b15) in second.
  UNET_SIMD_AVX512_FN void interleave(V a, V b, V& first, V& second) {
    first = _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), b);
    second = _mm512_permutex2var_ps(a, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), b);
  }
  // maxps with an all-ones zero mask: the same instruction, without GCC 12's false
  // "may be used uninitialized" on _mm512_max_ps's undefined source.
  UNET_SIMD_AVX512_FN V max(V a, V b) { return _mm512_maskz_max_ps(static_cast<__mmask16>(0xFFFF), a, b); }
};

// ---- prefetch ----------------------------------------------------------------------------------
// Asks the caches for the lines holding p[0 … floats), which the caller reads or writes a few
// hundred cycles later: into L1 (kLocality 3, prefetcht0) or L2 (2, prefetcht1). A prefetch never
// faults or changes a value; p[0 … floats) must lie in one array (floats ≥ 1). For engines whose
// loops walk more rows at once than the hardware prefetchers follow (Winograd's transforms read 6
// rows of each of 16+ channel planes per group of tiles).
template <int kLocality>
__attribute__((always_inline)) inline void prefetch_span(const float* p, int64_t floats) {
  for (int64_t i = 0; i < floats; i += 16) __builtin_prefetch(p + i, 0, kLocality);  // 16 floats: one 64-byte line
  __builtin_prefetch(p + floats - 1, 0, kLocality);
}

// ---- the levels ---------------------------------------------------------------------------------
// kGemmRows: rows of the shared register tile (kernels/gemm_microkernel.h), whose columns are 16
// floats on both levels: AVX2 6 rows × 2 vectors (12 accumulators), AVX-512 16 rows × 1 vector
// (16 accumulators; 16 rows also divide every channel count of the U-Net, so no tile row idles).
// Lanes: tiles per group of Winograd's F(4×4, 3×3) transforms (their 6×6 windows are 4 columns
// apart, so 16 tiles read 66 columns: 4 loads and 2 rounds of deinterleaving, as 8 tiles do with
// half-width vectors). The same arithmetic per lane on both levels.
struct Avx2 {
  static constexpr CpuIsa kIsa = CpuIsa::Avx2;
  using F8 = Avx2F8;
  using Wide = Avx2F8;
  using Lanes = Avx2F8;
  static constexpr int64_t kGemmRows = 6;
};
struct Avx512 {
  static constexpr CpuIsa kIsa = CpuIsa::Avx512;
  using F8 = Avx512F8;
  using Wide = Avx512F16;
  using Lanes = Avx512F16;
  static constexpr int64_t kGemmRows = 16;
};

}  // namespace unet::cpu::simd

#endif  // UNET_X86_DISPATCH
