// kernels/conv2d.cu — CUDA convolution as implicit GEMM: no im2col buffer in global memory; the
// operand tiles are gathered from the image (zero outside it) straight into shared memory.
//
// The tiled kernel is kernels/implicit_gemm.cuh; the Ops below say how to read A and B and how
// to store a result:
//   forward        C = y[n]   (Cout × output pixels),  K = Cin·k·k,  z = image; bias + ReLU fused
//                             into the store
//   data gradient  C = dx[n]  (Cin × input pixels),    K = Cout·k·k, z = image; a gather, so each
//                             dx element is written once by one thread (no atomics)
//   weight grad.   C = dw     (Cout × Cin·k·k),        K = images·pixels, z = split of K: each
//                             split writes a partial into scratch and a second kernel sums the
//                             splits in a fixed order (deterministic, no atomics). The number of
//                             splits depends only on the shape, so results are reproducible.
// The bias gradient is one block per channel with a fixed reduction tree (deterministic).
#include "kernels/cuda_compat.h"
#include "kernels/launch.h"
#include "kernels/block_reduce.cuh"
#include "kernels/conv2d.h"
#include "kernels/implicit_gemm.cuh"

namespace unet::cuda {
namespace {

constexpr int kChannelSumThreads = 256;

// The gathers' index arithmetic runs in 32 bits (the launchers check that every tensor has fewer
// than 2^31 elements) and, for the U-Net's 3×3 kernels, with the kernel size known at compile
// time: 64-bit division by a runtime divisor is a long software routine on the GPU, and the first
// GPU run (docs/benchmarks.md, H200) had these loaders doing five of them per element gathered.
// KS = kernel size when known at compile time, 0 = read it from the geometry.
struct Geometry {
  int c_in, c_out, h, w, h_out, w_out, k, pad;
};

Geometry geometry32(const Conv2dParams& p, const char* op) {
  kern::check_32bit_indices(op, p.n * p.c_in * p.h * p.w, p.n * p.c_out * p.h_out * p.w_out,
                            p.c_out * p.c_in * p.k * p.k);
  return Geometry{static_cast<int>(p.c_in), static_cast<int>(p.c_out), static_cast<int>(p.h), static_cast<int>(p.w),
                  static_cast<int>(p.h_out), static_cast<int>(p.w_out), static_cast<int>(p.k), static_cast<int>(p.pad)};
}

template <int KS> __device__ __forceinline__ int kernel_size(const Geometry& q) {
  if constexpr (KS > 0) return KS;
  else return q.k;
}

// x[img, c, i+u-pad, j+v-pad] for the patch index kidx = (c·k + u)·k + v and output pixel
// (i, j); 0 outside the image.
template <int KS>
__device__ __forceinline__ float patch_value(const Geometry& q, const float* __restrict__ x, int img, int kidx,
                                             int i, int j) {
  const int k = kernel_size<KS>(q), c = kidx / (k * k), uv = kidx - c * k * k, u = uv / k, v = uv - u * k;
  const int ih = i + u - q.pad, iw = j + v - q.pad;
  if (ih < 0 || ih >= q.h || iw < 0 || iw >= q.w) return 0.0f;
  return x[((img * q.c_in + c) * q.h + ih) * q.w + iw];
}

template <int KS>
struct ForwardOp {
  static constexpr bool kAKFast = true;   // w rows are contiguous along K
  static constexpr bool kBKFast = false;  // neighbouring output pixels read neighbouring inputs
  Geometry q;
  bool relu;
  const float* x;
  const float* w;
  const float* bias;
  float* y;
  int64_t m, n, k;
  __device__ void k_range(int, int64_t& kb, int64_t& ke) const { kb = 0; ke = k; }
  __device__ float a(int64_t o, int64_t kidx, int) const { return w[static_cast<int>(o * k + kidx)]; }
  __device__ float b(int64_t kidx, int64_t pix, int img) const {
    const int p32 = static_cast<int>(pix), i = p32 / q.w_out;
    return patch_value<KS>(q, x, img, static_cast<int>(kidx), i, p32 - i * q.w_out);
  }
  __device__ void store(int64_t o, int64_t pix, int img, float acc) const {
    float v = acc + (bias ? bias[o] : 0.0f);
    if (relu) v = v > 0.0f ? v : 0.0f;
    y[static_cast<int>((img * q.c_out + o) * n + pix)] = v;
  }
};

template <int KS>
struct BackwardDataOp {
  static constexpr bool kAKFast = true;   // kidx = (o, u, v): (u, v) contiguous in w
  static constexpr bool kBKFast = false;
  Geometry q;
  const float* g;
  const float* w;
  float* dx;
  int64_t m, n, k;
  __device__ void k_range(int, int64_t& kb, int64_t& ke) const { kb = 0; ke = k; }
  __device__ float a(int64_t c, int64_t kidx, int) const {
    const int ks = kernel_size<KS>(q), kk = ks * ks, o = static_cast<int>(kidx) / kk, uv = static_cast<int>(kidx) - o * kk;
    return w[(o * q.c_in + static_cast<int>(c)) * kk + uv];
  }
  // g[img, o, h-u+pad, v'-v+pad] for input pixel (h, v'); 0 where that output does not exist.
  __device__ float b(int64_t kidx, int64_t pix, int img) const {
    const int ks = kernel_size<KS>(q), k32 = static_cast<int>(kidx), o = k32 / (ks * ks), uv = k32 - o * ks * ks;
    const int u = uv / ks, v = uv - u * ks, p32 = static_cast<int>(pix), row = p32 / q.w;
    const int i = row - u + q.pad, j = p32 - row * q.w - v + q.pad;
    if (i < 0 || i >= q.h_out || j < 0 || j >= q.w_out) return 0.0f;
    return g[((img * q.c_out + o) * q.h_out + i) * q.w_out + j];
  }
  __device__ void store(int64_t c, int64_t pix, int img, float acc) const {
    dx[static_cast<int>((img * q.c_in + c) * n + pix)] = acc;
  }
};

template <int KS>
struct BackwardWeightOp {
  static constexpr bool kAKFast = true;  // K = (image, pixel): contiguous in g and (mostly) in x
  static constexpr bool kBKFast = true;
  Geometry q;
  const float* x;
  const float* g;
  float* out;  // [splits, Cout, Cin·k·k]
  int64_t m, n, k, chunk;
  __device__ void k_range(int z, int64_t& kb, int64_t& ke) const {
    kb = z * chunk;
    ke = kb + chunk < k ? kb + chunk : k;
  }
  __device__ float a(int64_t o, int64_t r, int) const {
    const int pixels = q.h_out * q.w_out, r32 = static_cast<int>(r), img = r32 / pixels;
    return g[(img * q.c_out + static_cast<int>(o)) * pixels + (r32 - img * pixels)];
  }
  __device__ float b(int64_t r, int64_t kidx, int) const {
    const int pixels = q.h_out * q.w_out, r32 = static_cast<int>(r), img = r32 / pixels, pix = r32 - img * pixels;
    const int i = pix / q.w_out;
    return patch_value<KS>(q, x, img, static_cast<int>(kidx), i, pix - i * q.w_out);
  }
  __device__ void store(int64_t o, int64_t kidx, int z, float acc) const { out[(z * m + o) * n + kidx] = acc; }
};

// One block per channel: thread t sums a fixed strided subset, then a fixed tree.
__global__ void channel_sum_kernel(const float* __restrict__ g, int64_t n, int64_t channels, int64_t pixels,
                                   float* __restrict__ db) {
  const int64_t c = blockIdx.x;
  float v = 0.0f;
  for (int64_t img = 0; img < n; ++img) {
    const float* row = g + (img * channels + c) * pixels;
    for (int64_t j = threadIdx.x; j < pixels; j += kChannelSumThreads) v += row[j];
  }
  v = block_sum<kChannelSumThreads>(v);
  if (threadIdx.x == 0) db[c] = v;
}

}  // namespace

void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y) {
  if (p.n == 0 || p.c_out == 0 || p.h_out <= 0 || p.w_out <= 0) return;
  const Geometry q = geometry32(p, "conv2d (CUDA)");
  const int64_t m = p.c_out, n = p.h_out * p.w_out, k = p.c_in * p.k * p.k;
  if (p.k == 3)
    igemm::run(ForwardOp<3>{q, p.relu, x, w, bias, y, m, n, k}, p.n);
  else
    igemm::run(ForwardOp<0>{q, p.relu, x, w, bias, y, m, n, k}, p.n);
}

void conv2d_backward_data(const Conv2dParams& p, const float* g, const float* w, float* dx) {
  if (p.n == 0 || p.c_in == 0 || p.h == 0 || p.w == 0) return;
  const Geometry q = geometry32(p, "conv2d data gradient (CUDA)");
  const int64_t m = p.c_in, n = p.h * p.w, k = p.c_out * p.k * p.k;
  if (p.k == 3)
    igemm::run(BackwardDataOp<3>{q, g, w, dx, m, n, k}, p.n);
  else
    igemm::run(BackwardDataOp<0>{q, g, w, dx, m, n, k}, p.n);
}

void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* g, float* dw) {
  const Geometry q = geometry32(p, "conv2d weight gradient (CUDA)");
  const int64_t m = p.c_out, n = p.c_in * p.k * p.k, k = p.n * p.h_out * p.w_out;
  if (p.k == 3)
    igemm::run_split_k(m, n, k, dw, [&](float* out, int64_t chunk) { return BackwardWeightOp<3>{q, x, g, out, m, n, k, chunk}; });
  else
    igemm::run_split_k(m, n, k, dw, [&](float* out, int64_t chunk) { return BackwardWeightOp<0>{q, x, g, out, m, n, k, chunk}; });
}

void channel_sum(const float* g, int64_t n, int64_t channels, int64_t pixels, float* db) {
  if (channels == 0) return;
  kern::launch(channel_sum_kernel, dim3(static_cast<unsigned>(channels)), dim3(kChannelSumThreads), 0, g, n, channels,
               pixels, db);
}

}  // namespace unet::cuda
