// kernels/upconv2d.cu — CUDA up-convolution (2×2, stride 2) as implicit GEMM over the
// unshuffled view U[Cout·4, H·W] (row r = (o·2 + a)·2 + b; see upconv2d.h), with the
// (un)shuffle folded into the tile loads and the stores, so no scratch image is materialised:
//   forward        C = U(y[n])  (Cout·4 × pixels), K = Cin,          z = image; bias in the store
//   data gradient  C = dx[n]    (Cin × pixels),    K = Cout·4,       z = image; a gather: each dx
//                               element is written once by one thread (no atomics)
//   weight grad.   C = dw       (Cin × Cout·4),    K = images·pixels, z = split of K, partials
//                               summed in a fixed order by a second kernel (deterministic)
// The tiled kernel is kernels/implicit_gemm.cuh (shared with conv2d.cu and matmul.cu). The bias
// gradient is cuda::channel_sum from conv2d.cu.
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/upconv2d.h"
#include "kernels/implicit_gemm.cuh"

namespace unet::cuda {
namespace {

// Index arithmetic in 32 bits (kern::check_32bit_indices): the launchers refuse tensors of 2^31
// or more elements.
void check_32bit_indices(const Upconv2dParams& p, const char* op) {
  kern::check_32bit_indices(op, p.n * p.c_in * p.h * p.w, p.n * p.c_out * 4 * p.h * p.w, p.c_in * p.c_out * 4);
}

// Offset of y[img, o, 2i+a, 2j+b] for U row r = (o·2+a)·2+b and input pixel pix = i·W + j.
__device__ __forceinline__ int shuffled(const Upconv2dParams& p, int img, int r, int pix) {
  const int w = static_cast<int>(p.w), h = static_cast<int>(p.h), c_out = static_cast<int>(p.c_out);
  const int o = r >> 2, a = (r >> 1) & 1, b = r & 1, i = pix / w, j = pix - i * w;
  return ((img * c_out + o) * 2 * h + 2 * i + a) * 2 * w + 2 * j + b;
}

struct ForwardOp {
  static constexpr bool kAKFast = false;  // w[c][r]: contiguous along r (the M index)
  static constexpr bool kBKFast = false;  // x[img][c][pix]: contiguous along pixels
  Upconv2dParams p;
  const float* x;
  const float* w;
  const float* bias;
  float* y;
  int64_t m, n, k;
  __device__ void k_range(int, int64_t& kb, int64_t& ke) const { kb = 0; ke = k; }
  __device__ float a(int64_t r, int64_t c, int) const { return w[c * m + r]; }
  __device__ float b(int64_t c, int64_t pix, int img) const { return x[(img * p.c_in + c) * n + pix]; }
  __device__ void store(int64_t r, int64_t pix, int img, float acc) const {
    y[shuffled(p, img, static_cast<int>(r), static_cast<int>(pix))] = acc + (bias ? bias[r / 4] : 0.0f);
  }
};

struct BackwardDataOp {
  static constexpr bool kAKFast = true;  // w[c][r]: contiguous along r (here K)
  static constexpr bool kBKFast = false;
  Upconv2dParams p;
  const float* g;
  const float* w;
  float* dx;
  int64_t m, n, k;
  __device__ void k_range(int, int64_t& kb, int64_t& ke) const { kb = 0; ke = k; }
  __device__ float a(int64_t c, int64_t r, int) const { return w[c * k + r]; }
  __device__ float b(int64_t r, int64_t pix, int img) const {
    return g[shuffled(p, img, static_cast<int>(r), static_cast<int>(pix))];
  }
  __device__ void store(int64_t c, int64_t pix, int img, float acc) const { dx[(img * p.c_in + c) * n + pix] = acc; }
};

struct BackwardWeightOp {
  static constexpr bool kAKFast = true;  // K = (image, pixel): contiguous in x and (pairwise) in g
  static constexpr bool kBKFast = true;
  Upconv2dParams p;
  const float* x;
  const float* g;
  float* out;  // [splits, Cin, Cout·4]
  int64_t m, n, k, chunk;
  __device__ void k_range(int z, int64_t& kb, int64_t& ke) const {
    kb = z * chunk;
    ke = kb + chunk < k ? kb + chunk : k;
  }
  __device__ float a(int64_t c, int64_t t, int) const {
    const int hw = static_cast<int>(p.h * p.w), t32 = static_cast<int>(t), img = t32 / hw;
    return x[(img * static_cast<int>(p.c_in) + static_cast<int>(c)) * hw + (t32 - img * hw)];
  }
  __device__ float b(int64_t t, int64_t r, int) const {
    const int hw = static_cast<int>(p.h * p.w), t32 = static_cast<int>(t), img = t32 / hw;
    return g[shuffled(p, img, static_cast<int>(r), t32 - img * hw)];
  }
  __device__ void store(int64_t c, int64_t r, int z, float acc) const { out[(z * m + c) * n + r] = acc; }
};

}  // namespace

void upconv2d_forward(const Upconv2dParams& p, const float* x, const float* w, const float* bias, float* y) {
  if (p.n == 0 || p.c_out == 0 || p.h == 0 || p.w == 0) return;
  check_32bit_indices(p, "upconv2d (CUDA)");
  igemm::run(ForwardOp{p, x, w, bias, y, 4 * p.c_out, p.h * p.w, p.c_in}, p.n);
}

void upconv2d_backward_data(const Upconv2dParams& p, const float* g, const float* w, float* dx) {
  if (p.n == 0 || p.c_in == 0 || p.h == 0 || p.w == 0) return;
  check_32bit_indices(p, "upconv2d data gradient (CUDA)");
  igemm::run(BackwardDataOp{p, g, w, dx, p.c_in, p.h * p.w, 4 * p.c_out}, p.n);
}

void upconv2d_backward_weight(const Upconv2dParams& p, const float* x, const float* g, float* dw) {
  check_32bit_indices(p, "upconv2d weight gradient (CUDA)");
  const int64_t m = p.c_in, n = 4 * p.c_out, k = p.n * p.h * p.w;
  igemm::run_split_k(m, n, k, dw, [&](float* out, int64_t chunk) {
    return BackwardWeightOp{p, x, g, out, m, n, k, chunk};
  });
}

}  // namespace unet::cuda
