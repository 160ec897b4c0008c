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

// x[img, c, i+u-pad, j+v-pad] for the patch index kidx = (c·k + u)·k + v and output pixel
// (i, j); 0 outside the image.
__device__ __forceinline__ float patch_value(const Conv2dParams& p, const float* __restrict__ x, int64_t img,
                                             int64_t kidx, int64_t i, int64_t j) {
  const int64_t kk = p.k * p.k, c = kidx / kk, u = (kidx / p.k) % p.k, v = kidx % p.k;
  const int64_t ih = i + u - p.pad, iw = j + v - p.pad;
  if (ih < 0 || ih >= p.h || iw < 0 || iw >= p.w) return 0.0f;
  return x[((img * p.c_in + c) * p.h + ih) * p.w + iw];
}

struct ForwardOp {
  static constexpr bool kAKFast = true;   // w rows are contiguous along K
  static constexpr bool kBKFast = false;  // neighbouring output pixels read neighbouring inputs
  Conv2dParams p;
  const float* x;
  const float* w;
  const float* bias;
  float* y;
  int64_t m, n, k;
  __device__ void k_range(int, int64_t& kb, int64_t& ke) const { kb = 0; ke = k; }
  __device__ float a(int64_t o, int64_t kidx, int) const { return w[o * k + kidx]; }
  __device__ float b(int64_t kidx, int64_t pix, int img) const {
    return patch_value(p, x, img, kidx, pix / p.w_out, pix % p.w_out);
  }
  __device__ void store(int64_t o, int64_t pix, int img, float acc) const {
    float v = acc + (bias ? bias[o] : 0.0f);
    if (p.relu) v = v > 0.0f ? v : 0.0f;
    y[(img * p.c_out + o) * n + pix] = v;
  }
};

struct BackwardDataOp {
  static constexpr bool kAKFast = true;   // kidx = (o, u, v): (u, v) contiguous in w
  static constexpr bool kBKFast = false;
  Conv2dParams p;
  const float* g;
  const float* w;
  float* dx;
  int64_t m, n, k;
  __device__ void k_range(int, int64_t& kb, int64_t& ke) const { kb = 0; ke = k; }
  __device__ float a(int64_t c, int64_t kidx, int) const {
    const int64_t kk = p.k * p.k, o = kidx / kk, uv = kidx % kk;
    return w[(o * p.c_in + c) * kk + uv];
  }
  // g[img, o, h-u+pad, v'-v+pad] for input pixel (h, v'); 0 where that output does not exist.
  __device__ float b(int64_t kidx, int64_t pix, int img) const {
    const int64_t kk = p.k * p.k, o = kidx / kk, u = (kidx / p.k) % p.k, v = kidx % p.k;
    const int64_t i = pix / p.w - u + p.pad, j = pix % p.w - v + p.pad;
    if (i < 0 || i >= p.h_out || j < 0 || j >= p.w_out) return 0.0f;
    return g[((img * p.c_out + o) * p.h_out + i) * p.w_out + j];
  }
  __device__ void store(int64_t c, int64_t pix, int img, float acc) const {
    dx[(img * p.c_in + c) * n + pix] = acc;
  }
};

struct BackwardWeightOp {
  static constexpr bool kAKFast = true;  // K = (image, pixel): contiguous in g and (mostly) in x
  static constexpr bool kBKFast = true;
  Conv2dParams p;
  const float* x;
  const float* g;
  float* out;  // [splits, Cout, Cin·k·k]
  int64_t m, n, k, chunk;
  __device__ void k_range(int z, int64_t& kb, int64_t& ke) const {
    kb = z * chunk;
    ke = kb + chunk < k ? kb + chunk : k;
  }
  __device__ float a(int64_t o, int64_t r, int) const {
    const int64_t pixels = p.h_out * p.w_out, img = r / pixels;
    return g[(img * p.c_out + o) * pixels + r % pixels];
  }
  __device__ float b(int64_t r, int64_t kidx, int) const {
    const int64_t pixels = p.h_out * p.w_out, img = r / pixels, pix = r % pixels;
    return patch_value(p, x, img, kidx, pix / p.w_out, pix % p.w_out);
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
  ForwardOp op{p, x, w, bias, y, p.c_out, p.h_out * p.w_out, p.c_in * p.k * p.k};
  igemm::run(op, p.n);
}

void conv2d_backward_data(const Conv2dParams& p, const float* g, const float* w, float* dx) {
  if (p.n == 0 || p.c_in == 0 || p.h == 0 || p.w == 0) return;
  BackwardDataOp op{p, g, w, dx, p.c_in, p.h * p.w, p.c_out * p.k * p.k};
  igemm::run(op, p.n);
}

void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* g, float* dw) {
  const int64_t m = p.c_out, n = p.c_in * p.k * p.k, k = p.n * p.h_out * p.w_out;
  igemm::run_split_k(m, n, k, dw, [&](float* out, int64_t chunk) {
    return BackwardWeightOp{p, x, g, out, m, n, k, chunk};
  });
}

void channel_sum(const float* g, int64_t n, int64_t channels, int64_t pixels, float* db) {
  if (channels == 0) return;
  kern::launch(channel_sum_kernel, dim3(static_cast<unsigned>(channels)), dim3(kChannelSumThreads), 0, g, n, channels,
               pixels, db);
}

}  // namespace unet::cuda
