// tests/test_util.h — shared helpers for the test suite: reproducible random inputs (Philox),
// poisoned outputs, tolerance comparison with a readable failure, and the central-difference
// gradient check run in double on the CPU reference.
//
// Tolerances: compare |got - ref| <= atol + rtol * |ref|. Each test states why its numbers are
// what they are; reduction_rtol() gives the usual float32 bound for a length-n sum computed in a
// different order (worst case grows like n·eps, a tree like log2(n)·eps; we use
// sqrt(n)·eps·safety, the bound for rounding errors that behave like a random walk, which is
// what float32 sums of random data show).
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/parallel.h"
#include "core/philox.h"
#include "core/tensor.h"

namespace unet::test {

constexpr float kEps32 = std::numeric_limits<float>::epsilon();  // 1.19e-7

// Restores the CPU thread count at scope exit, for tests that run a kernel at several counts.
struct ThreadCountGuard {
  int saved = num_threads();
  ~ThreadCountGuard() { set_num_threads(saved); }
};

// Marks the running test as not run on this machine, with the reason: prints a line that CTest's
// SKIP_REGULAR_EXPRESSION (tests/CMakeLists.txt) turns into "Skipped", so a test for hardware the
// machine lacks never counts as passed. Return from the test right after.
inline void skip_test(const std::string& why) {
  std::cout << "UNET_TEST_SKIPPED: " << why << std::endl;
  WARN("not run: " << why);
}

// A fresh folder under the system temp directory, removed with everything in it at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "unetcore_test") {
    path = std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
  // A sub-folder, created.
  std::string sub(const std::string& name) const {
    std::filesystem::create_directories(path / name);
    return (path / name).string();
  }
};

// The CUDA device under test: the simulator in the sim build, the GPU in the GPU build.
inline Device cuda_device() { return Device::cuda(); }

// Uniform values in [lo, hi), reproducible from (seed, index).
template <typename T = float>
std::vector<T> random_values(int64_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::vector<T> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[i] = static_cast<T>(lo + (hi - lo) * static_cast<double>(philox_uniform01(seed, i)));
  return v;
}

// Values whose magnitude is at least `gap` (so a kink at 0, like ReLU's, is never within a
// finite-difference step of an input).
template <typename T = float>
std::vector<T> random_values_away_from_zero(int64_t n, uint64_t seed, double gap = 0.05) {
  std::vector<T> v = random_values<T>(n, seed);
  for (T& x : v) x = x >= 0 ? static_cast<T>(gap + x) : static_cast<T>(x - gap);
  return v;
}

inline Tensor random_tensor(const Shape& shape, uint64_t seed, Device device = Device::cpu(),
                            double lo = -1.0, double hi = 1.0) {
  return Tensor::from_vector(random_values<float>(shape.numel(), seed, lo, hi), shape, device);
}

// An output buffer full of NaN: a kernel that forgets to write an element is caught.
inline Tensor poisoned(const Shape& shape, Device device) {
  return Tensor::full(shape, std::numeric_limits<float>::quiet_NaN(), device);
}

inline double reduction_rtol(int64_t n, double safety = 4.0) {
  return safety * std::sqrt(static_cast<double>(n > 1 ? n : 1)) * kEps32;
}

// Requires |got - ref| <= atol + rtol·|ref| everywhere; on failure reports the worst element.
template <typename A, typename B>
void require_close(const std::vector<A>& got, const std::vector<B>& ref, double atol, double rtol,
                   const std::string& what = "") {
  REQUIRE(got.size() == ref.size());
  size_t worst = 0;
  double worst_excess = -1.0;
  size_t failures = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
    const double allowed = atol + rtol * std::fabs(r);
    const double err = std::fabs(g - r);
    const bool bad = !(err <= allowed);  // NaN counts as bad
    if (bad) ++failures;
    const double excess = std::isnan(err) ? 1e300 : err - allowed;
    if (excess > worst_excess) { worst_excess = excess; worst = i; }
  }
  if (failures > 0) {
    std::ostringstream s;
    s << what << ": " << failures << " of " << got.size() << " elements out of tolerance (atol "
      << atol << ", rtol " << rtol << "); worst at " << worst << ": got " << got[worst]
      << ", expected " << ref[worst];
    FAIL(s.str());
  }
  SUCCEED();
}

inline void require_close(const Tensor& got, const Tensor& ref, double atol, double rtol,
                          const std::string& what = "") {
  REQUIRE(got.shape() == ref.shape());
  require_close(got.to_vector(), ref.to_vector(), atol, rtol, what);
}

inline std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Central-difference check of a backward pass, in double.
//   f(x)        -> y         the forward (double CPU reference)
//   analytic_dx               the backward's gradient of L = <dy, f(x)> with respect to x
// Checks every component of x (keep x small: tens to a few hundred values). With step h the
// truncation error is O(h²·|f'''|) and the cancellation error O(eps64·|L|/h); h = 1e-6 keeps
// both near 1e-10, so 1e-6 relative (plus 1e-8 absolute) is a safe, still sharp, bound.
inline void check_gradient(const std::function<std::vector<double>(const std::vector<double>&)>& f,
                           std::vector<double> x, const std::vector<double>& dy,
                           const std::vector<double>& analytic_dx, const std::string& what,
                           double h = 1e-6, double atol = 1e-8, double rtol = 1e-6) {
  REQUIRE(analytic_dx.size() == x.size());
  auto loss = [&](const std::vector<double>& xx) {
    const std::vector<double> y = f(xx);
    REQUIRE(y.size() == dy.size());
    double s = 0.0;
    for (size_t i = 0; i < y.size(); ++i) s += y[i] * dy[i];
    return s;
  };
  std::vector<double> numeric(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss(x);
    x[i] = saved - h;
    const double down = loss(x);
    x[i] = saved;
    numeric[i] = (up - down) / (2 * h);
  }
  require_close(analytic_dx, numeric, atol, rtol, what + " (analytic vs central difference)");
}

}  // namespace unet::test
