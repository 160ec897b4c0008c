// bench/step.cpp — whole-network speed: times the U-Net forward pass (inference) and a full
// training step (forward, weighted-mean loss, backward, SGD with momentum 0.99) for the paper
// configuration (base 64, depth 4, 572×572 tile, batch 1) and the CPU default of train_em
// (base 16, tile 316); median over --iterations after --warmup, plus peak memory and achieved
// GFLOP/s against the machine's peak. --precision picks the convolution arithmetic of our runs
// (a comma list: each is timed; default tf32 on a GPU, fp32 on the CPU). --vs-pytorch runs
// bench/step_pytorch.py with the same configuration, thread count and precisions (FP32 with TF32
// off, TF32, AMP bf16 channels-last) in the same run, once per PyTorch found — Debian's
// python3-torch (1.13) and a current PyTorch from PyPI in the virtual environment that
// bench/pytorch_venv.sh makes — and prints our time / each one's at the same precision.
// --graph also times the training step captured once as a CUDA graph and replayed
// (unet/graph_step.h; CUDA only): its median goes into the row's last column and the JSON
// (train_graph_ms), beside the eager step of the same run.
// --rounds N repeats the whole set N times, alternating the engines, so a machine whose speed
// drifts shows it. The CPU's model name and its vector flags (lscpu) go into the output and the JSON.
// On the CPU every run is bracketed by a short measurement of the threads' multiply-add rate
// (bench/cpu_peak.h, just before and just after; the lower counts, column "FMA GF/s"): a virtual
// machine's host sometimes runs two vCPUs on one physical core for seconds at a time, which halves
// that rate, costs a compute-bound step up to 2× and a memory-bound one far less. A round compares
// like with like only when both runs saw the whole machine (>= 80 % of the best rate of the
// run); the summary gives the ratio over those rounds beside the ratio over all.
// --interleave (CPU, with --vs-pytorch) pairs the steps instead: ours and a PyTorch process's
// (bench/step_pytorch.py --serve, bench/step_peer.h) alternate one by one, and each pair's ratio
// is reported (median, quartiles, range, how many <= 0.6): both sides of a pair meet the same
// fraction of a second of the host, where separate runs draw different stretches of it. Each side
// starts from caches the other has just used, so both steps are slower than in separate runs.
//
// FLOPs are counted from the layer shapes: 2 per multiply-accumulate of every convolution,
// up-convolution and the head (pooling, ReLU, crop and the loss are negligible); a training step
// is counted as 3× the forward (the backward computes the input and the weight gradients, each
// as many MACs as the forward).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "bench/cpu_info.h"
#include "bench/cpu_peak.h"
#include "bench/step_peer.h"
#include "core/allocator.h"
#include "core/autograd.h"
#include "core/cuda_runtime.h"
#include "core/device.h"
#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "kernels/winograd3x3_cpu.h"
#include "unet/graph_step.h"
#include "unet/model.h"

namespace fs = std::filesystem;
using namespace unet;
using Clock = std::chrono::steady_clock;

namespace {

struct BenchConfig {
  std::string name;
  int64_t base = 64, tile = 572;
  int depth = 4;
};

// Forward multiply-accumulates of one image, from the layer shapes (valid padding).
double forward_macs(const BenchConfig& c, int64_t in_channels, int64_t classes) {
  double macs = 0.0;
  int64_t s = c.tile, cin = in_channels, ch = c.base;
  std::vector<int64_t> skip_sizes;
  auto conv3 = [&](int64_t ci, int64_t co) {
    s -= 2;
    macs += static_cast<double>(s) * s * co * ci * 9;
  };
  for (int level = 0; level <= c.depth; ++level) {
    conv3(cin, ch);
    conv3(ch, ch);
    if (level < c.depth) s /= 2;
    cin = ch;
    ch *= 2;
  }
  ch = cin;
  for (int level = 0; level < c.depth; ++level) {
    macs += static_cast<double>(s) * s * ch * (ch / 2) * 4;  // ConvTranspose2d(2, stride 2)
    s *= 2;
    conv3(ch, ch / 2);
    conv3(ch / 2, ch / 2);
    ch /= 2;
  }
  macs += static_cast<double>(s) * s * ch * classes;  // 1×1 head
  return macs;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

// Peak resident set of the whole process (includes the library, the allocator's caches, CLI
// parsing: everything), in bytes.
size_t vm_hwm_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return static_cast<size_t>(std::stoull(line.substr(6))) * 1024;
  return 0;
}

// CPU peak for the vector width our kernels run (cpu_isa()), measured (bench/cpu_peak.h).
std::pair<double, std::string> cpu_peak_gflops(int threads) {
  const bench::CpuPeak p = bench::measure_cpu_peak(threads, cpu::cpu_isa());
  return {p.gflops, p.how};
}

std::pair<double, std::string> gpu_peak_gflops() {
  const std::string name = cuda_description();
  // Non-tensor-core FP32 peaks of the cards we use (vendor datasheets, SXM parts).
  if (name.find("H100") != std::string::npos || name.find("H200") != std::string::npos)
    return {66900.0, "H100/H200 SXM FP32 (non-tensor-core) datasheet peak 66.9 TFLOP/s"};
  if (name.find("A100") != std::string::npos) return {19500.0, "A100 FP32 datasheet peak 19.5 TFLOP/s"};
  return {0.0, "unknown card (" + name + "): pass --peak-gflops"};
}

struct Result {
  std::string config, engine, mode, note;  // note: PyTorch's CPU capability (the kernels it picked)
  double forward_ms = 0, train_ms = 0, peak_mb = 0;
  double train_graph_ms = 0;  // --graph: the captured step replayed (0: not timed)
  double fma_gflops = 0;      // CPU: the threads' multiply-add rate around this run (the lower of before and after)
  int iterations = 0;
};

// Our U-Net for one configuration with its fixed input and targets, and one timed inference
// forward or training step (forward, weighted-mean loss, backward, SGD momentum 0.99) at a time.
class OurStep {
 public:
  OurStep(const BenchConfig& c, Device device, Precision precision) : device_(device), model_(config(c), device) {
    const int64_t o = config(c).geometry().output_size(c.tile);
    UNET_CHECK(o > 0, ValueError, "tile ", c.tile, " is not a valid input for depth ", c.depth);
    model_.set_precision(precision);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(c.tile * c.tile)), w(static_cast<size_t>(o * o));
    std::vector<int32_t> l(w.size());
    for (float& v : x) v = u(rng);
    for (size_t i = 0; i < w.size(); ++i) {
      w[i] = 0.5f + u(rng);
      l[i] = u(rng) < 0.5f ? 0 : 1;
    }
    input_ = Tensor::from_vector(x, Shape{1, 1, c.tile, c.tile}).to(device);
    labels_ = Tensor::from_vector(l, Shape{1, o, o}).to(device);
    weights_ = Tensor::from_vector(w, Shape{1, o, o}).to(device);
  }

  double forward_ms() {
    model_.set_training(false);
    NoGradGuard no_grad;
    sync();
    const auto t0 = Clock::now();
    const Tensor logits = model_.forward(input_);
    sync();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }

  double train_ms() {
    model_.set_training(true);
    sync();
    const auto t0 = Clock::now();
    model_.zero_grad();
    const Tensor logits = model_.forward(input_);
    const Tensor loss = weighted_cross_entropy(logits, labels_, weights_, LossReduction::WeightedMean);
    loss.backward();
    {
      NoGradGuard no_grad;
      sgd_step(model_.parameters(), velocities_, kSgd);
    }
    sync();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }

  // The training step captured as a CUDA graph (unet/graph_step.h), after one more eager step.
  GraphTrainingStep capture() {
    return GraphTrainingStep(model_, input_, labels_, weights_, LossReduction::WeightedMean, kSgd, velocities_);
  }

  void sync() const {
    if (device_.is_cuda()) cuda_rt::synchronize();
  }

 private:
  static UNetConfig config(const BenchConfig& c) {
    UNetConfig cfg;
    cfg.base_channels = c.base;
    cfg.depth = c.depth;
    cfg.dropout = 0.0f;  // as the PyTorch side: timing without dropout's mask generation
    cfg.init_seed = 1;
    return cfg;
  }
  static constexpr SgdOptions kSgd{1e-6f, 0.99f, 0.0f};  // tiny rate: the weights stay sane over many steps

  Device device_;
  UNet model_;
  Tensor input_, labels_, weights_;
  std::vector<Tensor> velocities_;
};

// Starts a new peak-memory measurement on the device (peak_memory_mb reads it).
void reset_peak_memory(Device device) {
  if (device.is_cuda()) cuda_reset_peak();
  // Linux resets VmHWM to the current RSS on "5" > clear_refs, so each configuration reports its
  // own peak rather than the largest so far (the process-wide caveat remains).
  else std::ofstream("/proc/self/clear_refs") << "5";
}
// Peak memory since the last reset_peak_memory(), in MiB: the GPU allocator's peak on CUDA, this
// whole process's VmHWM on the CPU.
double peak_memory_mb(Device device) {
  return (device.is_cuda() ? static_cast<double>(cuda_memory_stats().peak_bytes) : static_cast<double>(vm_hwm_bytes())) /
         1048576.0;
}

Result time_ours(const BenchConfig& c, Device device, Precision precision, int iterations, int warmup, bool graph) {
  const bool cuda = device.is_cuda();
  OurStep step(c, device, precision);
  Result r;
  r.config = c.name;
  r.engine = "unetcore";
  r.note = cuda ? "" : cpu::cpu_isa_name(cpu::cpu_isa());
  r.mode = cuda ? precision_name(precision) : "cpu";
  r.iterations = iterations;
  std::vector<double> fwd, train;
  reset_peak_memory(device);
  for (int i = 0; i < warmup + iterations; ++i) {
    const double ms = step.forward_ms();
    if (i >= warmup) fwd.push_back(ms);
  }
  for (int i = 0; i < warmup + iterations; ++i) {
    const double ms = step.train_ms();
    if (i >= warmup) train.push_back(ms);
  }
  if (graph) try {
    // The same step captured after one more eager step (GraphTrainingStep's constructor) and replayed.
    // A failure here is reported in the row and on stderr; the eager numbers above still stand.
    std::vector<double> replays;
    GraphTrainingStep captured = step.capture();
    for (int i = 0; i < warmup + iterations; ++i) {
      step.sync();
      const auto t0 = Clock::now();
      captured.run();
      step.sync();
      if (i >= warmup) replays.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    r.train_graph_ms = median(replays);
    char note[64];
    std::snprintf(note, sizeof note, "graph step %.2f ms, %zu nodes", r.train_graph_ms, captured.operations());
    r.note = note;
  } catch (const Error& e) {
    std::fprintf(stderr, "step: the captured training step failed: %s\n", e.what());
    r.note = "graph step failed (stderr)";
  }
  r.forward_ms = median(fwd);
  r.train_ms = median(train);
  r.peak_mb = peak_memory_mb(device);
  return r;
}

bool python_has_torch(const std::string& py) {
  return std::system((py + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
}

// The interpreters to time PyTorch with: --python's, else every one of these that has torch —
// Debian's python3-torch (/usr/bin/python3), the PyPI PyTorch of bench/pytorch_venv.sh
// ($UNET_TORCH_VENV or ~/.cache/unetcore/pytorch-venv), and python3 on PATH (the GPU machine's
// CUDA PyTorch) — without duplicates of the same torch.
std::vector<std::string> find_pythons(const std::vector<std::string>& requested) {
  if (!requested.empty()) return requested;
  std::vector<std::string> candidates{"/usr/bin/python3"};
  const char* venv = std::getenv("UNET_TORCH_VENV");
  const char* home = std::getenv("HOME");
  if (venv && *venv) candidates.push_back(std::string(venv) + "/bin/python");
  else if (home) candidates.push_back(std::string(home) + "/.cache/unetcore/pytorch-venv/bin/python");
  candidates.push_back("python3");
  std::vector<std::string> found, versions;
  for (const std::string& py : candidates) {
    if (!python_has_torch(py)) continue;
    std::string version;
    if (FILE* p = popen((py + " -c 'import torch; print(torch.__version__, torch.__file__)' 2>/dev/null").c_str(), "r")) {
      char buf[512];
      if (std::fgets(buf, sizeof buf, p)) version = buf;
      pclose(p);
    }
    if (std::find(versions.begin(), versions.end(), version) != versions.end()) continue;
    versions.push_back(version);
    found.push_back(py);
  }
  return found;
}

std::vector<Result> time_pytorch(const std::string& py, const BenchConfig& c, bool cuda, int threads,
                                 const std::string& modes, int iterations, int warmup) {
  const fs::path tmp = fs::temp_directory_path() / ("unet_step_pytorch_" + std::to_string(::getpid()) + ".json");
  std::ostringstream cmd;
  cmd << py << " " << UNET_SOURCE_DIR << "/bench/step_pytorch.py --base " << c.base << " --depth " << c.depth
      << " --tile " << c.tile << " --name " << c.name << " --device " << (cuda ? "cuda" : "cpu") << " --threads "
      << threads << " --iterations " << iterations << " --warmup " << warmup << " --json " << tmp.string();
  if (cuda) cmd << " --modes " << modes;
  std::printf("step: running %s\n", cmd.str().c_str());
  std::fflush(stdout);
  std::vector<Result> out;
  if (std::system(cmd.str().c_str()) != 0) {
    std::printf("step: the PyTorch run failed; no PyTorch numbers for %s\n", c.name.c_str());
    return out;
  }
  std::ifstream f(tmp);
  const nlohmann::json j = nlohmann::json::parse(f);
  for (const auto& e : j.at("results")) {
    Result r;
    r.config = c.name;
    r.engine = "pytorch " + j.value("torch", std::string("?"));
    r.note = j.value("cpu_capability", std::string());
    r.mode = e.at("mode").get<std::string>();
    r.forward_ms = e.at("forward_ms").get<double>();
    r.train_ms = e.at("train_ms").get<double>();
    r.peak_mb = e.at("peak_mb").get<double>();
    r.iterations = e.at("iterations").get<int>();
    out.push_back(r);
  }
  fs::remove(tmp);
  return out;
}

// --interleave: our steps and a PyTorch peer's (bench/step_pytorch.py --serve) alternate one by
// one — ours first in even pairs, theirs first in odd ones — so both sides of a pair run within
// the same ~0.2 s of the host's life. A virtual machine's speed drifts over seconds (a step 1.7×
// slower for a few seconds, then back); separate runs of a few seconds each draw different
// stretches, a pair draws the same one. Before each step both sides rest a few milliseconds so
// the other's threads have stopped polling (ours spin 200 µs, libgomp's about as long).
struct Interleaved {
  Result ours, theirs;
  std::vector<std::array<double, 2>> forward, train;  // per pair: our ms, theirs
};

Interleaved time_interleaved(const std::string& py, const BenchConfig& c, int threads, int iterations, int warmup) {
  constexpr auto kRest = std::chrono::milliseconds(5);
  const Device cpu_device = Device::cpu();
  std::printf("step: %s: interleaving with %s bench/step_pytorch.py --serve\n", c.name.c_str(), py.c_str());
  std::fflush(stdout);
  reset_peak_memory(cpu_device);
  OurStep ours(c, cpu_device, Precision::FP32);
  bench::StepPeer theirs({py, std::string(UNET_SOURCE_DIR) + "/bench/step_pytorch.py", "--serve", "--base",
                          std::to_string(c.base), "--depth", std::to_string(c.depth), "--tile",
                          std::to_string(c.tile), "--name", c.name, "--threads", std::to_string(threads),
                          "--warmup", std::to_string(warmup)});
  const nlohmann::json ready = nlohmann::json::parse(theirs.ready());
  for (int i = 0; i < warmup; ++i) ours.forward_ms(), ours.train_ms();
  Interleaved out;
  auto pairs = [&](const char* what, double (OurStep::*step)(), std::vector<std::array<double, 2>>& times) {
    for (int i = 0; i < iterations; ++i) {
      double mine = 0, other = 0;
      for (int side = 0; side < 2; ++side) {
        std::this_thread::sleep_for(kRest);
        if ((side == 0) == (i % 2 == 0)) mine = (ours.*step)();
        else other = theirs.request_ms(what);
      }
      times.push_back({mine, other});
    }
  };
  pairs("forward", &OurStep::forward_ms, out.forward);
  pairs("train", &OurStep::train_ms, out.train);
  auto side = [&](int k, std::vector<double>& fwd, std::vector<double>& trn) {
    for (const auto& p : out.forward) fwd.push_back(p[k]);
    for (const auto& p : out.train) trn.push_back(p[k]);
  };
  std::vector<double> f0, t0, f1, t1;
  side(0, f0, t0);
  side(1, f1, t1);
  out.ours = {c.name, "unetcore", "cpu", std::string(cpu::cpu_isa_name(cpu::cpu_isa())) + ", interleaved",
              median(f0), median(t0), peak_memory_mb(cpu_device), 0, 0, iterations};
  out.theirs = {c.name, "pytorch " + ready.value("torch", std::string("?")), "cpu",
                ready.value("cpu_capability", std::string()) + ", interleaved", median(f1), median(t1),
                std::stod(theirs.request("peak")), 0, 0, iterations};
  return out;
}

// "median 0.45 (quartiles 0.43-0.48, range 0.40-0.52), <= 0.6 in 30 of 30" of our time / theirs per pair.
std::string pair_summary(const std::vector<std::array<double, 2>>& pairs, nlohmann::json& j) {
  std::vector<double> r;
  for (const auto& p : pairs) r.push_back(p[0] / p[1]);
  std::sort(r.begin(), r.end());
  const size_t n = r.size();
  const auto under = std::count_if(r.begin(), r.end(), [](double v) { return v <= 0.6; });
  j = {{"ratios", r}, {"median", median(r)}, {"pairs", pairs}};
  char b[160];
  std::snprintf(b, sizeof b, "median %.2f (quartiles %.2f-%.2f, range %.2f-%.2f), <= 0.6 in %td of %zu", median(r),
                r[(n - 1) / 4], r[3 * (n - 1) / 4], r.front(), r.back(), under, n);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  std::string which = "auto", device_name = "auto", json_path, precision_list = "auto", cpu_isa_name;
  std::vector<std::string> pythons;
  int iterations = 0, warmup = 2, threads = 0, rounds = 1;
  double peak_override = 0.0;
  bool vs_pytorch = false, no_winograd = false, graph = false, interleave = false;
  CLI::App app{"Time the whole U-Net: inference forward and a full training step, optionally against PyTorch"};
  app.add_option("--config", which, "paper, cpu, both, or auto (both on a GPU, cpu on the CPU)")->capture_default_str();
  app.add_option("--device", device_name, "auto, cpu or cuda")->capture_default_str();
  app.add_option("--iterations", iterations, "timed iterations (default: 20 on a GPU, 5 on the CPU; 3 for paper on the CPU)");
  app.add_option("--warmup", warmup, "untimed iterations first (1 for paper on the CPU)")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads, for us and PyTorch (default: all cores)");
  app.add_option("--peak-gflops", peak_override, "the machine's peak GFLOP/s (default: measured on the CPU, bench/cpu_peak.h; the datasheet on a GPU)");
  app.add_flag("--vs-pytorch", vs_pytorch, "time the same work in PyTorch in the same run");
  app.add_flag("--interleave", interleave,
               "CPU, with --vs-pytorch: alternate our steps with PyTorch's one by one (bench/step_pytorch.py --serve) "
               "and report the ratio per pair as well, so both sides meet the same stretch of the host");
  app.add_flag("--graph", graph,
               "CUDA: also time the training step captured once as a CUDA graph and replayed (the 'kernels' column "
               "and train_graph_ms in the JSON)");
  app.add_option("--precision", precision_list,
                 "convolution arithmetic, a comma list of fp32, tf32, bf16 (each is timed), or auto (tf32 on a GPU, fp32 "
                 "on the CPU, which computes in fp32 only)")
      ->capture_default_str();
  app.add_option("--python", pythons,
                 "interpreter with torch, may be repeated (default: every one found of /usr/bin/python3 (Debian's "
                 "torch 1.13), $UNET_TORCH_VENV or ~/.cache/unetcore/pytorch-venv (bench/pytorch_venv.sh), python3)");
  app.add_option("--rounds", rounds, "repeat ours and every PyTorch this many times, alternating")->check(CLI::Range(1, 100));
  app.add_option("--cpu-isa", cpu_isa_name, "our CPU kernels' instruction set level: scalar, avx2 or avx512 (default: "
                                            "UNET_CPU_ISA, else the best this CPU has)");
  app.add_option("--json", json_path, "write the results here");
  app.add_flag("--no-winograd", no_winograd,
               "CPU: run the 3x3 layers without the Winograd engine (direct kernels and patch GEMM only, as before "
               "2026-11-26), to measure what it brings side by side");
  std::string weight_grad = "auto";
  app.add_option("--winograd-weight-grad", weight_grad,
                 "CPU: the 3x3 weight gradients on Winograd where it pays (auto), for every 3x3 layer (on), or on the "
                 "patch GEMM (off), to measure it side by side")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    if (threads > 0) set_num_threads(threads);
    threads = num_threads();
    if (no_winograd) cpu::set_winograd3x3_enabled(false);
    cpu::set_winograd3x3_weight_grad(weight_grad == "on"    ? cpu::WinogradWeightGrad::On
                                     : weight_grad == "off" ? cpu::WinogradWeightGrad::Off
                                                            : cpu::WinogradWeightGrad::Auto);
    if (!cpu_isa_name.empty()) cpu::set_cpu_isa(cpu::parse_cpu_isa(cpu_isa_name));
    Device device = Device::cpu();
    if (device_name == "cuda" || (device_name == "auto" && cuda_available() && !cuda_rt::is_simulated()))
      device = Device::cuda();
    else if (device_name != "cpu" && device_name != "auto")
      device = parse_device(device_name);
    const bool cuda = device.is_cuda();
    UNET_CHECK(!interleave || vs_pytorch, ValueError, "--interleave pairs our steps with PyTorch's: add --vs-pytorch");
    UNET_CHECK(!interleave || !cuda, ValueError, "--interleave times the CPU only (the device is ", device.str(),
               "; add --device cpu)");
    UNET_CHECK(!graph || cuda, ValueError, "--graph captures CUDA work: it needs --device cuda (the device is ",
               device.str(), ")");
    std::vector<Precision> precisions;
    std::string modes;  // the same list for PyTorch
    for (size_t at = 0; at <= precision_list.size();) {
      const size_t end = std::min(precision_list.find(',', at), precision_list.size());
      precisions.push_back(choose_precision(precision_list.substr(at, end - at), device));
      modes += (modes.empty() ? "" : ",") + std::string(precision_name(precisions.back()));
      at = end + 1;
    }
    if (which == "auto") which = cuda ? "both" : "cpu";
    std::vector<BenchConfig> configs;
    if (which == "paper" || which == "both") configs.push_back({"paper", 64, 572, 4});
    if (which == "cpu" || which == "both") configs.push_back({"cpu", 16, 316, 4});
    UNET_CHECK(!configs.empty(), ValueError, "--config must be paper, cpu, both or auto, got '", which, "'");

    auto [peak, peak_why] = cuda ? gpu_peak_gflops() : cpu_peak_gflops(threads);
    if (peak_override > 0) {
      peak = peak_override;
      peak_why = "--peak-gflops";
    }
    const bench::CpuInfo info = bench::cpu_info();
    std::printf("step: device %s, %d CPU threads; peak %.0f GFLOP/s (%s)\n",
                cuda ? cuda_description().c_str() : "cpu", threads, peak, peak_why.c_str());
    std::printf("step: CPU %s; vector flags: %s; our CPU kernels: %s\n", info.model.c_str(), info.vector_flags.c_str(),
                cpu::cpu_isa_name(cpu::cpu_isa()));
    std::vector<std::string> pys;
    if (vs_pytorch) {
      pys = find_pythons(pythons);
      if (pys.empty()) {
        std::printf("step: no python with torch found: --vs-pytorch skipped\n");
        interleave = false;
      }
      else if (pys.size() == 1 && pythons.empty())
        std::printf("step: only one PyTorch found (%s); bench/pytorch_venv.sh makes the current one from PyPI\n",
                    pys[0].c_str());
    }

    std::vector<Result> results;
    std::vector<double> gflop_fwd;
    nlohmann::json j;
    j["device"] = cuda ? cuda_description() : "cpu";
    j["threads"] = threads;
    j["winograd"] = !no_winograd;
    j["winograd_weight_grad"] = weight_grad;
    j["precisions"] = modes;
    j["cpu_model"] = info.model;
    j["cpu_vector_flags"] = info.vector_flags;
    j["cpu_isa"] = cpu::cpu_isa_name(cpu::cpu_isa());
    j["rounds"] = rounds;
    j["peak_gflops"] = peak;
    j["peak_how"] = peak_why;
    for (const auto& c : configs) {
      int it = iterations > 0 ? iterations : (cuda ? 20 : 5), wu = warmup;
      if (!cuda && c.name == "paper" && iterations <= 0) {
        // Several seconds per step on a few cores: a handful of steps is all that fits.
        it = 3;
        wu = 1;
        std::printf("step: paper configuration on the CPU: only %d timed iterations after %d warm-up\n", it, wu);
      }
      const double gflop = 2.0 * forward_macs(c, 1, 2) / 1e9;
      std::printf("step: %s: base %lld, depth %d, tile %lld: forward %.1f GFLOP, training step %.1f GFLOP; "
                  "%d iterations after %d warm-up\n",
                  c.name.c_str(), static_cast<long long>(c.base), c.depth, static_cast<long long>(c.tile), gflop,
                  3 * gflop, it, wu);
      std::fflush(stdout);
      const size_t first = results.size();
      // The rate the machine gives our threads right now (CPU only; a few tens of milliseconds).
      auto fma_rate = [&] { return cuda ? 0.0 : bench::measure_cpu_peak(threads, cpu::cpu_isa(), 3).gflops; };
      for (int round = 0; round < rounds && interleave; ++round)
        for (const std::string& py : pys) {
          const double before = fma_rate();
          Interleaved t = time_interleaved(py, c, threads, it, wu);
          t.ours.fma_gflops = t.theirs.fma_gflops = std::min(before, fma_rate());
          nlohmann::json fwd, trn;
          const std::string what = c.name + " vs " + t.theirs.engine;
          std::printf("step: interleaved %s, round %d, our time / theirs per pair:\n  training step %s\n  forward       %s\n",
                      what.c_str(), round + 1, pair_summary(t.train, trn).c_str(), pair_summary(t.forward, fwd).c_str());
          std::fflush(stdout);
          j["interleaved"].push_back({{"what", what}, {"round", round + 1}, {"train", trn}, {"forward", fwd}});
          results.push_back(t.ours);
          results.push_back(t.theirs);
        }
      for (int round = 0; round < rounds && !interleave; ++round) {
        for (Precision p : precisions) {
          const double before = fma_rate();
          results.push_back(time_ours(c, device, p, it, wu, graph));
          results.back().fma_gflops = std::min(before, fma_rate());
        }
        for (const std::string& py : pys) {
          const double before = fma_rate();
          std::vector<Result> theirs = time_pytorch(py, c, cuda, threads, modes, it, wu);
          const double rate = std::min(before, fma_rate());
          for (auto& r : theirs) {
            r.fma_gflops = rate;
            results.push_back(r);
          }
        }
      }
      for (size_t i = first; i < results.size(); ++i) gflop_fwd.push_back(gflop);
    }

    double best_fma = peak;
    for (const Result& r : results) best_fma = std::max(best_fma, r.fma_gflops);
    const double whole_machine = 0.8 * best_fma;  // a run below this shared its cores (see the top)
    std::printf("\n%-6s %-22s %-9s %12s %12s %9s %9s %8s %10s %10s %9s %s\n", "config", "engine", "mode",
                "forward ms", "train ms", "fwd GF/s", "trn GF/s", "%peak", "ours/pt", "peak MiB", "FMA GF/s", "kernels");
    // Per config, mode and PyTorch: the round ratios (our step / theirs), all and like with like.
    std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> round_ratios;
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      const double gf = gflop_fwd[i];
      const double fwd_rate = gf / (r.forward_ms / 1e3), trn_rate = 3 * gf / (r.train_ms / 1e3);
      std::string ratio = "";
      if (r.engine != "unetcore") {
        // Our times / PyTorch's of the same configuration and precision in the same round (>1: PyTorch is faster).
        for (size_t k = i; k-- > 0;)
          if (results[k].engine == "unetcore" && results[k].config == r.config && results[k].mode == r.mode) {
            const Result& o = results[k];
            char b[32];
            std::snprintf(b, sizeof b, "%.2f/%.2f", o.forward_ms / r.forward_ms, o.train_ms / r.train_ms);
            ratio = b;
            if (!cuda) {
              auto& [all, alike] = round_ratios[r.config + " " + r.mode + " vs " + r.engine];
              all.push_back(o.train_ms / r.train_ms);
              if (o.fma_gflops >= whole_machine && r.fma_gflops >= whole_machine) alike.push_back(o.train_ms / r.train_ms);
            }
            break;
          }
      }
      std::printf("%-6s %-22s %-9s %12.1f %12.1f %9.1f %9.1f %7.1f%% %10s %10.0f %9.0f %s\n", r.config.c_str(),
                  r.engine.c_str(), r.mode.c_str(), r.forward_ms, r.train_ms, fwd_rate, trn_rate,
                  peak > 0 ? 100.0 * trn_rate / peak : 0.0, ratio.c_str(), r.peak_mb, r.fma_gflops, r.note.c_str());
      j["results"].push_back({{"config", r.config}, {"engine", r.engine}, {"mode", r.mode}, {"forward_ms", r.forward_ms},
                              {"train_ms", r.train_ms}, {"forward_gflop", gf}, {"train_gflop", 3 * gf},
                              {"forward_gflops", fwd_rate}, {"train_gflops", trn_rate}, {"peak_mb", r.peak_mb},
                              {"train_graph_ms", r.train_graph_ms}, {"fma_gflops", r.fma_gflops},
                              {"iterations", r.iterations}, {"cpu_capability", r.note}});
    }
    std::printf("ours/pt = our forward time / PyTorch's, our training-step time / PyTorch's (> 1: PyTorch faster); "
                "%%peak is of the training step.\npeak MiB: unetcore %s; PyTorch %s\n",
                cuda ? "cuda_memory_stats().peak_bytes" : "VmHWM of the whole process (library, caches, everything)",
                cuda ? "torch.cuda.max_memory_allocated()" : "ru_maxrss of its whole process");
    if (!cuda) {
      std::printf("FMA GF/s: our threads' multiply-add rate around each run (the lower of just before and just after); "
                  "the whole machine here: >= %.0f (80 %% of the best, %.0f)\n", whole_machine, best_fma);
      j["whole_machine_fma_gflops"] = whole_machine;
    }
    for (const auto& [what, lists] : round_ratios) {
      const auto& [all, alike] = lists;
      if (all.size() < 2) continue;
      std::printf("step ratio %s: median %.2f over all %zu rounds; ", what.c_str(), median(all), all.size());
      if (alike.empty()) std::printf("no round where both runs had the whole machine\n");
      else std::printf("median %.2f over the %zu where both runs had the whole machine\n", median(alike), alike.size());
      j["round_ratios"].push_back({{"what", what}, {"all", all}, {"whole_machine", alike}});
    }
    if (!json_path.empty()) std::ofstream(json_path) << j.dump(1) << "\n";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "step: %s\n", e.what());
    return 1;
  }
  return 0;
}
