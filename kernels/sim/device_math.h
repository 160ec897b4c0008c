// kernels/sim/device_math.h — CUDA device math intrinsics and the global min/max overloads, for
// simulated kernels. The fast-math intrinsics (__expf, __logf, ...) are computed at full float
// precision here; on the GPU they are a few ulps off, so tests compare with a tolerance.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

// Read-only cache loads are plain loads on the CPU.
template <typename T>
inline T __ldg(const T* address) {
  return *address;
}

inline float __expf(float x) { return std::exp(x); }
inline float __exp10f(float x) { return std::pow(10.0f, x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __log10f(float x) { return std::log10(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fmaf_rn(float x, float y, float z) { return std::fma(x, y, z); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
// Clamps to [0, 1]; NaN becomes 0 as on the GPU.
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }
inline int __float2int_rn(float x) { return static_cast<int>(std::nearbyint(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline float __int2float_rn(int x) { return static_cast<float>(x); }

inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }

inline int __popc(unsigned x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return std::countl_zero(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned>(x)) + 1; }
inline int __ffsll(long long x) {
  return x == 0 ? 0 : std::countr_zero(static_cast<unsigned long long>(x)) + 1;
}
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}

// CUDA declares min/max for every arithmetic type in the global namespace; mixed signed /
// unsigned arguments compare as unsigned, as in CUDA's math_functions.hpp.
#define UNET_SIM_MINMAX(T)                                     \
  inline T min(T a, T b) { return b < a ? b : a; }             \
  inline T max(T a, T b) { return a < b ? b : a; }
UNET_SIM_MINMAX(int)
UNET_SIM_MINMAX(unsigned)
UNET_SIM_MINMAX(long)
UNET_SIM_MINMAX(unsigned long)
UNET_SIM_MINMAX(long long)
UNET_SIM_MINMAX(unsigned long long)
#undef UNET_SIM_MINMAX
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
inline double min(float a, double b) { return std::fmin(static_cast<double>(a), b); }
inline double min(double a, float b) { return std::fmin(a, static_cast<double>(b)); }
inline double max(float a, double b) { return std::fmax(static_cast<double>(a), b); }
inline double max(double a, float b) { return std::fmax(a, static_cast<double>(b)); }
#define UNET_SIM_MIXED_MINMAX(S, U)                                                \
  inline U min(S a, U b) { return min(static_cast<U>(a), b); }                   \
  inline U min(U a, S b) { return min(a, static_cast<U>(b)); }                   \
  inline U max(S a, U b) { return max(static_cast<U>(a), b); }                   \
  inline U max(U a, S b) { return max(a, static_cast<U>(b)); }
UNET_SIM_MIXED_MINMAX(int, unsigned)
UNET_SIM_MIXED_MINMAX(long, unsigned long)
UNET_SIM_MIXED_MINMAX(long long, unsigned long long)
#undef UNET_SIM_MIXED_MINMAX
