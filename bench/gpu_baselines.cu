// bench/gpu_baselines.cu — cuDNN/cuBLAS baselines and event timing for bench_ops (interface and
// conventions in bench/gpu_baselines.h). Built into bench_ops in the GPU build; in the simulator
// build compiled by nvcc as an object library only, so CI proves it builds.
#include "bench/gpu_baselines.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <sstream>

#include "core/cuda_check.h"

namespace unet::bench::gpu {
namespace {

cudnnHandle_t cudnn() {
  static cudnnHandle_t h = [] { cudnnHandle_t x; UNET_CUDNN_CHECK(cudnnCreate(&x)); return x; }();
  return h;
}

cudnnTensorDescriptor_t tensor4d(int64_t n, int64_t c, int64_t h, int64_t w,
                                 cudnnDataType_t type = CUDNN_DATA_FLOAT) {
  cudnnTensorDescriptor_t d;
  UNET_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
  UNET_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, type, int(n), int(c), int(h), int(w)));
  return d;
}

__global__ void to_bf16_kernel(const float* in, int64_t n, __nv_bfloat16* out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    out[i] = __float2bfloat16_rn(in[i]);
}

// A BF16 copy of n floats at `src`, converted when src changes (cached by pointer).
struct Bf16Copy {
  const float* src = nullptr;
  __nv_bfloat16* data = nullptr;
  int64_t n = 0;
  void* buffer(int64_t count) {  // room for count values, contents left as they are
    if (count > n) {
      if (data) UNET_CUDA_CHECK(cudaFree(data));
      UNET_CUDA_CHECK(cudaMalloc(&data, size_t(count) * sizeof(__nv_bfloat16)));
      n = count;
      src = nullptr;
    }
    return data;
  }
  void* of(const float* from, int64_t count) {
    if (count > n) {
      if (data) UNET_CUDA_CHECK(cudaFree(data));
      UNET_CUDA_CHECK(cudaMalloc(&data, size_t(count) * sizeof(__nv_bfloat16)));
      n = count;
      src = nullptr;
    }
    if (from != src) {
      to_bf16_kernel<<<1024, 256>>>(from, count, data);
      UNET_CUDA_CHECK(cudaGetLastError());
      src = from;
    }
    return data;
  }
  ~Bf16Copy() {
    if (data) cudaFree(data);
  }
};

// Device scratch that grows on demand and is shared by all baselines (one op runs at a time).
void* workspace(size_t bytes) {
  static void* ptr = nullptr;
  static size_t size = 0;
  if (bytes > size) {
    if (ptr) UNET_CUDA_CHECK(cudaFree(ptr));
    UNET_CUDA_CHECK(cudaMalloc(&ptr, bytes));
    size = bytes;
  }
  return ptr;
}

}  // namespace

Limits device_limits() {
  int dev = 0, sms = 0, khz = 0;
  UNET_CUDA_CHECK(cudaGetDevice(&dev));
  UNET_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  UNET_CUDA_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev));
  Limits l;
  l.fp32_gflops = double(sms) * 128 * 2 * khz / 1e6;
  const size_t bytes = size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  UNET_CUDA_CHECK(cudaMalloc(&a, bytes));
  UNET_CUDA_CHECK(cudaMalloc(&b, bytes));
  const std::vector<double> ms = time_ms(5, [&] { UNET_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); });
  l.dram_gbs = 2.0 * bytes / (*std::min_element(ms.begin(), ms.end()) * 1e-3) / 1e9;
  UNET_CUDA_CHECK(cudaFree(a));
  UNET_CUDA_CHECK(cudaFree(b));
  std::ostringstream s;
  s << sms << " SMs x 128 FP32 lanes x 2 x " << khz / 1e6 << " GHz; memory: measured 1 GiB device copy";
  l.how = s.str();
  return l;
}

std::vector<double> time_ms(int repeats, const std::function<void()>& fn) {
  int dev = 0, l2 = 0;
  UNET_CUDA_CHECK(cudaGetDevice(&dev));
  UNET_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
  static void* flush = nullptr;
  static size_t flush_bytes = 0;
  if (!flush) {
    flush_bytes = std::max<size_t>(size_t(l2) * 2, size_t{64} << 20);
    UNET_CUDA_CHECK(cudaMalloc(&flush, flush_bytes));
  }
  cudaEvent_t start, stop;
  UNET_CUDA_CHECK(cudaEventCreate(&start));
  UNET_CUDA_CHECK(cudaEventCreate(&stop));
  fn();
  UNET_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<double> out;
  for (int r = 0; r < repeats; ++r) {
    UNET_CUDA_CHECK(cudaMemsetAsync(flush, r & 0xff, flush_bytes));
    UNET_CUDA_CHECK(cudaEventRecord(start));
    fn();
    UNET_CUDA_CHECK(cudaEventRecord(stop));
    UNET_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    UNET_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    out.push_back(ms);
  }
  UNET_CUDA_CHECK(cudaEventDestroy(start));
  UNET_CUDA_CHECK(cudaEventDestroy(stop));
  return out;
}

// ---- convolution ------------------------------------------------------------------------------
struct ConvBaseline::Impl {
  Precision precision = Precision::FP32;
  int64_t x_count = 0, y_count = 0, w_count = 0;
  Bf16Copy x16, w16, y16, out16;  // bf16: the converted x, w, dy, and the output
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t ws_fwd = 0, ws_data = 0, ws_filter = 0;
  bool have_fwd = false, have_data = false, have_filter = false;
};

ConvBaseline::ConvBaseline(const ConvShape& s, Precision precision) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.precision = precision;
  const cudnnDataType_t data = precision == Precision::BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  m.x = tensor4d(s.n, s.c, s.h, s.w, data);
  m.x_count = s.n * s.c * s.h * s.w;
  m.w_count = s.k_out * s.c * s.r * s.r;
  UNET_CUDNN_CHECK(cudnnCreateFilterDescriptor(&m.w));
  UNET_CUDNN_CHECK(cudnnSetFilter4dDescriptor(m.w, data, CUDNN_TENSOR_NCHW, int(s.k_out), int(s.c), int(s.r), int(s.r)));
  UNET_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&m.conv));
  // Accumulation in FP32 at every precision.
  UNET_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(m.conv, int(s.pad), int(s.pad), int(s.stride), int(s.stride), 1, 1,
                                                   CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  // fp32 means FP32 (no TF32 tensor cores); tf32 and bf16 use tensor ops.
  UNET_CUDNN_CHECK(cudnnSetConvolutionMathType(m.conv, precision == Precision::FP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
  int n = 0, c = 0, h = 0, w = 0;
  UNET_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(m.conv, m.x, m.w, &n, &c, &h, &w));
  m.y = tensor4d(n, c, h, w, data);
  m.y_count = int64_t{n} * c * h * w;
}

ConvBaseline::~ConvBaseline() {
  if (!impl_) return;
  cudnnDestroyTensorDescriptor(impl_->x);
  cudnnDestroyTensorDescriptor(impl_->y);
  cudnnDestroyFilterDescriptor(impl_->w);
  cudnnDestroyConvolutionDescriptor(impl_->conv);
}

void ConvBaseline::forward(const float* x, const float* w, float* y) {
  Impl& m = *impl_;
  if (!m.have_fwd) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int found = 0;
    UNET_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(cudnn(), m.x, m.w, m.conv, m.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf));
    m.fwd = perf[0].algo;  // sorted fastest first
    m.ws_fwd = perf[0].memory;
    m.have_fwd = true;
  }
  const float one = 1.0f, zero = 0.0f;
  const bool b16 = m.precision == Precision::BF16;
  UNET_CUDNN_CHECK(cudnnConvolutionForward(cudnn(), &one, m.x, b16 ? m.x16.of(x, m.x_count) : x, m.w,
                                           b16 ? m.w16.of(w, m.w_count) : w, m.conv, m.fwd, workspace(m.ws_fwd),
                                           m.ws_fwd, &zero, m.y, b16 ? m.out16.buffer(m.y_count) : y));
}

void ConvBaseline::backward_data(const float* w, const float* dy, float* dx) {
  Impl& m = *impl_;
  if (!m.have_data) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int found = 0;
    UNET_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(cudnn(), m.w, m.y, m.conv, m.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &found, perf));
    m.bwd_data = perf[0].algo;
    m.ws_data = perf[0].memory;
    m.have_data = true;
  }
  const float one = 1.0f, zero = 0.0f;
  const bool b16 = m.precision == Precision::BF16;
  UNET_CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn(), &one, m.w, b16 ? m.w16.of(w, m.w_count) : w, m.y,
                                                b16 ? m.y16.of(dy, m.y_count) : dy, m.conv, m.bwd_data,
                                                workspace(m.ws_data), m.ws_data, &zero, m.x,
                                                b16 ? m.out16.buffer(m.x_count) : dx));
}

void ConvBaseline::backward_filter(const float* x, const float* dy, float* dw) {
  Impl& m = *impl_;
  if (!m.have_filter) {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int found = 0;
    UNET_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(cudnn(), m.x, m.y, m.conv, m.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &found, perf));
    m.bwd_filter = perf[0].algo;
    m.ws_filter = perf[0].memory;
    m.have_filter = true;
  }
  const float one = 1.0f, zero = 0.0f;
  const bool b16 = m.precision == Precision::BF16;
  UNET_CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn(), &one, m.x, b16 ? m.x16.of(x, m.x_count) : x, m.y,
                                                  b16 ? m.y16.of(dy, m.y_count) : dy, m.conv, m.bwd_filter,
                                                  workspace(m.ws_filter), m.ws_filter, &zero, m.w,
                                                  b16 ? m.out16.buffer(m.w_count) : dw));
}

// ---- pooling ----------------------------------------------------------------------------------
struct PoolBaseline::Impl {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnPoolingDescriptor_t pool = nullptr;
};

PoolBaseline::PoolBaseline(int64_t n, int64_t c, int64_t h, int64_t w) : impl_(std::make_unique<Impl>()) {
  impl_->x = tensor4d(n, c, h, w);
  impl_->y = tensor4d(n, c, h / 2, w / 2);
  UNET_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&impl_->pool));
  UNET_CUDNN_CHECK(cudnnSetPooling2dDescriptor(impl_->pool, CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_PROPAGATE_NAN, 2, 2, 0, 0, 2, 2));
}

PoolBaseline::~PoolBaseline() {
  if (!impl_) return;
  cudnnDestroyTensorDescriptor(impl_->x);
  cudnnDestroyTensorDescriptor(impl_->y);
  cudnnDestroyPoolingDescriptor(impl_->pool);
}

void PoolBaseline::forward(const float* x, float* y) {
  const float one = 1.0f, zero = 0.0f;
  UNET_CUDNN_CHECK(cudnnPoolingForward(cudnn(), impl_->pool, &one, impl_->x, x, &zero, impl_->y, y));
}

void PoolBaseline::backward(const float* y, const float* dy, const float* x, float* dx) {
  const float one = 1.0f, zero = 0.0f;
  UNET_CUDNN_CHECK(cudnnPoolingBackward(cudnn(), impl_->pool, &one, impl_->y, y, impl_->y, dy, impl_->x, x, &zero, impl_->x, dx));
}

// ---- softmax ----------------------------------------------------------------------------------
struct SoftmaxBaseline::Impl {
  cudnnTensorDescriptor_t t = nullptr;
};

SoftmaxBaseline::SoftmaxBaseline(int64_t n, int64_t c, int64_t pixels) : impl_(std::make_unique<Impl>()) {
  impl_->t = tensor4d(n, c, pixels, 1);
}

SoftmaxBaseline::~SoftmaxBaseline() {
  if (impl_) cudnnDestroyTensorDescriptor(impl_->t);
}

void SoftmaxBaseline::forward(const float* x, float* y) {
  const float one = 1.0f, zero = 0.0f;
  UNET_CUDNN_CHECK(cudnnSoftmaxForward(cudnn(), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL, &one, impl_->t, x,
                                       &zero, impl_->t, y));
}

// ---- GEMM -------------------------------------------------------------------------------------
struct GemmBaseline::Impl {
  cublasHandle_t h = nullptr;
};

GemmBaseline::GemmBaseline() : impl_(std::make_unique<Impl>()) {
  UNET_CUBLAS_CHECK(cublasCreate(&impl_->h));
  UNET_CUBLAS_CHECK(cublasSetMathMode(impl_->h, CUBLAS_PEDANTIC_MATH));  // FP32, no TF32
}

GemmBaseline::~GemmBaseline() {
  if (impl_) cublasDestroy(impl_->h);
}

void GemmBaseline::gemm_rowmajor(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) {
  // Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: swap the operands, no transposes.
  const float one = 1.0f, zero = 0.0f;
  UNET_CUBLAS_CHECK(cublasSgemm(impl_->h, CUBLAS_OP_N, CUBLAS_OP_N, int(n), int(m), int(k), &one, b, int(n), a, int(k),
                                &zero, c, int(n)));
}

}  // namespace unet::bench::gpu
