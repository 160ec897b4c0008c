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
#include "kernels/crop_concat.h"
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
  int off2 = 0;  // ConcatForwardOp: the same pixel's offset in the skip map
};

// A patch index kidx = (c·k + u)·k + v, split.
struct Tap {
  int kidx, c, u, v;
  int off;  // the tap's part of the address: (c·H + u)·W + v in ForwardOp<KS, false>'s x,
            // (c·Ho − u)·Wo − v in BackwardDataOp<3>'s g (0 elsewhere)
  bool from_skip = false;  // ConcatForwardOp: channel c is the skip's
};
template <int KS>
__device__ __forceinline__ Tap split_tap(const Geometry& q, int kidx) {
  const int k = kernel_size<KS>(q), c = kidx / (k * k), uv = kidx - c * k * k, u = uv / k;
  return Tap{kidx, c, u, uv - u * k, 0};
}

// The decoder's first convolution reads crop_concat(skip, up) in place (conv2d_concat): input
// channel c < skip_channels is skip[img, c, oy + i, ox + j] (the centred crop), channel c ≥
// skip_channels is up[img, c − skip_channels, i, j]; Geometry's c_in, h, w are the concatenation's
// (up's size). Its data gradient writes the two parts the same way (dskip: the window only).
struct ConcatMaps {
  int skip_channels = 0, skip_h = 0, skip_w = 0, oy = 0, ox = 0;
  // Offset of (c < skip_channels, i, j) in the skip map, and of (c ≥ skip_channels, i, j) in up.
  __device__ __forceinline__ int skip_offset(int img, int c, int i, int j) const {
    return ((img * skip_channels + c) * skip_h + oy + i) * skip_w + ox + j;
  }
};

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
  __device__ void store(int o, int pix, int z, float acc) const { split.store(*this, o, pix, z, acc); }
  __device__ void finish(int img, int o, int pix, float acc) const {
    float v = acc + (bias ? bias[o] : 0.0f);
    if (relu) v = v > 0.0f ? v : 0.0f;
    y[(img * q.c_out + o) * static_cast<int>(n) + pix] = v;
  }
};

template <int KS>
struct BackwardDataOp {
  static constexpr bool kAKFast = true;   // kidx = (o, u, v): (u, v) contiguous in w
  static constexpr bool kBKFast = false;
  Geometry q;
  const float* g;
  const float* w;
  float* dx;  // with a concatenated input: up's part (channels from cat.skip_channels on); may be null
  int64_t m, n, k;
  igemm::KSplit split;
  ConcatMaps cat;  // skip_channels = 0: one input tensor
  float* dskip;    // with a concatenated input: the skip's part, the crop window only; may be null
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
  __device__ void store(int c, int pix, int z, float acc) const { split.store(*this, c, pix, z, acc); }
  __device__ void finish(int img, int c, int pix, float acc) const {
    if (c < cat.skip_channels) {  // a uniform branch: only conv2d_concat has skip channels
      const int i = pix / q.w;
      if (dskip) dskip[cat.skip_offset(img, c, i, pix - i * q.w)] = acc;
    } else if (dx) {
      dx[(img * (q.c_in - cat.skip_channels) + c - cat.skip_channels) * static_cast<int>(n) + pix] = acc;
    }
  }
};

// The forward of conv2d_concat (valid 3×3): ForwardOp's gathers with each tap's channel read from
// the skip map or from up (x). The tap carries its map's pointer (chosen once per k), so an
// element costs one select of the pixel's offset in that map more than ForwardOp's.
struct ConcatTap : Tap {
  const float* map;  // skip or up, plus the tap's offset in it
};
struct ConcatForwardOp : ForwardOp<3, false> {
  ConcatMaps cat;
  const float* skip;
  __device__ ConcatTap k_pos(int kidx) const {
    ConcatTap t{split_tap<3>(q, kidx), nullptr};
    t.from_skip = t.c < cat.skip_channels;
    t.map = t.from_skip ? skip + (t.c * cat.skip_h + t.u) * cat.skip_w + t.v
                        : x + ((t.c - cat.skip_channels) * q.h + t.u) * q.w + t.v;
    return t;
  }
  __device__ igemm::Src a_src(int row, const ConcatTap& t) const { return {w + row + t.kidx, true}; }
  __device__ PixelCursor b_col(int pix, int z) const {
    const int i = pix / q.w_out, j = pix - i * q.w_out, img = split.group(z);
    PixelCursor at{0, i, j, img * (q.c_in - cat.skip_channels) * q.h * q.w + i * q.w + j, 0};
    at.off2 = cat.skip_offset(img, 0, i, j);
    return at;
  }
  __device__ igemm::Src b_src(const PixelCursor& at, const ConcatTap& t) const {
    return {t.map + (t.from_skip ? at.off2 : at.off), true};
  }
};

// K index r = img·pixels + (i·w_out + j) of the weight gradient, split.
struct SamplePos {
  int img, pix, i, j;
  int x_off;       // img·Cin·H·W + i·W + j (BackwardWeightOp<KS, false> only)
  int x_off2 = 0;  // ConcatBackwardWeightOp: the sample's offset in the skip map (x_off: in up)
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
  __device__ void store(int o, int kidx, int z, float acc) const { split.store(*this, o, kidx, z, acc); }
  __device__ void finish(int, int o, int kidx, float acc) const { dw[o * static_cast<int>(n) + kidx] = acc; }
};

// The weight gradient of conv2d_concat (valid 3×3): a column's channel fixes which map it reads,
// so its cursor carries that map's pointer and the sample's offset is chosen per element.
struct ConcatColumn {
  const float* map;  // skip or up, plus the column's tap offset in it
  bool from_skip;
};
struct ConcatBackwardWeightOp : BackwardWeightOp<3, false> {
  ConcatMaps cat;
  const float* skip;
  __device__ SamplePos k_pos(int r) const {
    SamplePos s = BackwardWeightOp<3, false>::k_pos(r);
    s.x_off = s.img * (q.c_in - cat.skip_channels) * q.h * q.w + s.i * q.w + s.j;
    s.x_off2 = cat.skip_offset(s.img, 0, s.i, s.j);
    return s;
  }
  __device__ ConcatColumn b_col(int kidx, int) const {
    const Tap t = split_tap<3>(q, kidx);
    const bool from_skip = t.c < cat.skip_channels;
    return {from_skip ? skip + (t.c * cat.skip_h + t.u) * cat.skip_w + t.v
                      : x + ((t.c - cat.skip_channels) * q.h + t.u) * q.w + t.v,
            from_skip};
  }
  __device__ igemm::Src b_src(const ConcatColumn& col, const SamplePos& s) const {
    return {col.map + (col.from_skip ? s.x_off2 : s.x_off), true};
  }
};

// The bias gradient db[c] = Σ_{img, pixel} g[img, c, pixel], with the fused ReLU's mask folded in
// when y is given (g = dy·[y > 0], written out for the GEMMs: the mask and the sum in one pass
// over y and dy). Two stages, both in a fixed order (deterministic, no atomics): block (chunk, c)
// sums the chunk's kChannelSumChunk elements of channel c (thread t: elements t, t + 256, ...;
// then the block's fixed tree) into partial[c][chunk]; channel_sum_finish_kernel adds a
// channel's chunks in order. Chunks keep thousands of blocks busy where one block per channel
// left most SMs idle (the U-Net's first level has 64 channels of 568² pixels).
constexpr int64_t kChannelSumChunk = kChannelSumThreads * 16;

__global__ void channel_sum_chunks_kernel(const float* __restrict__ y, const float* __restrict__ dy, int64_t n,
                                          int64_t channels, int64_t pixels, int64_t chunks, float* __restrict__ g,
                                          float* __restrict__ partial) {
  const int64_t chunk = blockIdx.x, c = blockIdx.y, begin = chunk * kChannelSumChunk;
  const int64_t end = begin + kChannelSumChunk < n * pixels ? begin + kChannelSumChunk : n * pixels;
  float v = 0.0f;
  for (int64_t e = begin + threadIdx.x; e < end; e += kChannelSumThreads) {
    const int64_t img = e / pixels, at = (img * channels + c) * pixels + (e - img * pixels);
    float d = dy[at];
    if (y) {
      d = y[at] > 0.0f ? d : 0.0f;
      g[at] = d;
    }
    v += d;
  }
  v = block_sum<kChannelSumThreads>(v);
  if (threadIdx.x == 0) partial[c * chunks + chunk] = v;
}

__global__ void channel_sum_finish_kernel(const float* __restrict__ partial, int64_t channels, int64_t chunks,
                                          float* __restrict__ db) {
  for (int64_t c = kern::global_index(); c < channels; c += kern::grid_stride()) {
    float s = 0.0f;
    for (int64_t k = 0; k < chunks; ++k) s += partial[c * chunks + k];
    db[c] = s;
  }
}

// db (and with y, g = dy·[y > 0]) for g or dy of shape [n, channels, pixels].
void channel_sum_passes(const float* y, const float* dy, int64_t n, int64_t channels, int64_t pixels, float* g,
                        float* db) {
  if (channels == 0) return;
  const int64_t chunks = n * pixels > 0 ? kern::ceil_div(n * pixels, kChannelSumChunk) : 1;
  UNET_CHECK(channels < 65536 && chunks < INT32_MAX, ValueError, "channel sum (CUDA): ", channels,
             " channels of ", n, " × ", pixels, " elements exceed the grid (at most 65535 channels)");
  Tensor partial = Tensor::empty(Shape{channels, chunks}, DType::Float32, Device{DeviceType::CUDA, 0});
  kern::launch(channel_sum_chunks_kernel, dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(channels)),
               dim3(kChannelSumThreads), 0, y, dy, n, channels, pixels, chunks, g, partial.data<float>());
  kern::launch(channel_sum_finish_kernel, kern::linear_grid(channels, kChannelSumThreads, 1024), dim3(kChannelSumThreads), 0,
               static_cast<const float*>(partial.data<float>()), channels, chunks, db);
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
                       p.precision);
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
                       [&](const igemm::KSplit& split) { return Op{q, g, w, dx, s.m, s.n, s.k, split, {}, nullptr}; },
                       p.precision);
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
                       p.precision);
  };
  if (p.k == 3 && p.pad == 0)
    run(BackwardWeightOp<3, false>{});
  else if (p.k == 3)
    run(BackwardWeightOp<3, true>{});
  else
    run(BackwardWeightOp<0, true>{});
}

namespace {
// The concatenation's maps for the Concat Ops, after checking that p is the convolution of
// crop_concat's output described by c (valid 3×3, the channels and sizes agree) and that the
// skip map's indices fit in 32 bits.
ConcatMaps concat_maps(const Conv2dParams& p, const CropConcatParams& c, const char* op) {
  UNET_CHECK(p.k == 3 && p.pad == 0, ValueError, op, ": the fused kernels are valid 3×3 convolutions (got k = ", p.k,
             ", padding ", p.pad, "); conv2d_concat concatenates for other shapes");
  UNET_CHECK(p.c_in == c.skip_channels + c.up_channels && p.h == c.height && p.w == c.width && p.n == c.batch,
             ShapeError, op, ": the convolution's input [", p.n, ", ", p.c_in, ", ", p.h, ", ", p.w,
             "] is not the concatenation [", c.batch, ", ", c.skip_channels + c.up_channels, ", ", c.height, ", ",
             c.width, "]");
  kern::check_32bit_indices(op, c.batch * c.skip_channels * c.skip_height * c.skip_width, 0, 0);
  return ConcatMaps{static_cast<int>(c.skip_channels), static_cast<int>(c.skip_height), static_cast<int>(c.skip_width),
                    static_cast<int>(c.offset_y), static_cast<int>(c.offset_x)};
}
}  // namespace

void conv2d_concat_forward(const Conv2dParams& p, const CropConcatParams& c, const float* skip, const float* up,
                           const float* w, const float* bias, float* y) {
  const ConcatMaps cat = concat_maps(p, c, "conv2d_concat (CUDA)");
  const Geometry q = geometry32(p, "conv2d_concat (CUDA)");
  const GemmShape s = forward_gemm(p);
  igemm::run_split_k(s.m, s.n, s.groups, s.k, [&](const igemm::KSplit& split) {
    return ConcatForwardOp{{q, p.relu, up, w, bias, y, s.m, s.n, s.k, split}, cat, skip};
  }, p.precision);
}

void conv2d_concat_backward_data(const Conv2dParams& p, const CropConcatParams& c, const float* g, const float* w,
                                 float* dskip, float* dup) {
  const ConcatMaps cat = concat_maps(p, c, "conv2d_concat data gradient (CUDA)");
  const Geometry q = geometry32(p, "conv2d_concat data gradient (CUDA)");
  const GemmShape s = data_gemm(p);
  igemm::run_split_k(s.m, s.n, s.groups, s.k, [&](const igemm::KSplit& split) {
    return BackwardDataOp<3>{q, g, w, dup, s.m, s.n, s.k, split, cat, dskip};
  }, p.precision);
}

void conv2d_concat_backward_weight(const Conv2dParams& p, const CropConcatParams& c, const float* skip,
                                   const float* up, const float* g, float* dw) {
  const ConcatMaps cat = concat_maps(p, c, "conv2d_concat weight gradient (CUDA)");
  const Geometry q = geometry32(p, "conv2d_concat weight gradient (CUDA)");
  const GemmShape s = weight_gemm(p);
  igemm::run_split_k(s.m, s.n, s.groups, s.k, [&](const igemm::KSplit& split) {
    return ConcatBackwardWeightOp{{q, up, g, dw, s.m, s.n, s.k, split}, cat, skip};
  }, p.precision);
}

PassSplits conv2d_splits(const Conv2dParams& p) {
  const auto splits = [&](const GemmShape& s) { return igemm::split_plan(s.m, s.n, s.groups, s.k, p.precision).splits; };
  return PassSplits{splits(forward_gemm(p)), splits(data_gemm(p)), splits(weight_gemm(p))};
}

void channel_sum(const float* g, int64_t n, int64_t channels, int64_t pixels, float* db) {
  channel_sum_passes(nullptr, g, n, channels, pixels, nullptr, db);
}

void relu_backward_channel_sum(const float* y, const float* dy, int64_t n, int64_t channels, int64_t pixels, float* g,
                               float* db) {
  channel_sum_passes(y, dy, n, channels, pixels, g, db);
}

}  // namespace unet::cuda
