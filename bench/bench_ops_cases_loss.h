// bench/bench_ops_cases_loss.h — OpCases of bench_ops for the fused softmax + weighted
// cross-entropy (forward + gradient, timed together as training runs them) and for one SGD step
// over every parameter tensor of the network (one slot per tensor, as the trainer calls it).
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <vector>

namespace unet::bench {

inline OpCase loss_case(Where where, const XentParams& full) {
  struct S { Buf<float> logits, weights, dlogits, loss, scale, grad_loss, dx; Buf<int32_t> labels; };
  auto alloc = [where](S& s, const XentParams& p, uint64_t seed) {
    const int64_t px = p.batch * p.pixels, n = px * p.classes;
    s.logits = random_buf(where, n, seed, -3.0, 3.0);
    s.weights = random_buf(where, px, seed + 1, 0.0, 2.0);
    s.labels = random_ints(where, px, seed + 2, static_cast<int32_t>(p.classes));
    s.dlogits = Buf<float>(where, n); s.dx = Buf<float>(where, n);
    s.loss = Buf<float>(where, 1); s.scale = Buf<float>(where, 1);
    s.grad_loss = Buf<float>(where, 1); s.grad_loss.host[0] = 1.0f; s.grad_loss.upload();
  };
  auto ours = [where](S& s, const XentParams& p) {
    const int64_t n = p.batch * p.pixels * p.classes;
    if (where == Where::Cuda) {
      cuda::weighted_xent_forward(p, s.logits.ptr(), s.labels.ptr(), s.weights.ptr(), s.dlogits.ptr(), s.loss.ptr(), s.scale.ptr());
      cuda::weighted_xent_backward(s.dlogits.ptr(), s.grad_loss.ptr(), s.scale.ptr(), s.dx.ptr(), n);
    } else {
      cpu::weighted_xent_forward<float>(p, s.logits.ptr(), s.labels.ptr(), s.weights.ptr(), s.dlogits.ptr(), s.loss.ptr(), s.scale.ptr());
      cpu::weighted_xent_backward<float>(s.dlogits.ptr(), s.grad_loss.ptr(), s.scale.ptr(), s.dx.ptr(), n);
    }
  };
  OpCase c;
  c.name = "loss softmax+xent fwd+grad";
  c.shape = std::to_string(full.batch) + "x" + std::to_string(full.classes) + "x" + std::to_string(full.pixels) + " px";
  // forward: read logits, labels, weights, write dlogits; backward: read dlogits, write dx.
  c.bytes = 4.0 * full.batch * full.pixels * (4 * full.classes + 2);
  c.validate = [=] {
    XentParams p = full;
    p.batch = 1; p.pixels = 400;
    S s;
    alloc(s, p, 51);
    ours(s, p);
    s.dx.download(); s.loss.download();
    // Reference in double: dE/da_k = w (p_k - [k == l]) / W for the weighted mean.
    std::vector<double> r(s.dx.host.size());
    double loss = 0, wsum = 0;
    for (int64_t i = 0; i < p.pixels; ++i) {
      double m = -1e300, z = 0;
      for (int64_t k = 0; k < p.classes; ++k) m = std::max(m, double(s.logits.host[k * p.pixels + i]));
      for (int64_t k = 0; k < p.classes; ++k) z += std::exp(s.logits.host[k * p.pixels + i] - m);
      const double w = s.weights.host[i];
      const int32_t l = s.labels.host[i];
      loss -= w * (s.logits.host[l * p.pixels + i] - m - std::log(z));
      wsum += w;
      for (int64_t k = 0; k < p.classes; ++k)
        r[k * p.pixels + i] = w * (std::exp(s.logits.host[k * p.pixels + i] - m) / z - (k == l));
    }
    for (double& v : r) v /= wsum;
    // exp/log in float: a few ulp per term, so 1e-5 relative to the largest gradient term.
    Check k = compare(s.dx.host, r, [&](size_t) { return 1e-5 * 2.0 / wsum; });
    const double lref = loss / wsum;
    if (std::fabs(s.loss.host[0] - lref) > 1e-4 * std::fabs(lref)) k.note = "loss " + std::to_string(s.loss.host[0]) + " vs " + std::to_string(lref);
    return k;
  };
  auto s = std::make_shared<S>();
  c.setup = [=] { alloc(*s, full, 9); };
  c.run = [=] { ours(*s, full); };
  c.teardown = [=] { *s = S{}; };
#if defined(UNET_BENCH_CUDNN)
  if (where == Where::Cuda) {
    // Only the softmax part of our fused kernel: cuDNN has no weighted cross-entropy.
    auto sm = std::make_shared<std::unique_ptr<gpu::SoftmaxBaseline>>();
    c.baseline_name = "cuDNN softmax only";
    c.baseline = [=] {
      if (!*sm) *sm = std::make_unique<gpu::SoftmaxBaseline>(full.batch, full.classes, full.pixels);
      (*sm)->forward(s->logits.ptr(), s->dlogits.ptr());
    };
  }
#endif
  return c;
}

// ---- SGD over all parameters ------------------------------------------------------------------
inline OpCase sgd_case(Where where, const std::vector<int64_t>& tensor_sizes) {
  struct S { std::vector<Buf<float>> p, g, v; Buf<SgdSlot<float>> slots; int64_t max_count = 0; };
  const SgdOptions opt{0.01f, 0.99f, 1e-4f};
  auto alloc = [](S& s, Where where, const std::vector<int64_t>& sizes, uint64_t seed) {
    s = S{};
    for (size_t i = 0; i < sizes.size(); ++i) {
      s.p.push_back(random_buf(where, sizes[i], seed + 3 * i));
      s.g.push_back(random_buf(where, sizes[i], seed + 3 * i + 1));
      s.v.push_back(random_buf(where, sizes[i], seed + 3 * i + 2));
      s.max_count = std::max(s.max_count, sizes[i]);
    }
    s.slots = Buf<SgdSlot<float>>(where, int64_t(sizes.size()));
    for (size_t i = 0; i < sizes.size(); ++i) s.slots.host[i] = {s.p[i].ptr(), s.g[i].ptr(), s.v[i].ptr(), sizes[i]};
    s.slots.upload();
  };
  auto ours = [where, opt](S& s) {
    if (where == Where::Cuda) cuda::sgd_step(s.slots.ptr(), int64_t(s.p.size()), s.max_count, opt);
    else cpu::sgd_step<float>(s.slots.host.data(), int64_t(s.p.size()), opt);
  };
  auto plain_sgd = [opt](S& s) {  // the formula of kernels/sgd.h, one thread, host buffers
    for (size_t t = 0; t < s.p.size(); ++t)
      for (size_t i = 0; i < s.p[t].host.size(); ++i) {
        float& v = s.v[t].host[i];
        v = opt.momentum * v + (s.g[t].host[i] + opt.weight_decay * s.p[t].host[i]);
        s.p[t].host[i] -= opt.learning_rate * v;
      }
  };
  int64_t total = 0;
  for (int64_t n : tensor_sizes) total += n;
  OpCase c;
  c.name = "sgd momentum step";
  c.shape = std::to_string(total) + " params, " + std::to_string(tensor_sizes.size()) + " tensors";
  c.bytes = 20.0 * total;  // read p, g, v; write p, v
  c.validate = [=] {
    S s, r;
    alloc(s, where, {1000, 37, 5000}, 61);
    alloc(r, Where::Cpu, {1000, 37, 5000}, 61);
    ours(s);
    plain_sgd(r);
    // Same formula in the same order: only FMA contraction may differ (an ulp or two).
    Check k;
    for (size_t t = 0; t < s.p.size() && k.ok(); ++t) {
      s.p[t].download(); s.v[t].download();
      for (const auto& [got, want] : {std::pair{&s.p[t], &r.p[t]}, std::pair{&s.v[t], &r.v[t]}}) {
        const std::vector<double> ref(want->host.begin(), want->host.end());
        const Check c = compare(got->host, ref, [&](size_t i) { return 8 * kEps32 * (1.0 + std::fabs(ref[i])); });
        if (c.worst_ratio > k.worst_ratio || !c.note.empty()) k = c;
      }
    }
    return k;
  };
  auto s = std::make_shared<S>();
  c.setup = [=] { alloc(*s, where, tensor_sizes, 11); };
  c.run = [=] { ours(*s); };
  c.teardown = [=] { *s = S{}; };
  if (where == Where::Cpu) {
    c.baseline_name = "plain loop 1 thread";
    c.baseline = [=] { plain_sgd(*s); };
  }
  return c;
}

}  // namespace unet::bench
