// bench/cpu_levels.cpp — the CPU convolution passes of one U-Net configuration at several
// instruction-set levels (kernels/cpu_dispatch.h), optionally with engines switched off
// ("avx512-direct" = AVX-512 without the direct 3×3 kernel; "-winograd", "-patch" likewise;
// "-f2" / "-f4" pin Winograd's output tile to F(2×2, 3×3) / F(4×4, 3×3); "-wg" / "-nowg" run
// every 3×3 weight gradient on Winograd / on the patch GEMM instead of the per-layer choice;
// "-wg2" / "-wg4" pin the Winograd weight gradient's tile to F(2×2, 3×3) / F(4×4, 3×3)),
// alternated in one process: per layer and pass, every variant runs in turn, --rounds times, and
// the minimum counts. The clock is the process's
// CPU time (CLOCK_PROCESS_CPUTIME_ID), which other processes on a shared machine disturb only
// through the caches; with --threads 1 (the default) it is the kernel's own time. This is the
// A/B tool for kernel work on a busy machine; bench_ops and bench/step give wall-clock numbers.
// Outputs of the variants are compared bit for bit as they run (levels promise the same bits;
// different engines do not, so "same bits" is informative only there).
//
//   build/bench/cpu_levels [--levels avx2,avx512] [--base-channels 16] [--tile 316] [--rounds 15]
//                          [--ops conv2] [--threads 1] [--json out.json]
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "core/philox.h"
#include "kernels/conv2d.h"
#include "kernels/conv3x3_direct_cpu.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/patch_gemm_cpu.h"
#include "kernels/winograd3x3_cpu.h"
#include "kernels/upconv2d.h"
#include "unet/model.h"

using namespace unet;

namespace {

double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return 1e3 * static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_nsec);
}

std::vector<float> random_floats(int64_t n, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = 2.0f * philox_uniform01(seed, static_cast<uint64_t>(i)) - 1.0f;
  return v;
}

struct Pass {
  std::string name;
  double flops = 0;
  std::function<void(std::vector<float>&)> run;  // writes its output
  size_t out_size = 0;
};

// The 3×3 convolutions (forward, data and weight gradient) and up-convolutions of the network,
// walked like UNet::forward (valid padding; the geometry's sizes).
std::vector<Pass> build_passes(const UNetConfig& cfg, int64_t tile) {
  std::vector<Pass> passes;
  // The network's first convolution has no data gradient in training (the image needs none).
  auto conv = [&](const std::string& name, int64_t ci, int64_t co, int64_t s, bool need_dx = true) {
    const Conv2dParams p = conv2d_params(1, ci, s, s, co, 3, Padding::Valid, true);
    auto x = std::make_shared<std::vector<float>>(random_floats(ci * s * s, 1));
    auto w = std::make_shared<std::vector<float>>(random_floats(co * ci * 9, 2));
    auto b = std::make_shared<std::vector<float>>(random_floats(co, 3));
    auto g = std::make_shared<std::vector<float>>(random_floats(co * p.h_out * p.w_out, 4));
    const double flops = 2.0 * co * ci * 9 * p.h_out * p.w_out;
    passes.push_back({name + " fwd", flops, [=](std::vector<float>& y) { cpu::conv2d_forward<float>(p, x->data(), w->data(), b->data(), y.data()); }, g->size()});
    if (need_dx)
      passes.push_back({name + " bwd-data", flops, [=](std::vector<float>& dx) { cpu::conv2d_backward_data<float>(p, g->data(), w->data(), dx.data()); }, x->size()});
    passes.push_back({name + " bwd-weight", flops, [=](std::vector<float>& dw) { cpu::conv2d_backward_weight<float>(p, x->data(), g->data(), dw.data()); }, w->size()});
    return p.h_out;
  };
  auto upconv = [&](const std::string& name, int64_t ci, int64_t co, int64_t s) {
    const Upconv2dParams p{1, ci, s, s, co};
    auto x = std::make_shared<std::vector<float>>(random_floats(ci * s * s, 5));
    auto w = std::make_shared<std::vector<float>>(random_floats(ci * co * 4, 6));
    auto b = std::make_shared<std::vector<float>>(random_floats(co, 7));
    auto g = std::make_shared<std::vector<float>>(random_floats(co * 4 * s * s, 8));
    const double flops = 2.0 * ci * co * 4 * s * s;
    passes.push_back({name + " fwd", flops, [=](std::vector<float>& y) { cpu::upconv2d_forward<float>(p, x->data(), w->data(), b->data(), y.data()); }, g->size()});
    passes.push_back({name + " bwd-data", flops, [=](std::vector<float>& dx) { cpu::upconv2d_backward_data<float>(p, g->data(), w->data(), dx.data()); }, x->size()});
    passes.push_back({name + " bwd-weight", flops, [=](std::vector<float>& dw) { cpu::upconv2d_backward_weight<float>(p, x->data(), g->data(), dw.data()); }, w->size()});
  };
  int64_t s = tile, cin = cfg.in_channels;
  std::vector<std::pair<int64_t, int64_t>> skips;
  for (int l = 0; l <= cfg.depth; ++l) {
    const int64_t c = cfg.base_channels << l;
    const std::string lv = l < cfg.depth ? "down" + std::to_string(l) : "bottom";
    s = conv(lv + ".conv1", cin, c, s, l > 0);
    s = conv(lv + ".conv2", c, c, s);
    skips.emplace_back(c, s);
    if (l < cfg.depth) s /= 2;
    cin = c;
  }
  for (int l = cfg.depth - 1; l >= 0; --l) {
    const int64_t c = cfg.base_channels << l;
    const std::string lv = "up" + std::to_string(l);
    upconv(lv + ".upconv", cin, c, s);
    s *= 2;
    s = conv(lv + ".conv1", 2 * c, c, s);
    s = conv(lv + ".conv2", c, c, s);
    cin = c;
  }
  UNET_CHECK(s == cfg.geometry().output_size(tile), ValueError, "cpu_levels' layer walk disagrees with the geometry");
  return passes;
}

// A level and the engines switched off for it, e.g. "avx512-direct-winograd".
struct Variant {
  std::string name;
  cpu::CpuIsa isa;
  bool direct = true, winograd = true, patch = true;
  int tile = 0;       // Winograd's output tile; 0: chosen per layer
  int grad_tile = 0;  // the Winograd weight gradient's output tile; 0: chosen per layer
  cpu::WinogradWeightGrad weight_grad = cpu::WinogradWeightGrad::Auto;
  void apply() const {
    cpu::set_cpu_isa(isa);
    cpu::set_winograd3x3_weight_grad(weight_grad);
    cpu::set_winograd3x3_tile(tile);
    cpu::set_winograd3x3_weight_grad_tile(grad_tile);
    cpu::set_conv3x3_direct_enabled(direct);
    cpu::set_winograd3x3_enabled(winograd);
    cpu::set_patch_gemm_enabled(patch);
  }
};

std::vector<Variant> parse_variants(const std::string& list) {
  std::vector<Variant> variants;
  std::stringstream in(list);
  std::string name;
  while (std::getline(in, name, ',')) {
    std::stringstream parts(name);
    std::string level, off;
    std::getline(parts, level, '-');
    Variant v{name, cpu::parse_cpu_isa(level)};
    UNET_CHECK(cpu::cpu_isa_supported(v.isa), ValueError, "--levels: this CPU has no ", level, " (it runs up to ",
               cpu::cpu_isa_name(cpu::cpu_isa_detected()), ")");
    while (std::getline(parts, off, '-')) {
      if (off == "f2" || off == "f4") {
        v.tile = off == "f2" ? 2 : 4;
        continue;
      }
      if (off == "wg2" || off == "wg4") {
        v.grad_tile = off == "wg2" ? 2 : 4;
        continue;
      }
      if (off == "wg" || off == "nowg") {
        v.weight_grad = off == "wg" ? cpu::WinogradWeightGrad::On : cpu::WinogradWeightGrad::Off;
        continue;
      }
      UNET_CHECK(off == "direct" || off == "winograd" || off == "patch", ValueError, "--levels: '", off,
                 "' is not an engine (direct, winograd, patch), a Winograd tile (f2, f4) or a weight-gradient choice "
                 "(wg, nowg, wg2, wg4)");
      (off == "direct" ? v.direct : off == "winograd" ? v.winograd : v.patch) = false;
    }
    variants.push_back(v);
  }
  UNET_CHECK(!variants.empty(), ValueError, "--levels is empty");
  return variants;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t base = 16, tile = 316;
  int depth = 4, rounds = 15, threads = 1;
  std::string levels_arg, ops, json_path;
  CLI::App app{"CPU convolution passes at several instruction-set levels, alternated, process CPU time"};
  app.add_option("--levels", levels_arg, "comma-separated levels, each optionally with engines switched off: "
                                         "avx512-direct, avx2-winograd-direct, ... (default: avx2 and, where the CPU "
                                         "has it, avx512)");
  app.add_option("--base-channels", base, "channels of the first level")->capture_default_str();
  app.add_option("--tile", tile, "input tile")->capture_default_str();
  app.add_option("--depth", depth, "down-steps")->capture_default_str();
  app.add_option("--rounds", rounds, "times every level runs every pass (the minimum counts)")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads")->capture_default_str();
  app.add_option("--ops", ops, "only passes whose name contains this");
  app.add_option("--json", json_path, "write the results here");
  CLI11_PARSE(app, argc, argv);
  try {
    set_num_threads(threads);
    if (levels_arg.empty()) levels_arg = cpu::cpu_isa_supported(cpu::CpuIsa::Avx512) ? "avx2,avx512" : "avx2";
    const std::vector<Variant> levels = parse_variants(levels_arg);
    UNetConfig cfg;
    cfg.base_channels = base;
    cfg.depth = depth;
    cfg.validate();
    cfg.geometry().require_valid_input(tile);
    std::vector<Pass> passes = build_passes(cfg, tile);
    std::printf("cpu_levels: base %lld, tile %lld, depth %d, %d thread(s), %d rounds, min of process CPU time (ms)\n",
                static_cast<long long>(base), static_cast<long long>(tile), depth, threads, rounds);
    std::printf("%-26s", "pass");
    for (const Variant& v : levels) std::printf(" %14s", v.name.c_str());
    if (levels.size() > 1) std::printf(" %8s", "last/1st");
    std::printf("  same bits\n");
    std::vector<double> total(levels.size(), 0.0);
    std::ostringstream js;
    js << "{\"bench\":\"cpu_levels\",\"base_channels\":" << base << ",\"tile\":" << tile << ",\"threads\":" << threads
       << ",\"rounds\":" << rounds << ",\"passes\":[";
    bool first_json = true;
    for (Pass& pass : passes) {
      if (!ops.empty() && pass.name.find(ops) == std::string::npos) continue;
      std::vector<double> best(levels.size(), 1e300);
      std::vector<std::vector<float>> out(levels.size(), std::vector<float>(pass.out_size));
      for (size_t l = 0; l < levels.size(); ++l) {  // warm-up (and each variant's result)
        levels[l].apply();
        pass.run(out[l]);
      }
      for (int r = 0; r < rounds; ++r)
        for (size_t l = 0; l < levels.size(); ++l) {
          levels[l].apply();
          std::vector<float>& o = out[l];
          const double t0 = cpu_ms();
          pass.run(o);
          best[l] = std::min(best[l], cpu_ms() - t0);
        }
      bool same = true;
      for (size_t l = 1; l < levels.size(); ++l)
        same = same && std::memcmp(out[0].data(), out[l].data(), out[0].size() * sizeof(float)) == 0;
      std::printf("%-26s", pass.name.c_str());
      for (size_t l = 0; l < levels.size(); ++l) {
        std::printf(" %14.3f", best[l]);
        total[l] += best[l];
      }
      if (levels.size() > 1) std::printf(" %8.2f", best.back() / best.front());
      std::printf("  %s\n", levels.size() > 1 ? (same ? "yes" : "NO") : "-");
      js << (first_json ? "" : ",") << "{\"pass\":\"" << pass.name << "\",\"gflop\":" << pass.flops / 1e9 << ",\"same_bits\":" << (same ? "true" : "false");
      for (size_t l = 0; l < levels.size(); ++l) js << ",\"" << levels[l].name << "_ms\":" << best[l];
      js << "}";
      first_json = false;
      std::fflush(stdout);
    }
    std::printf("%-26s", "total");
    for (double t : total) std::printf(" %14.3f", t);
    if (levels.size() > 1) std::printf(" %8.2f", total.back() / total.front());
    std::printf("\n");
    js << "]}";
    if (!json_path.empty()) std::ofstream(json_path) << js.str() << "\n";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cpu_levels: %s\n", e.what());
    return 1;
  }
  return 0;
}
