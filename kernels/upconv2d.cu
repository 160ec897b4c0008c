// kernels/upconv2d.cu — CUDA up-convolution (2×2, stride 2) as implicit GEMM over the
// unshuffled view U[Cout·4, H·W] (row r = (o·2 + a)·2 + b; see upconv2d.h), with the
// (un)shuffle folded into the tile loads and the stores, so no scratch image is materialised:
//   forward        C = U(y[n])  (Cout·4 × pixels), K = Cin,          z = image; bias in the store
//   data gradient  C = dx[n]    (Cin × pixels),    K = Cout·4,       z = image; a gather: each dx
//                               element is written once by one thread (no atomics)
//   weight grad.   C = dw       (Cin × Cout·4),    K = images·pixels, z = split of K, partials
//                               summed in a fixed order by a second kernel (deterministic)
// Tiling as kernels/matmul.cu and kernels/conv2d.cu: 64×64 tile per 256-thread block, 4×4
// register block per thread, K in slices of 16 staged in shared memory. The bias gradient is
// cuda::channel_sum from conv2d.cu.
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/upconv2d.h"

namespace unet::cuda {
namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16;
constexpr int kThreads = 256;
constexpr int64_t kTargetBlocks = 264;  // ~2 blocks per SM on an H100

template <class Op>
__global__ void __launch_bounds__(kThreads) upconv_igemm_kernel(Op op) {
  __shared__ float a_tile[kTileK][kTileM + 1];
  __shared__ float b_tile[kTileK][kTileN + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int z = blockIdx.z;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kTileM;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kTileN;
  int64_t k_begin = 0, k_end = 0;
  op.k_range(z, k_begin, k_end);
  float acc[4][4] = {};
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kTileK) {
    for (int e = threadIdx.x; e < kTileM * kTileK; e += kThreads) {
      const int i = Op::kAKFast ? e / kTileK : e % kTileM;
      const int kk = Op::kAKFast ? e % kTileK : e / kTileM;
      const int64_t gi = row0 + i, gk = k0 + kk;
      a_tile[kk][i] = (gi < op.m && gk < k_end) ? op.a(gi, gk, z) : 0.0f;
    }
    for (int e = threadIdx.x; e < kTileK * kTileN; e += kThreads) {
      const int j = Op::kBKFast ? e / kTileK : e % kTileN;
      const int kk = Op::kBKFast ? e % kTileK : e / kTileN;
      const int64_t gj = col0 + j, gk = k0 + kk;
      b_tile[kk][j] = (gj < op.n && gk < k_end) ? op.b(gk, gj, z) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float av[4], bv[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) av[r] = a_tile[kk][ty + 16 * r];
#pragma unroll
      for (int q = 0; q < 4; ++q) bv[q] = b_tile[kk][tx + 16 * q];
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int q = 0; q < 4; ++q) acc[r][q] += av[r] * bv[q];
    }
    __syncthreads();
  }
  for (int r = 0; r < 4; ++r) {
    const int64_t gi = row0 + ty + 16 * r;
    if (gi >= op.m) continue;
    for (int q = 0; q < 4; ++q) {
      const int64_t gj = col0 + tx + 16 * q;
      if (gj < op.n) op.store(gi, gj, z, acc[r][q]);
    }
  }
}

// Offset of y[img, o, 2i+a, 2j+b] for U row r = (o·2+a)·2+b and input pixel pix = i·W + j.
__device__ __forceinline__ int64_t shuffled(const Upconv2dParams& p, int64_t img, int64_t r, int64_t pix) {
  const int64_t o = r / 4, a = (r / 2) % 2, b = r % 2, i = pix / p.w, j = pix % p.w;
  return ((img * p.c_out + o) * 2 * p.h + 2 * i + a) * 2 * p.w + 2 * j + b;
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
    y[shuffled(p, img, r, pix)] = acc + (bias ? bias[r / 4] : 0.0f);
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
  __device__ float b(int64_t r, int64_t pix, int img) const { return g[shuffled(p, img, r, pix)]; }
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
    const int64_t hw = p.h * p.w;
    return x[((t / hw) * p.c_in + c) * hw + t % hw];
  }
  __device__ float b(int64_t t, int64_t r, int) const {
    const int64_t hw = p.h * p.w;
    return g[shuffled(p, t / hw, r, t % hw)];
  }
  __device__ void store(int64_t c, int64_t r, int z, float acc) const { out[(z * m + c) * n + r] = acc; }
};

__global__ void sum_splits_kernel(const float* __restrict__ partial, int64_t splits, int64_t count,
                                  float* __restrict__ dw) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < count; e += stride) {
    float s = 0.0f;
    for (int64_t z = 0; z < splits; ++z) s += partial[z * count + e];
    dw[e] = s;
  }
}

template <class Op>
void launch_igemm(const Op& op, int64_t z) {
  const dim3 grid(static_cast<unsigned>(kern::ceil_div(op.n, kTileN)),
                  static_cast<unsigned>(kern::ceil_div(op.m, kTileM)), static_cast<unsigned>(z));
  kern::launch(upconv_igemm_kernel<Op>, grid, dim3(kThreads), 0, op);
}

}  // namespace

void upconv2d_forward(const Upconv2dParams& p, const float* x, const float* w, const float* bias, float* y) {
  if (p.n == 0 || p.c_out == 0 || p.h == 0 || p.w == 0) return;
  launch_igemm(ForwardOp{p, x, w, bias, y, 4 * p.c_out, p.h * p.w, p.c_in}, p.n);
}

void upconv2d_backward_data(const Upconv2dParams& p, const float* g, const float* w, float* dx) {
  if (p.n == 0 || p.c_in == 0 || p.h == 0 || p.w == 0) return;
  launch_igemm(BackwardDataOp{p, g, w, dx, p.c_in, p.h * p.w, 4 * p.c_out}, p.n);
}

void upconv2d_backward_weight(const Upconv2dParams& p, const float* x, const float* g, float* dw) {
  const int64_t m = p.c_in, n = 4 * p.c_out, k = p.n * p.h * p.w;
  if (m == 0 || n == 0) return;
  // Split K until the grid has ~kTargetBlocks blocks, keeping >= 256 terms per split; the split
  // count depends only on the shape, so the summation order is fixed.
  const int64_t tiles = kern::ceil_div(m, kTileM) * kern::ceil_div(n, kTileN);
  const int64_t max_splits = k / 256 > 1 ? k / 256 : 1;
  int64_t splits = kern::ceil_div(kTargetBlocks, tiles);
  splits = splits < max_splits ? splits : max_splits;
  const int64_t chunk = kern::ceil_div(k, splits);
  splits = kern::ceil_div(k, chunk);
  Tensor partial;
  float* out = dw;
  if (splits > 1) {
    partial = Tensor::empty(Shape{splits, m, n}, DType::Float32, Device{DeviceType::CUDA, 0});
    out = partial.data<float>();
  }
  launch_igemm(BackwardWeightOp{p, x, g, out, m, n, k, chunk}, splits);
  if (splits > 1) {
    const int64_t count = m * n, blocks = kern::ceil_div(count, kThreads);
    kern::launch(sum_splits_kernel, dim3(static_cast<unsigned>(blocks < 1024 ? blocks : 1024)), dim3(kThreads), 0,
                 static_cast<const float*>(out), splits, count, dw);
  }
}

}  // namespace unet::cuda
