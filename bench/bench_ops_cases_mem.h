// bench/bench_ops_cases_mem.h — the memory-bound OpCases of bench_ops: max-pool, crop-concat,
// the fused softmax + weighted cross-entropy, and SGD. Their plain single-threaded loops below
// are both the validation reference (pool, concat: exact results) and the CPU timing baseline.
// Reported as GB/s of compulsory traffic (every operand read or written once).
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <vector>

namespace unet::bench {

namespace plain {
inline void pool_fwd(const Pool2dParams& p, const float* x, float* y, int32_t* am) {
  const int64_t H = p.height, W = p.width, h = H / 2, w = W / 2;
  for (int64_t nc = 0; nc < p.batch * p.channels; ++nc)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        const float* in = x + (nc * H + 2 * i) * W + 2 * j;
        const float v[4] = {in[0], in[1], in[W], in[W + 1]};
        int32_t best = 0;
        for (int32_t q = 1; q < 4; ++q) if (v[q] > v[best]) best = q;
        y[(nc * h + i) * w + j] = v[best];
        am[(nc * h + i) * w + j] = best;
      }
}
inline void pool_bwd(const Pool2dParams& p, const float* dy, const int32_t* am, float* dx) {
  const int64_t H = p.height, W = p.width, h = H / 2, w = W / 2;
  for (int64_t nc = 0; nc < p.batch * p.channels; ++nc)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        float* out = dx + (nc * H + 2 * i) * W + 2 * j;
        out[0] = out[1] = out[W] = out[W + 1] = 0.0f;
        const int32_t a = am[(nc * h + i) * w + j];
        out[(a / 2) * W + a % 2] = dy[(nc * h + i) * w + j];
      }
}
inline void concat_fwd(const CropConcatParams& p, const float* skip, const float* up, float* out) {
  const int64_t hw = p.height * p.width, C = p.skip_channels + p.up_channels;
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t c = 0; c < p.skip_channels; ++c)
      for (int64_t i = 0; i < p.height; ++i)
        for (int64_t j = 0; j < p.width; ++j)
          out[(n * C + c) * hw + i * p.width + j] =
              skip[((n * p.skip_channels + c) * p.skip_height + i + p.offset_y) * p.skip_width + j + p.offset_x];
    for (int64_t c = 0; c < p.up_channels * hw; ++c)
      out[(n * C + p.skip_channels) * hw + c] = up[n * p.up_channels * hw + c];
  }
}
inline void concat_bwd(const CropConcatParams& p, const float* dout, float* dskip, float* dup) {
  const int64_t hw = p.height * p.width, C = p.skip_channels + p.up_channels;
  std::fill_n(dskip, p.batch * p.skip_channels * p.skip_height * p.skip_width, 0.0f);
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t c = 0; c < p.skip_channels; ++c)
      for (int64_t i = 0; i < p.height; ++i)
        for (int64_t j = 0; j < p.width; ++j)
          dskip[((n * p.skip_channels + c) * p.skip_height + i + p.offset_y) * p.skip_width + j + p.offset_x] =
              dout[(n * C + c) * hw + i * p.width + j];
    for (int64_t c = 0; c < p.up_channels * hw; ++c)
      dup[n * p.up_channels * hw + c] = dout[(n * C + p.skip_channels) * hw + c];
  }
}
}  // namespace plain

inline Buf<int32_t> random_ints(Where w, int64_t n, uint64_t seed, int32_t k) {
  Buf<int32_t> b(w, n);
  for (int64_t i = 0; i < n; ++i)
    b.host[i] = std::min<int32_t>(k - 1, static_cast<int32_t>(philox_uniform01(seed, i) * k));
  b.upload();
  return b;
}

inline Check exact(const std::vector<float>& got, const std::vector<float>& want) {
  std::vector<double> r(want.begin(), want.end());
  return compare(got, r, [](size_t) { return 1e-30; });
}

// ---- max-pool ---------------------------------------------------------------------------------
inline OpCase pool_case(Where where, const std::string& name, const Pool2dParams& full, bool backward) {
  struct S { Buf<float> x, y; Buf<int32_t> am; };
  auto alloc = [where, backward](S& s, const Pool2dParams& p, uint64_t seed) {
    const int64_t in = p.batch * p.channels * p.height * p.width, out = in / 4;
    s.x = backward ? Buf<float>(where, in) : random_buf(where, in, seed);  // continuous: no ties
    s.y = backward ? random_buf(where, out, seed) : Buf<float>(where, out);
    s.am = backward ? random_ints(where, out, seed + 1, 4) : Buf<int32_t>(where, out);
  };
  auto ours = [where, backward](S& s, const Pool2dParams& p) {
    const bool c = where == Where::Cuda;
    if (backward) c ? cuda::maxpool2d_backward(p, s.y.ptr(), s.am.ptr(), s.x.ptr()) : cpu::maxpool2d_backward<float>(p, s.y.ptr(), s.am.ptr(), s.x.ptr());
    else c ? cuda::maxpool2d_forward(p, s.x.ptr(), s.y.ptr(), s.am.ptr()) : cpu::maxpool2d_forward<float>(p, s.x.ptr(), s.y.ptr(), s.am.ptr());
  };
  OpCase c;
  c.name = name + (backward ? " bwd" : " fwd");
  c.shape = std::to_string(full.batch) + "x" + std::to_string(full.channels) + "x" + std::to_string(full.height) + "² -> /2";
  const double in = double(full.batch) * full.channels * full.height * full.width;
  // fwd reads x, writes y and the int32 argmax; bwd reads dy and argmax, writes dx: same total.
  c.bytes = 4 * in + 8 * in / 4;
  c.validate = [=] {
    const Pool2dParams p{1, full.channels, std::min<int64_t>(20, full.height), std::min<int64_t>(20, full.width)};
    S s;
    alloc(s, p, 31);
    ours(s, p);
    S r;
    r.x = Buf<float>(Where::Cpu, int64_t(s.x.host.size())); r.y = Buf<float>(Where::Cpu, int64_t(s.y.host.size()));
    r.am = Buf<int32_t>(Where::Cpu, int64_t(s.am.host.size()));
    if (backward) {
      s.x.download();
      plain::pool_bwd(p, s.y.host.data(), s.am.host.data(), r.x.host.data());
      return exact(s.x.host, r.x.host);
    }
    s.y.download(); s.am.download();
    plain::pool_fwd(p, s.x.host.data(), r.y.host.data(), r.am.host.data());
    Check k = exact(s.y.host, r.y.host);
    if (s.am.host != r.am.host) k.note = "argmax differs";
    return k;
  };
  auto s = std::make_shared<S>();
  c.setup = [=] { alloc(*s, full, 3); };
  c.run = [=] { ours(*s, full); };
  c.teardown = [=] { *s = S{}; };
  if (where == Where::Cpu) {
    c.baseline_name = "plain loop 1 thread";
    c.baseline = [=] {
      if (backward) plain::pool_bwd(full, s->y.ptr(), s->am.ptr(), s->x.ptr());
      else plain::pool_fwd(full, s->x.ptr(), s->y.ptr(), s->am.ptr());
    };
  }
#if defined(UNET_BENCH_CUDNN)
  if (where == Where::Cuda) {
    // cuDNN's backward needs the forward output instead of an argmax; it reads x, y and dy.
    auto pb = std::make_shared<std::unique_ptr<gpu::PoolBaseline>>();
    auto extra = std::make_shared<Buf<float>>();
    c.baseline_name = "cuDNN";
    c.baseline = [=] {
      if (!*pb) {
        *pb = std::make_unique<gpu::PoolBaseline>(full.batch, full.channels, full.height, full.width);
        *extra = Buf<float>(where, int64_t(s->x.host.size()));
      }
      if (backward) (*pb)->backward(s->y.ptr(), s->y.ptr(), s->x.ptr(), extra->ptr());
      else (*pb)->forward(s->x.ptr(), s->y.ptr());
    };
  }
#endif
  return c;
}

// ---- crop + concat ----------------------------------------------------------------------------
inline OpCase concat_case(Where where, const std::string& name, const CropConcatParams& full, bool backward) {
  struct S { Buf<float> skip, up, out; };
  auto alloc = [where, backward](S& s, const CropConcatParams& p, uint64_t seed) {
    const int64_t ns = p.batch * p.skip_channels * p.skip_height * p.skip_width;
    const int64_t nu = p.batch * p.up_channels * p.height * p.width;
    const int64_t no = p.batch * (p.skip_channels + p.up_channels) * p.height * p.width;
    s.skip = backward ? Buf<float>(where, ns) : random_buf(where, ns, seed);
    s.up = backward ? Buf<float>(where, nu) : random_buf(where, nu, seed + 1);
    s.out = backward ? random_buf(where, no, seed + 2) : Buf<float>(where, no);
  };
  auto ours = [where, backward](S& s, const CropConcatParams& p) {
    const bool c = where == Where::Cuda;
    if (backward) c ? cuda::crop_concat_backward(p, s.out.ptr(), s.skip.ptr(), s.up.ptr()) : cpu::crop_concat_backward<float>(p, s.out.ptr(), s.skip.ptr(), s.up.ptr());
    else c ? cuda::crop_concat_forward(p, s.skip.ptr(), s.up.ptr(), s.out.ptr()) : cpu::crop_concat_forward<float>(p, s.skip.ptr(), s.up.ptr(), s.out.ptr());
  };
  OpCase c;
  c.name = name + (backward ? " bwd" : " fwd");
  c.shape = std::to_string(full.skip_channels) + "x" + std::to_string(full.skip_height) + "² crop + " +
            std::to_string(full.up_channels) + "x" + std::to_string(full.height) + "²";
  const double out = double(full.batch) * (full.skip_channels + full.up_channels) * full.height * full.width;
  // fwd reads the crop and up, writes out; bwd reads dout, writes the whole dskip (zeros outside).
  c.bytes = backward ? 4 * (out + double(full.batch) * full.skip_channels * full.skip_height * full.skip_width +
                            double(full.batch) * full.up_channels * full.height * full.width)
                     : 8 * out;
  c.validate = [=] {
    CropConcatParams p = full;
    p.batch = 1;
    p.height = std::min<int64_t>(20, full.height); p.width = std::min<int64_t>(20, full.width);
    p.skip_height = p.height + 2 * full.offset_y; p.skip_width = p.width + 2 * full.offset_x;
    S s;
    alloc(s, p, 41);
    ours(s, p);
    std::vector<float> a(s.skip.host.size()), b(s.up.host.size()), o(s.out.host.size());
    if (backward) {
      s.skip.download(); s.up.download();
      plain::concat_bwd(p, s.out.host.data(), a.data(), b.data());
      Check k = exact(s.skip.host, a);
      return k.ok() ? exact(s.up.host, b) : k;
    }
    s.out.download();
    plain::concat_fwd(p, s.skip.host.data(), s.up.host.data(), o.data());
    return exact(s.out.host, o);
  };
  auto s = std::make_shared<S>();
  c.setup = [=] { alloc(*s, full, 7); };
  c.run = [=] { ours(*s, full); };
  c.teardown = [=] { *s = S{}; };
  if (where == Where::Cpu) {
    c.baseline_name = "plain loop 1 thread";
    c.baseline = [=] {
      if (backward) plain::concat_bwd(full, s->out.ptr(), s->skip.ptr(), s->up.ptr());
      else plain::concat_fwd(full, s->skip.ptr(), s->up.ptr(), s->out.ptr());
    };
  }
  return c;
}

}  // namespace unet::bench

#include "bench/bench_ops_cases_loss.h"
