// bench/bench_ops_util.h — plumbing of bench_ops: device-aware buffers (host vector + optional
// CUDA copy), reproducible random fills, timing (median and min of repeats, cache flush between
// repeats), the CPU peak estimate and the tolerance comparison used by validation.
#pragma once

#include "core/precision.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <ctime>
#include <vector>

#include "bench/cpu_peak.h"
#include "core/cuda_runtime.h"
#include "core/parallel.h"
#include "core/philox.h"
#include "kernels/cpu_dispatch.h"

namespace unet::bench {

enum class Where { Cpu, Cuda };

// A buffer of n elements: always a host copy (inputs are made there, references read it); on
// Where::Cuda also a device copy that the kernels use. Move-only; frees itself.
template <typename T> struct Buf {
  Where where = Where::Cpu;
  std::vector<T> host;
  T* dev = nullptr;

  Buf() = default;
  Buf(Where w, int64_t n) : where(w), host(static_cast<size_t>(n)) {
    if (where == Where::Cuda) dev = static_cast<T*>(cuda_rt::malloc(bytes()));
  }
  Buf(Buf&& o) noexcept : where(o.where), host(std::move(o.host)), dev(std::exchange(o.dev, nullptr)) {}
  Buf& operator=(Buf&& o) noexcept {
    std::swap(where, o.where); host.swap(o.host); std::swap(dev, o.dev);
    return *this;
  }
  Buf(const Buf&) = delete;
  ~Buf() { if (dev) cuda_rt::free(dev); }

  size_t bytes() const { return host.size() * sizeof(T); }
  T* ptr() { return where == Where::Cuda ? dev : host.data(); }
  void upload() { if (dev) cuda_rt::memcpy(dev, host.data(), bytes(), cuda_rt::CopyKind::HostToDevice); }
  void download() { if (dev) cuda_rt::memcpy(host.data(), dev, bytes(), cuda_rt::CopyKind::DeviceToHost); }
};

// Uniform values in [lo, hi), reproducible from (seed, index); uploaded when on a device.
inline Buf<float> random_buf(Where w, int64_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Buf<float> b(w, n);
  parallel_for(0, n, 1 << 16, [&](int64_t a, int64_t e) {
    for (int64_t i = a; i < e; ++i)
      b.host[i] = static_cast<float>(lo + (hi - lo) * static_cast<double>(philox_uniform01(seed, i)));
  });
  b.upload();
  return b;
}

struct Timing {
  double median_ms = 0, min_ms = 0;
  int repeats = 0;
};

inline Timing summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  Timing t;
  t.repeats = static_cast<int>(ms.size());
  if (ms.empty()) return t;
  t.min_ms = ms.front();
  const size_t h = ms.size() / 2;
  t.median_ms = ms.size() % 2 ? ms[h] : 0.5 * (ms[h - 1] + ms[h]);
  return t;
}

// Evicts the op's operands from the CPU caches between repeats (so a small op is not timed with
// its data hot from the previous repeat): writes a buffer larger than any last-level cache.
class CpuCacheFlusher {
 public:
  void flush() {
    if (buf_.empty()) buf_.resize(size_t{64} << 20);
    std::memset(buf_.data(), static_cast<int>(++round_), buf_.size());
  }
 private:
  std::vector<unsigned char> buf_;
  unsigned round_ = 0;
};

// What a CPU timing measures: wall time (steady_clock), or the CPU time of the whole process
// (CLOCK_PROCESS_CPUTIME_ID: the sum over its threads, so other processes on a shared machine
// inflate it only through the caches; with one thread it is that thread's time, the clock for
// A/B decisions on a busy machine).
enum class CpuClock { Wall, ProcessCpu };

inline double now_ms(CpuClock clock) {
  if (clock == CpuClock::Wall)
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return 1e3 * static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_nsec);
}

// One warm-up, then `repeats` timed runs with a flush before each.
inline Timing time_cpu(int repeats, CpuCacheFlusher& flusher, const std::function<void()>& run,
                       CpuClock clock = CpuClock::Wall) {
  run();
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    flusher.flush();
    const double t0 = now_ms(clock);
    run();
    ms.push_back(now_ms(clock) - t0);
  }
  return summarize(std::move(ms));
}

// Measured copy bandwidth (read + write bytes per second) of a 256 MiB memcpy split over the
// CPU backend's threads: the "limit" memory-bound ops are compared with.
inline double measure_cpu_copy_gbs() {
  const size_t n = size_t{64} << 20;  // floats
  std::vector<float> a(n, 1.0f), b(n, 0.0f);
  auto copy = [&] {
    parallel_for(0, static_cast<int64_t>(n), 1 << 20, [&](int64_t s, int64_t e) {
      std::memcpy(b.data() + s, a.data() + s, static_cast<size_t>(e - s) * sizeof(float));
    });
  };
  CpuCacheFlusher none;
  const Timing t = time_cpu(5, none, copy);
  return 2.0 * n * sizeof(float) / (t.min_ms * 1e-3) / 1e9;
}

// Validation result: worst error relative to the allowed tolerance (<= 1 passes).
struct Check {
  double worst_ratio = 0;   // max_i |got - ref| / tol_i
  double max_abs_err = 0;
  std::string note;         // e.g. which element failed
  bool ok() const { return worst_ratio <= 1.0 && note.empty(); }
};

// |got_i - ref_i| <= tol_i, where tol_i comes from the reference (e.g. a bound on the rounding
// error of its sum); NaN in `got` always fails.
inline Check compare(const std::vector<float>& got, const std::vector<double>& ref,
                     const std::function<double(size_t)>& tol) {
  Check c;
  if (got.size() != ref.size()) { c.note = "size mismatch"; return c; }
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (std::isnan(got[i])) { c.note = "NaN at element " + std::to_string(i); return c; }
    c.max_abs_err = std::max(c.max_abs_err, err);
    c.worst_ratio = std::max(c.worst_ratio, err / tol(i));
  }
  return c;
}

constexpr double kEps32 = std::numeric_limits<float>::epsilon();

// Rounding-error bound for a float32 sum of K terms whose absolute values sum to `abs_sum`:
// errors that behave like a random walk stay below a few sqrt(K)·eps·abs_sum; 8 is the safety
// factor, plus a tiny absolute term for sums that cancel to ~0.
// Tolerance of a sum of `terms` products whose magnitudes add up to abs_sum: the FP32 summation
// (8·√K·ε, a random-walk bound with margin) plus, at tf32/bf16, the operand rounding: each product
// of two operands rounded with |δ| ≤ u errs by at most (2u + u²) relative (core/precision.h).
inline double sum_tol(int64_t terms, double abs_sum, Precision precision = Precision::FP32) {
  const double u = precision == Precision::FP32 ? 0.0 : unit_roundoff(precision);
  return (8.0 * std::sqrt(static_cast<double>(terms)) * kEps32 + 2 * u + u * u) * abs_sum + 1e-30;
}

}  // namespace unet::bench
