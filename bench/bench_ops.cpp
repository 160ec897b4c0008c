// bench/bench_ops.cpp — the kernel microbenchmark: every U-Net operator at the real layer shapes
// of a UNetConfig (default: the paper, 64 base channels, a 572×572 tile), derived from the
// geometry: per level the 3×3 convs (fwd, bwd-data, bwd-weight), the pool (fwd/bwd), the up-conv
// (fwd, bwd-data, bwd-weight), the crop-concat (fwd/bwd), the 1×1 head, the loss (fwd+grad) and
// one SGD step over all parameters. Each op is validated on a small instance of its layer
// against a naive reference first (a failed op is never timed), then timed: warm-up, cache flush
// before each repeat, median and min. The baseline runs in the same process: plain
// single-threaded CPU code on the CPU, cuDNN/cuBLAS in the GPU build. Prints a table, then the
// JSON document as the last stdout line (and to --json FILE).
//
//   ./build/bench/bench_ops [--quick] [--base-channels 64] [--tile 572] [--depth 4] [--batch 1]
//                           [--repeats 5] [--ops conv] [--device cpu|cuda] [--json out.json]
#include <CLI/CLI.hpp>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench/bench_ops_cases.h"
#include "core/device.h"
#include "core/error.h"
#include "unet/model.h"

namespace {

using namespace unet;
using namespace unet::bench;

struct Options {
  int64_t base = 64, tile = 572, batch = 1;
  int depth = 4, repeats = 5;
  std::string ops, device, json, precision_name = "auto", cpu_isa, clock = "wall";
  Precision precision = Precision::FP32;
  int threads = 0;
  bool quick = false, allow_sim = false, no_baseline = false;
  double peak_gflops = 0;
};

// The op list, walking the network like UNet::forward does; sizes come from the geometry's
// rules (valid k×k conv: -(k-1); pool: /2; up-conv: ×2) and are checked against it at the end.
std::vector<OpCase> build_cases(Where where, const Options& o, const UNetConfig& cfg, std::vector<int64_t>& params) {
  const UNetGeometry g = cfg.geometry();
  g.require_valid_input(o.tile);
  const Padding pad = g.padding;
  std::vector<OpCase> cases;
  int64_t s = o.tile, cin = cfg.in_channels;
  auto conv = [&](const std::string& name, int64_t ci, int64_t co, int64_t k, bool relu, bool need_dx) {
    const Conv2dParams p = conv2d_params(o.batch, ci, s, s, co, k, pad, relu, o.precision);
    cases.push_back(conv_case(where, name, p, ConvPass::Forward));
    if (need_dx) cases.push_back(conv_case(where, name, p, ConvPass::BackwardData));
    cases.push_back(conv_case(where, name, p, ConvPass::BackwardWeight));
    params.push_back(co * ci * k * k);
    params.push_back(co);
    s = p.h_out;
  };
  std::vector<std::pair<int64_t, int64_t>> skips;  // (channels, size)
  for (int l = 0; l < cfg.depth; ++l) {
    const int64_t c = cfg.base_channels << l;
    for (int i = 0; i < g.convs_per_level; ++i)
      // The image needs no gradient: the first conv of the network skips bwd-data.
      conv("down" + std::to_string(l) + ".conv" + std::to_string(i + 1), i ? c : cin, c, 3, true, l > 0 || i > 0);
    skips.emplace_back(c, s);
    for (bool bwd : {false, true})
      cases.push_back(pool_case(where, "down" + std::to_string(l) + ".pool", Pool2dParams{o.batch, c, s, s}, bwd));
    s /= 2;
    cin = c;
  }
  const int64_t cb = cfg.base_channels << cfg.depth;
  for (int i = 0; i < g.convs_per_level; ++i) conv("bottom.conv" + std::to_string(i + 1), i ? cb : cin, cb, 3, true, true);
  cin = cb;
  for (int l = cfg.depth - 1; l >= 0; --l) {
    const int64_t c = cfg.base_channels << l;
    const std::string lv = "up" + std::to_string(l);
    const Upconv2dParams up{o.batch, cin, s, s, c, o.precision};
    for (ConvPass ps : {ConvPass::Forward, ConvPass::BackwardData, ConvPass::BackwardWeight})
      cases.push_back(upconv_case(where, lv + ".upconv", up, ps));
    params.push_back(cin * c * 4);
    params.push_back(c);
    s *= 2;
    const auto [sc, ss] = skips[static_cast<size_t>(l)];
    const CropConcatParams cc{o.batch, sc, ss, ss, c, s, s, (ss - s) / 2, (ss - s) / 2};
    for (bool bwd : {false, true}) cases.push_back(concat_case(where, lv + ".concat", cc, bwd));
    for (int i = 0; i < g.convs_per_level; ++i)
      conv(lv + ".conv" + std::to_string(i + 1), i ? c : sc + c, c, 3, true, true);
    cin = c;
  }
  conv("head.conv1x1", cin, cfg.num_classes, 1, false, true);
  UNET_CHECK(s == g.output_size(o.tile), ValueError, "bench_ops' layer walk gives output ", s,
             " but the geometry says ", g.output_size(o.tile));
  cases.push_back(loss_case(where, XentParams{o.batch, cfg.num_classes, s * s, LossReduction::WeightedMean}));
  cases.push_back(sgd_case(where, params));
  return cases;
}

struct Row {
  std::string name, shape, baseline_name, error;
  bool ok = false, timed = false;
  Check check;
  Timing ours, base;
  double rate = 0, fraction = 0;  // GFLOP/s or GB/s; fraction of the limit
  bool is_flops = true;
};

std::string json_escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    r += c;
  }
  return r;
}


// Times `fn` on the selected device: events + L2 flush in the GPU build, steady_clock otherwise.
Timing time_op(Where where, int repeats, CpuCacheFlusher& flusher, const std::function<void()>& fn, CpuClock clock) {
#if defined(UNET_BENCH_CUDNN)
  if (where == Where::Cuda) return summarize(gpu::time_ms(repeats, fn));
#endif
  if (where == Where::Cuda) return time_cpu(repeats, flusher, [&] { fn(); cuda_rt::synchronize(); });
  return time_cpu(repeats, flusher, fn, clock);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"bench_ops: every U-Net operator at the real layer shapes, validated, then timed"};
  app.add_option("--base-channels", o.base, "channels of the first level")->check(CLI::Range(1, 1024));
  app.add_option("--tile", o.tile, "input tile size (must be a valid U-Net input)")->check(CLI::Range(1, 4096));
  app.add_option("--depth", o.depth, "number of down-steps")->check(CLI::Range(1, 8));
  app.add_option("--batch", o.batch, "images per batch")->check(CLI::Range(1, 64));
  app.add_option("--repeats", o.repeats, "timed repeats per op (median and min)")->check(CLI::Range(1, 1000));
  app.add_option("--ops", o.ops, "only ops whose name contains this substring");
  app.add_option("--device", o.device, "cpu or cuda (default: cuda if a real GPU is present, else cpu)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_flag("--allow-sim", o.allow_sim, "allow --device cuda on the CUDA simulator (smoke test only)");
  app.add_option("--json", o.json, "also write the JSON document to this file");
  app.add_option("--precision", o.precision_name,
                 "convolution arithmetic of ours and the baseline: auto (tf32 on a GPU, fp32 on the CPU), fp32, tf32 or "
                 "bf16; the CPU computes in fp32 only")
      ->capture_default_str();
  app.add_option("--peak-gflops", o.peak_gflops, "the machine's fp32 peak (default: measured on the CPU, bench/cpu_peak.h)")->check(CLI::PositiveNumber);
  app.add_option("--threads", o.threads, "CPU threads (default: all cores)")->check(CLI::Range(1, 1024));
  app.add_option("--cpu-isa", o.cpu_isa, "CPU kernels' instruction set level: scalar, avx2 or avx512 (default: "
                                        "UNET_CPU_ISA, else the best this CPU has)");
  app.add_option("--clock", o.clock, "CPU timing clock: wall, or cpu (the process's CPU time: for A/B comparisons "
                                     "on a busy machine, with --threads 1)")
      ->check(CLI::IsMember({"wall", "cpu"}));
  app.add_flag("--no-baseline", o.no_baseline, "time our kernels only (faster A/B runs)");
  app.add_flag("--quick", o.quick, "small configuration (base 8, tile 188, 2 repeats) for a smoke test");
  CLI11_PARSE(app, argc, argv);
  if (o.quick) { o.base = 8; o.tile = 188; o.repeats = std::min(o.repeats, 2); }

  try {
    if (o.threads > 0) set_num_threads(o.threads);
    if (!o.cpu_isa.empty()) cpu::set_cpu_isa(cpu::parse_cpu_isa(o.cpu_isa));
    const CpuClock clock = o.clock == "cpu" ? CpuClock::ProcessCpu : CpuClock::Wall;
    const bool real_gpu = cuda_rt::device_count() > 0 && !cuda_rt::is_simulated();
    if (o.device.empty()) o.device = real_gpu ? "cuda" : "cpu";
    const Where where = o.device == "cuda" ? Where::Cuda : Where::Cpu;
    if (where == Where::Cuda && !real_gpu && !o.allow_sim) {
      std::fprintf(stderr, "bench_ops: --device cuda is the CUDA simulator here (%s); its times mean nothing. "
                           "Pass --allow-sim for a smoke test.\n", cuda_description().c_str());
      return 2;
    }
    o.precision = choose_precision(o.precision_name, where == Where::Cuda ? Device::cuda() : Device::cpu());
    UNetConfig cfg;
    cfg.base_channels = o.base;
    cfg.depth = o.depth;
    cfg.validate();
    cfg.geometry().require_valid_input(o.tile);  // before the slow limit measurements

    std::string limit_how;
    double peak = o.peak_gflops, bandwidth = 0;
    if (where == Where::Cpu) {
      if (peak == 0) {
        const CpuPeak measured = measure_cpu_peak(num_threads(), cpu::cpu_isa());
        peak = measured.gflops;
        limit_how = measured.how;
      } else {
        limit_how = "--peak-gflops";
      }
      bandwidth = measure_cpu_copy_gbs();
      limit_how += "; memory: measured multi-threaded memcpy " + std::to_string(bandwidth) + " GB/s";
    }
#if defined(UNET_BENCH_CUDNN)
    if (where == Where::Cuda) {
      const gpu::Limits lim = gpu::device_limits();
      if (peak == 0) peak = lim.fp32_gflops;
      bandwidth = lim.dram_gbs;
      limit_how = lim.how;
    }
#endif
    std::printf("bench_ops: %s, base %lld, tile %lld, depth %d, batch %lld, %d repeats, %d threads, CPU kernels %s, "
                "%s clock, convolutions in %s; peak %.0f GFLOP/s (FP32, non-tensor), memory %.1f GB/s (%s)\n",
                where == Where::Cuda ? cuda_description().c_str() : "CPU backend", (long long)o.base, (long long)o.tile,
                o.depth, (long long)o.batch, o.repeats, num_threads(), cpu::cpu_isa_name(cpu::cpu_isa()),
                o.clock.c_str(), precision_name(o.precision), peak, bandwidth, limit_how.c_str());

    std::vector<int64_t> params;
    std::vector<OpCase> cases = build_cases(where, o, cfg, params);
    CpuCacheFlusher flusher;
    std::vector<Row> rows;
    int failed = 0;
    std::printf("%-30s %-34s %9s %9s %9s %6s %10s %7s  %s\n", "op", "shape", "med ms", "min ms", "rate", "%lim",
                "base ms", "ours/b", "ok");
    for (OpCase& c : cases) {
      if (!o.ops.empty() && c.name.find(o.ops) == std::string::npos) continue;
      Row r{c.name, c.shape, c.baseline_name};
      r.is_flops = c.flops > 0;
      try {
        r.check = c.validate();
        r.ok = r.check.ok();
      } catch (const std::exception& e) {
        r.error = e.what();
      }
      if (r.ok) {
        c.setup();
        r.ours = time_op(where, o.repeats, flusher, c.run, clock);
        if (c.baseline && !o.no_baseline) r.base = time_op(where, o.repeats, flusher, c.baseline, clock);
        c.teardown();
        r.timed = true;
        r.rate = (r.is_flops ? c.flops : c.bytes) / (r.ours.median_ms * 1e-3) / 1e9;
        const double limit = r.is_flops ? peak : bandwidth;
        r.fraction = limit > 0 ? r.rate / limit : 0;
        std::printf("%-30s %-34s %9.3f %9.3f %6.1f %s %6.1f%% %10s %7s  ✓\n", r.name.c_str(), r.shape.c_str(),
                    r.ours.median_ms, r.ours.min_ms, r.rate, r.is_flops ? "GF/s" : "GB/s", 100 * r.fraction,
                    r.base.repeats ? std::to_string(r.base.median_ms).substr(0, 9).c_str() : "-",
                    r.base.repeats ? std::to_string(r.ours.median_ms / r.base.median_ms).substr(0, 5).c_str() : "-");
      } else {
        ++failed;
        std::printf("%-30s %-34s %s  ✗ (%s)\n", r.name.c_str(), r.shape.c_str(), "not timed",
                    !r.error.empty() ? r.error.c_str() : !r.check.note.empty() ? r.check.note.c_str()
                    : ("error/tolerance " + std::to_string(r.check.worst_ratio)).c_str());
      }
      std::fflush(stdout);
      rows.push_back(r);
    }
    int64_t total_params = 0;
    for (int64_t n : params) total_params += n;

    std::ostringstream js;
    js << "{\"bench\":\"bench_ops\",\"device\":\"" << json_escape(where == Where::Cuda ? cuda_description() : "cpu")
       << "\",\"precision\":\"" << precision_name(o.precision) << "\",\"base_channels\":" << o.base << ",\"tile\":" << o.tile << ",\"depth\":" << o.depth << ",\"batch\":" << o.batch
       << ",\"repeats\":" << o.repeats << ",\"threads\":" << num_threads() << ",\"cpu_isa\":\""
       << cpu::cpu_isa_name(cpu::cpu_isa()) << "\",\"clock\":\"" << o.clock << "\",\"peak_gflops\":" << peak << ",\"memory_gbs\":" << bandwidth
       << ",\"limits\":\"" << json_escape(limit_how) << "\",\"parameters\":" << total_params << ",\"ops\":[";
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      js << (i ? "," : "") << "{\"op\":\"" << json_escape(r.name) << "\",\"shape\":\"" << json_escape(r.shape)
         << "\",\"valid\":" << (r.ok ? "true" : "false") << ",\"error_over_tolerance\":" << r.check.worst_ratio;
      if (r.timed)
        js << ",\"median_ms\":" << r.ours.median_ms << ",\"min_ms\":" << r.ours.min_ms << ",\"" << (r.is_flops ? "gflops" : "gbs")
           << "\":" << r.rate << ",\"fraction_of_limit\":" << r.fraction;
      if (r.base.repeats)
        js << ",\"baseline\":\"" << json_escape(r.baseline_name) << "\",\"baseline_median_ms\":" << r.base.median_ms
           << ",\"ours_over_baseline\":" << r.ours.median_ms / r.base.median_ms;
      js << "}";
    }
    js << "]}";
    if (!o.json.empty()) std::ofstream(o.json) << js.str() << "\n";
    std::printf("baselines: %s\n%lld parameters; %d op(s) failed validation\n%s\n",
                where == Where::Cpu ? "convs im2col + single-threaded Eigen GEMM; up-conv Eigen GEMM + shuffle; "
                                      "pool/concat/SGD plain single-threaded loops; loss none"
#if defined(UNET_BENCH_CUDNN)
                                    : "cuDNN (conv, conv transpose, pool, softmax), cuBLAS (1x1 head forward)",
#else
                                    : "none (this build has no cuDNN: simulator smoke test)",
#endif
                (long long)total_params, failed, js.str().c_str());
    return failed ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_ops: %s\n", e.what());
    return 2;
  }
}
