// kernels/upconv2d.cu — CUDA up-convolution (2×2, stride 2) as implicit GEMM over the
// unshuffled view U[Cout·4, H·W] (row r = (o·2 + a)·2 + b; see upconv2d.h), with the
// (un)shuffle folded into the tile loads and the stores, so no scratch image is materialised:
//   forward        C = U(y[n])  (Cout·4 × pixels), K = Cin,          z = (image, split); bias in
//                               the store
//   data gradient  C = dx[n]    (Cin × pixels),    K = Cout·4,       z = (image, split); a gather:
//                               each dx element is written once by one thread (no atomics)
//   weight grad.   C = dw       (Cin × Cout·4),    K = images·pixels, z = split
// K is split where C has too few tiles (kernels/split_k_plan.h); the partials are summed in a
// fixed order by a second kernel, which adds the bias (deterministic).
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

// Gathers as kernels/implicit_gemm.cuh wants them: a cursor per row of A / column of B, a K
// position per k. Here most addresses are one multiply-add, so the cursors are offsets.
struct ForwardOp {
  static constexpr bool kAKFast = false;  // w[c][r]: contiguous along r (the M index)
  static constexpr bool kBKFast = false;  // x[img][c][pix]: contiguous along pixels
  Upconv2dParams p;
  const float* x;
  const float* w;
  const float* bias;
  float* y;
  int64_t m, n, k;
  igemm::KSplit split;
  __device__ void k_range(int z, int& kb, int& ke) const { split.range(z, kb, ke); }
  __device__ int k_pos(int c) const { return c; }
  __device__ int a_row(int r, int) const { return r; }
  __device__ igemm::Src a_src(int r, int c) const { return {w + c * static_cast<int>(m) + r, true}; }
  __device__ int b_col(int pix, int z) const { return split.group(z) * static_cast<int>(p.c_in * n) + pix; }
  __device__ igemm::Src b_src(int at, int c) const { return {x + at + c * static_cast<int>(n), true}; }
  __device__ void store(int r, int pix, int z, float acc) const { split.store(*this, r, pix, z, acc); }
  __device__ void finish(int img, int r, int pix, float acc) const {
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
  igemm::KSplit split;
  __device__ void k_range(int z, int& kb, int& ke) const { split.range(z, kb, ke); }
  __device__ int k_pos(int r) const { return r; }
  __device__ int a_row(int c, int) const { return c * static_cast<int>(k); }
  __device__ igemm::Src a_src(int row, int r) const { return {w + row + r, true}; }
  // The pixel's offset in the shuffled gradient with r = 0; r = (o·2 + a)·2 + b adds
  // o·4HW + a·2W + b.
  __device__ int b_col(int pix, int z) const { return shuffled(p, split.group(z), 0, pix); }
  __device__ igemm::Src b_src(int at, int r) const {
    const int hw4 = static_cast<int>(4 * p.h * p.w), w2 = static_cast<int>(2 * p.w);
    return {g + at + (r >> 2) * hw4 + ((r >> 1) & 1) * w2 + (r & 1), true};
  }
  __device__ void store(int c, int pix, int z, float acc) const { split.store(*this, c, pix, z, acc); }
  __device__ void finish(int img, int c, int pix, float acc) const {
    dx[(img * static_cast<int>(p.c_in) + c) * static_cast<int>(n) + pix] = acc;
  }
};

// K index t = img·HW + pixel of the weight gradient, split.
struct SamplePos {
  int img, pix;
};

struct BackwardWeightOp {
  static constexpr bool kAKFast = true;  // K = (image, pixel): contiguous in x and (pairwise) in g
  static constexpr bool kBKFast = true;
  Upconv2dParams p;
  const float* x;
  const float* g;
  float* dw;
  int64_t m, n, k;
  igemm::KSplit split;
  __device__ void k_range(int z, int& kb, int& ke) const { split.range(z, kb, ke); }
  __device__ SamplePos k_pos(int t) const {
    const int hw = static_cast<int>(p.h * p.w), img = t / hw;
    return SamplePos{img, t - img * hw};
  }
  __device__ int a_row(int c, int) const { return c * static_cast<int>(p.h * p.w); }
  __device__ igemm::Src a_src(int row, const SamplePos& s) const {
    return {x + s.img * static_cast<int>(p.c_in * p.h * p.w) + row + s.pix, true};
  }
  __device__ int b_col(int r, int) const { return r; }
  __device__ igemm::Src b_src(int r, const SamplePos& s) const { return {g + shuffled(p, s.img, r, s.pix), true}; }
  __device__ void store(int c, int r, int z, float acc) const { split.store(*this, c, r, z, acc); }
  __device__ void finish(int, int c, int r, float acc) const { dw[c * static_cast<int>(n) + r] = acc; }
};

}  // namespace

namespace {
// Each pass as a GEMM: C = m × n per group (image), K = k.
struct GemmShape {
  int64_t m, n, groups, k;
};
GemmShape forward_gemm(const Upconv2dParams& p) { return {4 * p.c_out, p.h * p.w, p.n, p.c_in}; }
GemmShape data_gemm(const Upconv2dParams& p) { return {p.c_in, p.h * p.w, p.n, 4 * p.c_out}; }
GemmShape weight_gemm(const Upconv2dParams& p) { return {p.c_in, 4 * p.c_out, 1, p.n * p.h * p.w}; }
}  // namespace

void upconv2d_forward(const Upconv2dParams& p, const float* x, const float* w, const float* bias, float* y) {
  if (p.n == 0 || p.c_out == 0 || p.h == 0 || p.w == 0) return;
  check_32bit_indices(p, "upconv2d (CUDA)");
  const GemmShape s = forward_gemm(p);
  igemm::run_split_k(s.m, s.n, s.groups, s.k,
                     [&](const igemm::KSplit& split) { return ForwardOp{p, x, w, bias, y, s.m, s.n, s.k, split}; },
                     p.precision);
}

void upconv2d_backward_data(const Upconv2dParams& p, const float* g, const float* w, float* dx) {
  if (p.n == 0 || p.c_in == 0 || p.h == 0 || p.w == 0) return;
  check_32bit_indices(p, "upconv2d data gradient (CUDA)");
  const GemmShape s = data_gemm(p);
  igemm::run_split_k(s.m, s.n, s.groups, s.k,
                     [&](const igemm::KSplit& split) { return BackwardDataOp{p, g, w, dx, s.m, s.n, s.k, split}; },
                     p.precision);
}

void upconv2d_backward_weight(const Upconv2dParams& p, const float* x, const float* g, float* dw) {
  check_32bit_indices(p, "upconv2d weight gradient (CUDA)");
  const GemmShape s = weight_gemm(p);
  igemm::run_split_k(s.m, s.n, s.groups, s.k,
                     [&](const igemm::KSplit& split) { return BackwardWeightOp{p, x, g, dw, s.m, s.n, s.k, split}; },
                     p.precision);
}

PassSplits upconv2d_splits(const Upconv2dParams& p) {
  const auto splits = [&](const GemmShape& s) { return igemm::split_plan(s.m, s.n, s.groups, s.k, p.precision).splits; };
  return PassSplits{splits(forward_gemm(p)), splits(data_gemm(p)), splits(weight_gemm(p))};
}

}  // namespace unet::cuda
