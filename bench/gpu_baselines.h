// bench/gpu_baselines.h — the vendor baselines of bench_ops on a real GPU: cuDNN convolution
// (forward, backward-data, backward-filter at fp32, tf32 or bf16 — the precision of ours in the
// same run —, the fastest algorithm cudnnFind* reports),
// transposed convolution as cuDNN backward-data, max-pooling fwd/bwd, channel softmax, and a
// cuBLAS SGEMM for the 1×1 head; plus CUDA-event timing with an L2 flush before every repeat.
// Plain C++ interface (no CUDA headers), so bench_ops.cpp compiles with g++; the implementation
// is bench/gpu_baselines.cu. All pointers are device pointers, NCHW float32.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/precision.h"

namespace unet::bench::gpu {

struct Limits {
  double fp32_gflops = 0;  // SMs × 128 FP32 lanes × 2 (FMA) × peak clock
  double dram_gbs = 0;     // measured: device-to-device copy, read + write bytes
  std::string how;
};
Limits device_limits();

// One warm-up, then per repeat: flush L2 (memset of twice its size), events around fn.
std::vector<double> time_ms(int repeats, const std::function<void()>& fn);

// A convolution from x [n, c, h, w] with filter [k_out, c, r, r] (zero padding `pad`, stride).
struct ConvShape {
  int64_t n, c, h, w, k_out, r, pad, stride;
};

// fp32: FP32 tensors, CUDNN_FMA_MATH (no tensor cores). tf32: FP32 tensors, CUDNN_TENSOR_OP_MATH
// (what PyTorch selects with allow_tf32). bf16: BF16 tensors with FP32 accumulation and tensor
// ops, as PyTorch AMP runs a convolution: the FP32 inputs are converted to BF16 copies once per
// input pointer (outside the timed repeats: the first call is the warm-up), the output is BF16
// and stays in the baseline's own buffer.
class ConvBaseline {
 public:
  explicit ConvBaseline(const ConvShape& shape, Precision precision = Precision::FP32);
  ~ConvBaseline();
  void forward(const float* x, const float* w, float* y);
  void backward_data(const float* w, const float* dy, float* dx);
  void backward_filter(const float* x, const float* dy, float* dw);
  struct Impl;
 private:
  std::unique_ptr<Impl> impl_;
};

// 2×2 max-pooling, stride 2.
class PoolBaseline {
 public:
  PoolBaseline(int64_t n, int64_t c, int64_t h, int64_t w);
  ~PoolBaseline();
  void forward(const float* x, float* y);
  void backward(const float* y, const float* dy, const float* x, float* dx);
  struct Impl;
 private:
  std::unique_ptr<Impl> impl_;
};

// Softmax over the channel axis of [n, c, pixels].
class SoftmaxBaseline {
 public:
  SoftmaxBaseline(int64_t n, int64_t c, int64_t pixels);
  ~SoftmaxBaseline();
  void forward(const float* x, float* y);
  struct Impl;
 private:
  std::unique_ptr<Impl> impl_;
};

class GemmBaseline {
 public:
  GemmBaseline();
  ~GemmBaseline();
  // Row-major C[m×n] = A[m×k] · B[k×n].
  void gemm_rowmajor(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c);
  struct Impl;
 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace unet::bench::gpu
