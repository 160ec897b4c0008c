// bench/bench_ops_cases.h — one OpCase per (layer, pass) of bench_ops: how to validate it on a
// small instance of the same layer, how to run our kernel at full size, and the baseline (CPU:
// plain single-threaded code; GPU build: cuDNN/cuBLAS from bench/gpu_baselines.h). Full-size
// operands are allocated in setup() and freed in teardown(), so only one layer's tensors live
// at a time.
#pragma once

#include <cmath>
#include <functional>
#include <memory>
#include <string>

#include "bench/bench_ops_ref.h"
#include "bench/bench_ops_util.h"
#include "kernels/conv2d.h"
#include "kernels/crop_concat.h"
#include "kernels/maxpool2d.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "kernels/winograd3x3_cpu.h"
#include "kernels/upconv2d.h"
#if defined(UNET_BENCH_CUDNN)
#include "bench/gpu_baselines.h"
#endif

namespace unet::bench {

struct OpCase {
  std::string name, shape, baseline_name;
  double flops = 0;  // per run; > 0: report GFLOP/s
  double bytes = 0;  // per run (compulsory traffic); reported as GB/s when flops == 0
  std::function<Check()> validate;
  std::function<void()> setup, run, baseline, teardown;  // baseline may be empty
};

using ref::ConvPass;
inline const char* pass_name(ConvPass p) {
  return p == ConvPass::Forward ? "fwd" : p == ConvPass::BackwardData ? "bwd-data" : "bwd-weight";
}

// ---- convolution (the 3×3 convs and the 1×1 head) ----------------------------------------------
inline void conv_ours(Where w, const Conv2dParams& p, ConvPass pass, float* x, float* wt, float* b,
                      float* g, float* out) {
  const bool c = w == Where::Cuda;
  if (pass == ConvPass::Forward) c ? cuda::conv2d_forward(p, x, wt, b, out) : cpu::conv2d_forward<float>(p, x, wt, b, out);
  if (pass == ConvPass::BackwardData) c ? cuda::conv2d_backward_data(p, g, wt, out) : cpu::conv2d_backward_data<float>(p, g, wt, out);
  if (pass == ConvPass::BackwardWeight) c ? cuda::conv2d_backward_weight(p, x, g, out) : cpu::conv2d_backward_weight<float>(p, x, g, out);
}

struct ConvState {
  Buf<float> x, w, b, g, out;
#if defined(UNET_BENCH_CUDNN)
  std::unique_ptr<gpu::ConvBaseline> cudnn;
  std::unique_ptr<gpu::GemmBaseline> cublas;
#endif
};

inline void conv_alloc(ConvState& s, Where w, const Conv2dParams& p, ConvPass pass, uint64_t seed) {
  s.x = random_buf(w, p.n * p.c_in * p.h * p.w, seed);
  s.w = random_buf(w, p.c_out * p.c_in * p.k * p.k, seed + 1, -0.1, 0.1);
  s.b = random_buf(w, p.c_out, seed + 2);
  s.g = random_buf(w, p.n * p.c_out * p.h_out * p.w_out, seed + 3);
  const int64_t n_out = pass == ConvPass::Forward ? p.n * p.c_out * p.h_out * p.w_out
                        : pass == ConvPass::BackwardData ? p.n * p.c_in * p.h * p.w
                                                         : p.c_out * p.c_in * p.k * p.k;
  s.out = Buf<float>(w, n_out);
}

inline OpCase conv_case(Where where, const std::string& name, const Conv2dParams& full, ConvPass pass) {
  OpCase c;
  c.name = name + " " + pass_name(pass);
  c.shape = std::to_string(full.n) + "x" + std::to_string(full.c_in) + "x" + std::to_string(full.h) + "² -> " +
            std::to_string(full.c_out) + "x" + std::to_string(full.h_out) + "², k" + std::to_string(full.k);
  c.flops = 2.0 * full.n * full.c_out * full.c_in * full.k * full.k * full.h_out * full.w_out;
  c.validate = [=] {
    // Same channels, batch 1, a spatial window small enough for the naive loop (<= ~3e8 MACs).
    int64_t hs = std::min<int64_t>(20, full.h);
    while (hs > full.k + 1 && double(full.c_in) * full.c_out * full.k * full.k * std::pow(hs - full.k + 1, 2) > 3e8) --hs;
    const Conv2dParams p = conv2d_params(1, full.c_in, hs, hs, full.c_out, full.k,
                                         full.pad ? Padding::Same : Padding::Valid, full.relu, full.precision);
    // The small instance runs the Winograd tile the full layer runs (F(4×4, 3×3) only pays on
    // large layers, which the window would otherwise never reach).
    struct PinTile {
      explicit PinTile(int m) { cpu::set_winograd3x3_tile(m); }
      ~PinTile() { cpu::set_winograd3x3_tile(0); }
    } pin(pass == ConvPass::BackwardData ? cpu::winograd3x3_tile(full.h, full.w, full.c_in)
                                         : cpu::winograd3x3_tile(full.h_out, full.w_out, full.c_out));
    ConvState s;
    conv_alloc(s, where, p, pass, 17);
    conv_ours(where, p, pass, s.x.ptr(), s.w.ptr(), s.b.ptr(), s.g.ptr(), s.out.ptr());
    s.out.download();
    const ref::Out r = pass == ConvPass::Forward      ? ref::conv_forward(p, s.x.host.data(), s.w.host.data(), s.b.host.data())
                       : pass == ConvPass::BackwardData ? ref::conv_backward_data(p, s.g.host.data(), s.w.host.data())
                                                        : ref::conv_backward_weight(p, s.x.host.data(), s.g.host.data());
    const int64_t terms = pass == ConvPass::BackwardWeight ? p.h_out * p.w_out : p.c_in * p.k * p.k;
    return compare(s.out.host, r.val, [&](size_t i) { return sum_tol(terms, r.abs[i], full.precision); });
  };
  auto s = std::make_shared<ConvState>();
  c.setup = [=] { conv_alloc(*s, where, full, pass, 1); };
  c.run = [=] { conv_ours(where, full, pass, s->x.ptr(), s->w.ptr(), s->b.ptr(), s->g.ptr(), s->out.ptr()); };
  c.teardown = [=] { *s = ConvState{}; };
  if (where == Where::Cpu) {
    c.baseline_name = "im2col+Eigen 1 thread";
    c.baseline = [=] { ref::conv_eigen_baseline(full, pass, s->x.ptr(), s->w.ptr(), s->b.ptr(), s->g.ptr(), s->out.ptr()); };
  }
#if defined(UNET_BENCH_CUDNN)
  if (where == Where::Cuda && full.k == 1 && pass == ConvPass::Forward && full.precision == Precision::FP32) {
    // The 1×1 head is a GEMM per image: cuBLAS is the natural baseline (at tf32/bf16: cuDNN).
    c.baseline_name = "cuBLAS sgemm";
    c.baseline = [=] {
      if (!s->cublas) s->cublas = std::make_unique<gpu::GemmBaseline>();
      const int64_t P = full.h * full.w;
      for (int64_t n = 0; n < full.n; ++n)
        s->cublas->gemm_rowmajor(full.c_out, P, full.c_in, s->w.ptr(), s->x.ptr() + n * full.c_in * P,
                                 s->out.ptr() + n * full.c_out * P);
    };
  } else if (where == Where::Cuda) {
    c.baseline_name = std::string("cuDNN ") + precision_name(full.precision);
    c.baseline = [=] {
      if (!s->cudnn)
        s->cudnn = std::make_unique<gpu::ConvBaseline>(
            gpu::ConvShape{full.n, full.c_in, full.h, full.w, full.c_out, full.k, full.pad, 1}, full.precision);
      if (pass == ConvPass::Forward) s->cudnn->forward(s->x.ptr(), s->w.ptr(), s->out.ptr());
      if (pass == ConvPass::BackwardData) s->cudnn->backward_data(s->w.ptr(), s->g.ptr(), s->out.ptr());
      if (pass == ConvPass::BackwardWeight) s->cudnn->backward_filter(s->x.ptr(), s->g.ptr(), s->out.ptr());
    };
  }
#endif
  return c;
}

// ---- up-convolution ----------------------------------------------------------------------------
inline void upconv_ours(Where w, const Upconv2dParams& p, ConvPass pass, float* x, float* wt, float* b,
                        float* g, float* out) {
  const bool c = w == Where::Cuda;
  if (pass == ConvPass::Forward) c ? cuda::upconv2d_forward(p, x, wt, b, out) : cpu::upconv2d_forward<float>(p, x, wt, b, out);
  if (pass == ConvPass::BackwardData) c ? cuda::upconv2d_backward_data(p, g, wt, out) : cpu::upconv2d_backward_data<float>(p, g, wt, out);
  if (pass == ConvPass::BackwardWeight) c ? cuda::upconv2d_backward_weight(p, x, g, out) : cpu::upconv2d_backward_weight<float>(p, x, g, out);
}

struct UpconvState {
  Buf<float> x, w, b, g, out;
#if defined(UNET_BENCH_CUDNN)
  std::unique_ptr<gpu::ConvBaseline> cudnn;
#endif
};

inline void upconv_alloc(UpconvState& s, Where w, const Upconv2dParams& p, ConvPass pass, uint64_t seed) {
  s.x = random_buf(w, p.n * p.c_in * p.h * p.w, seed);
  s.w = random_buf(w, p.c_in * p.c_out * 4, seed + 1, -0.1, 0.1);
  s.b = random_buf(w, p.c_out, seed + 2);
  s.g = random_buf(w, p.n * p.c_out * 4 * p.h * p.w, seed + 3);
  s.out = Buf<float>(w, pass == ConvPass::Forward ? p.n * p.c_out * 4 * p.h * p.w
                        : pass == ConvPass::BackwardData ? p.n * p.c_in * p.h * p.w : p.c_in * p.c_out * 4);
}

inline OpCase upconv_case(Where where, const std::string& name, const Upconv2dParams& full, ConvPass pass) {
  OpCase c;
  c.name = name + " " + pass_name(pass);
  c.shape = std::to_string(full.n) + "x" + std::to_string(full.c_in) + "x" + std::to_string(full.h) + "² -> " +
            std::to_string(full.c_out) + "x" + std::to_string(2 * full.h) + "², 2x2 s2";
  c.flops = 2.0 * full.n * full.c_in * full.c_out * 4 * full.h * full.w;
  c.validate = [=] {
    int64_t hs = std::min<int64_t>(10, full.h);
    while (hs > 2 && double(full.c_in) * full.c_out * 4 * hs * hs > 3e8) --hs;
    const Upconv2dParams p{1, full.c_in, hs, hs, full.c_out, full.precision};
    UpconvState s;
    upconv_alloc(s, where, p, pass, 23);
    upconv_ours(where, p, pass, s.x.ptr(), s.w.ptr(), s.b.ptr(), s.g.ptr(), s.out.ptr());
    s.out.download();
    const ref::Out r = pass == ConvPass::Forward      ? ref::upconv_forward(p, s.x.host.data(), s.w.host.data(), s.b.host.data())
                       : pass == ConvPass::BackwardData ? ref::upconv_backward_data(p, s.g.host.data(), s.w.host.data())
                                                        : ref::upconv_backward_weight(p, s.x.host.data(), s.g.host.data());
    const int64_t terms = pass == ConvPass::Forward ? p.c_in : pass == ConvPass::BackwardData ? 4 * p.c_out : p.h * p.w;
    return compare(s.out.host, r.val, [&](size_t i) { return sum_tol(terms, r.abs[i], full.precision); });
  };
  auto s = std::make_shared<UpconvState>();
  c.setup = [=] { upconv_alloc(*s, where, full, pass, 5); };
  c.run = [=] { upconv_ours(where, full, pass, s->x.ptr(), s->w.ptr(), s->b.ptr(), s->g.ptr(), s->out.ptr()); };
  c.teardown = [=] { *s = UpconvState{}; };
  if (where == Where::Cpu) {
    c.baseline_name = "Eigen GEMM+shuffle 1 thread";
    c.baseline = [=] { ref::upconv_eigen_baseline(full, pass, s->x.ptr(), s->w.ptr(), s->b.ptr(), s->g.ptr(), s->out.ptr()); };
  }
#if defined(UNET_BENCH_CUDNN)
  if (where == Where::Cuda) {
    // Transposed conv = backward-data of the stride-2 2×2 conv from the big map (Cout channels)
    // to the small one (Cin channels), whose filter [Cin, Cout, 2, 2] is our weight as stored.
    c.baseline_name = std::string("cuDNN ") + precision_name(full.precision) + " (conv transpose)";
    c.baseline = [=] {
      if (!s->cudnn)
        s->cudnn = std::make_unique<gpu::ConvBaseline>(
            gpu::ConvShape{full.n, full.c_out, 2 * full.h, 2 * full.w, full.c_in, 2, 0, 2}, full.precision);
      if (pass == ConvPass::Forward) s->cudnn->backward_data(s->w.ptr(), s->x.ptr(), s->out.ptr());
      if (pass == ConvPass::BackwardData) s->cudnn->forward(s->g.ptr(), s->w.ptr(), s->out.ptr());
      if (pass == ConvPass::BackwardWeight) s->cudnn->backward_filter(s->g.ptr(), s->x.ptr(), s->out.ptr());
    };
  }
#endif
  return c;
}

}  // namespace unet::bench

#include "bench/bench_ops_cases_mem.h"
