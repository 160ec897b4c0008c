// kernels/conv2d.cu — CUDA convolution as implicit GEMM: no im2col buffer in global memory; the
// operand tiles are gathered from the image (zero outside it) straight into shared memory.
//
// The tiled kernel is kernels/implicit_gemm.cuh; the Ops below say how to read A and B and how
// to store a result:
//   forward        C = y[n]   (Cout × output pixels),  K = Cin·k·k,  z = (image, split); bias +
//                             ReLU fused into the store
//   data gradient  C = dx[n]  (Cin × input pixels),    K = Cout·k·k, z = (image, split); a
//                             gather, so each dx element is written once by one thread (no atomics)
//   weight grad.   C = dw     (Cout × Cin·k·k),        K = images·pixels, z = split
// Every pass splits K where C has too few tiles to fill the GPU (kernels/split_k_plan.h: the
// weight gradients nearly always, the forward and data gradient on the deep levels): each split
// writes a partial into scratch and a second kernel sums the splits in a fixed order and applies
// the epilogue (bias, ReLU) — deterministic, no atomics. The number of splits depends only on the
// shape, so results are reproducible.
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

// The gathers below split each operand's address into the part fixed by its row of A or column
// of B (a cursor, computed once per thread) and the part that moves with k (a KPos, decomposed
// once per k): kernels/implicit_gemm.cuh. With KS known, the decompositions divide by constants.

// An image pixel: the image's offset and the pixel's corner, (i − pad, j − pad) for a forward
// patch, (i + pad, j + pad) for a data-gradient window, (u − pad, v − pad) for a weight tap.
struct PixelCursor {
  int base, i, j;
  int off;        // base + i·W + j of the gathered tensor: with no bounds to check, one add per element
  unsigned taps;  // BackwardDataOp<3>: bit u·3 + v set when tap (u, v) lands inside g
};

// A patch index kidx = (c·k + u)·k + v, split.
struct Tap {
  int kidx, c, u, v;
  int off;  // the tap's part of the address: (c·H + u)·W + v in ForwardOp<KS, false>'s x,
            // (c·Ho − u)·Wo − v in BackwardDataOp<3>'s g (0 elsewhere)
};
template <int KS>
__device__ __forceinline__ Tap split_tap(const Geometry& q, int kidx) {
  const int k = kernel_size<KS>(q), c = kidx / (k * k), uv = kidx - c * k * k, u = uv / k;
  return Tap{kidx, c, u, uv - u * k, 0};
}

// Padded = false: valid padding, where no patch reaches outside the image (the U-Net's layers),
// so the gathers skip the bounds checks.
template <int KS, bool Padded>
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
  igemm::KSplit split;
  __device__ void k_range(int z, int& kb, int& ke) const { split.range(z, kb, ke); }
  __device__ Tap k_pos(int kidx) const {
    Tap t = split_tap<KS>(q, kidx);
    if constexpr (!Padded) t.off = (t.c * q.h + t.u) * q.w + t.v;
    return t;
  }
  __device__ int a_row(int o, int) const { return o * static_cast<int>(k); }
  __device__ igemm::Src a_src(int row, const Tap& t) const { return {w + row + t.kidx, true}; }
  // x[img, c, i + u − pad, j + v − pad] for output pixel (i, j); 0 outside the image.
  __device__ PixelCursor b_col(int pix, int z) const {
    const int i = pix / q.w_out, img = split.group(z);
    const int base = img * q.c_in * q.h * q.w, ci = i - q.pad, cj = pix - i * q.w_out - q.pad;
    return PixelCursor{base, ci, cj, base + ci * q.w + cj, 0};
  }
  __device__ igemm::Src b_src(const PixelCursor& at, const Tap& t) const {
    if constexpr (!Padded) return {x + (at.off + t.off), true};
    const int ih = at.i + t.u, iw = at.j + t.v;
    return {x + at.base + (t.c * q.h + ih) * q.w + iw, ih >= 0 && ih < q.h && iw >= 0 && iw < q.w};
  }
  __device__ void store(int o, int pix, int z, float acc) const {
    if (split.store_partial(z, o * static_cast<int>(n) + pix, acc)) return;
    float v = acc + (bias ? bias[o] : 0.0f);
    if (relu) v = v > 0.0f ? v : 0.0f;
    y[(split.group(z) * q.c_out + o) * static_cast<int>(n) + pix] = v;
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
  igemm::KSplit split;
  __device__ void k_range(int z, int& kb, int& ke) const { split.range(z, kb, ke); }
  // kidx = (o·k + u)·k + v: Tap's c is the output channel o here.
  __device__ Tap k_pos(int kidx) const {
    Tap t = split_tap<KS>(q, kidx);
    if constexpr (KS == 3) t.off = (t.c * q.h_out - t.u) * q.w_out - t.v;
    return t;
  }
  // w[o, c, u, v]: the row fixes c.
  __device__ int a_row(int c, int) const { return c * kernel_size<KS>(q) * kernel_size<KS>(q); }
  __device__ igemm::Src a_src(int row, const Tap& t) const {
    const int kk = kernel_size<KS>(q) * kernel_size<KS>(q);
    return {w + t.c * q.c_in * kk + row + (t.kidx - t.c * kk), true};
  }
  // g[img, o, h − u + pad, w' − v + pad] for input pixel (h, w'); 0 where that output does not exist.
  // For 3×3 the cursor also holds which of the 9 taps land inside g (the "full" correlation reads
  // g's zero border for pixels near the edge): per element a bit test instead of four compares.
  __device__ PixelCursor b_col(int pix, int z) const {
    const int img = split.group(z), row = pix / q.w, base = img * q.c_out * q.h_out * q.w_out, i = row + q.pad, j = pix - row * q.w + q.pad;
    unsigned taps = 0;
    if constexpr (KS == 3) {
#pragma unroll
      for (int u = 0; u < 3; ++u)
#pragma unroll
        for (int v = 0; v < 3; ++v)
          if (i - u >= 0 && i - u < q.h_out && j - v >= 0 && j - v < q.w_out) taps |= 1u << (u * 3 + v);
    }
    return PixelCursor{base, i, j, base + i * q.w_out + j, taps};
  }
  __device__ igemm::Src b_src(const PixelCursor& at, const Tap& t) const {
    if constexpr (KS == 3) return {g + (at.off + t.off), ((at.taps >> (t.kidx - 9 * t.c)) & 1u) != 0};
    const int i = at.i - t.u, j = at.j - t.v;
    return {g + at.base + (t.c * q.h_out + i) * q.w_out + j, i >= 0 && i < q.h_out && j >= 0 && j < q.w_out};
  }
  __device__ void store(int c, int pix, int z, float acc) const {
    if (split.store_partial(z, c * static_cast<int>(n) + pix, acc)) return;
    dx[(split.group(z) * q.c_in + c) * static_cast<int>(n) + pix] = acc;
  }
};

// K index r = img·pixels + (i·w_out + j) of the weight gradient, split.
struct SamplePos {
  int img, pix, i, j;
  int x_off;  // img·Cin·H·W + i·W + j (BackwardWeightOp<KS, false> only)
};

template <int KS, bool Padded>
struct BackwardWeightOp {
  static constexpr bool kAKFast = true;  // K = (image, pixel): contiguous in g and (mostly) in x
  static constexpr bool kBKFast = true;
  Geometry q;
  const float* x;
  const float* g;
  float* dw;
  int64_t m, n, k;
  igemm::KSplit split;
  __device__ void k_range(int z, int& kb, int& ke) const { split.range(z, kb, ke); }
  __device__ SamplePos k_pos(int r) const {
    const int pixels = q.h_out * q.w_out, img = r / pixels, pix = r - img * pixels, i = pix / q.w_out;
    const int j = pix - i * q.w_out;
    return SamplePos{img, pix, i, j, Padded ? 0 : img * q.c_in * q.h * q.w + i * q.w + j};
  }
  // g[img, o, pixel]: the row fixes o.
  __device__ int a_row(int o, int) const { return o * q.h_out * q.w_out; }
  __device__ igemm::Src a_src(int row, const SamplePos& s) const {
    return {g + s.img * q.c_out * q.h_out * q.w_out + row + s.pix, true};
  }
  // x[img, c, i + u − pad, j + v − pad]: the column kidx = (c·k + u)·k + v fixes c, u and v.
  __device__ PixelCursor b_col(int kidx, int) const {
    const Tap t = split_tap<KS>(q, kidx);
    const int base = t.c * q.h * q.w;
    return PixelCursor{base, t.u - q.pad, t.v - q.pad, base + (t.u - q.pad) * q.w + (t.v - q.pad), 0};
  }
  __device__ igemm::Src b_src(const PixelCursor& tap, const SamplePos& s) const {
    if constexpr (!Padded) return {x + (tap.off + s.x_off), true};
    const int ih = s.i + tap.i, iw = s.j + tap.j;
    return {x + s.img * q.c_in * q.h * q.w + tap.base + ih * q.w + iw, ih >= 0 && ih < q.h && iw >= 0 && iw < q.w};
  }
  __device__ void store(int o, int kidx, int z, float acc) const {
    if (split.store_partial(z, o * static_cast<int>(n) + kidx, acc)) return;
    dw[o * static_cast<int>(n) + kidx] = acc;
  }
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

namespace {
// Each pass as a GEMM: C = m × n per group (image), K = k.
struct GemmShape {
  int64_t m, n, groups, k;
};
GemmShape forward_gemm(const Conv2dParams& p) { return {p.c_out, p.h_out * p.w_out, p.n, p.c_in * p.k * p.k}; }
GemmShape data_gemm(const Conv2dParams& p) { return {p.c_in, p.h * p.w, p.n, p.c_out * p.k * p.k}; }
GemmShape weight_gemm(const Conv2dParams& p) { return {p.c_out, p.c_in * p.k * p.k, 1, p.n * p.h_out * p.w_out}; }
}  // namespace

void conv2d_forward(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y) {
  if (p.n == 0 || p.c_out == 0 || p.h_out <= 0 || p.w_out <= 0) return;
  const Geometry q = geometry32(p, "conv2d (CUDA)");
  const GemmShape s = forward_gemm(p);
  const auto run = [&](auto op_tag) {
    using Op = decltype(op_tag);
    igemm::run_split_k(s.m, s.n, s.groups, s.k,
                       [&](const igemm::KSplit& split) { return Op{q, p.relu, x, w, bias, y, s.m, s.n, s.k, split}; },
                       igemm::SplitEpilogue{bias, s.n, p.relu}, y, p.precision);
  };
  if (p.k == 3 && p.pad == 0)
    run(ForwardOp<3, false>{});
  else if (p.k == 3)
    run(ForwardOp<3, true>{});
  else
    run(ForwardOp<0, true>{});
}

void conv2d_backward_data(const Conv2dParams& p, const float* g, const float* w, float* dx) {
  if (p.n == 0 || p.c_in == 0 || p.h == 0 || p.w == 0) return;
  const Geometry q = geometry32(p, "conv2d data gradient (CUDA)");
  const GemmShape s = data_gemm(p);
  const auto run = [&](auto op_tag) {
    using Op = decltype(op_tag);
    igemm::run_split_k(s.m, s.n, s.groups, s.k,
                       [&](const igemm::KSplit& split) { return Op{q, g, w, dx, s.m, s.n, s.k, split}; },
                       igemm::SplitEpilogue{}, dx, p.precision);
  };
  if (p.k == 3)
    run(BackwardDataOp<3>{});
  else
    run(BackwardDataOp<0>{});
}

void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* g, float* dw) {
  const Geometry q = geometry32(p, "conv2d weight gradient (CUDA)");
  const GemmShape s = weight_gemm(p);
  const auto run = [&](auto op_tag) {
    using Op = decltype(op_tag);
    igemm::run_split_k(s.m, s.n, s.groups, s.k,
                       [&](const igemm::KSplit& split) { return Op{q, x, g, dw, s.m, s.n, s.k, split}; },
                       igemm::SplitEpilogue{}, dw, p.precision);
  };
  if (p.k == 3 && p.pad == 0)
    run(BackwardWeightOp<3, false>{});
  else if (p.k == 3)
    run(BackwardWeightOp<3, true>{});
  else
    run(BackwardWeightOp<0, true>{});
}

PassSplits conv2d_splits(const Conv2dParams& p) {
  const auto splits = [&](const GemmShape& s) { return igemm::split_plan(s.m, s.n, s.groups, s.k, p.precision).splits; };
  return PassSplits{splits(forward_gemm(p)), splits(data_gemm(p)), splits(weight_gemm(p))};
}

void channel_sum(const float* g, int64_t n, int64_t channels, int64_t pixels, float* db) {
  if (channels == 0) return;
  kern::launch(channel_sum_kernel, dim3(static_cast<unsigned>(channels)), dim3(kChannelSumThreads), 0, g, n, channels,
               pixels, db);
}

}  // namespace unet::cuda
